/* Configuration: every example file in tests/config/data and conf/ is
 * checked, and each invalid one must fail saying its line and element. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/config/expectations.h"
#include "lib/config.h"
#include "server/distributor.h"
#include "server/server-config.h"

#include <string.h>

GStrv
canopy_test_read_expectations (const char *path)
{
  g_autofree char *data = NULL;
  const char *start;
  const char *end;
  g_autofree char *spec = NULL;

  if (!g_file_get_contents (path, &data, NULL, NULL))
    return NULL;
  start = strstr (data, "<!-- expect: ");
  if (start == NULL)
    return NULL;
  start += strlen ("<!-- expect: ");
  end = strstr (start, " -->");
  if (end == NULL)
    return NULL;
  spec = g_strndup (start, end - start);
  return g_strsplit (spec, "|", -1);
}

static void
check_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config = canopy_config_load_any (path, NULL, &error);

  if (!g_str_has_suffix (path, "-invalid.xml"))
    {
      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT_PTR_NOT_NULL (config);
      return;
    }

  {
    g_auto (GStrv) expected = canopy_test_read_expectations (path);

    CU_ASSERT_PTR_NULL (config);
    CU_ASSERT_PTR_NOT_NULL_FATAL (error);
    CU_ASSERT_PTR_NOT_NULL_FATAL (expected);
    for (char **e = expected; *e != NULL; e++)
      CANOPY_ASSERT_CONTAINS (error->message, *e);
    CU_ASSERT (strstr (error->message, ".xml:0:") == NULL);
    CU_ASSERT (strstr (error->message, "<?>") == NULL);
  }
}

static void
test_data_files (void)
{
  g_autofree char *dir_path = canopy_test_src_path ("tests", "config", "data", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint valid = 0, invalid = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);

      if (!g_str_has_suffix (name, ".xml"))
        continue;
      check_file (path);
      if (g_str_has_suffix (name, "-invalid.xml"))
        invalid++;
      else
        valid++;
    }
  CU_ASSERT (valid >= 3);
  CU_ASSERT (invalid >= 10);
}

static void
test_shipped_examples (void)
{
  const char *examples[] = { "canopyd.xml", "canopy-agent.xml" };

  for (gsize i = 0; i < G_N_ELEMENTS (examples); i++)
    {
      g_autofree char *path = canopy_test_src_path ("conf", examples[i], NULL);
      check_file (path);
    }
}

static void
test_unreadable_file (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load ("/nonexistent/canopyd.xml", CANOPY_SCHEMA_SERVER, &error);

  CU_ASSERT_PTR_NULL (config);
  CU_ASSERT (g_error_matches (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_READ));
  CANOPY_ASSERT_CONTAINS (error->message, "/nonexistent/canopyd.xml");
}

static void
test_syntax_error_shows_caret (void)
{
  const char *xml = "<server>\n  <name>x</nam>\n</server>\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load_data (xml, -1, "inline.xml", CANOPY_SCHEMA_SERVER, &error);

  CU_ASSERT_PTR_NULL (config);
  CU_ASSERT (g_error_matches (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SYNTAX));
  CANOPY_ASSERT_CONTAINS (error->message, "inline.xml:2:");
  CANOPY_ASSERT_CONTAINS (error->message, "<name>x</nam>");
  CANOPY_ASSERT_CONTAINS (error->message, "^");
}

/* A config must not make the daemon read other files or the network. */
static void
test_external_entities_not_expanded (void)
{
  const char *xml = "<?xml version='1.0'?>\n"
                    "<!DOCTYPE server [<!ENTITY secret SYSTEM 'file:///etc/hostname'>]>\n"
                    "<server><name>&secret;</name>"
                    "<backend plugin='x'/></server>\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load_data (xml, -1, "xxe.xml", CANOPY_SCHEMA_SERVER, &error);
  g_autofree char *hostname = NULL;

  /* The entity is left unexpanded, so <name> is empty, which the schema
   * refuses, at its line; the file's contents appear nowhere. */
  CU_ASSERT_PTR_NULL (config);
  CU_ASSERT_FATAL (g_error_matches (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SCHEMA));
  CANOPY_ASSERT_CONTAINS (error->message, "xxe.xml:3:");
  CANOPY_ASSERT_CONTAINS (error->message, "<name>");
  if (g_file_get_contents ("/etc/hostname", &hostname, NULL, NULL)
      && g_strstrip (hostname)[0] != '\0')
    CU_ASSERT (strstr (error->message, hostname) == NULL);
}

static void
test_node_accessors (void)
{
  const char *xml = "<server>\n"
                    "  <backend plugin='b'>\n"
                    "    <pool size='8' shared='yes'/>\n"
                    "    <host> db1 </host>\n"
                    "    <host>db2</host>\n"
                    "  </backend>\n"
                    "</server>\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load_data (xml, -1, "nodes.xml", CANOPY_SCHEMA_SERVER, &error);
  const CanopyConfigNode *backend;
  const CanopyConfigNode *pool;
  g_autoptr (GPtrArray) hosts = NULL;
  guint64 size;
  gboolean shared;

  CANOPY_ASSERT_NO_ERROR (error);
  backend = canopy_config_node_get_child (canopy_config_get_root (config), "backend");
  CU_ASSERT_PTR_NOT_NULL_FATAL (backend);
  CU_ASSERT_EQUAL (canopy_config_node_get_line (backend), 2);
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_attribute (backend, "plugin"), "b");
  CU_ASSERT_PTR_NULL (canopy_config_node_get_attribute (backend, "absent"));

  hosts = canopy_config_node_get_children (backend, "host");
  CU_ASSERT_EQUAL_FATAL (hosts->len, 2);
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_text (g_ptr_array_index (hosts, 0)), "db1");
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_child_text (backend, "host", NULL), "db1");
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_child_text (backend, "none", "dflt"), "dflt");

  pool = canopy_config_node_get_child (backend, "pool");
  CU_ASSERT (canopy_config_node_get_uint (pool, "size", 1, 64, 4, &size, &error));
  CU_ASSERT_EQUAL (size, 8);
  CU_ASSERT (canopy_config_node_get_uint (pool, "absent", 1, 64, 4, &size, &error));
  CU_ASSERT_EQUAL (size, 4);
  CU_ASSERT (canopy_config_node_get_boolean (pool, "shared", FALSE, &shared, &error));
  CU_ASSERT (shared);

  CU_ASSERT_FALSE (canopy_config_node_get_uint (pool, "size", 1, 4, 4, &size, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_VALUE));
  CANOPY_ASSERT_CONTAINS (error->message, "nodes.xml:3: element <pool>");
  CANOPY_ASSERT_CONTAINS (error->message, "\"size\" is \"8\"");
  g_clear_error (&error);
  CU_ASSERT_FALSE (canopy_config_node_get_boolean (pool, "size", FALSE, &shared, &error));
  CANOPY_ASSERT_CONTAINS (error->message, "nodes.xml:3:");
}

static void
test_plugin_fragment_validation (void)
{
  const char *xml = "<server>\n"
                    "  <backend plugin='b'>\n"
                    "    <path>/x</path>\n"
                    "    <bogus/>\n"
                    "  </backend>\n"
                    "</server>\n";
  const char *schema = "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'>"
                       "<attribute name='plugin'/>"
                       "<element name='path'><text/></element>"
                       "</element>";
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load_data (xml, -1, "frag.xml", CANOPY_SCHEMA_SERVER, &error);
  const CanopyConfigNode *backend;

  CANOPY_ASSERT_NO_ERROR (error);
  backend = canopy_config_node_get_child (canopy_config_get_root (config), "backend");
  CU_ASSERT_FALSE (canopy_config_validate_node (backend, schema, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SCHEMA));
  CANOPY_ASSERT_CONTAINS (error->message, "frag.xml:4:");
  CANOPY_ASSERT_CONTAINS (error->message, "<bogus>");
  g_clear_error (&error);

  CU_ASSERT_FALSE (canopy_config_validate_node (backend, "<not-a-grammar/>", &error));
  CANOPY_ASSERT_CONTAINS (error->message, "schema");
}

/* <content-store> read into canopyd's configuration, with its defaults. */
static void
test_content_store_element (void)
{
  g_autofree char *full = canopy_test_src_path ("tests", "config", "data", "canopyd-full.xml",
                                                NULL);
  g_autofree char *minimal = canopy_test_src_path ("tests", "config", "data",
                                                   "canopyd-minimal.xml", NULL);
  g_autofree char *dir = canopy_test_make_tmpdir ("content-store-config");
  g_autofree char *bare = g_build_filename (dir, "bare.xml", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyServerConfig) config = canopy_server_config_load (full, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (config->content_store_directory, "/var/lib/canopy-test/content");
  CU_ASSERT_EQUAL (config->content_store_quota, G_GUINT64_CONSTANT (50) << 30);
  CU_ASSERT_EQUAL (config->content_store_upload_slots, 16);
  CU_ASSERT_EQUAL_FATAL (g_strv_length (config->content_sources), 1);
  CU_ASSERT_STRING_EQUAL (config->content_sources[0], "/srv/packages");
  g_clear_pointer (&config, canopy_server_config_free);

  config = canopy_server_config_load (minimal, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NULL (config->content_store_directory);
  /* No file is a content source unless listed. */
  CU_ASSERT_EQUAL (g_strv_length (config->content_sources), 0);
  g_clear_pointer (&config, canopy_server_config_free);

  /* The element alone: the copies go under the state directory, no quota. */
  g_assert (g_file_set_contents (bare,
                                 "<server><state-directory>/srv/c</state-directory>"
                                 "<content-store/><backend plugin='test-backend'/></server>",
                                 -1, NULL));
  config = canopy_server_config_load (bare, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (config->content_store_directory, "/srv/c/content");
  CU_ASSERT_EQUAL (config->content_store_quota, 0);
  CU_ASSERT_EQUAL (config->content_store_upload_slots, CANOPY_SERVER_CONFIG_UPLOAD_SLOTS);
}

/* <console token-lifetime-days> and the limits against hostile clients,
 * with their defaults. */
static void
test_console_element (void)
{
  g_autofree char *full = canopy_test_src_path ("tests", "config", "data", "canopyd-full.xml",
                                                NULL);
  g_autofree char *minimal = canopy_test_src_path ("tests", "config", "data",
                                                   "canopyd-minimal.xml", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyServerConfig) config = canopy_server_config_load (full, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (config->console_token_lifetime_days, 30);
  CU_ASSERT_EQUAL (config->console_handshake_timeout, 15);
  CU_ASSERT_EQUAL (config->console_idle_timeout, 120);
  CU_ASSERT_EQUAL (config->console_max_per_address, 8);
  CU_ASSERT_EQUAL (config->console_max_connections, 256);
  CU_ASSERT_EQUAL (config->background_target_ms, 25);
  g_clear_pointer (&config, canopy_server_config_free);
  config = canopy_server_config_load (minimal, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (config->console_token_lifetime_days, CANOPY_SERVER_CONFIG_TOKEN_LIFETIME_DAYS);
  CU_ASSERT_EQUAL (config->console_handshake_timeout, CANOPY_SERVER_CONFIG_HANDSHAKE_TIMEOUT);
  CU_ASSERT_EQUAL (config->console_idle_timeout, CANOPY_SERVER_CONFIG_IDLE_TIMEOUT);
  CU_ASSERT_EQUAL (config->console_max_per_address, CANOPY_SERVER_CONFIG_MAX_PER_ADDRESS);
  CU_ASSERT_EQUAL (config->console_max_connections, CANOPY_SERVER_CONFIG_MAX_CONNECTIONS);
  CU_ASSERT_EQUAL (config->background_target_ms, CANOPY_DISTRIBUTOR_DEFAULT_BACKGROUND_TARGET_MS);
}

/* <cluster>: off unless there; its lease and change detection. */
static void
test_cluster_element (void)
{
  g_autofree char *full = canopy_test_src_path ("tests", "config", "data", "canopyd-full.xml",
                                                NULL);
  g_autofree char *minimal = canopy_test_src_path ("tests", "config", "data",
                                                   "canopyd-minimal.xml", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyServerConfig) config = canopy_server_config_load (full, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (config->cluster);
  CU_ASSERT_EQUAL (config->cluster_lease_s, 30);
  CU_ASSERT (config->cluster_poll);
  g_clear_pointer (&config, canopy_server_config_free);
  config = canopy_server_config_load (minimal, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FALSE (config->cluster);
  CU_ASSERT_EQUAL (config->cluster_lease_s, CANOPY_SERVER_CONFIG_LEASE_S);
  CU_ASSERT_FALSE (config->cluster_poll);
}

CANOPY_TEST_SUITE (config, "config", NULL, NULL,
                   { "data files", test_data_files },
                   { "cluster element", test_cluster_element },
                   { "console element", test_console_element },
                   { "shipped examples", test_shipped_examples },
                   { "unreadable file", test_unreadable_file },
                   { "syntax error shows line and caret", test_syntax_error_shows_caret },
                   { "external entities not expanded", test_external_entities_not_expanded },
                   { "node accessors", test_node_accessors },
                   { "plugin fragment validation", test_plugin_fragment_validation },
                   { "content store element", test_content_store_element })
