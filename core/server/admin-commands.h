/* The canopyd subcommands that manage console admins on the server:
 * admin-add, admin-list and admin-revoke. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Each takes the arguments after "canopyd" (argv[0] is the command) and
 * returns the exit status. */
int canopy_admin_commands_add (int argc, char **argv);
int canopy_admin_commands_list (int argc, char **argv);
int canopy_admin_commands_revoke (int argc, char **argv);

G_END_DECLS
