/* Plugin loader: short name → file → checked module → checked descriptor.
 * Every refusal is a GError that names the file and the reason. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-plugin-loader"

#include "lib/plugin-loader.h"
#include "lib/config.h"
#include "lib/i18n.h"

#include <gmodule.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLUGIN_FILE_PREFIX "canopy-"

struct _CanopyPlugin {
  GModule *module;
  char *path;
  const CanopyPluginDescriptor *descriptor;
};

struct _CanopyPluginLoader {
  GStrv search_path;
  GHashTable *plugins; /* name → CanopyPlugin */
};

G_DEFINE_QUARK (canopy-plugin-error-quark, canopy_plugin_error)

static void
plugin_free (CanopyPlugin *plugin)
{
  /* Resident: this frees the handle but never unmaps the code, which may
   * have registered types or started threads. */
  g_module_close (plugin->module);
  g_free (plugin->path);
  g_free (plugin);
}

CanopyPluginLoader *
canopy_plugin_loader_new (const char *const *search_path)
{
  CanopyPluginLoader *loader = g_new0 (CanopyPluginLoader, 1);

  if (search_path != NULL)
    loader->search_path = g_strdupv ((char **) search_path);
  else if (g_getenv (CANOPY_PLUGIN_PATH_ENV) != NULL && *g_getenv (CANOPY_PLUGIN_PATH_ENV) != '\0')
    loader->search_path = g_strsplit (g_getenv (CANOPY_PLUGIN_PATH_ENV),
                                      G_SEARCHPATH_SEPARATOR_S, -1);
  else
    loader->search_path = g_strsplit (PLUGINDIR, G_SEARCHPATH_SEPARATOR_S, -1);

  loader->plugins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) plugin_free);
  return loader;
}

void
canopy_plugin_loader_free (CanopyPluginLoader *loader)
{
  if (loader == NULL)
    return;
  g_hash_table_unref (loader->plugins);
  g_strfreev (loader->search_path);
  g_free (loader);
}

const char *const *
canopy_plugin_loader_get_search_path (const CanopyPluginLoader *loader)
{
  return (const char *const *) loader->search_path;
}

static gboolean
name_is_valid (const char *name)
{
  if (name[0] == '\0' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  return TRUE;
}

static char *
plugin_file_name (const char *name)
{
  return g_strconcat (PLUGIN_FILE_PREFIX, name, ".", G_MODULE_SUFFIX, NULL);
}

static char *
find_plugin_file (const CanopyPluginLoader *loader, const char *name, GError **error)
{
  g_autofree char *file_name = plugin_file_name (name);
  g_autofree char *searched = NULL;

  for (char **dir = loader->search_path; *dir != NULL; dir++)
    {
      g_autofree char *path = g_build_filename (*dir, file_name, NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
    }
  searched = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, loader->search_path);
  g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NOT_FOUND,
               _("Plugin \"%s\" is not installed: no file %s in %s; check the plugin name "
                 "or install the package that provides it"), name, file_name, searched);
  return NULL;
}

/* Refuse files an attacker could have planted or changed, before dlopen
 * runs any of their code. */
static gboolean
check_plugin_file (const char *path, GError **error)
{
  struct stat st;

  if (stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NOT_FOUND,
                   _("Cannot examine plugin file %s: %s"), path, g_strerror (saved_errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_UNSAFE_FILE,
                   _("Refusing plugin file %s: it is not a regular file"), path);
      return FALSE;
    }
  if (st.st_uid != 0 && st.st_uid != geteuid ())
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_UNSAFE_FILE,
                   _("Refusing plugin file %s: it belongs to user %u, not to root or the "
                     "service user; fix its owner"), path, (guint) st.st_uid);
      return FALSE;
    }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_UNSAFE_FILE,
                   _("Refusing plugin file %s: other users can write to it; run "
                     "\"chmod go-w %s\""), path, path);
      return FALSE;
    }
  if ((st.st_mode & (S_ISUID | S_ISGID)) != 0)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_UNSAFE_FILE,
                   _("Refusing plugin file %s: it is setuid or setgid"), path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_descriptor (const CanopyPluginDescriptor *desc, const char *path, const char *name,
                  GError **error)
{
  /* Only the first field is known to be laid out as we expect until the
   * ABI number matches. */
  if (desc->abi_version != CANOPY_PLUGIN_ABI_VERSION)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_ABI_MISMATCH,
                   _("Plugin file %s was built for plugin ABI %u, but this canopy uses ABI "
                     "%u; install the plugin's build for canopy %s"),
                   path, desc->abi_version, (guint) CANOPY_PLUGIN_ABI_VERSION, CANOPY_VERSION);
      return FALSE;
    }
  if (desc->name == NULL || desc->version == NULL || desc->ops == NULL
      || (desc->kind != CANOPY_PLUGIN_KIND_TRANSPORT && desc->kind != CANOPY_PLUGIN_KIND_BACKEND))
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_INCOMPLETE,
                   _("Plugin file %s has an incomplete descriptor (no name, version, kind or "
                     "operations); it cannot be used"), path);
      return FALSE;
    }
  if (!g_str_equal (desc->name, name))
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NAME_MISMATCH,
                   _("Plugin file %s calls itself \"%s\", not \"%s\"; the file was renamed or "
                     "installed under the wrong name"), path, desc->name, name);
      return FALSE;
    }
  return TRUE;
}

static CanopyPlugin *
open_plugin (const char *path, const char *name, GError **error)
{
  GModule *module;
  gpointer symbol = NULL;
  CanopyPlugin *plugin;

  if (!check_plugin_file (path, error))
    return NULL;

  /* Bind now, not lazily, so a missing symbol is refused here rather than
   * crashing the daemon later; keep the plugin's symbols to itself. */
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NOT_LOADABLE,
                   _("Plugin file %s cannot be loaded: %s"), path, g_module_error ());
      return NULL;
    }
  if (!g_module_symbol (module, CANOPY_PLUGIN_SYMBOL, &symbol) || symbol == NULL)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NO_DESCRIPTOR,
                   _("Plugin file %s is not a canopy plugin: it does not export \"%s\""),
                   path, CANOPY_PLUGIN_SYMBOL);
      g_module_close (module);
      return NULL;
    }
  if (!check_descriptor (symbol, path, name, error))
    {
      g_module_close (module);
      return NULL;
    }

  g_module_make_resident (module);
  plugin = g_new0 (CanopyPlugin, 1);
  plugin->module = module;
  plugin->path = g_strdup (path);
  plugin->descriptor = symbol;
  return plugin;
}

static gboolean
check_kind (const CanopyPlugin *plugin, CanopyPluginKind kind, GError **error)
{
  if (kind == CANOPY_PLUGIN_LOADER_ANY_KIND || plugin->descriptor->kind == kind)
    return TRUE;
  g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_KIND_MISMATCH,
               _("Plugin \"%s\" (%s) is a %s plugin, not a %s plugin; name it in a <%s> "
                 "element instead"),
               plugin->descriptor->name, plugin->path,
               canopy_plugin_kind_to_string (plugin->descriptor->kind),
               canopy_plugin_kind_to_string (kind),
               canopy_plugin_kind_to_string (plugin->descriptor->kind));
  return FALSE;
}

const CanopyPlugin *
canopy_plugin_loader_load (CanopyPluginLoader *loader, const char *name,
                           CanopyPluginKind kind, GError **error)
{
  g_autofree char *path = NULL;
  CanopyPlugin *plugin;

  g_return_val_if_fail (loader != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  if (!name_is_valid (name))
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_INVALID_NAME,
                   _("\"%s\" is not a plugin name: use the short name only (lower-case "
                     "letters, digits and dashes), such as \"sqlite\" or \"tcp\""), name);
      return NULL;
    }
  if (g_hash_table_contains (loader->plugins, name))
    {
      plugin = g_hash_table_lookup (loader->plugins, name);
      g_set_error (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_DUPLICATE,
                   _("Plugin \"%s\" is named twice; it is already loaded from %s. Remove the "
                     "second element that names it"), name, plugin->path);
      return NULL;
    }

  path = find_plugin_file (loader, name, error);
  if (path == NULL)
    return NULL;
  plugin = open_plugin (path, name, error);
  if (plugin == NULL)
    return NULL;

  /* Registered even on a kind mismatch: the module stays resident anyway,
   * and a second attempt must be reported as the duplicate it is. */
  g_hash_table_insert (loader->plugins, g_strdup (name), plugin);
  if (!check_kind (plugin, kind, error))
    return NULL;

  g_debug ("loaded %s plugin %s %s from %s", canopy_plugin_kind_to_string (kind), name,
           plugin->descriptor->version, path);
  return plugin;
}

const CanopyPlugin *
canopy_plugin_loader_load_for_node (CanopyPluginLoader *loader, const CanopyConfigNode *node,
                                    CanopyPluginKind kind, GError **error)
{
  const char *name = canopy_config_node_get_attribute (node, "plugin");
  g_autoptr (GError) local_error = NULL;
  const CanopyPlugin *plugin;
  const char *schema;

  if (name == NULL)
    {
      canopy_config_node_set_error (node, error, _("the \"plugin\" attribute is missing"));
      return NULL;
    }
  plugin = canopy_plugin_loader_load (loader, name, kind, &local_error);
  if (plugin == NULL)
    {
      g_set_error (error, CANOPY_PLUGIN_ERROR, local_error->code, _("%s:%d: element <%s>: %s"),
                   canopy_config_node_get_file (node), canopy_config_node_get_line (node),
                   canopy_config_node_get_name (node), local_error->message);
      return NULL;
    }
  schema = plugin->descriptor->config_schema;
  if (schema != NULL && !canopy_config_validate_node (node, schema, error))
    return NULL;
  return plugin;
}

GPtrArray *
canopy_plugin_loader_load_nodes (CanopyPluginLoader *loader, GPtrArray *nodes,
                                 CanopyPluginKind kind, GError **error)
{
  g_autoptr (GPtrArray) plugins = g_ptr_array_new ();

  for (guint i = 0; i < nodes->len; i++)
    {
      const CanopyPlugin *plugin =
        canopy_plugin_loader_load_for_node (loader, g_ptr_array_index (nodes, i), kind, error);
      if (plugin == NULL)
        return NULL;
      g_ptr_array_add (plugins, (gpointer) plugin);
    }
  return g_steal_pointer (&plugins);
}

const CanopyPlugin *
canopy_plugin_loader_lookup (const CanopyPluginLoader *loader, const char *name)
{
  return g_hash_table_lookup (loader->plugins, name);
}

static int
compare_plugins (gconstpointer a, gconstpointer b)
{
  const CanopyPlugin *pa = *(const CanopyPlugin *const *) a;
  const CanopyPlugin *pb = *(const CanopyPlugin *const *) b;

  return g_strcmp0 (pa->descriptor->name, pb->descriptor->name);
}

GPtrArray *
canopy_plugin_loader_get_plugins (const CanopyPluginLoader *loader)
{
  GPtrArray *plugins = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, loader->plugins);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (plugins, value);
  g_ptr_array_sort (plugins, compare_plugins);
  return plugins;
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GStrv
canopy_plugin_loader_discover (const CanopyPluginLoader *loader)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *suffix = g_strconcat (".", G_MODULE_SUFFIX, NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  GStrv names;

  for (char **dir = loader->search_path; *dir != NULL; dir++)
    {
      g_autoptr (GDir) d = g_dir_open (*dir, 0, NULL);
      const char *entry;

      while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *name = NULL;

          if (!g_str_has_prefix (entry, PLUGIN_FILE_PREFIX) || !g_str_has_suffix (entry, suffix))
            continue;
          name = g_strndup (entry + strlen (PLUGIN_FILE_PREFIX),
                            strlen (entry) - strlen (PLUGIN_FILE_PREFIX) - strlen (suffix));
          if (name_is_valid (name) && !g_hash_table_contains (seen, name))
            {
              g_strv_builder_add (builder, name);
              g_hash_table_add (seen, g_steal_pointer (&name));
            }
        }
    }
  names = g_strv_builder_end (builder);
  qsort (names, g_strv_length (names), sizeof (char *), compare_names);
  return names;
}

const CanopyPluginDescriptor *
canopy_plugin_get_descriptor (const CanopyPlugin *plugin)
{
  return plugin->descriptor;
}

const char *
canopy_plugin_get_path (const CanopyPlugin *plugin)
{
  return plugin->path;
}

const char *
canopy_plugin_get_name (const CanopyPlugin *plugin)
{
  return plugin->descriptor->name;
}

const void *
canopy_plugin_get_ops (const CanopyPlugin *plugin)
{
  return plugin->descriptor->ops;
}

gconstpointer
canopy_plugin_get_symbol (const CanopyPlugin *plugin, const char *name)
{
  gpointer symbol = NULL;

  if (!g_module_symbol (plugin->module, name, &symbol))
    return NULL;
  return symbol;
}
