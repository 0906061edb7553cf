/* Host harness for `tinyml verify`: runs the generated model on inputs read
 * from a file and writes the outputs to another.
 *
 * usage: host_main COUNT INPUTS.bin OUTPUTS.bin
 * INPUTS.bin holds COUNT records, each the model's inputs back to back;
 * OUTPUTS.bin receives COUNT records of the model's outputs. Records run in
 * sequence, so op state (LSTM, SVDF) carries from one to the next; with the
 * environment variable TINYML_RESET_EVERY=K the harness calls tinyml_reset()
 * before every K-th record (K, 2K, ...): sequences of K invokes each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#if TINYML_STREAM_INPUT
/* --stream-input: the model pulls the image in row stripes; serve them from
 * the record just read, checking that the rows come in order and in range. */
static int8_t *stream_image;
static int32_t stream_next_row;
static int32_t stream_calls;

int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows)
{
    const int32_t rows = tinyml_input_info[0].bytes / TINYML_STREAM_ROW_BYTES;
    if (row0 != stream_next_row || nrows < 1 || nrows > TINYML_STREAM_ROWS || row0 + nrows > rows) {
        fprintf(stderr, "host_main: bad stripe request rows %d+%d (expected row %d)\n",
                (int)row0, (int)nrows, (int)stream_next_row);
        return 1;
    }
    memcpy(dst, stream_image + (size_t)row0 * TINYML_STREAM_ROW_BYTES, (size_t)nrows * TINYML_STREAM_ROW_BYTES);
    stream_next_row = row0 + nrows;
    ++stream_calls;
    return 0;
}
#endif

#ifdef TINYML_TRACE
/* Built with -DTINYML_TRACE -D'TINYML_OP_END(i)=tinyml_trace_op(i)': after
 * each op, append its output tensors to the trace file (env TINYML_TRACE_FILE). */
static FILE *trace_file;

void tinyml_trace_op(int op)
{
    if (!trace_file) {
        return;
    }
    for (const tinyml_trace_entry_t *e = tinyml_trace_table; e->op >= 0; ++e) {
        if (e->op == op) {
            fwrite(&e->tensor, sizeof(e->tensor), 1, trace_file);
            fwrite(&e->bytes, sizeof(e->bytes), 1, trace_file);
            fwrite(tinyml_arena + e->arena_offset, 1, (size_t)e->bytes, trace_file);
        }
    }
}
#endif

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s COUNT INPUTS.bin OUTPUTS.bin\n", argv[0]);
        return 2;
    }
    const long count = strtol(argv[1], NULL, 10);
    FILE *in = fopen(argv[2], "rb");
    FILE *out = fopen(argv[3], "wb");
    if (!in || !out) {
        fprintf(stderr, "host_main: cannot open input or output file\n");
        return 2;
    }
#ifdef TINYML_TRACE
    const char *trace_path = getenv("TINYML_TRACE_FILE");
    if (trace_path) {
        trace_file = fopen(trace_path, "wb");
    }
#endif
    const char *reset_env = getenv("TINYML_RESET_EVERY");
    const long reset_every = reset_env ? strtol(reset_env, NULL, 10) : 0;
    for (long n = 0; n < count; ++n) {
        if (reset_every > 0 && n > 0 && n % reset_every == 0) {
            tinyml_reset();
        }
        for (int i = 0; i < TINYML_NUM_INPUTS; ++i) {
            const size_t bytes = (size_t)tinyml_input_info[i].bytes;
#if TINYML_STREAM_INPUT
            if (!stream_image) {
                stream_image = malloc(bytes);
            }
            void *dst = stream_image;
            stream_next_row = 0;
            stream_calls = 0;
#else
            void *dst = tinyml_input_ptr(i);
#endif
            if (!dst || fread(dst, 1, bytes, in) != bytes) {
                fprintf(stderr, "host_main: short input record %ld\n", n);
                return 2;
            }
        }
        const int status = tinyml_run();
        if (status != 0) {
            fprintf(stderr, "host_main: tinyml_run failed with %d on record %ld\n", status, n);
            return 3;
        }
#if TINYML_STREAM_INPUT
        if (stream_calls != TINYML_STREAM_STRIPES) {
            fprintf(stderr, "host_main: %d stripes read, expected %d\n", (int)stream_calls,
                    (int)TINYML_STREAM_STRIPES);
            return 3;
        }
#endif
        for (int i = 0; i < TINYML_NUM_OUTPUTS; ++i) {
            const size_t bytes = (size_t)tinyml_output_info[i].bytes;
            if (fwrite(tinyml_output_ptr(i), 1, bytes, out) != bytes) {
                return 2;
            }
        }
    }
    fclose(in);
    fclose(out);
#if TINYML_STREAM_INPUT
    free(stream_image);
#endif
#ifdef TINYML_TRACE
    if (trace_file) {
        fclose(trace_file);
    }
#endif
    return 0;
}
