/*
 * Serial mode: the MLPerf Tiny / EEMBC runner protocol over the console UART.
 *
 * Commands end with '%'; CR/LF are ignored. Every command is answered by
 * zero or more `m-...` lines (or one `e-[...]` line on error) and `m-ready`.
 * At boot: m-timestamp-mode-performance (or -energy), a first timestamp,
 * m-init-done, m-ready.
 *
 *   name%            m-name-dut-[tinyml]
 *   profile%         m-profile-[...] m-model-[<TINYML_EEMBC_ID>]
 *   help%            the command list
 *   timestamp%       m-lap-us-<t> (energy builds: a pulse on the timestamp pin)
 *   clock%           m-clock-[216 MHz (PLL); hz=...; timer=dwt|systick; board=...; variant=...]
 *                    (the clock that runs, for the host's latency label; runtime/clock.c)
 *   db load N%       m-[Expecting N bytes]       (1 <= N <= TINYML_EEMBC_DB_BYTES, else e-[...])
 *   db <hex>%        appends bytes; m-load-done once N bytes arrived
 *   db print%        m-buffer-xx-xx-... (8 bytes per line)
 *   infer N W%       W warm-up runs, N timed runs: m-warmup-start-W, m-warmup-done,
 *                    m-infer-start-N, m-lap-us-<t0>, m-lap-us-<t1>, m-infer-done,
 *                    m-results-[...]
 *   results%         m-results-[...] of the last inference
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
 * MLPerf Tiny formats (tinyml/eembc.py picks them from the benchmark id; the
 * build passes them with -D):
 *   TINYML_EEMBC_ID      the id `profile%` reports (kws01, vww01, ic01, ad01;
 *                        default: the model name)
 *   TINYML_EEMBC_INPUT   what `db` bytes are: 0 the int8 input tensor as is
 *                        (kws01); 1 uint8 pixels, x - 128 on the device
 *                        (vww01, ic01: the reference th_load_tensor's shift);
 *                        2 little-endian float32 values, 4 bytes each,
 *                        quantized on the device (ad01)
 *   TINYML_EEMBC_RESULT  0 every dequantized output value, (q - zp) * scale,
 *                        3 decimals; 1 one anomaly score (ad01): the mean over
 *                        i of ((float)(q_i - zp) * scale - x_i)^2 in float, in
 *                        index order, printed with 3 decimals
 *   TINYML_EEMBC_ENERGY  1: `timestamp%` pulses the timestamp pin instead of
 *                        printing (the energy monitor timestamps the edge)
 * Conversions happen once per loaded input, before the timed loop, as the
 * reference firmware converts in th_load_tensor() before th_timestamp().
 *
 * TINYML_SERIAL_IMAGE_BYTES (default: the input size) sizes the image buffer
 * behind `db load`/`infer`. `tinyml build --mode serial --stream-input` sets
 * it to 0: no image buffer at all, `db load` is refused and images come
 * with `stream%` (the full image then never resides in SRAM).
 *
 * Bounds: a command longer than TINYML_CMD_MAX characters is discarded up to
 * its '%' and answered with e-[...]; the data buffer is exactly the wire size
 * of one input and loads beyond it are refused without writing.
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

#ifndef TINYML_EEMBC_ID
#define TINYML_EEMBC_ID TINYML_MODEL_NAME
#endif
#ifndef TINYML_EEMBC_INPUT
#define TINYML_EEMBC_INPUT 0
#endif
#ifndef TINYML_EEMBC_RESULT
#define TINYML_EEMBC_RESULT 0
#endif
#ifndef TINYML_EEMBC_ENERGY
#define TINYML_EEMBC_ENERGY 0
#endif
#if TINYML_EEMBC_INPUT < 0 || TINYML_EEMBC_INPUT > 2 || TINYML_EEMBC_RESULT < 0 || TINYML_EEMBC_RESULT > 1
#error "TINYML_EEMBC_INPUT must be 0, 1 or 2 and TINYML_EEMBC_RESULT 0 or 1"
#endif
#if TINYML_EEMBC_INPUT != 0 && TINYML_STREAM_INPUT
#error "--stream-input serial builds take the int8 input bytes (TINYML_EEMBC_INPUT 0)"
#endif
#if TINYML_EEMBC_RESULT == 1 && (TINYML_EEMBC_INPUT != 2 || TINYML_OUTPUT_BYTES != TINYML_INPUT_BYTES)
#error "the MSE score (TINYML_EEMBC_RESULT 1) needs float32 input and an output of the input's size"
#endif

/* Bytes of one input on the wire (what `db load N` may ask for). */
#if TINYML_EEMBC_INPUT == 2
#define TINYML_EEMBC_DB_BYTES (4u * (uint32_t)TINYML_INPUT_BYTES)
#else
#define TINYML_EEMBC_DB_BYTES ((uint32_t)TINYML_INPUT_BYTES)
#endif

static char cmd[TINYML_CMD_MAX + 1];
static uint8_t db_buf[TINYML_SERIAL_IMAGE_BYTES ? TINYML_EEMBC_DB_BYTES : 1u] __attribute__((aligned(4)));
static uint32_t db_expected, db_pos;
static int have_results;
#if TINYML_EEMBC_INPUT == 1
static int db_shifted;          /* db_buf holds x - 128 (converted for infer) */
#endif
#if TINYML_EEMBC_INPUT == 2
static int8_t db_quantized[TINYML_INPUT_BYTES];     /* the float window, quantized */
#endif

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

/* What the runner uses to time the inference loop: a line in performance
 * mode; in energy mode a falling edge on the timestamp pin (open drain, held
 * low for >= 1 us, then released), which the energy monitor records. */
static void timestamp(void)
{
#if TINYML_EEMBC_ENERGY
    eembc_timestamp_pulse();
#else
    lap();
#endif
}

static void help(void)
{
    static const char *const lines[] = {
        "name           device name",
        "profile        firmware profile and benchmark model id",
        "help           this list",
        "timestamp      a timestamp (performance: m-lap-us-<us>; energy: a pulse on the timestamp pin)",
        "db load N      expect N input bytes on the wire",
        "db HEX         append bytes (two hex digits each) until N arrived",
        "db print       the loaded bytes in hex",
        "infer N [W]    W warm-up runs, then N timed runs of the loaded input, then the results",
        "results        results of the last inference",
    };
    /* every reply line is an m- message (the protocol's framing, checked by firmware/fuzz) */
    con_puts("m-help-tinyml MLPerf Tiny firmware, model ");
    con_puts(TINYML_EEMBC_ID); con_nl();
    for (uint32_t i = 0; i < sizeof lines / sizeof lines[0]; ++i) {
        con_puts("m-help-"); con_puts(lines[i]); con_nl();
    }
}

#if TINYML_EEMBC_RESULT == 1
/* v with 3 decimals, rounded half away from zero: (double)v * 1000 is exact
 * (24-bit mantissa times 1000 fits 53 bits) and so is + 0.5 below 2^52, so the
 * digits are those of the exact binary value, rounded. Beyond 1e15: d.ddde<exp>. */
static void put_float3(float v)
{
    if (v != v) {
        con_puts("nan");
        return;
    }
    double a = v < 0.0f ? -(double)v : (double)v;
    if (v < 0.0f) {
        uart_putc('-');
    }
    if (a > 3.5e38) {
        con_puts("inf");
        return;
    }
    if (a >= 1.0e15) {
        uint32_t e = 0;
        while (a >= 10.0) {
            a /= 10.0;
            ++e;
        }
        uint32_t m = (uint32_t)(a * 1000.0 + 0.5);
        con_putu(m / 1000u); uart_putc('.');
        con_putu((m / 100u) % 10u); con_putu((m / 10u) % 10u); con_putu(m % 10u);
        uart_putc('e'); con_putu(e);
        return;
    }
    uint64_t milli = (uint64_t)(a * 1000.0 + 0.5);
    con_putu64(milli / 1000u);
    uart_putc('.');
    uint32_t frac = (uint32_t)(milli % 1000u);
    uart_putc((char)('0' + frac / 100u));
    uart_putc((char)('0' + (frac / 10u) % 10u));
    uart_putc((char)('0' + frac % 10u));
}

/* The anomaly score of the MLPerf Tiny AD reference (its calculate_result):
 * mean over i of (dequantized output_i - input float_i)^2, in float, summed in
 * index order (no FMA: -std=c99 keeps -ffp-contract=off). */
static float mse_score(void)
{
    const int8_t *out = (const int8_t *)tinyml_output_ptr(0);
    const float scale = tinyml_output_info[0].scale;
    const int32_t zp = tinyml_output_info[0].zero_point;
    float sum = 0.0f;
    for (uint32_t i = 0; i < TINYML_OUTPUT_BYTES; ++i) {
        float x;
        memcpy(&x, db_buf + 4u * i, sizeof x);
        const float diff = (float)((int32_t)out[i] - zp) * scale - x;
        sum += diff * diff;
    }
    return sum / (float)TINYML_OUTPUT_BYTES;
}
#endif

static void print_results(void)
{
    con_puts("m-results-[");
#if TINYML_EEMBC_RESULT == 1
    put_float3(mse_score());
#else
    const int8_t *out = (const int8_t *)tinyml_output_ptr(0);
    float scale = tinyml_output_info[0].scale;
    int32_t zp = tinyml_output_info[0].zero_point;
    for (uint32_t i = 0; i < TINYML_OUTPUT_BYTES; ++i) {
        if (i) {
            uart_putc(',');
        }
        con_putfix3(scale * (float)((int32_t)out[i] - zp));
    }
#endif
    con_puts("]"); con_nl();
}

#if TINYML_EEMBC_INPUT == 2
/* The reference's QuantizeFloatToInt8: round(x / scale) + zp, the quotient in
 * float, ties away from zero, clamped to int8. |x / scale| >= 256 clamps
 * whatever zp is; NaN gives 0 (what Arm's float-to-int conversion gives the
 * reference). */
static int8_t quantize_float(float x, float scale, int32_t zp)
{
    const float t = x / scale;
    int32_t r;
    if (t != t) {
        return 0;
    } else if (t >= 256.0f) {
        r = 256;
    } else if (t <= -256.0f) {
        r = -256;
    } else {
        r = (int32_t)t;                 /* toward zero; t - r is exact */
        const float f = t - (float)r;
        if (f >= 0.5f) {
            ++r;
        } else if (f <= -0.5f) {
            --r;
        }
    }
    r += zp;
    return (int8_t)(r < -128 ? -128 : (r > 127 ? 127 : r));
}
#endif

/* The loaded `db` bytes as the model's int8 input (converted once per load,
 * before any timing, as the reference's th_load_tensor). */
static const int8_t *input_tensor(void)
{
#if TINYML_EEMBC_INPUT == 1
    if (!db_shifted) {
        for (uint32_t i = 0; i < TINYML_INPUT_BYTES; ++i) {
            db_buf[i] ^= 0x80u;         /* (int8)(x - 128) for x in 0..255 */
        }
        db_shifted = 1;
    }
#elif TINYML_EEMBC_INPUT == 2
    const float scale = tinyml_input_info[0].scale;
    const int32_t zp = tinyml_input_info[0].zero_point;
    for (uint32_t i = 0; i < TINYML_INPUT_BYTES; ++i) {
        float x;
        memcpy(&x, db_buf + 4u * i, sizeof x);
        db_quantized[i] = quantize_float(x, scale, zp);
    }
    return db_quantized;
#endif
    return (const int8_t *)db_buf;
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
        char *count = next_token(&arg);
        int32_t n = parse_u(count);
        if (TINYML_SERIAL_IMAGE_BYTES == 0) {
            err("This build keeps no image buffer: send the image with 'stream'");
            return;
        }
        db_expected = 0u;               /* a refused load leaves no buffer to write */
        db_pos = 0u;
#if TINYML_EEMBC_INPUT == 1
        db_shifted = 0;
#endif
#if TINYML_EEMBC_RESULT == 1
        have_results = 0;               /* the score compares the output with the loaded window */
#endif
        if (count == NULL) {
            err("Command 'db load' requires the number of bytes");
        } else if (n == 0) {
            err("Command 'db load' must be >0 bytes");
        } else if (strspn(count, "0123456789") != strlen(count)) {
            con_puts("e-[db load "); con_puts(count); con_puts(" is not a number of bytes: the input takes 1 to ");
            con_putu(TINYML_EEMBC_DB_BYTES); con_puts(" bytes]"); con_nl();
        } else if (n < 0 || (uint32_t)n > TINYML_EEMBC_DB_BYTES) {
            /* beyond 2^31 - 1 (parse_u gives -1) or beyond the buffer: the range in one line */
            con_puts("e-[db load "); con_puts(count); con_puts(" is out of range: the input takes 1 to ");
            con_putu(TINYML_EEMBC_DB_BYTES); con_puts(" bytes]"); con_nl();
        } else {
            db_expected = (uint32_t)n;
            con_puts("m-[Expecting "); con_putu((uint32_t)n); con_puts(" bytes]"); con_nl();
        }
    } else if (strcmp(sub, "print") == 0) {
        for (uint32_t i = 0; i < db_pos; ++i) {
            if (i % 8u == 0u) {
                con_puts("m-buffer-");
            }
#if TINYML_EEMBC_INPUT == 1
            con_puthex((uint8_t)(db_shifted ? db_buf[i] ^ 0x80u : db_buf[i]), 2);   /* as loaded */
#else
            con_puthex(db_buf[i], 2);
#endif
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
                db_buf[db_pos++] = (uint8_t)((hexval(sub[i]) << 4) | hexval(sub[i + 1u]));
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
    memcpy(dst, (const int8_t *)db_buf + (uint32_t)row0 * TINYML_STREAM_ROW_BYTES, bytes);
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

static int run_once(const int8_t *input)
{
#if !TINYML_STREAM_INPUT
    /* The arena is reused by the plan, so the input is copied in every time. */
    memcpy(tinyml_input_ptr(0), input, TINYML_INPUT_BYTES);
#else
    (void)input;                /* the model reads db_buf through tinyml_read_input_rows */
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
    if (db_expected != TINYML_EEMBC_DB_BYTES || db_pos != db_expected) {
        err_u("Input not loaded: have ", db_pos, " of ", TINYML_EEMBC_DB_BYTES);
        return;
    }
    const int8_t *input = input_tensor();
    con_puts("m-warmup-start-"); con_putu((uint32_t)w); con_nl();
    for (int32_t i = 0; i < w; ++i) {
        (void)run_once(input);
    }
    con_puts("m-warmup-done"); con_nl();
    con_puts("m-infer-start-"); con_putu((uint32_t)n); con_nl();
    timestamp();
    int rc = 0;
    for (int32_t i = 0; i < n; ++i) {
        rc |= run_once(input);
    }
    timestamp();
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
        con_puts("m-model-[" TINYML_EEMBC_ID "]"); con_nl();
    } else if (strcmp(line, "help") == 0) {
        help();
    } else if (strcmp(line, "timestamp") == 0) {
        timestamp();
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
#if TINYML_EEMBC_ENERGY
    eembc_timestamp_pin_init();
    con_puts("m-timestamp-mode-energy"); con_nl();
#else
    con_puts("m-timestamp-mode-performance"); con_nl();
#endif
    timestamp();        /* the reference's first timestamp (energy: leaves the pin released) */
    con_puts("m-init-done"); con_nl();
    con_puts("m-ready"); con_nl();
    for (;;) {
        if (read_command() >= 0) {
            dispatch(cmd);
        }
    }
}
