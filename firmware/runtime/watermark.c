/* Stack and arena high-water marks by painting. */
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

extern uint32_t _sstack[], _estack[];
extern uint32_t _sdata[], _edata[], _sbss[], _ebss[];

uint32_t stack_reserved_bytes(void) { return (uint32_t)((uintptr_t)_estack - (uintptr_t)_sstack); }

uint32_t stack_high_water_bytes(void)
{
    const volatile uint32_t *p = _sstack;
    while (p < _estack && *p == TINYML_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)_estack - (uintptr_t)p);
}

void paint_bytes(void *p, size_t n, uint8_t pattern)
{
    volatile uint8_t *b = p;
    for (size_t i = 0; i < n; ++i) {
        b[i] = pattern;
    }
}

size_t high_water_bytes(const void *p, size_t n, uint8_t pattern)
{
    const volatile uint8_t *b = p;
    while (n > 0u && b[n - 1u] == pattern) {
        --n;
    }
    return n;
}

uint32_t static_ram_bytes(void)
{
    return (uint32_t)(((uintptr_t)_edata - (uintptr_t)_sdata) + ((uintptr_t)_ebss - (uintptr_t)_sbss));
}
