/*
 * Serial mode: the MLPerf Tiny / EEMBC runner protocol over the console UART.
 *
 * Commands end with '%'; CR/LF are ignored. Every command is answered by
 * zero or more `m-...` lines (or one `e-[...]` line on error) and `m-ready`.
 *
 *   name%            m-name-dut-[tinyml]
 *   profile%         m-profile-[...] m-model-[<model>]
 *   timestamp%       m-lap-us-<t>
 *   clock%           m-clock-[216 MHz (PLL); hz=...; timer=dwt|systick; board=...; variant=...]
 *                    (the clock that runs, for the host's latency label; runtime/clock.c)
 *   db load N%       m-[Expecting N bytes]       (N <= input bytes, else e-[...])
 *   db <hex>%        appends bytes; m-load-done once N bytes arrived
 *   db print%        m-buffer-xx-xx-... (8 bytes per line)
 *   infer N W%       W warm-up runs, N timed runs: m-warmup-start-W, m-warmup-done,
 *                    m-infer-start-N, m-lap-us-<t0>, m-lap-us-<t1>, m-infer-done,
 *                    m-results-[...]
 *   results%         m-results-[...] of the last inference (dequantized output 0)
 *   stream%          --stream-input builds only: one inference on an image received
 *                    in row stripes while the model runs (no image buffer needed):
 *                    m-stream-start-<stripes>-<stripe bytes>, then per stripe
 *                    m-stripe-<row0>-<bytes> m-ready, answered by `db <hex>%`
 *                    commands until the stripe is full (each answered m-ready,
 *                    the last by the next m-stripe request or, after the last
 *                    stripe, by m-lap-us-<t1> (UART time included),
 *                    m-results-[...], m-ready). Any other command mid-stream
 *                    aborts the run (e-[Stream aborted...], e-[tinyml_run...]).
 *
 * TINYML_SERIAL_IMAGE_BYTES (default: the input size) sizes the image buffer
 * behind `db load`/`infer`. `tinyml build --mode serial --stream-input` sets
 * it to 0: no image buffer at all, `db load` is refused and images come
 * with `stream%` (the full image then never resides in SRAM).
 *
 * Bounds: a command longer than TINYML_CMD_MAX characters is discarded up to
 * its '%' and answered with e-[...]; the data buffer is exactly the model's
 * input size and loads beyond it are refused without writing.
 */
#include <stdint.h>
#include <string.h>

#include "app.h"
#include "model.h"
#include "runtime.h"

#ifndef TINYML_CMD_MAX
#define TINYML_CMD_MAX 128
#endif

#ifndef TINYML_SERIAL_IMAGE_BYTES
#define TINYML_SERIAL_IMAGE_BYTES TINYML_INPUT_BYTES
#endif
#if TINYML_SERIAL_IMAGE_BYTES != 0 && TINYML_SERIAL_IMAGE_BYTES != TINYML_INPUT_BYTES
#error "TINYML_SERIAL_IMAGE_BYTES must be 0 or the model input size"
#endif
#if TINYML_SERIAL_IMAGE_BYTES == 0 && !TINYML_STREAM_INPUT
#error "TINYML_SERIAL_IMAGE_BYTES=0 needs a --stream-input model"
#endif

static char cmd[TINYML_CMD_MAX + 1];
static int8_t db_buf[TINYML_SERIAL_IMAGE_BYTES ? TINYML_SERIAL_IMAGE_BYTES : 1];
static uint32_t db_expected, db_pos;
static int have_results;

static void err(const char *msg)
{
    con_puts("e-["); con_puts(msg); con_puts("]"); con_nl();
}

static void err_u(const char *msg, uint32_t a, const char *msg2, uint32_t b)
{
    con_puts("e-["); con_puts(msg); con_putu(a); con_puts(msg2); con_putu(b); con_puts("]"); con_nl();
}

/* Decimal 0..2^31-1; returns -1 for empty, non-digit or too large. */
static int32_t parse_u(const char *s)
{
    if (s == NULL || *s == '\0') {
        return -1;
    }
    int32_t v = 0;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9' || v > 214748363) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint64_t micros(void)
{
    return timer_ticks() * 1000000u / timer_hz();
}

static void lap(void)
{
    con_puts("m-lap-us-"); con_putu64(micros()); con_nl();
}

static void print_results(void)
{
    const int8_t *out = (const int8_t *)tinyml_output_ptr(0);
    float scale = tinyml_output_info[0].scale;
    int32_t zp = tinyml_output_info[0].zero_point;
    con_puts("m-results-[");
    for (uint32_t i = 0; i < TINYML_OUTPUT_BYTES; ++i) {
        if (i) {
            uart_putc(',');
        }
        con_putfix3(scale * (float)((int32_t)out[i] - zp));
    }
    con_puts("]"); con_nl();
}

/* After a run: the error, or the results (kept for `results%`). */
static void finish_run(int rc)
{
    if (rc != 0) {
        con_puts("e-[tinyml_run returned "); con_puti(rc); con_puts("]"); con_nl();
        have_results = 0;
        return;
    }
    have_results = 1;
    print_results();
}

/* Next space-separated token of *p (NUL-terminated in place), or NULL.
 * Not strtok: newlib keeps strtok's state in a lazily malloc'ed
 * reentrancy block, and this firmware has no heap. */
static char *next_token(char **p)
{
    char *s = *p;
    while (*s == ' ') {
        ++s;
    }
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    char *tok = s;
    while (*s != '\0' && *s != ' ') {
        ++s;
    }
    if (*s == ' ') {
        *s++ = '\0';
    }
    *p = s;
    return tok;
}

static void cmd_db(char *arg)
{
    char *sub = next_token(&arg);
    if (sub == NULL) {
        err("Command 'db' requires a subcommand");
    } else if (strcmp(sub, "load") == 0) {
        int32_t n = parse_u(next_token(&arg));
        if (TINYML_SERIAL_IMAGE_BYTES == 0) {
            err("This build keeps no image buffer: send the image with 'stream'");
        } else if (n <= 0) {
            err("Command 'db load' requires a byte count > 0");
        } else if ((uint32_t)n > TINYML_INPUT_BYTES) {
            db_expected = 0u;
            db_pos = 0u;
            err_u("db load ", (uint32_t)n, " bytes exceeds the model input size ", TINYML_INPUT_BYTES);
        } else {
            db_expected = (uint32_t)n;
            db_pos = 0u;
            con_puts("m-[Expecting "); con_putu((uint32_t)n); con_puts(" bytes]"); con_nl();
        }
    } else if (strcmp(sub, "print") == 0) {
        for (uint32_t i = 0; i < db_pos; ++i) {
            if (i % 8u == 0u) {
                con_puts("m-buffer-");
            }
            con_puthex((uint8_t)db_buf[i], 2);
            if ((i + 1u) % 8u == 0u || i + 1u == db_pos) {
                con_nl();
            } else {
                uart_putc('-');
            }
        }
    } else {
        size_t len = strlen(sub);
        if (db_expected == 0u) {
            err("No buffer: send 'db load N' first");
        } else if (len % 2u != 0u) {
            err("Odd number of hex digits");
        } else if (db_pos + len / 2u > db_expected) {
            err_u("Too many bytes: buffer holds ", db_expected, ", would reach ", db_pos + (uint32_t)(len / 2u));
        } else {
            for (size_t i = 0; i < len; i += 2u) {
                if (hexval(sub[i]) < 0 || hexval(sub[i + 1u]) < 0) {
                    err("Invalid hex digit");
                    return;
                }
            }
            for (size_t i = 0; i < len; i += 2u) {
                db_buf[db_pos++] = (int8_t)((hexval(sub[i]) << 4) | hexval(sub[i + 1u]));
            }
            if (db_pos == db_expected) {
                con_puts("m-load-done"); con_nl();
            }
        }
    }
}

/* One '%'-terminated command from the UART into cmd (CR/LF dropped).
 * Returns its length, or -1 if it was longer than TINYML_CMD_MAX (then the
 * error is already answered and the caller reads the next one). */
static int32_t read_command(void)
{
    size_t len = 0;
    int overflow = 0;
    for (;;) {
        int c = uart_getc();
        if (c == '%') {
            if (overflow) {
                err_u("Command too long: limit ", TINYML_CMD_MAX, " characters, got ", (uint32_t)len);
                con_puts("m-ready"); con_nl();
                return -1;
            }
            cmd[len] = '\0';
            return (int32_t)len;
        } else if (c == '\r' || c == '\n') {
            continue;
        } else if (len < TINYML_CMD_MAX) {
            cmd[len++] = (char)c;
        } else {
            overflow = 1;
            if (len < 0xFFFFFFFFu) {
                ++len;      /* count only; nothing is stored past the buffer */
            }
        }
    }
}

#if TINYML_STREAM_INPUT && TINYML_MODE_SERIAL
static int stream_from_uart;    /* 1 during `stream`: stripes come over the UART */

/* Fill dst with `bytes` bytes sent as `db <hex>%` commands; 0 on success. */
static int32_t receive_stripe(int8_t *dst, uint32_t bytes)
{
    uint32_t got = 0;
    while (got < bytes) {
        if (read_command() < 0) {
            continue;
        }
        char *arg = cmd;
        char *c0 = next_token(&arg);
        char *hex = next_token(&arg);
        if (c0 == NULL || strcmp(c0, "db") != 0 || hex == NULL || next_token(&arg) != NULL) {
            err("Stream aborted: expected 'db <hex>' with the next stripe bytes");
            return 1;
        }
        size_t len = strlen(hex);
        if (len % 2u != 0u || got + len / 2u > bytes) {
            err_u("Stream aborted: stripe holds ", bytes, " bytes, would reach ", got + (uint32_t)(len / 2u));
            return 1;
        }
        for (size_t i = 0; i < len; i += 2u) {
            if (hexval(hex[i]) < 0 || hexval(hex[i + 1u]) < 0) {
                err("Stream aborted: invalid hex digit");
                return 1;
            }
        }
        for (size_t i = 0; i < len; i += 2u) {
            dst[got++] = (int8_t)((hexval(hex[i]) << 4) | hexval(hex[i + 1u]));
        }
        if (got < bytes) {
            con_puts("m-ready"); con_nl();
        }
        /* the stripe's last chunk is answered by what follows: the next
         * m-stripe request or the results, each ending in m-ready */
    }
    return 0;
}

/* --stream-input: stripes come from the UART during `stream`, else from
 * db_buf (`infer`, which runs the loaded image N times). */
int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows)
{
    if (!TINYML_STRIPE_VALID(row0, nrows)) {
        return 1;
    }
    const uint32_t bytes = (uint32_t)nrows * TINYML_STREAM_ROW_BYTES;
    if (stream_from_uart) {
        con_puts("m-stripe-"); con_putu((uint32_t)row0); con_puts("-"); con_putu(bytes); con_nl();
        con_puts("m-ready"); con_nl();
        return receive_stripe(dst, bytes);
    }
    if (TINYML_SERIAL_IMAGE_BYTES == 0) {
        return 1;
    }
    memcpy(dst, db_buf + (uint32_t)row0 * TINYML_STREAM_ROW_BYTES, bytes);
    return 0;
}

static void cmd_stream(void)
{
    con_puts("m-stream-start-"); con_putu(TINYML_STREAM_STRIPES);
    con_puts("-"); con_putu(TINYML_STREAM_STRIPE_BYTES); con_nl();
    stream_from_uart = 1;
    lap();
    const int rc = tinyml_run();
    lap();
    stream_from_uart = 0;
    finish_run(rc);
}
#endif

static int run_once(void)
{
#if !TINYML_STREAM_INPUT
    /* The arena is reused by the plan, so the input is copied in every time. */
    memcpy(tinyml_input_ptr(0), db_buf, TINYML_INPUT_BYTES);
#endif
    return tinyml_run();
}

static void cmd_infer(char *arg)
{
    char *a = next_token(&arg);
    char *b = next_token(&arg);
    int32_t n = a ? parse_u(a) : 1;
    int32_t w = b ? parse_u(b) : 0;
    if (n <= 0 || w < 0) {
        err("Usage: infer N [W] with N > 0 runs and W >= 0 warm-up runs");
        return;
    }
    if (db_expected != TINYML_INPUT_BYTES || db_pos != db_expected) {
        err_u("Input not loaded: have ", db_pos, " of ", TINYML_INPUT_BYTES);
        return;
    }
    con_puts("m-warmup-start-"); con_putu((uint32_t)w); con_nl();
    for (int32_t i = 0; i < w; ++i) {
        (void)run_once();
    }
    con_puts("m-warmup-done"); con_nl();
    con_puts("m-infer-start-"); con_putu((uint32_t)n); con_nl();
    lap();
    int rc = 0;
    for (int32_t i = 0; i < n; ++i) {
        rc |= run_once();
    }
    lap();
    con_puts("m-infer-done"); con_nl();
    finish_run(rc);
}

static void dispatch(char *line)
{
    char *sp = strchr(line, ' ');
    char *rest = "";
    if (sp) {
        *sp = '\0';
        rest = sp + 1;
    }
    if (strcmp(line, "name") == 0) {
        con_puts("m-name-dut-[tinyml]"); con_nl();
    } else if (strcmp(line, "profile") == 0) {
        con_puts("m-profile-[tinyml MLPerf Tiny runner, board " TINYML_BOARD_NAME "]"); con_nl();
        con_puts("m-model-[" TINYML_MODEL_NAME "]"); con_nl();
    } else if (strcmp(line, "timestamp") == 0) {
        lap();
    } else if (strcmp(line, "clock") == 0) {
        clock_report();
    } else if (strcmp(line, "db") == 0) {
        cmd_db(rest);
    } else if (strcmp(line, "infer") == 0) {
        cmd_infer(rest);
    } else if (strcmp(line, "stream") == 0) {
#if TINYML_STREAM_INPUT && TINYML_MODE_SERIAL
        cmd_stream();
#else
        err("Command 'stream' needs a --stream-input build");
#endif
    } else if (strcmp(line, "results") == 0) {
        if (have_results) {
            print_results();
        } else {
            err("No results: run 'infer' first");
        }
    } else if (line[0] != '\0') {
        con_puts("e-[Unknown command: "); con_puts(line); con_puts("]"); con_nl();
    }
    con_puts("m-ready"); con_nl();
}

void serial_main(void)
{
    con_nl();
    con_puts("m-init-done"); con_nl();
    con_puts("m-ready"); con_nl();
    for (;;) {
        if (read_command() >= 0) {
            dispatch(cmd);
        }
    }
}
