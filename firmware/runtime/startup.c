/*
 * Reset and vector table for Cortex-M4/M7 STM32 parts (and QEMU's MPS2).
 *
 * Reset: paint the stack, copy .data from flash, zero .bss, enable the FPU
 * (CPACR CP10/CP11 full access), on Cortex-M7 enable the I- and D-caches,
 * run static constructors, start the clock tree (clock.c), the console and
 * the timer, print the clock that runs (`clock: 216 MHz (PLL)`), then the app. The linker script (generated from
 * the board descriptor) provides the symbols below.
 */
#include <stdint.h>
#include <string.h>

#include "hw.h"
#include "runtime.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
extern uint32_t _sstack[], _estack[];
extern void (*__preinit_array_start[])(void), (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

static void paint_stack(void)
{
    /* Paint [_sstack, sp - 64) word by word; assembly so the loop itself
     * touches no stack. */
    uint32_t *p = _sstack;
    uint32_t *end;
    __asm volatile ("mov %0, sp" : "=r"(end));
    end -= 16;
    __asm volatile (
        "1: cmp %0, %1\n"
        "   bhs 2f\n"
        "   str %2, [%0], #4\n"
        "   b 1b\n"
        "2:\n"
        : "+r"(p) : "r"(end), "r"(TINYML_STACK_PAINT) : "cc", "memory");
}

#if TINYML_CORE_M7
static void enable_caches(void)
{
    dsb(); isb();
    SCB_ICIALLU = 0u;
    dsb(); isb();
    SCB_CCR |= SCB_CCR_IC;
    dsb(); isb();

    SCB_CSSELR = 0u;            /* level 1 data cache */
    dsb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu;
    do {
        uint32_t ways = (ccsidr >> 3) & 0x3FFu;
        do {
            SCB_DCISW = ((sets & 0x1FFu) << 5) | ((ways & 0x3u) << 30);
        } while (ways-- != 0u);
    } while (sets-- != 0u);
    dsb();
    SCB_CCR |= SCB_CCR_DC;
    dsb(); isb();
}
#endif

void Reset_Handler(void)
{
    paint_stack();
    for (uint32_t *s = _sidata, *d = _sdata; d < _edata;) {
        *d++ = *s++;
    }
    for (uint32_t *d = _sbss; d < _ebss;) {
        *d++ = 0u;
    }
    SCB_CPACR |= (0xFu << 20);  /* CP10, CP11: full access */
    dsb(); isb();
#if TINYML_CORE_M7 && TINYML_ENABLE_CACHES
    enable_caches();
#endif
    for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; ++f) {
        (*f)();
    }
    for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
    (void)clock_setup();
    uart_init();
    timer_init();
    semihost_probe();
    /* Boot banner line: the clock that actually runs. */
    con_puts("clock: ");
    clock_print();
    con_nl();
    app_main();
}

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm volatile ("mrs %0, ipsr" : "=r"(ipsr));
    con_nl();
    con_puts("FAULT unexpected exception ");
    con_putu(ipsr & 0x1FFu);
    con_nl();
    con_puts("RESULT FAIL");
    con_nl();
    board_exit(2);
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used))
const vector_t tinyml_vectors_table[16 + TINYML_NUM_IRQS] = {
    (vector_t)(uintptr_t)_estack,
    Reset_Handler,
    Default_Handler,            /* NMI */
    HardFault_Handler,
    HardFault_Handler,          /* MemManage */
    HardFault_Handler,          /* BusFault */
    HardFault_Handler,          /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,            /* SVCall */
    Default_Handler,            /* DebugMonitor */
    0,
    Default_Handler,            /* PendSV */
    SysTick_Handler,
    [16 ... 16 + TINYML_NUM_IRQS - 1] = Default_Handler,
};
