/* Cortex-M system registers used by the runtime (ARMv7-M ARM, B3). */
#ifndef TINYML_HW_H
#define TINYML_HW_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define SCB_ICSR    REG32(0xE000ED04u)
#define SCB_VTOR    REG32(0xE000ED08u)
#define SCB_CCR     REG32(0xE000ED14u)
#define SCB_SHCSR   REG32(0xE000ED24u)
#define SCB_CFSR    REG32(0xE000ED28u)
#define SCB_HFSR    REG32(0xE000ED2Cu)
#define SCB_MMFAR   REG32(0xE000ED34u)
#define SCB_BFAR    REG32(0xE000ED38u)
#define SCB_CPACR   REG32(0xE000ED88u)
#define SCB_CCSIDR  REG32(0xE000ED80u)
#define SCB_CSSELR  REG32(0xE000ED84u)
#define SCB_ICIALLU REG32(0xE000EF50u)
#define SCB_DCISW   REG32(0xE000EF60u)

#define SCB_CCR_IC (1u << 17)
#define SCB_CCR_DC (1u << 16)
#define SCB_ICSR_PENDSTSET (1u << 26)

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

#define DEMCR      REG32(0xE000EDFCu)
#define DWT_CTRL   REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR    REG32(0xE0001FB0u)

static inline void dsb(void) { __asm volatile ("dsb 0xF" ::: "memory"); }
static inline void isb(void) { __asm volatile ("isb 0xF" ::: "memory"); }
static inline uint32_t irq_save(void)
{
    uint32_t p;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r"(p) :: "memory");
    return p;
}
static inline void irq_restore(uint32_t p) { __asm volatile ("msr primask, %0" :: "r"(p) : "memory"); }

#endif /* TINYML_HW_H */
