/*
 * Clock tree: reset clock -> PLL at the board's rated clock, one function per
 * STM32 family, driven by the TINYML_CLOCK_* constants of board_config.h
 * (boards/<board>.toml [clock], checked against the manual limits by
 * boards/clock.py).
 *
 * Order in every family: power (regulator scale, over-drive / boost), the
 * PLL's oscillator, the PLL, then more flash wait states, bus prescalers,
 * and last the switch of SYSCLK to the PLL. Every ready flag is polled at
 * most TINYML_CLOCK_MAX_POLLS times; when one does not come (QEMU models no
 * RCC: its registers read 0), what was started is stopped again and the core
 * stays on the reset clock (HSI 16 MHz, H7 HSI 64 MHz, L4 MSI 4 MHz), which
 * clock_state() reports with the reason. SysTick, the DWT conversion and the
 * console baud divisor use clock_state()'s frequencies, i.e. the clock that
 * actually runs.
 *
 *   STM32F4  RM0090  6.3.2 RCC_PLLCFGR, 6.3.3 RCC_CFGR, 5.4.1 PWR_CR, 3.9.1 FLASH_ACR
 *   STM32F7  RM0385  5.1.4 over-drive entry sequence, 5.4.1/5.4.2 PWR_CR1/CSR1,
 *                    5.3.2/5.3.3 RCC_PLLCFGR/CFGR, 3.7.1 FLASH_ACR (ART, prefetch)
 *   STM32H7  RM0433  6.8.4 PWR_CR3 (LDO), 6.8.6 PWR_D3CR (VOS), 8.7.2 RCC_CR, 8.7.6 CFGR,
 *                    8.7.8-10 D1/D2/D3CFGR, 8.7.11-13 PLLCKSELR/PLLCFGR/PLL1DIVR, 4.9.1 FLASH_ACR
 *   STM32L4+ RM0432  5.1.8 range 1 boost entry, 5.4.1/5.4.5 PWR_CR1/CR5, 5.4.7 PWR_SR2,
 *                    6.4.1/6.4.3/6.4.4 RCC_CR/CFGR/PLLCFGR, 3.7.1 FLASH_ACR
 *
 * The M7 instruction and data caches (SCB) are enabled by startup.c.
 *
 * Register access goes through CLOCK_RD/CLOCK_WR so that a host test can
 * compile this file against a scripted register model
 * (tests/test_firmware_clock.py).
 */
#include <stdint.h>

#include "runtime.h"

#ifndef CLOCK_RD
#include "hw.h"
#define CLOCK_RD(addr) REG32(addr)
#define CLOCK_WR(addr, v) (REG32(addr) = (v))
#endif

#define CLOCK_SET(addr, bits) CLOCK_WR((addr), CLOCK_RD(addr) | (bits))
#define CLOCK_CLR(addr, bits) CLOCK_WR((addr), CLOCK_RD(addr) & ~(uint32_t)(bits))
#define CLOCK_FIELD(addr, mask, val) CLOCK_WR((addr), (CLOCK_RD(addr) & ~(uint32_t)(mask)) | (val))

static clock_state_t state;

/* Poll until (reg & mask) == want, at most TINYML_CLOCK_MAX_POLLS reads. */
static int wait_for(uint32_t reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < TINYML_CLOCK_MAX_POLLS; ++i) {
        state.polls++;
        if ((CLOCK_RD(reg) & mask) == want) {
            return 1;
        }
    }
    return 0;
}

/* HPRE / D1CPRE encoding of an AHB divider: 1 -> 0, 2..512 -> 0b1000 + log2 (no /32). */
static uint32_t ahb_bits(uint32_t div)
{
    switch (div) {
    case 2: return 0x8u;
    case 4: return 0x9u;
    case 8: return 0xAu;
    case 16: return 0xBu;
    case 64: return 0xCu;
    case 128: return 0xDu;
    case 256: return 0xEu;
    case 512: return 0xFu;
    default: return 0x0u;
    }
}

/* PPRE encoding of an APB divider: 1 -> 0, 2 -> 0b100, 4 -> 0b101, 8 -> 0b110, 16 -> 0b111. */
static uint32_t apb_bits(uint32_t div)
{
    switch (div) {
    case 2: return 0x4u;
    case 4: return 0x5u;
    case 8: return 0x6u;
    case 16: return 0x7u;
    default: return 0x0u;
    }
}

static void use_target(void)
{
    state.cpu_hz = TINYML_CLOCK_TARGET_HZ;
    state.uart_hz = TINYML_CLOCK_TARGET_UART_HZ;
    state.source = "PLL";
    state.reason = 0;
}

#if TINYML_CLOCK_SETUP && (TINYML_CLOCK_F4 || TINYML_CLOCK_F7)
/* ---- STM32F4 (RM0090) / STM32F7 (RM0385): same RCC layout ------------ */
#define RCC 0x40023800u
#define RCC_CR (RCC + 0x00u)
#define RCC_PLLCFGR (RCC + 0x04u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_APB1ENR (RCC + 0x40u)
#define PWR_CR1 0x40007000u             /* F4: PWR_CR */
#define PWR_CSR1 0x40007004u            /* F4: PWR_CSR */
#define FLASH_ACR 0x40023C00u

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_MASK (0x3Fu | (0x1FFu << 6) | (3u << 16) | (1u << 22) | (0xFu << 24))
#define CFGR_SW 0x3u
#define CFGR_SWS (0x3u << 2)
#define CFGR_PRE_MASK ((0xFu << 4) | (0x7u << 10) | (0x7u << 13))
#define SW_PLL 0x2u
#define F7_ODEN (1u << 16)
#define F7_ODSWEN (1u << 17)
#define F7_ODRDY (1u << 16)
#define F7_ODSWRDY (1u << 17)
#if TINYML_CLOCK_F7
#define VOS_MASK (3u << 14)              /* RM0385: VOS[1:0], 11 = scale 1 */
#define VOS_SCALE1 (3u << 14)
#define ACR_MASK (0xFu | (1u << 8) | (1u << 9))
#define ACR_BITS (TINYML_CLOCK_FLASH_WS | (1u << 8) | (1u << 9))   /* LATENCY | PRFTEN | ARTEN */
#else
#define VOS_MASK (1u << 14)              /* RM0090 (F405/F407): VOS, 1 = scale 1 */
#define VOS_SCALE1 (1u << 14)
#define ACR_MASK (0x7u | (1u << 8) | (1u << 9) | (1u << 10))
#define ACR_BITS (TINYML_CLOCK_FLASH_WS | (1u << 8) | (1u << 9) | (1u << 10))  /* | PRFTEN | ICEN | DCEN */
#endif

static const char *family_setup(void)
{
    CLOCK_SET(RCC_APB1ENR, 1u << 28);           /* PWREN */
    (void)CLOCK_RD(RCC_APB1ENR);
    CLOCK_FIELD(PWR_CR1, VOS_MASK, VOS_SCALE1); /* takes effect when the PLL runs */
#if TINYML_CLOCK_SRC_HSE
#if TINYML_CLOCK_HSE_BYPASS
    CLOCK_SET(RCC_CR, CR_HSEBYP);
#endif
    CLOCK_SET(RCC_CR, CR_HSEON);
    if (!wait_for(RCC_CR, CR_HSERDY, CR_HSERDY)) {
        return "HSE not ready";
    }
#endif
    CLOCK_FIELD(RCC_PLLCFGR, PLLCFGR_MASK,
                TINYML_CLOCK_PLLM | (TINYML_CLOCK_PLLN << 6) | ((TINYML_CLOCK_PLLP / 2u - 1u) << 16)
                | ((uint32_t)TINYML_CLOCK_SRC_HSE << 22) | (TINYML_CLOCK_PLLQ << 24));
    CLOCK_SET(RCC_CR, CR_PLLON);
    if (!wait_for(RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return "PLL not ready";
    }
#if TINYML_CLOCK_F7 && TINYML_CLOCK_OVER_DRIVE
    /* RM0385 5.1.4: with the PLL on and SYSCLK still on HSI/HSE: ODEN, wait
     * ODRDY, ODSWEN, wait ODSWRDY; then flash latency, prescalers, switch. */
    CLOCK_SET(PWR_CR1, F7_ODEN);
    if (!wait_for(PWR_CSR1, F7_ODRDY, F7_ODRDY)) {
        return "over-drive not ready";
    }
    CLOCK_SET(PWR_CR1, F7_ODSWEN);
    if (!wait_for(PWR_CSR1, F7_ODSWRDY, F7_ODSWRDY)) {
        return "over-drive switch not ready";
    }
#endif
    CLOCK_FIELD(FLASH_ACR, ACR_MASK, ACR_BITS);
    if (!wait_for(FLASH_ACR, 0xFu, TINYML_CLOCK_FLASH_WS)) {
        return "flash latency not accepted";
    }
    CLOCK_FIELD(RCC_CFGR, CFGR_PRE_MASK,
                (ahb_bits(TINYML_CLOCK_AHB_DIV) << 4) | (apb_bits(TINYML_CLOCK_APB1_DIV) << 10)
                | (apb_bits(TINYML_CLOCK_APB2_DIV) << 13));
    CLOCK_FIELD(RCC_CFGR, CFGR_SW, SW_PLL);
    if (!wait_for(RCC_CFGR, CFGR_SWS, SW_PLL << 2)) {
        return "PLL not selected";
    }
    return 0;
}

/* Back to the reset state of what family_setup changed (SYSCLK on HSI). */
static void family_undo(uint32_t cfgr0, uint32_t acr0)
{
    CLOCK_WR(RCC_CFGR, cfgr0);
    (void)wait_for(RCC_CFGR, CFGR_SWS, cfgr0 & CFGR_SWS);
    CLOCK_WR(FLASH_ACR, acr0);
#if TINYML_CLOCK_F7
    CLOCK_CLR(PWR_CR1, F7_ODSWEN | F7_ODEN);
#endif
    CLOCK_CLR(RCC_CR, CR_PLLON);
    CLOCK_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
}

static uint32_t saved_cfgr(void) { return CLOCK_RD(RCC_CFGR); }
static uint32_t saved_acr(void) { return CLOCK_RD(FLASH_ACR); }

#elif TINYML_CLOCK_SETUP && TINYML_CLOCK_H7
/* ---- STM32H743 (RM0433) ------------------------------------------------ */
#define RCC 0x58024400u
#define RCC_CR (RCC + 0x00u)
#define RCC_CFGR (RCC + 0x10u)
#define RCC_D1CFGR (RCC + 0x18u)
#define RCC_D2CFGR (RCC + 0x1Cu)
#define RCC_D3CFGR (RCC + 0x20u)
#define RCC_PLLCKSELR (RCC + 0x28u)
#define RCC_PLLCFGR (RCC + 0x2Cu)
#define RCC_PLL1DIVR (RCC + 0x30u)
#define PWR 0x58024800u
#define PWR_CSR1 (PWR + 0x04u)
#define PWR_CR3 (PWR + 0x0Cu)
#define PWR_D3CR (PWR + 0x18u)
#define FLASH_ACR 0x52002000u

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define CR3_SUPPLY_MASK 0x7u             /* SCUEN | LDOEN | BYPASS */
#define CR3_LDOEN (1u << 1)
#define CSR1_ACTVOSRDY (1u << 13)
#define D3CR_VOS (3u << 14)
#define D3CR_VOSRDY (1u << 13)
#define VOS1 (3u << 14)                  /* VOS1 = 0b11 */
#define CFGR_SW 0x7u
#define CFGR_SWS (0x7u << 3)
#define SW_PLL1 0x3u
/* 2 wait states and WRHIGHFREQ = 2 for 185 < ACLK <= 210 MHz at VOS1 (RM0433 Table 17). */
#define ACR_MASK (0xFu | (3u << 4))
#define ACR_BITS (TINYML_CLOCK_FLASH_WS | (2u << 4))

static const char *family_setup(void)
{
    /* RM0433 6.8.4: the supply configuration is written once after reset (LDO). */
    CLOCK_FIELD(PWR_CR3, CR3_SUPPLY_MASK, CR3_LDOEN);
    if (!wait_for(PWR_CSR1, CSR1_ACTVOSRDY, CSR1_ACTVOSRDY)) {
        return "voltage scaling not ready";
    }
    CLOCK_FIELD(PWR_D3CR, D3CR_VOS, VOS1);
    if (!wait_for(PWR_D3CR, D3CR_VOSRDY, D3CR_VOSRDY)) {
        return "voltage scaling not ready";
    }
#if TINYML_CLOCK_SRC_HSE
#if TINYML_CLOCK_HSE_BYPASS
    CLOCK_SET(RCC_CR, CR_HSEBYP);
#endif
    CLOCK_SET(RCC_CR, CR_HSEON);
    if (!wait_for(RCC_CR, CR_HSERDY, CR_HSERDY)) {
        return "HSE not ready";
    }
#endif
    /* PLLSRC 0b10 = HSE, 0b00 = HSI; DIVM1 bits 9:4. */
    CLOCK_FIELD(RCC_PLLCKSELR, 0x3u | (0x3Fu << 4),
                (TINYML_CLOCK_SRC_HSE ? 0x2u : 0x0u) | (TINYML_CLOCK_PLLM << 4));
    /* PLL1FRACEN 0, PLL1VCOSEL 0 (wide VCO), PLL1RGE, DIVP1EN | DIVQ1EN | DIVR1EN. */
    CLOCK_FIELD(RCC_PLLCFGR, 0xFu | (7u << 16),
                (TINYML_CLOCK_PLL_RANGE << 2) | (7u << 16));
    CLOCK_WR(RCC_PLL1DIVR, (TINYML_CLOCK_PLLN - 1u) | ((TINYML_CLOCK_PLLP - 1u) << 9)
                           | ((TINYML_CLOCK_PLLQ - 1u) << 16) | ((TINYML_CLOCK_PLLR - 1u) << 24));
    CLOCK_SET(RCC_CR, CR_PLL1ON);
    if (!wait_for(RCC_CR, CR_PLL1RDY, CR_PLL1RDY)) {
        return "PLL not ready";
    }
    CLOCK_FIELD(FLASH_ACR, ACR_MASK, ACR_BITS);
    if (!wait_for(FLASH_ACR, 0xFu, TINYML_CLOCK_FLASH_WS)) {
        return "flash latency not accepted";
    }
    /* D1CPRE /1 (CPU = SYSCLK), HPRE (AXI/AHB), D1PPRE (APB3); D2PPRE1/2 (APB1/2); D3PPRE (APB4). */
    CLOCK_FIELD(RCC_D1CFGR, (0xFu << 8) | (0x7u << 4) | 0xFu,
                (ahb_bits(1u) << 8) | (apb_bits(TINYML_CLOCK_APB3_DIV) << 4) | ahb_bits(TINYML_CLOCK_AHB_DIV));
    CLOCK_FIELD(RCC_D2CFGR, (0x7u << 8) | (0x7u << 4),
                (apb_bits(TINYML_CLOCK_APB2_DIV) << 8) | (apb_bits(TINYML_CLOCK_APB1_DIV) << 4));
    CLOCK_FIELD(RCC_D3CFGR, 0x7u << 4, apb_bits(TINYML_CLOCK_APB4_DIV) << 4);
    CLOCK_FIELD(RCC_CFGR, CFGR_SW, SW_PLL1);
    if (!wait_for(RCC_CFGR, CFGR_SWS, SW_PLL1 << 3)) {
        return "PLL not selected";
    }
    return 0;
}

static void family_undo(uint32_t cfgr0, uint32_t acr0)
{
    CLOCK_WR(RCC_CFGR, cfgr0);
    (void)wait_for(RCC_CFGR, CFGR_SWS, cfgr0 & CFGR_SWS);
    CLOCK_WR(RCC_D1CFGR, 0u);
    CLOCK_WR(RCC_D2CFGR, 0u);
    CLOCK_WR(RCC_D3CFGR, 0u);
    CLOCK_WR(FLASH_ACR, acr0);
    CLOCK_CLR(RCC_CR, CR_PLL1ON);
    CLOCK_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
}

static uint32_t saved_cfgr(void) { return CLOCK_RD(RCC_CFGR); }
static uint32_t saved_acr(void) { return CLOCK_RD(FLASH_ACR); }

#elif TINYML_CLOCK_SETUP && TINYML_CLOCK_L4
/* ---- STM32L4+ (RM0432) ------------------------------------------------- */
#define RCC 0x40021000u
#define RCC_CR (RCC + 0x00u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_PLLCFGR (RCC + 0x0Cu)
#define RCC_APB1ENR1 (RCC + 0x58u)
#define PWR 0x40007000u
#define PWR_CR1 (PWR + 0x00u)
#define PWR_SR2 (PWR + 0x14u)
#define PWR_CR5 (PWR + 0x80u)
#define FLASH_ACR 0x40022000u

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define CR1_VOS (3u << 9)
#define VOS_RANGE1 (1u << 9)
#define CR5_R1MODE (1u << 8)
#define SR2_VOSF (1u << 10)
/* PLLSRC 1:0, PLLM 7:4 (M-1), PLLN 14:8, PLLPEN 16, PLLQEN 20, PLLREN 24, PLLR 26:25 (R/2-1). */
#define PLLCFGR_MASK (0x3u | (0xFu << 4) | (0x7Fu << 8) | (1u << 16) | (1u << 20) | (1u << 24) | (3u << 25))
#define CFGR_SW 0x3u
#define CFGR_SWS (0x3u << 2)
#define CFGR_HPRE (0xFu << 4)
#define CFGR_PRE_MASK ((0xFu << 4) | (0x7u << 8) | (0x7u << 11))
#define SW_PLL 0x3u
#define ACR_MASK (0xFu | (1u << 8) | (1u << 9) | (1u << 10))
#define ACR_BITS (TINYML_CLOCK_FLASH_WS | (1u << 8) | (1u << 9) | (1u << 10))  /* | PRFTEN | ICEN | DCEN */

static const char *family_setup(void)
{
    CLOCK_SET(RCC_APB1ENR1, 1u << 28);          /* PWREN */
    (void)CLOCK_RD(RCC_APB1ENR1);
    /* RM0432 5.1.8: range 1, then R1MODE = 0 (boost) before raising the clock above 80 MHz. */
    CLOCK_FIELD(PWR_CR1, CR1_VOS, VOS_RANGE1);
#if TINYML_CLOCK_BOOST
    CLOCK_CLR(PWR_CR5, CR5_R1MODE);
#endif
    if (!wait_for(PWR_SR2, SR2_VOSF, 0u)) {
        return "voltage scaling not ready";
    }
#if TINYML_CLOCK_SRC_HSE
#if TINYML_CLOCK_HSE_BYPASS
    CLOCK_SET(RCC_CR, CR_HSEBYP);
#endif
    CLOCK_SET(RCC_CR, CR_HSEON);
    if (!wait_for(RCC_CR, CR_HSERDY, CR_HSERDY)) {
        return "HSE not ready";
    }
#else
    CLOCK_SET(RCC_CR, CR_HSION);
    if (!wait_for(RCC_CR, CR_HSIRDY, CR_HSIRDY)) {
        return "HSI not ready";
    }
#endif
    CLOCK_FIELD(RCC_PLLCFGR, PLLCFGR_MASK,
                (TINYML_CLOCK_SRC_HSE ? 0x3u : 0x2u) | ((TINYML_CLOCK_PLLM - 1u) << 4)
                | (TINYML_CLOCK_PLLN << 8) | (1u << 24) | ((TINYML_CLOCK_PLLR / 2u - 1u) << 25));
    CLOCK_SET(RCC_CR, CR_PLLON);
    if (!wait_for(RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return "PLL not ready";
    }
    CLOCK_FIELD(FLASH_ACR, ACR_MASK, ACR_BITS);
    if (!wait_for(FLASH_ACR, 0xFu, TINYML_CLOCK_FLASH_WS)) {
        return "flash latency not accepted";
    }
    /* RM0432 6.2.9 / 5.1.8: going above 80 MHz in boost mode, switch with
     * HCLK = SYSCLK / 2 first and restore the AHB prescaler after >= 1 us. */
    uint32_t pre = (apb_bits(TINYML_CLOCK_APB1_DIV) << 8) | (apb_bits(TINYML_CLOCK_APB2_DIV) << 11);
    CLOCK_FIELD(RCC_CFGR, CFGR_PRE_MASK, pre | (ahb_bits(2u) << 4));
    CLOCK_FIELD(RCC_CFGR, CFGR_SW, SW_PLL);
    if (!wait_for(RCC_CFGR, CFGR_SWS, SW_PLL << 2)) {
        return "PLL not selected";
    }
    for (volatile uint32_t i = 0; i < 200u; ++i) {
        /* >= 1 us at HCLK 60 MHz (each iteration is several cycles) */
    }
    CLOCK_FIELD(RCC_CFGR, CFGR_HPRE, ahb_bits(TINYML_CLOCK_AHB_DIV) << 4);
    return 0;
}

static void family_undo(uint32_t cfgr0, uint32_t acr0)
{
    CLOCK_WR(RCC_CFGR, cfgr0);
    (void)wait_for(RCC_CFGR, CFGR_SWS, cfgr0 & CFGR_SWS);
    CLOCK_WR(FLASH_ACR, acr0);
    CLOCK_CLR(RCC_CR, CR_PLLON);
#if TINYML_CLOCK_SRC_HSE
    CLOCK_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
#else
    CLOCK_CLR(RCC_CR, CR_HSION);
#endif
}

static uint32_t saved_cfgr(void) { return CLOCK_RD(RCC_CFGR); }
static uint32_t saved_acr(void) { return CLOCK_RD(FLASH_ACR); }

#elif TINYML_CLOCK_SETUP
#error "board_config.h: TINYML_CLOCK_SETUP needs one of TINYML_CLOCK_F4/F7/H7/L4"
#endif

const clock_state_t *clock_setup(void)
{
    state.cpu_hz = TINYML_CLOCK_RESET_HZ;
    state.uart_hz = TINYML_CLOCK_RESET_HZ;
    state.source = TINYML_CLOCK_RESET_NAME;
    state.polls = 0u;
    state.reason = 0;
#if TINYML_CLOCK_SETUP
    uint32_t cfgr0 = saved_cfgr();
    uint32_t acr0 = saved_acr();
    const char *why = family_setup();
    if (why == 0) {
        use_target();
    } else {
        family_undo(cfgr0, acr0);
        state.reason = why;
    }
#else
    state.reason = TINYML_CLOCK_NO_SETUP_REASON;
    (void)use_target;
    (void)ahb_bits;
    (void)apb_bits;
    (void)wait_for;
#endif
    return &state;
}

const clock_state_t *clock_state(void) { return &state; }

uint32_t clock_cpu_hz(void) { return state.cpu_hz; }

uint32_t clock_uart_hz(void) { return state.uart_hz; }

void clock_print(void)
{
    /* e.g. "216 MHz (PLL)", "16 MHz (HSI, PLL not ready)" */
    uint32_t mhz = state.cpu_hz / 1000000u;
    uint32_t khz = (state.cpu_hz / 1000u) % 1000u;
    con_putu(mhz);
    if (khz != 0u) {
        uart_putc('.');
        uart_putc((char)('0' + khz / 100u));
        uart_putc((char)('0' + (khz / 10u) % 10u));
        uart_putc((char)('0' + khz % 10u));
    }
    con_puts(" MHz (");
    con_puts(state.source);
    if (state.reason) {
        con_puts(", ");
        con_puts(state.reason);
    }
    con_puts(")");
}

void clock_report(void)
{
    con_puts("m-clock-[");
    clock_print();
    con_puts("; hz=");
    con_putu(state.cpu_hz);
    con_puts("; timer=");
    con_puts(timer_source());
    con_puts("; board=" TINYML_BOARD_NAME "; variant=" TINYML_VARIANT "]");
    con_nl();
}
