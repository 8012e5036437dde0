/* Read-only views of the console API: devices with why each is preferred,
 * offices, and the activated-licences report. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-views"

#include "server/console/console-private.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/ranking.h"

#include <string.h>

/* The query parameters of @msg, or NULL with a 400 sent when one is not
 * in @allowed. */
static GHashTable *
read_query (SoupServerMessage *msg, const char *const *allowed)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) params = NULL;
  GHashTableIter iter;
  const char *name;

  if (query == NULL)
    return g_hash_table_new (g_str_hash, g_str_equal);
  params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
  if (params == NULL)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-query",
                                    _("The query string cannot be read; write it as "
                                      "?name=value&name=value with %-escapes"));
      return NULL;
    }
  g_hash_table_iter_init (&iter, params);
  while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
    if (!g_strv_contains (allowed, name))
      {
        g_autofree char *joined = g_strjoinv (", ", (char **) allowed);
        g_autofree char *text = g_strdup_printf (_("Unknown query parameter \"%s\"; this "
                                                   "request takes: %s"),
                                                 name, joined[0] != '\0' ? joined : _("none"));
        canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "unknown-parameter", text);
        return NULL;
      }
  return g_steal_pointer (&params);
}

static void
add_time (JsonBuilder *b, const char *name, gint64 us)
{
  g_autofree char *text = canopy_log_format_time (us);

  json_builder_set_member_name (b, name);
  if (text != NULL)
    json_builder_add_string_value (b, text);
  else
    json_builder_add_null_value (b);
}

static void
add_online (const char *device_id, const char *agent_version, const char *office,
            gpointer user_data)
{
  g_hash_table_add (user_data, (gpointer) device_id);
}

static GHashTable *
online_devices (CanopyConsole *console)
{
  GHashTable *online = g_hash_table_new (g_str_hash, g_str_equal);

  canopy_sessions_foreach_enrolled (console->context.sessions, add_online,
                                    online);
  return online;
}

/* A device's history for the ranking, pointing into its stored record. */
static CanopyDeviceHistory *
history_of (const char *device_id, GVariant *record, GHashTable *online)
{
  CanopyDeviceHistory *h = g_new0 (CanopyDeviceHistory, 1);

  canopy_store_device_history (record, h);
  h->device_id = device_id;
  h->online = g_hash_table_contains (online, device_id);
  return h;
}

static gboolean
in_group (GVariant *record, const char *group)
{
  g_autoptr (GVariant) groups = g_variant_get_child_value (record, 1);
  g_autofree const char **strv = g_variant_get_strv (groups, NULL);

  return g_strv_contains (strv, group);
}

static void
add_device (JsonBuilder *b, CanopyConsole *console, const CanopyRankedDevice *r, GVariant *record,
            gboolean lead)
{
  const char *name, *version, *address;
  g_autoptr (GVariant) groups = NULL, addresses = NULL;
  gint64 last_seen;
  GVariantIter iter;
  guint8 prefix;

  g_variant_get (record, "(&s@as@a(sy)&s&sxxxtuu)", &name, &groups, &addresses, &version, NULL,
                 NULL, &last_seen, NULL, NULL, NULL, NULL);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "device_id");
  json_builder_add_string_value (b, r->history->device_id);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "office");
  json_builder_add_string_value (b, r->history->office);
  json_builder_set_member_name (b, "groups");
  json_builder_add_value (b, json_gvariant_serialize (groups));
  json_builder_set_member_name (b, "addresses");
  json_builder_begin_array (b);
  g_variant_iter_init (&iter, addresses);
  while (g_variant_iter_next (&iter, "(&sy)", &address, &prefix))
    {
      g_autofree char *text = g_strdup_printf ("%s/%u", address, prefix);
      json_builder_add_string_value (b, text);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "agent_version");
  json_builder_add_string_value (b, version);
  json_builder_set_member_name (b, "online");
  json_builder_add_boolean_value (b, r->history->online);
  json_builder_set_member_name (b, "licensed");
  json_builder_add_boolean_value (
      b, canopy_licensing_lookup (console->context.licensing, r->history->device_id) != NULL);
  add_time (b, "first_seen", r->history->first_seen);
  add_time (b, "last_seen", last_seen);
  json_builder_set_member_name (b, "preference");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "rank");
  json_builder_add_int_value (b, r->rank);
  json_builder_set_member_name (b, "score");
  json_builder_add_double_value (b, r->score);
  json_builder_set_member_name (b, "availability");
  json_builder_add_double_value (b, r->availability);
  json_builder_set_member_name (b, "serving");
  json_builder_add_double_value (b, r->serving);
  json_builder_set_member_name (b, "lead");
  json_builder_add_boolean_value (b, lead);
  json_builder_set_member_name (b, "why");
  json_builder_add_string_value (b, r->explanation);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

void
canopy_console_get_devices (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "office", "group", NULL };
  g_autoptr (GHashTable) query = read_query (msg, allowed);
  GHashTable *devices = canopy_store_get_devices (console->context.store);
  g_autoptr (GHashTable) online = NULL;
  g_autoptr (GPtrArray) histories = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) ranked = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *office, *group;
  GHashTableIter iter;
  gpointer key, value;

  if (query == NULL)
    return;
  office = g_hash_table_lookup (query, "office");
  group = g_hash_table_lookup (query, "group");
  online = online_devices (console);
  g_hash_table_iter_init (&iter, devices);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_ptr_array_add (histories, history_of (key, value, online));
  /* Ranked over every device: a filter must not change who leads. */
  ranked = canopy_ranking_rank (histories, g_get_real_time ());
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint i = 0; i < ranked->len; i++)
    {
      const CanopyRankedDevice *r = &g_array_index (ranked, CanopyRankedDevice, i);
      GVariant *record = g_hash_table_lookup (devices, r->history->device_id);

      if ((office != NULL && g_strcmp0 (office, r->history->office) != 0)
          || (group != NULL && !in_group (record, group)))
        continue;
      add_device (b, console, r, record,
                  canopy_ranking_pick_lead (ranked, r->history->office, NULL) == r);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

typedef struct {
  GHashTable *known;  /* office → devices */
  GHashTable *online; /* office → devices online */
} OfficeCounts;

static void
count_known (gpointer key, gpointer value, gpointer user_data)
{
  const char *office;

  g_variant_get_child (value, 4, "&s", &office);
  g_hash_table_replace (user_data, (gpointer) office,
                        GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (user_data,
                                                                                 office))
                                          + 1));
}

static void
count_online (const char *device_id, const char *agent_version, const char *office,
              gpointer user_data)
{
  if (office != NULL)
    g_hash_table_replace (user_data, (gpointer) office,
                          GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (user_data,
                                                                                   office))
                                            + 1));
}

static void
add_office (JsonBuilder *b, const CanopyOffice *office, const OfficeCounts *counts)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, office->name);
  json_builder_set_member_name (b, "parent");
  if (office->parent != NULL)
    json_builder_add_string_value (b, office->parent);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, canopy_office_type_to_string (office->type));
  json_builder_set_member_name (b, "subnets");
  json_builder_begin_array (b);
  for (guint r = 0; r < office->ranges->len; r++)
    {
      g_autofree char *text = canopy_address_range_to_string (
        &g_array_index (office->ranges, CanopyAddressRange, r));
      json_builder_add_string_value (b, text);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "wan_rate");
  json_builder_add_int_value (b, (gint64) office->wan_rate);
  {
    g_autofree char *schedule = canopy_rate_schedule_to_string (office->schedule);

    json_builder_set_member_name (b, "wan_schedule");
    json_builder_add_string_value (b, schedule);
    json_builder_set_member_name (b, "wan_rate_now");
    json_builder_add_int_value (b, (gint64) canopy_office_rate_at (office, g_get_real_time ()));
    json_builder_set_member_name (b, "time_zone");
    json_builder_add_string_value (b, office->time_zone != NULL ? office->time_zone : "UTC");
  }
  json_builder_set_member_name (b, "metered");
  json_builder_add_boolean_value (b, office->metered);
  json_builder_set_member_name (b, "automatic");
  json_builder_add_boolean_value (b, office->automatic);
  json_builder_set_member_name (b, "devices");
  json_builder_add_int_value (b, GPOINTER_TO_UINT (g_hash_table_lookup (counts->known,
                                                                        office->name)));
  json_builder_set_member_name (b, "online");
  json_builder_add_int_value (b, GPOINTER_TO_UINT (g_hash_table_lookup (counts->online,
                                                                        office->name)));
  json_builder_end_object (b);
}

void
canopy_console_get_offices (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { NULL };
  g_autoptr (GHashTable) query = read_query (msg, allowed);
  GPtrArray *offices = canopy_topology_get_offices (canopy_console_topology (console));
  g_autoptr (JsonBuilder) b = json_builder_new ();
  OfficeCounts counts;

  if (query == NULL)
    return;
  counts.known = g_hash_table_new (g_str_hash, g_str_equal);
  counts.online = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_foreach (canopy_store_get_devices (console->context.store),
                        count_known, counts.known);
  canopy_sessions_foreach_enrolled (console->context.sessions, count_online,
                                    counts.online);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "offices");
  json_builder_begin_array (b);
  for (guint i = 0; i < offices->len; i++)
    add_office (b, g_ptr_array_index (offices, i), &counts);
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_hash_table_unref (counts.known);
  g_hash_table_unref (counts.online);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

typedef struct {
  GHashTable *devices;
  CanopyLicenceReportDevice row;
  char *address;
} ReportLookup;

static const CanopyLicenceReportDevice *
describe_device (const char *device_id, gpointer user_data)
{
  ReportLookup *lookup = user_data;
  GVariant *record = g_hash_table_lookup (lookup->devices, device_id);
  g_autoptr (GVariant) addresses = NULL;
  const char *address = NULL;
  guint8 prefix = 0;

  if (record == NULL)
    return NULL;
  g_variant_get (record, "(&s@as@a(sy)&s&sxxxtuu)", &lookup->row.name, NULL, &addresses,
                 &lookup->row.agent_version, &lookup->row.office, NULL, NULL, NULL, NULL, NULL,
                 NULL);
  if (g_variant_n_children (addresses) > 0)
    g_variant_get_child (addresses, 0, "(&sy)", &address, &prefix);
  g_free (lookup->address);
  lookup->address = g_strdup (address);
  lookup->row.device_id = device_id;
  lookup->row.address = lookup->address;
  return &lookup->row;
}

void
canopy_console_get_licence_report (CanopyConsole *console, SoupServerMessage *msg)
{
  ReportLookup lookup = { canopy_store_get_devices (console->context.store),
                          { NULL, NULL, NULL, NULL, NULL }, NULL };
  g_autofree char *csv
      = canopy_licensing_report_csv (console->context.licensing, describe_device, &lookup);

  g_free (lookup.address);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Content-Disposition",
                                "attachment; filename=\"activated-licences.csv\"");
  canopy_console_respond_text (msg, SOUP_STATUS_OK, "text/csv; charset=utf-8", csv);
}
