/* tinyml kernels: TILE (any element width). See shape.h. */
#include "tinyml/shape.h"

#include <string.h>

tinyml_status tinyml_tile(const tinyml_tile_params *params, int32_t elem_bytes,
                          const void *input, void *output)
{
    if (!params || !input || !output || elem_bytes <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t *d = params->dims;
    const int32_t *m = params->multiples;
    for (int k = 0; k < 4; ++k) {
        if (d[k] < 0 || m[k] < 1) {
            return TINYML_ERROR_ARG;
        }
    }
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const size_t row = (size_t)d[3] * (size_t)elem_bytes;
    const int32_t o0 = d[0] * m[0], o1 = d[1] * m[1], o2 = d[2] * m[2];
    for (int32_t a = 0; a < o0; ++a) {
        for (int32_t b = 0; b < o1; ++b) {
            for (int32_t c = 0; c < o2; ++c) {
                const size_t src_row = ((size_t)(a % d[0]) * (size_t)d[1] + (size_t)(b % d[1])) * (size_t)d[2]
                                       + (size_t)(c % d[2]);
                const uint8_t *src = in + src_row * row;
                for (int32_t r = 0; r < m[3]; ++r) {
                    memcpy(out, src, row);
                    out += row;
                }
            }
        }
    }
    return TINYML_OK;
}
