/* Per-op profiling (see profile.h); empty unless TINYML_PROFILE. */
#if TINYML_PROFILE
#include <string.h>

#include "app.h"
#include "model.h"
#include "profile.h"
#include "runtime.h"

#define PROF_MAX_STEPS 1024

typedef struct {
    int32_t index;
    const char *kind;
    uint32_t ticks;
} prof_entry;

static prof_entry entries[PROF_MAX_STEPS];
static uint32_t count;
static int recording;
static uint64_t t_begin;

void tinyml_prof_begin(int32_t index, const char *kind)
{
    if (recording && count < PROF_MAX_STEPS) {
        entries[count].index = index;
        entries[count].kind = kind;
        t_begin = timer_ticks();
    }
}

void tinyml_prof_end(int32_t index)
{
    if (recording && count < PROF_MAX_STEPS) {
        const uint64_t t = timer_ticks();
        entries[count].ticks = (uint32_t)(t - t_begin);
        ++count;
    }
}

void tinyml_prof_report(const int8_t *input)
{
    /* Cost of an empty begin/end pair (minimum over a few tries). */
    uint32_t overhead = UINT32_MAX;
    recording = 1;
    for (int k = 0; k < 8; ++k) {
        count = 0;
        tinyml_prof_begin(-1, "");
        tinyml_prof_end(-1);
        if (entries[0].ticks < overhead) {
            overhead = entries[0].ticks;
        }
    }
    count = 0;
    selftest_set_input(input);
    const uint64_t t0 = timer_ticks();
    (void)tinyml_run();
    const uint64_t total = timer_ticks() - t0;
    recording = 0;
    for (uint32_t s = 0; s < count; ++s) {
        const uint32_t t = entries[s].ticks > overhead ? entries[s].ticks - overhead : 0u;
        con_puts("prof slot="); con_putu(s);
        con_puts(" op="); con_puti(entries[s].index);
        con_puts(" kind="); con_puts(entries[s].kind);
        con_puts(" ticks="); con_putu(t);
        con_nl();
    }
    con_puts("prof overhead="); con_putu(overhead);
    con_puts(" steps="); con_putu(count);
    con_puts(" total="); con_putu64(total);
    con_nl();
}
#endif
