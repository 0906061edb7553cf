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

void selftest_main(void) __attribute__((noreturn));
void serial_main(void) __attribute__((noreturn));

#endif /* TINYML_APP_H */
