/* Agents configured with several servers move to the next one when theirs
 * fails: two canopyd with the same keys on loopback, the first killed
 * with -9 while every agent is enrolled with it. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <signal.h>

#define DEVICES (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE)
#define CONTENT_SIZE (8 * 1024 * 1024 + 4321)

/* Static, so that a failed fatal assertion still has the suite's cleanup
 * stop every process. */
static CanopyTestSite first;
static CanopyTestSite second;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&first, FALSE);
  canopy_test_site_stop (&second, FALSE);
  return 0;
}

static void
test_agents_move_to_the_next_server (void)
{
  CanopyTestSiteOptions options = { .content_size = CONTENT_SIZE };
  g_autofree char *others = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *body = NULL;
  g_autoptr (JsonNode) created = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&second, &options);
  canopy_test_site_begin (&first, &options);
  canopy_test_site_share_keys (&first, &second);
  /* The same generator and size: both origins serve the same bytes. */
  CU_ASSERT_FATAL (canopy_test_site_same_file (first.package, second.package));
  others = g_strdup_printf ("<server host='127.0.0.1' port='%u'/>", second.agent_port);
  first.options.agent_servers = others;
  canopy_test_site_start_agents (&first);
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&first, DEVICES, 60));
  CU_ASSERT_EQUAL (canopy_test_site_devices_online (&second), 0);

  canopy_test_site_kill_hard (&first.server);
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&second, DEVICES, 60));
  for (guint i = 0; i < DEVICES; i++)
    CU_ASSERT (canopy_test_process_wait_output (first.agents[i], "Trying the next canopy server",
                                                5));

  /* The surviving server deploys to them, into the first site's
   * directories that the agents allow. */
  content_id = canopy_test_site_register (&second);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Branch\"], "
                          "\"destination\": \"%s/copies/package.bin\"}",
                          content_id, first.dir);
  created = canopy_test_site_api (&second, "POST", "/api/v1/deployments", body,
                                  SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (created);
  done = canopy_test_site_wait_done (&second, DEVICES, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&first);
  canopy_test_site_stop (&first, TRUE);
  canopy_test_site_stop (&second, TRUE);
}

/* With every server down the agents wait with growing pauses, and come
 * back to the first server when it returns. */
static void
test_every_server_down_then_back (void)
{
  CanopyTestSiteOptions options = { .content_size = CONTENT_SIZE };
  g_autofree char *others = NULL;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&second, &options);
  canopy_test_site_begin (&first, &options);
  canopy_test_site_share_keys (&first, &second);
  others = g_strdup_printf ("<server host='127.0.0.1' port='%u'/>", second.agent_port);
  first.options.agent_servers = others;
  canopy_test_site_start_agents (&first);
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&first, DEVICES, 60));

  canopy_test_site_kill_hard (&second.server);
  canopy_test_site_kill_hard (&first.server);
  for (guint i = 0; i < DEVICES; i++)
    CU_ASSERT (canopy_test_process_wait_output (first.agents[i], "Cannot reach the canopy "
                                                "server at 127.0.0.1 port", 30));
  canopy_test_site_server_start (&first);
  CU_ASSERT (canopy_test_site_wait_online (&first, DEVICES, 90));
  canopy_test_site_stop (&first, TRUE);
  canopy_test_site_stop (&second, FALSE);
}

CANOPY_TEST_SUITE (failover, "failover", NULL, suite_cleanup,
                   { "agents move to the next server", test_agents_move_to_the_next_server },
                   { "every server down, then back", test_every_server_down_then_back })
