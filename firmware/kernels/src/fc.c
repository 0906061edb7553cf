/* tinyml kernels: fully connected (int8). */
#include "tinyml/fc.h"

#include <string.h>

int32_t tinyml_sum_s8(const int8_t *a, int32_t n)
{
    int32_t s = 0;
    for (int32_t i = 0; i < n; ++i) {
        s += a[i];
    }
    return s;
}

#if TINYML_DSP
static inline int32_t read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4); /* unaligned-safe; compiles to one LDR on Cortex-M4/M7 */
    return v;
}
#endif

int32_t tinyml_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if TINYML_DSP
    for (; i + 4 <= n; i += 4) {
        const int32_t va = read_s8x4(a + i);
        const int32_t vb = read_s8x4(b + i);
        /* bytes 0,2 and bytes 1,3 sign-extended to halfwords, then two
         * 16x16 multiply-accumulates each. */
        acc = __smlad(__sxtb16(va), __sxtb16(vb), acc);
        acc = __smlad(__sxtb16(tinyml_ror((uint32_t)va, 8)), __sxtb16(tinyml_ror((uint32_t)vb, 8)), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

tinyml_status tinyml_fully_connected_s8(const tinyml_fc_params *params,
                                        const tinyml_per_channel_quant *quant,
                                        int32_t batches, int32_t accum_depth, int32_t output_depth,
                                        const int8_t *input, const int8_t *filter,
                                        const int32_t *bias, int8_t *output)
{
    if (batches < 0 || accum_depth <= 0 || output_depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t io = params->input_offset;
    const int32_t fo = params->filter_offset;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        /* sum (w + fo)(x + io) = sum wx + io sum w + fo sum x + n io fo,
         * exact in two's complement, so the expansion gives the reference's bytes. */
        const int32_t sum_x = tinyml_sum_s8(x, accum_depth);
        for (int32_t o = 0; o < output_depth; ++o) {
            const int8_t *w = filter + o * accum_depth;
            int32_t acc = tinyml_dot_s8(w, x, accum_depth);
            if (io != 0) {
                acc += io * tinyml_sum_s8(w, accum_depth);
            }
            acc += fo * sum_x + accum_depth * io * fo;
            if (bias) {
                acc += bias[o];
            }
            acc = tinyml_requantize(acc, quant->multiplier[o], quant->shift[o]);
            acc += params->output_offset;
            acc = TINYML_CLAMP(acc, params->activation.min, params->activation.max);
            output[b * output_depth + o] = (int8_t)acc;
        }
    }
    return TINYML_OK;
}
