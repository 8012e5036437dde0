/* XML configuration files: parse, validate against a RelaxNG schema, and
 * expose the result as read-only CanopyConfigNode trees. */
#pragma once

#include <glib.h>
#include <canopy/config-node.h>

G_BEGIN_DECLS

typedef struct _CanopyConfig CanopyConfig;

/**
 * canopy_config_load:
 * @path: the configuration file
 * @schema_resource: GResource path of the RelaxNG schema it must follow
 * @error: return location for a %CANOPY_CONFIG_ERROR naming file and line
 *
 * Reads @path without network access or entity expansion and validates it.
 *
 * Returns: (transfer full): the configuration, or %NULL.
 */
CanopyConfig *canopy_config_load (const char *path,
                                  const char *schema_resource,
                                  GError **error);

/**
 * canopy_config_load_data:
 * @data: XML text
 * @length: its length, or -1 if nul-terminated
 * @display_name: the name errors use for it (a file name or "<console>")
 * @schema_resource: GResource path of the RelaxNG schema it must follow
 * @error: return location for a %CANOPY_CONFIG_ERROR
 *
 * Like canopy_config_load() for XML already in memory.
 */
CanopyConfig *canopy_config_load_data (const char *data,
                                       gssize length,
                                       const char *display_name,
                                       const char *schema_resource,
                                       GError **error);

/**
 * canopy_config_load_any:
 * @path: a canopyd or canopy-agent configuration file
 * @schema_resource: (out) (optional): which schema it was checked against
 * @error: return location for a %CANOPY_CONFIG_ERROR
 *
 * Like canopy_config_load(), choosing the schema by the document element.
 */
CanopyConfig *canopy_config_load_any (const char *path,
                                      const char **schema_resource,
                                      GError **error);

void canopy_config_free (CanopyConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConfig, canopy_config_free)

/** canopy_config_get_root: Returns: the document element. */
const CanopyConfigNode *canopy_config_get_root (const CanopyConfig *config);

/** canopy_config_get_path: Returns: the file name errors use. */
const char *canopy_config_get_path (const CanopyConfig *config);

/**
 * canopy_config_validate_node:
 * @node: an element of a loaded configuration
 * @schema_text: a RelaxNG grammar whose start pattern is the element
 * @error: return location for a %CANOPY_CONFIG_ERROR_SCHEMA error
 *
 * Validates one element on its own, as plugins' elements are; errors name
 * the line in the original file.
 */
gboolean canopy_config_validate_node (const CanopyConfigNode *node,
                                      const char *schema_text,
                                      GError **error);

/**
 * canopy_config_node_to_xml:
 *
 * Returns: (transfer full): @node and everything in it as XML text, to
 *   derive another element from it (the agent's office-peer listener).
 */
char *canopy_config_node_to_xml (const CanopyConfigNode *node);

/**
 * canopy_config_parse_size:
 * @text: "1048576", "500MB", "10GiB", "1.5 TB"
 * @out: (out): bytes
 *
 * Units are decimal (kB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB); a
 * lone k, M, G or T is binary.
 */
gboolean canopy_config_parse_size (const char *text, guint64 *out);

/** The schemas libcanopy carries, as GResource paths. */
#define CANOPY_SCHEMA_SERVER "/org/canopy/schemas/canopyd.rng"
#define CANOPY_SCHEMA_AGENT "/org/canopy/schemas/canopy-agent.rng"

G_END_DECLS
