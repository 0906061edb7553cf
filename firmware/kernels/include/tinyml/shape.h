/* tinyml kernels: shape group. */
#ifndef TINYML_SHAPE_H
#define TINYML_SHAPE_H

#include "tinyml/common.h"

#endif
