/* canopyctl's console-API subcommands: one function per command, each
 * printing a readable table, or the server's JSON with --json. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Options that apply to every subcommand, given before or after its name. */
typedef struct {
  gboolean json;
  const char *profile_path; /* NULL: the default */
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

G_END_DECLS
