/* Several canopyd on one database. The worker thread ticks every second:
 * heartbeat, read the registry, take or renew the wanted leases, then
 * wait for the rest of the second for changes (notified) or compare what
 * is stored with what it was (polled). What changed is read whole on the
 * thread and handed to the main loop, which merges it: the fleet-sized
 * kinds row by row, a slice at a time. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-cluster"

#include "server/cluster.h"
#include "lib/background-thread.h"
#include "lib/i18n.h"

#include <string.h>

#define TICK_MS 1000
/* A lease is believed held until this long before the database lets it
 * lapse: a late renewal never lets two servers lead one office. */
#define LEASE_MARGIN_MS 3000
/* How often deliveries are looked for on the main loop. */
#define DELIVER_MS 100

/* The kinds other servers' changes to which this server takes in. */
static const CanopyRecordKind shared_kinds[] = {
  CANOPY_RECORD_CONTENT, CANOPY_RECORD_DEPLOYMENT, CANOPY_RECORD_SETTING,
  CANOPY_RECORD_OFFICE, CANOPY_RECORD_ACTIVATION, CANOPY_RECORD_DEVICE,
  CANOPY_RECORD_ADMIN, CANOPY_RECORD_ADMIN_TOKEN, CANOPY_RECORD_PROGRESS,
};

/* Devices and their licences change with every heartbeat of every device:
 * they are read every 10 s rather than at each change, which keeps a
 * cluster of tens of thousands of devices from reading them every second. */
#define SLOW_KINDS ((1u << CANOPY_RECORD_ACTIVATION) | (1u << CANOPY_RECORD_DEVICE))
#define SLOW_EVERY_US (10 * G_USEC_PER_SEC)

/* Every device's progress is written as it fetches, on every server: when
 * notified, it is read whole at most once a second, so a cluster of busy
 * devices costs one read a second and not one per report. (Polled, it is
 * read once a tick like the other kinds.) */
#define PROGRESS_KIND (1u << CANOPY_RECORD_PROGRESS)
#define PROGRESS_EVERY_US (1 * G_USEC_PER_SEC)

/* Devices, their licences and their progress are as many as the fleet:
 * only the rows that changed since the last delivery are handed on, with
 * the keys of those that went, and the main loop merges them a slice at
 * a time, so that a fleet's worth of rows never holds up a heartbeat. */
#define ROW_KINDS (SLOW_KINDS | PROGRESS_KIND)
#define ROW_SLICE_US 2000

typedef struct {
  char *holder;
  char *detail;
  gint64 valid_until; /* monotonic µs; only meaningful when we hold it */
} LeaseView;

struct _CanopyCluster {
  CanopyBackend *backend; /* the thread's, after start */
  char *server_id;
  char *name;
  guint lease_ms;
  gboolean notified;
  char *checksums[CANOPY_N_RECORD_KINDS]; /* of what was last delivered */
  GHashTable *rows[CANOPY_N_RECORD_KINDS]; /* ROW_KINDS: key → GVariant last delivered */
  gint64 slow_read_at; /* monotonic µs the slow kinds were last read */
  gboolean progress_due; /* progress was notified and not read since */
  gint64 progress_read_at; /* monotonic µs progress was last read */

  GThread *thread;
  gint stopping;
  GMainContext *context;
  guint deliver_source;
  GAsyncQueue *deliveries; /* CanopyClusterChanges * */
  GQueue pending;          /* CanopyClusterChanges * whose rows are being merged */
  guint rows_source;
  gint leases_dirty;
  CanopyClusterCallbacks callbacks;
  gpointer user_data;

  GMutex lock; /* what follows */
  GHashTable *wanted;   /* office → detail to publish */
  GPtrArray *dropped;   /* offices to give up */
  GHashTable *leases;   /* office → LeaseView */
  GPtrArray *members;   /* CanopyClusterMember */
  char *problem;
};

static void
lease_view_free (LeaseView *view)
{
  g_free (view->holder);
  g_free (view->detail);
  g_free (view);
}

void
canopy_cluster_member_free (CanopyClusterMember *member)
{
  g_free (member->server_id);
  g_free (member->name);
  g_free (member);
}

static void
cluster_record_free (CanopyClusterRecord *record)
{
  g_free (record->key);
  g_variant_unref (record->value);
  g_free (record);
}

static void
changes_free (CanopyClusterChanges *changes)
{
  for (guint k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    {
      g_clear_pointer (&changes->records[k], g_ptr_array_unref);
      g_clear_pointer (&changes->removed[k], g_ptr_array_unref);
    }
  g_free (changes);
}

/* --- reading records ----------------------------------------------------- */

typedef struct {
  GPtrArray *records;
  GChecksum *checksum;
} Reading;

static gboolean
read_one (const char *key, GVariant *value, gpointer user_data)
{
  Reading *reading = user_data;
  CanopyClusterRecord *record = g_new0 (CanopyClusterRecord, 1);

  record->key = g_strdup (key);
  record->value = g_variant_ref (value);
  g_ptr_array_add (reading->records, record);
  g_checksum_update (reading->checksum, (const guchar *) key, (gssize) strlen (key) + 1);
  g_checksum_update (reading->checksum, g_variant_get_data (value),
                     (gssize) g_variant_get_size (value));
  return TRUE;
}

/* Every record of @kind and their digest, or NULL with @error. */
static GPtrArray *
read_kind (CanopyBackend *backend, CanopyRecordKind kind, char **digest, GError **error)
{
  g_autoptr (GPtrArray) records = g_ptr_array_new_with_free_func (
    (GDestroyNotify) cluster_record_free);
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  Reading reading = { records, checksum };

  if (!canopy_backend_list (backend, kind, read_one, &reading, error))
    return NULL;
  *digest = g_strdup (g_checksum_get_string (checksum));
  return g_steal_pointer (&records);
}

/* Keeps of @records those that differ from what @last holds, and
 * returns the keys @last holds that @records lacks; @last then holds
 * @records. */
static GPtrArray *
keep_changed (GHashTable **last, GPtrArray **records)
{
  g_autoptr (GPtrArray) read = g_steal_pointer (records);
  GHashTable *now = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_variant_unref);
  GPtrArray *removed = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  *records = g_ptr_array_new_with_free_func ((GDestroyNotify) cluster_record_free);
  g_ptr_array_set_free_func (read, NULL);
  for (guint i = 0; i < read->len; i++)
    {
      CanopyClusterRecord *r = g_ptr_array_index (read, i);
      GVariant *before = *last != NULL ? g_hash_table_lookup (*last, r->key) : NULL;

      g_hash_table_insert (now, g_strdup (r->key), g_variant_ref (r->value));
      if (before != NULL && g_variant_equal (before, r->value))
        cluster_record_free (r);
      else
        g_ptr_array_add (*records, r);
    }
  if (*last != NULL)
    {
      g_hash_table_iter_init (&iter, *last);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        if (!g_hash_table_contains (now, key))
          g_ptr_array_add (removed, g_strdup (key));
      g_hash_table_unref (*last);
    }
  *last = now;
  return removed;
}

/* Reads @kinds and queues for the main loop those whose records differ
 * from what was last delivered. */
static gboolean
deliver_kinds (CanopyCluster *cluster, CanopyChangeKinds kinds, GError **error)
{
  CanopyClusterChanges *changes = g_new0 (CanopyClusterChanges, 1);

  for (gsize i = 0; i < G_N_ELEMENTS (shared_kinds); i++)
    {
      CanopyRecordKind kind = shared_kinds[i];
      g_autofree char *digest = NULL;
      GPtrArray *records;

      if ((kinds & (1u << kind)) == 0)
        continue;
      records = read_kind (cluster->backend, kind, &digest, error);
      if (records == NULL)
        {
          changes_free (changes);
          return FALSE;
        }
      if (g_strcmp0 (digest, cluster->checksums[kind]) == 0)
        {
          g_ptr_array_unref (records);
          continue;
        }
      g_free (cluster->checksums[kind]);
      cluster->checksums[kind] = g_steal_pointer (&digest);
      if ((ROW_KINDS & (1u << kind)) != 0)
        changes->removed[kind] = keep_changed (&cluster->rows[kind], &records);
      changes->kinds |= 1u << kind;
      changes->records[kind] = records;
    }
  if (changes->kinds == 0)
    {
      changes_free (changes);
      return TRUE;
    }
  g_async_queue_push (cluster->deliveries, changes);
  g_main_context_wakeup (cluster->context);
  return TRUE;
}

static CanopyChangeKinds
all_shared_kinds (void)
{
  CanopyChangeKinds kinds = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (shared_kinds); i++)
    kinds |= 1u << shared_kinds[i];
  return kinds;
}

/* --- the thread ---------------------------------------------------------- */

static void
note_problem (CanopyCluster *cluster, const GError *error)
{
  gboolean first;

  g_mutex_lock (&cluster->lock);
  first = cluster->problem == NULL || !g_str_equal (cluster->problem, error->message);
  g_free (cluster->problem);
  cluster->problem = g_strdup (error->message);
  g_mutex_unlock (&cluster->lock);
  /* once per distinct problem, not every second */
  if (first)
    g_warning (_("The cluster's database work failed; the server keeps serving its own "
                 "devices and tries again every second: %s"), error->message);
}

static void
clear_problem (CanopyCluster *cluster)
{
  g_mutex_lock (&cluster->lock);
  if (cluster->problem != NULL)
    g_message (_("The cluster's database work succeeds again"));
  g_clear_pointer (&cluster->problem, g_free);
  g_mutex_unlock (&cluster->lock);
}

static gboolean
add_member (const CanopyClusterServer *server, gpointer user_data)
{
  CanopyClusterMember *member = g_new0 (CanopyClusterMember, 1);

  member->server_id = g_strdup (server->server_id);
  member->name = g_strdup (server->name);
  member->started_at = server->started_at;
  member->heartbeat_at = server->heartbeat_at;
  member->silent_us = server->silent_us;
  g_ptr_array_add (user_data, member);
  return TRUE;
}

static gboolean
beat (CanopyCluster *cluster, GError **error)
{
  g_autoptr (GPtrArray) members = g_ptr_array_new_with_free_func (
    (GDestroyNotify) canopy_cluster_member_free);

  if (!canopy_backend_cluster_heartbeat (cluster->backend, cluster->server_id, cluster->name,
                                         FALSE, error)
      || !canopy_backend_cluster_list_servers (cluster->backend, add_member, members, error))
    return FALSE;
  g_mutex_lock (&cluster->lock);
  g_ptr_array_unref (cluster->members);
  cluster->members = g_steal_pointer (&members);
  g_mutex_unlock (&cluster->lock);
  return TRUE;
}

/* Records what the database says of @office's lease; TRUE when it is not
 * what this server believed. */
static gboolean
note_lease (CanopyCluster *cluster, const char *office, const CanopyClusterLease *lease,
            gint64 asked_at)
{
  LeaseView *view = g_hash_table_lookup (cluster->leases, office);
  gboolean ours = g_strcmp0 (lease->holder, cluster->server_id) == 0
                  && lease->remaining_us > 0;
  gboolean was_ours = view != NULL && g_strcmp0 (view->holder, cluster->server_id) == 0
                      && g_get_monotonic_time () < view->valid_until;
  gboolean changed = view == NULL || g_strcmp0 (view->holder, lease->holder) != 0
                     || g_strcmp0 (view->detail, lease->detail) != 0 || ours != was_ours;

  if (view == NULL)
    {
      view = g_new0 (LeaseView, 1);
      g_hash_table_insert (cluster->leases, g_strdup (office), view);
    }
  g_free (view->holder);
  g_free (view->detail);
  view->holder = g_strdup (lease->holder);
  view->detail = g_strdup (lease->detail);
  /* counted from before the request: the database's expiry is later */
  view->valid_until = ours ? asked_at + (gint64) cluster->lease_ms * 1000
                               - LEASE_MARGIN_MS * 1000
                           : 0;
  return changed;
}

static gboolean
tend_leases (CanopyCluster *cluster, GError **error)
{
  g_autoptr (GHashTable) wanted = NULL;
  g_autoptr (GPtrArray) dropped = NULL;
  GHashTableIter iter;
  gpointer key, value;
  gboolean changed = FALSE;

  g_mutex_lock (&cluster->lock);
  wanted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_iter_init (&iter, cluster->wanted);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (wanted, g_strdup (key), g_strdup (value));
  dropped = g_steal_pointer (&cluster->dropped);
  cluster->dropped = g_ptr_array_new_with_free_func (g_free);
  g_mutex_unlock (&cluster->lock);

  for (guint i = 0; i < dropped->len; i++)
    {
      const char *office = g_ptr_array_index (dropped, i);
      CanopyClusterLease lease;

      if (g_hash_table_contains (wanted, office))
        continue;
      /* taking it for no time lets it lapse now, if it is ours */
      if (!canopy_backend_cluster_take_lease (cluster->backend, office, cluster->server_id, "",
                                              0, &lease, error))
        return FALSE;
      g_mutex_lock (&cluster->lock);
      g_hash_table_remove (cluster->leases, office);
      g_mutex_unlock (&cluster->lock);
    }
  g_hash_table_iter_init (&iter, wanted);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gint64 asked_at = g_get_monotonic_time ();
      CanopyClusterLease lease;

      if (!canopy_backend_cluster_take_lease (cluster->backend, key, cluster->server_id, value,
                                              cluster->lease_ms, &lease, error))
        return FALSE;
      g_mutex_lock (&cluster->lock);
      changed |= note_lease (cluster, key, &lease, asked_at);
      g_mutex_unlock (&cluster->lock);
    }
  if (changed)
    {
      g_atomic_int_set (&cluster->leases_dirty, 1);
      g_main_context_wakeup (cluster->context);
    }
  return TRUE;
}

static gboolean
read_slow_kinds (CanopyCluster *cluster, GError **error)
{
  gint64 now = g_get_monotonic_time ();

  if (now - cluster->slow_read_at < SLOW_EVERY_US)
    return TRUE;
  if (!deliver_kinds (cluster, SLOW_KINDS, error))
    return FALSE;
  cluster->slow_read_at = now;
  return TRUE;
}

/* The rest of the tick: changes notified until then, or one poll. */
static gboolean
watch_changes (CanopyCluster *cluster, gint64 tick_end, GError **error)
{
  CanopyChangeKinds kinds = 0;

  if (!cluster->notified)
    {
      if (!deliver_kinds (cluster, all_shared_kinds () & ~SLOW_KINDS, error))
        return FALSE;
      while (!g_atomic_int_get (&cluster->stopping) && g_get_monotonic_time () < tick_end)
        g_usleep (MIN (100 * 1000, MAX (0, tick_end - g_get_monotonic_time ())));
      return TRUE;
    }
  while (!g_atomic_int_get (&cluster->stopping))
    {
      gint64 now_us = g_get_monotonic_time ();
      gint64 until = tick_end;
      CanopyChangeKinds now = 0;

      if (cluster->progress_due)
        {
          if (now_us - cluster->progress_read_at >= PROGRESS_EVERY_US)
            {
              if (!deliver_kinds (cluster, PROGRESS_KIND, error))
                return FALSE;
              cluster->progress_due = FALSE;
              cluster->progress_read_at = now_us;
              continue;
            }
          until = MIN (until, cluster->progress_read_at + PROGRESS_EVERY_US);
        }
      if (now_us >= tick_end)
        break;
      if (!canopy_backend_cluster_wait_changes (cluster->backend,
                                                (guint) MAX (1, (until - now_us) / 1000), &now,
                                                error))
        return FALSE;
      cluster->progress_due |= (now & PROGRESS_KIND) != 0;
      kinds |= now & ~SLOW_KINDS & ~PROGRESS_KIND;
      /* at once: the two seconds a change may take include the write-behind */
      if (kinds != 0)
        {
          if (!deliver_kinds (cluster, kinds, error))
            return FALSE;
          kinds = 0;
        }
    }
  return TRUE;
}

static gpointer
run_thread (gpointer data)
{
  CanopyCluster *cluster = data;
  /* after a failure, notifications may have been lost with the session:
   * everything is read again once the database answers */
  gboolean resync = FALSE;

  while (!g_atomic_int_get (&cluster->stopping))
    {
      gint64 tick_end = g_get_monotonic_time () + TICK_MS * 1000;
      g_autoptr (GError) error = NULL;

      if (beat (cluster, &error) && tend_leases (cluster, &error)
          && (!resync || deliver_kinds (cluster, all_shared_kinds (), &error))
          && read_slow_kinds (cluster, &error) && watch_changes (cluster, tick_end, &error))
        {
          resync = FALSE;
          clear_problem (cluster);
          continue;
        }
      note_problem (cluster, error);
      resync = TRUE;
      while (!g_atomic_int_get (&cluster->stopping) && g_get_monotonic_time () < tick_end)
        g_usleep (100 * 1000);
    }
  return NULL;
}

/* --- the main loop's side ------------------------------------------------ */

/* Merges pending rows, the last first, until a slice's time is used;
 * whatever is merged is freed at once. */
static gboolean
merge_rows (gpointer user_data)
{
  CanopyCluster *cluster = user_data;
  gint64 end = g_get_monotonic_time () + ROW_SLICE_US;
  CanopyClusterChanges *changes;

  while ((changes = g_queue_peek_head (&cluster->pending)) != NULL)
    {
      for (guint k = 0; k < CANOPY_N_RECORD_KINDS; k++)
        {
          GPtrArray *records = changes->records[k], *removed = changes->removed[k];

          while (records != NULL && records->len > 0)
            {
              CanopyClusterRecord *r = g_ptr_array_steal_index_fast (records, records->len - 1);

              cluster->callbacks.row_changed (k, r->key, r->value, cluster->user_data);
              cluster_record_free (r);
              if (g_get_monotonic_time () >= end)
                return G_SOURCE_CONTINUE;
            }
          for (guint i = 0; removed != NULL && i < removed->len; i++)
            cluster->callbacks.row_changed (k, g_ptr_array_index (removed, i), NULL,
                                            cluster->user_data);
          g_clear_pointer (&changes->removed[k], g_ptr_array_unref);
        }
      changes_free (g_queue_pop_head (&cluster->pending));
    }
  cluster->rows_source = 0;
  return G_SOURCE_REMOVE;
}

/* Hands the kinds read whole to the main loop at once, and queues the
 * rows to be merged a slice at a time. */
static void
take_changes (CanopyCluster *cluster, CanopyClusterChanges *changes)
{
  CanopyClusterChanges *rows = g_new0 (CanopyClusterChanges, 1);

  for (guint k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    if ((ROW_KINDS & (1u << k)) != 0 && (changes->kinds & (1u << k)) != 0)
      {
        rows->kinds |= 1u << k;
        rows->records[k] = g_steal_pointer (&changes->records[k]);
        rows->removed[k] = g_steal_pointer (&changes->removed[k]);
        changes->kinds &= ~(1u << k);
      }
  if (changes->kinds != 0)
    cluster->callbacks.changed (changes, cluster->user_data);
  changes_free (changes);
  if (rows->kinds == 0)
    {
      changes_free (rows);
      return;
    }
  g_queue_push_tail (&cluster->pending, rows);
  if (cluster->rows_source == 0)
    {
      GSource *source = g_idle_source_new ();

      /* not below the sessions' own priority: the rows are merged even
       * while every heartbeat is answered */
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, merge_rows, cluster, NULL);
      cluster->rows_source = g_source_attach (source, cluster->context);
      g_source_unref (source);
    }
}

static gboolean
deliver (gpointer user_data)
{
  CanopyCluster *cluster = user_data;
  CanopyClusterChanges *changes;

  while ((changes = g_async_queue_try_pop (cluster->deliveries)) != NULL)
    take_changes (cluster, changes);
  if (g_atomic_int_compare_and_exchange (&cluster->leases_dirty, 1, 0))
    cluster->callbacks.leases_changed (cluster->user_data);
  else
    {
      /* a held lease whose renewal is overdue is no longer believed */
      GHashTableIter iter;
      gpointer value;
      gboolean lapsed = FALSE;
      gint64 now = g_get_monotonic_time ();

      g_mutex_lock (&cluster->lock);
      g_hash_table_iter_init (&iter, cluster->leases);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          LeaseView *view = value;

          if (view->valid_until != 0 && now >= view->valid_until)
            {
              view->valid_until = 0;
              lapsed = TRUE;
            }
        }
      g_mutex_unlock (&cluster->lock);
      if (lapsed)
        cluster->callbacks.leases_changed (cluster->user_data);
    }
  return G_SOURCE_CONTINUE;
}

/* A backend that cannot notify is refused changes="notify" (the default)
 * before anything is opened, rather than left polling behind the
 * configuration's back. One that cannot be shared at all is refused when
 * it is prepared, saying so. */
static gboolean
check_changes_mode (const CanopyPlugin *plugin, gboolean poll, GError **error)
{
  const CanopyBackendClusterOps *ops = canopy_plugin_get_symbol (plugin,
                                                                 CANOPY_BACKEND_CLUSTER_SYMBOL);

  if (poll || ops == NULL
      || (ops->size >= G_STRUCT_OFFSET (CanopyBackendClusterOps, wait_changes)
                         + sizeof ops->wait_changes
          && ops->wait_changes != NULL))
    return TRUE;
  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNSUPPORTED,
               _("The storage backend \"%s\" cannot notify the servers of a cluster of each "
                 "other's changes (changes=\"notify\", the default); write changes=\"poll\" "
                 "in <cluster> so that they poll the database for them"),
               canopy_plugin_get_name (plugin));
  return FALSE;
}

CanopyCluster *
canopy_cluster_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                    const char *state_directory, const char *server_id, const char *name,
                    guint lease_s, gboolean poll, GError **error)
{
  g_autoptr (CanopyCluster) cluster = NULL;
  CanopyChangeKinds ignored = 0;

  if (!check_changes_mode (plugin, poll, error))
    return NULL;
  cluster = g_new0 (CanopyCluster, 1);
  g_mutex_init (&cluster->lock);
  cluster->server_id = g_strdup (server_id);
  cluster->name = g_strdup (name);
  cluster->lease_ms = lease_s * 1000;
  cluster->wanted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  cluster->dropped = g_ptr_array_new_with_free_func (g_free);
  cluster->leases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) lease_view_free);
  cluster->members = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_cluster_member_free);
  cluster->deliveries = g_async_queue_new_full ((GDestroyNotify) changes_free);
  cluster->backend = canopy_backend_open (plugin, element, state_directory, error);
  if (cluster->backend == NULL)
    return NULL;
  cluster->notified = !poll && canopy_backend_supports_notification (cluster->backend);
  if (!canopy_backend_cluster_prepare (cluster->backend, error)
      || !canopy_backend_cluster_heartbeat (cluster->backend, server_id, name, TRUE, error)
      || !beat (cluster, error)
      /* listening from now on: nothing changed after this is missed */
      || (cluster->notified
          && !canopy_backend_cluster_wait_changes (cluster->backend, 0, &ignored, error)))
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (shared_kinds); i++)
    {
      CanopyRecordKind kind = shared_kinds[i];
      g_autoptr (GPtrArray) records = read_kind (cluster->backend, kind,
                                                 &cluster->checksums[kind], error);
      if (records == NULL)
        return NULL;
      /* what the server loads at start is where the rows' changes begin */
      if ((ROW_KINDS & (1u << kind)) != 0)
        g_ptr_array_unref (keep_changed (&cluster->rows[kind], &records));
    }
  cluster->slow_read_at = g_get_monotonic_time ();
  return g_steal_pointer (&cluster);
}

void
canopy_cluster_start (CanopyCluster *cluster, const CanopyClusterCallbacks *callbacks,
                      gpointer user_data)
{
  GSource *source = g_timeout_source_new (DELIVER_MS);

  cluster->callbacks = *callbacks;
  cluster->user_data = user_data;
  cluster->context = g_main_context_ref_thread_default ();
  g_source_set_callback (source, deliver, cluster, NULL);
  cluster->deliver_source = g_source_attach (source, cluster->context);
  g_source_unref (source);
  cluster->thread = canopy_background_thread_new ("cluster", run_thread, cluster);
}

void
canopy_cluster_free (CanopyCluster *cluster)
{
  if (cluster == NULL)
    return;
  g_atomic_int_set (&cluster->stopping, 1);
  if (cluster->thread != NULL)
    g_thread_join (cluster->thread);
  if (cluster->deliver_source != 0)
    g_source_destroy (g_main_context_find_source_by_id (cluster->context,
                                                        cluster->deliver_source));
  if (cluster->rows_source != 0)
    g_source_destroy (g_main_context_find_source_by_id (cluster->context,
                                                        cluster->rows_source));
  g_queue_clear_full (&cluster->pending, (GDestroyNotify) changes_free);
  if (cluster->backend != NULL)
    {
      g_autoptr (GError) error = NULL;

      /* the others may take this server's offices at once */
      if (!canopy_backend_cluster_leave (cluster->backend, cluster->server_id, &error))
        g_warning (_("This server could not leave the cluster's registry; the others see its "
                     "heartbeat lapse instead: %s"), error->message);
      canopy_backend_close (cluster->backend);
    }
  g_clear_pointer (&cluster->context, g_main_context_unref);
  g_async_queue_unref (cluster->deliveries);
  for (guint k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    {
      g_free (cluster->checksums[k]);
      g_clear_pointer (&cluster->rows[k], g_hash_table_unref);
    }
  g_hash_table_unref (cluster->wanted);
  g_ptr_array_unref (cluster->dropped);
  g_hash_table_unref (cluster->leases);
  g_ptr_array_unref (cluster->members);
  g_free (cluster->problem);
  g_free (cluster->server_id);
  g_free (cluster->name);
  g_mutex_clear (&cluster->lock);
  g_free (cluster);
}

const char *
canopy_cluster_get_server_id (const CanopyCluster *cluster)
{
  return cluster->server_id;
}

gboolean
canopy_cluster_is_notified (const CanopyCluster *cluster)
{
  return cluster->notified;
}

void
canopy_cluster_want_lease (CanopyCluster *cluster, const char *office, const char *detail)
{
  g_mutex_lock (&cluster->lock);
  g_hash_table_insert (cluster->wanted, g_strdup (office), g_strdup (detail));
  g_mutex_unlock (&cluster->lock);
}

void
canopy_cluster_drop_lease (CanopyCluster *cluster, const char *office)
{
  g_mutex_lock (&cluster->lock);
  if (g_hash_table_remove (cluster->wanted, office))
    g_ptr_array_add (cluster->dropped, g_strdup (office));
  g_mutex_unlock (&cluster->lock);
}

void
canopy_cluster_keep_only (CanopyCluster *cluster, GHashTable *offices)
{
  GHashTableIter iter;
  gpointer office;

  g_mutex_lock (&cluster->lock);
  g_hash_table_iter_init (&iter, cluster->wanted);
  while (g_hash_table_iter_next (&iter, &office, NULL))
    if (!g_hash_table_contains (offices, office))
      {
        g_ptr_array_add (cluster->dropped, g_strdup (office));
        g_hash_table_iter_remove (&iter);
      }
  g_mutex_unlock (&cluster->lock);
}

gboolean
canopy_cluster_holds_lease (CanopyCluster *cluster, const char *office, char **holder_detail)
{
  LeaseView *view;
  gboolean held;

  g_mutex_lock (&cluster->lock);
  view = g_hash_table_lookup (cluster->leases, office);
  held = view != NULL && g_strcmp0 (view->holder, cluster->server_id) == 0
         && g_get_monotonic_time () < view->valid_until;
  if (holder_detail != NULL)
    *holder_detail = g_strdup (view != NULL && !held
                                   && g_strcmp0 (view->holder, cluster->server_id) != 0
                                 ? view->detail
                                 : "");
  g_mutex_unlock (&cluster->lock);
  return held;
}

GPtrArray *
canopy_cluster_get_members (CanopyCluster *cluster)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_cluster_member_free);

  g_mutex_lock (&cluster->lock);
  for (guint i = 0; i < cluster->members->len; i++)
    {
      const CanopyClusterMember *m = g_ptr_array_index (cluster->members, i);
      CanopyClusterMember *c = g_new0 (CanopyClusterMember, 1);

      *c = *m;
      c->server_id = g_strdup (m->server_id);
      c->name = g_strdup (m->name);
      g_ptr_array_add (copy, c);
    }
  g_mutex_unlock (&cluster->lock);
  return copy;
}

char *
canopy_cluster_get_problem (CanopyCluster *cluster)
{
  char *problem;

  g_mutex_lock (&cluster->lock);
  problem = g_strdup (cluster->problem);
  g_mutex_unlock (&cluster->lock);
  return problem;
}
