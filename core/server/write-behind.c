/* canopyd's storage: hot state lives in memory and is written behind to
 * the backend in batched transactions by the store's own thread, so the
 * main loop never waits for the database, no other work (TLS handshakes,
 * hashing in GLib's shared pool) can delay a write, and a failed write is
 * retried, not lost. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-write-behind"

#include "server/write-behind.h"
#include "lib/background-thread.h"
#include "lib/i18n.h"

#include <gio/gio.h>

#define FLUSH_INTERVAL_MS 1000

typedef struct {
  CanopyStoreSyncFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Waiter;

typedef struct _Flush Flush;

struct _CanopyStore {
  CanopyBackend *backend;
  GMutex backend_lock; /* one thread at a time uses the backend */
  GHashTable *pending[CANOPY_N_RECORD_KINDS]; /* key → GVariant, newest wins */
  GPtrArray *pending_logs[CANOPY_N_LOG_KINDS]; /* GVariant, in order */
  GPtrArray *pending_waiters;                 /* Waiter, for what is pending */
  GHashTable *devices;                        /* device ID → GVariant, as stored */
  gboolean flushing;   /* a batch is with the writer thread */
  gboolean flush_soon; /* a waiter wants the next batch as soon as this one is done */
  gboolean failing;
  guint timer;
  guint soon;          /* idle source starting a flush for a waiter */
  GThread *writer;     /* the store's own thread: the only one writing */
  GAsyncQueue *jobs;   /* Flush for the writer; the store itself to stop it */
  GAsyncQueue *done;   /* Flush written (or not) by the writer */
  GSource *done_source; /* wakes the owning main context for @done */
};

struct _Flush {
  CanopyStore *store;
  GHashTable *batches[CANOPY_N_RECORD_KINDS];
  GPtrArray *logs[CANOPY_N_LOG_KINDS];
  GPtrArray *waiters;
  gboolean ok;
  GError *error;
};

static void
variant_unref0 (gpointer value)
{
  if (value != NULL)
    g_variant_unref (value);
}

/* Dropped without being called: the store goes away (shutdown). */
static void
waiter_free (Waiter *waiter)
{
  if (waiter->destroy != NULL)
    waiter->destroy (waiter->user_data);
  g_free (waiter);
}

/* key → GVariant; a NULL value stands for the record's removal. */
static GHashTable *
new_table (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, variant_unref0);
}

static GPtrArray *
new_waiters (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) waiter_free);
}

static gboolean
load_device (const char *key, GVariant *value, gpointer user_data)
{
  g_hash_table_insert (user_data, g_strdup (key), g_variant_ref (value));
  return TRUE;
}

/* Writes one batch per kind in one transaction; runs in the writer
 * thread, the only user of the backend while it runs. */
static gboolean
write_batch (CanopyBackend *backend, CanopyRecordKind kind, GHashTable *batch, GError **error)
{
  g_autoptr (GArray) records = g_array_new (FALSE, FALSE, sizeof (CanopyRecord));
  g_autoptr (GPtrArray) removals = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, batch);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value != NULL)
      {
        CanopyRecord record = { key, value };
        g_array_append_val (records, record);
      }
    else
      g_ptr_array_add (removals, key);
  g_ptr_array_add (removals, NULL);
  return (records->len == 0
          || canopy_backend_put (backend, kind, &g_array_index (records, CanopyRecord, 0),
                                 records->len, error))
         && (removals->len == 1
             || canopy_backend_remove (backend, kind, (const char *const *) removals->pdata,
                                       error));
}

static gboolean
write_batches (CanopyBackend *backend, GHashTable *const *batches, GPtrArray *const *logs,
               GError **error)
{
  if (!canopy_backend_begin (backend, error))
    return FALSE;
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    if (logs[k]->len > 0
        && !canopy_backend_append (backend, k, (GVariant *const *) logs[k]->pdata, logs[k]->len,
                                   error))
      {
        canopy_backend_rollback (backend);
        return FALSE;
      }
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    if (!write_batch (backend, k, batches[k], error))
      {
        canopy_backend_rollback (backend);
        return FALSE;
      }
  return canopy_backend_commit (backend, error);
}

static void
flush_write (Flush *flush)
{
  g_mutex_lock (&flush->store->backend_lock);
  flush->ok = write_batches (flush->store->backend, flush->batches, flush->logs, &flush->error);
  g_mutex_unlock (&flush->store->backend_lock);
}

/* The writer thread: one batch at a time, in order, until the store
 * itself comes through the queue as the signal to stop. */
static gpointer
writer_main (gpointer user_data)
{
  CanopyStore *store = user_data;
  gpointer job;

  while ((job = g_async_queue_pop (store->jobs)) != store)
    {
      flush_write (job);
      g_async_queue_push (store->done, job);
      g_source_set_ready_time (store->done_source, 0);
    }
  return NULL;
}

static void
flush_free (Flush *flush)
{
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    g_clear_pointer (&flush->batches[k], g_hash_table_unref);
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    g_clear_pointer (&flush->logs[k], g_ptr_array_unref);
  g_clear_pointer (&flush->waiters, g_ptr_array_unref);
  g_clear_error (&flush->error);
  g_free (flush);
}

/* A failed batch goes back in the queue, under anything newer; its
 * waiters wait for the retry, as what they wait for is not saved yet. */
static void
requeue (CanopyStore *store, Flush *flush)
{
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, flush->batches[k]);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (!g_hash_table_contains (store->pending[k], key))
          g_hash_table_insert (store->pending[k], g_strdup (key),
                               value != NULL ? g_variant_ref (value) : NULL);
    }
  /* Log entries keep their order: the failed ones go before newer ones. */
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    {
      for (guint i = 0; i < flush->logs[k]->len; i++)
        g_ptr_array_insert (store->pending_logs[k], (gint) i,
                            g_variant_ref (g_ptr_array_index (flush->logs[k], i)));
    }
  for (guint i = 0; i < flush->waiters->len; i++)
    g_ptr_array_insert (store->pending_waiters, (gint) i, flush->waiters->pdata[i]);
  g_ptr_array_set_free_func (flush->waiters, NULL);
  g_ptr_array_set_size (flush->waiters, 0);
  g_ptr_array_set_free_func (flush->waiters, (GDestroyNotify) waiter_free);
}

static void
call_waiters (GPtrArray *waiters)
{
  for (guint i = 0; i < waiters->len; i++)
    {
      Waiter *waiter = g_ptr_array_index (waiters, i);
      waiter->func (waiter->user_data);
    }
}

static gboolean
has_pending (const CanopyStore *store)
{
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    if (g_hash_table_size (store->pending[k]) > 0)
      return TRUE;
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    if (store->pending_logs[k]->len > 0)
      return TRUE;
  return store->pending_waiters->len > 0;
}

static Flush *
take_pending (CanopyStore *store)
{
  Flush *flush = g_new0 (Flush, 1);

  flush->store = store;
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    {
      flush->batches[k] = store->pending[k];
      store->pending[k] = new_table ();
    }
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    {
      flush->logs[k] = store->pending_logs[k];
      store->pending_logs[k] = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
    }
  flush->waiters = store->pending_waiters;
  store->pending_waiters = new_waiters ();
  return flush;
}

/* Hands what is pending to the writer, unless it still has a batch. */
static void
start_flush (CanopyStore *store)
{
  if (store->flushing || !has_pending (store))
    return;
  store->flushing = TRUE;
  store->flush_soon = FALSE;
  g_async_queue_push (store->jobs, take_pending (store));
}

static void
finish_flush (CanopyStore *store, Flush *flush)
{
  store->flushing = FALSE;
  if (flush->ok)
    {
      if (store->failing)
        g_message (_("The storage backend accepts writes again; nothing was lost"));
      store->failing = FALSE;
      call_waiters (flush->waiters);
      return;
    }
  requeue (store, flush);
  if (!store->failing)
    g_warning (_("Cannot save to the storage backend, will retry every second and keep "
                 "everything in memory until then: %s"), flush->error->message);
  store->failing = TRUE;
  /* A failing backend is retried by the timer, not in a tight loop. */
  store->flush_soon = FALSE;
}

/* On the owning main context: the writer finished a batch. */
static gboolean
on_done (gpointer user_data)
{
  CanopyStore *store = user_data;
  Flush *flush;

  g_source_set_ready_time (store->done_source, -1);
  while ((flush = g_async_queue_try_pop (store->done)) != NULL)
    {
      finish_flush (store, flush);
      flush_free (flush);
    }
  if (store->flush_soon)
    start_flush (store);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_flush_timer (gpointer user_data)
{
  start_flush (user_data);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_flush_soon (gpointer user_data)
{
  CanopyStore *store = user_data;

  store->soon = 0;
  start_flush (store);
  return G_SOURCE_REMOVE;
}

static gboolean
dispatch_done (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs done_funcs = { .dispatch = dispatch_done };

static void
start_writer (CanopyStore *store)
{
  store->jobs = g_async_queue_new ();
  store->done = g_async_queue_new ();
  store->done_source = g_source_new (&done_funcs, sizeof (GSource));
  g_source_set_callback (store->done_source, on_done, store, NULL);
  g_source_set_name (store->done_source, "canopy-store-done");
  g_source_attach (store->done_source, g_main_context_get_thread_default ());
  store->writer = canopy_background_thread_new ("canopy-store", writer_main, store);
}

/* Stops the writer once it has written what it was given, and takes
 * back what it could not write. No waiter is called: the store goes. */
static void
stop_writer (CanopyStore *store)
{
  Flush *flush;

  if (store->writer == NULL)
    return;
  g_async_queue_push (store->jobs, store);
  g_thread_join (g_steal_pointer (&store->writer));
  while ((flush = g_async_queue_try_pop (store->done)) != NULL)
    {
      if (!flush->ok)
        requeue (store, flush);
      flush_free (flush);
    }
  store->flushing = FALSE;
  g_source_destroy (store->done_source);
  g_clear_pointer (&store->done_source, g_source_unref);
  g_clear_pointer (&store->jobs, g_async_queue_unref);
  g_clear_pointer (&store->done, g_async_queue_unref);
}

CanopyStore *
canopy_store_open (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                   const char *state_directory, GError **error)
{
  g_autoptr (CanopyBackend) backend = canopy_backend_open (plugin, element, state_directory,
                                                           error);
  CanopyStore *store;

  if (backend == NULL)
    return NULL;
  store = g_new0 (CanopyStore, 1);
  store->backend = g_steal_pointer (&backend);
  g_mutex_init (&store->backend_lock);
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    store->pending[k] = new_table ();
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    store->pending_logs[k] = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  store->pending_waiters = new_waiters ();
  store->devices = new_table ();
  if (!canopy_backend_list (store->backend, CANOPY_RECORD_DEVICE, load_device, store->devices,
                            error))
    {
      canopy_store_free (store);
      return NULL;
    }
  start_writer (store);
  store->timer = g_timeout_add (FLUSH_INTERVAL_MS, on_flush_timer, store);
  return store;
}

void
canopy_store_sync (CanopyStore *store, CanopyStoreSyncFunc func, gpointer user_data,
                   GDestroyNotify destroy)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->func = func;
  waiter->user_data = user_data;
  waiter->destroy = destroy;
  g_ptr_array_add (store->pending_waiters, waiter);
  /* Someone waits: write now rather than at the next tick. */
  if (store->flushing)
    store->flush_soon = TRUE;
  else if (store->soon == 0 && !store->failing)
    store->soon = g_idle_add (on_flush_soon, store);
}

/* At shutdown: the writer is stopped first, as one thread uses the
 * backend, then what is left is written here, blocking. Waiters belong
 * to sessions that are gone by now: dropped, not called. */
static gboolean
flush_last (CanopyStore *store, GError **error)
{
  Flush *flush;
  gboolean ok;

  stop_writer (store);
  g_ptr_array_set_size (store->pending_waiters, 0);
  if (!has_pending (store))
    return TRUE;
  flush = take_pending (store);
  flush_write (flush);
  ok = flush->ok;
  if (!ok)
    {
      requeue (store, flush);
      g_propagate_error (error, g_steal_pointer (&flush->error));
    }
  flush_free (flush);
  return ok;
}

void
canopy_store_free (CanopyStore *store)
{
  g_autoptr (GError) error = NULL;

  if (store == NULL)
    return;
  if (store->timer != 0)
    g_source_remove (store->timer);
  if (store->soon != 0)
    g_source_remove (store->soon);
  if (!flush_last (store, &error))
    g_warning (_("Could not save the last changes before stopping: %s"), error->message);
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    g_hash_table_unref (store->pending[k]);
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    g_ptr_array_unref (store->pending_logs[k]);
  g_ptr_array_unref (store->pending_waiters);
  g_hash_table_unref (store->devices);
  canopy_backend_close (store->backend);
  g_mutex_clear (&store->backend_lock);
  g_free (store);
}

void
canopy_store_put (CanopyStore *store, CanopyRecordKind kind, const char *key, GVariant *value)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (value);

  g_return_if_fail (g_variant_is_of_type (owned, canopy_record_kind_type (kind)));
  g_hash_table_insert (store->pending[kind], g_strdup (key), g_variant_ref (owned));
  if (kind == CANOPY_RECORD_DEVICE)
    g_hash_table_insert (store->devices, g_strdup (key), g_variant_ref (owned));
}

void
canopy_store_remove (CanopyStore *store, CanopyRecordKind kind, const char *key)
{
  g_hash_table_insert (store->pending[kind], g_strdup (key), NULL);
  if (kind == CANOPY_RECORD_DEVICE)
    g_hash_table_remove (store->devices, key);
}

gboolean
canopy_store_merge_device (CanopyStore *store, const char *device_id, GVariant *value)
{
  GVariant *known = g_hash_table_lookup (store->devices, device_id);
  gint64 known_seen = 0, seen = 0;

  /* member 6: last seen */
  g_variant_get_child (value, 6, "x", &seen);
  if (known != NULL)
    g_variant_get_child (known, 6, "x", &known_seen);
  if (known != NULL && seen <= known_seen)
    return FALSE;
  g_hash_table_insert (store->devices, g_strdup (device_id), g_variant_ref (value));
  return TRUE;
}

GVariant *
canopy_store_get_device (CanopyStore *store, const char *device_id)
{
  return g_hash_table_lookup (store->devices, device_id);
}

guint
canopy_store_count_devices (const CanopyStore *store)
{
  return g_hash_table_size (store->devices);
}

gboolean
canopy_store_list (CanopyStore *store, CanopyRecordKind kind, CanopyBackendRecordFunc func,
                   gpointer user_data, GError **error)
{
  gboolean ok;

  /* The writer holds the lock for a whole transaction: waiting for the
   * lock is waiting for the batch in flight, without spinning the loop. */
  g_mutex_lock (&store->backend_lock);
  ok = canopy_backend_list (store->backend, kind, func, user_data, error);
  g_mutex_unlock (&store->backend_lock);
  return ok;
}

gboolean
canopy_store_with_backend (CanopyStore *store, CanopyStoreBackendFunc func, gpointer user_data,
                           GError **error)
{
  gboolean ok;

  g_mutex_lock (&store->backend_lock);
  ok = func (store->backend, user_data, error);
  g_mutex_unlock (&store->backend_lock);
  return ok;
}

char *
canopy_store_describe (CanopyStore *store)
{
  CanopyBackendInfo info;
  char *text;
  gboolean ok;

  g_mutex_lock (&store->backend_lock);
  ok = canopy_backend_get_info (store->backend, &info, NULL);
  g_mutex_unlock (&store->backend_lock);
  if (!ok)
    return g_strdup (canopy_backend_get_name (store->backend));
  text = g_strdup_printf (_("%s (%s, %s, schema version %u)"),
                          canopy_backend_get_name (store->backend), info.server_version,
                          info.location, info.schema_version);
  canopy_backend_info_clear (&info);
  return text;
}

void
canopy_store_append (CanopyStore *store, CanopyLogKind kind, GVariant *entry)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (entry);

  g_return_if_fail (g_variant_is_of_type (owned, canopy_log_kind_type (kind)));
  g_ptr_array_add (store->pending_logs[kind], g_variant_ref (owned));
}

void
canopy_store_audit (CanopyStore *store, const char *actor, const char *action,
                    const char *detail)
{
  g_message (_("Changed by the %s: %s %s"), actor, action, detail != NULL ? detail : "");
  canopy_store_append (store, CANOPY_LOG_AUDIT,
                       g_variant_new ("(xsss)", g_get_real_time (), actor, action,
                                      detail != NULL ? detail : ""));
}

GHashTable *
canopy_store_get_devices (CanopyStore *store)
{
  return store->devices;
}

gboolean
canopy_store_is_failing (const CanopyStore *store)
{
  return store->failing;
}

char *
canopy_store_check_health (CanopyStore *store, GError **error)
{
  CanopyBackendInfo info;
  gboolean ok;
  char *text = NULL;

  g_mutex_lock (&store->backend_lock);
  ok = canopy_backend_check_health (store->backend, error)
       && canopy_backend_get_info (store->backend, &info, error);
  g_mutex_unlock (&store->backend_lock);
  if (!ok)
    return NULL;
  text = g_strdup_printf (_("%s (%s, %s)"), canopy_backend_get_name (store->backend),
                          info.server_version, info.location);
  canopy_backend_info_clear (&info);
  return text;
}

void
canopy_store_device_history (GVariant *record, CanopyDeviceHistory *history)
{
  guint64 served;
  guint32 peers, bad;

  g_variant_get (record, "(&s@as@a(sy)&s&sxxxtuu)", NULL, NULL, NULL, NULL, &history->office,
                 &history->first_seen, NULL, &history->online_us, &served, &peers, &bad);
  history->verified_bytes_served = served;
  history->peers_served = peers;
  history->bad_chunks_served = bad;
}
