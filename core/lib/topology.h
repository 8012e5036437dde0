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

typedef struct {
  char *name;
  char *parent; /* NULL for the central office */
  CanopyOfficeType type;
  GArray *ranges; /* CanopyAddressRange */
  guint64 wan_rate; /* bits per second; 0 = not limited */
  gboolean metered;
  gboolean automatic; /* made from a subnet agents reported */
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

G_END_DECLS
