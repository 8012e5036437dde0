/* Deployments and their distribution. Plans are recomputed whenever the
 * set of online devices changes or a lead stalls; a device is sent an
 * assignment only when its role or sources changed, so replanning is
 * cheap for the devices it does not concern. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-distributor"

#include "server/distributor.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/manifest.h"
#include "lib/planner.h"
#include "lib/ranking.h"

#include <string.h>

G_DEFINE_QUARK (canopy-distributor-error-quark, canopy_distributor_error)

/* A lead that verifies no chunk for this long hands over to the next one. */
#define STALL_S 30
/* On a slow WAN link, a lead has at least the time of this many chunks at
 * its office's rate: it paces its requests to that rate. */
#define STALL_CHUNKS 4
#define N_SOURCE_KINDS CANOPY_SOURCE_N_KINDS
/* A device that failed a deployment, or stalled leading it, is given
 * another chance after this long, doubling up to the maximum, so an
 * office whose only device met a broken origin recovers once it is fixed
 * without anyone hammering it meanwhile. Progress resets the wait. */
#define RETRY_FIRST_S 5
#define RETRY_MAX_S 300
/* How often the clock is checked for windows and bandwidth schedules. */
#define CLOCK_TICK_MS 250
/* A background lead reports each second; older than this, it stopped. */
#define PACING_FRESH_US (5 * G_USEC_PER_SEC)

/* When a device that failed or stalled gets its next chance. */
typedef struct {
  gint64 at;     /* monotonic µs; 0: none pending */
  guint delay_s; /* the last wait, doubled at the next failure */
} Retry;

/* A device said it cannot complete a deployment (a full disk, say). */
typedef struct {
  gint64 at; /* monotonic µs */
  char *deployment_id;
  char *reason;
} DeviceFailure;

static void
device_failure_free (DeviceFailure *failure)
{
  g_free (failure->deployment_id);
  g_free (failure->reason);
  g_free (failure);
}

typedef struct {
  guint32 chunks;
  guint64 bytes[N_SOURCE_KINDS];    /* every byte the device took, by source kind */
  guint64 reported[N_SOURCE_KINDS]; /* the agent's own count, as last reported */
  gboolean done;
  gint64 last_change;   /* monotonic µs */
  gint64 allowance_us;  /* as lead: how long it may verify nothing */
  /* What the device status shows (not stored: a restart starts afresh). */
  int role;             /* the CanopyRole last sent, -1 before the first */
  GStrv sources;        /* device IDs, "server" or "origin", as last sent */
  char *error;          /* (nullable) the last failure it reported */
  gboolean refused;     /* that failure was its policy refusing the deployment */
  gint64 last_report;   /* real µs of its last report; 0: none in this run */
  /* As a background lead, what it last reported: rate (bits/s), queueing
   * and base delay (µs, -1: not measured yet), when (monotonic µs; 0: never) */
  guint64 pacing_rate;
  gint64 queueing_us;
  gint64 base_us;
  gint64 pacing_at;
} DeviceProgress;

static void
device_progress_free (DeviceProgress *p)
{
  g_strfreev (p->sources);
  g_free (p->error);
  g_free (p);
}

typedef struct {
  char *id;
  char *content_id;
  GStrv groups;
  char *destination;
  CanopyDeploymentState state;
  gint64 created_at;
  CanopyDeploymentTiming timing;
  char *gate;           /* the offices content may move in, at the last check */
  gboolean background;  /* every office's lead in the background WAN class */
  GHashTable *progress; /* device ID → DeviceProgress */
  GHashTable *sent;     /* device ID → what its last assignment said */
  GHashTable *leads;    /* office → device ID of its lead */
  GHashTable *wants;    /* offices the last plan would lead here (cluster), set */
  GHashTable *stalled;  /* device IDs that stalled as lead */
  GHashTable *reported; /* device IDs peers reported for bad or withheld chunks */
  GHashTable *served;   /* "sender\nreceiver" pairs seen, for peers served */
  GHashTable *withdrawn; /* device ID → Withdrawal, once cancelled or removed */
  GHashTable *retries;  /* device ID → Retry, since it failed or stalled */
  gboolean summarized;  /* its summary was logged in this run, or it was over when loaded */
  GHashTable *uninstalls; /* device ID → Uninstall, once retired */
} Deployment;

/* What a device did when asked to remove a retired deployment's package. */
typedef struct {
  int what;      /* a CanopyWireUninstalled, or -1 while not answered */
  char *message; /* its sentence */
} Uninstall;

static void
uninstall_free (Uninstall *u)
{
  g_free (u->message);
  g_free (u);
}

/* Where a device stands with a withdrawn deployment. */
typedef enum {
  WITHDRAW_PENDING = 1, /* not told yet, or no answer yet */
  WITHDRAW_NOTHING,
  WITHDRAW_STOPPED,
  WITHDRAW_INSTALLED,
} Withdrawal;

typedef struct {
  char *device_id;
  char *office;
  GStrv groups;
  char *host;
  guint16 port;
} OnlineDevice;

struct _CanopyDistributor {
  CanopyStore *store;
  CanopyCatalog *catalog;
  CanopyTopology *topology;
  CanopySessions *sessions;
  CanopyContentStore *content_store; /* (nullable) */
  GHashTable *deployments; /* ID → Deployment */
  /* ID → Deployment removed in this run, until every device it was sent
   * to has stopped it */
  GHashTable *removed;
  GHashTable *online;      /* device ID → OnlineDevice */
  GHashTable *reported_at; /* device ID → monotonic µs its peers last reported it */
  /* "ID\nID" of two contents (the lesser first) → 1 when they share no
   * chunk, 2 when they do: a content's chunks never change */
  GHashTable *related;
  GHashTable *lost_at;     /* device ID → monotonic µs it stopped answering */
  GHashTable *failures;    /* device ID → DeviceFailure, until it progresses again */
  guint stall_timer;
  guint retry_timer;
  guint clock_timer;
  char *rates;             /* each office's WAN rate at the last check */
  guint background_target_ms;
  /* (nullable) in a cluster: who may lead which office */
  const CanopyDistributorLeadGate *gate;
  gpointer gate_data;
  GHashTable *remote; /* device ID → OnlineDevice: leads on other servers */
  /* (cluster) IDs of the deployments seen in the database: one of them
   * missing from it later was removed by another server, while one made
   * here and never seen there may only be unwritten yet */
  GHashTable *seen_stored;
};

static void
deployment_free (Deployment *d)
{
  g_free (d->id);
  g_free (d->content_id);
  g_strfreev (d->groups);
  g_free (d->destination);
  g_free (d->gate);
  g_hash_table_unref (d->progress);
  g_hash_table_unref (d->sent);
  g_hash_table_unref (d->leads);
  g_hash_table_unref (d->wants);
  g_hash_table_unref (d->stalled);
  g_hash_table_unref (d->reported);
  g_hash_table_unref (d->served);
  g_hash_table_unref (d->withdrawn);
  g_hash_table_unref (d->retries);
  g_hash_table_unref (d->uninstalls);
  g_free (d);
}

static GHashTable *
new_lead_table (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static Deployment *
deployment_new (const char *id, const char *content_id, const char *const *groups,
                const char *destination, CanopyDeploymentState state, gint64 created_at,
                gboolean background)
{
  Deployment *d = g_new0 (Deployment, 1);

  d->background = background;
  d->id = g_strdup (id);
  d->content_id = g_strdup (content_id);
  d->groups = g_strdupv ((char **) groups);
  d->destination = g_strdup (destination);
  d->state = state;
  d->created_at = created_at;
  d->progress = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) device_progress_free);
  d->sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  d->leads = new_lead_table ();
  d->wants = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->stalled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->reported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->served = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->withdrawn = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->retries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  d->uninstalls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) uninstall_free);
  return d;
}

static void
online_device_free (OnlineDevice *device)
{
  g_free (device->device_id);
  g_free (device->office);
  g_strfreev (device->groups);
  g_free (device->host);
  g_free (device);
}

void
canopy_office_progress_free (CanopyOfficeProgress *progress)
{
  g_free (progress->office);
  g_free (progress->lead);
  g_free (progress);
}

void
canopy_device_outcome_free (CanopyDeviceOutcome *outcome)
{
  g_free (outcome->device_id);
  g_free (outcome->message);
  g_free (outcome);
}

void
canopy_deployment_info_free (CanopyDeploymentInfo *info)
{
  g_free (info->id);
  g_free (info->content_id);
  g_strfreev (info->groups);
  g_free (info->destination);
  g_free (info);
}

static void
record_deployment (CanopyDistributor *distributor, const Deployment *d)
{
  canopy_store_put (distributor->store, CANOPY_RECORD_DEPLOYMENT, d->id,
                    g_variant_new ("(s^assuxxxuub)", d->content_id, d->groups, d->destination,
                                   (guint32) d->state, d->created_at, d->timing.start_at,
                                   d->timing.deadline, (guint32) d->timing.window_start,
                                   (guint32) d->timing.window_end, d->background));
}

static void
record_progress (CanopyDistributor *distributor, const Deployment *d, const char *device_id,
                 const DeviceProgress *p)
{
  g_autofree char *key = g_strdup_printf ("%s/%s", d->id, device_id);

  canopy_store_put (distributor->store, CANOPY_RECORD_PROGRESS, key,
                    g_variant_new ("(u@atb)", p->chunks,
                                   g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, p->bytes,
                                                              N_SOURCE_KINDS, sizeof (guint64)),
                                   p->done));
}

static DeviceProgress *
progress_of (Deployment *d, const char *device_id)
{
  DeviceProgress *p = g_hash_table_lookup (d->progress, device_id);

  if (p == NULL)
    {
      p = g_new0 (DeviceProgress, 1);
      p->last_change = g_get_monotonic_time ();
      p->allowance_us = STALL_S * G_USEC_PER_SEC;
      p->role = -1;
      g_hash_table_insert (d->progress, g_strdup (device_id), p);
    }
  return p;
}

static gboolean
in_groups (const Deployment *d, const char *const *groups)
{
  for (guint i = 0; groups != NULL && groups[i] != NULL; i++)
    if (g_strv_contains ((const char *const *) d->groups, groups[i]))
      return TRUE;
  return FALSE;
}

/* --- planning ------------------------------------------------------------ */

/* What the ranking needs of a device, from its stored record. */
static void
fill_history (CanopyDistributor *distributor, const OnlineDevice *device, CanopyDeviceHistory *h)
{
  GVariant *stored = canopy_store_get_device (distributor->store, device->device_id);

  memset (h, 0, sizeof *h);
  h->first_seen = g_get_real_time ();
  if (stored != NULL)
    canopy_store_device_history (stored, h);
  h->device_id = device->device_id;
  /* Where it is now, which may differ from the office last recorded. */
  h->office = device->office;
  h->online = TRUE;
}

static GVariant *
sources_variant (CanopyDistributor *distributor, const CanopyContent *content,
                 const CanopyPlan *plan)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ussq)"));
  for (guint i = 0; i < plan->sources->len; i++)
    {
      const CanopySource *source = &g_array_index (plan->sources, CanopySource, i);
      const OnlineDevice *peer;

      switch (source->kind)
        {
        case CANOPY_SOURCE_OFFICE_PEER:
        case CANOPY_SOURCE_PARENT_PEER:
          peer = g_hash_table_lookup (distributor->online, source->device_id);
          if (peer == NULL && distributor->remote != NULL)
            peer = g_hash_table_lookup (distributor->remote, source->device_id);
          if (peer != NULL && peer->port != 0)
            g_variant_builder_add (&builder, "(ussq)", (guint32) source->kind, peer->device_id,
                                   peer->host, peer->port);
          break;
        case CANOPY_SOURCE_ORIGIN:
          g_variant_builder_add (&builder, "(ussq)", (guint32) source->kind, "",
                                 content->location, (guint16) 0);
          break;
        case CANOPY_SOURCE_SERVER:
          /* The agent reaches the server where it already does: no host. */
          g_variant_builder_add (&builder, "(ussq)", (guint32) source->kind,
                                 canopy_content_store_get_server_id (distributor->content_store),
                                 "", (guint16) 0);
          break;
        case CANOPY_SOURCE_EARLIER_VERSIONS:
          /* Not a place to fetch from: agents look in their own cache. */
          break;
        }
    }
  return g_variant_builder_end (&builder);
}

/* The sources of an assignment as the device status names them. */
static GStrv
source_names (GVariant *sources)
{
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  GVariantIter iter;
  const char *device_id;
  guint32 kind;

  g_variant_iter_init (&iter, sources);
  while (g_variant_iter_next (&iter, "(u&s&sq)", &kind, &device_id, NULL, NULL))
    g_strv_builder_add (names, kind == CANOPY_SOURCE_SERVER   ? "server"
                               : kind == CANOPY_SOURCE_ORIGIN ? "origin"
                                                              : device_id);
  return g_strv_builder_end (names);
}

/* Whether @office's lead crosses the WAN in the background class: the
 * deployment asks for it, or the office does in the topology. */
static gboolean
is_background (CanopyDistributor *distributor, const Deployment *d, const char *office)
{
  const CanopyOffice *o = office != NULL ? canopy_topology_lookup (distributor->topology, office)
                                         : NULL;

  return d->background || (o != NULL && o->background);
}

static void
assign (CanopyDistributor *distributor, Deployment *d, const CanopyContent *content,
        const CanopyPlan *plan)
{
  g_autoptr (GVariant) sources = g_variant_ref_sink (sources_variant (distributor, content,
                                                                      plan));
  g_autofree char *sources_text = g_variant_print (sources, FALSE);
  gboolean background = is_background (distributor, d, plan->office);
  g_autofree char *said = g_strdup_printf ("%u %" G_GUINT64_FORMAT " %s %d", plan->role,
                                           plan->wan_rate, sources_text, background);

  if (g_strcmp0 (g_hash_table_lookup (d->sent, plan->device_id), said) == 0)
    return;
  g_debug ("deployment %s: %s is %s (%s)", d->id, plan->device_id,
           canopy_role_to_string (plan->role), plan->reason);
  /* The manifest travels as the payload: a frame is at most 64 KiB, and a
   * package of many chunks has a larger manifest. */
  if (canopy_sessions_send_payload (distributor->sessions, plan->device_id,
                                    CANOPY_WIRE_ASSIGNMENT,
                                    g_variant_new ("(s@ayu@a(ussq)st)", d->id,
                                                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                              NULL, 0, 1),
                                                   (guint32) plan->role, sources, d->destination,
                                                   plan->wan_rate),
                                    content->manifest))
    {
      DeviceProgress *p;

      /* Right after the assignment, before the agent's first request. */
      canopy_sessions_send (distributor->sessions, plan->device_id, CANOPY_WIRE_WAN_CLASS,
                            g_variant_new ("(sbu)", d->id, background,
                                           distributor->background_target_ms));
      g_hash_table_insert (d->sent, g_strdup (plan->device_id), g_steal_pointer (&said));
      /* From now on it counts among the deployment's devices. */
      p = progress_of (d, plan->device_id);
      p->role = (int) plan->role;
      g_strfreev (p->sources);
      p->sources = source_names (sources);
    }
}

/* Records @plan's device as its office's lead; @before holds the leads of
 * the previous plan. */
static void
note_lead (Deployment *d, const CanopyContent *content, GHashTable *before,
           const CanopyPlan *plan)
{
  const char *previous;
  DeviceProgress *p;

  if (plan->role != CANOPY_ROLE_LEAD || plan->office == NULL)
    return;
  g_hash_table_insert (d->leads, g_strdup (plan->office), g_strdup (plan->device_id));
  previous = g_hash_table_lookup (before, plan->office);
  if (g_strcmp0 (previous, plan->device_id) == 0)
    return;
  if (previous != NULL)
    {
      CanopyLogSubject subject = { d->id, d->content_id, plan->device_id, plan->office };

      canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_LEAD_CHANGED, &subject,
                        _("Deployment %s: device %s now leads office \"%s\" in place of %s, "
                          "from what the office already holds"),
                        d->id, plan->device_id, plan->office, previous);
    }
  /* A new lead gets its full stall allowance; on a WAN link too slow to
   * bring a few chunks within it, enough for those. */
  p = progress_of (d, plan->device_id);
  p->last_change = g_get_monotonic_time ();
  p->allowance_us = canopy_link_allowance (
    STALL_S * G_USEC_PER_SEC, content->n_chunks > 0 ? content->size / content->n_chunks : 0,
    plan->wan_rate, STALL_CHUNKS);
}

/* Whether @device_id verified the whole of @content_id in any deployment
 * of @table. */
static gboolean
holds_content_in (GHashTable *table, const char *content_id, const char *device_id)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Deployment *other = value;
      const DeviceProgress *p;

      if (!g_str_equal (other->content_id, content_id))
        continue;
      p = g_hash_table_lookup (other->progress, device_id);
      if (p != NULL && p->done)
        return TRUE;
    }
  return FALSE;
}

/* Whether @device_id verified the whole of @content_id in any deployment,
 * removed ones included. */
static gboolean
holds_content (CanopyDistributor *distributor, const char *content_id, const char *device_id)
{
  return holds_content_in (distributor->deployments, content_id, device_id)
         || holds_content_in (distributor->removed, content_id, device_id);
}

/* Whether contents @a and @b have a chunk of the same SHA-256, as two
 * versions of a package do, so that a device holding one serves chunks
 * of the other by hash. */
static gboolean
contents_related (CanopyDistributor *distributor, const char *a, const char *b)
{
  g_autofree char *key = strcmp (a, b) < 0 ? g_strconcat (a, "\n", b, NULL)
                                            : g_strconcat (b, "\n", a, NULL);
  gpointer known = g_hash_table_lookup (distributor->related, key);
  const CanopyContent *ca, *cb;
  g_autoptr (CanopyManifest) ma = NULL, mb = NULL;
  g_autoptr (GHashTable) hashes = NULL;
  gboolean shared = FALSE;

  if (known != NULL)
    return GPOINTER_TO_INT (known) == 2;
  ca = canopy_catalog_lookup (distributor->catalog, a);
  cb = canopy_catalog_lookup (distributor->catalog, b);
  if (ca == NULL || cb == NULL
      || (ma = canopy_manifest_parse (ca->manifest, NULL, NULL)) == NULL
      || (mb = canopy_manifest_parse (cb->manifest, NULL, NULL)) == NULL)
    return FALSE;
  hashes = g_hash_table_new_full (g_bytes_hash, g_bytes_equal, (GDestroyNotify) g_bytes_unref,
                                  NULL);
  for (guint i = 0; i < canopy_manifest_get_n_chunks (ma); i++)
    g_hash_table_add (hashes, g_bytes_new (canopy_manifest_get_chunk_hash (ma, i),
                                           CANOPY_MANIFEST_HASH_SIZE));
  for (guint i = 0; !shared && i < canopy_manifest_get_n_chunks (mb); i++)
    {
      g_autoptr (GBytes) hash = g_bytes_new (canopy_manifest_get_chunk_hash (mb, i),
                                             CANOPY_MANIFEST_HASH_SIZE);
      shared = g_hash_table_contains (hashes, hash);
    }
  g_hash_table_insert (distributor->related, g_steal_pointer (&key),
                       GINT_TO_POINTER (shared ? 2 : 1));
  return shared;
}

/* Whether @device_id verified the whole of a content other than @d's,
 * in a deployment of @table, that shares chunks with @d's. */
static gboolean
holds_related_in (CanopyDistributor *distributor, GHashTable *table, const Deployment *d,
                  const char *device_id)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Deployment *other = value;
      const DeviceProgress *p;

      if (g_str_equal (other->content_id, d->content_id))
        continue;
      p = g_hash_table_lookup (other->progress, device_id);
      if (p != NULL && p->done && contents_related (distributor, other->content_id, d->content_id))
        return TRUE;
    }
  return FALSE;
}

/* Whether @device_id verified the whole of @d's content. */
static gboolean
holds_deployed (CanopyDistributor *distributor, const Deployment *d, const char *device_id)
{
  return holds_content (distributor, d->content_id, device_id);
}

/* Whether @device_id does not hold @d's content but holds one that shares
 * chunks with it (an earlier version): its office peers take those chunks
 * from it by hash. */
static gboolean
holds_only_related (CanopyDistributor *distributor, const Deployment *d, const char *device_id)
{
  return !holds_content (distributor, d->content_id, device_id)
         && (holds_related_in (distributor, distributor->deployments, d, device_id)
             || holds_related_in (distributor, distributor->removed, d, device_id));
}

/* Online devices, in the deployment's groups or not, that serve their
 * office and of which @holds is true. */
static GArray *
find_sources (CanopyDistributor *distributor, const Deployment *d,
              gboolean (*holds) (CanopyDistributor *, const Deployment *, const char *))
{
  GArray *sources = g_array_new (FALSE, FALSE, sizeof (CanopyDeviceHistory));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, distributor->online);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const OnlineDevice *device = value;
      CanopyDeviceHistory h;

      /* A device its peers reported for bad or withheld chunks is no one's
       * source, whatever it claims to hold. */
      if (device->port == 0 || device->office == NULL || device->office[0] == '\0'
          || g_hash_table_contains (d->reported, device->device_id)
          || g_hash_table_contains (distributor->reported_at, device->device_id)
          || !holds (distributor, d, device->device_id))
        continue;
      fill_history (distributor, device, &h);
      g_array_append_val (sources, h);
    }
  return sources;
}

/* Whether content of @d may move in @office_name at @now: after its
 * start, and inside its daily window in the office's local time unless
 * its deadline has passed. */
static gboolean
may_move (CanopyDistributor *distributor, const Deployment *d, const char *office_name,
          gint64 now)
{
  const CanopyDeploymentTiming *t = &d->timing;
  const CanopyOffice *office;
  guint minute;

  if (t->start_at > 0 && now < t->start_at)
    return FALSE;
  if (t->deadline > 0 && now >= t->deadline)
    return TRUE;
  if (t->window_start == t->window_end)
    return TRUE;
  office = office_name != NULL && office_name[0] != '\0'
             ? canopy_topology_lookup (distributor->topology, office_name)
             : NULL;
  minute = office != NULL ? canopy_office_local_minute (office, now)
                          : (guint) ((now / G_USEC_PER_SEC / 60) % 1440);
  return canopy_minute_in_period (minute, t->window_start, t->window_end);
}

/* The clock's say in @plan: outside its deployment's time, a device
 * waits; a lead's WAN rate is its office's at this time of day. */
static void
apply_clock (CanopyDistributor *distributor, const Deployment *d, CanopyPlan *plan, gint64 now)
{
  const CanopyOffice *office = plan->office != NULL
                                 ? canopy_topology_lookup (distributor->topology, plan->office)
                                 : NULL;

  if (!may_move (distributor, d, plan->office, now))
    {
      plan->role = CANOPY_ROLE_WAIT;
      g_array_set_size (plan->sources, 0);
      plan->wan_rate = 0;
      return;
    }
  if (office != NULL && (plan->role == CANOPY_ROLE_LEAD || plan->role == CANOPY_ROLE_DIRECT)
      && plan->wan_rate == office->wan_rate)
    plan->wan_rate = canopy_office_rate_at (office, now);
}

static void gate_plan (CanopyDistributor *distributor, Deployment *d, CanopyPlan *plan);
static void publish_leads (CanopyDistributor *distributor);
static gboolean load_deployment (const char *key, GVariant *value, gpointer user_data);

static void
replan (CanopyDistributor *distributor, Deployment *d)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  g_autoptr (GArray) histories = NULL;
  g_autoptr (GPtrArray) history_ptrs = g_ptr_array_new ();
  g_autoptr (GPtrArray) stalled = g_ptr_array_new ();
  g_autoptr (GPtrArray) leads = g_ptr_array_new ();
  g_autoptr (GHashTable) before = NULL;
  g_autoptr (GArray) ranked = NULL;
  g_autoptr (GPtrArray) plans = NULL;
  g_autoptr (GArray) holders = NULL;
  g_autoptr (GPtrArray) holder_ptrs = g_ptr_array_new ();
  g_autoptr (GArray) related = NULL;
  g_autoptr (GPtrArray) related_ptrs = g_ptr_array_new ();
  CanopyPlannerOptions options = { FALSE, NULL };
  GHashTableIter iter;
  gpointer value;

  if (content == NULL || d->state != CANOPY_DEPLOYMENT_ACTIVE)
    return;
  options.content_store = distributor->content_store != NULL
                          && canopy_content_store_holds (distributor->content_store, d->content_id);
  histories = g_array_sized_new (FALSE, FALSE, sizeof (CanopyDeviceHistory),
                                 g_hash_table_size (distributor->online));
  g_hash_table_iter_init (&iter, distributor->online);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const OnlineDevice *device = value;
      CanopyDeviceHistory h;

      if (!in_groups (d, (const char *const *) device->groups))
        continue;
      fill_history (distributor, device, &h);
      g_array_append_val (histories, h);
    }
  /* The array is not resized from here on: pointers into it stay valid. */
  for (guint i = 0; i < histories->len; i++)
    g_ptr_array_add (history_ptrs, &g_array_index (histories, CanopyDeviceHistory, i));
  g_hash_table_iter_init (&iter, d->stalled);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    g_ptr_array_add (stalled, value);
  /* Whatever progress a reported device claims, its office cannot take
   * the content from it: it is passed over as a lead for good. */
  g_hash_table_iter_init (&iter, d->reported);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    g_ptr_array_add (stalled, value);
  g_ptr_array_add (stalled, NULL);
  options.stalled = (const char *const *) stalled->pdata;
  g_hash_table_iter_init (&iter, d->leads);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (leads, value);
  g_ptr_array_add (leads, NULL);
  options.leads = (const char *const *) leads->pdata;
  holders = find_sources (distributor, d, holds_deployed);
  for (guint i = 0; i < holders->len; i++)
    g_ptr_array_add (holder_ptrs, &g_array_index (holders, CanopyDeviceHistory, i));
  options.holders = holder_ptrs;
  related = find_sources (distributor, d, holds_only_related);
  for (guint i = 0; i < related->len; i++)
    g_ptr_array_add (related_ptrs, &g_array_index (related, CanopyDeviceHistory, i));
  options.related = related_ptrs;
  ranked = canopy_ranking_rank (history_ptrs, g_get_real_time ());
  plans = canopy_planner_plan (distributor->topology, ranked, &options);
  before = g_steal_pointer (&d->leads);
  d->leads = new_lead_table ();
  g_hash_table_remove_all (d->wants);
  for (guint i = 0; i < plans->len; i++)
    {
      CanopyPlan *plan = g_ptr_array_index (plans, i);
      DeviceProgress *p = g_hash_table_lookup (d->progress, plan->device_id);

      apply_clock (distributor, d, plan, g_get_real_time ());
      gate_plan (distributor, d, plan);
      note_lead (d, content, before, plan);
      if (p == NULL || !p->done)
        assign (distributor, d, content, plan);
    }
  publish_leads (distributor);
}

static void
replan_all (CanopyDistributor *distributor)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    replan (distributor, value);
}

/* --- what agents report -------------------------------------------------- */

static void
credit_sender (CanopyDistributor *distributor, Deployment *d, const char *sender,
               const char *receiver, guint64 bytes, guint32 bad)
{
  GVariant *stored = canopy_store_get_device (distributor->store, sender);
  g_autofree char *pair = g_strdup_printf ("%s\n%s", sender, receiver);
  g_autoptr (GVariant) groups = NULL, addresses = NULL;
  const char *name, *version, *office;
  gint64 first_seen, last_seen, online;
  guint64 served;
  guint32 peers, rejected;

  if (stored == NULL)
    return;
  g_variant_get (stored, "(&s@as@a(sy)&s&sxxxtuu)", &name, &groups, &addresses, &version,
                 &office, &first_seen, &last_seen, &online, &served, &peers, &rejected);
  if (bytes > 0 && g_hash_table_add (d->served, g_steal_pointer (&pair)))
    peers++;
  canopy_store_put (distributor->store, CANOPY_RECORD_DEVICE, sender,
                    g_variant_new ("(s@as@a(sy)ssxxxtuu)", name, groups, addresses, version,
                                   office, first_seen, last_seen, online, served + bytes, peers,
                                   rejected + bad));
}

/* What a sender of chunks is: the server's store, or a device. */
static CanopySourceKind
sender_kind (CanopyDistributor *distributor, const char *sender)
{
  return distributor->content_store != NULL
             && g_str_equal (sender, canopy_content_store_get_server_id (distributor->content_store))
           ? CANOPY_SOURCE_SERVER
           : CANOPY_SOURCE_OFFICE_PEER;
}

/* Whether @device_id leads an office in @d now. */
static gboolean
is_lead (const Deployment *d, const char *device_id)
{
  GHashTableIter iter;
  gpointer lead;

  g_hash_table_iter_init (&iter, d->leads);
  while (g_hash_table_iter_next (&iter, NULL, &lead))
    if (g_str_equal (lead, device_id))
      return TRUE;
  return FALSE;
}

/* Notes in @table that @device_id had something happen now. */
static void
note_now (GHashTable *table, const char *device_id)
{
  gint64 *at = g_new (gint64, 1);

  *at = g_get_monotonic_time ();
  g_hash_table_insert (table, g_strdup (device_id), at);
}

/* @sender's peers dropped it; returns whether the plan must change. */
static gboolean
note_reported (CanopyDistributor *distributor, Deployment *d, const char *sender,
               const char *receiver, guint32 bad)
{
  CanopyLogSubject subject = { d->id, d->content_id, sender, NULL };

  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, CANOPY_LOG_DEVICE_REPORTED, &subject,
                    g_dngettext (GETTEXT_PACKAGE,
                                 "Device %s sent %u chunk of deployment %s that failed "
                                 "verification at %s, or announced it and withheld it; %s "
                                 "fetches it elsewhere. Check that device: its cache or disk "
                                 "may be damaged, or it was tampered with",
                                 "Device %s sent %u chunks of deployment %s that failed "
                                 "verification at %s, or announced them and withheld them; %s "
                                 "fetches them elsewhere. Check that device: its cache or disk "
                                 "may be damaged, or it was tampered with",
                                 bad),
                    sender, bad, d->id, receiver, receiver);
  note_now (distributor->reported_at, sender);
  return g_hash_table_add (d->reported, g_strdup (sender)) && is_lead (d, sender);
}

/* Returns the lead that @receiver reported, if any, so the plan must
 * change; NULL otherwise. */
static char *
record_transfers (CanopyDistributor *distributor, Deployment *d, const char *receiver,
                  GVariant *peers, guint32 chunk_size)
{
  char *reported_lead = NULL;
  GVariantIter iter;
  const char *sender;
  guint64 bytes;
  guint32 bad;
  gint64 now = g_get_real_time ();

  g_variant_iter_init (&iter, peers);
  while (g_variant_iter_next (&iter, "(&stu)", &sender, &bytes, &bad))
    {
      guint32 kind = sender_kind (distributor, sender);

      if (bytes > 0)
        canopy_store_append (distributor->store, CANOPY_LOG_TRANSFER,
                             g_variant_new ("(xsssuutb)", now, d->content_id, sender, receiver,
                                            kind,
                                            (guint32) ((bytes + chunk_size - 1) / chunk_size),
                                            bytes, TRUE));
      if (bad > 0)
        {
          if (note_reported (distributor, d, sender, receiver, bad) && reported_lead == NULL)
            reported_lead = g_strdup (sender);
          canopy_store_append (distributor->store, CANOPY_LOG_TRANSFER,
                               g_variant_new ("(xsssuutb)", now, d->content_id, sender, receiver,
                                              kind, bad,
                                              (guint64) 0, FALSE));
        }
      credit_sender (distributor, d, sender, receiver, bytes, bad);
    }
  return reported_lead;
}

static guint32
chunk_size_of (CanopyDistributor *distributor, const Deployment *d)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);

  return content != NULL && content->n_chunks > 0
           ? (guint32) ((content->size + content->n_chunks - 1) / content->n_chunks)
           : 1;
}

/* An agent counts bytes per fetch, and a fetch starts again from zero
 * when the agent restarts, or when a device that already finished is
 * assigned the content again after a reconnection (it answers from its
 * cache, taking nothing). A count lower than the last one is such a new
 * start: it adds to what the device took before instead of replacing it. */
static void
add_reported_bytes (DeviceProgress *p, const guint64 *by_kind, gsize n)
{
  for (gsize k = 0; k < MIN (n, N_SOURCE_KINDS); k++)
    {
      p->bytes[k] += by_kind[k] >= p->reported[k] ? by_kind[k] - p->reported[k] : by_kind[k];
      p->reported[k] = by_kind[k];
    }
}

/* @device_id's fetch failed, and the agent dropped it: the fetch of its
 * next chance counts from zero, whether it then takes more or less than
 * this one did, and all of it adds to what the device took. */
static void
forget_reported (Deployment *d, const char *device_id)
{
  DeviceProgress *p = g_hash_table_lookup (d->progress, device_id);

  if (p != NULL)
    memset (p->reported, 0, sizeof p->reported);
}

/* @device_id failed or stalled: it gets another chance later, each time
 * after twice as long as the last. */
static void
schedule_retry (Deployment *d, const char *device_id)
{
  Retry *retry = g_hash_table_lookup (d->retries, device_id);

  if (retry == NULL)
    {
      retry = g_new0 (Retry, 1);
      g_hash_table_insert (d->retries, g_strdup (device_id), retry);
    }
  retry->delay_s = retry->delay_s == 0 ? RETRY_FIRST_S : MIN (retry->delay_s * 2, RETRY_MAX_S);
  retry->at = g_get_monotonic_time () + (gint64) retry->delay_s * G_USEC_PER_SEC;
}

static void
handle_pacing (Deployment *d, const char *device_id, GVariant *body)
{
  DeviceProgress *p = g_hash_table_lookup (d->progress, device_id);

  if (p == NULL)
    return;
  g_variant_get (body, "(&stxx)", NULL, &p->pacing_rate, &p->queueing_us, &p->base_us);
  p->pacing_at = g_get_monotonic_time ();
}

static void
handle_progress (CanopyDistributor *distributor, Deployment *d, const char *device_id,
                 GVariant *body)
{
  DeviceProgress *p = progress_of (d, device_id);
  g_autoptr (GVariant) bytes = NULL, peers = NULL;
  g_autofree char *reported_lead = NULL;
  const guint64 *by_kind;
  gsize n;
  guint32 chunks;

  g_variant_get (body, "(&su@at@a(stu))", NULL, &chunks, &bytes, &peers);
  p->last_report = g_get_real_time ();
  by_kind = g_variant_get_fixed_array (bytes, &n, sizeof (guint64));
  if (chunks != p->chunks)
    {
      p->last_change = g_get_monotonic_time ();
      g_hash_table_remove (d->stalled, device_id);
      g_hash_table_remove (d->retries, device_id);
      g_hash_table_remove (distributor->failures, device_id);
    }
  p->chunks = chunks;
  add_reported_bytes (p, by_kind, n);
  record_progress (distributor, d, device_id, p);
  reported_lead = record_transfers (distributor, d, device_id, peers,
                                    chunk_size_of (distributor, d));
  if (reported_lead != NULL)
    {
      /* The lead that was reported, not the device that reported it. */
      g_warning (_("Deployment %s: office peers reported lead %s (reported by %s); handing "
                   "over to the next preferred device"), d->id, reported_lead, device_id);
      replan (distributor, d);
    }
}

static void
note_failure (CanopyDistributor *distributor, const Deployment *d, const char *device_id,
              const char *reason)
{
  DeviceFailure *failure = g_new0 (DeviceFailure, 1);

  failure->at = g_get_monotonic_time ();
  failure->deployment_id = g_strdup (d->id);
  failure->reason = g_strdup (reason);
  g_hash_table_insert (distributor->failures, g_strdup (device_id), failure);
}

/* --- what the admin reads in the log ------------------------------------- */

static char *office_of (CanopyDistributor *distributor, const char *device_id);

/* One line per deployment when it starts: what, to whom, where, by whom. */
static void
log_created (CanopyDistributor *distributor, const Deployment *d, const char *admin)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  g_autofree char *groups = g_strjoinv (", ", d->groups);
  g_autofree char *size = g_format_size_full (content->size, G_FORMAT_SIZE_IEC_UNITS);
  CanopyLogSubject subject = { d->id, d->content_id, NULL, NULL };

  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_DEPLOYMENT_CREATED, &subject,
                    g_dngettext (GETTEXT_PACKAGE,
                                 "Deployment %s created by %s: \"%s\" %s (%s) to group %s, "
                                 "destination %s",
                                 "Deployment %s created by %s: \"%s\" %s (%s) to groups %s, "
                                 "destination %s",
                                 g_strv_length (d->groups)),
                    d->id, admin != NULL ? admin : _("an unnamed administrator"), content->name,
                    content->version, size, groups, d->destination);
}

/* Whether every device @d was sent to is done or said it cannot be. */
static gboolean
deployment_over (CanopyDistributor *distributor, const Deployment *d, guint *done, guint *failed)
{
  GHashTableIter iter;
  gpointer device_id, value;

  *done = *failed = 0;
  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const DeviceFailure *failure = g_hash_table_lookup (distributor->failures, device_id);

      if (((const DeviceProgress *) value)->done)
        (*done)++;
      else if (failure != NULL && g_str_equal (failure->deployment_id, d->id))
        (*failed)++;
      else
        return FALSE;
    }
  return *done + *failed > 0;
}

/* "North: 64.0 MiB for 4 devices, 75% saved; South: ...": what crossed
 * each office's WAN link, against every device fetching on its own. */
static char *
describe_wan (CanopyDistributor *distributor, const Deployment *d, guint64 size)
{
  g_autoptr (GPtrArray) offices = canopy_distributor_get_progress (distributor, d->id);
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; offices != NULL && i < offices->len; i++)
    {
      const CanopyOfficeProgress *o = g_ptr_array_index (offices, i);
      g_autofree char *bytes = g_format_size_full (o->wan_bytes, G_FORMAT_SIZE_IEC_UNITS);
      double alone = (double) size * o->devices;
      int saved = alone > 0 && o->wan_bytes < alone ? (int) (100.0 * (1.0 - o->wan_bytes / alone))
                                                    : 0;

      if (text->len > 0)
        g_string_append (text, "; ");
      g_string_append_printf (text,
                              g_dngettext (GETTEXT_PACKAGE, "%s: %s for %u device, %d%% saved",
                                           "%s: %s for %u devices, %d%% saved", o->devices),
                              o->office[0] != '\0' ? o->office : _("no office"), bytes,
                              o->devices, saved);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* One summary per deployment when its last device is done or failed. */
static void
log_if_finished (CanopyDistributor *distributor, Deployment *d)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  g_autofree char *took = NULL;
  g_autofree char *wan = NULL;
  CanopyLogSubject subject = { d->id, d->content_id, NULL, NULL };
  guint done, failed;

  if (d->summarized || content == NULL || d->state != CANOPY_DEPLOYMENT_ACTIVE
      || !deployment_over (distributor, d, &done, &failed))
    return;
  d->summarized = TRUE;
  took = canopy_log_format_duration (g_get_real_time () - d->created_at);
  wan = describe_wan (distributor, d, content->size);
  canopy_log_event (G_LOG_DOMAIN, failed > 0 ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE,
                    CANOPY_LOG_DEPLOYMENT_FINISHED, &subject,
                    g_dngettext (GETTEXT_PACKAGE,
                                 "Deployment %s of \"%s\" %s finished after %s: %u of %u device "
                                 "done, %u failed; across the WAN: %s",
                                 "Deployment %s of \"%s\" %s finished after %s: %u of %u devices "
                                 "done, %u failed; across the WAN: %s",
                                 done + failed),
                    d->id, content->name, content->version, took, done, done + failed, failed,
                    wan);
}

/* The device status keeps the last failure in the device's words. Its
 * install policy refusing the destination is told apart from a failure:
 * the agent says so before fetching anything, in the words of
 * canopy_install_policy_check(), which all start the same. */
static void
note_device_error (Deployment *d, const char *device_id, const char *reason)
{
  DeviceProgress *p = progress_of (d, device_id);

  g_free (p->error);
  p->error = g_strdup (reason);
  p->refused = g_str_has_prefix (reason, "This device refuses ")
               || g_str_has_prefix (reason, _("This device refuses "));
  p->last_report = g_get_real_time ();
}

static void
handle_done (CanopyDistributor *distributor, Deployment *d, const char *device_id,
             GVariant *body)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  g_autoptr (CanopyManifest) manifest = NULL;
  g_autoptr (GVariant) sha = NULL;
  DeviceProgress *p = progress_of (d, device_id);
  gsize length;
  const guint8 *digest;

  g_variant_get (body, "(&s@ay)", NULL, &sha);
  digest = g_variant_get_fixed_array (sha, &length, 1);
  if (content != NULL)
    manifest = canopy_manifest_parse (content->manifest, NULL, NULL);
  if (manifest == NULL || length != CANOPY_MANIFEST_HASH_SIZE
      || memcmp (digest, manifest->sha256, length) != 0)
    {
      g_warning (_("Device %s reports deployment %s done, but with a package hash that is not "
                   "the content's; it is not counted as done. Check the device"),
                 device_id, d->id);
      return;
    }
  p->done = TRUE;
  p->last_report = g_get_real_time ();
  g_hash_table_remove (distributor->failures, device_id);
  p->chunks = canopy_manifest_get_n_chunks (manifest);
  p->last_change = g_get_monotonic_time ();
  record_progress (distributor, d, device_id, p);
  {
    g_autofree char *office = office_of (distributor, device_id);
    CanopyLogSubject subject = { d->id, d->content_id, device_id, office };

    /* One line per device is too many for thousands: debug only; the
     * deployment's summary counts them. */
    canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, CANOPY_LOG_DEVICE_DONE, &subject,
                      _("Device %s finished deployment %s (\"%s\" %s)"), device_id, d->id,
                      content->name, content->version);
  }
  log_if_finished (distributor, d);
}

/* --- withdrawing --------------------------------------------------------- */

static void
send_withdraw (CanopyDistributor *distributor, const Deployment *d, const char *device_id)
{
  const char *reason = g_hash_table_contains (distributor->removed, d->id)
                         ? _("an administrator removed it")
                         : _("an administrator cancelled it");

  canopy_sessions_send (distributor->sessions, device_id, CANOPY_WIRE_WITHDRAW,
                        g_variant_new ("(ss)", d->id, reason));
}

/* Tells every device @d was sent to, and online, to stop it; the others
 * are told when they reconnect. */
static void
withdraw (CanopyDistributor *distributor, Deployment *d)
{
  GHashTableIter iter;
  gpointer device_id, value;

  if (d->state != CANOPY_DEPLOYMENT_RETIRED)
    d->state = CANOPY_DEPLOYMENT_CANCELLED;
  g_hash_table_remove_all (d->leads);
  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const DeviceProgress *p = value;

      if (g_hash_table_contains (d->withdrawn, device_id))
        continue;
      g_hash_table_insert (d->withdrawn, g_strdup (device_id),
                           GUINT_TO_POINTER (p->done ? WITHDRAW_INSTALLED : WITHDRAW_PENDING));
      if (!p->done)
        send_withdraw (distributor, d, device_id);
    }
}

/* Whether every device of @d has answered its withdrawal. */
static gboolean
withdrawal_complete (const Deployment *d)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, d->withdrawn);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (GPOINTER_TO_UINT (value) == WITHDRAW_PENDING)
      return FALSE;
  return TRUE;
}

static void
handle_withdrawn (CanopyDistributor *distributor, Deployment *d, const char *device_id,
                  GVariant *body)
{
  const DeviceProgress *p = g_hash_table_lookup (d->progress, device_id);
  guint32 did;
  Withdrawal outcome;

  g_variant_get_child (body, 1, "u", &did);
  if (p != NULL && p->done)
    outcome = WITHDRAW_INSTALLED;
  else if (did == CANOPY_WIRE_WITHDRAWN_STOPPED)
    outcome = WITHDRAW_STOPPED;
  else if (did == CANOPY_WIRE_WITHDRAWN_INSTALLED)
    outcome = WITHDRAW_INSTALLED;
  else
    outcome = WITHDRAW_NOTHING;
  if (!g_hash_table_contains (d->withdrawn, device_id))
    return;
  g_hash_table_insert (d->withdrawn, g_strdup (device_id), GUINT_TO_POINTER (outcome));
  if (outcome == WITHDRAW_STOPPED)
    /* One per device: debug, as finishing is; the status lists what each did. */
    g_debug ("device %s stopped deployment %s before installing it", device_id, d->id);
  if (g_hash_table_contains (distributor->removed, d->id) && withdrawal_complete (d))
    g_hash_table_remove (distributor->removed, d->id);
}

/* Asks @device_id to remove @d's package, if it is online. */
static void
send_uninstall (CanopyDistributor *distributor, const Deployment *d, const char *device_id)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  g_autoptr (CanopyManifest) manifest = content != NULL
                                          ? canopy_manifest_parse (content->manifest, NULL, NULL)
                                          : NULL;

  if (manifest == NULL || !g_hash_table_contains (distributor->online, device_id))
    return;
  canopy_sessions_send (distributor->sessions, device_id, CANOPY_WIRE_UNINSTALL,
                        g_variant_new ("(ss@ay)", d->id, d->destination,
                                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                  manifest->sha256,
                                                                  CANOPY_MANIFEST_HASH_SIZE, 1)));
}

/* Every device that installed @d's package is asked to remove it. */
static void
uninstall_all (CanopyDistributor *distributor, Deployment *d)
{
  GHashTableIter iter;
  gpointer device_id, value;

  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      Uninstall *u;

      if (!((DeviceProgress *) value)->done || g_hash_table_contains (d->uninstalls, device_id))
        continue;
      u = g_new0 (Uninstall, 1);
      u->what = -1;
      g_hash_table_insert (d->uninstalls, g_strdup (device_id), u);
      send_uninstall (distributor, d, device_id);
    }
}

static void
handle_uninstalled (Deployment *d, const char *device_id, GVariant *body)
{
  Uninstall *u = g_hash_table_lookup (d->uninstalls, device_id);
  const char *message;
  guint32 what;

  g_variant_get (body, "(&su&s)", NULL, &what, &message);
  if (u == NULL || what > CANOPY_WIRE_UNINSTALLED_FAILED)
    return;
  u->what = (int) what;
  g_free (u->message);
  u->message = g_strdup (message);
  if (what == CANOPY_WIRE_UNINSTALLED_CHANGED || what == CANOPY_WIRE_UNINSTALLED_FAILED)
    {
      DeviceProgress *p = progress_of (d, device_id);

      g_warning (_("Deployment %s retired: device %s did not remove its package: %s"), d->id,
                 device_id, message);
      g_free (p->error);
      p->error = g_strdup (message);
    }
  else
    g_message (_("Deployment %s retired: device %s %s"), d->id, device_id, message);
}

static void
on_message (const char *device_id, CanopyWireKind kind, GVariant *body, gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  const char *id;
  const char *reason;
  Deployment *d;

  g_variant_get_child (body, 0, "&s", &id);
  d = g_hash_table_lookup (distributor->deployments, id);
  if (d == NULL)
    d = g_hash_table_lookup (distributor->removed, id);
  if (d == NULL)
    {
      g_debug ("device %s reports on unknown deployment %s", device_id, id);
      return;
    }
  switch (kind)
    {
    case CANOPY_WIRE_PROGRESS:
      handle_progress (distributor, d, device_id, body);
      break;
    case CANOPY_WIRE_DONE:
      handle_done (distributor, d, device_id, body);
      break;
    case CANOPY_WIRE_FAILED:
      g_variant_get_child (body, 1, "&s", &reason);
      {
        g_autofree char *office = office_of (distributor, device_id);
        CanopyLogSubject subject = { d->id, d->content_id, device_id, office };

        canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, CANOPY_LOG_DEVICE_FAILED, &subject,
                          _("Device %s cannot complete deployment %s: %s"), device_id, d->id,
                          reason);
      }
      note_failure (distributor, d, device_id, reason);
      log_if_finished (distributor, d);
      note_device_error (d, device_id, reason);
      g_hash_table_remove (d->sent, device_id);
      forget_reported (d, device_id);
      schedule_retry (d, device_id);
      /* A lead that gave up hands over to the next preferred device of its
       * office, if there is one, until its own next chance. */
      if (is_lead (d, device_id))
        {
          g_hash_table_add (d->stalled, g_strdup (device_id));
          replan (distributor, d);
        }
      break;
    case CANOPY_WIRE_WITHDRAWN:
      handle_withdrawn (distributor, d, device_id, body);
      break;
    case CANOPY_WIRE_UNINSTALLED:
      handle_uninstalled (d, device_id, body);
      break;
    case CANOPY_WIRE_WAN_PACING:
      handle_pacing (d, device_id, body);
      break;
    default:
      break;
    }
}

static void
on_enrolled (const CanopySessionInfo *info, gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  OnlineDevice *device = g_new0 (OnlineDevice, 1);
  GHashTableIter iter;
  gpointer value;

  device->device_id = g_strdup (info->device_id);
  device->office = g_strdup (info->office);
  device->groups = g_strdupv ((char **) info->groups);
  device->host = g_strdup (info->host);
  device->port = info->peer_port;
  g_hash_table_insert (distributor->online, device->device_id, device);
  g_hash_table_remove (distributor->lost_at, info->device_id);
  /* A new session has no assignment yet, whatever was sent before. */
  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_hash_table_remove (((Deployment *) value)->sent, info->device_id);
  /* A device that was away when a deployment was withdrawn may still be
   * fetching it: it is told now. */
  for (guint t = 0; t < 2; t++)
    {
      g_hash_table_iter_init (&iter, t == 0 ? distributor->deployments : distributor->removed);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (GPOINTER_TO_UINT (g_hash_table_lookup (((Deployment *) value)->withdrawn,
                                                   info->device_id))
            == WITHDRAW_PENDING)
          send_withdraw (distributor, value, info->device_id);
    }
  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Uninstall *u = g_hash_table_lookup (((Deployment *) value)->uninstalls,
                                                info->device_id);

      if (u != NULL && u->what < 0)
        send_uninstall (distributor, value, info->device_id);
    }
  replan_all (distributor);
}

static void
on_left (const char *device_id, gboolean lost, gpointer user_data)
{
  CanopyDistributor *distributor = user_data;

  if (lost)
    note_now (distributor->lost_at, device_id);

  if (g_hash_table_remove (distributor->online, device_id))
    replan_all (distributor);
}

static const CanopySessionsObserver observer = {
  .enrolled = on_enrolled,
  .left = on_left,
  .message = on_message,
};

/* Whether the lead of @office's parent office is bringing the content in
 * now, or itself waits for its own parent that is: a lead that waits for
 * it, as it must, has not stalled. */
static gboolean
parent_lead_progressing (CanopyDistributor *distributor, Deployment *d, const char *office,
                         gint64 now)
{
  const CanopyOffice *o = canopy_topology_lookup (distributor->topology, office);
  const char *parent_lead;
  const DeviceProgress *p;

  if (o == NULL || o->parent == NULL)
    return FALSE;
  parent_lead = g_hash_table_lookup (d->leads, o->parent);
  p = parent_lead != NULL ? g_hash_table_lookup (d->progress, parent_lead) : NULL;
  return p != NULL && !p->done
         && (now - p->last_change <= p->allowance_us
             || parent_lead_progressing (distributor, d, o->parent, now));
}

/* A lead whose progress stopped is passed over until it progresses again. */
static gboolean
check_stalled_leads (gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter, leads;
  gpointer value, office, lead;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Deployment *d = value;
      gboolean changed = FALSE;

      g_hash_table_iter_init (&leads, d->leads);
      while (g_hash_table_iter_next (&leads, &office, &lead))
        {
          DeviceProgress *p = progress_of (d, lead);

          if (!p->done && now - p->last_change > p->allowance_us
              && !parent_lead_progressing (distributor, d, office, now))
            {
              g_warning (_("Deployment %s: lead %s of office \"%s\" verified nothing for %u "
                           "seconds; handing over to the next preferred device"),
                         d->id, (const char *) lead, (const char *) office,
                         (guint) (p->allowance_us / G_USEC_PER_SEC));
              g_hash_table_add (d->stalled, g_strdup (lead));
              schedule_retry (d, lead);
              changed = TRUE;
            }
        }
      if (changed)
        replan (distributor, d);
    }
  return G_SOURCE_CONTINUE;
}

/* Devices whose wait after a failure or a stall is over are planned
 * again, and sent their assignment again even if it did not change: a
 * device that gave up has dropped it. */
static gboolean
retry_due (gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter, retries;
  gpointer value, device_id, retry_p;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Deployment *d = value;
      gboolean due = FALSE;

      g_hash_table_iter_init (&retries, d->retries);
      while (g_hash_table_iter_next (&retries, &device_id, &retry_p))
        {
          Retry *retry = retry_p;

          if (retry->at == 0 || retry->at > now)
            continue;
          retry->at = 0;
          g_debug ("deployment %s: device %s gets another chance after %u s", d->id,
                   (const char *) device_id, retry->delay_s);
          g_hash_table_remove (d->stalled, device_id);
          g_hash_table_remove (d->sent, device_id);
          due = TRUE;
        }
      if (due)
        replan (distributor, d);
    }
  return G_SOURCE_CONTINUE;
}

/* What the clock decides at @now for @d: the offices of its online
 * targets where content may move. Each office is judged once. */
static char *
gate_of (CanopyDistributor *distributor, const Deployment *d, gint64 now)
{
  g_autoptr (GString) gate = g_string_new (NULL);
  g_autoptr (GHashTable) judged = NULL;
  GHashTableIter iter;
  gpointer value;

  if (d->timing.start_at == 0 && d->timing.window_start == d->timing.window_end)
    return g_strdup ("");
  judged = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_iter_init (&iter, distributor->online);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const OnlineDevice *device = value;
      const char *office = device->office != NULL ? device->office : "";

      if (g_hash_table_contains (judged, office)
          || !in_groups (d, (const char *const *) device->groups))
        continue;
      g_hash_table_add (judged, (gpointer) office);
      if (may_move (distributor, d, office, now))
        g_string_append_printf (gate, "%s\n", office);
    }
  return g_string_free (g_steal_pointer (&gate), FALSE);
}

/* The WAN rate now of every office with a bandwidth schedule, as one
 * string to compare (the others' rates change only with the topology,
 * which replans by itself). */
static char *
rates_of (CanopyDistributor *distributor, gint64 now)
{
  GPtrArray *offices = canopy_topology_get_offices (distributor->topology);
  g_autoptr (GString) rates = g_string_new (NULL);

  for (guint i = 0; i < offices->len; i++)
    {
      const CanopyOffice *office = g_ptr_array_index (offices, i);

      if (office->schedule != NULL && office->schedule->len > 0)
        g_string_append_printf (rates, "%s=%" G_GUINT64_FORMAT "\n", office->name,
                                canopy_office_rate_at (office, now));
    }
  return g_string_free (g_steal_pointer (&rates), FALSE);
}

/* Content past its expiry date is taken back: each deployment of it is
 * retired, its package removed from the devices where it is unchanged. */
static void
retire_expired (CanopyDistributor *distributor, gint64 now)
{
  g_autoptr (GPtrArray) expired = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Deployment *d = value;
      const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);

      if (d->state != CANOPY_DEPLOYMENT_RETIRED && content != NULL && content->expires_at > 0
          && now >= content->expires_at)
        g_ptr_array_add (expired, g_strdup (d->id));
    }
  for (guint i = 0; i < expired->len; i++)
    {
      const char *id = g_ptr_array_index (expired, i);
      const Deployment *d = g_hash_table_lookup (distributor->deployments, id);

      g_message (_("Content %s expired: retiring deployment %s"), d->content_id, id);
      canopy_distributor_retire (distributor, id, NULL);
    }
}

/* A window that opens or closes, a start or deadline that arrives, or a
 * bandwidth schedule's boundary: the devices concerned are told at once.
 * Offices are compared as a whole (cheap: most deployments have no
 * timing, most offices no schedule). */
static gboolean
check_clock (gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  gint64 now = g_get_real_time ();
  g_autofree char *rates = rates_of (distributor, now);
  gboolean rates_changed = g_strcmp0 (rates, distributor->rates) != 0;
  GHashTableIter iter;
  gpointer value;

  if (rates_changed && distributor->rates != NULL)
    g_message (_("An office's WAN rate changed with its bandwidth schedule; its leads are "
                 "told the new rate"));
  g_free (distributor->rates);
  distributor->rates = g_steal_pointer (&rates);
  retire_expired (distributor, now);
  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Deployment *d = value;
      g_autofree char *gate = gate_of (distributor, d, now);

      if (g_strcmp0 (gate, d->gate) != 0 || rates_changed)
        {
          g_free (d->gate);
          d->gate = g_steal_pointer (&gate);
          replan (distributor, d);
        }
    }
  return G_SOURCE_CONTINUE;
}

/* --- loading ------------------------------------------------------------- */

static gboolean
load_deployment (const char *key, GVariant *value, gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  g_autofree const char **groups = NULL;
  const char *content_id, *destination;
  guint32 state;
  gint64 created_at;
  gboolean background = FALSE;
  CanopyDeploymentTiming timing = { 0 };
  guint32 window_start, window_end;
  Deployment *d;

  g_variant_get (value, "(&s^a&s&suxxxuub)", &content_id, &groups, &destination, &state,
                 &created_at, &timing.start_at, &timing.deadline, &window_start, &window_end,
                 &background);
  timing.window_start = (guint16) MIN (window_start, 1440);
  timing.window_end = (guint16) MIN (window_end, 1440);
  d = deployment_new (key, content_id, groups, destination, state, created_at, background);
  d->timing = timing;
  g_hash_table_insert (distributor->deployments, g_strdup (key), d);
  /* read from the database, at start or from another server */
  g_hash_table_add (distributor->seen_stored, g_strdup (key));
  return TRUE;
}

static gboolean
load_progress (const char *key, GVariant *value, gpointer user_data)
{
  CanopyDistributor *distributor = user_data;
  const char *slash = strchr (key, '/');
  g_autofree char *id = slash != NULL ? g_strndup (key, slash - key) : NULL;
  Deployment *d = id != NULL ? g_hash_table_lookup (distributor->deployments, id) : NULL;
  g_autoptr (GVariant) bytes = NULL;
  DeviceProgress *p;
  const guint64 *by_kind;
  gsize n;

  if (d == NULL)
    return TRUE;
  p = progress_of (d, slash + 1);
  g_variant_get (value, "(u@atb)", &p->chunks, &bytes, &p->done);
  by_kind = g_variant_get_fixed_array (bytes, &n, sizeof (guint64));
  for (gsize k = 0; k < MIN (n, N_SOURCE_KINDS); k++)
    p->bytes[k] = p->reported[k] = by_kind[k];
  return TRUE;
}

CanopyDistributor *
canopy_distributor_new (CanopyStore *store, CanopyCatalog *catalog, CanopyTopology *topology,
                        CanopySessions *sessions, GError **error)
{
  g_autoptr (CanopyDistributor) distributor = g_new0 (CanopyDistributor, 1);

  distributor->background_target_ms = CANOPY_DISTRIBUTOR_DEFAULT_BACKGROUND_TARGET_MS;

  distributor->store = store;
  distributor->catalog = catalog;
  distributor->topology = topology;
  distributor->sessions = sessions;
  distributor->deployments = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                    (GDestroyNotify) deployment_free);
  distributor->online = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                               (GDestroyNotify) online_device_free);
  distributor->reported_at = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  distributor->related = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  distributor->lost_at = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  distributor->failures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) device_failure_free);
  distributor->removed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) deployment_free);
  distributor->seen_stored = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!canopy_store_list (store, CANOPY_RECORD_DEPLOYMENT, load_deployment, distributor, error)
      || !canopy_store_list (store, CANOPY_RECORD_PROGRESS, load_progress, distributor, error))
    return NULL;
  /* What devices answered before the restart is not kept: whoever had not
   * finished is told again when it connects. */
  {
    GHashTableIter iter;
    gpointer value;
    guint done, failed;

    g_hash_table_iter_init (&iter, distributor->deployments);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      {
        Deployment *d = value;

        if (d->state == CANOPY_DEPLOYMENT_CANCELLED || d->state == CANOPY_DEPLOYMENT_RETIRED)
          withdraw (distributor, d);
        /* What devices answered is not kept: each that installed the
         * package is asked again; one that removed it says it has none. */
        if (d->state == CANOPY_DEPLOYMENT_RETIRED)
          uninstall_all (distributor, d);
      }
    /* Deployments that were over before the restart are not summed up again. */
    g_hash_table_iter_init (&iter, distributor->deployments);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      ((Deployment *) value)->summarized = deployment_over (distributor, value, &done, &failed);
  }
  canopy_sessions_set_observer (sessions, &observer, distributor);
  distributor->stall_timer = g_timeout_add_seconds (STALL_S / 3, check_stalled_leads,
                                                    distributor);
  distributor->retry_timer = g_timeout_add_seconds (1, retry_due, distributor);
  /* Not g_timeout_add_seconds(): its ticks may drift by up to a second,
   * and a schedule's rate is due within one second of its boundary. */
  distributor->clock_timer = g_timeout_add (CLOCK_TICK_MS, check_clock, distributor);
  return g_steal_pointer (&distributor);
}

void
canopy_distributor_free (CanopyDistributor *distributor)
{
  if (distributor == NULL)
    return;
  if (distributor->sessions != NULL)
    canopy_sessions_set_observer (distributor->sessions, NULL, NULL);
  if (distributor->stall_timer != 0)
    g_source_remove (distributor->stall_timer);
  if (distributor->retry_timer != 0)
    g_source_remove (distributor->retry_timer);
  if (distributor->clock_timer != 0)
    g_source_remove (distributor->clock_timer);
  g_free (distributor->rates);
  g_hash_table_unref (distributor->deployments);
  g_hash_table_unref (distributor->removed);
  g_hash_table_unref (distributor->online);
  g_hash_table_unref (distributor->reported_at);
  g_hash_table_unref (distributor->related);
  g_hash_table_unref (distributor->lost_at);
  g_hash_table_unref (distributor->failures);
  g_clear_pointer (&distributor->remote, g_hash_table_unref);
  g_hash_table_unref (distributor->seen_stored);
  g_free (distributor);
}

/* --- the admin's operations ---------------------------------------------- */

char *
canopy_distributor_create (CanopyDistributor *distributor, const char *content_id,
                           const char *const *groups, const char *destination,
                           const char *admin, GError **error)
{
  return canopy_distributor_create_timed (distributor, content_id, groups, destination, NULL,
                                          NULL, admin, error);
}

char *
canopy_distributor_create_timed (CanopyDistributor *distributor, const char *content_id,
                                 const char *const *groups, const char *destination,
                                 const CanopyDeploymentTiming *timing,
                                 const CanopyDeploymentOptions *options, const char *admin,
                                 GError **error)
{
  g_autofree char *id = g_uuid_string_random ();
  const CanopyContent *content;
  Deployment *d;

  content = canopy_catalog_lookup (distributor->catalog, content_id);
  if (content == NULL)
    {
      g_set_error (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_CONTENT,
                   _("No content has the ID %s; register the content first, or list it to see "
                     "the IDs"), content_id);
      return NULL;
    }
  if (content->expires_at > 0 && g_get_real_time () >= content->expires_at)
    {
      g_set_error (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_INVALID,
                   _("Content %s has expired; give it a later expiry date (or none) before "
                     "deploying it"), content_id);
      return NULL;
    }
  if (groups == NULL || groups[0] == NULL)
    {
      g_set_error_literal (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_INVALID,
                           _("A deployment needs at least one device group"));
      return NULL;
    }
  if (destination == NULL || !g_path_is_absolute (destination))
    {
      g_set_error_literal (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_INVALID,
                           _("The destination must be an absolute path on the devices, "
                             "where the finished package is put"));
      return NULL;
    }
  if (timing != NULL && timing->deadline > 0 && timing->deadline <= timing->start_at)
    {
      g_set_error_literal (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_INVALID,
                           _("The deadline must come after the start; give a later deadline "
                             "or an earlier start"));
      return NULL;
    }
  if (timing != NULL && (timing->window_start >= 1440 || timing->window_end >= 1440))
    {
      g_set_error_literal (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_INVALID,
                           _("A daily window runs from 00:00 to 24:00; give its start and end "
                             "within the day"));
      return NULL;
    }
  d = deployment_new (id, content_id, groups, destination, CANOPY_DEPLOYMENT_ACTIVE,
                      g_get_real_time (), options != NULL && options->background);
  if (timing != NULL)
    d->timing = *timing;
  d->gate = gate_of (distributor, d, g_get_real_time ());
  g_hash_table_insert (distributor->deployments, g_strdup (id), d);
  record_deployment (distributor, d);
  log_created (distributor, d, admin);
  replan (distributor, d);
  return g_steal_pointer (&id);
}

gboolean
canopy_distributor_cancel (CanopyDistributor *distributor, const char *id, GError **error)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);

  if (d == NULL)
    {
      g_set_error (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_DEPLOYMENT,
                   _("No deployment has the ID %s; list the deployments to see the IDs"), id);
      return FALSE;
    }
  if (d->state == CANOPY_DEPLOYMENT_CANCELLED || d->state == CANOPY_DEPLOYMENT_RETIRED)
    return TRUE;
  withdraw (distributor, d);
  record_deployment (distributor, d);
  {
    CanopyLogSubject subject = { d->id, d->content_id, NULL, NULL };

    canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_DEPLOYMENT_CANCELLED,
                      &subject,
                      _("Deployment %s cancelled: every device it was sent to stops it before "
                        "installing; its status shows what each did"),
                      id);
  }
  return TRUE;
}

static int
compare_outcomes (gconstpointer a, gconstpointer b)
{
  const CanopyDeviceOutcome *x = *(const CanopyDeviceOutcome *const *) a;
  const CanopyDeviceOutcome *y = *(const CanopyDeviceOutcome *const *) b;

  return g_strcmp0 (x->device_id, y->device_id);
}

gboolean
canopy_distributor_retire (CanopyDistributor *distributor, const char *id, GError **error)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);

  if (d == NULL)
    {
      g_set_error (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_DEPLOYMENT,
                   _("No deployment has the ID %s; list the deployments to see the IDs"), id);
      return FALSE;
    }
  if (d->state == CANOPY_DEPLOYMENT_RETIRED)
    return TRUE;
  d->state = CANOPY_DEPLOYMENT_RETIRED;
  withdraw (distributor, d);
  uninstall_all (distributor, d);
  record_deployment (distributor, d);
  g_message (_("Deployment %s retired: devices stop it, and remove its package where it is "
               "unchanged; its status shows what each did"), id);
  return TRUE;
}

GPtrArray *
canopy_distributor_get_uninstalls (CanopyDistributor *distributor, const char *id)
{
  static const char *const names[] = { "removed", "changed", "absent", "not-installed",
                                       "failed" };
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  GPtrArray *list;
  GHashTableIter iter;
  gpointer device_id, value;

  if (d == NULL || d->state != CANOPY_DEPLOYMENT_RETIRED)
    return NULL;
  list = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_device_outcome_free);
  g_hash_table_iter_init (&iter, d->uninstalls);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const Uninstall *u = value;
      CanopyDeviceOutcome *o = g_new0 (CanopyDeviceOutcome, 1);

      o->device_id = g_strdup (device_id);
      o->what = u->what >= 0 && (gsize) u->what < G_N_ELEMENTS (names) ? names[u->what]
                                                                        : "pending";
      o->message = g_strdup (u->what >= 0 ? u->message
                                          : _("not told yet: it is offline, or has not "
                                              "answered; it is asked when it reconnects"));
      g_ptr_array_add (list, o);
    }
  g_ptr_array_sort (list, compare_outcomes);
  return list;
}

gboolean
canopy_distributor_remove (CanopyDistributor *distributor, const char *id, GError **error)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  GHashTableIter iter;
  gpointer device_id;
  gpointer stolen_id;

  if (d == NULL)
    {
      g_set_error (error, CANOPY_DISTRIBUTOR_ERROR, CANOPY_DISTRIBUTOR_ERROR_UNKNOWN_DEPLOYMENT,
                   _("No deployment has the ID %s; list the deployments to see the IDs"), id);
      return FALSE;
    }
  /* Moved aside first, so that the devices are told it was removed. */
  g_hash_table_steal_extended (distributor->deployments, id, &stolen_id, NULL);
  g_hash_table_insert (distributor->removed, stolen_id, d);
  withdraw (distributor, d);
  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, NULL))
    {
      g_autofree char *key = g_strdup_printf ("%s/%s", id, (const char *) device_id);
      canopy_store_remove (distributor->store, CANOPY_RECORD_PROGRESS, key);
    }
  canopy_store_remove (distributor->store, CANOPY_RECORD_DEPLOYMENT, id);
  g_hash_table_remove (distributor->seen_stored, id);
  if (withdrawal_complete (d))
    g_hash_table_remove (distributor->removed, id);
  return TRUE;
}

GPtrArray *
canopy_distributor_get_outcomes (CanopyDistributor *distributor, const char *id)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  GPtrArray *outcomes;
  GHashTableIter iter;
  gpointer device_id, value;

  if (d == NULL
      || (d->state != CANOPY_DEPLOYMENT_CANCELLED && d->state != CANOPY_DEPLOYMENT_RETIRED))
    return NULL;
  outcomes = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_device_outcome_free);
  g_hash_table_iter_init (&iter, d->withdrawn);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      CanopyDeviceOutcome *o = g_new0 (CanopyDeviceOutcome, 1);

      o->device_id = g_strdup (device_id);
      switch ((Withdrawal) GPOINTER_TO_UINT (value))
        {
        case WITHDRAW_PENDING:
          o->what = "pending";
          o->message = g_strdup (_("not told yet: it is offline, or has not answered; it is "
                                   "told when it reconnects"));
          break;
        case WITHDRAW_NOTHING:
          o->what = "nothing";
          o->message = g_strdup (_("had nothing of it under way; nothing was installed"));
          break;
        case WITHDRAW_STOPPED:
          o->what = "stopped";
          o->message = g_strdup (_("stopped fetching; nothing was installed"));
          break;
        case WITHDRAW_INSTALLED:
        default:
          o->what = "installed";
          o->message = g_strdup (_("had installed the package before the cancel; remove it "
                                   "from the device if it must go"));
          break;
        }
      g_ptr_array_add (outcomes, o);
    }
  return outcomes;
}

gboolean
canopy_distributor_uses_content (CanopyDistributor *distributor, const char *content_id)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (strcmp (((Deployment *) value)->content_id, content_id) == 0)
      return TRUE;
  return FALSE;
}

static int
compare_created (gconstpointer a, gconstpointer b)
{
  const CanopyDeploymentInfo *x = *(const CanopyDeploymentInfo *const *) a;
  const CanopyDeploymentInfo *y = *(const CanopyDeploymentInfo *const *) b;

  return x->created_at != y->created_at ? (x->created_at < y->created_at ? -1 : 1)
                                        : strcmp (x->id, y->id);
}

GPtrArray *
canopy_distributor_list (CanopyDistributor *distributor)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_deployment_info_free);
  GHashTableIter iter, progress;
  gpointer value, p;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Deployment *d = value;
      CanopyDeploymentInfo *info = g_new0 (CanopyDeploymentInfo, 1);

      info->id = g_strdup (d->id);
      info->content_id = g_strdup (d->content_id);
      info->groups = g_strdupv (d->groups);
      info->destination = g_strdup (d->destination);
      info->state = d->state;
      info->created_at = d->created_at;
      info->timing = d->timing;
      info->background = d->background;
      g_hash_table_iter_init (&progress, d->progress);
      while (g_hash_table_iter_next (&progress, NULL, &p))
        {
          info->devices++;
          info->done += ((DeviceProgress *) p)->done;
        }
      g_ptr_array_add (list, info);
    }
  g_ptr_array_sort (list, compare_created);
  return list;
}

/* The office a device is in: online devices say; others have a record. */
static char *
office_of (CanopyDistributor *distributor, const char *device_id)
{
  const OnlineDevice *online = g_hash_table_lookup (distributor->online, device_id);
  GVariant *stored;
  const char *office = NULL;

  if (online != NULL)
    return g_strdup (online->office);
  stored = canopy_store_get_device (distributor->store, device_id);
  if (stored != NULL)
    g_variant_get_child (stored, 4, "&s", &office);
  return g_strdup (office != NULL && office[0] != '\0' ? office : "");
}

GPtrArray *
canopy_distributor_get_progress (CanopyDistributor *distributor, const char *id)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  g_autoptr (GHashTable) offices = NULL;
  GPtrArray *result;
  GHashTableIter iter;
  gpointer device_id, value;

  if (d == NULL)
    return NULL;
  offices = g_hash_table_new (g_str_hash, g_str_equal);
  result = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_office_progress_free);
  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const DeviceProgress *p = value;
      g_autofree char *name = office_of (distributor, device_id);
      CanopyOfficeProgress *office = g_hash_table_lookup (offices, name);

      if (office == NULL)
        {
          office = g_new0 (CanopyOfficeProgress, 1);
          office->office = g_strdup (name);
          office->lead = g_strdup (g_hash_table_lookup (d->leads, name));
          office->background = is_background (distributor, d, name);
          office->pacing_rate = 0;
          office->queueing_delay_us = -1;
          office->base_delay_us = -1;
          g_hash_table_insert (offices, office->office, office);
          g_ptr_array_add (result, office);
        }
      office->devices++;
      office->done += p->done;
      /* The lead's latest, while it is fresh: a lead that finished or
       * left is pacing nothing. */
      if (office->lead != NULL && g_str_equal (office->lead, device_id) && !p->done
          && p->pacing_at != 0 && g_get_monotonic_time () - p->pacing_at < PACING_FRESH_US)
        {
          office->pacing_rate = p->pacing_rate;
          office->queueing_delay_us = p->queueing_us;
          office->base_delay_us = p->base_us;
        }
      for (int k = 0; k < N_SOURCE_KINDS; k++)
        office->bytes[k] += p->bytes[k];
      office->wan_bytes += p->bytes[CANOPY_SOURCE_PARENT_PEER] + p->bytes[CANOPY_SOURCE_SERVER]
                           + p->bytes[CANOPY_SOURCE_ORIGIN];
    }
  return result;
}

/* --- several servers: one lead per office ------------------------------- */

/* The lead another server published for @deployment_id in @detail (lines
 * "DEPLOYMENT DEVICE HOST PORT"), remembered as a peer devices may be
 * sent to; NULL when it published none. */
static const char *
remote_lead (CanopyDistributor *distributor, const char *detail, const char *deployment_id)
{
  g_auto (GStrv) lines = g_strsplit (detail, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], " ", 4);
      OnlineDevice *device;
      guint64 port;

      if (g_strv_length (f) != 4 || !g_str_equal (f[0], deployment_id)
          || !g_ascii_string_to_unsigned (f[3], 10, 1, 65535, &port, NULL))
        continue;
      device = g_hash_table_lookup (distributor->remote, f[1]);
      /* the same entry while it stays the same: earlier plans point to it */
      if (device != NULL && g_str_equal (device->host, f[2]) && device->port == port)
        return device->device_id;
      device = g_new0 (OnlineDevice, 1);
      device->device_id = g_strdup (f[1]);
      device->host = g_strdup (f[2]);
      device->port = (guint16) port;
      g_hash_table_replace (distributor->remote, device->device_id, device);
      return device->device_id;
    }
  return NULL;
}

/* In a cluster, a device becomes its office's lead only on the server
 * that holds the office's lease; elsewhere the would-be lead is a peer
 * of the lead the holder published, as are the office's other devices,
 * so that one device per office crosses the WAN across all servers. */
static void
gate_plan (CanopyDistributor *distributor, Deployment *d, CanopyPlan *plan)
{
  g_autofree char *detail = NULL;
  const char *lead;
  CanopySource source = { CANOPY_SOURCE_OFFICE_PEER, NULL };

  if (distributor->gate == NULL || plan->office == NULL
      || (plan->role != CANOPY_ROLE_LEAD && plan->role != CANOPY_ROLE_PEER))
    return;
  if (plan->role == CANOPY_ROLE_LEAD)
    g_hash_table_add (d->wants, g_strdup (plan->office));
  if (distributor->gate->may_lead (plan->office, &detail, distributor->gate_data))
    return;
  lead = remote_lead (distributor, detail, d->id);
  if (plan->role == CANOPY_ROLE_LEAD)
    {
      plan->role = CANOPY_ROLE_PEER;
      g_array_set_size (plan->sources, 0);
      g_free (plan->reason);
      plan->reason = g_strdup_printf (_("another server holds office \"%s\"'s lead lease: a "
                                        "peer of its lead"),
                                      plan->office);
    }
  if (lead != NULL)
    {
      source.device_id = lead;
      g_array_prepend_val (plan->sources, source);
    }
}

static void
string_free (GString *string)
{
  g_string_free (string, TRUE);
}

/* Tells the gate, after planning, which offices this server would lead
 * and with which devices, for the other servers' devices to fetch from. */
static void
publish_leads (CanopyDistributor *distributor)
{
  g_autoptr (GHashTable) offices = NULL;
  GHashTableIter iter, leads;
  gpointer value, office, device_id;

  if (distributor->gate == NULL)
    return;
  offices = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                   (GDestroyNotify) string_free);
  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Deployment *d = value;

      if (d->state != CANOPY_DEPLOYMENT_ACTIVE)
        continue;
      g_hash_table_iter_init (&leads, d->wants);
      while (g_hash_table_iter_next (&leads, &office, NULL))
        if (!g_hash_table_contains (offices, office))
          g_hash_table_insert (offices, office, g_string_new (NULL));
      g_hash_table_iter_init (&leads, d->leads);
      while (g_hash_table_iter_next (&leads, &office, &device_id))
        {
          const OnlineDevice *device = g_hash_table_lookup (distributor->online, device_id);
          GString *detail = g_hash_table_lookup (offices, office);

          if (device == NULL || device->port == 0)
            continue;
          if (detail == NULL)
            {
              detail = g_string_new (NULL);
              g_hash_table_insert (offices, office, detail);
            }
          g_string_append_printf (detail, "%s %s %s %u\n", d->id, device->device_id,
                                  device->host, device->port);
        }
    }
  distributor->gate->leading (offices, distributor->gate_data);
}

void
canopy_distributor_set_lead_gate (CanopyDistributor *distributor,
                                  const CanopyDistributorLeadGate *gate, gpointer user_data)
{
  distributor->gate = gate;
  distributor->gate_data = user_data;
  if (distributor->remote == NULL)
    distributor->remote = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                 (GDestroyNotify) online_device_free);
  replan_all (distributor);
}

void
canopy_distributor_leases_changed (CanopyDistributor *distributor)
{
  /* plans that gave a lead's role away, or took it, are sent anew */
  replan_all (distributor);
}

/* A deployment another server created or changed, as stored. */
void
canopy_distributor_merge_stored (CanopyDistributor *distributor, const char *id, GVariant *value)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  guint32 state;

  if (d == NULL)
    {
      load_deployment (id, value, distributor);
      d = g_hash_table_lookup (distributor->deployments, id);
      g_message (_("Deployment %s, created on another server of the cluster, is taken in"), id);
      if (d->state == CANOPY_DEPLOYMENT_CANCELLED || d->state == CANOPY_DEPLOYMENT_RETIRED)
        withdraw (distributor, d);
      else
        replan (distributor, d);
      return;
    }
  g_variant_get_child (value, 3, "u", &state);
  if (state == (guint32) d->state)
    return;
  if (state == CANOPY_DEPLOYMENT_CANCELLED)
    canopy_distributor_cancel (distributor, id, NULL);
  else if (state == CANOPY_DEPLOYMENT_RETIRED)
    canopy_distributor_retire (distributor, id, NULL);
  else if (d->state == CANOPY_DEPLOYMENT_ACTIVE || d->state == CANOPY_DEPLOYMENT_PAUSED)
    {
      d->state = state;
      g_hash_table_remove_all (d->sent);
      replan (distributor, d);
    }
}


void
canopy_distributor_merge_removed (CanopyDistributor *distributor, GHashTable *stored)
{
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer id;

  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, &id, NULL))
    if (g_hash_table_contains (stored, id))
      g_hash_table_add (distributor->seen_stored, g_strdup (id));
    else if (g_hash_table_contains (distributor->seen_stored, id))
      g_ptr_array_add (gone, g_strdup (id));
  for (guint i = 0; i < gone->len; i++)
    {
      const char *gone_id = g_ptr_array_index (gone, i);

      g_message (_("Deployment %s was removed on another server of the cluster; its devices "
                   "stop it"), gone_id);
      canopy_distributor_remove (distributor, gone_id, NULL);
    }
}

/* Whether @p, as another server stored it, says something new. */
static gboolean
progress_differs (const DeviceProgress *p, guint32 chunks, const guint64 *by_kind, gsize n,
                  gboolean done)
{
  if (p->chunks != chunks || p->done != done)
    return TRUE;
  for (gsize k = 0; k < MIN (n, N_SOURCE_KINDS); k++)
    if (p->bytes[k] != by_kind[k])
      return TRUE;
  return FALSE;
}

gboolean
canopy_distributor_merge_progress (CanopyDistributor *distributor, const char *key,
                                   GVariant *value)
{
  const char *slash = strchr (key, '/');
  g_autofree char *id = slash != NULL ? g_strndup (key, slash - key) : NULL;
  Deployment *d = id != NULL ? g_hash_table_lookup (distributor->deployments, id) : NULL;
  g_autoptr (GVariant) bytes = NULL;
  const guint64 *by_kind;
  DeviceProgress *p;
  guint32 chunks;
  gboolean done;
  gsize n;

  /* What this server's own devices report here is newer than the
   * database, which it writes behind. */
  if (d == NULL || g_hash_table_contains (distributor->online, slash + 1))
    return FALSE;
  g_variant_get (value, "(u@atb)", &chunks, &bytes, &done);
  by_kind = g_variant_get_fixed_array (bytes, &n, sizeof (guint64));
  p = g_hash_table_lookup (d->progress, slash + 1);
  if (p != NULL && !progress_differs (p, chunks, by_kind, n, done))
    return FALSE;
  p = progress_of (d, slash + 1);
  if (chunks != p->chunks)
    p->last_change = g_get_monotonic_time ();
  p->chunks = chunks;
  p->done = done;
  /* as at a restart: should the device move here, what its agent reports
   * next counts from these */
  for (gsize k = 0; k < MIN (n, N_SOURCE_KINDS); k++)
    p->bytes[k] = p->reported[k] = by_kind[k];
  log_if_finished (distributor, d);
  return TRUE;
}

void
canopy_distributor_reoffer (CanopyDistributor *distributor)
{
  GHashTableIter iter;
  gpointer value;

  /* Publishing is the admin saying the content or its origin was fixed:
   * every device that failed or stalled gets its chance now, and every
   * office a lead again. */
  g_hash_table_iter_init (&iter, distributor->deployments);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Deployment *d = value;

      g_hash_table_remove_all (d->sent);
      g_hash_table_remove_all (d->stalled);
      g_hash_table_remove_all (d->retries);
    }
  replan_all (distributor);
}

void
canopy_distributor_set_content_store (CanopyDistributor *distributor,
                                      CanopyContentStore *content_store)
{
  distributor->content_store = content_store;
  replan_all (distributor);
}

void
canopy_distributor_set_topology (CanopyDistributor *distributor, CanopyTopology *topology)
{
  distributor->topology = topology;
  /* The new offices' rates are in force from this plan on: no boundary
   * was crossed. */
  g_free (distributor->rates);
  distributor->rates = rates_of (distributor, g_get_real_time ());
  replan_all (distributor);
}

/* The device IDs of @table noted in the last @within_us. */
static GStrv
noted_since (GHashTable *table, gint64 within_us)
{
  g_autoptr (GStrvBuilder) ids = g_strv_builder_new ();
  gint64 since = g_get_monotonic_time () - within_us;
  GHashTableIter iter;
  gpointer device_id, at;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &device_id, &at))
    if (*(gint64 *) at >= since)
      g_strv_builder_add (ids, device_id);
  return g_strv_builder_end (ids);
}

GStrv
canopy_distributor_list_reported (CanopyDistributor *distributor, gint64 within_us)
{
  return noted_since (distributor->reported_at, within_us);
}

GStrv
canopy_distributor_list_lost (CanopyDistributor *distributor, gint64 within_us)
{
  return noted_since (distributor->lost_at, within_us);
}

GStrv
canopy_distributor_list_failures (CanopyDistributor *distributor, gint64 within_us)
{
  g_autoptr (GStrvBuilder) lines = g_strv_builder_new ();
  gint64 since = g_get_monotonic_time () - within_us;
  GHashTableIter iter;
  gpointer device_id, value;

  g_hash_table_iter_init (&iter, distributor->failures);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const DeviceFailure *failure = value;

      g_autofree char *line = NULL;

      if (failure->at < since)
        continue;
      line = g_strdup_printf ("%s (deployment %s: %s)", (const char *) device_id,
                              failure->deployment_id, failure->reason);
      g_strv_builder_add (lines, line);
    }
  return g_strv_builder_end (lines);
}

void
canopy_device_failure_free (CanopyDeviceFailure *failure)
{
  if (failure == NULL)
    return;
  g_free (failure->device_id);
  g_free (failure->reason);
  g_free (failure);
}

static int
compare_failures (gconstpointer a, gconstpointer b)
{
  const CanopyDeviceFailure *x = *(const CanopyDeviceFailure *const *) a;
  const CanopyDeviceFailure *y = *(const CanopyDeviceFailure *const *) b;

  return g_strcmp0 (x->device_id, y->device_id);
}

GPtrArray *
canopy_distributor_get_failures (CanopyDistributor *distributor, const char *deployment_id)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_device_failure_free);
  GHashTableIter iter;
  gpointer device_id, value;

  g_hash_table_iter_init (&iter, distributor->failures);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    {
      const DeviceFailure *failure = value;
      CanopyDeviceFailure *item;

      if (g_strcmp0 (failure->deployment_id, deployment_id) != 0)
        continue;
      item = g_new0 (CanopyDeviceFailure, 1);
      item->device_id = g_strdup (device_id);
      item->reason = g_strdup (failure->reason);
      g_ptr_array_add (list, item);
    }
  g_ptr_array_sort (list, compare_failures);
  return list;
}

/* --- per-device status --------------------------------------------------- */

static const char *const device_state_names[] = {
  "waiting", "fetching", "done", "failed", "refused", "cancelled",
};

G_STATIC_ASSERT (G_N_ELEMENTS (device_state_names) == CANOPY_N_DEVICE_STATES);

const char *
canopy_device_state_to_string (CanopyDeviceState state)
{
  return state < CANOPY_N_DEVICE_STATES ? device_state_names[state] : "unknown";
}

gboolean
canopy_device_state_from_string (const char *text, CanopyDeviceState *state)
{
  for (guint i = 0; i < CANOPY_N_DEVICE_STATES; i++)
    if (g_strcmp0 (text, device_state_names[i]) == 0)
      {
        *state = i;
        return TRUE;
      }
  return FALSE;
}

void
canopy_device_status_free (CanopyDeviceStatus *status)
{
  if (status == NULL)
    return;
  g_free (status->device_id);
  g_free (status->name);
  g_free (status->office);
  g_strfreev (status->sources);
  g_free (status->error);
  g_free (status);
}

static CanopyDeviceState
device_state (CanopyDistributor *distributor, const Deployment *d, const char *device_id,
              const DeviceProgress *p)
{
  const DeviceFailure *failure = g_hash_table_lookup (distributor->failures, device_id);

  if (p != NULL && p->done)
    return CANOPY_DEVICE_DONE;
  if (d->state == CANOPY_DEPLOYMENT_CANCELLED || d->state == CANOPY_DEPLOYMENT_RETIRED)
    return CANOPY_DEVICE_CANCELLED;
  if (p != NULL && failure != NULL && g_str_equal (failure->deployment_id, d->id))
    return p->refused ? CANOPY_DEVICE_REFUSED : CANOPY_DEVICE_FAILED;
  if (p != NULL && p->chunks > 0)
    return CANOPY_DEVICE_FETCHING;
  return CANOPY_DEVICE_WAITING;
}

/* The role as the status names it: a device with no office sharing, or
 * not planned yet, fetches alone. */
static const char *
status_role (const DeviceProgress *p)
{
  if (p == NULL || p->role < 0)
    return "alone";
  switch ((CanopyRole) p->role)
    {
    case CANOPY_ROLE_LEAD:
      return "lead";
    case CANOPY_ROLE_PEER:
    case CANOPY_ROLE_WAIT:
      return "peer";
    case CANOPY_ROLE_DIRECT:
    default:
      return "alone";
    }
}

static CanopyDeviceStatus *
device_status (CanopyDistributor *distributor, const Deployment *d, const char *device_id,
               const DeviceProgress *p)
{
  const CanopyContent *content = canopy_catalog_lookup (distributor->catalog, d->content_id);
  GVariant *stored = canopy_store_get_device (distributor->store, device_id);
  CanopyDeviceStatus *status = g_new0 (CanopyDeviceStatus, 1);
  const char *name = NULL;

  status->device_id = g_strdup (device_id);
  if (stored != NULL)
    g_variant_get_child (stored, 0, "&s", &name);
  status->name = g_strdup (name != NULL ? name : "");
  status->office = office_of (distributor, device_id);
  status->state = device_state (distributor, d, device_id, p);
  status->size = content != NULL ? content->size : 0;
  if (p != NULL)
    {
      guint64 chunk_size = chunk_size_of (distributor, d);

      status->bytes_done = p->done ? status->size
                                   : MIN ((guint64) p->chunks * chunk_size, status->size);
      memcpy (status->bytes, p->bytes, sizeof status->bytes);
      status->error = g_strdup (p->error != NULL ? p->error : "");
      status->sources = g_strdupv (p->sources);
      status->last_report = p->last_report;
    }
  else
    status->error = g_strdup ("");
  if (status->sources == NULL)
    status->sources = g_new0 (char *, 1);
  status->percent = p != NULL && p->done ? 100
                    : status->size > 0   ? (guint) (status->bytes_done * 100 / status->size)
                                         : 0;
  status->role = status_role (p);
  return status;
}

static int
compare_status (gconstpointer a, gconstpointer b)
{
  const CanopyDeviceStatus *x = *(const CanopyDeviceStatus *const *) a;
  const CanopyDeviceStatus *y = *(const CanopyDeviceStatus *const *) b;
  int c = g_strcmp0 (x->office, y->office);

  if (c == 0)
    c = g_strcmp0 (x->name, y->name);
  return c != 0 ? c : g_strcmp0 (x->device_id, y->device_id);
}

/* Whether the stored device record @value is in one of @d's groups. */
static gboolean
stored_in_groups (const Deployment *d, GVariant *value)
{
  g_autofree const char **groups = NULL;

  g_variant_get_child (value, 1, "^a&s", &groups);
  return in_groups (d, groups);
}

static void
add_status (GPtrArray *list, CanopyDeviceStatus *status, const char *office, int state)
{
  if ((office != NULL && g_strcmp0 (status->office, office) != 0)
      || (state >= 0 && status->state != (CanopyDeviceState) state))
    {
      canopy_device_status_free (status);
      return;
    }
  g_ptr_array_add (list, status);
}

GPtrArray *
canopy_distributor_get_devices (CanopyDistributor *distributor, const char *id,
                                const char *office, int state)
{
  Deployment *d = g_hash_table_lookup (distributor->deployments, id);
  GHashTable *devices = canopy_store_get_devices (distributor->store);
  GPtrArray *list;
  GHashTableIter iter;
  gpointer device_id, value;

  if (d == NULL)
    return NULL;
  list = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_device_status_free);
  g_hash_table_iter_init (&iter, d->progress);
  while (g_hash_table_iter_next (&iter, &device_id, &value))
    add_status (list, device_status (distributor, d, device_id, value), office, state);
  /* Devices of its groups it was never sent: offline since, or never
   * planned. A cancelled deployment reaches no one new. */
  if (d->state == CANOPY_DEPLOYMENT_ACTIVE && devices != NULL)
    {
      g_hash_table_iter_init (&iter, devices);
      while (g_hash_table_iter_next (&iter, &device_id, &value))
        if (!g_hash_table_contains (d->progress, device_id) && stored_in_groups (d, value))
          add_status (list, device_status (distributor, d, device_id, NULL), office, state);
    }
  g_ptr_array_sort (list, compare_status);
  return list;
}

void
canopy_distributor_set_background_target (CanopyDistributor *distributor, guint target_ms)
{
  distributor->background_target_ms = target_ms;
}
