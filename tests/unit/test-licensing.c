/* Licensing and preferred devices: seats, overage, release, the report;
 * ranking order, its explanation, and picking a lead. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/licensing.h"
#include "lib/ranking.h"

#include <string.h>

#define DAY ((gint64) 86400 * G_USEC_PER_SEC)

static void
test_seats_and_overage (void)
{
  g_autoptr (CanopyLicensing) licensing = canopy_licensing_new (2, 30 * DAY);

  CU_ASSERT_FALSE (canopy_licensing_activate (licensing, "a", 1 * DAY));
  CU_ASSERT_FALSE (canopy_licensing_activate (licensing, "b", 2 * DAY));
  CU_ASSERT_FALSE (canopy_licensing_activate (licensing, "a", 3 * DAY)); /* seen again */
  CU_ASSERT_EQUAL (canopy_licensing_get_used (licensing), 2);
  /* Going over is allowed, and reported. */
  CU_ASSERT_TRUE (canopy_licensing_activate (licensing, "c", 4 * DAY));
  CU_ASSERT_EQUAL (canopy_licensing_get_used (licensing), 3);
  CU_ASSERT_EQUAL (canopy_licensing_get_overage (licensing), 1);
  CU_ASSERT_EQUAL (canopy_licensing_lookup (licensing, "a")->activated_at, 1 * DAY);
  CU_ASSERT_EQUAL (canopy_licensing_lookup (licensing, "a")->last_seen, 3 * DAY);

  CU_ASSERT_TRUE (canopy_licensing_release (licensing, "b"));
  CU_ASSERT_FALSE (canopy_licensing_release (licensing, "b"));
  CU_ASSERT_EQUAL (canopy_licensing_get_overage (licensing), 0);
  canopy_licensing_set_seats (licensing, 1);
  CU_ASSERT_EQUAL (canopy_licensing_get_overage (licensing), 1);
}

static void
test_release_stale (void)
{
  g_autoptr (CanopyLicensing) licensing = canopy_licensing_new (10, 30 * DAY);
  g_auto (GStrv) released = NULL;
  g_auto (GStrv) none = NULL;
  g_autoptr (CanopyLicensing) forever = canopy_licensing_new (10, 0);

  canopy_licensing_activate (licensing, "gone", 1 * DAY);
  canopy_licensing_activate (licensing, "here", 1 * DAY);
  canopy_licensing_activate (licensing, "here", 40 * DAY);
  released = canopy_licensing_release_stale (licensing, 45 * DAY);
  CU_ASSERT_EQUAL_FATAL (g_strv_length (released), 1);
  CU_ASSERT_STRING_EQUAL (released[0], "gone");
  CU_ASSERT_PTR_NULL (canopy_licensing_lookup (licensing, "gone"));
  CU_ASSERT_PTR_NOT_NULL (canopy_licensing_lookup (licensing, "here"));

  canopy_licensing_activate (forever, "old", 1 * DAY);
  none = canopy_licensing_release_stale (forever, 9999 * DAY);
  CU_ASSERT_EQUAL (g_strv_length (none), 0);
}

static const CanopyLicenceReportDevice *
describe (const char *device_id, gpointer user_data)
{
  static const CanopyLicenceReportDevice known = { "dev-1", "Front desk, PC 1", "North",
                                                   "198.18.10.5", "0.1.0" };

  return g_str_equal (device_id, "dev-1") ? &known : NULL;
}

static void
test_report (void)
{
  g_autoptr (CanopyLicensing) licensing = canopy_licensing_new (10, 0);
  g_autofree char *csv = NULL;
  g_autoptr (GDateTime) when = g_date_time_new_utc (2026, 11, 24, 8, 30, 0);
  gint64 t = g_date_time_to_unix (when) * G_USEC_PER_SEC;

  canopy_licensing_activate (licensing, "dev-2", t + 1);
  canopy_licensing_activate (licensing, "dev-1", t);
  csv = canopy_licensing_report_csv (licensing, describe, NULL);
  CU_ASSERT_STRING_EQUAL (csv,
                          "device_id,name,office,address,agent_version,activated,last_seen,"
                          "licence\r\n"
                          "dev-1,\"Front desk, PC 1\",North,198.18.10.5,0.1.0,"
                          "2026-11-24T08:30:00Z,2026-11-24T08:30:00Z,valid\r\n"
                          "dev-2,,,,,2026-11-24T08:30:00Z,2026-11-24T08:30:00Z,valid\r\n");
}

/* A device names itself: a name that a spreadsheet would run as a
 * formula must reach the admin's spreadsheet as text. */
static const CanopyLicenceReportDevice *
describe_hostile (const char *device_id, gpointer user_data)
{
  static const CanopyLicenceReportDevice rows[] = {
    { "dev-1", "=HYPERLINK(\"http://evil\",\"x\")", "+North", "-1+1", "@SUM(A1)" },
    { "dev-2", "\tcmd", "\r=x", "'=already", "plain" },
  };

  return g_str_equal (device_id, "dev-1") ? &rows[0] : &rows[1];
}

static void
test_report_neutralises_formulas (void)
{
  g_autoptr (CanopyLicensing) licensing = canopy_licensing_new (10, 0);
  g_autofree char *csv = NULL;

  canopy_licensing_activate (licensing, "dev-1", 1 * DAY);
  canopy_licensing_activate (licensing, "dev-2", 2 * DAY);
  csv = canopy_licensing_report_csv (licensing, describe_hostile, NULL);
  CANOPY_ASSERT_CONTAINS (csv, "dev-1,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\","
                               "\"'+North\",\"'-1+1\",\"'@SUM(A1)\",");
  CANOPY_ASSERT_CONTAINS (csv, "dev-2,\"'\tcmd\",\"'\r=x\",\"''=already\",plain,");
}

static void
test_expired_licence (void)
{
  g_autoptr (CanopyLicensing) licensing = canopy_licensing_new (10, 0);
  g_autofree char *csv = NULL;

  CU_ASSERT_FALSE (canopy_licensing_is_expired (licensing, 9999 * DAY));
  canopy_licensing_set_expiry (licensing, 10 * DAY);
  CU_ASSERT_FALSE (canopy_licensing_is_expired (licensing, 10 * DAY));
  CU_ASSERT (canopy_licensing_is_expired (licensing, 10 * DAY + 1));
  canopy_licensing_activate (licensing, "dev-2", 1 * DAY);
  /* The report is made now, long after day 10 of 1970. */
  csv = canopy_licensing_report_csv (licensing, describe, NULL);
  CU_ASSERT (g_str_has_suffix (csv, ",expired\r\n"));
}

static void
test_ranking (void)
{
  gint64 now = 100 * DAY;
  CanopyDeviceHistory always = { "always-on", "North", 0, 99 * DAY, 0, 0, 0, TRUE };
  CanopyDeviceHistory server = { "good-server", "North", 0, 90 * DAY, 40ull << 30, 12, 0, TRUE };
  CanopyDeviceHistory flaky = { "flaky", "North", 0, 30 * DAY, 80ull << 30, 30, 0, TRUE };
  CanopyDeviceHistory liar = { "bad-chunks", "North", 0, 99 * DAY, 40ull << 30, 12, 9, TRUE };
  CanopyDeviceHistory south = { "south-1", "South", 50 * DAY, 10 * DAY, 0, 0, 0, FALSE };
  g_autoptr (GPtrArray) histories = g_ptr_array_new ();
  g_autoptr (GArray) ranked = NULL;
  const CanopyRankedDevice *first;
  const char *exclude[] = { "good-server", NULL };

  g_ptr_array_add (histories, &flaky);
  g_ptr_array_add (histories, &south);
  g_ptr_array_add (histories, &always);
  g_ptr_array_add (histories, &liar);
  g_ptr_array_add (histories, &server);
  ranked = canopy_ranking_rank (histories, now);
  CU_ASSERT_EQUAL_FATAL (ranked->len, 5);

  first = &g_array_index (ranked, CanopyRankedDevice, 0);
  CU_ASSERT_STRING_EQUAL (first->history->device_id, "good-server");
  CU_ASSERT_EQUAL (first->rank, 1);
  CANOPY_ASSERT_CONTAINS (first->explanation, "rank 1 in office \"North\"");
  CANOPY_ASSERT_CONTAINS (first->explanation, "available 90%");
  CANOPY_ASSERT_CONTAINS (first->explanation, "to 12 peers");
  /* Availability outweighs serving: the always-on device beats the flaky one
   * that served twice as much, and serving bad chunks costs the most. */
  CU_ASSERT_STRING_EQUAL (g_array_index (ranked, CanopyRankedDevice, 1).history->device_id,
                          "always-on");
  CU_ASSERT_STRING_EQUAL (g_array_index (ranked, CanopyRankedDevice, 2).history->device_id,
                          "flaky");
  CU_ASSERT_STRING_EQUAL (g_array_index (ranked, CanopyRankedDevice, 3).history->device_id,
                          "bad-chunks");
  CU_ASSERT_EQUAL (g_array_index (ranked, CanopyRankedDevice, 4).rank, 1);

  CU_ASSERT_STRING_EQUAL (canopy_ranking_pick_lead (ranked, "North", NULL)->history->device_id,
                          "good-server");
  CU_ASSERT_STRING_EQUAL (canopy_ranking_pick_lead (ranked, "North", exclude)->history->device_id,
                          "always-on");
  /* An office whose devices are all offline has no lead. */
  CU_ASSERT_PTR_NULL (canopy_ranking_pick_lead (ranked, "South", NULL));
}

CANOPY_TEST_SUITE (licensing, "licensing", NULL, NULL,
                   { "seats and overage", test_seats_and_overage },
                   { "stale licences released", test_release_stale },
                   { "activated-devices report", test_report },
                   { "report cells never run as formulas", test_report_neutralises_formulas },
                   { "expired licence", test_expired_licence },
                   { "preferred-device ranking", test_ranking })
