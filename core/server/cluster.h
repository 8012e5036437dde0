/* Several canopyd on one database: this server's entry in the servers'
 * registry, kept alive by a heartbeat; the offices' lead leases; and the
 * other servers' changes to shared state, noticed (by the database's
 * notification, or by polling where it has none) and handed to the main
 * loop. One worker thread with a backend handle of its own does all the
 * database work; the main loop never waits for it. */
#pragma once

#include <glib.h>
#include "lib/backend.h"
#include "lib/plugin-loader.h"

G_BEGIN_DECLS

typedef struct _CanopyCluster CanopyCluster;

/* How long an office's lead lease runs unless renewed, unless configured. */
#define CANOPY_CLUSTER_LEASE_S 15
/* A server whose heartbeat is older than this is reported as lapsed. */
#define CANOPY_CLUSTER_LAPSED_S 10

/**
 * CanopyClusterChanges:
 * @kinds: the kinds that changed (bit 1 << kind)
 * @records: for each kind in @kinds, every record of that kind as the
 *   database now holds it: a #GPtrArray of #CanopyClusterRecord; for
 *   devices, activations and progress, only those that changed
 * @removed: for devices, activations and progress, the keys that went
 */
typedef struct {
  char *key;
  GVariant *value;
} CanopyClusterRecord;

typedef struct {
  CanopyChangeKinds kinds;
  GPtrArray *records[CANOPY_N_RECORD_KINDS];
  GPtrArray *removed[CANOPY_N_RECORD_KINDS];
} CanopyClusterChanges;

typedef struct {
  /* on the main loop: records another server (or this one) changed, of
   * every kind but devices, activations and progress */
  void (*changed) (const CanopyClusterChanges *changes, gpointer user_data);
  /* on the main loop, a slice at a time: a device, activation or progress
   * row that changed, @value NULL when it went */
  void (*row_changed) (CanopyRecordKind kind, const char *key, GVariant *value,
                       gpointer user_data);
  /* on the main loop: a lease's holder, or what its holder publishes,
   * changed: plans that depend on who leads an office are redone */
  void (*leases_changed) (gpointer user_data);
} CanopyClusterCallbacks;

/**
 * canopy_cluster_new:
 * @lease_s: how long a lead lease runs unless renewed
 * @poll: poll for changes even when the backend can notify
 *
 * Opens a backend handle of the cluster's own, prepares the database,
 * registers this server, and starts listening for changes, so that none
 * made after this call is missed. Blocking; called at start, before the
 * stored state is loaded. Nothing is delivered before canopy_cluster_start().
 */
CanopyCluster *canopy_cluster_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                                   const char *state_directory, const char *server_id,
                                   const char *name, guint lease_s, gboolean poll,
                                   GError **error);

/* Starts the worker thread; callbacks run on the thread-default main
 * context of the caller. */
void canopy_cluster_start (CanopyCluster *cluster, const CanopyClusterCallbacks *callbacks,
                           gpointer user_data);

/* Stops the thread, leaves the registry and releases this server's leases. */
void canopy_cluster_free (CanopyCluster *cluster);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyCluster, canopy_cluster_free)

const char *canopy_cluster_get_server_id (const CanopyCluster *cluster);

/* Whether changes are notified by the database (else polled). */
gboolean canopy_cluster_is_notified (const CanopyCluster *cluster);

/**
 * canopy_cluster_want_lease:
 * @detail: what to publish with it: the office's leads, for the other
 *   servers' devices to fetch from
 *
 * Asks for @office's lead lease (taken within a second when free or
 * lapsed, then renewed every second), or updates what is published.
 */
void canopy_cluster_want_lease (CanopyCluster *cluster, const char *office, const char *detail);

/* Lets @office's lease go: given up at once rather than left to lapse. */
void canopy_cluster_drop_lease (CanopyCluster *cluster, const char *office);

/* Drops every wanted lease but those of @offices (a set of names). */
void canopy_cluster_keep_only (CanopyCluster *cluster, GHashTable *offices);

/**
 * canopy_cluster_holds_lease:
 * @holder_detail: (out) (optional) (transfer full): when another server
 *   holds it, what that server publishes ("" when nobody holds it)
 *
 * Returns: whether this server holds @office's lease now (taken and not
 *   due to lapse within a safety margin).
 */
gboolean canopy_cluster_holds_lease (CanopyCluster *cluster, const char *office,
                                     char **holder_detail);

typedef struct {
  char *server_id;
  char *name;
  gint64 started_at;
  gint64 heartbeat_at;
  gint64 silent_us;
} CanopyClusterMember;

void canopy_cluster_member_free (CanopyClusterMember *member);

/**
 * canopy_cluster_get_members:
 *
 * Returns: (transfer full) (element-type CanopyClusterMember): the
 *   registry as last read (within a second), this server included.
 */
GPtrArray *canopy_cluster_get_members (CanopyCluster *cluster);

/* Why the last database round trip failed, or NULL (transfer full). */
char *canopy_cluster_get_problem (CanopyCluster *cluster);

G_END_DECLS
