/* tinyml kernels: UNIDIRECTIONAL_SEQUENCE_LSTM (integer 8x8->16). See lstm.h for the
 * arithmetic contract. */
#include <string.h>

#include "tinyml/lstm.h"

/* ---- gemmlowp fixed point on int16 (FixedPoint<int16_t, k>): sums and negations wrap
 * to int16 like the reference's; products, power-of-two scalings and the constants
 * (int32 raw values rounded by 2^16, RescaleConstantInitializer) as gemmlowp's. ---- */

static inline int16_t wrap16(int32_t x)
{
    return (int16_t)(uint16_t)(uint32_t)x;
}

/* SaturatingRoundingDoublingHighMul on int16. */
static inline int16_t mul16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* RoundingDivideByPOT on int16, 0 <= e <= 15. */
static inline int16_t rdiv16(int16_t x, int32_t e)
{
    const int32_t mask = (1 << e) - 1;
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int16_t)((x >> e) + (remainder > threshold ? 1 : 0));
}

/* SaturatingRoundingMultiplyByPOT<e> on int16. */
static inline int16_t pot16(int16_t x, int32_t e)
{
    if (e > 0) {
        const int32_t threshold = (1 << (15 - e)) - 1;
        if (x > threshold) {
            return INT16_MAX;
        }
        if (x < -threshold) {
            return INT16_MIN;
        }
        return (int16_t)(x * (1 << e));
    }
    return e < 0 ? rdiv16(x, -e) : x;
}

/* exp(a) for a in [-1/4, 0), Q0.15: Taylor series around -1/8. */
static int16_t exp_quarter(int16_t a)
{
    const int16_t c_exp_m1_8 = 28918, c_1_3 = 10923;
    const int16_t x = wrap16(a + (1 << 12));
    const int16_t x2 = mul16(x, x);
    const int16_t x3 = mul16(x2, x);
    const int16_t x4 = mul16(x2, x2);
    const int16_t x4_4 = rdiv16(x4, 2);
    const int16_t poly = rdiv16(wrap16(mul16(wrap16(x4_4 + x3), c_1_3) + x2), 1);
    const int32_t sum = (int32_t)c_exp_m1_8 + mul16(c_exp_m1_8, wrap16(x + poly));
    return (int16_t)(sum > INT16_MAX ? INT16_MAX : sum < INT16_MIN ? INT16_MIN : sum);
}

/* exp(a) for a <= 0 with k integer bits, Q0.15 (gemmlowp exp_on_negative_values). */
static int16_t exp_negative(int16_t a, int32_t k)
{
    /* exp(-2^e) for e = -2..4, Q0.15 */
    static const int16_t barrel[7] = {25520, 19875, 12055, 4435, 600, 11, 0};
    const int32_t frac = 15 - k;
    const int16_t quarter = (int16_t)(1 << (frac - 2));
    const int16_t a_mod = wrap16((a & (quarter - 1)) - quarter);
    int16_t result = exp_quarter(pot16(a_mod, k));
    const int16_t remainder = wrap16(a_mod - a);
    for (int32_t e = -2; e <= 4; ++e) {
        if (k > e && (remainder & (1 << (frac + e)))) {
            result = mul16(result, barrel[e + 2]);
        }
    }
    if (k > 5) {
        const int16_t clamp = (int16_t)(-(1 << (36 - k - 16)));
        if (a < clamp) {
            result = 0;
        }
    }
    return a == 0 ? INT16_MAX : result;
}

/* Newton-Raphson 1 / (1 + a) in Q2.13 from 48/17 - 32/17 * d, d = (1 + a) / 2. */
static int16_t reciprocal_q2_13(int16_t a)
{
    const int32_t sum = (int32_t)a + INT16_MAX;
    const int16_t half_denominator = (int16_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int16_t c_48_17 = 23130, c_m32_17 = -15420;
    int16_t x = wrap16(c_48_17 + mul16(half_denominator, c_m32_17));
    for (int i = 0; i < 3; ++i) {
        const int16_t one_minus = wrap16((1 << 13) - mul16(half_denominator, x));
        x = wrap16(x + pot16(mul16(x, one_minus), 2));
    }
    return x;
}

int16_t tinyml_logistic_q15(int16_t x, int32_t integer_bits)
{
    if (x == 0) {
        return 16384;
    }
    const int16_t magnitude = x > 0 ? x : wrap16(-x);
    const int16_t e = exp_negative(wrap16(-magnitude), integer_bits);
    const int16_t positive = pot16(reciprocal_q2_13(e), 1);     /* 1 / (1 + e) in Q0.15 */
    return x > 0 ? positive : wrap16(INT16_MAX - positive);
}

int16_t tinyml_tanh_q15(int16_t x, int32_t integer_bits)
{
    if (x == 0) {
        return 0;
    }
    const int16_t negative = x < 0 ? x : wrap16(-x);
    const int16_t e = exp_negative(negative, integer_bits + 1);  /* exp(-2|x|) */
    const int16_t t = pot16(wrap16(reciprocal_q2_13(e) - (1 << 13)), 2);   /* (1 - e) / (1 + e) */
    return x < 0 ? wrap16(-t) : t;
}

/* ---- the step ---- */

int32_t tinyml_lstm_s8_scratch_size(const tinyml_lstm_params *params)
{
    if (!params) {
        return 0;
    }
    const int32_t n = params->batches * params->n_cell;
    return 4 * n * (int32_t)sizeof(int16_t) + (params->projection_weights ? tinyml_pad4(n) : 0);
}

static int32_t row_dot(const int8_t *v, const int8_t *w, int32_t depth, int32_t bias)
{
    int32_t acc = bias;
    for (int32_t k = 0; k < depth; ++k) {
        acc += (int32_t)v[k] * (int32_t)w[k];
    }
    return acc;
}

/* gate[b][c] = clamp16(MBQM(sum_k v[b][k] w[c][k] + bias[c], q) + gate[b][c]) */
static void gate_accumulate(const int8_t *v, int32_t v_stride, int32_t batches, int32_t depth, const int8_t *w,
                            const int32_t *bias, tinyml_quant q, int32_t n_cell, int16_t *gate)
{
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t c = 0; c < n_cell; ++c) {
            const int32_t acc = row_dot(v + b * v_stride, w + c * depth, depth, bias[c]);
            const int32_t y = tinyml_requantize_double(acc, q.multiplier, q.shift) + gate[b * n_cell + c];
            gate[b * n_cell + c] = (int16_t)tinyml_clamp(y, INT16_MIN, INT16_MAX);
        }
    }
}

static void gate(const tinyml_lstm_params *p, int32_t g, const int8_t *x, int32_t x_stride, const int8_t *h,
                 const int16_t *cell, int16_t *out)
{
    const tinyml_lstm_gate *gp = &p->gates[g];
    const int32_t n = p->batches * p->n_cell;
    memset(out, 0, (size_t)n * sizeof(int16_t));
    gate_accumulate(x, x_stride, p->batches, p->n_input, gp->input_weights, gp->input_bias, gp->input_quant,
                    p->n_cell, out);
    gate_accumulate(h, p->n_output, p->batches, p->n_output, gp->recurrent_weights, gp->recurrent_bias,
                    gp->recurrent_quant, p->n_cell, out);
    if (gp->peephole) {
        for (int32_t i = 0; i < n; ++i) {
            const int32_t prod = (int32_t)gp->peephole[i % p->n_cell] * (int32_t)cell[i];
            const int32_t y = tinyml_requantize_double(prod, gp->peephole_quant.multiplier, gp->peephole_quant.shift)
                              + out[i];
            out[i] = (int16_t)tinyml_clamp(y, INT16_MIN, INT16_MAX);
        }
    }
    for (int32_t i = 0; i < n; ++i) {
        out[i] = g == 2 ? tinyml_tanh_q15(out[i], 3) : tinyml_logistic_q15(out[i], 3);
    }
}

tinyml_status tinyml_lstm_s8(const tinyml_ctx *ctx, const tinyml_lstm_params *p, const int8_t *input,
                             int8_t *output_state, int16_t *cell_state, int8_t *output)
{
    if (!ctx || !ctx->buf || !p || !input || !output_state || !cell_state || !output || p->batches <= 0 ||
        p->steps <= 0 || p->n_input <= 0 || p->n_cell <= 0 || p->n_output <= 0 ||
        (p->n_output != p->n_cell && !p->projection_weights) || p->cell_scale > 1 || p->cell_scale < -30) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_lstm_s8_scratch_size(p));
    const int32_t n = p->batches * p->n_cell;
    int16_t *g_in = (int16_t *)ctx->buf, *g_forget = g_in + n, *g_cell = g_forget + n, *g_out = g_cell + n;
    /* batch rows of one step: consecutive (time major) or `steps` rows apart */
    const int32_t x_stride = p->time_major ? p->n_input : p->steps * p->n_input;
    const int32_t y_stride = p->time_major ? p->n_output : p->steps * p->n_output;
    const int32_t x_step = p->time_major ? p->batches * p->n_input : p->n_input;
    const int32_t y_step = p->time_major ? p->batches * p->n_output : p->n_output;
    const int32_t cell_shift = 30 + p->cell_scale, tanh_bits = 15 + p->cell_scale;
    for (int32_t t = 0; t < p->steps; ++t) {
        const int8_t *x = input + t * x_step;
        if (!p->cifg) {
            gate(p, 0, x, x_stride, output_state, cell_state, g_in);
        }
        gate(p, 1, x, x_stride, output_state, cell_state, g_forget);
        gate(p, 2, x, x_stride, output_state, cell_state, g_cell);
        for (int32_t i = 0; i < n; ++i) {
            const int16_t kept = (int16_t)tinyml_rounding_divide_by_pot((int32_t)g_forget[i] * cell_state[i], 15);
            const int32_t in_gate = p->cifg ? (int16_t)(INT16_MAX - g_forget[i]) : g_in[i];
            const int16_t added = (int16_t)tinyml_rounding_divide_by_pot(in_gate * g_cell[i], cell_shift);
            int32_t c = tinyml_clamp((int32_t)kept + added, INT16_MIN, INT16_MAX);
            if (p->cell_clip > 0) {
                c = tinyml_clamp(c, -p->cell_clip, p->cell_clip);
            }
            cell_state[i] = (int16_t)c;
        }
        gate(p, 3, x, x_stride, output_state, cell_state, g_out);
        int8_t *hidden = p->projection_weights ? (int8_t *)(g_out + n) : output_state;
        for (int32_t i = 0; i < n; ++i) {
            /* TFLite's ApplyTanh handles 0..6 integer bits and does nothing otherwise: its
             * buffer (the input gate's) is then used as it is. */
            const int32_t tanh_c = tanh_bits >= 0 && tanh_bits <= 6 ? tinyml_tanh_q15(cell_state[i], tanh_bits)
                                                                    : g_in[i];
            const int32_t y = tinyml_requantize_double((int32_t)g_out[i] * tanh_c, p->hidden_quant.multiplier,
                                                p->hidden_quant.shift) + p->hidden_offset;
            hidden[i] = (int8_t)tinyml_clamp(y, -128, 127);
        }
        if (p->projection_weights) {
            for (int32_t b = 0; b < p->batches; ++b) {
                for (int32_t j = 0; j < p->n_output; ++j) {
                    const int32_t acc = row_dot(hidden + b * p->n_cell, p->projection_weights + j * p->n_cell,
                                                p->n_cell, p->projection_bias[j]);
                    int32_t y = tinyml_requantize_double(acc, p->projection_quant.multiplier,
                                                         p->projection_quant.shift) + p->output_state_zp;
                    y = tinyml_clamp(y, -128, 127);
                    if (p->proj_clip > 0) {
                        y = tinyml_clamp(y, -p->proj_clip, p->proj_clip);
                    }
                    output_state[b * p->n_output + j] = (int8_t)y;
                }
            }
        }
        for (int32_t b = 0; b < p->batches; ++b) {
            memcpy(output + t * y_step + b * y_stride, output_state + b * p->n_output, (size_t)p->n_output);
        }
    }
    return TINYML_OK;
}
