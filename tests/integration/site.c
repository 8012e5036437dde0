/* A whole site of real processes for the integration tests: canopyd, an
 * HTTP origin and two offices of agents, each office on its own /24. The
 * content is registered and deployed through the console API. */
#define _GNU_SOURCE
#include "build-config.h"

#include "tests/integration/site.h"
#include "lib/shared-key.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static char *
program (const char *name)
{
  return canopy_test_build_path (name, NULL);
}

gboolean
canopy_test_site_available (void)
{
  g_autofree char *tcp = canopy_test_build_path ("plugins", "transport-tcp", ".libs",
                                                 "canopy-tcp.so", NULL);
  g_autofree char *sqlite = canopy_test_build_path ("plugins", "backend-sqlite", ".libs",
                                                    "canopy-sqlite.so", NULL);

  if (g_file_test (tcp, G_FILE_TEST_EXISTS) && g_file_test (sqlite, G_FILE_TEST_EXISTS))
    return TRUE;
  canopy_test_skip ("needs the tcp transport and the sqlite backend, and one was not "
          "built");
  return FALSE;
}

static const char *
net (const CanopyTestSite *s)
{
  return s->options.net != NULL ? s->options.net : "127.0";
}

static char *
server_address (const CanopyTestSite *s)
{
  return g_strdup_printf ("%s.0.1", net (s));
}

char *
canopy_test_site_agent_address (const CanopyTestSite *s, guint office, guint index)
{
  return g_strdup_printf ("%s.%u.%u", net (s), office, 10 + index);
}

guint
canopy_test_site_slot (guint office, guint index)
{
  return index < CANOPY_TEST_SITE_AGENTS_PER_OFFICE
           ? (office - 1) * CANOPY_TEST_SITE_AGENTS_PER_OFFICE + index
           : CANOPY_TEST_SITE_N_AGENTS - 1;
}

/* @argv after the prefix of @office's processes. A prefix (LD_PRELOAD of
 * libfaketime, say) is meant for the daemon, not for the libtool wrapper
 * script in front of it: libfaketime's shared clock, created by the
 * wrapper's shell, is removed again when one of its subshells exits, and
 * the daemon then fails to start. So a prefixed daemon is the real binary,
 * with the build tree's library path. */
static CanopyTestProcess *
spawn_in (CanopyTestSite *s, guint office, const char *const *argv)
{
  g_autoptr (GPtrArray) full = g_ptr_array_new_with_free_func (g_free);
  const char *const *prefix = s->options.prefix[office];
  g_autofree char *dir = g_path_get_dirname (argv[0]);
  g_autofree char *base = g_path_get_basename (argv[0]);
  g_autofree char *real = g_build_filename (dir, ".libs", base, NULL);
  guint from = 0;

  for (guint i = 0; prefix != NULL && prefix[i] != NULL; i++)
    g_ptr_array_add (full, g_strdup (prefix[i]));
  if (prefix != NULL && g_file_test (real, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_autofree char *libs = canopy_test_build_path ("core", "sdk", ".libs", NULL);
      const char *inherited = g_getenv ("LD_LIBRARY_PATH");

      g_ptr_array_add (full, g_strdup ("env"));
      g_ptr_array_add (full, g_strconcat ("LD_LIBRARY_PATH=", libs,
                                          inherited != NULL ? ":" : "", inherited, NULL));
      g_ptr_array_add (full, g_steal_pointer (&real));
      from = 1;
    }
  for (guint i = from; argv[i] != NULL; i++)
    g_ptr_array_add (full, g_strdup (argv[i]));
  g_ptr_array_add (full, NULL);
  return canopy_test_process_spawn ((const char *const *) full->pdata, NULL);
}

static guint
port_after (const char *output, const char *prefix)
{
  const char *at = strstr (output, prefix);

  return at != NULL ? (guint) g_ascii_strtoull (at + strlen (prefix), NULL, 10) : 0;
}

/* Only a test that registers a file names a directory for it: canopyd
 * allows none by default. */
static char *
content_sources (const CanopyTestSite *s)
{
  g_autofree char *directory = NULL;

  if (s->options.content_source == NULL)
    return g_strdup ("");
  directory = g_build_filename (s->dir, s->options.content_source, NULL);
  g_assert (g_mkdir_with_parents (directory, 0755) == 0);
  return g_strdup_printf ("  <content-sources><directory path='%s'/></content-sources>\n",
                          directory);
}

static void
write_server_config (CanopyTestSite *s)
{
  g_autofree char *topology = g_build_filename (s->dir, "topology.csv", NULL);
  g_autofree char *address = server_address (s);
  const char *rate = s->options.wan_rate != NULL ? s->options.wan_rate : "";
  const char *quota = s->options.content_store_quota;
  g_autofree char *store = s->options.content_store
                             ? g_strdup_printf ("  <content-store directory='%s/content'%s%s%s/>\n",
                                                s->dir, quota != NULL ? " quota='" : "",
                                                quota != NULL ? quota : "",
                                                quota != NULL ? "'" : "")
                             : g_strdup ("");
  g_autofree char *extra_group = s->options.extra_group != NULL
                                   ? g_strdup_printf ("  <assigned-group>%s</assigned-group>\n",
                                                      s->options.extra_group)
                                   : g_strdup ("");
  g_autofree char *sources = content_sources (s);
  g_autofree char *xml = g_strdup_printf (
    "<server>\n"
    "  <state-directory>%s</state-directory>\n"
    "  <assigned-group>Branch</assigned-group>\n%s"
    "  <distribution-optimization enabled='%s' topology='%s'/>\n"
    "  <heartbeat interval='1'/>\n"
    "  <console address='%s' port='%u' %s/>\n"
    "%s%s%s"
    "  %s\n"
    "  <transport plugin='tcp'><listen address='%s' port='%u'/></transport>\n"
    "</server>\n",
    s->state, extra_group, s->options.optimization_off ? "false" : "true", topology, address,
    s->console_port, s->options.console_attributes != NULL ? s->options.console_attributes : "",
    store, sources, s->options.server_xml != NULL ? s->options.server_xml : "",
    s->options.backend_xml != NULL ? s->options.backend_xml : "<backend plugin='sqlite'/>",
    address, s->agent_port);
  g_autofree char *csv = NULL;

  if (s->options.topology != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (s->options.topology, "NET", -1);

      csv = g_strjoinv (net (s), parts);
    }
  else
    csv = g_strdup_printf ("office,parent,type,subnets,wan_rate\n"
                           "North,,Default,%s.1.0/24,%s\n"
                           "South,,Default,%s.2.0/24,%s\n",
                           net (s), rate, net (s), rate);

  g_assert (g_file_set_contents (topology, csv, -1, NULL));
  g_assert (g_file_set_contents (s->config, xml, -1, NULL));
}

void
canopy_test_site_server_start (CanopyTestSite *s)
{
  g_autofree char *canopyd = program ("canopyd");
  g_autofree char *address = server_address (s);
  g_autofree char *console = g_strdup_printf ("Console API listening on https://%s:", address);
  g_autofree char *agents = g_strdup_printf ("tcp %s port ", address);
  const char *argv[] = { canopyd, "--config", s->config, NULL };
  const char *output;

  /* A test may have changed the options since the last start. */
  write_server_config (s);
  s->server = spawn_in (s, 0, argv);
  CU_ASSERT_FATAL (s->server != NULL
                   && canopy_test_process_wait_output (s->server, " started: ", 20));
  output = canopy_test_process_output (s->server);
  s->console_port = port_after (output, console);
  s->agent_port = port_after (output, agents);
  CU_ASSERT_FATAL (s->console_port != 0 && s->agent_port != 0);
  /* Keep the ports across restarts: agents are configured with them. */
  write_server_config (s);
}

/* Starts the origin on @port, 0: any. */
static void
origin_start_on (CanopyTestSite *s, const char *port)
{
  g_autofree char *origin = program ("tests/canopy-test-origin");
  g_autofree char *address = server_address (s);
  const char *argv[] = { origin, s->package, address, port, NULL };
  const char *line;

  s->origin = spawn_in (s, 0, argv);
  CU_ASSERT_FATAL (s->origin != NULL
                   && canopy_test_process_wait_output (s->origin, "origin http://", 10));
  line = strstr (canopy_test_process_output (s->origin), "origin ");
  g_free (s->origin_url);
  s->origin_url = g_strndup (line + strlen ("origin "), strcspn (line + strlen ("origin "), "\n"));
}

static void
origin_start (CanopyTestSite *s)
{
  origin_start_on (s, "0");
}

void
canopy_test_site_restart_origin (CanopyTestSite *s)
{
  g_autoptr (GUri) uri = g_uri_parse (s->origin_url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *port = NULL;

  g_assert (uri != NULL && s->origin == NULL);
  port = g_strdup_printf ("%d", g_uri_get_port (uri));
  origin_start_on (s, port);
}

/* Devices of a real site each have their own disk; the site's agents share
 * this machine's. As root, each agent runs in a mount namespace of its own
 * where the destination directory is its own directory, so every installed
 * copy can be compared with the original, not only the last one written. */
static gboolean
private_destinations (void)
{
  return getuid () == 0;
}

static char *
destination_dir (const CanopyTestSite *s)
{
  return g_build_filename (s->dir, "copies", NULL);
}

static char *
private_dir (const CanopyTestSite *s, guint slot)
{
  g_autofree char *name = g_strdup_printf ("copies-of-%u", slot);

  return g_build_filename (s->dir, name, NULL);
}

char *
canopy_test_site_copy_path (const CanopyTestSite *s, guint slot)
{
  g_autofree char *dir = private_destinations () ? private_dir (s, slot) : destination_dir (s);

  return g_build_filename (dir, "package.bin", NULL);
}

/* Prepends to @argv: unshare --mount, then a shell that binds the slot's own
 * directory over the destination directory and runs the rest. @owned
 * keeps the strings it made. */
static void
add_private_destination (const CanopyTestSite *s, GPtrArray *argv, GPtrArray *owned, guint slot)
{
  char *own = private_dir (s, slot);
  char *shared = destination_dir (s);

  g_assert (g_mkdir_with_parents (own, 0755) == 0 && g_mkdir_with_parents (shared, 0755) == 0);
  g_ptr_array_add (owned, own);
  g_ptr_array_add (owned, shared);
  g_ptr_array_add (argv, (gpointer) "unshare");
  g_ptr_array_add (argv, (gpointer) "--mount");
  g_ptr_array_add (argv, (gpointer) "--propagation=private");
  g_ptr_array_add (argv, (gpointer) "sh");
  g_ptr_array_add (argv, (gpointer) "-c");
  g_ptr_array_add (argv, (gpointer) "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"");
  g_ptr_array_add (argv, (gpointer) "canopy-private-destination");
  g_ptr_array_add (argv, own);
  g_ptr_array_add (argv, shared);
}

CanopyTestProcess *
canopy_test_site_agent_start (CanopyTestSite *s, guint office, guint index)
{
  return canopy_test_site_device_start (s, office, index, NULL);
}

CanopyTestProcess *
canopy_test_site_device_start (CanopyTestSite *s, guint office, guint index,
                               const char *const *command)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *name = g_strdup_printf ("agent-%u-%u", office, index);
  g_autofree char *state = g_build_filename (s->dir, name, NULL);
  g_autofree char *config = g_strconcat (state, ".xml", NULL);
  g_autofree char *key_from = g_build_filename (s->state, "shared-key", NULL);
  g_autofree char *key = g_build_filename (state, "shared-key", NULL);
  g_autofree char *id_path = g_build_filename (state, "device-id", NULL);
  g_autofree char *address = server_address (s);
  g_autofree char *peer = canopy_test_site_agent_address (s, office, index);
  g_autofree char *text = NULL;
  const char *extra_group = index >= CANOPY_TEST_SITE_AGENTS_PER_OFFICE
                              ? s->options.extra_group : NULL;
  /* Named pc-OFFICE-INDEX as an admin would name them; the extra slot
   * keeps the default, the host name. */
  g_autofree char *name_xml = index < CANOPY_TEST_SITE_AGENTS_PER_OFFICE
                            ? g_strdup_printf ("<name>pc-%u-%u</name>", office, index + 1)
                            : g_strdup ("");
  const char *more_group = s->options.agent_groups[canopy_test_site_slot (office, index)];
  g_autofree char *more_group_xml = more_group != NULL
                                      ? g_strdup_printf ("<group>%s</group>", more_group)
                                      : g_strdup ("");
  g_autofree char *xml = g_strdup_printf (
    "<agent><server host='%s' port='%u'/>%s<state-directory>%s</state-directory>"
    "%s<group>%s</group>%s<peers address='%s' port='0'/>"
    "<destinations><directory path='%s'/></destinations>%s"
    "<transport plugin='tcp'/></agent>",
    address, s->agent_port, s->options.agent_servers != NULL ? s->options.agent_servers : "",
    state, name_xml, extra_group != NULL ? extra_group : "Branch", more_group_xml, peer, s->dir,
    s->options.agent_xml != NULL ? s->options.agent_xml : "");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GPtrArray) owned = g_ptr_array_new_with_free_func (g_free);
  CanopyTestProcess *proc;
  guint slot = canopy_test_site_slot (office, index);

  if (private_destinations ())
    add_private_destination (s, argv, owned, slot);
  for (guint i = 0; command != NULL && command[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) command[i]);
  if (command == NULL)
    g_ptr_array_add (argv, agent);
  g_ptr_array_add (argv, (gpointer) "--config");
  g_ptr_array_add (argv, config);
  /* To see why a test failed: the agents' debug domains, as --debug takes them. */
  if (g_getenv ("CANOPY_TEST_AGENT_DEBUG") != NULL)
    {
      g_ptr_array_add (argv, (gpointer) "--debug");
      g_ptr_array_add (argv, (gpointer) g_getenv ("CANOPY_TEST_AGENT_DEBUG"));
    }
  g_ptr_array_add (argv, NULL);

  g_mkdir_with_parents (state, 0700);
  g_assert (g_file_get_contents (key_from, &text, NULL, NULL));
  g_assert (g_file_set_contents_full (key, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  proc = spawn_in (s, office, (const char *const *) argv->pdata);
  g_assert (proc != NULL);
  /* The agent says its ID when it makes it; a restarted one has it on disk. */
  CU_ASSERT_FATAL (canopy_test_process_wait_output (proc, " started", 20));
  g_free (text);
  g_assert (g_file_get_contents (id_path, &text, NULL, NULL));
  g_free (s->device_ids[slot]);
  s->device_ids[slot] = g_strdup (g_strstrip (text));
  s->installs[slot] = command == NULL;
  return proc;
}

guint
canopy_test_site_agent_index (const CanopyTestSite *s, const char *device_id)
{
  for (guint i = 0; i < CANOPY_TEST_SITE_N_AGENTS; i++)
    if (g_strcmp0 (s->device_ids[i], device_id) == 0)
      return i;
  g_assert_not_reached ();
}

/* The server's certificate was made by this test's own `canopyd init`. */
static gboolean
accept_own_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                        GTlsCertificateFlags errors, gpointer user_data)
{
  return TRUE;
}

/* Switches this thread to the network namespace @name; returns the one
 * to come back to, or -1 when there is nothing to switch. */
static int
netns_enter (const char *name)
{
  g_autofree char *path = NULL;
  int self, target;

  if (name == NULL)
    return -1;
  path = g_build_filename ("/run/netns", name, NULL);
  self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  target = open (path, O_RDONLY | O_CLOEXEC);
  g_assert (self >= 0 && target >= 0);
  g_assert (setns (target, CLONE_NEWNET) == 0);
  close (target);
  return self;
}

static void
netns_leave (int self)
{
  if (self < 0)
    return;
  g_assert (setns (self, CLONE_NEWNET) == 0);
  close (self);
}

/* A console API call with the site's token: its status, and its body in
 * @body. */
static guint
send_request (CanopyTestSite *s, const char *method, const char *path, const char *body,
              GBytes **response)
{
  g_autofree char *address = server_address (s);
  g_autofree char *uri = g_strdup_printf ("https://%s:%u%s", address, s->console_port, path);
  g_autofree char *bearer = g_strconcat ("Bearer ", s->token, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GError) error = NULL;
  int home;

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_own_certificate), NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  /* The connection is made in the server's namespace; it stays usable. */
  home = netns_enter (s->options.console_netns);
  *response = soup_session_send_and_read (s->session, msg, NULL, &error);
  netns_leave (home);
  if (error != NULL)
    fprintf (stderr, "\n    %s %s failed; canopyd said: %s\n", method, path,
             canopy_test_process_output (s->server));
  CANOPY_ASSERT_NO_ERROR (error);
  return soup_message_get_status (msg);
}

/* The body of a console API call that must answer @expected. */
static char *
site_request (CanopyTestSite *s, const char *method, const char *path, const char *body,
              guint expected)
{
  g_autoptr (GBytes) response = NULL;
  guint status = send_request (s, method, path, body, &response);

  if (status != expected)
    fprintf (stderr, "\n    %s %s: %u %.*s\n", method, path, status,
             (int) g_bytes_get_size (response), (const char *) g_bytes_get_data (response, NULL));
  CU_ASSERT_EQUAL_FATAL (status, expected);
  if (expected == SOUP_STATUS_NO_CONTENT)
    return NULL;
  /* The body is not NUL-terminated. */
  return g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
}

guint
canopy_test_site_status (CanopyTestSite *s, const char *method, const char *path)
{
  g_autoptr (GBytes) response = NULL;

  return send_request (s, method, path, NULL, &response);
}

char *
canopy_test_site_get_text (CanopyTestSite *s, const char *path)
{
  return site_request (s, "GET", path, NULL, SOUP_STATUS_OK);
}

char *
canopy_test_site_request (CanopyTestSite *s, const char *method, const char *path,
                          guint expected)
{
  return site_request (s, method, path, NULL, expected);
}

JsonNode *
canopy_test_site_api (CanopyTestSite *s, const char *method, const char *path, const char *body,
                      guint expected)
{
  g_autofree char *text = site_request (s, method, path, body, expected);
  JsonNode *node;

  if (expected == SOUP_STATUS_NO_CONTENT)
    return NULL;
  node = json_from_string (text, NULL);
  if (node == NULL)
    fprintf (stderr, "\n    %s %s answered no JSON: \"%s\"\n", method, path, text);
  CU_ASSERT_PTR_NOT_NULL_FATAL (node);
  return node;
}

void
canopy_test_site_api_send (CanopyTestSite *s, const char *method, const char *path,
                           const char *body)
{
  g_autofree char *address = server_address (s);
  g_autofree char *uri = g_strdup_printf ("https://%s:%u%s", address, s->console_port, path);
  g_autofree char *bearer = g_strconcat ("Bearer ", s->token, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_own_certificate), NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  soup_session_send_async (s->session, msg, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
}

char *
canopy_test_admin_add (const char *config, const char *name, const char *role,
                       const char *expires_days, char **output)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "admin-add", name,  "--role", role, "--config", config,
                         expires_days != NULL ? "--expires" : NULL, expires_days, NULL };
  g_autofree char *out = NULL;
  const char *at;

  /* No CUnit assertion: suites call it from their init too. */
  if (canopy_test_run (argv, &out) != 0 || (at = strstr (out, "cnp_")) == NULL)
    {
      fprintf (stderr, "\n    canopyd admin-add %s failed: %s\n", name, out);
      return NULL;
    }
  if (output != NULL)
    *output = g_strdup (out);
  return g_strndup (at, strcspn (at, " \n"));
}

/* An administrator made as an installer would, before canopyd starts. */
static char *
make_token (const CanopyTestSite *s)
{
  return canopy_test_admin_add (s->config,
                                s->options.admin_name != NULL ? s->options.admin_name
                                                              : "site-admin",
                                "administrator", NULL, NULL);
}

CanopyManifest *
canopy_test_site_manifest_of (const char *path)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileInputStream) stream = g_file_read (file, NULL, &error);
  CanopyManifest *m = NULL;

  CANOPY_ASSERT_NO_ERROR (error);
  if (stream != NULL)
    m = canopy_manifest_build (G_INPUT_STREAM (stream), "Package", "1.0",
                               CANOPY_MANIFEST_CONTENT_DEFINED, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  g_assert (m != NULL);
  return m;
}

guint
canopy_test_site_chunk_at (const CanopyManifest *m, guint64 offset)
{
  guint i = 0;

  while (i + 1 < canopy_manifest_get_n_chunks (m)
         && canopy_manifest_get_chunk_offset (m, i + 1) <= offset)
    i++;
  return i;
}

static void
write_package (CanopyTestSite *s)
{
  guint8 *data = g_malloc (s->content_size);
  guint32 x = 2463534242u;

  for (gsize i = 0; i < s->content_size; i++)
    {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      data[i] = (guint8) x;
    }
  s->package = g_build_filename (s->dir, "package.bin", NULL);
  g_assert (g_file_set_contents (s->package, (const char *) data, (gssize) s->content_size, NULL));
  g_free (data);
}

void
canopy_test_site_begin (CanopyTestSite *s, const CanopyTestSiteOptions *options)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *init[] = { canopyd, "init", "--config", NULL, NULL };
  g_autofree char *out = NULL;

  canopy_test_site_stop (s, FALSE);
  s->options = *options;
  s->content_size = options->content_size != 0 ? options->content_size
                    : canopy_test_valgrind ()    ? CANOPY_TEST_SITE_VALGRIND_CONTENT_SIZE
                                                 : CANOPY_TEST_SITE_CONTENT_SIZE;
  s->dir = canopy_test_make_tmpdir ("site");
  s->config = g_build_filename (s->dir, "canopyd.xml", NULL);
  s->state = g_build_filename (s->dir, "state", NULL);
  write_server_config (s);
  init[3] = s->config;
  CU_ASSERT_EQUAL_FATAL (canopy_test_run (init, &out), 0);
  s->token = make_token (s);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s->token);
  canopy_test_site_server_start (s);
  write_package (s);
  origin_start (s);
  s->session = soup_session_new_with_options ("timeout", 120, NULL);
}

void
canopy_test_site_start_agents (CanopyTestSite *s)
{
  for (guint o = 1; o <= CANOPY_TEST_SITE_OFFICES; o++)
    for (guint i = 0; i < CANOPY_TEST_SITE_AGENTS_PER_OFFICE; i++)
      s->agents[canopy_test_site_slot (o, i)] = canopy_test_site_agent_start (s, o, i);
}

/* A daemon that does not exit with 0 (under valgrind, 99 is a memory
 * error or a leak) shows the end of its output, which says why. */
static void
stop_process (CanopyTestProcess **proc, gboolean check)
{
  int status;
  const char *output;
  gsize length;

  if (*proc == NULL)
    return;
  canopy_test_process_signal (*proc, SIGTERM);
  status = canopy_test_process_wait_exit (*proc, 20);
  if (check)
    {
      CU_ASSERT_EQUAL (status, 0);
      output = canopy_test_process_output (*proc);
      length = strlen (output);
      if (status != 0)
        fprintf (stderr, "\n    exit status %d; its output ends:\n%s\n", status,
                 output + (length > 8000 ? length - 8000 : 0));
    }
  g_clear_pointer (proc, canopy_test_process_free);
}

void
canopy_test_site_stop (CanopyTestSite *s, gboolean check)
{
  for (guint i = 0; i < G_N_ELEMENTS (s->agents); i++)
    stop_process (&s->agents[i], check);
  stop_process (&s->server, check);
  stop_process (&s->origin, FALSE);
  g_clear_object (&s->session);
  for (guint i = 0; i < G_N_ELEMENTS (s->device_ids); i++)
    g_free (s->device_ids[i]);
  g_free (s->dir);
  g_free (s->config);
  g_free (s->state);
  g_free (s->package);
  g_free (s->origin_url);
  g_free (s->origin_log);
  g_free (s->token);
  memset (s, 0, sizeof *s);
}

char *
canopy_test_site_register (CanopyTestSite *s)
{
  g_autofree char *content_body = g_strdup_printf (
    "{\"name\": \"Package\", \"version\": \"1.0\", \"location\": \"%s\"}", s->origin_url);
  g_autoptr (JsonNode) content = canopy_test_site_api (s, "POST", "/api/v1/content",
                                                       content_body, SOUP_STATUS_CREATED);
  JsonObject *object = json_node_get_object (content);

  CU_ASSERT_EQUAL (json_object_get_int_member (object, "size"), (gint64) s->content_size);
  return g_strdup (json_object_get_string_member (object, "id"));
}

void
canopy_test_site_deploy_content (CanopyTestSite *s, const char *content_id)
{
  g_free (canopy_test_site_create_deployment (s, content_id, NULL));
}

char *
canopy_test_site_create_deployment (CanopyTestSite *s, const char *content_id,
                                    const char *const *groups)
{
  const char *const branch[] = { "Branch", NULL };
  g_autofree char *quoted = NULL;
  g_autofree char *body = NULL;
  g_autoptr (JsonNode) created = NULL;

  /* As root each agent sees its own directory at this destination
   * (private_destinations()). */
  quoted = g_strjoinv ("\", \"", (char **) (groups != NULL ? groups : branch));
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"%s\"], "
                          "\"destination\": \"%s/copies/package.bin\"}",
                          content_id, quoted, s->dir);
  created = canopy_test_site_api (s, "POST", "/api/v1/deployments", body, SOUP_STATUS_CREATED);
  return g_strdup (json_object_get_string_member (json_node_get_object (created), "id"));
}

char *
canopy_test_site_deploy (CanopyTestSite *s)
{
  char *content_id = canopy_test_site_register (s);

  canopy_test_site_deploy_content (s, content_id);
  return content_id;
}

guint64
canopy_test_site_stop_origin (CanopyTestSite *s)
{
  const char *line;
  guint64 served;

  canopy_test_process_signal (s->origin, SIGTERM);
  canopy_test_process_wait_exit (s->origin, 10);
  line = strstr (canopy_test_process_output (s->origin), "served ");
  served = line != NULL ? g_ascii_strtoull (line + strlen ("served "), NULL, 10) : G_MAXUINT64;
  line = line != NULL ? strstr (line, " in ") : NULL;
  s->origin_requests = line != NULL ? g_ascii_strtoull (line + strlen (" in "), NULL, 10) : 0;
  g_free (s->origin_log);
  s->origin_log = g_strdup (canopy_test_process_output (s->origin));
  g_clear_pointer (&s->origin, canopy_test_process_free);
  return served;
}

void
canopy_test_site_pump (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10000);
}

JsonObject *
canopy_test_site_deployment (CanopyTestSite *s, JsonNode **holder)
{
  JsonArray *array;

  *holder = canopy_test_site_api (s, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
  array = json_node_get_array (*holder);
  return json_array_get_length (array) > 0 ? json_array_get_object_element (array, 0) : NULL;
}

JsonNode *
canopy_test_site_wait_done (CanopyTestSite *s, guint expected, guint timeout_s)
{
  return canopy_test_site_wait_deployment_done (s, NULL, expected, timeout_s);
}

JsonNode *
canopy_test_site_wait_deployment_done (CanopyTestSite *s, const char *id, guint expected,
                                       guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time ()
                    + (gint64) canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = canopy_test_site_deployment (s, &holder);
      JsonArray *all = json_node_get_array (holder);

      for (guint i = 0; id != NULL && i < json_array_get_length (all); i++)
        if (g_str_equal (json_object_get_string_member (json_array_get_object_element (all, i),
                                                        "id"),
                         id))
          d = json_array_get_object_element (all, i);
      if (id != NULL && d != NULL && !g_str_equal (json_object_get_string_member (d, "id"), id))
        d = NULL;
      if (d != NULL && json_object_get_int_member (d, "done") >= expected)
        return json_node_init_object (json_node_alloc (), d);
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *text = json_to_string (holder, TRUE);
          fprintf (stderr, "\n    not done in %u s: %s\n", timeout_s, text);
          return NULL;
        }
      canopy_test_site_pump (500);
    }
}

JsonObject *
canopy_test_site_find (JsonObject *object, const char *array, const char *member,
                       const char *value)
{
  JsonArray *elements = json_object_get_array_member (object, array);

  for (guint i = 0; elements != NULL && i < json_array_get_length (elements); i++)
    {
      JsonObject *element = json_array_get_object_element (elements, i);
      if (g_strcmp0 (json_object_get_string_member (element, member), value) == 0)
        return element;
    }
  return NULL;
}

JsonObject *
canopy_test_site_office_of (JsonObject *d, const char *name)
{
  return canopy_test_site_find (d, "offices", "office", name);
}

JsonObject *
canopy_test_site_health_check (CanopyTestSite *s, const char *name, JsonNode **holder)
{
  *holder = canopy_test_site_api (s, "GET", "/api/v1/health", NULL, SOUP_STATUS_OK);
  return canopy_test_site_find (json_node_get_object (*holder), "checks", "name", name);
}

gboolean
canopy_test_site_same_file (const char *a, const char *b)
{
  g_autofree char *x = NULL, *y = NULL;
  gsize nx = 0, ny = 0;

  return g_file_get_contents (a, &x, &nx, NULL) && g_file_get_contents (b, &y, &ny, NULL)
         && nx == ny && memcmp (x, y, nx) == 0;
}

void
canopy_test_site_assert_copy (CanopyTestSite *s)
{
  guint compared = 0;

  for (guint slot = 0; slot < CANOPY_TEST_SITE_N_AGENTS; slot++)
    {
      g_autofree char *copy = NULL;

      if (!s->installs[slot])
        continue;
      copy = canopy_test_site_copy_path (s, slot);
      if (!canopy_test_site_same_file (copy, s->package))
        fprintf (stderr, "\n    the copy of agent slot %u, %s, differs from the package\n", slot,
                 copy);
      CU_ASSERT (canopy_test_site_same_file (copy, s->package));
      compared++;
      if (!private_destinations ())
        {
          printf ("\n    (not root: the agents share one destination, so one copy was "
                  "compared)\n");
          break;
        }
    }
  CU_ASSERT (compared > 0);
}

void
canopy_test_site_kill_hard (CanopyTestProcess **proc)
{
  canopy_test_process_signal (*proc, SIGKILL);
  canopy_test_process_wait_exit (*proc, 10);
  g_clear_pointer (proc, canopy_test_process_free);
}

static void
copy_key (const CanopyTestSite *from, const CanopyTestSite *to, const char *name)
{
  g_autofree char *source = g_build_filename (from->state, name, NULL);
  g_autofree char *target = g_build_filename (to->state, name, NULL);
  g_autofree char *text = NULL;
  gsize length;

  g_assert (g_file_get_contents (source, &text, &length, NULL));
  g_assert (g_file_set_contents_full (target, text, (gssize) length, G_FILE_SET_CONTENTS_NONE,
                                      0600, NULL));
}

void
canopy_test_site_share_keys (CanopyTestSite *from, CanopyTestSite *to)
{
  canopy_test_process_signal (to->server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (to->server, 20), 0);
  g_clear_pointer (&to->server, canopy_test_process_free);
  copy_key (from, to, "shared-key");
  copy_key (from, to, "signing-key.pem");
  canopy_test_site_server_start (to);
}

guint
canopy_test_site_devices_online (CanopyTestSite *s)
{
  g_autoptr (JsonNode) answer = canopy_test_site_api (s, "GET", "/api/v1/devices", NULL,
                                                      SOUP_STATUS_OK);
  JsonArray *devices;
  guint online = 0;

  if (answer == NULL)
    return 0;
  devices = json_object_get_array_member (json_node_get_object (answer), "devices");
  for (guint i = 0; i < json_array_get_length (devices); i++)
    if (json_object_get_boolean_member (json_array_get_object_element (devices, i), "online"))
      online++;
  return online;
}

gboolean
canopy_test_site_wait_online (CanopyTestSite *s, guint expected, guint timeout_s)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      if (canopy_test_site_devices_online (s) == expected)
        return TRUE;
      canopy_test_site_pump (250);
    }
  return FALSE;
}
