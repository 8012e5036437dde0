/* What a console token or a key holder can reach on disk: content only
 * from the directories canopyd allows, destinations only where the agents
 * allow, and never the verified cache through an installed file. */
#include "build-config.h"

#include "tests/integration/client.h"
#include "tests/integration/site.h"
#include "agent/install-policy.h"
#include "lib/destination.h"
#include "server/content-sources.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
  assert_destination_refused (content_id, "/dev/null", "invalid-destination",
                              "under /dev, /proc or /sys");
  assert_destination_refused (content_id, "/sys/kernel/notes", "invalid-destination",
                              "choose a directory such as /opt");
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
  /* An escaped backslash before "u0000" is no NUL; whether a file
   * exists outside the sources is not told. */
  assert_source_refused ("/etc/app\\\\u0000", "not under an allowed content source");
  {
    g_autofree char *missing = g_build_filename (site.dir, "packages", "missing.bin", NULL);
    g_autofree char *body = g_strdup_printf (
      "{\"name\": \"App\", \"version\": \"1\", \"location\": \"%s\"}", missing);
    g_autoptr (JsonNode) answer = canopy_test_site_api (&site, "POST", "/api/v1/content", body,
                                                        SOUP_STATUS_UNPROCESSABLE_ENTITY);

    CANOPY_ASSERT_CONTAINS (json_object_get_string_member (json_node_get_object (answer),
                                                           "message"),
                            "check the path");
  }
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

/* A file registered while its directory was a content source, then no
 * longer allowed (or registered before this policy existed): the content
 * store stops serving its copy at start, Publish Content does not read it
 * again, and both say why. */
static void
test_publish_rechecks_sources (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT,
                                    .content_source = "packages", .content_store = TRUE };
  g_autofree char *key_path = NULL;
  g_auto (CanopyTestClient) client = { 0 };
  const char *ids[2] = { NULL, NULL };
  g_autofree char *allowed = NULL, *package = NULL, *body = NULL, *id = NULL;
  g_autoptr (JsonNode) added = NULL, published = NULL;
  gint64 deadline;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  allowed = g_build_filename (site.dir, "packages", NULL);
  package = write_file (allowed, "app.bin");
  body = g_strdup_printf ("{\"name\": \"App\", \"version\": \"1\", \"location\": \"%s\"}",
                          package);
  added = canopy_test_site_api (&site, "POST", "/api/v1/content", body, SOUP_STATUS_CREATED);
  id = g_strdup (json_object_get_string_member (json_node_get_object (added), "id"));
  canopy_test_process_signal (site.server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (site.server, 20), 0);
  g_clear_pointer (&site.server, canopy_test_process_free);
  site.options.content_source = NULL;
  canopy_test_site_server_start (&site);
  CU_ASSERT (canopy_test_process_wait_output (site.server, "no longer serves App 1", 10));

  /* A key holder asking for it gets nothing. */
  key_path = g_build_filename (site.state, "shared-key", NULL);
  ids[0] = id;
  canopy_test_client_connect (&client, key_path, "prober", (guint16) site.agent_port);
  canopy_test_client_send (&client, CANOPY_WIRE_PEER_HELLO,
                           g_variant_new ("(s^as)", "prober", ids));
  canopy_test_client_send (&client, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", id, 0));
  CU_ASSERT (canopy_test_client_wait (&client, CANOPY_WIRE_CANCEL, 1));
  CU_ASSERT_EQUAL (client.counts[CANOPY_WIRE_DATA], 0);
  CU_ASSERT_EQUAL (client.counts[CANOPY_WIRE_HAVE], 0);
  canopy_test_client_clear (&client);

  published = canopy_test_site_api (&site, "POST", "/api/v1/publish", NULL, SOUP_STATUS_OK);
  deadline = g_get_monotonic_time () + canopy_test_timeout (30) * G_USEC_PER_SEC;
  for (;;)
    {
      g_autoptr (JsonNode) view = canopy_test_site_api (&site, "GET", "/api/v1/content-store",
                                                        NULL, SOUP_STATUS_OK);
      JsonObject *entry = canopy_test_site_find (json_node_get_object (view), "contents", "id",
                                                 id);
      const char *reason;

      CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
      reason = json_object_get_string_member (entry, "reason");
      if (strstr (reason, "is copying it") == NULL || g_get_monotonic_time () > deadline)
        {
          CU_ASSERT_FALSE (json_object_get_boolean_member (entry, "stored"));
          CANOPY_ASSERT_CONTAINS (reason, "not under an allowed content source");
          break;
        }
      canopy_test_site_pump (200);
    }
  canopy_test_site_stop (&site, TRUE);
}

/* The agent's own policy, on a real tree: @destination under @allowed is
 * refused with a message containing @why, and nothing is created outside. */
static void
assert_agent_refuses (const char *allowed, const char *destination, const char *why)
{
  const char *directories[] = { allowed, NULL };
  g_autofree char *name = NULL;
  g_autoptr (GError) error = NULL;
  int fd = canopy_install_policy_open_parent (directories, destination, &name, &error);

  CU_ASSERT_EQUAL (fd, -1);
  if (fd >= 0)
    close (fd);
  CU_ASSERT_PTR_NOT_NULL_FATAL (error);
  CU_ASSERT_EQUAL (error->domain, CANOPY_DESTINATION_ERROR);
  CANOPY_ASSERT_CONTAINS (error->message, why);
  CU_ASSERT_PTR_NULL (name);
}

static void
test_agent_policy (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("policy");
  g_autofree char *allowed = g_build_filename (dir, "allowed", NULL);
  g_autofree char *outside = g_build_filename (dir, "outside", NULL);
  g_autofree char *path = NULL, *name = NULL, *made = NULL;
  const char *directories[] = { allowed, NULL };
  const char *dev[] = { "/dev", NULL };
  g_autoptr (GError) error = NULL;
  GStatBuf st;
  int fd;

  g_assert (g_mkdir_with_parents (allowed, 0755) == 0);
  g_assert (g_mkdir_with_parents (outside, 0755) == 0);

  /* A symbolic link in the allowed directory leading out of it. */
  path = g_build_filename (allowed, "link", NULL);
  g_assert (symlink (outside, path) == 0);
  g_free (path);
  path = g_build_filename (allowed, "link", "sub", "package.bin", NULL);
  assert_agent_refuses (allowed, path, "\"link\" is a symbolic link");
  g_free (path);
  path = g_build_filename (outside, "sub", NULL);
  CU_ASSERT_FALSE (g_file_test (path, G_FILE_TEST_EXISTS));

  /* Existing targets that are not regular files. */
  g_free (path);
  path = g_build_filename (allowed, "fifo", NULL);
  g_assert (mkfifo (path, 0600) == 0);
  assert_agent_refuses (allowed, path, "is a fifo, not a regular file");
  g_free (path);
  path = g_build_filename (allowed, "directory", NULL);
  g_assert (g_mkdir (path, 0755) == 0);
  assert_agent_refuses (allowed, path, "is a directory, not a regular file");
  g_free (path);
  path = g_build_filename (allowed, "final-link", NULL);
  g_assert (symlink ("/etc/passwd", path) == 0);
  assert_agent_refuses (allowed, path, "is a symbolic link, not a regular file");
  assert_agent_refuses ("/dev", "/dev/null", "under /dev, /proc or /sys");
  CU_ASSERT_FALSE (canopy_install_policy_check (dev, "/dev/null", NULL));
  /* A device node elsewhere: only the agent can tell what it is. */
  g_free (path);
  path = g_build_filename (allowed, "null", NULL);
  if (mknod (path, S_IFCHR | 0600, makedev (1, 3)) == 0)
    assert_agent_refuses (allowed, path, "is a device node, not a regular file");
  else
    canopy_test_skip ("cannot make a device node here (%s); the device-node case did not run",
                      g_strerror (errno));

  /* Outside the allowed directories, or reaching out of them by name. */
  g_free (path);
  path = g_build_filename (outside, "package.bin", NULL);
  assert_agent_refuses (allowed, path, "not under a directory this device allows");
  assert_agent_refuses (allowed, path, "<destinations> in canopy-agent.xml");
  g_free (path);
  path = g_strconcat (allowed, "-evil/package.bin", NULL);
  assert_agent_refuses (allowed, path, "not under a directory this device allows");
  g_free (path);
  path = g_strconcat (allowed, "/../outside/package.bin", NULL);
  assert_agent_refuses (allowed, path, "\"..\" component");
  assert_agent_refuses (allowed, allowed, "not under a directory this device allows");
  assert_agent_refuses (allowed, "/opt/app\x01.bin", "control character");
  CU_ASSERT_FALSE (canopy_install_policy_check (NULL, "/opt/app.bin", &error));
  CANOPY_ASSERT_CONTAINS (error->message, "allows no directory");

  /* Allowed: the missing directories are made, the parent is returned. */
  g_free (path);
  path = g_build_filename (allowed, "new", "sub", "package.bin", NULL);
  fd = canopy_install_policy_open_parent (directories, path, &name, NULL);
  CU_ASSERT (fd >= 0);
  CU_ASSERT_STRING_EQUAL (name, "package.bin");
  made = g_build_filename (allowed, "new", "sub", NULL);
  CU_ASSERT (g_stat (made, &st) == 0 && S_ISDIR (st.st_mode));
  if (fd >= 0)
    close (fd);
}

/* A destination valid for the server but outside the agents' allowed
 * directories: the agent refuses before fetching, and the admin reads the
 * reason in the health check and in the deployment's status. */
static void
test_agent_refusal_reported (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT };
  g_autofree char *content_id = NULL, *outside = NULL, *destination = NULL, *body = NULL;
  g_autoptr (JsonNode) created = NULL;
  g_autoptr (JsonNode) health = NULL;
  JsonObject *check;
  const char *message;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_agent_start (&site, 1, 1);
  content_id = canopy_test_site_register (&site);
  outside = canopy_test_make_tmpdir ("outside");
  destination = g_build_filename (outside, "package.bin", NULL);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Branch\"], "
                          "\"destination\": \"%s\"}", content_id, destination);
  created = canopy_test_site_api (&site, "POST", "/api/v1/deployments", body,
                                  SOUP_STATUS_CREATED);
  CU_ASSERT (canopy_test_process_wait_output (site.server, "cannot complete deployment", 30));
  check = canopy_test_site_health_check (&site, "device-failures", &health);
  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "warning");
  message = json_object_get_string_member (check, "message");
  CANOPY_ASSERT_CONTAINS (message, site.device_ids[canopy_test_site_slot (1, 1)]);
  CANOPY_ASSERT_CONTAINS (message, "not under a directory this device allows");
  CANOPY_ASSERT_CONTAINS (message, "<destinations> in canopy-agent.xml");
  CU_ASSERT_FALSE (g_file_test (destination, G_FILE_TEST_EXISTS));
  {
    g_autoptr (JsonNode) holder = NULL;
    JsonObject *d = canopy_test_site_deployment (&site, &holder);
    JsonArray *failures;
    JsonObject *failure;

    CU_ASSERT_PTR_NOT_NULL_FATAL (d);
    failures = json_object_get_array_member (d, "failures");
    CU_ASSERT_EQUAL_FATAL (json_array_get_length (failures), 1);
    failure = json_array_get_object_element (failures, 0);
    CU_ASSERT_STRING_EQUAL (json_object_get_string_member (failure, "device"),
                            site.device_ids[canopy_test_site_slot (1, 1)]);
    CANOPY_ASSERT_CONTAINS (json_object_get_string_member (failure, "reason"),
                            "not under a directory this device allows");
  }
  canopy_test_site_stop (&site, TRUE);
}

/* Deploys @content_id to @destination as the only deployment, removing
 * @previous (if any); returns the new deployment's ID. */
static char *
deploy_to (const char *content_id, const char *destination, const char *previous)
{
  g_autofree char *body = g_strdup_printf (
    "{\"content\": \"%s\", \"groups\": [\"Branch\"], \"destination\": \"%s\"}",
    content_id, destination);
  g_autoptr (JsonNode) created = NULL;

  if (previous != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/api/v1/deployments?id=%s", previous);
      g_autoptr (JsonNode) removed = canopy_test_site_api (&site, "DELETE", path, NULL,
                                                           SOUP_STATUS_NO_CONTENT);
    }
  created = canopy_test_site_api (&site, "POST", "/api/v1/deployments", body,
                                  SOUP_STATUS_CREATED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (created);
  return g_strdup (json_object_get_string_member (json_node_get_object (created), "id"));
}

/* Someone edits the installed package in place: the agent's cache is not
 * that file, so deploying the same content again, elsewhere and to the
 * same place, puts the original back byte for byte. */
static void
test_installed_file_edited (void)
{
  CanopyTestSiteOptions options = { .content_size = SMALL_CONTENT };
  g_autofree char *content_id = NULL, *first = NULL, *second = NULL, *third = NULL;
  g_autofree char *installed = NULL, *seen = NULL, *other = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_agent_start (&site, 1, 1);
  content_id = canopy_test_site_register (&site);
  installed = g_build_filename (site.dir, "copies", "package.bin", NULL);
  /* Where this test sees what the agent installed there. */
  seen = canopy_test_site_copy_path (&site, canopy_test_site_slot (1, 1));
  other = g_build_filename (site.dir, "elsewhere", "package.bin", NULL);

  first = deploy_to (content_id, installed, NULL);
  done = canopy_test_site_wait_done (&site, 1, 60);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  CU_ASSERT (canopy_test_site_same_file (seen, site.package));
  canopy_test_damage_file (seen, 1000, 100 * 1000);
  CU_ASSERT_FALSE (canopy_test_site_same_file (seen, site.package));

  second = deploy_to (content_id, other, first);
  g_clear_pointer (&done, json_node_unref);
  done = canopy_test_site_wait_done (&site, 1, 60);
  CU_ASSERT_PTR_NOT_NULL (done);
  CU_ASSERT (canopy_test_site_same_file (other, site.package));

  third = deploy_to (content_id, installed, second);
  g_clear_pointer (&done, json_node_unref);
  done = canopy_test_site_wait_done (&site, 1, 60);
  CU_ASSERT_PTR_NOT_NULL (done);
  CU_ASSERT (canopy_test_site_same_file (seen, site.package));
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (security_paths, "security-paths", NULL, suite_cleanup,
                   { "content sources outside the allowed directories refused",
                     test_sources_refused },
                   { "no file is a content source by default", test_sources_none_by_default },
                   { "invalid destinations refused by the server", test_destinations_refused },
                   { "NUL in a request refused", test_nul_in_names },
                   { "content store serves only registered content",
                     test_store_serves_only_registered },
                   { "a source no longer allowed is not served or copied",
                     test_publish_rechecks_sources },
                   { "agent policy on a real tree", test_agent_policy },
                   { "agent refusal reaches the admin", test_agent_refusal_reported },
                   { "installed file edited in place, deployed again",
                     test_installed_file_edited });
