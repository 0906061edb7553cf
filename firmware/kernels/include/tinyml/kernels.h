/* tinyml kernels: umbrella header. One header per op group. */
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

#endif /* TINYML_KERNELS_H */
