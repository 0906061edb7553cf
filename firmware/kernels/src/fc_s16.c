/* FULLY_CONNECTED 16x8 (tinyml/s16.h). */
#include "tinyml/s16.h"

tinyml_status tinyml_fc_s16(const tinyml_fc_s16_params *params, int32_t batches, const int16_t *input,
                            const int8_t *filter, const int64_t *bias, int16_t *output)
{
    if (!params || !input || !filter || !output || batches < 0 || params->accum_depth <= 0
        || params->output_depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t n = params->accum_depth, od = params->output_depth;
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *x = input + (size_t)b * n;
        int16_t *y = output + (size_t)b * od;
        for (int32_t o = 0; o < od; ++o) {
            const int8_t *w = filter + (size_t)o * n;
            int64_t acc = 0;
            int32_t part = 0;            /* <= 256 products of |w x| <= 2^22 each: < 2^31 */
            for (int32_t d = 0; d < n; ++d) {
                part += (int32_t)w[d] * x[d];
                if ((d & 255) == 255) {
                    acc += part;
                    part = 0;
                }
            }
            acc += part;
            if (bias) {
                acc += bias[o];
            }
#if TINYML_SINGLE_ROUNDING
            /* TensorFlow 2.21's reference FULLY_CONNECTED (16x8), measured: the accumulator
             * is requantized with the int32 single-rounding MultiplyByQuantizedMultiplier. */
            const int32_t acc32 = (int32_t)TINYML_CLAMP(acc, (int64_t)INT32_MIN, (int64_t)INT32_MAX);
            const int32_t v = tinyml_requantize_single(acc32, params->multiplier[o], params->shift[o]);
#else
            /* tflite_micro: the 64-bit MultiplyByQuantizedMultiplier, as its convolutions. */
            const int32_t v = tinyml_requantize_s64(acc, params->multiplier[o], params->shift[o]);
#endif
            y[o] = (int16_t)TINYML_CLAMP(v, params->activation.min, params->activation.max);
        }
    }
    return TINYML_OK;
}
