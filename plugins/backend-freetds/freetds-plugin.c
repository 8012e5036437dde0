/* The SQL Server backend plugin: descriptor, configuration element, and
 * the contract's operations mapped onto the implementation. */
#include "build-config.h"

#include "freetds-backend.h"

#include <glib/gi18n-lib.h>

static const char schema[] =
  "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'><value>freetds</value></attribute>"
  "  <interleave>"
  "    <element name='server'>"
  "      <attribute name='host'><data type='token'/></attribute>"
  "      <optional><choice>"
  "        <attribute name='port'><data type='unsignedShort'/></attribute>"
  "        <attribute name='instance'><data type='token'/></attribute>"
  "      </choice></optional>"
  "    </element>"
  "    <element name='database'><data type='token'/></element>"
  "    <element name='user'><data type='token'/></element>"
  "    <element name='password-file'>"
  "      <data type='string'><param name='pattern'>/.*</param></data>"
  "    </element>"
  "    <optional><element name='tds-version'>"
  "      <choice><value>7.0</value><value>7.1</value><value>7.2</value><value>7.3</value>"
  "        <value>7.4</value></choice>"
  "    </element></optional>"
  "    <optional><element name='encryption'>"
  "      <choice><value>off</value><value>request</value><value>require</value></choice>"
  "    </element></optional>"
  "    <optional><element name='login-timeout'>"
  "      <attribute name='s'><data type='unsignedInt'/></attribute></element></optional>"
  "    <optional><element name='query-timeout'>"
  "      <attribute name='s'><data type='unsignedInt'/></attribute></element></optional>"
  "  </interleave>"
  "</element>";

static gpointer
freetds_open (const CanopyConfigNode *element, const char *state_directory, GError **error)
{
  CanopyFreetdsSettings settings;
  CanopyFreetdsBackend *b = NULL;

  if (canopy_freetds_settings_from_config (element, &settings, error))
    b = canopy_freetds_backend_open (&settings, error);
  canopy_freetds_settings_clear (&settings);
  return b;
}

static void
freetds_close (gpointer handle)
{
  canopy_freetds_backend_close (handle);
}

static gboolean
freetds_get_info (gpointer handle, CanopyBackendInfo *info, GError **error)
{
  info->schema_version = canopy_freetds_backend_get_schema_version (handle);
  info->server_version = canopy_freetds_backend_get_server_version (handle, error);
  info->location = g_strdup ("SQL Server");
  return info->server_version != NULL;
}

static gboolean
freetds_check_health (gpointer handle, GError **error)
{
  return canopy_freetds_backend_check_health (handle, error);
}

static gboolean
freetds_begin (gpointer handle, GError **error)
{
  return canopy_freetds_backend_begin (handle, error);
}

static gboolean
freetds_commit (gpointer handle, GError **error)
{
  return canopy_freetds_backend_commit (handle, error);
}

static void
freetds_rollback (gpointer handle)
{
  canopy_freetds_backend_rollback (handle);
}

static gboolean
freetds_put (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
             GError **error)
{
  return canopy_freetds_backend_put (handle, kind, records, n, FALSE, error);
}

static gboolean
freetds_replace_all (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
                     GError **error)
{
  return canopy_freetds_backend_put (handle, kind, records, n, TRUE, error);
}

static GBytes *
freetds_get (gpointer handle, CanopyRecordKind kind, const char *key, GError **error)
{
  return canopy_freetds_backend_get (handle, kind, key, error);
}

static gboolean
freetds_list (gpointer handle, CanopyRecordKind kind, CanopyRecordFunc func, gpointer user_data,
              GError **error)
{
  return canopy_freetds_backend_list (handle, kind, func, user_data, error);
}

static gboolean
freetds_remove (gpointer handle, CanopyRecordKind kind, const char *const *keys, GError **error)
{
  return canopy_freetds_backend_remove (handle, kind, keys, error);
}

static gboolean
freetds_append (gpointer handle, CanopyLogKind kind, GVariant *const *entries, gsize n,
                GError **error)
{
  return canopy_freetds_backend_append (handle, kind, entries, n, error);
}

static gboolean
freetds_list_log (gpointer handle, CanopyLogKind kind, gint64 after, guint limit,
                  CanopyLogFunc func, gpointer user_data, GError **error)
{
  return canopy_freetds_backend_list_log (handle, kind, after, limit, func, user_data, error);
}

static const CanopyBackendOps ops = {
  .open = freetds_open,
  .close = freetds_close,
  .get_info = freetds_get_info,
  .check_health = freetds_check_health,
  .begin = freetds_begin,
  .commit = freetds_commit,
  .rollback = freetds_rollback,
  .put = freetds_put,
  .get = freetds_get,
  .list = freetds_list,
  .remove = freetds_remove,
  .replace_all = freetds_replace_all,
  .append = freetds_append,
  .list_log = freetds_list_log,
};

/* --- clusters ------------------------------------------------------------ */

static gboolean
freetds_cluster_prepare (gpointer handle, GError **error)
{
  return canopy_freetds_backend_cluster_prepare (handle, error);
}

static gboolean
freetds_cluster_heartbeat (gpointer handle, const char *server_id, const char *name,
                           gboolean starting, GError **error)
{
  return canopy_freetds_backend_cluster_heartbeat (handle, server_id, name, starting, error);
}

static gboolean
freetds_cluster_leave (gpointer handle, const char *server_id, GError **error)
{
  return canopy_freetds_backend_cluster_leave (handle, server_id, error);
}

static gboolean
freetds_cluster_list_servers (gpointer handle, CanopyClusterServerFunc func, gpointer user_data,
                              GError **error)
{
  return canopy_freetds_backend_cluster_list_servers (handle, func, user_data, error);
}

static gboolean
freetds_cluster_take_lease (gpointer handle, const char *name, const char *holder,
                            const char *detail, guint duration_ms, CanopyClusterLease *lease,
                            GError **error)
{
  return canopy_freetds_backend_cluster_take_lease (handle, name, holder, detail, duration_ms,
                                                    lease, error);
}

static gboolean
freetds_cluster_list_leases (gpointer handle, CanopyClusterLeaseFunc func, gpointer user_data,
                             GError **error)
{
  return canopy_freetds_backend_cluster_list_leases (handle, func, user_data, error);
}

/* No wait_changes: SQL Server has no LISTEN/NOTIFY, so the servers poll
 * the records for each other's changes, and <cluster changes="notify">
 * is refused at start. */
G_MODULE_EXPORT const CanopyBackendClusterOps canopy_backend_cluster_ops = {
  .size = sizeof (CanopyBackendClusterOps),
  .prepare = freetds_cluster_prepare,
  .heartbeat = freetds_cluster_heartbeat,
  .leave = freetds_cluster_leave,
  .list_servers = freetds_cluster_list_servers,
  .take_lease = freetds_cluster_take_lease,
  .list_leases = freetds_cluster_list_leases,
};

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "freetds", PACKAGE_VERSION,
                      "Microsoft SQL Server through FreeTDS", schema, &ops);
