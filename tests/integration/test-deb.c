/* The Debian packages, built, installed, run as their units run them,
 * used for one deployment and purged: tests/deb/deb-test.sh does the work
 * as an admin's shell would; this suite runs it and reports its verdict. */
#include "build-config.h"

#include "tests/canopy-test.h"

#include <string.h>

static void
test_packages (void)
{
  g_autofree char *script = canopy_test_src_path ("tests", "deb", "deb-test.sh", NULL);
  g_autofree char *builddir = canopy_test_build_path (NULL, NULL);
  const char *argv[] = { "/bin/sh", script, builddir, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyTestProcess) proc = canopy_test_process_spawn (argv, &error);
  const char *output;
  int status;

  CANOPY_ASSERT_NO_ERROR (error);
  /* Building the packages reuses debian/build between runs; the first
   * build of a fresh tree takes a few minutes on a loaded machine. */
  status = canopy_test_process_wait_exit (proc, canopy_test_timeout (900));
  output = canopy_test_process_output (proc);
  if (status == 77)
    {
      const char *reason = g_strrstr (output, "SKIP: ");

      canopy_test_skip ("%s", reason != NULL ? reason + 6 : output);
      return;
    }
  if (status != 0)
    fprintf (stderr, "\n%s\n", output);
  CU_ASSERT_EQUAL (status, 0);
  CANOPY_ASSERT_CONTAINS (output, "installed copy matches byte for byte");
  CANOPY_ASSERT_CONTAINS (output, "PASS");
}

CANOPY_TEST_SUITE (deb, "deb", NULL, NULL,
                   { "packages build, pass lintian, install, deploy one package and purge",
                     test_packages })
