/*
 * libFuzzer harness for the firmware's serial command parser
 * (app/serial_eembc.c, the MLPerf Tiny / EEMBC runner protocol).
 *
 * The parser is compiled unmodified: this file includes it, so its static
 * state can be reset before every input. The fuzzer's bytes are the UART's
 * receive stream; when they run out, uart_getc() jumps back here. Host stubs
 * stand in for the hardware: uart_putc() checks the reply framing instead of
 * writing a register, the timer counts calls, and the model (model.h in this
 * folder) reads its input and writes its output through separate globals so
 * AddressSanitizer sees any access outside them.
 *
 * Besides the sanitizers (ASan + UBSan, abort on the first report), every
 * input is checked against the protocol's invariants; a violation aborts:
 *   - every reply line starts with "m-" or "e-" and ends with "\r\n"
 *     (only the boot banner's first line is empty);
 *   - whenever the parser waits for the first byte of a command, its last
 *     line is "m-ready" and no line is half-written (the host sends the next
 *     command only after m-ready);
 *   - the image buffer's fill level never exceeds the announced load, and
 *     the announced load never exceeds the model's input size.
 *
 * `infer N W` runs the model N + W times by design; an input stops after
 * FUZZ_MAX_RUNS model runs so huge counts cost no time (not a finding).
 *
 * Build and run: python -m tinyml.testing.serial_fuzz (docs/architecture.md).
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serial_eembc.c"

#ifndef FUZZ_MAX_RUNS
#define FUZZ_MAX_RUNS 256
#endif
/* FUZZ_PLANTED_BUG=1 makes the output buffer one byte short of what the
 * parser prints: the self-check that the harness reports a real overflow. */
#ifndef FUZZ_PLANTED_BUG
#define FUZZ_PLANTED_BUG 0
#endif
#define FUZZ_LINE_MAX 512

static jmp_buf fuzz_env;
static const uint8_t *fuzz_data;
static size_t fuzz_size, fuzz_pos;
static int fuzz_at_command_start;
static char fuzz_line[FUZZ_LINE_MAX];
static size_t fuzz_line_len;
static int fuzz_lines, fuzz_last_ready;
static uint64_t fuzz_ticks;
static int fuzz_runs;

static int8_t fuzz_input[TINYML_INPUT_BYTES];
static int8_t fuzz_output[TINYML_OUTPUT_BYTES - FUZZ_PLANTED_BUG];

const tinyml_io_info_t tinyml_input_info[TINYML_NUM_INPUTS] = {
    {"input", TINYML_INPUT_BYTES, 4, {1, 6, 4, 1}, 0.5f, -3, 0u},
};
const tinyml_io_info_t tinyml_output_info[TINYML_NUM_OUTPUTS] = {
    {"output", TINYML_OUTPUT_BYTES, 2, {1, TINYML_OUTPUT_BYTES, 1, 1}, 0.25f, 7, 32u},
};

static void fuzz_fail(const char *what)
{
    fprintf(stderr, "serial_fuzz: protocol invariant broken: %s (last line: \"%.*s\")\n",
            what, (int)fuzz_line_len, fuzz_line);
    abort();
}

/* ---- hardware stubs ---------------------------------------------------- */

int uart_getc(void)
{
    if (fuzz_at_command_start) {
        if (fuzz_line_len != 0u) {
            fuzz_fail("waiting for a command with a reply line half-written");
        }
        if (!fuzz_last_ready) {
            fuzz_fail("waiting for a command without m-ready");
        }
    }
    if (fuzz_pos >= fuzz_size) {
        longjmp(fuzz_env, 1);
    }
    const int c = fuzz_data[fuzz_pos++];
    fuzz_at_command_start = (c == '%');
    return c;
}

void uart_putc(char c)
{
    if (c == '\n') {
        if (fuzz_line_len == 0u || fuzz_line[fuzz_line_len - 1u] != '\r') {
            fuzz_fail("line not ended by \\r\\n");
        }
        const size_t n = fuzz_line_len - 1u;
        if (n == 0u ? fuzz_lines != 0
                    : (n < 2u || (fuzz_line[0] != 'm' && fuzz_line[0] != 'e') || fuzz_line[1] != '-')) {
            fuzz_fail("reply line does not start with m- or e-");
        }
        fuzz_last_ready = (n == 7u && memcmp(fuzz_line, "m-ready", 7u) == 0);
        fuzz_line_len = 0u;
        ++fuzz_lines;
        return;
    }
    if (fuzz_line_len < FUZZ_LINE_MAX) {
        fuzz_line[fuzz_line_len] = c;
    }
    ++fuzz_line_len;   /* a line longer than the buffer is still counted */
}

uint64_t timer_ticks(void) { return fuzz_ticks += 1000u; }
uint32_t timer_hz(void) { return 1000000u; }

/* runtime/clock.c's `clock%` answer (the real one reads the RCC state). */
void clock_report(void)
{
    con_puts("m-clock-[1 MHz (fuzz); hz=1000000; timer=systick; board=fuzz; variant=native]");
    con_nl();
}

/* ---- model stub -------------------------------------------------------- */

void *tinyml_input_ptr(int index) { return index == 0 ? fuzz_input : NULL; }
void *tinyml_output_ptr(int index) { return index == 0 ? fuzz_output : NULL; }

int tinyml_run(void)
{
    if (++fuzz_runs > FUZZ_MAX_RUNS) {
        longjmp(fuzz_env, 2);
    }
    int32_t acc = 0;
#if TINYML_STREAM_INPUT
    static int8_t stripe[TINYML_STREAM_STRIPE_BYTES];
    for (int32_t s = 0; s < TINYML_STREAM_STRIPES; ++s) {
        if (tinyml_read_input_rows(stripe, s * TINYML_STREAM_ROWS, TINYML_STREAM_ROWS) != 0) {
            return -1;
        }
        for (int32_t i = 0; i < TINYML_STREAM_STRIPE_BYTES; ++i) {
            acc += stripe[i];
        }
    }
#else
    for (int32_t i = 0; i < TINYML_INPUT_BYTES; ++i) {
        acc += fuzz_input[i];
    }
#endif
    for (int32_t i = 0; i < TINYML_OUTPUT_BYTES - FUZZ_PLANTED_BUG; ++i) {
        fuzz_output[i] = (int8_t)(acc + i);
    }
    return 0;
}

/* ---- libFuzzer entry ----------------------------------------------------- */

static void fuzz_reset(const uint8_t *data, size_t size)
{
    memset(cmd, 0, sizeof cmd);
    memset(db_buf, 0, sizeof db_buf);
    db_expected = 0u;
    db_pos = 0u;
    have_results = 0;
#if TINYML_STREAM_INPUT && TINYML_MODE_SERIAL
    stream_from_uart = 0;
#endif
    fuzz_data = data;
    fuzz_size = size;
    fuzz_pos = 0u;
    fuzz_at_command_start = 1;
    fuzz_line_len = 0u;
    fuzz_lines = 0;
    fuzz_last_ready = 0;
    fuzz_ticks = 0u;
    fuzz_runs = 0;
    memset(fuzz_input, 0, sizeof fuzz_input);
    memset(fuzz_output, 0, sizeof fuzz_output);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reset(data, size);
    if (setjmp(fuzz_env) == 0) {
        serial_main();
    }
    if (db_pos > db_expected || db_expected > TINYML_INPUT_BYTES) {
        fuzz_fail("image buffer fill beyond the announced load or the input size");
    }
    return 0;
}
