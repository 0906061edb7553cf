/*
 * Scripted register model for tests/test_firmware_clock.py.
 *
 * Registers are plain structs (address, value) with reset values given by the
 * test (model_cfg.h). Ready flags are scripted: a rule makes the masked bits
 * of a status register read `ready` once its condition (bits of a control
 * register) holds and `after` further reads of the status register have
 * passed; `after` < 0 means never. A mirror rule copies a control field to a
 * status field (SW -> SWS) the same way. Everything the clock code writes is
 * logged; the program prints the log, the final registers, the reads spent
 * on each rule and the clock state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

typedef struct {
    uint32_t addr;
    uint32_t value;
} reg_t;

typedef struct {
    uint32_t status_addr, status_mask, ready, not_ready;
    uint32_t cond_addr, cond_mask, cond_value;
    int after;                  /* reads after the condition holds; < 0: never */
    int mirror_shift;           /* > 0: ready = (cond register & cond_mask) << shift */
    uint32_t reads;             /* reads of status_addr while the condition held */
    uint32_t since;             /* of which since the condition (or the mirrored field) last changed */
} rule_t;

#include "model_cfg.h"          /* MODEL_REGS[], MODEL_RULES[] */

#define NREGS (sizeof(MODEL_REGS) / sizeof(MODEL_REGS[0]))
#define NRULES (sizeof(MODEL_RULES) / sizeof(MODEL_RULES[0]))

static reg_t *find(uint32_t addr)
{
    for (size_t i = 0; i < NREGS; ++i) {
        if (MODEL_REGS[i].addr == addr) {
            return &MODEL_REGS[i];
        }
    }
    printf("UNMODELLED 0x%08x\n", (unsigned)addr);
    exit(3);
}

uint32_t model_rd(uint32_t addr)
{
    reg_t *r = find(addr);
    uint32_t v = r->value;
    for (size_t i = 0; i < NRULES; ++i) {
        rule_t *u = &MODEL_RULES[i];
        if (u->status_addr != addr) {
            continue;
        }
        uint32_t c = find(u->cond_addr)->value & u->cond_mask;
        uint32_t ready = u->ready;
        int holds = u->mirror_shift > 0 ? 1 : c == u->cond_value;
        if (u->mirror_shift > 0) {
            ready = c << u->mirror_shift;
        }
        int is_ready = 0;
        if (holds) {
            u->reads++;
            u->since++;
            is_ready = u->after >= 0 && u->since > (uint32_t)u->after;
        }
        v = (v & ~u->status_mask) | (is_ready ? ready : u->not_ready);
    }
    return v;
}

void model_wr(uint32_t addr, uint32_t v)
{
    reg_t *r = find(addr);
    uint32_t old = r->value;
    r->value = v;
    printf("W 0x%08x 0x%08x\n", (unsigned)addr, (unsigned)v);
    for (size_t i = 0; i < NRULES; ++i) {
        rule_t *u = &MODEL_RULES[i];
        if (u->mirror_shift > 0 && u->cond_addr == addr && ((old ^ v) & u->cond_mask)) {
            u->since = 0;               /* a new switch request */
        }
    }
}

/* Console stand-ins for clock_print(). */
void uart_putc(char c) { putchar(c); }
void con_puts(const char *s) { fputs(s, stdout); }
void con_putu(uint32_t v) { printf("%u", (unsigned)v); }
void con_nl(void) { putchar('\n'); }
const char *timer_source(void) { return "dwt"; }

int main(void)
{
    const clock_state_t *s = clock_setup();
    for (size_t i = 0; i < NRULES; ++i) {
        printf("P %u %u\n", (unsigned)i, (unsigned)MODEL_RULES[i].reads);
    }
    /* Final values as software reads them (status bits included). */
    for (size_t i = 0; i < NREGS; ++i) {
        printf("R 0x%08x 0x%08x\n", (unsigned)MODEL_REGS[i].addr, (unsigned)model_rd(MODEL_REGS[i].addr));
    }
    printf("S %u %u %u\n", (unsigned)s->cpu_hz, (unsigned)s->uart_hz, (unsigned)s->polls);
    printf("B ");
    clock_print();
    printf("\n");
    clock_report();
    return 0;
}
