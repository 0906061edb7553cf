/*
 * HardFault (and escalated MemManage/BusFault/UsageFault) handler.
 *
 * A BKPT 0xAB (semihosting call) with no debugger attached escalates to
 * HardFault: that case is recognised, the call is skipped and returns -1,
 * so the same binary runs with and without a semihosting host. Any other
 * fault prints PC, LR, xPSR, CFSR, HFSR and the fault address registers,
 * a "RESULT FAIL" line, and exits.
 */
#include <stdint.h>

#include "hw.h"
#include "runtime.h"

static volatile int in_fault;

__attribute__((used)) void hardfault_report(uint32_t *frame, uint32_t exc_return)
{
    uint32_t pc = frame[6];
    if ((pc & 1u) == 0u && *(const volatile uint16_t *)(uintptr_t)pc == 0xBEABu) {
        /* Semihosting call without a host: skip the BKPT, return -1. */
        frame[0] = (uint32_t)-1;
        frame[6] = pc + 2u;
        SCB_HFSR = SCB_HFSR;    /* write-one-to-clear DEBUGEVT */
        return;
    }
    if (in_fault) {
        for (;;) {
        }
    }
    in_fault = 1;
    con_nl();
    con_puts("FAULT HardFault pc=0x"); con_puthex(pc, 8);
    con_puts(" lr=0x"); con_puthex(frame[5], 8);
    con_puts(" xpsr=0x"); con_puthex(frame[7], 8);
    con_puts(" cfsr=0x"); con_puthex(SCB_CFSR, 8);
    con_puts(" hfsr=0x"); con_puthex(SCB_HFSR, 8);
    con_puts(" mmfar=0x"); con_puthex(SCB_MMFAR, 8);
    con_puts(" bfar=0x"); con_puthex(SCB_BFAR, 8);
    con_puts(" exc_return=0x"); con_puthex(exc_return, 8);
    con_nl();
    con_puts("RESULT FAIL");
    con_nl();
    board_exit(3);
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile (
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "mov r1, lr\n"
        "push {r1, lr}\n"
        "bl hardfault_report\n"
        "pop {r1, pc}\n");
}
