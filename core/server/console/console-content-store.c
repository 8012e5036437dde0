/* The console's view of the content store: where it is, how full, what it
 * has sent, and for each registered content whether the server seeds it
 * and, when not, why and what to do. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-content-store"

#include "server/console/console-private.h"
#include "lib/i18n.h"

static void
add_member_int (JsonBuilder *b, const char *name, guint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, (gint64) MIN (value, (guint64) G_MAXINT64));
}

static void
add_settings (JsonBuilder *b, const CanopyContentStore *store)
{
  json_builder_set_member_name (b, "directory");
  json_builder_add_string_value (b, canopy_content_store_get_directory (store));
  add_member_int (b, "quota", canopy_content_store_get_quota (store));
  add_member_int (b, "used", canopy_content_store_get_used (store));
  add_member_int (b, "upload_slots", canopy_content_store_get_upload_slots (store));
  add_member_int (b, "uploaded_bytes", canopy_content_store_get_uploaded (store));
}

static void
add_content (JsonBuilder *b, CanopyCatalog *catalog, const CanopyContent *content)
{
  const char *reason = canopy_catalog_why_not_stored (catalog, content->id);

  json_builder_begin_object (b);
  canopy_console_add_content_identity (b, content);
  json_builder_set_member_name (b, "stored");
  json_builder_add_boolean_value (b, reason == NULL);
  json_builder_set_member_name (b, "reason");
  json_builder_add_string_value (b, reason != NULL ? reason : "");
  json_builder_end_object (b);
}

void
canopy_console_get_content_store (CanopyConsole *console, SoupServerMessage *msg)
{
  CanopyContentStore *store = console->context.content_store;
  CanopyCatalog *catalog = console->context.catalog;
  g_autoptr (GPtrArray) list = canopy_catalog_list (catalog);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "configured");
  json_builder_add_boolean_value (b, store != NULL);
  if (store != NULL)
    add_settings (b, store);
  json_builder_set_member_name (b, "contents");
  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    add_content (b, catalog, g_ptr_array_index (list, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}
