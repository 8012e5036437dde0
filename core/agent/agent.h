/* canopy-agent's running state: its configuration and transports. */
#pragma once

#include <glib.h>
#include "agent/agent-config.h"

G_BEGIN_DECLS

typedef struct _CanopyAgent CanopyAgent;

CanopyAgent *canopy_agent_new (const char *config_path, GError **error);
void canopy_agent_free (CanopyAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyAgent, canopy_agent_free)

const CanopyAgentConfig *canopy_agent_get_config (const CanopyAgent *agent);
char *canopy_agent_describe (const CanopyAgent *agent);
gboolean canopy_agent_reload (CanopyAgent *agent, GError **error);

/* Loads the device ID and shared key, and connects to the server. */
gboolean canopy_agent_start (CanopyAgent *agent, GError **error);
void canopy_agent_stop (CanopyAgent *agent);

G_END_DECLS
