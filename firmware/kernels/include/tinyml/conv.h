/* tinyml kernels: conv group. */
#ifndef TINYML_CONV_H
#define TINYML_CONV_H

#include "tinyml/common.h"

#endif
