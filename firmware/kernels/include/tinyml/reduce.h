/* tinyml kernels: reduce group. */
#ifndef TINYML_REDUCE_H
#define TINYML_REDUCE_H

#include "tinyml/common.h"

#endif
