/* The web console in real Chromium (Debian's, headless), driven over the
 * DevTools protocol (tests/cdp.c) against a real site: canopyd, an HTTP
 * origin and two offices of four agents. Also the API the console pages
 * through: devices (offset, limit, sort, search) and the audit log.
 * Screenshots of every page go to tests/webconsole-screenshots/ in the
 * build tree. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/cdp.h"
#include "tests/integration/site.h"

#include <glib/gstdio.h>
#include <string.h>

#define N_AGENTS (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE)

static CanopyTestSite site;

static int
suite_clean (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* Starts the site once for the suite's tests; FALSE when it cannot run. */
static gboolean
site_ready (void)
{
  CanopyTestSiteOptions options = { 0 };
  gint64 deadline;

  if (site.server != NULL)
    return TRUE;
  if (!canopy_test_site_available ())
    {
      canopy_test_skip ("the plugins a site needs were not built");
      return FALSE;
    }
  options.content_size = canopy_test_instrumented () ? CANOPY_TEST_SITE_VALGRIND_CONTENT_SIZE
                                                     : 16 * 1024 * 1024 + 4321;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_start_agents (&site);
  deadline = g_get_monotonic_time () + canopy_test_timeout (60) * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) all = canopy_test_site_api (&site, "GET", "/api/v1/devices", NULL,
                                                       200);

      if (json_object_get_int_member (json_node_get_object (all), "total") == N_AGENTS)
        return TRUE;
      canopy_test_site_pump (250);
    }
  CU_FAIL ("the site's agents did not all enrol");
  return FALSE;
}

static JsonArray *
devices_of (JsonNode *answer)
{
  return json_object_get_array_member (json_node_get_object (answer), "devices");
}

static const char *
device_name (JsonArray *devices, guint i)
{
  return json_object_get_string_member (json_array_get_object_element (devices, i), "name");
}

static void
test_devices_paged (void)
{
  g_autoptr (JsonNode) first = NULL, last = NULL, all = NULL, found = NULL, reverse = NULL;
  g_autofree char *search = NULL;
  g_autofree char *bad = NULL;
  JsonArray *page;

  if (!site_ready ())
    return;
  all = canopy_test_site_api (&site, "GET", "/api/v1/devices?sort=name", NULL, 200);
  CU_ASSERT_EQUAL (json_array_get_length (devices_of (all)), N_AGENTS);
  for (guint i = 1; i < N_AGENTS; i++)
    CU_ASSERT (g_utf8_collate (device_name (devices_of (all), i - 1),
                               device_name (devices_of (all), i)) <= 0);
  first = canopy_test_site_api (&site, "GET", "/api/v1/devices?sort=name&offset=0&limit=3", NULL,
                                200);
  page = devices_of (first);
  CU_ASSERT_EQUAL (json_array_get_length (page), 3);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (first), "total"), N_AGENTS);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (first), "limit"), 3);
  CU_ASSERT_STRING_EQUAL (device_name (page, 2), device_name (devices_of (all), 2));
  last = canopy_test_site_api (&site, "GET", "/api/v1/devices?sort=name&offset=6&limit=3", NULL,
                               200);
  CU_ASSERT_EQUAL (json_array_get_length (devices_of (last)), N_AGENTS - 6);
  CU_ASSERT_STRING_EQUAL (device_name (devices_of (last), 0), device_name (devices_of (all), 6));
  reverse = canopy_test_site_api (&site, "GET", "/api/v1/devices?sort=-name&limit=1", NULL, 200);
  CU_ASSERT_STRING_EQUAL (device_name (devices_of (reverse), 0),
                          device_name (devices_of (all), N_AGENTS - 1));
  /* Search is case-insensitive, over name, ID, office, version, address. */
  {
    const char *id = json_object_get_string_member (
        json_array_get_object_element (devices_of (all), 4), "device_id");
    g_autofree char *upper = g_ascii_strup (id, -1);
    g_autoptr (JsonNode) north = NULL;

    search = g_strdup_printf ("/api/v1/devices?search=%s", upper);
    found = canopy_test_site_api (&site, "GET", search, NULL, 200);
    CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (found), "total"), 1);
    CU_ASSERT_STRING_EQUAL (device_name (devices_of (found), 0),
                            device_name (devices_of (all), 4));
    north = canopy_test_site_api (&site, "GET", "/api/v1/devices?search=nORTH&limit=2", NULL,
                                  200);
    CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (north), "total"),
                     CANOPY_TEST_SITE_AGENTS_PER_OFFICE);
    CU_ASSERT_EQUAL (json_array_get_length (devices_of (north)), 2);
  }
  bad = canopy_test_site_request (&site, "GET", "/api/v1/devices?limit=0", 400);
  CANOPY_ASSERT_CONTAINS (bad, "is not a whole number from 1 to 1000");
  g_free (g_steal_pointer (&bad));
  bad = canopy_test_site_request (&site, "GET", "/api/v1/devices?limit=1001", 400);
  CANOPY_ASSERT_CONTAINS (bad, "invalid-value");
  g_free (g_steal_pointer (&bad));
  bad = canopy_test_site_request (&site, "GET", "/api/v1/devices?offset=-1", 400);
  CANOPY_ASSERT_CONTAINS (bad, "offset");
  g_free (g_steal_pointer (&bad));
  bad = canopy_test_site_request (&site, "GET", "/api/v1/devices?sort=colour", 400);
  CANOPY_ASSERT_CONTAINS (bad, "colour");
}

static void
test_audit_paged (void)
{
  g_autoptr (JsonNode) page = NULL, next = NULL, filtered = NULL;
  g_autofree char *bad = NULL;
  JsonArray *entries;
  JsonObject *object;
  gint64 total;

  if (!site_ready ())
    return;
  /* Three changes of our own, so there is something to page through. */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr (JsonNode) saved = canopy_test_site_api (
          &site, "PUT", "/api/v1/settings",
          i % 2 == 0 ? "{\"no_office_clients\": \"refuse\"}" : "{\"no_office_clients\": \"origin\"}",
          200);
    }
  page = canopy_test_site_api (&site, "GET", "/api/v1/audit?limit=2", NULL, 200);
  object = json_node_get_object (page);
  total = json_object_get_int_member (object, "total");
  entries = json_object_get_array_member (object, "entries");
  CU_ASSERT (total >= 3);
  CU_ASSERT_EQUAL (json_array_get_length (entries), 2);
  /* Newest first: the last change heads the log. */
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (json_array_get_object_element (entries, 0),
                                                         "action"),
                          "settings.no-office-clients");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (json_array_get_object_element (entries, 0),
                                                         "actor"),
                          "admin");
  CU_ASSERT (json_object_get_int_member (json_array_get_object_element (entries, 0), "id")
             > json_object_get_int_member (json_array_get_object_element (entries, 1), "id"));
  next = canopy_test_site_api (&site, "GET", "/api/v1/audit?offset=2&limit=1", NULL, 200);
  CU_ASSERT (json_object_get_int_member (
                 json_array_get_object_element (
                     json_object_get_array_member (json_node_get_object (next), "entries"), 0),
                 "id")
             < json_object_get_int_member (json_array_get_object_element (entries, 1), "id"));
  filtered = canopy_test_site_api (&site, "GET",
                                   "/api/v1/audit?action=settings.no-office-clients", NULL, 200);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (filtered), "total"), 3);
  bad = canopy_test_site_request (&site, "GET", "/api/v1/audit?limit=x", 400);
  CANOPY_ASSERT_CONTAINS (bad, "is not a whole number");
}

/* The browser test's state: what a step needs to report a failure. */
typedef struct {
  CanopyCdp *cdp;
  char *shots;     /* the screenshot directory */
  char *downloads;
  guint shot;
} Browser;

/* Runs a browser step; on failure says why, saves a screenshot and
 * returns FALSE from the scenario, whose caller still stops Chromium. */
#define STEP(b, expr)                                                             \
  do                                                                              \
    {                                                                             \
      g_autoptr (GError) step_error = NULL;                                       \
      GError **E = &step_error;                                                   \
      if (!(expr))                                                                \
        {                                                                         \
          fprintf (stderr, "\n    %s failed: %s\n", #expr,                      \
                   step_error != NULL ? step_error->message : "(no error)");      \
          shoot (b, "failed");                                                    \
          CU_FAIL (#expr);                                                        \
          return FALSE;                                                           \
        }                                                                         \
    }                                                                             \
  while (0)

static void
shoot (Browser *b, const char *name)
{
  g_autofree char *file = g_strdup_printf ("%02u-%s.png", ++b->shot, name);
  g_autofree char *path = g_build_filename (b->shots, file, NULL);
  g_autoptr (GError) error = NULL;

  if (!canopy_cdp_screenshot (b->cdp, path, &error))
    fprintf (stderr, "\n    screenshot %s: %s\n", path, error->message);
  CU_ASSERT_PTR_NULL (error);
}

static gboolean
wait_for (Browser *b, const char *expression, guint seconds, GError **error)
{
  return canopy_cdp_wait_for (b->cdp, expression, canopy_test_timeout (seconds), error);
}

static gboolean
open_page (Browser *b, const char *page, GError **error)
{
  g_autofree char *link = g_strdup_printf ("#nav a[data-page=\"%s\"]", page);
  g_autofree char *shown = g_strdup_printf ("!document.getElementById('page-%s').hidden", page);

  return canopy_cdp_click (b->cdp, link, error) && wait_for (b, shown, 10, error);
}

static gboolean
type_token (Browser *b, const char *token, GError **error)
{
  return canopy_cdp_type (b->cdp, "#token", token, error) && canopy_cdp_key (b->cdp, "Enter", error);
}

/* Wrong credentials are refused, the admin's token signs in; the token is
 * in the tab's sessionStorage, never in the address. */
/* Asks the browser for @languages (Accept-Language and navigator.languages). */
static gboolean
set_languages (Browser *b, const char *languages, GError **error)
{
  g_autofree char *agent = canopy_cdp_eval_string (b->cdp, "navigator.userAgent", error);
  g_autoptr (JsonBuilder) params = json_builder_new ();
  g_autoptr (JsonNode) done = NULL;

  if (agent == NULL)
    return FALSE;
  json_builder_begin_object (params);
  json_builder_set_member_name (params, "userAgent");
  json_builder_add_string_value (params, agent);
  json_builder_set_member_name (params, "acceptLanguage");
  json_builder_add_string_value (params, languages);
  json_builder_end_object (params);
  done = canopy_cdp_call (b->cdp, "Network.setUserAgentOverride", json_builder_get_root (params),
                          TRUE, error);
  return done != NULL;
}

/* A browser set to German gets the sign-in page in German, from
 * po/de.po (messages-l10n.js); a text de.po lacks would show in English.
 * The same in French. */
static gboolean
sign_in_page_translated (Browser *b)
{
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u/console/", site.console_port);

  STEP (b, canopy_cdp_navigate (b->cdp, url, E));
  STEP (b, set_languages (b, "de-DE,de", E));
  STEP (b, canopy_cdp_navigate (b->cdp, url, E));
  STEP (b, wait_for (b, "navigator.languages[0] === 'de-DE' && "
                        "document.documentElement.lang === 'de' && "
                        "document.querySelector('#page-signin h2').textContent === 'Anmelden' && "
                        "document.querySelector('label[for=token]').textContent === "
                        "'Admin-Token' && "
                        "document.querySelector('#page-signin p').textContent"
                        ".startsWith('Fügen Sie Ihr Admin-Token ein')", 10, E));
  shoot (b, "sign-in-german");
  /* French from po/fr.po; Swiss French falls back to it. */
  STEP (b, set_languages (b, "fr-CH,fr", E));
  STEP (b, canopy_cdp_navigate (b->cdp, url, E));
  STEP (b, wait_for (b, "document.documentElement.lang === 'fr' && "
                        "document.querySelector('#page-signin h2').textContent === 'Connexion' && "
                        "document.querySelector('#signin-form button').textContent === "
                        "'Se connecter'", 10, E));
  STEP (b, set_languages (b, "en-US,en", E));
  return TRUE;
}

static gboolean
sign_in (Browser *b)
{
  const char *wrong = "cnp_0123456789abcdef_"
                      "0000000000000000000000000000000000000000000000000000000000000000";
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u/console/", site.console_port);
  g_autofree char *key_path = g_build_filename (site.state, "shared-key", NULL);
  g_autofree char *key = NULL;

  STEP (b, canopy_cdp_navigate (b->cdp, url, E));
  /* Every uncaught error of the page's script from now on is a failure
   * (the page is never reloaded, so the collector stays). */
  STEP (b, canopy_cdp_eval (b->cdp, "window.pageErrors = [];"
                                    " addEventListener('error', (e) => pageErrors.push(e.message));"
                                    " addEventListener('unhandledrejection', (e) => pageErrors.push("
                                    "String(e.reason && e.reason.message || e.reason)))", E)
                 != NULL);
  STEP (b, wait_for (b, "document.activeElement && document.activeElement.id === 'token'", 10, E));
  shoot (b, "sign-in");
  STEP (b, type_token (b, wrong, E));
  STEP (b, wait_for (b, "!document.getElementById('signin-error').hidden && "
                        "document.getElementById('signin-error').textContent"
                        ".includes('The server refused this token')", 20, E));
  STEP (b, wait_for (b, "document.getElementById('nav').hidden && "
                        "sessionStorage.getItem('canopy-token') === null", 5, E));
  shoot (b, "wrong-token");
  /* The devices' shared key is not a credential of the console. */
  if (g_file_get_contents (key_path, &key, NULL, NULL))
    {
      STEP (b, type_token (b, g_strstrip (key), E));
      STEP (b, wait_for (b, "document.getElementById('signin-error').textContent"
                            ".includes('This is not an admin token')", 10, E));
    }
  STEP (b, type_token (b, site.token, E));
  STEP (b, wait_for (b, "!document.getElementById('nav').hidden && document.getElementById("
                        "'whoami').textContent.startsWith('Signed in as ')", 20, E));
  STEP (b, wait_for (b, "document.getElementById('server-name').value !== ''", 10, E));
  {
    g_autofree char *href = canopy_cdp_eval_string (b->cdp, "location.href", NULL);

    CU_ASSERT_PTR_NULL (strstr (href != NULL ? href : "", "cnp_"));
  }
  shoot (b, "settings");
  return TRUE;
}

static gboolean
browse_devices (Browser *b)
{
  STEP (b, open_page (b, "devices", E));
  STEP (b, wait_for (b, "document.querySelectorAll('#devices tbody tr').length === 8 && "
                        "document.getElementById('devices-range').textContent.endsWith('of 8')",
                     20, E));
  shoot (b, "devices");
  /* One device found by a part of its name, typed in the search box. */
  STEP (b, canopy_cdp_eval (b->cdp, "window.wanted = document.querySelector("
                                    "'#devices tbody tr:nth-child(3) td').textContent", E) != NULL);
  STEP (b, canopy_cdp_type (b->cdp, "#devices-search", "", E));
  {
    g_autofree char *wanted = canopy_cdp_eval_string (b->cdp, "window.wanted", NULL);

    STEP (b, wanted != NULL && canopy_cdp_type (b->cdp, "#devices-search", wanted, E));
  }
  STEP (b, wait_for (b, "document.querySelectorAll('#devices tbody tr').length === 1 && "
                        "document.querySelector('#devices tbody td').textContent === window.wanted",
                     20, E));
  shoot (b, "devices-search");
  return TRUE;
}

/* A spreadsheet with a mistake on line 3: the problem is shown at its
 * line, and nothing changes. */
static gboolean
upload_topology (Browser *b)
{
  g_autofree char *csv = g_build_filename (site.dir, "topology-mistake.csv", NULL);

  g_assert (g_file_set_contents (csv, "office,parent,type,subnets,wan_rate\n"
                                      "North,,Default,127.0.1.0/24,\n"
                                      "South,,Default,127.0.2.0/33,\n", -1, NULL));
  STEP (b, open_page (b, "offices", E));
  STEP (b, wait_for (b, "document.querySelector('#offices tbody').textContent.includes('North')",
                     10, E));
  STEP (b, canopy_cdp_set_file (b->cdp, "#topology-file", csv, E));
  STEP (b, canopy_cdp_click (b->cdp, "#topology-form button[type=submit]", E));
  STEP (b, wait_for (b, "(() => { const p = document.querySelector("
                        "'#topology-result li[data-line=\"3\"]'); return p && "
                        "/^line 3\\b/i.test(p.textContent) && p.textContent.includes('127.0.2.0/33') && "
                        "document.getElementById('topology-result').getAttribute('role') === "
                        "'alert'; })()", 20, E));
  shoot (b, "topology-mistake");
  return TRUE;
}

static gboolean
register_content (Browser *b)
{
  STEP (b, open_page (b, "content", E));
  STEP (b, canopy_cdp_type (b->cdp, "#content-name", "Package", E));
  STEP (b, canopy_cdp_type (b->cdp, "#content-version", "1.0", E));
  STEP (b, canopy_cdp_type (b->cdp, "#content-location", site.origin_url, E));
  STEP (b, canopy_cdp_click (b->cdp, "#content-register", E));
  /* While the server reads, the page says so. */
  STEP (b, wait_for (b, "document.getElementById('content-result').textContent"
                        ".startsWith('Registered Package 1.0') || document.getElementById("
                        "'content-result').textContent.includes('is reading the package')",
                     20, E));
  STEP (b, wait_for (b, "document.getElementById('content-result').textContent"
                        ".startsWith('Registered Package 1.0')", 120, E));
  STEP (b, wait_for (b, "document.querySelector('#content tbody').textContent.includes('Package')",
                     10, E));
  shoot (b, "content");
  return TRUE;
}

/* Deployed to group Branch; the page is left alone while the progress
 * reaches 100 %, and a marker set in it shows it was never reloaded. */
static gboolean
deploy (Browser *b)
{
  g_autofree char *destination = g_build_filename (site.dir, "copies", "package.bin", NULL);

  STEP (b, open_page (b, "deployments", E));
  STEP (b, wait_for (b, "document.querySelectorAll('#deploy-content option').length === 1", 10,
                     E));
  STEP (b, canopy_cdp_type (b->cdp, "#deploy-groups", "Branch", E));
  STEP (b, canopy_cdp_type (b->cdp, "#deploy-destination", destination, E));
  STEP (b, canopy_cdp_click (b->cdp, "#deploy-background", E));
  STEP (b, canopy_cdp_eval (b->cdp, "window.notReloaded = true", E) != NULL);
  STEP (b, canopy_cdp_click (b->cdp, "#deploy-form button[type=submit]", E));
  STEP (b, wait_for (b, "document.querySelectorAll('#deployments .deployment').length === 1", 20,
                     E));
  STEP (b, canopy_cdp_click (b->cdp, "#deployments details summary", E));
  STEP (b, wait_for (b, "document.querySelector('#deployments details').open && "
                        "document.querySelector('#deployments details div').textContent !== ''",
                     20, E));
  shoot (b, "deployment-started");
  STEP (b, wait_for (b, "document.querySelector('#deployments .percent').textContent.trim() "
                        "=== '100 %' && window.notReloaded === true", 300, E));
  STEP (b, wait_for (b, "document.querySelector('#deployments h3').textContent"
                        ".includes('8 of 8 devices done')", 10, E));
  /* Per device: every one done, at 100 % (or the per-office fallback). */
  STEP (b, wait_for (b, "(() => { const d = document.querySelector('#deployments details div');"
                        " if (d.textContent.includes('per office only')) return true;"
                        " const rows = d.querySelectorAll('tbody tr'); return rows.length === 8 &&"
                        " [...rows].every((r) => r.textContent.includes('100 %') &&"
                        " r.cells[2].textContent.startsWith('done')); })()", 30, E));
  shoot (b, "deployment-done");
  /* The box ticked on the page reached the server. */
  {
    g_autoptr (JsonNode) list = canopy_test_site_api (&site, "GET", "/api/v1/deployments", NULL,
                                                      200);
    JsonArray *array = list != NULL ? json_node_get_array (list) : NULL;
    JsonObject *d = array != NULL && json_array_get_length (array) == 1
                    ? json_array_get_object_element (array, 0) : NULL;

    CU_ASSERT_PTR_NOT_NULL (d);
    if (d == NULL)
      return FALSE;
    CU_ASSERT (json_object_get_boolean_member_with_default (d, "background", FALSE));
  }
  return TRUE;
}

/* Retired from the page, after its confirmation; the server agrees. */
static gboolean
retire (Browser *b)
{
  STEP (b, open_page (b, "deployments", E));
  STEP (b, canopy_cdp_eval (b->cdp, "window.confirm = (text) => (window.asked = text, true)",
                            E) != NULL);
  STEP (b, canopy_cdp_click (b->cdp, "#deployments .retire", E));
  STEP (b, wait_for (b, "window.asked && window.asked.startsWith('Retire deployment') && "
                        "document.querySelector('#deployments h3').textContent"
                        ".endsWith('retired') && !document.querySelector('#deployments .retire')",
                     20, E));
  shoot (b, "deployment-retired");
  {
    g_autoptr (JsonNode) list = canopy_test_site_api (&site, "GET", "/api/v1/deployments", NULL,
                                                      200);
    JsonArray *array = list != NULL ? json_node_get_array (list) : NULL;
    JsonObject *d = array != NULL && json_array_get_length (array) == 1
                    ? json_array_get_object_element (array, 0) : NULL;

    CU_ASSERT_PTR_NOT_NULL (d);
    if (d == NULL)
      return FALSE;
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member_with_default (d, "state", ""),
                            "retired");
  }
  return TRUE;
}

/* The report's rows without their seventh column, last_seen. */
static char *
without_last_seen (const char *csv)
{
  g_auto (GStrv) lines = g_strsplit (csv, "\n", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) cells = g_strsplit (lines[i], ",", -1);

      for (guint c = 0; cells[c] != NULL; c++)
        if (c != 6)
          g_string_append_printf (out, "%s%s", cells[c], cells[c + 1] != NULL ? "," : "");
      g_string_append_c (out, '\n');
    }
  return g_string_free (out, FALSE);
}

static gboolean
health_and_licences (Browser *b)
{
  g_autofree char *saved = g_build_filename (b->downloads, "activated-licences.csv", NULL);
  g_autofree char *from_api = NULL;
  g_autofree char *downloaded = NULL;
  gint64 deadline;

  STEP (b, open_page (b, "health", E));
  STEP (b, canopy_cdp_click (b->cdp, "#health-run", E));
  STEP (b, wait_for (b, "!document.getElementById('health').hidden && document.querySelector("
                        "'#health tbody').textContent.includes('backend')", 30, E));
  shoot (b, "health");
  STEP (b, open_page (b, "licences", E));
  STEP (b, canopy_cdp_click (b->cdp, "#licences-download", E));
  STEP (b, wait_for (b, "document.getElementById('licences-result').textContent"
                        ".startsWith('Downloaded activated-licences.csv')", 20, E));
  shoot (b, "licences");
  deadline = g_get_monotonic_time () + canopy_test_timeout (20) * G_USEC_PER_SEC;
  while (!g_file_test (saved, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (100);
  canopy_test_site_pump (500);
  CU_ASSERT (g_file_get_contents (saved, &downloaded, NULL, NULL));
  from_api = canopy_test_site_get_text (&site, "/api/v1/licences/report.csv");
  CU_ASSERT (g_str_has_prefix (downloaded != NULL ? downloaded : "",
                               "device_id,name,office,address,agent_version,activated,"
                               "last_seen,licence"));
  /* What the API serves, but for last_seen, which moves on as the agents
   * report; and every device of the site holds a licence. */
  {
    g_autofree char *a = without_last_seen (downloaded != NULL ? downloaded : "");
    g_autofree char *c = without_last_seen (from_api);

    if (g_strcmp0 (a, c) != 0)
      fprintf (stderr, "\n    downloaded:\n%s\n    from the API:\n%s\n", a, c);
    CU_ASSERT_STRING_EQUAL (a, c);
  }
  for (guint slot = 0; slot < N_AGENTS; slot++)
    CANOPY_ASSERT_CONTAINS (downloaded, site.device_ids[slot]);
  return TRUE;
}

/* An auditor added from the page: its token is shown once, then gone. */
static gboolean
add_admin (Browser *b)
{
  STEP (b, open_page (b, "admins", E));
  STEP (b, wait_for (b, "document.querySelector('#admins tbody').textContent"
                        ".includes('site-admin')", 10, E));
  STEP (b, canopy_cdp_type (b->cdp, "#admin-name", "reader", E));
  STEP (b, canopy_cdp_click (b->cdp, "#admin-form button[type=submit]", E));
  STEP (b, wait_for (b, "/^cnp_[0-9a-f]{16}_[0-9a-f]{64}$/.test(document.getElementById("
                        "'admin-token').value) && document.querySelector('#admins tbody')"
                        ".textContent.includes('reader')", 20, E));
  shoot (b, "admin-added");
  return TRUE;
}

static gboolean
audit_and_sign_out (Browser *b)
{
  STEP (b, open_page (b, "audit", E));
  STEP (b, wait_for (b, "(() => { const t = document.querySelector('#audit tbody').textContent;"
                        " return t.includes('deployment-created') && "
                        "t.includes('content-registered') && t.includes('admin-added'); })()",
                     20, E));
  STEP (b, wait_for (b, "document.getElementById('admin-token').value === ''", 5, E));
  shoot (b, "audit");
  /* A narrow window: nothing wider than the window but the tables, which
   * scroll in their own box. */
  STEP (b, canopy_cdp_set_viewport (b->cdp, 390, 800, E));
  STEP (b, open_page (b, "deployments", E));
  STEP (b, wait_for (b, "document.documentElement.scrollWidth <= window.innerWidth", 10, E));
  shoot (b, "narrow-deployments");
  STEP (b, canopy_cdp_set_viewport (b->cdp, 1280, 800, E));
  STEP (b, canopy_cdp_click (b->cdp, "#signout", E));
  STEP (b, wait_for (b, "!document.getElementById('page-signin').hidden && "
                        "document.getElementById('nav').hidden && "
                        "sessionStorage.getItem('canopy-token') === null", 10, E));
  shoot (b, "signed-out");
  {
    g_autofree char *errors = canopy_cdp_eval_string (b->cdp, "JSON.stringify(pageErrors)", NULL);

    CU_ASSERT_STRING_EQUAL (errors != NULL ? errors : "(none read)", "[]");
  }
  return TRUE;
}

/* Screenshots of an earlier run would mislead whoever reads this one's. */
static void
remove_screenshots (const char *dir)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    if (g_str_has_suffix (name, ".png"))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);

        g_unlink (path);
      }
}

static void
test_browser (void)
{
  Browser b = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;

  if (!site_ready ())
    return;
  dir = canopy_test_make_tmpdir ("webconsole");
  b.downloads = g_build_filename (dir, "downloads", NULL);
  b.shots = canopy_test_build_path ("tests", "webconsole-screenshots", NULL);
  g_assert (g_mkdir_with_parents (b.downloads, 0700) == 0);
  g_assert (g_mkdir_with_parents (b.shots, 0755) == 0);
  remove_screenshots (b.shots);
  /* No Chromium is a failure: CI installs it (tools/install-deps.sh). */
  b.cdp = canopy_cdp_start (dir, b.downloads, &error);
  if (b.cdp == NULL)
    fprintf (stderr, "\n    Chromium cannot start: %s\n", error->message);
  CU_ASSERT_PTR_NOT_NULL (b.cdp);
  if (b.cdp != NULL && sign_in_page_translated (&b) && sign_in (&b) && browse_devices (&b)
      && upload_topology (&b) && register_content (&b) && deploy (&b))
    {
      canopy_test_site_assert_copy (&site);
      if (retire (&b) && health_and_licences (&b) && add_admin (&b))
        audit_and_sign_out (&b);
    }
  if (b.cdp != NULL)
    {
      guint left = canopy_cdp_stop (b.cdp);

      if (left > 0)
        fprintf (stderr, "\n    %u Chromium helper(s) outlived the browser; killed\n", left);
      canopy_cdp_free (b.cdp);
    }
  printf ("\n    screenshots: %s\n", b.shots);
  g_free (b.shots);
  g_free (b.downloads);
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (webconsole, "webconsole", NULL, suite_clean,
                   { "devices paged, sorted and searched", test_devices_paged },
                   { "audit log paged, newest first", test_audit_paged },
                   { "whole job in Chromium", test_browser })
