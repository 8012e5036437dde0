/* Logging settings: how the debug-domain setting is read. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/log.h"

#include <stdio.h>

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

typedef struct {
  char *key;
  guint suppressed;
  guint calls;
} Summary;

static void
on_summary (const char *key, guint suppressed, gpointer user_data)
{
  Summary *summary = user_data;

  g_free (summary->key);
  summary->key = g_strdup (key);
  summary->suppressed = suppressed;
  summary->calls++;
}

/* The first event of a key is logged, the rest of its window counted and
 * summed up once; a flood of keys cannot grow the table. */
static void
test_rate_limit (void)
{
  Summary summary = { 0 };
  g_autoptr (CanopyLogLimit) limit = canopy_log_limit_new (1, on_summary, &summary);
  guint allowed = 0;
  gint64 deadline;

  for (guint i = 0; i < 50; i++)
    allowed += canopy_log_limit_allow (limit, "198.51.100.7");
  CU_ASSERT_EQUAL (allowed, 1);
  CU_ASSERT (canopy_log_limit_allow (limit, "198.51.100.8"));
  CU_ASSERT_EQUAL (summary.calls, 0);

  /* The timer ends the window: one summary for the 49 held back. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (summary.calls == 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (summary.calls, 1);
  CU_ASSERT_STRING_EQUAL (summary.key, "198.51.100.7");
  CU_ASSERT_EQUAL (summary.suppressed, 49);
  /* A new window: the next one is logged again. */
  CU_ASSERT (canopy_log_limit_allow (limit, "198.51.100.7"));
  CU_ASSERT_FALSE (canopy_log_limit_allow (limit, "198.51.100.7"));

  /* Past 1024 keys, new ones share "*": the first is logged, not the rest. */
  allowed = 0;
  for (guint i = 0; i < 1100; i++)
    {
      g_autofree char *key = g_strdup_printf ("10.0.%u.%u", i / 256, i % 256);
      allowed += canopy_log_limit_allow (limit, key);
    }
  CU_ASSERT (allowed <= 1024);
  CU_ASSERT (allowed >= 1020);
  g_free (summary.key);
}

/* Adds to @found every log domain that @path sets, by @pattern. */
static void
collect_domains (GHashTable *found, const char *path, GRegex *pattern)
{
  g_autofree char *text = NULL;
  g_autoptr (GMatchInfo) match = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  g_regex_match (pattern, text, 0, &match);
  while (g_match_info_matches (match))
    {
      g_hash_table_add (found, g_match_info_fetch (match, 1));
      g_match_info_next (match, NULL);
    }
}

static void
collect_tree (GHashTable *found, const char *dir, GRegex *in_c, GRegex *in_make)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        collect_tree (found, path, in_c, in_make);
      else if (g_str_has_suffix (name, ".c"))
        collect_domains (found, path, in_c);
      else if (g_str_has_suffix (name, ".am"))
        collect_domains (found, path, in_make);
    }
}

/* "--debug help" lists every domain the sources log under, and no other. */
static void
test_known_domains (void)
{
  g_autoptr (GHashTable) found = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GRegex) in_c = g_regex_new ("#define G_LOG_DOMAIN \"([^\"]+)\"", 0, 0, NULL);
  g_autoptr (GRegex) in_make = g_regex_new ("-DG_LOG_DOMAIN=\\\\\"(canopy[a-z-]*)\\\\\"", 0, 0,
                                            NULL);
  const char *const *known = canopy_log_get_known_domains ();
  g_autofree char *core = canopy_test_src_path ("core", NULL);
  g_autofree char *plugins = canopy_test_src_path ("plugins", NULL);
  g_autofree char *top = canopy_test_src_path ("Makefile.am", NULL);
  GHashTableIter iter;
  const char *domain;

  collect_tree (found, core, in_c, in_make);
  collect_tree (found, plugins, in_c, in_make);
  collect_domains (found, top, in_make);
  CU_ASSERT (g_hash_table_size (found) >= 40);
  g_hash_table_iter_init (&iter, found);
  while (g_hash_table_iter_next (&iter, (gpointer *) &domain, NULL))
    {
      if (!g_strv_contains (known, domain))
        fprintf (stderr, "\n    log domain %s is not in canopy_log_get_known_domains()\n", domain);
      CU_ASSERT (g_strv_contains (known, domain));
    }
  for (const char *const *k = known; *k != NULL; k++)
    {
      if (!g_hash_table_contains (found, *k))
        fprintf (stderr, "\n    %s is listed but no source logs under it\n", *k);
      CU_ASSERT (g_hash_table_contains (found, *k));
    }
}

CANOPY_TEST_SUITE (log, "log", NULL, NULL, { "debug domains", test_debug_domains },
                   { "known domains match the sources", test_known_domains },
                   { "rate limit", test_rate_limit })
