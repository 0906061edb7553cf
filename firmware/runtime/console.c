/* Console formatting without stdio (no heap, no buffering). */
#include <stdint.h>

#include "runtime.h"

void con_puts(const char *s)
{
    while (*s) {
        uart_putc(*s++);
    }
}

void con_nl(void) { con_puts("\r\n"); }

void con_putu64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    con_puts(&buf[i]);
}

void con_putu(uint32_t v) { con_putu64(v); }

void con_puti(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        con_putu64((uint64_t)(-(int64_t)v));
    } else {
        con_putu64((uint64_t)v);
    }
}

void con_puthex(uint32_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) {
        uart_putc(hex[(v >> (4 * i)) & 0xFu]);
    }
}

void con_putfix3(float v)
{
    /* Round to the nearest 1/1000, ties away from zero. */
    int neg = v < 0.0f;
    float a = neg ? -v : v;
    uint32_t milli = (uint32_t)(a * 1000.0f + 0.5f);
    if (neg && milli != 0u) {
        uart_putc('-');
    }
    con_putu(milli / 1000u);
    uart_putc('.');
    uint32_t frac = milli % 1000u;
    uart_putc((char)('0' + frac / 100u));
    uart_putc((char)('0' + (frac / 10u) % 10u));
    uart_putc((char)('0' + frac % 10u));
}
