/* tinyml firmware application: self-test and MLPerf Tiny serial modes. */
#ifndef TINYML_APP_H
#define TINYML_APP_H

#include <stdint.h>

/* One embedded test vector: model input 0 and the TFLite-reference output 0. */
typedef struct {
    const int8_t *input;
    uint32_t input_bytes;
    const int8_t *expected;
    uint32_t expected_bytes;
} tinyml_vector_t;

extern const tinyml_vector_t tinyml_test_vectors[];
extern const uint32_t tinyml_num_test_vectors;

/* Self-test: make `src` (TINYML_INPUT_BYTES, or NULL for all zeros) the next
 * run's input 0: copied into the arena, or with --stream-input
 * (TINYML_STREAM_INPUT) served stripe by stripe to tinyml_read_input_rows(). */
void selftest_set_input(const int8_t *src);
void selftest_main(void) __attribute__((noreturn));
void serial_main(void) __attribute__((noreturn));

#endif /* TINYML_APP_H */
