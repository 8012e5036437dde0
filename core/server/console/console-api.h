/* The console API: HTTPS + JSON under /api/v1/, Prometheus metrics under
 * /metrics and the web console under /console/, for canopyctl, browsers
 * and monitoring. */
#pragma once

#include <glib.h>
#include "lib/licensing.h"
#include "lib/shared-key.h"
#include "lib/topology.h"
#include "server/admins.h"
#include "server/catalog.h"
#include "server/cluster.h"
#include "server/content-store.h"
#include "server/distributor.h"
#include "server/run-marker.h"
#include "server/server-config.h"
#include "server/sessions.h"
#include "server/distribution-settings.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

typedef struct _CanopyConsole CanopyConsole;

/**
 * CanopyConsoleContext:
 *
 * What the console serves, filled by its owner (canopyd's server) and
 * copied by canopy_console_new(). The objects are not owned and outlive
 * the console. What the owner replaces while it runs (the configuration on
 * reload, the settings and topology put in force through the console) is
 * read through the getters each time, never kept.
 */
typedef struct {
  const char *server_id;
  CanopyStore *store;
  CanopySessions *sessions;
  CanopyCatalog *catalog;
  CanopyDistributor *distributor;
  CanopyContentStore *content_store; /* (nullable): without <content-store> */
  CanopyLicensing *licensing;
  const CanopyRunMarker *run_marker; /* whether the last run stopped cleanly */
  CanopyCluster *cluster;            /* (nullable) the other servers on the database */

  gpointer owner; /* passed to each callback below */
  const CanopyServerConfig *(*get_config) (gpointer owner);
  const CanopySettings *(*get_settings) (gpointer owner);
  const CanopyTopology *(*get_topology) (gpointer owner);
  /* Puts @settings (transfer full), checked and saved, in force, with
   * @topology (transfer full) (nullable) when it changes too. */
  void (*apply_settings) (gpointer owner, CanopySettings *settings, CanopyTopology *topology);
} CanopyConsoleContext;

#define CANOPY_CONSOLE_ERROR (canopy_console_error_quark ())
GQuark canopy_console_error_quark (void);

typedef enum {
  CANOPY_CONSOLE_ERROR_CERTIFICATE, /* the TLS certificate or key cannot be used */
  CANOPY_CONSOLE_ERROR_LISTEN,      /* the address or port cannot be listened on */
} CanopyConsoleError;

/**
 * canopy_console_new:
 * @context: what the console serves (copied; the objects it points to
 *   are not owned and outlive the console)
 * @key: the shared key; the console keeps only its hash, for the health
 *   check to tell whether the key file changed. It never opens the
 *   console: admins' tokens do.
 * @error: names the certificate file or the address at fault
 *
 * Listens with the configured certificate, or the one "canopyd init" made.
 */
CanopyConsole *canopy_console_new (const CanopyConsoleContext *context,
                                   const CanopySharedKey *key, GError **error);
/* Takes no new work from now on; whether no worker thread of the console
 * is running (canopy_console_free() needs that). */
gboolean canopy_console_drain (CanopyConsole *console);
void canopy_console_free (CanopyConsole *console);
/* Another server of the cluster changed the admins: the next call with a
 * token reads them from the database again. */
void canopy_console_admins_changed (CanopyConsole *console);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConsole, canopy_console_free)

/* Calls @func for each route of the API with the least role it needs
 * (tests check every one of them refuses what it must). */
void canopy_console_routes_foreach (void (*func) (const char *method, const char *path,
                                                  CanopyAdminRole role, gpointer user_data),
                                    gpointer user_data);

G_END_DECLS
