/* tinyml kernels: L2_NORMALIZATION (int8). See reduce.h. */
#include "tinyml/reduce.h"

void tinyml_inv_sqrt_multiplier(int32_t input, int32_t *multiplier, int32_t *shift)
{
    if (input <= 1) {
        *multiplier = INT32_MAX;
        *shift = 0;
        return;
    }
    int32_t sh = 11;
    while (input >= (1 << 29)) {
        input /= 4;
        ++sh;
    }
    const int32_t pairs = (tinyml_clz32((uint32_t)input) - 1) / 2 - 1;
    sh -= pairs;
    input = (int32_t)((uint32_t)input << (2 * pairs));
    /* Newton-Raphson for 1/sqrt in Q3.28: x <- 1.5 x - (input / 2) x^3. */
    const int32_t half_input = tinyml_rounding_divide_by_pot(input >> 1, 1);
    const int32_t half_three = (1 << 28) + (1 << 27);
    int32_t x = 1 << 28;
    for (int i = 0; i < 5; ++i) {
        const int32_t x3 = tinyml_sat_shift_left(tinyml_doubling_high_mul(tinyml_doubling_high_mul(x, x), x), 6);
        const int32_t diff = (int32_t)((uint32_t)tinyml_doubling_high_mul(half_three, x) -
                                       (uint32_t)tinyml_doubling_high_mul(half_input, x3));
        x = tinyml_sat_shift_left(diff, 3);
    }
    x = tinyml_doubling_high_mul(x, 1518500250);          /* * sqrt(2) / 2 in Q0.31 */
    if (sh < 0) {
        x = (int32_t)((uint32_t)x << -sh);
        sh = 0;
    }
    *multiplier = x;
    *shift = -sh;                                          /* reverse_shift = -1 */
}

tinyml_status tinyml_l2_normalization_s8(int32_t input_zp, int32_t rows, int32_t depth,
                                         const int8_t *input, int8_t *output)
{
    if (!input || !output || rows < 0 || depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + (size_t)r * (size_t)depth;
        int8_t *y = output + (size_t)r * (size_t)depth;
        int32_t acc = 0;
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t v = x[i] - input_zp;
            acc += v * v;
        }
        int32_t m, s;
        tinyml_inv_sqrt_multiplier(acc, &m, &s);
        for (int32_t i = 0; i < depth; ++i) {
            y[i] = tinyml_sat_s8(tinyml_requantize_double(x[i] - input_zp, m, s + 7));
        }
    }
    return TINYML_OK;
}
