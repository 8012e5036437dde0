/* The core's side of the storage contract: opens a backend plugin and
 * checks every record's type on the way in and out, so a damaged or
 * foreign record is an error, never misread. */
#pragma once

#include <glib.h>
#include <canopy/backend.h>
#include <canopy/backend-cluster.h>
#include "lib/plugin-loader.h"

G_BEGIN_DECLS

typedef struct _CanopyBackend CanopyBackend;

/* The GVariant type of each record and log kind. */
const GVariantType *canopy_record_kind_type (CanopyRecordKind kind);
const GVariantType *canopy_log_kind_type (CanopyLogKind kind);

/**
 * canopy_record_from_bytes:
 * @bytes: a record's value as a backend stored it
 *
 * Returns: (transfer full) (nullable): it as a value of @kind's current
 *   type, a record of an older type upgraded (its newer fields zero), or
 *   %NULL when it is neither (damaged).
 */
GVariant *canopy_record_from_bytes (CanopyRecordKind kind, GBytes *bytes);

CanopyBackend *canopy_backend_open (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                                    const char *state_directory, GError **error);
void canopy_backend_close (CanopyBackend *backend);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyBackend, canopy_backend_close)

const char *canopy_backend_get_name (const CanopyBackend *backend);

gboolean canopy_backend_get_info (CanopyBackend *backend, CanopyBackendInfo *info,
                                  GError **error);
void canopy_backend_info_clear (CanopyBackendInfo *info);
gboolean canopy_backend_check_health (CanopyBackend *backend, GError **error);

gboolean canopy_backend_begin (CanopyBackend *backend, GError **error);
gboolean canopy_backend_commit (CanopyBackend *backend, GError **error);
void canopy_backend_rollback (CanopyBackend *backend);

/* Inserts or replaces records; each value must be of the kind's type. */
gboolean canopy_backend_put (CanopyBackend *backend, CanopyRecordKind kind,
                             const CanopyRecord *records, gsize n, GError **error);

/**
 * canopy_backend_get:
 *
 * Returns: (transfer full) (nullable): the value, or %NULL with
 *   %CANOPY_BACKEND_ERROR_NOT_FOUND, or %CANOPY_BACKEND_ERROR_CORRUPT when
 *   the stored bytes are not a value of the kind's type in normal form.
 */
GVariant *canopy_backend_get (CanopyBackend *backend, CanopyRecordKind kind, const char *key,
                              GError **error);

typedef gboolean (*CanopyBackendRecordFunc) (const char *key, GVariant *value,
                                             gpointer user_data);

/* Calls @func with each record's checked value, in key order. */
gboolean canopy_backend_list (CanopyBackend *backend, CanopyRecordKind kind,
                              CanopyBackendRecordFunc func, gpointer user_data, GError **error);

gboolean canopy_backend_remove (CanopyBackend *backend, CanopyRecordKind kind,
                                const char *const *keys, GError **error);
gboolean canopy_backend_replace_all (CanopyBackend *backend, CanopyRecordKind kind,
                                     const CanopyRecord *records, gsize n, GError **error);

gboolean canopy_backend_append (CanopyBackend *backend, CanopyLogKind kind,
                                GVariant *const *entries, gsize n, GError **error);

typedef gboolean (*CanopyBackendLogFunc) (gint64 id, GVariant *entry, gpointer user_data);

gboolean canopy_backend_list_log (CanopyBackend *backend, CanopyLogKind kind, gint64 after,
                                  guint limit, CanopyBackendLogFunc func, gpointer user_data,
                                  GError **error);

/* Clusters: see <canopy/backend-cluster.h>. Without the plugin's support
 * every call fails with CANOPY_BACKEND_ERROR_UNSUPPORTED, saying so. */
gboolean canopy_backend_supports_cluster (const CanopyBackend *backend);
/* Whether wait_changes() is there; without it the core polls. */
gboolean canopy_backend_supports_notification (const CanopyBackend *backend);
gboolean canopy_backend_cluster_prepare (CanopyBackend *backend, GError **error);
gboolean canopy_backend_cluster_heartbeat (CanopyBackend *backend, const char *server_id,
                                          const char *name, gboolean starting, GError **error);
gboolean canopy_backend_cluster_leave (CanopyBackend *backend, const char *server_id,
                                      GError **error);
gboolean canopy_backend_cluster_list_servers (CanopyBackend *backend,
                                             CanopyClusterServerFunc func, gpointer user_data,
                                             GError **error);
gboolean canopy_backend_cluster_take_lease (CanopyBackend *backend, const char *name,
                                           const char *holder, const char *detail,
                                           guint duration_ms, CanopyClusterLease *lease,
                                           GError **error);
gboolean canopy_backend_cluster_list_leases (CanopyBackend *backend,
                                            CanopyClusterLeaseFunc func, gpointer user_data,
                                            GError **error);
gboolean canopy_backend_cluster_wait_changes (CanopyBackend *backend, guint timeout_ms,
                                             CanopyChangeKinds *changed, GError **error);

G_END_DECLS
