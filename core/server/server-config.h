/* canopyd's configuration: the <server> document as a typed structure. */
#pragma once

#include <glib.h>
#include "lib/config.h"

G_BEGIN_DECLS

typedef struct {
  CanopyConfig *document;
  char *name;
  char *state_directory;
  char *debug_domains;
  GStrv assigned_groups;
  gboolean distribution_optimization;
  char *topology_file;        /* the spreadsheet (CSV) used when it is on */
  guint64 licensed_seats;
  guint64 release_after_days; /* 0: never */
  char *licence_file;         /* signed licence file, or NULL */
  char *licence_issuer_key;   /* base64 Ed25519 public key */
  guint64 heartbeat_interval; /* seconds */
  guint64 background_target_ms; /* the queueing delay background leads aim at */
  gboolean console;           /* a <console> element asks for the console API */
  char *console_address;      /* NULL: every address, IPv4 and IPv6 */
  guint64 console_port;       /* 0 picks a free port */
  char *console_certificate;  /* PEM files; default: made by "canopyd init" */
  char *console_key;
  guint64 console_token_lifetime_days; /* admins' new tokens; 0: they never expire */
  /* What a hostile client can hold of the console (seconds, connections). */
  guint64 console_handshake_timeout; /* for the TLS handshake */
  guint64 console_idle_timeout;      /* a connection with no request in flight */
  guint64 console_max_per_address;   /* connections open from one address */
  guint64 console_max_connections;   /* connections open in all */
  /* The content store: NULL directory when there is none. */
  char *content_store_directory;
  guint64 content_store_quota;        /* bytes; 0: only the disk limits it */
  guint64 content_store_upload_slots; /* peers sent chunks at once */
  /* Directories packages may be registered from by path; empty: none. */
  GStrv content_sources;
  /* <cluster>: several canopyd share the database */
  gboolean cluster;
  guint64 cluster_lease_s;   /* an office's lead lease, unless renewed */
  gboolean cluster_poll;     /* poll for changes even if the database notifies */
  const CanopyConfigNode *backend;
  GPtrArray *transports; /* const CanopyConfigNode *, owned by @document */
} CanopyServerConfig;

/* How long an admin's new token lasts when <console> does not say. */
#define CANOPY_SERVER_CONFIG_TOKEN_LIFETIME_DAYS 90

/* The console API's port when <console> names none. */
#define CANOPY_SERVER_CONFIG_CONSOLE_PORT 7444

/* The console's limits when <console> sets none. */
#define CANOPY_SERVER_CONFIG_HANDSHAKE_TIMEOUT 10
#define CANOPY_SERVER_CONFIG_IDLE_TIMEOUT 60
#define CANOPY_SERVER_CONFIG_MAX_PER_ADDRESS 32
#define CANOPY_SERVER_CONFIG_MAX_CONNECTIONS 1024

/* Leads fetching from the content store at once, unless configured. */
#define CANOPY_SERVER_CONFIG_UPLOAD_SLOTS 8

/* An office's lead lease in a cluster, unless <cluster lease-seconds>. */
#define CANOPY_SERVER_CONFIG_LEASE_S 15

/* Where canopyd looks when no --config is given. */
#define CANOPY_SERVER_CONFIG_DEFAULT SYSCONFDIR "/canopy/canopyd.xml"

CanopyServerConfig *canopy_server_config_load (const char *path, GError **error);
void canopy_server_config_free (CanopyServerConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyServerConfig, canopy_server_config_free)

G_END_DECLS
