/* Agent sessions on the server. A connection is already authenticated by
 * the transport; the session then waits for the agent's hello and either
 * enrols it or refuses it with a reason the agent shows its admin. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-sessions"

#include "server/sessions.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/wire.h"

#include <string.h>

/* A session that sends nothing for this many heartbeat intervals is gone. */
#define MISSED_HEARTBEATS 3
/* Peer connections send no heartbeats; one silent this long is forgotten.
 * Agents connect again when they next need the store. */
#define PEER_IDLE_S 300
/* A device's last-seen time is written at most this often (see record_due). */
#define RECORD_EVERY_MAX_S 60

typedef struct {
  CanopySessions *sessions;
  CanopyTransportConnection *conn;
  char *device_id;
  char *agent_version;
  char *name;          /* the device's name for admins, as its hello said */
  char *office;
  GVariant *groups;    /* as */
  GVariant *addresses; /* a(sy) */
  guint16 peer_port;   /* where it serves office peers; 0: nowhere */
  gboolean enrolled;
  gpointer peer;       /* the peer handler's state: a peer connection */
  gboolean lost;       /* closed because it stopped answering */
  gint64 last_heard;   /* monotonic µs */
  gint64 recorded_at;  /* monotonic µs of the last record written */
  guint64 serial;      /* tells this session from a later one of the device */
} Session;

/* An enrolment waiting for the store's commit before the welcome. */
typedef struct {
  CanopySessions *sessions;
  char *device_id;
  guint64 serial;
} Welcome;

struct _CanopySessions {
  char *server_id;
  guint heartbeat_interval;
  GStrv assigned_groups;
  GBytes *signing_public_key;
  gboolean distribution_optimization;
  gboolean refuse_no_office;
  GHashTable *no_office_refused; /* device IDs refused for being in no office */
  CanopyTopology *topology;
  CanopyLicensing *licensing;
  CanopyStore *store;
  GPtrArray *transports; /* CanopyTransport */
  GHashTable *sessions;  /* CanopyTransportConnection → Session */
  GHashTable *enrolled;  /* device ID → Session, enrolled ones */
  const CanopySessionsObserver *observer;
  gpointer observer_data;
  const CanopySessionsPeerHandler *peer_handler;
  gpointer peer_handler_data;
  guint liveness_timer;
  gboolean overage_reported;
  guint64 next_serial;
  CanopyLogLimit *rejections; /* connections that failed before authentication */
  CanopyLogLimit *unreadable; /* authenticated peers whose messages cannot be read */
};

static void
session_free (Session *session)
{
  CanopySessions *sessions = session->sessions;

  if (session->enrolled && g_hash_table_lookup (sessions->enrolled, session->device_id) == session)
    {
      g_hash_table_remove (sessions->enrolled, session->device_id);
      if (sessions->observer != NULL)
        sessions->observer->left (session->device_id, session->lost, sessions->observer_data);
    }
  if (session->peer != NULL)
    sessions->peer_handler->closed (session->peer);
  g_free (session->device_id);
  g_free (session->agent_version);
  g_free (session->name);
  g_free (session->office);
  g_clear_pointer (&session->groups, g_variant_unref);
  g_clear_pointer (&session->addresses, g_variant_unref);
  g_free (session);
}

/* The device's record, carried forward from what is stored: first seen
 * stays, time online grows by the time since the last record. That time
 * is measured on the monotonic clock: a wall-clock step (NTP, an admin)
 * must neither add hours online nor take them away. */
static void
record_device (Session *session)
{
  CanopyStore *store = session->sessions->store;
  GVariant *stored = store != NULL ? canopy_store_get_device (store, session->device_id) : NULL;
  gint64 now = g_get_real_time ();
  gint64 monotonic = g_get_monotonic_time ();
  gint64 first_seen = now, online = 0;
  guint64 served = 0;
  guint32 peers = 0, bad = 0;

  if (store == NULL)
    return;
  if (stored != NULL)
    g_variant_get (stored, "(&s@as@a(sy)&s&sxxxtuu)", NULL, NULL, NULL, NULL, NULL, &first_seen,
                   NULL, &online, &served, &peers, &bad);
  online += session->recorded_at > 0 ? monotonic - session->recorded_at : 0;
  session->recorded_at = monotonic;
  /* A clock set back must not leave it seen last before it was seen first. */
  first_seen = MIN (first_seen, now);
  canopy_store_put (store, CANOPY_RECORD_DEVICE, session->device_id,
                    g_variant_new ("(s@as@a(sy)ssxxxtuu)",
                                   session->name != NULL ? session->name : "", session->groups,
                                   session->addresses, session->agent_version, session->office,
                                   first_seen, now, online, served, peers, bad));
}

/* Whether a heartbeat is to be written: every heartbeat at the configured
 * interval is, but an agent that beats more often than once a minute is
 * written about once a minute, so that chatty agents never set the
 * database's pace. */
static gboolean
record_due (const Session *session)
{
  gint64 every = (gint64) MIN (session->sessions->heartbeat_interval, RECORD_EVERY_MAX_S)
                 * G_USEC_PER_SEC;

  /* half an interval's leeway: a heartbeat on time is never skipped */
  return g_get_monotonic_time () - session->recorded_at >= every / 2;
}

static void
record_activation (Session *session)
{
  const CanopyActivation *a = canopy_licensing_lookup (session->sessions->licensing,
                                                       session->device_id);

  if (a != NULL && session->sessions->store != NULL)
    canopy_store_put (session->sessions->store, CANOPY_RECORD_ACTIVATION, session->device_id,
                      g_variant_new ("(xxx)", a->activated_at, a->last_seen, (gint64) 0));
}

static char *
peer_description (CanopyTransportConnection *conn)
{
  GSocketAddress *address = canopy_transport_connection_get_peer_address (conn);
  g_autofree char *where = NULL;

  if (G_IS_INET_SOCKET_ADDRESS (address))
    where = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
  return g_strdup_printf ("%s (%s)", canopy_transport_connection_get_peer_id (conn),
                          where != NULL ? where : "?");
}

/* Forgets @session and closes its connection; no event follows. */
static void
drop_session (Session *session)
{
  CanopyTransportConnection *conn = session->conn;

  g_hash_table_remove (session->sessions->sessions, conn);
  canopy_transport_close (conn);
}

static gboolean
send_body_payload (Session *session, CanopyWireKind kind, GVariant *body, GBytes *payload)
{
  g_autoptr (GError) error = NULL;

  if (canopy_wire_send (session->conn, kind, body, payload, &error))
    return TRUE;
  g_message (_("Cannot send \"%s\" to agent %s: %s"), canopy_wire_kind_to_string (kind),
             session->device_id, error->message);
  return FALSE;
}

static gboolean
send_body (Session *session, CanopyWireKind kind, GVariant *body)
{
  return send_body_payload (session, kind, body, NULL);
}

static void
refuse (Session *session, CanopyWireRefusal reason, const char *message)
{
  g_autofree char *shown = g_strescape (session->device_id, NULL);

  g_message (_("Refused agent %.64s: %s"), shown, message);
  send_body (session, CANOPY_WIRE_REFUSED,
             g_variant_new ("(usss)", (guint32) reason, message, CANOPY_SESSIONS_OLDEST_AGENT,
                            PACKAGE_VERSION));
}

static gboolean
in_assigned_group (CanopySessions *sessions, GVariant *groups)
{
  GVariantIter iter;
  const char *group;

  if (sessions->assigned_groups == NULL || sessions->assigned_groups[0] == NULL)
    return FALSE;
  g_variant_iter_init (&iter, groups);
  while (g_variant_iter_next (&iter, "&s", &group))
    if (g_strv_contains ((const char *const *) sessions->assigned_groups, group))
      return TRUE;
  return FALSE;
}

/* An automatic office as a #CANOPY_RECORD_OFFICE_TYPE record. */
static GVariant *
auto_office_record (const CanopyOffice *office)
{
  GVariantBuilder ranges;

  g_variant_builder_init (&ranges, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 0; i < office->ranges->len; i++)
    {
      g_autofree char *text = canopy_address_range_to_string (
        &g_array_index (office->ranges, CanopyAddressRange, i));
      g_variant_builder_add (&ranges, "s", text);
    }
  return g_variant_new ("(suastbb)", office->parent != NULL ? office->parent : "",
                        (guint32) office->type, &ranges, office->wan_rate, office->metered,
                        office->automatic);
}

/* The office of the first reported address that has one. With
 * distribution optimization off, a subnet no office holds becomes one. */
static const CanopyOffice *
find_office (CanopySessions *sessions, GVariant *addresses)
{
  GVariantIter iter;
  const char *address;
  guint8 prefix;

  g_variant_iter_init (&iter, addresses);
  while (g_variant_iter_next (&iter, "(&sy)", &address, &prefix))
    {
      const CanopyOffice *office = canopy_topology_find_office (sessions->topology, address);
      CanopyAddressRange subnet;

      if (office != NULL)
        return office;
      if (!sessions->distribution_optimization
          && canopy_address_range_from_address (address, prefix, &subnet, NULL))
        {
          office = canopy_topology_add_auto_office (sessions->topology, &subnet);
          /* Kept, so that the topology survives a restart of the server
           * before the devices reconnect. */
          if (sessions->store != NULL)
            canopy_store_put (sessions->store, CANOPY_RECORD_OFFICE, office->name,
                              auto_office_record (office));
          return office;
        }
    }
  return NULL;
}

/* A device that enrols again while its old session lingers (it restarted,
 * or its network changed): the handshake just proved it is the same
 * device, so the old session is the stale one. */
static void
replace_stale_session (Session *session)
{
  Session *old = g_hash_table_lookup (session->sessions->enrolled, session->device_id);

  if (old != NULL && old != session)
    {
      g_debug ("agent %s enrolled again; closing its previous session", session->device_id);
      drop_session (old);
    }
}

/* Where office peers reach the device: its first reported address in its
 * office, else the address it connected from. */
static char *
peer_host (Session *session)
{
  const CanopyOffice *office = canopy_topology_lookup (session->sessions->topology,
                                                       session->office);
  GSocketAddress *address = canopy_transport_connection_get_peer_address (session->conn);
  GVariantIter iter;
  const char *candidate;
  guint8 prefix;

  g_variant_iter_init (&iter, session->addresses);
  while (g_variant_iter_next (&iter, "(&sy)", &candidate, &prefix))
    if (office != NULL && canopy_topology_find_office (session->sessions->topology, candidate)
                            == office)
      return g_strdup (candidate);
  if (G_IS_INET_SOCKET_ADDRESS (address))
    return g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
  return g_strdup ("");
}

static void
notify_enrolled (Session *session)
{
  CanopySessions *sessions = session->sessions;
  g_autofree const char **groups = NULL;
  g_autofree char *host = NULL;
  CanopySessionInfo info;

  if (sessions->observer == NULL)
    return;
  groups = g_variant_get_strv (session->groups, NULL);
  host = peer_host (session);
  info.device_id = session->device_id;
  info.office = session->office;
  info.groups = groups;
  info.host = host;
  info.peer_port = session->peer_port;
  info.agent_version = session->agent_version;
  sessions->observer->enrolled (&info, sessions->observer_data);
}

static void
welcome (Session *session)
{
  CanopySessions *sessions = session->sessions;

  if (session->office[0] != '\0')
    g_message (_("Enrolled agent %s, version %s, in office \"%s\""), session->device_id,
               session->agent_version, session->office);
  else
    g_message (_("Enrolled agent %s, version %s, as a no-office client: none of its addresses "
                 "is in an office of the topology, so it gets no peer-to-peer download and "
                 "fetches from the origin. Add its subnet to the topology spreadsheet to let "
                 "it share"),
               session->device_id, session->agent_version);
  send_body (session, CANOPY_WIRE_WELCOME,
             g_variant_new ("(ssus@ay)", sessions->server_id, PACKAGE_VERSION,
                            (guint32) sessions->heartbeat_interval, session->office,
                            g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                      sessions->signing_public_key, TRUE)));
  notify_enrolled (session);
}

static void
welcome_free (Welcome *w)
{
  g_free (w->device_id);
  g_free (w);
}

/* The store committed the enrolment: welcome the device, if the session
 * that asked is still the device's (it may have hung up meanwhile). */
static void
on_enrolment_saved (gpointer user_data)
{
  Welcome *w = user_data;
  Session *session = g_hash_table_lookup (w->sessions->enrolled, w->device_id);

  if (session != NULL && session->serial == w->serial)
    welcome (session);
}

/* A welcomed device counts on the server to remember it: a crash right
 * after the welcome must not lose the enrolment or its licence. The
 * welcome therefore waits for the store's commit, without blocking. */
static void
welcome_when_saved (Session *session)
{
  CanopySessions *sessions = session->sessions;
  Welcome *w;

  if (sessions->store == NULL)
    {
      welcome (session);
      return;
    }
  w = g_new0 (Welcome, 1);
  w->sessions = sessions;
  w->device_id = g_strdup (session->device_id);
  w->serial = session->serial;
  canopy_store_sync (sessions->store, on_enrolment_saved, w, (GDestroyNotify) welcome_free);
}

/* The most addresses a hello may report: real devices have a handful. */
#define MAX_HELLO_ADDRESSES 64

/* What a hello reports goes into the database, the topology lookup and
 * the peer list other devices connect to: it must be what it says. */
#define MAX_NAME_LENGTH 253

/* A name an admin can read: a host name's length, one printable line. */
static gboolean
name_is_valid (const char *name)
{
  if (!g_utf8_validate (name, -1, NULL) || g_utf8_strlen (name, -1) > MAX_NAME_LENGTH)
    return FALSE;
  for (const char *p = name; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

static char *
check_hello (Session *session, GVariant *addresses, const char *name)
{
  g_autofree char *shown = g_strescape (session->device_id, NULL);
  GVariantIter iter;
  const char *address;
  guint8 prefix;

  if (!g_uuid_string_is_valid (session->device_id))
    return g_strdup_printf (_("the device ID \"%.64s\" is not a UUID. The agent's "
                              "device-id file in its state directory is damaged: remove it and "
                              "restart the agent, which makes a new one"), shown);
  if (!name_is_valid (name))
    return g_strdup_printf (_("the device's name is longer than %d characters or holds control "
                              "characters; set <name> in canopy-agent.xml to a shorter, "
                              "printable one"), MAX_NAME_LENGTH);
  if (g_variant_n_children (addresses) > MAX_HELLO_ADDRESSES)
    return g_strdup_printf (_("the device reported %zu addresses, more than the %d this server "
                              "takes; check the device's network configuration"),
                            g_variant_n_children (addresses), MAX_HELLO_ADDRESSES);
  g_variant_iter_init (&iter, addresses);
  while (g_variant_iter_next (&iter, "(&sy)", &address, &prefix))
    {
      g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
      g_autofree char *escaped = g_strescape (address, NULL);

      if (inet == NULL)
        return g_strdup_printf (_("the device reported \"%.64s\", which is not an IP "
                                  "address; update the agent, or report this as a bug"),
                                escaped);
      if (prefix > (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV4 ? 32 : 128))
        return g_strdup_printf (_("the device reported %s/%u, a prefix length that address "
                                  "cannot have; update the agent, or report this as a bug"),
                                escaped, (guint) prefix);
    }
  return NULL;
}

static void
handle_hello (Session *session, GVariant *body)
{
  CanopySessions *sessions = session->sessions;
  const char *claimed, *version, *name;
  g_autoptr (GVariant) addresses = NULL, groups = NULL;
  const CanopyOffice *office;
  g_autofree char *message = NULL;

  g_variant_get (body, "(&s&s@a(sy)@asq&s)", &claimed, &version, &addresses, &groups,
                 &session->peer_port, &name);
  message = check_hello (session, addresses, name);
  if (message != NULL)
    {
      refuse (session, CANOPY_WIRE_REFUSED_INVALID, message);
      return;
    }
  if (g_strcmp0 (claimed, session->device_id) != 0)
    {
      g_warning (_("Agent %s claims to be %s in its hello; closing the connection"),
                 session->device_id, claimed);
      drop_session (session);
      return;
    }
  g_free (session->agent_version);
  session->agent_version = g_strdup (version);
  g_free (session->name);
  session->name = g_strdup (name);

  if (canopy_wire_compare_versions (version, CANOPY_SESSIONS_OLDEST_AGENT) < 0
      || canopy_wire_compare_versions (version, PACKAGE_VERSION) > 0)
    {
      message = g_strdup_printf (_("agent version %s is not supported; this server supports "
                                   "agent versions %s to %s. Deploy a supported agent"),
                                 version, CANOPY_SESSIONS_OLDEST_AGENT, PACKAGE_VERSION);
      refuse (session, CANOPY_WIRE_REFUSED_VERSION, message);
      return;
    }
  if (!in_assigned_group (sessions, groups))
    {
      refuse (session, CANOPY_WIRE_REFUSED_NOT_IN_GROUP,
              _("the device is in none of the groups assigned to peer distribution; it stays "
                "dormant until one of its groups is assigned"));
      return;
    }
  office = find_office (sessions, addresses);
  if (office == NULL && sessions->refuse_no_office)
    {
      g_hash_table_add (sessions->no_office_refused, g_strdup (session->device_id));
      refuse (session, CANOPY_WIRE_REFUSED_NO_OFFICE,
              _("none of the device's addresses is in an office of the uploaded topology, "
                "and this server refuses no-office clients; it stays dormant. Add its subnet "
                "to the topology spreadsheet, or set no_office_clients to \"origin\" so it "
                "fetches from the origin"));
      return;
    }
  g_hash_table_remove (sessions->no_office_refused, session->device_id);
  /* Said once per run: the health check reports the overage from then on. */
  if (canopy_licensing_activate (sessions->licensing, session->device_id, g_get_real_time ())
      && !sessions->overage_reported)
    {
      sessions->overage_reported = TRUE;
      g_warning (g_dngettext (GETTEXT_PACKAGE,
                              "Licence overage: %u device is active and %u are licensed. "
                              "Nothing is blocked; add licences",
                              "Licence overage: %u devices are active and %u are licensed. "
                              "Nothing is blocked; add licences",
                              canopy_licensing_get_used (sessions->licensing)),
               canopy_licensing_get_used (sessions->licensing),
               canopy_licensing_get_seats (sessions->licensing));
    }

  g_free (session->office);
  /* "": a no-office client, which gets no peer-to-peer download. */
  session->office = g_strdup (office != NULL ? office->name : "");
  g_clear_pointer (&session->groups, g_variant_unref);
  g_clear_pointer (&session->addresses, g_variant_unref);
  session->groups = g_variant_ref (groups);
  session->addresses = g_variant_ref (addresses);
  replace_stale_session (session);
  session->enrolled = TRUE;
  g_hash_table_insert (sessions->enrolled, session->device_id, session);
  record_device (session);
  record_activation (session);
  welcome_when_saved (session);
}

static void
on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  CanopySessions *sessions = user_data;
  Session *session = g_new0 (Session, 1);
  g_autofree char *who = peer_description (conn);

  session->sessions = sessions;
  session->conn = conn;
  session->device_id = g_strdup (canopy_transport_connection_get_peer_id (conn));
  session->last_heard = g_get_monotonic_time ();
  session->serial = ++sessions->next_serial;
  conn->owner_data = session;
  g_hash_table_insert (sessions->sessions, conn, session);
  g_debug ("agent %s connected", who);
}

static void
on_rejected_summary (const char *host, guint suppressed, gpointer user_data)
{
  g_message (g_dngettext (GETTEXT_PACKAGE,
                          "%u more connection from %s failed before it was authenticated in "
                          "the last minute",
                          "%u more connections from %s failed before they were "
                          "authenticated in the last minute",
                          suppressed), suppressed, host);
}

static void
on_unreadable_summary (const char *host, guint suppressed, gpointer user_data)
{
  g_message (g_dngettext (GETTEXT_PACKAGE,
                          "%u more connection from %s sent messages canopy cannot read in "
                          "the last minute and was closed. Update the agents there, or find "
                          "the device that misuses the shared key",
                          "%u more connections from %s sent messages canopy cannot read in "
                          "the last minute and were closed. Update the agents there, or "
                          "find the device that misuses the shared key",
                          suppressed), suppressed, host);
}

/* The address a connection comes from, as text, to rate-limit by. */
static char *
connection_host (CanopyTransportConnection *conn)
{
  GSocketAddress *address = canopy_transport_connection_get_peer_address (conn);

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("?");
  return g_inet_address_to_string (
    g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
}

static void
on_rejected (GSocketAddress *peer_address, const GError *error, gpointer user_data)
{
  CanopySessions *sessions = user_data;
  g_autofree char *where = NULL;

  /* canopy_transport_new logs key mismatches and malformed frames itself;
   * other failures are worth a line for whoever debugs a device that
   * cannot connect, but anyone can cause them: rate-limited too. */
  if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH)
      || g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL))
    return;
  if (G_IS_INET_SOCKET_ADDRESS (peer_address))
    where = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (peer_address)));
  if (canopy_log_limit_allow (sessions->rejections, where != NULL ? where : "?"))
    g_message (_("A connection from %s failed before it was authenticated: %s"),
               where != NULL ? where : "?", error->message);
}

/* A connection whose first message is a peer-hello wants the content
 * store, not enrolment; it was authenticated by the transport all the same. */
static gboolean
serve_peer (Session *session, CanopyWireKind kind, GVariant *body)
{
  CanopySessions *sessions = session->sessions;

  if (session->peer == NULL)
    {
      if (kind != CANOPY_WIRE_PEER_HELLO || session->enrolled)
        return FALSE;
      if (sessions->peer_handler == NULL)
        {
          g_message (_("Agent %s asked this server for content, but it keeps no content store; "
                       "closing that connection. Configure <content-store> to have the server "
                       "seed content"), session->device_id);
          drop_session (session);
          return TRUE;
        }
      session->peer = sessions->peer_handler->opened (session->conn, sessions->peer_handler_data);
    }
  if (!sessions->peer_handler->message (session->peer, kind, body))
    drop_session (session);
  return TRUE;
}

static void
on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload, gpointer user_data)
{
  Session *session = conn->owner_data;
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, &error);

  if (body == NULL)
    {
      g_autofree char *host = connection_host (conn);

      /* Any key holder can send garbage at will: rate-limited per address. */
      if (canopy_log_limit_allow (session->sessions->unreadable, host))
        g_warning (_("Agent %s at %s sent a message canopy cannot read (%s); closing its "
                     "connection"), session->device_id, host, error->message);
      drop_session (session);
      return;
    }
  session->last_heard = g_get_monotonic_time ();
  if (serve_peer (session, kind, body))
    return;
  switch (kind)
    {
    case CANOPY_WIRE_HELLO:
      handle_hello (session, body);
      break;
    case CANOPY_WIRE_HEARTBEAT:
      /* Echoed, so the agent knows the server is there and how far away.
       * @body is not floating: the encoder's sink takes a reference of its
       * own and drops it again. */
      send_body (session, CANOPY_WIRE_HEARTBEAT, body);
      if (session->enrolled)
        {
          canopy_licensing_activate (session->sessions->licensing, session->device_id,
                                     g_get_real_time ());
          if (record_due (session))
            {
              record_device (session);
              record_activation (session);
            }
        }
      break;
    case CANOPY_WIRE_PROGRESS:
    case CANOPY_WIRE_DONE:
    case CANOPY_WIRE_FAILED:
    case CANOPY_WIRE_WITHDRAWN:
    case CANOPY_WIRE_UNINSTALLED:
    case CANOPY_WIRE_WAN_PACING:
      if (session->enrolled && session->sessions->observer != NULL)
        session->sessions->observer->message (session->device_id, kind, body,
                                              session->sessions->observer_data);
      break;
    default:
      g_debug ("agent %s sent \"%s\", which this server does not handle", session->device_id,
               canopy_wire_kind_to_string (kind));
      break;
    }
}

static void
on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  Session *session = conn->owner_data;

  if (session != NULL && session->peer != NULL)
    session->sessions->peer_handler->drained (session->peer);
}

static void
on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  CanopySessions *sessions = user_data;
  Session *session = conn->owner_data;

  if (session == NULL)
    return;
  /* A refused agent hangs up by design; only enrolled ones are news. */
  if (session->enrolled)
    {
      g_message (_("Agent %s disconnected: %s"), session->device_id, error->message);
      record_device (session);
    }
  else
    g_debug ("agent %s (not enrolled) disconnected: %s", session->device_id, error->message);
  g_hash_table_remove (sessions->sessions, conn);
}

static const CanopyTransportEvents session_events = {
  .incoming = on_incoming,
  .rejected = on_rejected,
  .message = on_message,
  .drained = on_drained,
  .closed = on_closed,
};

static gboolean
check_liveness (gpointer user_data)
{
  CanopySessions *sessions = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 limit = now - (gint64) sessions->heartbeat_interval * MISSED_HEARTBEATS * G_USEC_PER_SEC;
  gint64 peer_limit = now - (gint64) PEER_IDLE_S * G_USEC_PER_SEC;
  GHashTableIter iter;
  Session *session;

  g_hash_table_iter_init (&iter, sessions->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
    if (session->peer != NULL && session->last_heard < peer_limit)
      {
        g_debug ("agent %s left its connection to the content store idle; closing it",
                 session->device_id);
        canopy_transport_close (session->conn);
        g_hash_table_iter_remove (&iter);
      }
    else if (session->peer == NULL && session->last_heard < limit)
      {
        g_message (_("Agent %s missed %u heartbeats; closing its session"), session->device_id,
                   MISSED_HEARTBEATS);
        session->lost = TRUE;
        canopy_transport_close (session->conn);
        g_hash_table_iter_remove (&iter);
      }
  return G_SOURCE_CONTINUE;
}

CanopySessions *
canopy_sessions_new (const CanopySessionsSettings *settings)
{
  CanopySessions *sessions = g_new0 (CanopySessions, 1);

  sessions->server_id = g_strdup (settings->server_id);
  sessions->signing_public_key = g_bytes_ref (settings->signing_public_key);
  sessions->heartbeat_interval = MAX (settings->heartbeat_interval, 1);
  sessions->assigned_groups = g_strdupv ((char **) settings->assigned_groups);
  sessions->distribution_optimization = settings->distribution_optimization;
  sessions->refuse_no_office = settings->refuse_no_office;
  sessions->no_office_refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  sessions->topology = settings->topology;
  sessions->licensing = settings->licensing;
  sessions->store = settings->store;
  sessions->transports = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_transport_free);
  sessions->sessions = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) session_free);
  sessions->enrolled = g_hash_table_new (g_str_hash, g_str_equal);
  sessions->liveness_timer = g_timeout_add_seconds (sessions->heartbeat_interval,
                                                    check_liveness, sessions);
  sessions->rejections = canopy_log_limit_new (60, on_rejected_summary, NULL);
  sessions->unreadable = canopy_log_limit_new (60, on_unreadable_summary, NULL);
  return sessions;
}

void
canopy_sessions_free (CanopySessions *sessions)
{
  if (sessions == NULL)
    return;
  g_source_remove (sessions->liveness_timer);
  sessions->observer = NULL;
  /* Transports close their connections without events: drop the sessions
   * first so nothing refers to a freed connection. */
  g_hash_table_unref (sessions->sessions);
  g_hash_table_unref (sessions->enrolled);
  g_hash_table_unref (sessions->no_office_refused);
  g_ptr_array_unref (sessions->transports);
  canopy_log_limit_free (sessions->rejections);
  canopy_log_limit_free (sessions->unreadable);
  g_strfreev (sessions->assigned_groups);
  g_free (sessions->server_id);
  g_bytes_unref (sessions->signing_public_key);
  g_free (sessions);
}

gboolean
canopy_sessions_add_transport (CanopySessions *sessions, const CanopyPlugin *plugin,
                               const CanopyConfigNode *element,
                               const CanopyTransportCredentials *creds, GError **error)
{
  g_autoptr (CanopyTransport) transport = canopy_transport_new (plugin, element, creds, NULL,
                                                                &session_events, sessions, error);

  if (transport == NULL || !canopy_transport_listen (transport, error))
    return FALSE;
  g_ptr_array_add (sessions->transports, g_steal_pointer (&transport));
  return TRUE;
}

char *
canopy_sessions_describe_listeners (CanopySessions *sessions)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < sessions->transports->len; i++)
    {
      CanopyTransport *transport = g_ptr_array_index (sessions->transports, i);
      g_autoptr (GPtrArray) addresses = canopy_transport_get_listen_addresses (transport);

      for (guint a = 0; a < addresses->len; a++)
        {
          GInetSocketAddress *address = g_ptr_array_index (addresses, a);
          g_autofree char *ip = g_inet_address_to_string (
            g_inet_socket_address_get_address (address));

          g_string_append_printf (out, "%s%s %s port %u", out->len > 0 ? ", " : "",
                                  canopy_transport_get_name (transport), ip,
                                  g_inet_socket_address_get_port (address));
        }
    }
  return g_string_free (out, FALSE);
}

void
canopy_sessions_set_assigned_groups (CanopySessions *sessions, const char *const *groups)
{
  g_strfreev (sessions->assigned_groups);
  sessions->assigned_groups = g_strdupv ((char **) groups);
}

guint
canopy_sessions_count_enrolled (const CanopySessions *sessions)
{
  GHashTableIter iter;
  Session *session;
  guint n = 0;

  g_hash_table_iter_init (&iter, sessions->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
    n += session->enrolled;
  return n;
}

void
canopy_sessions_set_peer_handler (CanopySessions *sessions,
                                  const CanopySessionsPeerHandler *handler, gpointer user_data)
{
  sessions->peer_handler = handler;
  sessions->peer_handler_data = user_data;
}

void
canopy_sessions_set_observer (CanopySessions *sessions, const CanopySessionsObserver *observer,
                              gpointer user_data)
{
  sessions->observer = observer;
  sessions->observer_data = user_data;
}

gboolean
canopy_sessions_send (CanopySessions *sessions, const char *device_id, CanopyWireKind kind,
                      GVariant *body)
{
  return canopy_sessions_send_payload (sessions, device_id, kind, body, NULL);
}

gboolean
canopy_sessions_send_payload (CanopySessions *sessions, const char *device_id,
                              CanopyWireKind kind, GVariant *body, GBytes *payload)
{
  Session *session = g_hash_table_lookup (sessions->enrolled, device_id);

  if (session == NULL)
    {
      g_variant_unref (g_variant_ref_sink (body));
      return FALSE;
    }
  return send_body_payload (session, kind, body, payload);
}

void
canopy_sessions_set_refuse_no_office (CanopySessions *sessions, gboolean refuse)
{
  GHashTableIter iter;
  Session *session;

  if (sessions->refuse_no_office == refuse)
    return;
  sessions->refuse_no_office = refuse;
  if (!refuse)
    return;
  /* Enrolled no-office clients are now refused: they hear why when they
   * say hello again. */
  g_hash_table_iter_init (&iter, sessions->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
    if (session->enrolled && session->office != NULL && session->office[0] == '\0')
      {
        canopy_transport_close (session->conn);
        g_hash_table_iter_remove (&iter);
      }
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static GStrv
sorted_strv (GPtrArray *array)
{
  g_ptr_array_sort (array, compare_strings);
  g_ptr_array_add (array, NULL);
  return (GStrv) g_ptr_array_free (array, FALSE);
}

GStrv
canopy_sessions_get_no_office_clients (const CanopySessions *sessions, GStrv *refused)
{
  GPtrArray *enrolled = g_ptr_array_new ();
  GPtrArray *others = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, sessions->enrolled);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((Session *) value)->office != NULL && ((Session *) value)->office[0] == '\0')
      g_ptr_array_add (enrolled, g_strdup (key));
  g_hash_table_iter_init (&iter, sessions->no_office_refused);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (sessions->enrolled, key))
      g_ptr_array_add (others, g_strdup (key));
  *refused = sorted_strv (others);
  return sorted_strv (enrolled);
}

void
canopy_sessions_set_topology (CanopySessions *sessions, CanopyTopology *topology,
                              gboolean distribution_optimization)
{
  sessions->topology = topology;
  sessions->distribution_optimization = distribution_optimization;
}

void
canopy_sessions_foreach_enrolled (const CanopySessions *sessions, CanopySessionsFunc func,
                                  gpointer user_data)
{
  GHashTableIter iter;
  Session *session;

  g_hash_table_iter_init (&iter, sessions->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
    if (session->enrolled)
      func (session->device_id, session->agent_version, session->office, user_data);
}

GPtrArray *
canopy_sessions_get_transports (const CanopySessions *sessions)
{
  return sessions->transports;
}
