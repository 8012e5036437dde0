/* The server's content store. A copy is written while the catalog reads
 * the package for its manifest, so the origin is read once; it is served
 * to agents with the agent-to-agent protocol, and every chunk is checked
 * against the signed manifest off the main loop before it is sent, since a
 * copy on disk can rot between registration and serving. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-content-store"

#include "server/content-store.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"
#include "lib/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>
#include <inttypes.h>

/* How long an agent waits when every upload slot is taken. */
#define BUSY_RETRY_S 1
/* Agents keep a few requests outstanding per source; more than this from
 * one connection is not a fetcher's doing, and is answered busy. */
#define MAX_QUEUED_REQUESTS 64
#define TEMPORARY_INFIX ".tmp-"

/* One offered copy; shared with the threads that check its chunks. */
typedef struct {
  CanopyManifest *manifest;
  GMappedFile *file; /* NULL for an empty package */
  char *path;
  guint8 *bad;       /* chunks found damaged: never offered again */
} Stored;

typedef struct {
  char *content_id;
  guint index;
} Request;

typedef struct {
  CanopyContentStore *store;
  CanopyTransportConnection *conn;
  char *device_id;
  guint64 serial;    /* how a finished check finds it, if it is still there */
  GHashTable *told;  /* content IDs it was sent a have for */
  GQueue requests;   /* Request, not yet checked */
  gboolean checking; /* a chunk of its is being checked */
  Request *ready;    /* checked, waiting for the send queue to drain */
  GBytes *ready_payload;
} Peer;

struct _CanopyContentStore {
  char *directory;
  guint64 quota;
  guint64 used;
  char *server_id;
  guint upload_slots;
  GHashTable *stored; /* content ID → Stored */
  GHashTable *peers;  /* serial → Peer */
  guint64 next_serial;
  guint64 uploaded;
  GCancellable *cancellable;
};

struct _CanopyContentStoreWriter {
  CanopyAtomicFile *file; /* NULL once the copy failed */
  char *path;
  char *name;
  guint64 limit;          /* bytes it may write */
  guint64 quota;
  guint64 written;
  GError *error;          /* the first failure */
};

G_DEFINE_QUARK (canopy-content-store-error-quark, canopy_content_store_error)

static void
stored_clear (Stored *st)
{
  canopy_manifest_free (st->manifest);
  g_clear_pointer (&st->file, g_mapped_file_unref);
  g_free (st->path);
  g_free (st->bad);
}

static Stored *
stored_ref (Stored *st)
{
  return g_atomic_rc_box_acquire (st);
}

static void
stored_unref (Stored *st)
{
  g_atomic_rc_box_release_full (st, (GDestroyNotify) stored_clear);
}

static gboolean
stored_is_bad (const Stored *st, guint index)
{
  return (st->bad[index / 8] & (1u << (index % 8))) != 0;
}

static void
request_free (Request *request)
{
  if (request == NULL)
    return;
  g_free (request->content_id);
  g_free (request);
}

static char *
copy_path (const CanopyContentStore *store, const char *content_id)
{
  return g_build_filename (store->directory, content_id, NULL);
}

/* --- the directory ------------------------------------------------------- */

/* A registration interrupted by a crash leaves its temporary file. */
static void
remove_leftovers (const char *directory)
{
  g_autoptr (GDir) dir = g_dir_open (directory, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (strstr (name, TEMPORARY_INFIX) != NULL)
      {
        g_autofree char *path = g_build_filename (directory, name, NULL);
        g_debug ("removing %s, left by an interrupted registration", path);
        g_unlink (path);
      }
}

static gboolean
prepare_directory (const char *directory, GError **error)
{
  GStatBuf st;

  if (g_mkdir_with_parents (directory, 0700) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_DIRECTORY,
                   _("Cannot create the content store directory %s: %s. Create it, owned by "
                     "the service user, or change <content-store directory=\"...\">"),
                   directory, g_strerror (saved_errno));
      return FALSE;
    }
  /* The packages may be licensed software: only the service reads them. */
  if (g_stat (directory, &st) != 0 || (!S_ISDIR (st.st_mode))
      || ((st.st_mode & 077) != 0 && g_chmod (directory, 0700) != 0))
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_DIRECTORY,
                   _("The content store directory %s cannot be made readable by the service "
                     "user alone: %s. Fix its owner and permissions"),
                   directory, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

CanopyContentStore *
canopy_content_store_new (const char *directory, guint64 quota, const char *server_id,
                          guint upload_slots, GError **error)
{
  CanopyContentStore *store;

  if (!prepare_directory (directory, error))
    return NULL;
  remove_leftovers (directory);
  store = g_new0 (CanopyContentStore, 1);
  store->directory = g_strdup (directory);
  store->quota = quota;
  store->server_id = g_strdup (server_id);
  store->upload_slots = MAX (upload_slots, 1);
  store->stored = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) stored_unref);
  store->peers = g_hash_table_new (g_int64_hash, g_int64_equal);
  store->cancellable = g_cancellable_new ();
  return store;
}

void
canopy_content_store_free (CanopyContentStore *store)
{
  if (store == NULL)
    return;
  /* Checks still running find the store gone by this. */
  g_cancellable_cancel (store->cancellable);
  g_clear_object (&store->cancellable);
  g_hash_table_unref (store->stored);
  g_hash_table_unref (store->peers);
  g_free (store->server_id);
  g_free (store->directory);
  g_free (store);
}

const char *
canopy_content_store_get_server_id (const CanopyContentStore *store)
{
  return store->server_id;
}

guint64
canopy_content_store_get_uploaded (const CanopyContentStore *store)
{
  return store->uploaded;
}

const char *
canopy_content_store_get_directory (const CanopyContentStore *store)
{
  return store->directory;
}

guint64
canopy_content_store_get_quota (const CanopyContentStore *store)
{
  return store->quota;
}

guint64
canopy_content_store_get_used (const CanopyContentStore *store)
{
  return store->used;
}

guint
canopy_content_store_get_upload_slots (const CanopyContentStore *store)
{
  return store->upload_slots;
}

guint
canopy_content_store_count_offered (const CanopyContentStore *store)
{
  return g_hash_table_size (store->stored);
}

gboolean
canopy_content_store_check_directory (const char *directory, GError **error)
{
  g_autofree char *probe = g_build_filename (directory, "health" TEMPORARY_INFIX "XXXXXX", NULL);
  int fd = g_mkstemp_full (probe, O_RDWR | O_CLOEXEC, 0600);
  int saved_errno = errno;

  if (fd < 0)
    {
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_DIRECTORY,
                   _("The content store cannot write in its directory %s (%s): new copies fail, "
                     "and leads fetch that content from its origin. Check that its disk is "
                     "mounted and not full, and the directory's owner and permissions"),
                   directory, g_strerror (saved_errno));
      return FALSE;
    }
  close (fd);
  g_unlink (probe);
  return TRUE;
}

/* --- writing ------------------------------------------------------------- */

/* For a copy that outgrew the quota, and for one known too large before it starts. */
static GError *
quota_error (const char *name, guint64 quota)
{
  g_autofree char *size = g_format_size_full (quota, G_FORMAT_SIZE_IEC_UNITS);

  return g_error_new (CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_QUOTA,
                      _("\"%s\" does not fit in what is left of the content store's quota of "
                        "%s. Raise <content-store quota=\"...\"> and restart canopyd, or remove "
                        "content no deployment needs; then run Publish Content"),
                      name, size);
}

static guint64
quota_left (const CanopyContentStore *store)
{
  return store->quota == 0 ? G_MAXUINT64 : store->quota - MIN (store->used, store->quota);
}

gboolean
canopy_content_store_check_fits (const CanopyContentStore *store, const char *name, guint64 size,
                                 GError **error)
{
  if (size <= quota_left (store))
    return TRUE;
  g_propagate_error (error, quota_error (name, store->quota));
  return FALSE;
}

CanopyContentStoreWriter *
canopy_content_store_begin (CanopyContentStore *store, const char *content_id, const char *name,
                            GError **error)
{
  g_autofree char *path = copy_path (store, content_id);
  g_autoptr (GError) local_error = NULL;
  CanopyAtomicFile *file = canopy_atomic_file_begin (path, 0600, &local_error);
  CanopyContentStoreWriter *writer;

  if (file == NULL)
    {
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_IO,
                   _("Cannot keep a copy of \"%s\" in the content store: %s. Check the "
                     "directory's owner, permissions and free space"),
                   name, local_error->message);
      return NULL;
    }
  writer = g_new0 (CanopyContentStoreWriter, 1);
  writer->file = file;
  writer->path = g_steal_pointer (&path);
  writer->name = g_strdup (name);
  writer->quota = store->quota;
  writer->limit = quota_left (store);
  return writer;
}

static void
writer_fail (CanopyContentStoreWriter *writer, GError *error)
{
  g_clear_pointer (&writer->file, canopy_atomic_file_abort);
  if (writer->error == NULL)
    writer->error = error;
  else
    g_error_free (error);
}

static GError *
write_error (const CanopyContentStoreWriter *writer, const GError *cause)
{
  if (g_error_matches (cause, G_FILE_ERROR, G_FILE_ERROR_NOSPC))
    return g_error_new (CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_NO_SPACE,
                        _("the disk holding the content store is full (%s). Free space on it "
                          "or move the store with <content-store directory=\"...\">"),
                        cause->message);
  return g_error_new (CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_IO,
                      _("the content store cannot write its copy (%s). Check the disk and the "
                        "directory's permissions"),
                      cause->message);
}

void
canopy_content_store_writer_sink (const guint8 *data, gsize length, gpointer user_data)
{
  CanopyContentStoreWriter *writer = user_data;
  g_autoptr (GError) error = NULL;

  if (writer->file == NULL)
    return;
  if (length > writer->limit - writer->written)
    {
      writer_fail (writer, quota_error (writer->name, writer->quota));
      return;
    }
  if (!canopy_atomic_file_append (writer->file, data, length, &error))
    {
      writer_fail (writer, write_error (writer, error));
      return;
    }
  writer->written += length;
}

static void
writer_free (CanopyContentStoreWriter *writer)
{
  g_clear_pointer (&writer->file, canopy_atomic_file_abort);
  g_clear_error (&writer->error);
  g_free (writer->path);
  g_free (writer->name);
  g_free (writer);
}

gboolean
canopy_content_store_commit (CanopyContentStoreWriter *writer, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gboolean ok = FALSE;

  if (writer->error != NULL)
    g_propagate_error (error, g_steal_pointer (&writer->error));
  else if (!canopy_atomic_file_commit (g_steal_pointer (&writer->file), &local_error))
    g_propagate_error (error, write_error (writer, local_error));
  else
    ok = TRUE;
  writer_free (writer);
  return ok;
}

void
canopy_content_store_abort (CanopyContentStoreWriter *writer)
{
  if (writer != NULL)
    writer_free (writer);
}

/* --- what is offered ----------------------------------------------------- */

static Stored *
stored_open (const CanopyContentStore *store, CanopyManifest *manifest, GError **error)
{
  g_autofree char *path = copy_path (store, manifest->content_id);
  g_autoptr (GError) local_error = NULL;
  GStatBuf st;
  Stored *stored;

  if (g_stat (path, &st) != 0)
    {
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_MISSING,
                   _("The content store has no copy of \"%s\" (%s)"), manifest->name, path);
      return NULL;
    }
  if ((guint64) st.st_size != manifest->size)
    {
      g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_MISMATCH,
                   _("The stored copy of \"%s\" at %s has %" PRIu64 " bytes, not the "
                     "%" PRIu64 " of its manifest; it is not offered, and leads fetch "
                     "from the origin. Run Publish Content to copy it again from its origin"),
                   manifest->name, path, (guint64) st.st_size, manifest->size);
      return NULL;
    }
  stored = g_atomic_rc_box_new0 (Stored);
  if (manifest->size > 0)
    {
      stored->file = g_mapped_file_new (path, FALSE, &local_error);
      if (stored->file == NULL)
        {
          g_set_error (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_IO,
                       _("Cannot read the stored copy of \"%s\": %s; it is not offered. Check "
                         "the file's permissions"),
                       manifest->name, local_error->message);
          g_atomic_rc_box_release (stored);
          return NULL;
        }
    }
  stored->manifest = manifest;
  stored->path = g_steal_pointer (&path);
  stored->bad = g_new0 (guint8, canopy_manifest_get_n_chunks (manifest) / 8 + 1);
  return stored;
}

gboolean
canopy_content_store_offer (CanopyContentStore *store, GBytes *manifest_bytes, GError **error)
{
  CanopyManifest *manifest = canopy_manifest_parse (manifest_bytes, NULL, error);
  Stored *stored;

  if (manifest == NULL)
    return FALSE;
  stored = stored_open (store, manifest, error);
  if (stored == NULL)
    {
      canopy_manifest_free (manifest);
      return FALSE;
    }
  if (!g_hash_table_contains (store->stored, manifest->content_id))
    store->used += manifest->size;
  g_hash_table_replace (store->stored, g_strdup (manifest->content_id), stored);
  return TRUE;
}

gboolean
canopy_content_store_holds (const CanopyContentStore *store, const char *content_id)
{
  return g_hash_table_contains (store->stored, content_id);
}

void
canopy_content_store_remove (CanopyContentStore *store, const char *content_id)
{
  Stored *stored = g_hash_table_lookup (store->stored, content_id);
  g_autofree char *path = copy_path (store, content_id);

  if (stored != NULL)
    {
      store->used -= MIN (store->used, stored->manifest->size);
      /* Checks in flight keep their mapping until they finish. */
      g_hash_table_remove (store->stored, content_id);
    }
  if (g_unlink (path) != 0 && errno != ENOENT)
    g_warning (_("Cannot delete %s from the content store: %s. Delete it by hand to free the "
                 "space"), path, g_strerror (errno));
}

/* --- serving agents ------------------------------------------------------ */

static void
send_quietly (Peer *peer, CanopyWireKind kind, GVariant *body)
{
  g_autoptr (GError) error = NULL;

  if (!canopy_wire_send (peer->conn, kind, body, NULL, &error))
    g_debug ("cannot send %s to agent %s: %s", canopy_wire_kind_to_string (kind),
             peer->device_id, error->message);
}

static void
send_cancel (Peer *peer, const char *content_id, guint index)
{
  send_quietly (peer, CANOPY_WIRE_CANCEL, g_variant_new ("(su)", content_id, index));
}

/* Every chunk but those found damaged. */
static void
send_have (Peer *peer, const char *content_id, const Stored *st)
{
  guint n = canopy_manifest_get_n_chunks (st->manifest);
  gsize length = (n + 7) / 8;
  g_autofree guint8 *bits = g_new0 (guint8, length + 1);

  for (guint i = 0; i < n; i++)
    if (!stored_is_bad (st, i))
      bits[i / 8] |= (guint8) (1u << (i % 8));
  g_hash_table_add (peer->told, g_strdup (content_id));
  send_quietly (peer, CANOPY_WIRE_HAVE,
                g_variant_new ("(s@ay)", content_id,
                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bits, length, 1)));
}

static void
handle_hello (Peer *peer, GVariant *body)
{
  CanopyContentStore *store = peer->store;
  g_autoptr (GVariantIter) ids = NULL;
  g_autoptr (GPtrArray) held = g_ptr_array_new ();
  GVariantBuilder builder;
  const char *claimed, *content_id;

  g_variant_get (body, "(&sas)", &claimed, &ids);
  /* The handshake proved who it is; the claim is only checked. */
  if (g_strcmp0 (claimed, peer->device_id) != 0)
    g_debug ("agent %s says it is %s; using the authenticated ID", peer->device_id, claimed);
  g_variant_builder_init (&builder, G_VARIANT_TYPE_STRING_ARRAY);
  while (g_variant_iter_next (ids, "&s", &content_id))
    if (g_hash_table_contains (store->stored, content_id))
      {
        g_variant_builder_add (&builder, "s", content_id);
        g_ptr_array_add (held, (gpointer) content_id);
      }
  send_quietly (peer, CANOPY_WIRE_PEER_HELLO,
                g_variant_new ("(sas)", store->server_id, &builder));
  for (guint i = 0; i < held->len; i++)
    send_have (peer, held->pdata[i], g_hash_table_lookup (store->stored, held->pdata[i]));
}

/* An agent that opened a content after the hello tells of it with a have:
 * answer with ours, once, as agents do. */
static void
handle_have (Peer *peer, const char *content_id)
{
  const Stored *st = g_hash_table_lookup (peer->store->stored, content_id);

  if (st != NULL && !g_hash_table_contains (peer->told, content_id))
    send_have (peer, content_id, st);
}

static gboolean
peer_is_active (Peer *peer)
{
  return peer->checking || peer->ready != NULL || !g_queue_is_empty (&peer->requests)
         || canopy_transport_connection_get_queued_bytes (peer->conn) > 0;
}

static guint
busy_slots (CanopyContentStore *store, Peer *except)
{
  GHashTableIter iter;
  gpointer value;
  guint used = 0;

  g_hash_table_iter_init (&iter, store->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (value != except && peer_is_active (value))
      used++;
  return used;
}

/* Returns FALSE when the send queue is full: @request waits for drained. */
static gboolean
deliver (Peer *peer, Request *request, GBytes *payload)
{
  g_autoptr (GError) error = NULL;

  if (canopy_wire_send (peer->conn, CANOPY_WIRE_DATA,
                        g_variant_new ("(su)", request->content_id, request->index), payload,
                        &error))
    {
      peer->store->uploaded += g_bytes_get_size (payload);
      request_free (request);
      return TRUE;
    }
  if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL))
    {
      peer->ready = request;
      peer->ready_payload = g_bytes_ref (payload);
      return FALSE;
    }
  g_debug ("cannot send chunk %u to agent %s: %s", request->index, peer->device_id,
           error->message);
  request_free (request);
  return TRUE;
}

static void
send_checked (Peer *peer, const Stored *st, Request *request)
{
  const CanopyManifest *m = st->manifest;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) payload = canopy_transport_payload_new_mapped (
    st->file, (gsize) canopy_manifest_get_chunk_offset (m, request->index),
    canopy_manifest_get_chunk_length (m, request->index), &error);

  if (payload == NULL)
    {
      g_debug ("cannot map chunk %u of %s: %s", request->index, m->content_id, error->message);
      send_cancel (peer, request->content_id, request->index);
      request_free (request);
      return;
    }
  deliver (peer, request, payload);
}

typedef struct {
  CanopyContentStore *store;
  GCancellable *cancellable; /* the store's: cancelled once it is freed */
  guint64 serial;
  Stored *stored;
  Request *request;
} Check;

static void
check_free (Check *check)
{
  g_object_unref (check->cancellable);
  stored_unref (check->stored);
  request_free (check->request);
  g_free (check);
}

static void
check_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Check *check = task_data;
  const CanopyManifest *m = check->stored->manifest;
  guint index = check->request->index;
  const guint8 *data = (const guint8 *) g_mapped_file_get_contents (check->stored->file);

  g_task_return_boolean (task,
                         canopy_manifest_verify_chunk (m, index,
                                                       data
                                                         + canopy_manifest_get_chunk_offset (
                                                           m, index),
                                                       canopy_manifest_get_chunk_length (m,
                                                                                         index)));
}

/* Said once per chunk: the copy is damaged, and only the admin can mend it. */
static void
note_damaged (Stored *st, guint index)
{
  if (stored_is_bad (st, index))
    return;
  st->bad[index / 8] |= (guint8) (1u << (index % 8));
  g_warning (_("Chunk %u of \"%s\" %s in the content store does not match its signed manifest: "
               "it is not sent, and leads fetch it from the origin instead. The copy %s is "
               "damaged; check that disk, then remove the content and register it again"),
             index, st->manifest->name, st->manifest->version, st->path);
}

static void pump (Peer *peer);

static void
on_checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Check *check = g_task_get_task_data (G_TASK (result));
  gboolean sound = g_task_propagate_boolean (G_TASK (result), NULL);
  Peer *peer;

  if (g_cancellable_is_cancelled (check->cancellable))
    return;
  if (!sound)
    note_damaged (check->stored, check->request->index);
  peer = g_hash_table_lookup (check->store->peers, &check->serial);
  if (peer == NULL)
    return;
  peer->checking = FALSE;
  if (sound)
    send_checked (peer, check->stored, g_steal_pointer (&check->request));
  else
    send_cancel (peer, check->request->content_id, check->request->index);
  pump (peer);
}

static void
start_check (Peer *peer, Stored *st, Request *request)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_checked, NULL);
  Check *check = g_new0 (Check, 1);

  check->store = peer->store;
  check->cancellable = g_object_ref (peer->store->cancellable);
  check->serial = peer->serial;
  check->stored = stored_ref (st);
  check->request = request;
  peer->checking = TRUE;
  g_task_set_task_data (task, check, (GDestroyNotify) check_free);
  g_task_run_in_thread (task, check_thread);
}

/* Checks the next request's chunk, one at a time per agent: the checks of
 * several agents run side by side, and a slow agent holds up only itself. */
static void
pump (Peer *peer)
{
  Request *request;

  while (!peer->checking && peer->ready == NULL
         && (request = g_queue_pop_head (&peer->requests)) != NULL)
    {
      Stored *st = g_hash_table_lookup (peer->store->stored, request->content_id);

      if (st == NULL || stored_is_bad (st, request->index))
        {
          send_cancel (peer, request->content_id, request->index);
          request_free (request);
          continue;
        }
      start_check (peer, st, request);
    }
}

static void
handle_request (Peer *peer, const char *content_id, guint index)
{
  CanopyContentStore *store = peer->store;
  const Stored *st = g_hash_table_lookup (store->stored, content_id);
  Request *request;
  guint n;

  if (st == NULL)
    {
      /* Removed meanwhile, or never here: the agent goes elsewhere. */
      g_debug ("agent %s asked for content %s, which the store does not hold", peer->device_id,
               content_id);
      send_cancel (peer, content_id, index);
      return;
    }
  n = canopy_manifest_get_n_chunks (st->manifest);
  if (index >= n)
    {
      g_message (_("Agent %s asked the content store for chunk %u of \"%s\", which has %u "
                   "chunks; the request is refused"),
                 peer->device_id, index, st->manifest->name, n);
      send_cancel (peer, content_id, index);
      return;
    }
  /* An agent already being fed keeps its slot; a new one waits for a free one. */
  if ((!peer_is_active (peer) && busy_slots (store, peer) >= store->upload_slots)
      || g_queue_get_length (&peer->requests) >= MAX_QUEUED_REQUESTS)
    {
      send_quietly (peer, CANOPY_WIRE_BUSY, g_variant_new ("(su)", content_id, BUSY_RETRY_S));
      return;
    }
  request = g_new0 (Request, 1);
  request->content_id = g_strdup (content_id);
  request->index = index;
  g_queue_push_tail (&peer->requests, request);
  pump (peer);
}

static void
handle_cancel (Peer *peer, const char *content_id, guint index)
{
  for (GList *l = peer->requests.head; l != NULL; l = l->next)
    {
      Request *request = l->data;
      if (request->index == index && g_str_equal (request->content_id, content_id))
        {
          g_queue_delete_link (&peer->requests, l);
          request_free (request);
          return;
        }
    }
}

static gpointer
peer_opened (CanopyTransportConnection *conn, gpointer user_data)
{
  CanopyContentStore *store = user_data;
  Peer *peer = g_new0 (Peer, 1);

  peer->store = store;
  peer->conn = conn;
  peer->device_id = g_strdup (canopy_transport_connection_get_peer_id (conn));
  peer->serial = ++store->next_serial;
  peer->told = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&peer->requests);
  g_hash_table_insert (store->peers, &peer->serial, peer);
  g_debug ("agent %s connected to the content store", peer->device_id);
  return peer;
}

static gboolean
peer_message (gpointer data, CanopyWireKind kind, GVariant *body)
{
  Peer *peer = data;
  const char *content_id;
  guint32 value;

  switch (kind)
    {
    case CANOPY_WIRE_PEER_HELLO:
      handle_hello (peer, body);
      return TRUE;
    case CANOPY_WIRE_HAVE:
      g_variant_get (body, "(&s@ay)", &content_id, NULL);
      handle_have (peer, content_id);
      return TRUE;
    case CANOPY_WIRE_REQUEST:
      g_variant_get (body, "(&su)", &content_id, &value);
      handle_request (peer, content_id, value);
      return TRUE;
    case CANOPY_WIRE_CANCEL:
      g_variant_get (body, "(&su)", &content_id, &value);
      handle_cancel (peer, content_id, value);
      return TRUE;
    case CANOPY_WIRE_DATA:
    case CANOPY_WIRE_BUSY:
      /* The store asks for nothing: a late or confused answer, harmless. */
      g_debug ("agent %s sent \"%s\" to the content store; ignored", peer->device_id,
               canopy_wire_kind_to_string (kind));
      return TRUE;
    default:
      g_message (_("Agent %s sent \"%s\" on a connection to the content store, which speaks "
                   "only the agent-to-agent protocol; closing that connection"),
                 peer->device_id, canopy_wire_kind_to_string (kind));
      return FALSE;
    }
}

static void
peer_drained (gpointer data)
{
  Peer *peer = data;
  Request *request = g_steal_pointer (&peer->ready);
  g_autoptr (GBytes) payload = g_steal_pointer (&peer->ready_payload);

  if (request != NULL)
    {
      /* The payload keeps the mapping alive even if the content was
       * removed meanwhile; the agent verifies what it gets either way. */
      if (!deliver (peer, request, payload))
        return;
    }
  pump (peer);
}

static void
peer_closed (gpointer data)
{
  Peer *peer = data;

  g_debug ("agent %s left the content store", peer->device_id);
  g_hash_table_remove (peer->store->peers, &peer->serial);
  g_queue_clear_full (&peer->requests, (GDestroyNotify) request_free);
  request_free (peer->ready);
  g_clear_pointer (&peer->ready_payload, g_bytes_unref);
  g_hash_table_unref (peer->told);
  g_free (peer->device_id);
  g_free (peer);
}

static const CanopySessionsPeerHandler peer_handler = {
  .opened = peer_opened,
  .message = peer_message,
  .drained = peer_drained,
  .closed = peer_closed,
};

const CanopySessionsPeerHandler *
canopy_content_store_get_peer_handler (void)
{
  return &peer_handler;
}
