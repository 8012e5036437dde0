/* The JSON Schema subset the canopyctl tests check shapes with; every
 * keyword it does not know is a problem, so a schema cannot silently
 * check less than it says. */
#include "build-config.h"

#include "tests/integration/json-schema.h"

#include <string.h>

static const char *const known_keywords[] = {
  "type", "properties", "required", "additionalProperties", "items", "enum", "minimum",
  "format", "$ref", "description", NULL
};

static const char *
type_of (JsonNode *value)
{
  if (JSON_NODE_HOLDS_OBJECT (value))
    return "object";
  if (JSON_NODE_HOLDS_ARRAY (value))
    return "array";
  if (JSON_NODE_HOLDS_NULL (value))
    return "null";
  switch (json_node_get_value_type (value))
    {
    case G_TYPE_STRING:
      return "string";
    case G_TYPE_BOOLEAN:
      return "boolean";
    case G_TYPE_INT64:
      return "integer";
    default:
      return "number";
    }
}

static gboolean
type_matches (const char *wanted, const char *actual)
{
  return g_str_equal (wanted, actual)
         || (g_str_equal (wanted, "number") && g_str_equal (actual, "integer"));
}

static gboolean
check_type (JsonObject *schema, JsonNode *value, const char *where, GString *problems)
{
  JsonNode *type = json_object_get_member (schema, "type");
  const char *actual = type_of (value);

  if (type == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (type))
    {
      JsonArray *types = json_node_get_array (type);
      for (guint i = 0; i < json_array_get_length (types); i++)
        if (type_matches (json_array_get_string_element (types, i), actual))
          return TRUE;
    }
  else if (type_matches (json_node_get_string (type), actual))
    return TRUE;
  g_string_append_printf (problems, "%s: %s where the schema wants another type\n", where,
                          actual);
  return FALSE;
}

/* RFC 3339 in UTC, as every canopy timestamp. */
static gboolean
check_format (JsonObject *schema, JsonNode *value, const char *where, GString *problems)
{
  const char *format = json_object_get_string_member_with_default (schema, "format", NULL);
  const char *text;
  g_autoptr (GDateTime) time = NULL;

  if (format == NULL || !JSON_NODE_HOLDS_VALUE (value)
      || json_node_get_value_type (value) != G_TYPE_STRING)
    return TRUE;
  if (!g_str_equal (format, "date-time"))
    {
      g_string_append_printf (problems, "%s: unknown format \"%s\"\n", where, format);
      return FALSE;
    }
  text = json_node_get_string (value);
  time = g_date_time_new_from_iso8601 (text, NULL);
  if (time == NULL || !g_str_has_suffix (text, "Z") || strchr (text, 'T') == NULL)
    {
      g_string_append_printf (problems, "%s: \"%s\" is not an RFC 3339 UTC time\n", where, text);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_enum_and_minimum (JsonObject *schema, JsonNode *value, const char *where,
                        GString *problems)
{
  if (json_object_has_member (schema, "enum"))
    {
      JsonArray *allowed = json_object_get_array_member (schema, "enum");
      gboolean found = FALSE;

      for (guint i = 0; i < json_array_get_length (allowed); i++)
        found = found || json_node_equal (json_array_get_element (allowed, i), value);
      if (!found)
        {
          g_autofree char *text = json_to_string (value, FALSE);
          g_string_append_printf (problems, "%s: %s is none of the allowed values\n", where,
                                  text);
          return FALSE;
        }
    }
  if (json_object_has_member (schema, "minimum") && JSON_NODE_HOLDS_VALUE (value)
      && json_node_get_value_type (value) != G_TYPE_STRING
      && json_node_get_double (value) < json_object_get_double_member (schema, "minimum"))
    {
      g_string_append_printf (problems, "%s: below the minimum\n", where);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_object (JsonObject *root, JsonObject *schema, JsonObject *object, const char *where,
              GString *problems)
{
  JsonObject *properties = json_object_has_member (schema, "properties")
                             ? json_object_get_object_member (schema, "properties") : NULL;
  gboolean closed = json_object_has_member (schema, "additionalProperties")
                    && !json_object_get_boolean_member (schema, "additionalProperties");
  gboolean ok = TRUE;
  g_autoptr (GList) members = json_object_get_members (object);

  if (json_object_has_member (schema, "required"))
    {
      JsonArray *required = json_object_get_array_member (schema, "required");
      for (guint i = 0; i < json_array_get_length (required); i++)
        if (!json_object_has_member (object, json_array_get_string_element (required, i)))
          {
            g_string_append_printf (problems, "%s: lacks \"%s\"\n", where,
                                    json_array_get_string_element (required, i));
            ok = FALSE;
          }
    }
  for (GList *m = members; m != NULL; m = m->next)
    {
      g_autofree char *path = g_strdup_printf ("%s.%s", where, (const char *) m->data);

      if (properties != NULL && json_object_has_member (properties, m->data))
        ok = canopy_test_json_schema_check (root,
                                            json_object_get_object_member (properties, m->data),
                                            json_object_get_member (object, m->data), path,
                                            problems)
             && ok;
      else if (closed)
        {
          g_string_append_printf (problems, "%s: not in the schema\n", path);
          ok = FALSE;
        }
    }
  return ok;
}

static gboolean
check_items (JsonObject *root, JsonObject *schema, JsonArray *array, const char *where,
             GString *problems)
{
  gboolean ok = TRUE;

  if (!json_object_has_member (schema, "items"))
    return TRUE;
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      g_autofree char *path = g_strdup_printf ("%s[%u]", where, i);
      ok = canopy_test_json_schema_check (root, json_object_get_object_member (schema, "items"),
                                          json_array_get_element (array, i), path, problems)
           && ok;
    }
  return ok;
}

gboolean
canopy_test_json_schema_check (JsonObject *root, JsonObject *schema, JsonNode *value,
                               const char *where, GString *problems)
{
  g_autoptr (GList) keywords = json_object_get_members (schema);
  const char *ref = json_object_get_string_member_with_default (schema, "$ref", NULL);

  for (GList *k = keywords; k != NULL; k = k->next)
    if (!g_strv_contains (known_keywords, k->data))
      {
        g_string_append_printf (problems, "%s: the checker does not know \"%s\"\n", where,
                                (const char *) k->data);
        return FALSE;
      }
  if (ref != NULL)
    {
      JsonObject *definitions = json_object_get_object_member (root, "definitions");
      const char *name = g_str_has_prefix (ref, "#/definitions/")
                           ? ref + strlen ("#/definitions/") : "";

      if (definitions == NULL || !json_object_has_member (definitions, name))
        {
          g_string_append_printf (problems, "%s: no definition for %s\n", where, ref);
          return FALSE;
        }
      return canopy_test_json_schema_check (root, json_object_get_object_member (definitions,
                                                                                 name),
                                            value, where, problems);
    }
  if (!check_type (schema, value, where, problems))
    return FALSE;
  if (!check_format (schema, value, where, problems)
      || !check_enum_and_minimum (schema, value, where, problems))
    return FALSE;
  if (JSON_NODE_HOLDS_OBJECT (value))
    return check_object (root, schema, json_node_get_object (value), where, problems);
  if (JSON_NODE_HOLDS_ARRAY (value))
    return check_items (root, schema, json_node_get_array (value), where, problems);
  return TRUE;
}
