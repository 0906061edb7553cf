/* Per-op profiling hooks (profile builds only: `tinyml emulate DIR --profile`
 * force-includes this header into every translation unit and defines
 * TINYML_PROFILE=1). The generated model.c brackets every step with
 * TINYML_OP_BEGIN(index, kind) / TINYML_OP_END(index); here they record the
 * timer ticks spent in each step while recording is on. */
#ifndef TINYML_APP_PROFILE_H
#define TINYML_APP_PROFILE_H

#include <stdint.h>

void tinyml_prof_begin(int32_t index, const char *kind);
void tinyml_prof_end(int32_t index);

/* Run the model once on `input` with recording on and print one line per
 * step: `prof slot=S op=I kind=K ticks=T`, then `prof overhead=T steps=N
 * total=T` (ticks of an empty begin/end pair, already subtracted). */
void tinyml_prof_report(const int8_t *input);

#define TINYML_OP_BEGIN(index, kind) tinyml_prof_begin((index), (kind))
#define TINYML_OP_END(index) tinyml_prof_end(index)

#endif /* TINYML_APP_PROFILE_H */
