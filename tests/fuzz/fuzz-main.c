/* libFuzzer's entry points for one target, named at compile time by
 * CANOPY_FUZZ_TARGET: each fuzz program is this file and its target. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  canopy_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* libFuzzer takes 0 for every input; the verdict matters to the replay. */
  CANOPY_FUZZ_TARGET (data, size);
  return 0;
}
