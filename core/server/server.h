/* canopyd's running state: its configuration and the plugins it names. */
#pragma once

#include <glib.h>
#include "lib/backend.h"
#include "lib/plugin-loader.h"
#include "server/server-config.h"

G_BEGIN_DECLS

typedef struct _CanopyServer CanopyServer;

/**
 * canopy_server_new:
 * @config_path: the configuration file
 * @error: return location for the first problem found, naming its file
 *   and line
 *
 * Reads the configuration and loads every plugin it names, validating each
 * plugin's element. Starts nothing.
 */
CanopyServer *canopy_server_new (const char *config_path, GError **error);
void canopy_server_free (CanopyServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyServer, canopy_server_free)

const CanopyServerConfig *canopy_server_get_config (const CanopyServer *server);

/** canopy_server_describe: Returns: (transfer full): one line for the log. */
char *canopy_server_describe (const CanopyServer *server);

/**
 * canopy_server_reload:
 * @server: the running server
 * @error: why the new configuration was not taken
 *
 * Reads the configuration file again. On any error the running
 * configuration stays in force.
 *
 * Returns: (transfer none) (nullable): the new configuration, or %NULL
 */
const CanopyServerConfig *canopy_server_reload (CanopyServer *server, GError **error);

/**
 * canopy_server_open_backend:
 *
 * Opens the configured database (creating or upgrading it), for the
 * commands that change it while canopyd may run or not ("canopyd
 * admin-add"). Blocking.
 */
CanopyBackend *canopy_server_open_backend (CanopyServer *server, GError **error);

/**
 * canopy_server_init_database:
 * @audit_action: (nullable): an event to record in the audit log
 *
 * Creates or upgrades the database through the configured backend.
 *
 * Returns: (transfer full): what and where the database is, or %NULL.
 */
char *canopy_server_init_database (CanopyServer *server, const char *audit_action,
                                   GError **error);

/**
 * canopy_server_start:
 * @error: names what is missing (run "canopyd init") or which transport
 *   cannot listen
 *
 * Loads the server ID and shared key, and listens on every transport.
 */
gboolean canopy_server_start (CanopyServer *server, GError **error);

/**
 * canopy_server_drain:
 *
 * After a stop signal, until it returns %TRUE: the console takes no new
 * work, and the work its worker threads still do (health probes, admin
 * changes, content being read) comes back on the main loop, so that
 * canopy_server_stop() frees nothing a thread still uses.
 */
gboolean canopy_server_drain (CanopyServer *server);

/** canopy_server_stop: Closes every session and stops listening. */
void canopy_server_stop (CanopyServer *server);

G_END_DECLS
