/* JSON and plain responses of the console API, and strict reading of
 * request bodies: every error is a JSON object that names the problem. */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define CANOPY_CONSOLE_JSON_ERROR (canopy_console_json_error_quark ())
GQuark canopy_console_json_error_quark (void);

typedef enum {
  CANOPY_CONSOLE_JSON_ERROR_EMPTY,     /* no body */
  CANOPY_CONSOLE_JSON_ERROR_MALFORMED, /* not JSON */
  CANOPY_CONSOLE_JSON_ERROR_NOT_OBJECT,
  CANOPY_CONSOLE_JSON_ERROR_ENCODING,  /* not UTF-8 */
} CanopyConsoleJsonError;

/* Sends @root (transfer full) as the response with @status. */
void canopy_console_respond_json (SoupServerMessage *msg, guint status, JsonNode *root);

/**
 * canopy_console_respond_error:
 * @code: a short, stable name for scripts ("key-mismatch")
 * @message: a whole translated sentence saying what is wrong and what to do
 */
void canopy_console_respond_error (SoupServerMessage *msg, guint status, const char *code,
                                   const char *message);

/* As canopy_console_respond_error(), with an extra member @name set to @extra. */
void canopy_console_respond_error_with (SoupServerMessage *msg, guint status, const char *code,
                                        const char *message, const char *name, JsonNode *extra);

/* Sends @text as the response, of @content_type. */
void canopy_console_respond_text (SoupServerMessage *msg, guint status,
                                  const char *content_type, const char *text);

/**
 * canopy_console_read_object:
 *
 * Returns: (transfer full): the request body as a JSON object, or %NULL
 *   with @error saying why it is not one.
 */
JsonObject *canopy_console_read_object (SoupServerMessage *msg, GError **error);

/**
 * canopy_console_read_text:
 *
 * Returns: (transfer full): the request body as UTF-8 text without NUL
 *   bytes, or %NULL with @error.
 */
char *canopy_console_read_text (SoupServerMessage *msg, GError **error);

/**
 * canopy_console_parse_text:
 * @data: a request body as received (not nul-terminated)
 *
 * What canopy_console_read_text() does with the body's bytes; apart so
 * that it can be tested and fuzzed without a server.
 */
char *canopy_console_parse_text (const char *data, gsize length, GError **error);

/* What canopy_console_read_object() does with the body's bytes. */
JsonObject *canopy_console_parse_object (const char *data, gsize length, GError **error);

/* Returns: (transfer full): a JSON array of the strings of @strv. */
JsonNode *canopy_console_json_strv (const char *const *strv);

G_END_DECLS
