/* The background WAN class: a LEDBAT (RFC 6817) rate controller that
 * makes a lead's WAN traffic yield to everyone else's on the link. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* RFC 6817 caps the target at 100 ms: above it, LEDBAT would add more
 * delay than interactive traffic bears. */
#define CANOPY_WAN_PACER_DEFAULT_TARGET_MS 100
#define CANOPY_WAN_PACER_MAX_TARGET_MS 100
#define CANOPY_WAN_PACER_MIN_TARGET_MS 5

typedef struct _CanopyWanPacer CanopyWanPacer;

/**
 * canopy_wan_pacer_new:
 * @target_us: the queueing delay the controller aims at (at most 100 ms)
 * @max_rate: bytes/s never exceeded (the office's WAN rate), 0: none
 * @min_rate: bytes/s it never goes below, so the transfer never starves
 *
 * Starts from a rate that is a small share of the link and grows it
 * while the delay samples show little queueing.
 */
CanopyWanPacer *canopy_wan_pacer_new (gint64 target_us, double max_rate, double min_rate);
void canopy_wan_pacer_free (CanopyWanPacer *pacer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyWanPacer, canopy_wan_pacer_free)

void canopy_wan_pacer_set_max_rate (CanopyWanPacer *pacer, double max_rate);

/**
 * canopy_wan_pacer_add_delay:
 * @now_us: monotonic time of the sample
 * @delay_us: round-trip time of one of the lead's own WAN requests, to the
 *   first byte of the answer (one-way delays do as well: only differences
 *   from the base delay count)
 *
 * Updates the base delay (the minimum over the last ten minutes, in
 * one-minute buckets, so it follows a route that got longer), the
 * queueing delay (the least of the last samples over the base) and the
 * rate: up while the queueing delay is under the target, down in
 * proportion to how far it is over.
 */
void canopy_wan_pacer_add_delay (CanopyWanPacer *pacer, gint64 now_us, gint64 delay_us);

/**
 * canopy_wan_pacer_add_transfer:
 * @elapsed_us: from a chunk's request to its last byte
 * @bytes: the chunk's length
 *
 * For transports that deliver a chunk whole (the agent-to-agent protocol):
 * the delay is what the transfer took beyond its length at the fastest
 * rate such transfers ever went, so a link that gets slower because it is
 * shared reads as queueing, as it should for a class that yields.
 */
void canopy_wan_pacer_add_transfer (CanopyWanPacer *pacer, gint64 now_us, gint64 elapsed_us,
                                    gsize bytes);

/* Bytes/s the lead may request now. */
double canopy_wan_pacer_get_rate (const CanopyWanPacer *pacer);
/* Latest queueing delay and base delay, µs; -1 before the first sample. */
gint64 canopy_wan_pacer_get_queueing_delay (const CanopyWanPacer *pacer);
gint64 canopy_wan_pacer_get_base_delay (const CanopyWanPacer *pacer);
gint64 canopy_wan_pacer_get_target (const CanopyWanPacer *pacer);

G_END_DECLS
