/* The SQLite backend's implementation, linked by its plugin module and by
 * the unit tests. */
#pragma once

#include <canopy/canopy.h>
#include <canopy/backend.h>
#include <canopy/record-table.h>

G_BEGIN_DECLS

typedef struct _CanopySqliteBackend CanopySqliteBackend;

/**
 * canopy_sqlite_backend_open:
 * @path: the database file; created owner-only if missing
 * @busy_timeout_ms: how long to wait for another process's lock
 */
CanopySqliteBackend *canopy_sqlite_backend_open (const char *path, guint busy_timeout_ms,
                                                 GError **error);
void canopy_sqlite_backend_close (CanopySqliteBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopySqliteBackend, canopy_sqlite_backend_close)

const char *canopy_sqlite_backend_get_path (const CanopySqliteBackend *b);
guint canopy_sqlite_backend_get_schema_version (const CanopySqliteBackend *b);
gboolean canopy_sqlite_backend_check_health (CanopySqliteBackend *b, GError **error);

gboolean canopy_sqlite_backend_begin (CanopySqliteBackend *b, GError **error);
gboolean canopy_sqlite_backend_commit (CanopySqliteBackend *b, GError **error);
void canopy_sqlite_backend_rollback (CanopySqliteBackend *b);

/* With @replace_all, every record of @kind is deleted first. */
gboolean canopy_sqlite_backend_put (CanopySqliteBackend *b, CanopyRecordKind kind,
                                    const CanopyRecord *records, gsize n,
                                    gboolean replace_all, GError **error);
GBytes *canopy_sqlite_backend_get (CanopySqliteBackend *b, CanopyRecordKind kind,
                                   const char *key, GError **error);
gboolean canopy_sqlite_backend_list (CanopySqliteBackend *b, CanopyRecordKind kind,
                                     CanopyRecordFunc func, gpointer user_data, GError **error);
gboolean canopy_sqlite_backend_remove (CanopySqliteBackend *b, CanopyRecordKind kind,
                                       const char *const *keys, GError **error);
gboolean canopy_sqlite_backend_append (CanopySqliteBackend *b, CanopyLogKind kind,
                                       GVariant *const *entries, gsize n, GError **error);
gboolean canopy_sqlite_backend_list_log (CanopySqliteBackend *b, CanopyLogKind kind,
                                         gint64 after, guint limit, CanopyLogFunc func,
                                         gpointer user_data, GError **error);

G_END_DECLS
