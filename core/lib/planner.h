/* Distribution planning: for one deployment, who in each office crosses
 * the WAN (the lead) and where every device fetches from, so each
 * office's WAN link carries the content once. */
#pragma once

#include <glib.h>
#include "lib/ranking.h"
#include "lib/topology.h"

G_BEGIN_DECLS

typedef enum {
  CANOPY_ROLE_LEAD,    /* fetches across the WAN for its office */
  CANOPY_ROLE_PEER,    /* fetches from office peers only */
  CANOPY_ROLE_DIRECT,  /* no office sharing: fetches from the origin (VPN, no office) */
  CANOPY_ROLE_WAIT,    /* nothing may be fetched now (metered link, no lead online) */
} CanopyRole;

typedef enum {
  CANOPY_SOURCE_OFFICE_PEER,
  CANOPY_SOURCE_PARENT_PEER,
  CANOPY_SOURCE_SERVER,
  CANOPY_SOURCE_ORIGIN,
  /* Never assigned: the bytes a device took from chunks it already held
   * for other content (an earlier version), so they crossed no link. */
  CANOPY_SOURCE_EARLIER_VERSIONS,
} CanopySourceKind;

#define CANOPY_SOURCE_N_KINDS 5

typedef struct {
  CanopySourceKind kind;
  const char *device_id; /* for peers; NULL for the server and the origin */
} CanopySource;

typedef struct {
  const char *device_id;
  const char *office;  /* NULL for a no-office client */
  CanopyRole role;
  GArray *sources;     /* CanopySource, in the order to try them */
  guint64 wan_rate;    /* bits/s the WAN leg may use; 0 = not limited */
  /* a lead whose parent office brings the content in or holds it: its
   * sources beyond its office are that office's devices only */
  gboolean parent_supplies;
  char *reason;        /* translated, for logs and the console */
} CanopyPlan;

void canopy_plan_free (CanopyPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyPlan, canopy_plan_free)

typedef struct {
  gboolean content_store; /* the server keeps a copy it can seed */
  const char *const *stalled; /* (nullable) device IDs not to make lead again */
  /* (nullable) device IDs leading their office now: each keeps the role
   * while it is online and has not stalled, so a device coming or going
   * never makes two devices of an office cross the WAN for the same part */
  const char *const *leads;
  /* (nullable) (element-type CanopyDeviceHistory) online devices, targets
   * or not, that hold the whole content verified, whichever deployment
   * brought it: their office takes it from them, across no WAN link */
  GPtrArray *holders;
  /* (nullable) (element-type CanopyDeviceHistory) online devices that do
   * not hold the content but hold another that shares chunks with it (an
   * earlier version): office peers of their office's devices, which ask
   * them for chunks by hash, so those chunks cross no WAN link */
  GPtrArray *related;
} CanopyPlannerOptions;

/**
 * canopy_planner_plan:
 * @topology: the offices
 * @ranked: every target device, ranked per office (canopy_ranking_rank());
 *   a device whose office is "" is a no-office client
 * @options: what the server offers
 *
 * Returns: (transfer full) (element-type CanopyPlan): a plan per device,
 *   in the order of @ranked.
 */
GPtrArray *canopy_planner_plan (const CanopyTopology *topology, GArray *ranked,
                                const CanopyPlannerOptions *options);

const char *canopy_role_to_string (CanopyRole role);
const char *canopy_source_kind_to_string (CanopySourceKind kind);

G_END_DECLS
