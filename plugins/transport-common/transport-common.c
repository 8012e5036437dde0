/* The transport scaffold the TCP and QUIC plugins share: frames, TLS-PSK,
 * resolving and connecting, listening, connections' and instances' life. */
#include "build-config.h"

#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib/gi18n-lib.h>

#include "plugins/transport-common/transport-common.h"

/* --- frames --------------------------------------------------------------- */

gboolean
canopy_transport_common_id_is_valid (const guint8 *id, gsize len)
{
  if (len == 0 || len > CANOPY_TRANSPORT_COMMON_MAX_ID_LENGTH)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (id[i] <= ' ' || id[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

void
canopy_transport_common_out_frame_init (CanopyTransportOutFrame *out, guint8 kind,
                                        const void *header, gsize header_len, GBytes *payload)
{
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;
  guint32 magic = GUINT32_TO_BE (CANOPY_TRANSPORT_COMMON_FRAME_MAGIC);
  guint32 hlen = GUINT32_TO_BE ((guint32) header_len);
  guint64 plen = GUINT64_TO_BE ((guint64) payload_len);

  out->prefix_len = CANOPY_TRANSPORT_COMMON_FRAME_SIZE + header_len;
  out->prefix = g_malloc (out->prefix_len);
  memcpy (out->prefix, &magic, 4);
  out->prefix[4] = CANOPY_TRANSPORT_COMMON_FRAME_VERSION;
  out->prefix[5] = kind;
  out->prefix[6] = 0;
  out->prefix[7] = 0;
  memcpy (out->prefix + 8, &hlen, 4);
  memcpy (out->prefix + 12, &plen, 8);
  memcpy (out->prefix + CANOPY_TRANSPORT_COMMON_FRAME_SIZE, header, header_len);
  out->payload = payload_len > 0 ? g_bytes_ref (payload) : NULL;
  out->payload_data = payload_len > 0 ? g_bytes_get_data (payload, NULL) : NULL;
  out->total = out->prefix_len + payload_len;
}

void
canopy_transport_common_out_frame_clear (CanopyTransportOutFrame *out)
{
  g_clear_pointer (&out->prefix, g_free);
  g_clear_pointer (&out->payload, g_bytes_unref);
}

/* Where the next received bytes go, and how many are still expected. */
guint8 *
canopy_transport_common_in_frame_target (CanopyTransportInFrame *in, gsize *want)
{
  if (in->frame_got < CANOPY_TRANSPORT_COMMON_FRAME_SIZE)
    {
      *want = CANOPY_TRANSPORT_COMMON_FRAME_SIZE - in->frame_got;
      return in->frame + in->frame_got;
    }
  if (in->header_got < in->header_len)
    {
      *want = in->header_len - in->header_got;
      return in->header + in->header_got;
    }
  *want = in->payload_len - in->payload_got;
  return in->payload + in->payload_got;
}

/* Checks a complete frame header. Returns: what is wrong, or %NULL. */
static const char *
canopy_transport_common_frame_check (CanopyTransportInFrame *in,
                                     const CanopyTransportCommon *transport,
                                     gboolean hello_allowed, gboolean message_allowed,
                                     guint32 hlen, guint64 plen)
{
  guint32 magic;

  memcpy (&magic, in->frame, 4);
  if (GUINT32_FROM_BE (magic) != CANOPY_TRANSPORT_COMMON_FRAME_MAGIC)
    return "bad magic";
  if (in->frame[4] != CANOPY_TRANSPORT_COMMON_FRAME_VERSION)
    return "unsupported version";
  if (in->frame[6] != 0 || in->frame[7] != 0)
    return "reserved bits set";
  if (in->kind != CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE
      && in->kind != CANOPY_TRANSPORT_COMMON_FRAME_HELLO)
    return "unknown frame kind";
  if (in->kind == CANOPY_TRANSPORT_COMMON_FRAME_HELLO ? !hello_allowed : !message_allowed)
    return "unexpected frame kind";
  if (hlen == 0 || hlen > transport->max_header)
    return "header length out of bounds";
  if (plen > transport->max_payload || (in->kind == CANOPY_TRANSPORT_COMMON_FRAME_HELLO && plen != 0))
    return "payload length out of bounds";
  return NULL;
}

/* Allocates exactly what a checked frame header announces. A payload
 * buffer is address space until data arrives to fill it, so memory stays
 * bounded by what the peer really sent. */
static CanopyTransportInFrameStatus
canopy_transport_common_in_frame_parse (CanopyTransportInFrame *in,
                                        const CanopyTransportCommon *transport,
                                        gboolean hello_allowed, gboolean message_allowed,
                                        const char **what)
{
  guint32 hlen;
  guint64 plen;

  memcpy (&hlen, in->frame + 8, 4);
  memcpy (&plen, in->frame + 12, 8);
  hlen = GUINT32_FROM_BE (hlen);
  plen = GUINT64_FROM_BE (plen);
  in->kind = in->frame[5];
  *what = canopy_transport_common_frame_check (in, transport, hello_allowed, message_allowed,
                                               hlen, plen);
  if (*what != NULL)
    return CANOPY_TRANSPORT_IN_FRAME_MALFORMED;
  in->header_len = hlen;
  in->header = g_malloc (hlen);
  in->header_got = 0;
  in->payload_len = (gsize) plen;
  in->payload = plen > 0 ? g_try_malloc ((gsize) plen) : NULL;
  in->payload_got = 0;
  if (plen > 0 && in->payload == NULL)
    return CANOPY_TRANSPORT_IN_FRAME_NO_MEMORY;
  return CANOPY_TRANSPORT_IN_FRAME_MORE;
}

/* Counts @n bytes written at canopy_transport_common_in_frame_target();
 * the frame header is checked as soon as it is complete. @hello_allowed
 * and @message_allowed say which kinds the connection expects now. */
CanopyTransportInFrameStatus
canopy_transport_common_in_frame_advance (CanopyTransportInFrame *in, gsize n,
                                          const CanopyTransportCommon *transport,
                                          gboolean hello_allowed, gboolean message_allowed,
                                          const char **what)
{
  if (in->frame_got < CANOPY_TRANSPORT_COMMON_FRAME_SIZE)
    {
      in->frame_got += n;
      if (in->frame_got == CANOPY_TRANSPORT_COMMON_FRAME_SIZE)
        {
          CanopyTransportInFrameStatus status = canopy_transport_common_in_frame_parse (
            in, transport, hello_allowed, message_allowed, what);
          if (status != CANOPY_TRANSPORT_IN_FRAME_MORE)
            return status;
        }
    }
  else if (in->header_got < in->header_len)
    in->header_got += n;
  else
    in->payload_got += n;
  return canopy_transport_common_in_frame_is_whole (in) ? CANOPY_TRANSPORT_IN_FRAME_WHOLE
                                                        : CANOPY_TRANSPORT_IN_FRAME_MORE;
}

gboolean
canopy_transport_common_in_frame_is_whole (const CanopyTransportInFrame *in)
{
  return in->frame_got == CANOPY_TRANSPORT_COMMON_FRAME_SIZE && in->header_got == in->header_len
         && in->payload_got == in->payload_len;
}

/* Hands over a whole message (@payload %NULL when empty) and makes @in
 * ready for the next one. */
void
canopy_transport_common_in_frame_take (CanopyTransportInFrame *in, GBytes **header,
                                       GBytes **payload)
{
  *header = g_bytes_new_take (g_steal_pointer (&in->header), in->header_len);
  *payload = NULL;
  if (in->payload_len > 0)
    *payload = g_bytes_new_take (g_steal_pointer (&in->payload), in->payload_len);
  in->frame_got = 0;
}

void
canopy_transport_common_in_frame_clear (CanopyTransportInFrame *in)
{
  g_clear_pointer (&in->header, g_free);
  g_clear_pointer (&in->payload, g_free);
}

/* --- TLS with an external PSK ------------------------------------------------ */

/* The PSK for identity I is HKDF(transport secret, the plugin's label, I),
 * so the server can compute it for whatever device ID a client presents,
 * and a client cannot pose as another device without the shared key. */
static gboolean
canopy_transport_common_setup_tls (CanopyTransportCommon *transport, GError **error)
{
  const CanopyTransportCommonClass *klass = transport->klass;
  guint8 psk[CANOPY_TRANSPORT_SECRET_SIZE];
  gnutls_datum_t key = { psk, sizeof psk };
  int rc;

  if (!canopy_key_derive (transport->secret, sizeof transport->secret, klass->psk_label,
                          transport->device_id, strlen (transport->device_id), psk, sizeof psk,
                          error))
    return FALSE;
  rc = gnutls_priority_init (&transport->priority, klass->priority, NULL);
  if (rc == 0)
    rc = gnutls_psk_allocate_server_credentials (&transport->server_creds);
  if (rc == 0)
    {
      gnutls_psk_set_server_credentials_function2 (transport->server_creds,
                                                   klass->psk_server_key);
      rc = gnutls_psk_allocate_client_credentials (&transport->client_creds);
    }
  if (rc == 0)
    rc = gnutls_psk_set_client_credentials (transport->client_creds, transport->device_id, &key,
                                            GNUTLS_PSK_KEY_RAW);
  gnutls_memset (psk, 0, sizeof psk);
  if (rc != 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot set up TLS with a pre-shared key: %s."), gnutls_strerror (rc));
      return FALSE;
    }
  return TRUE;
}

/* A session with the transport's priorities and PSK credentials; the
 * plugin adds its flags and what else it needs. Returns: a GnuTLS code. */
int
canopy_transport_common_session_init (CanopyTransportCommon *transport, gboolean is_client,
                                      unsigned flags, gnutls_session_t *session)
{
  /* No session tickets: connections are long-lived and never resumed. */
  int rc = gnutls_init (session, (is_client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NO_TICKETS
                                   | flags);
  if (rc == 0)
    rc = gnutls_priority_set (*session, transport->priority);
  if (rc == 0)
    rc = gnutls_credentials_set (*session, GNUTLS_CRD_PSK,
                                 is_client ? (void *) transport->client_creds
                                           : (void *) transport->server_creds);
  return rc;
}

/* The server's side of the PSK: the key of whatever identity a client
 * presents. Returns: 0, or -1 for an identity that is no device ID. */
int
canopy_transport_common_psk_key (CanopyTransportCommon *transport, const gnutls_datum_t *identity,
                                 gnutls_datum_t *key)
{
  if (!canopy_transport_common_id_is_valid (identity->data, identity->size))
    return -1;
  key->data = gnutls_malloc (CANOPY_TRANSPORT_SECRET_SIZE);
  key->size = CANOPY_TRANSPORT_SECRET_SIZE;
  if (key->data == NULL
      || !canopy_key_derive (transport->secret, sizeof transport->secret,
                             transport->klass->psk_label, identity->data, identity->size,
                             key->data, key->size, NULL))
    return -1;
  return 0;
}

/* A TLS alert that, between two canopy ends, means the keys differ: the
 * server cannot verify the client's PSK binder (GnuTLS sends a
 * decrypt_error or illegal_parameter alert), or a Finished does not
 * verify. */
gboolean
canopy_transport_common_alert_is_key_mismatch (int alert)
{
  return alert == GNUTLS_A_DECRYPT_ERROR || alert == GNUTLS_A_ILLEGAL_PARAMETER
         || alert == GNUTLS_A_HANDSHAKE_FAILURE || alert == GNUTLS_A_BAD_RECORD_MAC
         || alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY || alert == GNUTLS_A_INSUFFICIENT_SECURITY;
}

/* --- errors ------------------------------------------------------------------ */

/* Logs in the plugin's domain, where admins filter its messages. */
void
canopy_transport_common_log (CanopyTransportCommon *transport, const char *message)
{
  g_log_structured_standard (transport->klass->log_domain, G_LOG_LEVEL_MESSAGE, __FILE__,
                             G_STRINGIFY (__LINE__), G_STRFUNC, "%s", message);
}

GError *
canopy_transport_common_protocol_error (CanopyTransportCommonConn *conn, const char *what)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  GError *error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL,
                               _("Peer \"%s\" sent a malformed frame (%s); the connection "
                                 "was dropped."), peer, what);
  /* Logged by the transport's user, with a rate limit (canopy_transport_new). */
  return error;
}

GError *
canopy_transport_common_key_mismatch_error (CanopyTransportCommonConn *conn)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  GError *error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH,
                               _("Key mismatch with \"%s\": the peer does not hold the same shared "
                                 "key. Check that both ends were given the current shared key."),
                               peer);
  /* Said plainly in the log of both ends, as admins look there first;
   * an incoming one is logged by canopy_transport_new's relay, with a
   * rate limit, as anyone can cause it at will. */
  if (conn->is_client)
    canopy_transport_common_log (conn->transport, error->message);
  return error;
}

GError *
canopy_transport_common_closed_error (CanopyTransportCommonConn *conn, gboolean mid_message,
                                      const char *reason)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  if (mid_message)
    return g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                        _("The connection to \"%s\" ended in the middle of a message (%s)."), peer,
                        reason);
  return g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                      _("The connection to \"%s\" was closed (%s)."), peer, reason);
}

GError *
canopy_transport_common_timeout_error (CanopyTransportCommonConn *conn)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  return g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TIMEOUT,
                      _("Connecting to \"%s\" took longer than %u ms; check that the peer is "
                        "running and reachable."), peer, conn->transport->connect_timeout_ms);
}

GError *
canopy_transport_common_refused_error (CanopyTransportCommonConn *conn)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  return g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_REFUSED,
                      _("Nothing accepts connections at \"%s\"; check the address and that the "
                        "peer is running."), peer);
}

GError *
canopy_transport_common_connect_error (CanopyTransportCommonConn *conn, int code,
                                       const char *reason)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  return g_error_new (CANOPY_TRANSPORT_ERROR, code, _("Cannot connect to \"%s\": %s."), peer,
                      reason);
}

GError *
canopy_transport_common_handshake_error (CanopyTransportCommonConn *conn, const char *reason)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (conn);
  return g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                      _("The TLS handshake with \"%s\" failed: %s."), peer, reason);
}

void
canopy_transport_common_task_return_socket_error (GTask *task, const GError *error)
{
  g_task_return_new_error (task, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                           _("Cannot create a socket: %s."), error->message);
}

/* --- connections ------------------------------------------------------------- */

/* Adds @conn to its transport, which holds the first reference. */
void
canopy_transport_common_conn_init (CanopyTransportCommonConn *conn,
                                   CanopyTransportCommon *transport, gboolean is_client)
{
  conn->parent.ops = transport->klass->ops;
  conn->ref_count = 1;
  conn->klass = transport->klass;
  conn->transport = transport;
  conn->is_client = is_client;
  g_hash_table_add (transport->connections, conn);
}

gpointer
canopy_transport_common_conn_ref (gpointer data)
{
  CanopyTransportCommonConn *conn = data;
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

void
canopy_transport_common_conn_unref (gpointer data)
{
  CanopyTransportCommonConn *conn = data;
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  conn->klass->conn_finalize (conn);
  g_clear_object (&conn->peer_address);
  g_clear_object (&conn->connect_task);
  g_clear_object (&conn->cancellable);
  g_free (conn->peer_id);
  g_free (conn);
}

char *
canopy_transport_common_conn_describe (CanopyTransportCommonConn *conn)
{
  if (conn->peer_id != NULL)
    return g_strdup (conn->peer_id);
  if (conn->peer_address != NULL)
    return g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (conn->peer_address));
  return g_strdup ("?");
}

static gboolean
canopy_transport_common_conn_cancel_in_context (gpointer user_data)
{
  CanopyTransportCommonConn *conn = user_data;
  if (conn->state != CANOPY_TRANSPORT_COMMON_DEAD && conn->connect_task != NULL)
    conn->transport->klass->conn_fail (conn, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                          _("Connecting was cancelled.")));
  return G_SOURCE_REMOVE;
}

/* Runs on whichever thread cancels, possibly inside g_cancellable_connect();
 * the work is done later on the transport's own context. */
static void
canopy_transport_common_conn_on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  CanopyTransportCommonConn *conn = user_data;
  g_autoptr (GSource) idle = g_idle_source_new ();

  (void) cancellable;
  g_source_set_callback (idle, canopy_transport_common_conn_cancel_in_context,
                         canopy_transport_common_conn_ref (conn),
                         canopy_transport_common_conn_unref);
  g_source_attach (idle, conn->transport->context);
}

/* A client connection takes the connect task @task, which its
 * cancellable may cancel. */
void
canopy_transport_common_conn_start_connect (CanopyTransportCommonConn *conn, GTask *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  conn->connect_task = task;
  if (cancellable != NULL)
    {
      conn->cancellable = g_object_ref (cancellable);
      conn->cancel_id = g_cancellable_connect (
        cancellable, G_CALLBACK (canopy_transport_common_conn_on_cancelled), conn, NULL);
    }
}

void
canopy_transport_common_conn_stop_cancel (CanopyTransportCommonConn *conn)
{
  if (conn->cancel_id != 0)
    g_cancellable_disconnect (conn->cancellable, conn->cancel_id);
  conn->cancel_id = 0;
}

/* Reports @error for @conn the way its state calls for (closed event,
 * connect failure or rejected event), then destroys it, saying @farewell
 * to the peer. Takes @error. */
void
canopy_transport_common_conn_fail (CanopyTransportCommonConn *conn, GError *error,
                                   gconstpointer farewell)
{
  CanopyTransportCommon *transport = conn->transport;
  CanopyTransportCommonState state = conn->state;
  GTask *task;

  if (state == CANOPY_TRANSPORT_COMMON_DEAD)
    {
      g_error_free (error);
      return;
    }
  canopy_transport_common_conn_ref (conn);
  task = g_steal_pointer (&conn->connect_task);
  transport->klass->conn_destroy (conn, farewell);
  if (state == CANOPY_TRANSPORT_COMMON_OPEN)
    transport->events->closed (&conn->parent, error, transport->user_data);
  else if (task != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
    }
  else if (transport->events->rejected != NULL)
    transport->events->rejected (conn->peer_address, error, transport->user_data);
  if (error != NULL)
    g_error_free (error);
  canopy_transport_common_conn_unref (conn);
}

/* A server connection's handshake is done: the client is who its PSK
 * identity says. The server's own ID travels first, inside the channel the
 * PSK authenticated. */
void
canopy_transport_common_conn_accepted (CanopyTransportCommonConn *conn, gnutls_session_t session)
{
  CanopyTransportCommon *transport = conn->transport;
  const char *identity = gnutls_psk_server_get_username (session);

  conn->peer_id = g_strdup (identity != NULL ? identity : "");
  conn->state = CANOPY_TRANSPORT_COMMON_OPEN;
  transport->klass->conn_queue (conn, CANOPY_TRANSPORT_COMMON_FRAME_HELLO, transport->device_id,
                                strlen (transport->device_id), NULL);
  transport->events->incoming (&conn->parent, transport->user_data);
}

/* A client connection heard the server's ID @peer_id (taken): connecting
 * is done. */
void
canopy_transport_common_conn_opened (CanopyTransportCommonConn *conn, char *peer_id)
{
  GTask *task;

  conn->peer_id = peer_id;
  conn->state = CANOPY_TRANSPORT_COMMON_OPEN;
  task = g_steal_pointer (&conn->connect_task);
  g_task_return_pointer (task, conn, NULL);
  g_object_unref (task);
}

/* Reports `drained` once the @queued bytes fell to the low-water mark
 * after a send found the queue full. */
void
canopy_transport_common_conn_check_drained (CanopyTransportCommonConn *conn, gsize queued)
{
  CanopyTransportCommon *transport = conn->transport;

  if (conn->want_drained && queued <= transport->queue_low
      && conn->state == CANOPY_TRANSPORT_COMMON_OPEN)
    {
      conn->want_drained = FALSE;
      transport->events->drained (&conn->parent, transport->user_data);
    }
}

/* --- the instance ------------------------------------------------------------ */

/* What new() checks before it allocates anything. */
static gboolean
canopy_transport_common_check_new (const CanopyTransportCredentials *creds,
                                   const CanopyTransportEvents *events, GError **error)
{
  g_return_val_if_fail (creds != NULL && creds->device_id != NULL, FALSE);
  g_return_val_if_fail (events != NULL && events->incoming != NULL && events->message != NULL
                          && events->drained != NULL && events->closed != NULL, FALSE);

  if (!canopy_transport_common_id_is_valid ((const guint8 *) creds->device_id,
                                            strlen (creds->device_id)))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("The device ID \"%s\" cannot be used as a TLS identity: it must be 1 to "
                     "255 printable characters without spaces."), creds->device_id);
      return FALSE;
    }
  return TRUE;
}

/* The connect timeout and the limits, which both transports read alike. */
static gboolean
canopy_transport_common_configure (CanopyTransportCommon *transport,
                                   const CanopyConfigNode *element, GError **error)
{
  const CanopyConfigNode *connect = canopy_config_node_get_child (element, "connect");
  const CanopyConfigNode *limits = canopy_config_node_get_child (element, "limits");
  guint64 timeout = 10000, max_header = CANOPY_TRANSPORT_MAX_HEADER_SIZE;
  guint64 max_payload = CANOPY_TRANSPORT_COMMON_DEFAULT_MAX_PAYLOAD;
  guint64 high = CANOPY_TRANSPORT_COMMON_DEFAULT_QUEUE_HIGH, low;

  if ((connect != NULL
       && !canopy_config_node_get_uint (connect, "timeout-ms", 1, 3600000, 10000, &timeout, error))
      || (limits != NULL
          && (!canopy_config_node_get_uint (limits, "max-header", 64,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE, &max_header, error)
              || !canopy_config_node_get_uint (limits, "max-payload", 0, G_MAXSSIZE,
                                               CANOPY_TRANSPORT_COMMON_DEFAULT_MAX_PAYLOAD,
                                               &max_payload, error)
              || !canopy_config_node_get_uint (limits, "send-queue-high", 4096, G_MAXSSIZE,
                                               CANOPY_TRANSPORT_COMMON_DEFAULT_QUEUE_HIGH, &high,
                                               error))))
    return FALSE;
  low = high / 2;
  if (limits != NULL
      && !canopy_config_node_get_uint (limits, "send-queue-low", 0, high, high / 2, &low, error))
    return FALSE;

  transport->connect_timeout_ms = (guint) timeout;
  transport->max_header = (gsize) max_header;
  transport->max_payload = (gsize) max_payload;
  transport->queue_high = (gsize) high;
  transport->queue_low = (gsize) low;
  return TRUE;
}

/* Sets up the shared part of a new instance: its configuration, TLS and
 * watch set. */
static gboolean
canopy_transport_common_init (CanopyTransportCommon *transport,
                              const CanopyTransportCommonClass *klass,
                              const CanopyConfigNode *element,
                              const CanopyTransportCredentials *creds, GMainContext *context,
                              const CanopyTransportEvents *events, gpointer user_data,
                              GError **error)
{
  transport->klass = klass;
  transport->context = g_main_context_ref (context);
  transport->events = events;
  transport->user_data = user_data;
  transport->element = element;
  transport->device_id = g_strdup (creds->device_id);
  memcpy (transport->secret, creds->secret, sizeof transport->secret);
  transport->listeners = g_ptr_array_new_with_free_func (klass->listener_free);
  transport->connections = g_hash_table_new_full (NULL, NULL, canopy_transport_common_conn_unref,
                                                  NULL);
  transport->resolving = g_ptr_array_new ();

  return canopy_transport_common_configure (transport, element, error)
         && canopy_transport_common_setup_tls (transport, error)
         && (transport->watches = canopy_watch_set_new (context, error)) != NULL;
}

/* A host name being resolved; the transport forgets it (and fails its
 * task) if it is freed first. */
typedef struct {
  CanopyTransportCommon *transport;
  GTask *task;
  char *host;
  guint16 port;
} CanopyTransportCommonResolve;

static void
canopy_transport_common_resolve_free (CanopyTransportCommonResolve *resolve)
{
  g_clear_object (&resolve->task);
  g_free (resolve->host);
  g_free (resolve);
}

static void
canopy_transport_common_task_return_shut_down (GTask *task)
{
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("The transport was shut down before the connection was "
                             "established."));
}

/* Pending connects learn they were cancelled; open ones end silently. */
static void
canopy_transport_common_shutdown (CanopyTransportCommon *transport)
{
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func (canopy_transport_common_conn_unref);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, transport->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, canopy_transport_common_conn_ref (key));
  for (guint i = 0; i < conns->len; i++)
    {
      CanopyTransportCommonConn *conn = conns->pdata[i];
      GTask *task = g_steal_pointer (&conn->connect_task);
      transport->klass->conn_close (conn);
      if (task != NULL)
        {
          canopy_transport_common_task_return_shut_down (task);
          g_object_unref (task);
        }
    }
  for (guint i = 0; i < transport->resolving->len; i++)
    {
      CanopyTransportCommonResolve *resolve = transport->resolving->pdata[i];
      resolve->transport = NULL;
      canopy_transport_common_task_return_shut_down (resolve->task);
    }
  g_clear_pointer (&transport->resolving, g_ptr_array_unref);
}

static void
canopy_transport_common_clear_tls (CanopyTransportCommon *transport)
{
  if (transport->priority != NULL)
    gnutls_priority_deinit (transport->priority);
  if (transport->server_creds != NULL)
    gnutls_psk_free_server_credentials (transport->server_creds);
  if (transport->client_creds != NULL)
    gnutls_psk_free_client_credentials (transport->client_creds);
  gnutls_memset (transport->secret, 0, sizeof transport->secret);
}

/* The free() operation: connections end, then the plugin frees its part,
 * then the shared part goes, the secret wiped. */
void
canopy_transport_common_free (gpointer instance)
{
  CanopyTransportCommon *transport = instance;

  if (transport == NULL)
    return;
  canopy_transport_common_shutdown (transport);
  if (transport->klass->finalize != NULL)
    transport->klass->finalize (transport);
  g_clear_pointer (&transport->listeners, g_ptr_array_unref);
  g_clear_pointer (&transport->connections, g_hash_table_unref);
  g_clear_pointer (&transport->watches, canopy_watch_set_free);
  canopy_transport_common_clear_tls (transport);
  g_main_context_unref (transport->context);
  g_free (transport->device_id);
  g_free (transport);
}

/* The new() operation of the plugin of @klass. */
gpointer
canopy_transport_common_new (const CanopyTransportCommonClass *klass,
                             const CanopyConfigNode *element,
                             const CanopyTransportCredentials *creds, GMainContext *context,
                             const CanopyTransportEvents *events, gpointer user_data,
                             GError **error)
{
  CanopyTransportCommon *transport;

  if (!canopy_transport_common_check_new (creds, events, error))
    return NULL;
  transport = g_malloc0 (klass->instance_size);
  if (klass->init != NULL)
    klass->init (transport);
  if (!canopy_transport_common_init (transport, klass, element, creds, context, events,
                                     user_data, error)
      || !klass->setup (transport, element, error))
    {
      canopy_transport_common_free (transport);
      return NULL;
    }
  return transport;
}

/* A non-blocking socket; an IPv6 one for IPv6 only, as "::" and "0.0.0.0"
 * may both be listed and each binds its own family. */
GSocket *
canopy_transport_common_socket_new (GInetAddress *inet, GSocketType type,
                                    GSocketProtocol protocol, GError **error)
{
  GSocket *socket = g_socket_new (g_inet_address_get_family (inet), type, protocol, error);
  int one = 1;

  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    setsockopt (g_socket_get_fd (socket), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  return socket;
}

/* --- listening --------------------------------------------------------------- */

static gboolean
canopy_transport_common_listen_one (CanopyTransportCommon *transport,
                                    const CanopyConfigNode *node, GError **error)
{
  const char *host = canopy_config_node_get_attribute (node, "address");
  g_autoptr (GInetAddress) inet = NULL;
  gpointer listener;
  guint64 port;

  if (!canopy_config_node_get_uint (node, "port", 0, G_MAXUINT16,
                                    CANOPY_TRANSPORT_COMMON_DEFAULT_PORT, &port, error))
    return FALSE;
  if (host == NULL)
    host = "::";
  inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    {
      canopy_config_node_set_error (node, error,
                                    _("\"%s\" is not an IPv4 or IPv6 address; write a literal "
                                      "address such as \"::\" or \"0.0.0.0\"."), host);
      return FALSE;
    }
  listener = transport->klass->listen_on (transport, inet, host, (guint16) port, error);
  if (listener == NULL)
    return FALSE;
  g_ptr_array_add (transport->listeners, listener);
  return TRUE;
}

gboolean
canopy_transport_common_listen (gpointer instance, GError **error)
{
  CanopyTransportCommon *transport = instance;
  g_autoptr (GPtrArray) nodes = canopy_config_node_get_children (transport->element, "listen");
  for (guint i = 0; i < nodes->len; i++)
    if (!canopy_transport_common_listen_one (transport, nodes->pdata[i], error))
      {
        g_ptr_array_set_size (transport->listeners, 0);
        return FALSE;
      }
  return TRUE;
}

GPtrArray *
canopy_transport_common_get_listen_addresses (gpointer instance)
{
  CanopyTransportCommon *transport = instance;
  GPtrArray *addresses = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < transport->listeners->len; i++)
    {
      GSocket *socket = transport->klass->listener_get_socket (transport->listeners->pdata[i]);
      GSocketAddress *address = g_socket_get_local_address (socket, NULL);
      if (address != NULL)
        g_ptr_array_add (addresses, address);
    }
  return addresses;
}

/* --- connecting -------------------------------------------------------------- */

static void
canopy_transport_common_on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyTransportCommonResolve *resolve = user_data;
  g_autoptr (GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);

  if (resolve->transport != NULL)
    {
      g_ptr_array_remove_fast (resolve->transport->resolving, resolve);
      if (addresses == NULL)
        g_task_return_new_error (resolve->task, CANOPY_TRANSPORT_ERROR,
                                 CANOPY_TRANSPORT_ERROR_FAILED,
                                 _("Cannot resolve the host name \"%s\": %s. Check the name, "
                                   "or give an IP address instead."),
                                 resolve->host, error->message);
      else
        resolve->transport->klass->connect_to (resolve->transport,
                                               g_steal_pointer (&resolve->task),
                                               addresses->data, resolve->port);
    }
  g_resolver_free_addresses (addresses);
  canopy_transport_common_resolve_free (resolve);
}

void
canopy_transport_common_connect_async (gpointer instance, const char *host, guint16 port,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  CanopyTransportCommon *transport = instance;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GResolver) resolver = NULL;
  CanopyTransportCommonResolve *resolve;
  GTask *task;

  /* The task, and the resolver's answer, complete on the transport's
   * context, not the caller's. */
  g_main_context_push_thread_default (transport->context);
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, canopy_transport_common_connect_async);
  g_task_set_check_cancellable (task, FALSE);
  if (inet != NULL)
    {
      g_main_context_pop_thread_default (transport->context);
      transport->klass->connect_to (transport, task, inet, port);
      return;
    }

  resolve = g_new0 (CanopyTransportCommonResolve, 1);
  resolve->transport = transport;
  resolve->task = task;
  resolve->host = g_strdup (host);
  resolve->port = port;
  g_ptr_array_add (transport->resolving, resolve);
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, host, cancellable,
                                   canopy_transport_common_on_resolved, resolve);
  g_main_context_pop_thread_default (transport->context);
}

CanopyTransportConnection *
canopy_transport_common_connect_finish (gpointer instance, GAsyncResult *result, GError **error)
{
  (void) instance;
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- messages ---------------------------------------------------------------- */

gboolean
canopy_transport_common_send (CanopyTransportConnection *parent, GBytes *header, GBytes *payload,
                              GError **error)
{
  CanopyTransportCommonConn *conn = (CanopyTransportCommonConn *) parent;
  CanopyTransportCommon *transport = conn->transport;
  gsize header_len = g_bytes_get_size (header);
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;

  if (conn->state != CANOPY_TRANSPORT_COMMON_OPEN)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                   _("The connection to \"%s\" is closed."), conn->peer_id);
      return FALSE;
    }
  if (header_len == 0 || header_len > transport->max_header || payload_len > transport->max_payload)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TOO_LARGE,
                   _("A message of %zu header bytes and %zu payload bytes exceeds the limits "
                     "(%zu and %zu)."),
                   header_len, payload_len, transport->max_header, transport->max_payload);
      return FALSE;
    }
  if (transport->klass->conn_get_queued (conn) >= transport->queue_high)
    {
      conn->want_drained = TRUE;
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL,
                   _("The send queue to \"%s\" is full; wait until it drains."), conn->peer_id);
      return FALSE;
    }
  transport->klass->conn_queue (conn, CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE,
                                g_bytes_get_data (header, NULL), header_len, payload);
  return TRUE;
}

gsize
canopy_transport_common_get_queued_bytes (CanopyTransportConnection *parent)
{
  CanopyTransportCommonConn *conn = (CanopyTransportCommonConn *) parent;
  return conn->transport->klass->conn_get_queued (conn);
}

const char *
canopy_transport_common_get_peer_id (CanopyTransportConnection *parent)
{
  return ((CanopyTransportCommonConn *) parent)->peer_id;
}

GSocketAddress *
canopy_transport_common_get_peer_address (CanopyTransportConnection *parent)
{
  return ((CanopyTransportCommonConn *) parent)->peer_address;
}

void
canopy_transport_common_close (CanopyTransportConnection *parent)
{
  CanopyTransportCommonConn *conn = (CanopyTransportCommonConn *) parent;
  conn->transport->klass->conn_close (conn);
}
