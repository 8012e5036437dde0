/* Office peers: the agent-to-agent half of the wire protocol. Chunks are
 * read and checked in worker threads and served from reused buffers, so
 * the main loop never waits on the disk; everything a peer sends is
 * checked against the manifest before it reaches a fetcher. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-peers"

#include "agent/peers.h"
#include "lib/i18n.h"
#include "lib/wire.h"

#include <string.h>

/* How long a peer waits when every upload slot is taken. */
#define BUSY_RETRY_S 1
/* Chunks that cannot be served are logged at most this often: a failing
 * disk fails every chunk it holds. */
#define READ_ERROR_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)
/* Read buffers kept for reuse once their chunk was sent: about one send
 * queue's worth, beyond which they are freed. */
#define POOL_MAX_IDLE_BYTES ((gsize) 8 * 1024 * 1024)
/* A content's bitfield goes to the peers at once, then at most this often
 * while chunks keep coming, and at once again when it is complete: a
 * bitfield per chunk to every peer of the office was a message, a wake-up
 * and a scheduling pass on each of them per chunk, more than the chunk's
 * own transfer cost a follower. A lead's chunks come at the WAN's pace,
 * and its office catches up over the LAN: news of them later by this much
 * delays nobody's last chunk. */
#define ANNOUNCE_INTERVAL_MS 100

typedef struct {
  char *content_id;
  guint index;
  gboolean by_hash; /* a chunk-request: @hash names the chunk, in any content */
  guint8 hash[CANOPY_WIRE_HASH_SIZE];
} Pending;

/* What a peer that does not hold a content holds of it in other
 * contents, by chunk hash: the answers to this agent's chunk-queries. */
typedef struct {
  guint8 *bits;     /* bitfield over the content's chunks */
  gsize size;
  guint n_chunks;
  guint unanswered; /* queries sent and not answered yet */
} HashHave;

/* Buffers chunks are read into. One goes back to its pool when the
 * transport has sent the chunk (the payload is freed), so serving
 * allocates nothing per chunk once it runs. An atomic reference-counted
 * box: a buffer out of the pool holds it, since a payload may still be
 * queued, or be freed on another thread, after the peers are gone. */
typedef struct {
  GMutex lock;
  GPtrArray *idle; /* ReadBuffer */
  gsize idle_bytes;
} BufferPool;

typedef struct {
  BufferPool *pool; /* a reference while out of the pool, else NULL */
  gsize capacity;
  guint8 *data;
} ReadBuffer;

typedef struct _ReadJob ReadJob;

/* Main-loop only. Reference-counted: a read in flight holds it, so a
 * connection closed meanwhile is only marked closed until it finishes. */
typedef struct {
  gint ref_count;
  CanopyPeers *peers; /* freed first when the read's task is cancelled */
  CanopyTransportConnection *conn; /* NULL once closed */
  gboolean closed;
  char *device_id;
  char *host; /* NULL for incoming connections */
  guint16 port;
  gboolean ready;   /* the peer's hello arrived */
  gboolean by_hash; /* it answers chunk-query and chunk-request */
  GHashTable *have; /* content ID → GBytes bitfield the peer sent */
  GHashTable *hash_have; /* content ID → HashHave, for content it did not name */
  GHashTable *told; /* content ID → GBytes bitfield this agent last sent it */
  GQueue pending;   /* Pending requests not read yet, in the order they came */
  ReadJob *reading; /* the request a worker reads now, one at a time */
  Pending *read_request; /* a chunk read and checked, waiting for the send queue */
  GBytes *read_payload;
} PeerConn;

/* One chunk a worker reads for @pc. */
struct _ReadJob {
  PeerConn *pc; /* a reference */
  CanopyCacheEntry *entry; /* a reference */
  char *content_id; /* what the requester asked for, which labels the answer */
  guint index;
  guint read_index; /* the chunk's index in @entry: @index unless asked by hash */
  gsize length;
  ReadBuffer *buffer;
  gboolean cancelled; /* the peer cancelled its request meanwhile */
};

/* A chunk verified moments ago, kept to serve from memory. */
typedef struct {
  char *content_id;
  guint index;
  GBytes *data;
  gint64 kept_at; /* monotonic */
} RecentChunk;

/* Most of an office asks for each chunk within seconds of its arrival:
 * served from memory, it costs no read from disk, no second SHA-256 and
 * no worker thread. This bounds the memory, oldest dropped first (about
 * three seconds of a 100 Mbit/s link), and how long an agent that has
 * finished holds it. */
#define RECENT_BYTES (32 * 1024 * 1024)
#define RECENT_MAX_AGE_S 20

typedef struct {
  const CanopyPeersClient *client;
  gpointer user_data;
} Client;

typedef struct {
  CanopyPeers *peers;
  char *device_id;
  char *host;
  guint16 port;
} Connecting;

struct _CanopyPeers {
  CanopyTransport *transport;
  CanopyCache *cache;
  char *device_id;
  guint upload_slots;
  GPtrArray *conns;       /* PeerConn */
  GHashTable *clients;    /* content ID → Client */
  GHashTable *connecting; /* device ID or "host:port" → TRUE */
  GCancellable *cancellable;
  guint64 uploaded;
  BufferPool *pool;
  gboolean read_error_logged; /* once: when is read_error_logged_at */
  gint64 read_error_logged_at;
  guint read_errors_unlogged;
  char *server_host; /* where sources with no host are: the server */
  guint16 server_port;
  GQueue recent; /* RecentChunk, oldest first */
  gsize recent_bytes;
  guint recent_timer;
  GHashTable *announce_due; /* content IDs to announce when announce_timer fires */
  guint announce_timer;
};

static void
pending_free (Pending *pending)
{
  g_free (pending->content_id);
  g_free (pending);
}

static Pending *
pending_new (const char *content_id, guint index)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->content_id = g_strdup (content_id);
  pending->index = index;
  return pending;
}

static void
recent_chunk_free (RecentChunk *recent)
{
  g_free (recent->content_id);
  g_bytes_unref (recent->data);
  g_free (recent);
}

static GBytes *
find_recent (CanopyPeers *peers, const char *content_id, guint index)
{
  for (GList *l = peers->recent.tail; l != NULL; l = l->prev)
    {
      RecentChunk *recent = l->data;

      if (recent->index == index && g_str_equal (recent->content_id, content_id))
        return recent->data;
    }
  return NULL;
}

static void
hash_have_free (HashHave *hh)
{
  g_free (hh->bits);
  g_free (hh);
}

static void
buffer_pool_clear (BufferPool *pool)
{
  g_ptr_array_unref (pool->idle);
  g_mutex_clear (&pool->lock);
}

static void
read_buffer_free (ReadBuffer *buffer)
{
  g_free (buffer->data);
  g_free (buffer);
}

static BufferPool *
buffer_pool_new (void)
{
  BufferPool *pool = g_atomic_rc_box_new0 (BufferPool);

  g_mutex_init (&pool->lock);
  pool->idle = g_ptr_array_new_with_free_func ((GDestroyNotify) read_buffer_free);
  return pool;
}

static void
buffer_pool_unref (BufferPool *pool)
{
  g_atomic_rc_box_release_full (pool, (GDestroyNotify) buffer_pool_clear);
}

/* A buffer of at least @size bytes: an idle one if it fits, else a new one. */
static ReadBuffer *
buffer_pool_take (BufferPool *pool, gsize size)
{
  ReadBuffer *buffer = NULL;

  g_mutex_lock (&pool->lock);
  for (guint i = pool->idle->len; i > 0; i--)
    {
      ReadBuffer *idle = g_ptr_array_index (pool->idle, i - 1);

      if (idle->capacity >= size)
        {
          buffer = g_ptr_array_steal_index_fast (pool->idle, i - 1);
          pool->idle_bytes -= buffer->capacity;
          break;
        }
    }
  g_mutex_unlock (&pool->lock);
  if (buffer == NULL)
    {
      buffer = g_new0 (ReadBuffer, 1);
      buffer->capacity = size;
      buffer->data = g_malloc (size);
    }
  buffer->pool = g_atomic_rc_box_acquire (pool);
  return buffer;
}

/* Puts @buffer back in its pool, or frees it when the pool holds enough;
 * a payload's free function, so on whatever thread freed it. */
static void
read_buffer_release (ReadBuffer *buffer)
{
  BufferPool *pool = g_steal_pointer (&buffer->pool);

  g_mutex_lock (&pool->lock);
  if (pool->idle_bytes + buffer->capacity <= POOL_MAX_IDLE_BYTES)
    {
      pool->idle_bytes += buffer->capacity;
      g_ptr_array_add (pool->idle, g_steal_pointer (&buffer));
    }
  g_mutex_unlock (&pool->lock);
  if (buffer != NULL)
    read_buffer_free (buffer);
  buffer_pool_unref (pool);
}

static PeerConn *
peer_conn_ref (PeerConn *pc)
{
  pc->ref_count++;
  return pc;
}

static void
peer_conn_unref (PeerConn *pc)
{
  if (--pc->ref_count > 0)
    return;
  g_queue_clear_full (&pc->pending, (GDestroyNotify) pending_free);
  g_clear_pointer (&pc->read_request, pending_free);
  g_clear_pointer (&pc->read_payload, g_bytes_unref);
  g_hash_table_unref (pc->have);
  g_hash_table_unref (pc->hash_have);
  g_hash_table_unref (pc->told);
  g_free (pc->device_id);
  g_free (pc->host);
  g_free (pc);
}

/* The connection table's free function: the connection is gone (the
 * transport freed it), though a read in flight may still hold @pc. */
static void
peer_conn_close (PeerConn *pc)
{
  pc->closed = TRUE;
  pc->conn = NULL;
  g_queue_clear_full (&pc->pending, (GDestroyNotify) pending_free);
  g_clear_pointer (&pc->read_request, pending_free);
  g_clear_pointer (&pc->read_payload, g_bytes_unref);
  peer_conn_unref (pc);
}

static void
read_job_free (ReadJob *job)
{
  peer_conn_unref (job->pc);
  canopy_cache_entry_unref (job->entry);
  if (job->buffer != NULL)
    read_buffer_release (job->buffer);
  g_free (job->content_id);
  g_free (job);
}

static void
connecting_free (Connecting *c)
{
  g_free (c->device_id);
  g_free (c->host);
  g_free (c);
}

static char *
connecting_key (const char *device_id, const char *host, guint16 port)
{
  return device_id[0] != '\0' ? g_strdup (device_id) : g_strdup_printf ("%s:%u", host, port);
}

static gboolean
send_body (PeerConn *pc, CanopyWireKind kind, GVariant *body, GBytes *payload, GError **error)
{
  return canopy_wire_send (pc->conn, kind, body, payload, error);
}

static void
send_quietly (PeerConn *pc, CanopyWireKind kind, GVariant *body)
{
  g_autoptr (GError) error = NULL;

  if (!send_body (pc, kind, body, NULL, &error))
    g_debug ("cannot send %s to %s: %s", canopy_wire_kind_to_string (kind), pc->device_id,
             error->message);
}

static PeerConn *
find_conn (CanopyPeers *peers, const char *device_id)
{
  for (guint i = 0; i < peers->conns->len; i++)
    {
      PeerConn *pc = g_ptr_array_index (peers->conns, i);
      if (pc->ready && g_str_equal (pc->device_id, device_id))
        return pc;
    }
  return NULL;
}

static const Client *
find_client (CanopyPeers *peers, const char *content_id)
{
  return g_hash_table_lookup (peers->clients, content_id);
}

static void notify_gone (CanopyPeers *peers, const char *device_id, const char *host,
                         guint16 port);

/* Forgets @pc, telling the fetchers when it was the last way to its peer. */
static void
remove_conn (PeerConn *pc)
{
  CanopyPeers *peers = pc->peers;
  g_autofree char *device_id = g_strdup (pc->device_id);
  g_autofree char *host = g_strdup (pc->host);
  guint16 port = pc->port;
  gboolean was_ready = pc->ready;

  g_ptr_array_remove (peers->conns, pc);
  if (was_ready && find_conn (peers, device_id) == NULL)
    notify_gone (peers, device_id, host, port);
}

static void
drop_conn (PeerConn *pc)
{
  canopy_transport_close (pc->conn);
  remove_conn (pc);
}

static void
send_have_bits (PeerConn *pc, const CanopyManifest *m, GBytes *bits)
{
  g_hash_table_replace (pc->told, g_strdup (m->content_id), g_bytes_ref (bits));
  send_quietly (pc, CANOPY_WIRE_HAVE,
                g_variant_new ("(s@ay)", m->content_id,
                               g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bits, TRUE)));
}

static void
send_have (PeerConn *pc, CanopyCacheEntry *entry)
{
  g_autoptr (GBytes) bits = canopy_cache_entry_get_bitfield (entry);

  send_have_bits (pc, canopy_cache_entry_get_manifest (entry), bits);
}

/* Whether @bits, this agent's bitfield of @content_id, is news to @pc: a
 * chunk it lacks (as its own have says) and was not told of, or one it
 * was told of that is gone since. Chunks it holds itself it never asks
 * for, so telling it of them costs it a wake-up for nothing. */
static gboolean
is_news (PeerConn *pc, const char *content_id, GBytes *bits)
{
  GBytes *told = g_hash_table_lookup (pc->told, content_id);
  GBytes *theirs = g_hash_table_lookup (pc->have, content_id);
  gsize size;
  const guint8 *ours = g_bytes_get_data (bits, &size);
  const guint8 *was, *has = NULL;

  if (told == NULL || g_bytes_get_size (told) != size)
    return TRUE;
  was = g_bytes_get_data (told, NULL);
  if (theirs != NULL && g_bytes_get_size (theirs) == size)
    has = g_bytes_get_data (theirs, NULL);
  for (gsize i = 0; i < size; i++)
    if ((ours[i] & ~was[i] & ~(has != NULL ? has[i] : 0)) != 0 || (was[i] & ~ours[i]) != 0)
      return TRUE;
  return FALSE;
}

static void
send_hello (PeerConn *pc)
{
  g_autoptr (GPtrArray) entries = canopy_cache_get_entries (pc->peers->cache);
  GVariantBuilder ids;

  g_variant_builder_init (&ids, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 0; i < entries->len; i++)
    g_variant_builder_add (&ids, "s",
                           canopy_cache_entry_get_manifest (entries->pdata[i])->content_id);
  /* Not a content: agents that do not know it look it up and find none. */
  g_variant_builder_add (&ids, "s", CANOPY_WIRE_FEATURE_CHUNKS_BY_HASH);
  send_quietly (pc, CANOPY_WIRE_PEER_HELLO, g_variant_new ("(sas)", pc->peers->device_id, &ids));
}

/* Whether @pc is being sent chunks now: bytes still queued, or a chunk
 * being read or waiting for the queue. */
static gboolean
is_fed (PeerConn *pc)
{
  return pc->reading != NULL || pc->read_payload != NULL
         || canopy_transport_connection_get_queued_bytes (pc->conn) > 0;
}

static guint
busy_slots (CanopyPeers *peers, PeerConn *except)
{
  guint used = 0;

  for (guint i = 0; i < peers->conns->len; i++)
    {
      PeerConn *pc = g_ptr_array_index (peers->conns, i);
      if (pc != except && is_fed (pc))
        used++;
    }
  return used;
}

/* Sends the chunk read last. Returns FALSE when the send queue is full
 * and it must wait for the queue to drain. */
static gboolean
send_read_chunk (PeerConn *pc)
{
  g_autoptr (GError) error = NULL;
  Pending *request = pc->read_request;

  if (send_body (pc, CANOPY_WIRE_DATA, g_variant_new ("(su)", request->content_id, request->index),
                 pc->read_payload, &error))
    pc->peers->uploaded += g_bytes_get_size (pc->read_payload);
  else if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL))
    return FALSE;
  else
    g_debug ("cannot send chunk %u to %s: %s", request->index, pc->device_id, error->message);
  g_clear_pointer (&pc->read_request, pending_free);
  g_clear_pointer (&pc->read_payload, g_bytes_unref);
  return TRUE;
}

/* Says how many read errors the rate limit kept out of the log. */
static void
log_unlogged_read_errors (CanopyPeers *peers)
{
  if (peers->read_errors_unlogged == 0)
    return;
  g_message (g_dngettext (GETTEXT_PACKAGE,
                          "%u more chunk could not be served to office peers since the last "
                          "message about it",
                          "%u more chunks could not be served to office peers since the last "
                          "message about them",
                          peers->read_errors_unlogged),
             peers->read_errors_unlogged);
  peers->read_errors_unlogged = 0;
}

/* An error other than a chunk not held: every peer learns a chunk
 * dropped is no longer held, and the admin hears of it, at most once in
 * READ_ERROR_LOG_INTERVAL_US. Also when the asking peer left meanwhile:
 * the disk failed all the same. */
static void
report_read_error (CanopyPeers *peers, PeerConn *pc, ReadJob *job, const GError *error)
{
  gint64 now = g_get_monotonic_time ();
  /* Asked by hash, the chunk was read from another content than the one
   * the peer named: that content is the one to announce again. */
  const char *held_in = canopy_cache_entry_get_manifest (job->entry)->content_id;

  if (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING))
    return;
  if (!canopy_cache_entry_has_chunk (job->entry, job->read_index))
    canopy_peers_announce (peers, held_in);
  if (peers->read_error_logged
      && now - peers->read_error_logged_at < READ_ERROR_LOG_INTERVAL_US)
    {
      peers->read_errors_unlogged++;
      return;
    }
  log_unlogged_read_errors (peers);
  g_message (_("Cannot serve chunk %u of content %s to office peer %s: %s"), job->read_index,
             held_in, pc->device_id, error->message);
  peers->read_error_logged = TRUE;
  peers->read_error_logged_at = now;
}

static void
read_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  ReadJob *job = task_data;
  GError *error = NULL;

  if (canopy_cache_entry_read_verified_chunk (job->entry, job->read_index, job->buffer->data,
                                              &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void pump (PeerConn *pc);

static void
on_chunk_read (GObject *object, GAsyncResult *result, gpointer user_data)
{
  GTask *task = G_TASK (result);
  ReadJob *job = g_task_get_task_data (task);
  PeerConn *pc = job->pc;
  g_autoptr (GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (task, &error);

  /* The peers were freed while the worker read: the agent is stopping. */
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    return;
  pc->reading = NULL;
  if (!ok)
    report_read_error (pc->peers, pc, job, error);
  /* The connection closed meanwhile: there is no one left to answer. */
  if (pc->closed)
    return;
  if (job->cancelled)
    ; /* the peer no longer wants it */
  else if (ok)
    {
      pc->read_request = pending_new (job->content_id, job->index);
      pc->read_payload = g_bytes_new_with_free_func (job->buffer->data, job->length,
                                                     (GDestroyNotify) read_buffer_release,
                                                     job->buffer);
      job->buffer = NULL;
    }
  else
    /* Not held after all, or dropped: the peer asks elsewhere. */
    send_quietly (pc, CANOPY_WIRE_CANCEL, g_variant_new ("(su)", job->content_id, job->index));
  pump (pc);
}

/* Starts reading @request in a worker, or answers at once that the chunk
 * is not held. */
static void
start_read (PeerConn *pc, Pending *request)
{
  g_autoptr (CanopyCacheEntry) entry = NULL;
  guint read_index = request->index;
  const CanopyManifest *manifest;
  g_autoptr (GTask) task = NULL;
  GBytes *recent;
  ReadJob *job;

  /* By hash, from whichever content holds it: the worker checks it
   * against that content's manifest, so the hash is the one asked for. */
  if (request->by_hash)
    entry = canopy_cache_find_chunk (pc->peers->cache, request->hash, &read_index);
  else if ((entry = canopy_cache_lookup_entry (pc->peers->cache, request->content_id)) != NULL)
    canopy_cache_entry_ref (entry);
  if (entry == NULL || !canopy_cache_entry_has_chunk (entry, read_index))
    {
      send_quietly (pc, CANOPY_WIRE_CANCEL,
                    g_variant_new ("(su)", request->content_id, request->index));
      return;
    }
  manifest = canopy_cache_entry_get_manifest (entry);
  if ((recent = find_recent (pc->peers, manifest->content_id, read_index)) != NULL)
    {
      pc->read_request = pending_new (request->content_id, request->index);
      pc->read_payload = g_bytes_ref (recent);
      return;
    }
  job = g_new0 (ReadJob, 1);
  job->pc = peer_conn_ref (pc);
  job->entry = canopy_cache_entry_ref (entry);
  job->content_id = g_strdup (request->content_id);
  job->index = request->index;
  job->read_index = read_index;
  job->length = canopy_manifest_get_chunk_length (manifest, read_index);
  /* Whole chunks: the same buffer then serves the content's last one too. */
  job->buffer = buffer_pool_take (pc->peers->pool, MAX (manifest->chunk_size, job->length));
  pc->reading = job;
  task = g_task_new (NULL, pc->peers->cancellable, on_chunk_read, NULL);
  g_task_set_source_tag (task, start_read);
  g_task_set_task_data (task, job, (GDestroyNotify) read_job_free);
  g_task_run_in_thread (task, read_thread);
}

/* Serves @pc's requests in the order they came: one chunk read at a time
 * while the one before is on its way, until the send queue is full. */
static void
pump (PeerConn *pc)
{
  while (!pc->closed && pc->reading == NULL)
    {
      Pending *next;

      if (pc->read_payload != NULL && !send_read_chunk (pc))
        return;
      next = g_queue_pop_head (&pc->pending);
      if (next == NULL)
        return;
      start_read (pc, next);
      pending_free (next);
    }
}

static void
queue_pending (PeerConn *pc, const char *content_id, guint index, const guint8 *hash)
{
  Pending *pending = pending_new (content_id, index);

  if (hash != NULL)
    {
      pending->by_hash = TRUE;
      memcpy (pending->hash, hash, CANOPY_WIRE_HASH_SIZE);
    }
  g_queue_push_tail (&pc->pending, pending);
}

/* @hash: (nullable): a chunk-request's, which names the chunk */
static void
handle_request (PeerConn *pc, const char *content_id, guint index, const guint8 *hash)
{
  /* A peer already being fed keeps its slot; a new one waits for a free one. */
  if (!is_fed (pc) && busy_slots (pc->peers, pc) >= pc->peers->upload_slots)
    {
      send_quietly (pc, CANOPY_WIRE_BUSY, g_variant_new ("(su)", content_id, BUSY_RETRY_S));
      return;
    }
  queue_pending (pc, content_id, index, hash);
  pump (pc);
}

static gboolean
is_request (const char *content_id, guint index, const char *other_id, guint other_index)
{
  return index == other_index && g_str_equal (content_id, other_id);
}

static void
handle_cancel_from_requester (PeerConn *pc, const char *content_id, guint index)
{
  if (pc->reading != NULL && is_request (content_id, index, pc->reading->content_id,
                                         pc->reading->index))
    pc->reading->cancelled = TRUE;
  if (pc->read_request != NULL && is_request (content_id, index, pc->read_request->content_id,
                                              pc->read_request->index))
    {
      g_clear_pointer (&pc->read_request, pending_free);
      g_clear_pointer (&pc->read_payload, g_bytes_unref);
      pump (pc);
      return;
    }
  for (GList *l = pc->pending.head; l != NULL; l = l->next)
    {
      Pending *pending = l->data;
      if (pending->index == index && g_str_equal (pending->content_id, content_id))
        {
          g_queue_delete_link (&pc->pending, l);
          pending_free (pending);
          return;
        }
    }
}

/* --- chunks by hash, across contents --------------------------------------- */

/* Asks @pc which chunks of @content_id it holds in any content, when it
 * answers by hash and has not told of that content itself: a peer that
 * holds an earlier version serves its unchanged chunks, though it was
 * never assigned this one. */
static void
send_chunk_queries (PeerConn *pc, const char *content_id)
{
  CanopyCacheEntry *entry;
  const CanopyManifest *m;
  HashHave *hh;
  guint n;

  if (!pc->by_hash || g_hash_table_contains (pc->have, content_id)
      || g_hash_table_contains (pc->hash_have, content_id))
    return;
  entry = canopy_cache_lookup_entry (pc->peers->cache, content_id);
  if (entry == NULL)
    return;
  m = canopy_cache_entry_get_manifest (entry);
  n = canopy_manifest_get_n_chunks (m);
  if (n == 0)
    return;
  hh = g_new0 (HashHave, 1);
  hh->n_chunks = n;
  hh->size = (n + 7) / 8;
  hh->bits = g_malloc0 (hh->size);
  g_hash_table_replace (pc->hash_have, g_strdup (content_id), hh);
  for (guint first = 0; first < n; first += CANOPY_WIRE_MAX_QUERY_HASHES)
    {
      guint count = MIN (n - first, (guint) CANOPY_WIRE_MAX_QUERY_HASHES);
      GVariantBuilder hashes;

      g_variant_builder_init (&hashes, G_VARIANT_TYPE ("aay"));
      for (guint i = first; i < first + count; i++)
        g_variant_builder_add_value (
          &hashes, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                              canopy_manifest_get_chunk_hash (m, i),
                                              CANOPY_WIRE_HASH_SIZE, 1));
      hh->unanswered++;
      send_quietly (pc, CANOPY_WIRE_CHUNK_QUERY,
                    g_variant_new ("(suaay)", content_id, first, &hashes));
    }
}

/* Tells @content_id's fetcher what @pc holds of it by hash, once every
 * query was answered, unless the peer told of the content itself. */
static void
tell_hash_have (PeerConn *pc, const char *content_id, HashHave *hh)
{
  const Client *client = find_client (pc->peers, content_id);
  g_autoptr (GBytes) bits = NULL;

  if (hh->unanswered > 0 || g_hash_table_contains (pc->have, content_id) || client == NULL)
    return;
  bits = g_bytes_new (hh->bits, hh->size);
  client->client->have (pc->device_id, bits, client->user_data);
}

static void
handle_chunk_have (PeerConn *pc, GVariant *body)
{
  g_autoptr (GVariant) bits = NULL;
  const char *content_id;
  guint32 first;
  HashHave *hh;
  const guint8 *data;
  guint count;

  g_variant_get (body, "(&su@ay)", &content_id, &first, &bits);
  hh = g_hash_table_lookup (pc->hash_have, content_id);
  if (hh == NULL || hh->unanswered == 0)
    {
      g_debug ("office peer %s answered a chunk query for %s this agent did not send",
               pc->device_id, content_id);
      return;
    }
  count = first < hh->n_chunks ? MIN (hh->n_chunks - first, (guint) CANOPY_WIRE_MAX_QUERY_HASHES)
                               : 0;
  if (first % CANOPY_WIRE_MAX_QUERY_HASHES != 0 || count == 0
      || g_variant_get_size (bits) != (count + 7) / 8)
    {
      g_message (_("Office peer %s answered a chunk query for content %s with a chunk list "
                   "that does not match the query; disconnecting it"),
                 pc->device_id, content_id);
      drop_conn (pc);
      return;
    }
  data = g_variant_get_data (bits);
  for (guint i = 0; i < count; i++)
    if ((data[i / 8] & (1u << (i % 8))) != 0)
      hh->bits[(first + i) / 8] |= (guint8) (1u << ((first + i) % 8));
  hh->unanswered--;
  tell_hash_have (pc, content_id, hh);
}

/* Which of the chunks a peer names by hash this agent holds, in any
 * content: it may serve them whatever it was assigned. */
static void
handle_chunk_query (PeerConn *pc, GVariant *body)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) hashes = NULL;
  g_autoptr (GBytes) bits = NULL;
  CanopyCacheEntry *entry;
  const char *content_id;
  guint32 first;

  if (!canopy_wire_read_chunk_query (body, &content_id, &first, &hashes, &error))
    {
      g_message (_("Office peer %s sent a chunk query this agent refuses (%s); disconnecting "
                   "it"), pc->device_id, error->message);
      drop_conn (pc);
      return;
    }
  /* It holds the content itself (opened since its hello): a have says so,
   * and the peer asks for it by index like any peer that holds it. */
  entry = canopy_cache_lookup_entry (pc->peers->cache, content_id);
  if (entry != NULL && !g_hash_table_contains (pc->told, content_id))
    send_have (pc, entry);
  bits = canopy_cache_hold_hashes (pc->peers->cache, hashes);
  send_quietly (pc, CANOPY_WIRE_CHUNK_HAVE,
                g_variant_new ("(su@ay)", content_id, first,
                               g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bits, TRUE)));
}

static void
handle_chunk_request (PeerConn *pc, GVariant *body)
{
  g_autoptr (GError) error = NULL;
  guint8 hash[CANOPY_WIRE_HASH_SIZE];
  const char *content_id;
  guint32 index;

  if (!canopy_wire_read_chunk_request (body, &content_id, &index, hash, &error))
    {
      g_message (_("Office peer %s sent a chunk request this agent refuses (%s); "
                   "disconnecting it"), pc->device_id, error->message);
      drop_conn (pc);
      return;
    }
  handle_request (pc, content_id, index, hash);
}

static void
handle_hello (PeerConn *pc, GVariant *body)
{
  g_autoptr (GVariantIter) ids = NULL;
  const char *claimed, *content_id;
  const Client *client;

  g_variant_get (body, "(&sas)", &claimed, &ids);
  /* The handshake proved who it is; the claim is only checked. */
  if (!g_str_equal (claimed, pc->device_id))
    g_debug ("peer %s says it is %s; using the authenticated ID", pc->device_id, claimed);
  pc->ready = TRUE;
  while (g_variant_iter_next (ids, "&s", &content_id))
    {
      CanopyCacheEntry *entry;

      if (g_str_equal (content_id, CANOPY_WIRE_FEATURE_CHUNKS_BY_HASH))
        {
          pc->by_hash = TRUE;
          continue;
        }
      entry = canopy_cache_lookup_entry (pc->peers->cache, content_id);
      if (entry != NULL)
        send_have (pc, entry);
    }
  {
    GHashTableIter iter;
    gpointer key, value;

    g_hash_table_iter_init (&iter, pc->peers->clients);
    while (g_hash_table_iter_next (&iter, &key, &value))
      if ((client = value)->client->connected != NULL)
        client->client->connected (pc->device_id, pc->host, pc->port, client->user_data);
    /* The haves it sends for what both name come on their own. */
    g_hash_table_iter_init (&iter, pc->peers->clients);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      send_chunk_queries (pc, key);
  }
}

static void
handle_have (PeerConn *pc, const char *content_id, GBytes *bits)
{
  CanopyCacheEntry *entry = canopy_cache_lookup_entry (pc->peers->cache, content_id);
  g_autoptr (GBytes) ours = NULL;
  const Client *client;

  if (entry == NULL)
    return;
  if (g_bytes_get_size (bits)
      != (canopy_manifest_get_n_chunks (canopy_cache_entry_get_manifest (entry)) + 7) / 8)
    {
      g_message (_("Office peer %s sent a chunk list of the wrong length for content %s; "
                   "disconnecting it"), pc->device_id, content_id);
      drop_conn (pc);
      return;
    }
  g_hash_table_replace (pc->have, g_strdup (content_id), g_bytes_ref (bits));
  /* It holds the content itself: what it holds elsewhere by hash no
   * longer matters. */
  g_hash_table_remove (pc->hash_have, content_id);
  /* Answer with ours where it tells the peer something: the first have
   * for a content, or one showing it lacks chunks this agent holds. */
  ours = canopy_cache_entry_get_bitfield (entry);
  if (is_news (pc, content_id, ours))
    send_have_bits (pc, canopy_cache_entry_get_manifest (entry), ours);
  client = find_client (pc->peers, content_id);
  if (client != NULL)
    client->client->have (pc->device_id, bits, client->user_data);
}

static void
handle_data (PeerConn *pc, const char *content_id, guint index, GBytes *payload)
{
  const Client *client = find_client (pc->peers, content_id);
  g_autoptr (GBytes) empty = NULL;

  if (client == NULL)
    return;
  if (payload == NULL)
    payload = empty = g_bytes_new (NULL, 0);
  client->client->data (pc->device_id, index, payload, client->user_data);
}

static gboolean
index_valid (CanopyPeers *peers, const char *content_id, guint index)
{
  CanopyCacheEntry *entry = canopy_cache_lookup_entry (peers->cache, content_id);

  return entry != NULL
         && index < canopy_manifest_get_n_chunks (canopy_cache_entry_get_manifest (entry));
}

static void
on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload, gpointer user_data)
{
  PeerConn *pc = conn->owner_data;
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, &error);
  const char *content_id;
  guint32 value;

  if (body == NULL || (!pc->ready && kind != CANOPY_WIRE_PEER_HELLO))
    {
      g_message (_("Office peer %s sent a message this agent cannot read (%s); disconnecting "
                   "it"), pc->device_id, error != NULL ? error->message : _("no hello first"));
      drop_conn (pc);
      return;
    }
  if (kind == CANOPY_WIRE_PEER_HELLO)
    {
      handle_hello (pc, body);
      return;
    }
  if (kind == CANOPY_WIRE_HAVE)
    {
      g_autoptr (GVariant) bits = NULL;

      g_variant_get (body, "(&s@ay)", &content_id, &bits);
      {
        g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (bits);
        handle_have (pc, content_id, bytes);
      }
      return;
    }
  switch (kind)
    {
    case CANOPY_WIRE_CHUNK_QUERY:
      handle_chunk_query (pc, body);
      return;
    case CANOPY_WIRE_CHUNK_HAVE:
      handle_chunk_have (pc, body);
      return;
    case CANOPY_WIRE_CHUNK_REQUEST:
      handle_chunk_request (pc, body);
      return;
    default:
      break;
    }
  if (kind != CANOPY_WIRE_REQUEST && kind != CANOPY_WIRE_DATA && kind != CANOPY_WIRE_CANCEL
      && kind != CANOPY_WIRE_BUSY)
    {
      g_debug ("peer %s sent \"%s\"; ignored", pc->device_id, canopy_wire_kind_to_string (kind));
      return;
    }
  g_variant_get (body, "(&su)", &content_id, &value);
  /* A request asked by hash names a content this agent may not hold. */
  if (kind == CANOPY_WIRE_CANCEL)
    handle_cancel_from_requester (pc, content_id, value);
  if (kind != CANOPY_WIRE_BUSY && !index_valid (pc->peers, content_id, value))
    {
      /* A content this agent dropped meanwhile, or a forged index. */
      if (kind == CANOPY_WIRE_REQUEST)
        send_quietly (pc, CANOPY_WIRE_CANCEL, g_variant_new ("(su)", content_id, value));
      return;
    }
  switch (kind)
    {
    case CANOPY_WIRE_REQUEST:
      handle_request (pc, content_id, value, NULL);
      break;
    case CANOPY_WIRE_DATA:
      handle_data (pc, content_id, value, payload);
      break;
    case CANOPY_WIRE_CANCEL:
      {
        const Client *client = find_client (pc->peers, content_id);

        /* Both directions use cancel: a queued request of theirs was
         * dropped above; tell our fetcher in case it answers one of ours. */
        if (client != NULL)
          client->client->not_held (pc->device_id, value, 0, client->user_data);
        break;
      }
    case CANOPY_WIRE_BUSY:
      {
        const Client *client = find_client (pc->peers, content_id);

        if (client != NULL)
          client->client->not_held (pc->device_id, G_MAXUINT, MAX (value, 1), client->user_data);
        break;
      }
    default:
      break;
    }
}

static PeerConn *
add_conn (CanopyPeers *peers, CanopyTransportConnection *conn, const char *host, guint16 port)
{
  PeerConn *pc = g_new0 (PeerConn, 1);

  pc->ref_count = 1;
  pc->peers = peers;
  pc->conn = conn;
  pc->device_id = g_strdup (canopy_transport_connection_get_peer_id (conn));
  pc->host = g_strdup (host);
  pc->port = port;
  pc->have = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) g_bytes_unref);
  pc->told = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) g_bytes_unref);
  pc->hash_have = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) hash_have_free);
  g_queue_init (&pc->pending);
  conn->owner_data = pc;
  g_ptr_array_add (peers->conns, pc);
  send_hello (pc);
  return pc;
}

static void
notify_gone (CanopyPeers *peers, const char *device_id, const char *host, guint16 port)
{
  g_autoptr (GList) clients = g_hash_table_get_values (peers->clients);

  for (GList *l = clients; l != NULL; l = l->next)
    {
      const Client *client = l->data;
      client->client->gone (device_id, host, port, client->user_data);
    }
}

static void
on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  add_conn (user_data, conn, NULL, 0);
}

static void
on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  pump (conn->owner_data);
}

static void
on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  PeerConn *pc = conn->owner_data;

  g_debug ("office peer %s left: %s", pc->device_id, error->message);
  remove_conn (pc);
}

static const CanopyTransportEvents peer_events = {
  .incoming = on_incoming,
  .message = on_message,
  .drained = on_drained,
  .closed = on_closed,
};

CanopyPeers *
canopy_peers_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                  const CanopyTransportCredentials *creds, CanopyCache *cache,
                  guint upload_slots, GError **error)
{
  g_autoptr (CanopyPeers) peers = g_new0 (CanopyPeers, 1);

  peers->cache = cache;
  peers->device_id = g_strdup (creds->device_id);
  peers->upload_slots = MAX (upload_slots, 1);
  peers->conns = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_conn_close);
  peers->pool = buffer_pool_new ();
  peers->clients = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  peers->connecting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  peers->announce_due = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  peers->cancellable = g_cancellable_new ();
  peers->transport = canopy_transport_new (plugin, element, creds, NULL, &peer_events, peers,
                                           error);
  if (peers->transport == NULL)
    return NULL;
  return g_steal_pointer (&peers);
}

void
canopy_peers_free (CanopyPeers *peers)
{
  if (peers == NULL)
    return;
  g_cancellable_cancel (peers->cancellable);
  log_unlogged_read_errors (peers);
  /* Closes every connection without events, so conns can go after it. */
  g_clear_pointer (&peers->transport, canopy_transport_free);
  g_clear_pointer (&peers->conns, g_ptr_array_unref);
  g_hash_table_unref (peers->clients);
  g_hash_table_unref (peers->connecting);
  g_clear_object (&peers->cancellable);
  /* Payloads still queued or read hold the pool on their own. */
  g_clear_pointer (&peers->pool, buffer_pool_unref);
  g_clear_handle_id (&peers->recent_timer, g_source_remove);
  g_clear_handle_id (&peers->announce_timer, g_source_remove);
  g_hash_table_unref (peers->announce_due);
  g_queue_clear_full (&peers->recent, (GDestroyNotify) recent_chunk_free);
  g_free (peers->server_host);
  g_free (peers->device_id);
  g_free (peers);
}

gboolean
canopy_peers_listen (CanopyPeers *peers, guint16 *port, GError **error)
{
  g_autoptr (GPtrArray) addresses = NULL;

  if (!canopy_transport_listen (peers->transport, error))
    return FALSE;
  addresses = canopy_transport_get_listen_addresses (peers->transport);
  if (port != NULL)
    *port = addresses->len > 0
              ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addresses->pdata[0]))
              : 0;
  return TRUE;
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Connecting *c = user_data;
  g_autoptr (GError) error = NULL;
  CanopyTransportConnection *conn;
  g_autofree char *key = NULL;

  if (g_cancellable_is_cancelled (c->peers->cancellable))
    {
      connecting_free (c);
      return;
    }
  conn = canopy_transport_connect_finish (c->peers->transport, result, &error);
  key = connecting_key (c->device_id, c->host, c->port);
  g_hash_table_remove (c->peers->connecting, key);
  if (conn != NULL)
    add_conn (c->peers, conn, c->host, c->port);
  else
    {
      g_debug ("cannot reach office peer %s at %s port %u: %s", c->device_id, c->host, c->port,
               error->message);
      notify_gone (c->peers, c->device_id, c->host, c->port);
    }
  connecting_free (c);
}

void
canopy_peers_set_server (CanopyPeers *peers, const char *host, guint16 port)
{
  g_free (peers->server_host);
  peers->server_host = g_strdup (host);
  peers->server_port = port;
}

void
canopy_peers_connect (CanopyPeers *peers, const char *device_id, const char *host, guint16 port)
{
  g_autofree char *key = NULL;
  Connecting *c;

  if (host[0] == '\0' && peers->server_host != NULL)
    {
      host = peers->server_host;
      port = peers->server_port;
    }
  key = connecting_key (device_id, host, port);

  if ((device_id[0] != '\0' && find_conn (peers, device_id) != NULL)
      || g_hash_table_contains (peers->connecting, key))
    return;
  g_hash_table_add (peers->connecting, g_steal_pointer (&key));
  c = g_new0 (Connecting, 1);
  c->peers = peers;
  c->device_id = g_strdup (device_id);
  c->host = g_strdup (host);
  c->port = port;
  canopy_transport_connect_async (peers->transport, host, port, peers->cancellable, on_connected,
                                  c);
}

gboolean
canopy_peers_is_connected (CanopyPeers *peers, const char *device_id)
{
  return find_conn (peers, device_id) != NULL;
}

void
canopy_peers_set_client (CanopyPeers *peers, const char *content_id,
                         const CanopyPeersClient *client, gpointer user_data)
{
  Client *c;

  if (client == NULL)
    {
      g_hash_table_remove (peers->clients, content_id);
      return;
    }
  c = g_new0 (Client, 1);
  c->client = client;
  c->user_data = user_data;
  g_hash_table_replace (peers->clients, g_strdup (content_id), c);
  for (guint i = 0; i < peers->conns->len; i++)
    {
      PeerConn *pc = g_ptr_array_index (peers->conns, i);
      GBytes *bits = g_hash_table_lookup (pc->have, content_id);

      if (!pc->ready)
        continue;
      if (client->connected != NULL)
        client->connected (pc->device_id, pc->host, pc->port, user_data);
      if (bits != NULL)
        client->have (pc->device_id, bits, user_data);
      else
        {
          HashHave *hh = g_hash_table_lookup (pc->hash_have, content_id);

          if (hh != NULL)
            tell_hash_have (pc, content_id, hh);
          else
            send_chunk_queries (pc, content_id);
        }
    }
}

static void
announce_now (CanopyPeers *peers, CanopyCacheEntry *entry)
{
  const CanopyManifest *m = canopy_cache_entry_get_manifest (entry);
  g_autoptr (GBytes) bits = canopy_cache_entry_get_bitfield (entry);

  for (guint i = 0; i < peers->conns->len; i++)
    {
      PeerConn *pc = g_ptr_array_index (peers->conns, i);
      if (pc->ready && is_news (pc, m->content_id, bits))
        send_have_bits (pc, m, bits);
    }
}

static gboolean
on_announce_timer (gpointer user_data)
{
  CanopyPeers *peers = user_data;
  g_autoptr (GHashTable) due = NULL;
  GHashTableIter iter;
  gpointer content_id;

  if (g_hash_table_size (peers->announce_due) == 0)
    {
      peers->announce_timer = 0;
      return G_SOURCE_REMOVE;
    }
  due = g_steal_pointer (&peers->announce_due);
  peers->announce_due = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_iter_init (&iter, due);
  while (g_hash_table_iter_next (&iter, &content_id, NULL))
    {
      CanopyCacheEntry *entry = canopy_cache_lookup_entry (peers->cache, content_id);
      if (entry != NULL)
        announce_now (peers, entry);
    }
  return G_SOURCE_CONTINUE;
}

void
canopy_peers_announce (CanopyPeers *peers, const char *content_id)
{
  CanopyCacheEntry *entry = canopy_cache_lookup_entry (peers->cache, content_id);
  gboolean complete;

  if (entry == NULL)
    return;
  complete = canopy_cache_entry_is_complete (entry);
  if (!complete && peers->announce_timer != 0)
    {
      g_hash_table_add (peers->announce_due, g_strdup (content_id));
      return;
    }
  g_hash_table_remove (peers->announce_due, content_id);
  announce_now (peers, entry);
  if (!complete)
    peers->announce_timer = g_timeout_add (ANNOUNCE_INTERVAL_MS, on_announce_timer, peers);
}

static void
drop_oldest_recent (CanopyPeers *peers)
{
  RecentChunk *oldest = g_queue_pop_head (&peers->recent);

  peers->recent_bytes -= g_bytes_get_size (oldest->data);
  recent_chunk_free (oldest);
}

static gboolean
on_recent_timer (gpointer user_data)
{
  CanopyPeers *peers = user_data;
  gint64 oldest_kept = g_get_monotonic_time () - RECENT_MAX_AGE_S * G_USEC_PER_SEC;

  while (peers->recent.length > 0
         && ((RecentChunk *) g_queue_peek_head (&peers->recent))->kept_at <= oldest_kept)
    drop_oldest_recent (peers);
  if (peers->recent.length > 0)
    return G_SOURCE_CONTINUE;
  peers->recent_timer = 0;
  return G_SOURCE_REMOVE;
}

void
canopy_peers_keep_chunk (CanopyPeers *peers, const char *content_id, guint index, GBytes *data)
{
  RecentChunk *recent;

  if (find_recent (peers, content_id, index) != NULL)
    return;
  recent = g_new0 (RecentChunk, 1);
  recent->content_id = g_strdup (content_id);
  recent->index = index;
  recent->data = g_bytes_ref (data);
  recent->kept_at = g_get_monotonic_time ();
  g_queue_push_tail (&peers->recent, recent);
  peers->recent_bytes += g_bytes_get_size (data);
  while (peers->recent_bytes > RECENT_BYTES)
    drop_oldest_recent (peers);
  if (peers->recent_timer == 0)
    peers->recent_timer = g_timeout_add_seconds (RECENT_MAX_AGE_S, on_recent_timer, peers);
}

gboolean
canopy_peers_request (CanopyPeers *peers, const char *device_id, const char *content_id,
                      guint index, GError **error)
{
  PeerConn *pc = find_conn (peers, device_id);

  if (pc == NULL)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                   _("Not connected to office peer %s"), device_id);
      return FALSE;
    }
  if (canopy_peers_serves_by_hash (peers, device_id, content_id))
    {
      CanopyCacheEntry *entry = canopy_cache_lookup_entry (peers->cache, content_id);
      const CanopyManifest *m = entry != NULL ? canopy_cache_entry_get_manifest (entry) : NULL;

      if (m != NULL && index < canopy_manifest_get_n_chunks (m))
        return send_body (pc, CANOPY_WIRE_CHUNK_REQUEST,
                          g_variant_new ("(su@ay)", content_id, index,
                                         g_variant_new_fixed_array (
                                           G_VARIANT_TYPE_BYTE,
                                           canopy_manifest_get_chunk_hash (m, index),
                                           CANOPY_WIRE_HASH_SIZE, 1)),
                          NULL, error);
    }
  return send_body (pc, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", content_id, index), NULL,
                    error);
}

gboolean
canopy_peers_serves_by_hash (CanopyPeers *peers, const char *device_id, const char *content_id)
{
  PeerConn *pc = find_conn (peers, device_id);

  return pc != NULL && !g_hash_table_contains (pc->have, content_id)
         && g_hash_table_contains (pc->hash_have, content_id);
}

gboolean
canopy_peers_is_querying (CanopyPeers *peers, const char *device_id, const char *content_id)
{
  PeerConn *pc = find_conn (peers, device_id);
  HashHave *hh = pc != NULL ? g_hash_table_lookup (pc->hash_have, content_id) : NULL;

  /* A peer that answers by hash and was not asked yet (its hello came
   * before this content's client) is still to answer too. */
  if (pc != NULL && hh == NULL)
    return pc->ready && pc->by_hash && !g_hash_table_contains (pc->have, content_id);
  return hh != NULL && hh->unanswered > 0;
}

void
canopy_peers_cancel (CanopyPeers *peers, const char *device_id, const char *content_id,
                     guint index)
{
  PeerConn *pc = find_conn (peers, device_id);

  if (pc != NULL)
    send_quietly (pc, CANOPY_WIRE_CANCEL, g_variant_new ("(su)", content_id, index));
}

guint64
canopy_peers_get_uploaded (const CanopyPeers *peers)
{
  return peers->uploaded;
}
