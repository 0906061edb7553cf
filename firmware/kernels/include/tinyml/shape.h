/* tinyml kernels: shape group (TRANSPOSE, STRIDED_SLICE, CONCATENATION). */
#ifndef TINYML_SHAPE_H
#define TINYML_SHAPE_H

#include "tinyml/common.h"

/* A strided 4-D view of an input buffer, in elements.
 * Output element (i0, i1, i2, i3), written in row-major order, is
 *   input[start + i0 * stride[0] + i1 * stride[1] + i2 * stride[2] + i3 * stride[3]].
 * Strides may be negative or zero. The generator computes them for
 * TRANSPOSE (permuted input strides) and STRIDED_SLICE (begin, step). */
typedef struct {
    int32_t dims[4];     /* output extent per axis (leading axes padded with 1) */
    int32_t stride[4];   /* input step per output axis, in elements */
    int32_t start;       /* input index of output element (0, 0, 0, 0) */
} tinyml_view4;

/* Copies a strided view of `input` into the dense `output`; elements are
 * `elem_bytes` wide (1 for int8, 4 for float32/int32). Pure data movement,
 * so any quantization is passed through unchanged. When stride[3] == 1 the
 * innermost rows are copied with memcpy. Output must not overlap input. */
tinyml_status tinyml_strided_copy(const tinyml_view4 *view, int32_t elem_bytes,
                                  const void *input, void *output);

/* One input of a concatenation: its block of `inner` elements per outer index
 * goes to output[outer * out_inner + offset ...]. With `table` != NULL every
 * int8 byte b is written as table[(uint8_t)b] (requantization to the output's
 * scale and zero point, precomputed at generate time); else it is copied. */
typedef struct {
    int32_t inner;          /* elements per outer index: axis extent * inner dims */
    int32_t offset;         /* element offset inside each output row */
    const uint8_t *table;   /* 256-entry requantization table or NULL */
} tinyml_concat_part;

/* One part of a concatenation: for o < outer, k < part->inner,
 *   output[o * out_inner + part->offset + k] = f(input[o * part->inner + k])
 * with f = identity (TFLite Concatenation) or, when part->table is set, the
 * byte map table[(uint8_t)b] (TFLite ConcatenationWithScaling for inputs whose
 * quantization differs from the output's). Call once per input. */
tinyml_status tinyml_concat_part_copy(const tinyml_concat_part *part, int32_t elem_bytes, int32_t outer,
                                      const void *input, int32_t out_inner, void *output);

#endif /* TINYML_SHAPE_H */
