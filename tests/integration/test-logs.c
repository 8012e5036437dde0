/* What an admin troubleshoots with (issue 21), from the real canopyd and
 * agents: canopyd logs one line when a deployment starts and one summary
 * when it is over, each agent its start, sources and completion with its
 * rate, under journald with the fields to filter on (read from a journal
 * socket of the test's own, in journald's native protocol), and outside
 * journald with the date on every line. */
#include "build-config.h"

#include "tests/integration/site.h"
#include "tests/journal.h"
#include "lib/log.h"

#include <string.h>

typedef CanopyTestSite Site;

static Site site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* The entries with MESSAGE_ID @id about deployment @deployment (and
 * device @device, if not NULL), once there are @n of them or the time is up. */
static GPtrArray *
wait_entries (CanopyTestJournal *journal, const char *id, const char *deployment,
              const char *device, guint n)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (30) * G_USEC_PER_SEC;
  GPtrArray *found = NULL;

  do
    {
      g_clear_pointer (&found, g_ptr_array_unref);
      found = device != NULL
                ? canopy_test_journal_find (journal, "MESSAGE_ID", id, "CANOPY_DEPLOYMENT",
                                            deployment, "CANOPY_DEVICE", device, NULL)
                : canopy_test_journal_find (journal, "MESSAGE_ID", id, "CANOPY_DEPLOYMENT",
                                            deployment, NULL);
      if (found->len < n)
        canopy_test_site_pump (100);
    }
  while (found->len < n && g_get_monotonic_time () < deadline);
  return found;
}

static const char *
field (GPtrArray *entries, const char *name)
{
  return entries->len > 0 ? g_hash_table_lookup (g_ptr_array_index (entries, 0), name) : NULL;
}

static void
check_server_lines (CanopyTestJournal *journal, const char *id, const char *content_id)
{
  g_autoptr (GPtrArray) created = wait_entries (journal, CANOPY_LOG_DEPLOYMENT_CREATED, id,
                                                NULL, 1);
  g_autoptr (GPtrArray) finished = wait_entries (journal, CANOPY_LOG_DEPLOYMENT_FINISHED, id,
                                                 NULL, 1);
  g_autoptr (GPtrArray) per_device = canopy_test_journal_find (journal, "MESSAGE_ID",
                                                               CANOPY_LOG_DEVICE_DONE, NULL);
  g_autoptr (GPtrArray) started = canopy_test_journal_find (
    journal, "MESSAGE_ID", CANOPY_LOG_PROGRAM_STARTED, "SYSLOG_IDENTIFIER", "canopyd", NULL);
  g_autofree char *destination = g_strdup_printf ("destination %s/copies/package.bin", site.dir);

  /* One start line: what, to whom, where, by whom. */
  CU_ASSERT_EQUAL_FATAL (created->len, 1);
  CU_ASSERT_STRING_EQUAL (field (created, "CANOPY_CONTENT"), content_id);
  CU_ASSERT_STRING_EQUAL (field (created, "PRIORITY"), "5");
  CU_ASSERT_STRING_EQUAL (field (created, "GLIB_DOMAIN"), "canopyd-distributor");
  CANOPY_ASSERT_CONTAINS (field (created, "MESSAGE"), "created by admin site-admin");
  CANOPY_ASSERT_CONTAINS (field (created, "MESSAGE"), "\"Package\" 1.0");
  CANOPY_ASSERT_CONTAINS (field (created, "MESSAGE"), "to group Branch");
  CANOPY_ASSERT_CONTAINS (field (created, "MESSAGE"), destination);

  /* One summary: devices, WAN bytes and savings per office, duration. */
  CU_ASSERT_EQUAL_FATAL (finished->len, 1);
  printf ("[%s] ", field (finished, "MESSAGE"));
  CU_ASSERT_STRING_EQUAL (field (finished, "CANOPY_CONTENT"), content_id);
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), "finished after ");
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), ": 8 of 8 devices done, 0 failed");
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), "North: ");
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), "South: ");
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), " for 4 devices, ");
  CANOPY_ASSERT_CONTAINS (field (finished, "MESSAGE"), "% saved");

  /* A line per device is debug, not shown without --debug. */
  CU_ASSERT_EQUAL (per_device->len, 0);
  CU_ASSERT_EQUAL (started->len, 1);
}

/* Office 1's agents log to the journal: start, completion, with the
 * deployment, content, device and office to filter on. */
static void
check_agent_lines (CanopyTestJournal *journal, const char *id, const char *content_id)
{
  guint leads = 0;

  for (guint i = 0; i < CANOPY_TEST_SITE_AGENTS_PER_OFFICE; i++)
    {
      const char *device = site.device_ids[canopy_test_site_slot (1, i)];
      g_autoptr (GPtrArray) started = NULL;
      g_autoptr (GPtrArray) done = NULL;
      g_autoptr (GPtrArray) all = NULL;
      g_autoptr (GPtrArray) changed = NULL;

      CU_ASSERT_PTR_NOT_NULL_FATAL (device);
      started = wait_entries (journal, CANOPY_LOG_FETCH_STARTED, id, device, 1);
      done = wait_entries (journal, CANOPY_LOG_FETCH_DONE, id, device, 1);
      all = canopy_test_journal_find (journal, "CANOPY_DEVICE", device, NULL);
      CU_ASSERT_EQUAL_FATAL (started->len, 1);
      CU_ASSERT_EQUAL_FATAL (done->len, 1);
      if (i == 0)
        printf ("[%s / %s] ", field (started, "MESSAGE"), field (done, "MESSAGE"));
      CU_ASSERT_STRING_EQUAL (field (started, "CANOPY_CONTENT"), content_id);
      CU_ASSERT_STRING_EQUAL (field (started, "CANOPY_OFFICE"), "North");
      CU_ASSERT_STRING_EQUAL (field (started, "GLIB_DOMAIN"), "canopy-agent-fetch");
      CU_ASSERT_STRING_EQUAL (field (started, "SYSLOG_IDENTIFIER"), "canopy-agent");
      CANOPY_ASSERT_CONTAINS (field (started, "MESSAGE"), "fetching \"Package\" 1.0");
      CANOPY_ASSERT_CONTAINS (field (started, "MESSAGE"), "; sources: ");
      CU_ASSERT_STRING_EQUAL (field (done, "CANOPY_CONTENT"), content_id);
      CU_ASSERT_STRING_EQUAL (field (done, "CANOPY_OFFICE"), "North");
      CANOPY_ASSERT_CONTAINS (field (done, "MESSAGE"), "\"Package\" 1.0 is at ");
      CANOPY_ASSERT_CONTAINS (field (done, "MESSAGE"), " fetched in ");
      CANOPY_ASSERT_CONTAINS (field (done, "MESSAGE"), "/s; from ");
      /* Everything this device logged about the deployment says which. */
      for (guint e = 0; e < all->len; e++)
        CU_ASSERT_STRING_EQUAL (g_hash_table_lookup (g_ptr_array_index (all, e),
                                                     "CANOPY_DEPLOYMENT"), id);
      changed = canopy_test_journal_find (journal, "MESSAGE_ID", CANOPY_LOG_FETCH_SOURCES,
                                          "CANOPY_DEVICE", device, NULL);
      if (strstr (field (started, "MESSAGE"), "as its office's lead") != NULL
          || changed->len > 0)
        leads++;
    }
  /* Someone crossed the WAN for North, and said so. */
  CU_ASSERT (leads >= 1);
}

/* South's agents log plain text: each line starts with the date and time. */
static void
check_plain_text (void)
{
  CanopyTestProcess *agent = site.agents[canopy_test_site_slot (2, 0)];
  const char *output;
  g_autoptr (GRegex) dated = NULL;

  /* The agent's output is read as the test's main loop runs: the server
   * may hear of the completion before the test has read the line. */
  CU_ASSERT (canopy_test_process_wait_output (agent, "\" 1.0 is at ", 30));
  output = canopy_test_process_output (agent);
  dated = g_regex_new (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z canopy-agent-fetch-"
    "Message: \"Package\" 1\\.0 is at .* fetched in ",
    G_REGEX_MULTILINE, 0, NULL);

  if (!g_regex_match (dated, output, 0, NULL))
    fprintf (stderr, "\n    no dated completion line in: %s\n", output);
  CU_ASSERT (g_regex_match (dated, output, 0, NULL));
}

static void
test_deployment_lines (void)
{
  CanopyTestSiteOptions options = { .content_size = 8 * 1024 * 1024 + 12345 };
  g_autofree char *dir = canopy_test_make_tmpdir ("logs-journal");
  g_autoptr (CanopyTestJournal) journal = canopy_test_journal_new (dir);
  g_autofree char *env = g_strdup_printf ("%s=%s", CANOPY_LOG_JOURNAL_SOCKET_ENV,
                                          canopy_test_journal_get_path (journal));
  const char *to_journal[] = { "env", env, NULL };
  g_autofree char *content_id = NULL;
  g_autofree char *id = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!canopy_test_site_available ())
    return;
  options.prefix[0] = to_journal;
  options.prefix[1] = to_journal;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_start_agents (&site);
  content_id = canopy_test_site_register (&site);
  id = canopy_test_site_create_deployment (&site, content_id, NULL);
  done = canopy_test_site_wait_deployment_done (&site, id, 8, 240);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (&site);
  check_server_lines (journal, id, content_id);
  check_agent_lines (journal, id, content_id);
  check_plain_text ();
  CU_ASSERT_EQUAL (canopy_test_journal_count_errors (journal), 0);
  canopy_test_site_stop (&site, TRUE);
  /* Stopping is an event of its own. */
  {
    g_autoptr (GPtrArray) stopped = canopy_test_journal_find (
      journal, "MESSAGE_ID", CANOPY_LOG_PROGRAM_STOPPED, "SYSLOG_IDENTIFIER", "canopyd", NULL);

    CU_ASSERT_EQUAL (stopped->len, 1);
  }
}

CANOPY_TEST_SUITE (logs, "logs", NULL, suite_cleanup,
                   { "deployment and agent lines, in the journal and in text",
                     test_deployment_lines })
