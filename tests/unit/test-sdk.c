/* The SDK is the plugin ABI: libcanopy exports exactly the functions that
 * the headers of core/canopy/ declare, so a plugin cannot link the core's internals. */
#include "build-config.h"

#include "tests/canopy-test.h"

#include <gmodule.h>
#include <string.h>

/* Every "canopy_name (" declared outside comments in the SDK headers. */
static GHashTable *
declared_functions (void)
{
  g_autofree char *dir_path = canopy_test_src_path ("core", "canopy", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GRegex) declaration = g_regex_new ("\\b(canopy_[a-z0-9_]+) \\(", 0, 0, NULL);
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  const char *name;

  g_assert (dir != NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *text = NULL;
      g_auto (GStrv) lines = NULL;

      if (!g_str_has_suffix (name, ".h") || !g_file_get_contents (path, &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", -1);
      for (char **l = lines; *l != NULL; l++)
        {
          g_autoptr (GMatchInfo) match = NULL;
          const char *line = *l + strspn (*l, " ");

          if (g_str_has_prefix (line, "*") || g_str_has_prefix (line, "/*")
              || g_str_has_prefix (line, "#"))
            continue;
          if (g_regex_match (declaration, line, 0, &match))
            g_hash_table_add (names, g_match_info_fetch (match, 1));
        }
    }
  return names;
}

/* The names in the global list of core/sdk/libcanopy.ver. */
static GHashTable *
exported_functions (void)
{
  g_autofree char *path = canopy_test_src_path ("core", "sdk", "libcanopy.ver", NULL);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_assert (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      char *name = g_strstrip (*l);

      if (g_str_has_prefix (name, "canopy_") && g_str_has_suffix (name, ";"))
        g_hash_table_add (names, g_strndup (name, strlen (name) - 1));
    }
  return names;
}

static void
assert_subset (GHashTable *a, GHashTable *b, const char *what)
{
  GHashTableIter iter;
  const char *name;

  g_hash_table_iter_init (&iter, a);
  while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
    {
      if (!g_hash_table_contains (b, name))
        fprintf (stderr, "\n    %s %s\n", name, what);
      CU_ASSERT (g_hash_table_contains (b, name));
    }
}

static void
test_symbol_list_matches_headers (void)
{
  g_autoptr (GHashTable) declared = declared_functions ();
  g_autoptr (GHashTable) exported = exported_functions ();

  CU_ASSERT (g_hash_table_size (declared) >= 20);
  assert_subset (declared, exported, "is declared in core/canopy/ but not exported");
  assert_subset (exported, declared, "is exported but not declared in core/canopy/");
}

/* The built library resolves every SDK function and none of the core's. */
static void
test_library_exports_only_the_sdk (void)
{
  g_autofree char *path = canopy_test_build_path ("core", "sdk", ".libs", "libcanopy.so", NULL);
  g_autoptr (GHashTable) declared = declared_functions ();
  const char *internal[] = { "canopy_config_load", "canopy_plugin_loader_new",
                             "canopy_manifest_parse", "canopy_wire_decode",
                             "canopy_shared_key_load", NULL };
  GModule *module = g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  GHashTableIter iter;
  const char *name;
  gpointer symbol;

  if (module == NULL)
    fprintf (stderr, "\n    %s\n", g_module_error ());
  CU_ASSERT_PTR_NOT_NULL_FATAL (module);
  g_hash_table_iter_init (&iter, declared);
  while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
    CU_ASSERT (g_module_symbol (module, name, &symbol));
  for (const char *const *n = internal; *n != NULL; n++)
    {
      if (g_module_symbol (module, *n, &symbol))
        fprintf (stderr, "\n    libcanopy exports the core's %s\n", *n);
      CU_ASSERT_FALSE (g_module_symbol (module, *n, &symbol));
    }
  g_module_close (module);
}

CANOPY_TEST_SUITE (sdk, "sdk", NULL, NULL,
                   { "symbol list matches the headers", test_symbol_list_matches_headers },
                   { "library exports only the SDK", test_library_exports_only_the_sdk })
