/* The agent's link to its server: enrolment, heartbeats, reconnection. */
#pragma once

#include <glib.h>
#include "agent/server-list.h"
#include "lib/signing.h"
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
 * CanopyUplinkEvents:
 * @welcome: (nullable): the server enrolled the device (again, after each
 *   reconnection); its key and office are readable from @uplink now
 * @assignment: (nullable): an ASSIGNMENT body, `(sayua(ussq)st)`, valid
 *   during the call; the server sends it again when role or sources change
 *   and after every reconnection while the deployment is unfinished
 * @cached_bytes: (nullable): verified bytes in the cache, for heartbeats
 * @withdraw: (nullable): a WITHDRAW body, `(ss)`: the server removed or
 *   cancelled the deployment; the agent stops it and answers WITHDRAWN
 * @uninstall: (nullable): an UNINSTALL body, `(ssay)`: the server retired
 *   the deployment; the agent removes its package and answers UNINSTALLED
 * @wan_class: (nullable): a WAN_CLASS body, `(sbu)`, right after an
 *   assignment: whether its lead yields to other traffic, and its target
 *
 * What the agent learns from its server, on the main context.
 */
typedef struct {
  void (*welcome) (CanopyUplink *uplink, gpointer user_data);
  void (*assignment) (CanopyUplink *uplink, GVariant *body, gpointer user_data);
  guint64 (*cached_bytes) (gpointer user_data);
  void (*withdraw) (CanopyUplink *uplink, GVariant *body, gpointer user_data);
  void (*uninstall) (CanopyUplink *uplink, GVariant *body, gpointer user_data);
  void (*wan_class) (CanopyUplink *uplink, GVariant *body, gpointer user_data);
} CanopyUplinkEvents;

/**
 * canopy_uplink_new:
 * @plugin: the transport plugin to reach the server with
 * @element: its configuration element
 * @creds: this device's ID and transport secret (copied)
 * @servers: the servers to enrol with, as #CanopyServerAddress, in order
 *   of preference; the uplink stays with the one that works and moves to
 *   the next when it fails
 * @groups: the device's groups, sent in the hello
 * @name: the device's name for admins, sent in the hello
 */
CanopyUplink *canopy_uplink_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                                 const CanopyTransportCredentials *creds,
                                 const GPtrArray *servers, const char *const *groups,
                                 const char *name, GError **error);

/* (nullable): the address of the server in use, or being tried. */
const CanopyServerAddress *canopy_uplink_get_server (const CanopyUplink *uplink);

/* @events must outlive @uplink. */
void canopy_uplink_set_events (CanopyUplink *uplink, const CanopyUplinkEvents *events,
                               gpointer user_data);

/* Connects, and keeps reconnecting until freed. */
void canopy_uplink_start (CanopyUplink *uplink);
void canopy_uplink_free (CanopyUplink *uplink);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyUplink, canopy_uplink_free)

CanopyUplinkState canopy_uplink_get_state (const CanopyUplink *uplink);

/* The port this agent serves office peers on, told to the server in the
 * next hello; 0 (the default) when it serves none. */
void canopy_uplink_set_peer_port (CanopyUplink *uplink, guint16 port);

/* The address office peers reach this agent at, reported first in the next
 * hello; a wildcard address ("0.0.0.0", "::") is not reported. */
void canopy_uplink_set_peer_address (CanopyUplink *uplink, const char *address);

/**
 * canopy_uplink_get_verify_key:
 *
 * Returns: (transfer none) (nullable): the server's content-signing key
 *   from the last welcome; %NULL before the first.
 */
const CanopyVerifyKey *canopy_uplink_get_verify_key (const CanopyUplink *uplink);

/* The raw 32 bytes of that key, to keep across restarts; NULL before. */
GBytes *canopy_uplink_get_public_key (const CanopyUplink *uplink);

/** canopy_uplink_get_office: Returns: (nullable): the office the last welcome named. */
const char *canopy_uplink_get_office (const CanopyUplink *uplink);

/**
 * canopy_uplink_send:
 * @kind: %CANOPY_WIRE_PROGRESS, %CANOPY_WIRE_DONE or %CANOPY_WIRE_FAILED
 * @body: (transfer floating): the body of @kind's type
 *
 * Fails with %CANOPY_TRANSPORT_ERROR_CLOSED while not enrolled; the
 * server asks again (a new assignment) once the agent is back.
 */
gboolean canopy_uplink_send (CanopyUplink *uplink, guint kind, GVariant *body, GError **error);

G_END_DECLS
