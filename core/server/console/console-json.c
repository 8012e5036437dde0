/* Console API bodies. Responses carry no-store caching, because they hold
 * the state of a server that changes under them. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-json"

#include "server/console/console-json.h"
#include "lib/i18n.h"

#include <string.h>

G_DEFINE_QUARK (canopy-console-json-error-quark, canopy_console_json_error)

static void
set_common_headers (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
}

void
canopy_console_respond_text (SoupServerMessage *msg, guint status, const char *content_type,
                             const char *text)
{
  set_common_headers (msg);
  /* libsoup 3.2 knows no phrase for 429. */
  soup_server_message_set_status (msg, status, status == 429 ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY, text, strlen (text));
}

void
canopy_console_respond_json (SoupServerMessage *msg, guint status, JsonNode *root)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);
  json_node_unref (root);
  canopy_console_respond_text (msg, status, "application/json", text);
}

void
canopy_console_respond_error_with (SoupServerMessage *msg, guint status, const char *code,
                                   const char *message, const char *name, JsonNode *extra)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, code);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  if (name != NULL)
    {
      json_builder_set_member_name (builder, name);
      json_builder_add_value (builder, extra);
    }
  json_builder_end_object (builder);
  canopy_console_respond_json (msg, status, json_builder_get_root (builder));
}

void
canopy_console_respond_error (SoupServerMessage *msg, guint status, const char *code,
                              const char *message)
{
  canopy_console_respond_error_with (msg, status, code, message, NULL, NULL);
}

char *
canopy_console_parse_text (const char *data, gsize length, GError **error)
{
  if (length == 0)
    {
      g_set_error (error, CANOPY_CONSOLE_JSON_ERROR, CANOPY_CONSOLE_JSON_ERROR_EMPTY,
                   _("The request has no body; send the data with it"));
      return NULL;
    }
  if (memchr (data, '\0', length) != NULL || !g_utf8_validate_len (data, length, NULL))
    {
      g_set_error (error, CANOPY_CONSOLE_JSON_ERROR, CANOPY_CONSOLE_JSON_ERROR_ENCODING,
                   _("The request body is not UTF-8 text; save the file as UTF-8 and send it "
                     "again"));
      return NULL;
    }
  return g_strndup (data, length);
}

/* Whether the JSON text escapes a NUL character (\u0000) in a string.
 * json-glib keeps strings NUL-terminated, so such a string would reach
 * canopy cut short at the NUL: "/opt/app\u0000.exe" would become
 * "/opt/app". Escapes are skipped whole, so "\\u0000" (a backslash, then
 * "u0000") is not one. */
static gboolean
escapes_nul (const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    if (*p == '\\')
      {
        if (p[1] == 'u' && g_ascii_strncasecmp (p + 2, "0000", 4) == 0)
          return TRUE;
        if (p[1] == '\0')
          break;
        p++;
      }
  return FALSE;
}

JsonObject *
canopy_console_parse_object (const char *data, gsize length, GError **error)
{
  g_autofree char *text = canopy_console_parse_text (data, length, error);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  JsonNode *root;

  if (text == NULL)
    return NULL;
  if (escapes_nul (text))
    {
      g_set_error (error, CANOPY_CONSOLE_JSON_ERROR, CANOPY_CONSOLE_JSON_ERROR_ENCODING,
                   _("The request body has a NUL character (\\u0000) in a string; no name, "
                     "path or setting may contain one: remove it and send the request again"));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, text, -1, &local_error))
    {
      g_set_error (error, CANOPY_CONSOLE_JSON_ERROR, CANOPY_CONSOLE_JSON_ERROR_MALFORMED,
                   _("The request body is not valid JSON (%s); send a JSON object such as "
                     "{\"distribution_optimization\": true}"),
                   local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, CANOPY_CONSOLE_JSON_ERROR, CANOPY_CONSOLE_JSON_ERROR_NOT_OBJECT,
                   _("The request body must be a JSON object ({...}) naming the fields to "
                     "change"));
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

char *
canopy_console_read_text (SoupServerMessage *msg, GError **error)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  return canopy_console_parse_text (data, length, error);
}

JsonObject *
canopy_console_read_object (SoupServerMessage *msg, GError **error)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  return canopy_console_parse_object (data, length, error);
}

JsonNode *
canopy_console_json_strv (const char *const *strv)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (const char *const *s = strv; s != NULL && *s != NULL; s++)
    json_array_add_string_element (array, *s);
  json_node_take_array (node, array);
  return node;
}
