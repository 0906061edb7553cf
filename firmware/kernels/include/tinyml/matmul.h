/* tinyml kernels: batched matrix multiply (int8). */
#ifndef TINYML_MATMUL_H
#define TINYML_MATMUL_H

#include "tinyml/common.h"

#endif
