/* The WAN link of one office is cut in the middle of a deployment, and
 * offices are made from the agents' subnets, with network namespaces the
 * test builds (as root): canopyd and the origin in
 * a central namespace, each office's agents in their own, joined to the
 * central one by a veth pair. Addresses come from 198.18.0.0/15 only, and
 * no namespace has a route out. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS CANOPY_TEST_SITE_AGENTS_PER_OFFICE
#define CONTENT_SIZE (48 * 1024 * 1024 + 777)

/* The site and the namespaces' name prefix of the running test, static so
 * that a test stopped by a failed fatal assertion still has its processes
 * stopped and its namespaces removed by the suite's cleanup. */
static CanopyTestSite site;
static char *netns_prefix;

/* Runs "ip ARGS..."; prints what it said when it fails. */
static gboolean
ip (const char *format, ...) G_GNUC_PRINTF (1, 2);

static gboolean
ip (const char *format, ...)
{
  va_list args;
  g_autofree char *line = NULL;
  g_autofree char *command = NULL;
  g_auto (GStrv) argv = NULL;
  g_autofree char *err = NULL;
  int status = -1;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  command = g_strconcat ("ip ", line, NULL);
  if (!g_shell_parse_argv (command, NULL, &argv, NULL)
      || !g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                        NULL, NULL, &err, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    {
      fprintf (stderr, "\n    %s failed: %s\n", command, err != NULL ? err : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
netns_usable (void)
{
  g_autofree char *probe = NULL;
  gboolean ok;

  if (getuid () != 0)
    {
      canopy_test_skip ("not root, so no network namespaces; the network-cut test did "
              "not run");
      return FALSE;
    }
  probe = g_strdup_printf ("canopy-probe-%d", (int) getpid ());
  ok = ip ("netns add %s", probe) && ip ("netns delete %s", probe);
  if (!ok)
    canopy_test_skip ("\"ip netns\" does not work here; the network-cut test did not "
            "run");
  return ok;
}

/* Every namespace this test made, with every link in them. */
static void
netns_delete (const char *name)
{
  g_autofree char *path = g_build_filename ("/run/netns", name, NULL);

  if (g_file_test (path, G_FILE_TEST_EXISTS))
    ip ("netns delete %s", name);
}

static void
netns_teardown (void)
{
  if (netns_prefix == NULL)
    return;
  for (guint o = 0; o <= OFFICES; o++)
    {
      g_autofree char *name = o == 0 ? g_strconcat (netns_prefix, "c", NULL)
                                     : g_strdup_printf ("%so%u", netns_prefix, o);
      netns_delete (name);
    }
  for (guint o = 1; o <= OFFICES; o++)
    {
      /* A veth not yet moved into a namespace stays in this one. */
      g_autofree char *veth = g_strdup_printf ("/sys/class/net/%sw%u", netns_prefix, o);
      if (g_file_test (veth, G_FILE_TEST_EXISTS))
        ip ("link delete %sw%u", netns_prefix, o);
    }
  g_clear_pointer (&netns_prefix, g_free);
}

static gboolean
build_office (const char *p, guint o)
{
  gboolean ok = ip ("netns add %so%u", p, o) && ip ("-n %so%u link set lo up", p, o)
                && ip ("link add %sw%u type veth peer name %sx%u", p, o, p, o)
                && ip ("link set %sw%u netns %sc name wan%u", p, o, p, o)
                && ip ("link set %sx%u netns %so%u name wan", p, o, p, o)
                && ip ("-n %sc addr add 198.19.%u.1/30 dev wan%u", p, o, o)
                && ip ("-n %sc link set wan%u up", p, o)
                && ip ("-n %so%u addr add 198.19.%u.2/30 dev wan", p, o, o)
                && ip ("-n %so%u link set wan up", p, o)
                && ip ("-n %so%u link add lan type bridge", p, o)
                && ip ("-n %so%u link set lan up", p, o)
                && ip ("-n %sc route add 198.18.%u.0/24 via 198.19.%u.2", p, o, o)
                && ip ("-n %so%u route add 198.18.0.0/24 via 198.19.%u.1", p, o, o);

  /* The office's devices share its namespace, each on its own address. */
  for (guint i = 0; ok && i <= AGENTS; i++)
    ok = ip ("-n %so%u addr add 198.18.%u.%u/24 dev lan", p, o, o, 10 + i);
  return ok;
}

static gboolean
netns_build (void)
{
  const char *p;

  netns_prefix = g_strdup_printf ("cnc%d", (int) (getpid () % 100000));
  p = netns_prefix;
  if (!(ip ("netns add %sc", p) && ip ("-n %sc link set lo up", p)
        && ip ("-n %sc link add ctr type bridge", p)
        && ip ("-n %sc addr add 198.18.0.1/24 dev ctr", p) && ip ("-n %sc link set ctr up", p)))
    return FALSE;
  for (guint o = 1; o <= OFFICES; o++)
    if (!build_office (p, o))
      return FALSE;
  return TRUE;
}

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  netns_teardown ();
  return 0;
}

/* Whether every North device is named in a "lost-devices" warning. */
static gboolean
north_shown_lost (CanopyTestSite *s)
{
  g_autoptr (JsonNode) health = NULL;
  JsonObject *check = canopy_test_site_health_check (s, "lost-devices", &health);
  const char *message;

  if (check == NULL || !g_str_equal (json_object_get_string_member (check, "status"), "warning"))
    return FALSE;
  message = json_object_get_string_member (check, "message");
  for (guint i = 0; i < AGENTS; i++)
    if (strstr (message, s->device_ids[canopy_test_site_slot (1, i)]) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
wait_north_lost (CanopyTestSite *s, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      if (north_shown_lost (s))
        return TRUE;
      canopy_test_site_pump (500);
    }
  return FALSE;
}

static gint64
north_wan_bytes (CanopyTestSite *s)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *d = canopy_test_site_deployment (s, &holder);
  JsonObject *north = d != NULL ? canopy_test_site_office_of (d, "North") : NULL;

  return north != NULL ? json_object_get_int_member (north, "bytes_origin") : 0;
}

static gboolean
wait_north_started (CanopyTestSite *s)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (60) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      if (north_wan_bytes (s) >= (gint64) s->content_size / 5)
        return TRUE;
      canopy_test_site_pump (200);
    }
  return FALSE;
}

static void
assert_nothing_lost (CanopyTestSite *s)
{
  g_autoptr (JsonNode) devices = canopy_test_site_api (s, "GET", "/api/v1/devices", NULL,
                                                       SOUP_STATUS_OK);
  g_autoptr (JsonNode) list = canopy_test_site_api (s, "GET", "/api/v1/deployments", NULL,
                                                    SOUP_STATUS_OK);
  JsonArray *array = json_object_get_array_member (json_node_get_object (devices), "devices");

  CU_ASSERT_EQUAL (json_array_get_length (array), OFFICES * AGENTS);
  CU_ASSERT_EQUAL (json_array_get_length (json_node_get_array (list)), 1);
}

/* North's WAN link goes down a fifth of the way in: South completes,
 * the health check names North's devices as lost, and once the link is
 * back North's agents reconnect by themselves and complete. */
static void
test_office_cut_off (void)
{
  g_autofree char *central = NULL, *north = NULL, *south = NULL;
  CanopyTestSiteOptions options = { .wan_rate = "40M", .net = "198.18",
                                    .content_size = CONTENT_SIZE };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) south_done = NULL;
  g_autoptr (JsonNode) all_done = NULL;
  g_autoptr (JsonNode) health = NULL;
  JsonObject *check;

  if (!canopy_test_site_available () || !netns_usable ())
    return;
  CU_ASSERT_FATAL (netns_build ());
  central = g_strconcat (netns_prefix, "c", NULL);
  north = g_strconcat (netns_prefix, "o1", NULL);
  south = g_strconcat (netns_prefix, "o2", NULL);
  {
    const char *const in_central[] = { "ip", "netns", "exec", central, NULL };
    const char *const in_north[] = { "ip", "netns", "exec", north, NULL };
    const char *const in_south[] = { "ip", "netns", "exec", south, NULL };

    options.prefix[0] = in_central;
    options.prefix[1] = in_north;
    options.prefix[2] = in_south;
    options.console_netns = central;
    canopy_test_site_begin (&site, &options);
    canopy_test_site_start_agents (&site);
  }
  content_id = canopy_test_site_deploy (&site);
  CU_ASSERT_FATAL (wait_north_started (&site));

  CU_ASSERT_FATAL (ip ("-n %s link set wan1 down", central));
  south_done = canopy_test_site_wait_done (&site, AGENTS, 60);
  CU_ASSERT_PTR_NOT_NULL_FATAL (south_done);
  CU_ASSERT (wait_north_lost (&site, 20));
  CU_ASSERT (json_object_get_int_member (json_node_get_object (south_done), "done") < 2 * AGENTS);

  CU_ASSERT_FATAL (ip ("-n %s link set wan1 up", central));
  /* Taking the link down took its route with it. */
  CU_ASSERT_FATAL (ip ("-n %s route replace 198.18.1.0/24 via 198.19.1.2", central));
  all_done = canopy_test_site_wait_done (&site, OFFICES * AGENTS, 90);
  CU_ASSERT_PTR_NOT_NULL_FATAL (all_done);
  canopy_test_site_assert_copy (&site);
  for (guint i = 0; i < AGENTS; i++)
    CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site.agents[i]), "has not answered");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site.server), "missed");
  check = canopy_test_site_health_check (&site, "lost-devices", &health);
  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "ok");
  assert_nothing_lost (&site);
  canopy_test_site_stop (&site, TRUE);
  netns_teardown ();
}

/* Whether the deployment lists exactly the offices @names, each of which
 * took the content across its WAN link at most 1.05 times. */
static void
assert_offices_wan_once (CanopyTestSite *s, JsonNode *done, const char *const *names)
{
  JsonArray *offices = json_object_get_array_member (json_node_get_object (done), "offices");
  gboolean check = !canopy_test_instrumented ();

  if (json_array_get_length (offices) != g_strv_length ((char **) names))
    {
      g_autofree char *text = json_to_string (done, TRUE);
      fprintf (stderr, "\n    offices are not one per subnet: %s\n", text);
    }
  CU_ASSERT_EQUAL (json_array_get_length (offices), g_strv_length ((char **) names));
  for (guint i = 0; names[i] != NULL; i++)
    {
      JsonObject *office = canopy_test_site_office_of (json_node_get_object (done), names[i]);

      CU_ASSERT_PTR_NOT_NULL_FATAL (office);
      printf ("[%s: WAN %.3f × content] ", names[i],
              json_object_get_double_member (office, "wan_ratio"));
      CU_ASSERT (!check || json_object_get_double_member (office, "wan_ratio") <= 1.05);
    }
  (void) s;
}

/* Distribution optimization off: each subnet the agents report, with its
 * interface's prefix length, becomes one office, its devices share, and
 * the offices are kept across a restart of canopyd even before any
 * device reconnects. */
static void
test_automatic_offices (void)
{
  g_autofree char *central = NULL, *north = NULL, *south = NULL;
  CanopyTestSiteOptions options = { .net = "198.18", .optimization_off = TRUE,
                                    .content_size = 8 * 1024 * 1024 + 777 };
  const char *const names[] = { "198.18.1.0/24", "198.18.2.0/24", NULL };
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  /* The site keeps these for every start, the restart below included. */
  const char *in_central[] = { "ip", "netns", "exec", NULL, NULL };
  const char *in_north[] = { "ip", "netns", "exec", NULL, NULL };
  const char *in_south[] = { "ip", "netns", "exec", NULL, NULL };

  if (!canopy_test_site_available () || !netns_usable ())
    return;
  CU_ASSERT_FATAL (netns_build ());
  central = g_strconcat (netns_prefix, "c", NULL);
  north = g_strconcat (netns_prefix, "o1", NULL);
  south = g_strconcat (netns_prefix, "o2", NULL);
  in_central[3] = central;
  in_north[3] = north;
  in_south[3] = south;
  options.prefix[0] = in_central;
  options.prefix[1] = in_north;
  options.prefix[2] = in_south;
  options.console_netns = central;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_start_agents (&site);
  content_id = canopy_test_site_deploy (&site);
  done = canopy_test_site_wait_done (&site, OFFICES * AGENTS, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_offices_wan_once (&site, done, names);
  canopy_test_site_assert_copy (&site);

  /* No device is connected when canopyd comes back. */
  for (guint i = 0; i < G_N_ELEMENTS (site.agents); i++)
    if (site.agents[i] != NULL)
      {
        canopy_test_process_signal (site.agents[i], SIGTERM);
        CU_ASSERT (canopy_test_process_wait_exit (site.agents[i], 20) == 0);
        g_clear_pointer (&site.agents[i], canopy_test_process_free);
      }
  canopy_test_process_signal (site.server, SIGTERM);
  CU_ASSERT (canopy_test_process_wait_exit (site.server, 20) == 0);
  g_clear_pointer (&site.server, canopy_test_process_free);
  canopy_test_site_server_start (&site);
  {
    g_autofree char *text = canopy_test_site_get_text (&site, "/api/v1/topology");

    for (guint i = 0; names[i] != NULL; i++)
      CANOPY_ASSERT_CONTAINS (text, names[i]);
  }
  canopy_test_site_stop (&site, TRUE);
  netns_teardown ();
}

CANOPY_TEST_SUITE (netcut, "network-cut", NULL, suite_cleanup,
                   { "office cut off and back", test_office_cut_off },
                   { "automatic offices, one per subnet", test_automatic_offices });
