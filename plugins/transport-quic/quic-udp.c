/* QUIC's UDP I/O: datagrams out in GSO batches and in through GRO, from the
 * right local address on a wildcard socket, routed to their connection. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include "plugins/transport-quic/quic-private.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static void quic_socket_update_watch (QuicSocket *socket);

/* --- sending ---------------------------------------------------------------------- */

/* Fills @cmsg with one control message. Returns: where the next one goes,
 * %NULL when @msg's control buffer is full. */
static struct cmsghdr *
quic_cmsg_put (struct msghdr *msg, struct cmsghdr *cmsg, int level, int type, const void *data,
               gsize len)
{
  cmsg->cmsg_level = level;
  cmsg->cmsg_type = type;
  cmsg->cmsg_len = CMSG_LEN (len);
  memcpy (CMSG_DATA (cmsg), data, len);
  return CMSG_NXTHDR (msg, cmsg);
}

/* One sendmsg(): a datagram, or with @segment not 0 a GSO batch the
 * kernel cuts into datagrams of that size. Returns: 0 or an errno. */
static int
quic_conn_sendmsg (QuicConnection *conn, const guint8 *data, gsize len, gsize segment)
{
  struct iovec iov = { (void *) data, len };
  union {
    char buf[CMSG_SPACE (sizeof (guint16)) + CMSG_SPACE (sizeof (struct in6_pktinfo))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;

  memset (&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsg = CMSG_FIRSTHDR (&msg);
  if (!conn->base.is_client)
    {
      msg.msg_name = &conn->remote;
      msg.msg_namelen = conn->remote_len;
    }
  if (segment != 0)
    {
      guint16 size = (guint16) segment;
      cmsg = quic_cmsg_put (&msg, cmsg, SOL_UDP, UDP_SEGMENT, &size, sizeof size);
    }
  /* From the address the peer wrote to, which a wildcard socket would
   * otherwise leave to the routing table. */
  if (conn->socket->pktinfo && conn->local.sa.sa_family == AF_INET6)
    {
      struct in6_pktinfo info = { .ipi6_addr = conn->local.in6.sin6_addr };
      cmsg = quic_cmsg_put (&msg, cmsg, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof info);
    }
  else if (conn->socket->pktinfo && conn->local.sa.sa_family == AF_INET)
    {
      struct in_pktinfo info = { .ipi_spec_dst = conn->local.in.sin_addr };
      cmsg = quic_cmsg_put (&msg, cmsg, IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
    }
  msg.msg_controllen = cmsg != NULL ? (size_t) ((char *) cmsg - control.buf) : sizeof control.buf;
  if (msg.msg_controllen == 0)
    msg.msg_control = NULL;
  while (sendmsg (conn->socket->fd, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return errno;
  return 0;
}

/* Hands datagrams (all @segment bytes long but the last) to the kernel,
 * in one GSO call where it can. Returns: FALSE when the socket has no
 * room; what did not go waits in @conn->unsent. Other errors are losses
 * QUIC recovers from, except a refusal, which ends a handshake. */
gboolean
quic_conn_send_datagrams (QuicConnection *conn, const guint8 *data, gsize len, gsize segment)
{
  QuicTransport *transport = conn->transport;
  gsize off = 0;

  while (off < len)
    {
      gboolean batch = transport->gso && len - off > segment;
      gsize chunk = batch ? len - off : MIN (segment, len - off);
      int err = quic_conn_sendmsg (conn, data + off, chunk, batch ? segment : 0);

      if (err == EAGAIN || err == EWOULDBLOCK)
        {
          guint8 *rest = g_memdup2 (data + off, len - off);
          g_free (conn->unsent);
          conn->unsent = rest;
          conn->unsent_len = len - off;
          conn->unsent_segment = segment;
          return FALSE;
        }
      if (batch && (err == EIO || err == EINVAL))
        {
          /* The kernel or the device cannot segment: stop asking. */
          g_debug ("UDP segmentation offload unavailable (%s); sending datagrams one by one",
                   g_strerror (err));
          transport->gso = FALSE;
          continue;
        }
      if (err == ECONNREFUSED && conn->base.state == CANOPY_TRANSPORT_COMMON_HANDSHAKE
          && conn->pending_error == NULL)
        conn->pending_error = canopy_transport_common_refused_error (&conn->base);
      off += chunk;
    }
  return TRUE;
}

/* Hands datagrams the kernel refused earlier to it again.
 * Returns: TRUE when none are left. */
gboolean
quic_conn_flush_unsent (QuicConnection *conn)
{
  g_autofree guint8 *data = g_steal_pointer (&conn->unsent);
  if (data == NULL)
    return TRUE;
  return quic_conn_send_datagrams (conn, data, conn->unsent_len, conn->unsent_segment);
}

void
quic_conn_wait_writable (QuicConnection *conn)
{
  QuicSocket *socket = conn->socket;
  if (g_queue_find (&socket->blocked, conn) == NULL)
    g_queue_push_tail (&socket->blocked, canopy_transport_common_conn_ref (conn));
  quic_socket_update_watch (socket);
}

/* --- receiving -------------------------------------------------------------------- */

static void
quic_conn_mark_dirty (QuicConnection *conn)
{
  GPtrArray *dirty = conn->transport->dirty;
  for (guint i = 0; i < dirty->len; i++)
    if (dirty->pdata[i] == conn)
      return;
  g_ptr_array_add (dirty, canopy_transport_common_conn_ref (conn));
}

/* @from is where the datagram came from: for a server connection it may
 * differ from the peer's address so far when a NAT rebinds the client's
 * port; ngtcp2 then validates the new path and moves the connection. */
static void
quic_conn_read (QuicConnection *conn, const guint8 *data, gsize len, const struct sockaddr *from,
                socklen_t from_len)
{
  ngtcp2_path path;
  ngtcp2_pkt_info pi = { 0 };
  int rv;

  if (conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD)
    return;
  quic_conn_get_path (conn, &path);
  if (!conn->base.is_client)
    {
      path.remote.addr = (ngtcp2_sockaddr *) from;
      path.remote.addrlen = (ngtcp2_socklen) from_len;
    }
  rv = ngtcp2_conn_read_pkt (conn->quic, &path, &pi, data, len, quic_now ());
  if (rv != 0)
    {
      quic_conn_fail_liberr (conn, rv);
      return;
    }
  quic_conn_mark_dirty (conn);
}

/* A listener's datagram: to the connection its destination ID names, or
 * a new connection if it is a client's first Initial; anything else is
 * dropped without a word (garbage costs no state). */
static void
quic_listener_dispatch (QuicSocket *socket, const guint8 *data, gsize len,
                        const struct sockaddr *from, socklen_t from_len,
                        const ngtcp2_sockaddr_union *local)
{
  QuicTransport *transport = socket->transport;
  ngtcp2_version_cid vc;
  ngtcp2_pkt_hd hd;
  ngtcp2_cid dcid;
  QuicConnection *conn;

  if (ngtcp2_pkt_decode_version_cid (&vc, data, len, QUIC_CID_LEN) != 0
      || vc.dcidlen > NGTCP2_MAX_CIDLEN)
    return;
  ngtcp2_cid_init (&dcid, vc.dcid, vc.dcidlen);
  conn = g_hash_table_lookup (transport->cids, &dcid);
  if (conn != NULL)
    {
      quic_conn_read (conn, data, len, from, from_len);
      return;
    }
  if (ngtcp2_accept (&hd, data, len) != 0)
    return;
  conn = quic_conn_accept (socket, &hd, from, from_len, local, socket->local_len);
  if (conn != NULL)
    quic_conn_read (conn, data, len, from, from_len);
}

static void
quic_socket_dispatch (QuicSocket *socket, const guint8 *data, gsize len,
                      const struct sockaddr *from, socklen_t from_len,
                      const ngtcp2_sockaddr_union *local)
{
  if (socket->conn != NULL)
    quic_conn_read (socket->conn, data, len, from, from_len);
  else
    quic_listener_dispatch (socket, data, len, from, from_len, local);
}

static void
quic_transport_process_dirty (QuicTransport *transport)
{
  while (transport->dirty->len > 0)
    {
      g_autoptr (GPtrArray) dirty = g_steal_pointer (&transport->dirty);
      transport->dirty = g_ptr_array_new_with_free_func (canopy_transport_common_conn_unref);
      for (guint i = 0; i < dirty->len; i++)
        {
          QuicConnection *conn = dirty->pdata[i];
          if (conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD)
            quic_conn_process (conn);
        }
    }
}

/* What the kernel said about a datagram: the size of the datagrams GRO
 * joined, and for a wildcard socket the address it was sent to. */
static void
quic_socket_parse_cmsg (QuicSocket *socket, struct cmsghdr *cmsg, gsize *segment,
                        ngtcp2_sockaddr_union *local)
{
  if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO)
    {
      int size;
      memcpy (&size, CMSG_DATA (cmsg), sizeof size);
      if (size > 0)
        *segment = (gsize) size;
    }
  else if (socket->pktinfo && cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO)
    {
      struct in6_pktinfo info;
      memcpy (&info, CMSG_DATA (cmsg), sizeof info);
      local->in6.sin6_addr = info.ipi6_addr;
    }
  else if (socket->pktinfo && cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO)
    {
      struct in_pktinfo info;
      memcpy (&info, CMSG_DATA (cmsg), sizeof info);
      local->in.sin_addr = info.ipi_addr;
    }
}

/* Reads a bounded batch of datagrams (coalesced by GRO when the kernel
 * can), then lets each connection that received some act and answer once. */
static void
quic_socket_receive (QuicSocket *socket)
{
  QuicTransport *transport = socket->transport;

  for (int i = 0; i < QUIC_READ_BATCH; i++)
    {
      ngtcp2_sockaddr_union from;
      struct iovec iov = { transport->rx_buffer, QUIC_RX_BUFFER_SIZE };
      union {
        char buf[CMSG_SPACE (sizeof (int)) + CMSG_SPACE (sizeof (struct in6_pktinfo))];
        struct cmsghdr align;
      } control;
      ngtcp2_sockaddr_union local = socket->local;
      struct msghdr msg = { 0 };
      struct cmsghdr *cmsg;
      gsize segment;
      ssize_t n;

      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      n = recvmsg (socket->fd, &msg, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == ECONNREFUSED && socket->conn != NULL
              && socket->conn->base.state == CANOPY_TRANSPORT_COMMON_HANDSHAKE)
            {
              QuicConnection *conn = socket->conn;
              quic_conn_fail_full (conn, canopy_transport_common_refused_error (&conn->base),
                                   NULL);
            }
          break;
        }
      segment = (gsize) n;
      for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
        quic_socket_parse_cmsg (socket, cmsg, &segment, &local);
      for (gsize off = 0; off < (gsize) n; off += segment)
        quic_socket_dispatch (socket, transport->rx_buffer + off, MIN (segment, (gsize) n - off),
                              (struct sockaddr *) &from, msg.msg_namelen, &local);
      /* A client socket's connection may have ended meanwhile. */
      if (socket->conn != NULL && socket->conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD)
        break;
    }
}

static void
quic_socket_on_writable (QuicSocket *socket)
{
  while (socket->blocked.length > 0)
    {
      QuicConnection *conn = g_queue_peek_head (&socket->blocked);
      if (!quic_conn_flush_unsent (conn))
        return;
      g_queue_pop_head (&socket->blocked);
      quic_conn_mark_dirty (conn);
      canopy_transport_common_conn_unref (conn);
    }
}

static gboolean
quic_socket_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  QuicSocket *socket = user_data;
  QuicTransport *transport = socket->transport;
  QuicConnection *owner = socket->conn != NULL ? canopy_transport_common_conn_ref (socket->conn) : NULL;

  (void) fd;
  if (condition & G_IO_OUT)
    quic_socket_on_writable (socket);
  if (condition & (G_IO_IN | G_IO_ERR | G_IO_HUP))
    {
      if (owner == NULL || owner->base.state != CANOPY_TRANSPORT_COMMON_DEAD)
        quic_socket_receive (socket);
    }
  if (owner == NULL || owner->base.state != CANOPY_TRANSPORT_COMMON_DEAD)
    quic_socket_update_watch (socket);
  quic_transport_process_dirty (transport);
  if (owner != NULL)
    canopy_transport_common_conn_unref (owner);
  return G_SOURCE_CONTINUE;
}

/* --- sockets ------------------------------------------------------------------------ */

static void
quic_socket_update_watch (QuicSocket *socket)
{
  GIOCondition want = G_IO_IN | (socket->blocked.length > 0 ? G_IO_OUT : 0);
  if (socket->watching != 0 && want != socket->watching
      && canopy_watch_set_modify (socket->transport->base.watches, socket->fd, want, NULL))
    socket->watching = want;
}

void
quic_socket_free (QuicSocket *socket)
{
  if (socket == NULL)
    return;
  while (socket->blocked.length > 0)
    canopy_transport_common_conn_unref (g_queue_pop_head (&socket->blocked));
  if (socket->watching != 0)
    canopy_watch_set_remove (socket->transport->base.watches, socket->fd);
  g_socket_close (socket->socket, NULL);
  g_object_unref (socket->socket);
  g_free (socket);
}

static void
quic_socket_tune (QuicTransport *transport, int fd)
{
  int size = (int) MIN (transport->socket_buffer, (gsize) G_MAXINT);
  int one = 1;

  /* Bulk transfers need more than the default buffers; the *FORCE
   * variants pass the system maximum when the service may. */
  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (transport->gso)
    setsockopt (fd, SOL_UDP, UDP_GRO, &one, sizeof one);
}

QuicSocket *
quic_socket_new (QuicTransport *transport, GInetAddress *inet, GError **error)
{
  GSocket *gsocket = canopy_transport_common_socket_new (inet, G_SOCKET_TYPE_DATAGRAM,
                                                         G_SOCKET_PROTOCOL_UDP, error);
  QuicSocket *socket;

  if (gsocket == NULL)
    return NULL;
  socket = g_new0 (QuicSocket, 1);
  socket->transport = transport;
  socket->fd = g_socket_get_fd (gsocket);
  socket->socket = gsocket;
  g_queue_init (&socket->blocked);
  quic_socket_tune (transport, socket->fd);
  return socket;
}

gboolean
quic_socket_watch (QuicSocket *socket, GError **error)
{
  if (!canopy_watch_set_add (socket->transport->base.watches, socket->fd, G_IO_IN,
                             quic_socket_on_ready, socket, NULL, error))
    return FALSE;
  socket->watching = G_IO_IN;
  return TRUE;
}

void
quic_socket_learn_local (QuicSocket *socket)
{
  socklen_t len = sizeof socket->local;
  if (getsockname (socket->fd, (struct sockaddr *) &socket->local, &len) == 0)
    socket->local_len = (ngtcp2_socklen) len;
}
