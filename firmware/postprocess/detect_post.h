/*
 * detect_post: decode + NMS for the tinyvit YOLO-style detector head.
 *
 * Per grid cell the model predicts, after dequantization v = scale * (q - zero_point):
 *   obj       objectness logit     score = sigmoid(obj) * max_c softmax(cls)
 *   box[0..1] tx, ty logits        cx = (col + sigmoid(tx)) * cell, cy likewise
 *   box[2..3] tw, th               w = exp(clamp(tw, -4, 4)) * cell, h likewise
 *   cls[0..]  class logits         class = argmax (lowest index on ties)
 * A fused head is one (grid_h, grid_w, 5 + C) tensor [obj, tx, ty, tw, th, cls...]
 * with one scale; a split head (ViTConfig.det_split) is three tensors
 * (grid_h, grid_w, 1), (grid_h, grid_w, 4), (grid_h, grid_w, C), each with its
 * own scale and zero point.
 * Cells are visited in row-major order; candidates with score >= threshold are
 * sorted by score, descending and stable, then greedy per-class NMS drops a box
 * whose IoU with a kept box of the same class exceeds iou_threshold.
 * Matches tinyvit.detect.decode (float32 here, float64 there).
 * No allocation: the caller provides the candidate and result buffers.
 */
#ifndef TINYML_DETECT_POST_H
#define TINYML_DETECT_POST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t grid_h;
    int32_t grid_w;
    int32_t num_classes;
    float cell_size;          /* pixels per grid cell (the patch size) */
    float scale;              /* fused output tensor quantization (unused by _split) */
    int32_t zero_point;
    float score_threshold;
    float iou_threshold;
    int32_t max_boxes;        /* capacity of the result buffer */
} tinyml_detect_params;

/* One int8 head: values of cell (r, c) start at data[(r * grid_w + c) * stride]. */
typedef struct {
    const int8_t *data;
    int32_t stride;           /* int8 values per cell (>= the head's channel count) */
    float scale;
    int32_t zero_point;
} tinyml_detect_view;

typedef struct {
    float score;
    int32_t cls;
    float x1, y1, x2, y2;     /* pixels, input image coordinates */
} tinyml_box;

/* Fused head: decodes `output` (grid_h * grid_w * (5 + num_classes) int8
 * values, quantized with params->scale / zero_point).
 * `scratch` must hold grid_h * grid_w boxes; `result` holds max_boxes boxes.
 * Returns the number of boxes written to `result` (highest score first),
 * or -1 if an argument is invalid. */
int32_t tinyml_detect_decode(const tinyml_detect_params *params, const int8_t *output,
                             tinyml_box *scratch, tinyml_box *result);

/* Split head: objectness (1 per cell), box (4 per cell: tx, ty, tw, th) and
 * class logits (num_classes per cell), each with its own quantization.
 * params->scale / zero_point are ignored. Same buffers and return value as
 * tinyml_detect_decode; -1 also when a view's stride is smaller than its
 * channel count. */
int32_t tinyml_detect_decode_split(const tinyml_detect_params *params,
                                   const tinyml_detect_view *obj,
                                   const tinyml_detect_view *box,
                                   const tinyml_detect_view *cls,
                                   tinyml_box *scratch, tinyml_box *result);

/* Intersection over union of two boxes (0 when the union is empty). */
float tinyml_box_iou(const tinyml_box *a, const tinyml_box *b);

#ifdef __cplusplus
}
#endif

#endif /* TINYML_DETECT_POST_H */
