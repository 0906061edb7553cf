/* tinyml kernel configuration. The generator overwrites this file in each
 * generated library to match the model's reference runtime. */
#ifndef TINYML_CONFIG_H
#define TINYML_CONFIG_H

/* 1: TFLite single-rounding requantization (TensorFlow 2.21 pip build);
 * 0: gemmlowp double rounding. See tinyml/common.h. */
#define TINYML_SINGLE_ROUNDING 1

#endif /* TINYML_CONFIG_H */
