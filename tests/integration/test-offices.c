/* Distribution along every path an admin takes (issue 15), with real
 * processes: a child office takes the content from its parent office, not
 * the origin; an office stuck on a broken origin recovers once it is
 * fixed; a device in no office still gets the software from the origin. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <signal.h>
#include <string.h>

typedef CanopyTestSite Site;

/* Static so that a test stopped by a fatal assertion still has its
 * processes stopped, by the next test or the suite's cleanup. */
static Site site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* North's devices 0 and 1 are wired; 2 and 3, at NET.1.12 and NET.1.13,
 * are the WiFi office beneath it. North's WAN link is slow, so a WiFi lead
 * that went to the origin would outrun it and take most from there. */
static const char child_topology[] =
  "office,parent,type,subnets,wan_rate\n"
  "North,,Default,NET.1.0-NET.1.11,40M\n"
  "North WiFi,North,WiFi,NET.1.12-NET.1.255,\n";

/* The WiFi office takes the content from North's devices as North's lead
 * brings it in: each link carries it once, and nothing of it comes to the
 * WiFi office from the origin while North is online. */
static void
test_child_waits_for_parent (void)
{
  CanopyTestSiteOptions options = { .content_size = 16 * 1024 * 1024 + 12345,
                                    .topology = child_topology };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *d, *north, *wifi;
  gboolean check = !canopy_test_instrumented ();

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  for (guint i = 0; i < CANOPY_TEST_SITE_AGENTS_PER_OFFICE; i++)
    site.agents[canopy_test_site_slot (1, i)] = canopy_test_site_agent_start (&site, 1, i);
  content_id = canopy_test_site_deploy (&site);
  done = canopy_test_site_wait_done (&site, CANOPY_TEST_SITE_AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  d = canopy_test_site_deployment (&site, &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (d);
  north = canopy_test_site_office_of (d, "North");
  wifi = canopy_test_site_office_of (d, "North WiFi");
  CU_ASSERT_PTR_NOT_NULL_FATAL (north);
  CU_ASSERT_PTR_NOT_NULL_FATAL (wifi);
  printf ("[North: WAN %.3f × content; North WiFi: WAN %.3f, %" G_GINT64_FORMAT
          " bytes from the origin, %" G_GINT64_FORMAT " from North] ",
          json_object_get_double_member (north, "wan_ratio"),
          json_object_get_double_member (wifi, "wan_ratio"),
          json_object_get_int_member (wifi, "bytes_origin"),
          json_object_get_int_member (wifi, "bytes_parent_peer"));
  CU_ASSERT_EQUAL (json_object_get_int_member (wifi, "bytes_origin"), 0);
  CU_ASSERT_EQUAL (json_object_get_int_member (wifi, "bytes_server"), 0);
  CU_ASSERT (json_object_get_double_member (wifi, "wan_ratio") > 0.0);
  CU_ASSERT (!check || json_object_get_double_member (wifi, "wan_ratio") <= 1.05);
  CU_ASSERT (!check || json_object_get_double_member (north, "wan_ratio") <= 1.05);
  /* The server's read to build the manifest, and North's once. */
  CU_ASSERT (!check || canopy_test_site_stop_origin (&site) <= 2.05 * site.content_size);
  canopy_test_site_assert_copy (&site);
  canopy_test_site_stop (&site, TRUE);
}

/* North's only device meets an origin that refuses every connection and
 * gives up; once the origin is back on the same port, the server gives it
 * another chance on its own, and the office completes with nothing but the
 * origin restarted. */
static void
test_broken_origin_recovers (void)
{
  CanopyTestSiteOptions options = { .content_size = 2 * 1024 * 1024 + 12345 };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  CanopyTestProcess *agent;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  content_id = canopy_test_site_register (&site);
  canopy_test_site_stop_origin (&site);
  agent = site.agents[canopy_test_site_slot (1, 0)] = canopy_test_site_agent_start (&site, 1, 0);
  canopy_test_site_deploy_content (&site, content_id);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (agent, "Giving up the origin", 60));
  CU_ASSERT_FATAL (canopy_test_process_wait_output (site.server, "cannot complete deployment",
                                                    20));
  canopy_test_site_restart_origin (&site);
  done = canopy_test_site_wait_done (&site, 1, 90);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  canopy_test_site_stop (&site, TRUE);
}

static guint
count_in (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* The same office, given up on three times while the origin stays broken,
 * would wait 20 s for its next chance: Publish content, once the origin is
 * fixed, gives it a lead at once. */
static void
test_publish_replans (void)
{
  CanopyTestSiteOptions options = { .content_size = 2 * 1024 * 1024 + 12345 };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) published = NULL;
  CanopyTestProcess *agent;
  gint64 deadline;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  content_id = canopy_test_site_register (&site);
  canopy_test_site_stop_origin (&site);
  agent = site.agents[canopy_test_site_slot (1, 0)] = canopy_test_site_agent_start (&site, 1, 0);
  canopy_test_site_deploy_content (&site, content_id);
  /* Given up on, then retried after 5 s and 10 s, and given up on again. */
  deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (90) * G_USEC_PER_SEC;
  while (count_in (canopy_test_process_output (agent), "Giving up the origin") < 3
         && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (500);
  CU_ASSERT_FATAL (count_in (canopy_test_process_output (agent), "Giving up the origin") >= 3);
  canopy_test_site_restart_origin (&site);
  published = canopy_test_site_api (&site, "POST", "/api/v1/publish", NULL, SOUP_STATUS_OK);
  /* Well before the next chance the backoff gives it, 20 s on. */
  done = canopy_test_site_wait_done (&site, 1, 8);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  canopy_test_site_stop (&site, TRUE);
}

/* North is NET.1.0 to NET.1.11: North's device 2, at NET.1.12, is in no
 * office. */
static const char north_only_topology[] =
  "office,parent,type,subnets,wan_rate\n"
  "North,,Default,NET.1.0-NET.1.11,\n";

static JsonObject *
no_office_check (JsonNode **holder)
{
  JsonObject *check = canopy_test_site_health_check (&site, "no-office-clients", holder);

  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  return check;
}

/* A device in no office gets no peer-to-peer download but the software
 * from the origin, and the health check names it; with no_office_clients
 * "refuse" it is told why and stays dormant. */
static void
test_no_office_client (void)
{
  CanopyTestSiteOptions options = { .content_size = 2 * 1024 * 1024 + 12345,
                                    .topology = north_only_topology };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) holder = NULL;
  g_autoptr (JsonNode) health = NULL;
  g_autoptr (JsonNode) health_refused = NULL;
  g_autoptr (JsonNode) settings = NULL;
  JsonObject *d, *outside, *check;
  CanopyTestProcess *roaming;
  guint slot = canopy_test_site_slot (1, 2);

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  site.agents[canopy_test_site_slot (1, 0)] = canopy_test_site_agent_start (&site, 1, 0);
  roaming = site.agents[slot] = canopy_test_site_agent_start (&site, 1, 2);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (roaming, "as a no-office client", 20));
  content_id = canopy_test_site_deploy (&site);
  done = canopy_test_site_wait_done (&site, 2, 90);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  /* Everything it took came from the origin: no peer, in no office. */
  d = canopy_test_site_deployment (&site, &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (d);
  outside = canopy_test_site_office_of (d, "");
  CU_ASSERT_PTR_NOT_NULL_FATAL (outside);
  CU_ASSERT_EQUAL (json_object_get_int_member (outside, "bytes_origin"), site.content_size);
  CU_ASSERT_EQUAL (json_object_get_int_member (outside, "bytes_office_peer"), 0);
  check = no_office_check (&health);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "warning");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"),
                          site.device_ids[slot]);
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"),
                          "1 device is a no-office client");

  /* Refused from now on: its session is closed, and its hello refused. */
  settings = canopy_test_site_api (&site, "PUT", "/api/v1/settings",
                                   "{\"no_office_clients\": \"refuse\"}", SOUP_STATUS_OK);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_node_get_object (settings),
                                                         "no_office_clients"),
                          "refuse");
  CU_ASSERT (canopy_test_process_wait_output (roaming, "refused this device", 30));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (roaming), "refuses no-office clients");
  check = no_office_check (&health_refused);
  /* One device: the singular, not "1 devices were". */
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"),
                          "1 device was refused as a no-office client");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"),
                          site.device_ids[slot]);

  /* The setting is kept across a restart of the server. */
  canopy_test_process_signal (site.server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (site.server, 20), 0);
  g_clear_pointer (&site.server, canopy_test_process_free);
  canopy_test_site_server_start (&site);
  g_clear_pointer (&settings, json_node_unref);
  settings = canopy_test_site_api (&site, "GET", "/api/v1/settings", NULL, SOUP_STATUS_OK);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_node_get_object (settings),
                                                         "no_office_clients"),
                          "refuse");
  canopy_test_site_stop (&site, TRUE);
}

/* North asks for the background WAN class in the topology. */
static const char background_topology[] =
  "office,parent,type,subnets,wan_rate,transfer_class\n"
  "North,,Default,NET.1.0/24,16M,background\n";

static gboolean
lead_reported_pacing (JsonObject *north)
{
  JsonNode *rate = json_object_get_member (north, "background_rate");

  return rate != NULL && JSON_NODE_TYPE (rate) == JSON_NODE_VALUE
         && json_node_get_int (rate) > 0;
}

/* A background office's lead, in real processes: the server tells it its
 * class, it reports what its controller allows and measures, the console
 * API and /metrics show it while it leads, and the package arrives whole. */
static void
test_background_office (void)
{
  CanopyTestSiteOptions options = { .content_size = 32 * 1024 * 1024 + 12345,
                                    .topology = background_topology };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  gboolean api_seen = FALSE, metrics_seen = FALSE;
  gint64 deadline;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  site.agents[canopy_test_site_slot (1, 0)] = canopy_test_site_agent_start (&site, 1, 0);
  content_id = canopy_test_site_deploy (&site);
  deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (120) * G_USEC_PER_SEC;
  while ((!api_seen || !metrics_seen) && g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = canopy_test_site_deployment (&site, &holder);
      JsonObject *north = d != NULL ? canopy_test_site_office_of (d, "North") : NULL;
      g_autofree char *metrics = canopy_test_site_get_text (&site, "/metrics");

      if (north != NULL)
        {
          CU_ASSERT_STRING_EQUAL (json_object_get_string_member (north, "transfer_class"),
                                  "background");
          if (json_object_get_int_member (north, "done") > 0)
            break;
          api_seen = api_seen || lead_reported_pacing (north);
        }
      metrics_seen = metrics_seen
                     || strstr (metrics, "canopy_background_rate_bits_per_second{") != NULL;
      g_usleep (200 * 1000);
    }
  CU_ASSERT (api_seen);
  CU_ASSERT (metrics_seen);
  done = canopy_test_site_wait_done (&site, 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (offices, "offices", NULL, suite_cleanup,
                   { "child office waits for its parent", test_child_waits_for_parent },
                   { "broken origin recovers", test_broken_origin_recovers },
                   { "publish gives a stuck office its lead", test_publish_replans },
                   { "no-office client", test_no_office_client },
                   { "background office, its lead paces and reports",
                     test_background_office });
