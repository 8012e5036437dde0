/* SQLite backend faults, each made for real: a corrupt file, a missing
 * directory, a database locked by another process (the sqlite3 program),
 * a full disk (a small tmpfs), a database from a newer canopy. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "plugins/backend-sqlite/sqlite-backend.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/mount.h>

static GVariant *
setting (const char *text)
{
  return g_variant_ref_sink (g_variant_new ("(s)", text));
}

static void
assert_open_fails (const char *path, CanopyBackendError code, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = canopy_sqlite_backend_open (path, 100, &error);

  CU_ASSERT_PTR_NULL (b);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, (int) code));
  if (error != NULL)
    {
      CANOPY_ASSERT_CONTAINS (error->message, path);
      CANOPY_ASSERT_CONTAINS (error->message, text);
    }
}

static void
test_corrupt_and_unreadable (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("faults");
  g_autofree char *garbage = g_build_filename (dir, "garbage.db", NULL);
  g_autofree char *missing = g_build_filename (dir, "no-such-dir", "canopy.db", NULL);
  g_autofree char *is_dir = g_build_filename (dir, "a-directory.db", NULL);
  char noise[8192];

  for (gsize i = 0; i < sizeof noise; i++)
    noise[i] = (char) (i * 131 + 7);
  g_assert (g_file_set_contents (garbage, noise, sizeof noise, NULL));
  assert_open_fails (garbage, CANOPY_BACKEND_ERROR_CORRUPT, "restore it from a backup");
  assert_open_fails (missing, CANOPY_BACKEND_ERROR_UNAVAILABLE, "directory exists");
  g_mkdir (is_dir, 0700);
  assert_open_fails (is_dir, CANOPY_BACKEND_ERROR_UNAVAILABLE, "permissions");
}

static void
test_owner_only_file (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("perm");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = canopy_sqlite_backend_open (path, 100, &error);
  GStatBuf st;

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (g_stat (path, &st), 0);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0600);
}

static void
test_newer_schema_refused (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("newer");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  sqlite3 *db = NULL;
  g_autoptr (CanopySqliteBackend) b = canopy_sqlite_backend_open (path, 100, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  g_clear_pointer (&b, canopy_sqlite_backend_close);
  CU_ASSERT_FATAL (sqlite3_open (path, &db) == SQLITE_OK);
  CU_ASSERT (sqlite3_exec (db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close (db);
  assert_open_fails (path, CANOPY_BACKEND_ERROR_TOO_NEW, "Upgrade canopy");
}

/* The sqlite3 program holds an exclusive transaction until its input ends. */
static void
test_locked_by_another_process (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("locked");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = canopy_sqlite_backend_open (path, 300, &error);
  g_autoptr (GSubprocess) holder = NULL;
  CanopyRecord record = { "k", setting ("v") };
  g_autoptr (GBytes) got = NULL;
  GOutputStream *in;

  CANOPY_ASSERT_NO_ERROR (error);
  holder = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                             &error, "sqlite3", path, NULL);
  if (holder == NULL)
    {
      canopy_test_skip ("the sqlite3 program is not installed (%s)", error->message);
      g_variant_unref (record.value);
      return;
    }
  in = g_subprocess_get_stdin_pipe (holder);
  {
    const char *hold = "BEGIN EXCLUSIVE; INSERT INTO audit (actor, action, detail) VALUES ('a', 'b', 'c'); "
                       "SELECT 'held';\n";
    g_output_stream_write_all (in, hold, strlen (hold), NULL, NULL, &error);
  }
  g_output_stream_flush (in, NULL, NULL);
  {
    GInputStream *out = g_subprocess_get_stdout_pipe (holder);
    char buf[16] = { 0 };
    g_input_stream_read (out, buf, sizeof buf - 1, NULL, NULL);
    CANOPY_ASSERT_CONTAINS (buf, "held");
  }

  CU_ASSERT_FALSE (canopy_sqlite_backend_put (b, CANOPY_RECORD_SETTING, &record, 1, FALSE,
                                              &error));
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_LOCKED));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, "locked by another process");
  g_clear_error (&error);

  /* The other process goes; the same write now succeeds. */
  g_output_stream_close (in, NULL, NULL);
  g_subprocess_wait (holder, NULL, NULL);
  CU_ASSERT (canopy_sqlite_backend_put (b, CANOPY_RECORD_SETTING, &record, 1, FALSE, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  got = canopy_sqlite_backend_get (b, CANOPY_RECORD_SETTING, "k", &error);
  CU_ASSERT_PTR_NOT_NULL (got);
  g_variant_unref (record.value);
}

static void
test_full_disk (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("full");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = NULL;
  g_autofree char *big = g_strnfill (16 * 1024, 'x');
  CanopyRecord first = { "kept", setting ("committed before the disk filled") };
  GPtrArray *batch = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr (GArray) records = g_array_new (FALSE, FALSE, sizeof (CanopyRecord));
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GBytes) kept = NULL;
  g_autoptr (GBytes) half = NULL;

  if (mount ("tmpfs", dir, "tmpfs", 0, "size=512k") != 0)
    {
      canopy_test_skip ("cannot mount a small tmpfs here (%s); full-disk case not run",
              g_strerror (errno));
      g_variant_unref (first.value);
      g_ptr_array_unref (batch);
      return;
    }
  b = canopy_sqlite_backend_open (path, 100, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_sqlite_backend_put (b, CANOPY_RECORD_SETTING, &first, 1, FALSE, &error));

  /* One batch larger than the disk: all of it or none of it. */
  for (guint i = 0; i < 64; i++)
    {
      CanopyRecord r;
      g_ptr_array_add (keys, g_strdup_printf ("big-%u", i));
      g_ptr_array_add (batch, setting (big));
      r.key = g_ptr_array_index (keys, i);
      r.value = g_ptr_array_index (batch, i);
      g_array_append_val (records, r);
    }
  CU_ASSERT_FALSE (canopy_sqlite_backend_put (b, CANOPY_RECORD_SETTING,
                                              (CanopyRecord *) records->data, records->len, FALSE,
                                              &error));
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FULL));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, "nothing of this change was written");
  g_clear_error (&error);

  g_clear_pointer (&b, canopy_sqlite_backend_close);
  b = canopy_sqlite_backend_open (path, 100, &error);
  if (b != NULL)
    {
      kept = canopy_sqlite_backend_get (b, CANOPY_RECORD_SETTING, "kept", &error);
      CU_ASSERT_PTR_NOT_NULL (kept);
      half = canopy_sqlite_backend_get (b, CANOPY_RECORD_SETTING, "big-0", NULL);
      CU_ASSERT_PTR_NULL (half);
    }
  g_clear_pointer (&b, canopy_sqlite_backend_close);
  g_variant_unref (first.value);
  g_ptr_array_unref (batch);
  umount2 (dir, MNT_DETACH);
}

CANOPY_TEST_SUITE (sqlite_faults, "sqlite-faults", NULL, NULL,
                   { "corrupt and unreadable files", test_corrupt_and_unreadable },
                   { "owner-only database file", test_owner_only_file },
                   { "newer schema refused", test_newer_schema_refused },
                   { "locked by another process", test_locked_by_another_process },
                   { "full disk", test_full_disk })
