/* Planner: one lead per office crosses the WAN, in source order; peers stay
 * on the LAN; VPN and no-office clients go direct; metered links wait;
 * a stalled lead is replaced by the next preferred device. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/planner.h"

#include <string.h>

#define DAY ((gint64) 86400 * G_USEC_PER_SEC)

static const char csv[] =
  "office,parent,type,subnets,wan_rate,metered\n"
  "Central Office,,Default,198.18.0.0/24,,\n"
  "North,,Default,198.18.10.0/24,100M,\n"
  "North WiFi,North,WiFi,198.18.11.0/24,100M,\n"
  "Remote,,VPN,198.18.20.0/24,,\n"
  "Ship,,Default,198.18.30.0/24,2M,yes\n";

typedef struct {
  CanopyTopology *topology;
  GPtrArray *histories;
  GArray *ranked;
} Fixture;

static CanopyDeviceHistory *
device (Fixture *f, const char *id, const char *office, double availability, gboolean online)
{
  CanopyDeviceHistory *h = g_new0 (CanopyDeviceHistory, 1);

  h->device_id = id;
  h->office = office;
  h->first_seen = 0;
  h->online_us = (gint64) (availability * 100 * DAY);
  h->online = online;
  g_ptr_array_add (f->histories, h);
  return h;
}

static void
fixture_init (Fixture *f)
{
  g_autoptr (GPtrArray) errors = NULL;

  f->topology = canopy_topology_import_csv (csv, NULL, &errors);
  g_assert (f->topology != NULL);
  f->histories = g_ptr_array_new_with_free_func (g_free);
  device (f, "c1", "Central Office", 0.99, TRUE);
  device (f, "n-best", "North", 0.95, TRUE);
  device (f, "n-second", "North", 0.80, TRUE);
  device (f, "n-third", "North", 0.50, TRUE);
  device (f, "n-offline", "North", 0.99, FALSE);
  device (f, "w1", "North WiFi", 0.70, TRUE);
  device (f, "w2", "North WiFi", 0.60, TRUE);
  device (f, "vpn1", "Remote", 0.90, TRUE);
  device (f, "lost", "", 0.90, TRUE);
  device (f, "ship1", "Ship", 0.90, TRUE);
  device (f, "ship2", "Ship", 0.80, TRUE);
  f->ranked = canopy_ranking_rank (f->histories, 100 * DAY);
}

static void
fixture_clear (Fixture *f)
{
  g_array_unref (f->ranked);
  g_ptr_array_unref (f->histories);
  canopy_topology_free (f->topology);
}

static const CanopyPlan *
find (GPtrArray *plans, const char *id)
{
  for (guint i = 0; i < plans->len; i++)
    if (strcmp (((CanopyPlan *) g_ptr_array_index (plans, i))->device_id, id) == 0)
      return g_ptr_array_index (plans, i);
  g_error ("no plan for %s", id);
}

static char *
sources (const CanopyPlan *plan)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < plan->sources->len; i++)
    {
      const CanopySource *s = &g_array_index (plan->sources, CanopySource, i);
      g_string_append_printf (out, "%s%s%s%s", i > 0 ? " " : "",
                              canopy_source_kind_to_string (s->kind), s->device_id ? ":" : "",
                              s->device_id ? s->device_id : "");
    }
  return g_string_free (out, FALSE);
}

static void
assert_plan (GPtrArray *plans, const char *id, CanopyRole role, const char *expected_sources)
{
  const CanopyPlan *plan = find (plans, id);
  g_autofree char *got = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  got = sources (plan);
  if (plan->role != role || strcmp (got, expected_sources) != 0)
    fprintf (stderr, "\n    %s: %s [%s] (%s)\n", id, canopy_role_to_string (plan->role), got,
             plan->reason);
  CU_ASSERT_EQUAL (plan->role, role);
  CU_ASSERT_STRING_EQUAL (got, expected_sources);
}

static void
test_one_lead_per_office (void)
{
  Fixture f;
  CanopyPlannerOptions options = { TRUE, NULL };
  g_autoptr (GPtrArray) plans = NULL;

  fixture_init (&f);
  plans = canopy_planner_plan (f.topology, f.ranked, &options);
  assert_plan (plans, "n-best", CANOPY_ROLE_LEAD,
               "office-peer:n-second office-peer:n-third parent-peer:c1");
  CU_ASSERT_EQUAL (find (plans, "n-best")->wan_rate, 100000000);
  CANOPY_ASSERT_CONTAINS (find (plans, "n-best")->reason, "lead of office \"North\"");
  assert_plan (plans, "n-second", CANOPY_ROLE_PEER, "office-peer:n-best office-peer:n-third");
  assert_plan (plans, "n-offline", CANOPY_ROLE_PEER,
               "office-peer:n-best office-peer:n-second office-peer:n-third");
  /* The WiFi office's parent is its wired office: while North brings the
   * content in, its lead waits for North's devices, never the origin. */
  assert_plan (plans, "w1", CANOPY_ROLE_LEAD,
               "office-peer:w2 parent-peer:n-best parent-peer:n-second parent-peer:n-third");
  CANOPY_ASSERT_CONTAINS (find (plans, "w1")->reason, "parent office \"North\"");
  assert_plan (plans, "w2", CANOPY_ROLE_PEER, "office-peer:w1");
  assert_plan (plans, "c1", CANOPY_ROLE_LEAD, "server origin");
  /* Direct devices keep to the origin: the store seeds office leads. */
  assert_plan (plans, "vpn1", CANOPY_ROLE_DIRECT, "origin");
  assert_plan (plans, "lost", CANOPY_ROLE_DIRECT, "origin");
  CANOPY_ASSERT_CONTAINS (find (plans, "lost")->reason, "no-office client");
  assert_plan (plans, "ship1", CANOPY_ROLE_WAIT, "office-peer:ship2");
  CANOPY_ASSERT_CONTAINS (find (plans, "ship1")->reason, "metered");
  assert_plan (plans, "ship2", CANOPY_ROLE_PEER, "office-peer:ship1");
  fixture_clear (&f);
}

static void
test_failover_and_no_store (void)
{
  Fixture f;
  const char *stalled[] = { "n-best", NULL };
  CanopyPlannerOptions options = { FALSE, stalled };
  g_autoptr (GPtrArray) plans = NULL;

  fixture_init (&f);
  plans = canopy_planner_plan (f.topology, f.ranked, &options);
  /* The next preferred device leads, starting from what its office holds. */
  assert_plan (plans, "n-second", CANOPY_ROLE_LEAD,
               "office-peer:n-best office-peer:n-third parent-peer:c1");
  assert_plan (plans, "n-best", CANOPY_ROLE_PEER, "office-peer:n-second office-peer:n-third");
  assert_plan (plans, "vpn1", CANOPY_ROLE_DIRECT, "origin");
  fixture_clear (&f);
}

static void
test_office_without_online_device (void)
{
  Fixture f;
  CanopyPlannerOptions options = { TRUE, NULL };
  g_autoptr (GPtrArray) plans = NULL;

  fixture_init (&f);
  for (guint i = 0; i < f.histories->len; i++)
    {
      CanopyDeviceHistory *h = g_ptr_array_index (f.histories, i);
      if (strcmp (h->office, "North WiFi") == 0)
        h->online = FALSE;
    }
  plans = canopy_planner_plan (f.topology, f.ranked, &options);
  CU_ASSERT_EQUAL (find (plans, "w1")->role, CANOPY_ROLE_WAIT);
  fixture_clear (&f);
}

/* A device outside the deployment that holds the content verified, from
 * another deployment, is its office's source: nobody in North leads or
 * crosses the WAN; other offices plan as before. */
static void
test_holder_from_another_deployment (void)
{
  Fixture f;
  CanopyDeviceHistory holder = { "n-holder", "North", 0, 0, 0, 0, 0, TRUE };
  g_autoptr (GPtrArray) holders = g_ptr_array_new ();
  CanopyPlannerOptions options = { TRUE, NULL, NULL, holders };
  g_autoptr (GPtrArray) plans = NULL;

  g_ptr_array_add (holders, &holder);
  fixture_init (&f);
  plans = canopy_planner_plan (f.topology, f.ranked, &options);
  assert_plan (plans, "n-best", CANOPY_ROLE_PEER,
               "office-peer:n-holder office-peer:n-second office-peer:n-third");
  CANOPY_ASSERT_CONTAINS (find (plans, "n-best")->reason, "already holds a verified copy");
  assert_plan (plans, "n-third", CANOPY_ROLE_PEER,
               "office-peer:n-holder office-peer:n-best office-peer:n-second");
  assert_plan (plans, "w1", CANOPY_ROLE_LEAD,
               "office-peer:w2 parent-peer:n-best parent-peer:n-second parent-peer:n-third "
               "parent-peer:n-holder");
  fixture_clear (&f);
}

/* A device outside the deployment holding an earlier version (content
 * that shares chunks) does not make its office a holder: North still has
 * a lead, but every North device lists it as an office peer before the
 * WAN, to ask it for chunks by hash; other offices do not. */
static void
test_holder_of_an_earlier_version (void)
{
  Fixture f;
  CanopyDeviceHistory earlier = { "n-earlier", "North", 0, 0, 0, 0, 0, TRUE };
  g_autoptr (GPtrArray) related = g_ptr_array_new ();
  CanopyPlannerOptions options = { TRUE, NULL };
  g_autoptr (GPtrArray) plans = NULL;

  options.related = related;
  g_ptr_array_add (related, &earlier);
  fixture_init (&f);
  plans = canopy_planner_plan (f.topology, f.ranked, &options);
  assert_plan (plans, "n-best", CANOPY_ROLE_LEAD,
               "office-peer:n-second office-peer:n-third office-peer:n-earlier parent-peer:c1");
  assert_plan (plans, "n-third", CANOPY_ROLE_PEER,
               "office-peer:n-best office-peer:n-second office-peer:n-earlier");
  assert_plan (plans, "w1", CANOPY_ROLE_LEAD,
               "office-peer:w2 parent-peer:n-best parent-peer:n-second parent-peer:n-third");
  assert_plan (plans, "ship2", CANOPY_ROLE_PEER, "office-peer:ship1");
  fixture_clear (&f);
}

/* With no device of the parent office online, or only on a metered link,
 * nothing comes from there: the lead goes to the server, then the origin. */
static void
test_parent_office_away (void)
{
  Fixture f;
  CanopyPlannerOptions options = { TRUE, NULL };
  g_autoptr (GPtrArray) plans = NULL;
  g_autoptr (GArray) ranked = NULL;

  fixture_init (&f);
  for (guint i = 0; i < f.histories->len; i++)
    {
      CanopyDeviceHistory *h = g_ptr_array_index (f.histories, i);
      if (strcmp (h->office, "North") == 0 || strcmp (h->office, "Central Office") == 0)
        h->online = FALSE;
    }
  ranked = canopy_ranking_rank (f.histories, 100 * DAY);
  plans = canopy_planner_plan (f.topology, ranked, &options);
  assert_plan (plans, "w1", CANOPY_ROLE_LEAD, "office-peer:w2 server origin");
  CU_ASSERT_EQUAL (find (plans, "n-best")->role, CANOPY_ROLE_WAIT);
  fixture_clear (&f);
}

CANOPY_TEST_SUITE (planner, "planner", NULL, NULL,
                   { "one lead per office", test_one_lead_per_office },
                   { "holder from another deployment", test_holder_from_another_deployment },
                   { "holder of an earlier version", test_holder_of_an_earlier_version },
                   { "failover, no content store", test_failover_and_no_store },
                   { "office without an online device", test_office_without_online_device },
                   { "parent office away", test_parent_office_away })
