/* canopy-agent's configuration: the <agent> document as a typed structure. */
#pragma once

#include <glib.h>
#include "lib/config.h"

G_BEGIN_DECLS

/* The port canopyd listens on unless configured otherwise. */
#define CANOPY_DEFAULT_PORT 7443

typedef struct {
  CanopyConfig *document;
  char *server_host;
  guint16 server_port;
  char *state_directory;
  char *shared_key_file;
  GStrv groups;
  char *debug_domains;
  GPtrArray *transports; /* const CanopyConfigNode *, owned by @document */
} CanopyAgentConfig;

#define CANOPY_AGENT_CONFIG_DEFAULT SYSCONFDIR "/canopy/canopy-agent.xml"

CanopyAgentConfig *canopy_agent_config_load (const char *path, GError **error);
void canopy_agent_config_free (CanopyAgentConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyAgentConfig, canopy_agent_config_free)

G_END_DECLS
