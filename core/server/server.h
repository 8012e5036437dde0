/* canopyd's running state: its configuration and the plugins it names. */
#pragma once

#include <glib.h>
#include "lib/licensing.h"
#include "lib/plugin-loader.h"
#include "lib/topology.h"
#include "server/server-config.h"
#include "server/catalog.h"
#include "server/distributor.h"
#include "server/run-marker.h"
#include "server/sessions.h"
#include "server/settings.h"
#include "server/store.h"

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

/** canopy_server_stop: Closes every session and stops listening. */
void canopy_server_stop (CanopyServer *server);

/* The content catalog and the deployments, while started. */
CanopyCatalog *canopy_server_get_catalog (CanopyServer *server);
CanopyDistributor *canopy_server_get_distributor (CanopyServer *server);
/* (nullable): without <content-store> the server keeps no copies. */
CanopyContentStore *canopy_server_get_content_store (CanopyServer *server);
/* What the console API reads while the server runs (transfer none). */
const char *canopy_server_get_id (const CanopyServer *server);
CanopyStore *canopy_server_get_store (CanopyServer *server);
/* Whether the last run stopped cleanly; NULL before canopy_server_start(). */
const CanopyRunMarker *canopy_server_get_run_marker (const CanopyServer *server);
CanopySessions *canopy_server_get_sessions (CanopyServer *server);
CanopyLicensing *canopy_server_get_licensing (CanopyServer *server);
const CanopyTopology *canopy_server_get_topology (const CanopyServer *server);
const CanopySettings *canopy_server_get_settings (const CanopyServer *server);

/**
 * canopy_server_apply_settings:
 * @settings: (transfer full): checked settings, saved by the caller
 * @topology: (transfer full) (nullable): the offices to use from now on,
 *   or %NULL to keep the current ones
 *
 * Puts new settings in force at once: assigned groups accept dormant
 * devices on their next retry, a new topology places the next hellos.
 */
void canopy_server_apply_settings (CanopyServer *server, CanopySettings *settings,
                                   CanopyTopology *topology);

G_END_DECLS
