/* The fuzz targets as ordinary tests: every input of the seed corpus
 * (tests/fuzz/corpus/TARGET/) and every input that once found a bug
 * (tests/fuzz/regressions/TARGET/) goes through its target again. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  CanopyFuzzFunc func;
} FuzzTarget;

/* What the replay asserts of an input, from its name: seeds named
 * "*-invalid.*" must be refused, other named seeds accepted; inputs the
 * fuzzer found (named by their SHA-1) and regressions only must not crash. */
typedef enum { EXPECT_ANY, EXPECT_ACCEPTED, EXPECT_REFUSED } Expectation;

static Expectation
expectation_of (const char *dir_name, const char *name)
{
  g_autofree char *stem = g_strndup (name, strcspn (name, "."));

  if (g_str_equal (dir_name, "regressions"))
    return EXPECT_ANY;
  if (strlen (name) == 40 && strspn (name, "0123456789abcdef") == 40)
    return EXPECT_ANY;
  return g_str_has_suffix (stem, "-invalid") ? EXPECT_REFUSED : EXPECT_ACCEPTED;
}

/* Returns how many inputs of @dir_name/@target went through. */
static guint
replay_dir (const FuzzTarget *target, const char *dir_name)
{
  g_autofree char *dir_path = canopy_test_src_path ("tests", "fuzz", dir_name, target->name,
                                                    NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *contents = NULL;
      gsize length;
      gboolean accepted;
      Expectation expected;

      if (!g_file_get_contents (path, &contents, &length, NULL))
        {
          fprintf (stderr, "\n    cannot read %s\n", path);
          CU_FAIL ("an input cannot be read");
          continue;
        }
      if (g_getenv ("CANOPY_TEST_FUZZ_VERBOSE") != NULL)
        fprintf (stderr, "\n    replaying %s", path);
      accepted = target->func ((const uint8_t *) contents, length);
      expected = expectation_of (dir_name, name);
      if (expected != EXPECT_ANY && accepted != (expected == EXPECT_ACCEPTED))
        fprintf (stderr, "\n    %s was %s; its name says it must be %s\n", path,
                 accepted ? "accepted" : "refused", accepted ? "refused" : "accepted");
      CU_ASSERT (expected == EXPECT_ANY || accepted == (expected == EXPECT_ACCEPTED));
      n++;
    }
  return n;
}

static void
replay (const FuzzTarget *target)
{
  guint n = replay_dir (target, "corpus");

  if (n == 0)
    fprintf (stderr, "\n    no seed corpus for the fuzz target \"%s\"\n", target->name);
  CU_ASSERT (n > 0);
  replay_dir (target, "regressions");
}

/* One test per target, named as its corpus folder. */
#define REPLAY_TEST(ident, name)                                                \
  static void test_replay_##ident (void)                                        \
  {                                                                             \
    static const FuzzTarget target = { name, canopy_fuzz_##ident };             \
    replay (&target);                                                           \
  }

REPLAY_TEST (wire, "wire")
REPLAY_TEST (manifest, "manifest")
REPLAY_TEST (manifest_key, "manifest-key")
REPLAY_TEST (config_server, "config-server")
REPLAY_TEST (config_agent, "config-agent")
REPLAY_TEST (topology, "topology")
REPLAY_TEST (licence, "licence")
REPLAY_TEST (settings, "settings")

CANOPY_TEST_SUITE (fuzz, "fuzz", NULL, NULL,
                   { "wire", test_replay_wire },
                   { "manifest", test_replay_manifest },
                   { "manifest-key", test_replay_manifest_key },
                   { "config-server", test_replay_config_server },
                   { "config-agent", test_replay_config_agent },
                   { "topology", test_replay_topology },
                   { "licence", test_replay_licence },
                   { "settings", test_replay_settings })
