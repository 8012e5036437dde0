/* canopyctl's console-API subcommands: one function per command, each
 * printing a readable table, or the server's JSON with --json. */
#pragma once

#include <glib.h>
#include "ctl/ctl-client.h"
#include "ctl/ctl-table.h"

G_BEGIN_DECLS

/* Options that apply to every subcommand, given before or after its name. */
typedef struct {
  gboolean json;            /* --json or -o json */
  const char *profile_path; /* NULL: the default */
  CtlTableStyle style;      /* -o wide|name, --no-headers, the terminal's width */
} CtlGlobal;

int ctl_console_login (const CtlGlobal *global, int argc, char **argv);
int ctl_console_logout (const CtlGlobal *global, int argc, char **argv);
int ctl_console_server_id (const CtlGlobal *global, int argc, char **argv);
int ctl_console_settings (const CtlGlobal *global, int argc, char **argv);
int ctl_console_settings_set (const CtlGlobal *global, int argc, char **argv);
int ctl_console_topology_upload (const CtlGlobal *global, int argc, char **argv);
int ctl_console_topology_download (const CtlGlobal *global, int argc, char **argv);
int ctl_console_health (const CtlGlobal *global, int argc, char **argv);
int ctl_console_devices (const CtlGlobal *global, int argc, char **argv);
int ctl_console_offices (const CtlGlobal *global, int argc, char **argv);
int ctl_console_licences_report (const CtlGlobal *global, int argc, char **argv);
int ctl_console_metrics (const CtlGlobal *global, int argc, char **argv);

/* Shared with the other subcommand files (ctl-content.c). */

/* Prints @error (with --json, the server's JSON error on standard output
 * too) and returns the exit status it stands for. */
int ctl_console_fail (const CtlGlobal *global, CtlClient *client, const GError *error);
/* Prints the usage line; returns the usage exit status. */
int ctl_console_usage (const char *text);
CtlClient *ctl_console_open_client (const CtlGlobal *global, GError **error);
void ctl_console_print_json (JsonNode *node);
/* Prints a list as every command does with --json: an object whose
 * member @member is the array (a bare array from the server is wrapped). */
void ctl_console_print_list (JsonNode *node, const char *member);
/* Prints @text wrapped at spaces to the terminal's width (-o wide or no
 * terminal: as it is), each "\n" starting a new line. */
void ctl_console_print_wrapped (const CtlGlobal *global, const char *text);
/* FALSE (message printed) on a bad option or more than @max_args left. */
gboolean ctl_console_parse_options (int *argc, char ***argv, const GOptionEntry *entries,
                                    int max_args);
/* GETs @path; prints its JSON with --json, else hands it to @table. */
typedef void (*CtlShowFunc) (const CtlGlobal *global, JsonNode *answer);
int ctl_console_get_and_show (const CtlGlobal *global, const char *path, CtlShowFunc table);

G_END_DECLS
