/* A CNN's first stage as one row pipeline (tinyml/stage.h). */
#include <string.h>

#include "tinyml/stage.h"

/* Geometry of one layer's height axis, whichever kernel it runs. */
typedef struct {
    int32_t in_h, out_h, stride, pad, reach, in_row, out_row;
} stage_geom;

static stage_geom geom(const tinyml_stage_layer *l)
{
    stage_geom g;
    if (l->depthwise) {
        g.in_h = l->dw_in->h;
        g.out_h = l->dw_out->h;
        g.stride = l->dw->stride_h;
        g.pad = l->dw->pad_h;
        g.reach = (l->dw_filter->h - 1) * l->dw->dilation_h;
        g.in_row = l->dw_in->w * l->dw_in->c;
        g.out_row = l->dw_out->w * l->dw_out->c;
    } else {
        g.in_h = l->conv->in_h;
        g.out_h = l->conv->out_h;
        g.stride = l->conv->stride_h;
        g.pad = l->conv->pad_h;
        g.reach = (l->conv->k_h - 1) * l->conv->dilation_h;
        g.in_row = l->conv->in_w * l->conv->in_c;
        g.out_row = l->conv->out_w * l->conv->layer.output_depth;
    }
    return g;
}

static int32_t ring_bytes(const tinyml_stage_layer *l)
{
    if (l->ring_rows <= 0) {
        return 0;
    }
    return tinyml_pad4((l->ring_mirror ? 2 : 1) * l->ring_rows * geom(l).out_row);
}

static int32_t col_bytes(const tinyml_stage_params *p)
{
    int32_t col = 0;
    for (int32_t i = 0; i < p->layers; ++i) {
        if (!p->layer[i].depthwise) {
            col = TINYML_MAX(col, tinyml_conv2d_packed_s8_scratch_size(p->layer[i].conv));
        }
    }
    return col;
}

int32_t tinyml_fused_stage_s8_scratch_size(const tinyml_stage_params *p)
{
    int32_t n = 0;
    for (int32_t i = 0; i < p->layers && i < TINYML_STAGE_MAX_LAYERS; ++i) {
        n += ring_bytes(&p->layer[i]);
    }
    return n + col_bytes(p);
}

/* Last input row of layer l that its output row r reads (clamped to the image). */
static int32_t need_row(const stage_geom *g, int32_t r)
{
    const int32_t last = r * g->stride - g->pad + g->reach;
    return last < g->in_h - 1 ? last : g->in_h - 1;
}

/* Where a layer's input rows live: row iy at base + (iy % ring) * row (ring = in_h: resident). */
typedef struct {
    const int8_t *base;
    int32_t ring;
} stage_src;

/* Output row r of layer l from src into dst. */
static tinyml_status layer_row(const tinyml_ctx *col, const tinyml_stage_layer *l, const stage_geom *g,
                               stage_src src, int32_t r, int8_t *dst)
{
    if (!l->depthwise) {
        return tinyml_conv2d_packed_rows_s8(col, l->conv, src.ring, src.base, l->conv_filter, r, r + 1, dst);
    }
    /* The window's in-image rows, contiguous in a mirrored ring (or the resident
     * input), as a short input whose top padding puts row 0 at the window's first row. */
    const tinyml_conv_params *d = l->dw;
    const int32_t iy0 = r * d->stride_h - d->pad_h;
    int32_t ky0, ky1;
    tinyml_tap_range(iy0, d->dilation_h, l->dw_filter->h, g->in_h, &ky0, &ky1);
    const int32_t first = iy0 + ky0 * d->dilation_h;
    const int32_t rows = ky1 > ky0 ? (ky1 - ky0 - 1) * d->dilation_h + 1 : 0;
    if (rows <= 0) {
        return TINYML_ERROR_ARG;             /* the generator only fuses windows that reach the image */
    }
    tinyml_conv_params pr = *d;
    pr.pad_h = first - iy0;
    const tinyml_dims in = {1, rows, l->dw_in->w, l->dw_in->c};
    const tinyml_dims out = {1, 1, l->dw_out->w, l->dw_out->c};
    const int8_t *x = src.base + (size_t)(first % src.ring) * (size_t)g->in_row;
    return tinyml_depthwise_conv2d_s8(&pr, l->dw_quant, &in, x, l->dw_filter, l->dw_weights, l->dw_bias, &out,
                                      dst);
}

tinyml_status tinyml_fused_stage_s8(const tinyml_ctx *ctx, const tinyml_stage_params *p,
                                    tinyml_stage_state *state, const int8_t *input, int8_t *in_ring,
                                    int8_t *output)
{
    const int32_t n = p->layers;
    const int streamed = p->in_rows > 0;
    if (n < 1 || n > TINYML_STAGE_MAX_LAYERS || (streamed ? (in_ring == NULL || state == NULL) : input == NULL)) {
        return TINYML_ERROR_ARG;
    }
    stage_geom g[TINYML_STAGE_MAX_LAYERS];
    int8_t *ring[TINYML_STAGE_MAX_LAYERS];
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    int32_t off = 0;
    for (int32_t i = 0; i < n; ++i) {
        const tinyml_stage_layer *l = &p->layer[i];
        g[i] = geom(l);
        const int last = i == n - 1;
        if ((last ? l->ring_rows != 0 : l->ring_rows <= 0) || (l->depthwise ? l->dw == NULL : l->conv == NULL) ||
            g[i].stride <= 0) {
            return TINYML_ERROR_ARG;
        }
        if (i > 0 && (g[i].in_h != g[i - 1].out_h || g[i].in_row != g[i - 1].out_row ||
                      p->layer[i - 1].ring_rows < g[i].reach + 1 || p->layer[i - 1].ring_mirror != l->depthwise)) {
            return TINYML_ERROR_ARG;
        }
        ring[i] = scratch + off;
        off += ring_bytes(l);
    }
    if (streamed && (p->in_rows < g[0].reach + 1 || p->in_mirror != p->layer[0].depthwise)) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_fused_stage_s8_scratch_size(p));
    tinyml_stage_state local = {0};
    tinyml_stage_state *s = state ? state : &local;
    const size_t in_row = (size_t)g[0].in_row;
    if (!s->started) {
        memset(s, 0, sizeof *s);
        s->started = 1;
    } else if (s->want >= 0) {               /* the row asked for last time has arrived */
        if (p->in_mirror) {
            memcpy(s->want_dst + (size_t)p->in_rows * in_row, s->want_dst, in_row);
        }
        s->fetched = s->want + 1;
    }
    s->want = -1;
    /* The convolutions' im2col buffer: the rest of the scratch. */
    const tinyml_ctx col = {scratch + off, ctx ? ctx->size - off : 0};
    const int32_t top = n - 1;
    while (s->next[top] < g[top].out_h) {
        /* The lowest layer whose input rows are all there for its next row. */
        int32_t i = top;
        while (i > 0 && s->next[i - 1] <= need_row(&g[i], s->next[i])) {
            --i;
        }
        stage_src src;
        if (i > 0) {
            src.base = ring[i - 1];
            src.ring = p->layer[i - 1].ring_rows;
        } else if (streamed) {
            if (s->fetched <= need_row(&g[0], s->next[0])) {
                s->want = s->fetched;        /* ask the caller for the next image row */
                s->want_dst = in_ring + (size_t)(s->fetched % p->in_rows) * in_row;
                return TINYML_OK;
            }
            src.base = in_ring;
            src.ring = p->in_rows;
        } else {
            src.base = input;
            src.ring = g[0].in_h;
        }
        const tinyml_stage_layer *l = &p->layer[i];
        const int32_t r = s->next[i];
        int8_t *dst = i == top ? output + (size_t)r * (size_t)g[i].out_row
                               : ring[i] + (size_t)(r % l->ring_rows) * (size_t)g[i].out_row;
        const tinyml_status st = layer_row(&col, l, &g[i], src, r, dst);
        if (st != TINYML_OK) {
            return st;
        }
        if (i != top && l->ring_mirror) {
            memcpy(dst + (size_t)l->ring_rows * (size_t)g[i].out_row, dst, (size_t)g[i].out_row);
        }
        ++s->next[i];
    }
    /* Streamed: rows no window reads (below the last window) complete the image. */
    if (streamed && s->fetched < g[0].in_h) {
        s->want = s->fetched;
        s->want_dst = in_ring + (size_t)(s->fetched % p->in_rows) * in_row;
    }
    return TINYML_OK;
}
