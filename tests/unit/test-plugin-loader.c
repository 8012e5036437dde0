/* Plugin loader: the real loader against the test plugins built under
 * tests/plugins, one for each way a plugin must be refused. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/plugin-loader.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
test_plugin_dir (void)
{
  return canopy_test_build_path ("tests", "plugins", ".libs", NULL);
}

static CanopyPluginLoader *
new_loader (void)
{
  g_autofree char *dir = test_plugin_dir ();
  const char *path[] = { dir, NULL };

  return canopy_plugin_loader_new (path);
}

/* Loads @name as @kind and checks that it fails with @code, naming @text. */
static void
assert_refused (const char *name, CanopyPluginKind kind, CanopyPluginError code,
                const char *text)
{
  g_autoptr (CanopyPluginLoader) loader = new_loader ();
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *plugin = canopy_plugin_loader_load (loader, name, kind, &error);

  CU_ASSERT_PTR_NULL (plugin);
  CU_ASSERT_PTR_NOT_NULL_FATAL (error);
  if (!g_error_matches (error, CANOPY_PLUGIN_ERROR, (int) code))
    fprintf (stderr, "\n    expected code %d, got %d: %s\n", code, error->code, error->message);
  CU_ASSERT (g_error_matches (error, CANOPY_PLUGIN_ERROR, (int) code));
  CANOPY_ASSERT_CONTAINS (error->message, text);
}

static void
test_loads_good_plugins (void)
{
  g_autoptr (CanopyPluginLoader) loader = new_loader ();
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *transport =
    canopy_plugin_loader_load (loader, "test-transport", CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  const CanopyPlugin *backend;
  g_autoptr (GPtrArray) loaded = NULL;

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (canopy_plugin_get_name (transport), "test-transport");
  CU_ASSERT_STRING_EQUAL (canopy_plugin_get_descriptor (transport)->version, "1.0");
  CU_ASSERT_PTR_NOT_NULL (canopy_plugin_get_ops (transport));
  CANOPY_ASSERT_CONTAINS (canopy_plugin_get_path (transport), "canopy-test-transport.so");

  backend = canopy_plugin_loader_load (loader, "test-backend", CANOPY_PLUGIN_KIND_BACKEND, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (canopy_plugin_get_descriptor (backend)->kind, CANOPY_PLUGIN_KIND_BACKEND);
  CU_ASSERT_PTR_EQUAL (canopy_plugin_loader_lookup (loader, "test-backend"), backend);

  loaded = canopy_plugin_loader_get_plugins (loader);
  CU_ASSERT_EQUAL (loaded->len, 2);
}

static void
test_missing_file (void)
{
  assert_refused ("absent", CANOPY_PLUGIN_KIND_BACKEND, CANOPY_PLUGIN_ERROR_NOT_FOUND,
                  "canopy-absent.so");
}

static void
test_invalid_names (void)
{
  assert_refused ("../../lib/evil", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_INVALID_NAME, "short name");
  assert_refused ("", CANOPY_PLUGIN_KIND_BACKEND, CANOPY_PLUGIN_ERROR_INVALID_NAME,
                  "short name");
  assert_refused ("SQLite", CANOPY_PLUGIN_KIND_BACKEND, CANOPY_PLUGIN_ERROR_INVALID_NAME,
                  "\"SQLite\"");
  /* The documented names are [a-z0-9-]+: no underscore. */
  assert_refused ("my_backend", CANOPY_PLUGIN_KIND_BACKEND, CANOPY_PLUGIN_ERROR_INVALID_NAME,
                  "\"my_backend\"");
}

static void
test_missing_symbol (void)
{
  assert_refused ("test-no-descriptor", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_NO_DESCRIPTOR, "canopy_plugin_descriptor");
}

static void
test_abi_mismatch (void)
{
  assert_refused ("test-bad-abi", CANOPY_PLUGIN_KIND_BACKEND, CANOPY_PLUGIN_ERROR_ABI_MISMATCH,
                  "built for plugin ABI 42");
}

static void
test_name_mismatch (void)
{
  assert_refused ("test-misnamed", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_NAME_MISMATCH, "calls itself \"someone-else\"");
}

static void
test_incomplete_descriptor (void)
{
  assert_refused ("test-incomplete", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_INCOMPLETE, "incomplete descriptor");
}

static void
test_unresolved_symbol (void)
{
  assert_refused ("test-unresolved", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_NOT_LOADABLE, "canopy_test_symbol_that_does_not_exist");
}

static void
test_kind_mismatch (void)
{
  assert_refused ("test-transport", CANOPY_PLUGIN_KIND_BACKEND,
                  CANOPY_PLUGIN_ERROR_KIND_MISMATCH, "is a transport plugin, not a backend");
}

static void
test_duplicate_name (void)
{
  g_autoptr (CanopyPluginLoader) loader = new_loader ();
  g_autoptr (GError) error = NULL;

  CU_ASSERT_PTR_NOT_NULL (canopy_plugin_loader_load (loader, "test-backend",
                                                     CANOPY_PLUGIN_KIND_BACKEND, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NULL (canopy_plugin_loader_load (loader, "test-backend",
                                                 CANOPY_PLUGIN_KIND_BACKEND, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_DUPLICATE));
  CANOPY_ASSERT_CONTAINS (error->message, "named twice");
}

/* A directory of plugin files made by the test, to cover what cannot be
 * built: a file that is not a module, unsafe permissions. */
static char *
make_plugin_dir_with (const char *name, const char *contents, mode_t mode)
{
  char *dir = canopy_test_make_tmpdir ("plugins");
  g_autofree char *path = g_build_filename (dir, name, NULL);

  CU_ASSERT_FATAL (g_file_set_contents (path, contents, -1, NULL));
  CU_ASSERT_FATAL (g_chmod (path, mode) == 0);
  return dir;
}

static void
assert_refused_in (const char *dir, const char *name, CanopyPluginError code, const char *text)
{
  const char *path[] = { dir, NULL };
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (path);
  g_autoptr (GError) error = NULL;

  CU_ASSERT_PTR_NULL (canopy_plugin_loader_load (loader, name, CANOPY_PLUGIN_KIND_BACKEND,
                                                 &error));
  CU_ASSERT_PTR_NOT_NULL_FATAL (error);
  CU_ASSERT (g_error_matches (error, CANOPY_PLUGIN_ERROR, (int) code));
  CANOPY_ASSERT_CONTAINS (error->message, text);
}

static void
test_not_a_module (void)
{
  g_autofree char *dir = make_plugin_dir_with ("canopy-garbage.so", "this is not ELF\n", 0644);

  assert_refused_in (dir, "garbage", CANOPY_PLUGIN_ERROR_NOT_LOADABLE, "canopy-garbage.so");
}

static void
test_unsafe_files (void)
{
  g_autofree char *writable = make_plugin_dir_with ("canopy-shared.so", "x", 0666);
  g_autofree char *setuid_dir = make_plugin_dir_with ("canopy-suid.so", "x", 04755);
  g_autofree char *dir_dir = canopy_test_make_tmpdir ("plugins");
  g_autofree char *as_dir = g_build_filename (dir_dir, "canopy-dir.so", NULL);

  assert_refused_in (writable, "shared", CANOPY_PLUGIN_ERROR_UNSAFE_FILE, "chmod go-w");
  assert_refused_in (setuid_dir, "suid", CANOPY_PLUGIN_ERROR_UNSAFE_FILE, "setuid");
  CU_ASSERT_FATAL (g_mkdir (as_dir, 0755) == 0);
  assert_refused_in (dir_dir, "dir", CANOPY_PLUGIN_ERROR_UNSAFE_FILE, "not a regular file");
}

static void
test_search_path_order_and_discovery (void)
{
  g_autofree char *real = test_plugin_dir ();
  g_autofree char *shadow = make_plugin_dir_with ("canopy-test-backend.so", "not ELF", 0644);
  const char *path[] = { real, shadow, NULL };
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (path);
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) names = canopy_plugin_loader_discover (loader);

  /* The first directory wins; the broken copy behind it is never opened. */
  CU_ASSERT_PTR_NOT_NULL (canopy_plugin_loader_load (loader, "test-backend",
                                                     CANOPY_PLUGIN_KIND_BACKEND, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (g_strv_contains ((const char *const *) names, "test-transport"));
  CU_ASSERT (g_strv_contains ((const char *const *) names, "test-bad-abi"));
  CU_ASSERT_EQUAL (g_strv_length (names), 7);
}

static void
test_environment_search_path (void)
{
  g_autofree char *real = test_plugin_dir ();
  g_autofree char *saved = g_strdup (g_getenv (CANOPY_PLUGIN_PATH_ENV));
  g_autofree char *value = g_strdup_printf ("/nonexistent:%s", real);
  g_autoptr (CanopyPluginLoader) loader = NULL;

  g_setenv (CANOPY_PLUGIN_PATH_ENV, value, TRUE);
  loader = canopy_plugin_loader_new (NULL);
  CU_ASSERT_STRING_EQUAL (canopy_plugin_loader_get_search_path (loader)[0], "/nonexistent");
  CU_ASSERT_STRING_EQUAL (canopy_plugin_loader_get_search_path (loader)[1], real);
  if (saved != NULL)
    g_setenv (CANOPY_PLUGIN_PATH_ENV, saved, TRUE);
  else
    g_unsetenv (CANOPY_PLUGIN_PATH_ENV);
}

CANOPY_TEST_SUITE (plugin_loader, "plugin-loader", NULL, NULL,
                   { "loads good plugins", test_loads_good_plugins },
                   { "missing file", test_missing_file },
                   { "invalid names", test_invalid_names },
                   { "missing descriptor symbol", test_missing_symbol },
                   { "ABI mismatch", test_abi_mismatch },
                   { "name mismatch", test_name_mismatch },
                   { "incomplete descriptor", test_incomplete_descriptor },
                   { "unresolved symbol", test_unresolved_symbol },
                   { "kind mismatch", test_kind_mismatch },
                   { "duplicate name", test_duplicate_name },
                   { "not a loadable module", test_not_a_module },
                   { "unsafe files", test_unsafe_files },
                   { "search path order and discovery", test_search_path_order_and_discovery },
                   { "environment search path", test_environment_search_path })
