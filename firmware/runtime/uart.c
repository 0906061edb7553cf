/*
 * Console UART drivers, polled, 8N1.
 *
 *  TINYML_UART_SR    STM32F4 USART:            SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C (UE bit 13)
 *  TINYML_UART_ISR   STM32F7/H7/L4 (LP)USART:  CR1 0x00 (UE bit 0), BRR 0x0C, ISR 0x1C,
 *                                              ICR 0x20, RDR 0x24, TDR 0x28
 *  TINYML_UART_CMSDK ARM CMSDK APB UART (QEMU MPS2): DATA 0x0, STATE 0x4, CTRL 0x8, BAUDDIV 0x10
 *
 * Baud divisor from the UART kernel clock that runs (clock_uart_hz(): the
 * PCLK of the UART's APB with the PLL, or the reset clock after a clock-setup
 * fallback): BRR = clk / baud (oversampling by 16), and BRR = 256 * clk / baud
 * for an LPUART.
 */
#include <stdint.h>

#include "hw.h"
#include "runtime.h"

#define UART(off) REG32(TINYML_UART_BASE + (off))

#if TINYML_UART_CMSDK
#define CMSDK_DATA 0x00u
#define CMSDK_STATE 0x04u
#define CMSDK_CTRL 0x08u
#define CMSDK_BAUDDIV 0x10u
#define CMSDK_STATE_TXFULL (1u << 0)
#define CMSDK_STATE_RXFULL (1u << 1)

void uart_init(void)
{
    UART(CMSDK_BAUDDIV) = clock_uart_hz() / TINYML_UART_BAUD;
    UART(CMSDK_CTRL) = 0x3u;    /* TX and RX enable */
}

void uart_putc(char c)
{
    while (UART(CMSDK_STATE) & CMSDK_STATE_TXFULL) {
    }
    UART(CMSDK_DATA) = (uint8_t)c;
}

int uart_getc(void)
{
    while (!(UART(CMSDK_STATE) & CMSDK_STATE_RXFULL)) {
    }
    return (int)(UART(CMSDK_DATA) & 0xFFu);
}

#else /* STM32 USART / LPUART */

static void gpio_af(uint32_t gpio, uint32_t pin, uint32_t af)
{
    REG32(gpio + 0x00u) = (REG32(gpio + 0x00u) & ~(3u << (2u * pin))) | (2u << (2u * pin)); /* MODER: AF */
    REG32(gpio + 0x08u) |= (2u << (2u * pin));                                             /* OSPEEDR: high */
    REG32(gpio + 0x0Cu) = (REG32(gpio + 0x0Cu) & ~(3u << (2u * pin))) | (1u << (2u * pin)); /* PUPDR: pull-up */
    uint32_t afr = gpio + (pin < 8u ? 0x20u : 0x24u);
    uint32_t sh = 4u * (pin & 7u);
    REG32(afr) = (REG32(afr) & ~(0xFu << sh)) | (af << sh);
}

static void clocks_and_pins(void)
{
    REG32(TINYML_RCC_GPIO_EN_REG) |= (1u << TINYML_GPIO_TX_PORT) | (1u << TINYML_GPIO_RX_PORT);
#if TINYML_NEEDS_VDDIO2
    /* STM32L4+: port G pins are powered from VDDIO2, which must be declared valid. */
    REG32(TINYML_RCC_PWR_EN_REG) |= (1u << TINYML_RCC_PWR_EN_BIT);
    (void)REG32(TINYML_RCC_PWR_EN_REG);
    REG32(TINYML_PWR_CR2) |= (1u << 9);     /* IOSV */
#endif
    REG32(TINYML_RCC_UART_EN_REG) |= (1u << TINYML_RCC_UART_EN_BIT);
    (void)REG32(TINYML_RCC_UART_EN_REG);    /* read back: delay after clock enable */
    gpio_af(TINYML_GPIO_TX_BASE, TINYML_GPIO_TX_PIN, TINYML_UART_AF);
    gpio_af(TINYML_GPIO_RX_BASE, TINYML_GPIO_RX_PIN, TINYML_UART_AF);
}

#if TINYML_UART_SR
#define USART_SR 0x00u
#define USART_DR 0x04u
#define USART_BRR 0x08u
#define USART_CR1 0x0Cu
#define SR_TXE (1u << 7)
#define SR_RXNE (1u << 5)
#define SR_ORE (1u << 3)

void uart_init(void)
{
    clocks_and_pins();
    UART(USART_CR1) = 0u;
    UART(USART_BRR) = (clock_uart_hz() + TINYML_UART_BAUD / 2u) / TINYML_UART_BAUD;
    UART(USART_CR1) = (1u << 13) | (1u << 3) | (1u << 2);  /* UE | TE | RE */
}

void uart_putc(char c)
{
    while (!(UART(USART_SR) & SR_TXE)) {
    }
    UART(USART_DR) = (uint8_t)c;
}

int uart_getc(void)
{
    for (;;) {
        uint32_t sr = UART(USART_SR);
        if (sr & SR_RXNE) {
            return (int)(UART(USART_DR) & 0xFFu);
        }
        if (sr & SR_ORE) {
            (void)UART(USART_DR);           /* SR then DR read clears ORE */
        }
    }
}

#elif TINYML_UART_ISR
#define USART_CR1 0x00u
#define USART_BRR 0x0Cu
#define USART_ISR 0x1Cu
#define USART_ICR 0x20u
#define USART_RDR 0x24u
#define USART_TDR 0x28u
#define ISR_TXE (1u << 7)
#define ISR_RXNE (1u << 5)
#define ISR_ORE (1u << 3)

void uart_init(void)
{
    clocks_and_pins();
    UART(USART_CR1) = 0u;
#if TINYML_UART_LPUART
    UART(USART_BRR) = (uint32_t)(((uint64_t)clock_uart_hz() * 256u + TINYML_UART_BAUD / 2u) / TINYML_UART_BAUD);
#else
    UART(USART_BRR) = (clock_uart_hz() + TINYML_UART_BAUD / 2u) / TINYML_UART_BAUD;
#endif
    UART(USART_CR1) = (1u << 3) | (1u << 2) | (1u << 0);  /* TE | RE | UE */
}

void uart_putc(char c)
{
    while (!(UART(USART_ISR) & ISR_TXE)) {
    }
    UART(USART_TDR) = (uint8_t)c;
}

int uart_getc(void)
{
    for (;;) {
        uint32_t isr = UART(USART_ISR);
        if (isr & ISR_RXNE) {
            return (int)(UART(USART_RDR) & 0xFFu);
        }
        if (isr & ISR_ORE) {
            UART(USART_ICR) = ISR_ORE;      /* ORECF */
        }
    }
}
#else
#error "board_config.h must select TINYML_UART_SR, TINYML_UART_ISR or TINYML_UART_CMSDK"
#endif
#endif
