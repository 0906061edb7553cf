/* tinyml kernels: elementwise group. */
#ifndef TINYML_ELEMENTWISE_H
#define TINYML_ELEMENTWISE_H

#include "tinyml/common.h"

#endif
