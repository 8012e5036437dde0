/* The PostgreSQL backend plugin: descriptor, configuration element, and
 * the contract's operations mapped onto the implementation. */
#include "build-config.h"

#include "postgresql-backend.h"

#include <glib/gi18n-lib.h>
#include <string.h>

static const char schema[] =
  "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'><value>postgresql</value></attribute>"
  "  <interleave>"
  "    <element name='server'>"
  "      <attribute name='host'><data type='token'/></attribute>"
  "      <optional><attribute name='port'><data type='unsignedShort'/></attribute></optional>"
  "    </element>"
  "    <element name='database'><data type='token'/></element>"
  "    <element name='user'><data type='token'/></element>"
  "    <optional><element name='password-file'>"
  "      <data type='string'><param name='pattern'>/.*</param></data>"
  "    </element></optional>"
  "    <optional><element name='connect-timeout'>"
  "      <attribute name='s'><data type='unsignedInt'/></attribute></element></optional>"
  "  </interleave>"
  "</element>";

static gpointer
pg_open (const CanopyConfigNode *element, const char *state_directory, GError **error)
{
  const CanopyConfigNode *server = canopy_config_node_get_child (element, "server");
  const CanopyConfigNode *timeout = canopy_config_node_get_child (element, "connect-timeout");
  CanopyPgSettings s = { 0 };
  guint64 port, timeout_s = 10;
  CanopyPgBackend *b = NULL;

  if (!canopy_config_node_get_uint (server, "port", 1, 65535, 5432, &port, error)
      || (timeout != NULL
          && !canopy_config_node_get_uint (timeout, "s", 1, 600, 10, &timeout_s, error)))
    return NULL;
  s.host = g_strdup (canopy_config_node_get_attribute (server, "host"));
  s.port = (guint) port;
  s.database = g_strdup (canopy_config_node_get_child_text (element, "database", NULL));
  s.user = g_strdup (canopy_config_node_get_child_text (element, "user", NULL));
  s.password_file = g_strdup (canopy_config_node_get_child_text (element, "password-file", NULL));
  s.connect_timeout_s = (guint) timeout_s;
  b = canopy_pg_backend_open (&s, error);
  canopy_pg_settings_clear (&s);
  return b;
}

static void
pg_close (gpointer handle)
{
  canopy_pg_backend_close (handle);
}

static gboolean
pg_get_info (gpointer handle, CanopyBackendInfo *info, GError **error)
{
  return canopy_pg_backend_get_info (handle, info, error);
}

static gboolean
pg_check_health (gpointer handle, GError **error)
{
  return canopy_pg_backend_check_health (handle, error);
}

static gboolean
pg_begin (gpointer handle, GError **error)
{
  return canopy_pg_backend_begin (handle, error);
}

static gboolean
pg_commit (gpointer handle, GError **error)
{
  return canopy_pg_backend_commit (handle, error);
}

static void
pg_rollback (gpointer handle)
{
  canopy_pg_backend_rollback (handle);
}

static gboolean
pg_put (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
        GError **error)
{
  return canopy_pg_backend_put (handle, kind, records, n, FALSE, error);
}

static gboolean
pg_replace_all (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
                GError **error)
{
  return canopy_pg_backend_put (handle, kind, records, n, TRUE, error);
}

static GBytes *
pg_get (gpointer handle, CanopyRecordKind kind, const char *key, GError **error)
{
  return canopy_pg_backend_get (handle, kind, key, error);
}

static gboolean
pg_list (gpointer handle, CanopyRecordKind kind, CanopyRecordFunc func, gpointer user_data,
         GError **error)
{
  return canopy_pg_backend_list (handle, kind, func, user_data, error);
}

static gboolean
pg_remove (gpointer handle, CanopyRecordKind kind, const char *const *keys, GError **error)
{
  return canopy_pg_backend_remove (handle, kind, keys, error);
}

static gboolean
pg_append (gpointer handle, CanopyLogKind kind, GVariant *const *entries, gsize n,
           GError **error)
{
  return canopy_pg_backend_append (handle, kind, entries, n, error);
}

static gboolean
pg_list_log (gpointer handle, CanopyLogKind kind, gint64 after, guint limit, CanopyLogFunc func,
             gpointer user_data, GError **error)
{
  return canopy_pg_backend_list_log (handle, kind, after, limit, func, user_data, error);
}

static const CanopyBackendOps ops = {
  .open = pg_open,
  .close = pg_close,
  .get_info = pg_get_info,
  .check_health = pg_check_health,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .put = pg_put,
  .get = pg_get,
  .list = pg_list,
  .remove = pg_remove,
  .replace_all = pg_replace_all,
  .append = pg_append,
  .list_log = pg_list_log,
};

/* --- clusters ------------------------------------------------------------ */

static gboolean
pg_cluster_prepare (gpointer handle, GError **error)
{
  return canopy_pg_backend_cluster_prepare (handle, error);
}

static gboolean
pg_cluster_heartbeat (gpointer handle, const char *server_id, const char *name,
                      gboolean starting, GError **error)
{
  return canopy_pg_backend_cluster_heartbeat (handle, server_id, name, starting, error);
}

static gboolean
pg_cluster_leave (gpointer handle, const char *server_id, GError **error)
{
  return canopy_pg_backend_cluster_leave (handle, server_id, error);
}

static gboolean
pg_cluster_list_servers (gpointer handle, CanopyClusterServerFunc func, gpointer user_data,
                         GError **error)
{
  return canopy_pg_backend_cluster_list_servers (handle, func, user_data, error);
}

static gboolean
pg_cluster_take_lease (gpointer handle, const char *name, const char *holder,
                       const char *detail, guint duration_ms, CanopyClusterLease *lease,
                       GError **error)
{
  return canopy_pg_backend_cluster_take_lease (handle, name, holder, detail, duration_ms, lease,
                                               error);
}

static gboolean
pg_cluster_list_leases (gpointer handle, CanopyClusterLeaseFunc func, gpointer user_data,
                        GError **error)
{
  return canopy_pg_backend_cluster_list_leases (handle, func, user_data, error);
}

static gboolean
pg_cluster_wait_changes (gpointer handle, guint timeout_ms, CanopyChangeKinds *changed,
                         GError **error)
{
  return canopy_pg_backend_cluster_wait_changes (handle, timeout_ms, changed, error);
}

G_MODULE_EXPORT const CanopyBackendClusterOps canopy_backend_cluster_ops = {
  .size = sizeof (CanopyBackendClusterOps),
  .prepare = pg_cluster_prepare,
  .heartbeat = pg_cluster_heartbeat,
  .leave = pg_cluster_leave,
  .list_servers = pg_cluster_list_servers,
  .take_lease = pg_cluster_take_lease,
  .list_leases = pg_cluster_list_leases,
  .wait_changes = pg_cluster_wait_changes,
};

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "postgresql", PACKAGE_VERSION,
                      "PostgreSQL server (libpq)", schema, &ops);
