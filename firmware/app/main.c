/* Entry after reset: pick the mode compiled in (TINYML_MODE_SERIAL or self-test). */
#include "app.h"
#include "runtime.h"

void app_main(void)
{
#if TINYML_MODE_SERIAL
    serial_main();
#else
    selftest_main();
#endif
}
