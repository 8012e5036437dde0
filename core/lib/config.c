/* XML configuration files: parsing with libxml2, RelaxNG validation with
 * errors an admin can act on, and the read-only node tree plugins see. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-config"

#include "lib/config.h"
#include "sdk/config-node-private.h"
#include "lib/i18n.h"

#include <gio/gio.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <math.h>
#include <string.h>

/* The schemas compiled in (schemas-resource.c). Asking for the resource by
 * name also links it into each program from the core's static library,
 * which a constructor alone would not. */
GResource *canopy_schemas_get_resource (void);

/* Beyond this many schema errors the rest are noise caused by the first. */
#define MAX_REPORTED_ERRORS 5


/* How often each child of the document element may appear. RelaxNG could
 * say it, but libxml2 then reports a misplaced child without its line. */
typedef struct {
  const char *name;
  guint min;
  guint max;
} ChildCount;

static const ChildCount server_children[] = {
  { "name", 0, 1 },
  { "state-directory", 0, 1 },
  { "logging", 0, 1 },
  { "distribution-optimization", 0, 1 },
  { "licensing", 0, 1 },
  { "heartbeat", 0, 1 },
  { "background-transfer", 0, 1 },
  { "cluster", 0, 1 },
  { "console", 0, 1 },
  { "content-store", 0, 1 },
  { "content-sources", 0, 1 },
  { "backend", 1, 1 },
  { NULL, 0, 0 },
};

static const ChildCount agent_children[] = {
  { "server", 1, G_MAXUINT },
  { "state-directory", 0, 1 },
  { "shared-key-file", 0, 1 },
  { "name", 0, 1 },
  { "logging", 0, 1 },
  { "cache", 0, 1 },
  { "peers", 0, 1 },
  { "destinations", 0, 1 },
  { "transport", 1, G_MAXUINT },
  { NULL, 0, 0 },
};

static const struct {
  const char *root;
  const char *schema;
  const ChildCount *children;
} formats[] = {
  { "server", CANOPY_SCHEMA_SERVER, server_children },
  { "agent", CANOPY_SCHEMA_AGENT, agent_children },
};

static void
config_node_free (CanopyConfigNode *node)
{
  g_free (node->text);
  g_hash_table_unref (node->attributes);
  g_ptr_array_unref (node->children);
  g_free (node);
}

static CanopyConfigNode *
config_node_new (const CanopyConfig *config, xmlNode *xml)
{
  CanopyConfigNode *node = g_new0 (CanopyConfigNode, 1);
  g_autoptr (GString) text = g_string_new (NULL);

  node->config = config;
  node->xml = xml;
  node->attributes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  node->children = g_ptr_array_new_with_free_func ((GDestroyNotify) config_node_free);

  for (xmlAttr *attr = xml->properties; attr != NULL; attr = attr->next)
    {
      xmlChar *value = xmlNodeListGetString (xml->doc, attr->children, 1);
      g_hash_table_insert (node->attributes, g_strdup ((const char *) attr->name),
                           g_strdup (value != NULL ? (const char *) value : ""));
      xmlFree (value);
    }

  for (xmlNode *child = xml->children; child != NULL; child = child->next)
    {
      if (child->type == XML_ELEMENT_NODE)
        g_ptr_array_add (node->children, config_node_new (config, child));
      else if (child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE)
        g_string_append (text, (const char *) child->content);
    }
  node->text = g_strstrip (g_string_free (g_steal_pointer (&text), FALSE));
  return node;
}

void
canopy_config_free (CanopyConfig *config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->root, config_node_free);
  g_clear_pointer (&config->doc, xmlFreeDoc);
  g_free (config->data);
  g_free (config->path);
  g_free (config);
}

/* The text of line @line (1-based) of @data, for showing under an error. */
static char *
source_line (const char *data, int line)
{
  const char *start = data;

  for (int i = 1; i < line && start != NULL; i++)
    {
      start = strchr (start, '\n');
      if (start != NULL)
        start++;
    }
  if (start == NULL)
    return NULL;
  return g_strndup (start, strcspn (start, "\n"));
}

static void
set_syntax_error (GError **error, const char *path, const char *data, const xmlError *xerr)
{
  g_autofree char *reason = g_strstrip (g_strdup (xerr != NULL && xerr->message != NULL
                                                  ? xerr->message : "unknown error"));
  int line = xerr != NULL ? xerr->line : 0;
  int column = xerr != NULL ? xerr->int2 : 0;
  g_autofree char *text = line > 0 ? source_line (data, line) : NULL;
  g_autofree char *caret = NULL;

  if (text != NULL && column > 0 && (gsize) column <= strlen (text) + 1)
    caret = g_strdup_printf ("\n  %s\n  %*s^", text, column - 1, "");

  g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SYNTAX,
               _("%s:%d: the file is not well-formed XML (%s); fix the markup at this line%s"),
               path, line, reason, caret != NULL ? caret : "");
}

static xmlDoc *
parse_xml (const char *data, gsize length, const char *path, GError **error)
{
  xmlParserCtxt *ctxt = xmlNewParserCtxt ();
  xmlDoc *doc;

  if (ctxt == NULL)
    g_error ("out of memory creating an XML parser");

  /* No network, no entity expansion, no DTD loading: a config file must not
   * be able to read other files or the network on the daemon's behalf. */
  doc = xmlCtxtReadMemory (ctxt, data, (int) length, path, NULL,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
                           | XML_PARSE_NOCDATA);
  if (doc == NULL || !ctxt->wellFormed)
    {
      set_syntax_error (error, path, data, xmlCtxtGetLastError (ctxt));
      g_clear_pointer (&doc, xmlFreeDoc);
    }
  xmlFreeParserCtxt (ctxt);
  return doc;
}

typedef struct {
  const char *path;
  GPtrArray *messages;
  const char *schema;     /* the schema's text, to tell a bad value from an unknown attribute */
  gsize schema_len;
  xmlDoc *schema_doc;     /* parsed from it when first needed */
  xmlDoc *doc;            /* the document validated */
  const xmlNode *last;    /* the element of the last error reported */
  char *extra;            /* an element libxml2 found extra in an interleave, without saying
                           * where: the next error names its node */
} SchemaErrors;

static const char *
error_element (const xmlError *xerr)
{
  const xmlNode *node = xerr->node;

  if (node != NULL && node->type == XML_ELEMENT_NODE)
    return (const char *) node->name;
  return "?";
}

static int
error_line (const xmlError *xerr)
{
  const xmlNode *node = xerr->node;

  if (node != NULL && node->type == XML_ELEMENT_NODE && node->line > 0)
    return node->line;
  return xerr->line;
}

/* Whether the schema declares attribute @attribute on element @element:
 * if it does, the value is what is wrong, not the name. */
static gboolean
schema_declares_attribute (SchemaErrors *errors, const char *element, const char *attribute)
{
  xmlNode *node;

  if (errors->schema_doc == NULL)
    errors->schema_doc = xmlReadMemory (errors->schema, (int) errors->schema_len, NULL, NULL,
                                        XML_PARSE_NONET | XML_PARSE_NOERROR
                                        | XML_PARSE_NOWARNING);
  if (errors->schema_doc == NULL)
    return FALSE;
  /* Depth first through the whole schema, without recursion. */
  node = xmlDocGetRootElement (errors->schema_doc);
  while (node != NULL)
    {
      if (node->type == XML_ELEMENT_NODE && xmlStrEqual (node->name, BAD_CAST "attribute"))
        {
          g_autofree xmlChar *name = xmlGetProp (node, BAD_CAST "name");
          const xmlNode *owner = node->parent;

          while (owner != NULL && owner->type == XML_ELEMENT_NODE
                 && !xmlStrEqual (owner->name, BAD_CAST "element"))
            owner = owner->parent;
          if (name != NULL && xmlStrEqual (name, BAD_CAST attribute) && owner != NULL
              && owner->type == XML_ELEMENT_NODE)
            {
              g_autofree xmlChar *owner_name = xmlGetProp ((xmlNode *) owner, BAD_CAST "name");
              if (owner_name != NULL && xmlStrEqual (owner_name, BAD_CAST element))
                return TRUE;
            }
        }
      if (node->children != NULL)
        node = node->children;
      else
        {
          while (node != NULL && node->next == NULL)
            node = node->parent;
          if (node != NULL)
            node = node->next;
        }
    }
  return FALSE;
}

/* The last element named @name in @doc, for an error libxml2 gave no
 * node: a repeated element is the later one. */
static const xmlNode *
find_last_element (xmlDoc *doc, const char *name)
{
  const xmlNode *node = xmlDocGetRootElement (doc), *found = NULL;

  while (node != NULL)
    {
      if (node->type == XML_ELEMENT_NODE && xmlStrEqual (node->name, BAD_CAST name))
        found = node;
      if (node->children != NULL)
        node = node->children;
      else
        {
          while (node != NULL && node->next == NULL)
            node = node->parent;
          if (node != NULL)
            node = node->next;
        }
    }
  return found;
}

/* An element an interleave did not expect (a second <database>), once
 * its node is known. */
static char *
describe_extra_element (const char *path, const xmlNode *node)
{
  const char *parent = node->parent != NULL && node->parent->type == XML_ELEMENT_NODE
                         ? (const char *) node->parent->name : "?";

  return g_strdup_printf (_("%s:%d: element <%s> is not allowed here: <%s> takes it at most "
                            "once, or not at all; remove it or check its spelling"),
                          path, node->line, (const char *) node->name, parent);
}

/* Turn libxml2's RelaxNG complaint into a sentence that says what to fix. */
static char *
describe_schema_error (SchemaErrors *errors, const xmlError *xerr)
{
  const char *path = errors->path;
  const char *element = error_element (xerr);
  const char *arg1 = xerr->str1 != NULL ? xerr->str1 : "";
  const char *arg2 = xerr->str2 != NULL ? xerr->str2 : "";
  int line = error_line (xerr);

  switch (xerr->code)
    {
    case XML_RELAXNG_ERR_ELEMWRONG:
    case XML_RELAXNG_ERR_EXTRACONTENT:
      return g_strdup_printf (_("%s:%d: element <%s> is not allowed here; check its spelling "
                                "and where it is placed"), path, line, element);
    case XML_RELAXNG_ERR_ELEMNAME:
      return g_strdup_printf (_("%s:%d: element <%s> is not allowed here; expected <%s>"),
                              path, line, arg2, arg1);
    case XML_RELAXNG_ERR_NOELEM:
      return g_strdup_printf (_("%s:%d: element <%s> is missing required element <%s>"),
                              path, line, element, arg1);
    case XML_RELAXNG_ERR_INVALIDATTR:
      if (xerr->node != NULL && schema_declares_attribute (errors, arg2, arg1))
        {
          g_autofree xmlChar *value = xmlGetProp ((xmlNode *) xerr->node, BAD_CAST arg1);

          return g_strdup_printf (_("%s:%d: element <%s> has attribute \"%s\" with a value "
                                    "that is not allowed (\"%s\"); see the configuration "
                                    "reference for what it takes"),
                                  path, line, arg2, arg1,
                                  value != NULL ? (const char *) value : "");
        }
      return g_strdup_printf (_("%s:%d: element <%s> has an unknown attribute \"%s\"; check "
                                "its spelling"), path, line, arg2, arg1);
    case XML_RELAXNG_ERR_TYPEVAL:
    case XML_RELAXNG_ERR_DATATYPE:
    case XML_RELAXNG_ERR_VALUE:
    case XML_RELAXNG_ERR_DATAELEM:
    case XML_RELAXNG_ERR_LIST:
      return g_strdup_printf (_("%s:%d: element <%s> has a value of the wrong form (%s %s); "
                                "see the configuration reference for what it takes"),
                              path, line, element, arg1, arg2);
    default:
      {
        g_autofree char *reason = g_strstrip (g_strdup (xerr->message != NULL
                                                        ? xerr->message : ""));
        return g_strdup_printf (_("%s:%d: element <%s> does not follow the schema: %s"),
                                path, line, element, reason);
      }
    }
}

static void
add_schema_error (SchemaErrors *errors, const xmlNode *node, char *message)
{
  if (node != NULL && node->type == XML_ELEMENT_NODE)
    errors->last = node;
  if (errors->messages->len < MAX_REPORTED_ERRORS)
    g_ptr_array_add (errors->messages, message);
  else
    g_free (message);
}

/* An extra element whose node no later error gave: the last of its name. */
static void
flush_extra (SchemaErrors *errors)
{
  g_autofree char *name = g_steal_pointer (&errors->extra);
  const xmlNode *node;

  if (name == NULL)
    return;
  node = find_last_element (errors->doc, name);
  if (node != NULL && node != errors->last)
    add_schema_error (errors, node, describe_extra_element (errors->path, node));
}

static void
collect_schema_error (void *user_data, xmlError *xerr)
{
  SchemaErrors *errors = user_data;
  const xmlNode *node = xerr->node;

  /* libxml2 says an interleave has an extra element without a node; the
   * parent's "failed to validate content" that follows carries it. */
  if (xerr->code == XML_RELAXNG_ERR_INTEREXTRA && node == NULL && xerr->str1 != NULL)
    {
      flush_extra (errors);
      errors->extra = g_strdup (xerr->str1);
      return;
    }
  if (errors->extra != NULL && node != NULL && node->type == XML_ELEMENT_NODE
      && xmlStrEqual (node->name, BAD_CAST errors->extra))
    {
      g_clear_pointer (&errors->extra, g_free);
      /* An element already reported (a bad attribute) is extra only because of it. */
      if (node != errors->last)
        add_schema_error (errors, node, describe_extra_element (errors->path, node));
    }
  /* "failed to validate content" repeats, on the parent, what the child's
   * error already said. */
  if (xerr->code == XML_RELAXNG_ERR_CONTENTVALID || xerr->code == XML_RELAXNG_ERR_ATTRVALID)
    return;
  flush_extra (errors);
  add_schema_error (errors, node, describe_schema_error (errors, xerr));
}

static void
ignore_schema_parser_error (void *user_data, xmlError *xerr)
{
  GString *messages = user_data;

  if (messages->len == 0 && xerr->message != NULL)
    g_string_append (messages, xerr->message);
}

static gboolean
validate_doc (xmlDoc *doc, const char *path, const char *schema, gsize schema_len,
              GError **error)
{
  xmlRelaxNGParserCtxt *pctxt = xmlRelaxNGNewMemParserCtxt (schema, (int) schema_len);
  g_autoptr (GString) schema_problem = g_string_new (NULL);
  xmlRelaxNG *grammar;
  xmlRelaxNGValidCtxt *vctxt;
  SchemaErrors errors = { path, g_ptr_array_new_with_free_func (g_free), schema, schema_len,
                          NULL, doc, NULL, NULL };
  int rc;

  xmlRelaxNGSetParserStructuredErrors (pctxt, ignore_schema_parser_error, schema_problem);
  grammar = xmlRelaxNGParse (pctxt);
  xmlRelaxNGFreeParserCtxt (pctxt);
  if (grammar == NULL)
    {
      g_strstrip (schema_problem->str);
      g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SCHEMA,
                   _("The schema used to check %s is itself broken (%s); reinstall canopy "
                     "or the plugin that provides it"), path, schema_problem->str);
      g_ptr_array_unref (errors.messages);
      return FALSE;
    }

  vctxt = xmlRelaxNGNewValidCtxt (grammar);
  xmlRelaxNGSetValidStructuredErrors (vctxt, collect_schema_error, &errors);
  rc = xmlRelaxNGValidateDoc (vctxt, doc);
  flush_extra (&errors);
  g_clear_pointer (&errors.schema_doc, xmlFreeDoc);
  xmlRelaxNGFreeValidCtxt (vctxt);
  xmlRelaxNGFree (grammar);

  if (rc != 0)
    {
      g_autofree char *joined = NULL;

      if (errors.messages->len == 0)
        g_ptr_array_add (errors.messages,
                         g_strdup_printf (_("%s: the file does not follow the schema"), path));
      g_ptr_array_add (errors.messages, NULL);
      joined = g_strjoinv ("\n", (char **) errors.messages->pdata);
      g_set_error_literal (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SCHEMA, joined);
    }
  g_ptr_array_unref (errors.messages);
  return rc == 0;
}

CanopyConfig *
canopy_config_load_data (const char *data,
                         gssize length,
                         const char *display_name,
                         const char *schema_resource,
                         GError **error)
{
  g_autoptr (CanopyConfig) config = g_new0 (CanopyConfig, 1);
  g_autoptr (GBytes) schema = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize schema_len;
  const char *schema_text;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (display_name != NULL, NULL);
  g_return_val_if_fail (schema_resource != NULL, NULL);

  if (length < 0)
    length = (gssize) strlen (data);
  if (length > G_MAXINT)
    {
      g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_READ,
                   _("%s is too large to be a configuration file"), display_name);
      return NULL;
    }

  config->path = g_strdup (display_name);
  config->data = g_strndup (data, (gsize) length);
  config->doc = parse_xml (config->data, (gsize) length, display_name, error);
  if (config->doc == NULL)
    return NULL;

  schema = g_resource_lookup_data (canopy_schemas_get_resource (), schema_resource,
                                   G_RESOURCE_LOOKUP_FLAGS_NONE, &local_error);
  if (schema == NULL)
    g_error ("schema %s is not compiled in: %s", schema_resource, local_error->message);
  schema_text = g_bytes_get_data (schema, &schema_len);
  if (!validate_doc (config->doc, display_name, schema_text, schema_len, error))
    return NULL;

  config->root = config_node_new (config, xmlDocGetRootElement (config->doc));
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (g_str_equal (schema_resource, formats[i].schema))
      for (const ChildCount *c = formats[i].children; c->name != NULL; c++)
        if (!canopy_config_node_check_children (config->root, c->name, c->min, c->max, error))
          return NULL;
  return g_steal_pointer (&config);
}

CanopyConfig *
canopy_config_load (const char *path, const char *schema_resource, GError **error)
{
  g_autofree char *data = NULL;
  gsize length;
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &length, &local_error))
    {
      g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_READ,
                   _("Cannot read the configuration file: %s"), local_error->message);
      return NULL;
    }
  return canopy_config_load_data (data, (gssize) length, path, schema_resource, error);
}

CanopyConfig *
canopy_config_load_any (const char *path, const char **schema_resource, GError **error)
{
  g_autofree char *data = NULL;
  gsize length;
  g_autoptr (GError) local_error = NULL;
  xmlDoc *doc;
  const char *root;

  if (!g_file_get_contents (path, &data, &length, &local_error))
    {
      g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_READ,
                   _("Cannot read the configuration file: %s"), local_error->message);
      return NULL;
    }
  doc = parse_xml (data, length, path, error);
  if (doc == NULL)
    return NULL;
  root = (const char *) xmlDocGetRootElement (doc)->name;
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (g_str_equal (root, formats[i].root))
      {
        xmlFreeDoc (doc);
        if (schema_resource != NULL)
          *schema_resource = formats[i].schema;
        return canopy_config_load_data (data, (gssize) length, path, formats[i].schema, error);
      }
  g_set_error (error, CANOPY_CONFIG_ERROR, CANOPY_CONFIG_ERROR_SCHEMA,
               _("%s:%d: the document element is <%s>; a canopy configuration starts with "
                 "<server> (canopyd) or <agent> (canopy-agent)"),
               path, xmlDocGetRootElement (doc)->line, root);
  xmlFreeDoc (doc);
  return NULL;
}

const CanopyConfigNode *
canopy_config_get_root (const CanopyConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  return config->root;
}

const char *
canopy_config_get_path (const CanopyConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  return config->path;
}

gboolean
canopy_config_validate_node (const CanopyConfigNode *node, const char *schema_text,
                             GError **error)
{
  xmlDoc *doc;
  gboolean ok;

  g_return_val_if_fail (node != NULL, FALSE);
  g_return_val_if_fail (schema_text != NULL, FALSE);

  /* xmlDocCopyNode keeps line numbers, so errors point into the real file. */
  doc = xmlNewDoc (BAD_CAST "1.0");
  xmlDocSetRootElement (doc, xmlDocCopyNode (node->xml, doc, 1));
  ok = validate_doc (doc, node->config->path, schema_text, strlen (schema_text), error);
  xmlFreeDoc (doc);
  return ok;
}

char *
canopy_config_node_to_xml (const CanopyConfigNode *node)
{
  xmlBuffer *buffer;
  char *text;

  g_return_val_if_fail (node != NULL, NULL);

  buffer = xmlBufferCreate ();
  if (xmlNodeDump (buffer, node->xml->doc, node->xml, 0, 0) < 0)
    text = g_strdup ("");
  else
    text = g_strdup ((const char *) xmlBufferContent (buffer));
  xmlBufferFree (buffer);
  return text;
}

gboolean
canopy_config_parse_size (const char *text, guint64 *out)
{
  static const struct {
    const char *unit;
    double factor;
  } units[] = {
    { "", 1 }, { "B", 1 },
    { "k", 1024.0 }, { "K", 1024.0 }, { "KiB", 1024.0 }, { "kB", 1e3 }, { "KB", 1e3 },
    { "M", 1048576.0 }, { "MiB", 1048576.0 }, { "MB", 1e6 },
    { "G", 1073741824.0 }, { "GiB", 1073741824.0 }, { "GB", 1e9 },
    { "T", 1099511627776.0 }, { "TiB", 1099511627776.0 }, { "TB", 1e12 },
  };
  char *end = NULL;
  double value;

  if (text == NULL || !g_ascii_isdigit (*text))
    return FALSE;
  value = g_ascii_strtod (text, &end);
  while (g_ascii_isspace (*end))
    end++;
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_str_equal (end, units[i].unit))
      {
        double bytes = floor (value * units[i].factor);

        if (!isfinite (bytes) || bytes >= 18446744073709551615.0)
          return FALSE;
        *out = (guint64) bytes;
        return TRUE;
      }
  return FALSE;
}
