/* tinyml kernels: activation group. */
#ifndef TINYML_ACTIVATION_H
#define TINYML_ACTIVATION_H

#include "tinyml/common.h"

#endif
