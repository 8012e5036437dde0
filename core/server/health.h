/* The health check: each part of the server with a status and a message
 * that says what to do, as plain structs for the console to render. */
#pragma once

#include <glib.h>
#include "lib/licensing.h"
#include "server/catalog.h"
#include "server/cluster.h"
#include "server/content-store.h"
#include "server/distribution-settings.h"
#include "server/distributor.h"
#include "server/run-marker.h"
#include "server/sessions.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

/* Ordered: the worst check gives the status of the whole. */
typedef enum {
  CANOPY_HEALTH_OK,
  CANOPY_HEALTH_WARNING,
  CANOPY_HEALTH_ERROR,
} CanopyHealthStatus;

/* Returns: (transfer none): "ok", "warning" or "error". */
const char *canopy_health_status_to_string (CanopyHealthStatus status);

typedef struct {
  char *name; /* "backend", "transport tcp", "licences", ... */
  CanopyHealthStatus status;
  char *message; /* a whole sentence: what is wrong and what to do */
} CanopyHealthCheck;

void canopy_health_check_free (CanopyHealthCheck *check);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyHealthCheck, canopy_health_check_free)

/* What the checks read in memory (transfer none). */
typedef struct {
  CanopyStore *store;
  CanopySessions *sessions;
  CanopyCatalog *catalog;
  CanopyDistributor *distributor;
  const CanopyContentStore *content_store; /* (nullable) */
  CanopyLicensing *licensing;
  const CanopyRunMarker *run_marker;
  const CanopySettings *settings;
  const guint8 *key_digest; /* SHA-256 of the shared key canopyd runs with */
  CanopyCluster *cluster;   /* (nullable) when several servers share the database */
} CanopyHealthInputs;

/* What the checks read from outside memory: the database and the files. */
typedef struct _CanopyHealthProbe CanopyHealthProbe;

/**
 * canopy_health_probe_new:
 * @store: the write-behind whose backend is asked
 * @key_path: the shared key file
 * @content_store_directory: (nullable): the content store's directory
 */
CanopyHealthProbe *canopy_health_probe_new (CanopyStore *store, const char *key_path,
                                            const char *content_store_directory);
void canopy_health_probe_free (CanopyHealthProbe *probe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyHealthProbe, canopy_health_probe_free)

/* Asks the backend and reads the files: blocking, for a worker thread. */
void canopy_health_probe_run (CanopyHealthProbe *probe);

/**
 * canopy_health_compute:
 * @probe: a probe that has run
 *
 * Returns: (transfer full) (element-type CanopyHealthCheck): every check,
 *   in the order an admin reads them
 */
GPtrArray *canopy_health_compute (const CanopyHealthInputs *in, const CanopyHealthProbe *probe);

/* The status of the whole: the worst of @checks. */
CanopyHealthStatus canopy_health_worst (const GPtrArray *checks);

G_END_DECLS
