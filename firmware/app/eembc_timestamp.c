/*
 * MLPerf Tiny energy mode: the timestamp pin (TINYML_EEMBC_ENERGY builds).
 *
 * The energy monitor records a falling edge on the DUT's timestamp pin for
 * each `timestamp` (and around the timed `infer` loop). The pin is an
 * open-drain GPIO output that idles released (high through the monitor's
 * pull-up); a timestamp pulls it low for at least 1 us (here 5 us by the
 * runtime timer) and releases it.
 *
 * The build passes the pin with -D (firmware/build.py, from the pin name):
 *   TINYML_EEMBC_TS_GPIO_BASE  GPIO port base address
 *   TINYML_EEMBC_TS_PIN        pin number 0..15
 *   TINYML_EEMBC_TS_RCC_REG    RCC register holding the port's clock enable
 *   TINYML_EEMBC_TS_RCC_BIT    its bit (= port index on F4/F7/H7/L4)
 * GPIO registers (same on STM32F4/F7/H7/L4): MODER +0x00 (2 bits per pin,
 * 01 = output), OTYPER +0x04 (1 = open drain), BSRR +0x18 (bit n sets pin n,
 * bit n+16 resets it).
 */
#include <stdint.h>

#include "app.h"
#include "runtime.h"

#ifndef TINYML_EEMBC_ENERGY
#define TINYML_EEMBC_ENERGY 0
#endif

#if TINYML_EEMBC_ENERGY

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define TS_MODER (TINYML_EEMBC_TS_GPIO_BASE + 0x00u)
#define TS_OTYPER (TINYML_EEMBC_TS_GPIO_BASE + 0x04u)
#define TS_BSRR (TINYML_EEMBC_TS_GPIO_BASE + 0x18u)

void eembc_timestamp_pin_init(void)
{
    REG(TINYML_EEMBC_TS_RCC_REG) |= 1u << TINYML_EEMBC_TS_RCC_BIT;
    (void)REG(TINYML_EEMBC_TS_RCC_REG);                 /* let the clock enable settle */
    REG(TS_BSRR) = 1u << TINYML_EEMBC_TS_PIN;            /* released before it drives */
    REG(TS_OTYPER) |= 1u << TINYML_EEMBC_TS_PIN;
    REG(TS_MODER) = (REG(TS_MODER) & ~(3u << (2u * TINYML_EEMBC_TS_PIN))) | (1u << (2u * TINYML_EEMBC_TS_PIN));
}

void eembc_timestamp_pulse(void)
{
    const uint64_t hold = timer_hz() / 200000u + 1u;    /* 5 us */
    REG(TS_BSRR) = 1u << (TINYML_EEMBC_TS_PIN + 16u);    /* low */
    const uint64_t t0 = timer_ticks();
    while (timer_ticks() - t0 < hold) {
    }
    REG(TS_BSRR) = 1u << TINYML_EEMBC_TS_PIN;            /* released */
}

#endif
