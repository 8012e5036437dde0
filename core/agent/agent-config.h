/* canopy-agent's configuration: the <agent> document as a typed structure. */
#pragma once

#include <glib.h>
#include "agent/server-list.h"
#include "lib/config.h"

G_BEGIN_DECLS

/* The port canopyd listens on unless configured otherwise. */
#define CANOPY_DEFAULT_PORT 7443
/* The port agents serve their office peers on unless configured otherwise. */
#define CANOPY_DEFAULT_PEER_PORT 7444
#define CANOPY_DEFAULT_UPLOAD_SLOTS 4
/* Enough for a few large packages; admins size it to the disk. */
#define CANOPY_DEFAULT_CACHE_QUOTA (G_GUINT64_CONSTANT (10) << 30)

typedef struct {
  CanopyConfig *document;
  GPtrArray *servers; /* CanopyServerAddress, in the order of <server> */
  char *state_directory;
  char *shared_key_file;
  GStrv groups;
  char *name;            /* <name>, else the host name: what admins see */
  char *debug_domains;
  GPtrArray *transports; /* const CanopyConfigNode *, owned by @document */
  char *cache_directory;
  guint64 cache_quota;   /* bytes; 0: no limit */
  gint64 cache_max_age;  /* µs a content may go unused before it is removed; 0: no limit */
  char *peer_address;
  guint16 peer_port;     /* 0: any free port */
  guint upload_slots;
  /* Where deployments may write packages (<destinations>). */
  GStrv destinations;
  /* The first transport's element with a <listen> made from <peers>, for
   * the office-peer listener; owned by @peer_document. */
  CanopyConfig *peer_document;
  const CanopyConfigNode *peer_transport;
} CanopyAgentConfig;

#define CANOPY_AGENT_CONFIG_DEFAULT SYSCONFDIR "/canopy/canopy-agent.xml"

/* Where deployments may write when <destinations> is left out: /opt, where
 * third-party software goes (FHS), and a directory of canopy's own. Not
 * /usr, /etc or /var as a whole: a console token must not be able to
 * replace system files on every device. */
#define CANOPY_AGENT_CONFIG_DESTINATIONS "/opt", LOCALSTATEDIR "/lib/canopy/packages"

CanopyAgentConfig *canopy_agent_config_load (const char *path, GError **error);
void canopy_agent_config_free (CanopyAgentConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyAgentConfig, canopy_agent_config_free)

G_END_DECLS
