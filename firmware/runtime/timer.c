/*
 * 64-bit tick counter.
 *
 * DWT CYCCNT (processor cycles) is used when the core has a DWT whose
 * counter actually advances; otherwise SysTick on the processor clock
 * (CLKSOURCE=1) with a 2^24 reload and an overflow count kept by its
 * interrupt. Both count the core clock clock_setup() reports (the PLL, or the
 * reset clock after a fallback). QEMU does not implement DWT, so emulated runs use SysTick; under
 * `-icount shift=0` one guest instruction is 1 ns of virtual time, so
 * instructions = ticks * 1e9 / timer_hz() (the host does this conversion).
 */
#include <stdint.h>

#include "hw.h"
#include "runtime.h"

#define SYSTICK_RELOAD 0x00FFFFFFu

static int use_dwt;
static volatile uint32_t systick_wraps;
static uint32_t dwt_high, dwt_last;

void SysTick_Handler(void)
{
    if (use_dwt) {
        /* Sample the 32-bit cycle counter every 2^24 cycles so that its wraps are
         * counted (it wraps every 10.7 s at 400 MHz; an MLPerf Tiny performance run
         * lasts at least 10 s between two laps). */
        (void)timer_ticks();
    } else {
        systick_wraps++;
    }
}

void timer_init(void)
{
#if TINYML_TRY_DWT
    DEMCR |= (1u << 24);            /* TRCENA */
#if TINYML_CORE_M7
    DWT_LAR = 0xC5ACCE55u;          /* unlock (Cortex-M7) */
#endif
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;                 /* CYCCNTENA */
    uint32_t a = DWT_CYCCNT;
    for (volatile int i = 0; i < 16; ++i) {
    }
    use_dwt = DWT_CYCCNT != a;
#endif
    /* SysTick runs in both cases: the time base without a DWT, the sampler of
     * the DWT counter's wraps with one. */
    SYST_CSR = 0u;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u;                /* ENABLE | TICKINT | CLKSOURCE=processor */
}

uint64_t timer_ticks(void)
{
    if (use_dwt) {
        /* Extend the 32-bit counter; SysTick_Handler samples it every 2^24 cycles. */
        uint32_t p = irq_save();
        uint32_t now = DWT_CYCCNT;
        if (now < dwt_last) {
            dwt_high++;
        }
        dwt_last = now;
        uint64_t t = ((uint64_t)dwt_high << 32) | now;
        irq_restore(p);
        return t;
    }
    uint32_t p = irq_save();
    uint32_t wraps = systick_wraps;
    uint32_t val = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped while interrupts were off: count it and re-read. */
        wraps++;
        val = SYST_CVR;
    }
    irq_restore(p);
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - val);
}

uint32_t timer_hz(void) { return clock_cpu_hz(); }

const char *timer_source(void) { return use_dwt ? "dwt" : "systick"; }
