/* A PostgreSQL server of a test's own; see pg-server.h. */
#include "build-config.h"

#include "tests/pg-server.h"

#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
pg_bindir (void)
{
  static const char *const dirs[] = { "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
                                      "/usr/lib/postgresql/15/bin", NULL };

  for (int i = 0; dirs[i] != NULL; i++)
    if (g_file_test (dirs[i], G_FILE_TEST_IS_DIR))
      return dirs[i];
  return NULL;
}

static gboolean
run_as_postgres (const char *program, GError **error, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *output = NULL;
  int status = 0;
  va_list args;

  g_ptr_array_add (argv, g_strdup ("runuser"));
  g_ptr_array_add (argv, g_strdup ("-u"));
  g_ptr_array_add (argv, g_strdup ("postgres"));
  g_ptr_array_add (argv, g_strdup ("--"));
  g_ptr_array_add (argv, g_build_filename (pg_bindir (), program, NULL));
  va_start (args, error);
  for (const char *arg; (arg = va_arg (args, const char *)) != NULL;)
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                     &output, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, error))
    {
      g_prefix_error (error, "%s: %s: ", program, output != NULL ? output : "");
      return FALSE;
    }
  return TRUE;
}

void
canopy_test_pg_stop (const char *dir)
{
  g_autofree char *data = g_build_filename (dir, "data", NULL);
  const char *rm[] = { "rm", "-rf", dir, NULL };

  run_as_postgres ("pg_ctl", NULL, "-D", data, "-m", "immediate", "-w", "stop", NULL);
  g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                NULL);
}

/* Starts a server; returns its directory (the socket's too) and writes
 * the password canopy logs in with to @password_file. */
char *
canopy_test_pg_start (const char *password_file, char **skip_reason, GError **failure)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *data = NULL, *pw = NULL, *log = NULL, *options = NULL;
  g_autofree char *password = g_uuid_string_random ();
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  struct passwd *postgres = getpwnam ("postgres");

  if (pg_bindir () == NULL || postgres == NULL || geteuid () != 0 || runuser == NULL)
    {
      *skip_reason = g_strdup ("needs root, runuser and Debian's postgresql package (run "
                               "tools/install-deps.sh)");
      return NULL;
    }
  dir = g_dir_make_tmp ("canopy-pg-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert (chown (dir, postgres->pw_uid, postgres->pw_gid) == 0);
  g_assert (chmod (dir, 0700) == 0);
  data = g_build_filename (dir, "data", NULL);
  pw = g_build_filename (dir, "initdb.pw", NULL);
  log = g_build_filename (dir, "server.log", NULL);
  g_assert (g_file_set_contents (pw, password, -1, NULL));
  g_assert (chown (pw, postgres->pw_uid, postgres->pw_gid) == 0);
  g_assert (g_file_set_contents (password_file, password, -1, NULL));
  g_assert (chmod (password_file, 0600) == 0);
  options = g_strdup_printf ("-k %s -c listen_addresses= -c fsync=off", dir);
  if (!run_as_postgres ("initdb", &error, "-D", data, "-U", "canopy", "--pwfile", pw,
                        "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", NULL)
      || !run_as_postgres ("pg_ctl", &error, "-D", data, "-l", log, "-o", options, "-w", "start",
                           NULL))
    {
      g_autofree char *text = NULL;
      g_file_get_contents (log, &text, NULL, NULL);
      canopy_test_pg_stop (dir);
      g_set_error (failure, error->domain, error->code, "%s\n%s", error->message,
                   text != NULL ? text : "");
      return NULL;
    }
  return g_steal_pointer (&dir);
}

/* Runs @sql in psql as canopy; the password goes through the
 * environment, never the command line. */
char *
canopy_test_pg_psql (const char *dir, const char *password_file, const char *sql)
{
  g_autofree char *password = NULL;
  g_autofree char *out = NULL;
  g_auto (GStrv) env = g_get_environ ();
  const char *argv[] = { "psql", "-X", "-A", "-t", "-h", dir, "-U", "canopy",
                         "-d", "postgres", "-c", sql, NULL };
  int status = 0;

  g_assert (g_file_get_contents (password_file, &password, NULL, NULL));
  env = g_environ_setenv (env, "PGPASSWORD", password, TRUE);
  env = g_environ_setenv (env, "PGOPTIONS", "-c client_min_messages=warning", TRUE);
  if (!g_spawn_sync (NULL, (char **) argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                     &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    return NULL;
  return g_steal_pointer (&out);
}

char *
canopy_test_pg_backend_xml (const char *dir, const char *password_file)
{
  return g_strdup_printf ("<backend plugin='postgresql'><server host='%s' port='5432'/>"
                          "<database>postgres</database><user>canopy</user>"
                          "<password-file>%s</password-file></backend>",
                          dir, password_file);
}
