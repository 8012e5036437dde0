/* canopy's CUnit harness: suites register themselves from their own file,
 * and one runner prints one summary for all of them. */
#pragma once

#include <CUnit/CUnit.h>
#include <gio/gio.h>

typedef struct {
  const char *name;
  CU_TestFunc func;
} CanopyTestCase;

void canopy_test_add_suite (const char *name,
                            CU_InitializeFunc init,
                            CU_CleanupFunc cleanup,
                            const CanopyTestCase *cases);

/* Defines a suite; its cases follow as { "name", function } pairs. */
#define CANOPY_TEST_SUITE(ident, name, init, cleanup, ...)                      \
  static const CanopyTestCase ident##_cases[] = { __VA_ARGS__, { NULL, NULL } }; \
  __attribute__ ((constructor)) static void ident##_register (void)             \
  {                                                                             \
    canopy_test_add_suite ((name), (init), (cleanup), ident##_cases);          \
  }

/* Marks the running test as skipped, with why (printf-style): it is
 * counted and named as a skip in the summary, never as a pass. The test
 * returns right after. With CANOPY_TEST_ALLOWED_SKIPS naming a file of
 * allowed skips (CI's), any other skip fails the run. */
void canopy_test_skip (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* Paths in the source and build trees (from the test environment). */
char *canopy_test_src_path (const char *first, ...) G_GNUC_NULL_TERMINATED;
char *canopy_test_build_path (const char *first, ...) G_GNUC_NULL_TERMINATED;

/* A fresh directory under the test run's temporary root. */
char *canopy_test_make_tmpdir (const char *prefix);

/* Flips the byte at @first and every @step bytes after it, in place, as a
 * failing disk would: a process holding the file open reads the damage. */
void canopy_test_damage_file (const char *path, gsize first, gsize step);

/* Keeps a copy of every message logged in this process (any thread) from
 * now on, still printing it, until canopy_test_log_capture_end(), which
 * returns them one a line. For asserting what an admin reads. */
void canopy_test_log_capture_begin (void);
char *canopy_test_log_capture_end (void);

/* Fails the current test, printing the error, if @error is set. */
#define CANOPY_ASSERT_NO_ERROR(error)                                            \
  do                                                                             \
    {                                                                            \
      if ((error) != NULL)                                                       \
        fprintf (stderr, "\n    unexpected error: %s\n", (error)->message);      \
      CU_ASSERT_PTR_NULL_FATAL (error);                                          \
    }                                                                            \
  while (0)

/* Asserts that @haystack contains @needle, printing both when it does not. */
#define CANOPY_ASSERT_CONTAINS(haystack, needle)                                 \
  do                                                                             \
    {                                                                            \
      const char *h_ = (haystack);                                               \
      gboolean found_ = h_ != NULL && strstr (h_, (needle)) != NULL;             \
      if (!found_)                                                               \
        fprintf (stderr, "\n    expected \"%s\" in: %s\n", (needle), h_ ? h_ : "(null)"); \
      CU_ASSERT (found_);                                                        \
    }                                                                            \
  while (0)

/* A real child process whose merged stdout and stderr the test reads. */
typedef struct _CanopyTestProcess CanopyTestProcess;

CanopyTestProcess *canopy_test_process_spawn (const char *const *argv, GError **error);
/* Waits until the output contains @needle; FALSE after @timeout_s. */
gboolean canopy_test_process_wait_output (CanopyTestProcess *proc, const char *needle,
                                          guint timeout_s);
/* Waits for exit; returns the exit status, or -1 on timeout (then kills it). */
int canopy_test_process_wait_exit (CanopyTestProcess *proc, guint timeout_s);
const char *canopy_test_process_output (CanopyTestProcess *proc);
void canopy_test_process_signal (CanopyTestProcess *proc, int signum);
/* How many descriptors the process has open (from /proc), 0 if it is gone. */
guint canopy_test_process_descriptors (CanopyTestProcess *proc);
/* How many threads the process runs (from /proc), 0 if it is gone. */
guint canopy_test_process_threads (CanopyTestProcess *proc);
void canopy_test_process_free (CanopyTestProcess *proc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyTestProcess, canopy_test_process_free)

/* Whether the daemons run under valgrind (make check-valgrind). */
gboolean canopy_test_valgrind (void);

/* Whether the daemons run many times slower than built for use: under
 * valgrind, or built with AddressSanitizer. Bounds that hold only at
 * native speed (a lead verifies a chunk well within the stall allowance)
 * are not asserted then. */
gboolean canopy_test_instrumented (void);

/* @seconds, scaled up when the daemons run under valgrind. */
guint canopy_test_timeout (guint seconds);

/* Runs a program to completion; returns its exit status and output. */
int canopy_test_run (const char *const *argv, char **output);

/* Runs the build tree's canopyctl with the connection profile @profile and
 * the arguments from @first to NULL; *@output is replaced by what it said. */
int canopy_test_ctl (const char *profile, char **output, const char *first,
                     ...) G_GNUC_NULL_TERMINATED;

/* The console token a database fixture's comment gives for the admin
 * @name ("-- token NAME: TOKEN", as the release that wrote it printed). */
char *canopy_test_fixture_token (const char *sql, const char *name);
