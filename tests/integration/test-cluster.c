/* Two canopyd on one PostgreSQL (a server the test starts): content
 * registered on A shows on B, a deployment created on B reaches the
 * devices of both, each office has one lead across both servers (its
 * lease, read from the database), and when A is killed with -9 half way
 * its devices move to B and every one of them completes. */
#include "build-config.h"

#include "tests/integration/site.h"
#include "tests/pg-server.h"

#include <signal.h>
#include <string.h>

#define DEVICES (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE)
#define CONTENT_SIZE (24 * 1024 * 1024 + 4321)

/* Static, so that a failed fatal assertion still has the suite's cleanup
 * stop every process and the database. */
static CanopyTestSite site_a;
static CanopyTestSite site_b;
static char *pg_dir;
static char *pg_password;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site_a, FALSE);
  canopy_test_site_stop (&site_b, FALSE);
  if (pg_dir != NULL)
    canopy_test_pg_stop (pg_dir);
  g_clear_pointer (&pg_dir, g_free);
  g_clear_pointer (&pg_password, g_free);
  return 0;
}

static char *
psql (const char *sql)
{
  char *out = canopy_test_pg_psql (pg_dir, pg_password, sql);

  return out != NULL ? g_strstrip (out) : g_strdup ("");
}

/* PostgreSQL and its plugin are there, and the server started; FALSE
 * (reported as a skip by name, or a failure) otherwise. */
static gboolean
start_database (const char *dir)
{
  g_autofree char *plugin = canopy_test_build_path ("plugins", "backend-postgresql", ".libs",
                                                    "canopy-postgresql.so", NULL);
  g_autofree char *skip = NULL;
  g_autoptr (GError) failure = NULL;

  if (!g_file_test (plugin, G_FILE_TEST_EXISTS))
    {
      canopy_test_skip ("two canopyd on one PostgreSQL (canopy-postgresql.so was not built)");
      return FALSE;
    }
  pg_password = g_build_filename (dir, "pg.password", NULL);
  pg_dir = canopy_test_pg_start (pg_password, &skip, &failure);
  if (pg_dir != NULL)
    return TRUE;
  if (skip != NULL)
    canopy_test_skip ("two canopyd on one PostgreSQL (%s)", skip);
  else
    {
      CU_FAIL ("the test's PostgreSQL server did not start");
      g_printerr ("%s\n", failure->message);
    }
  return FALSE;
}

static char *
server_id (const CanopyTestSite *s)
{
  g_autofree char *path = g_build_filename (s->state, "server-id", NULL);
  g_autofree char *text = NULL;

  g_assert (g_file_get_contents (path, &text, NULL, NULL));
  return g_strdup (g_strstrip (text));
}

/* Servers B, then A, on the database of @options, sharing A's keys;
 * their IDs in @id_a and @id_b, when asked for. */
static void
begin_pair (CanopyTestSiteOptions *options, char **id_a, char **id_b)
{
  options->admin_name = "admin-b";
  canopy_test_site_begin (&site_b, options);
  options->admin_name = "admin-a";
  canopy_test_site_begin (&site_a, options);
  canopy_test_site_share_keys (&site_a, &site_b);
  if (id_a != NULL)
    *id_a = server_id (&site_a);
  if (id_b != NULL)
    *id_b = server_id (&site_b);
}

/* Waits until @s's health check "cluster" has @status and names @other. */
static gboolean
wait_cluster_health (CanopyTestSite *s, const char *status, const char *other, guint timeout_s)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;
  g_autofree char *last = NULL;

  while (g_get_monotonic_time () < end)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *check = canopy_test_site_health_check (s, "cluster", &holder);

      if (check != NULL)
        {
          g_free (last);
          last = g_strdup_printf ("%s: %s", json_object_get_string_member (check, "status"),
                                  json_object_get_string_member (check, "message"));
          if (g_str_equal (json_object_get_string_member (check, "status"), status)
              && strstr (json_object_get_string_member (check, "message"), other) != NULL)
            return TRUE;
        }
      canopy_test_site_pump (250);
    }
  fprintf (stderr, "\n    health check \"cluster\" last said: %s\n", last ? last : "nothing");
  return FALSE;
}

/* How many devices hold a licence in @s's activated-licences report. */
static guint
licences_reported (CanopyTestSite *s)
{
  g_autofree char *csv = canopy_test_site_get_text (s, "/api/v1/licences/report.csv");
  g_auto (GStrv) lines = g_strsplit (csv != NULL ? csv : "", "\n", -1);
  guint rows = 0;

  /* the header, then one row per device */
  for (guint i = 1; lines[0] != NULL && lines[i] != NULL; i++)
    rows += lines[i][0] != '\0';
  return rows;
}

/* Licences are the cluster's: each server counts every device, wherever
 * it enrolled. */
static gboolean
wait_licences (CanopyTestSite *s, guint expected, guint timeout_s)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      if (licences_reported (s) == expected)
        return TRUE;
      canopy_test_site_pump (250);
    }
  fprintf (stderr, "\n    %u licences reported, not %u\n", licences_reported (s), expected);
  return FALSE;
}

/* How many devices @s lists, online here or not. */
static guint
devices_known (CanopyTestSite *s)
{
  g_autoptr (JsonNode) answer = canopy_test_site_api (s, "GET", "/api/v1/devices", NULL,
                                                      SOUP_STATUS_OK);

  return answer != NULL ? (guint) json_object_get_int_member (json_node_get_object (answer),
                                                               "total")
                        : 0;
}

static gboolean
wait_known (CanopyTestSite *s, guint expected, guint timeout_s)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      if (devices_known (s) == expected)
        return TRUE;
      canopy_test_site_pump (250);
    }
  fprintf (stderr, "\n    %u devices listed, not %u\n", devices_known (s), expected);
  return FALSE;
}

/* Whether @s lists content @id. */
static gboolean
lists_content (CanopyTestSite *s, const char *id)
{
  g_autoptr (JsonNode) listed = canopy_test_site_api (s, "GET", "/api/v1/content", NULL,
                                                      SOUP_STATUS_OK);
  g_autofree char *text = listed != NULL ? json_to_string (listed, FALSE) : NULL;

  return text != NULL && strstr (text, id) != NULL;
}

/* The leases table: one row per office, and in each the one lead its
 * holder published for @deployment (the holder's own devices); also
 * counts offices whose lease @holder holds. */
static void
check_leases (const char *deployment, guint *held_by_a, guint *held_by_b, const char *a,
              const char *b)
{
  g_autofree char *rows = psql ("SELECT name || '|' || holder || '|' || "
                                "replace(detail, E'\\n', ';') FROM leases WHERE expires_at > now()"
                                " ORDER BY name");
  g_auto (GStrv) lines = g_strsplit (rows, "\n", -1);

  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], "|", 3);
      g_auto (GStrv) leads = NULL;
      guint for_deployment = 0;

      CU_ASSERT_FATAL (g_strv_length (f) == 3);
      CU_ASSERT (g_str_equal (f[0], "North") || g_str_equal (f[0], "South"));
      CU_ASSERT (g_str_equal (f[1], a) || g_str_equal (f[1], b));
      *held_by_a += g_str_equal (f[1], a);
      *held_by_b += g_str_equal (f[1], b);
      leads = g_strsplit (f[2], ";", -1);
      for (guint j = 0; leads[j] != NULL; j++)
        for_deployment += g_str_has_prefix (leads[j], deployment);
      /* never two leads of one office for one deployment */
      CU_ASSERT (for_deployment <= 1);
    }
}

/* Whether @s's only deployment is done on @expected devices. */
static gboolean
all_done (CanopyTestSite *s, guint expected)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *d = canopy_test_site_deployment (s, &holder);

  return d != NULL && json_object_get_int_member (d, "done") >= expected;
}

/* Starts agent @index of every office on @s's directories, configured
 * with @first then @second as its servers. */
static void
start_agents_on (CanopyTestSite *s, guint index, guint first_port, guint second_port)
{
  g_autofree char *others = g_strdup_printf ("<server host='127.0.0.1' port='%u'/>",
                                             second_port);
  guint own_port = s->agent_port;

  s->options.agent_servers = others;
  s->agent_port = first_port;
  for (guint o = 1; o <= CANOPY_TEST_SITE_OFFICES; o++)
    s->agents[canopy_test_site_slot (o, index)] = canopy_test_site_agent_start (s, o, index);
  s->agent_port = own_port;
  s->options.agent_servers = NULL;
}

/* A setting changed on @b is in force on @a shortly after. */
static void
check_setting_shared (CanopyTestSite *a, CanopyTestSite *b)
{
  g_autoptr (JsonNode) put = canopy_test_site_api (
    b, "PUT", "/api/v1/settings", "{\"assigned_groups\": [\"Branch\", \"Extra\"]}",
    SOUP_STATUS_OK);
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (20) * G_USEC_PER_SEC;
  gboolean seen = FALSE;

  CU_ASSERT_PTR_NOT_NULL (put);
  while (!seen && g_get_monotonic_time () < end)
    {
      g_autoptr (JsonNode) got = canopy_test_site_api (a, "GET", "/api/v1/settings", NULL,
                                                       SOUP_STATUS_OK);
      g_autofree char *text = got != NULL ? json_to_string (got, FALSE) : NULL;

      seen = text != NULL && strstr (text, "\"Extra\"") != NULL;
      if (!seen)
        canopy_test_site_pump (100);
    }
  CU_ASSERT (seen);
}

/* An admin added on @b signs in on @a; a token revoked on @b is refused
 * on @a soon after, though @a had just read its admins. */
static void
check_admins_shared (CanopyTestSite *a, CanopyTestSite *b)
{
  g_autoptr (JsonNode) added = canopy_test_site_api (
    b, "POST", "/api/v1/admins", "{\"name\": \"auditor-x\", \"role\": \"auditor\"}",
    SOUP_STATUS_CREATED);
  JsonObject *object = json_node_get_object (added);
  g_autofree char *own = g_steal_pointer (&a->token);
  g_autofree char *path = g_strdup_printf ("/api/v1/admins/auditor-x/tokens/%s",
                                           json_object_get_string_member (object, "token_id"));
  gint64 revoked, end;
  gboolean refused = FALSE;

  a->token = g_strdup (json_object_get_string_member (object, "token"));
  {
    g_autoptr (JsonNode) who = canopy_test_site_api (a, "GET", "/api/v1/whoami", NULL,
                                                     SOUP_STATUS_OK);
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_node_get_object (who), "name"),
                            "auditor-x");
  }
  g_assert_null (canopy_test_site_api (b, "DELETE", path, NULL, SOUP_STATUS_NO_CONTENT));
  revoked = g_get_monotonic_time ();
  end = revoked + canopy_test_timeout (20) * G_USEC_PER_SEC;
  while (!refused && g_get_monotonic_time () < end)
    {
      refused = canopy_test_site_status (a, "GET", "/api/v1/whoami") == SOUP_STATUS_UNAUTHORIZED;
      if (!refused)
        canopy_test_site_pump (100);
    }
  CU_ASSERT (refused);
  if (refused)
    fprintf (stderr, "[token revoked on B refused on A after %.1f s] ",
             (double) (g_get_monotonic_time () - revoked) / G_USEC_PER_SEC);
  g_free (a->token);
  a->token = g_steal_pointer (&own);
}

/* @poll: the servers poll for each other's changes instead of being
 * notified by PostgreSQL.
 * @kill_holder: kill the server holding the offices' leases (B, which
 * created the deployment and so planned first) rather than A: the other
 * must take the leases over once they lapse. */
static void
run_cluster (gboolean kill_holder, gboolean poll)
{
  CanopyTestSiteOptions options = {
    .content_size = CONTENT_SIZE,
    /* slow enough that the leads, which go on fetching when their server
     * is killed, are still under way when its leases lapse (about 20 s a
     * lead): an office that holds a verified copy wants no lead at all */
    .wan_rate = "10M",
    /* polled: what a database without notification gets */
    .server_xml = poll ? "<cluster lease-seconds='5' changes='poll'/>"
                       : "<cluster lease-seconds='5'/>",
  };
  g_autofree char *dir = NULL;
  g_autofree char *backend = NULL;
  g_autofree char *id_a = NULL;
  g_autofree char *id_b = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *body = NULL;
  g_autofree char *deployment = NULL;
  g_autofree char *audit = NULL;
  g_autoptr (JsonNode) created = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint a_port, b_port, held_by_a = 0, held_by_b = 0;
  gint64 end;
  gboolean under_way = FALSE;

  if (!canopy_test_site_available ())
    return;
  dir = canopy_test_make_tmpdir ("cluster");
  if (!start_database (dir))
    return;
  backend = canopy_test_pg_backend_xml (pg_dir, pg_password);
  options.backend_xml = backend;
  begin_pair (&options, &id_a, &id_b);
  a_port = site_a.agent_port;
  b_port = site_b.agent_port;

  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site_a.server),
                          poll ? "taken in as the database is polled for them"
                               : "taken in as the database notifies them");

  /* membership: each server's health check names the other, alive */
  CU_ASSERT (wait_cluster_health (&site_a, "ok", id_b, 20));
  CU_ASSERT (wait_cluster_health (&site_b, "ok", id_a, 20));
  {
    g_autofree char *servers = psql ("SELECT count(*) FROM servers");
    CU_ASSERT_STRING_EQUAL (servers, "2");
  }

  check_setting_shared (&site_a, &site_b);
  check_admins_shared (&site_a, &site_b);

  /* half of each office's devices on A, half on B; all in A's directories */
  start_agents_on (&site_a, 0, a_port, b_port);
  start_agents_on (&site_a, 1, a_port, b_port);
  start_agents_on (&site_a, 2, b_port, a_port);
  start_agents_on (&site_a, 3, b_port, a_port);
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&site_a, DEVICES / 2, 60));
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&site_b, DEVICES / 2, 60));
  CU_ASSERT (wait_licences (&site_a, DEVICES, 30));
  CU_ASSERT (wait_licences (&site_b, DEVICES, 30));
  /* each console lists the devices of both servers */
  CU_ASSERT (wait_known (&site_a, DEVICES, 30));
  CU_ASSERT (wait_known (&site_b, DEVICES, 30));

  /* content registered on A is on B's list shortly after */
  content_id = canopy_test_site_register (&site_a);
  {
    gint64 registered = g_get_monotonic_time ();

    end = registered + canopy_test_timeout (20) * G_USEC_PER_SEC;
    while (!lists_content (&site_b, content_id) && g_get_monotonic_time () < end)
      canopy_test_site_pump (50);
    CU_ASSERT_FATAL (lists_content (&site_b, content_id));
    /* said, not asserted: the machine may be loaded */
    printf ("[content on B %.1f s after A registered it] ",
            (double) (g_get_monotonic_time () - registered) / G_USEC_PER_SEC);
  }

  /* deployed from B, to every device of both servers */
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Branch\"], "
                          "\"destination\": \"%s/copies/package.bin\"}",
                          content_id, site_a.dir);
  created = canopy_test_site_api (&site_b, "POST", "/api/v1/deployments", body,
                                  SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (created);
  deployment = g_strdup (json_object_get_string_member (json_node_get_object (created), "id"));

  /* under way: some chunks verified; one lead per office all along */
  end = g_get_monotonic_time () + canopy_test_timeout (120) * G_USEC_PER_SEC;
  while (!under_way && g_get_monotonic_time () < end)
    {
      g_autofree char *verified = psql ("SELECT coalesce(sum(chunks_verified), 0) FROM "
                                        "assignments");

      check_leases (deployment, &held_by_a, &held_by_b, id_a, id_b);
      under_way = g_ascii_strtoull (verified, NULL, 10) > 0;
      canopy_test_site_pump (200);
    }
  if (!under_way)
    fprintf (stderr, "\n    A said:\n%s\n    B said:\n%s\n    leases: %s\n",
             canopy_test_process_output (site_a.server),
             canopy_test_process_output (site_b.server),
             psql ("SELECT name, holder, detail FROM leases"));
  CU_ASSERT_FATAL (under_way);
  printf ("[office leases seen held by A %u times, by B %u times] ", held_by_a, held_by_b);
  CU_ASSERT (held_by_a + held_by_b > 0);

  /* One server dies half way (A, or the lease holder); its devices move to
   * the other, which completes every one. The agents and the origin are
   * A's site's whichever dies. */
  {
    CanopyTestSite *victim = &site_a, *survivor = &site_b;
    const char *victim_id = id_a, *survivor_id = id_b;
    guint held_by_victim = 0, held_by_survivor = 0;

    if (kill_holder)
      {
        g_autofree char *holder = psql ("SELECT holder FROM leases WHERE name = 'North'");

        CU_ASSERT_FATAL (g_str_equal (holder, id_a) || g_str_equal (holder, id_b));
        if (g_str_equal (holder, id_b))
          {
            victim = &site_b, survivor = &site_a;
            victim_id = id_b, survivor_id = id_a;
          }
      }
    canopy_test_site_kill_hard (&victim->server);
    CU_ASSERT_FATAL (canopy_test_site_wait_online (survivor, DEVICES, 60));
    end = g_get_monotonic_time () + canopy_test_timeout (300) * G_USEC_PER_SEC;
    /* until every device is done and the survivor was seen holding a
     * lease (the offices still lack a verified copy when the killed
     * server's leases lapse, so the survivor wants them) */
    do
      {
        check_leases (deployment, &held_by_victim, &held_by_survivor, victim_id, survivor_id);
        canopy_test_site_pump (250);
      }
    while ((!all_done (survivor, DEVICES) || held_by_survivor == 0)
           && g_get_monotonic_time () < end);
    printf ("[after the kill, leases seen held by the killed server %u times, by the other %u "
            "times] ", held_by_victim, held_by_survivor);
    /* the survivor leads every office from now on */
    CU_ASSERT (held_by_survivor > 0);
    done = canopy_test_site_wait_deployment_done (survivor, deployment, DEVICES, 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL (done);
    canopy_test_site_assert_copy (&site_a);

    /* each office across the WAN about once (1.05 times at most): the
     * origin's own count beyond A's read, and the surviving server's per
     * office */
    {
      guint64 served = canopy_test_site_stop_origin (&site_a);
      JsonArray *offices = json_object_get_array_member (json_node_get_object (done),
                                                         "offices");
      gboolean check = !canopy_test_instrumented ();

      printf ("[origin served %.3f × content: A's read and %u offices] ",
              (double) served / CONTENT_SIZE, CANOPY_TEST_SITE_OFFICES);
      if (check && served > (guint64) ((1 + CANOPY_TEST_SITE_OFFICES * 1.05) * CONTENT_SIZE))
        fprintf (stderr, "\n    the origin's answers:\n%s\n", site_a.origin_log);
      CU_ASSERT (!check
                 || served <= (guint64) ((1 + CANOPY_TEST_SITE_OFFICES * 1.05) * CONTENT_SIZE));
      CU_ASSERT_EQUAL (json_array_get_length (offices), CANOPY_TEST_SITE_OFFICES);
      for (guint i = 0; i < json_array_get_length (offices); i++)
        {
          JsonObject *office = json_array_get_object_element (offices, i);
          double ratio = json_object_get_double_member (office, "wan_ratio");

          printf ("[%s: WAN %.3f × content] ",
                  json_object_get_string_member (office, "office"), ratio);
          CU_ASSERT (ratio > 0.0 && (!check || ratio <= 1.05));
        }
    }

    /* the audit log is the cluster's: A's registration, B's deployment */
    audit = psql ("SELECT string_agg(actor || ' ' || action, ',' ORDER BY id) FROM audit");
    CANOPY_ASSERT_CONTAINS (audit, "admin admin-a (administrator) from 127.0.0.1 "
                                   "content-registered");
    CANOPY_ASSERT_CONTAINS (audit, "admin admin-b (administrator) from 127.0.0.1 "
                                   "deployment-created");

    /* the survivor's health check flags the killed server's lapsed heartbeat */
    CU_ASSERT (wait_cluster_health (survivor, "warning", victim_id, 30));

    canopy_test_site_stop (&site_a, TRUE);
    canopy_test_site_stop (&site_b, TRUE);
    /* the survivor left cleanly: only the killed server is still registered */
    {
      g_autofree char *left = psql ("SELECT string_agg(server_id::text, ',') FROM servers");
      CU_ASSERT_STRING_EQUAL (left, victim_id);
    }
  }
  canopy_test_pg_stop (pg_dir);
  g_clear_pointer (&pg_dir, g_free);
  g_clear_pointer (&pg_password, g_free);
}

static void
test_server_killed (void)
{
  run_cluster (FALSE, FALSE);
}

static void
test_lease_holder_killed (void)
{
  run_cluster (TRUE, TRUE);
}

/* How many devices @s counts done in deployment @id; -1 while it does not
 * list @id. */
static gint64
deployment_done (CanopyTestSite *s, const char *id)
{
  g_autoptr (JsonNode) listed = canopy_test_site_api (s, "GET", "/api/v1/deployments", NULL,
                                                      SOUP_STATUS_OK);
  JsonArray *all = listed != NULL ? json_node_get_array (listed) : NULL;

  for (guint i = 0; all != NULL && i < json_array_get_length (all); i++)
    {
      JsonObject *d = json_array_get_object_element (all, i);

      if (g_str_equal (json_object_get_string_member (d, "id"), id))
        return json_object_get_int_member (d, "done");
    }
  return -1;
}

/* Waits until deployment @id counts @expected done on @s, or at least
 * that many with @at_least (-1: no longer listed), and says how long it
 * took. */
static gboolean
wait_deployment_done (CanopyTestSite *s, const char *id, gint64 expected, gboolean at_least,
                      const char *what)
{
  gint64 start = g_get_monotonic_time ();
  gint64 end = start + canopy_test_timeout (20) * G_USEC_PER_SEC;
  gint64 done;

  while ((done = deployment_done (s, id)) != expected && !(at_least && done > expected)
         && g_get_monotonic_time () < end)
    canopy_test_site_pump (50);
  if (done != expected && !(at_least && done > expected))
    {
      fprintf (stderr, "\n    %s: %" G_GINT64_FORMAT " done, not %" G_GINT64_FORMAT "\n", what,
               done, expected);
      return FALSE;
    }
  /* said, not asserted: the machine may be loaded */
  printf ("[%s after %.1f s] ", what, (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);
  return TRUE;
}

/* Every device on A: B's console follows their progress as A's does,
 * and a deployment and a content A removes a moment after making them
 * are gone from B too, also after B restarts. */
static void
run_progress_and_removals (gboolean poll)
{
  CanopyTestSiteOptions options = {
    .server_xml = poll ? "<cluster lease-seconds='5' changes='poll'/>"
                       : "<cluster lease-seconds='5'/>",
  };
  g_autofree char *dir = NULL, *backend = NULL, *content_id = NULL, *deployment = NULL;
  g_autofree char *path = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint a_port, b_port;

  if (!canopy_test_site_available ())
    return;
  dir = canopy_test_make_tmpdir ("cluster-progress");
  if (!start_database (dir))
    return;
  backend = canopy_test_pg_backend_xml (pg_dir, pg_password);
  options.backend_xml = backend;
  begin_pair (&options, NULL, NULL);
  a_port = site_a.agent_port;
  b_port = site_b.agent_port;
  start_agents_on (&site_a, 0, a_port, b_port);
  start_agents_on (&site_a, 1, a_port, b_port);
  CU_ASSERT_FATAL (canopy_test_site_wait_online (&site_a, DEVICES / 2, 60));

  content_id = canopy_test_site_register (&site_a);
  deployment = canopy_test_site_create_deployment (&site_a, content_id, NULL);
  CU_ASSERT_FATAL (wait_deployment_done (&site_b, deployment, 0, TRUE, "deployment on B"));
  done = canopy_test_site_wait_deployment_done (&site_a, deployment, DEVICES / 2, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site_a);
  /* devices that never spoke to B, done on B's console as on A's */
  CU_ASSERT (wait_deployment_done (&site_b, deployment, DEVICES / 2, FALSE, "progress on B"));

  /* removed on A, well within a minute of being made */
  path = g_strdup_printf ("/api/v1/deployments?id=%s", deployment);
  g_assert_null (canopy_test_site_api (&site_a, "DELETE", path, NULL, SOUP_STATUS_NO_CONTENT));
  CU_ASSERT (wait_deployment_done (&site_b, deployment, -1, FALSE, "deployment removed on B"));
  g_free (path);
  path = g_strdup_printf ("/api/v1/content?id=%s", content_id);
  g_assert_null (canopy_test_site_api (&site_a, "DELETE", path, NULL, SOUP_STATUS_NO_CONTENT));
  {
    gint64 end = g_get_monotonic_time () + canopy_test_timeout (20) * G_USEC_PER_SEC;

    while (lists_content (&site_b, content_id) && g_get_monotonic_time () < end)
      canopy_test_site_pump (50);
    CU_ASSERT (!lists_content (&site_b, content_id));
  }
  /* and not brought back by B's own memory of them */
  canopy_test_process_signal (site_b.server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (site_b.server, 20), 0);
  g_clear_pointer (&site_b.server, canopy_test_process_free);
  canopy_test_site_server_start (&site_b);
  CU_ASSERT (!lists_content (&site_b, content_id));
  CU_ASSERT_EQUAL (deployment_done (&site_b, deployment), -1);
  CU_ASSERT (!lists_content (&site_a, content_id));
  CU_ASSERT_EQUAL (deployment_done (&site_a, deployment), -1);

  canopy_test_site_stop (&site_a, TRUE);
  canopy_test_site_stop (&site_b, TRUE);
  canopy_test_pg_stop (pg_dir);
  g_clear_pointer (&pg_dir, g_free);
  g_clear_pointer (&pg_password, g_free);
}

static void
test_progress_and_removals (void)
{
  run_progress_and_removals (FALSE);
}

static void
test_progress_and_removals_polled (void)
{
  run_progress_and_removals (TRUE);
}

/* <cluster> on the embedded database is refused at start, saying why and
 * what to do, before anything listens. */
static void
test_refused_on_sqlite (void)
{
  g_autofree char *canopyd = canopy_test_build_path ("canopyd", NULL);
  g_autofree char *dir = canopy_test_make_tmpdir ("cluster-sqlite");
  g_autofree char *config = g_build_filename (dir, "canopyd.xml", NULL);
  g_autofree char *xml = g_strdup_printf (
    "<server><state-directory>%s/state</state-directory>"
    "<assigned-group>Branch</assigned-group><cluster/><backend plugin='sqlite'/>"
    "<transport plugin='tcp'><listen address='127.0.0.1' port='0'/></transport></server>",
    dir);
  const char *init[] = { canopyd, "init", "--config", config, NULL };
  const char *run[] = { canopyd, "--config", config, NULL };
  g_autofree char *out = NULL;

  if (!canopy_test_site_available ())
    return;
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  CU_ASSERT_EQUAL_FATAL (canopy_test_run (init, &out), 0);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_NOT_EQUAL (canopy_test_run (run, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "The storage backend \"sqlite\" cannot be shared by several "
                               "servers; remove <cluster> from the configuration or use the "
                               "postgresql backend");
}

/* <cluster> on SQL Server with changes="notify": refused at start, saying
 * to poll, before the backend is opened (no SQL Server is reached: the
 * one named does not exist). The state is made with SQLite's init. */
static void
test_notify_refused_on_sql_server (void)
{
  g_autofree char *canopyd = canopy_test_build_path ("canopyd", NULL);
  g_autofree char *plugin = canopy_test_build_path ("plugins", "backend-freetds", ".libs",
                                                    "canopy-freetds.so", NULL);
  g_autofree char *dir = NULL, *config = NULL, *xml = NULL, *out = NULL;
#define COMMON                                                                                 \
  "<assigned-group>Branch</assigned-group>%s<transport plugin='tcp'>"                          \
  "<listen address='127.0.0.1' port='0'/></transport>"

  if (!canopy_test_site_available ())
    return;
  if (!g_file_test (plugin, G_FILE_TEST_EXISTS))
    {
      canopy_test_skip ("notify refused on SQL Server (canopy-freetds.so was not built)");
      return;
    }
  dir = canopy_test_make_tmpdir ("cluster-mssql");
  config = g_build_filename (dir, "canopyd.xml", NULL);
  {
    g_autofree char *inner = g_strdup_printf (COMMON, "<backend plugin='sqlite'/>");
    const char *init[] = { canopyd, "init", "--config", config, NULL };

    xml = g_strdup_printf ("<server><state-directory>%s/state</state-directory>%s</server>",
                           dir, inner);
    g_assert (g_file_set_contents (config, xml, -1, NULL));
    CU_ASSERT_EQUAL_FATAL (canopy_test_run (init, &out), 0);
  }
  {
    g_autofree char *backend = g_strdup_printf (
      "<cluster changes='notify'/><backend plugin='freetds'><server host='127.0.0.1' port='9'/>"
      "<database>canopy</database><user>canopy</user><password-file>%s/none</password-file>"
      "</backend>", dir);
    g_autofree char *inner = g_strdup_printf (COMMON, backend);
    const char *run[] = { canopyd, "--config", config, NULL };

    g_free (xml);
    xml = g_strdup_printf ("<server><state-directory>%s/state</state-directory>%s</server>",
                           dir, inner);
    g_assert (g_file_set_contents (config, xml, -1, NULL));
    g_clear_pointer (&out, g_free);
    CU_ASSERT_NOT_EQUAL (canopy_test_run (run, &out), 0);
  }
  CANOPY_ASSERT_CONTAINS (out, "The storage backend \"freetds\" cannot notify the servers of a "
                               "cluster of each other's changes (changes=\"notify\", the "
                               "default); write changes=\"poll\" in <cluster>");
  /* refused before the backend was opened */
  CU_ASSERT_PTR_NULL (strstr (out, "password file"));
#undef COMMON
}

/* Two canopyd on the SQL Server of CANOPY_TEST_MSSQL_*, changes polled:
 * each sees the other in its registry, a setting changed on one is in
 * force on the other, admins are shared, and content registered on one is
 * listed on the other. Skipped by name without a SQL Server. */
static void
test_two_servers_on_sql_server (void)
{
  const char *host = g_getenv ("CANOPY_TEST_MSSQL_HOST");
  CanopyTestSiteOptions options = {
    .server_xml = "<cluster lease-seconds='5' changes='poll'/>",
  };
  g_autofree char *backend = NULL, *id_a = NULL, *id_b = NULL, *content_id = NULL;
  gint64 end;

  if (host == NULL)
    {
      canopy_test_skip ("two servers on one SQL Server (set CANOPY_TEST_MSSQL_HOST, _PORT, "
                        "_DATABASE, _USER and _PASSWORD_FILE to run it against a SQL Server)");
      return;
    }
  if (!canopy_test_site_available ())
    return;
  backend = g_strdup_printf ("<backend plugin='freetds'><server host='%s' port='%s'/>"
                             "<database>%s</database><user>%s</user>"
                             "<password-file>%s</password-file></backend>",
                             host, g_getenv ("CANOPY_TEST_MSSQL_PORT") ?: "1433",
                             g_getenv ("CANOPY_TEST_MSSQL_DATABASE") ?: "canopy_test",
                             g_getenv ("CANOPY_TEST_MSSQL_USER") ?: "canopy",
                             g_getenv ("CANOPY_TEST_MSSQL_PASSWORD_FILE") ?: "/dev/null");
  options.backend_xml = backend;
  begin_pair (&options, &id_a, &id_b);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site_a.server),
                          "taken in as the database is polled for them");
  CU_ASSERT (wait_cluster_health (&site_a, "ok", id_b, 20));
  CU_ASSERT (wait_cluster_health (&site_b, "ok", id_a, 20));
  check_setting_shared (&site_a, &site_b);
  check_admins_shared (&site_a, &site_b);
  content_id = canopy_test_site_register (&site_a);
  end = g_get_monotonic_time () + canopy_test_timeout (20) * G_USEC_PER_SEC;
  while (!lists_content (&site_b, content_id) && g_get_monotonic_time () < end)
    canopy_test_site_pump (50);
  CU_ASSERT (lists_content (&site_b, content_id));
  canopy_test_site_stop (&site_a, TRUE);
  canopy_test_site_stop (&site_b, TRUE);
}

CANOPY_TEST_SUITE (cluster, "cluster", NULL, suite_cleanup,
                   { "refused on SQLite", test_refused_on_sqlite },
                   { "two servers on one PostgreSQL, one killed", test_server_killed },
                   { "the lead lease holder killed, changes polled",
                     test_lease_holder_killed },
                   { "progress and removals on A shown on B", test_progress_and_removals },
                   { "progress and removals on A shown on B, polled",
                     test_progress_and_removals_polled },
                   { "notify refused on SQL Server", test_notify_refused_on_sql_server },
                   { "two servers on one SQL Server, changes polled",
                     test_two_servers_on_sql_server })
