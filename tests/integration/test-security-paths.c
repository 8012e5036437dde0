/* What a console token or a key holder can reach on disk: content only
 * from the directories canopyd allows, destinations only where the agents
 * allow, and never the verified cache through an installed file. */
#include "build-config.h"

#include "tests/integration/client.h"
#include "tests/integration/site.h"
#include "lib/destination.h"
#include "server/content-sources.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A few chunks: these tests also run under valgrind and ASan. */
#define SMALL_CONTENT (2 * 1024 * 1024 + 4321)

static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* A site with canopyd and the origin only; "packages" is its allowed
 * content source. */
static gboolean
server_begin (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT,
                                    .content_source = "packages" };

  if (!canopy_test_site_available ())
    return FALSE;
  canopy_test_site_begin (&site, &options);
  return TRUE;
}

/* @body is refused with 400, error @code and a message containing @why. */
static void
assert_400 (const char *path, const char *body, const char *code, const char *why)
{
  g_autoptr (JsonNode) answer = canopy_test_site_api (&site, "POST", path, body,
                                                      SOUP_STATUS_BAD_REQUEST);
  JsonObject *object;

  CU_ASSERT_PTR_NOT_NULL_FATAL (answer);
  object = json_node_get_object (answer);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (object, "error"), code);
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (object, "message"), why);
}

static void
assert_source_refused (const char *location, const char *why)
{
  g_autofree char *body = g_strdup_printf (
    "{\"name\": \"Secret\", \"version\": \"1\", \"location\": \"%s\"}", location);

  assert_400 ("/api/v1/content", body, "source-not-allowed", why);
}

static char *
write_file (const char *directory, const char *name)
{
  char *path = g_build_filename (directory, name, NULL);

  g_assert (g_mkdir_with_parents (directory, 0755) == 0);
  g_assert (g_file_set_contents (path, "package bytes", -1, NULL));
  return path;
}

/* /etc/passwd, the server's own keys, a link in the allowed directory
 * leading out of it, a file beside the allowed directory, and schemes
 * other than http(s): each refused before anything is read. */
static void
test_sources_refused (void)
{
  g_autofree char *allowed = NULL, *outside = NULL, *link = NULL, *key = NULL;
  g_autofree char *inside = NULL, *state_link = NULL, *body = NULL, *file_url = NULL;
  g_autoptr (JsonNode) listed = NULL;
  g_autoptr (JsonNode) added = NULL;

  if (!server_begin ())
    return;
  allowed = g_build_filename (site.dir, "packages", NULL);
  outside = write_file (site.dir, "beside.bin");
  link = g_build_filename (allowed, "escape.bin", NULL);
  key = g_build_filename (site.state, "shared-key", NULL);
  g_assert (symlink ("/etc/passwd", link) == 0);
  state_link = g_build_filename (allowed, "state", NULL);
  g_assert (symlink (site.state, state_link) == 0);

  assert_source_refused ("/etc/passwd", "not under an allowed content source");
  assert_source_refused ("/etc/passwd", "<content-sources> in canopyd.xml");
  assert_source_refused (outside, "not under an allowed content source");
  assert_source_refused (key, "state directory");
  assert_source_refused (link, "/etc/passwd is not under an allowed content source");
  /* Through a link in the allowed directory into the state. */
  g_free (body);
  body = g_build_filename (state_link, "shared-key", NULL);
  assert_source_refused (body, "state directory");
  g_free (body);
  body = g_strdup_printf ("%s/../beside.bin", allowed);
  assert_source_refused (body, "not under an allowed content source");
  file_url = g_strdup_printf ("file://%s", outside);
  assert_source_refused (file_url, "http:// or https:// URL");
  assert_source_refused ("ftp://example.com/app.msi", "http:// or https:// URL");

  listed = canopy_test_site_api (&site, "GET", "/api/v1/content", NULL, SOUP_STATUS_OK);
  CU_ASSERT_EQUAL (json_array_get_length (json_node_get_array (listed)), 0);

  /* What is in the allowed directory is registered. */
  inside = write_file (allowed, "app.bin");
  g_free (body);
  body = g_strdup_printf ("{\"name\": \"App\", \"version\": \"1\", \"location\": \"%s\"}",
                          inside);
  added = canopy_test_site_api (&site, "POST", "/api/v1/content", body, SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL (added);
  canopy_test_site_stop (&site, TRUE);
}

/* canopyd's default allows no file at all. */
static void
test_sources_none_by_default (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT };

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  assert_source_refused (site.package, "not under an allowed content source");
  canopy_test_site_stop (&site, TRUE);
}

static void
assert_destination_refused (const char *content_id, const char *destination, const char *code,
                            const char *why)
{
  g_autofree char *body = g_strdup_printf (
    "{\"content\": \"%s\", \"groups\": [\"Branch\"], \"destination\": \"%s\"}", content_id,
    destination);

  assert_400 ("/api/v1/deployments", body, code, why);
}

/* What no device could accept is refused by the server, with the reason. */
static void
test_destinations_refused (void)
{
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) listed = NULL;

  if (!server_begin ())
    return;
  content_id = canopy_test_site_register (&site);
  assert_destination_refused (content_id, "opt/app.bin", "invalid-destination",
                              "not an absolute path");
  assert_destination_refused (content_id, "/opt/../etc/cron.d/x", "invalid-destination",
                              "\"..\" component");
  assert_destination_refused (content_id, "/opt/./app.bin", "invalid-destination",
                              "component");
  assert_destination_refused (content_id, "/opt/app\\n.bin", "invalid-destination",
                              "control character");
  assert_destination_refused (content_id, "/opt/app\\u0001.bin", "invalid-destination",
                              "control character");
  assert_destination_refused (content_id, "/opt/", "invalid-destination", "directory");
  assert_destination_refused (content_id, "/opt/app\\u0000/../../etc/shadow", "bad-request",
                              "NUL");
  listed = canopy_test_site_api (&site, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
  CU_ASSERT_EQUAL (json_array_get_length (json_node_get_array (listed)), 0);
  canopy_test_site_stop (&site, TRUE);
}

/* A NUL anywhere in a request would silently cut a name short. */
static void
test_nul_in_names (void)
{
  if (!server_begin ())
    return;
  assert_400 ("/api/v1/content",
              "{\"name\": \"App\", \"version\": \"1\", "
              "\"location\": \"https://cdn.example.com/app\\u0000.msi\"}",
              "bad-request", "NUL");
  /* An escaped backslash before "u0000" is no NUL. */
  assert_source_refused ("/etc/app\\\\u0000", "check the path");
  canopy_test_site_stop (&site, TRUE);
}

/* A key holder asking the content store for anything but a registered
 * content's chunks (the server's own files, by name or by path) gets a
 * cancel and no bytes. */
static void
test_store_serves_only_registered (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT, .content_store = TRUE };
  g_autofree char *key_path = NULL;
  const char *asked[] = { "../state/shared-key", "signing-key", "shared-key", "",
                          "/etc/passwd", "..", NULL };
  g_auto (CanopyTestClient) client = { 0 };

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  g_free (canopy_test_site_register (&site));
  key_path = g_build_filename (site.state, "shared-key", NULL);
  canopy_test_client_connect (&client, key_path, "prober", (guint16) site.agent_port);
  canopy_test_client_send (&client, CANOPY_WIRE_PEER_HELLO,
                           g_variant_new ("(s^as)", "prober", asked));
  for (guint i = 0; asked[i] != NULL; i++)
    canopy_test_client_send (&client, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", asked[i], 0));
  CU_ASSERT (canopy_test_client_wait (&client, CANOPY_WIRE_CANCEL, g_strv_length ((GStrv) asked)));
  CU_ASSERT_EQUAL (client.counts[CANOPY_WIRE_DATA], 0);
  CU_ASSERT_EQUAL (client.counts[CANOPY_WIRE_HAVE], 0);
  canopy_test_client_clear (&client);
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (security_paths, "security-paths", NULL, suite_cleanup,
                   { "content sources outside the allowed directories refused",
                     test_sources_refused },
                   { "no file is a content source by default", test_sources_none_by_default },
                   { "invalid destinations refused by the server", test_destinations_refused },
                   { "NUL in a request refused", test_nul_in_names },
                   { "content store serves only registered content",
                     test_store_serves_only_registered });
