/* detect_post.c: see detect_post.h for the arithmetic contract. */
#include "detect_post.h"

#include <math.h>
#include <stddef.h>

#define TINYML_TW_CLIP 4.0f

static float sigmoidf_(float v) { return 1.0f / (1.0f + expf(-v)); }

static float deq(const tinyml_detect_params *p, int8_t q)
{
    return p->scale * (float)((int32_t)q - p->zero_point);
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

int32_t tinyml_detect_decode(const tinyml_detect_params *p, const int8_t *output,
                             tinyml_box *scratch, tinyml_box *result)
{
    if (p == NULL || output == NULL || scratch == NULL || result == NULL ||
        p->grid_h <= 0 || p->grid_w <= 0 || p->num_classes <= 0 || p->max_boxes <= 0) {
        return -1;
    }
    const int32_t stride = 5 + p->num_classes;
    int32_t n = 0;
    for (int32_t r = 0; r < p->grid_h; ++r) {
        for (int32_t c = 0; c < p->grid_w; ++c) {
            const int8_t *v = output + (r * p->grid_w + c) * stride;
            /* softmax maximum = 1 / sum(exp(l - lmax)); argmax keeps the first */
            float lmax = deq(p, v[5]);
            int32_t best = 0;
            for (int32_t k = 1; k < p->num_classes; ++k) {
                float l = deq(p, v[5 + k]);
                if (l > lmax) { lmax = l; best = k; }
            }
            float sum = 0.0f;
            for (int32_t k = 0; k < p->num_classes; ++k) {
                sum += expf(deq(p, v[5 + k]) - lmax);
            }
            float score = sigmoidf_(deq(p, v[0])) / sum;
            if (score < p->score_threshold) {
                continue;
            }
            float cx = ((float)c + sigmoidf_(deq(p, v[1]))) * p->cell_size;
            float cy = ((float)r + sigmoidf_(deq(p, v[2]))) * p->cell_size;
            float w = expf(fminf(fmaxf(deq(p, v[3]), -TINYML_TW_CLIP), TINYML_TW_CLIP)) * p->cell_size;
            float h = expf(fminf(fmaxf(deq(p, v[4]), -TINYML_TW_CLIP), TINYML_TW_CLIP)) * p->cell_size;
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
