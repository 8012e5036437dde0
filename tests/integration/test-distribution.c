/* Content distribution end to end, with real processes on loopback: one
 * canopyd (SQLite, TCP, console API), an HTTP origin, and two offices of
 * four agents each on their own 127.0.N.0/24 addresses. The content is
 * registered and deployed through the console API; every copy must match
 * the original, and what reached each office from outside it must stay
 * within 1.05 × the content size. */
#include "build-config.h"

#include "tests/integration/site.h"
#include "lib/manifest.h"

#include <signal.h>
#include <string.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS_PER_OFFICE CANOPY_TEST_SITE_AGENTS_PER_OFFICE
#define CONTENT_SIZE (site.content_size)
#define N_AGENTS CANOPY_TEST_SITE_N_AGENTS

typedef CanopyTestSite Site;

/* The site of the running test. It is static so that a test that stops
 * at a failed fatal assertion still has its processes stopped: by the
 * next test, or by the suite's cleanup. */
static Site site;

/* Waits until North's lead has fetched @fraction of the content from the
 * origin; returns the lead's device ID. */
static char *
wait_north_progress (Site *s, double fraction)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (120) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = canopy_test_site_deployment (s, &holder);
      JsonObject *north = d != NULL ? canopy_test_site_office_of (d, "North") : NULL;

      if (north != NULL
          && json_object_get_int_member (north, "bytes_origin") >= fraction * CONTENT_SIZE
          && json_object_get_string_member (north, "lead")[0] != '\0')
        return g_strdup (json_object_get_string_member (north, "lead"));
      canopy_test_site_pump (200);
    }
  return NULL;
}

/* What a killed lead's kernel may have taken in from the origin (the
 * origin counts what was acknowledged) and the lead never read: its
 * receive window, four round trips at the office's rate (256 KiB at
 * least on loopback's round trip), which the kernel doubles for its own
 * bookkeeping, with room for a round trip lengthened by a busy machine. */
#define KILLED_LEAD_UNREAD (2 * 1024 * 1024)

/* Each office takes the content across its WAN link at most 1.05 times:
 * by what the devices report per office, and by what the origin served in
 * all. The server reads the content once to build its manifest, and every
 * office needs it once, so all of the excess over those copies must stay
 * within 0.05 of one copy, and what @lost_connections leads killed while
 * they read from the origin had received and not read. */
static void
assert_wan_once (Site *s, JsonNode *done, guint lost_connections)
{
  guint64 served = canopy_test_site_stop_origin (s);
  guint64 allowance = (guint64) (0.05 * CONTENT_SIZE) + lost_connections * (guint64) KILLED_LEAD_UNREAD;
  JsonArray *offices = json_object_get_array_member (json_node_get_object (done), "offices");
  /* Slowed down many times, a lead can take longer than the stall
   * allowance to verify a chunk, and is rightly replaced. */
  gboolean check = !canopy_test_instrumented ();

  printf ("[origin served %.3f × content: the server's read and %u offices%s] ",
          (double) served / CONTENT_SIZE, OFFICES,
          check ? "" : "; not checked in an instrumented build");
  CU_ASSERT (!check || served <= (1 + OFFICES) * (guint64) CONTENT_SIZE + allowance);

  CU_ASSERT_EQUAL (json_array_get_length (offices), OFFICES);
  for (guint i = 0; i < json_array_get_length (offices); i++)
    {
      JsonObject *office = json_array_get_object_element (offices, i);
      double ratio = json_object_get_double_member (office, "wan_ratio");

      printf ("[%s: WAN %.3f × content] ", json_object_get_string_member (office, "office"),
              ratio);
      CU_ASSERT (ratio > 0.0 && (!check || ratio <= 1.05));
    }
}

static Site *
site_begin (const char *wan_rate)
{
  CanopyTestSiteOptions options = { .wan_rate = wan_rate };

  canopy_test_site_begin (&site, &options);
  canopy_test_site_start_agents (&site);
  return &site;
}

static void
site_end (void)
{
  canopy_test_site_stop (&site, TRUE);
}

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

static void
test_two_offices (void)
{
  Site *s = NULL;
  const char *wan_rate = "";
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!canopy_test_site_available ())
    return;
  s = site_begin (wan_rate);
  content_id = canopy_test_site_deploy (s);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done, 0);
  canopy_test_site_assert_copy (s);
  site_end ();
}

/* The lead of North is killed half way; the next preferred device takes
 * over from what the office holds, and the office still takes the
 * content across its WAN link about once. */
static void
test_lead_killed (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint index;

  if (!canopy_test_site_available ())
    return;
  s = site_begin (wan_rate);
  content_id = canopy_test_site_deploy (s);
  lead = wait_north_progress (s, 0.4);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  index = canopy_test_site_agent_index (s, lead);
  canopy_test_site_kill_hard (&s->agents[index]);
  /* Killed half way, it installed nothing: there is no copy of its to compare. */
  s->installs[index] = FALSE;
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE - 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done, 1);
  canopy_test_site_assert_copy (s);
  site_end ();
}

/* An agent killed half way resumes from its verified chunks. */
static void
test_agent_restart_resumes (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint victim;

  if (!canopy_test_site_available ())
    return;
  s = site_begin (wan_rate);
  content_id = canopy_test_site_deploy (s);
  lead = wait_north_progress (s, 0.5);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  /* A North device that is not the lead. */
  victim = canopy_test_site_agent_index (s, lead) == 0 ? 1 : 0;
  canopy_test_site_kill_hard (&s->agents[victim]);
  s->agents[victim] = canopy_test_site_agent_start (s, 1, victim);
  CU_ASSERT (canopy_test_process_wait_output (s->agents[victim], "chunks already verified", 60));
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done, 0);
  site_end ();
}

/* canopyd stops half way and comes back: deployments and progress are
 * read back from its database, agents reconnect and finish. */
static void
test_server_restart (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) health = NULL;
  JsonObject *last_stop;

  if (!canopy_test_site_available ())
    return;
  s = site_begin (wan_rate);
  content_id = canopy_test_site_deploy (s);
  lead = wait_north_progress (s, 0.3);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  canopy_test_site_kill_hard (&s->server);
  canopy_test_site_server_start (s);
  /* The admin hears of the crash, in the log and in the health check. */
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), "did not stop cleanly");
  last_stop = canopy_test_site_health_check (s, "last-stop", &health);
  CU_ASSERT_PTR_NOT_NULL_FATAL (last_stop);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (last_stop, "status"), "warning");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (last_stop, "message"),
                          "stopped without shutting down");
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  site_end ();
}

/* A device whose cached chunks were damaged after it verified them serves
 * bad data: a newcomer detects every bad chunk, drops that peer, still
 * completes, and the server names the device that served them. */
static void
test_corrupted_peer (void)
{
  Site *s = NULL;
  const char *wan_rate = "";
  g_autofree char *content_id = NULL;
  g_autofree char *data = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) again = NULL;

  if (!canopy_test_site_available ())
    return;
  s = site_begin (wan_rate);
  content_id = canopy_test_site_deploy (s);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);

  /* Every North device but agent-1-0 leaves; agent-1-0's disk goes bad. */
  for (guint i = 1; i < AGENTS_PER_OFFICE; i++)
    {
      canopy_test_process_signal (s->agents[i], SIGTERM);
      canopy_test_process_wait_exit (s->agents[i], 20);
      g_clear_pointer (&s->agents[i], canopy_test_process_free);
    }
  data = g_build_filename (s->dir, "agent-1-0", "cache", content_id, "data", NULL);
  /* A byte every 64 KiB, the least a chunk holds: every chunk is damaged,
   * whatever the content-defined cuts, so whatever the newcomer takes from
   * agent-1-0 fails verification. */
  canopy_test_damage_file (data, 100, 64 * 1024);
  /* A newcomer in North, and a healthy North peer back online. */
  s->agents[N_AGENTS - 1] = canopy_test_site_agent_start (s, 1, AGENTS_PER_OFFICE);
  s->agents[1] = canopy_test_site_agent_start (s, 1, 1);
  again = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE + 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  /* The report may reach the server's log just after the last device
   * finished. */
  CU_ASSERT (canopy_test_process_wait_output (s->server, "failed verification", 10));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), s->device_ids[0]);
  site_end ();
}

/* The same content deployed again, to a group that adds one North
 * device: the copies North verified for the first deployment are its
 * sources, though their devices are not targets of the second; devices
 * that hold it install without fetching; nothing crosses North's WAN link
 * again. */
static void
test_same_content_again (void)
{
  CanopyTestSiteOptions options = { .content_size = 8 * 1024 * 1024 + 777,
                                    .extra_group = "Annex" };
  const char *const annex[] = { "Annex", NULL };
  const char *const both[] = { "Branch", "Annex", NULL };
  Site *s = &site;
  g_autofree char *content_id = NULL;
  g_autofree char *again_id = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) again = NULL;
  JsonObject *north;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  content_id = canopy_test_site_deploy (s);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);

  s->agents[N_AGENTS - 1] = canopy_test_site_agent_start (s, 1, AGENTS_PER_OFFICE);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (s->agents[N_AGENTS - 1],
                                                    "Enrolled with canopy server", 20));
  /* To the newcomer alone, then to every device with it: Branch and Annex. */
  again_id = canopy_test_site_create_deployment (s, content_id, annex);
  again = canopy_test_site_wait_deployment_done (s, again_id, 1, 60);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  north = canopy_test_site_office_of (json_node_get_object (again), "North");
  CU_ASSERT_PTR_NOT_NULL_FATAL (north);
  printf ("[North, newcomer alone: WAN %" G_GINT64_FORMAT " bytes] ",
          json_object_get_int_member (north, "wan_bytes"));
  CU_ASSERT_EQUAL (json_object_get_int_member (north, "wan_bytes"), 0);
  CU_ASSERT (json_object_get_int_member (north, "bytes_office_peer") >= (gint64) CONTENT_SIZE);
  g_clear_pointer (&again_id, g_free);
  g_clear_pointer (&again, json_node_unref);
  again_id = canopy_test_site_create_deployment (s, content_id, both);
  again = canopy_test_site_wait_deployment_done (s, again_id, OFFICES * AGENTS_PER_OFFICE + 1,
                                                 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  north = canopy_test_site_office_of (json_node_get_object (again), "North");
  CU_ASSERT_PTR_NOT_NULL_FATAL (north);
  printf ("[North, all again: WAN %" G_GINT64_FORMAT " bytes, office peers %" G_GINT64_FORMAT
          "] ",
          json_object_get_int_member (north, "wan_bytes"),
          json_object_get_int_member (north, "bytes_office_peer"));
  CU_ASSERT_EQUAL (json_object_get_int_member (north, "wan_bytes"), 0);
  CU_ASSERT_EQUAL (json_object_get_int_member (north, "bytes_origin"), 0);
  CU_ASSERT_EQUAL (json_object_get_int_member (north, "bytes_server"), 0);
  /* Every North device held it: none fetched anything. */
  CU_ASSERT_EQUAL (json_object_get_int_member (north, "bytes_office_peer"), 0);
  canopy_test_site_assert_copy (s);
  site_end ();
}

/* Deployment @id as the API lists it, held by @holder; NULL if absent. */
static JsonObject *
deployment_by_id (Site *s, const char *id, JsonNode **holder)
{
  JsonArray *all;

  *holder = canopy_test_site_api (s, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
  all = json_node_get_array (*holder);
  for (guint i = 0; i < json_array_get_length (all); i++)
    if (g_str_equal (json_object_get_string_member (json_array_get_object_element (all, i), "id"),
                     id))
      return json_array_get_object_element (all, i);
  return NULL;
}

/* Waits until deployment @id's offices took @fraction of the content
 * across their WAN links, in all. */
static gboolean
wait_wan_progress (Site *s, const char *id, double fraction)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (60) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = deployment_by_id (s, id, &holder);
      JsonArray *offices = d != NULL ? json_object_get_array_member (d, "offices") : NULL;
      gint64 wan = 0;

      for (guint i = 0; offices != NULL && i < json_array_get_length (offices); i++)
        wan += json_object_get_int_member (json_array_get_object_element (offices, i),
                                           "wan_bytes");
      if (wan >= fraction * CONTENT_SIZE)
        return TRUE;
      canopy_test_site_pump (200);
    }
  return FALSE;
}

/* Whether no device still has deployment @id pending, each having said
 * what it did; prints the outcomes. */
static gboolean
wait_all_withdrawn (Site *s, const char *id)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (10) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = deployment_by_id (s, id, &holder);
      JsonArray *withdrawn = d != NULL && json_object_has_member (d, "withdrawn")
                               ? json_object_get_array_member (d, "withdrawn") : NULL;
      guint stopped = 0, pending = 0;

      for (guint i = 0; withdrawn != NULL && i < json_array_get_length (withdrawn); i++)
        {
          const char *what = json_object_get_string_member (
            json_array_get_object_element (withdrawn, i), "outcome");
          stopped += g_str_equal (what, "stopped") || g_str_equal (what, "nothing");
          pending += !g_str_equal (what, "stopped") && !g_str_equal (what, "nothing");
        }
      if (withdrawn != NULL && pending == 0 && stopped == OFFICES * AGENTS_PER_OFFICE)
        {
          CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "state"), "cancelled");
          return TRUE;
        }
      canopy_test_site_pump (200);
    }
  return FALSE;
}

/* Whether any agent put a copy at the destination. */
static guint
copies_installed (Site *s)
{
  guint found = 0;

  for (guint slot = 0; slot < N_AGENTS; slot++)
    {
      g_autofree char *path = canopy_test_site_copy_path (s, slot);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        {
          fprintf (stderr, "\n    slot %u installed %s; it said:\n%s\n", slot, path,
                   s->agents[slot] != NULL ? canopy_test_process_output (s->agents[slot]) : "");
          found++;
        }
    }
  return found;
}

/* A deployment cancelled half way stops on every device within a
 * heartbeat, its status says what each did, and one removed half way
 * stops the same: no agent writes the destination afterwards, though
 * their fetches would long have finished. */
static void
test_cancel_and_remove_stop_agents (void)
{
  CanopyTestSiteOptions options = { .wan_rate = "16M", .content_size = 16 * 1024 * 1024 + 777 };
  Site *s = &site;
  g_autofree char *content_id = NULL;
  g_autofree char *cancelled = NULL, *removed = NULL;
  g_autofree char *cancel_path = NULL, *remove_path = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autoptr (JsonNode) holder = NULL;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  content_id = canopy_test_site_register (s);

  cancelled = canopy_test_site_create_deployment (s, content_id, NULL);
  CU_ASSERT_FATAL (wait_wan_progress (s, cancelled, 0.1));
  cancel_path = g_strdup_printf ("/api/v1/deployments/cancel?id=%s", cancelled);
  answer = canopy_test_site_api (s, "POST", cancel_path, NULL, SOUP_STATUS_OK);
  CU_ASSERT (wait_all_withdrawn (s, cancelled));
  CU_ASSERT_PTR_NOT_NULL (deployment_by_id (s, cancelled, &holder));

  removed = canopy_test_site_create_deployment (s, content_id, NULL);
  /* It resumes from the chunks the first left in the caches. */
  CU_ASSERT_FATAL (wait_wan_progress (s, removed, 0.05));
  remove_path = g_strdup_printf ("/api/v1/deployments?id=%s", removed);
  g_clear_pointer (&answer, json_node_unref);
  {
    g_autofree char *text = NULL;
    /* 204: no body to read as JSON. */
    text = canopy_test_site_request (s, "DELETE", remove_path, SOUP_STATUS_NO_CONTENT);
  }
  for (guint i = 0; i < OFFICES * AGENTS_PER_OFFICE; i++)
    CU_ASSERT (canopy_test_process_wait_output (s->agents[i], "stopped fetching it", 10));
  /* Long past the time the whole content takes at 16 Mbit/s. */
  canopy_test_site_pump (12000);
  CU_ASSERT_EQUAL (copies_installed (s), 0);
  site_end ();
}

CANOPY_TEST_SUITE (distribution, "distribution", NULL, suite_cleanup,
                   { "cancel and remove stop every agent", test_cancel_and_remove_stop_agents },
                   { "same content again crosses no WAN", test_same_content_again },
                   { "two offices, WAN once each", test_two_offices },
                   { "lead killed half way", test_lead_killed },
                   { "agent restarted resumes", test_agent_restart_resumes },
                   { "server restarted", test_server_restart },
                   { "corrupted peer dropped", test_corrupted_peer });
