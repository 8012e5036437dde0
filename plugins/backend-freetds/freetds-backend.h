/* The SQL Server backend's implementation (FreeTDS db-lib), linked by its
 * plugin module and by the unit tests. */
#pragma once

#include <canopy/canopy.h>
#include <canopy/backend.h>

G_BEGIN_DECLS

typedef struct {
  char *host;
  guint port;           /* when no instance is named */
  char *instance;       /* (nullable) a named instance, such as SQLEXPRESS */
  char *database;
  char *user;
  char *password_file;  /* owner-only; read at each login, never kept */
  char *tds_version;    /* "7.4" */
  gboolean encrypt;
  guint login_timeout_s;
  guint query_timeout_s;
} CanopyFreetdsSettings;

void canopy_freetds_settings_clear (CanopyFreetdsSettings *settings);

/**
 * canopy_freetds_settings_from_config:
 * @element: the plugin's <backend> element (already schema-checked)
 * @error: names the element and line at fault
 */
gboolean canopy_freetds_settings_from_config (const CanopyConfigNode *element,
                                              CanopyFreetdsSettings *settings, GError **error);

/** canopy_freetds_settings_describe: Returns: "host port N, database D" (no secrets). */
char *canopy_freetds_settings_describe (const CanopyFreetdsSettings *settings);

typedef struct _CanopyFreetdsBackend CanopyFreetdsBackend;

CanopyFreetdsBackend *canopy_freetds_backend_open (const CanopyFreetdsSettings *settings,
                                                   GError **error);
void canopy_freetds_backend_close (CanopyFreetdsBackend *b);

/**
 * canopy_freetds_run_script:
 * @sql: a T-SQL batch
 *
 * Logs in and runs @sql outside any backend and its migrations: for the
 * tests that set a database up as an older release left it.
 *
 * Returns: (transfer full): the first column of the last row as text
 *   ("" when there was none; cast it to NVARCHAR), or %NULL with @error.
 */
char *canopy_freetds_run_script (const CanopyFreetdsSettings *settings, const char *sql,
                                 GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyFreetdsBackend, canopy_freetds_backend_close)

gboolean canopy_freetds_backend_check_health (CanopyFreetdsBackend *b, GError **error);
char *canopy_freetds_backend_get_server_version (CanopyFreetdsBackend *b, GError **error);
guint canopy_freetds_backend_get_schema_version (const CanopyFreetdsBackend *b);
gboolean canopy_freetds_backend_begin (CanopyFreetdsBackend *b, GError **error);
gboolean canopy_freetds_backend_commit (CanopyFreetdsBackend *b, GError **error);
void canopy_freetds_backend_rollback (CanopyFreetdsBackend *b);
gboolean canopy_freetds_backend_put (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                                     const CanopyRecord *records, gsize n,
                                     gboolean replace_all, GError **error);
GBytes *canopy_freetds_backend_get (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                                    const char *key, GError **error);
gboolean canopy_freetds_backend_list (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                                      CanopyRecordFunc func, gpointer user_data, GError **error);
gboolean canopy_freetds_backend_remove (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                                        const char *const *keys, GError **error);
gboolean canopy_freetds_backend_append (CanopyFreetdsBackend *b, CanopyLogKind kind,
                                        GVariant *const *entries, gsize n, GError **error);
gboolean canopy_freetds_backend_list_log (CanopyFreetdsBackend *b, CanopyLogKind kind,
                                          gint64 after, guint limit, CanopyLogFunc func,
                                          gpointer user_data, GError **error);

/* Clusters (see <canopy/backend-cluster.h>). SQL Server cannot notify
 * sessions of changes: the servers poll the records (changes="poll"). */
gboolean canopy_freetds_backend_cluster_prepare (CanopyFreetdsBackend *b, GError **error);
gboolean canopy_freetds_backend_cluster_heartbeat (CanopyFreetdsBackend *b,
                                                   const char *server_id, const char *name,
                                                   gboolean starting, GError **error);
gboolean canopy_freetds_backend_cluster_leave (CanopyFreetdsBackend *b, const char *server_id,
                                               GError **error);
gboolean canopy_freetds_backend_cluster_list_servers (CanopyFreetdsBackend *b,
                                                      CanopyClusterServerFunc func,
                                                      gpointer user_data, GError **error);
gboolean canopy_freetds_backend_cluster_take_lease (CanopyFreetdsBackend *b, const char *name,
                                                    const char *holder, const char *detail,
                                                    guint duration_ms,
                                                    CanopyClusterLease *lease, GError **error);
gboolean canopy_freetds_backend_cluster_list_leases (CanopyFreetdsBackend *b,
                                                     CanopyClusterLeaseFunc func,
                                                     gpointer user_data, GError **error);

G_END_DECLS
