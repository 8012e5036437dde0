/* The QUIC writer: messages into streams in the order they were sent, and
 * the packets ngtcp2 makes of them into GSO batches of datagrams. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>

#include "plugins/transport-quic/quic-private.h"

/* --- messages into streams ----------------------------------------------------- */

/* The server's hello goes ahead of every message. */
void
quic_conn_queue_frame (CanopyTransportCommonConn *base, guint8 kind, const void *header,
                       gsize header_len, GBytes *payload)
{
  QuicConnection *conn = (QuicConnection *) base;
  QuicOutMessage *msg = g_new0 (QuicOutMessage, 1);

  canopy_transport_common_out_frame_init (&msg->frame, kind, header, header_len, payload);
  msg->unacked = msg->frame.total;
  if (kind == CANOPY_TRANSPORT_COMMON_FRAME_HELLO)
    g_queue_push_head (&conn->out, msg);
  else
    g_queue_push_tail (&conn->out, msg);
  conn->queued += msg->frame.total;
  if (conn->queued >= conn->transport->base.queue_high)
    conn->base.want_drained = TRUE;
  quic_conn_kick (conn);
}

/* The oldest message that may send now, its stream opened if need be:
 * messages go out in order, and a later one moves ahead only while an
 * earlier one waits for the peer's flow control. */
static QuicOutMessage *
quic_conn_next_message (QuicConnection *conn)
{
  for (GList *l = conn->out.head; l != NULL; l = l->next)
    {
      QuicOutMessage *msg = l->data;
      if (msg->blocked)
        continue;
      if (!msg->has_stream)
        {
          if (ngtcp2_conn_open_bidi_stream (conn->quic, &msg->stream_id, msg) != 0)
            return NULL; /* out of streams until the peer grants more */
          msg->has_stream = TRUE;
        }
      return msg;
    }
  return NULL;
}

static int
quic_message_vec (QuicOutMessage *msg, ngtcp2_vec vec[2])
{
  int n = 0;
  if (msg->written < msg->frame.prefix_len)
    {
      vec[n].base = msg->frame.prefix + msg->written;
      vec[n].len = msg->frame.prefix_len - msg->written;
      n++;
    }
  if (msg->frame.total > msg->frame.prefix_len)
    {
      gsize from = MAX (msg->written, msg->frame.prefix_len) - msg->frame.prefix_len;
      vec[n].base = (uint8_t *) msg->frame.payload_data + from;
      vec[n].len = msg->frame.total - msg->frame.prefix_len - from;
      n++;
    }
  return n;
}

static void
quic_message_advance (QuicConnection *conn, QuicOutMessage *msg, ngtcp2_ssize n)
{
  if (msg == NULL || n < 0)
    return;
  msg->written += (gsize) n;
  if (msg->written == msg->frame.total)
    {
      /* All handed over with the FIN: kept for retransmission until
       * acknowledged and the stream closes. */
      g_queue_remove (&conn->out, msg);
      g_hash_table_insert (conn->flying, &msg->stream_id, msg);
    }
}

/* --- packets ---------------------------------------------------------------------- */

/* Whether ngtcp2 wants a packet sent to another address than the last:
 * the server probes or moves to a client's new address. */
static gboolean
quic_conn_path_changed (QuicConnection *conn, const ngtcp2_path *path)
{
  return !conn->base.is_client && path->remote.addrlen > 0
         && (path->remote.addrlen != conn->remote_len
             || memcmp (path->remote.addr, &conn->remote, conn->remote_len) != 0);
}

static void
quic_conn_follow_path (QuicConnection *conn, const ngtcp2_path *path)
{
  memcpy (&conn->remote, path->remote.addr, MIN ((gsize) path->remote.addrlen,
                                                  sizeof conn->remote));
  conn->remote_len = path->remote.addrlen;
}

/* Writes packets until ngtcp2 has nothing more, congestion control or
 * pacing holds it back, or the kernel is full; datagrams of one size go
 * to the kernel in one GSO call.
 * Returns: FALSE if @conn failed (and was reported). */
gboolean
quic_conn_write (QuicConnection *conn)
{
  QuicTransport *transport = conn->transport;
  guint8 *buf = transport->tx_buffer;
  gsize max_udp = MIN (ngtcp2_conn_get_path_max_tx_udp_payload_size (conn->quic),
                       transport->udp_payload);
  ngtcp2_tstamp ts = quic_now ();
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  gsize max_segments, off = 0, segment = 0, nsegments = 0;
  guint batches = 0;

  if (!quic_conn_flush_unsent (conn))
    {
      quic_conn_wait_writable (conn);
      return TRUE;
    }
  conn->kicked = FALSE;
  /* A GSO batch is one UDP datagram to the kernel: at most 64 KiB. */
  max_segments = CLAMP (ngtcp2_conn_get_send_quantum (conn->quic) / max_udp, 1,
                        MIN (QUIC_GSO_MAX_SEGMENTS, QUIC_GSO_MAX_BYTES / max_udp));
  for (GList *l = conn->out.head; l != NULL; l = l->next)
    ((QuicOutMessage *) l->data)->blocked = FALSE;
  ngtcp2_path_storage_zero (&ps);

  while (TRUE)
    {
      gboolean answer = conn->finished->len > 0;
      QuicOutMessage *msg = answer || conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD
                                || conn->base.state == CANOPY_TRANSPORT_COMMON_HANDSHAKE
                              ? NULL : quic_conn_next_message (conn);
      int64_t stream_id = answer ? g_array_index (conn->finished, int64_t, 0)
                                 : msg != NULL ? msg->stream_id : -1;
      ngtcp2_vec vec[2];
      int nvec = msg != NULL ? quic_message_vec (msg, vec) : 0;
      ngtcp2_ssize datalen = -1;
      uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE
                       | (stream_id != -1 ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
      ngtcp2_ssize n = ngtcp2_conn_writev_stream (conn->quic, &ps.path, &pi, buf + off, max_udp,
                                                  &datalen, flags, stream_id, vec, (size_t) nvec,
                                                  ts);
      if (answer && (datalen >= 0 || n == NGTCP2_ERR_STREAM_NOT_FOUND
                     || n == NGTCP2_ERR_STREAM_SHUT_WR))
        g_array_remove_index (conn->finished, 0);
      if (n < 0)
        {
          if (n == NGTCP2_ERR_WRITE_MORE)
            {
              quic_message_advance (conn, msg, datalen);
              continue;
            }
          if (answer && (n == NGTCP2_ERR_STREAM_NOT_FOUND || n == NGTCP2_ERR_STREAM_SHUT_WR))
            continue;
          if (msg != NULL
              && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR))
            {
              msg->blocked = TRUE;
              continue;
            }
          quic_conn_fail_liberr (conn, (int) n);
          return FALSE;
        }
      quic_message_advance (conn, msg, datalen);
      if (n == 0)
        break;

      /* Datagrams of a GSO batch all have the first one's size, but the
       * last may be shorter; and they all go to one address. */
      if (quic_conn_path_changed (conn, &ps.path))
        {
          if (nsegments > 0 && !quic_conn_send_datagrams (conn, buf, off, segment))
            {
              /* Those were for the old address: let them go as lost. */
              g_clear_pointer (&conn->unsent, g_free);
            }
          quic_conn_follow_path (conn, &ps.path);
          if (nsegments > 0)
            {
              memmove (buf, buf + off, (gsize) n);
              off = 0;
              nsegments = 0;
            }
        }
      else if (nsegments > 0 && (gsize) n > segment)
        {
          if (!quic_conn_send_datagrams (conn, buf, off, segment))
            {
              /* This packet must not be lost either: keep it after them. */
              guint8 *both = g_malloc (conn->unsent_len + (gsize) n);
              memcpy (both, conn->unsent, conn->unsent_len);
              memcpy (both + conn->unsent_len, buf + off, (gsize) n);
              g_free (conn->unsent);
              conn->unsent = both;
              conn->unsent_len += (gsize) n;
              conn->unsent_segment = segment;
              break;
            }
          memmove (buf, buf + off, (gsize) n);
          off = 0;
          nsegments = 0;
        }
      if (nsegments == 0)
        segment = (gsize) n;
      off += (gsize) n;
      nsegments++;
      if (nsegments < max_segments && (gsize) n == segment)
        continue;
      if (!quic_conn_send_datagrams (conn, buf, off, segment))
        {
          off = nsegments = 0;
          break;
        }
      off = nsegments = 0;
      if (++batches == QUIC_WRITE_BATCHES)
        {
          /* Let other connections have their turn; carry on next turn. */
          quic_conn_kick (conn);
          break;
        }
    }
  if (nsegments > 0)
    quic_conn_send_datagrams (conn, buf, off, segment);
  ngtcp2_conn_update_pkt_tx_time (conn->quic, ts);
  if (conn->unsent != NULL)
    quic_conn_wait_writable (conn);
  if (conn->pending_error != NULL)
    {
      quic_conn_fail (conn, g_steal_pointer (&conn->pending_error));
      return FALSE;
    }
  return TRUE;
}
