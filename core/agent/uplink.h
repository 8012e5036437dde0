/* The agent's link to its server: enrolment, heartbeats, reconnection. */
#pragma once

#include <glib.h>
#include "lib/transport.h"

G_BEGIN_DECLS

typedef enum {
  CANOPY_UPLINK_CONNECTING,
  CANOPY_UPLINK_HELLO_SENT,
  CANOPY_UPLINK_ENROLLED,
  CANOPY_UPLINK_REFUSED,      /* dormant: retries with a growing pause */
  CANOPY_UPLINK_KEY_MISMATCH, /* the server does not accept our shared key */
  CANOPY_UPLINK_DISCONNECTED,
} CanopyUplinkState;

typedef struct _CanopyUplink CanopyUplink;

/**
 * canopy_uplink_new:
 * @plugin: the transport plugin to reach the server with
 * @element: its configuration element
 * @creds: this device's ID and transport secret (copied)
 * @host: the server's name or address
 * @port: its port
 * @groups: the device's groups, sent in the hello
 */
CanopyUplink *canopy_uplink_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                                 const CanopyTransportCredentials *creds, const char *host,
                                 guint16 port, const char *const *groups, GError **error);

/* Connects, and keeps reconnecting until freed. */
void canopy_uplink_start (CanopyUplink *uplink);
void canopy_uplink_free (CanopyUplink *uplink);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyUplink, canopy_uplink_free)

CanopyUplinkState canopy_uplink_get_state (const CanopyUplink *uplink);

/* The port this agent serves office peers on, told to the server in the
 * next hello; 0 (the default) when it serves none. */
void canopy_uplink_set_peer_port (CanopyUplink *uplink, guint16 port);

G_END_DECLS
