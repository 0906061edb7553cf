/*
 * tinyml board runtime: startup, console UART, timer, watermarks, faults, exit.
 *
 * Everything is configured at build time by the generated board_config.h
 * (from boards/<board>.toml). No malloc, no interrupts other than SysTick.
 */
#ifndef TINYML_RUNTIME_H
#define TINYML_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "board_config.h"

/* ---- clock (clock.c) ---------------------------------------------------
 * clock_setup() starts the board's PLL (board_config.h TINYML_CLOCK_*) or,
 * when a ready flag does not come within TINYML_CLOCK_MAX_POLLS reads, stays
 * on the reset clock; everything timed or clocked afterwards (SysTick, DWT,
 * the console baud divisor) uses the frequencies it reports. */
typedef struct {
    uint32_t cpu_hz;        /* core clock that runs (SysTick / DWT count it) */
    uint32_t uart_hz;       /* console UART kernel clock that runs */
    uint32_t polls;         /* ready-flag reads spent */
    const char *source;     /* "PLL", or the reset clock: "HSI", "MSI", ... */
    const char *reason;     /* NULL on the PLL; else why not, e.g. "PLL not ready" */
} clock_state_t;

const clock_state_t *clock_setup(void);
const clock_state_t *clock_state(void);
uint32_t clock_cpu_hz(void);
uint32_t clock_uart_hz(void);
void clock_print(void);                 /* "216 MHz (PLL)" / "16 MHz (HSI, PLL not ready)" */
/* One protocol line for the host (`clock%`): m-clock-[<clock_print>; hz=H; timer=dwt|systick;
 * board=B; variant=V]. */
void clock_report(void);

/* ---- console (UART) ------------------------------------------------- */
void uart_init(void);
void uart_putc(char c);
/* Blocking read of one byte. */
int uart_getc(void);

void con_puts(const char *s);           /* string as is */
void con_putu(uint32_t v);              /* unsigned decimal */
void con_putu64(uint64_t v);
void con_puti(int32_t v);               /* signed decimal */
void con_puthex(uint32_t v, int digits);/* lowercase hex, zero padded */
void con_putfix3(float v);              /* fixed point with 3 decimals, e.g. -0.125 */
void con_nl(void);                      /* "\r\n" */

/* ---- timer ------------------------------------------------------------
 * A free-running 64-bit tick counter at timer_hz(): DWT CYCCNT when the core
 * has one that counts, SysTick on the processor clock otherwise. */
void timer_init(void);
uint64_t timer_ticks(void);
uint32_t timer_hz(void);
const char *timer_source(void);         /* "dwt" | "systick" */

/* ---- watermarks -------------------------------------------------------
 * The stack is painted at reset; the arena is painted by the app before a
 * run. High-water = bytes that no longer hold the paint. */
#define TINYML_STACK_PAINT 0xDEADBEEFu
uint32_t stack_reserved_bytes(void);
uint32_t stack_high_water_bytes(void);
void paint_bytes(void *p, size_t n, uint8_t pattern);
/* Highest byte (+1) of [p, p+n) that does not equal pattern. */
size_t high_water_bytes(const void *p, size_t n, uint8_t pattern);
uint32_t static_ram_bytes(void);        /* .data + .bss (arena and stack excluded) */

/* ---- exit -------------------------------------------------------------
 * Semihosting SYS_EXIT when a debugger/emulator services it (QEMU with
 * -semihosting-config enable=on); otherwise park the core. */
void semihost_probe(void);
int semihost_available(void);
void board_exit(int code) __attribute__((noreturn));

void app_main(void) __attribute__((noreturn));

#endif /* TINYML_RUNTIME_H */
