/* Preferred devices: per office, devices ranked by their history of being
 * available and of serving verified chunks to peers of their subnet. The
 * ranking explains itself so the console can show why a device leads. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What the server records about a device, as the ranking needs it. */
typedef struct {
  const char *device_id;
  const char *office;
  gint64 first_seen;          /* µs since the epoch */
  gint64 online_us;           /* time it was connected since first seen */
  guint64 verified_bytes_served; /* to peers of its subnet, verified by them */
  guint peers_served;
  guint bad_chunks_served;    /* chunks its peers rejected */
  gboolean online;
} CanopyDeviceHistory;

typedef struct {
  const CanopyDeviceHistory *history;
  double score;         /* 0..1, higher is preferred */
  double availability;  /* 0..1 */
  double serving;       /* 0..1 */
  guint rank;           /* 1 = most preferred in its office */
  char *explanation;    /* translated sentence for the console */
} CanopyRankedDevice;

void canopy_ranked_device_clear (CanopyRankedDevice *ranked);

/**
 * canopy_ranking_rank:
 * @histories: (element-type CanopyDeviceHistory): devices of one or more
 *   offices
 * @now: µs since the epoch
 *
 * Ranks the devices of each office. Ties go to the device enrolled longest,
 * then to the smaller device ID, so the order is stable between runs.
 *
 * Returns: (transfer full) (element-type CanopyRankedDevice): sorted by
 *   office, then rank.
 */
GArray *canopy_ranking_rank (GPtrArray *histories, gint64 now);

/**
 * canopy_ranking_pick_lead:
 * @ranked: the result of canopy_ranking_rank()
 * @office: an office name
 * @exclude: (nullable): device IDs not to pick (stalled or gone leads)
 *
 * Returns: (transfer none) (nullable): the most preferred online device of
 *   @office not in @exclude.
 */
const CanopyRankedDevice *canopy_ranking_pick_lead (GArray *ranked, const char *office,
                                                    const char *const *exclude);

G_END_DECLS
