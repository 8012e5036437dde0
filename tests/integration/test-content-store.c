/* The server's content store, with real processes: canopyd keeps a copy
 * of what it registers and seeds it to the offices' leads, checks every
 * chunk before it leaves, and answers peers that misbehave without
 * stopping for the others. */
#include "build-config.h"

#include "tests/integration/client.h"
#include "tests/integration/site.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

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

      /* Every source, so that a shortfall says where the rest came from. */
      printf ("[%s: %.3f × content from the server, %.3f from office peers, %.3f from "
              "other offices, %.3f from earlier versions] ",
              office, (double) server / CONTENT_SIZE,
              (double) office_bytes (d, office, "office_peer") / CONTENT_SIZE,
              (double) office_bytes (d, office, "parent_peer") / CONTENT_SIZE,
              (double) office_bytes (d, office, "earlier_versions") / CONTENT_SIZE);
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
  JsonObject *d;
  gboolean precise = !canopy_test_instrumented ();
  g_autoptr (CanopyManifest) m = NULL;
  g_autofree char *logged = NULL;
  guint damaged;
  /* Within the smaller content under valgrind too. */
  const guint64 at = 2 * 1024 * 1024 + 4321;

  if (!canopy_test_site_available ())
    return;
  s = store_site_begin (&content_id, &copy);
  m = canopy_test_site_manifest_of (s->package);
  damaged = canopy_test_site_chunk_at (m, at);
  logged = g_strdup_printf ("Chunk %u of \"Package\" 1.0 in the content store does not match",
                            damaged);
  canopy_test_damage_file (copy, at, G_MAXSIZE);

  canopy_test_site_deploy_content (s, content_id);
  done = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  canopy_test_site_assert_copy (s);
  CU_ASSERT (canopy_test_process_wait_output (s->server, logged, 10));
  d = json_node_get_object (done);
  for (guint o = 0; o < OFFICES; o++)
    {
      const char *office = office_names[o];
      guint64 origin = office_bytes (d, office, "origin");
      guint64 server = office_bytes (d, office, "server");

      printf ("[%s: %.3f × content from the server, %.3f from the origin] ", office,
              (double) server / CONTENT_SIZE, (double) origin / CONTENT_SIZE);
      /* Everything but the damaged chunk came from the server. */
      CU_ASSERT (origin >= canopy_manifest_get_chunk_length (m, damaged));
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
  g_autoptr (CanopyManifest) m = NULL;
  gsize start, size;

  if (!canopy_test_site_available ())
    return;
  s = store_site_begin (&content_id, NULL);
  m = canopy_test_site_manifest_of (s->package);
  start = canopy_manifest_get_chunk_offset (m, 1);
  size = canopy_manifest_get_chunk_length (m, 1);
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
  CU_ASSERT_FATAL (good.data != NULL && g_bytes_get_size (good.data) == size);
  CU_ASSERT (memcmp (g_bytes_get_data (good.data, NULL), package + start, size) == 0);
  canopy_test_client_clear (&bad);
  canopy_test_client_clear (&good);
  canopy_test_site_stop (&site, TRUE);
}

/* --- what the admin sees ------------------------------------------------ */

#define SMALL_SIZE (100 * 1024 + 7)
#define QUOTA (1024 * 1024)

/* Logs canopyctl in to @s's console; returns its connection profile. */
static char *
ctl_login (CanopyTestSite *s)
{
  char *profile = g_build_filename (s->dir, "ctl-profile", NULL);
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u", s->console_port);
  g_autofree char *certificate = g_build_filename (s->state, "console-cert.pem", NULL);
  g_autofree char *token_file = g_build_filename (s->dir, "admin-token", NULL);
  g_autofree char *out = NULL;

  g_assert (g_file_set_contents_full (token_file, s->token, -1, G_FILE_SET_CONTENTS_NONE, 0600,
                                      NULL));
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "login", "--server", url, "--certificate",
                                    certificate, "--token-file", token_file, NULL),
                   0);
  return profile;
}

/* Registers the file at @path, which the server reads from disk. */
static char *
register_file (CanopyTestSite *s, const char *name, const char *path)
{
  g_autofree char *body = g_strdup_printf (
    "{\"name\": \"%s\", \"version\": \"2.0\", \"location\": \"%s\"}", name, path);
  g_autoptr (JsonNode) content = canopy_test_site_api (s, "POST", "/api/v1/content", body,
                                                       SOUP_STATUS_CREATED);

  return g_strdup (json_object_get_string_member (json_node_get_object (content), "id"));
}

static char *
write_small_package (CanopyTestSite *s)
{
  g_autofree char *data = g_malloc (SMALL_SIZE);
  char *path = g_build_filename (s->dir, "packages", "small.bin", NULL);

  for (gsize i = 0; i < SMALL_SIZE; i++)
    data[i] = (char) (i * 7 + i / 251);
  g_assert (g_file_set_contents (path, data, SMALL_SIZE, NULL));
  return path;
}

/* The store's entry for @id in GET /api/v1/content-store, held by @holder. */
static JsonObject *
store_entry (CanopyTestSite *s, const char *id, JsonNode **holder)
{
  *holder = canopy_test_site_api (s, "GET", "/api/v1/content-store", NULL, SOUP_STATUS_OK);
  return canopy_test_site_find (json_node_get_object (*holder), "contents", "id", id);
}

/* Polls the store's view until the copy of @id is no longer under way. */
static JsonObject *
wait_copied (CanopyTestSite *s, const char *id, JsonNode **holder)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (30) * G_USEC_PER_SEC;
  JsonObject *entry;

  for (;;)
    {
      entry = store_entry (s, id, holder);
      if (entry == NULL || g_get_monotonic_time () > deadline
          || strstr (json_object_get_string_member (entry, "reason"), "is copying it") == NULL)
        return entry;
      g_clear_pointer (holder, json_node_unref);
      canopy_test_site_pump (200);
    }
}

static void
assert_check (CanopyTestSite *s, const char *status, const char *message)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *check = canopy_test_site_health_check (s, "content-store", &holder);

  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), status);
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"), message);
}

/* A package larger than the quota is registered without a copy: the
 * console API, canopyctl, the metrics and the health check all say which
 * content the server does not seed and why; a directory that can no
 * longer be written is a failed check. */
static void
test_content_store_view (void)
{
  CanopyTestSiteOptions options = { .content_store = TRUE, .content_store_quota = "1MiB",
                                    .content_source = "packages",
                                    .content_size = 3 * 1024 * 1024 + 12345 };
  CanopyTestSite *s = &site;
  g_autofree char *small = NULL, *small_id = NULL, *big_id = NULL, *out = NULL;
  g_autofree char *directory = NULL, *moved = NULL, *used = NULL, *profile = NULL;
  g_autoptr (JsonNode) view = NULL, again = NULL, published = NULL;
  JsonObject *o, *entry;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  small = write_small_package (s);
  small_id = register_file (s, "Small", small);
  big_id = canopy_test_site_register (s);

  entry = store_entry (s, small_id, &view);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  CU_ASSERT (json_object_get_boolean_member (entry, "stored"));
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (entry, "reason"), "");
  o = json_node_get_object (view);
  CU_ASSERT (json_object_get_boolean_member (o, "configured"));
  directory = g_build_filename (s->dir, "content", NULL);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (o, "directory"), directory);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "quota"), QUOTA);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "used"), SMALL_SIZE);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "upload_slots"), 8);
  CU_ASSERT_EQUAL (json_object_get_int_member (o, "uploaded_bytes"), 0);
  entry = store_entry (s, big_id, &again);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  CU_ASSERT_FALSE (json_object_get_boolean_member (entry, "stored"));
  CU_ASSERT_EQUAL (json_object_get_int_member (entry, "size"), (gint64) s->content_size);
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"),
                          "\"Package\" does not fit in what is left of the content store's "
                          "quota of 1.0");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"),
                          "Raise <content-store quota=\"...\"> and restart canopyd");

  profile = ctl_login (s);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "content-store", NULL), 0);
  /* Sizes are written with a no-break space before the unit. */
  CANOPY_ASSERT_CONTAINS (out, "\nQuota:         1.0\u00a0MiB\n");
  CANOPY_ASSERT_CONTAINS (out, "Upload slots:  8\n");
  CANOPY_ASSERT_CONTAINS (out, "STORED");
  CANOPY_ASSERT_CONTAINS (out, "yes");
  CANOPY_ASSERT_CONTAINS (out, "\"Package\" does not fit");
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "--json", "content-store", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"configured\" : true");
  CANOPY_ASSERT_CONTAINS (out, "\"stored\" : false");

  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "metrics", NULL), 0);
  used = g_strdup_printf ("canopy_content_store_used_bytes %d\n", SMALL_SIZE);
  CANOPY_ASSERT_CONTAINS (out, used);
  CANOPY_ASSERT_CONTAINS (out, "canopy_content_store_quota_bytes 1048576\n");
  CANOPY_ASSERT_CONTAINS (out, "canopy_content_store_contents 1\n");
  CANOPY_ASSERT_CONTAINS (out, "# TYPE canopy_content_store_uploaded_bytes_total counter\n"
                               "canopy_content_store_uploaded_bytes_total 0\n");

  assert_check (s, "warning", "lacks 1 of the 2 registered contents");
  assert_check (s, "warning", "Package 1.0: \"Package\" does not fit");
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "health", NULL), 0);

  /* Publish Content does not read an origin whose package cannot fit. */
  published = canopy_test_site_api (s, "POST", "/api/v1/publish", NULL, SOUP_STATUS_OK);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (published), "copying"), 0);
  g_clear_pointer (&again, json_node_unref);
  entry = store_entry (s, big_id, &again);
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"), "does not fit");

  /* The disk went away under the store. */
  moved = g_strconcat (directory, ".moved", NULL);
  g_assert (g_rename (directory, moved) == 0);
  assert_check (s, "error", "cannot write in its directory");
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "health", NULL), 1);
  g_assert (g_rename (moved, directory) == 0);
  assert_check (s, "warning", "lacks 1 of the 2");
  canopy_test_site_stop (&site, TRUE);
}

/* Content registered before the store was configured has no copy; the
 * admin is told to run Publish Content, which reads the origin again and
 * has the server seed it, but only the very package that was signed. */
static void
test_content_store_publish_copies (void)
{
  CanopyTestSiteOptions options = { .content_size = 3 * 1024 * 1024 + 12345 };
  CanopyTestSite *s = &site;
  g_autofree char *content_id = NULL, *out = NULL, *copy = NULL, *profile = NULL;
  g_autoptr (JsonNode) view = NULL, published = NULL;
  JsonObject *entry;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  content_id = canopy_test_site_register (s);
  canopy_test_process_signal (s->server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (s->server, 20), 0);
  g_clear_pointer (&s->server, canopy_test_process_free);
  s->options.content_store = TRUE;
  canopy_test_site_server_start (s);

  entry = store_entry (s, content_id, &view);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  CU_ASSERT_FALSE (json_object_get_boolean_member (entry, "stored"));
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"),
                          "registered before the store was configured");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"),
                          "Run Publish Content");
  assert_check (s, "warning", "Package 1.0: The content store has no copy of it");

  /* The origin now serves other bytes: no copy is kept under the old signature. */
  canopy_test_damage_file (s->package, 1234567, 1024 * 1024);
  published = canopy_test_site_api (s, "POST", "/api/v1/publish", NULL, SOUP_STATUS_OK);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (published), "copying"), 1);
  g_clear_pointer (&view, json_node_unref);
  entry = wait_copied (s, content_id, &view);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  CU_ASSERT_FALSE (json_object_get_boolean_member (entry, "stored"));
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (entry, "reason"),
                          "no longer holds the package that was registered");
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (view), "used"), 0);

  /* The same bytes flipped back: the package that was signed. */
  canopy_test_damage_file (s->package, 1234567, 1024 * 1024);
  profile = ctl_login (s);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "publish", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "1 content item the content store lacks is being copied");
  g_clear_pointer (&view, json_node_unref);
  entry = wait_copied (s, content_id, &view);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  CU_ASSERT_FATAL (json_object_get_boolean_member (entry, "stored"));
  copy = stored_copy (s, content_id);
  CU_ASSERT (canopy_test_site_same_file (copy, s->package));
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (view), "used"),
                   (gint64) s->content_size);
  assert_check (s, "ok", "holds the 1 registered content");
  CU_ASSERT (canopy_test_process_wait_output (s->server, "The content store keeps a copy of "
                                                         "Package 1.0", 10));
  /* Nothing is left to copy. */
  g_clear_pointer (&published, json_node_unref);
  published = canopy_test_site_api (s, "POST", "/api/v1/publish", NULL, SOUP_STATUS_OK);
  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (published), "copying"), 0);
  canopy_test_site_stop (&site, TRUE);
}

/* canopyd stopped while it reads a package to register: the reading
 * thread ends and reports back on the main loop before the server frees
 * what it uses, and canopyd stops cleanly (status 0, no critical). */
static void
test_stop_while_registering (void)
{
  CanopyTestSiteOptions options = { .content_source = "packages",
                                    .content_size = 1024 * 1024 + 1 };
  CanopyTestSite *s = &site;
  g_autofree char *path = NULL, *body = NULL;
  int fd;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  /* Large and sparse: reading and hashing it takes seconds, not disk. */
  path = g_build_filename (s->dir, "packages", "large.bin", NULL);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CU_ASSERT_FATAL (fd >= 0 && ftruncate (fd, (off_t) 8 << 30) == 0);
  close (fd);
  body = g_strdup_printf ("{\"name\": \"Large\", \"version\": \"1\", \"location\": \"%s\"}",
                          path);
  canopy_test_site_api_send (s, "POST", "/api/v1/content", body);
  canopy_test_site_pump (canopy_test_instrumented () ? 3000 : 500);
  canopy_test_process_signal (s->server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (s->server, 60), 0);
  CU_ASSERT (strstr (canopy_test_process_output (s->server), "CRITICAL") == NULL);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), "canopyd stopped");
  g_clear_pointer (&s->server, canopy_test_process_free);
  canopy_test_site_stop (s, TRUE);
}

CANOPY_TEST_SUITE (content_store, "content-store", NULL, suite_cleanup,
                   { "seeds with the origin gone", test_content_store_seeds },
                   { "damaged chunk never sent", test_content_store_damaged },
                   { "bad peer input refused", test_content_store_bad_peer },
                   { "API, canopyctl, metrics and health show what is not stored",
                     test_content_store_view },
                   { "Publish Content copies what the store lacks",
                     test_content_store_publish_copies },
                   { "stopped while a package is read", test_stop_while_registering });
