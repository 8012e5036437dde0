/* Distribution planning. Only an office's lead crosses the WAN, trying
 * the parent office's peers first (their LAN or a nearer link), then the
 * server's store, then the origin; everyone else waits for chunks the
 * office already verified. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-planner"

#include "lib/planner.h"
#include "lib/i18n.h"

#include <string.h>

void
canopy_plan_free (CanopyPlan *plan)
{
  if (plan == NULL)
    return;
  g_array_unref (plan->sources);
  g_free (plan->reason);
  g_free (plan);
}

const char *
canopy_role_to_string (CanopyRole role)
{
  static const char *const names[] = { "lead", "peer", "direct", "wait" };

  return role <= CANOPY_ROLE_WAIT ? names[role] : "unknown";
}

const char *
canopy_source_kind_to_string (CanopySourceKind kind)
{
  static const char *const names[] = { "office-peer", "parent-peer", "server", "origin" };

  return kind <= CANOPY_SOURCE_ORIGIN ? names[kind] : "unknown";
}

static void
add_source (CanopyPlan *plan, CanopySourceKind kind, const char *device_id)
{
  CanopySource source = { kind, device_id };

  g_array_append_val (plan->sources, source);
}

/* Whether @plan already lists @device_id. */
static gboolean
has_source (const CanopyPlan *plan, const char *device_id)
{
  for (guint i = 0; i < plan->sources->len; i++)
    {
      const CanopySource *source = &g_array_index (plan->sources, CanopySource, i);
      if (source->device_id != NULL && strcmp (source->device_id, device_id) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Online devices of @office other than @except, most preferred first. */
static void
add_peers (CanopyPlan *plan, GArray *ranked, const char *office, CanopySourceKind kind,
           const char *except)
{
  for (guint i = 0; i < ranked->len; i++)
    {
      const CanopyRankedDevice *r = &g_array_index (ranked, CanopyRankedDevice, i);

      if (r->history->online && strcmp (r->history->office, office) == 0
          && (except == NULL || strcmp (r->history->device_id, except) != 0)
          && !has_source (plan, r->history->device_id))
        add_source (plan, kind, r->history->device_id);
    }
}

/* Holders of the whole content in @office other than @except, as office
 * peers; returns how many. */
static guint
add_holders (CanopyPlan *plan, const CanopyPlannerOptions *options, const char *office,
             const char *except)
{
  guint added = 0;

  for (guint i = 0; options->holders != NULL && i < options->holders->len; i++)
    {
      const CanopyDeviceHistory *h = g_ptr_array_index (options->holders, i);

      if (h->office != NULL && strcmp (h->office, office) == 0
          && strcmp (h->device_id, except) != 0 && !has_source (plan, h->device_id))
        {
          add_source (plan, CANOPY_SOURCE_OFFICE_PEER, h->device_id);
          added++;
        }
    }
  return added;
}

/* Devices of @office other than @except holding content that shares
 * chunks with this one, as office peers after the others. */
static void
add_related (CanopyPlan *plan, const CanopyPlannerOptions *options, const char *office,
             const char *except)
{
  for (guint i = 0; options->related != NULL && i < options->related->len; i++)
    {
      const CanopyDeviceHistory *h = g_ptr_array_index (options->related, i);

      if (h->office != NULL && strcmp (h->office, office) == 0
          && strcmp (h->device_id, except) != 0 && !has_source (plan, h->device_id))
        add_source (plan, CANOPY_SOURCE_OFFICE_PEER, h->device_id);
    }
}

static gboolean
is_holder (const CanopyPlannerOptions *options, const char *device_id)
{
  for (guint i = 0; options->holders != NULL && i < options->holders->len; i++)
    if (strcmp (((const CanopyDeviceHistory *) g_ptr_array_index (options->holders, i))->device_id,
                device_id)
        == 0)
      return TRUE;
  return FALSE;
}

static CanopyPlan *
plan_new (const CanopyRankedDevice *r)
{
  CanopyPlan *plan = g_new0 (CanopyPlan, 1);

  plan->device_id = r->history->device_id;
  plan->office = r->history->office[0] != '\0' ? r->history->office : NULL;
  plan->sources = g_array_new (FALSE, FALSE, sizeof (CanopySource));
  return plan;
}

/* The office's lead from before, if it may go on leading. */
static const CanopyRankedDevice *
current_lead (GArray *ranked, const char *office, const CanopyPlannerOptions *options)
{
  if (options->leads == NULL)
    return NULL;
  for (guint i = 0; i < ranked->len; i++)
    {
      const CanopyRankedDevice *r = &g_array_index (ranked, CanopyRankedDevice, i);
      const char *id = r->history->device_id;

      if (r->history->online && strcmp (r->history->office, office) == 0
          && g_strv_contains (options->leads, id)
          && (options->stalled == NULL || !g_strv_contains (options->stalled, id)))
        return r;
    }
  return NULL;
}

/* Whether @office (a parent) brings the content in, or holds it, now: an
 * online holder, or a device that may lead it across its own link. A VPN
 * office shares nothing and a metered one fetches nothing. */
static gboolean
office_supplies (const CanopyTopology *topology, GArray *ranked, const char *name,
                 const CanopyPlannerOptions *options)
{
  const CanopyOffice *office = canopy_topology_lookup (topology, name);

  if (office == NULL || office->type == CANOPY_OFFICE_VPN)
    return FALSE;
  for (guint i = 0; options->holders != NULL && i < options->holders->len; i++)
    {
      const CanopyDeviceHistory *h = g_ptr_array_index (options->holders, i);

      if (h->office != NULL && strcmp (h->office, name) == 0)
        return TRUE;
    }
  if (office->metered)
    return FALSE;
  return current_lead (ranked, name, options) != NULL
         || canopy_ranking_pick_lead (ranked, name, options->stalled) != NULL;
}

/* The lead's sources beyond its office. While its parent office brings
 * the content in or holds it, the lead takes it from there alone, chunk
 * by chunk as the parent verifies them, so the content crosses each link
 * once; only without one does it go to the server or the origin. */
static void
plan_wan (CanopyPlan *plan, const CanopyTopology *topology, GArray *ranked,
          const CanopyOffice *office, const CanopyPlannerOptions *options)
{
  plan->wan_rate = office->wan_rate;
  if (office->parent != NULL)
    {
      add_peers (plan, ranked, office->parent, CANOPY_SOURCE_PARENT_PEER, NULL);
      for (guint i = 0; options->holders != NULL && i < options->holders->len; i++)
        {
          const CanopyDeviceHistory *h = g_ptr_array_index (options->holders, i);

          if (h->office != NULL && strcmp (h->office, office->parent) == 0
              && !has_source (plan, h->device_id))
            add_source (plan, CANOPY_SOURCE_PARENT_PEER, h->device_id);
        }
      if (office_supplies (topology, ranked, office->parent, options))
        {
          plan->parent_supplies = TRUE;
          return;
        }
    }
  if (options->content_store)
    add_source (plan, CANOPY_SOURCE_SERVER, NULL);
  add_source (plan, CANOPY_SOURCE_ORIGIN, NULL);
}

static CanopyPlan *
plan_device (const CanopyTopology *topology, GArray *ranked, const CanopyRankedDevice *r,
             const CanopyPlannerOptions *options)
{
  CanopyPlan *plan = plan_new (r);
  const CanopyOffice *office = plan->office != NULL
                                 ? canopy_topology_lookup (topology, plan->office) : NULL;
  const CanopyRankedDevice *lead;

  if (office == NULL)
    {
      plan->role = CANOPY_ROLE_DIRECT;
      add_source (plan, CANOPY_SOURCE_ORIGIN, NULL);
      plan->reason = g_strdup (_("no-office client: its address is in no office, so it gets "
                                 "no peer-to-peer download and uses the origin"));
      return plan;
    }
  if (office->type == CANOPY_OFFICE_VPN)
    {
      /* Not the content store: its upload slots are for office leads, each
       * of which carries the content for a whole office. */
      plan->role = CANOPY_ROLE_DIRECT;
      add_source (plan, CANOPY_SOURCE_ORIGIN, NULL);
      plan->reason = g_strdup_printf (_("office \"%s\" is a VPN office: peers do not share, "
                                        "each device fetches from the parent side"),
                                      office->name);
      return plan;
    }

  /* A verified copy in the office, from this deployment or another of the
   * same content, is enough: nobody crosses the WAN, and a device that
   * holds the content itself installs it from its cache. */
  if (add_holders (plan, options, office->name, r->history->device_id) > 0
      || is_holder (options, r->history->device_id))
    {
      plan->role = CANOPY_ROLE_PEER;
      add_peers (plan, ranked, office->name, CANOPY_SOURCE_OFFICE_PEER, r->history->device_id);
      add_related (plan, options, office->name, r->history->device_id);
      plan->reason = g_strdup_printf (_("peer in office \"%s\": the office already holds a "
                                        "verified copy of the content, so it crosses no WAN "
                                        "link"), office->name);
      return plan;
    }
  lead = current_lead (ranked, office->name, options);
  if (lead == NULL)
    lead = canopy_ranking_pick_lead (ranked, office->name, options->stalled);
  if (lead == NULL && canopy_ranking_pick_lead (ranked, office->name, NULL) != NULL)
    {
      plan->role = CANOPY_ROLE_WAIT;
      plan->reason = g_strdup_printf (_("every online device of office \"%s\" failed or "
                                        "stalled as its lead; each gets another chance within "
                                        "minutes, or at once on Publish content once the "
                                        "cause (an origin that fails, say) is fixed"),
                                      office->name);
      return plan;
    }
  if (lead == NULL)
    {
      plan->role = CANOPY_ROLE_WAIT;
      plan->reason = g_strdup_printf (_("no device of office \"%s\" can lead now; waiting for "
                                        "one to come online"), office->name);
      return plan;
    }
  if (lead == r)
    {
      if (office->metered)
        {
          plan->role = CANOPY_ROLE_WAIT;
          add_peers (plan, ranked, office->name, CANOPY_SOURCE_OFFICE_PEER, r->history->device_id);
          add_related (plan, options, office->name, r->history->device_id);
          plan->reason = g_strdup_printf (_("office \"%s\" is on a metered link: nothing is "
                                            "downloaded across the WAN"), office->name);
          return plan;
        }
      plan->role = CANOPY_ROLE_LEAD;
      /* Office peers first: what they already verified need not cross the
       * WAN again when a new lead takes over. */
      add_peers (plan, ranked, office->name, CANOPY_SOURCE_OFFICE_PEER, r->history->device_id);
      add_related (plan, options, office->name, r->history->device_id);
      plan_wan (plan, topology, ranked, office, options);
      if (plan->parent_supplies)
        plan->reason = g_strdup_printf (_("lead of office \"%s\": %s; it takes the content "
                                          "from the devices of parent office \"%s\" as they "
                                          "verify it, not from the origin"),
                                        office->name, r->explanation, office->parent);
      else
        plan->reason = g_strdup_printf (_("lead of office \"%s\": %s"), office->name,
                                        r->explanation);
      return plan;
    }
  plan->role = CANOPY_ROLE_PEER;
  add_peers (plan, ranked, office->name, CANOPY_SOURCE_OFFICE_PEER, r->history->device_id);
  add_related (plan, options, office->name, r->history->device_id);
  plan->reason = g_strdup_printf (_("peer in office \"%s\": fetches from office peers as the "
                                    "lead, %s, verifies chunks"),
                                  office->name, lead->history->device_id);
  return plan;
}

GPtrArray *
canopy_planner_plan (const CanopyTopology *topology, GArray *ranked,
                     const CanopyPlannerOptions *options)
{
  GPtrArray *plans = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_plan_free);

  for (guint i = 0; i < ranked->len; i++)
    g_ptr_array_add (plans, plan_device (topology, ranked,
                                         &g_array_index (ranked, CanopyRankedDevice, i),
                                         options));
  return plans;
}
