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

/* How many devices @s lists as online. */
static guint
devices_online (CanopyTestSite *s)
{
  g_autoptr (JsonNode) answer = canopy_test_site_api (s, "GET", "/api/v1/devices", NULL,
                                                      SOUP_STATUS_OK);
  JsonArray *devices;
  guint online = 0;

  if (answer == NULL)
    return 0;
  devices = json_object_get_array_member (json_node_get_object (answer), "devices");
  for (guint i = 0; i < json_array_get_length (devices); i++)
    if (json_object_get_boolean_member (json_array_get_object_element (devices, i), "online"))
      online++;
  return online;
}

static gboolean
wait_online (CanopyTestSite *s, guint expected, guint timeout_s)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      if (devices_online (s) == expected)
        return TRUE;
      canopy_test_site_pump (250);
    }
  return FALSE;
}

static void
copy_key (const CanopyTestSite *from, const CanopyTestSite *to, const char *name)
{
  g_autofree char *source = g_build_filename (from->state, name, NULL);
  g_autofree char *target = g_build_filename (to->state, name, NULL);
  g_autofree char *text = NULL;
  gsize length;

  g_assert (g_file_get_contents (source, &text, &length, NULL));
  g_assert (g_file_set_contents_full (target, text, (gssize) length, G_FILE_SET_CONTENTS_NONE,
                                      0600, NULL));
}

/* The second server takes the first's shared key and signing key, as the
 * servers of a cluster share them, and restarts with them. */
static void
share_keys (CanopyTestSite *from, CanopyTestSite *to)
{
  canopy_test_process_signal (to->server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (to->server, 20), 0);
  g_clear_pointer (&to->server, canopy_test_process_free);
  copy_key (from, to, "shared-key");
  copy_key (from, to, "signing-key.pem");
  canopy_test_site_server_start (to);
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
  share_keys (&first, &second);
  /* The same generator and size: both origins serve the same bytes. */
  CU_ASSERT_FATAL (canopy_test_site_same_file (first.package, second.package));
  others = g_strdup_printf ("<server host='127.0.0.1' port='%u'/>", second.agent_port);
  first.options.agent_servers = others;
  canopy_test_site_start_agents (&first);
  CU_ASSERT_FATAL (wait_online (&first, DEVICES, 60));
  CU_ASSERT_EQUAL (devices_online (&second), 0);

  canopy_test_site_kill_hard (&first.server);
  CU_ASSERT_FATAL (wait_online (&second, DEVICES, 60));
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
  share_keys (&first, &second);
  others = g_strdup_printf ("<server host='127.0.0.1' port='%u'/>", second.agent_port);
  first.options.agent_servers = others;
  canopy_test_site_start_agents (&first);
  CU_ASSERT_FATAL (wait_online (&first, DEVICES, 60));

  canopy_test_site_kill_hard (&second.server);
  canopy_test_site_kill_hard (&first.server);
  for (guint i = 0; i < DEVICES; i++)
    CU_ASSERT (canopy_test_process_wait_output (first.agents[i], "Cannot reach the canopy "
                                                "server at 127.0.0.1 port", 30));
  canopy_test_site_server_start (&first);
  CU_ASSERT (wait_online (&first, DEVICES, 90));
  canopy_test_site_stop (&first, TRUE);
  canopy_test_site_stop (&second, FALSE);
}

CANOPY_TEST_SUITE (failover, "failover", NULL, suite_cleanup,
                   { "agents move to the next server", test_agents_move_to_the_next_server },
                   { "every server down, then back", test_every_server_down_then_back })
