/* The SQLite backend plugin: its descriptor, its configuration element,
 * and the contract's operations mapped onto the implementation. */
#include "build-config.h"

#include "sqlite-backend.h"

#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#define DEFAULT_FILE "canopy.db"
#define DEFAULT_BUSY_TIMEOUT_MS 5000

static const char schema[] =
  "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'><value>sqlite</value></attribute>"
  "  <interleave>"
  "    <optional><element name='database'>"
  "      <data type='string'><param name='pattern'>/.*</param></data>"
  "    </element></optional>"
  "    <optional><element name='busy-timeout'>"
  "      <attribute name='ms'><data type='unsignedInt'/></attribute>"
  "    </element></optional>"
  "  </interleave>"
  "</element>";

static gpointer
sqlite_open (const CanopyConfigNode *element, const char *state_directory, GError **error)
{
  const char *database = canopy_config_node_get_child_text (element, "database", NULL);
  const CanopyConfigNode *busy = canopy_config_node_get_child (element, "busy-timeout");
  g_autofree char *path = database != NULL ? g_strdup (database)
                                           : g_build_filename (state_directory, DEFAULT_FILE,
                                                               NULL);
  guint64 timeout = DEFAULT_BUSY_TIMEOUT_MS;

  if (busy != NULL
      && !canopy_config_node_get_uint (busy, "ms", 0, 600000, DEFAULT_BUSY_TIMEOUT_MS, &timeout,
                                       error))
    return NULL;
  return canopy_sqlite_backend_open (path, (guint) timeout, error);
}

static void
sqlite_close (gpointer handle)
{
  canopy_sqlite_backend_close (handle);
}

static gboolean
sqlite_get_info (gpointer handle, CanopyBackendInfo *info, GError **error)
{
  info->schema_version = canopy_sqlite_backend_get_schema_version (handle);
  info->server_version = g_strdup_printf ("SQLite %s", sqlite3_libversion ());
  info->location = g_strdup (canopy_sqlite_backend_get_path (handle));
  return TRUE;
}

static gboolean
sqlite_check_health (gpointer handle, GError **error)
{
  return canopy_sqlite_backend_check_health (handle, error);
}

static gboolean
sqlite_begin (gpointer handle, GError **error)
{
  return canopy_sqlite_backend_begin (handle, error);
}

static gboolean
sqlite_commit (gpointer handle, GError **error)
{
  return canopy_sqlite_backend_commit (handle, error);
}

static void
sqlite_rollback (gpointer handle)
{
  canopy_sqlite_backend_rollback (handle);
}

static gboolean
sqlite_put (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
            GError **error)
{
  return canopy_sqlite_backend_put (handle, kind, records, n, FALSE, error);
}

static gboolean
sqlite_replace_all (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records, gsize n,
                    GError **error)
{
  return canopy_sqlite_backend_put (handle, kind, records, n, TRUE, error);
}

static GBytes *
sqlite_get (gpointer handle, CanopyRecordKind kind, const char *key, GError **error)
{
  return canopy_sqlite_backend_get (handle, kind, key, error);
}

static gboolean
sqlite_list (gpointer handle, CanopyRecordKind kind, CanopyRecordFunc func, gpointer user_data,
             GError **error)
{
  return canopy_sqlite_backend_list (handle, kind, func, user_data, error);
}

static gboolean
sqlite_remove (gpointer handle, CanopyRecordKind kind, const char *const *keys, GError **error)
{
  return canopy_sqlite_backend_remove (handle, kind, keys, error);
}

static gboolean
sqlite_append (gpointer handle, CanopyLogKind kind, GVariant *const *entries, gsize n,
               GError **error)
{
  return canopy_sqlite_backend_append (handle, kind, entries, n, error);
}

static gboolean
sqlite_list_log (gpointer handle, CanopyLogKind kind, gint64 after, guint limit,
                 CanopyLogFunc func, gpointer user_data, GError **error)
{
  return canopy_sqlite_backend_list_log (handle, kind, after, limit, func, user_data, error);
}

static const CanopyBackendOps ops = {
  .open = sqlite_open,
  .close = sqlite_close,
  .get_info = sqlite_get_info,
  .check_health = sqlite_check_health,
  .begin = sqlite_begin,
  .commit = sqlite_commit,
  .rollback = sqlite_rollback,
  .put = sqlite_put,
  .get = sqlite_get,
  .list = sqlite_list,
  .remove = sqlite_remove,
  .replace_all = sqlite_replace_all,
  .append = sqlite_append,
  .list_log = sqlite_list_log,
};

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "sqlite", PACKAGE_VERSION,
                      "SQLite database file (the embedded default)", schema, &ops);
