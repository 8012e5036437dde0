/* A small JSON Schema checker for the tests: the subset canopyctl's
 * schemas use (type, properties, required, additionalProperties, items,
 * enum, minimum, format "date-time", $ref to #/definitions/NAME). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * canopy_test_json_schema_check:
 * @root: the schema document, for $ref
 * @schema: the schema to check against
 * @value: the JSON to check
 * @where: a path for the messages ("$" at the top)
 * @problems: each problem is appended as one line
 *
 * Returns: whether @value follows @schema.
 */
gboolean canopy_test_json_schema_check (JsonObject *root, JsonObject *schema, JsonNode *value,
                                        const char *where, GString *problems);

G_END_DECLS
