/*
 * Force-included into every firmware translation unit (-include compat.h).
 *
 * arm-none-eabi-gcc 12's <arm_acle.h> lacks the ACLE rotate intrinsic
 * __ror(x, y) (later GCCs have it); the kernels' DSP paths use it. Rotate
 * right: (x >> y) | (x << (32 - y)), y taken mod 32.
 */
#ifndef TINYML_FW_COMPAT_H
#define TINYML_FW_COMPAT_H
#if defined(__ARM_ARCH) && defined(__GNUC__) && !defined(__clang__) && (__GNUC__ <= 12)
#include <stdint.h>
#include <arm_acle.h>
static inline uint32_t tinyml_fw_ror(uint32_t x, uint32_t y)
{
    y &= 31u;
    return y ? (x >> y) | (x << (32u - y)) : x;
}
#define __ror(x, y) tinyml_fw_ror((uint32_t)(x), (uint32_t)(y))
#endif
#endif
