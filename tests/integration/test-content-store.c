/* The server's content store, with real processes: canopyd keeps a copy
 * of what it registers and seeds it to the offices' leads, checks every
 * chunk before it leaves, and answers peers that misbehave without
 * stopping for the others. */
#include "build-config.h"

#include "tests/integration/client.h"
#include "tests/integration/site.h"

#include <string.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS_PER_OFFICE CANOPY_TEST_SITE_AGENTS_PER_OFFICE
#define CONTENT_SIZE (site.content_size)

/* Static, so that a test stopped by a failed fatal assertion still has its
 * processes stopped, by the next test or the suite's cleanup. */
static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* The copy canopyd keeps of @content_id. */
static char *
stored_copy (CanopyTestSite *s, const char *content_id)
{
  return g_build_filename (s->dir, "content", content_id, NULL);
}

static guint64
office_bytes (JsonObject *d, const char *office, const char *kind)
{
  g_autofree char *member = g_strconcat ("bytes_", kind, NULL);
  JsonObject *o = canopy_test_site_office_of (d, office);

  CU_ASSERT_PTR_NOT_NULL_FATAL (o);
  return (guint64) json_object_get_int_member (o, member);
}

static const char *const office_names[OFFICES] = { "North", "South" };

/* A site whose canopyd has a content store, with the package registered;
 * @copy (optional) gets the path of the stored copy. */
static CanopyTestSite *
store_site_begin (char **content_id, char **copy)
{
  CanopyTestSiteOptions options = { .content_store = TRUE };
  CanopyTestSite *s = &site;

  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  *content_id = canopy_test_site_register (s);
  if (copy != NULL)
    *copy = stored_copy (s, *content_id);
  return s;
}

/* canopyd keeps a copy when it registers the content, and the origin then
 * goes away for good: each office's lead takes the content from the
 * server's store, the offices share it, and the origin served exactly the
 * one read that built the manifest. */
static void
test_content_store_seeds (void)
{
  CanopyTestSite *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *copy = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint64 served;
  JsonObject *d;
  /* The once-per-office bound holds at native speed only: slowed down
   * many times, a lead can outlast the stall allowance and be replaced. */
  gboolean precise = !canopy_test_instrumented ();

  if (!canopy_test_site_available ())
    return;
  s = store_site_begin (&content_id, &copy);
  CU_ASSERT (canopy_test_site_same_file (copy, s->package));
  CU_ASSERT (canopy_test_process_wait_output (s->server, "The content store keeps", 10));
  served = canopy_test_site_stop_origin (s);
  printf ("[origin served %.3f × content] ", (double) served / CONTENT_SIZE);
  CU_ASSERT_EQUAL (served, CONTENT_SIZE);

  canopy_test_site_deploy_content (s, content_id);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  d = json_node_get_object (done);
  for (guint o = 0; o < OFFICES; o++)
    {
      const char *office = office_names[o];
      guint64 server = office_bytes (d, office, "server");

      printf ("[%s: %.3f × content from the server] ", office, (double) server / CONTENT_SIZE);
      /* The lead takes it all from the server; the office shares it. */
      CU_ASSERT (server >= CONTENT_SIZE);
      CU_ASSERT (!precise || server <= (guint64) (1.05 * CONTENT_SIZE));
      CU_ASSERT_EQUAL (office_bytes (d, office, "origin"), 0);
      CU_ASSERT (office_bytes (d, office, "office_peer") > 0);
    }
  canopy_test_site_stop (&site, TRUE);
}

/* A byte of the stored copy rots after registration: the server checks
 * each chunk before it sends it, so the damaged one never leaves it; it
 * says which, and the leads take that chunk from the origin. */
static void
test_content_store_damaged (void)
{
  CanopyTestSite *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *copy = NULL;
  g_autoptr (JsonNode) done = NULL;
  const long damaged = 5 * 1024 * 1024 + 4321;
  FILE *file;
  int byte;
  JsonObject *d;
  gboolean precise = !canopy_test_instrumented ();

  if (!canopy_test_site_available ())
    return;
  s = store_site_begin (&content_id, &copy);
  /* In place, as a failing disk would: the server has the file mapped. */
  file = fopen (copy, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL (file);
  g_assert (fseek (file, damaged, SEEK_SET) == 0 && (byte = fgetc (file)) != EOF);
  g_assert (fseek (file, damaged, SEEK_SET) == 0 && fputc (byte ^ 0x01, file) != EOF);
  g_assert (fclose (file) == 0);

  canopy_test_site_deploy_content (s, content_id);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  CU_ASSERT (canopy_test_process_wait_output (
    s->server, "Chunk 5 of \"Package\" 1.0 in the content store does not match", 10));
  d = json_node_get_object (done);
  for (guint o = 0; o < OFFICES; o++)
    {
      const char *office = office_names[o];
      guint64 origin = office_bytes (d, office, "origin");
      guint64 server = office_bytes (d, office, "server");

      printf ("[%s: %.3f × content from the server, %.3f from the origin] ", office,
              (double) server / CONTENT_SIZE, (double) origin / CONTENT_SIZE);
      /* Everything but the damaged chunk came from the server. */
      CU_ASSERT (origin >= 1024 * 1024);
      CU_ASSERT (server >= CONTENT_SIZE - origin);
      CU_ASSERT (!precise || server + origin <= (guint64) (1.05 * CONTENT_SIZE));
    }
  canopy_test_site_stop (&site, TRUE);
}


static void
probe (CanopyTestSite *s, CanopyTestClient *client)
{
  g_autofree char *key_path = g_build_filename (s->state, "shared-key", NULL);

  canopy_test_client_connect (client, key_path, "prober", (guint16) s->agent_port);
}

/* What no agent sends: chunks past the end, unknown content, a frame that
 * is not one. Each gets a clear answer or a closed connection, and the
 * store goes on serving. */
static void
test_content_store_bad_peer (void)
{
  CanopyTestSite *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *package = NULL;
  g_autoptr (GBytes) garbage = g_bytes_new_static ("not a canopy frame", 18);
  const char *ids[2] = { NULL, NULL };
  CanopyTestClient bad = { 0 }, good = { 0 };
  gsize length;

  if (!canopy_test_site_available ())
    return;
  s = store_site_begin (&content_id, NULL);
  ids[0] = content_id;
  probe (s, &bad);
  canopy_test_client_send (&bad, CANOPY_WIRE_PEER_HELLO, g_variant_new ("(s^as)", "prober", ids));
  CU_ASSERT (canopy_test_client_wait (&bad, CANOPY_WIRE_HAVE, 1));
  CU_ASSERT_EQUAL (bad.counts[CANOPY_WIRE_PEER_HELLO], 1);

  canopy_test_client_send (&bad, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", content_id, 100000));
  canopy_test_client_send (&bad, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", "no-such-content", 0));
  CU_ASSERT (canopy_test_client_wait (&bad, CANOPY_WIRE_CANCEL, 2));
  CU_ASSERT (canopy_test_process_wait_output (s->server, "the request is refused", 10));
  CU_ASSERT_FALSE (bad.closed);

  /* A frame that is not one: that connection goes, nothing else. */
  CU_ASSERT (canopy_transport_send (bad.conn, garbage, NULL, NULL));
  CU_ASSERT (canopy_test_client_wait_closed (&bad));

  probe (s, &good);
  canopy_test_client_send (&good, CANOPY_WIRE_PEER_HELLO, g_variant_new ("(s^as)", "prober", ids));
  canopy_test_client_send (&good, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", content_id, 1));
  CU_ASSERT (canopy_test_client_wait (&good, CANOPY_WIRE_DATA, 1));
  g_assert (g_file_get_contents (s->package, &package, &length, NULL));
  CU_ASSERT_FATAL (good.data != NULL && g_bytes_get_size (good.data) == 1024 * 1024);
  CU_ASSERT (memcmp (g_bytes_get_data (good.data, NULL), package + 1024 * 1024, 1024 * 1024)
             == 0);
  canopy_test_client_clear (&bad);
  canopy_test_client_clear (&good);
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (content_store, "content-store", NULL, suite_cleanup,
                   { "seeds with the origin gone", test_content_store_seeds },
                   { "damaged chunk never sent", test_content_store_damaged },
                   { "bad peer input refused", test_content_store_bad_peer });
