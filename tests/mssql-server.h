/* The SQL Server a test may use: named by CANOPY_TEST_MSSQL_HOST, _PORT,
 * _DATABASE, _USER and _PASSWORD_FILE (none runs on a Debian machine, so
 * without them the tests that need one are skipped by name). */
#pragma once

#include "plugins/backend-freetds/freetds-backend.h"

G_BEGIN_DECLS

/* Fills @settings from the environment; FALSE when no server is named. */
gboolean canopy_test_mssql_settings (CanopyFreetdsSettings *settings);

/* Drops every table canopy makes in that database, referencing tables
 * first, so that a test starts from an empty database. */
gboolean canopy_test_mssql_drop_everything (const CanopyFreetdsSettings *settings,
                                            GError **error);

G_END_DECLS
