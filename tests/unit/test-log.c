/* Logging settings: how the debug-domain setting is read. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/log.h"

static void
test_debug_domains (void)
{
  g_autoptr (CanopyLog) log = canopy_log_new ();

  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "");
  canopy_log_set_debug_domains (log, " canopy-tcp, canopy  canopyd ");
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "canopy-tcp,canopy,canopyd");
  canopy_log_set_debug_domains (log, NULL);
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "");
  canopy_log_set_debug_domains (log, "all");
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "all");
}

CANOPY_TEST_SUITE (log, "log", NULL, NULL, { "debug domains", test_debug_domains })
