/* Resolving what an admin typed: the whole ID wins; otherwise every item
 * whose ID starts with it or whose name is it (case does not matter)
 * is a candidate, and only a single candidate is taken. */
#include "build-config.h"

#include "ctl/ctl-resolve.h"
#include "lib/i18n.h"

#include <string.h>

struct _CtlNames {
  GHashTable *names; /* ID -> name */
  GHashTable *sizes; /* content ID -> guint64 * */
};

typedef struct {
  const char *path;
  const char *member; /* the array's member, NULL: the answer is the array */
  const char *list_command;
} KindInfo;

static const KindInfo kinds[] = {
  [CTL_KIND_CONTENT] = { "/api/v1/content", NULL, "canopyctl content" },
  [CTL_KIND_DEPLOYMENT] = { "/api/v1/deployments", NULL, "canopyctl deployments" },
  [CTL_KIND_DEVICE] = { "/api/v1/devices", "devices", "canopyctl devices -o wide" },
};

static JsonArray *
list_of (JsonNode *answer, const char *member)
{
  if (member == NULL)
    return JSON_NODE_HOLDS_ARRAY (answer) ? json_node_get_array (answer) : NULL;
  if (!JSON_NODE_HOLDS_OBJECT (answer)
      || !json_object_has_member (json_node_get_object (answer), member))
    return NULL;
  return json_object_get_array_member (json_node_get_object (answer), member);
}

static const char *
item_id (CtlKind kind, JsonObject *o)
{
  return json_object_get_string_member_with_default (o, kind == CTL_KIND_DEVICE ? "device_id"
                                                                               : "id", "");
}

/* The name an item is shown and typed by; NULL when it has none. */
static char *
item_name (CtlKind kind, JsonObject *o)
{
  const char *name = json_object_get_string_member_with_default (o, "name", "");

  if (kind == CTL_KIND_CONTENT)
    return g_strdup_printf ("%s %s", name,
                            json_object_get_string_member_with_default (o, "version", ""));
  if (kind == CTL_KIND_DEVICE && name[0] != '\0')
    return g_strdup (name);
  return NULL;
}

static gboolean
matches (CtlKind kind, JsonObject *o, const char *typed)
{
  const char *id = item_id (kind, o);
  g_autofree char *name = item_name (kind, o);

  if (g_ascii_strncasecmp (id, typed, strlen (typed)) == 0)
    return TRUE;
  if (name != NULL && g_utf8_collate (name, typed) == 0)
    return TRUE;
  /* Content by its name alone, when one version is registered. */
  return kind == CTL_KIND_CONTENT
         && g_strcmp0 (json_object_get_string_member_with_default (o, "name", NULL), typed) == 0;
}

static char *
describe (CtlKind kind, JsonObject *o)
{
  g_autofree char *name = item_name (kind, o);

  if (kind == CTL_KIND_DEPLOYMENT)
    return g_strdup_printf (_("%s (to %s)"), item_id (kind, o),
                            json_object_get_string_member_with_default (o, "destination", "?"));
  return g_strdup_printf ("%s (%s)", name != NULL ? name : "-", item_id (kind, o));
}

static const char *
kind_noun (CtlKind kind, guint n)
{
  switch (kind)
    {
    case CTL_KIND_CONTENT:
      return g_dngettext (GETTEXT_PACKAGE, "content", "contents", n);
    case CTL_KIND_DEPLOYMENT:
      return g_dngettext (GETTEXT_PACKAGE, "deployment", "deployments", n);
    case CTL_KIND_DEVICE:
    default:
      return g_dngettext (GETTEXT_PACKAGE, "device", "devices", n);
    }
}

char *
ctl_resolve (CtlClient *client, CtlKind kind, const char *typed, GError **error)
{
  const KindInfo *info = &kinds[kind];
  g_autoptr (JsonNode) answer = NULL;
  g_autoptr (GPtrArray) found = g_ptr_array_new ();
  JsonArray *list;

  if (typed[0] == '\0')
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   _("An empty ID names nothing; \"%s\" lists the IDs"), info->list_command);
      return NULL;
    }
  answer = ctl_client_request_json (client, "GET", info->path, NULL, error);
  if (answer == NULL)
    return NULL;
  list = list_of (answer, info->member);
  for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
    {
      JsonObject *o = json_array_get_object_element (list, i);

      if (g_ascii_strcasecmp (item_id (kind, o), typed) == 0)
        return g_strdup (item_id (kind, o));
      if (matches (kind, o, typed))
        g_ptr_array_add (found, o);
    }
  if (found->len == 1)
    {
      g_autofree char *what = describe (kind, g_ptr_array_index (found, 0));

      g_printerr (_("\"%s\" is %s %s\n"), typed, kind_noun (kind, 1), what);
      return g_strdup (item_id (kind, g_ptr_array_index (found, 0)));
    }
  if (found->len == 0)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_NOT_FOUND,
                   _("No %s has the ID, ID prefix or name \"%s\"; \"%s\" lists them"),
                   kind_noun (kind, 1), typed, info->list_command);
      return NULL;
    }
  {
    g_autoptr (GString) text = g_string_new (NULL);

    g_string_printf (text,
                     g_dngettext (GETTEXT_PACKAGE, "\"%s\" could be %u %s:",
                                  "\"%s\" could be any of %u %s:", found->len),
                     typed, found->len, kind_noun (kind, found->len));
    for (guint i = 0; i < found->len; i++)
      {
        g_autofree char *what = describe (kind, g_ptr_array_index (found, i));
        g_string_append_printf (text, "\n  %s", what);
      }
    g_string_append_printf (text, _("\nType more of the ID to say which."));
    g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE, text->str);
  }
  return NULL;
}

static void
add_names (CtlNames *names, CtlClient *client, CtlKind kind)
{
  g_autoptr (JsonNode) answer = ctl_client_request_json (client, "GET", kinds[kind].path, NULL,
                                                         NULL);
  JsonArray *list = answer != NULL ? list_of (answer, kinds[kind].member) : NULL;

  for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
    {
      JsonObject *o = json_array_get_object_element (list, i);
      char *name = item_name (kind, o);

      if (name == NULL)
        continue;
      g_hash_table_replace (names->names, g_strdup (item_id (kind, o)), name);
      if (kind == CTL_KIND_CONTENT)
        {
          guint64 *size = g_new (guint64, 1);
          *size = (guint64) MAX (json_object_get_int_member_with_default (o, "size", 0), 0);
          g_hash_table_replace (names->sizes, g_strdup (item_id (kind, o)), size);
        }
    }
}

/* Names are a convenience: a list the admin may not read shows IDs. */
CtlNames *
ctl_names_new (CtlClient *client)
{
  CtlNames *names = g_new0 (CtlNames, 1);

  names->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  names->sizes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  add_names (names, client, CTL_KIND_CONTENT);
  add_names (names, client, CTL_KIND_DEVICE);
  return names;
}

void
ctl_names_free (CtlNames *names)
{
  if (names == NULL)
    return;
  g_hash_table_unref (names->names);
  g_hash_table_unref (names->sizes);
  g_free (names);
}

const char *
ctl_names_lookup (const CtlNames *names, const char *id)
{
  const char *name = g_hash_table_lookup (names->names, id);

  return name != NULL ? name : id;
}

guint64
ctl_names_content_size (const CtlNames *names, const char *content_id)
{
  const guint64 *size = g_hash_table_lookup (names->sizes, content_id);

  return size != NULL ? *size : 0;
}
