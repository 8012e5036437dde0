/* What a backend offers so that several canopyd share one database: the
 * servers' registry with heartbeats, leases (one holder per name, taken
 * with a conditional update), and optionally notification of changes.
 *
 * A backend plugin that supports clusters exports, beside its descriptor,
 * a table of these operations under the name
 * #CANOPY_BACKEND_CLUSTER_SYMBOL. It is a separate symbol, not new members
 * of #CanopyBackendOps, so that plugins built against older headers load
 * unchanged: they simply do not support clusters. */
#pragma once

#include <glib.h>
#include <canopy/backend.h>

G_BEGIN_DECLS

/* The name of the exported #CanopyBackendClusterOps symbol. */
#define CANOPY_BACKEND_CLUSTER_SYMBOL "canopy_backend_cluster_ops"

/**
 * CanopyClusterServer:
 * @server_id: the server's ID (a UUID)
 * @name: its name (what agents and the console use to reach it)
 * @started_at: when it started, µs since the epoch
 * @heartbeat_at: its last heartbeat, µs since the epoch
 * @silent_us: how long ago that was, by the database's clock (so that
 *   servers whose clocks differ agree on it)
 *
 * A server of the cluster as the database knows it.
 */
typedef struct {
  const char *server_id;
  const char *name;
  gint64 started_at;
  gint64 heartbeat_at;
  gint64 silent_us;
} CanopyClusterServer;

/** CanopyClusterServerFunc: Returns: %FALSE to stop listing. */
typedef gboolean (*CanopyClusterServerFunc) (const CanopyClusterServer *server,
                                             gpointer user_data);

/**
 * CanopyClusterLease:
 * @name: what the lease is for (an office's name)
 * @holder: the server ID that holds it
 * @detail: what the holder publishes with it ("" for nothing)
 * @remaining_us: how long it still runs, by the database's clock; 0 or
 *   less: it lapsed and anyone may take it
 */
typedef struct {
  const char *name;
  const char *holder;
  const char *detail;
  gint64 remaining_us;
} CanopyClusterLease;

/** CanopyClusterLeaseFunc: Returns: %FALSE to stop listing. */
typedef gboolean (*CanopyClusterLeaseFunc) (const CanopyClusterLease *lease, gpointer user_data);

/**
 * CanopyChangeKinds:
 *
 * A bit set of #CanopyRecordKind: bit (1 << kind) is set when records of
 * that kind changed.
 */
typedef guint32 CanopyChangeKinds;

/**
 * CanopyBackendClusterOps:
 * @size: sizeof (CanopyBackendClusterOps) as the plugin was built; members
 *   past it are taken as %NULL, so the table can grow
 * @prepare: creates what the cluster needs in the database if it is
 *   missing (tables, triggers); idempotent, safe when several servers
 *   start at once
 * @heartbeat: records that @server_id, named @name, is alive now (by the
 *   database's clock); @starting also sets its start time
 * @leave: removes @server_id from the registry and releases every lease
 *   it holds (a clean stop)
 * @list_servers: calls @func for each registered server, by server ID
 * @take_lease: takes or renews the lease @name for @holder for
 *   @duration_ms from now, by one conditional update that succeeds only
 *   when the lease is free, lapsed, or already @holder's; sets @detail
 *   with it. Whether it succeeded or not, fills @lease (valid until the
 *   next call on the handle) with the lease as it now stands
 * @list_leases: calls @func for every lease, by name
 * @wait_changes: (nullable): waits at most @timeout_ms for other
 *   sessions' changes to records and sets @changed to the kinds that
 *   changed (0 when the time ran out). The first call starts listening:
 *   nothing is reported from before it. %NULL: the backend cannot notify
 *   and the core polls instead
 *
 * The same handle as #CanopyBackendOps; the core keeps one handle for the
 * cluster's own thread.
 */
typedef struct {
  guint32 size;
  gboolean (*prepare) (gpointer handle, GError **error);
  gboolean (*heartbeat) (gpointer handle, const char *server_id, const char *name,
                         gboolean starting, GError **error);
  gboolean (*leave) (gpointer handle, const char *server_id, GError **error);
  gboolean (*list_servers) (gpointer handle, CanopyClusterServerFunc func, gpointer user_data,
                            GError **error);
  gboolean (*take_lease) (gpointer handle, const char *name, const char *holder,
                          const char *detail, guint duration_ms, CanopyClusterLease *lease,
                          GError **error);
  gboolean (*list_leases) (gpointer handle, CanopyClusterLeaseFunc func, gpointer user_data,
                           GError **error);
  gboolean (*wait_changes) (gpointer handle, guint timeout_ms, CanopyChangeKinds *changed,
                            GError **error);
} CanopyBackendClusterOps;

G_END_DECLS
