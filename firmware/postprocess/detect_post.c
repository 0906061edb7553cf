/* detect_post.c: see detect_post.h for the arithmetic contract. */
#include "detect_post.h"

#include <math.h>
#include <stddef.h>

#define TINYML_TW_CLIP 4.0f

static float sigmoidf_(float v) { return 1.0f / (1.0f + expf(-v)); }

/* value k of cell `cell` in view `v`, dequantized */
static float deq(const tinyml_detect_view *v, int32_t cell, int32_t k)
{
    return v->scale * (float)((int32_t)v->data[cell * v->stride + k] - v->zero_point);
}

static float clamp_tw(float v)
{
    return fminf(fmaxf(v, -TINYML_TW_CLIP), TINYML_TW_CLIP);
}

float tinyml_box_iou(const tinyml_box *a, const tinyml_box *b)
{
    float iw = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1);
    float ih = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
    if (iw < 0.0f) iw = 0.0f;
    if (ih < 0.0f) ih = 0.0f;
    float inter = iw * ih;
    float uni = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

int32_t tinyml_detect_decode_split(const tinyml_detect_params *p,
                                   const tinyml_detect_view *obj,
                                   const tinyml_detect_view *box,
                                   const tinyml_detect_view *cls,
                                   tinyml_box *scratch, tinyml_box *result)
{
    if (p == NULL || obj == NULL || box == NULL || cls == NULL || scratch == NULL ||
        result == NULL || obj->data == NULL || box->data == NULL || cls->data == NULL ||
        p->grid_h <= 0 || p->grid_w <= 0 || p->num_classes <= 0 || p->max_boxes <= 0 ||
        obj->stride < 1 || box->stride < 4 || cls->stride < p->num_classes) {
        return -1;
    }
    int32_t n = 0;
    for (int32_t r = 0; r < p->grid_h; ++r) {
        for (int32_t c = 0; c < p->grid_w; ++c) {
            const int32_t cell = r * p->grid_w + c;
            /* softmax maximum = 1 / sum(exp(l - lmax)); argmax keeps the first */
            float lmax = deq(cls, cell, 0);
            int32_t best = 0;
            for (int32_t k = 1; k < p->num_classes; ++k) {
                float l = deq(cls, cell, k);
                if (l > lmax) { lmax = l; best = k; }
            }
            float sum = 0.0f;
            for (int32_t k = 0; k < p->num_classes; ++k) {
                sum += expf(deq(cls, cell, k) - lmax);
            }
            float score = sigmoidf_(deq(obj, cell, 0)) / sum;
            if (score < p->score_threshold) {
                continue;
            }
            float cx = ((float)c + sigmoidf_(deq(box, cell, 0))) * p->cell_size;
            float cy = ((float)r + sigmoidf_(deq(box, cell, 1))) * p->cell_size;
            float w = expf(clamp_tw(deq(box, cell, 2))) * p->cell_size;
            float h = expf(clamp_tw(deq(box, cell, 3))) * p->cell_size;
            tinyml_box b = {score, best, cx - 0.5f * w, cy - 0.5f * h, cx + 0.5f * w, cy + 0.5f * h};
            /* stable insertion: after every earlier box with score >= this one */
            int32_t i = n;
            while (i > 0 && scratch[i - 1].score < score) {
                scratch[i] = scratch[i - 1];
                --i;
            }
            scratch[i] = b;
            ++n;
        }
    }
    int32_t kept = 0;
    for (int32_t i = 0; i < n && kept < p->max_boxes; ++i) {
        int32_t keep = 1;
        for (int32_t j = 0; j < kept; ++j) {
            if (result[j].cls == scratch[i].cls &&
                tinyml_box_iou(&scratch[i], &result[j]) > p->iou_threshold) {
                keep = 0;
                break;
            }
        }
        if (keep) {
            result[kept++] = scratch[i];
        }
    }
    return kept;
}

int32_t tinyml_detect_decode(const tinyml_detect_params *p, const int8_t *output,
                             tinyml_box *scratch, tinyml_box *result)
{
    if (p == NULL || output == NULL || p->num_classes <= 0) {
        return -1;
    }
    /* three views into the one (5 + C)-per-cell tensor, sharing its quantization */
    const int32_t stride = 5 + p->num_classes;
    const tinyml_detect_view obj = {output, stride, p->scale, p->zero_point};
    const tinyml_detect_view box = {output + 1, stride, p->scale, p->zero_point};
    const tinyml_detect_view cls = {output + 5, stride, p->scale, p->zero_point};
    return tinyml_detect_decode_split(p, &obj, &box, &cls, scratch, result);
}
