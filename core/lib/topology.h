/* Network topology: offices in a tree under the central office, each with
 * its subnets and address ranges; CSV import and export; address lookup. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define CANOPY_TOPOLOGY_ERROR (canopy_topology_error_quark ())
GQuark canopy_topology_error_quark (void);

typedef enum {
  CANOPY_TOPOLOGY_ERROR_SYNTAX,        /* CSV structure, unknown column */
  CANOPY_TOPOLOGY_ERROR_ADDRESS,       /* malformed address, subnet or range */
  CANOPY_TOPOLOGY_ERROR_VALUE,         /* bad type, rate or flag */
  CANOPY_TOPOLOGY_ERROR_DUPLICATE,     /* office named twice */
  CANOPY_TOPOLOGY_ERROR_UNKNOWN_PARENT,
  CANOPY_TOPOLOGY_ERROR_CYCLE,
  CANOPY_TOPOLOGY_ERROR_OVERLAP,
  CANOPY_TOPOLOGY_ERROR_PLACEMENT,     /* WiFi office not beneath a wired one */
} CanopyTopologyError;

typedef enum {
  CANOPY_OFFICE_DEFAULT, /* peers share over the LAN */
  CANOPY_OFFICE_WIFI,    /* peers share; sits beneath the wired office of its site */
  CANOPY_OFFICE_VPN,     /* peers do not share; devices fetch from the parent side */
} CanopyOfficeType;

/* The root office: created automatically, holds the server's own subnet. */
#define CANOPY_TOPOLOGY_CENTRAL_OFFICE "Central Office"

/* An inclusive range of addresses of one family (a CIDR subnet is one). */
typedef struct {
  GSocketFamily family;
  guint8 first[16];
  guint8 last[16];
  guint8 prefix; /* the CIDR prefix length, or 0 when written as a range */
} CanopyAddressRange;

/* A daily period with its own WAN rate, in the office's local time:
 * minutes since midnight; it wraps past midnight when end < start. */
typedef struct {
  guint16 start; /* first minute in it */
  guint16 end;   /* first minute after it */
  guint64 rate;  /* bits per second; 0 = not limited */
} CanopyRatePeriod;

typedef struct {
  char *name;
  char *parent; /* NULL for the central office */
  CanopyOfficeType type;
  GArray *ranges; /* CanopyAddressRange */
  guint64 wan_rate; /* bits per second; 0 = not limited */
  gboolean metered;
  gboolean automatic; /* made from a subnet agents reported */
  char *time_zone;    /* IANA name as written ("Europe/Paris"); NULL: UTC */
  GTimeZone *tz;      /* it, or UTC; windows and schedules are in its local time */
  GArray *schedule;   /* CanopyRatePeriod, in no overlap; outside them wan_rate applies */
  /* transfer_class background: its lead's WAN traffic yields to other
   * traffic on the link (LEDBAT); else the normal class */
  gboolean background;
} CanopyOffice;

typedef struct _CanopyTopology CanopyTopology;

/**
 * canopy_address_range_parse:
 * @text: "198.18.0.0/24", "2001:db8::/48", "198.18.0.10-198.18.0.50" or a
 *   single address
 * @range: (out): the range
 * @error: a %CANOPY_TOPOLOGY_ERROR_ADDRESS saying what is wrong
 */
gboolean canopy_address_range_parse (const char *text, CanopyAddressRange *range, GError **error);

/** canopy_address_range_to_string: Returns: (transfer full): it as parsed. */
char *canopy_address_range_to_string (const CanopyAddressRange *range);

/**
 * canopy_address_range_from_address:
 * @address: an address as text
 * @prefix: the prefix length agents report with it
 *
 * Returns: the subnet @address is in.
 */
gboolean canopy_address_range_from_address (const char *address, guint prefix,
                                            CanopyAddressRange *range, GError **error);

/**
 * canopy_topology_new:
 * @central_ranges: (nullable) (element-type CanopyAddressRange): the
 *   server's own subnets, for the central office
 */
CanopyTopology *canopy_topology_new (GArray *central_ranges);
void canopy_topology_free (CanopyTopology *topology);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyTopology, canopy_topology_free)

/**
 * canopy_topology_import_csv:
 * @csv: the spreadsheet saved as CSV (UTF-8, comma-separated, RFC 4180
 *   quoting); columns office, parent, type, subnets, wan_rate, metered,
 *   automatic, transfer_class (normal or background)
 * @central_ranges: (nullable): as for canopy_topology_new()
 * @errors: (out) (transfer full): one message per problem, each naming
 *   line and column; empty when the file is valid
 *
 * Returns: (transfer full) (nullable): the topology, or %NULL if any
 *   problem was found (nothing is partly imported).
 */
CanopyTopology *canopy_topology_import_csv (const char *csv,
                                            GArray *central_ranges,
                                            GPtrArray **errors);

/* Where a problem of an imported spreadsheet is: 1-based line and column
 * (column 0 when it concerns the whole line or the file). */
typedef struct {
  guint line;
  guint column;
} CanopyTopologyLocation;

/**
 * canopy_topology_import_csv_located:
 * @locations: (out) (transfer full) (element-type CanopyTopologyLocation):
 *   where each of @errors is, in the same order
 *
 * As canopy_topology_import_csv(), with the line and column of each
 * problem apart from its message, for callers that report them as data.
 */
CanopyTopology *canopy_topology_import_csv_located (const char *csv, GArray *central_ranges,
                                                    GPtrArray **errors, GArray **locations);

/** canopy_topology_export_csv: Returns: (transfer full): the same format. */
char *canopy_topology_export_csv (const CanopyTopology *topology);

/**
 * canopy_topology_add_auto_office:
 * @subnet: a subnet an agent reported
 *
 * With distribution optimization off, each reported subnet becomes an
 * office under the central office. Does nothing if an office holds it.
 *
 * Returns: (transfer none): the office holding @subnet.
 */
const CanopyOffice *canopy_topology_add_auto_office (CanopyTopology *topology,
                                                     const CanopyAddressRange *subnet);

/**
 * canopy_topology_find_office:
 * @address: a device address as text
 *
 * Returns: (transfer none) (nullable): the office whose range holds
 *   @address, or %NULL for a no-office client.
 */
const CanopyOffice *canopy_topology_find_office (const CanopyTopology *topology,
                                                 const char *address);

const CanopyOffice *canopy_topology_lookup (const CanopyTopology *topology, const char *name);

/** canopy_topology_get_offices: Returns: (transfer none): parents before children. */
GPtrArray *canopy_topology_get_offices (const CanopyTopology *topology);

/**
 * canopy_topology_check_split_subnets:
 * @subnets: (element-type CanopyAddressRange): subnets agents reported
 *
 * Returns: (transfer full): a warning per reported subnet that the
 *   topology covers only in part: its uncovered devices would be no-office
 *   clients.
 */
GPtrArray *canopy_topology_check_split_subnets (const CanopyTopology *topology, GArray *subnets);

const char *canopy_office_type_to_string (CanopyOfficeType type);

/* Minutes since midnight at @real_us (µs since the epoch) in @office's
 * time zone. */
guint canopy_office_local_minute (const CanopyOffice *office, gint64 real_us);

/* Whether @minute lies in [@start, @end), wrapping past midnight when
 * @end < @start; an empty period (@start == @end) holds nothing. */
gboolean canopy_minute_in_period (guint minute, guint start, guint end);

/* The WAN rate of @office at @real_us: its schedule's period then, or
 * its wan_rate outside every period. */
guint64 canopy_office_rate_at (const CanopyOffice *office, gint64 real_us);

/**
 * canopy_rate_schedule_parse:
 * @text: "20M 08:00-18:00; 50M 18:00-22:00": periods separated by ";",
 *   each a rate as the wan_rate column takes it and a daily period
 *   HH:MM-HH:MM (24:00 allowed as an end); "" for none
 * @schedule: (out) (transfer full): the periods
 * @error: a %CANOPY_TOPOLOGY_ERROR_VALUE saying what is wrong
 */
gboolean canopy_rate_schedule_parse (const char *text, GArray **schedule, GError **error);

/** canopy_rate_schedule_to_string: Returns: (transfer full): it as parsed. */
char *canopy_rate_schedule_to_string (const GArray *schedule);

/* "HH:MM" as minutes since midnight, 0-1440 (24:00 only if @allow_24). */
gboolean canopy_parse_clock (const char *text, gboolean allow_24, guint *minutes);

G_END_DECLS
