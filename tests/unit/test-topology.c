/* Topology: address ranges, office lookup, the CSV spreadsheet's round
 * trip, and every validation error with its line and column. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/topology.h"

#include <string.h>

static const char valid_csv[] =
  "\xef\xbb\xbf" "office,parent,type,subnets,wan_rate,metered\r\n"
  "# branch offices of the north region\r\n"
  "Central Office,,Default,198.18.0.0/24,,no\r\n"
  "North,,Default,\"198.18.10.0/24; 198.18.11.10-198.18.11.99\",100M,no\r\n"
  "North WiFi,North,WiFi,198.18.12.0/24,100M,no\r\n"
  "\"Road warriors, VPN\",,VPN,2001:db8:100::/48,1G,yes\r\n"
  "South,Central Office,,198.18.20.0/23,512k,\r\n"
  "\r\n";

static void
test_address_ranges (void)
{
  CanopyAddressRange range;
  g_autoptr (GError) error = NULL;
  const char *good[][2] = {
    { "198.18.0.0/24", "198.18.0.0/24" },
    { " 2001:db8::/32 ", "2001:db8::/32" },
    { "198.18.0.10-198.18.0.50", "198.18.0.10-198.18.0.50" },
    { "198.18.0.7", "198.18.0.7/32" },
    { "2001:db8::1-2001:db8::ff", "2001:db8::1-2001:db8::ff" },
  };
  const char *bad[][2] = {
    { "198.18.0.5/24", "first address" },
    { "198.18.0.0/33", "prefix length" },
    { "198.18.0.0/x", "not a number" },
    { "198.18.0.50-198.18.0.10", "ends before it starts" },
    { "198.18.0.1-2001:db8::1", "same family" },
    { "198.18.0", "not IPv4 or IPv6" },
    { "north-office", "not IPv4 or IPv6" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *text = NULL;

      CU_ASSERT (canopy_address_range_parse (good[i][0], &range, &error));
      CANOPY_ASSERT_NO_ERROR (error);
      text = canopy_address_range_to_string (&range);
      CU_ASSERT_STRING_EQUAL (text, good[i][1]);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      CU_ASSERT_FALSE (canopy_address_range_parse (bad[i][0], &range, &error));
      CU_ASSERT (g_error_matches (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_ADDRESS));
      CANOPY_ASSERT_CONTAINS (error->message, bad[i][1]);
      g_clear_error (&error);
    }
  CU_ASSERT (canopy_address_range_from_address ("198.18.5.77", 22, &range, &error));
  {
    g_autofree char *text = canopy_address_range_to_string (&range);
    CU_ASSERT_STRING_EQUAL (text, "198.18.4.0/22");
  }
}

static CanopyTopology *
import_ok (const char *csv)
{
  g_autoptr (GPtrArray) errors = NULL;
  CanopyTopology *topology = canopy_topology_import_csv (csv, NULL, &errors);

  for (guint i = 0; i < errors->len; i++)
    fprintf (stderr, "\n    unexpected: %s", (char *) g_ptr_array_index (errors, i));
  CU_ASSERT_EQUAL (errors->len, 0);
  return topology;
}

static void
test_import_and_lookup (void)
{
  g_autoptr (CanopyTopology) topology = import_ok (valid_csv);
  const CanopyOffice *office;

  CU_ASSERT_PTR_NOT_NULL_FATAL (topology);
  CU_ASSERT_EQUAL (canopy_topology_get_offices (topology)->len, 5);
  office = canopy_topology_find_office (topology, "198.18.11.50");
  CU_ASSERT_PTR_NOT_NULL_FATAL (office);
  CU_ASSERT_STRING_EQUAL (office->name, "North");
  CU_ASSERT_EQUAL (office->wan_rate, 100000000);
  CU_ASSERT_PTR_NULL (canopy_topology_find_office (topology, "198.18.11.100"));
  office = canopy_topology_find_office (topology, "2001:db8:100:5::9");
  CU_ASSERT_PTR_NOT_NULL_FATAL (office);
  CU_ASSERT_STRING_EQUAL (office->name, "Road warriors, VPN");
  CU_ASSERT_EQUAL (office->type, CANOPY_OFFICE_VPN);
  CU_ASSERT (office->metered);
  CU_ASSERT_STRING_EQUAL (office->parent, CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  office = canopy_topology_find_office (topology, "198.18.21.255");
  CU_ASSERT_STRING_EQUAL (office->name, "South");
  CU_ASSERT_EQUAL (office->wan_rate, 512000);
  CU_ASSERT_STRING_EQUAL (canopy_topology_find_office (topology, "198.18.0.1")->name,
                          CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  CU_ASSERT_PTR_NULL (canopy_topology_find_office (topology, "203.0.113.1"));
  CU_ASSERT_PTR_NULL (canopy_topology_find_office (topology, "not an address"));
}

static void
test_export_round_trip (void)
{
  g_autoptr (CanopyTopology) first = import_ok (valid_csv);
  g_autofree char *exported = canopy_topology_export_csv (first);
  g_autoptr (CanopyTopology) second = import_ok (exported);
  g_autofree char *again = canopy_topology_export_csv (second);

  CU_ASSERT_STRING_EQUAL (exported, again);
  CANOPY_ASSERT_CONTAINS (exported, "\"Road warriors, VPN\",Central Office,VPN,2001:db8:100::/48");
  CANOPY_ASSERT_CONTAINS (exported, "North WiFi,North,WiFi,198.18.12.0/24,100M,no,no");
}

/* Office names come from whoever edits the spreadsheet; exported, a
 * name that a spreadsheet program would run as a formula stays text, and
 * the export still imports to the same topology. */
static void
test_export_neutralises_formulas (void)
{
  static const char hostile_csv[] =
    "office,parent,type,subnets,wan_rate,metered\r\n"
    "\"=HYPERLINK(\"\"http://evil\"\")\",,Default,198.18.0.0/24,,no\r\n"
    "+Plus,\"=HYPERLINK(\"\"http://evil\"\")\",Default,198.18.1.0/24,,no\r\n"
    "-Minus,,Default,198.18.2.0/24,,no\r\n"
    "@At,,Default,198.18.3.0/24,,no\r\n"
    "\"'=Typed as text\",,Default,198.18.4.0/24,,no\r\n"
    "\"''=Two quotes\",,Default,198.18.5.0/24,,no\r\n";
  g_autoptr (CanopyTopology) first = import_ok (hostile_csv);
  g_autofree char *exported = NULL, *again = NULL;
  g_autoptr (CanopyTopology) second = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (first);
  /* The guard a user typed is stripped on import: the name is "=Typed...". */
  CU_ASSERT_PTR_NOT_NULL (canopy_topology_lookup (first, "=Typed as text"));
  CU_ASSERT_PTR_NOT_NULL (canopy_topology_lookup (first, "'=Two quotes"));
  exported = canopy_topology_export_csv (first);
  CANOPY_ASSERT_CONTAINS (exported, "\"'=HYPERLINK(\"\"http://evil\"\")\",Central Office,");
  CANOPY_ASSERT_CONTAINS (exported, "\"'+Plus\",\"'=HYPERLINK(\"\"http://evil\"\")\",");
  CANOPY_ASSERT_CONTAINS (exported, "\"'-Minus\",");
  CANOPY_ASSERT_CONTAINS (exported, "\"'@At\",");
  CANOPY_ASSERT_CONTAINS (exported, "\"'=Typed as text\",");
  CANOPY_ASSERT_CONTAINS (exported, "\"''=Two quotes\",");
  /* No line starts a cell with a bare formula character. */
  CU_ASSERT_PTR_NULL (strstr (exported, "\n="));
  CU_ASSERT_PTR_NULL (strstr (exported, ",="));
  CU_ASSERT_PTR_NULL (strstr (exported, ",+"));
  second = import_ok (exported);
  CU_ASSERT_PTR_NOT_NULL_FATAL (second);
  CU_ASSERT_EQUAL (canopy_topology_get_offices (second)->len,
                   canopy_topology_get_offices (first)->len);
  CU_ASSERT_PTR_NOT_NULL (canopy_topology_lookup (second, "=HYPERLINK(\"http://evil\")"));
  CU_ASSERT_STRING_EQUAL (canopy_topology_find_office (second, "198.18.1.9")->parent,
                          "=HYPERLINK(\"http://evil\")");
  CU_ASSERT_PTR_NOT_NULL (canopy_topology_lookup (second, "'=Two quotes"));
  again = canopy_topology_export_csv (second);
  CU_ASSERT_STRING_EQUAL (exported, again);
}

static void
test_auto_offices (void)
{
  CanopyAddressRange server;
  g_autoptr (GArray) central = g_array_new (FALSE, FALSE, sizeof (CanopyAddressRange));
  g_autoptr (CanopyTopology) topology = NULL;
  g_autoptr (CanopyTopology) reimported = NULL;
  g_autofree char *exported = NULL, *again = NULL;
  CanopyAddressRange subnet;
  const CanopyOffice *a, *b;

  canopy_address_range_parse ("198.18.0.0/24", &server, NULL);
  g_array_append_val (central, server);
  topology = canopy_topology_new (central);

  canopy_address_range_from_address ("198.18.40.17", 24, &subnet, NULL);
  a = canopy_topology_add_auto_office (topology, &subnet);
  canopy_address_range_from_address ("198.18.40.200", 24, &subnet, NULL);
  b = canopy_topology_add_auto_office (topology, &subnet);
  CU_ASSERT_PTR_EQUAL (a, b);
  CU_ASSERT (a->automatic);
  CU_ASSERT_STRING_EQUAL (a->parent, CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  canopy_address_range_from_address ("2001:db8:7::5", 64, &subnet, NULL);
  canopy_topology_add_auto_office (topology, &subnet);
  /* The server's own subnet is the central office's. */
  canopy_address_range_from_address ("198.18.0.9", 24, &subnet, NULL);
  CU_ASSERT_STRING_EQUAL (canopy_topology_add_auto_office (topology, &subnet)->name,
                          CANOPY_TOPOLOGY_CENTRAL_OFFICE);
  CU_ASSERT_EQUAL (canopy_topology_get_offices (topology)->len, 3);
  CU_ASSERT_STRING_EQUAL (canopy_topology_find_office (topology, "2001:db8:7::99")->name,
                          "2001:db8:7::/64");

  exported = canopy_topology_export_csv (topology);
  CANOPY_ASSERT_CONTAINS (exported, "198.18.40.0/24,Central Office,Default,198.18.40.0/24,,no,yes");
  reimported = import_ok (exported);
  again = canopy_topology_export_csv (reimported);
  CU_ASSERT_STRING_EQUAL (exported, again);
}

static void
assert_import_error (const char *csv, const char *expected_a, const char *expected_b)
{
  g_autoptr (GPtrArray) errors = NULL;
  g_autoptr (CanopyTopology) topology = canopy_topology_import_csv (csv, NULL, &errors);
  g_autoptr (GString) all = g_string_new (NULL);

  CU_ASSERT_PTR_NULL (topology);
  for (guint i = 0; i < errors->len; i++)
    g_string_append_printf (all, "%s\n", (char *) g_ptr_array_index (errors, i));
  CANOPY_ASSERT_CONTAINS (all->str, expected_a);
  if (expected_b != NULL)
    CANOPY_ASSERT_CONTAINS (all->str, expected_b);
}

/* The transfer_class column: background offices are read, written back
 * and read again; an unknown class is a problem with its line. */
static void
test_transfer_class (void)
{
  const char *csv = "office,parent,type,subnets,wan_rate,metered,transfer_class\n"
                    "Quiet,,Default,198.18.1.0/24,50M,no,Background\n"
                    "Busy,,Default,198.18.2.0/24,50M,no,normal\n"
                    "Plain,,Default,198.18.3.0/24,,no,\n";
  g_autoptr (CanopyTopology) topology = import_ok (csv);
  g_autoptr (CanopyTopology) again = NULL;
  g_autofree char *exported = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (topology);
  CU_ASSERT (canopy_topology_find_office (topology, "198.18.1.9")->background);
  CU_ASSERT (!canopy_topology_find_office (topology, "198.18.2.9")->background);
  CU_ASSERT (!canopy_topology_find_office (topology, "198.18.3.9")->background);
  exported = canopy_topology_export_csv (topology);
  CANOPY_ASSERT_CONTAINS (exported, "Quiet,Central Office,Default,198.18.1.0/24,50M,no,no,,,background");
  CANOPY_ASSERT_CONTAINS (exported, "Plain,Central Office,Default,198.18.3.0/24,,no,no,,,normal");
  again = import_ok (exported);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  CU_ASSERT (canopy_topology_find_office (again, "198.18.1.9")->background);
  assert_import_error ("office,subnets,transfer_class\nA,198.18.1.0/24,normal\n"
                       "B,198.18.2.0/24,polite\n",
                       "line 3, column 3 (transfer_class)", "\"polite\" is not a transfer class");
}

static void
test_validation_errors (void)
{
  const char *head = "office,parent,type,subnets,wan_rate,metered\n";
  struct {
    const char *rows;
    const char *where;
    const char *what;
  } cases[] = {
    { "A,,Default,198.18.1.0/24,,\nB,Nowhere,,198.18.2.0/24,,\n",
      "line 3, column 2 (parent)", "\"Nowhere\" is not defined" },
    { "A,C,,198.18.1.0/24,,\nB,A,,198.18.2.0/24,,\nC,B,,198.18.3.0/24,,\n",
      "line 2, column 2 (parent)", "its own ancestor" },
    { "A,,,198.18.1.0/24,,\nB,,,198.18.1.128/25,,\n",
      "line 3, column 4 (subnets)", "overlaps 198.18.1.0/24 of office \"A\" (line 2)" },
    { "A,,,\"198.18.1.0/24; 198.18.1.200-198.18.2.5\",,\n",
      "line 2, column 4 (subnets)", "overlaps" },
    { "A,,,198.18.1.300/24,,\n", "line 2, column 4 (subnets)", "not IPv4 or IPv6" },
    { "A,,,198.18.1.0/24,,\nA,,,198.18.2.0/24,,\n",
      "line 3, column 1 (office)", "already defined on line 2" },
    { "A,,Satellite,198.18.1.0/24,,\n", "line 2, column 3 (type)", "Default, WiFi or VPN" },
    { "A,,,198.18.1.0/24,fast,\n", "line 2, column 5 (wan_rate)", "not a link rate" },
    { "A,,,198.18.1.0/24,99999999999999999999G,\n", "line 2, column 5 (wan_rate)",
      "not a link rate" },
    { "A,,,198.18.1.0/24,nan,\n", "line 2, column 5 (wan_rate)", "not a link rate" },
    { "A,,,198.18.1.0/24,infM,\n", "line 2, column 5 (wan_rate)", "not a link rate" },
    { "A,,,198.18.1.0/24,,maybe\n", "line 2, column 6 (metered)", "not yes or no" },
    { "V,,VPN,198.18.1.0/24,,\nW,V,WiFi,198.18.2.0/24,,\n",
      "line 3, column 2 (parent)", "beneath the wired (Default) office" },
    { "Central Office,A,,198.18.0.0/24,,\nA,,,198.18.1.0/24,,\n",
      "line 2, column 2 (parent)", "has no parent" },
    { ",,,198.18.1.0/24,,\n", "line 2, column 1 (office)", "no name" },
    { "\"A,,,198.18.1.0/24,,\n", "line 2, column 1", "not closed" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *csv = g_strconcat (head, cases[i].rows, NULL);
      assert_import_error (csv, cases[i].where, cases[i].what);
    }
  assert_import_error ("office,parent,colour\nA,,red\n", "line 1:", "\"colour\"");
  assert_import_error ("", "line 1:", "empty");
}

static void
test_all_errors_reported_at_once (void)
{
  const char *csv = "office,subnets,wan_rate\n"
                    "A,198.18.1.0/24,fast\n"
                    "B,198.18.999.0/24,\n";
  g_autoptr (GPtrArray) errors = NULL;
  g_autoptr (CanopyTopology) topology = canopy_topology_import_csv (csv, NULL, &errors);

  CU_ASSERT_PTR_NULL (topology);
  CU_ASSERT_EQUAL (errors->len, 2);
  /* Column numbers are those of this file, whose columns are reordered. */
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 0), "line 2, column 3 (wan_rate)");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 1), "line 3, column 2 (subnets)");
}

/* Problems of every stage come together, in file order, each at its own
 * line: a bad value, an undefined parent, a cycle and an overlap. */
static void
test_all_stages_reported_at_once (void)
{
  const char *csv = "office,parent,type,subnets,wan_rate\n"
                    "A,,Default,198.18.1.0/24,\n"
                    "B,Nowhere,Default,198.18.2.0/24,\n"
                    "C,D,Default,198.18.3.0/24,\n"
                    "D,C,Default,198.18.4.0/24,fast\n"
                    "E,,Default,198.18.1.128/25,\n";
  const char *expected[][2] = {
    { "line 3, column 2 (parent)", "\"Nowhere\" is not defined" },
    { "line 4, column 2 (parent)", "its own ancestor" },
    { "line 5, column 2 (parent)", "its own ancestor" },
    { "line 5, column 5 (wan_rate)", "not a link rate" },
    { "line 6, column 4 (subnets)", "overlaps 198.18.1.0/24 of office \"A\" (line 2)" },
  };
  g_autoptr (GPtrArray) errors = NULL;
  g_autoptr (GArray) locations = NULL;
  g_autoptr (CanopyTopology) topology = canopy_topology_import_csv_located (csv, NULL, &errors,
                                                                           &locations);

  CU_ASSERT_PTR_NULL (topology);
  for (guint i = 0; i < errors->len; i++)
    printf ("\n    %s", (char *) g_ptr_array_index (errors, i));
  CU_ASSERT_EQUAL_FATAL (errors->len, G_N_ELEMENTS (expected));
  CU_ASSERT_EQUAL_FATAL (locations->len, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      const CanopyTopologyLocation *where = &g_array_index (locations,
                                                            CanopyTopologyLocation, i);
      g_autofree char *prefix = g_strdup_printf ("line %u, column %u (", where->line,
                                                 where->column);

      CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, i), expected[i][0]);
      CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, i), expected[i][1]);
      CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, i), prefix);
    }
}

static void
test_split_subnet_warning (void)
{
  const char *csv = "office,subnets\nA,198.18.1.0-198.18.1.127\nB,198.18.2.0/24\n";
  g_autoptr (CanopyTopology) topology = import_ok (csv);
  g_autoptr (GArray) reported = g_array_new (FALSE, FALSE, sizeof (CanopyAddressRange));
  g_autoptr (GPtrArray) warnings = NULL;
  CanopyAddressRange subnet;

  canopy_address_range_from_address ("198.18.1.5", 24, &subnet, NULL);
  g_array_append_val (reported, subnet);
  canopy_address_range_from_address ("198.18.2.5", 24, &subnet, NULL);
  g_array_append_val (reported, subnet);
  canopy_address_range_from_address ("198.18.9.5", 24, &subnet, NULL);
  g_array_append_val (reported, subnet);
  warnings = canopy_topology_check_split_subnets (topology, reported);
  CU_ASSERT_EQUAL_FATAL (warnings->len, 1);
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (warnings, 0), "198.18.1.0/24");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (warnings, 0), "no-office clients");
}

static void
test_many_offices (void)
{
  g_autoptr (GString) csv = g_string_new ("office,parent,subnets\n");
  g_autoptr (CanopyTopology) topology = NULL;
  const CanopyOffice *office;

  for (guint i = 0; i < 20000; i++)
    g_string_append_printf (csv, "Branch %u,,%u.%u.%u.0/24\n", i, 10 + i / 65536,
                            (i / 256) % 256, i % 256);
  topology = import_ok (csv->str);
  CU_ASSERT_EQUAL_FATAL (canopy_topology_get_offices (topology)->len, 20001);
  office = canopy_topology_find_office (topology, "10.78.31.200");
  CU_ASSERT_PTR_NOT_NULL_FATAL (office);
  CU_ASSERT_STRING_EQUAL (office->name, "Branch 19999");
}

/* Time zones and WAN schedules: read, applied by local time, exported
 * and read back the same; every mistake named by line and column. */
static void
test_time_zones_and_schedules (void)
{
  const char *csv =
    "office,parent,type,subnets,wan_rate,time_zone,wan_schedule\n"
    "Paris,,Default,198.18.1.0/24,100M,Europe/Paris,20M 08:00-18:00; 50M 22:00-06:00\n"
    "Plain,,Default,198.18.2.0/24,10M,,\n";
  g_autoptr (CanopyTopology) topology = import_ok (csv);
  g_autoptr (CanopyTopology) again = NULL;
  g_autofree char *exported = NULL;
  const CanopyOffice *paris, *plain;
  /* 2026-01-15 07:30 UTC is 08:30 in Paris (UTC+1 in winter). */
  gint64 winter_0730 = G_GINT64_CONSTANT (1768462200) * G_USEC_PER_SEC;
  gint64 minute = 60 * G_USEC_PER_SEC;
  g_autoptr (GPtrArray) errors = NULL;
  g_autoptr (CanopyTopology) bad = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (topology);
  paris = canopy_topology_lookup (topology, "Paris");
  plain = canopy_topology_lookup (topology, "Plain");
  CU_ASSERT_PTR_NOT_NULL_FATAL (paris);
  CU_ASSERT_STRING_EQUAL (paris->time_zone, "Europe/Paris");
  CU_ASSERT_PTR_NULL (plain->time_zone);
  CU_ASSERT_EQUAL (canopy_office_local_minute (paris, winter_0730), 8 * 60 + 30);
  CU_ASSERT_EQUAL (canopy_office_local_minute (plain, winter_0730), 7 * 60 + 30);
  CU_ASSERT_EQUAL (canopy_office_rate_at (paris, winter_0730), 20000000);
  /* 06:59 in Paris: between the periods, the wan_rate column. */
  CU_ASSERT_EQUAL (canopy_office_rate_at (paris, winter_0730 - 91 * minute), 100000000);
  /* 05:59 in Paris: the night period, which wraps past midnight. */
  CU_ASSERT_EQUAL (canopy_office_rate_at (paris, winter_0730 - 151 * minute), 50000000);
  /* 18:00 in Paris: the day period has ended. */
  CU_ASSERT_EQUAL (canopy_office_rate_at (paris, winter_0730 + 570 * minute), 100000000);
  CU_ASSERT_EQUAL (canopy_office_rate_at (plain, winter_0730), 10000000);

  exported = canopy_topology_export_csv (topology);
  CANOPY_ASSERT_CONTAINS (exported, "Europe/Paris");
  CANOPY_ASSERT_CONTAINS (exported, "20M 08:00-18:00; 50M 22:00-06:00");
  again = import_ok (exported);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  CU_ASSERT_EQUAL (canopy_office_rate_at (canopy_topology_lookup (again, "Paris"),
                                          winter_0730 - 151 * minute),
                   50000000);

  bad = canopy_topology_import_csv (
    "office,subnets,time_zone,wan_schedule\n"
    "A,198.18.1.0/24,Mars/Olympus,\n"
    "B,198.18.2.0/24,,20M 08:00-18:00; 5M 17:00-19:00\n"
    "C,198.18.3.0/24,,fast 08:00-18:00\n"
    "D,198.18.4.0/24,,20M 08:00-08:00\n"
    "E,198.18.5.0/24,,20M 8h-18h\n",
    NULL, &errors);
  CU_ASSERT_PTR_NULL (bad);
  CU_ASSERT_EQUAL_FATAL (errors->len, 5);
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 0), "line 2, column 3 (time_zone)");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 0), "Mars/Olympus");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 1), "line 3, column 4 (wan_schedule)");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 1), "overlaps");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 2), "fast 08:00-18:00");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 3), "starts when it ends");
  CANOPY_ASSERT_CONTAINS (g_ptr_array_index (errors, 4), "8h-18h");
}

CANOPY_TEST_SUITE (topology, "topology", NULL, NULL,
                   { "time zones and WAN schedules", test_time_zones_and_schedules },
                   { "address ranges", test_address_ranges },
                   { "import and lookup", test_import_and_lookup },
                   { "export round trip", test_export_round_trip },
                   { "export never runs formulas, still round-trips",
                     test_export_neutralises_formulas },
                   { "automatic offices", test_auto_offices },
                   { "transfer class column", test_transfer_class },
                   { "validation errors name line and column", test_validation_errors },
                   { "all errors reported at once", test_all_errors_reported_at_once },
                   { "every stage's problems at once, in line order",
                     test_all_stages_reported_at_once },
                   { "split subnet warning", test_split_subnet_warning },
                   { "20,000 offices", test_many_offices })
