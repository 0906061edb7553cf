/* tinyml kernels: shape group (TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V,
 * UNPACK, CONCATENATION, PACK, TILE, RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE,
 * SPACE_TO_DEPTH, REVERSE_V2, BROADCAST_TO, GATHER, GATHER_ND, EMBEDDING_LOOKUP,
 * DYNAMIC_UPDATE_SLICE, FILL, CAST): data movement, no arithmetic (CAST: C conversions);
 * and RESIZE_BILINEAR (interpolation in the input's quantized domain). */
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

/* TILE on up to 4-D tensors of elem_bytes-wide elements:
 *   output[o0][o1][o2][o3] = input[o0 % d0][o1 % d1][o2 % d2][o3 % d3]
 * with output extent multiples[k] * dims[k] (leading axes padded with 1).
 * Rows of the innermost axis are copied whole, multiples[3] times.
 * Matches TFLite reference Tile (tile.cc, any element type). Output must not
 * overlap input. */
typedef struct {
    int32_t dims[4];        /* input extent */
    int32_t multiples[4];   /* repetitions per axis, >= 1 */
} tinyml_tile_params;

tinyml_status tinyml_tile(const tinyml_tile_params *params, int32_t elem_bytes,
                          const void *input, void *output);

/* RESIZE_NEAREST_NEIGHBOR (int8, NHWC): for every batch b, output row y and
 * column x, the input pixel [b][src_y[y]][src_x[x]] (all channels) is copied:
 * no arithmetic, quantization passed through. The generator computes src_y /
 * src_x as TFLite's GetNearestNeighbor does in float32 (scale = in/out, or
 * (in-1)/(out-1) with align_corners; +0.5 before scaling with
 * half_pixel_centers; round (align_corners) or floor; clamped to [0, in-1]).
 * Matches TFLite reference ResizeNearestNeighbor. Output rows are written top
 * to bottom and src_y is non-decreasing (the planner's Overlap fact relies on
 * both). */
typedef struct {
    int32_t out_h, out_w;
    const int32_t *src_y;   /* out_h input rows */
    const int32_t *src_x;   /* out_w input columns */
} tinyml_resize_nearest_params;

tinyml_status tinyml_resize_nearest_s8(const tinyml_resize_nearest_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       int8_t *output);

/* RESIZE_NEAREST_NEIGHBOR on int16 elements (16x8 models): the same copies of 2-byte elements. */
tinyml_status tinyml_resize_nearest_s16(const tinyml_resize_nearest_params *params,
                                        const tinyml_dims *input_dims, const int16_t *input,
                                        int16_t *output);

/* GATHER along one axis (batch_dims 0), any element width:
 *   output[o][k][i] = input[o][indices[k]][i]
 * for o < outer, k < count, i < inner (the params tensor viewed as
 * [outer][axis_size][inner]; indices flattened). An index outside
 * [0, axis_size) returns TINYML_ERROR_ARG before anything is written, as
 * TFLite's reference Gather (gather.cc) fails on it. Indices may be a
 * constant array or an activation. */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t count;
} tinyml_gather_params;

tinyml_status tinyml_gather(const tinyml_gather_params *params, int32_t elem_bytes, const void *input,
                            const int32_t *indices, void *output);

/* RESIZE_BILINEAR (int8, NHWC), TFLite's integer path (ResizeBilinearInteger):
 * per output row y, v = y * scale_h_10 (+ scale_h_10 / 2 - 512 with
 * half_pixel_centers), y0 = max(v / 1024, 0), y1 = min(ceil(v / 1024), in_h - 1),
 * dy = v - 1024 * y0; likewise x; then
 *   s = in[y0][x0] (1024 - dy)(1024 - dx) + in[y1][x0] dy (1024 - dx)
 *     + in[y0][x1] (1024 - dy) dx + in[y1][x1] dy dx        (64-bit)
 *   out = (s + sign(s) 2^19) / 2^20 (truncating: round half away from zero),
 * the reference's non-TFLITE_SINGLE_ROUNDING branch, which both TensorFlow
 * 2.21's TFLite and tflite_micro run (measured). Input and output
 * share the quantization. scale_*_10 = round(1024 * in / out), or
 * (in - 1) / (out - 1) with align_corners, computed by the generator. */
typedef struct {
    int32_t out_h, out_w;
    int32_t scale_h_10, scale_w_10;
    int32_t half_pixel_centers;
} tinyml_resize_bilinear_params;

tinyml_status tinyml_resize_bilinear_s8(const tinyml_resize_bilinear_params *params,
                                        const tinyml_dims *input_dims, const int8_t *input,
                                        int8_t *output);

/* GATHER_ND: indices is [count][depth] (int32), params viewed as
 * [d0]..[d(depth-1)][inner]; output slice k (inner elements) is the params
 * slice at flat element position pos = sum_j indices[k][j] * stride[j], where
 * stride[j] is the element count below params axis j. Only the flat position
 * is bounds-checked (pos >= 0 and pos + inner <= total, else
 * TINYML_ERROR_ARG), as TFLite's reference GatherNd and TFLM's gather_nd.cc
 * check it. Any element width; no arithmetic. depth <= 4. */
typedef struct {
    int32_t count;       /* index tuples */
    int32_t depth;       /* indices per tuple, 1..4 */
    int32_t inner;       /* elements per gathered slice */
    int32_t total;       /* elements of params */
    int32_t stride[4];   /* elements per step of params axis j < depth */
} tinyml_gather_nd_params;

tinyml_status tinyml_gather_nd(const tinyml_gather_nd_params *params, int32_t elem_bytes, const void *input,
                               const int32_t *indices, void *output);

/* DYNAMIC_UPDATE_SLICE on up to 4-D tensors (leading axes padded with 1):
 * output = operand, then output[start + i] = update[i] for every update index
 * i, where start[j] = clamp(start_indices[j], 0, operand_dims[j] -
 * update_dims[j]) (start_indices: rank int32 values, the op's unpadded rank).
 * Matches TFLite / TFLM dynamic_update_slice.cc. Output may be the operand's
 * buffer (in place: the copy is skipped); update must not overlap output. */
typedef struct {
    int32_t rank;               /* rank of the op's tensors, 1..4 */
    int32_t operand_dims[4];    /* padded in front with 1 */
    int32_t update_dims[4];
} tinyml_update_slice_params;

tinyml_status tinyml_dynamic_update_slice(const tinyml_update_slice_params *params, int32_t elem_bytes,
                                          const void *operand, const void *update,
                                          const int32_t *start_indices, void *output);

/* FILL with a run-time value: output[i] = value for i < count (elements of
 * elem_bytes bytes, copied unchanged: TFLite / TFLM fill.cc). */
tinyml_status tinyml_fill(int32_t count, int32_t elem_bytes, const void *value, void *output);

/* CAST between int8, uint8, int16, int32, float32 and bool: each element
 * converted as C++ static_cast does (integers truncate to the target width,
 * float to integer truncates toward zero, anything to bool is != 0), as
 * TFLite / TFLM cast.cc. Type codes: TINYML_TYPE_*. */
enum {
    TINYML_TYPE_INT8 = 0,
    TINYML_TYPE_UINT8 = 1,
    TINYML_TYPE_INT16 = 2,
    TINYML_TYPE_INT32 = 3,
    TINYML_TYPE_FLOAT32 = 4,
    TINYML_TYPE_BOOL = 5
};

tinyml_status tinyml_cast(int32_t count, int32_t in_type, const void *input, int32_t out_type, void *output);

#endif /* TINYML_SHAPE_H */
