/* canopy plugin descriptor: the one symbol every plugin exports.
 * The loader reads it to decide whether and how to use the module. */
#pragma once

#include <glib.h>
#include <gmodule.h>
#include <canopy/version.h>

G_BEGIN_DECLS

/**
 * CanopyPluginKind:
 * @CANOPY_PLUGIN_KIND_TRANSPORT: moves messages between server and agents
 *   (operations table: #CanopyTransportOps, `canopy/transport.h`)
 * @CANOPY_PLUGIN_KIND_BACKEND: stores what must survive a restart
 *   (operations table: #CanopyBackendOps, `canopy/backend.h`)
 *
 * What a plugin provides; the XML element that enables it says which kind
 * the admin expects, and the loader refuses a plugin of another kind.
 */
typedef enum {
  CANOPY_PLUGIN_KIND_TRANSPORT = 1,
  CANOPY_PLUGIN_KIND_BACKEND = 2,
} CanopyPluginKind;

/**
 * CanopyPluginDescriptor:
 * @abi_version: must be %CANOPY_PLUGIN_ABI_VERSION; always the first field,
 *   so the loader can check it before trusting anything else
 * @kind: what the plugin provides
 * @name: short name, `[a-z0-9-]+`; must match the file name
 *   (`canopy-NAME.so`) and the `plugin` attribute admins write
 * @version: the plugin's own version, for logs and the health check
 * @description: one line for `--list-plugins`
 * @config_schema: (nullable): a RelaxNG grammar (XML text) for the plugin's
 *   configuration element; the core validates the element against it and
 *   reports the file and line of any error before the plugin sees it
 * @ops: the kind's operations table
 *
 * Define it with CANOPY_PLUGIN_DEFINE() and export nothing else.
 */
typedef struct {
  guint32 abi_version;
  CanopyPluginKind kind;
  const char *name;
  const char *version;
  const char *description;
  const char *config_schema;
  const void *ops;
} CanopyPluginDescriptor;

/* The name of the exported descriptor symbol. */
#define CANOPY_PLUGIN_SYMBOL "canopy_plugin_descriptor"

/**
 * CANOPY_PLUGIN_DEFINE:
 * @kind_: a #CanopyPluginKind
 * @name_: the plugin's short name
 * @version_: the plugin's version string
 * @description_: one line describing it
 * @schema_: (nullable): RelaxNG text for the plugin's element
 * @ops_: pointer to the kind's operations table
 *
 * Defines and exports the plugin's descriptor.
 */
#define CANOPY_PLUGIN_DEFINE(kind_, name_, version_, description_, schema_, ops_) \
  G_MODULE_EXPORT const CanopyPluginDescriptor canopy_plugin_descriptor = {      \
    .abi_version = CANOPY_PLUGIN_ABI_VERSION,                                    \
    .kind = (kind_),                                                             \
    .name = (name_),                                                             \
    .version = (version_),                                                       \
    .description = (description_),                                               \
    .config_schema = (schema_),                                                  \
    .ops = (ops_),                                                               \
  }

/**
 * canopy_plugin_kind_to_string:
 * @kind: a #CanopyPluginKind
 *
 * Returns: the name admins write for @kind ("transport", "backend"), or
 *   "unknown".
 */
const char *canopy_plugin_kind_to_string (CanopyPluginKind kind);

G_END_DECLS
