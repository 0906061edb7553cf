/* Residual block as one row pipeline (tinyml/fused.h). */
#include "tinyml/fused.h"

/* Scratch layout: [y ring][z row][c row][im2col] (each 4-byte aligned). */
static int32_t ring_bytes(const tinyml_resblock_params *p)
{
    return tinyml_pad4(p->conv2_rows * p->conv1.out_w * p->conv1.layer.output_depth);
}

static int32_t out_row_bytes(const tinyml_resblock_params *p)
{
    return p->conv2.out_w * p->conv2.layer.output_depth;
}

int32_t tinyml_fused_resblock_s8_scratch_size(const tinyml_resblock_params *p)
{
    const int32_t rows = tinyml_pad4(out_row_bytes(p)) * (p->has_shortcut ? 2 : 1);
    const int32_t col = TINYML_MAX(TINYML_MAX(tinyml_conv2d_packed_s8_scratch_size(&p->conv1),
                                              tinyml_conv2d_packed_s8_scratch_size(&p->conv2)),
                                   p->has_shortcut ? tinyml_conv2d_packed_s8_scratch_size(&p->shortcut) : 0);
    return ring_bytes(p) + rows + col;
}

tinyml_status tinyml_fused_resblock_s8(const tinyml_ctx *ctx, const tinyml_resblock_params *p,
                                       const int8_t *input, const int8_t *filter1, const int8_t *filter2,
                                       const int8_t *filter_shortcut, int8_t *output)
{
    const tinyml_conv_packed_params *c1 = &p->conv1, *c2 = &p->conv2, *cs = &p->shortcut;
    const int32_t row = out_row_bytes(p);
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    if (!scratch || p->conv2_rows <= 0 || c2->stride_h != 1 || c2->in_h != c1->out_h || c2->in_w != c1->out_w ||
        c2->in_c != c1->layer.output_depth ||
        (p->has_shortcut && (cs->out_h != c2->out_h || cs->out_w != c2->out_w ||
                             cs->layer.output_depth != c2->layer.output_depth)) ||
        (!p->has_shortcut && (c1->in_h != c2->out_h || c1->in_w * c1->in_c != row))) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_fused_resblock_s8_scratch_size(p));
    int8_t *ring = scratch;
    int8_t *z = ring + ring_bytes(p);
    int8_t *c = z + tinyml_pad4(row);
    int8_t *col = c + (p->has_shortcut ? tinyml_pad4(row) : 0);
    /* The member convolutions' im2col buffer: the rest of the scratch. */
    const tinyml_ctx col_ctx = {col, ctx->size - (int32_t)(col - scratch)};
    const int32_t y_row = c1->out_w * c1->layer.output_depth;
    const int32_t reach = (c2->k_h - 1) * c2->dilation_h;     /* rows of y below the first one read */
    int32_t next = 0;                                          /* next y row to compute */
    for (int32_t oy = 0; oy < c2->out_h; ++oy) {
        /* y rows up to the last one output row oy reads, each into its ring slot. */
        int32_t need = oy - c2->pad_h + reach;
        if (need > c1->out_h - 1) {
            need = c1->out_h - 1;
        }
        for (; next <= need; ++next) {
            tinyml_status st = tinyml_conv2d_packed_rows_s8(&col_ctx, c1, c1->in_h, input, filter1, next, next + 1,
                                                            ring + (size_t)(next % p->conv2_rows) * y_row);
            if (st != TINYML_OK) {
                return st;
            }
        }
        tinyml_status st = tinyml_conv2d_packed_rows_s8(&col_ctx, c2, p->conv2_rows, ring, filter2, oy, oy + 1, z);
        if (st != TINYML_OK) {
            return st;
        }
        const int8_t *skip = input + (size_t)oy * row;                 /* identity: row oy of x */
        if (p->has_shortcut) {
            st = tinyml_conv2d_packed_rows_s8(&col_ctx, cs, cs->in_h, input, filter_shortcut, oy, oy + 1, c);
            if (st != TINYML_OK) {
                return st;
            }
            skip = c;
        }
        /* Element-wise: output row oy may be the identity row itself. */
        st = tinyml_fused_add_s8(&p->add, row, p->z_first ? z : skip, p->z_first ? skip : z,
                                 output + (size_t)oy * row);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}
