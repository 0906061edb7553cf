/* Stand-in for a generated model.h in the host fuzzing build of
 * app/serial_eembc.c: the same declarations (codegen/templates/model.h.j2),
 * a small model so a fuzzer input can fill the image buffer.
 *
 * FUZZ_VARIANT selects the build the parser is compiled for:
 *   0  image buffer, no streaming (the default serial build)
 *   1  --stream-input, no image buffer (TINYML_SERIAL_IMAGE_BYTES 0)
 *   2  --stream-input with the image buffer (infer and stream both work)
 * serial_fuzz.c implements the functions (tinyml_run reads the input and
 * writes the output like a model would, so ASan sees every access). */
#ifndef TINYML_MODEL_H
#define TINYML_MODEL_H

#include <stdint.h>

#ifndef FUZZ_VARIANT
#define FUZZ_VARIANT 0
#endif

#define TINYML_MODEL_NAME "fuzz-stub"
#define TINYML_NUM_INPUTS 1
#define TINYML_NUM_OUTPUTS 1
#define TINYML_INPUT_BYTES 24
#define TINYML_OUTPUT_BYTES 5
#define TINYML_ARENA_BYTES 64

#if FUZZ_VARIANT == 0
#define TINYML_STREAM_INPUT 0
#else
#define TINYML_STREAM_INPUT 1
#define TINYML_STREAM_ROWS 2
#define TINYML_STREAM_ROW_BYTES 4
#define TINYML_STREAM_STRIPE_BYTES 8
#define TINYML_STREAM_STRIPES 3
#endif
#if FUZZ_VARIANT == 1
#define TINYML_SERIAL_IMAGE_BYTES 0
#endif

typedef struct {
    const char *name;
    int32_t bytes;
    int32_t ndims;
    int32_t dims[4];
    float scale;
    int32_t zero_point;
    uint32_t arena_offset;
} tinyml_io_info_t;

extern const tinyml_io_info_t tinyml_input_info[TINYML_NUM_INPUTS];
extern const tinyml_io_info_t tinyml_output_info[TINYML_NUM_OUTPUTS];

void *tinyml_input_ptr(int index);
void *tinyml_output_ptr(int index);
int tinyml_run(void);

#if TINYML_STREAM_INPUT
int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows);
#endif

#endif /* TINYML_MODEL_H */
