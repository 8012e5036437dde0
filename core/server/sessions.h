/* Agent sessions on the server: the transports canopyd listens on, the
 * enrolment handshake (hello, then welcome or refused with a reason), and
 * liveness through heartbeats. */
#pragma once

#include <glib.h>
#include "lib/licensing.h"
#include "lib/plugin-loader.h"
#include "lib/topology.h"
#include "lib/transport.h"
#include "lib/wire.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

/* The oldest agent this server still enrols. */
#define CANOPY_SESSIONS_OLDEST_AGENT "0.1.0"

typedef struct _CanopySessions CanopySessions;

typedef struct {
  const char *server_id;
  GBytes *signing_public_key;        /* manifests are signed with its key */
  guint heartbeat_interval;          /* seconds */
  const char *const *assigned_groups; /* devices of these groups are enrolled */
  gboolean distribution_optimization; /* offices from the spreadsheet only */
  /* a device whose address is in no office is refused, instead of
   * enrolled to fetch from the origin */
  gboolean refuse_no_office;
  CanopyTopology *topology;          /* (not owned) */
  CanopyLicensing *licensing;        /* (not owned) */
  CanopyStore *store;                /* (not owned) */
} CanopySessionsSettings;

CanopySessions *canopy_sessions_new (const CanopySessionsSettings *settings);
void canopy_sessions_free (CanopySessions *sessions);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopySessions, canopy_sessions_free)

/**
 * canopy_sessions_add_transport:
 *
 * Creates the transport a `<transport>` element names and listens on it.
 */
gboolean canopy_sessions_add_transport (CanopySessions *sessions, const CanopyPlugin *plugin,
                                        const CanopyConfigNode *element,
                                        const CanopyTransportCredentials *creds, GError **error);

/** canopy_sessions_describe_listeners: Returns: (transfer full): "tcp [::]:7443, ..." */
char *canopy_sessions_describe_listeners (CanopySessions *sessions);

/* Changing the assigned groups: agents refused before are accepted when
 * they next say hello. */
void canopy_sessions_set_assigned_groups (CanopySessions *sessions, const char *const *groups);

/* Whether a device in no office is refused (TRUE) or enrolled to fetch
 * from the origin; changing it closes the sessions of no-office clients
 * that are enrolled, so they are refused when they say hello again. */
void canopy_sessions_set_refuse_no_office (CanopySessions *sessions, gboolean refuse);

/**
 * canopy_sessions_get_no_office_clients:
 * @refused: (out): the devices refused for being in no office since this
 *   server started, and not enrolled since
 *
 * Returns: (transfer full): the enrolled devices whose addresses are in no
 *   office, sorted.
 */
GStrv canopy_sessions_get_no_office_clients (const CanopySessions *sessions, GStrv *refused);

/* What the sessions tell about an enrolled device. */
typedef struct {
  const char *device_id;
  const char *office;
  const char *const *groups;
  const char *host;         /* where its office peers reach it */
  guint16 peer_port;        /* 0: it serves no peers */
  const char *agent_version;
} CanopySessionInfo;

/**
 * CanopySessionsObserver:
 * @enrolled: a device was welcomed (again, after a reconnection)
 * @left: an enrolled device's session ended; @lost when the server closed
 *   it because the device stopped answering (missed heartbeats: a network
 *   cut, a hung or powered-off device)
 * @message: an enrolled device sent progress, done or failed
 *
 * How the distribution learns who is online and what they report.
 */
typedef struct {
  void (*enrolled) (const CanopySessionInfo *info, gpointer user_data);
  void (*left) (const char *device_id, gboolean lost, gpointer user_data);
  void (*message) (const char *device_id, CanopyWireKind kind, GVariant *body,
                   gpointer user_data);
} CanopySessionsObserver;

/**
 * CanopySessionsPeerHandler:
 * @opened: the first message of a connection not yet enrolled is a
 *   peer-hello: the connection speaks the agent-to-agent protocol from now
 *   on (to the server's content store); returns the handler's state for it
 * @message: a message on such a connection, the peer-hello first; return
 *   %FALSE to have the connection closed
 * @drained: its send queue drained
 * @closed: the connection is gone (closed by the agent, dropped, idle, or
 *   the sessions freed); frees @peer, and must not use the connection
 *
 * Who serves peer connections on the server's transports.
 */
typedef struct {
  gpointer (*opened) (CanopyTransportConnection *conn, gpointer user_data);
  gboolean (*message) (gpointer peer, CanopyWireKind kind, GVariant *body);
  void (*drained) (gpointer peer);
  void (*closed) (gpointer peer);
} CanopySessionsPeerHandler;

/* @handler (static) serves peer connections from now on; without one they
 * are closed. Its user data must outlive the sessions. */
void canopy_sessions_set_peer_handler (CanopySessions *sessions,
                                       const CanopySessionsPeerHandler *handler,
                                       gpointer user_data);

/* @observer (static) is told about sessions until the sessions are freed. */
void canopy_sessions_set_observer (CanopySessions *sessions, const CanopySessionsObserver *observer,
                                   gpointer user_data);

/**
 * canopy_sessions_send:
 * @body: (transfer floating): the message body
 *
 * Sends a message to an enrolled device.
 *
 * Returns: %FALSE when the device is not online or the send failed.
 */
gboolean canopy_sessions_send (CanopySessions *sessions, const char *device_id,
                               CanopyWireKind kind, GVariant *body);

/* The same with a payload beside the body: the manifest of an assignment,
 * too large for a frame (see docs/protocol.md). */
gboolean canopy_sessions_send_payload (CanopySessions *sessions, const char *device_id,
                                       CanopyWireKind kind, GVariant *body, GBytes *payload);

/** canopy_sessions_count_enrolled: Returns: sessions past the handshake. */
guint canopy_sessions_count_enrolled (const CanopySessions *sessions);

/* Replaces the topology sessions find offices in (not owned); agents
 * enrolled already keep their office until they next say hello. */
void canopy_sessions_set_topology (CanopySessions *sessions, CanopyTopology *topology,
                                   gboolean distribution_optimization);

typedef void (*CanopySessionsFunc) (const char *device_id, const char *agent_version,
                                    const char *office, gpointer user_data);

/* Calls @func for each session past the handshake. */
void canopy_sessions_foreach_enrolled (const CanopySessions *sessions, CanopySessionsFunc func,
                                       gpointer user_data);

/** canopy_sessions_get_transports: Returns: (transfer none) (element-type CanopyTransport): */
GPtrArray *canopy_sessions_get_transports (const CanopySessions *sessions);

G_END_DECLS
