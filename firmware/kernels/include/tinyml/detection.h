/* tinyml kernels: TFLite_Detection_PostProcess (the SSD post-process custom op).
 *
 * Arithmetic contract: float32 in, float32 out, the bytes of TensorFlow Lite's
 * custom kernel (tensorflow/lite/kernels/detection_postprocess.cc, Eval ->
 * DecodeCenterSizeBoxes + NonMaxSuppressionMultiClass) for float box
 * encodings, float class scores and float anchors (an int8 model feeds it
 * through DEQUANTIZE, as the converter writes it):
 *   decode: centre and half size in double (y / y_scale * anchor_h + anchor_y;
 *     0.5 * exp(h / h_scale) * anchor_h), each rounded once to float, corners
 *     in float; no fused multiply-add (the kernel is compiled without FP
 *     contraction);
 *   boxes whose score >= score_threshold, stable-sorted by decreasing score;
 *     greedy suppression while IoU (float, 0 when an area is <= 0) > iou_threshold;
 *   fast NMS: each anchor's top max_classes_per_detection classes (first
 *     maximum for one class, else the heap partial sort of libstdc++'s
 *     std::partial_sort, which decides the order of equal scores), NMS on the
 *     anchors' best score, detections written per anchor; unused slots are 0
 *     here (TFLite leaves them unwritten);
 *   regular NMS: per class NMS (up to detections_per_class), merged with the
 *     running top max_detections in decreasing score, equal scores in pool
 *     order (what TensorFlow 2.21's TFLite produces, measured: not the heap
 *     order its source's std::partial_sort suggests; TFLM's index tie-break
 *     gives the same order).
 * With TINYML_SINGLE_ROUNDING = 0 (the generator's --rounding tflm, config.h)
 * it follows tflite_micro instead: an anchor's equal class scores ordered by
 * index (TFLM's comparator) and a box with ymin >= ymax or xmin >= xmax
 * rejected (TFLM's slots for several classes per anchor, which overrun the
 * outputs, are not followed).
 * Fails (TINYML_ERROR_ARG) where TFLite's Eval fails: a decoded box with
 * ymin > ymax or xmin > xmax. */
#ifndef TINYML_DETECTION_H
#define TINYML_DETECTION_H

#include "tinyml/common.h"

typedef struct {
    int32_t num_boxes;                  /* anchors */
    int32_t box_stride;                 /* floats per box encoding (>= 4) */
    int32_t num_classes;
    int32_t num_classes_with_background;  /* num_classes or num_classes + 1 */
    int32_t max_detections;
    int32_t max_classes_per_detection;
    int32_t detections_per_class;
    int32_t use_regular_nms;
    float score_threshold;
    float iou_threshold;
    float y_scale, x_scale, h_scale, w_scale;
} tinyml_detection_params;

int32_t tinyml_detection_postprocess_f32_scratch_size(const tinyml_detection_params *params);

/* boxes [num_boxes, box_stride], scores [num_boxes, num_classes_with_background],
 * anchors [num_boxes, 4] (y, x, h, w); outputs: out_boxes [D, 4] (ymin, xmin, ymax,
 * xmax), out_classes [D], out_scores [D], out_num [1], D = max_detections *
 * max_classes_per_detection. Scratch: tinyml_detection_postprocess_f32_scratch_size. */
tinyml_status tinyml_detection_postprocess_f32(const tinyml_ctx *ctx, const tinyml_detection_params *params,
                                               const float *boxes, const float *scores, const float *anchors,
                                               float *out_boxes, float *out_classes, float *out_scores,
                                               float *out_num);

#endif /* TINYML_DETECTION_H */
