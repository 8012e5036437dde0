/* Distribution along every path an admin takes (issue 15), with real
 * processes: a child office takes the content from its parent office, not
 * the origin; an office stuck on a broken origin recovers once it is
 * fixed; a device in no office still gets the software from the origin. */
#include "build-config.h"

#include "tests/integration/site.h"

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

CANOPY_TEST_SUITE (offices, "offices", NULL, suite_cleanup,
                   { "child office waits for its parent", test_child_waits_for_parent },
                   { "broken origin recovers", test_broken_origin_recovers });
