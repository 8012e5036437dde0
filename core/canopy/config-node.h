/* Read-only view of one element of a canopy XML configuration file.
 * Plugins read their own element through it, without libxml2. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * CanopyConfigNode:
 *
 * An element of a loaded configuration. Owned by the configuration it came
 * from and valid as long as that is; never freed by the caller.
 */
typedef struct _CanopyConfigNode CanopyConfigNode;

/**
 * CANOPY_CONFIG_ERROR:
 *
 * Error domain for configuration problems. Messages name the file, the
 * line and the element.
 */
#define CANOPY_CONFIG_ERROR (canopy_config_error_quark ())
GQuark canopy_config_error_quark (void);

/**
 * CanopyConfigError:
 * @CANOPY_CONFIG_ERROR_READ: the file could not be read
 * @CANOPY_CONFIG_ERROR_SYNTAX: the file is not well-formed XML
 * @CANOPY_CONFIG_ERROR_SCHEMA: the file does not follow the schema
 * @CANOPY_CONFIG_ERROR_VALUE: a value is of the right form but unusable
 */
typedef enum {
  CANOPY_CONFIG_ERROR_READ,
  CANOPY_CONFIG_ERROR_SYNTAX,
  CANOPY_CONFIG_ERROR_SCHEMA,
  CANOPY_CONFIG_ERROR_VALUE,
} CanopyConfigError;

/** canopy_config_node_get_name: Returns: the element's name. */
const char *canopy_config_node_get_name (const CanopyConfigNode *node);

/** canopy_config_node_get_file: Returns: the path of the file it came from. */
const char *canopy_config_node_get_file (const CanopyConfigNode *node);

/** canopy_config_node_get_line: Returns: the line the element starts on. */
int canopy_config_node_get_line (const CanopyConfigNode *node);

/**
 * canopy_config_node_get_attribute:
 * @node: an element
 * @name: attribute name
 *
 * Returns: (nullable): the attribute's value, or %NULL if it is absent.
 */
const char *canopy_config_node_get_attribute (const CanopyConfigNode *node,
                                              const char *name);

/**
 * canopy_config_node_get_text:
 * @node: an element
 *
 * Returns: the element's text content with surrounding white space removed.
 */
const char *canopy_config_node_get_text (const CanopyConfigNode *node);

/**
 * canopy_config_node_get_child:
 * @node: an element
 * @name: child element name
 *
 * Returns: (nullable): the first child element called @name.
 */
const CanopyConfigNode *canopy_config_node_get_child (const CanopyConfigNode *node,
                                                      const char *name);

/**
 * canopy_config_node_get_children:
 * @node: an element
 * @name: (nullable): child element name, or %NULL for every child element
 *
 * Returns: (transfer container) (element-type CanopyConfigNode): the child
 *   elements, in document order; free the array, not its elements.
 */
GPtrArray *canopy_config_node_get_children (const CanopyConfigNode *node,
                                            const char *name);

/**
 * canopy_config_node_get_child_text:
 * @node: an element
 * @name: child element name
 * @fallback: (nullable): what to return if the child is absent
 *
 * Returns: (nullable): the trimmed text of the first child called @name.
 */
const char *canopy_config_node_get_child_text (const CanopyConfigNode *node,
                                               const char *name,
                                               const char *fallback);

/**
 * canopy_config_node_get_uint:
 * @node: an element
 * @attribute: attribute name
 * @min: smallest accepted value
 * @max: largest accepted value
 * @fallback: value if the attribute is absent
 * @out: (out): the value
 * @error: return location for a %CANOPY_CONFIG_ERROR_VALUE error naming
 *   the file, line, element and attribute
 *
 * Reads an unsigned decimal attribute and checks its range.
 */
gboolean canopy_config_node_get_uint (const CanopyConfigNode *node,
                                      const char *attribute,
                                      guint64 min,
                                      guint64 max,
                                      guint64 fallback,
                                      guint64 *out,
                                      GError **error);

/**
 * canopy_config_node_get_boolean:
 * @node: an element
 * @attribute: attribute name
 * @fallback: value if the attribute is absent
 * @out: (out): the value
 * @error: return location for an error naming where the bad value is
 *
 * Reads "true"/"false"/"yes"/"no"/"1"/"0".
 */
gboolean canopy_config_node_get_boolean (const CanopyConfigNode *node,
                                         const char *attribute,
                                         gboolean fallback,
                                         gboolean *out,
                                         GError **error);

/**
 * canopy_config_node_check_children:
 * @node: an element
 * @name: child element name
 * @min: fewest allowed
 * @max: most allowed (G_MAXUINT for no limit)
 * @error: return location for an error naming the element at fault and
 *   its line
 *
 * Checks how many children called @name @node has.
 */
gboolean canopy_config_node_check_children (const CanopyConfigNode *node,
                                            const char *name,
                                            guint min,
                                            guint max,
                                            GError **error);

/**
 * canopy_config_node_set_error:
 * @node: the element at fault
 * @error: return location for the error
 * @format: printf-style message, already translated, saying what is wrong
 *
 * Sets a %CANOPY_CONFIG_ERROR_VALUE error that begins with the file, the
 * line and the element, so plugin errors read like the core's own.
 */
void canopy_config_node_set_error (const CanopyConfigNode *node,
                                   GError **error,
                                   const char *format,
                                   ...) G_GNUC_PRINTF (3, 4);

G_END_DECLS
