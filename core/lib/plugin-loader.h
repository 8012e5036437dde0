/* Plugin loader: finds plugin modules by short name, checks the file
 * before dlopen and the descriptor after, and keeps what it loaded. */
#pragma once

#include <glib.h>
#include <canopy/plugin.h>
#include <canopy/config-node.h>

G_BEGIN_DECLS

#define CANOPY_PLUGIN_ERROR (canopy_plugin_error_quark ())
GQuark canopy_plugin_error_quark (void);

typedef enum {
  CANOPY_PLUGIN_ERROR_INVALID_NAME,
  CANOPY_PLUGIN_ERROR_NOT_FOUND,
  CANOPY_PLUGIN_ERROR_UNSAFE_FILE,
  CANOPY_PLUGIN_ERROR_NOT_LOADABLE,
  CANOPY_PLUGIN_ERROR_NO_DESCRIPTOR,
  CANOPY_PLUGIN_ERROR_ABI_MISMATCH,
  CANOPY_PLUGIN_ERROR_INCOMPLETE,
  CANOPY_PLUGIN_ERROR_NAME_MISMATCH,
  CANOPY_PLUGIN_ERROR_DUPLICATE,
  CANOPY_PLUGIN_ERROR_KIND_MISMATCH,
} CanopyPluginError;

/* The environment variable that replaces the plugin directory with a
 * search path, so tests run against the build tree's modules. */
#define CANOPY_PLUGIN_PATH_ENV "CANOPY_PLUGIN_PATH"

typedef struct _CanopyPluginLoader CanopyPluginLoader;

/* For canopy_plugin_loader_load() when any kind will do (listing). */
#define CANOPY_PLUGIN_LOADER_ANY_KIND ((CanopyPluginKind) 0)

/**
 * CanopyPlugin:
 *
 * A loaded plugin. Owned by its loader; valid until the loader is freed.
 */
typedef struct _CanopyPlugin CanopyPlugin;

/**
 * canopy_plugin_loader_new:
 * @search_path: (nullable): directories to look in, first match wins; %NULL
 *   for $CANOPY_PLUGIN_PATH if set, else the configured plugin directory
 */
CanopyPluginLoader *canopy_plugin_loader_new (const char *const *search_path);
void canopy_plugin_loader_free (CanopyPluginLoader *loader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyPluginLoader, canopy_plugin_loader_free)

/** canopy_plugin_loader_get_search_path: Returns: where it looks. */
const char *const *canopy_plugin_loader_get_search_path (const CanopyPluginLoader *loader);

/**
 * canopy_plugin_loader_load:
 * @loader: a loader
 * @name: short plugin name, as admins write it
 * @kind: the kind the caller needs, or %CANOPY_PLUGIN_LOADER_ANY_KIND
 * @error: return location for a %CANOPY_PLUGIN_ERROR naming file and reason
 *
 * Finds `canopy-NAME.so` on the search path and loads it.
 *
 * Returns: (transfer none): the plugin, or %NULL.
 */
const CanopyPlugin *canopy_plugin_loader_load (CanopyPluginLoader *loader,
                                               const char *name,
                                               CanopyPluginKind kind,
                                               GError **error);

/**
 * canopy_plugin_loader_load_for_node:
 * @loader: a loader
 * @node: a `<backend plugin="NAME">` or `<transport plugin="NAME">` element
 * @kind: the kind that element asks for
 * @error: return location for an error that also names the config line
 *
 * Loads the plugin an element names and validates the element against the
 * plugin's own schema.
 */
const CanopyPlugin *canopy_plugin_loader_load_for_node (CanopyPluginLoader *loader,
                                                        const CanopyConfigNode *node,
                                                        CanopyPluginKind kind,
                                                        GError **error);

/**
 * canopy_plugin_loader_load_nodes:
 * @loader: a loader
 * @nodes: (element-type CanopyConfigNode): elements naming plugins
 * @kind: the kind they ask for
 * @error: return location for the first element's error
 *
 * canopy_plugin_loader_load_for_node() for each of @nodes, in order.
 *
 * Returns: (transfer container) (element-type CanopyPlugin): the plugins.
 */
GPtrArray *canopy_plugin_loader_load_nodes (CanopyPluginLoader *loader,
                                            GPtrArray *nodes,
                                            CanopyPluginKind kind,
                                            GError **error);

/** canopy_plugin_loader_lookup: Returns: (nullable): a loaded plugin. */
const CanopyPlugin *canopy_plugin_loader_lookup (const CanopyPluginLoader *loader,
                                                 const char *name);

/** canopy_plugin_loader_get_plugins: Returns: (transfer container): loaded plugins. */
GPtrArray *canopy_plugin_loader_get_plugins (const CanopyPluginLoader *loader);

/**
 * canopy_plugin_loader_discover:
 * @loader: a loader
 *
 * Lists the short names of the plugin files on the search path, without
 * loading them.
 *
 * Returns: (transfer full): sorted, deduplicated names.
 */
GStrv canopy_plugin_loader_discover (const CanopyPluginLoader *loader);

const CanopyPluginDescriptor *canopy_plugin_get_descriptor (const CanopyPlugin *plugin);
const char *canopy_plugin_get_path (const CanopyPlugin *plugin);

/* Convenience accessors for descriptor fields. */
const char *canopy_plugin_get_name (const CanopyPlugin *plugin);
const void *canopy_plugin_get_ops (const CanopyPlugin *plugin);

/**
 * canopy_plugin_get_symbol:
 *
 * Returns: (nullable): another symbol the plugin exports (an optional
 *   table of operations newer than its descriptor), or %NULL.
 */
gconstpointer canopy_plugin_get_symbol (const CanopyPlugin *plugin, const char *name);

G_END_DECLS
