/* What ngtcp2 calls while it reads and writes packets: connection IDs,
 * stream data assembled into messages, acknowledgements, flow control. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "plugins/transport-quic/quic-private.h"

ngtcp2_conn *
quic_get_conn (ngtcp2_crypto_conn_ref *ref)
{
  return ((QuicConnection *) ref->user_data)->quic;
}

static void
quic_rand (uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
  (void) rand_ctx;
  gnutls_rnd (GNUTLS_RND_RANDOM, dest, destlen);
}

/* Connection IDs are looked up for every datagram a listener receives,
 * so the table's keys are plain ngtcp2_cid, found without allocating. */
guint
quic_cid_hash (gconstpointer key)
{
  const ngtcp2_cid *cid = key;
  guint hash = (guint) cid->datalen;
  for (gsize i = 0; i < cid->datalen; i++)
    hash = hash * 31 + cid->data[i];
  return hash;
}

gboolean
quic_cid_equal (gconstpointer a, gconstpointer b)
{
  return ngtcp2_cid_eq (a, b);
}

void
quic_conn_add_cid (QuicConnection *conn, const ngtcp2_cid *cid)
{
  ngtcp2_cid *copy = g_memdup2 (cid, sizeof *cid);
  if (conn->cids == NULL)
    conn->cids = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (conn->cids, copy);
  g_hash_table_replace (conn->transport->cids, copy, conn);
}

static int
quic_on_new_cid (ngtcp2_conn *quic, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                 void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  if (gnutls_rnd (GNUTLS_RND_NONCE, cid->data, cidlen) != 0
      || gnutls_rnd (GNUTLS_RND_NONCE, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (!conn->base.is_client)
    quic_conn_add_cid (conn, cid);
  return 0;
}

static int
quic_on_remove_cid (ngtcp2_conn *quic, const ngtcp2_cid *cid, void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  if (!conn->base.is_client && g_hash_table_lookup (conn->transport->cids, cid) == conn)
    g_hash_table_remove (conn->transport->cids, cid);
  return 0;
}

static int
quic_on_handshake_completed (ngtcp2_conn *quic, void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  conn->handshake_done = TRUE;
  return 0;
}

/* --- incoming messages -------------------------------------------------------- */

/* Copies stream data into @msg. Returns: FALSE on a protocol error. */
static gboolean
quic_in_append (QuicConnection *conn, QuicInMessage *msg, const guint8 *data, gsize len)
{
  gboolean hello_allowed = conn->base.is_client && conn->hello_id == NULL;

  while (len > 0)
    {
      gsize want, n;
      guint8 *target = canopy_transport_common_in_frame_target (&msg->in, &want);
      const char *what = NULL;

      if (want == 0)
        {
          conn->pending_error = canopy_transport_common_protocol_error (&conn->base,
                                                                        "data after the message");
          return FALSE;
        }
      n = MIN (want, len);
      memcpy (target, data, n);
      data += n;
      len -= n;
      switch (canopy_transport_common_in_frame_advance (&msg->in, n, &conn->transport->base,
                                                        hello_allowed, TRUE, &what))
        {
        case CANOPY_TRANSPORT_IN_FRAME_MALFORMED:
          conn->pending_error = canopy_transport_common_protocol_error (&conn->base, what);
          return FALSE;
        case CANOPY_TRANSPORT_IN_FRAME_NO_MEMORY:
          conn->pending_error = canopy_transport_common_closed_error (&conn->base, FALSE,
                                                                      "out of memory");
          return FALSE;
        case CANOPY_TRANSPORT_IN_FRAME_MORE:
        case CANOPY_TRANSPORT_IN_FRAME_WHOLE:
          break;
        }
    }
  return TRUE;
}

/* The stream ended: the message must be whole. */
static gboolean
quic_in_complete (QuicConnection *conn, QuicInMessage *msg)
{
  QuicDelivery *delivery;
  GBytes *header, *payload;

  if (!canopy_transport_common_in_frame_is_whole (&msg->in))
    {
      conn->pending_error = canopy_transport_common_protocol_error (
        &conn->base, "stream ended inside a message");
      return FALSE;
    }
  if (msg->in.kind == CANOPY_TRANSPORT_COMMON_FRAME_HELLO)
    {
      if (!canopy_transport_common_id_is_valid (msg->in.header, msg->in.header_len))
        {
          conn->pending_error = canopy_transport_common_protocol_error (&conn->base,
                                                                        "invalid device ID");
          return FALSE;
        }
      conn->hello_id = g_strndup ((const char *) msg->in.header, msg->in.header_len);
      return TRUE;
    }
  canopy_transport_common_in_frame_take (&msg->in, &header, &payload);
  delivery = g_new0 (QuicDelivery, 1);
  delivery->header = header;
  delivery->payload = payload;
  g_queue_push_tail (&conn->deliveries, delivery);
  return TRUE;
}

static int
quic_on_stream_data (ngtcp2_conn *quic, uint32_t flags, int64_t stream_id, uint64_t offset,
                     const uint8_t *data, size_t datalen, void *user_data,
                     void *stream_user_data)
{
  QuicConnection *conn = user_data;
  QuicInMessage *msg = g_hash_table_lookup (conn->in, &stream_id);

  (void) offset;
  (void) stream_user_data;
  if (conn->pending_error != NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (ngtcp2_conn_is_local_stream (quic, stream_id))
    {
      /* Our message's stream: the peer only ever answers with its FIN. */
      if (datalen == 0)
        return 0;
      conn->pending_error = canopy_transport_common_protocol_error (&conn->base, "data on a reply stream");
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
  if (msg == NULL)
    {
      msg = g_new0 (QuicInMessage, 1);
      msg->stream_id = stream_id;
      g_hash_table_insert (conn->in, &msg->stream_id, msg);
    }
  if (!quic_in_append (conn, msg, data, datalen)
      || ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && !quic_in_complete (conn, msg)))
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
    {
      g_hash_table_remove (conn->in, &stream_id);
      g_array_append_val (conn->finished, stream_id);
    }
  /* Consumed at once: the peer may send as much again. */
  ngtcp2_conn_extend_max_stream_offset (quic, stream_id, datalen);
  ngtcp2_conn_extend_max_offset (quic, datalen);
  return 0;
}

static int
quic_on_acked (ngtcp2_conn *quic, int64_t stream_id, uint64_t offset, uint64_t datalen,
               void *user_data, void *stream_user_data)
{
  QuicConnection *conn = user_data;
  QuicOutMessage *msg = stream_user_data;

  (void) quic;
  (void) stream_id;
  (void) offset;
  if (msg != NULL)
    {
      gsize n = MIN ((gsize) datalen, msg->unacked);
      msg->unacked -= n;
      conn->queued -= n;
    }
  return 0;
}

/* The peer's stream is retired: it may open another in its place. */
static void
quic_in_stream_closed (QuicConnection *conn, int64_t stream_id)
{
  g_hash_table_remove (conn->in, &stream_id);
  ngtcp2_conn_extend_max_streams_bidi (conn->quic, 1);
}

/* Our message's stream is retired: the message is no longer ours to keep. */
static void
quic_out_stream_closed (QuicConnection *conn, QuicOutMessage *msg)
{
  conn->queued -= msg->unacked;
  msg->unacked = 0;
  if (!g_hash_table_remove (conn->flying, &msg->stream_id))
    {
      /* Closed before it was all written (the peer stopped it). */
      g_queue_remove (&conn->out, msg);
      quic_out_message_free (msg);
    }
}

static int
quic_on_stream_close (ngtcp2_conn *quic, uint32_t flags, int64_t stream_id,
                      uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  (void) flags;
  (void) app_error_code;
  if (!ngtcp2_conn_is_local_stream (quic, stream_id))
    quic_in_stream_closed (user_data, stream_id);
  else if (stream_user_data != NULL)
    quic_out_stream_closed (user_data, stream_user_data);
  return 0;
}

static int
quic_on_stream_reset (ngtcp2_conn *quic, int64_t stream_id, uint64_t final_size,
                      uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  (void) stream_id;
  (void) final_size;
  (void) app_error_code;
  (void) stream_user_data;
  /* Messages are never abandoned half way by a canopy peer. */
  if (conn->pending_error == NULL)
    conn->pending_error = canopy_transport_common_protocol_error (&conn->base, "stream reset");
  return NGTCP2_ERR_CALLBACK_FAILURE;
}

static int
quic_on_extend_streams (ngtcp2_conn *quic, uint64_t max_streams, void *user_data)
{
  (void) quic;
  (void) max_streams;
  quic_conn_kick (user_data);
  return 0;
}

static int
quic_on_extend_stream_data (ngtcp2_conn *quic, int64_t stream_id, uint64_t max_data,
                            void *user_data, void *stream_user_data)
{
  (void) quic;
  (void) stream_id;
  (void) max_data;
  (void) stream_user_data;
  quic_conn_kick (user_data);
  return 0;
}

/* --- the tables ----------------------------------------------------------------- */

/* What both ends do alike; the tables below add what is an end's own. */
#define QUIC_CALLBACKS_SHARED                                                                  \
  .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,                                      \
  .handshake_completed = quic_on_handshake_completed, .encrypt = ngtcp2_crypto_encrypt_cb,    \
  .decrypt = ngtcp2_crypto_decrypt_cb, .hp_mask = ngtcp2_crypto_hp_mask_cb,                   \
  .recv_stream_data = quic_on_stream_data, .acked_stream_data_offset = quic_on_acked,         \
  .stream_close = quic_on_stream_close, .extend_max_local_streams_bidi = quic_on_extend_streams, \
  .rand = quic_rand, .get_new_connection_id = quic_on_new_cid,                                \
  .update_key = ngtcp2_crypto_update_key_cb, .stream_reset = quic_on_stream_reset,            \
  .extend_max_stream_data = quic_on_extend_stream_data,                                       \
  .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,                          \
  .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,                      \
  .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,                        \
  .version_negotiation = ngtcp2_crypto_version_negotiation_cb

const ngtcp2_callbacks quic_client_callbacks = {
  .client_initial = ngtcp2_crypto_client_initial_cb,
  .recv_retry = ngtcp2_crypto_recv_retry_cb,
  QUIC_CALLBACKS_SHARED,
};

/* A server also forgets the connection IDs its client retires. */
const ngtcp2_callbacks quic_server_callbacks = {
  .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
  .remove_connection_id = quic_on_remove_cid,
  QUIC_CALLBACKS_SHARED,
};
