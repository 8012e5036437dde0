/* What every fuzz target shares: GLib set up so that a critical or a
 * warning caused by outside input stops the run like a crash. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"

#include <locale.h>

void
canopy_fuzz_init (void)
{
  setlocale (LC_ALL, "C.UTF-8");
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}
