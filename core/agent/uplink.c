/* The agent's link to its server: connect, say hello, keep the session
 * alive with heartbeats, and come back with growing pauses when the link
 * drops or the server refuses the device. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-uplink"

#include "agent/uplink.h"
#include "agent/server-list.h"
#include "lib/i18n.h"
#include "lib/wire.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define RETRY_FIRST_S 1
#define RETRY_MAX_S 60
/* A refused device waits longer: nothing changes until an admin acts. */
#define DORMANT_MAX_S 300
/* A server that echoes none of this many heartbeats is gone, though the
 * connection looks open (a cut link drops packets; TCP would retry for
 * many minutes before it gave up). */
#define MISSED_ECHOES 3

struct _CanopyUplink {
  CanopyTransport *transport;
  CanopyServerList *servers;
  char *device_id;
  GStrv groups;
  char *name;
  guint16 peer_port;
  char *peer_address; /* (nullable) the address office peers reach us at */
  CanopyTransportConnection *conn;
  GCancellable *cancellable;
  CanopyUplinkState state;
  guint retry_s;
  guint retry_timer;
  guint heartbeat_timer;
  guint heartbeat_interval; /* seconds, from the welcome */
  gint64 last_heard;        /* monotonic µs of the server's last message */
  gboolean key_mismatch_logged;
  const CanopyUplinkEvents *events;
  gpointer events_data;
  CanopyVerifyKey *verify_key;
  GBytes *public_key;
  char *office;
};

static void connect_now (CanopyUplink *uplink);
static void resolve_servers (CanopyUplink *uplink);
static void uplink_release (CanopyUplink *uplink);

/* A reference held by a pending connect. */
typedef CanopyUplink CanopyUplinkRef;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyUplinkRef, uplink_release)

CanopyUplinkState
canopy_uplink_get_state (const CanopyUplink *uplink)
{
  return uplink->state;
}

void
canopy_uplink_set_peer_address (CanopyUplink *uplink, const char *address)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);

  g_clear_pointer (&uplink->peer_address, g_free);
  if (inet != NULL && !g_inet_address_get_is_any (inet))
    uplink->peer_address = g_strdup (address);
}

void
canopy_uplink_set_peer_port (CanopyUplink *uplink, guint16 port)
{
  uplink->peer_port = port;
}

static void
stop_heartbeats (CanopyUplink *uplink)
{
  if (uplink->heartbeat_timer != 0)
    g_source_remove (uplink->heartbeat_timer);
  uplink->heartbeat_timer = 0;
}

static gboolean
on_retry (gpointer user_data)
{
  CanopyUplink *uplink = user_data;

  uplink->retry_timer = 0;
  resolve_servers (uplink);
  return G_SOURCE_REMOVE;
}

/* Exponential backoff with jitter, so a server restart is not met by every
 * agent at the same second. */
static void
retry_later (CanopyUplink *uplink, guint max_s)
{
  guint delay_ms;

  stop_heartbeats (uplink);
  uplink->conn = NULL;
  delay_ms = uplink->retry_s * 1000 * (guint) g_random_int_range (80, 121) / 100;
  uplink->retry_s = MIN (uplink->retry_s * 2, max_s);
  uplink->retry_timer = g_timeout_add (delay_ms, on_retry, uplink);
  g_debug ("connecting again in %u ms", delay_ms);
}

/* What messages call the server: its name as configured, and the address
 * tried when the name is not one. */
static char *
server_label (const CanopyUplink *uplink)
{
  const CanopyServerAddress *address = canopy_server_list_current (uplink->servers);
  const char *name = canopy_server_list_current_name (uplink->servers);

  if (g_strcmp0 (name, address->host) == 0)
    return g_strdup_printf ("%s port %u", name, address->port);
  return g_strdup_printf ("%s (%s) port %u", name, address->host, address->port);
}

static gboolean
on_next_server (gpointer user_data)
{
  CanopyUplink *uplink = user_data;

  uplink->retry_timer = 0;
  connect_now (uplink);
  return G_SOURCE_REMOVE;
}

/* The server failed: the next one at once, as a cluster's other servers
 * serve the same devices; only when every one failed, a growing pause. The
 * short random wait spreads a failed server's devices over a second. */
static void
try_next_server (CanopyUplink *uplink, guint max_s)
{
  g_autofree char *label = NULL;

  if (!canopy_server_list_advance (uplink->servers))
    {
      retry_later (uplink, max_s);
      return;
    }
  stop_heartbeats (uplink);
  uplink->conn = NULL;
  label = server_label (uplink);
  g_message (_("Trying the next canopy server, %s"), label);
  uplink->retry_timer = g_timeout_add ((guint) g_random_int_range (0, 1000), on_next_server,
                                       uplink);
}

static gboolean
send_body (CanopyUplink *uplink, CanopyWireKind kind, GVariant *body)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (kind, body);
  g_autoptr (GError) error = NULL;

  if (uplink->conn != NULL && canopy_transport_send (uplink->conn, frame, NULL, &error))
    return TRUE;
  g_debug ("cannot send %s: %s", canopy_wire_kind_to_string (kind),
           error != NULL ? error->message : "not connected");
  return FALSE;
}

static gboolean
on_heartbeat (gpointer user_data)
{
  CanopyUplink *uplink = user_data;
  guint64 cached = 0;
  gint64 silent_us = g_get_monotonic_time () - uplink->last_heard;

  if (silent_us > (gint64) uplink->heartbeat_interval * MISSED_ECHOES * G_USEC_PER_SEC)
    {
      g_autofree char *label = server_label (uplink);

      g_message (g_dngettext (GETTEXT_PACKAGE,
                              "The canopy server at %s has not answered for %u second; "
                              "connecting again",
                              "The canopy server at %s has not answered for %u seconds; "
                              "connecting again",
                              (guint) (silent_us / G_USEC_PER_SEC)),
                 label, (guint) (silent_us / G_USEC_PER_SEC));
      uplink->heartbeat_timer = 0;
      canopy_transport_close (uplink->conn);
      uplink->state = CANOPY_UPLINK_DISCONNECTED;
      try_next_server (uplink, RETRY_MAX_S);
      return G_SOURCE_REMOVE;
    }

  if (uplink->events != NULL && uplink->events->cached_bytes != NULL)
    cached = uplink->events->cached_bytes (uplink->events_data);
  /* The monotonic clock: the echo measures a duration, which a wall-clock
   * step (NTP, an admin) must not distort. */
  send_body (uplink, CANOPY_WIRE_HEARTBEAT,
             g_variant_new ("(xt)", g_get_monotonic_time (), cached));
  return G_SOURCE_CONTINUE;
}

void
canopy_uplink_set_events (CanopyUplink *uplink, const CanopyUplinkEvents *events,
                          gpointer user_data)
{
  uplink->events = events;
  uplink->events_data = user_data;
}

const CanopyVerifyKey *
canopy_uplink_get_verify_key (const CanopyUplink *uplink)
{
  return uplink->verify_key;
}

GBytes *
canopy_uplink_get_public_key (const CanopyUplink *uplink)
{
  return uplink->public_key;
}

const char *
canopy_uplink_get_office (const CanopyUplink *uplink)
{
  return uplink->office;
}

gboolean
canopy_uplink_send (CanopyUplink *uplink, guint kind, GVariant *body, GError **error)
{
  g_autoptr (GVariant) sunk = g_variant_ref_sink (body);
  g_autoptr (GBytes) frame = NULL;

  if (uplink->conn == NULL || uplink->state != CANOPY_UPLINK_ENROLLED)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                   _("Not connected to the canopy server"));
      return FALSE;
    }
  frame = canopy_wire_encode ((CanopyWireKind) kind, sunk);
  return canopy_transport_send (uplink->conn, frame, NULL, error);
}

typedef struct {
  char *address;
  GInetAddressMask *subnet;
  guint8 prefix;
  gboolean loopback;
} LocalAddress;

static void
local_address_clear (LocalAddress *local)
{
  g_free (local->address);
  g_clear_object (&local->subnet);
}

/* The subnet of @address's first @prefix bits (GInetAddressMask refuses
 * an address with host bits set). */
static GInetAddressMask *
subnet_of (GInetAddress *address, guint prefix)
{
  guint8 bytes[16] = { 0 };
  gsize size = g_inet_address_get_native_size (address);
  g_autoptr (GInetAddress) network = NULL;

  memcpy (bytes, g_inet_address_to_bytes (address), size);
  for (gsize b = 0; b < size; b++)
    if (prefix < 8 * (b + 1))
      bytes[b] &= (guint8) (prefix <= 8 * b ? 0 : 0xff << (8 * (b + 1) - prefix));
  network = g_inet_address_new_from_bytes (bytes, g_inet_address_get_family (address));
  return g_inet_address_mask_new (network, prefix, NULL);
}

/* Every address of the host's interfaces, with its prefix length. */
static GArray *
interface_addresses (void)
{
  GArray *found = g_array_new (FALSE, TRUE, sizeof (LocalAddress));
  struct ifaddrs *list = NULL;

  g_array_set_clear_func (found, (GDestroyNotify) local_address_clear);
  if (getifaddrs (&list) != 0)
    return found;
  for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next)
    {
      g_autoptr (GSocketAddress) address = NULL;
      g_autoptr (GSocketAddress) mask = NULL;
      LocalAddress local = { 0 };
      GInetAddress *inet, *m;
      const guint8 *bytes;
      gsize len;
      guint prefix = 0;

      if (i->ifa_addr == NULL || i->ifa_netmask == NULL
          || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
        continue;
      len = i->ifa_addr->sa_family == AF_INET ? sizeof (struct sockaddr_in)
                                              : sizeof (struct sockaddr_in6);
      address = g_socket_address_new_from_native (i->ifa_addr, len);
      mask = g_socket_address_new_from_native (i->ifa_netmask, len);
      if (address == NULL || mask == NULL)
        continue;
      inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
      m = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (mask));
      bytes = g_inet_address_to_bytes (m);
      for (gsize b = 0; b < g_inet_address_get_native_size (m); b++)
        prefix += (guint) __builtin_popcount (bytes[b]);
      local.address = g_inet_address_to_string (inet);
      local.subnet = subnet_of (inet, prefix);
      local.prefix = (guint8) prefix;
      local.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
      g_array_append_val (found, local);
    }
  freeifaddrs (list);
  return found;
}

/* The prefix length of the interface subnet that holds @peer_address: the
 * interface that carries the address itself, else one whose subnet holds
 * it (127.0.4.11 on a host whose lo has 127.0.0.1/8). An address on no
 * interface of this host (behind NAT) is reported alone, as a host
 * prefix: the server can only place the device by it. */
static guint8
peer_address_prefix (GArray *interfaces, const char *peer_address)
{
  g_autoptr (GInetAddress) peer = g_inet_address_new_from_string (peer_address);
  const LocalAddress *holder = NULL;

  if (peer == NULL)
    return strchr (peer_address, ':') != NULL ? 128 : 32;
  for (guint i = 0; i < interfaces->len; i++)
    {
      const LocalAddress *local = &g_array_index (interfaces, LocalAddress, i);

      if (local->subnet == NULL
          || g_inet_address_get_family (peer) != g_inet_address_mask_get_family (local->subnet))
        continue;
      if (g_str_equal (local->address, peer_address))
        return local->prefix;
      if (holder == NULL && g_inet_address_mask_matches (local->subnet, peer))
        holder = local;
    }
  if (holder != NULL)
    return holder->prefix;
  return g_inet_address_get_family (peer) == G_SOCKET_FAMILY_IPV6 ? 128 : 32;
}

/* The device's addresses with their prefix lengths, loopback only when
 * there is nothing else (a test host). */
static GVariant *
local_addresses (const char *peer_address)
{
  g_autoptr (GArray) interfaces = interface_addresses ();
  GVariantBuilder builder, loopback;
  gboolean any = FALSE;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_init (&loopback, G_VARIANT_TYPE ("a(sy)"));
  /* The address peers are told to use comes first, with the prefix of
   * its interface's subnet: the server places the device in that
   * subnet's office, or makes one of the subnet. */
  if (peer_address != NULL)
    {
      guint8 prefix = peer_address_prefix (interfaces, peer_address);

      g_variant_builder_add (&builder, "(sy)", peer_address, prefix);
      g_variant_builder_add (&loopback, "(sy)", peer_address, prefix);
    }
  for (guint i = 0; i < interfaces->len; i++)
    {
      const LocalAddress *local = &g_array_index (interfaces, LocalAddress, i);

      if (local->loopback)
        g_variant_builder_add (&loopback, "(sy)", local->address, local->prefix);
      else
        {
          g_variant_builder_add (&builder, "(sy)", local->address, local->prefix);
          any = TRUE;
        }
    }
  if (!any)
    {
      g_variant_builder_clear (&builder);
      return g_variant_builder_end (&loopback);
    }
  g_variant_builder_clear (&loopback);
  return g_variant_builder_end (&builder);
}

static void
say_hello (CanopyUplink *uplink)
{
  uplink->state = CANOPY_UPLINK_HELLO_SENT;
  send_body (uplink, CANOPY_WIRE_HELLO,
             g_variant_new ("(ss@a(sy)^asqs)", uplink->device_id, PACKAGE_VERSION,
                            local_addresses (uplink->peer_address), uplink->groups,
                            uplink->peer_port, uplink->name));
}

static void
uplink_clear (CanopyUplink *uplink)
{
  g_free (uplink->peer_address);
  canopy_verify_key_free (uplink->verify_key);
  g_clear_pointer (&uplink->public_key, g_bytes_unref);
  g_free (uplink->office);
  g_strfreev (uplink->groups);
  g_free (uplink->name);
  g_free (uplink->device_id);
  canopy_server_list_free (uplink->servers);
}

static void
uplink_release (CanopyUplink *uplink)
{
  g_rc_box_release_full (uplink, (GDestroyNotify) uplink_clear);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CanopyUplinkRef) uplink = user_data;
  g_autoptr (GError) error = NULL;
  CanopyTransportConnection *conn;
  g_autofree char *label = NULL;

  /* Freed while connecting: the transport is gone with it. */
  if (uplink->transport == NULL)
    return;
  conn = canopy_transport_connect_finish (uplink->transport, result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  label = server_label (uplink);
  if (conn == NULL)
    {
      if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH))
        {
          if (!uplink->key_mismatch_logged)
            g_warning (_("The canopy server at %s does not accept this device's shared key: "
                         "it is mistyped or was regenerated on the server. Install the current "
                         "key on this device"), label);
          uplink->key_mismatch_logged = TRUE;
          uplink->state = CANOPY_UPLINK_KEY_MISMATCH;
          retry_later (uplink, DORMANT_MAX_S);
          return;
        }
      g_message (_("Cannot reach the canopy server at %s: %s"), label, error->message);
      uplink->state = CANOPY_UPLINK_DISCONNECTED;
      try_next_server (uplink, RETRY_MAX_S);
      return;
    }
  uplink->conn = conn;
  uplink->key_mismatch_logged = FALSE;
  conn->owner_data = uplink;
  say_hello (uplink);
}

static void
connect_now (CanopyUplink *uplink)
{
  const CanopyServerAddress *address = canopy_server_list_current (uplink->servers);

  uplink->state = CANOPY_UPLINK_CONNECTING;
  canopy_transport_connect_async (uplink->transport, address->host, address->port,
                                  uplink->cancellable, on_connected, g_rc_box_acquire (uplink));
}

static void
on_servers_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CanopyUplinkRef) uplink = user_data;
  g_autoptr (GError) error = NULL;

  if (uplink->transport == NULL)
    return;
  if (!canopy_server_list_resolve_finish (uplink->servers, result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      g_message ("%s", error->message);
      uplink->state = CANOPY_UPLINK_DISCONNECTED;
      retry_later (uplink, RETRY_MAX_S);
      return;
    }
  connect_now (uplink);
}

/* Each round over the servers starts by resolving their names again. */
static void
resolve_servers (CanopyUplink *uplink)
{
  uplink->state = CANOPY_UPLINK_CONNECTING;
  canopy_server_list_resolve_async (uplink->servers, uplink->cancellable, on_servers_resolved,
                                    g_rc_box_acquire (uplink));
}

static void
handle_welcome (CanopyUplink *uplink, GVariant *body)
{
  const char *server_id, *server_version, *office;
  g_autoptr (GVariant) public_key = NULL;
  guint32 interval;

  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) key_bytes = NULL;
  CanopyVerifyKey *key;

  g_variant_get (body, "(&s&su&s@ay)", &server_id, &server_version, &interval, &office,
                 &public_key);
  key_bytes = g_variant_get_data_as_bytes (public_key);
  key = canopy_verify_key_new (key_bytes, &error);
  if (key == NULL)
    {
      /* Without it no manifest can be trusted: stay connected, fetch nothing. */
      g_warning (_("The canopy server %s sent a content-signing key this agent cannot use "
                   "(%s); no content will be fetched until the server is fixed"),
                 server_id, error->message);
    }
  else
    {
      canopy_verify_key_free (uplink->verify_key);
      uplink->verify_key = key;
      g_clear_pointer (&uplink->public_key, g_bytes_unref);
      uplink->public_key = g_steal_pointer (&key_bytes);
    }
  g_free (uplink->office);
  uplink->office = g_strdup (office);
  uplink->state = CANOPY_UPLINK_ENROLLED;
  uplink->retry_s = RETRY_FIRST_S;
  canopy_server_list_succeeded (uplink->servers);
  if (office[0] == '\0')
    g_message (_("Enrolled with canopy server %s (version %s) as a no-office client: this "
                 "device's addresses are in no office, so it gets no peer-to-peer download "
                 "and fetches from the origin"),
               server_id, server_version);
  else
    g_message (_("Enrolled with canopy server %s (version %s) in office \"%s\""), server_id,
               server_version, office);
  stop_heartbeats (uplink);
  uplink->heartbeat_interval = MAX (interval, 1);
  uplink->heartbeat_timer = g_timeout_add_seconds (uplink->heartbeat_interval, on_heartbeat,
                                                   uplink);
  if (uplink->events != NULL && uplink->events->welcome != NULL)
    uplink->events->welcome (uplink, uplink->events_data);
}

static void
handle_refused (CanopyUplink *uplink, GVariant *body)
{
  const char *message, *oldest, *newest;
  guint32 reason;

  g_variant_get (body, "(u&s&s&s)", &reason, &message, &oldest, &newest);
  uplink->state = CANOPY_UPLINK_REFUSED;
  g_warning (_("The canopy server refused this device: %s"), message);
  canopy_transport_close (uplink->conn);
  retry_later (uplink, DORMANT_MAX_S);
}

/* An assignment whose manifest came as the payload, as servers send it, in
 * the form the body had when it carried the manifest itself. */
static GVariant *
assignment_with_manifest (GVariant *body, GBytes *payload)
{
  const char *deployment_id, *destination;
  g_autoptr (GVariant) inline_manifest = NULL, sources = NULL;
  guint32 role;
  guint64 wan_rate;

  g_variant_get (body, "(&s@ayu@a(ussq)&st)", &deployment_id, &inline_manifest, &role, &sources,
                 &destination, &wan_rate);
  if (payload == NULL || g_variant_get_size (inline_manifest) > 0)
    return g_variant_ref (body);
  return g_variant_ref_sink (
    g_variant_new ("(s@ayu@a(ussq)st)", deployment_id,
                   g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, payload, TRUE), role,
                   sources, destination, wan_rate));
}

static void
on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload, gpointer user_data)
{
  CanopyUplink *uplink = user_data;
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, &error);

  uplink->last_heard = g_get_monotonic_time ();
  if (body == NULL)
    {
      g_warning (_("The canopy server sent a message this agent cannot read (%s); "
                   "reconnecting"), error->message);
      canopy_transport_close (conn);
      try_next_server (uplink, RETRY_MAX_S);
      return;
    }
  if (kind == CANOPY_WIRE_WELCOME)
    handle_welcome (uplink, body);
  else if (kind == CANOPY_WIRE_REFUSED)
    handle_refused (uplink, body);
  else if (kind == CANOPY_WIRE_HEARTBEAT)
    {
      gint64 sent;
      g_variant_get_child (body, 0, "x", &sent);
      g_debug ("heartbeat round trip %" G_GINT64_FORMAT " µs", g_get_monotonic_time () - sent);
    }
  else if (kind == CANOPY_WIRE_ASSIGNMENT && uplink->state == CANOPY_UPLINK_ENROLLED)
    {
      g_autoptr (GVariant) assignment = assignment_with_manifest (body, payload);

      if (uplink->events != NULL && uplink->events->assignment != NULL)
        uplink->events->assignment (uplink, assignment, uplink->events_data);
    }
  else if (kind == CANOPY_WIRE_WAN_CLASS && uplink->state == CANOPY_UPLINK_ENROLLED)
    {
      if (uplink->events != NULL && uplink->events->wan_class != NULL)
        uplink->events->wan_class (uplink, body, uplink->events_data);
    }
  else if (kind == CANOPY_WIRE_WITHDRAW && uplink->state == CANOPY_UPLINK_ENROLLED)
    {
      if (uplink->events != NULL && uplink->events->withdraw != NULL)
        uplink->events->withdraw (uplink, body, uplink->events_data);
    }
  else if (kind == CANOPY_WIRE_UNINSTALL && uplink->state == CANOPY_UPLINK_ENROLLED)
    {
      if (uplink->events != NULL && uplink->events->uninstall != NULL)
        uplink->events->uninstall (uplink, body, uplink->events_data);
    }
  else
    g_debug ("server sent \"%s\", not handled", canopy_wire_kind_to_string (kind));
}

static void
on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
}

static void
on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
}

static void
on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  CanopyUplink *uplink = user_data;
  g_autofree char *label = NULL;

  if (conn != uplink->conn)
    return;
  label = server_label (uplink);
  g_message (_("Lost the connection to the canopy server at %s: %s"), label, error->message);
  uplink->state = CANOPY_UPLINK_DISCONNECTED;
  try_next_server (uplink, RETRY_MAX_S);
}

static const CanopyTransportEvents uplink_events = {
  .incoming = on_incoming,
  .message = on_message,
  .drained = on_drained,
  .closed = on_closed,
};

CanopyUplink *
canopy_uplink_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                   const CanopyTransportCredentials *creds, const GPtrArray *servers,
                   const char *const *groups, const char *name, GError **error)
{
  g_autoptr (CanopyUplink) uplink = g_rc_box_new0 (CanopyUplink);

  uplink->servers = canopy_server_list_new (servers);
  uplink->device_id = g_strdup (creds->device_id);
  uplink->groups = g_strdupv ((char **) groups);
  uplink->name = g_strdup (name);
  uplink->cancellable = g_cancellable_new ();
  uplink->retry_s = RETRY_FIRST_S;
  uplink->transport = canopy_transport_new (plugin, element, creds, NULL, &uplink_events, uplink,
                                            error);
  if (uplink->transport == NULL)
    return NULL;
  return g_steal_pointer (&uplink);
}

const CanopyServerAddress *
canopy_uplink_get_server (const CanopyUplink *uplink)
{
  if (canopy_server_list_size (uplink->servers) == 0)
    return NULL;
  return canopy_server_list_current (uplink->servers);
}

void
canopy_uplink_start (CanopyUplink *uplink)
{
  resolve_servers (uplink);
}

void
canopy_uplink_free (CanopyUplink *uplink)
{
  if (uplink == NULL)
    return;
  stop_heartbeats (uplink);
  if (uplink->retry_timer != 0)
    g_source_remove (uplink->retry_timer);
  g_cancellable_cancel (uplink->cancellable);
  g_clear_pointer (&uplink->transport, canopy_transport_free);
  g_clear_object (&uplink->cancellable);
  uplink_release (uplink);
}
