/* LEDBAT (RFC 6817) as a rate controller: from the delay of the lead's own
 * WAN requests it learns how much the link's queue holds beyond the base
 * delay, and paces the lead's requests so that queue stays under a target:
 * any other traffic on the link that fills the queue makes it back off. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-wan-pacer"

#include "agent/wan-pacer.h"

#include <string.h>

/* RFC 6817 BASE_HISTORY: minima over this many one-minute buckets. A route
 * that got longer is believed after this long; a shorter one at once. */
#define BASE_HISTORY 10
#define BASE_BUCKET_US (60 * G_USEC_PER_SEC)
/* RFC 6817 CURRENT_FILTER: the least of the last few samples, so one
 * request that waited on the server does not read as a queue. Older
 * samples no longer describe the queue now. */
#define CURRENT_FILTER 4
#define CURRENT_MAX_AGE_US (G_USEC_PER_SEC / 2)
/* Samples further apart than this change the rate as if they were this
 * far apart: a sparse sample says little about the time before it. Long
 * enough that a lead at its floor, whose samples come seconds apart,
 * takes the link within a few samples once it is free. */
#define MAX_STEP_US (4 * G_USEC_PER_SEC)
/* Growth per second at no queueing: the rate times GROWTH plus the
 * minimum rate. LEDBAT grows its window by one packet a round trip; a
 * lead requests whole chunks, several round trips long, so it grows
 * multiplicatively to fill an idle link within seconds, not minutes. */
#define GROWTH 0.5
/* At the queueing delay twice the target, the rate halves in half a second
 * (RFC 6817's GAIN, times the round trips in a second, capped to halving
 * per sample as TCP halves on loss). */
#define DECREASE 1.0
/* The first rate, as a share of the link: little until the samples say
 * the link has room. */
#define START_SHARE 0.1

struct _CanopyWanPacer {
  gint64 target_us;
  double max_rate;
  double min_rate;
  double rate;
  gint64 base_minute[BASE_HISTORY];
  gint64 base_min[BASE_HISTORY];
  guint n_base;
  gint64 current_at[CURRENT_FILTER];
  gint64 current[CURRENT_FILTER];
  guint n_current;
  guint current_next;
  gint64 last_at;
  gint64 queueing_us;
  gint64 base_us;
  double peak_transfer_rate; /* bytes/s, add_transfer only */
};

static double
clamp_rate (const CanopyWanPacer *pacer, double rate)
{
  if (pacer->max_rate > 0)
    rate = MIN (rate, pacer->max_rate);
  return MAX (rate, pacer->min_rate);
}

CanopyWanPacer *
canopy_wan_pacer_new (gint64 target_us, double max_rate, double min_rate)
{
  CanopyWanPacer *pacer = g_new0 (CanopyWanPacer, 1);

  g_return_val_if_fail (target_us > 0, NULL);
  pacer->target_us = target_us;
  pacer->max_rate = MAX (max_rate, 0);
  pacer->min_rate = MAX (min_rate, 1);
  pacer->rate = clamp_rate (pacer, pacer->max_rate > 0 ? pacer->max_rate * START_SHARE
                                                       : pacer->min_rate * 4);
  pacer->queueing_us = -1;
  pacer->base_us = -1;
  return pacer;
}

void
canopy_wan_pacer_free (CanopyWanPacer *pacer)
{
  g_free (pacer);
}

void
canopy_wan_pacer_set_max_rate (CanopyWanPacer *pacer, double max_rate)
{
  pacer->max_rate = MAX (max_rate, 0);
  pacer->rate = clamp_rate (pacer, pacer->rate);
}

/* The minimum over the last BASE_HISTORY minutes, one bucket a minute. */
static gint64
update_base (CanopyWanPacer *pacer, gint64 now_us, gint64 delay_us)
{
  gint64 minute = now_us / BASE_BUCKET_US;
  gint64 base = G_MAXINT64;
  guint kept = 0;

  if (pacer->n_base > 0 && pacer->base_minute[pacer->n_base - 1] == minute)
    pacer->base_min[pacer->n_base - 1] = MIN (pacer->base_min[pacer->n_base - 1], delay_us);
  else
    {
      if (pacer->n_base == BASE_HISTORY)
        {
          memmove (pacer->base_minute, pacer->base_minute + 1,
                   (BASE_HISTORY - 1) * sizeof pacer->base_minute[0]);
          memmove (pacer->base_min, pacer->base_min + 1,
                   (BASE_HISTORY - 1) * sizeof pacer->base_min[0]);
          pacer->n_base--;
        }
      pacer->base_minute[pacer->n_base] = minute;
      pacer->base_min[pacer->n_base] = delay_us;
      pacer->n_base++;
    }
  /* Buckets of minutes that passed without a sample age out all the same. */
  for (guint i = 0; i < pacer->n_base; i++)
    if (pacer->base_minute[i] > minute - BASE_HISTORY)
      {
        pacer->base_minute[kept] = pacer->base_minute[i];
        pacer->base_min[kept] = pacer->base_min[i];
        base = MIN (base, pacer->base_min[kept]);
        kept++;
      }
  pacer->n_base = kept;
  return base;
}

static gint64
update_current (CanopyWanPacer *pacer, gint64 now_us, gint64 delay_us)
{
  gint64 current = delay_us;

  pacer->current[pacer->current_next] = delay_us;
  pacer->current_at[pacer->current_next] = now_us;
  pacer->current_next = (pacer->current_next + 1) % CURRENT_FILTER;
  pacer->n_current = MIN (pacer->n_current + 1, CURRENT_FILTER);
  for (guint i = 0; i < pacer->n_current; i++)
    if (now_us - pacer->current_at[i] <= CURRENT_MAX_AGE_US)
      current = MIN (current, pacer->current[i]);
  return current;
}

void
canopy_wan_pacer_add_delay (CanopyWanPacer *pacer, gint64 now_us, gint64 delay_us)
{
  gint64 base, current;
  double off_target, step;

  delay_us = MAX (delay_us, 0);
  base = update_base (pacer, now_us, delay_us);
  current = update_current (pacer, now_us, delay_us);
  pacer->base_us = base;
  pacer->queueing_us = MAX (current - base, 0);
  step = pacer->last_at == 0
           ? 0
           : (double) CLAMP (now_us - pacer->last_at, 0, MAX_STEP_US) / G_USEC_PER_SEC;
  pacer->last_at = now_us;
  /* RFC 6817's off_target: 1 with an empty queue, 0 at the target,
   * negative above it, here at most -1 (twice the target or more). */
  off_target = (double) (pacer->target_us - pacer->queueing_us) / (double) pacer->target_us;
  off_target = MAX (off_target, -1.0);
  if (off_target >= 0)
    pacer->rate += off_target * step * (pacer->rate * GROWTH + pacer->min_rate);
  else
    pacer->rate *= MAX (1.0 + off_target * DECREASE * step, 0.5);
  pacer->rate = clamp_rate (pacer, pacer->rate);
  g_debug ("delay %" G_GINT64_FORMAT " µs, base %" G_GINT64_FORMAT " µs, queueing %" G_GINT64_FORMAT
           " µs: rate %.0f B/s",
           delay_us, base, pacer->queueing_us, pacer->rate);
}

void
canopy_wan_pacer_add_transfer (CanopyWanPacer *pacer, gint64 now_us, gint64 elapsed_us,
                               gsize bytes)
{
  double seconds = (double) MAX (elapsed_us, 1) / G_USEC_PER_SEC;

  pacer->peak_transfer_rate = MAX (pacer->peak_transfer_rate, (double) bytes / seconds);
  canopy_wan_pacer_add_delay (
    pacer, now_us,
    elapsed_us - (gint64) ((double) bytes / pacer->peak_transfer_rate * G_USEC_PER_SEC));
}

double
canopy_wan_pacer_get_rate (const CanopyWanPacer *pacer)
{
  return pacer->rate;
}

gint64
canopy_wan_pacer_get_queueing_delay (const CanopyWanPacer *pacer)
{
  return pacer->queueing_us;
}

gint64
canopy_wan_pacer_get_base_delay (const CanopyWanPacer *pacer)
{
  return pacer->base_us;
}

gint64
canopy_wan_pacer_get_target (const CanopyWanPacer *pacer)
{
  return pacer->target_us;
}
