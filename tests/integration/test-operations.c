/* What operations admins rely on, end to end with real processes: the
 * status of each target device of a deployment (the console API's paged
 * and filtered list, and canopyctl deployment-show), and deployments
 * that wait for their daily window or their deadline, on canopyd's
 * clock moved by libfaketime rather than by waiting hours. */
#include "build-config.h"

#include "tests/integration/site.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS_PER_OFFICE CANOPY_TEST_SITE_AGENTS_PER_OFFICE
#define N_TARGETS (OFFICES * AGENTS_PER_OFFICE)

typedef CanopyTestSite Site;

/* Static so that a test stopped by a fatal assertion still has its
 * processes stopped by the suite's cleanup. */
static Site site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

static JsonObject *
devices_page (Site *s, const char *id, const char *query, JsonNode **holder)
{
  g_autofree char *path = g_strdup_printf ("/api/v1/deployments/%s/devices%s", id, query);

  g_clear_pointer (holder, json_node_unref);
  *holder = canopy_test_site_api (s, "GET", path, NULL, SOUP_STATUS_OK);
  return *holder != NULL ? json_node_get_object (*holder) : NULL;
}

static void
assert_error (Site *s, const char *path, guint status, const char *code)
{
  g_autoptr (JsonNode) answer = canopy_test_site_api (s, "GET", path, NULL, status);
  JsonObject *o = answer != NULL ? json_node_get_object (answer) : NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (o);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member_with_default (o, "error", ""), code);
}

/* A canopyctl profile logged in to @s with the site's admin token. */
static char *
ctl_login (Site *s)
{
  g_autofree char *token_file = g_build_filename (s->dir, "ctl-token", NULL);
  g_autofree char *certificate = g_build_filename (s->state, "console-cert.pem", NULL);
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u", s->console_port);
  g_autofree char *out = NULL;
  char *profile = g_build_filename (s->dir, "ctl-profile", NULL);

  g_assert (g_file_set_contents (token_file, s->token, -1, NULL));
  CU_ASSERT_EQUAL_FATAL (canopy_test_ctl (profile, &out, "login", "--server", url,
                                          "--certificate", certificate, "--token-file",
                                          token_file, NULL),
                         0);
  return profile;
}

/* One finished device as the contract describes it. */
static void
assert_done_device (JsonObject *d, gint64 size, guint *leads)
{
  JsonObject *bytes = json_object_get_object_member (d, "bytes");
  const char *role = json_object_get_string_member (d, "role");
  gint64 taken = 0;

  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "state"), "done");
  CU_ASSERT_EQUAL (json_object_get_int_member (d, "percent"), 100);
  CU_ASSERT_EQUAL (json_object_get_int_member (d, "bytes_done"), size);
  CU_ASSERT_EQUAL (json_object_get_int_member (d, "size"), size);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "error"), "");
  CU_ASSERT (!json_object_get_null_member (d, "last_report"));
  CU_ASSERT (g_str_has_suffix (json_object_get_string_member (d, "last_report"), "Z"));
  CU_ASSERT (g_strcmp0 (role, "lead") == 0 || g_strcmp0 (role, "peer") == 0);
  CU_ASSERT (json_object_get_string_member (d, "device_id")[0] != '\0');
  CU_ASSERT_PTR_NOT_NULL (json_object_get_array_member (d, "sources"));
  taken = json_object_get_int_member (bytes, "office_peer")
          + json_object_get_int_member (bytes, "parent_peer")
          + json_object_get_int_member (bytes, "server")
          + json_object_get_int_member (bytes, "origin");
  /* Every device took content from somewhere. Not always the whole of it
   * by these counts: a fetch that restarts (a failure retried, slowed
   * down under valgrind) resumes from its cache, and what it verified
   * after its last report before that is not counted again. */
  CU_ASSERT (taken > 0 && taken <= 2 * size);
  if (g_strcmp0 (role, "lead") == 0)
    {
      (*leads)++;
      CU_ASSERT (json_object_get_int_member (bytes, "origin") > 0);
    }
}

/* Whether every device of @id has reported bytes adding up to the content. */
static gboolean
all_bytes_in (Site *s, const char *id)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *o = devices_page (s, id, "", &holder);
  JsonArray *devices = json_object_get_array_member (o, "devices");

  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *bytes = json_object_get_object_member (json_array_get_object_element (devices,
                                                                                        i),
                                                         "bytes");

      if (json_object_get_int_member (bytes, "office_peer")
            + json_object_get_int_member (bytes, "parent_peer")
            + json_object_get_int_member (bytes, "server")
            + json_object_get_int_member (bytes, "origin")
          < (gint64) s->content_size)
        return FALSE;
    }
  return TRUE;
}

/* Every target device is listed with its state, progress, bytes by source
 * and role; the list pages and filters by office and state; bad filters
 * and unknown deployments get the errors of the contract; canopyctl
 * deployment-show shows the same. */
static void
test_device_status (void)
{
  CanopyTestSiteOptions options = { .content_size = 6 * 1024 * 1024 + 4321 };
  Site *s = &site;
  g_autofree char *content_id = NULL, *id = NULL;
  g_autofree char *profile = NULL, *out = NULL;
  g_autoptr (JsonNode) holder = NULL, page = NULL, parsed = NULL;
  g_autoptr (JsonNode) done = NULL;
  JsonObject *all, *o;
  JsonArray *devices;
  guint leads = 0;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  content_id = canopy_test_site_register (s);
  id = canopy_test_site_create_deployment (s, content_id, NULL);
  done = canopy_test_site_wait_deployment_done (s, id, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);

  /* A device's last progress report may follow its "done" by a moment:
   * wait until every device's bytes add up to the content. */
  {
    gint64 until = g_get_monotonic_time () + canopy_test_timeout (5) * G_USEC_PER_SEC;

    while (g_get_monotonic_time () < until && !all_bytes_in (s, id))
      canopy_test_site_pump (200);
  }
  all = devices_page (s, id, "", &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (all);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (all, "deployment"), id);
  CU_ASSERT_EQUAL (json_object_get_int_member (all, "total"), N_TARGETS);
  CU_ASSERT_EQUAL (json_object_get_int_member (all, "offset"), 0);
  CU_ASSERT_EQUAL (json_object_get_int_member (all, "limit"), 100);
  devices = json_object_get_array_member (all, "devices");
  CU_ASSERT_EQUAL_FATAL (json_array_get_length (devices), N_TARGETS);
  for (guint i = 0; i < N_TARGETS; i++)
    {
      JsonObject *d = json_array_get_object_element (devices, i);

      assert_done_device (d, (gint64) s->content_size, &leads);
      CU_ASSERT (canopy_test_site_agent_index (s, json_object_get_string_member (d, "device_id"))
                 < CANOPY_TEST_SITE_N_AGENTS);
      /* By office, North before South. */
      CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "office"),
                              i < AGENTS_PER_OFFICE ? "North" : "South");
    }
  /* One lead per office brought the content in. */
  CU_ASSERT_EQUAL (leads, OFFICES);

  /* Filters: an office, a state nobody is in, and both. */
  o = devices_page (s, id, "?office=South", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), AGENTS_PER_OFFICE);
  for (guint i = 0; i < AGENTS_PER_OFFICE; i++)
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (
                              json_array_get_object_element (
                                json_object_get_array_member (o, "devices"), i),
                              "office"),
                            "South");
  o = devices_page (s, id, "?state=fetching", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), 0);
  CU_ASSERT_EQUAL (json_array_get_length (json_object_get_array_member (o, "devices")), 0);
  o = devices_page (s, id, "?office=North&state=done", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), AGENTS_PER_OFFICE);
  o = devices_page (s, id, "?office=Nowhere", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), 0);

  /* Paging: the same devices in the same order as the whole list. */
  o = devices_page (s, id, "?offset=2&limit=3", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), N_TARGETS);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "offset"), 2);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "limit"), 3);
  CU_ASSERT_EQUAL_FATAL (json_array_get_length (json_object_get_array_member (o, "devices")), 3);
  for (guint i = 0; i < 3; i++)
    CU_ASSERT_STRING_EQUAL (
      json_object_get_string_member (
        json_array_get_object_element (json_object_get_array_member (o, "devices"), i),
        "device_id"),
      json_object_get_string_member (json_array_get_object_element (devices, 2 + i),
                                     "device_id"));
  o = devices_page (s, id, "?offset=100", &page);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), N_TARGETS);
  CU_ASSERT_EQUAL (json_array_get_length (json_object_get_array_member (o, "devices")), 0);

  /* What the contract refuses. */
  {
    g_autofree char *bad_state = g_strdup_printf ("/api/v1/deployments/%s/devices?state=stuck",
                                                  id);
    g_autofree char *bad_limit = g_strdup_printf ("/api/v1/deployments/%s/devices?limit=1001",
                                                  id);
    g_autofree char *zero_limit = g_strdup_printf ("/api/v1/deployments/%s/devices?limit=0",
                                                   id);
    g_autofree char *bad_offset = g_strdup_printf ("/api/v1/deployments/%s/devices?offset=-1",
                                                   id);

    assert_error (s, bad_state, SOUP_STATUS_BAD_REQUEST, "invalid-value");
    assert_error (s, bad_limit, SOUP_STATUS_BAD_REQUEST, "invalid-value");
    assert_error (s, zero_limit, SOUP_STATUS_BAD_REQUEST, "invalid-value");
    assert_error (s, bad_offset, SOUP_STATUS_BAD_REQUEST, "invalid-value");
    assert_error (s, "/api/v1/deployments/no-such-deployment/devices", SOUP_STATUS_NOT_FOUND,
                  "not-found");
  }

  /* /metrics counts the devices by state, and gives each office's rate. */
  {
    g_autofree char *metrics = canopy_test_site_get_text (s, "/metrics");
    g_autofree char *done_line = g_strdup_printf (
      "canopy_deployment_devices_by_state{state=\"done\"} %u\n", N_TARGETS);

    CANOPY_ASSERT_CONTAINS (metrics, done_line);
    CANOPY_ASSERT_CONTAINS (metrics, "canopy_deployment_devices_by_state{state=\"failed\"} 0\n");
    CANOPY_ASSERT_CONTAINS (metrics, "canopy_office_wan_rate_bits{office=\"North\"} 0\n");
  }

  /* canopyctl deployment-show, logged in with an admin's token. */
  profile = ctl_login (s);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployment-show", id, "--office", "North",
                                    NULL),
                   0);
  CANOPY_ASSERT_CONTAINS (out, "STATE");
  CANOPY_ASSERT_CONTAINS (out, "done");
  CANOPY_ASSERT_CONTAINS (out, "North");
  CU_ASSERT_PTR_NULL (strstr (out, "South"));
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "--json", "deployment-show", id, NULL), 0);
  parsed = json_from_string (out, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (parsed);
  o = json_node_get_object (parsed);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), N_TARGETS);
  CU_ASSERT_EQUAL (json_array_get_length (json_object_get_array_member (o, "devices")),
                   N_TARGETS);
  CU_ASSERT_NOT_EQUAL (canopy_test_ctl (profile, &out, "deployment-show", id, "--state",
                                        "stuck", NULL),
                       0);
  CANOPY_ASSERT_CONTAINS (out, "stuck");
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
}

/* --- windows and deadlines, on a fake clock --------------------------------- */

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

typedef struct {
  char *clock_file;
  char *preload, *timestamp, *asan;
  const char *faked[8];
} FakeClock;

static void
fake_clock_clear (FakeClock *clock)
{
  g_free (clock->clock_file);
  g_free (clock->preload);
  g_free (clock->timestamp);
  g_free (clock->asan);
}

/* Starts the site with canopyd (and the origin), or with the agents if
 * @agents, on a wall clock the test moves by writing @clock->clock_file;
 * the others keep the real one. FALSE (skip reported) without
 * libfaketime. */
static gboolean
begin_with_fake_clock (CanopyTestSiteOptions *options, FakeClock *clock, gboolean agents)
{
  g_autofree char *faketime = find_faketime ();
  g_autofree char *dir = NULL;

  if (faketime == NULL)
    {
      canopy_test_skip ("libfaketime is not installed (Debian package \"faketime\"); the "
                        "window and deadline tests did not run");
      return FALSE;
    }
  if (!canopy_test_site_available ())
    return FALSE;
  dir = canopy_test_make_tmpdir ("ops-clock");
  clock->clock_file = g_build_filename (dir, "faketime", NULL);
  g_assert (g_file_set_contents (clock->clock_file, "+0", -1, NULL));
  clock->preload = g_strconcat ("LD_PRELOAD=", faketime, NULL);
  clock->timestamp = g_strconcat ("FAKETIME_TIMESTAMP_FILE=", clock->clock_file, NULL);
  /* With AddressSanitizer, libfaketime comes before its runtime. */
  clock->asan = g_strdup_printf ("ASAN_OPTIONS=%s%sverify_asan_link_order=0",
                                 g_getenv ("ASAN_OPTIONS") != NULL ? g_getenv ("ASAN_OPTIONS")
                                                                   : "",
                                 g_getenv ("ASAN_OPTIONS") != NULL ? ":" : "");
  clock->faked[0] = "env";
  clock->faked[1] = clock->preload;
  clock->faked[2] = clock->timestamp;
  clock->faked[3] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
  clock->faked[4] = "FAKETIME_CACHE_DURATION=1";
  clock->faked[5] = clock->asan;
  /* Files keep their real times: what has aged is what the cache judges. */
  clock->faked[6] = "NO_FAKE_STAT=1";
  clock->faked[7] = NULL;
  if (agents)
    for (guint o = 1; o <= CANOPY_TEST_SITE_OFFICES; o++)
      options->prefix[o] = clock->faked;
  else
    options->prefix[0] = clock->faked;
  canopy_test_site_begin (&site, options);
  canopy_test_site_start_agents (&site);
  return TRUE;
}

/* Moves canopyd's wall clock @offset from the real one ("+90m"); waits
 * past libfaketime's one-second cache. */
static void
set_clock (FakeClock *clock, const char *offset)
{
  g_assert (g_file_set_contents (clock->clock_file, offset, -1, NULL));
  canopy_test_site_pump (2500);
}

/* "HH:MM" of the real UTC time @minutes from now, rounded down. */
static char *
clock_in (gint minutes)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) then = g_date_time_add_minutes (now, minutes);

  return g_date_time_format (then, "%H:%M");
}

static char *
rfc3339_in (gint minutes)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) then = g_date_time_add_minutes (now, minutes);

  return g_date_time_format (then, "%Y-%m-%dT%H:%M:%SZ");
}

static char *
create_timed (Site *s, const char *content_id, const char *timing, guint expected)
{
  g_autofree char *body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Branch\"], "
                                           "\"destination\": \"%s/copies/package.bin\"%s}",
                                           content_id, s->dir, timing);
  g_autoptr (JsonNode) created = canopy_test_site_api (s, "POST", "/api/v1/deployments", body,
                                                       expected);

  if (expected != SOUP_STATUS_CREATED || created == NULL)
    return NULL;
  return g_strdup (json_object_get_string_member (json_node_get_object (created), "id"));
}

/* For a while, every target device of @id is known and waiting, and has
 * taken nothing from anywhere. */
static void
assert_nothing_moves (Site *s, const char *id)
{
  g_autoptr (JsonNode) holder = NULL;
  gint64 until = g_get_monotonic_time () + 8 * G_USEC_PER_SEC;
  JsonObject *o = NULL;

  while (g_get_monotonic_time () < until)
    {
      o = devices_page (s, id, "", &holder);
      CU_ASSERT_PTR_NOT_NULL_FATAL (o);
      CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"),
                       json_object_get_int_member (devices_page (s, id, "?state=waiting",
                                                                 &holder),
                                                   "total"));
      canopy_test_site_pump (1000);
    }
  o = devices_page (s, id, "", &holder);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "total"), N_TARGETS);
  for (guint i = 0; i < json_array_get_length (json_object_get_array_member (o, "devices"));
       i++)
    {
      JsonObject *d = json_array_get_object_element (json_object_get_array_member (o, "devices"),
                                                     i);
      JsonObject *bytes = json_object_get_object_member (d, "bytes");

      CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "state"), "waiting");
      CU_ASSERT_EQUAL (json_object_get_int_member (d, "bytes_done"), 0);
      CU_ASSERT_EQUAL (json_object_get_int_member (bytes, "origin")
                         + json_object_get_int_member (bytes, "office_peer")
                         + json_object_get_int_member (bytes, "server"),
                       0);
    }
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (s->server), "finished deployment"));
}

/* A deployment whose daily window opens in an hour moves nothing; once
 * canopyd's clock is inside the window, every device completes. */
static void
test_window_holds_content (void)
{
  CanopyTestSiteOptions options = { .content_size = 4 * 1024 * 1024 + 99 };
  FakeClock clock = { 0 };
  Site *s = &site;
  g_autofree char *content_id = NULL, *id = NULL, *timing = NULL;
  g_autofree char *from = clock_in (60), *to = clock_in (120);
  g_autoptr (JsonNode) done = NULL, list = NULL;
  JsonObject *d;

  if (!begin_with_fake_clock (&options, &clock, FALSE))
    goto out;
  content_id = canopy_test_site_register (s);
  timing = g_strdup_printf (", \"window\": \"%s-%s\"", from, to);
  id = create_timed (s, content_id, timing, SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (id);
  list = canopy_test_site_api (s, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
  d = json_array_get_object_element (json_node_get_array (list), 0);
  {
    g_autofree char *window = g_strdup_printf ("%s-%s", from, to);
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "window"), window);
  }
  CU_ASSERT (json_object_get_null_member (d, "deadline"));
  {
    g_autofree char *profile = ctl_login (s);
    g_autofree char *out = NULL;
    g_autofree char *line = g_strdup_printf ("Moves: daily window (office time) %s-%s", from, to);

    CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployments", NULL), 0);
    CANOPY_ASSERT_CONTAINS (out, line);
    CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployment-show", id, "--state",
                                      "waiting", NULL),
                     0);
    CANOPY_ASSERT_CONTAINS (out, "waiting");
  }
  assert_nothing_moves (s, id);

  set_clock (&clock, "+90m");
  done = canopy_test_site_wait_deployment_done (s, id, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
out:
  fake_clock_clear (&clock);
}

/* A deployment whose window stays closed still completes once its
 * deadline has passed; bad timings are refused with what is wrong. */
static void
test_deadline_overrides_window (void)
{
  CanopyTestSiteOptions options = { .content_size = 4 * 1024 * 1024 + 99 };
  FakeClock clock = { 0 };
  Site *s = &site;
  g_autofree char *content_id = NULL, *id = NULL, *timing = NULL;
  g_autofree char *from = clock_in (300), *to = clock_in (360), *deadline = rfc3339_in (30);
  g_autofree char *later = rfc3339_in (60);
  g_autoptr (JsonNode) done = NULL;

  if (!begin_with_fake_clock (&options, &clock, FALSE))
    goto out;
  content_id = canopy_test_site_register (s);
  g_free (create_timed (s, content_id, ", \"window\": \"25:00-26:00\"",
                        SOUP_STATUS_UNPROCESSABLE_ENTITY));
  g_free (create_timed (s, content_id, ", \"deadline\": \"tomorrow\"",
                        SOUP_STATUS_UNPROCESSABLE_ENTITY));
  timing = g_strdup_printf (", \"start\": \"%s\", \"deadline\": \"%s\"", later, deadline);
  g_free (create_timed (s, content_id, timing, SOUP_STATUS_UNPROCESSABLE_ENTITY));
  g_free (timing);

  timing = g_strdup_printf (", \"window\": \"%s-%s\", \"deadline\": \"%s\"", from, to,
                            deadline);
  id = create_timed (s, content_id, timing, SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (id);
  assert_nothing_moves (s, id);

  /* Past the deadline, with the window still hours away. */
  set_clock (&clock, "+45m");
  done = canopy_test_site_wait_deployment_done (s, id, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
out:
  fake_clock_clear (&clock);
}

/* North's bytes from the origin, as its lead last reported them. */
static gint64
north_origin_bytes (Site *s)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *d = canopy_test_site_deployment (s, &holder);
  JsonObject *north = d != NULL ? canopy_test_site_office_of (d, "North") : NULL;

  return north != NULL ? json_object_get_int_member (north, "bytes_origin") : -1;
}

typedef struct {
  gint64 at; /* monotonic µs */
  gint64 bytes;
} Sample;

/* What North had from the origin at @at, by the last sample before;
 * -1 if none was taken before. */
static gint64
bytes_at (GArray *samples, gint64 at)
{
  gint64 bytes = -1;

  for (guint i = 0; i < samples->len; i++)
    if (g_array_index (samples, Sample, i).at <= at)
      bytes = g_array_index (samples, Sample, i).bytes;
  return bytes;
}

/* North's WAN rate is 8 Mbit/s but 64 Mbit/s from a minute boundary on
 * (its wan_schedule); canopyd's clock crosses the boundary while the lead
 * fetches. By what the lead reports, it paces to 8 Mbit/s before and
 * takes far more than 8 Mbit/s from one second after the boundary. The
 * figures are printed; the bounds leave room for a loaded machine. */
static void
test_schedule_changes_rate (void)
{
  CanopyTestSiteOptions options = { .content_size = 48 * 1024 * 1024 + 99 };
  FakeClock clock = { 0 };
  Site *s = &site;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) soon = g_date_time_add_minutes (now, 3);
  g_autoptr (GDateTime) boundary = g_date_time_new_utc (
    g_date_time_get_year (soon), g_date_time_get_month (soon), g_date_time_get_day_of_month (soon),
    g_date_time_get_hour (soon), g_date_time_get_minute (soon), 0);
  g_autoptr (GDateTime) boundary_end = g_date_time_add_minutes (boundary, 60);
  g_autofree char *from = g_date_time_format (boundary, "%H:%M");
  g_autofree char *to = g_date_time_format (boundary_end, "%H:%M");
  g_autofree char *topology = g_strdup_printf (
    "office,parent,type,subnets,wan_rate,time_zone,wan_schedule\n"
    "North,,Default,NET.1.0/24,8M,UTC,64M %s-%s\n"
    "South,,Default,NET.2.0/24,,,\n", from, to);
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, sizeof (Sample));
  g_autofree char *content_id = NULL, *offset = NULL;
  g_autoptr (JsonNode) done = NULL;
  gint64 deadline, crossing, before, after;
  double rate_before, rate_after;

  options.topology = topology;
  if (!begin_with_fake_clock (&options, &clock, FALSE))
    goto out;
  {
    g_autoptr (JsonNode) offices = canopy_test_site_api (s, "GET", "/api/v1/offices", NULL,
                                                         SOUP_STATUS_OK);
    JsonObject *north = canopy_test_site_find (json_node_get_object (offices), "offices", "name",
                                               "North");
    /* A period ending at midnight is written 24:00. */
    g_autofree char *schedule = g_strdup_printf ("64M %s-%s", from,
                                                 g_str_equal (to, "00:00") ? "24:00" : to);

    CU_ASSERT_PTR_NOT_NULL_FATAL (north);
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (north, "wan_schedule"), schedule);
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (north, "time_zone"), "UTC");
    CU_ASSERT_EQUAL (json_object_get_int_member (north, "wan_rate_now"), 8000000);
  }
  {
    g_autofree char *profile = ctl_login (s);
    g_autofree char *out = NULL;

    CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "offices", NULL), 0);
    CANOPY_ASSERT_CONTAINS (out, "8.0 Mbit/s");
    CANOPY_ASSERT_CONTAINS (out, "64M ");
  }
  content_id = canopy_test_site_deploy (s);
  deadline = g_get_monotonic_time () + canopy_test_timeout (60) * G_USEC_PER_SEC;
  /* Past the lead's first requests, which go out before its pacing has
   * anything to measure. */
  while (north_origin_bytes (s) < 4 * 1024 * 1024 && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (100);
  CU_ASSERT_FATAL (north_origin_bytes (s) >= 4 * 1024 * 1024);

  /* canopyd's clock reaches the boundary four to five seconds from now
   * (the clock file holds whole seconds): the samples begin before the
   * three seconds measured before it. */
  {
    g_autoptr (GDateTime) real = g_date_time_new_now_utc ();
    gint64 shift = g_date_time_difference (boundary, real) / G_USEC_PER_SEC - 5;

    offset = g_strdup_printf ("%+" G_GINT64_FORMAT, shift);
    g_assert (g_file_set_contents (clock.clock_file, offset, -1, NULL));
    crossing = g_get_monotonic_time () + 5 * G_USEC_PER_SEC
               - g_date_time_get_microsecond (real);
  }
  while (g_get_monotonic_time () < crossing + 4 * G_USEC_PER_SEC)
    {
      Sample sample = { g_get_monotonic_time (), north_origin_bytes (s) };

      g_array_append_val (samples, sample);
      canopy_test_site_pump (100);
    }
  CU_ASSERT_FATAL (bytes_at (samples, crossing - 3 * G_USEC_PER_SEC - G_USEC_PER_SEC / 2) >= 0);
  before = bytes_at (samples, crossing - G_USEC_PER_SEC / 2)
           - bytes_at (samples, crossing - 3 * G_USEC_PER_SEC - G_USEC_PER_SEC / 2);
  after = bytes_at (samples, crossing + 4 * G_USEC_PER_SEC)
          - bytes_at (samples, crossing + G_USEC_PER_SEC);
  rate_before = before * 8.0 / 3.0 / 1e6;
  rate_after = after * 8.0 / 3.0 / 1e6;
  printf ("[North's lead: %.1f Mbit/s before the boundary, %.1f Mbit/s from 1 s after] ",
          rate_before, rate_after);
  /* Reports come about once a second, so a three-second window may hold
   * one report more or less: the bounds are loose, the contrast is not. */
  CU_ASSERT (rate_before > 0 && rate_before <= 8 * 3.5);
  CU_ASSERT (rate_after >= 8 * 4 && rate_after >= 2 * rate_before);
  CU_ASSERT (canopy_test_process_wait_output (s->server, "bandwidth schedule", 5));
  done = canopy_test_site_wait_done (s, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL (done);
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
out:
  fake_clock_clear (&clock);
}

/* The retired deployment's "uninstalled" list once no device is pending,
 * held by @holder; NULL on timeout. */
static JsonArray *
wait_uninstalled (Site *s, JsonNode **holder)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (60) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      JsonObject *d = canopy_test_site_deployment (s, holder);
      JsonArray *list = d != NULL && json_object_has_member (d, "uninstalled")
                          ? json_object_get_array_member (d, "uninstalled") : NULL;
      gboolean pending = list == NULL || json_array_get_length (list) < N_TARGETS;

      for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
        pending = pending
                  || g_str_equal (json_object_get_string_member (
                                    json_array_get_object_element (list, i), "outcome"),
                                  "pending");
      if (!pending)
        return list;
      g_clear_pointer (holder, json_node_unref);
      canopy_test_site_pump (200);
    }
  return NULL;
}

static const char *
outcome_of (JsonArray *list, const char *device_id)
{
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *o = json_array_get_object_element (list, i);

      if (g_strcmp0 (json_object_get_string_member (o, "device"), device_id) == 0)
        return json_object_get_string_member (o, "outcome");
    }
  return NULL;
}

/* Retiring a deployment removes the package from every device where it
 * is unchanged; the copy a user edited is left alone, byte for byte, and
 * reported to the admin with the device; one already gone is said so. */
static void
test_retire_removes_unchanged (void)
{
  CanopyTestSiteOptions options = { .content_size = 4 * 1024 * 1024 + 99 };
  Site *s = &site;
  g_autofree char *content_id = NULL, *id = NULL, *path = NULL;
  g_autofree char *edited = NULL, *gone = NULL, *edited_text = NULL, *after = NULL;
  g_autofree char *profile = NULL, *out = NULL;
  g_autoptr (JsonNode) done = NULL, answer = NULL, holder = NULL, page = NULL;
  guint edited_slot = canopy_test_site_slot (1, 1), gone_slot = canopy_test_site_slot (2, 2);
  JsonArray *list;
  JsonObject *o;
  gsize length;

  if (geteuid () != 0)
    {
      canopy_test_skip ("not root: the agents share one destination, so no copy can be "
                        "changed alone; the retire test did not run");
      return;
    }
  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  content_id = canopy_test_site_register (s);
  id = canopy_test_site_create_deployment (s, content_id, NULL);
  done = canopy_test_site_wait_deployment_done (s, id, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);

  /* A user edits one copy and deletes another. */
  edited = canopy_test_site_copy_path (s, edited_slot);
  gone = canopy_test_site_copy_path (s, gone_slot);
  g_assert (g_file_get_contents (edited, &edited_text, &length, NULL));
  edited_text[length / 2] ^= 0x5a;
  g_assert (g_file_set_contents (edited, edited_text, length, NULL));
  g_assert (g_unlink (gone) == 0);

  /* Through canopyctl, as an admin would. */
  profile = ctl_login (s);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployment-retire", "no-such-id", NULL), 7);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "--json", "deployment-retire", id, NULL), 0);
  path = g_strdup_printf ("/api/v1/deployments/retire?id=%s", id);
  /* Retiring again changes nothing and says the same. */
  answer = canopy_test_site_api (s, "POST", path, NULL, SOUP_STATUS_OK);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_node_get_object (answer),
                                                         "state"),
                          "retired");
  list = wait_uninstalled (s, &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (list);
  for (guint slot = 0; slot < CANOPY_TEST_SITE_N_AGENTS; slot++)
    {
      g_autofree char *copy = NULL;
      const char *outcome;

      if (s->agents[slot] == NULL || !s->installs[slot])
        continue;
      copy = canopy_test_site_copy_path (s, slot);
      outcome = outcome_of (list, s->device_ids[slot]);
      CU_ASSERT_PTR_NOT_NULL_FATAL (outcome);
      if (!g_str_equal (outcome, slot == edited_slot ? "changed"
                                 : slot == gone_slot ? "absent"
                                                     : "removed"))
        fprintf (stderr, "\n    agent slot %u: %s\n", slot, outcome);
      if (slot == edited_slot)
        {
          CU_ASSERT_STRING_EQUAL (outcome, "changed");
        }
      else if (slot == gone_slot)
        {
          CU_ASSERT_STRING_EQUAL (outcome, "absent");
        }
      else
        {
          CU_ASSERT_STRING_EQUAL (outcome, "removed");
          CU_ASSERT (!g_file_test (copy, G_FILE_TEST_EXISTS));
        }
    }
  /* The edited copy is exactly as the user left it. */
  g_assert (g_file_get_contents (edited, &after, &length, NULL));
  CU_ASSERT (memcmp (after, edited_text, length) == 0);
  CU_ASSERT (canopy_test_process_wait_output (s->server, "did not remove its package", 5));
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Retired");
  CANOPY_ASSERT_CONTAINS (out, "(changed)");
  /* The device status says why, where the admin looks at that device. */
  o = devices_page (s, id, "?state=done", &page);
  for (guint i = 0; i < json_array_get_length (json_object_get_array_member (o, "devices")); i++)
    {
      JsonObject *d = json_array_get_object_element (json_object_get_array_member (o, "devices"),
                                                     i);

      if (g_str_equal (json_object_get_string_member (d, "device_id"),
                       s->device_ids[edited_slot]))
        {
          CANOPY_ASSERT_CONTAINS (json_object_get_string_member (d, "error"), "changed");
        }
      else
        {
          CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "error"), "");
        }
    }
  canopy_test_site_stop (s, TRUE);
}

/* Content given an expiry date an hour away keeps its deployment; once
 * canopyd's clock is past it, the deployment is retired and every device
 * removes the package; a new deployment of it is refused. */
static void
test_expired_content_retired (void)
{
  CanopyTestSiteOptions options = { .content_size = 4 * 1024 * 1024 + 99 };
  FakeClock clock = { 0 };
  Site *s = &site;
  g_autofree char *content_id = NULL, *id = NULL, *path = NULL;
  g_autofree char *expires = rfc3339_in (60), *profile = NULL, *out = NULL;
  g_autoptr (JsonNode) done = NULL, answer = NULL, holder = NULL;
  JsonArray *list;
  JsonObject *d;

  if (!begin_with_fake_clock (&options, &clock, FALSE))
    goto out;
  content_id = canopy_test_site_register (s);
  id = canopy_test_site_create_deployment (s, content_id, NULL);
  done = canopy_test_site_wait_deployment_done (s, id, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);

  path = g_strdup_printf ("/api/v1/content/expiry?id=%s", content_id);
  answer = canopy_test_site_api (s, "POST", path, "{\"expires\": \"soon\"}",
                                 SOUP_STATUS_UNPROCESSABLE_ENTITY);
  g_clear_pointer (&answer, json_node_unref);
  profile = ctl_login (s);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "content-expire", content_id, "someday",
                                    NULL),
                   1);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "--json", "content-expire", content_id,
                                    expires, NULL),
                   0);
  g_clear_pointer (&answer, json_node_unref);
  answer = json_from_string (out, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (answer);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_node_get_object (answer),
                                                         "expires"),
                          expires);
  canopy_test_site_pump (2000);
  d = canopy_test_site_deployment (s, &holder);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "state"), "active");
  g_clear_pointer (&holder, json_node_unref);

  set_clock (&clock, "+2h");
  list = wait_uninstalled (s, &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (list);
  d = canopy_test_site_deployment (s, &holder);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (d, "state"), "retired");
  for (guint i = 0; i < json_array_get_length (list); i++)
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_array_get_object_element (list,
                                                                                          i),
                                                           "outcome"),
                            "removed");
  for (guint slot = 0; slot < CANOPY_TEST_SITE_N_AGENTS; slot++)
    if (s->agents[slot] != NULL && s->installs[slot])
      {
        g_autofree char *copy = canopy_test_site_copy_path (s, slot);
        CU_ASSERT (!g_file_test (copy, G_FILE_TEST_EXISTS));
      }
  CU_ASSERT (canopy_test_process_wait_output (s->server, "expired", 5));
  {
    g_autofree char *again = g_strdup_printf (
      "{\"content\": \"%s\", \"groups\": [\"Branch\"], \"destination\": \"%s/copies/x.bin\"}",
      content_id, s->dir);
    g_autoptr (JsonNode) refused = canopy_test_site_api (s, "POST", "/api/v1/deployments", again,
                                                         SOUP_STATUS_UNPROCESSABLE_ENTITY);
    CANOPY_ASSERT_CONTAINS (json_object_get_string_member (json_node_get_object (refused),
                                                           "message"),
                            "expired");
  }
  canopy_test_site_stop (s, TRUE);
out:
  fake_clock_clear (&clock);
}

static char *
cached_content (Site *s, guint office, guint index, const char *content_id)
{
  g_autofree char *name = g_strdup_printf ("agent-%u-%u", office, index);

  return g_build_filename (s->dir, name, "cache", content_id, NULL);
}

/* With <cache max-age='1d'/>, a content unused for two days is removed
 * from an agent's cache, and one used within the day is kept; the
 * agents' clock is moved, not waited for. */
static void
test_cache_max_age (void)
{
  CanopyTestSiteOptions options = { .content_size = 4 * 1024 * 1024 + 99,
                                    .agent_xml = "<cache max-age='1d'/>" };
  FakeClock clock = { 0 };
  Site *s = &site;
  g_autofree char *content_id = NULL;
  g_autofree char *young = NULL, *old = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint young_slot = canopy_test_site_slot (2, 0), old_slot = canopy_test_site_slot (1, 0);

  /* The agents run on the fake clock; canopyd and the origin do not. */
  if (!begin_with_fake_clock (&options, &clock, TRUE))
    goto out;
  content_id = canopy_test_site_deploy (s);
  done = canopy_test_site_wait_done (s, N_TARGETS, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  young = cached_content (s, 2, 0, content_id);
  old = cached_content (s, 1, 0, content_id);
  CU_ASSERT (g_file_test (young, G_FILE_TEST_IS_DIR));
  CU_ASSERT (g_file_test (old, G_FILE_TEST_IS_DIR));

  /* Restarted within the day: the content stays. */
  canopy_test_site_kill_hard (&s->agents[young_slot]);
  s->agents[young_slot] = canopy_test_site_agent_start (s, 2, 0);
  canopy_test_site_pump (1000);
  CU_ASSERT (g_file_test (young, G_FILE_TEST_IS_DIR));

  /* Two days later it goes, when the agent starts and every minute. */
  set_clock (&clock, "+2d");
  canopy_test_site_kill_hard (&s->agents[old_slot]);
  s->agents[old_slot] = canopy_test_site_agent_start (s, 1, 0);
  CU_ASSERT (canopy_test_process_wait_output (s->agents[old_slot], "max-age", 30));
  CU_ASSERT (!g_file_test (old, G_FILE_TEST_EXISTS));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (s->agents[young_slot]), "max-age"));
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
out:
  fake_clock_clear (&clock);
}

CANOPY_TEST_SUITE (operations, "operations", NULL, suite_cleanup,
                   { "per-device status, paged and filtered", test_device_status },
                   { "window holds content until it opens", test_window_holds_content },
                   { "deadline overrides the window", test_deadline_overrides_window },
                   { "WAN schedule changes the lead's rate", test_schedule_changes_rate },
                   { "cache entries expire by max-age", test_cache_max_age },
                   { "retire removes only unchanged copies", test_retire_removes_unchanged },
                   { "expired content is retired", test_expired_content_retired });
