/* Faults a site must survive, with real processes: a device that holds
 * the shared key and lies to its office, a wall clock that jumps. Each
 * asserts what an admin relies on: every honest device completes with a
 * correct copy, and the fault shows in the health check and the log. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <glib/gstdio.h>
#include <string.h>

#define HONEST (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE)
/* Small enough to be quick, large enough that the lead is still at work
 * when the liar is found out. */
#define CONTENT_SIZE (24 * 1024 * 1024 + 4321)

/* The site of the running test, static so that a test stopped by a
 * failed fatal assertion still has its processes stopped. */
static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
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

CANOPY_TEST_SUITE (faults, "faults", NULL, suite_cleanup,
                   { "lying lead never answers", test_liar_silent },
                   { "lying lead says not held", test_liar_cancels },
                   { "lying lead sends garbage", test_liar_garbage });
