/*
 * Self-test: run every embedded vector, compare output 0 byte for byte with
 * the TFLite-reference output, and report (one `key=value` line each):
 *
 *   tinyml-selftest model=... board=... variant=... vectors=N
 *   timer source=systick|dwt hz=H
 *   vector I PASS ticks=T            (or FAIL rc=R mismatches=M first=J got=G want=W)
 *   memory arena_bytes=A arena_used=U stack_bytes=S stack_used=K static_ram=D
 *   RESULT PASS | RESULT FAIL
 *
 * Arena high-water: the arena is painted 0xA5 before vector 0 and 0x5A
 * before a second run of vector 0; a byte the model writes cannot hold both
 * paints (the run is deterministic), so max(high-water) is exact.
 */
#include <string.h>

#include "app.h"
#include "model.h"
#include "runtime.h"
#if TINYML_PROFILE
#include "profile.h"
#endif

#if TINYML_STREAM_INPUT
/* --stream-input: the model pulls the image in row stripes; they are copied
 * from the current vector in flash, standing in for a camera or UART driver
 * that delivers rows as they arrive. NULL: an all-zero image. */
static const int8_t *stream_src;

#if !TINYML_MODE_SERIAL
int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows)
{
    if (!TINYML_STRIPE_VALID(row0, nrows)) {
        return 1;
    }
    const uint32_t n = (uint32_t)nrows * TINYML_STREAM_ROW_BYTES;
    if (stream_src) {
        memcpy(dst, stream_src + (uint32_t)row0 * TINYML_STREAM_ROW_BYTES, n);
    } else {
        memset(dst, 0, n);
    }
    return 0;
}
#endif
#endif

void selftest_set_input(const int8_t *src)
{
#if TINYML_STREAM_INPUT
    stream_src = src;
#else
    if (src) {
        memcpy(tinyml_input_ptr(0), src, TINYML_INPUT_BYTES);
    } else {
        memset(tinyml_input_ptr(0), 0, TINYML_INPUT_BYTES);
    }
#endif
}

static void run_vector(uint32_t i, int *failed, uint64_t *ticks)
{
    const tinyml_vector_t *v = &tinyml_test_vectors[i];
    if (v->input_bytes != TINYML_INPUT_BYTES || v->expected_bytes != TINYML_OUTPUT_BYTES) {
        con_puts("vector "); con_putu(i); con_puts(" FAIL size-mismatch"); con_nl();
        *failed = 1;
        return;
    }
    selftest_set_input(v->input);
    uint64_t t0 = timer_ticks();
    int rc = tinyml_run();
    uint64_t t1 = timer_ticks();
    *ticks = t1 - t0;
    const int8_t *out = (const int8_t *)tinyml_output_ptr(0);
    uint32_t mismatches = 0;
    int32_t first = -1;
    for (uint32_t k = 0; k < TINYML_OUTPUT_BYTES; ++k) {
        if (out[k] != v->expected[k]) {
            if (first < 0) {
                first = (int32_t)k;
            }
            ++mismatches;
        }
    }
    con_puts("vector "); con_putu(i);
    if (rc == 0 && mismatches == 0u) {
        con_puts(" PASS ticks="); con_putu64(*ticks);
    } else {
        *failed = 1;
        con_puts(" FAIL rc="); con_puti(rc);
        con_puts(" mismatches="); con_putu(mismatches);
        if (first >= 0) {
            con_puts(" first="); con_puti(first);
            con_puts(" got="); con_puti(out[first]);
            con_puts(" want="); con_puti(v->expected[first]);
        }
        con_puts(" ticks="); con_putu64(*ticks);
    }
    con_nl();
}

/* Further models linked into the firmware (libraries generated with their own
 * --prefix into model_<name>/) run their self-test here, after the main model's;
 * the application that links them defines this and returns non-zero on failure. */
__attribute__((weak)) int selftest_more_models(void)
{
    return 0;
}

void selftest_main(void)
{
    int failed = 0;
    uint64_t ticks = 0;
    con_nl();
    con_puts("tinyml-selftest model=" TINYML_MODEL_NAME " board=" TINYML_BOARD_NAME
             " variant=" TINYML_VARIANT " vectors=");
    con_putu(tinyml_num_test_vectors); con_nl();
    con_puts("timer source="); con_puts(timer_source());
    con_puts(" hz="); con_putu(timer_hz()); con_nl();

#if TINYML_SELFTEST_FAULT
    /* Test hook: an undefined instruction (UsageFault, escalated to HardFault). */
    __asm volatile ("udf #0");
#endif
#if TINYML_SELFTEST_HANG
    /* Test hook: never finish (the emulator's timeout must end the run). */
    for (;;) {
    }
#endif
    uint8_t *arena = tinyml_arena;
    paint_bytes(arena, TINYML_ARENA_BYTES, 0xA5u);
    size_t used = 0;
    if (tinyml_num_test_vectors == 0u) {
        /* No vectors: one timed run on a zero input, nothing to compare. */
        selftest_set_input(NULL);
        uint64_t t0 = timer_ticks();
        int rc = tinyml_run();
        ticks = timer_ticks() - t0;
        con_puts("run rc="); con_puti(rc); con_puts(" ticks="); con_putu64(ticks); con_nl();
        failed = rc != 0;
        used = high_water_bytes(arena, TINYML_ARENA_BYTES, 0xA5u);
    } else {
        for (uint32_t i = 0; i < tinyml_num_test_vectors; ++i) {
            run_vector(i, &failed, &ticks);
            if (i == 0u) {
                used = high_water_bytes(arena, TINYML_ARENA_BYTES, 0xA5u);
            }
        }
        paint_bytes(arena, TINYML_ARENA_BYTES, 0x5Au);
        selftest_set_input(tinyml_test_vectors[0].input);
        (void)tinyml_run();
        size_t used2 = high_water_bytes(arena, TINYML_ARENA_BYTES, 0x5Au);
        if (used2 > used) {
            used = used2;
        }
    }
    if (selftest_more_models() != 0) {
        failed = 1;
    }
#if TINYML_PROFILE
    if (tinyml_num_test_vectors > 0u) {
        tinyml_prof_report(tinyml_test_vectors[0].input);
    } else {
        tinyml_prof_report(NULL);
    }
#endif
    con_puts("memory arena_bytes="); con_putu(TINYML_ARENA_BYTES);
    con_puts(" arena_used="); con_putu((uint32_t)used);
    con_puts(" stack_bytes="); con_putu(stack_reserved_bytes());
    con_puts(" stack_used="); con_putu(stack_high_water_bytes());
    con_puts(" static_ram="); con_putu(static_ram_bytes());
    con_nl();
    con_puts(failed ? "RESULT FAIL" : "RESULT PASS");
    con_nl();
    board_exit(failed ? 1 : 0);
}
