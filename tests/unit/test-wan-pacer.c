/* The background WAN class's rate controller, fed synthetic delay samples:
 * it backs off when the queueing delay grows past the target, recovers
 * when it falls, follows a route change through its base delay, and in a
 * closed loop with a queue it fills keeps that queue near the target. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "agent/wan-pacer.h"

#define MS 1000
#define S G_USEC_PER_SEC
#define LINK (50e6 / 8) /* bytes/s */
#define MIN_RATE (LINK / 100)
#define TARGET (25 * MS)
#define BASE (40 * MS)

/* Feeds one sample every 100 ms from @from for @duration, each @delay_us;
 * returns the time after the last one. */
static gint64
feed (CanopyWanPacer *pacer, gint64 from, gint64 duration, gint64 delay_us)
{
  gint64 t;

  for (t = from; t < from + duration; t += 100 * MS)
    canopy_wan_pacer_add_delay (pacer, t, delay_us);
  return t;
}

static void
test_backs_off_and_recovers (void)
{
  g_autoptr (CanopyWanPacer) pacer = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  gint64 t = S;
  double start = canopy_wan_pacer_get_rate (pacer);

  CU_ASSERT_EQUAL (canopy_wan_pacer_get_queueing_delay (pacer), -1);
  CU_ASSERT (start < LINK / 2);
  /* An idle link: the rate climbs to the link's. */
  t = feed (pacer, t, 20 * S, BASE);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_base_delay (pacer), BASE);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_queueing_delay (pacer), 0);

  /* Someone else fills the queue: 60 ms over the base, past the target. */
  t = feed (pacer, t, S, BASE + 60 * MS);
  CU_ASSERT (canopy_wan_pacer_get_rate (pacer) < LINK * 0.75);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_queueing_delay (pacer), 60 * MS);
  t = feed (pacer, t, 10 * S, BASE + 60 * MS);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), MIN_RATE, 1);
  /* The base delay is not fooled by a queue that lasts. */
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_base_delay (pacer), BASE);

  /* The other traffic stops: back to the whole link. */
  t = feed (pacer, t, 30 * S, BASE + 2 * MS);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);
}

/* Backing off is proportional: further over the target, faster down. */
static void
test_proportional (void)
{
  g_autoptr (CanopyWanPacer) near = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  g_autoptr (CanopyWanPacer) far = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  gint64 t;

  feed (near, S, 20 * S, BASE);
  t = feed (far, S, 20 * S, BASE);
  feed (near, t, S, BASE + TARGET + 5 * MS);
  feed (far, t, S, BASE + 2 * TARGET);
  CU_ASSERT (canopy_wan_pacer_get_rate (near) < LINK);
  CU_ASSERT (canopy_wan_pacer_get_rate (far) < canopy_wan_pacer_get_rate (near));
  /* Under the target, it does not back off at all. */
  {
    g_autoptr (CanopyWanPacer) under = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
    t = feed (under, S, 20 * S, BASE);
    feed (under, t, 5 * S, BASE + TARGET - 5 * MS);
    CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (under), LINK, 1);
  }
}

/* One sample delayed on the server (a slow answer, not a queue) is
 * filtered out by the samples around it. */
static void
test_outlier_filtered (void)
{
  g_autoptr (CanopyWanPacer) pacer = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  gint64 t = feed (pacer, S, 20 * S, BASE);

  canopy_wan_pacer_add_delay (pacer, t, BASE + 500 * MS);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_queueing_delay (pacer), 0);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);
}

/* A route that gets longer first reads as a queue; after the base
 * history's ten minutes the new base is believed and the rate recovers.
 * A shorter route is believed at once. */
static void
test_base_follows_route (void)
{
  g_autoptr (CanopyWanPacer) pacer = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  gint64 t = feed (pacer, S, 20 * S, BASE);

  t = feed (pacer, t, 30 * S, BASE + 50 * MS);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), MIN_RATE, 1);
  t = feed (pacer, t, 11 * 60 * S, BASE + 50 * MS);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_base_delay (pacer), BASE + 50 * MS);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_queueing_delay (pacer), 0);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);

  t = feed (pacer, t, S, BASE - 10 * MS);
  CU_ASSERT_EQUAL (canopy_wan_pacer_get_base_delay (pacer), BASE - 10 * MS);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);
  /* A queue on the shorter route is measured from the shorter base. */
  feed (pacer, t, 10 * S, BASE - 10 * MS + 60 * MS);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), MIN_RATE, 1);
}

/* Closed loop: a link of LINK bytes/s whose queue the controller itself
 * fills (no cap from the office's rate). It keeps the link busy and the
 * queue around the target, not empty and not full. */
static void
test_closed_loop (void)
{
  g_autoptr (CanopyWanPacer) pacer = canopy_wan_pacer_new (TARGET, 0, MIN_RATE);
  double queue = 0, sent = 0, max_queue_us = 0;
  gint64 step = 10 * MS;

  for (gint64 t = S; t < 120 * S; t += step)
    {
      double rate = canopy_wan_pacer_get_rate (pacer);

      queue = MAX (queue + (rate - LINK) * step / S, 0);
      if (t > 60 * S)
        {
          sent += MIN (rate * step / S + queue, LINK * step / S);
          max_queue_us = MAX (max_queue_us, queue / LINK * S);
        }
      canopy_wan_pacer_add_delay (pacer, t, BASE + (gint64) (queue / LINK * S));
    }
  /* The last minute: at least 90 % of the link, queue at most the
   * target plus 25 ms. */
  CU_ASSERT (sent >= 0.9 * LINK * 60);
  CU_ASSERT (max_queue_us <= TARGET + 25 * MS);
  if (sent < 0.9 * LINK * 60 || max_queue_us > TARGET + 25 * MS)
    fprintf (stderr, "\n    sent %.0f of %.0f, max queue %.0f µs\n", sent, LINK * 60,
             max_queue_us);
}

/* Chunks that arrive whole: a chunk taking twice as long as the fastest
 * one (the link is shared) reads as queueing and the rate falls. */
static void
test_transfers (void)
{
  g_autoptr (CanopyWanPacer) pacer = canopy_wan_pacer_new (TARGET, LINK, MIN_RATE);
  gsize chunk = 1024 * 1024;
  gint64 alone = BASE + (gint64) (chunk / LINK * S), t = S;

  for (int i = 0; i < 100; i++, t += alone)
    canopy_wan_pacer_add_transfer (pacer, t, alone, chunk);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), LINK, 1);
  for (int i = 0; i < 40; i++, t += 2 * alone)
    canopy_wan_pacer_add_transfer (pacer, t, 2 * alone, chunk);
  CU_ASSERT_DOUBLE_EQUAL (canopy_wan_pacer_get_rate (pacer), MIN_RATE, 1);
  CU_ASSERT (canopy_wan_pacer_get_queueing_delay (pacer) > TARGET);
}

CANOPY_TEST_SUITE (wan_pacer, "wan-pacer", NULL, NULL,
                   { "backs off and recovers", test_backs_off_and_recovers },
                   { "proportional", test_proportional },
                   { "outlier filtered", test_outlier_filtered },
                   { "base follows the route", test_base_follows_route },
                   { "closed loop", test_closed_loop },
                   { "whole-chunk transfers", test_transfers })
