/* A PostgreSQL server of a test's own: initdb into a temporary directory
 * owned by the postgres system user (PostgreSQL refuses to run as root),
 * listening only on a Unix socket in that directory, with a random
 * password for the role "canopy" (scram-sha-256). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Starts a server and writes the password to @password_file (mode 0600).
 * Returns its directory (the socket's too; port 5432), or NULL with
 * @skip_reason set when it cannot run here, or with @failure set when it
 * should have started and did not (its log in the message). */
char *canopy_test_pg_start (const char *password_file, char **skip_reason, GError **failure);

/* Stops the server of @dir at once and removes the directory. */
void canopy_test_pg_stop (const char *dir);

/* The unaligned, tuples-only output of @sql run by psql as canopy, or
 * NULL when it failed; the password goes in the environment. */
char *canopy_test_pg_psql (const char *dir, const char *password_file, const char *sql);

/* The <backend> element that points canopyd at the server. */
char *canopy_test_pg_backend_xml (const char *dir, const char *password_file);

G_END_DECLS
