/* Wrappers around a backend plugin's operations table. Types are checked
 * here, once, for every backend: a vendor's plugin stores bytes and cannot
 * get a record's shape wrong. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-backend"

#include "lib/backend.h"
#include "lib/i18n.h"

#include <canopy/record-table.h>

#include <string.h>

struct _CanopyBackend {
  const CanopyBackendOps *ops;
  /* the plugin's cluster operations, members it lacks NULL; all NULL for
   * a backend without clusters */
  CanopyBackendClusterOps cluster;
  gpointer handle;
  char *name;
};

static const char *const record_types[CANOPY_N_RECORD_KINDS] = {
  [CANOPY_RECORD_DEVICE] = CANOPY_RECORD_DEVICE_TYPE,
  [CANOPY_RECORD_OFFICE] = CANOPY_RECORD_OFFICE_TYPE,
  [CANOPY_RECORD_SETTING] = CANOPY_RECORD_SETTING_TYPE,
  [CANOPY_RECORD_CONTENT] = CANOPY_RECORD_CONTENT_TYPE,
  [CANOPY_RECORD_DEPLOYMENT] = CANOPY_RECORD_DEPLOYMENT_TYPE,
  [CANOPY_RECORD_PROGRESS] = CANOPY_RECORD_PROGRESS_TYPE,
  [CANOPY_RECORD_ACTIVATION] = CANOPY_RECORD_ACTIVATION_TYPE,
  [CANOPY_RECORD_ADMIN] = CANOPY_RECORD_ADMIN_TYPE,
  [CANOPY_RECORD_ADMIN_TOKEN] = CANOPY_RECORD_ADMIN_TOKEN_TYPE,
};

/* Older types of records, read as the current type: their fields then
 * the newer fields' zero values (a record of today's release is written
 * back in the current type the next time it changes). NULL: none. */
static const char *const legacy_record_types[CANOPY_N_RECORD_KINDS] = {
  [CANOPY_RECORD_CONTENT] = CANOPY_RECORD_CONTENT_TYPE_V1,
  [CANOPY_RECORD_DEPLOYMENT] = CANOPY_RECORD_DEPLOYMENT_TYPE_V1,
};

static const char *const log_types[CANOPY_N_LOG_KINDS] = {
  [CANOPY_LOG_TRANSFER] = CANOPY_LOG_TRANSFER_TYPE,
  [CANOPY_LOG_AUDIT] = CANOPY_LOG_AUDIT_TYPE,
};

const GVariantType *
canopy_record_kind_type (CanopyRecordKind kind)
{
  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS, NULL);
  return G_VARIANT_TYPE (record_types[kind]);
}

const GVariantType *
canopy_log_kind_type (CanopyLogKind kind)
{
  g_return_val_if_fail (kind < CANOPY_N_LOG_KINDS, NULL);
  return G_VARIANT_TYPE (log_types[kind]);
}

static gboolean
unsupported (const CanopyBackend *backend, const char *operation, GError **error)
{
  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNSUPPORTED,
               _("The storage backend \"%s\" does not support %s; use a backend that does"),
               backend->name, operation);
  return FALSE;
}

CanopyBackend *
canopy_backend_open (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                     const char *state_directory, GError **error)
{
  const CanopyBackendOps *ops;
  CanopyBackend *backend;
  gpointer handle;

  g_return_val_if_fail (canopy_plugin_get_descriptor (plugin)->kind == CANOPY_PLUGIN_KIND_BACKEND,
                        NULL);
  ops = canopy_plugin_get_ops (plugin);
  if (ops->open == NULL || ops->close == NULL || ops->put == NULL || ops->get == NULL
      || ops->list == NULL || ops->remove == NULL || ops->replace_all == NULL
      || ops->append == NULL || ops->list_log == NULL)
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNSUPPORTED,
                   _("The storage backend plugin \"%s\" lacks required operations; it cannot "
                     "be used"), canopy_plugin_get_name (plugin));
      return NULL;
    }
  handle = ops->open (element, state_directory, error);
  if (handle == NULL)
    return NULL;
  backend = g_new0 (CanopyBackend, 1);
  backend->ops = ops;
  backend->handle = handle;
  {
    const CanopyBackendClusterOps *cluster = canopy_plugin_get_symbol (
      plugin, CANOPY_BACKEND_CLUSTER_SYMBOL);

    /* A plugin built with a shorter table gets the members it lacks NULL. */
    if (cluster != NULL)
      memcpy (&backend->cluster, cluster, MIN (cluster->size, sizeof backend->cluster));
  }
  backend->name = g_strdup (canopy_plugin_get_name (plugin));
  return backend;
}

void
canopy_backend_close (CanopyBackend *backend)
{
  if (backend == NULL)
    return;
  backend->ops->close (backend->handle);
  g_free (backend->name);
  g_free (backend);
}

const char *
canopy_backend_get_name (const CanopyBackend *backend)
{
  return backend->name;
}

gboolean
canopy_backend_get_info (CanopyBackend *backend, CanopyBackendInfo *info, GError **error)
{
  memset (info, 0, sizeof *info);
  if (backend->ops->get_info == NULL)
    return unsupported (backend, _("version reporting"), error);
  return backend->ops->get_info (backend->handle, info, error);
}

void
canopy_backend_info_clear (CanopyBackendInfo *info)
{
  g_clear_pointer (&info->server_version, g_free);
  g_clear_pointer (&info->location, g_free);
}

gboolean
canopy_backend_check_health (CanopyBackend *backend, GError **error)
{
  if (backend->ops->check_health == NULL)
    return unsupported (backend, _("health checks"), error);
  return backend->ops->check_health (backend->handle, error);
}

gboolean
canopy_backend_begin (CanopyBackend *backend, GError **error)
{
  if (backend->ops->begin == NULL)
    return unsupported (backend, _("transactions"), error);
  return backend->ops->begin (backend->handle, error);
}

gboolean
canopy_backend_commit (CanopyBackend *backend, GError **error)
{
  if (backend->ops->commit == NULL)
    return unsupported (backend, _("transactions"), error);
  return backend->ops->commit (backend->handle, error);
}

void
canopy_backend_rollback (CanopyBackend *backend)
{
  if (backend->ops->rollback != NULL)
    backend->ops->rollback (backend->handle);
}

static gboolean
check_records (CanopyRecordKind kind, const CanopyRecord *records, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      g_return_val_if_fail (records[i].key != NULL && strlen (records[i].key) <= 256, FALSE);
      g_return_val_if_fail (g_variant_is_of_type (records[i].value, canopy_record_kind_type (kind)),
                            FALSE);
    }
  return TRUE;
}

gboolean
canopy_backend_put (CanopyBackend *backend, CanopyRecordKind kind, const CanopyRecord *records,
                    gsize n, GError **error)
{
  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS, FALSE);
  if (!check_records (kind, records, n))
    return FALSE;
  return backend->ops->put (backend->handle, kind, records, n, error);
}

/* @bytes as a record of an older type of @type, upgraded; NULL if they
 * are not one. */
static GVariant *
legacy_value (const GVariantType *type, GBytes *bytes)
{
  for (gsize k = 0; k < CANOPY_N_RECORD_KINDS; k++)
    {
      g_autoptr (GVariant) old = NULL;

      if (legacy_record_types[k] == NULL || !g_variant_type_equal (type, G_VARIANT_TYPE (
                                                                           record_types[k])))
        continue;
      old = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (legacy_record_types[k]),
                                                          bytes, FALSE));
      if (g_variant_is_normal_form (old))
        return canopy_record_upgrade (old, type);
    }
  return NULL;
}

GVariant *
canopy_record_from_bytes (CanopyRecordKind kind, GBytes *bytes)
{
  const GVariantType *type = canopy_record_kind_type (kind);
  g_autoptr (GVariant) value = g_variant_ref_sink (g_variant_new_from_bytes (type, bytes, FALSE));

  if (g_variant_is_normal_form (value))
    return g_steal_pointer (&value);
  return legacy_value (type, bytes);
}

/* Bytes a backend returned, as a value of @type, or a CORRUPT error. */
static GVariant *
checked_value (const CanopyBackend *backend, const GVariantType *type, const char *what,
               GBytes *bytes, GError **error)
{
  g_autoptr (GVariant) value = g_variant_ref_sink (g_variant_new_from_bytes (type, bytes, FALSE));
  GVariant *legacy;

  if (!g_variant_is_normal_form (value) && (legacy = legacy_value (type, bytes)) != NULL)
    return legacy;
  if (!g_variant_is_normal_form (value))
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
                   _("The %s record \"%s\" in the \"%s\" backend is damaged; restore the "
                     "database from a backup"), g_variant_type_peek_string (type), what,
                   backend->name);
      return NULL;
    }
  return g_steal_pointer (&value);
}

/* As checked_value() with the kind's type, or its legacy type upgraded. */
static GVariant *
checked_record (const CanopyBackend *backend, CanopyRecordKind kind, const char *key,
                GBytes *bytes, GError **error)
{
  return checked_value (backend, canopy_record_kind_type (kind), key, bytes, error);
}

GVariant *
canopy_backend_get (CanopyBackend *backend, CanopyRecordKind kind, const char *key,
                    GError **error)
{
  g_autoptr (GBytes) bytes = NULL;

  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS && key != NULL, NULL);
  bytes = backend->ops->get (backend->handle, kind, key, error);
  if (bytes == NULL)
    return NULL;
  return checked_record (backend, kind, key, bytes, error);
}

typedef struct {
  const CanopyBackend *backend;
  const GVariantType *type;
  CanopyRecordKind kind;
  CanopyBackendRecordFunc record_func;
  CanopyBackendLogFunc log_func;
  gpointer user_data;
  GError *error;
} ListState;

static gboolean
on_record (const char *key, const guint8 *value, gsize length, gpointer user_data)
{
  ListState *state = user_data;
  g_autoptr (GBytes) bytes = g_bytes_new (value, length);
  g_autoptr (GVariant) checked = checked_record (state->backend, state->kind, key, bytes,
                                                 &state->error);

  return checked != NULL && state->record_func (key, checked, state->user_data);
}

gboolean
canopy_backend_list (CanopyBackend *backend, CanopyRecordKind kind,
                     CanopyBackendRecordFunc func, gpointer user_data, GError **error)
{
  ListState state = { backend, canopy_record_kind_type (kind), kind, func, NULL, user_data, NULL };

  if (!backend->ops->list (backend->handle, kind, on_record, &state, error))
    {
      g_clear_error (&state.error);
      return FALSE;
    }
  if (state.error != NULL)
    {
      g_propagate_error (error, state.error);
      return FALSE;
    }
  return TRUE;
}

gboolean
canopy_backend_remove (CanopyBackend *backend, CanopyRecordKind kind, const char *const *keys,
                       GError **error)
{
  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS, FALSE);
  return backend->ops->remove (backend->handle, kind, keys, error);
}

gboolean
canopy_backend_replace_all (CanopyBackend *backend, CanopyRecordKind kind,
                            const CanopyRecord *records, gsize n, GError **error)
{
  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS, FALSE);
  if (!check_records (kind, records, n))
    return FALSE;
  return backend->ops->replace_all (backend->handle, kind, records, n, error);
}

gboolean
canopy_backend_append (CanopyBackend *backend, CanopyLogKind kind, GVariant *const *entries,
                       gsize n, GError **error)
{
  g_return_val_if_fail (kind < CANOPY_N_LOG_KINDS, FALSE);
  for (gsize i = 0; i < n; i++)
    g_return_val_if_fail (g_variant_is_of_type (entries[i], canopy_log_kind_type (kind)), FALSE);
  return backend->ops->append (backend->handle, kind, entries, n, error);
}

static gboolean
on_log_entry (gint64 id, const guint8 *value, gsize length, gpointer user_data)
{
  ListState *state = user_data;
  g_autoptr (GBytes) bytes = g_bytes_new (value, length);
  g_autofree char *what = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autoptr (GVariant) checked = checked_value (state->backend, state->type, what, bytes,
                                                &state->error);

  return checked != NULL && state->log_func (id, checked, state->user_data);
}

gboolean
canopy_backend_list_log (CanopyBackend *backend, CanopyLogKind kind, gint64 after, guint limit,
                         CanopyBackendLogFunc func, gpointer user_data, GError **error)
{
  ListState state = { backend, canopy_log_kind_type (kind), 0, NULL, func, user_data, NULL };

  if (!backend->ops->list_log (backend->handle, kind, after, limit, on_log_entry, &state, error))
    {
      g_clear_error (&state.error);
      return FALSE;
    }
  if (state.error != NULL)
    {
      g_propagate_error (error, state.error);
      return FALSE;
    }
  return TRUE;
}

/* --- clusters ------------------------------------------------------------ */

gboolean
canopy_backend_supports_cluster (const CanopyBackend *backend)
{
  return backend->cluster.prepare != NULL && backend->cluster.heartbeat != NULL
         && backend->cluster.leave != NULL && backend->cluster.list_servers != NULL
         && backend->cluster.take_lease != NULL && backend->cluster.list_leases != NULL;
}

gboolean
canopy_backend_supports_notification (const CanopyBackend *backend)
{
  return backend->cluster.wait_changes != NULL;
}

static gboolean
no_cluster (const CanopyBackend *backend, GError **error)
{
  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNSUPPORTED,
               _("The storage backend \"%s\" cannot be shared by several servers; remove "
                 "<cluster> from the configuration or use the postgresql backend"),
               backend->name);
  return FALSE;
}

gboolean
canopy_backend_cluster_prepare (CanopyBackend *backend, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  return backend->cluster.prepare (backend->handle, error);
}

gboolean
canopy_backend_cluster_heartbeat (CanopyBackend *backend, const char *server_id,
                                  const char *name, gboolean starting, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  return backend->cluster.heartbeat (backend->handle, server_id, name, starting, error);
}

gboolean
canopy_backend_cluster_leave (CanopyBackend *backend, const char *server_id, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  return backend->cluster.leave (backend->handle, server_id, error);
}

gboolean
canopy_backend_cluster_list_servers (CanopyBackend *backend, CanopyClusterServerFunc func,
                                     gpointer user_data, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  return backend->cluster.list_servers (backend->handle, func, user_data, error);
}

gboolean
canopy_backend_cluster_take_lease (CanopyBackend *backend, const char *name, const char *holder,
                                   const char *detail, guint duration_ms,
                                   CanopyClusterLease *lease, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  memset (lease, 0, sizeof *lease);
  return backend->cluster.take_lease (backend->handle, name, holder, detail, duration_ms, lease,
                                      error);
}

gboolean
canopy_backend_cluster_list_leases (CanopyBackend *backend, CanopyClusterLeaseFunc func,
                                    gpointer user_data, GError **error)
{
  if (!canopy_backend_supports_cluster (backend))
    return no_cluster (backend, error);
  return backend->cluster.list_leases (backend->handle, func, user_data, error);
}

gboolean
canopy_backend_cluster_wait_changes (CanopyBackend *backend, guint timeout_ms,
                                     CanopyChangeKinds *changed, GError **error)
{
  *changed = 0;
  if (backend->cluster.wait_changes == NULL)
    return unsupported (backend, _("change notification"), error);
  return backend->cluster.wait_changes (backend->handle, timeout_ms, changed, error);
}
