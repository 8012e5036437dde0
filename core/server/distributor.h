/* Deployments: content assigned to groups. The distributor knows which
 * devices are online, plans per office who crosses the WAN (the lead) and
 * where everyone else fetches from, sends each device its assignment, and
 * follows progress: a lead that stalls or leaves hands over to the next
 * preferred device of its office. */
#pragma once

#include <glib.h>
#include "lib/planner.h"
#include "lib/topology.h"
#include "server/catalog.h"
#include "server/content-store.h"
#include "server/sessions.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

#define CANOPY_DISTRIBUTOR_ERROR (canopy_distributor_error_quark ())
GQuark canopy_distributor_error_quark (void);

typedef enum {
  CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_CONTENT,    /* no content has that ID */
  CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_DEPLOYMENT, /* no deployment has that ID */
  CANOPY_DISTRIBUTOR_ERROR_INVALID,            /* no group, or a destination that cannot be */
} CanopyDistributorError;

typedef struct _CanopyDistributor CanopyDistributor;

typedef enum {
  CANOPY_DEPLOYMENT_ACTIVE = 0,
  CANOPY_DEPLOYMENT_PAUSED = 1,
  CANOPY_DEPLOYMENT_CANCELLED = 2, /* withdrawn from every device; kept to show what each did */
  CANOPY_DEPLOYMENT_RETIRED = 3,   /* cancelled, and its package removed where it is unchanged */
} CanopyDeploymentState;

/* What a device did when its deployment was cancelled or removed. */
typedef struct {
  char *device_id;
  const char *what;  /* "pending", "nothing", "stopped" or "installed" */
  char *message;     /* translated sentence for the console */
} CanopyDeviceOutcome;

void canopy_device_outcome_free (CanopyDeviceOutcome *outcome);

/* One office's share of a deployment. */
typedef struct {
  char *office;
  guint devices;            /* target devices known in the office */
  guint done;               /* of which finished */
  guint64 bytes[CANOPY_SOURCE_N_KINDS]; /* verified bytes by CanopySourceKind */
  guint64 wan_bytes;        /* bytes that reached the office from outside it */
  char *lead;               /* (nullable) its current lead */
  gboolean background;      /* its lead yields to other WAN traffic (LEDBAT) */
  guint64 pacing_rate;      /* background: the lead's current rate, bits/s; 0: none */
  gint64 queueing_delay_us; /* background: the queueing delay it measures; -1: none */
  gint64 base_delay_us;     /* background: the base delay it measures; -1: none */
} CanopyOfficeProgress;

/* When a deployment's content may move. */
typedef struct {
  gint64 start_at;        /* µs since the epoch; 0: at once */
  gint64 deadline;        /* µs since the epoch; 0: none. Past it, the window no longer holds */
  guint16 window_start;   /* daily window, minutes since midnight in the local time */
  guint16 window_end;     /* of each device's office; equal to window_start: none */
} CanopyDeploymentTiming;

typedef struct {
  char *id;
  char *content_id;
  GStrv groups;
  char *destination;
  CanopyDeploymentState state;
  gint64 created_at;        /* µs since the epoch */
  gboolean background;      /* asked for the background WAN class */
  guint devices, done;
  CanopyDeploymentTiming timing;
} CanopyDeploymentInfo;

/* What a deployment may ask for beyond content, groups and destination. */
typedef struct {
  /* every office's lead yields to other traffic on its WAN link (LEDBAT,
   * RFC 6817); offices can also ask for it in the topology */
  gboolean background;
} CanopyDeploymentOptions;

void canopy_office_progress_free (CanopyOfficeProgress *progress);
void canopy_deployment_info_free (CanopyDeploymentInfo *info);

/**
 * canopy_distributor_new:
 * @store, @catalog, @topology, @sessions: (not owned) outlive the distributor
 *
 * Loads the deployments and their progress, and follows @sessions.
 */
CanopyDistributor *canopy_distributor_new (CanopyStore *store, CanopyCatalog *catalog,
                                           CanopyTopology *topology, CanopySessions *sessions,
                                           GError **error);
void canopy_distributor_free (CanopyDistributor *distributor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyDistributor, canopy_distributor_free)

/**
 * canopy_distributor_create:
 * @groups: the device groups that receive the content
 * @destination: absolute path where each device puts the finished package
 * @admin: (nullable): who asked, for the log
 *
 * Returns: (transfer full): the new deployment's ID, or %NULL when the
 *   content is unknown, no group is named or the destination is not an
 *   absolute path.
 */
char *canopy_distributor_create (CanopyDistributor *distributor, const char *content_id,
                                 const char *const *groups, const char *destination,
                                 const char *admin, GError **error);

/**
 * canopy_distributor_create_timed:
 * @timing: (nullable): when the content may move; %NULL: at any time
 * @options: (nullable): the background class; %NULL for none
 *
 * As canopy_distributor_create(); refuses a deadline that is not after
 * the start.
 */
char *canopy_distributor_create_timed (CanopyDistributor *distributor, const char *content_id,
                                       const char *const *groups, const char *destination,
                                       const CanopyDeploymentTiming *timing,
                                       const CanopyDeploymentOptions *options, const char *admin,
                                       GError **error);

/* The queueing delay background leads aim at, in ms (5 to 100); RFC 6817
 * allows at most 100. */
#define CANOPY_DISTRIBUTOR_DEFAULT_BACKGROUND_TARGET_MS 100
void canopy_distributor_set_background_target (CanopyDistributor *distributor, guint target_ms);

/**
 * canopy_distributor_cancel:
 *
 * Withdraws the deployment from every device that was sent it: each online
 * one is told now and stops fetching before it installs anything, each
 * offline one when it reconnects. The deployment stays listed, cancelled,
 * with what each device did (canopy_distributor_get_outcomes()).
 */
gboolean canopy_distributor_cancel (CanopyDistributor *distributor, const char *id,
                                    GError **error);

/**
 * canopy_distributor_retire:
 *
 * Withdraws the deployment as canopy_distributor_cancel() does, and asks
 * every device that installed its package to remove it: each removes the
 * file only if it installed it and it still has the package's hash, and
 * says what it did (canopy_distributor_get_uninstalls()). Online devices
 * are asked now, the others when they reconnect.
 */
gboolean canopy_distributor_retire (CanopyDistributor *distributor, const char *id,
                                    GError **error);

/**
 * canopy_distributor_get_uninstalls:
 *
 * Returns: (transfer full) (element-type CanopyDeviceOutcome) (nullable):
 *   for a retired deployment, what each device that had installed it did:
 *   `what` is "pending", "removed", "changed" (left alone), "absent",
 *   "not-installed" or "failed"; %NULL when @id is unknown or not retired.
 */
GPtrArray *canopy_distributor_get_uninstalls (CanopyDistributor *distributor, const char *id);

/* Withdraws the deployment as canopy_distributor_cancel() does, then forgets
 * it: it is no longer listed, and its records are deleted. */
gboolean canopy_distributor_remove (CanopyDistributor *distributor, const char *id,
                                    GError **error);

/**
 * canopy_distributor_get_outcomes:
 *
 * Returns: (transfer full) (element-type CanopyDeviceOutcome) (nullable):
 *   what each device did with the cancelled deployment @id, or %NULL when
 *   it is unknown or not cancelled.
 */
GPtrArray *canopy_distributor_get_outcomes (CanopyDistributor *distributor, const char *id);

/* Whether any deployment uses the content. */
gboolean canopy_distributor_uses_content (CanopyDistributor *distributor, const char *content_id);

/** canopy_distributor_list: Returns: (transfer full) (element-type CanopyDeploymentInfo) */
GPtrArray *canopy_distributor_list (CanopyDistributor *distributor);

/**
 * canopy_distributor_get_progress:
 *
 * Returns: (transfer full) (element-type CanopyOfficeProgress) (nullable):
 *   progress per office, or %NULL for an unknown deployment.
 */
GPtrArray *canopy_distributor_get_progress (CanopyDistributor *distributor, const char *id);

/**
 * canopy_distributor_set_content_store:
 * @content_store: (nullable) (not owned): outlives the distributor
 *
 * Leads of content the store holds are sent to the server after the
 * parent office's peers and before the origin.
 */
void canopy_distributor_set_content_store (CanopyDistributor *distributor,
                                           CanopyContentStore *content_store);

/* @topology (not owned) replaces the offices plans are made with. */
void canopy_distributor_set_topology (CanopyDistributor *distributor, CanopyTopology *topology);

/**
 * CanopyDistributorLeadGate:
 * @may_lead: whether this server may make one of its devices @office's
 *   lead; when not, sets @holder_detail (transfer full) to what the
 *   server that may publishes: lines "DEPLOYMENT DEVICE HOST PORT"
 * @leading: after planning: each office this server's plans would lead
 *   (office → #GString of those lines, for its own leads; borrowed)
 *
 * In a cluster, who leads an office is decided across servers.
 */
typedef struct {
  gboolean (*may_lead) (const char *office, char **holder_detail, gpointer user_data);
  void (*leading) (GHashTable *offices, gpointer user_data);
} CanopyDistributorLeadGate;

/* Plans from now on ask @gate (not copied; outlives the distributor). */
void canopy_distributor_set_lead_gate (CanopyDistributor *distributor,
                                       const CanopyDistributorLeadGate *gate,
                                       gpointer user_data);

/* Who holds a lease, or what a holder publishes, changed: plans anew. */
void canopy_distributor_leases_changed (CanopyDistributor *distributor);

/**
 * canopy_distributor_merge_stored:
 * @value: a deployment record as stored, of CANOPY_RECORD_DEPLOYMENT_TYPE
 *
 * Takes in a deployment another server of the cluster created, or the
 * new state (paused, resumed, cancelled, retired) it gave one.
 */
void canopy_distributor_merge_stored (CanopyDistributor *distributor, const char *id,
                                      GVariant *value);

/**
 * canopy_distributor_merge_removed:
 * @stored: the IDs of every deployment the database holds (a set)
 *
 * Removes the deployments another server of the cluster removed: those
 * this server saw in the database before (read at start, taken in from
 * another server, or its own once a reading found them written) and that
 * are missing from @stored. One made here and never seen stored may only
 * be unwritten yet, and stays.
 */
void canopy_distributor_merge_removed (CanopyDistributor *distributor, GHashTable *stored);

/**
 * canopy_distributor_merge_progress:
 * @key: "DEPLOYMENT-ID/DEVICE-ID", as stored
 * @value: a progress record as stored, of CANOPY_RECORD_PROGRESS_TYPE
 *
 * Takes in what a device of another server of the cluster did for a
 * deployment (chunks verified, bytes by source, done), for the console.
 * A device connected to this server is left as this server tracks it.
 *
 * Returns: whether it changed anything here.
 */
gboolean canopy_distributor_merge_progress (CanopyDistributor *distributor, const char *key,
                                            GVariant *value);

/* Sends every online device its assignments again (after publish content). */
void canopy_distributor_reoffer (CanopyDistributor *distributor);

/**
 * canopy_distributor_list_reported:
 * @within_us: how far back to look
 *
 * Returns: (transfer full): the devices that office peers reported, in the
 *   last @within_us, for chunks that failed verification or that they
 *   announced and withheld.
 */
GStrv canopy_distributor_list_reported (CanopyDistributor *distributor, gint64 within_us);

/**
 * canopy_distributor_list_lost:
 * @within_us: how far back to look
 *
 * Returns: (transfer full): the devices whose sessions were closed in the
 *   last @within_us because they stopped answering (missed heartbeats: a
 *   network cut, a hung or powered-off device), and that have not enrolled
 *   again since.
 */
GStrv canopy_distributor_list_lost (CanopyDistributor *distributor, gint64 within_us);

/**
 * canopy_distributor_list_failures:
 * @within_us: how far back to look
 *
 * Returns: (transfer full): "DEVICE (deployment ID: REASON)" for each
 *   device that said, in the last @within_us, that it cannot complete a
 *   deployment (a full disk, an unwritable destination), and has verified
 *   nothing since.
 */
GStrv canopy_distributor_list_failures (CanopyDistributor *distributor, gint64 within_us);

typedef struct {
  char *device_id;
  char *reason; /* as the device said it */
} CanopyDeviceFailure;

void canopy_device_failure_free (CanopyDeviceFailure *failure);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyDeviceFailure, canopy_device_failure_free)

/**
 * canopy_distributor_get_failures:
 *
 * Returns: (transfer container) (element-type CanopyDeviceFailure): the
 *   devices that said they cannot complete @deployment_id (a full disk, a
 *   destination their policy refuses) and have verified nothing since, by
 *   device ID; for the deployment's status.
 */
GPtrArray *canopy_distributor_get_failures (CanopyDistributor *distributor,
                                            const char *deployment_id);

/* Where one target device stands with a deployment. */
typedef enum {
  CANOPY_DEVICE_WAITING,   /* nothing verified yet (offline, or waiting its turn or window) */
  CANOPY_DEVICE_FETCHING,  /* verified part of the content */
  CANOPY_DEVICE_DONE,      /* installed the whole package, its hash checked */
  CANOPY_DEVICE_FAILED,    /* said it cannot complete it (a full disk, a broken origin) */
  CANOPY_DEVICE_REFUSED,   /* its install policy refuses the destination */
  CANOPY_DEVICE_CANCELLED, /* the deployment was cancelled before it finished */
  CANOPY_N_DEVICE_STATES,
} CanopyDeviceState;

/* The names the console API and canopyctl use: "waiting", "fetching", ... */
const char *canopy_device_state_to_string (CanopyDeviceState state);
gboolean canopy_device_state_from_string (const char *text, CanopyDeviceState *state);

typedef struct {
  char *device_id;
  char *name;              /* as the device reported it; "" when unknown */
  char *office;            /* "" when it is in none */
  CanopyDeviceState state;
  guint percent;           /* 0-100, of the content's chunks verified */
  guint64 bytes_done;      /* verified bytes of the content */
  guint64 size;            /* the content's size */
  guint64 bytes[4];        /* bytes it took, by CanopySourceKind */
  const char *role;        /* "lead", "peer" or "alone" */
  GStrv sources;           /* device IDs, "server" or "origin" */
  char *error;             /* "" or the last failure, in the device's words */
  gint64 last_report;      /* real µs of its last report in this run; 0: none */
} CanopyDeviceStatus;

void canopy_device_status_free (CanopyDeviceStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyDeviceStatus, canopy_device_status_free)

/**
 * canopy_distributor_get_devices:
 * @office: (nullable): only the devices of this office
 * @state: only devices in this state, or -1 for all
 *
 * Every target device of deployment @id: those it was sent to, and the
 * devices of its groups known to the server that were not sent it yet
 * (offline ones), by office, then name, then ID.
 *
 * Returns: (transfer full) (element-type CanopyDeviceStatus) (nullable):
 *   the devices, or %NULL for an unknown deployment.
 */
GPtrArray *canopy_distributor_get_devices (CanopyDistributor *distributor, const char *id,
                                           const char *office, int state);

G_END_DECLS
