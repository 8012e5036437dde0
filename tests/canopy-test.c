/* canopy's test runner: every suite in one CUnit registry, one summary.
 * "canopy-test SUITE" or "canopy-test SUITE/TEST" runs part of it. */
#include "build-config.h"

#include "tests/canopy-test.h"

#include <CUnit/Basic.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

typedef struct {
  const char *name;
  CU_InitializeFunc init;
  CU_CleanupFunc cleanup;
  const CanopyTestCase *cases;
} SuiteEntry;

/* Filled by constructors before main(); the runner's own state. */
static GArray *registered_suites;
static char *tmp_root;
/* "suite/test" → why it was skipped, in the order skipped. */
static GHashTable *skip_reasons;
static GPtrArray *skipped_tests;

void
canopy_test_add_suite (const char *name, CU_InitializeFunc init, CU_CleanupFunc cleanup,
                       const CanopyTestCase *cases)
{
  SuiteEntry entry = { name, init, cleanup, cases };

  if (registered_suites == NULL)
    registered_suites = g_array_new (FALSE, FALSE, sizeof (SuiteEntry));
  g_array_append_val (registered_suites, entry);
}

void
canopy_test_skip (const char *format, ...)
{
  CU_pSuite suite = CU_get_current_suite ();
  CU_pTest test = CU_get_current_test ();
  g_autofree char *name = g_strdup_printf ("%s/%s", suite != NULL ? suite->pName : "?",
                                           test != NULL ? test->pName : "?");
  va_list args;
  char *reason;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  printf ("\n    SKIPPED: %s\n", reason);
  if (g_hash_table_contains (skip_reasons, name))
    {
      g_free (reason);
      return;
    }
  g_ptr_array_add (skipped_tests, g_strdup (name));
  g_hash_table_insert (skip_reasons, g_steal_pointer (&name), reason);
}

static char *
tree_path (const char *env, const char *first, va_list args)
{
  const char *root = g_getenv (env);
  g_autoptr (GPtrArray) parts = g_ptr_array_new ();

  g_ptr_array_add (parts, (gpointer) (root != NULL ? root : "."));
  for (const char *p = first; p != NULL; p = va_arg (args, const char *))
    g_ptr_array_add (parts, (gpointer) p);
  g_ptr_array_add (parts, NULL);
  return g_build_filenamev ((char **) parts->pdata);
}

char *
canopy_test_src_path (const char *first, ...)
{
  va_list args;
  char *path;

  va_start (args, first);
  path = tree_path ("CANOPY_TEST_SRCDIR", first, args);
  va_end (args);
  return path;
}

char *
canopy_test_build_path (const char *first, ...)
{
  va_list args;
  char *path;

  va_start (args, first);
  path = tree_path ("CANOPY_TEST_BUILDDIR", first, args);
  va_end (args);
  return path;
}

char *
canopy_test_make_tmpdir (const char *prefix)
{
  g_autofree char *template = g_strdup_printf ("%s/%s-XXXXXX", tmp_root, prefix);
  char *dir = g_mkdtemp (template);

  g_assert (dir != NULL);
  return g_steal_pointer (&template);
}

void
canopy_test_damage_file (const char *path, gsize first, gsize step)
{
  g_autofree char *contents = NULL;
  gsize length = 0;
  FILE *file;

  g_assert (g_file_get_contents (path, &contents, &length, NULL));
  g_assert (first < length && step > 0);
  for (gsize at = first; at < length; at += step)
    {
      contents[at] ^= 0x5a;
      if (step > length - at)
        break;
    }
  file = fopen (path, "r+");
  g_assert (file != NULL);
  g_assert (fwrite (contents, 1, length, file) == length);
  fclose (file);
}

static GMutex log_capture_lock;
static GString *log_capture;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                gpointer user_data)
{
  g_mutex_lock (&log_capture_lock);
  for (gsize i = 0; log_capture != NULL && i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      {
        if (fields[i].length < 0)
          g_string_append (log_capture, fields[i].value);
        else
          g_string_append_len (log_capture, fields[i].value, fields[i].length);
        g_string_append_c (log_capture, '\n');
      }
  g_mutex_unlock (&log_capture_lock);
  return g_log_writer_default (level, fields, n_fields, user_data);
}

void
canopy_test_log_capture_begin (void)
{
  static gsize installed = 0;

  /* A process has one writer, set once: it stays, and copies only while
   * a capture runs. */
  if (g_once_init_enter (&installed))
    {
      g_log_set_writer_func (capture_writer, NULL, NULL);
      g_once_init_leave (&installed, 1);
    }
  g_mutex_lock (&log_capture_lock);
  if (log_capture == NULL)
    log_capture = g_string_new (NULL);
  g_string_truncate (log_capture, 0);
  g_mutex_unlock (&log_capture_lock);
}

char *
canopy_test_log_capture_end (void)
{
  char *text;

  g_mutex_lock (&log_capture_lock);
  text = log_capture != NULL ? g_string_free (g_steal_pointer (&log_capture), FALSE)
                             : g_strdup ("");
  g_mutex_unlock (&log_capture_lock);
  return text;
}

struct _CanopyTestProcess {
  GSubprocess *subprocess;
  GString *output;
  GInputStream *stream;
  GCancellable *cancellable;
  gboolean reading;
  gboolean eof;
  gboolean exited;
  char buffer[4096];
};

static void read_more (CanopyTestProcess *proc);

static void
on_process_exit (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyTestProcess *proc = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  proc->exited = TRUE;
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyTestProcess *proc = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  proc->reading = FALSE;
  if (n <= 0)
    {
      proc->eof = TRUE;
      return;
    }
  g_string_append_len (proc->output, proc->buffer, n);
  read_more (proc);
}

static void
read_more (CanopyTestProcess *proc)
{
  if (proc->reading || proc->eof)
    return;
  proc->reading = TRUE;
  g_input_stream_read_async (proc->stream, proc->buffer, sizeof proc->buffer, G_PRIORITY_DEFAULT,
                             proc->cancellable, on_read, proc);
}

/* With CANOPY_TEST_VALGRIND=1 (make check-valgrind), the daemons run
 * under valgrind's memcheck, which turns any memory error or definite leak
 * into exit status 99; the tests that stop a daemon assert status 0. */
static gboolean
is_daemon (const char *program)
{
  g_autofree char *base = g_path_get_basename (program);

  return g_str_equal (base, "canopyd") || g_str_equal (base, "canopy-agent");
}

/* Where in @argv the daemon is, after wrappers such as "ip netns exec NS"
 * or "unshare ... sh -c ..."; -1 when it runs no daemon or valgrind is off. */
static int
under_valgrind (const char *const *argv)
{
  if (!canopy_test_valgrind ())
    return -1;
  for (int i = 0; argv[i] != NULL; i++)
    if (is_daemon (argv[i]))
      return i;
  return -1;
}

gboolean
canopy_test_valgrind (void)
{
  return g_strcmp0 (g_getenv ("CANOPY_TEST_VALGRIND"), "1") == 0;
}

gboolean
canopy_test_instrumented (void)
{
#if defined(__SANITIZE_ADDRESS__)
  return TRUE;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return TRUE;
#endif
#endif
  return canopy_test_valgrind ();
}

guint
canopy_test_timeout (guint seconds)
{
  /* Programs run 20 to 50 times slower under memcheck, but there the
   * tests move a sixteenth of the content (site.h), and what is left to
   * wait for (start-up, handshakes) takes seconds natively: ten times the
   * native bound covers it without letting a hung daemon stall CI. */
  return canopy_test_valgrind () ? seconds * 10 : seconds;
}

static GPtrArray *
valgrind_argv (const char *const *argv, int daemon)
{
  GPtrArray *full = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *suppressions = canopy_test_src_path ("tests", "valgrind.supp", NULL);

  for (int i = 0; i < daemon; i++)
    g_ptr_array_add (full, g_strdup (argv[i]));

  /* The build tree's programs are libtool wrappers: let libtool run
   * valgrind on the real binary with the build tree's libraries. */
  g_ptr_array_add (full, canopy_test_build_path ("libtool", NULL));
  g_ptr_array_add (full, g_strdup ("--mode=execute"));
  g_ptr_array_add (full, g_strdup ("valgrind"));
  g_ptr_array_add (full, g_strdup ("--quiet"));
  g_ptr_array_add (full, g_strdup ("--error-exitcode=99"));
  g_ptr_array_add (full, g_strdup ("--leak-check=full"));
  g_ptr_array_add (full, g_strdup ("--errors-for-leak-kinds=definite"));
  g_ptr_array_add (full, g_strdup ("--show-leak-kinds=definite"));
  g_ptr_array_add (full, g_strdup ("--num-callers=30"));
  g_ptr_array_add (full, g_strdup_printf ("--suppressions=%s", suppressions));
  for (const char *const *a = argv + daemon; *a != NULL; a++)
    g_ptr_array_add (full, g_strdup (*a));
  g_ptr_array_add (full, NULL);
  return full;
}

/* In the child, before exec: a runner that aborts (a failed g_assert)
 * takes the daemons it started with it, instead of leaving them running. */
static void
die_with_runner (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

CanopyTestProcess *
canopy_test_process_spawn (const char *const *argv, GError **error)
{
  CanopyTestProcess *proc = g_new0 (CanopyTestProcess, 1);
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autoptr (GPtrArray) valgrind = NULL;
  int daemon = under_valgrind (argv);

  /* Daemons log warnings an admin must read; they are not test failures. */
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, die_with_runner, NULL, NULL);
  if (daemon >= 0)
    {
      valgrind = valgrind_argv (argv, daemon);
      argv = (const char *const *) valgrind->pdata;
      g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
    }
  proc->subprocess = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc->subprocess == NULL)
    {
      g_free (proc);
      return NULL;
    }
  proc->output = g_string_new (NULL);
  proc->stream = g_object_ref (g_subprocess_get_stdout_pipe (proc->subprocess));
  proc->cancellable = g_cancellable_new ();
  read_more (proc);
  g_subprocess_wait_async (proc->subprocess, NULL, on_process_exit, proc);
  return proc;
}

static gboolean
on_timeout (gpointer data)
{
  gboolean *expired = data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
canopy_test_process_wait_output (CanopyTestProcess *proc, const char *needle, guint timeout_s)
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add_seconds (canopy_test_timeout (timeout_s), on_timeout, &expired);

  while (strstr (proc->output->str, needle) == NULL && !expired && !proc->eof)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  if (strstr (proc->output->str, needle) == NULL)
    fprintf (stderr, "\n    waited for \"%s\"; the process printed:\n%s\n", needle,
             proc->output->str);
  return strstr (proc->output->str, needle) != NULL;
}

int
canopy_test_process_wait_exit (CanopyTestProcess *proc, guint timeout_s)
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add_seconds (canopy_test_timeout (timeout_s), on_timeout, &expired);

  while ((!proc->eof || !proc->exited) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  else
    {
      fprintf (stderr, "\n    the process did not exit in %u s; it printed:\n%s\n", timeout_s,
               proc->output->str);
      g_subprocess_force_exit (proc->subprocess);
      while (!proc->exited)
        g_main_context_iteration (NULL, TRUE);
      return -1;
    }
  return g_subprocess_get_if_exited (proc->subprocess)
           ? g_subprocess_get_exit_status (proc->subprocess) : 128 + g_subprocess_get_term_sig (proc->subprocess);
}

const char *
canopy_test_process_output (CanopyTestProcess *proc)
{
  return proc->output->str;
}

guint
canopy_test_process_descriptors (CanopyTestProcess *proc)
{
  const char *pid = g_subprocess_get_identifier (proc->subprocess);
  g_autofree char *path = g_strdup_printf ("/proc/%s/fd", pid != NULL ? pid : "0");
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

guint
canopy_test_process_threads (CanopyTestProcess *proc)
{
  const char *pid = g_subprocess_get_identifier (proc->subprocess);
  g_autofree char *path = g_strdup_printf ("/proc/%s/task", pid != NULL ? pid : "0");
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

void
canopy_test_process_signal (CanopyTestProcess *proc, int signum)
{
  g_subprocess_send_signal (proc->subprocess, signum);
}

void
canopy_test_process_free (CanopyTestProcess *proc)
{
  if (proc == NULL)
    return;
  /* Every test stops what it started. */
  if (!proc->exited)
    g_subprocess_force_exit (proc->subprocess);
  g_cancellable_cancel (proc->cancellable);
  while (proc->reading || !proc->exited)
    g_main_context_iteration (NULL, TRUE);
  g_object_unref (proc->cancellable);
  g_object_unref (proc->stream);
  g_object_unref (proc->subprocess);
  g_string_free (proc->output, TRUE);
  g_free (proc);
}

int
canopy_test_run (const char *const *argv, char **output)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyTestProcess) proc = canopy_test_process_spawn (argv, &error);
  int status;

  if (proc == NULL)
    {
      fprintf (stderr, "\n    cannot run %s: %s\n", argv[0], error->message);
      return -1;
    }
  status = canopy_test_process_wait_exit (proc, 60);
  if (output != NULL)
    *output = g_strdup (proc->output->str);
  return status;
}

int
canopy_test_ctl (const char *profile, char **output, const char *first, ...)
{
  g_autofree char *exe = canopy_test_build_path ("canopyctl", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  va_list args;

  g_ptr_array_add (argv, exe);
  g_ptr_array_add (argv, (gpointer) "--profile");
  g_ptr_array_add (argv, (gpointer) profile);
  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_clear_pointer (output, g_free);
  return canopy_test_run ((const char *const *) argv->pdata, output);
}

static gboolean
wanted (const char *filter, const char *suite, const char *test)
{
  g_autofree char *full = NULL;

  g_auto (GStrv) patterns = NULL;

  if (filter == NULL)
    return TRUE;
  /* Test names hold spaces and commas, never colons. */
  patterns = g_strsplit (filter, ":", -1);
  full = g_strdup_printf ("%s/%s", suite, test);
  return g_strv_contains ((const char *const *) patterns, suite)
         || g_strv_contains ((const char *const *) patterns, full);
}

static gboolean
register_suites (const char *filter)
{
  for (guint i = 0; registered_suites != NULL && i < registered_suites->len; i++)
    {
      const SuiteEntry *entry = &g_array_index (registered_suites, SuiteEntry, i);
      CU_pSuite suite = NULL;

      for (const CanopyTestCase *c = entry->cases; c->name != NULL; c++)
        {
          if (!wanted (filter, entry->name, c->name))
            continue;
          if (suite == NULL)
            suite = CU_add_suite (entry->name, entry->init, entry->cleanup);
          if (suite == NULL || CU_add_test (suite, c->name, c->func) == NULL)
            return FALSE;
        }
    }
  return TRUE;
}

/* The allowed skips: one "suite/test" per line; '#' starts a comment that
 * says why the skip is allowed. */
static GHashTable *
read_allowed_skips (const char *path)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *allowed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (!g_file_get_contents (path, &text, NULL, &error))
    {
      fprintf (stderr, "cannot read the allowed skips: %s\n", error->message);
      return allowed;
    }
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      char *hash = strchr (*l, '#');

      if (hash != NULL)
        *hash = '\0';
      g_strstrip (*l);
      if (**l != '\0')
        g_hash_table_add (allowed, g_strdup (*l));
    }
  return allowed;
}

/* Prints "N passed, N failed, N skipped" and the skips with why; returns
 * how many skips were not allowed. */
static guint
report_skips (void)
{
  const char *allowed_path = g_getenv ("CANOPY_TEST_ALLOWED_SKIPS");
  g_autoptr (GHashTable) allowed = NULL;
  guint run = CU_get_number_of_tests_run ();
  guint failed = CU_get_number_of_tests_failed ();
  guint skipped = skipped_tests->len;
  guint unexpected = 0;

  if (allowed_path != NULL && allowed_path[0] != '\0')
    allowed = read_allowed_skips (allowed_path);
  printf ("%u passed, %u failed, %u skipped\n", run - MIN (run, failed + skipped), failed,
          skipped);
  for (guint i = 0; i < skipped_tests->len; i++)
    {
      const char *name = g_ptr_array_index (skipped_tests, i);
      gboolean ok = allowed == NULL || g_hash_table_contains (allowed, name);

      printf ("  skipped%s: %s: %s\n", ok ? "" : " (NOT ALLOWED)", name,
              (const char *) g_hash_table_lookup (skip_reasons, name));
      unexpected += ok ? 0 : 1;
    }
  if (unexpected > 0)
    printf ("%u skip(s) are not in %s: make the test run here, or allow the skip there "
            "with the reason\n", unexpected, allowed_path);
  return unexpected;
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

char *
canopy_test_fixture_token (const char *sql, const char *name)
{
  g_autofree char *label = g_strdup_printf ("-- token %s: ", name);
  const char *at = strstr (sql, label);

  g_assert (at != NULL);
  at += strlen (label);
  return g_strndup (at, strcspn (at, "\n"));
}

int
main (int argc, char **argv)
{
  unsigned failures;
  /* make check passes an empty filter when none is set. */
  const char *filter = argc > 1 && argv[1][0] != '\0' ? argv[1] : NULL;

  signal (SIGPIPE, SIG_IGN);
  skip_reasons = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  skipped_tests = g_ptr_array_new_with_free_func (g_free);
  tmp_root = g_dir_make_tmp ("canopy-test-XXXXXX", NULL);
  g_assert (tmp_root != NULL);

  if (CU_initialize_registry () != CUE_SUCCESS || !register_suites (filter))
    {
      fprintf (stderr, "cannot set up the CUnit registry: %s\n", CU_get_error_msg ());
      return 2;
    }
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failures = CU_get_number_of_failures () + CU_get_number_of_suites_failed ();
  if (CU_get_number_of_tests_run () == 0)
    {
      fprintf (stderr, "no test matched \"%s\"\n", filter != NULL ? filter : "");
      failures = 1;
    }
  else if (failures > 0)
    CU_basic_show_failures (CU_get_failure_list ());
  printf ("\n");
  failures += report_skips ();
  CU_cleanup_registry ();
  g_ptr_array_unref (skipped_tests);
  g_hash_table_unref (skip_reasons);

  if (g_getenv ("CANOPY_TEST_KEEP_TMP") == NULL)
    remove_tree (tmp_root);
  g_free (tmp_root);
  return failures > 0 ? 1 : 0;
}
