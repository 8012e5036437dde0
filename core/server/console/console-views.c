/* Read-only views of the console API: devices with why each is preferred,
 * offices, and the activated-licences report. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-views"

#include "server/console/console-private.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/ranking.h"

#include <string.h>

GHashTable *
canopy_console_read_query (SoupServerMessage *msg, const char *const *allowed)
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

gboolean
canopy_console_read_page (SoupServerMessage *msg, GHashTable *query, guint max_limit,
                          guint *offset, guint *limit)
{
  static const char *const names[] = { "offset", "limit" };
  guint *values[] = { offset, limit };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *text = g_hash_table_lookup (query, names[i]);
      guint64 value;

      if (text == NULL)
        continue;
      if (!g_ascii_string_to_unsigned (text, 10, i == 0 ? 0 : 1, i == 0 ? G_MAXINT : max_limit,
                                       &value, NULL))
        {
          g_autofree char *message = NULL;

          if (i == 0)
            message = g_strdup_printf (_("The offset \"%s\" is not a whole number from 0; "
                                         "give the index of the first item to list"), text);
          else
            message = g_strdup_printf (_("The limit \"%s\" is not a whole number from 1 to "
                                         "%u; ask for at most %u items a page"),
                                       text, max_limit, max_limit);
          canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-value", message);
          return FALSE;
        }
      *values[i] = (guint) value;
    }
  return TRUE;
}

/* What GET /api/v1/devices sorts by; a leading "-" reverses it. */
typedef enum {
  SORT_RANK, SORT_NAME, SORT_OFFICE, SORT_VERSION, SORT_LAST_SEEN, SORT_ONLINE
} DeviceSort;

static const char *const sort_names[] = { "rank", "name", "office", "version", "last_seen",
                                          "online", NULL };

typedef struct {
  const CanopyRankedDevice *ranked;
  GVariant *record;
  guint position; /* in the ranking: office, then rank */
} DeviceRow;

typedef struct {
  DeviceSort sort;
  gboolean descending;
} SortOrder;

static const char *
record_string (GVariant *record, gsize index)
{
  const char *text;

  g_variant_get_child (record, index, "&s", &text);
  return text;
}

static gint64
record_last_seen (GVariant *record)
{
  gint64 when;

  g_variant_get_child (record, 6, "x", &when);
  return when;
}

static int
compare_key (const DeviceRow *a, const DeviceRow *b, DeviceSort sort)
{
  switch (sort)
    {
    case SORT_NAME:
      return g_utf8_collate (record_string (a->record, 0), record_string (b->record, 0));
    case SORT_OFFICE:
      return g_strcmp0 (a->ranked->history->office, b->ranked->history->office);
    case SORT_VERSION:
      return g_strcmp0 (record_string (a->record, 3), record_string (b->record, 3));
    case SORT_LAST_SEEN:
      {
        gint64 x = record_last_seen (a->record), y = record_last_seen (b->record);

        return x < y ? -1 : x > y;
      }
    case SORT_ONLINE:
      return (int) a->ranked->history->online - (int) b->ranked->history->online;
    case SORT_RANK:
    default:
      return 0;
    }
}

/* Ties keep the ranking's order (office, then rank), so pages are stable. */
static gint
compare_rows (gconstpointer pa, gconstpointer pb, gpointer user_data)
{
  const DeviceRow *a = pa, *b = pb;
  const SortOrder *order = user_data;
  int c = compare_key (a, b, order->sort);

  if (c == 0)
    c = a->position < b->position ? -1 : a->position > b->position;
  return order->descending ? -c : c;
}

static gboolean
read_sort (SoupServerMessage *msg, const char *text, SortOrder *order)
{
  g_autofree char *joined = NULL;
  g_autofree char *message = NULL;
  const char *name = text;

  order->sort = SORT_RANK;
  order->descending = FALSE;
  if (text == NULL)
    return TRUE;
  if (name[0] == '-')
    order->descending = TRUE, name++;
  for (guint i = 0; sort_names[i] != NULL; i++)
    if (g_str_equal (name, sort_names[i]))
      {
        order->sort = (DeviceSort) i;
        return TRUE;
      }
  joined = g_strjoinv (", ", (char **) sort_names);
  message = g_strdup_printf (_("Devices cannot be sorted by \"%s\"; sort by one of %s, "
                               "with a leading \"-\" for the reverse order"), text, joined);
  canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-value", message);
  return FALSE;
}

static gboolean
contains_folded (const char *text, const char *needle)
{
  g_autofree char *folded = g_utf8_casefold (text, -1);

  return strstr (folded, needle) != NULL;
}

/* Whether @search (case-folded) is in the device's ID, name, office,
 * version or one of its addresses. */
static gboolean
matches_search (const DeviceRow *row, const char *search)
{
  g_autoptr (GVariant) addresses = g_variant_get_child_value (row->record, 2);
  GVariantIter iter;
  const char *address;
  guint8 prefix;

  if (contains_folded (row->ranked->history->device_id, search)
      || contains_folded (record_string (row->record, 0), search)
      || contains_folded (row->ranked->history->office, search)
      || contains_folded (record_string (row->record, 3), search))
    return TRUE;
  g_variant_iter_init (&iter, addresses);
  while (g_variant_iter_next (&iter, "(&sy)", &address, &prefix))
    if (strstr (address, search) != NULL)
      return TRUE;
  return FALSE;
}

typedef struct {
  const char *office;
  const char *group;
  char *search; /* case-folded; NULL: none */
} DeviceFilter;

/* The ranked devices @filter keeps, in ranking order. */
static GArray *
filter_devices (GArray *ranked, GHashTable *devices, const DeviceFilter *filter)
{
  GArray *rows = g_array_new (FALSE, FALSE, sizeof (DeviceRow));

  for (guint i = 0; i < ranked->len; i++)
    {
      DeviceRow row = { &g_array_index (ranked, CanopyRankedDevice, i), NULL, i };

      row.record = g_hash_table_lookup (devices, row.ranked->history->device_id);
      if ((filter->office != NULL && g_strcmp0 (filter->office, row.ranked->history->office) != 0)
          || (filter->group != NULL && !in_group (row.record, filter->group))
          || (filter->search != NULL && !matches_search (&row, filter->search)))
        continue;
      g_array_append_val (rows, row);
    }
  return rows;
}

static void
add_page_members (JsonBuilder *b, guint total, guint offset, guint limit)
{
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, total);
  json_builder_set_member_name (b, "offset");
  json_builder_add_int_value (b, offset);
  json_builder_set_member_name (b, "limit");
  json_builder_add_int_value (b, limit);
}

void
canopy_console_get_devices (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "office", "group", "search", "sort", "offset",
                                         "limit", NULL };
  g_autoptr (GHashTable) query = canopy_console_read_query (msg, allowed);
  GHashTable *devices = canopy_store_get_devices (console->context.store);
  g_autoptr (GHashTable) online = NULL;
  g_autoptr (GPtrArray) histories = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) ranked = NULL;
  g_autoptr (GArray) rows = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  DeviceFilter filter = { NULL, NULL, NULL };
  SortOrder order;
  guint offset = 0, limit = G_MAXUINT;
  GHashTableIter iter;
  gpointer key, value;

  if (query == NULL
      || !canopy_console_read_page (msg, query, CANOPY_CONSOLE_PAGE_MAX, &offset, &limit)
      || !read_sort (msg, g_hash_table_lookup (query, "sort"), &order))
    return;
  filter.office = g_hash_table_lookup (query, "office");
  filter.group = g_hash_table_lookup (query, "group");
  if (g_hash_table_lookup (query, "search") != NULL)
    filter.search = g_utf8_casefold (g_hash_table_lookup (query, "search"), -1);
  online = online_devices (console);
  g_hash_table_iter_init (&iter, devices);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_ptr_array_add (histories, history_of (key, value, online));
  /* Ranked over every device: a filter must not change who leads. */
  ranked = canopy_ranking_rank (histories, g_get_real_time ());
  rows = filter_devices (ranked, devices, &filter);
  g_free (filter.search);
  g_array_sort_with_data (rows, compare_rows, &order);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint i = offset; i < rows->len && i - offset < limit; i++)
    {
      const DeviceRow *row = &g_array_index (rows, DeviceRow, i);

      add_device (b, console, row->ranked, row->record,
                  canopy_ranking_pick_lead (ranked, row->ranked->history->office, NULL)
                      == row->ranked);
    }
  json_builder_end_array (b);
  add_page_members (b, rows->len, offset, limit == G_MAXUINT ? rows->len : limit);
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
  g_autoptr (GHashTable) query = canopy_console_read_query (msg, allowed);
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
