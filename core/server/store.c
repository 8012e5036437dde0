/* canopyd's storage: hot state lives in memory and is written behind to
 * the backend in batched transactions from a worker thread, so the main
 * loop never waits for the database and a failed write is retried, not
 * lost. */
#include "build-config.h"

#include "server/store.h"
#include "lib/i18n.h"

#include <gio/gio.h>

#define FLUSH_INTERVAL_MS 1000

struct _CanopyStore {
  CanopyBackend *backend;
  GMutex backend_lock; /* one thread at a time uses the backend */
  GHashTable *pending[CANOPY_N_RECORD_KINDS]; /* key → GVariant, newest wins */
  GPtrArray *pending_logs[CANOPY_N_LOG_KINDS]; /* GVariant, in order */
  GHashTable *devices;                        /* device ID → GVariant, as stored */
  gboolean flushing;
  gboolean failing;
  guint timer;
};

typedef struct {
  CanopyStore *store;
  GHashTable *batches[CANOPY_N_RECORD_KINDS];
  GPtrArray *logs[CANOPY_N_LOG_KINDS];
} Flush;

static void
variant_unref0 (gpointer value)
{
  if (value != NULL)
    g_variant_unref (value);
}

/* key → GVariant; a NULL value stands for the record's removal. */
static GHashTable *
new_table (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, variant_unref0);
}

static gboolean
load_device (const char *key, GVariant *value, gpointer user_data)
{
  g_hash_table_insert (user_data, g_strdup (key), g_variant_ref (value));
  return TRUE;
}

static gboolean on_flush_timer (gpointer user_data);

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
  store->devices = new_table ();
  if (!canopy_backend_list (store->backend, CANOPY_RECORD_DEVICE, load_device, store->devices,
                            error))
    {
      canopy_store_free (store);
      return NULL;
    }
  store->timer = g_timeout_add (FLUSH_INTERVAL_MS, on_flush_timer, store);
  return store;
}

/* Writes one batch per kind in one transaction; runs in a worker thread,
 * the only user of the backend while it runs. */
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
flush_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Flush *flush = task_data;
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&flush->store->backend_lock);
  ok = write_batches (flush->store->backend, flush->batches, flush->logs, &error);
  g_mutex_unlock (&flush->store->backend_lock);
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
flush_free (Flush *flush)
{
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    g_clear_pointer (&flush->batches[k], g_hash_table_unref);
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    g_clear_pointer (&flush->logs[k], g_ptr_array_unref);
  g_free (flush);
}

/* A failed batch goes back in the queue, under anything newer. */
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
}

static void
on_flushed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyStore *store = user_data;
  Flush *flush = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;

  store->flushing = FALSE;
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (store->failing)
        g_message (_("The storage backend accepts writes again; nothing was lost"));
      store->failing = FALSE;
      return;
    }
  requeue (store, flush);
  if (!store->failing)
    g_warning (_("Cannot save to the storage backend, will retry every second and keep "
                 "everything in memory until then: %s"), error->message);
  store->failing = TRUE;
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
  return FALSE;
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
  return flush;
}

static gboolean
on_flush_timer (gpointer user_data)
{
  CanopyStore *store = user_data;
  g_autoptr (GTask) task = NULL;

  if (store->flushing || !has_pending (store))
    return G_SOURCE_CONTINUE;
  store->flushing = TRUE;
  task = g_task_new (NULL, NULL, on_flushed, store);
  g_task_set_task_data (task, take_pending (store), (GDestroyNotify) flush_free);
  g_task_run_in_thread (task, flush_in_thread);
  return G_SOURCE_CONTINUE;
}

gboolean
canopy_store_flush (CanopyStore *store, GError **error)
{
  Flush *flush;
  gboolean ok;

  /* Let a write in flight finish first: one thread uses the backend. */
  while (store->flushing)
    g_main_context_iteration (NULL, TRUE);
  if (!has_pending (store))
    return TRUE;
  flush = take_pending (store);
  g_mutex_lock (&store->backend_lock);
  ok = write_batches (store->backend, flush->batches, flush->logs, error);
  g_mutex_unlock (&store->backend_lock);
  if (!ok)
    requeue (store, flush);
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
  if (!canopy_store_flush (store, &error))
    g_warning (_("Could not save the last changes before stopping: %s"), error->message);
  for (int k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    g_hash_table_unref (store->pending[k]);
  for (int k = 0; k < CANOPY_N_LOG_KINDS; k++)
    g_ptr_array_unref (store->pending_logs[k]);
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

  while (store->flushing)
    g_main_context_iteration (NULL, TRUE);
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
