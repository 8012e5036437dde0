/* Network topology: the office tree, its address ranges, and the CSV
 * spreadsheet admins upload and download. Validation reports every problem
 * with its line and column, and a topology with problems is never used. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-topology"

#include "lib/topology.h"
#include "lib/csv.h"
#include "lib/i18n.h"

#include <gio/gio.h>
#include <string.h>
#include <stdio.h>

G_DEFINE_QUARK (canopy-topology-error-quark, canopy_topology_error)

/* The spreadsheet's columns, in the order export writes them. */
enum { COL_OFFICE, COL_PARENT, COL_TYPE, COL_SUBNETS, COL_WAN_RATE, COL_METERED, COL_AUTOMATIC,
       COL_TIME_ZONE, COL_WAN_SCHEDULE, COL_TRANSFER_CLASS, N_COLUMNS };
static const char *const column_names[N_COLUMNS] = {
  "office", "parent", "type", "subnets", "wan_rate", "metered", "automatic", "time_zone",
  "wan_schedule", "transfer_class",
};

typedef struct {
  CanopyAddressRange range;
  const CanopyOffice *office;
} IndexEntry;

struct _CanopyTopology {
  GPtrArray *offices;    /* CanopyOffice, parents before children */
  GHashTable *by_name;   /* name → CanopyOffice */
  GArray *index;         /* IndexEntry sorted by family, first; NULL = stale */
};

const char *
canopy_office_type_to_string (CanopyOfficeType type)
{
  switch (type)
    {
    case CANOPY_OFFICE_WIFI:
      return "WiFi";
    case CANOPY_OFFICE_VPN:
      return "VPN";
    case CANOPY_OFFICE_DEFAULT:
    default:
      return "Default";
    }
}

/* Addresses. */

static gsize
family_length (GSocketFamily family)
{
  return family == G_SOCKET_FAMILY_IPV4 ? 4 : 16;
}

static int
compare_bytes (GSocketFamily family, const guint8 *a, const guint8 *b)
{
  return memcmp (a, b, family_length (family));
}

static gboolean
parse_address (const char *text, GSocketFamily *family, guint8 *bytes)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (text);

  if (address == NULL)
    return FALSE;
  *family = g_inet_address_get_family (address);
  memcpy (bytes, g_inet_address_to_bytes (address), family_length (*family));
  return TRUE;
}

static void
set_address_error (GError **error, const char *text, const char *why)
{
  g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_ADDRESS,
               _("\"%s\" is not a subnet or address range: %s"), text, why);
}

static gboolean
apply_prefix (CanopyAddressRange *range, guint prefix, gboolean strict, const char *text,
              GError **error)
{
  gsize bits = family_length (range->family) * 8;

  if (prefix > bits)
    {
      set_address_error (error, text, _("the prefix length is larger than the address"));
      return FALSE;
    }
  for (gsize bit = prefix; bit < bits; bit++)
    {
      guint8 mask = (guint8) (0x80 >> (bit % 8));
      if (strict && (range->first[bit / 8] & mask) != 0)
        {
          set_address_error (error, text, _("bits after the prefix length are set; write the "
                                            "subnet's first address"));
          return FALSE;
        }
      range->first[bit / 8] &= (guint8) ~mask;
      range->last[bit / 8] |= mask;
    }
  range->prefix = (guint8) prefix;
  return TRUE;
}

gboolean
canopy_address_range_parse (const char *text, CanopyAddressRange *range, GError **error)
{
  g_autofree char *copy = g_strstrip (g_strdup (text));
  char *slash = strchr (copy, '/');
  char *dash = strchr (copy, '-');
  GSocketFamily last_family;

  memset (range, 0, sizeof *range);
  if (slash != NULL)
    *slash = '\0';
  if (dash != NULL)
    *dash = '\0';
  if (!parse_address (g_strstrip (copy), &range->family, range->first))
    {
      set_address_error (error, text, _("the address is not IPv4 or IPv6"));
      return FALSE;
    }
  memcpy (range->last, range->first, sizeof range->first);

  if (slash != NULL)
    {
      guint64 prefix;
      if (!g_ascii_string_to_unsigned (slash + 1, 10, 0, 128, &prefix, NULL))
        {
          set_address_error (error, text, _("the prefix length is not a number"));
          return FALSE;
        }
      return apply_prefix (range, (guint) prefix, TRUE, text, error);
    }
  if (dash != NULL)
    {
      if (!parse_address (g_strstrip (dash + 1), &last_family, range->last)
          || last_family != range->family)
        {
          set_address_error (error, text, _("the range's end is not an address of the same "
                                            "family as its start"));
          return FALSE;
        }
      if (compare_bytes (range->family, range->first, range->last) > 0)
        {
          set_address_error (error, text, _("the range ends before it starts"));
          return FALSE;
        }
      return TRUE;
    }
  range->prefix = (guint8) (family_length (range->family) * 8);
  return TRUE;
}

gboolean
canopy_address_range_from_address (const char *address, guint prefix, CanopyAddressRange *range,
                                   GError **error)
{
  memset (range, 0, sizeof *range);
  if (!parse_address (address, &range->family, range->first))
    {
      set_address_error (error, address, _("the address is not IPv4 or IPv6"));
      return FALSE;
    }
  memcpy (range->last, range->first, sizeof range->first);
  return apply_prefix (range, prefix, FALSE, address, error);
}

static char *
address_to_string (GSocketFamily family, const guint8 *bytes)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_bytes (bytes, family);

  return g_inet_address_to_string (address);
}

char *
canopy_address_range_to_string (const CanopyAddressRange *range)
{
  g_autofree char *first = address_to_string (range->family, range->first);
  g_autofree char *last = NULL;

  if (range->prefix != 0)
    return g_strdup_printf ("%s/%u", first, range->prefix);
  last = address_to_string (range->family, range->last);
  return g_strdup_printf ("%s-%s", first, last);
}

static gboolean
range_contains (const CanopyAddressRange *range, GSocketFamily family, const guint8 *bytes)
{
  return range->family == family && compare_bytes (family, range->first, bytes) <= 0
         && compare_bytes (family, bytes, range->last) <= 0;
}

static gboolean
ranges_overlap (const CanopyAddressRange *a, const CanopyAddressRange *b)
{
  return a->family == b->family && compare_bytes (a->family, a->first, b->last) <= 0
         && compare_bytes (a->family, b->first, a->last) <= 0;
}

/* Offices and the tree. */

static void
office_free (CanopyOffice *office)
{
  g_free (office->name);
  g_free (office->parent);
  g_array_unref (office->ranges);
  g_free (office->time_zone);
  g_time_zone_unref (office->tz);
  g_array_unref (office->schedule);
  g_free (office);
}

static CanopyOffice *
office_new (const char *name, const char *parent)
{
  CanopyOffice *office = g_new0 (CanopyOffice, 1);

  office->name = g_strdup (name);
  office->parent = g_strdup (parent);
  office->ranges = g_array_new (FALSE, FALSE, sizeof (CanopyAddressRange));
  office->tz = g_time_zone_new_utc ();
  office->schedule = g_array_new (FALSE, FALSE, sizeof (CanopyRatePeriod));
  return office;
}

static void
topology_add (CanopyTopology *topology, CanopyOffice *office)
{
  g_ptr_array_add (topology->offices, office);
  g_hash_table_insert (topology->by_name, office->name, office);
  g_clear_pointer (&topology->index, g_array_unref);
}

static CanopyTopology *
topology_new_empty (void)
{
  CanopyTopology *topology = g_new0 (CanopyTopology, 1);

  topology->offices = g_ptr_array_new_with_free_func ((GDestroyNotify) office_free);
  topology->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return topology;
}

CanopyTopology *
canopy_topology_new (GArray *central_ranges)
{
  CanopyTopology *topology = topology_new_empty ();
  CanopyOffice *central = office_new (CANOPY_TOPOLOGY_CENTRAL_OFFICE, NULL);

  if (central_ranges != NULL)
    g_array_append_vals (central->ranges, central_ranges->data, central_ranges->len);
  topology_add (topology, central);
  return topology;
}

void
canopy_topology_free (CanopyTopology *topology)
{
  if (topology == NULL)
    return;
  g_clear_pointer (&topology->index, g_array_unref);
  g_hash_table_unref (topology->by_name);
  g_ptr_array_unref (topology->offices);
  g_free (topology);
}

const CanopyOffice *
canopy_topology_lookup (const CanopyTopology *topology, const char *name)
{
  return g_hash_table_lookup (topology->by_name, name);
}

GPtrArray *
canopy_topology_get_offices (const CanopyTopology *topology)
{
  return topology->offices;
}

/* Orders IndexEntry and RangeRef alike: both start with their range. */
static int
compare_range_starts (gconstpointer a, gconstpointer b)
{
  const CanopyAddressRange *ra = a;
  const CanopyAddressRange *rb = b;

  if (ra->family != rb->family)
    return ra->family < rb->family ? -1 : 1;
  return compare_bytes (ra->family, ra->first, rb->first);
}

static GArray *
build_index (const CanopyTopology *topology)
{
  GArray *index = g_array_new (FALSE, FALSE, sizeof (IndexEntry));

  for (guint i = 0; i < topology->offices->len; i++)
    {
      const CanopyOffice *office = g_ptr_array_index (topology->offices, i);
      for (guint r = 0; r < office->ranges->len; r++)
        {
          IndexEntry entry = { g_array_index (office->ranges, CanopyAddressRange, r), office };
          g_array_append_val (index, entry);
        }
    }
  g_array_sort (index, compare_range_starts);
  return index;
}

const CanopyOffice *
canopy_topology_find_office (const CanopyTopology *topology, const char *address)
{
  CanopyTopology *mutable = (CanopyTopology *) topology;
  GSocketFamily family;
  guint8 bytes[16] = { 0 };
  guint low = 0, high;

  if (!parse_address (address, &family, bytes))
    return NULL;
  /* The index is a cache of the ranges, rebuilt after a change. */
  if (mutable->index == NULL)
    mutable->index = build_index (topology);

  /* Ranges never overlap: the last one starting at or before the address
   * is the only one that can hold it. */
  high = topology->index->len;
  while (low < high)
    {
      guint mid = (low + high) / 2;
      const IndexEntry *entry = &g_array_index (topology->index, IndexEntry, mid);
      int cmp = entry->range.family != family ? (entry->range.family < family ? -1 : 1)
                                              : compare_bytes (family, entry->range.first, bytes);
      if (cmp <= 0)
        low = mid + 1;
      else
        high = mid;
    }
  if (low == 0)
    return NULL;
  {
    const IndexEntry *entry = &g_array_index (topology->index, IndexEntry, low - 1);
    return range_contains (&entry->range, family, bytes) ? entry->office : NULL;
  }
}

const CanopyOffice *
canopy_topology_add_auto_office (CanopyTopology *topology, const CanopyAddressRange *subnet)
{
  g_autofree char *text = canopy_address_range_to_string (subnet);
  g_autofree char *first = address_to_string (subnet->family, subnet->first);
  const CanopyOffice *holder = canopy_topology_find_office (topology, first);
  CanopyOffice *office;

  if (holder != NULL)
    return holder;
  office = office_new (text, CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  office->automatic = TRUE;
  g_array_append_val (office->ranges, *subnet);
  topology_add (topology, office);
  return office;
}

GPtrArray *
canopy_topology_check_split_subnets (const CanopyTopology *topology, GArray *subnets)
{
  GPtrArray *warnings = g_ptr_array_new_with_free_func (g_free);

  for (guint s = 0; s < subnets->len; s++)
    {
      const CanopyAddressRange *subnet = &g_array_index (subnets, CanopyAddressRange, s);
      gboolean touched = FALSE, whole = FALSE;

      for (guint i = 0; i < topology->offices->len && !whole; i++)
        {
          const CanopyOffice *office = g_ptr_array_index (topology->offices, i);
          for (guint r = 0; r < office->ranges->len; r++)
            {
              const CanopyAddressRange *range = &g_array_index (office->ranges,
                                                                CanopyAddressRange, r);
              if (!ranges_overlap (range, subnet))
                continue;
              touched = TRUE;
              whole = whole || (range_contains (range, subnet->family, subnet->first)
                                && range_contains (range, subnet->family, subnet->last));
            }
        }
      if (touched && !whole)
        {
          g_autofree char *text = canopy_address_range_to_string (subnet);
          g_ptr_array_add (warnings,
                           g_strdup_printf (_("Subnet %s, where agents are registered, is split "
                                              "between ranges or only partly covered: its "
                                              "devices outside the ranges become no-office "
                                              "clients and get no peer-to-peer download. "
                                              "Cover the whole subnet in one office"), text));
        }
    }
  return warnings;
}

/* CSV. */

/* Strips every field of @fields; returns whether all are empty. */
static gboolean
strip_record (GPtrArray *fields)
{
  gboolean blank = TRUE;

  for (guint i = 0; i < fields->len; i++)
    blank = *g_strstrip ((char *) g_ptr_array_index (fields, i)) == '\0' && blank;
  return blank;
}

typedef struct {
  CanopyOffice *office;
  guint line;
} OfficeRow;

typedef struct {
  GPtrArray *errors;
  int columns[N_COLUMNS]; /* position of each column in the file, or -1 */
  GArray *rows;           /* OfficeRow */
  GHashTable *first_row;  /* office name → index + 1 of its first row */
  GArray *locations;      /* CanopyTopologyLocation of each error */
} Import;

static void
locate (Import *import, guint line, guint column)
{
  CanopyTopologyLocation where = { line, column };

  g_array_append_val (import->locations, where);
}

static void G_GNUC_PRINTF (4, 5)
report (Import *import, guint line, int column, const char *format, ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  locate (import, line, column >= 0 ? (guint) import->columns[column] + 1 : 0);
  if (column >= 0)
    g_ptr_array_add (import->errors, g_strdup_printf (_("line %u, column %d (%s): %s"), line,
                                                      import->columns[column] + 1,
                                                      column_names[column], what));
  else
    g_ptr_array_add (import->errors, g_strdup_printf (_("line %u: %s"), line, what));
}

static gboolean
read_header (Import *import, GPtrArray *fields, guint line)
{
  for (int c = 0; c < N_COLUMNS; c++)
    import->columns[c] = -1;
  for (guint i = 0; i < fields->len; i++)
    {
      g_autofree char *name = g_ascii_strdown (g_ptr_array_index (fields, i), -1);
      int c;

      for (c = 0; c < N_COLUMNS && !g_str_equal (name, column_names[c]); c++)
        ;
      if (c == N_COLUMNS)
        {
          report (import, line, -1, _("column %u is called \"%s\", which is not a topology "
                                      "column (office, parent, type, subnets, wan_rate, "
                                      "metered, automatic, time_zone, wan_schedule, "
                                      "transfer_class)"),
                  i + 1, name);
          return FALSE;
        }
      import->columns[c] = (int) i;
    }
  if (import->columns[COL_OFFICE] < 0 || import->columns[COL_SUBNETS] < 0)
    {
      report (import, line, -1, _("the first line must name the columns, with at least "
                                  "\"office\" and \"subnets\""));
      return FALSE;
    }
  return TRUE;
}

static const char *
field (Import *import, GPtrArray *fields, int column)
{
  int at = import->columns[column];

  return at >= 0 && (guint) at < fields->len ? g_ptr_array_index (fields, at) : "";
}

static gboolean
parse_rate (const char *text, guint64 *rate)
{
  g_autofree char *copy = g_ascii_strdown (text, -1);
  char *end = NULL;
  double value;
  double scale = 1;

  g_strstrip (copy);
  if (*copy == '\0')
    {
      *rate = 0;
      return TRUE;
    }
  value = g_ascii_strtod (copy, &end);
  if (end == copy || value < 0)
    return FALSE;
  while (*end == ' ')
    end++;
  switch (*end)
    {
    case 'k':
      scale = 1e3, end++;
      break;
    case 'm':
      scale = 1e6, end++;
      break;
    case 'g':
      scale = 1e9, end++;
      break;
    default:
      break;
    }
  if (*end != '\0' && !g_str_equal (end, "bit/s") && !g_str_equal (end, "bps")
      && !g_str_equal (end, "bit"))
    return FALSE;
  value *= scale;
  /* Also refuses the NaN and infinity strtod reads, and rates no guint64
   * holds, whose conversion is undefined. */
  if (!(value >= 0 && value < (double) G_MAXUINT64))
    return FALSE;
  *rate = (guint64) (value + 0.5);
  return TRUE;
}

static char *
format_rate (guint64 rate)
{
  if (rate == 0)
    return g_strdup ("");
  if (rate % 1000000000 == 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "G", rate / 1000000000);
  if (rate % 1000000 == 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "M", rate / 1000000);
  if (rate % 1000 == 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "k", rate / 1000);
  return g_strdup_printf ("%" G_GUINT64_FORMAT, rate);
}

/* "normal" (or empty) or "background". */
static gboolean
parse_transfer_class (const char *text, gboolean *background)
{
  g_autofree char *copy = g_ascii_strdown (text, -1);

  g_strstrip (copy);
  if (*copy == '\0' || g_str_equal (copy, "normal"))
    *background = FALSE;
  else if (g_str_equal (copy, "background"))
    *background = TRUE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_flag (const char *text, gboolean *value)
{
  g_autofree char *copy = g_ascii_strdown (text, -1);

  g_strstrip (copy);
  if (*copy == '\0' || g_str_equal (copy, "no") || g_str_equal (copy, "false")
      || g_str_equal (copy, "0"))
    *value = FALSE;
  else if (g_str_equal (copy, "yes") || g_str_equal (copy, "true") || g_str_equal (copy, "1"))
    *value = TRUE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_type (const char *text, CanopyOfficeType *type)
{
  g_autofree char *copy = g_ascii_strdown (text, -1);

  g_strstrip (copy);
  if (*copy == '\0' || g_str_equal (copy, "default"))
    *type = CANOPY_OFFICE_DEFAULT;
  else if (g_str_equal (copy, "wifi") || g_str_equal (copy, "wi-fi"))
    *type = CANOPY_OFFICE_WIFI;
  else if (g_str_equal (copy, "vpn"))
    *type = CANOPY_OFFICE_VPN;
  else
    return FALSE;
  return TRUE;
}

static void
read_ranges (Import *import, CanopyOffice *office, const char *text, guint line)
{
  g_auto (GStrv) parts = g_strsplit_set (text, ";\n ", -1);

  for (char **p = parts; *p != NULL; p++)
    {
      CanopyAddressRange range;
      g_autoptr (GError) error = NULL;

      if (**p == '\0')
        continue;
      if (canopy_address_range_parse (*p, &range, &error))
        g_array_append_val (office->ranges, range);
      else
        report (import, line, COL_SUBNETS, "%s", error->message);
    }
}

static void
read_time_zone (Import *import, CanopyOffice *office, const char *text, guint line)
{
  GTimeZone *tz;

  if (text[0] == '\0')
    return;
  tz = g_time_zone_new_identifier (text);
  if (tz == NULL)
    {
      report (import, line, COL_TIME_ZONE,
              _("\"%s\" is not a time zone this system knows; write an IANA name such as "
                "Europe/Paris or America/New_York, or UTC (also when left empty)"), text);
      return;
    }
  g_time_zone_unref (office->tz);
  office->tz = tz;
  office->time_zone = g_strdup (text);
}

static void
read_schedule (Import *import, CanopyOffice *office, const char *text, guint line)
{
  g_autoptr (GError) error = NULL;
  GArray *schedule = NULL;

  if (!canopy_rate_schedule_parse (text, &schedule, &error))
    {
      report (import, line, COL_WAN_SCHEDULE, "%s", error->message);
      return;
    }
  g_array_unref (office->schedule);
  office->schedule = schedule;
}

static void
read_office (Import *import, GPtrArray *fields, guint line)
{
  const char *name = field (import, fields, COL_OFFICE);
  const char *parent = field (import, fields, COL_PARENT);
  CanopyOffice *office;
  OfficeRow row;

  if (*name == '\0')
    {
      report (import, line, COL_OFFICE, _("the office has no name"));
      return;
    }
  office = office_new (name, *parent != '\0' ? parent : NULL);
  if (!parse_type (field (import, fields, COL_TYPE), &office->type))
    report (import, line, COL_TYPE, _("\"%s\" is not an office type; write Default, WiFi or VPN"),
            field (import, fields, COL_TYPE));
  read_ranges (import, office, field (import, fields, COL_SUBNETS), line);
  if (!parse_rate (field (import, fields, COL_WAN_RATE), &office->wan_rate))
    report (import, line, COL_WAN_RATE, _("\"%s\" is not a link rate; write bits per second "
                                          "such as 100M, 1G or 512k, or leave it empty"),
            field (import, fields, COL_WAN_RATE));
  if (!parse_flag (field (import, fields, COL_METERED), &office->metered))
    report (import, line, COL_METERED, _("\"%s\" is not yes or no"),
            field (import, fields, COL_METERED));
  if (!parse_flag (field (import, fields, COL_AUTOMATIC), &office->automatic))
    report (import, line, COL_AUTOMATIC, _("\"%s\" is not yes or no"),
            field (import, fields, COL_AUTOMATIC));
  read_time_zone (import, office, field (import, fields, COL_TIME_ZONE), line);
  read_schedule (import, office, field (import, fields, COL_WAN_SCHEDULE), line);
  if (!parse_transfer_class (field (import, fields, COL_TRANSFER_CLASS), &office->background))
    report (import, line, COL_TRANSFER_CLASS,
            _("\"%s\" is not a transfer class; write normal, background (the office's lead "
              "yields to other traffic on its WAN link) or leave it empty"),
            field (import, fields, COL_TRANSFER_CLASS));
  row.office = office;
  row.line = line;
  g_array_append_val (import->rows, row);
  if (!g_hash_table_contains (import->first_row, office->name))
    g_hash_table_insert (import->first_row, office->name, GUINT_TO_POINTER (import->rows->len));
}

static const OfficeRow *
find_row (Import *import, const char *name)
{
  guint at = GPOINTER_TO_UINT (g_hash_table_lookup (import->first_row, name));

  return at > 0 ? &g_array_index (import->rows, OfficeRow, at - 1) : NULL;
}

static void
check_names_and_parents (Import *import)
{
  for (guint i = 0; i < import->rows->len; i++)
    {
      OfficeRow *row = &g_array_index (import->rows, OfficeRow, i);
      const OfficeRow *first = find_row (import, row->office->name);
      gboolean central = g_str_equal (row->office->name, CANOPY_TOPOLOGY_CENTRAL_OFFICE);

      if (first != NULL && first != row)
        report (import, row->line, COL_OFFICE, _("office \"%s\" is already defined on line %u; "
                                                 "give each office one row"),
                row->office->name, first->line);
      if (central && row->office->parent != NULL)
        report (import, row->line, COL_PARENT, _("the central office is the root and has no "
                                                 "parent; leave this field empty"));
      else if (!central && row->office->parent == NULL)
        row->office->parent = g_strdup (CANOPY_TOPOLOGY_CENTRAL_OFFICE);
      else if (!central && find_row (import, row->office->parent) == NULL
               && !g_str_equal (row->office->parent, CANOPY_TOPOLOGY_CENTRAL_OFFICE))
        report (import, row->line, COL_PARENT, _("parent office \"%s\" is not defined; add a "
                                                 "row for it or correct the name"),
                row->office->parent);
    }
}

static void
check_tree (Import *import)
{
  for (guint i = 0; i < import->rows->len; i++)
    {
      const OfficeRow *row = &g_array_index (import->rows, OfficeRow, i);
      const OfficeRow *parent = row->office->parent != NULL
                                  ? find_row (import, row->office->parent) : NULL;
      const OfficeRow *walk = row;

      /* Follow parents: reaching this row again is a cycle. */
      for (guint steps = 0; walk != NULL && walk->office->parent != NULL; steps++)
        {
          walk = find_row (import, walk->office->parent);
          if (walk == row || steps > import->rows->len)
            {
              report (import, row->line, COL_PARENT, _("office \"%s\" is its own ancestor "
                                                       "through its parent \"%s\"; break the "
                                                       "cycle"),
                      row->office->name, row->office->parent);
              break;
            }
        }
      if (row->office->type == CANOPY_OFFICE_WIFI
          && (parent == NULL ? FALSE : parent->office->type != CANOPY_OFFICE_DEFAULT))
        report (import, row->line, COL_PARENT, _("WiFi office \"%s\" must sit beneath the "
                                                 "wired (Default) office of its site, but its "
                                                 "parent \"%s\" is a %s office"),
                row->office->name, row->office->parent,
                canopy_office_type_to_string (parent->office->type));
    }
}

typedef struct {
  CanopyAddressRange range;
  const char *name;
  guint row_line;
} RangeRef;

static void
check_overlaps (Import *import)
{
  g_autoptr (GArray) refs = g_array_new (FALSE, FALSE, sizeof (RangeRef));
  const RangeRef *furthest = NULL;

  for (guint i = 0; i < import->rows->len; i++)
    {
      const OfficeRow *row = &g_array_index (import->rows, OfficeRow, i);
      for (guint r = 0; r < row->office->ranges->len; r++)
        {
          RangeRef ref = { g_array_index (row->office->ranges, CanopyAddressRange, r),
                           row->office->name, row->line };
          g_array_append_val (refs, ref);
        }
    }
  g_array_sort (refs, compare_range_starts);
  /* Sorted by start, a range overlaps an earlier one exactly when it starts
   * before the furthest end reached so far in its family. */
  for (guint i = 0; i < refs->len; i++)
    {
      const RangeRef *cur = &g_array_index (refs, RangeRef, i);

      if (furthest != NULL && ranges_overlap (&furthest->range, &cur->range))
        {
          g_autofree char *a = canopy_address_range_to_string (&cur->range);
          g_autofree char *b = canopy_address_range_to_string (&furthest->range);
          report (import, cur->row_line, COL_SUBNETS,
                  _("%s overlaps %s of office \"%s\" (line %u); an address must belong to "
                    "one office only"),
                  a, b, furthest->name, furthest->row_line);
        }
      if (furthest == NULL || furthest->range.family != cur->range.family
          || compare_bytes (cur->range.family, cur->range.last, furthest->range.last) > 0)
        furthest = cur;
    }
}

typedef struct {
  CanopyTopologyLocation where;
  guint index;
} Located;

static gint
compare_located (gconstpointer a, gconstpointer b)
{
  const Located *x = a, *y = b;

  if (x->where.line != y->where.line)
    return x->where.line < y->where.line ? -1 : 1;
  if (x->where.column != y->where.column)
    return x->where.column < y->where.column ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* The problems in file order, line by line, as an admin corrects them. */
static void
sort_by_location (Import *import)
{
  g_autoptr (GArray) order = g_array_sized_new (FALSE, FALSE, sizeof (Located),
                                                import->errors->len);
  GPtrArray *errors = g_ptr_array_new_with_free_func (g_free);
  GArray *locations = g_array_new (FALSE, FALSE, sizeof (CanopyTopologyLocation));

  for (guint i = 0; i < import->errors->len; i++)
    {
      Located item = { g_array_index (import->locations, CanopyTopologyLocation, i), i };
      g_array_append_val (order, item);
    }
  g_array_sort (order, compare_located);
  for (guint i = 0; i < order->len; i++)
    {
      const Located *item = &g_array_index (order, Located, i);
      g_ptr_array_add (errors, g_steal_pointer (&g_ptr_array_index (import->errors, item->index)));
      g_array_append_val (locations, item->where);
    }
  g_ptr_array_unref (import->errors);
  g_array_unref (import->locations);
  import->errors = errors;
  import->locations = locations;
}

/* Parents before children, each level in file order. */
static CanopyTopology *
build_topology (Import *import, GArray *central_ranges)
{
  CanopyTopology *topology = topology_new_empty ();
  const OfficeRow *central_row = find_row (import, CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  CanopyOffice *central = office_new (CANOPY_TOPOLOGY_CENTRAL_OFFICE, NULL);
  g_autoptr (GHashTable) placed = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean progress = TRUE;

  if (central_row != NULL)
    {
      g_array_append_vals (central->ranges, central_row->office->ranges->data,
                           central_row->office->ranges->len);
      /* Deployments' windows apply in its time zone too. */
      central->time_zone = g_strdup (central_row->office->time_zone);
      g_time_zone_unref (central->tz);
      central->tz = g_time_zone_ref (central_row->office->tz);
    }
  else if (central_ranges != NULL)
    g_array_append_vals (central->ranges, central_ranges->data, central_ranges->len);
  topology_add (topology, central);
  g_hash_table_add (placed, central->name);

  while (progress)
    {
      progress = FALSE;
      for (guint i = 0; i < import->rows->len; i++)
        {
          OfficeRow *row = &g_array_index (import->rows, OfficeRow, i);
          if (row->office == NULL || row->office->parent == NULL
              || g_hash_table_contains (placed, row->office->name)
              || !g_hash_table_contains (placed, row->office->parent))
            continue;
          topology_add (topology, row->office);
          g_hash_table_add (placed, row->office->name);
          row->office = NULL;
          progress = TRUE;
        }
    }
  return topology;
}

CanopyTopology *
canopy_topology_import_csv (const char *csv, GArray *central_ranges, GPtrArray **errors)
{
  return canopy_topology_import_csv_located (csv, central_ranges, errors, NULL);
}

CanopyTopology *
canopy_topology_import_csv_located (const char *csv, GArray *central_ranges, GPtrArray **errors,
                                    GArray **locations)
{
  g_autoptr (GPtrArray) fields = g_ptr_array_new_with_free_func (g_free);
  CanopyCsvReader reader;
  Import import = { g_ptr_array_new_with_free_func (g_free), { 0 },
                    g_array_new (FALSE, FALSE, sizeof (OfficeRow)),
                    g_hash_table_new (g_str_hash, g_str_equal),
                    g_array_new (FALSE, FALSE, sizeof (CanopyTopologyLocation)) };
  gboolean have_header = FALSE;
  CanopyTopology *topology = NULL;
  g_autoptr (GError) error = NULL;
  guint line = 0;

  canopy_csv_reader_init (&reader, csv);
  while (canopy_csv_read_record (&reader, fields, &line, &error))
    {
      const char *first = fields->len > 0 ? g_ptr_array_index (fields, 0) : "";

      if (strip_record (fields) || first[0] == '#')
        continue;
      if (!have_header)
        {
          if (!read_header (&import, fields, line))
            break;
          have_header = TRUE;
        }
      else
        read_office (&import, fields, line);
    }
  if (error != NULL)
    {
      locate (&import, reader.line, 0);
      g_ptr_array_add (import.errors, g_strdup (error->message));
    }
  else if (!have_header && import.errors->len == 0)
    {
      locate (&import, 1, 0);
      g_ptr_array_add (import.errors, g_strdup (_("line 1: the file is empty; the first line "
                                                  "must name the columns")));
    }

  /* Every problem at once: an admin who fixes what was shown must not
   * meet the next stage's problems on the next upload. */
  check_names_and_parents (&import);
  check_tree (&import);
  check_overlaps (&import);
  if (import.errors->len == 0)
    topology = build_topology (&import, central_ranges);
  else
    sort_by_location (&import);

  g_hash_table_unref (import.first_row);
  for (guint i = 0; i < import.rows->len; i++)
    {
      OfficeRow *row = &g_array_index (import.rows, OfficeRow, i);
      if (row->office != NULL)
        office_free (row->office);
    }
  g_array_unref (import.rows);
  *errors = import.errors;
  if (locations != NULL)
    *locations = import.locations;
  else
    g_array_unref (import.locations);
  return topology;
}

char *
canopy_topology_export_csv (const CanopyTopology *topology)
{
  GString *out = g_string_new (NULL);

  canopy_csv_append_row (out, column_names, N_COLUMNS);
  for (guint i = 0; i < topology->offices->len; i++)
    {
      const CanopyOffice *office = g_ptr_array_index (topology->offices, i);
      g_autoptr (GPtrArray) ranges = g_ptr_array_new_with_free_func (g_free);
      g_autofree char *subnets = NULL;
      g_autofree char *rate = format_rate (office->wan_rate);
      g_autofree char *schedule = canopy_rate_schedule_to_string (office->schedule);

      for (guint r = 0; r < office->ranges->len; r++)
        g_ptr_array_add (ranges, canopy_address_range_to_string (
                                   &g_array_index (office->ranges, CanopyAddressRange, r)));
      g_ptr_array_add (ranges, NULL);
      subnets = g_strjoinv ("; ", (char **) ranges->pdata);

      {
        const char *row[N_COLUMNS] = {
          [COL_OFFICE] = office->name,
          [COL_PARENT] = office->parent,
          [COL_TYPE] = canopy_office_type_to_string (office->type),
          [COL_SUBNETS] = subnets,
          [COL_WAN_RATE] = rate,
          [COL_METERED] = office->metered ? "yes" : "no",
          [COL_AUTOMATIC] = office->automatic ? "yes" : "no",
          [COL_TIME_ZONE] = office->time_zone != NULL ? office->time_zone : "",
          [COL_WAN_SCHEDULE] = schedule,
          [COL_TRANSFER_CLASS] = office->background ? "background" : "normal",
        };
        canopy_csv_append_row (out, row, N_COLUMNS);
      }
    }
  return g_string_free (out, FALSE);
}

/* Time of day. */

gboolean
canopy_parse_clock (const char *text, gboolean allow_24, guint *minutes)
{
  guint h, m;
  char end;

  if (strlen (text) != 5 || text[2] != ':' || !g_ascii_isdigit (text[0])
      || !g_ascii_isdigit (text[1]) || !g_ascii_isdigit (text[3]) || !g_ascii_isdigit (text[4])
      || sscanf (text, "%2u:%2u%c", &h, &m, &end) != 2)
    return FALSE;
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
    return FALSE;
  *minutes = h * 60 + m;
  return TRUE;
}

guint
canopy_office_local_minute (const CanopyOffice *office, gint64 real_us)
{
  g_autoptr (GDateTime) utc = g_date_time_new_from_unix_utc (real_us / G_USEC_PER_SEC);
  g_autoptr (GDateTime) local = utc != NULL ? g_date_time_to_timezone (utc, office->tz) : NULL;

  return local != NULL ? (guint) (g_date_time_get_hour (local) * 60
                                  + g_date_time_get_minute (local))
                       : 0;
}

gboolean
canopy_minute_in_period (guint minute, guint start, guint end)
{
  if (start == end)
    return FALSE;
  if (start < end)
    return minute >= start && minute < end;
  return minute >= start || minute < end;
}

guint64
canopy_office_rate_at (const CanopyOffice *office, gint64 real_us)
{
  guint minute;

  if (office->schedule == NULL || office->schedule->len == 0)
    return office->wan_rate;
  minute = canopy_office_local_minute (office, real_us);
  for (guint i = 0; i < office->schedule->len; i++)
    {
      const CanopyRatePeriod *p = &g_array_index (office->schedule, CanopyRatePeriod, i);

      if (canopy_minute_in_period (minute, p->start, p->end))
        return p->rate;
    }
  return office->wan_rate;
}

static gboolean
periods_overlap (const CanopyRatePeriod *a, const CanopyRatePeriod *b)
{
  /* Two periods of whole minutes overlap when either holds the other's
   * first minute. */
  return canopy_minute_in_period (a->start, b->start, b->end)
         || canopy_minute_in_period (b->start, a->start, a->end);
}

static gboolean
parse_period (const char *text, CanopyRatePeriod *period, GError **error)
{
  g_auto (GStrv) words = g_strsplit_set (text, " \t", -1);
  g_autoptr (GPtrArray) parts = g_ptr_array_new ();
  g_auto (GStrv) clock = NULL;
  guint start, end;

  for (guint i = 0; words[i] != NULL; i++)
    if (words[i][0] != '\0')
      g_ptr_array_add (parts, words[i]);
  if (parts->len != 2 || !parse_rate (g_ptr_array_index (parts, 0), &period->rate)
      || (clock = g_strsplit (g_ptr_array_index (parts, 1), "-", -1)) == NULL
      || g_strv_length (clock) != 2 || !canopy_parse_clock (clock[0], FALSE, &start)
      || !canopy_parse_clock (clock[1], TRUE, &end))
    {
      g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_VALUE,
                   _("\"%s\" is not a rate and a daily period; write for example "
                     "\"20M 08:00-18:00\", several separated by \";\""), text);
      return FALSE;
    }
  if (start == end % 1440)
    {
      g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_VALUE,
                   _("the period of \"%s\" starts when it ends; give a period that lasts, "
                     "or leave the rate to the wan_rate column"), text);
      return FALSE;
    }
  period->start = start;
  period->end = end % 1440;
  return TRUE;
}

gboolean
canopy_rate_schedule_parse (const char *text, GArray **schedule, GError **error)
{
  g_autoptr (GArray) periods = g_array_new (FALSE, FALSE, sizeof (CanopyRatePeriod));
  g_auto (GStrv) items = g_strsplit (text, ";", -1);

  for (guint i = 0; items[i] != NULL; i++)
    {
      CanopyRatePeriod period;

      g_strstrip (items[i]);
      if (items[i][0] == '\0')
        continue;
      if (!parse_period (items[i], &period, error))
        return FALSE;
      for (guint j = 0; j < periods->len; j++)
        if (periods_overlap (&period, &g_array_index (periods, CanopyRatePeriod, j)))
          {
            g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_VALUE,
                         _("the period of \"%s\" overlaps an earlier one; each time of day "
                           "may have one rate only"), items[i]);
            return FALSE;
          }
      g_array_append_val (periods, period);
    }
  *schedule = g_steal_pointer (&periods);
  return TRUE;
}

char *
canopy_rate_schedule_to_string (const GArray *schedule)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; schedule != NULL && i < schedule->len; i++)
    {
      const CanopyRatePeriod *p = &g_array_index (schedule, CanopyRatePeriod, i);
      g_autofree char *rate = p->rate > 0 ? format_rate (p->rate) : g_strdup ("0");
      guint end = p->end == 0 ? 1440 : p->end;

      g_string_append_printf (out, "%s%s %02u:%02u-%02u:%02u", i > 0 ? "; " : "", rate,
                              p->start / 60, p->start % 60, end / 60, end % 60);
    }
  return g_string_free (out, FALSE);
}