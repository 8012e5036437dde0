/* Faults a site must survive, with real processes: a device that holds
 * the shared key and lies to its office, a wall clock that jumps. Each
 * asserts what an admin relies on: every honest device completes with a
 * correct copy, and the fault shows in the health check and the log. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#define HONEST (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE)
/* Small enough to be quick, large enough that the lead is still at work
 * when the liar is found out. */
#define CONTENT_SIZE (24 * 1024 * 1024 + 4321)

/* The site of the running test, static so that a test stopped by a
 * failed fatal assertion still has its processes stopped. */
static CanopyTestSite site;

static char *small_disk (const CanopyTestSite *s);

static int
suite_cleanup (void)
{
  g_autofree char *disk = site.dir != NULL ? small_disk (&site) : NULL;

  canopy_test_site_stop (&site, FALSE);
  /* The full-disk test's mount, if it stopped half way. */
  if (disk != NULL)
    umount2 (disk, MNT_DETACH);
  return 0;
}

/* Whether some honest agent's log names @device_id in a line with @words. */
static gboolean
an_agent_said (CanopyTestSite *s, const char *words, const char *device_id)
{
  for (guint i = 0; i < HONEST; i++)
    {
      const char *output = canopy_test_process_output (s->agents[i]);
      g_auto (GStrv) lines = g_strsplit (output, "\n", -1);

      for (guint l = 0; lines[l] != NULL; l++)
        if (strstr (lines[l], words) != NULL && strstr (lines[l], device_id) != NULL)
          return TRUE;
    }
  return FALSE;
}

/* The liar enrols first and is North's only device when the deployment
 * is made, so it leads North: the worst place for a lie, since the other
 * devices of North take from their office alone, and its made-up progress
 * keeps the server's stall detection quiet. */
static void
run_liar (const char *mode, const char *agents_say)
{
  CanopyTestSiteOptions options = { .wan_rate = "80M", .content_size = CONTENT_SIZE };
  g_autofree char *rogue = canopy_test_build_path ("tests", "canopy-test-rogue", NULL);
  g_autofree char *mode_env = g_strconcat ("CANOPY_ROGUE_MODE=", mode, NULL);
  const char *command[] = { "env", mode_env, rogue, NULL };
  guint liar_slot = canopy_test_site_slot (1, CANOPY_TEST_SITE_AGENTS_PER_OFFICE);
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) holder = NULL;
  g_autoptr (JsonNode) health = NULL;
  JsonObject *check, *north;
  const char *liar;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  site.agents[liar_slot] = canopy_test_site_device_start (&site, 1,
                                                          CANOPY_TEST_SITE_AGENTS_PER_OFFICE,
                                                          command);
  liar = site.device_ids[liar_slot];
  CU_ASSERT_FATAL (canopy_test_process_wait_output (site.server, liar, 20));
  content_id = canopy_test_site_deploy (&site);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (site.agents[liar_slot], "as role 0", 20));
  canopy_test_site_start_agents (&site);

  done = canopy_test_site_wait_done (&site, HONEST, 150);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  /* The liar is dropped by the devices it lied to, named to the server,
   * and no longer leads. */
  CU_ASSERT (an_agent_said (&site, agents_say, liar));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site.server), "handing over");
  CU_ASSERT (strstr (canopy_test_process_output (site.server), liar) != NULL);
  /* The lead named as reported is the liar, never the device that
   * reported it. */
  {
    g_auto (GStrv) lines = g_strsplit (canopy_test_process_output (site.server), "\n", -1);
    guint named = 0;

    for (guint l = 0; lines[l] != NULL; l++)
      if (strstr (lines[l], "reported lead") != NULL)
        {
          g_autofree char *expected = g_strdup_printf ("reported lead %s", liar);

          if (strstr (lines[l], expected) == NULL)
            fprintf (stderr, "\n    names the wrong lead: %s\n", lines[l]);
          CU_ASSERT (strstr (lines[l], expected) != NULL);
          named++;
        }
    if (g_str_equal (mode, "garbage"))
      CU_ASSERT (named > 0);
  }
  north = canopy_test_site_office_of (canopy_test_site_deployment (&site, &holder), "North");
  CU_ASSERT_PTR_NOT_NULL_FATAL (north);
  CU_ASSERT_STRING_NOT_EQUAL (json_object_get_string_member (north, "lead"), liar);
  check = canopy_test_site_health_check (&site, "peer-integrity", &health);
  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "warning");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"), liar);
  canopy_test_site_stop (&site, TRUE);
}

static void
test_liar_silent (void)
{
  run_liar ("silent", "withheld");
}

static void
test_liar_cancels (void)
{
  run_liar ("cancel", "withheld");
}

static void
test_liar_garbage (void)
{
  run_liar ("garbage", "does not match the signed manifest");
}

/* libfaketime's thread-safe build, wherever this system's multiarch puts it. */
static char *
find_faketime (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/usr/lib", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/usr/lib", name, "faketime",
                                                "libfaketimeMT.so.1", NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
    }
  return NULL;
}

/* Waits until North has taken @fraction of the content across its WAN. */
static gboolean
wait_north_wan (CanopyTestSite *s, double fraction)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (120) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = canopy_test_site_deployment (s, &holder);
      JsonObject *north = d != NULL ? canopy_test_site_office_of (d, "North") : NULL;

      if (north != NULL
          && json_object_get_int_member (north, "bytes_origin") >= fraction * s->content_size)
        return TRUE;
      canopy_test_site_pump (200);
    }
  return FALSE;
}

/* Sets every process's wall clock @offset from the real one ("+2h", "-1d"),
 * and lets the change be read (libfaketime caches it for a second). */
static void
jump_clock (const char *file, const char *offset)
{
  g_assert (g_file_set_contents (file, offset, -1, NULL));
  canopy_test_site_pump (3000);
}

/* What the server stored about each device stays sane: first seen no
 * later than last seen, and the time online neither inflated nor wiped
 * out by the jumps (it shows as availability, which ranks leads). */
static void
assert_device_records (CanopyTestSite *s)
{
  g_autoptr (JsonNode) devices = canopy_test_site_api (s, "GET", "/api/v1/devices", NULL,
                                                       SOUP_STATUS_OK);
  JsonArray *array = json_object_get_array_member (json_node_get_object (devices), "devices");

  CU_ASSERT_EQUAL (json_array_get_length (array), HONEST);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *device = json_array_get_object_element (array, i);
      g_autoptr (GDateTime) first = g_date_time_new_from_iso8601 (
        json_object_get_string_member (device, "first_seen"), NULL);
      g_autoptr (GDateTime) last = g_date_time_new_from_iso8601 (
        json_object_get_string_member (device, "last_seen"), NULL);
      double availability = json_object_get_double_member (
        json_object_get_object_member (device, "preference"), "availability");

      CU_ASSERT_FATAL (first != NULL && last != NULL);
      CU_ASSERT (g_date_time_compare (first, last) <= 0);
      if (availability < 0.9)
        fprintf (stderr, "\n    device %s: availability %.3f\n",
                 json_object_get_string_member (device, "device_id"), availability);
      CU_ASSERT (availability >= 0.9);
    }
}

/* The wall clock of the server and of every agent jumps two hours ahead,
 * then a day back, while the content is on its way: heartbeats, stall
 * detection, rate limiting and backoff run on the monotonic clock, so no
 * device is lost or stalled, and the deployment completes. */
static void
test_clock_jump (void)
{
  g_autofree char *faketime = find_faketime ();
  g_autofree char *clock_dir = NULL, *clock_file = NULL;
  g_autofree char *preload = NULL, *timestamp = NULL, *asan = NULL;
  CanopyTestSiteOptions options = { .wan_rate = "40M" };
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) health = NULL;
  g_autofree char *content_id = NULL;
  JsonObject *check;

  if (faketime == NULL)
    {
      canopy_test_skip ("libfaketime is not installed (Debian package \"faketime\"); "
              "the clock-jump test did not run");
      return;
    }
  if (!canopy_test_site_available ())
    return;
  clock_dir = canopy_test_make_tmpdir ("clock");
  clock_file = g_build_filename (clock_dir, "faketime", NULL);
  g_assert (g_file_set_contents (clock_file, "+0", -1, NULL));
  preload = g_strconcat ("LD_PRELOAD=", faketime, NULL);
  timestamp = g_strconcat ("FAKETIME_TIMESTAMP_FILE=", clock_file, NULL);
  /* In a build with AddressSanitizer, libfaketime comes before its
   * runtime, which ASan refuses unless told that is meant. */
  asan = g_strdup_printf ("ASAN_OPTIONS=%s%sverify_asan_link_order=0",
                          g_getenv ("ASAN_OPTIONS") != NULL ? g_getenv ("ASAN_OPTIONS") : "",
                          g_getenv ("ASAN_OPTIONS") != NULL ? ":" : "");
  {
    const char *const faked[] = { "env", preload, timestamp, "FAKETIME_DONT_FAKE_MONOTONIC=1",
                                  "FAKETIME_CACHE_DURATION=1", asan, NULL };

    for (guint o = 0; o <= CANOPY_TEST_SITE_OFFICES; o++)
      options.prefix[o] = faked;
    canopy_test_site_begin (&site, &options);
    canopy_test_site_start_agents (&site);
  }
  content_id = canopy_test_site_deploy (&site);
  CU_ASSERT_FATAL (wait_north_wan (&site, 0.25));
  jump_clock (clock_file, "+2h");
  CU_ASSERT_FATAL (wait_north_wan (&site, 0.6));
  jump_clock (clock_file, "-1d");
  done = canopy_test_site_wait_done (&site, HONEST, 150);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);

  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (site.server), "missed"));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (site.server), "verified nothing"));
  for (guint i = 0; i < HONEST; i++)
    CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (site.agents[i]), "connection"));
  check = canopy_test_site_health_check (&site, "lost-devices", &health);
  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "ok");
  assert_device_records (&site);
  canopy_test_site_stop (&site, TRUE);
}

/* The health check's @name entry: its status, and whether its message
 * names @device_id. */
static char *
health_status (CanopyTestSite *s, const char *name, const char *device_id, gboolean *named)
{
  g_autoptr (JsonNode) health = NULL;
  JsonObject *check = canopy_test_site_health_check (s, name, &health);

  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  *named = strstr (json_object_get_string_member (check, "message"), device_id) != NULL;
  return g_strdup (json_object_get_string_member (check, "status"));
}

/* Where the full-disk test mounts its small disk, in @s's directory. */
static char *
small_disk (const CanopyTestSite *s)
{
  return g_build_filename (s->dir, "agent-2-1", "cache", NULL);
}

/* South's second device has its cache on a disk that fills up: it pauses,
 * says so, and the health check names it while the others complete; with
 * space back it finishes and the warning clears. */
static void
test_disk_full (void)
{
  CanopyTestSiteOptions options = { .content_size = CONTENT_SIZE };
  guint slot = canopy_test_site_slot (2, 1);
  g_autofree char *cache = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *paused = NULL, *cleared = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) all = NULL;
  gboolean named = FALSE;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  cache = small_disk (&site);
  g_assert (g_mkdir_with_parents (cache, 0700) == 0);
  if (mount ("tmpfs", cache, "tmpfs", 0, "size=4m") != 0)
    {
      canopy_test_skip ("cannot mount a small tmpfs here (%s); the full-disk test did not "
              "run", g_strerror (errno));
      canopy_test_site_stop (&site, FALSE);
      return;
    }
  canopy_test_site_start_agents (&site);
  content_id = canopy_test_site_deploy (&site);
  done = canopy_test_site_wait_done (&site, HONEST - 1, 150);
  CU_ASSERT_PTR_NOT_NULL (done);
  CU_ASSERT (canopy_test_process_wait_output (site.server, "cannot complete deployment", 30));
  paused = health_status (&site, "device-failures", site.device_ids[slot], &named);
  CU_ASSERT_STRING_EQUAL (paused, "warning");
  CU_ASSERT (named);

  /* Space is back: the device goes on from its verified chunks. */
  CU_ASSERT_FATAL (mount ("tmpfs", cache, NULL, MS_REMOUNT, "size=64m") == 0);
  all = canopy_test_site_wait_done (&site, HONEST, 150);
  CU_ASSERT_PTR_NOT_NULL (all);
  canopy_test_site_assert_copy (&site);
  cleared = health_status (&site, "device-failures", site.device_ids[slot], &named);
  CU_ASSERT_STRING_EQUAL (cleared, "ok");
  canopy_test_site_stop (&site, TRUE);
  CU_ASSERT (umount (cache) == 0);
}

CANOPY_TEST_SUITE (faults, "faults", NULL, suite_cleanup,
                   { "lying lead never answers", test_liar_silent },
                   { "lying lead says not held", test_liar_cancels },
                   { "lying lead sends garbage", test_liar_garbage },
                   { "clock jumps", test_clock_jump },
                   { "full disk on a device", test_disk_full });
