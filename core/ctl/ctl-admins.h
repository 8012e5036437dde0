/* canopyctl's commands for console admins: whoami, admins, admin-add and
 * admin-revoke, over the console API. */
#pragma once

#include "ctl/ctl-console.h"

G_BEGIN_DECLS

int ctl_admins_whoami (const CtlGlobal *global, int argc, char **argv);
int ctl_admins_list (const CtlGlobal *global, int argc, char **argv);
int ctl_admins_add (const CtlGlobal *global, int argc, char **argv);
int ctl_admins_revoke (const CtlGlobal *global, int argc, char **argv);

G_END_DECLS
