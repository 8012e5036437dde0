/* Preferred devices. The score weighs availability more than serving
 * history, because a lead that is gone half the time stalls its office;
 * serving verified chunks shows its LAN link and disk are good. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-ranking"

#include "lib/ranking.h"
#include "lib/i18n.h"

#include <math.h>
#include <string.h>

#define AVAILABILITY_WEIGHT 0.6
#define SERVING_WEIGHT 0.4
/* Serving this much verified data to peers counts as a full serving score. */
#define SERVING_FULL_BYTES (64.0 * 1024 * 1024 * 1024)
/* Each chunk peers rejected costs this much score. */
#define BAD_CHUNK_PENALTY 0.05

void
canopy_ranked_device_clear (CanopyRankedDevice *ranked)
{
  g_clear_pointer (&ranked->explanation, g_free);
}

static double
availability_of (const CanopyDeviceHistory *h, gint64 now)
{
  gint64 known = now - h->first_seen;

  if (known <= 0)
    return h->online ? 1.0 : 0.0;
  return CLAMP ((double) h->online_us / (double) known, 0.0, 1.0);
}

/* Logarithmic: the first gigabytes served say much, the hundredth little. */
static double
serving_of (const CanopyDeviceHistory *h)
{
  return CLAMP (log1p ((double) h->verified_bytes_served) / log1p (SERVING_FULL_BYTES), 0.0, 1.0);
}

static char *
explain (const CanopyRankedDevice *r, gint64 now)
{
  const CanopyDeviceHistory *h = r->history;
  gint64 minutes = MAX (now - h->first_seen, 0) / G_USEC_PER_SEC / 60;
  g_autofree char *served = g_format_size_full (h->verified_bytes_served,
                                                G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *since = NULL;
  g_autofree char *peers = NULL;
  g_autofree char *rejected = NULL;

  /* "the 0.0 days since it enrolled" told an admin nothing: minutes,
   * hours or days, whichever reads best. */
  if (minutes < 120)
    since = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "the %u minute since it enrolled",
                                          "the %u minutes since it enrolled", (gulong) minutes),
                             (guint) minutes);
  else if (minutes < 48 * 60)
    since = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "the %u hour since it enrolled",
                                          "the %u hours since it enrolled",
                                          (gulong) (minutes / 60)),
                             (guint) (minutes / 60));
  else
    since = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "the %u day since it enrolled",
                                          "the %u days since it enrolled",
                                          (gulong) (minutes / 1440)),
                             (guint) (minutes / 1440));
  peers = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "to %u peer of its subnet",
                                        "to %u peers of its subnet", h->peers_served),
                           h->peers_served);
  rejected = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u chunk rejected by peers",
                                           "%u chunks rejected by peers", h->bad_chunks_served),
                              h->bad_chunks_served);
  return g_strdup_printf (_("rank %u in office \"%s\" (score %.2f): available %.0f%% of %s; "
                            "served %s of verified chunks %s; %s; %s now"),
                          r->rank, h->office, r->score, r->availability * 100.0, since, served,
                          peers, rejected, h->online ? _("online") : _("offline"));
}

static int
compare_ranked (gconstpointer a, gconstpointer b)
{
  const CanopyRankedDevice *ra = a;
  const CanopyRankedDevice *rb = b;
  int office = strcmp (ra->history->office, rb->history->office);

  if (office != 0)
    return office;
  if (ra->score != rb->score)
    return ra->score > rb->score ? -1 : 1;
  if (ra->history->first_seen != rb->history->first_seen)
    return ra->history->first_seen < rb->history->first_seen ? -1 : 1;
  return strcmp (ra->history->device_id, rb->history->device_id);
}

GArray *
canopy_ranking_rank (GPtrArray *histories, gint64 now)
{
  GArray *ranked = g_array_sized_new (FALSE, TRUE, sizeof (CanopyRankedDevice), histories->len);
  const char *office = NULL;
  guint rank = 0;

  g_array_set_clear_func (ranked, (GDestroyNotify) canopy_ranked_device_clear);
  for (guint i = 0; i < histories->len; i++)
    {
      CanopyRankedDevice r = { g_ptr_array_index (histories, i), 0, 0, 0, 0, NULL };

      r.availability = availability_of (r.history, now);
      r.serving = serving_of (r.history);
      r.score = MAX (0.0, AVAILABILITY_WEIGHT * r.availability + SERVING_WEIGHT * r.serving
                            - BAD_CHUNK_PENALTY * r.history->bad_chunks_served);
      g_array_append_val (ranked, r);
    }
  g_array_sort (ranked, compare_ranked);
  for (guint i = 0; i < ranked->len; i++)
    {
      CanopyRankedDevice *r = &g_array_index (ranked, CanopyRankedDevice, i);

      if (office == NULL || strcmp (office, r->history->office) != 0)
        rank = 0;
      office = r->history->office;
      r->rank = ++rank;
      r->explanation = explain (r, now);
    }
  return ranked;
}

const CanopyRankedDevice *
canopy_ranking_pick_lead (GArray *ranked, const char *office, const char *const *exclude)
{
  for (guint i = 0; i < ranked->len; i++)
    {
      const CanopyRankedDevice *r = &g_array_index (ranked, CanopyRankedDevice, i);

      if (strcmp (r->history->office, office) != 0 || !r->history->online)
        continue;
      if (exclude != NULL && g_strv_contains (exclude, r->history->device_id))
        continue;
      return r;
    }
  return NULL;
}
