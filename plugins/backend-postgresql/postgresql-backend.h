/* The PostgreSQL backend's implementation: a libpq connection, the typed
 * schema and its migrations, records written and read as typed rows. */
#pragma once

#include <canopy/canopy.h>

G_BEGIN_DECLS

typedef struct _CanopyPgBackend CanopyPgBackend;

/* Where to connect; the password is read from @password_file when set
 * (else libpq's own PGPASSWORD or ~/.pgpass), and never logged. */
typedef struct {
  char *host; /* a host name, or the directory of a Unix socket */
  guint port;
  char *database;
  char *user;
  char *password_file;
  guint connect_timeout_s;
} CanopyPgSettings;

void canopy_pg_settings_clear (CanopyPgSettings *s);

CanopyPgBackend *canopy_pg_backend_open (const CanopyPgSettings *s, GError **error);
void canopy_pg_backend_close (CanopyPgBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyPgBackend, canopy_pg_backend_close)

gboolean canopy_pg_backend_get_info (CanopyPgBackend *b, CanopyBackendInfo *info,
                                     GError **error);
gboolean canopy_pg_backend_check_health (CanopyPgBackend *b, GError **error);
gboolean canopy_pg_backend_begin (CanopyPgBackend *b, GError **error);
gboolean canopy_pg_backend_commit (CanopyPgBackend *b, GError **error);
void canopy_pg_backend_rollback (CanopyPgBackend *b);
gboolean canopy_pg_backend_put (CanopyPgBackend *b, CanopyRecordKind kind,
                                const CanopyRecord *records, gsize n, gboolean replace_all,
                                GError **error);
GBytes *canopy_pg_backend_get (CanopyPgBackend *b, CanopyRecordKind kind, const char *key,
                               GError **error);
gboolean canopy_pg_backend_list (CanopyPgBackend *b, CanopyRecordKind kind,
                                 CanopyRecordFunc func, gpointer user_data, GError **error);
gboolean canopy_pg_backend_remove (CanopyPgBackend *b, CanopyRecordKind kind,
                                   const char *const *keys, GError **error);
gboolean canopy_pg_backend_append (CanopyPgBackend *b, CanopyLogKind kind,
                                   GVariant *const *entries, gsize n, GError **error);
gboolean canopy_pg_backend_list_log (CanopyPgBackend *b, CanopyLogKind kind, gint64 after,
                                     guint limit, CanopyLogFunc func, gpointer user_data,
                                     GError **error);

/* Clusters (see <canopy/backend-cluster.h>). */
gboolean canopy_pg_backend_cluster_prepare (CanopyPgBackend *b, GError **error);
gboolean canopy_pg_backend_cluster_heartbeat (CanopyPgBackend *b, const char *server_id,
                                              const char *name, gboolean starting,
                                              GError **error);
gboolean canopy_pg_backend_cluster_leave (CanopyPgBackend *b, const char *server_id,
                                          GError **error);
gboolean canopy_pg_backend_cluster_list_servers (CanopyPgBackend *b,
                                                 CanopyClusterServerFunc func,
                                                 gpointer user_data, GError **error);
gboolean canopy_pg_backend_cluster_take_lease (CanopyPgBackend *b, const char *name,
                                               const char *holder, const char *detail,
                                               guint duration_ms, CanopyClusterLease *lease,
                                               GError **error);
gboolean canopy_pg_backend_cluster_list_leases (CanopyPgBackend *b,
                                                CanopyClusterLeaseFunc func,
                                                gpointer user_data, GError **error);
gboolean canopy_pg_backend_cluster_wait_changes (CanopyPgBackend *b, guint timeout_ms,
                                                 CanopyChangeKinds *changed, GError **error);

G_END_DECLS
