/* What the TCP and QUIC transports share: the frame format, TLS 1.3 with an
 * external PSK, resolving, connecting, listening and the instance's life. */
#pragma once

#include <gnutls/gnutls.h>
#include <canopy/canopy.h>

G_BEGIN_DECLS

/* Frame: magic "CNPY", version, kind, two reserved zero bytes, header
 * length (u32), payload length (u64), all big-endian; checked before any
 * allocation. The same bytes precede every message on both transports. */
#define CANOPY_TRANSPORT_COMMON_FRAME_MAGIC 0x434e5059u
#define CANOPY_TRANSPORT_COMMON_FRAME_VERSION 1
#define CANOPY_TRANSPORT_COMMON_FRAME_SIZE 20
#define CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE 0
#define CANOPY_TRANSPORT_COMMON_FRAME_HELLO 1

/* A device ID is a TLS PSK identity: 1 to 255 printable ASCII bytes. */
#define CANOPY_TRANSPORT_COMMON_MAX_ID_LENGTH 255

#define CANOPY_TRANSPORT_COMMON_DEFAULT_PORT 7443
#define CANOPY_TRANSPORT_COMMON_DEFAULT_MAX_PAYLOAD (64u * 1024 * 1024)
#define CANOPY_TRANSPORT_COMMON_DEFAULT_QUEUE_HIGH (8u * 1024 * 1024)

/* The RelaxNG fragment of `<transport plugin="NAME">`: the elements both
 * transports read alike (listen, connect) and then the plugin's own
 * @elements, each written with the two macros below. */
#define CANOPY_TRANSPORT_COMMON_SCHEMA(name, elements)                                         \
  "<element name='transport' xmlns='http://relaxng.org/ns/structure/1.0'"                     \
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"                    \
  "  <attribute name='plugin'><value>" name "</value></attribute>"                            \
  "  <interleave>"                                                                            \
  "    <zeroOrMore><element name='listen'>"                                                   \
  "      <optional><attribute name='address'><text/></attribute></optional>"                  \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("port", "unsignedShort")                           \
  "    </element></zeroOrMore>"                                                               \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT ("connect",                                           \
    CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("timeout-ms", "unsignedInt"))                    \
  elements                                                                                    \
  "  </interleave>"                                                                           \
  "</element>"

/* An optional element of optional attributes. */
#define CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT(name, attributes)                               \
  "    <optional><element name='" name "'>" attributes "    </element></optional>"

/* An optional attribute of an XML Schema @type. */
#define CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE(name, type)                                   \
  "      <optional><attribute name='" name "'><data type='" type "'/></attribute></optional>"

/* The attributes of `<limits>` that canopy_transport_common_init() reads. */
#define CANOPY_TRANSPORT_COMMON_SCHEMA_LIMITS                                                  \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("max-header", "unsignedInt")                       \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("max-payload", "unsignedLong")                     \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("send-queue-high", "unsignedLong")                 \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("send-queue-low", "unsignedLong")

/* A connection's life; a QUIC connection starts at HANDSHAKE. */
typedef enum {
  CANOPY_TRANSPORT_COMMON_CONNECTING, /* client: TCP connect in progress */
  CANOPY_TRANSPORT_COMMON_HANDSHAKE,  /* TLS handshake */
  CANOPY_TRANSPORT_COMMON_HELLO,      /* client: waiting for the server's device ID */
  CANOPY_TRANSPORT_COMMON_OPEN,
  CANOPY_TRANSPORT_COMMON_DEAD,
} CanopyTransportCommonState;

typedef struct _CanopyTransportCommon CanopyTransportCommon;
typedef struct _CanopyTransportCommonConn CanopyTransportCommonConn;

/**
 * CanopyTransportCommonClass:
 * @log_domain: the plugin's log domain, for what the shared code logs
 * @ops: the plugin's operations table, set in each connection
 * @instance_size: the size of the plugin's instance, whose first member is
 *   a #CanopyTransportCommon
 * @init: (nullable): sets the plugin's fields to what finalize can free,
 *   before anything can fail
 * @setup: reads the plugin's own configuration and sets up the rest, once
 *   the shared part is set up
 * @finalize: (nullable): frees the plugin's fields, after every
 *   connection was closed and before the shared part is freed
 * @psk_label: the HKDF label of the PSKs; each transport its own, so two
 *   transports never share a key
 * @priority: the GnuTLS priority string
 * @psk_server_key: finds the connection from the session (each transport
 *   keeps its own pointer there) and calls canopy_transport_common_psk_key()
 * @listen_on: binds and watches one listen address; returns the listener
 * @listener_get_socket: the bound socket of a listener
 * @listener_free: frees a listener
 * @connect_to: starts connecting to one address; takes the task
 * @conn_destroy: stops all I/O on a connection, saying @farewell to the
 *   peer (the plugin's own notice, %NULL for none), and drops the
 *   transport's reference
 * @conn_fail: fails a connection the plugin's usual way (cancelled connects)
 * @conn_close: closes a connection in good order (close(), shut-down)
 * @conn_finalize: frees what the plugin added to a connection
 * @conn_get_queued: the bytes back-pressure is measured on
 * @conn_queue: queues a frame of @kind
 *
 * What each transport does its own way; the shared code calls it.
 */
typedef struct {
  const char *log_domain;
  const CanopyTransportOps *ops;
  gsize instance_size;
  void (*init) (CanopyTransportCommon *transport);
  gboolean (*setup) (CanopyTransportCommon *transport, const CanopyConfigNode *element,
                     GError **error);
  void (*finalize) (CanopyTransportCommon *transport);
  const char *psk_label;
  const char *priority;
  gnutls_psk_server_credentials_function2 *psk_server_key;
  gpointer (*listen_on) (CanopyTransportCommon *transport, GInetAddress *inet, const char *host,
                         guint16 port, GError **error);
  GSocket *(*listener_get_socket) (gpointer listener);
  GDestroyNotify listener_free;
  void (*connect_to) (CanopyTransportCommon *transport, GTask *task, GInetAddress *inet,
                      guint16 port);
  void (*conn_destroy) (CanopyTransportCommonConn *conn, gconstpointer farewell);
  void (*conn_fail) (CanopyTransportCommonConn *conn, GError *error);
  void (*conn_close) (CanopyTransportCommonConn *conn);
  void (*conn_finalize) (CanopyTransportCommonConn *conn);
  gsize (*conn_get_queued) (CanopyTransportCommonConn *conn);
  void (*conn_queue) (CanopyTransportCommonConn *conn, guint8 kind, const void *header,
                      gsize header_len, GBytes *payload);
} CanopyTransportCommonClass;

/* The first member of each transport's instance. */
struct _CanopyTransportCommon {
  const CanopyTransportCommonClass *klass;
  GMainContext *context;
  const CanopyTransportEvents *events;
  gpointer user_data;
  char *device_id;
  guint8 secret[CANOPY_TRANSPORT_SECRET_SIZE];
  const CanopyConfigNode *element;

  guint connect_timeout_ms;
  gsize max_header;
  gsize max_payload;
  gsize queue_high;
  gsize queue_low;

  CanopyWatchSet *watches;
  GPtrArray *listeners;    /* the plugin's listeners */
  GHashTable *connections; /* connection -> itself (holds a reference) */
  GPtrArray *resolving;    /* host names being resolved, owned by their callback */
  gnutls_priority_t priority;
  gnutls_psk_server_credentials_t server_creds;
  gnutls_psk_client_credentials_t client_creds;
};

/* The first member of each transport's connection. */
struct _CanopyTransportCommonConn {
  CanopyTransportConnection parent;
  gint ref_count;
  /* The last reference may go after the transport (an idle source of a
   * cancelled connect), so the connection finds its class itself. */
  const CanopyTransportCommonClass *klass;
  CanopyTransportCommon *transport;
  gboolean is_client;
  CanopyTransportCommonState state;
  char *peer_id;
  GSocketAddress *peer_address;
  GTask *connect_task;
  GCancellable *cancellable;
  gulong cancel_id;
  gboolean want_drained;
};

/* A message on its way out: the frame header and message header copied,
 * the payload never (it is often a slice of a mapped file). */
typedef struct {
  guint8 *prefix;
  gsize prefix_len;
  GBytes *payload;
  const guint8 *payload_data;
  gsize total; /* prefix + payload */
} CanopyTransportOutFrame;

/* A message on its way in, assembled from the bytes as they arrive. */
typedef struct {
  guint8 frame[CANOPY_TRANSPORT_COMMON_FRAME_SIZE];
  gsize frame_got;
  guint8 kind;
  guint8 *header;
  gsize header_len;
  gsize header_got;
  guint8 *payload;
  gsize payload_len;
  gsize payload_got;
} CanopyTransportInFrame;

typedef enum {
  CANOPY_TRANSPORT_IN_FRAME_MORE,      /* more bytes are expected */
  CANOPY_TRANSPORT_IN_FRAME_WHOLE,     /* the message is complete */
  CANOPY_TRANSPORT_IN_FRAME_MALFORMED, /* the frame header broke a rule */
  CANOPY_TRANSPORT_IN_FRAME_NO_MEMORY, /* the announced payload cannot be held */
} CanopyTransportInFrameStatus;

/* --- frames --- */
gboolean canopy_transport_common_id_is_valid (const guint8 *id, gsize len);
void canopy_transport_common_out_frame_init (CanopyTransportOutFrame *out, guint8 kind,
                                             const void *header, gsize header_len,
                                             GBytes *payload);
void canopy_transport_common_out_frame_clear (CanopyTransportOutFrame *out);
guint8 *canopy_transport_common_in_frame_target (CanopyTransportInFrame *in, gsize *want);
CanopyTransportInFrameStatus canopy_transport_common_in_frame_advance (
  CanopyTransportInFrame *in, gsize n, const CanopyTransportCommon *transport,
  gboolean hello_allowed, gboolean message_allowed, const char **what);
gboolean canopy_transport_common_in_frame_is_whole (const CanopyTransportInFrame *in);
void canopy_transport_common_in_frame_take (CanopyTransportInFrame *in, GBytes **header,
                                            GBytes **payload);
void canopy_transport_common_in_frame_clear (CanopyTransportInFrame *in);

/* --- TLS with an external PSK --- */
int canopy_transport_common_session_init (CanopyTransportCommon *transport, gboolean is_client,
                                          unsigned flags, gnutls_session_t *session);
int canopy_transport_common_psk_key (CanopyTransportCommon *transport,
                                     const gnutls_datum_t *identity, gnutls_datum_t *key);
gboolean canopy_transport_common_alert_is_key_mismatch (int alert);

/* --- errors, each a whole translatable sentence --- */
GError *canopy_transport_common_protocol_error (CanopyTransportCommonConn *conn, const char *what);
GError *canopy_transport_common_key_mismatch_error (CanopyTransportCommonConn *conn);
GError *canopy_transport_common_closed_error (CanopyTransportCommonConn *conn,
                                              gboolean mid_message, const char *reason);
GError *canopy_transport_common_timeout_error (CanopyTransportCommonConn *conn);
GError *canopy_transport_common_refused_error (CanopyTransportCommonConn *conn);
GError *canopy_transport_common_connect_error (CanopyTransportCommonConn *conn, int code,
                                               const char *reason);
GError *canopy_transport_common_handshake_error (CanopyTransportCommonConn *conn,
                                                 const char *reason);
void canopy_transport_common_task_return_socket_error (GTask *task, const GError *error);
void canopy_transport_common_log (CanopyTransportCommon *transport, const char *message);

/* --- connections --- */
void canopy_transport_common_conn_init (CanopyTransportCommonConn *conn,
                                        CanopyTransportCommon *transport, gboolean is_client);
gpointer canopy_transport_common_conn_ref (gpointer conn);
void canopy_transport_common_conn_unref (gpointer conn);
char *canopy_transport_common_conn_describe (CanopyTransportCommonConn *conn);
void canopy_transport_common_conn_start_connect (CanopyTransportCommonConn *conn, GTask *task);
void canopy_transport_common_conn_stop_cancel (CanopyTransportCommonConn *conn);
void canopy_transport_common_conn_fail (CanopyTransportCommonConn *conn, GError *error,
                                        gconstpointer farewell);
void canopy_transport_common_conn_accepted (CanopyTransportCommonConn *conn,
                                            gnutls_session_t session);
void canopy_transport_common_conn_opened (CanopyTransportCommonConn *conn, char *peer_id);
void canopy_transport_common_conn_check_drained (CanopyTransportCommonConn *conn, gsize queued);

/* --- the instance --- */
gpointer canopy_transport_common_new (const CanopyTransportCommonClass *klass,
                                      const CanopyConfigNode *element,
                                      const CanopyTransportCredentials *creds,
                                      GMainContext *context, const CanopyTransportEvents *events,
                                      gpointer user_data, GError **error);
void canopy_transport_common_free (gpointer instance);
GSocket *canopy_transport_common_socket_new (GInetAddress *inet, GSocketType type,
                                             GSocketProtocol protocol, GError **error);

/* --- operations every transport implements alike --- */
gboolean canopy_transport_common_listen (gpointer instance, GError **error);
GPtrArray *canopy_transport_common_get_listen_addresses (gpointer instance);
void canopy_transport_common_connect_async (gpointer instance, const char *host, guint16 port,
                                            GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data);
CanopyTransportConnection *canopy_transport_common_connect_finish (gpointer instance,
                                                                   GAsyncResult *result,
                                                                   GError **error);
gboolean canopy_transport_common_send (CanopyTransportConnection *parent, GBytes *header,
                                       GBytes *payload, GError **error);
gsize canopy_transport_common_get_queued_bytes (CanopyTransportConnection *parent);
const char *canopy_transport_common_get_peer_id (CanopyTransportConnection *parent);
GSocketAddress *canopy_transport_common_get_peer_address (CanopyTransportConnection *parent);
void canopy_transport_common_close (CanopyTransportConnection *parent);

/* An operations table: the plugin's own new() and free(), the rest shared. */
#define CANOPY_TRANSPORT_COMMON_OPS(new_func, free_func)                                       \
  {                                                                                           \
    .new = (new_func), .listen = canopy_transport_common_listen,                              \
    .get_listen_addresses = canopy_transport_common_get_listen_addresses,                     \
    .connect_async = canopy_transport_common_connect_async,                                   \
    .connect_finish = canopy_transport_common_connect_finish,                                 \
    .send = canopy_transport_common_send,                                                     \
    .get_queued_bytes = canopy_transport_common_get_queued_bytes,                             \
    .get_peer_id = canopy_transport_common_get_peer_id,                                       \
    .get_peer_address = canopy_transport_common_get_peer_address,                             \
    .close = canopy_transport_common_close, .free = (free_func),                              \
  }

/* Defines a transport as G_DEFINE_TYPE defines a type: its new() and
 * operations table `canopy_<prefix>_transport_ops`, and its class, whose
 * functions are named `<prefix>_psk_server_key`, `<prefix>_listen_on`,
 * `<prefix>_conn_close` and so on, one for each member. @Type is the
 * instance; @init and @finalize may be %NULL. */
#define CANOPY_TRANSPORT_COMMON_DEFINE(prefix, Type, label, priority_string, init_func,        \
                                       setup_func, finalize_func)                             \
  static const CanopyTransportCommonClass prefix##_transport_class;                           \
  static gpointer prefix##_transport_new (                                                    \
    const CanopyConfigNode *element, const CanopyTransportCredentials *creds,                 \
    GMainContext *context, const CanopyTransportEvents *events, gpointer user_data,           \
    GError **error)                                                                           \
  {                                                                                           \
    return canopy_transport_common_new (&prefix##_transport_class, element, creds, context,   \
                                        events, user_data, error);                            \
  }                                                                                           \
  const CanopyTransportOps canopy_##prefix##_transport_ops =                                  \
    CANOPY_TRANSPORT_COMMON_OPS (prefix##_transport_new, canopy_transport_common_free);       \
  static const CanopyTransportCommonClass prefix##_transport_class = {                        \
    .log_domain = G_LOG_DOMAIN, .ops = &canopy_##prefix##_transport_ops,                      \
    .instance_size = sizeof (Type), .init = (init_func), .setup = (setup_func),              \
    .finalize = (finalize_func), .psk_label = (label), .priority = (priority_string),         \
    .psk_server_key = prefix##_psk_server_key, .listen_on = prefix##_listen_on,               \
    .listener_get_socket = prefix##_listener_get_socket,                                      \
    .listener_free = prefix##_listener_free, .connect_to = prefix##_connect_to,               \
    .conn_destroy = prefix##_conn_destroy_with, .conn_fail = prefix##_conn_fail_any,          \
    .conn_close = prefix##_conn_close, .conn_finalize = prefix##_conn_finalize,               \
    .conn_get_queued = prefix##_conn_get_queued, .conn_queue = prefix##_conn_queue_frame,     \
  }

G_END_DECLS
