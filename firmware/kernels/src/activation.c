/* tinyml kernels: table-driven 8-bit activations, float negation. */
#include "tinyml/activation.h"

tinyml_status tinyml_lut_8(const uint8_t *table, int32_t n, const void *input, void *output)
{
    if (!table || !input || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t a = in[i], b = in[i + 1], c = in[i + 2], d = in[i + 3];
        out[i] = table[a];
        out[i + 1] = table[b];
        out[i + 2] = table[c];
        out[i + 3] = table[d];
    }
    for (; i < n; ++i) {
        out[i] = table[in[i]];
    }
    return TINYML_OK;
}

tinyml_status tinyml_neg_f32(int32_t n, const float *input, float *output)
{
    if (!input || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < n; ++i) {
        output[i] = -input[i];
    }
    return TINYML_OK;
}
