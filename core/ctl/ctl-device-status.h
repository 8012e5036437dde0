/* canopyctl deployment-show: each target device of a deployment. */
#pragma once

#include "ctl/ctl-console.h"

G_BEGIN_DECLS

int ctl_device_status_show (const CtlGlobal *global, int argc, char **argv);

G_END_DECLS
