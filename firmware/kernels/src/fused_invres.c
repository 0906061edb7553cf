/* Inverted-residual block as one row pipeline (tinyml/fused.h). */
#include "tinyml/fused.h"
#include "depthwise_grouped.h"

/* Scratch layout: [e ring][d row][p row][im2col] (each 4-byte aligned; no ring without expand). */
static int32_t ring_bytes(const tinyml_invres_params *p)
{
    return p->has_expand ? tinyml_pad4(p->dw_rows * p->dw.in_w * p->dw.channels) : 0;
}

static int32_t d_row_bytes(const tinyml_invres_params *p)
{
    return p->dw.out_w * p->dw.channels;
}

static int32_t out_row_bytes(const tinyml_invres_params *p)
{
    return p->project.out_w * p->project.layer.output_depth;
}

int32_t tinyml_fused_invres_s8_scratch_size(const tinyml_invres_params *p)
{
    const int32_t col = TINYML_MAX(p->has_expand ? tinyml_conv2d_packed_s8_scratch_size(&p->expand) : 0,
                                   tinyml_conv2d_packed_s8_scratch_size(&p->project));
    return ring_bytes(p) + tinyml_pad4(d_row_bytes(p)) + (p->has_add ? tinyml_pad4(out_row_bytes(p)) : 0) + col;
}

/* The depthwise epilogue's constants, copied to the stack so the int8 output
 * stores cannot force reloads through the parameter pointer. */
typedef struct {
    int32_t out_off, lo, hi;
    const int32_t *mult;
    const int8_t *shift;
} dw_epilogue;

/* requant(acc, c) + output_offset, clamped; fast: tinyml_requantize_bounded
 * (the generator proved it exact for this layer: fast_requant), else
 * tinyml_conv_requantize. Fixed at compile time in each copy of the row loop. */
static inline __attribute__((always_inline)) int8_t dw_finish(const dw_epilogue *k, int32_t acc, int32_t c,
                                                              const int fast)
{
    if (fast) {
        acc = tinyml_requantize_bounded(acc, k->mult[c], k->shift[c], k->out_off);
    } else {
        acc = tinyml_conv_requantize(acc, k->mult[c], k->shift[c]) + k->out_off;
    }
    return (int8_t)tinyml_clamp(acc, k->lo, k->hi);
}

#if TINYML_DSP
/* SXTAB16 of x rotated right by 8 (bytes 1 and 3) plus a. */
static inline int32_t invres_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#endif

/* One tap of four channels: a_i += w[i] * (x[i] + io) (io2: io in both halfwords). */
#if TINYML_DSP
#define INVRES_TAP(xp, wp)                                                                          \
    do {                                                                                            \
        const int32_t xv_ = tinyml_read_s8x4(xp), wv_ = tinyml_read_s8x4(wp);                      \
        const int32_t x02_ = (int32_t)__sxtab16(io2, xv_), x13_ = invres_sxtab16_ror8(io2, xv_);  \
        const int32_t w02_ = (int32_t)__sxtb16(wv_), w13_ = tinyml_sxtb16_ror8(wv_);               \
        a0 = __smlabb(w02_, x02_, a0);                                                              \
        a2 = __smlatt(w02_, x02_, a2);                                                              \
        a1 = __smlabb(w13_, x13_, a1);                                                              \
        a3 = __smlatt(w13_, x13_, a3);                                                              \
    } while (0)
#else
#define INVRES_TAP(xp, wp)                                                                          \
    do {                                                                                            \
        const int8_t *x_ = (xp), *w_ = (wp);                                                        \
        a0 += w_[0] * (x_[0] + io);                                                                 \
        a1 += w_[1] * (x_[1] + io);                                                                 \
        a2 += w_[2] * (x_[2] + io);                                                                 \
        a3 += w_[3] * (x_[3] + io);                                                                 \
    } while (0)
#endif

/* Row oy of DEPTHWISE_CONV_2D (multiplier 1): input row iy lives at
 * rows + (iy % ring) * in_w * channels; out receives out_w * channels values.
 * Every in-image row of the window must be in the ring. Channels go four at
 * a time (with DSP: SXTAB16 adds the input offset to two bytes, SMLABB/SMLATT
 * accumulate each halfword; |x + io| <= 255 fits a halfword, so it is exact). */
static inline __attribute__((always_inline)) void dw_row_m(const tinyml_invres_dw *d, int32_t ring,
                                                            const int8_t *rows, const int8_t *filter, int32_t oy,
                                                            int8_t *out, const int fast)
{
    const dw_epilogue k = {d->output_offset, d->activation.min, d->activation.max, d->multiplier, d->shift};
    const int32_t ch = d->channels, io = d->input_offset;
    const size_t in_row = (size_t)d->in_w * (size_t)ch, x_tap = (size_t)d->dilation_w * ch;
    const size_t w_row = (size_t)d->k_w * ch;
    const int32_t iy0 = oy * d->stride_h - d->pad_h;
    int32_t ky0, ky1;
    tinyml_tap_range(iy0, d->dilation_h, d->k_h, d->in_h, &ky0, &ky1);
    const int8_t *xrow[TINYML_INVRES_MAX_K];           /* the window's in-image rows */
    const int32_t nky = ky1 - ky0;
    for (int32_t j = 0; j < nky; ++j) {
        xrow[j] = rows + (size_t)((iy0 + (ky0 + j) * d->dilation_h) % ring) * in_row;
    }
#if TINYML_DSP
    const int32_t io2 = (int32_t)(((uint32_t)io & 0xffffu) | ((uint32_t)io << 16));
#endif
    const int grouped3 = d->weights_grouped && d->k_h == 3 && d->k_w == 3 && nky >= 1;
    const dw3_consts k3 = {ch, io, d->output_offset, d->activation.min, d->activation.max, x_tap, d->bias,
                           d->multiplier, d->shift};
    const int full = d->activation.min == -128 && d->activation.max == 127;
    for (int32_t ox = 0; ox < d->out_w; ++ox) {
        const int32_t ix0 = ox * d->stride_w - d->pad_w;
        int32_t kx0, kx1;
        tinyml_tap_range(ix0, d->dilation_w, d->k_w, d->in_w, &kx0, &kx1);
        const int32_t nkx = kx1 - kx0;
        const size_t col = (size_t)(ix0 + kx0 * d->dilation_w) * ch;
        if (grouped3 && nkx >= 1) {
            /* A run of pixels whose windows have the same in-image columns. */
            int32_t n = 1;
            for (; ox + n < d->out_w; ++n) {
                int32_t a, e;
                tinyml_tap_range(ix0 + n * d->stride_w, d->dilation_w, 3, d->in_w, &a, &e);
                if (a != kx0 || e != kx1) {
                    break;
                }
            }
            const int8_t *x3[3] = {xrow[0] + col, xrow[nky > 1 ? 1 : 0] + col, xrow[nky > 2 ? 2 : 0] + col};
            dw3_run_any(&k3, x3, nky, nkx, filter, ky0 * 3 + kx0, n, (size_t)d->stride_w * ch,
                        out + (size_t)ox * ch, fast, full);
            ox += n - 1;
            continue;
        }
        const int8_t *w00 = filter + ((size_t)ky0 * d->k_w + kx0) * ch;
        int8_t *px = out + (size_t)ox * ch;
        int32_t c = 0;
        const int full3 = nky == 3 && nkx == 3;          /* the interior of a 3x3 window: unrolled */
        for (; c + 4 <= ch; c += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            TINYML_BIAS4(d->bias, c, a0, a1, a2, a3);
            if (full3) {
                for (int32_t j = 0; j < 3; ++j) {
                    const int8_t *x = xrow[j] + col + c;
                    const int8_t *w = w00 + (size_t)j * w_row + c;
                    INVRES_TAP(x, w);
                    INVRES_TAP(x + x_tap, w + ch);
                    INVRES_TAP(x + 2 * x_tap, w + 2 * ch);
                }
            } else {
                for (int32_t j = 0; j < nky; ++j) {
                    const int8_t *x = xrow[j] + col + c;
                    const int8_t *w = w00 + (size_t)j * w_row + c;
                    if (nkx == 3) {                      /* border rows of a 3-wide window: unrolled */
                        INVRES_TAP(x, w);
                        INVRES_TAP(x + x_tap, w + ch);
                        INVRES_TAP(x + 2 * x_tap, w + 2 * ch);
                        continue;
                    }
                    if (nkx == 2) {
                        INVRES_TAP(x, w);
                        INVRES_TAP(x + x_tap, w + ch);
                        continue;
                    }
                    for (int32_t i = 0; i < nkx; ++i, x += x_tap, w += ch) {
                        INVRES_TAP(x, w);
                    }
                }
            }
            px[c] = dw_finish(&k, a0, c, fast);
            px[c + 1] = dw_finish(&k, a1, c + 1, fast);
            px[c + 2] = dw_finish(&k, a2, c + 2, fast);
            px[c + 3] = dw_finish(&k, a3, c + 3, fast);
        }
        for (; c < ch; ++c) {
            int32_t acc = d->bias ? d->bias[c] : 0;
            for (int32_t j = 0; j < nky; ++j) {
                const int8_t *x = xrow[j] + col + c;
                const int8_t *w = w00 + (size_t)j * w_row + c;
                for (int32_t i = 0; i < nkx; ++i, x += x_tap, w += ch) {
                    acc += *w * (*x + io);
                }
            }
            px[c] = dw_finish(&k, acc, c, fast);
        }
    }
}

static void dw_row(const tinyml_invres_dw *d, int32_t ring, const int8_t *rows, const int8_t *filter, int32_t oy,
                   int8_t *out)
{
    if (d->fast_requant) {
        dw_row_m(d, ring, rows, filter, oy, out, 1);
    } else {
        dw_row_m(d, ring, rows, filter, oy, out, 0);
    }
}

tinyml_status tinyml_fused_invres_s8(const tinyml_ctx *ctx, const tinyml_invres_params *p,
                                     const int8_t *input, const int8_t *expand_filter, const int8_t *dw_filter,
                                     const int8_t *project_filter, int8_t *output)
{
    const tinyml_invres_dw *d = &p->dw;
    const tinyml_conv_packed_params *ex = &p->expand, *pr = &p->project;
    const int32_t row = out_row_bytes(p);
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    if (!scratch || d->channels <= 0 || d->k_h > TINYML_INVRES_MAX_K ||
        p->dw_rows != (d->k_h - 1) * d->dilation_h + 1 ||
        pr->k_h != 1 || pr->k_w != 1 || pr->stride_h != 1 || pr->in_h != d->out_h || pr->in_w != d->out_w ||
        pr->in_c != d->channels ||
        (p->has_expand && (ex->out_h != d->in_h || ex->out_w != d->in_w || ex->layer.output_depth != d->channels)) ||
        (p->has_add && (pr->out_h != (p->has_expand ? ex->in_h : d->in_h) ||
                        row != (p->has_expand ? ex->in_w * ex->in_c : d->in_w * d->channels)))) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_fused_invres_s8_scratch_size(p));
    int8_t *ring = scratch;
    int8_t *drow = ring + ring_bytes(p);
    int8_t *prow = drow + tinyml_pad4(d_row_bytes(p));
    int8_t *col = prow + (p->has_add ? tinyml_pad4(row) : 0);
    /* The convolutions' im2col buffer (0 bytes for direct 1x1s): the rest of the scratch. */
    const tinyml_ctx col_ctx = {col, ctx->size - (int32_t)(col - scratch)};
    const int32_t e_row = d->in_w * d->channels;
    const int32_t reach = (d->k_h - 1) * d->dilation_h;   /* rows of e below the first one a window reads */
    /* Without expand, the depthwise reads x itself (a "ring" of the whole image). */
    const int8_t *rows = p->has_expand ? ring : input;
    const int32_t nring = p->has_expand ? p->dw_rows : d->in_h;
    int32_t next = 0;                                      /* next e row to compute */
    for (int32_t oy = 0; oy < d->out_h; ++oy) {
        if (p->has_expand) {
            int32_t need = oy * d->stride_h - d->pad_h + reach;
            if (need > d->in_h - 1) {
                need = d->in_h - 1;
            }
            for (; next <= need; ++next) {
                tinyml_status st = tinyml_conv2d_packed_rows_s8(&col_ctx, ex, ex->in_h, input, expand_filter, next,
                                                                next + 1, ring + (size_t)(next % nring) * e_row);
                if (st != TINYML_OK) {
                    return st;
                }
            }
        }
        dw_row(d, nring, rows, dw_filter, oy, drow);
        int8_t *dst = output + (size_t)oy * row;
        tinyml_status st = tinyml_conv2d_packed_rows_s8(&col_ctx, pr, 1, drow, project_filter, oy, oy + 1,
                                                        p->has_add ? prow : dst);
        if (st != TINYML_OK) {
            return st;
        }
        if (p->has_add) {
            /* Element-wise, ascending: the output row may lie over the identity row. */
            const int8_t *skip = input + (size_t)oy * row;
            st = tinyml_fused_add_s8(&p->add, row, p->p_first ? prow : skip, p->p_first ? skip : prow, dst);
            if (st != TINYML_OK) {
                return st;
            }
        }
    }
    return TINYML_OK;
}
