/* The SDK's configuration nodes: what a plugin reads of its own XML
 * element, and the errors it reports against it. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-config-node"

#include "sdk/config-node-private.h"
#include "lib/i18n.h"

#include <string.h>
#include <inttypes.h>

G_DEFINE_QUARK (canopy-config-error-quark, canopy_config_error)

const char *
canopy_config_node_get_name (const CanopyConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return (const char *) node->xml->name;
}

const char *
canopy_config_node_get_file (const CanopyConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->config->path;
}

int
canopy_config_node_get_line (const CanopyConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->xml->line;
}

const char *
canopy_config_node_get_attribute (const CanopyConfigNode *node, const char *name)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (node->attributes, name);
}

const char *
canopy_config_node_get_text (const CanopyConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->text;
}

const CanopyConfigNode *
canopy_config_node_get_child (const CanopyConfigNode *node, const char *name)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  for (guint i = 0; i < node->children->len; i++)
    {
      const CanopyConfigNode *child = g_ptr_array_index (node->children, i);
      if (g_str_equal (canopy_config_node_get_name (child), name))
        return child;
    }
  return NULL;
}

GPtrArray *
canopy_config_node_get_children (const CanopyConfigNode *node, const char *name)
{
  GPtrArray *children;

  g_return_val_if_fail (node != NULL, NULL);

  children = g_ptr_array_new ();
  for (guint i = 0; i < node->children->len; i++)
    {
      CanopyConfigNode *child = g_ptr_array_index (node->children, i);
      if (name == NULL || g_str_equal (canopy_config_node_get_name (child), name))
        g_ptr_array_add (children, child);
    }
  return children;
}

const char *
canopy_config_node_get_child_text (const CanopyConfigNode *node, const char *name,
                                   const char *fallback)
{
  const CanopyConfigNode *child = canopy_config_node_get_child (node, name);

  return child != NULL ? canopy_config_node_get_text (child) : fallback;
}

gboolean
canopy_config_node_check_children (const CanopyConfigNode *node, const char *name, guint min,
                                   guint max, GError **error)
{
  g_autoptr (GPtrArray) children = canopy_config_node_get_children (node, name);

  if (children->len < min)
    {
      canopy_config_node_set_error (node, error,
                                    g_dngettext (GETTEXT_PACKAGE,
                                                 "it needs at least %u <%s> element; add it",
                                                 "it needs at least %u <%s> elements; add them",
                                                 min),
                                    min, name);
      return FALSE;
    }
  if (children->len > max)
    {
      const CanopyConfigNode *first = g_ptr_array_index (children, 0);
      const CanopyConfigNode *extra = g_ptr_array_index (children, max);

      canopy_config_node_set_error (extra, error,
                                    g_dngettext (GETTEXT_PACKAGE,
                                                 "at most %u <%s> element is allowed inside "
                                                 "<%s>; remove this one or the one at line %d",
                                                 "at most %u <%s> elements are allowed inside "
                                                 "<%s>; remove this one and those after it "
                                                 "(the first is at line %d)",
                                                 max),
                                    max, name, canopy_config_node_get_name (node),
                                    canopy_config_node_get_line (first));
      return FALSE;
    }
  return TRUE;
}

void
canopy_config_node_set_error (const CanopyConfigNode *node, GError **error,
                              const char *format, ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  g_return_if_fail (node != NULL);

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_VALUE,
               _("%s:%d: element <%s>: %s"), canopy_config_node_get_file (node),
               canopy_config_node_get_line (node), canopy_config_node_get_name (node), reason);
}

gboolean
canopy_config_node_get_uint (const CanopyConfigNode *node, const char *attribute,
                             guint64 min, guint64 max, guint64 fallback, guint64 *out,
                             GError **error)
{
  const char *text = canopy_config_node_get_attribute (node, attribute);
  guint64 value;

  g_return_val_if_fail (out != NULL, FALSE);

  if (text == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (text, 10, min, max, &value, NULL))
    {
      canopy_config_node_set_error (node, error,
                                    _("attribute \"%s\" is \"%s\"; it must be a whole "
                                      "number from %" PRIu64 " to %" PRIu64),
                                    attribute, text, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
canopy_config_node_get_boolean (const CanopyConfigNode *node, const char *attribute,
                                gboolean fallback, gboolean *out, GError **error)
{
  static const char *const truths[] = { "true", "yes", "1", NULL };
  static const char *const lies[] = { "false", "no", "0", NULL };
  const char *text = canopy_config_node_get_attribute (node, attribute);

  g_return_val_if_fail (out != NULL, FALSE);

  if (text == NULL)
    *out = fallback;
  else if (g_strv_contains (truths, text))
    *out = TRUE;
  else if (g_strv_contains (lies, text))
    *out = FALSE;
  else
    {
      canopy_config_node_set_error (node, error,
                                    _("attribute \"%s\" is \"%s\"; write \"true\" or \"false\""),
                                    attribute, text);
      return FALSE;
    }
  return TRUE;
}

