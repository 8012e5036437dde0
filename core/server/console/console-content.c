/* The console's content, deployment and publish routes. Registering reads
 * the whole package, so its request is paused until the worker thread
 * has built and signed the manifest. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-content"

#include "server/console/console-private.h"
#include "server/content-sources.h"
#include "lib/destination.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/planner.h"

#include <string.h>

typedef struct {
  CanopyConsole *console;
  SoupServerMessage *msg;
  char *actor;
} Registering;

static const char *const source_names[] = { "office_peer", "parent_peer", "server", "origin",
                                            "earlier_versions" };
G_STATIC_ASSERT (G_N_ELEMENTS (source_names) == CANOPY_SOURCE_N_KINDS);

static void
add_timestamp (JsonBuilder *b, const char *name, gint64 us)
{
  g_autofree char *text = us > 0 ? canopy_log_format_time (us) : NULL;

  json_builder_set_member_name (b, name);
  if (text != NULL)
    json_builder_add_string_value (b, text);
  else
    json_builder_add_null_value (b);
}

static char *
query_id (SoupServerMessage *msg)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) params = query != NULL
                                    ? g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL)
                                    : NULL;
  const char *id = params != NULL ? g_hash_table_lookup (params, "id") : NULL;

  if (id == NULL || id[0] == '\0')
    canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "missing-id",
                                  _("Name the item with ?id=ID; list them to see the IDs"));
  return g_strdup (id);
}

/* Only @allowed members, each a string unless listed in @arrays or
 * (nullable) @booleans. */
static gboolean
check_members (SoupServerMessage *msg, JsonObject *object, const char *const *allowed,
               const char *const *arrays, const char *const *booleans)
{
  static const char *const none[] = { NULL };

  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *m = members; m != NULL; m = m->next)
    {
      JsonNode *node = json_object_get_member (object, m->data);
      gboolean array = g_strv_contains (arrays, m->data);
      gboolean boolean = g_strv_contains (booleans != NULL ? booleans : none, m->data);
      g_autofree char *message = NULL;
      g_autofree char *fields = NULL;
      gboolean unknown = FALSE;

      if (!g_strv_contains (allowed, m->data) && !array && !boolean)
        {
          fields = g_strjoinv (", ", (char **) allowed);
          message = g_strdup_printf (_("Unknown field \"%s\"; the fields are: %s"),
                                     (const char *) m->data, fields);
          unknown = TRUE;
        }
      else if (boolean)
        {
          if (json_node_get_value_type (node) != G_TYPE_BOOLEAN)
            message = g_strdup_printf (_("Field \"%s\" must be true or false"),
                                       (const char *) m->data);
        }
      else if (array ? !JSON_NODE_HOLDS_ARRAY (node)
                     : json_node_get_value_type (node) != G_TYPE_STRING)
        message = g_strdup_printf (array ? _("Field \"%s\" must be an array of strings")
                                         : _("Field \"%s\" must be a string"),
                                   (const char *) m->data);
      /* The same codes as the settings endpoint, so clients handle one set. */
      if (message != NULL)
        {
          canopy_console_respond_error (msg,
                                        unknown ? SOUP_STATUS_BAD_REQUEST
                                                : SOUP_STATUS_UNPROCESSABLE_ENTITY,
                                        unknown ? "unknown-field" : "invalid-value", message);
          return FALSE;
        }
    }
  return TRUE;
}

static void
respond_body_error (SoupServerMessage *msg, const GError *error)
{
  canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                                g_error_matches (error, CANOPY_CONSOLE_JSON_ERROR,
                                                 CANOPY_CONSOLE_JSON_ERROR_MALFORMED)
                                  ? "malformed-json" : "bad-request",
                                error->message);
}

static const char *
required_string (SoupServerMessage *msg, JsonObject *object, const char *name)
{
  const char *value = json_object_get_string_member_with_default (object, name, NULL);
  g_autofree char *message = NULL;

  if (value != NULL && value[0] != '\0')
    return value;
  message = g_strdup_printf (_("Field \"%s\" is required"), name);
  canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "missing-field", message);
  return NULL;
}

void
canopy_console_add_content_identity (JsonBuilder *b, const CanopyContent *content)
{
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, content->id);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, content->name);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, content->version);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) content->size);
}

static JsonNode *
content_json (const CanopyContent *content)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  canopy_console_add_content_identity (b, content);
  json_builder_set_member_name (b, "location");
  json_builder_add_string_value (b, content->location);
  json_builder_set_member_name (b, "chunks");
  json_builder_add_int_value (b, content->n_chunks);
  /* Every timestamp of the API is RFC 3339 UTC, as the devices' are. */
  add_timestamp (b, "registered_at", content->registered_at);
  canopy_console_add_expiry (b, content->expires_at);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

void
canopy_console_post_content_expiry (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "expires", NULL };
  static const char *const none[] = { NULL };
  g_autofree char *id = query_id (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *actor = NULL, *detail = NULL;
  const CanopyContent *content;
  gint64 expires_at;

  if (id == NULL)
    return;
  object = canopy_console_read_object (msg, &error);
  if (object == NULL)
    {
      respond_body_error (msg, error);
      return;
    }
  if (!check_members (msg, object, allowed, none, NULL)
      || !canopy_console_read_expiry (msg, object, &expires_at))
    return;
  if (!canopy_catalog_set_expiry (console->context.catalog, id, expires_at, &error))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", error->message);
      return;
    }
  content = canopy_catalog_lookup (console->context.catalog, id);
  actor = canopy_console_actor (msg);
  detail = g_strdup_printf ("%s expires %" G_GINT64_FORMAT, id, expires_at / G_USEC_PER_SEC);
  canopy_store_audit (console->context.store, actor, "content-expiry-set", detail);
  answer = content_json (content);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, g_steal_pointer (&answer));
}

void
canopy_console_get_content (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autoptr (GPtrArray) list = canopy_catalog_list (console->context.catalog);
  g_autoptr (JsonArray) array = json_array_new ();

  for (guint i = 0; i < list->len; i++)
    json_array_add_element (array, content_json (g_ptr_array_index (list, i)));
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_node_init_array (json_node_alloc (),
                                                                          array));
}

static void
on_registered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Registering *r = user_data;
  g_autoptr (GError) error = NULL;
  const CanopyContent *content = NULL;

  r->console->probes--;
  if (!g_cancellable_is_cancelled (r->console->cancellable))
    {
      content = canopy_catalog_register_finish (r->console->context.catalog,
                                                result, &error);
      /* A source the configuration does not allow is the request's
       * fault; an origin that cannot be read is not. */
      if (content == NULL && error->domain == CANOPY_CONTENT_SOURCES_ERROR
          && error->code != CANOPY_CONTENT_SOURCES_ERROR_UNREADABLE)
        canopy_console_respond_error (r->msg, SOUP_STATUS_BAD_REQUEST, "source-not-allowed",
                                      error->message);
      else if (content == NULL)
        canopy_console_respond_error (r->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
                                      "origin-unreadable", error->message);
      else
        {
          g_autofree char *detail = g_strdup_printf ("%s %s %s from %s", content->id,
                                                     content->name, content->version,
                                                     content->location);
          canopy_store_audit (r->console->context.store, r->actor,
                              "content-registered", detail);
          canopy_console_respond_json (r->msg, SOUP_STATUS_CREATED, content_json (content));
        }
      if (content != NULL)
        canopy_console_respond_when_saved (r->console, r->msg);
      else
        soup_server_message_unpause (r->msg);
    }
  g_object_unref (r->msg);
  g_free (r->actor);
  g_free (r);
}

void
canopy_console_post_content (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "name", "version", "location", NULL };
  static const char *const none[] = { NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = canopy_console_read_object (msg, &error);
  const char *name, *version, *location;
  Registering *r;

  if (object == NULL)
    {
      respond_body_error (msg, error);
      return;
    }
  if (!check_members (msg, object, allowed, none, NULL)
      || (name = required_string (msg, object, "name")) == NULL
      || (version = required_string (msg, object, "version")) == NULL
      || (location = required_string (msg, object, "location")) == NULL)
    return;
  r = g_new0 (Registering, 1);
  r->console = console;
  r->msg = g_object_ref (msg);
  r->actor = canopy_console_actor (msg);
  soup_server_message_pause (msg);
  console->probes++;
  canopy_catalog_register_async (console->context.catalog, name, version,
                                 location, 0, console->cancellable, on_registered, r);
}

void
canopy_console_delete_content (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autofree char *id = query_id (msg);
  g_autofree char *actor = NULL;
  g_autoptr (GError) error = NULL;

  if (id == NULL)
    return;
  if (canopy_distributor_uses_content (console->context.distributor, id))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_CONFLICT, "content-in-use",
                                    _("A deployment uses this content; remove the deployment "
                                      "first"));
      return;
    }
  if (!canopy_catalog_remove (console->context.catalog, id, &error))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", error->message);
      return;
    }
  actor = canopy_console_actor (msg);
  canopy_store_audit (console->context.store, actor, "content-removed", id);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}

void
canopy_console_post_publish (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *actor = canopy_console_actor (msg);
  g_autofree char *detail = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint copies = 0;
  int published = canopy_catalog_publish (console->context.catalog, &copies,
                                          &error);

  if (published < 0)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "publish-failed",
                                    error->message);
      return;
    }
  canopy_distributor_reoffer (console->context.distributor);
  detail = g_strdup_printf ("%d contents", published);
  canopy_store_audit (console->context.store, actor, "content-published",
                      detail);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "published");
  json_builder_add_int_value (b, published);
  json_builder_set_member_name (b, "copying");
  json_builder_add_int_value (b, copies);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

/* The name the device reported in its hello, "" when unknown. */
static const char *
device_name (CanopyStore *store, const char *device_id)
{
  GVariant *record = store != NULL && device_id != NULL
                       ? canopy_store_get_device (store, device_id) : NULL;
  const char *name = "";

  if (record != NULL)
    g_variant_get_child (record, 0, "&s", &name);
  return name;
}

static void
add_office_progress (JsonBuilder *b, CanopyStore *store, const CanopyOfficeProgress *p,
                     guint64 size)
{
  /* Chunks taken from earlier versions crossed no link either. */
  guint64 peers = p->bytes[CANOPY_SOURCE_OFFICE_PEER] + p->bytes[CANOPY_SOURCE_EARLIER_VERSIONS];

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "office");
  json_builder_add_string_value (b, p->office);
  json_builder_set_member_name (b, "devices");
  json_builder_add_int_value (b, p->devices);
  json_builder_set_member_name (b, "done");
  json_builder_add_int_value (b, p->done);
  json_builder_set_member_name (b, "lead");
  json_builder_add_string_value (b, p->lead != NULL ? p->lead : "");
  json_builder_set_member_name (b, "lead_name");
  json_builder_add_string_value (b, device_name (store, p->lead));
  for (int k = 0; k < CANOPY_SOURCE_N_KINDS; k++)
    {
      g_autofree char *name = g_strdup_printf ("bytes_%s", source_names[k]);
      json_builder_set_member_name (b, name);
      json_builder_add_int_value (b, (gint64) p->bytes[k]);
    }
  json_builder_set_member_name (b, "wan_bytes");
  json_builder_add_int_value (b, (gint64) p->wan_bytes);
  /* Savings: the share of what devices received that did not cross the WAN. */
  json_builder_set_member_name (b, "savings");
  json_builder_add_double_value (b, peers + p->wan_bytes > 0
                                      ? (double) peers / (double) (peers + p->wan_bytes)
                                      : 0.0);
  json_builder_set_member_name (b, "wan_ratio");
  json_builder_add_double_value (b, size > 0 ? (double) p->wan_bytes / (double) size : 0.0);
  json_builder_set_member_name (b, "transfer_class");
  json_builder_add_string_value (b, p->background ? "background" : "normal");
  /* What the background lead measures now; null when it has not said. */
  json_builder_set_member_name (b, "background_rate");
  if (p->pacing_rate > 0)
    json_builder_add_int_value (b, (gint64) p->pacing_rate);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "queueing_delay_ms");
  if (p->pacing_rate > 0 && p->queueing_delay_us >= 0)
    json_builder_add_double_value (b, (double) p->queueing_delay_us / 1000.0);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "base_delay_ms");
  if (p->pacing_rate > 0 && p->base_delay_us >= 0)
    json_builder_add_double_value (b, (double) p->base_delay_us / 1000.0);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
}

/* Each device that said it cannot complete the deployment, with its
 * reason: a destination its policy refuses shows here, where the admin
 * looks at the deployment. Takes @failures. */
static void
add_failures (JsonBuilder *b, GPtrArray *failures)
{
  g_autoptr (GPtrArray) owned = failures;

  json_builder_set_member_name (b, "failures");
  json_builder_begin_array (b);
  for (guint i = 0; i < owned->len; i++)
    {
      const CanopyDeviceFailure *failure = g_ptr_array_index (owned, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "device");
      json_builder_add_string_value (b, failure->device_id);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, failure->reason);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

/* @name: [{"device", "outcome", "message"}] from @outcomes. */
static void
add_outcomes (JsonBuilder *b, const char *name, GPtrArray *outcomes)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < outcomes->len; i++)
    {
      const CanopyDeviceOutcome *o = g_ptr_array_index (outcomes, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "device");
      json_builder_add_string_value (b, o->device_id);
      json_builder_set_member_name (b, "outcome");
      json_builder_add_string_value (b, o->what);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, o->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

/* The deployment's state and, once cancelled, what each device did. */
static void
add_withdrawal (JsonBuilder *b, CanopyDistributor *distributor, const CanopyDeploymentInfo *info)
{
  static const char *const states[] = { "active", "paused", "cancelled", "retired" };
  g_autoptr (GPtrArray) outcomes = canopy_distributor_get_outcomes (distributor, info->id);
  g_autoptr (GPtrArray) uninstalls = canopy_distributor_get_uninstalls (distributor, info->id);

  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, info->state < G_N_ELEMENTS (states) ? states[info->state]
                                                                        : "unknown");
  if (uninstalls != NULL)
    add_outcomes (b, "uninstalled", uninstalls);
  if (outcomes == NULL)
    return;
  json_builder_set_member_name (b, "withdrawn");
  json_builder_begin_array (b);
  for (guint i = 0; i < outcomes->len; i++)
    {
      const CanopyDeviceOutcome *o = g_ptr_array_index (outcomes, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "device");
      json_builder_add_string_value (b, o->device_id);
      json_builder_set_member_name (b, "outcome");
      json_builder_add_string_value (b, o->what);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, o->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
add_deployment (CanopyConsole *console, JsonBuilder *b, const CanopyDeploymentInfo *info)
{
  CanopyDistributor *distributor = console->context.distributor;
  const CanopyContent *content = canopy_catalog_lookup (console->context.catalog, info->content_id);
  g_autoptr (GPtrArray) offices = canopy_distributor_get_progress (distributor, info->id);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, info->id);
  json_builder_set_member_name (b, "content");
  json_builder_add_string_value (b, info->content_id);
  /* What an admin recognises the content by. */
  json_builder_set_member_name (b, "content_name");
  json_builder_add_string_value (b, content != NULL ? content->name : "");
  json_builder_set_member_name (b, "content_version");
  json_builder_add_string_value (b, content != NULL ? content->version : "");
  json_builder_set_member_name (b, "groups");
  json_builder_add_value (b, canopy_console_json_strv ((const char *const *) info->groups));
  json_builder_set_member_name (b, "destination");
  json_builder_add_string_value (b, info->destination);
  json_builder_set_member_name (b, "background");
  json_builder_add_boolean_value (b, info->background);
  add_timestamp (b, "created_at", info->created_at);
  json_builder_set_member_name (b, "devices");
  json_builder_add_int_value (b, info->devices);
  json_builder_set_member_name (b, "done");
  json_builder_add_int_value (b, info->done);
  add_failures (b, canopy_distributor_get_failures (distributor, info->id));
  json_builder_set_member_name (b, "offices");
  json_builder_begin_array (b);
  for (guint i = 0; offices != NULL && i < offices->len; i++)
    add_office_progress (b, console->context.store, g_ptr_array_index (offices, i),
                         content != NULL ? content->size : 0);
  json_builder_end_array (b);
  add_withdrawal (b, distributor, info);
  canopy_console_add_timing (b, &info->timing);
  json_builder_end_object (b);
}

void
canopy_console_get_deployments (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autoptr (GPtrArray) list = canopy_distributor_list (console->context.distributor);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    add_deployment (console, b, g_ptr_array_index (list, i));
  json_builder_end_array (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

static GStrv
string_array (JsonObject *object, const char *name)
{
  JsonArray *array = json_object_has_member (object, name)
                       ? json_object_get_array_member (object, name)
                       : NULL;
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);

      if (json_node_get_value_type (node) == G_TYPE_STRING)
        g_ptr_array_add (out, g_strdup (json_node_get_string (node)));
    }
  g_ptr_array_add (out, NULL);
  return (GStrv) g_ptr_array_free (out, FALSE);
}

/* Refuses (and answers) a group that is not assigned: no device of it
 * would ever be enrolled, so the deployment could never reach anyone. */
static gboolean
check_groups_assigned (CanopyConsole *console, SoupServerMessage *msg, const char *const *groups)
{
  const CanopySettings *settings = canopy_console_settings (console);
  const char *const *assigned = (const char *const *) settings->assigned_groups;

  for (const char *const *g = groups; *g != NULL; g++)
    {
      g_autofree char *list = NULL, *message = NULL;

      if (assigned != NULL && g_strv_contains (assigned, *g))
        continue;
      list = assigned != NULL && assigned[0] != NULL ? g_strjoinv (", ", (char **) assigned)
                                                     : g_strdup (_("none"));
      message = g_strdup_printf (_("The group \"%s\" is not assigned to peer distribution, so "
                                   "none of its devices is enrolled. The assigned groups are: "
                                   "%s. Deploy to one of them, or assign \"%s\" first "
                                   "(\"canopyctl settings-set --add-group %s\")"),
                                 *g, list, *g, *g);
      canopy_console_respond_error_with (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
                                         "group-not-assigned", message, "assigned_groups",
                                         canopy_console_json_strv (assigned != NULL
                                                                     ? assigned
                                                                     : (const char *const[]){
                                                                         NULL }));
      return FALSE;
    }
  return TRUE;
}

static gboolean
same_groups (const char *const *a, const char *const *b)
{
  for (const char *const *g = a; *g != NULL; g++)
    if (!g_strv_contains (b, *g))
      return FALSE;
  for (const char *const *g = b; *g != NULL; g++)
    if (!g_strv_contains (a, *g))
      return FALSE;
  return TRUE;
}

/* Refuses (and answers) a deployment that exists already, not cancelled:
 * the same content to the same groups at the same path would only send
 * the same bytes twice. */
static gboolean
check_not_duplicate (CanopyConsole *console, SoupServerMessage *msg, const char *content,
                     const char *const *groups, const char *destination)
{
  g_autoptr (GPtrArray) list = canopy_distributor_list (console->context.distributor);

  for (guint i = 0; i < list->len; i++)
    {
      const CanopyDeploymentInfo *info = g_ptr_array_index (list, i);
      g_autofree char *message = NULL;

      if (info->state == CANOPY_DEPLOYMENT_CANCELLED || g_strcmp0 (info->content_id, content) != 0
          || g_strcmp0 (info->destination, destination) != 0
          || !same_groups ((const char *const *) info->groups, groups))
        continue;
      message = g_strdup_printf (_("Deployment %s already puts this content at %s on the "
                                   "devices of these groups; follow it with \"canopyctl "
                                   "deployment-wait %s\", or remove it first to deploy again"),
                                 info->id, destination, info->id);
      canopy_console_respond_error_with (msg, SOUP_STATUS_CONFLICT, "duplicate-deployment",
                                         message, "deployment",
                                         json_node_init_string (json_node_alloc (), info->id));
      return FALSE;
    }
  return TRUE;
}

void
canopy_console_post_deployments (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "content", "destination", "start", "deadline",
                                         "window", "background", NULL };
  static const char *const arrays[] = { "groups", NULL };
  static const char *const booleans[] = { "background", NULL };
  CanopyDeploymentTiming timing;
  CanopyDeploymentOptions options = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = canopy_console_read_object (msg, &error);
  g_auto (GStrv) groups = NULL;
  g_autofree char *id = NULL;
  g_autofree char *actor = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *content, *destination;

  if (object == NULL)
    {
      respond_body_error (msg, error);
      return;
    }
  if (!check_members (msg, object, allowed, arrays, booleans)
      || (content = required_string (msg, object, "content")) == NULL
      || (destination = required_string (msg, object, "destination")) == NULL
      || !canopy_console_read_timing (msg, object, &timing))
    return;
  /* What no device could accept is refused here, where the admin sees why
   * at once; each agent still applies its own policy. */
  if (!canopy_destination_check (destination, -1, &error))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-destination",
                                    error->message);
      return;
    }
  groups = string_array (object, "groups");
  options.background = json_object_get_boolean_member_with_default (object, "background", FALSE);
  if ((groups[0] != NULL && !check_groups_assigned (console, msg, (const char *const *) groups))
      || !check_not_duplicate (console, msg, content, (const char *const *) groups, destination))
    return;
  actor = canopy_console_actor (msg);
  id = canopy_distributor_create_timed (console->context.distributor, content,
                                        (const char *const *) groups, destination, &timing,
                                        &options, actor, &error);
  if (id == NULL)
    {
      gboolean unknown = g_error_matches (error, CANOPY_DISTRIBUTOR_ERROR,
                                         CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_CONTENT);

      canopy_console_respond_error (msg,
                                    unknown ? SOUP_STATUS_NOT_FOUND
                                            : SOUP_STATUS_UNPROCESSABLE_ENTITY,
                                    unknown ? "unknown-content" : "invalid-value",
                                    error->message);
      return;
    }
  canopy_store_audit (console->context.store, actor, "deployment-created",
                      id);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_CREATED, json_builder_get_root (b));
}

typedef gboolean (*DeploymentChange) (CanopyDistributor *distributor, const char *id,
                                      GError **error);

/* Cancel and retire: change the deployment of ?id=, audit it, and answer
 * with its new state. */
static void
change_deployment (CanopyConsole *console, SoupServerMessage *msg, DeploymentChange change,
                   const char *action, const char *state)
{
  g_autofree char *id = query_id (msg);
  g_autofree char *actor = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();

  if (id == NULL)
    return;
  if (!change (console->context.distributor, id, &error))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", error->message);
      return;
    }
  actor = canopy_console_actor (msg);
  canopy_store_audit (console->context.store, actor, action, id);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, state);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

void
canopy_console_cancel_deployment (CanopyConsole *console, SoupServerMessage *msg)
{
  change_deployment (console, msg, canopy_distributor_cancel, "deployment-cancelled",
                     "cancelled");
}

void
canopy_console_retire_deployment (CanopyConsole *console, SoupServerMessage *msg)
{
  change_deployment (console, msg, canopy_distributor_retire, "deployment-retired", "retired");
}

void
canopy_console_delete_deployments (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autofree char *id = query_id (msg);
  g_autofree char *actor = NULL;
  g_autoptr (GError) error = NULL;

  if (id == NULL)
    return;
  if (!canopy_distributor_remove (console->context.distributor, id, &error))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", error->message);
      return;
    }
  actor = canopy_console_actor (msg);
  canopy_store_audit (console->context.store, actor, "deployment-removed",
                      id);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}
