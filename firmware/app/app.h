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
/* Weak hook (returns 0): the self-test of further models linked in model_<name>/. */
int selftest_more_models(void);

/* --stream-input: whether rows row0 .. row0 + nrows - 1 are a stripe the model
 * may ask tinyml_read_input_rows() for (both apps check before serving). */
#define TINYML_STRIPE_VALID(row0, nrows)                                              \
    ((row0) >= 0 && (nrows) >= 1 && (nrows) <= TINYML_STREAM_ROWS &&                   \
     (uint32_t)((row0) + (nrows)) * TINYML_STREAM_ROW_BYTES <= TINYML_INPUT_BYTES)
void serial_main(void) __attribute__((noreturn));

/* MLPerf Tiny energy mode (TINYML_EEMBC_ENERGY builds, app/eembc_timestamp.c):
 * the timestamp pin as an open-drain output, released (high); one timestamp =
 * pull it low for >= 1 us, then release it. */
void eembc_timestamp_pin_init(void);
void eembc_timestamp_pulse(void);

#endif /* TINYML_APP_H */
