/*
 * detect_post: decode + NMS for the tinyvit YOLO-style detector head.
 *
 * The model's int8 output is a (grid_h, grid_w, 5 + C) tensor. Per cell, after
 * dequantization v = scale * (q - zero_point):
 *   v[0]      objectness logit     score = sigmoid(v[0]) * max_c softmax(v[5:])
 *   v[1..2]   tx, ty logits        cx = (col + sigmoid(tx)) * cell, cy likewise
 *   v[3..4]   tw, th               w = exp(clamp(tw, -4, 4)) * cell, h likewise
 *   v[5..]    class logits         class = argmax (lowest index on ties)
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
    float scale;              /* output tensor quantization */
    int32_t zero_point;
    float score_threshold;
    float iou_threshold;
    int32_t max_boxes;        /* capacity of the result buffer */
} tinyml_detect_params;

typedef struct {
    float score;
    int32_t cls;
    float x1, y1, x2, y2;     /* pixels, input image coordinates */
} tinyml_box;

/* Decodes `output` (grid_h * grid_w * (5 + num_classes) int8 values).
 * `scratch` must hold grid_h * grid_w boxes; `result` holds max_boxes boxes.
 * Returns the number of boxes written to `result` (highest score first),
 * or -1 if an argument is invalid. */
int32_t tinyml_detect_decode(const tinyml_detect_params *params, const int8_t *output,
                             tinyml_box *scratch, tinyml_box *result);

/* Intersection over union of two boxes (0 when the union is empty). */
float tinyml_box_iou(const tinyml_box *a, const tinyml_box *b);

#ifdef __cplusplus
}
#endif

#endif /* TINYML_DETECT_POST_H */
