/* canopyctl's content and deployment subcommands: register, publish,
 * deploy to groups and follow each office's progress. */
#pragma once

#include "ctl/ctl-console.h"

G_BEGIN_DECLS

int ctl_content_list (const CtlGlobal *global, int argc, char **argv);
int ctl_content_add (const CtlGlobal *global, int argc, char **argv);
int ctl_content_remove (const CtlGlobal *global, int argc, char **argv);
int ctl_content_expire (const CtlGlobal *global, int argc, char **argv);
int ctl_content_publish (const CtlGlobal *global, int argc, char **argv);
int ctl_content_store (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deployments (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deploy (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deployment_remove (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deployment_cancel (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deployment_retire (const CtlGlobal *global, int argc, char **argv);
int ctl_content_deployment_wait (const CtlGlobal *global, int argc, char **argv);

G_END_DECLS
