/* Logging settings: how the debug-domain setting is read. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/journal.h"
#include "lib/log.h"

#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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

/* Waits until @journal holds @n entries with MESSAGE_ID @id. */
static GPtrArray *
wait_entries (CanopyTestJournal *journal, const char *id, guint n)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (10) * G_USEC_PER_SEC;
  GPtrArray *found = NULL;

  do
    {
      g_clear_pointer (&found, g_ptr_array_unref);
      found = canopy_test_journal_find (journal, "MESSAGE_ID", id, NULL);
      if (found->len < n)
        g_usleep (20000);
    }
  while (found->len < n && g_get_monotonic_time () < deadline);
  return found;
}

/* Under journald, a line is an entry of the native protocol with the
 * fields an admin filters on: the priority, the domain, the event's
 * MESSAGE_ID and what it is about; a message with newlines and one too
 * big for a datagram (sent in a memfd) arrive whole; debug messages only
 * for the domains asked for. */
static void
test_journal_fields (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("log-journal");
  g_autoptr (CanopyTestJournal) journal = canopy_test_journal_new (dir);
  g_autoptr (CanopyLog) log = NULL;
  g_autoptr (GPtrArray) found = NULL;
  g_autoptr (GString) big = g_string_new (NULL);
  GHashTable *entry;
  const char *id = CANOPY_LOG_DEPLOYMENT_CREATED;
  GLogField fields[] = {
    { "MESSAGE", "Deployment d-1 created\nby alice", -1 },
    { "MESSAGE_ID", id, -1 },
    { "GLIB_DOMAIN", "canopyd-distributor", -1 },
    { "CANOPY_DEPLOYMENT", "d-1", -1 },
    { "CANOPY_CONTENT", "c-1", -1 },
    { "CANOPY_DEVICE", "dev-1", -1 },
    { "CANOPY_OFFICE", "North", -1 },
    { "CODE_LINE", "42", -1 },
  };

  g_setenv (CANOPY_LOG_JOURNAL_SOCKET_ENV, canopy_test_journal_get_path (journal), TRUE);
  log = canopy_log_new ();
  g_unsetenv (CANOPY_LOG_JOURNAL_SOCKET_ENV);
  CU_ASSERT_EQUAL (canopy_log_write (G_LOG_LEVEL_WARNING, fields, G_N_ELEMENTS (fields), log),
                   G_LOG_WRITER_HANDLED);
  found = wait_entries (journal, id, 1);
  CU_ASSERT_EQUAL_FATAL (found->len, 1);
  entry = g_ptr_array_index (found, 0);
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "MESSAGE"),
                          "Deployment d-1 created\nby alice");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "PRIORITY"), "4");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "GLIB_DOMAIN"), "canopyd-distributor");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "CANOPY_DEPLOYMENT"), "d-1");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "CANOPY_CONTENT"), "c-1");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "CANOPY_DEVICE"), "dev-1");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "CANOPY_OFFICE"), "North");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "CODE_LINE"), "42");
  g_clear_pointer (&found, g_ptr_array_unref);

  /* Bigger than any datagram: it goes in a memfd. */
  while (big->len < 600 * 1024)
    g_string_append (big, "0123456789abcdef");
  fields[0].value = big->str;
  fields[1].value = CANOPY_LOG_DEPLOYMENT_FINISHED;
  {
    /* Named by CANOPY_JOURNAL_SOCKET, the journal gets a copy of standard
     * error: the test's own output is spared the big one. */
    int saved = dup (STDERR_FILENO);
    int null = open ("/dev/null", O_WRONLY | O_CLOEXEC);

    dup2 (null, STDERR_FILENO);
    CU_ASSERT_EQUAL (canopy_log_write (G_LOG_LEVEL_MESSAGE, fields, 2, log),
                     G_LOG_WRITER_HANDLED);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    close (null);
  }
  found = wait_entries (journal, CANOPY_LOG_DEPLOYMENT_FINISHED, 1);
  CU_ASSERT_EQUAL_FATAL (found->len, 1);
  entry = g_ptr_array_index (found, 0);
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "MESSAGE"), big->str);
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "PRIORITY"), "5");
  g_clear_pointer (&found, g_ptr_array_unref);

  /* Debug: only for a domain asked for, by its family's name. */
  fields[0].value = "held back";
  fields[1].value = CANOPY_LOG_DEVICE_DONE;
  canopy_log_write (G_LOG_LEVEL_DEBUG, fields, 3, log);
  canopy_log_set_debug_domains (log, "canopyd");
  fields[0].value = "shown";
  canopy_log_write (G_LOG_LEVEL_DEBUG, fields, 3, log);
  found = wait_entries (journal, CANOPY_LOG_DEVICE_DONE, 1);
  CU_ASSERT_EQUAL_FATAL (found->len, 1);
  entry = g_ptr_array_index (found, 0);
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "MESSAGE"), "shown");
  CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (entry, "PRIORITY"), "7");
  CU_ASSERT_EQUAL (canopy_test_journal_count_errors (journal), 0);
}

/* Outside journald a line has the date, not the time alone, in UTC. */
static void
test_plain_text_line (void)
{
  /* 2026-12-05 05:18:03.123456 UTC */
  gint64 at = G_GINT64_CONSTANT (1796447883) * G_USEC_PER_SEC + 123456;
  g_autofree char *line = canopy_log_format_line (at, "canopyd-distributor",
                                                  G_LOG_LEVEL_MESSAGE, "Deployment d-1 created");
  g_autofree char *warning = canopy_log_format_line (at, "canopy-agent-fetch",
                                                     G_LOG_LEVEL_WARNING, "full");
  g_autofree char *took = canopy_log_format_duration (G_GINT64_CONSTANT (3725) * G_USEC_PER_SEC);

  CU_ASSERT_STRING_EQUAL (line, "2026-12-05T05:18:03.123Z canopyd-distributor-Message: "
                                "Deployment d-1 created\n");
  CU_ASSERT_STRING_EQUAL (warning, "2026-12-05T05:18:03.123Z canopy-agent-fetch-WARNING: full\n");
  CU_ASSERT_STRING_EQUAL (took, "1 h 02 min");
}

/* Every MESSAGE_ID the code defines is documented in the catalog
 * journalctl installs, used by some module, and the catalog documents no
 * other; journalctl itself accepts the file. */
static void
test_catalog (void)
{
  g_autofree char *header_path = canopy_test_src_path ("core", "lib", "log.h", NULL);
  g_autofree char *catalog_path = canopy_test_src_path ("conf", "canopy.catalog", NULL);
  g_autofree char *header = NULL, *catalog = NULL;
  g_autoptr (GRegex) defined = g_regex_new ("#define (CANOPY_LOG_[A-Z_]+) \"([0-9a-f]{32})\"",
                                            0, 0, NULL);
  g_autoptr (GRegex) listed = g_regex_new ("^-- ([0-9a-f]{32})$", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) in_catalog = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                             NULL);
  g_autoptr (GString) sources = g_string_new (NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autoptr (GMatchInfo) match2 = NULL;
  GHashTableIter iter;
  gpointer id, name;
  const char *files[] = { "core/lib/program.c", "core/server/distributor.c",
                          "core/agent/fetch.c", NULL };

  CU_ASSERT_FATAL (g_file_get_contents (header_path, &header, NULL, NULL));
  CU_ASSERT_FATAL (g_file_get_contents (catalog_path, &catalog, NULL, NULL));
  for (const char **f = files; *f != NULL; f++)
    {
      g_autofree char *path = canopy_test_src_path (*f, NULL);
      g_autofree char *text = NULL;

      CU_ASSERT_FATAL (g_file_get_contents (path, &text, NULL, NULL));
      g_string_append (sources, text);
    }
  g_regex_match (defined, header, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL))
    g_hash_table_insert (ids, g_match_info_fetch (match, 2), g_match_info_fetch (match, 1));
  CU_ASSERT (g_hash_table_size (ids) >= 10);
  g_regex_match (listed, catalog, 0, &match2);
  for (; g_match_info_matches (match2); g_match_info_next (match2, NULL))
    g_hash_table_add (in_catalog, g_match_info_fetch (match2, 1));
  g_hash_table_iter_init (&iter, ids);
  while (g_hash_table_iter_next (&iter, &id, &name))
    {
      g_autofree char *use = g_strdup_printf ("%s,", (const char *) name);
      g_autofree char *use_end = g_strdup_printf ("%s)", (const char *) name);

      if (!g_hash_table_contains (in_catalog, id))
        fprintf (stderr, "\n    %s (%s) is not in conf/canopy.catalog\n", (char *) name,
                 (char *) id);
      CU_ASSERT (g_hash_table_contains (in_catalog, id));
      if (strstr (sources->str, use) == NULL && strstr (sources->str, use_end) == NULL)
        fprintf (stderr, "\n    %s is defined but no module logs it\n", (char *) name);
      CU_ASSERT (strstr (sources->str, use) != NULL || strstr (sources->str, use_end) != NULL);
    }
  g_hash_table_iter_init (&iter, in_catalog);
  while (g_hash_table_iter_next (&iter, &id, NULL))
    CU_ASSERT (g_hash_table_contains (ids, id));

  /* journalctl reads it as it would from /usr/lib/systemd/catalog. */
  {
    g_autofree char *journalctl = g_find_program_in_path ("journalctl");
    g_autofree char *root = canopy_test_make_tmpdir ("log-catalog");
    g_autofree char *dir = g_build_filename (root, "usr", "lib", "systemd", "catalog", NULL);
    g_autofree char *copy = g_build_filename (dir, "canopy.catalog", NULL);
    g_autofree char *out = NULL;
    g_autofree char *update = NULL, *list = NULL;
    int status = -1;

    if (journalctl == NULL)
      {
        canopy_test_skip ("journalctl is not installed (Debian package systemd)");
        return;
      }
    CU_ASSERT_FATAL (g_mkdir_with_parents (dir, 0755) == 0);
    CU_ASSERT_FATAL (g_file_set_contents (copy, catalog, -1, NULL));
    update = g_strdup_printf ("%s --root=%s --update-catalog", journalctl, root);
    CU_ASSERT (g_spawn_command_line_sync (update, NULL, NULL, &status, NULL) && status == 0);
    list = g_strdup_printf ("%s --root=%s --list-catalog", journalctl, root);
    CU_ASSERT_FATAL (g_spawn_command_line_sync (list, &out, NULL, &status, NULL));
    g_hash_table_iter_init (&iter, ids);
    while (g_hash_table_iter_next (&iter, &id, NULL))
      CANOPY_ASSERT_CONTAINS (out, (const char *) id);
  }
}

CANOPY_TEST_SUITE (log, "log", NULL, NULL, { "debug domains", test_debug_domains },
                   { "known domains match the sources", test_known_domains },
                   { "rate limit", test_rate_limit },
                   { "journal fields", test_journal_fields },
                   { "plain-text line", test_plain_text_line },
                   { "catalog lists every MESSAGE_ID", test_catalog })
