/* tinyml kernels: shape group (strided copy, concatenation). */
#include "tinyml/shape.h"

#include <string.h>

tinyml_status tinyml_strided_copy(const tinyml_view4 *view, int32_t elem_bytes,
                                  const void *input, void *output)
{
    if (!view || !input || !output || (elem_bytes != 1 && elem_bytes != 2 && elem_bytes != 4)) {
        return TINYML_ERROR_ARG;
    }
    const int32_t *d = view->dims;
    const int32_t *s = view->stride;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const int32_t row_bytes = d[3] * elem_bytes;
    for (int32_t i0 = 0; i0 < d[0]; ++i0) {
        for (int32_t i1 = 0; i1 < d[1]; ++i1) {
            for (int32_t i2 = 0; i2 < d[2]; ++i2) {
                const int32_t base = view->start + i0 * s[0] + i1 * s[1] + i2 * s[2];
                if (s[3] == 1) {
                    memcpy(out, in + (size_t)base * (size_t)elem_bytes, (size_t)row_bytes);
                    out += row_bytes;
                } else if (elem_bytes == 1) {
                    for (int32_t i3 = 0; i3 < d[3]; ++i3) {
                        *out++ = in[base + i3 * s[3]];
                    }
                } else {
                    for (int32_t i3 = 0; i3 < d[3]; ++i3) {
                        memcpy(out, in + (size_t)(base + i3 * s[3]) * (size_t)elem_bytes,
                               (size_t)elem_bytes);
                        out += elem_bytes;
                    }
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_concat_part_copy(const tinyml_concat_part *part, int32_t elem_bytes, int32_t outer,
                                      const void *input, int32_t out_inner, void *output)
{
    if (!part || !input || !output || outer < 0 || elem_bytes <= 0 ||
        (part->table && elem_bytes != 1)) {
        return TINYML_ERROR_ARG;
    }
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const size_t n = (size_t)part->inner * (size_t)elem_bytes;
    for (int32_t o = 0; o < outer; ++o) {
        uint8_t *dst = out + ((size_t)o * (size_t)out_inner + (size_t)part->offset) * (size_t)elem_bytes;
        const uint8_t *src = in + (size_t)o * n;
        if (part->table) {
            for (size_t k = 0; k < n; ++k) {
                dst[k] = part->table[src[k]];
            }
        } else {
            memcpy(dst, src, n);
        }
    }
    return TINYML_OK;
}
