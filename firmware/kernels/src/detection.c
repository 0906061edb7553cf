/* tinyml kernels: TFLite_Detection_PostProcess (float32). See detection.h for
 * the arithmetic contract. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <math.h>
#include <string.h>

#include "tinyml/detection.h"

/* tflite_micro's tie order and box check with --rounding tflm (detection.h). */
#define TFLM_TIES (!TINYML_SINGLE_ROUNDING)

/* Scratch: 4-byte words, laid out by `layout` from the params alone. */
typedef struct {
    float *decoded;       /* N x 4 corners */
    float *keep_scores;   /* N */
    int32_t *keep_index;  /* N */
    int32_t *order;       /* N */
    int32_t *merge;       /* N */
    int32_t *selected;    /* N */
    uint8_t *active;      /* N, rounded up to words */
    float *best;          /* fast: N best scores; regular: N scores of one class */
    int32_t *classes;     /* fast: N x num_classes sorted class indices */
    int32_t *pool_index;  /* regular: N + max_detections */
    float *pool_score;    /* regular: N + max_detections */
    int32_t *pool_order;  /* regular: N + max_detections */
    float *pool_value;    /* regular: max_detections */
} scratch_map;

static int32_t layout(const tinyml_detection_params *p, void *base, scratch_map *m)
{
    const int32_t n = p->num_boxes, pool = p->num_boxes + p->max_detections;
    int32_t words = 0;
    uint32_t *w = (uint32_t *)base;
#define TAKE(field, type, count)                                  \
    do {                                                          \
        if (m) m->field = (type *)(void *)(w + words);            \
        words += (count);                                         \
    } while (0)
    TAKE(decoded, float, 4 * n);
    TAKE(keep_scores, float, n);
    TAKE(keep_index, int32_t, n);
    TAKE(order, int32_t, n);
    TAKE(merge, int32_t, n);
    TAKE(selected, int32_t, n);
    TAKE(active, uint8_t, (n + 3) / 4);
    TAKE(best, float, n);
    if (p->use_regular_nms) {
        TAKE(pool_index, int32_t, pool);
        TAKE(pool_score, float, pool);
        TAKE(pool_order, int32_t, pool);
        TAKE(pool_value, float, p->max_detections);
    } else {
        TAKE(classes, int32_t, n * p->num_classes);
    }
#undef TAKE
    return words * 4;
}

int32_t tinyml_detection_postprocess_f32_scratch_size(const tinyml_detection_params *params)
{
    return params ? layout(params, NULL, NULL) : 0;
}

/* Whether index i sorts before j by decreasing value (TFLM: ties by index). */
static int before(const float *v, int32_t i, int32_t j, int32_t tflm)
{
    return v[i] > v[j] || (tflm && v[i] == v[j] && i < j);
}

/* The binary heap of libstdc++ (sift the hole down to a leaf, then the value up). */
static void heap_up(const float *v, int32_t tflm, int32_t *a, int32_t hole, int32_t top, int32_t value)
{
    int32_t parent = (hole - 1) / 2;
    while (hole > top && before(v, a[parent], value, tflm)) {
        a[hole] = a[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    a[hole] = value;
}

static void heap_down(const float *v, int32_t tflm, int32_t *a, int32_t hole, int32_t len, int32_t value)
{
    const int32_t top = hole;
    int32_t child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (before(v, a[child], a[child - 1], tflm)) {
            child--;
        }
        a[hole] = a[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        a[hole] = a[child - 1];
        hole = child - 1;
    }
    heap_up(v, tflm, a, hole, top, value);
}

/* indices[0..k) = the k first of 0..n-1 by decreasing v: the first maximum for
 * k = 1, else std::partial_sort's heap select + heap sort (its order of ties). */
static void partial_argsort(const float *v, int32_t n, int32_t k, int32_t tflm, int32_t *a)
{
    if (n <= 0 || k <= 0) {
        return;
    }
    if (k == 1) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; ++i) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        a[0] = best;
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        a[i] = i;
    }
    if (k >= 2) {
        for (int32_t parent = (k - 2) / 2;; --parent) {
            heap_down(v, tflm, a, parent, k, a[parent]);
            if (parent == 0) {
                break;
            }
        }
    }
    for (int32_t i = k; i < n; ++i) {
        if (before(v, a[i], a[0], tflm)) {
            const int32_t value = a[i];
            a[i] = a[0];
            heap_down(v, tflm, a, 0, k, value);
        }
    }
    for (int32_t len = k; len > 1;) {
        --len;
        const int32_t value = a[len];
        a[len] = a[0];
        heap_down(v, tflm, a, 0, len, value);
    }
}

/* Stable sort of 0..n-1 by decreasing v (bottom-up merge; equal values keep index order). */
static void stable_argsort(const float *v, int32_t n, int32_t *a, int32_t *tmp)
{
    for (int32_t i = 0; i < n; ++i) {
        a[i] = i;
    }
    for (int32_t width = 1; width < n; width *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * width) {
            const int32_t mid = lo + width < n ? lo + width : n;
            const int32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int32_t l = lo, r = mid, o = lo;
            while (o < hi) {
                if (l >= mid || (r < hi && v[a[r]] > v[a[l]])) {
                    tmp[o++] = a[r++];
                } else {
                    tmp[o++] = a[l++];
                }
            }
            memcpy(a + lo, tmp + lo, (size_t)(hi - lo) * sizeof(int32_t));
        }
    }
}

static float fmax_first(float a, float b) { return a < b ? b : a; }   /* std::max */
static float fmin_first(float a, float b) { return b < a ? b : a; }   /* std::min */

static float iou(const float *boxes, int32_t i, int32_t j)
{
    const float *bi = boxes + 4 * i, *bj = boxes + 4 * j;   /* ymin, xmin, ymax, xmax */
    const float area_i = (bi[2] - bi[0]) * (bi[3] - bi[1]);
    const float area_j = (bj[2] - bj[0]) * (bj[3] - bj[1]);
    if (area_i <= 0 || area_j <= 0) {
        return 0.0f;
    }
    const float ymin = fmax_first(bi[0], bj[0]), xmin = fmax_first(bi[1], bj[1]);
    const float ymax = fmin_first(bi[2], bj[2]), xmax = fmin_first(bi[3], bj[3]);
    const float inter = fmax_first(ymax - ymin, 0.0f) * fmax_first(xmax - xmin, 0.0f);
    return inter / (area_i + area_j - inter);
}

/* Greedy NMS of one score per box; returns how many of `selected` it filled. */
static int32_t nms_single(const tinyml_detection_params *p, const scratch_map *m, const float *scores,
                          int32_t max_det)
{
    const int32_t n = p->num_boxes;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; ++i) {
        if (scores[i] >= p->score_threshold) {
            m->keep_scores[kept] = scores[i];
            m->keep_index[kept] = i;
            kept++;
        }
    }
    stable_argsort(m->keep_scores, kept, m->order, m->merge);
    const int32_t out_size = kept < max_det ? kept : max_det;
    int32_t active_left = kept, count = 0;
    for (int32_t i = 0; i < kept; ++i) {
        m->active[i] = 1;
    }
    for (int32_t i = 0; i < kept; ++i) {
        if (active_left == 0 || count >= out_size) {
            break;
        }
        if (!m->active[i]) {
            continue;
        }
        const int32_t bi = m->keep_index[m->order[i]];
        m->selected[count++] = bi;
        m->active[i] = 0;
        active_left--;
        for (int32_t j = i + 1; j < kept; ++j) {
            if (m->active[j] && iou(m->decoded, bi, m->keep_index[m->order[j]]) > p->iou_threshold) {
                m->active[j] = 0;
                active_left--;
            }
        }
    }
    return count;
}

static void put(float *out_boxes, float *out_classes, float *out_scores, int32_t slot, const float *box,
                float cls, float score)
{
    memcpy(out_boxes + 4 * slot, box, 4 * sizeof(float));
    out_classes[slot] = cls;
    out_scores[slot] = score;
}

tinyml_status tinyml_detection_postprocess_f32(const tinyml_ctx *ctx, const tinyml_detection_params *p,
                                               const float *boxes, const float *scores, const float *anchors,
                                               float *out_boxes, float *out_classes, float *out_scores,
                                               float *out_num)
{
    if (!ctx || !ctx->buf || !p || !boxes || !scores || !anchors || !out_boxes || !out_classes || !out_scores ||
        !out_num || p->num_boxes <= 0 || p->box_stride < 4 || p->num_classes <= 0 ||
        p->num_classes_with_background < p->num_classes ||
        p->num_classes_with_background > p->num_classes + 1 || p->max_detections <= 0 ||
        p->max_classes_per_detection <= 0 || p->detections_per_class <= 0) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_detection_postprocess_f32_scratch_size(p));
    scratch_map m;
    layout(p, ctx->buf, &m);
    const int32_t n = p->num_boxes, nc = p->num_classes, ncb = p->num_classes_with_background;
    const int32_t label_offset = ncb - nc;

    for (int32_t i = 0; i < n; ++i) {
        const float *e = boxes + i * p->box_stride, *a = anchors + 4 * i;   /* y, x, h, w */
        const float yc = (float)((double)e[0] / (double)p->y_scale * (double)a[2] + (double)a[0]);
        const float xc = (float)((double)e[1] / (double)p->x_scale * (double)a[3] + (double)a[1]);
        const float hh = (float)(0.5 * exp((double)e[2] / (double)p->h_scale) * (double)a[2]);
        const float hw = (float)(0.5 * exp((double)e[3] / (double)p->w_scale) * (double)a[3]);
        float *d = m.decoded + 4 * i;
        d[0] = yc - hh;
        d[1] = xc - hw;
        d[2] = yc + hh;
        d[3] = xc + hw;
        if (TFLM_TIES ? (d[0] >= d[2] || d[1] >= d[3]) : (d[0] > d[2] || d[1] > d[3])) {
            return TINYML_ERROR_ARG;   /* TFLite's ValidateBoxes: Eval fails */
        }
    }

    const int32_t slots = p->max_detections * p->max_classes_per_detection;
    memset(out_boxes, 0, (size_t)slots * 4 * sizeof(float));
    memset(out_classes, 0, (size_t)slots * sizeof(float));
    memset(out_scores, 0, (size_t)slots * sizeof(float));

    if (!p->use_regular_nms) {
        const int32_t per_anchor = p->max_classes_per_detection < nc ? p->max_classes_per_detection : nc;
        for (int32_t row = 0; row < n; ++row) {
            const float *s = scores + row * ncb + label_offset;
            int32_t *ci = m.classes + row * nc;
            partial_argsort(s, nc, per_anchor, TFLM_TIES, ci);
            m.best[row] = s[ci[0]];
        }
        const int32_t count = nms_single(p, &m, m.best, p->max_detections);
        for (int32_t b = 0; b < count; ++b) {
            const int32_t sel = m.selected[b];
            const float *s = scores + sel * ncb + label_offset;
            const int32_t *ci = m.classes + sel * nc;
            for (int32_t col = 0; col < per_anchor; ++col) {
                put(out_boxes, out_classes, out_scores, p->max_classes_per_detection * b + col,
                    m.decoded + 4 * sel, (float)ci[col], s[ci[col]]);
            }
        }
        out_num[0] = (float)count;
        return TINYML_OK;
    }

    int32_t size_sorted = 0;
    for (int32_t col = 0; col < nc; ++col) {
        for (int32_t row = 0; row < n; ++row) {
            m.best[row] = scores[row * ncb + col + label_offset];
        }
        const int32_t count = nms_single(p, &m, m.best, p->detections_per_class);
        int32_t out_index = size_sorted;
        for (int32_t k = 0; k < count; ++k) {
            const int32_t sel = m.selected[k];
            m.pool_index[out_index] = sel * ncb + col + label_offset;
            m.pool_score[out_index] = m.best[sel];
            out_index++;
        }
        const int32_t keep = out_index < p->max_detections ? out_index : p->max_detections;
        /* equal scores in index order (measured: TFLite 2.21's and TFLM's bytes both) */
        partial_argsort(m.pool_score, out_index, keep, 1, m.pool_order);
        for (int32_t r = 0; r < keep; ++r) {
            const int32_t t = m.pool_order[r];
            m.pool_order[r] = m.pool_index[t];
            m.pool_value[r] = m.pool_score[t];
        }
        for (int32_t r = 0; r < keep; ++r) {
            m.pool_index[r] = m.pool_order[r];
            m.pool_score[r] = m.pool_value[r];
        }
        size_sorted = keep;
    }
    for (int32_t b = 0; b < size_sorted; ++b) {
        const int32_t anchor = m.pool_index[b] / ncb;
        const int32_t cls = m.pool_index[b] - anchor * ncb - label_offset;
        put(out_boxes, out_classes, out_scores, b, m.decoded + 4 * anchor, (float)cls, m.pool_score[b]);
    }
    out_num[0] = (float)size_sorted;
    return TINYML_OK;
}
