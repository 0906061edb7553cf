/*
 * QUADSPI memory-mapped mode for weights linked into external flash
 * (`tinyml build --weights-region qspi`; board_config.h: TINYML_QSPI_*).
 *
 * Runs as a constructor (from Reset_Handler's init_array loop, before the
 * app and so before any weight is read). Register layout: RM0385 (STM32F7)
 * QUADSPI section: CR, DCR, SR, CCR at offsets 0x00, 0x04, 0x08, 0x14.
 *   1. RCC: the GPIO ports of the QSPI pins and the QUADSPI clock.
 *   2. GPIO: each pin alternate function, push-pull, very high speed, no pull.
 *   3. CR:  PRESCALER, SSHIFT (sample half a cycle late), EN last.
 *      DCR: FSIZE (flash bytes = 2^(FSIZE+1)), CSHT (chip-select high time - 1).
 *   4. wait for SR.BUSY = 0 (bounded), then CCR: FMODE = 11 memory-mapped,
 *      IMODE = 01 and ADMODE = 01 (instruction and address on one line),
 *      ADSIZE = 10 (24-bit address), ABMODE = 00, DCYC dummy cycles,
 *      DMODE = 11 (data on four lines), INSTRUCTION the read command.
 *      Writing CCR in memory-mapped mode is what starts it: from then on
 *      reads of 0x90000000.. are served from the flash.
 * The flash's own configuration is left at its power-on state (the read
 * command and dummy cycles in the board descriptor are for that state).
 * Host tests compile this file with QSPI_MMIO32 pointing at a register model.
 */
#include <stdint.h>

#include "board_config.h"

#if TINYML_QSPI_WEIGHTS

#ifndef QSPI_MMIO32
#define QSPI_MMIO32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#endif

#define QSPI_CR  QSPI_MMIO32(TINYML_QSPI_BASE + 0x00u)
#define QSPI_DCR QSPI_MMIO32(TINYML_QSPI_BASE + 0x04u)
#define QSPI_SR  QSPI_MMIO32(TINYML_QSPI_BASE + 0x08u)
#define QSPI_CCR QSPI_MMIO32(TINYML_QSPI_BASE + 0x14u)

#define QSPI_SR_BUSY (1u << 5)
#define QSPI_BUSY_POLLS 100000u

typedef struct {
    uint32_t gpio;   /* port base */
    uint32_t pin;
    uint32_t af;
    uint32_t port;   /* index: RCC GPIO enable bit */
} qspi_pin_t;

static const qspi_pin_t qspi_pins[TINYML_QSPI_NUM_PINS] = TINYML_QSPI_PINS;

/* 0 when memory-mapped mode was entered, 1 when the peripheral stayed busy. */
int tinyml_qspi_status = -1;

void tinyml_qspi_map(void)
{
    for (uint32_t i = 0; i < TINYML_QSPI_NUM_PINS; ++i) {
        QSPI_MMIO32(TINYML_QSPI_GPIO_EN_REG) |= 1u << qspi_pins[i].port;
    }
    QSPI_MMIO32(TINYML_QSPI_RCC_EN_REG) |= 1u << TINYML_QSPI_RCC_EN_BIT;
    (void)QSPI_MMIO32(TINYML_QSPI_RCC_EN_REG);          /* let the enable take effect */
    for (uint32_t i = 0; i < TINYML_QSPI_NUM_PINS; ++i) {
        const qspi_pin_t *p = &qspi_pins[i];
        const uint32_t two = 2u * p->pin;
        QSPI_MMIO32(p->gpio + 0x00u) = (QSPI_MMIO32(p->gpio + 0x00u) & ~(3u << two)) | (2u << two);  /* MODER AF */
        QSPI_MMIO32(p->gpio + 0x04u) &= ~(1u << p->pin);                                           /* OTYPER PP */
        QSPI_MMIO32(p->gpio + 0x08u) |= 3u << two;                                                 /* OSPEEDR */
        QSPI_MMIO32(p->gpio + 0x0Cu) &= ~(3u << two);                                              /* PUPDR none */
        const uint32_t afr = p->gpio + (p->pin < 8u ? 0x20u : 0x24u);
        const uint32_t four = 4u * (p->pin & 7u);
        QSPI_MMIO32(afr) = (QSPI_MMIO32(afr) & ~(0xFu << four)) | (p->af << four);
    }
    QSPI_CR = (TINYML_QSPI_PRESCALER << 24) | (1u << 4);                 /* PRESCALER, SSHIFT */
    QSPI_DCR = (TINYML_QSPI_FSIZE << 16) | (TINYML_QSPI_CSHT << 8);      /* FSIZE, CSHT, CKMODE 0 */
    QSPI_CR |= 1u;                                                         /* EN */
    uint32_t polls = 0;
    while ((QSPI_SR & QSPI_SR_BUSY) != 0u) {
        if (++polls == QSPI_BUSY_POLLS) {
            tinyml_qspi_status = 1;
            return;
        }
    }
    QSPI_CCR = (3u << 26)                                 /* FMODE: memory-mapped */
             | (3u << 24)                                 /* DMODE: four lines */
             | (TINYML_QSPI_DUMMY_CYCLES << 18)           /* DCYC */
             | (2u << 12)                                 /* ADSIZE: 24 bits */
             | (1u << 10)                                 /* ADMODE: one line */
             | (1u << 8)                                  /* IMODE: one line */
             | TINYML_QSPI_READ_COMMAND;                  /* INSTRUCTION */
    tinyml_qspi_status = 0;
}

#ifndef QSPI_NO_CONSTRUCTOR
__attribute__((constructor)) static void qspi_map_before_main(void)
{
    tinyml_qspi_map();
}
#endif

#else
typedef int tinyml_qspi_unused;   /* ISO C: no empty translation unit */
#endif
