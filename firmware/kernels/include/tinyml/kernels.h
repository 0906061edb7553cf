/* tinyml kernels: umbrella header, the one public header of the kernel API.
 * One header per op group; each kernel's declaration there carries a short
 * comment stating its arithmetic contract and the TensorFlow Lite reference
 * function whose bytes it reproduces.
 *
 * Argument order (every kernel, CMSIS-NN style):
 *
 *   tinyml_<op>_s8(ctx,                 scratch context, only for kernels that take scratch
 *                  params, quant,       op parameters, then requantization (often inside params)
 *                  input dims, input,   each input's extent (tinyml_dims, shape struct or count)
 *                                       before its data; several inputs in the op's operand order
 *                  filter dims, filter, constant operands (filters, bias, gamma/beta, weights)
 *                                       after the activation input(s) they combine with
 *                  output dims, output) the output's extent (if not implied) before its data
 *
 * Scratch: a kernel that needs scratch takes `const tinyml_ctx *ctx` first (a
 * pointer and its size, tinyml/common.h) and declares, beside it,
 *   int32_t <kernel>_scratch_size(<the params/dims the kernel receives>);
 * the generator plans at least that many bytes (checked on the host:
 * tests/test_scratch_size.py), and with -DTINYML_CHECK_SCRATCH a kernel given
 * less returns TINYML_ERROR_SCRATCH. Kernels with scratch:
 *   tinyml_conv2d_packed_s8 / _rows_s8   tinyml_conv2d_packed_s8_scratch_size   (conv.h)
 *   tinyml_batch_matmul_s8               tinyml_batch_matmul_s8_scratch_size    (matmul.h)
 *   tinyml_fused_attention_s8            tinyml_fused_attention_s8_scratch_size (fused.h)
 *   tinyml_fused_mlp_s8                  tinyml_fused_mlp_s8_scratch_size       (fused.h)
 *   tinyml_fused_resblock_s8             tinyml_fused_resblock_s8_scratch_size  (fused.h)
 *   tinyml_fused_invres_s8               tinyml_fused_invres_s8_scratch_size    (fused.h)
 *   tinyml_svdf_s8                       tinyml_svdf_s8_scratch_size            (svdf.h)
 *   tinyml_lstm_s8                       tinyml_lstm_s8_scratch_size            (lstm.h)
 *   tinyml_detection_postprocess_f32     tinyml_detection_postprocess_f32_scratch_size (detection.h)
 *
 * Every kernel returns tinyml_status (TINYML_OK = 0). Inner-loop helpers that
 * return values (tinyml_dot_s8, tinyml_sum_s8, tinyml_pack_s8, ...; tinyml/fc.h)
 * and the requantization functions (tinyml/common.h) are building blocks, not
 * kernels, and take their operands in mathematical order.
 *
 * Requantization: one double-rounding (tinyml_requantize_double), one
 * single-rounding (tinyml_requantize_single) implementation and one fast form
 * of the former (tinyml_requantize_double_fast), all in tinyml/common.h.
 */
#ifndef TINYML_KERNELS_H
#define TINYML_KERNELS_H

#include "tinyml/common.h"
#include "tinyml/conv.h"
#include "tinyml/fc.h"
#include "tinyml/matmul.h"
#include "tinyml/elementwise.h"
#include "tinyml/reduce.h"
#include "tinyml/activation.h"
#include "tinyml/shape.h"
#include "tinyml/fused.h"
#include "tinyml/s16.h"
#include "tinyml/detection.h"
#include "tinyml/svdf.h"
#include "tinyml/lstm.h"
#include "tinyml/stage.h"

#endif /* TINYML_KERNELS_H */
