/* One assignment being carried out. The role decides the sources: a lead
 * takes from its office what the office holds and crosses the WAN (parent
 * office peers, the server, the origin, in that order) only for the rest;
 * an office peer takes from office peers alone; a direct device from the
 * origin. Every chunk is verified by the cache before it counts. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-fetch"

#include "agent/agent-config.h"
#include "agent/fetch.h"
#include "agent/install.h"
#include "agent/install-policy.h"
#include "agent/wan-pacer.h"
#include "lib/destination.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/origin.h"
#include "lib/planner.h"
#include "lib/wire.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* Requests outstanding at once, in all and per source: enough to keep a
 * LAN or WAN link busy while chunks are verified, few enough that a slow
 * source holds little back. */
#define MAX_INFLIGHT 8
#define MAX_PER_SOURCE 4
/* The background class keeps two range requests of a chunk or so on their
 * way: what it learns of the link's queue is per request. */
#define MAX_PER_ORIGIN 2
/* A peer that has not answered a request by then is asked no more for it. */
#define REQUEST_TIMEOUT_US (30 * G_USEC_PER_SEC)
/* A peer with requests outstanding that sends nothing for this long is
 * withholding them: an honest one delivers a chunk well within it even on
 * a slow LAN, and a lead must not wait the full timeout on a liar. */
#define PEER_SILENCE_US (10 * G_USEC_PER_SEC)
/* Over the WAN, a source is allowed at least this many chunks' time at the
 * office's link rate before either limit above: chunks are paced at that
 * rate, and a few queue behind each other. */
#define WAN_ALLOWANCE_CHUNKS 4
/* A peer that withholds this many chunks it announced, without delivering
 * one in between, is lying about what it has: dropped for the content. */
#define MAX_WITHHELD 4
/* An origin failing this many times in a row is given up for the next source. */
#define ORIGIN_MAX_ERRORS 3
/* Otherwise adjacent chunks go in one range request of up to this many
 * bytes (the whole of most packages), delivered chunk by chunk as they
 * arrive: like a download, one connection carries the content at the
 * link's speed, with no second connection to start slowly. */
#define ORIGIN_RUN_MAX ((guint64) 1024 * 1024 * 1024)
/* File storage is read a range at a time in a worker, whole: smaller. */
#define FILE_RUN_MAX ((guint64) 2 * 1024 * 1024)
/* The next request goes out when the bytes asked and not in yet fall
 * below what arrives in two round trips (the origin's answer time, a
 * guess until measured; this at least), so the link never idles between
 * requests. */
#define ORIGIN_LOW_WATER_MIN ((guint64) 1024 * 1024)
/* Read at the link rate, a streaming origin's connections may hold four
 * of the network's round trips' worth unread (this at least): enough to
 * keep the link full while its queue lengthens the round trip, and little
 * to lose in buffers when the lead dies or hands over. */
#define ORIGIN_WINDOW_ROUND_TRIPS 4
#define ORIGIN_WINDOW_MIN (256 * 1024)
#define ORIGIN_LOW_WATER_UNKNOWN_RATE ((guint64) 4 * 1024 * 1024)
#define ORIGIN_WAIT_GUESS_US (100 * 1000)
#define RECONNECT_TICKS 5
/* A peer that holds nothing of the content never sends a have: after this
 * long connected without one, it counts as holding nothing. */
#define HAVE_GRACE_US (G_USEC_PER_SEC)
/* What a peer's news waits for more to come: about a chunk's time on a
 * gigabit LAN. */
#define SOON_MS 2
/* A lead waits this long at most to learn what its office holds before it
 * crosses the WAN, so an unreachable peer does not hold it up for long. */
#define SETTLE_MAX_US (5 * G_USEC_PER_SEC)
#define N_KINDS CANOPY_SOURCE_N_KINDS
/* A full disk is tried again after this long, doubling up to the maximum:
 * soon enough that freeing space is noticed, rarely enough not to spin. */
#define DISK_RETRY_FIRST_S 2
#define DISK_RETRY_MAX_S 60
/* How long a destination found allowed is trusted (destination_allowed()). */
#define ALLOWED_RECHECK_US (G_USEC_PER_SEC)
/* The background class never goes below one chunk in this long: slow
 * enough to leave a busy link to others (2 % of 50 Mbit/s), fast enough
 * that the server does not take the lead for one that stalled (30 s
 * without a chunk), and that its delay samples notice soon when the link
 * is free again. */
#define BACKGROUND_MIN_CHUNK_S 8.0
/* ... nor below this share of the office's link. */
#define BACKGROUND_MIN_SHARE 0.01
/* A receive window never narrower than this: a few packets. */
#define BACKGROUND_MIN_WINDOW (16 * 1024)

typedef enum {
  CHUNK_MISSING,
  CHUNK_INFLIGHT,
  CHUNK_STORING,
  CHUNK_HELD,
} ChunkState;

typedef struct {
  CanopySourceKind kind;
  char *device_id; /* "" for the origin, or a peer known only by address */
  char *host;
  guint16 port;
  guint order;         /* position in the latest assignment */
  gboolean listed;     /* in the latest assignment */
  gboolean dropped;    /* sent a damaged chunk or withheld announced ones: never again */
  gboolean failed;     /* the origin kept failing */
  gboolean connected;  /* peers: a ready connection */
  gboolean unreachable;
  gint64 connected_at;
  guint inflight;
  /* The origin: range requests on their way, and the chunk that would
   * extend the run schedule() is gathering (G_MAXUINT: none). */
  guint requests;
  guint run_next;
  guint64 outstanding; /* the origin: bytes asked for and not in yet */
  gint64 answered_at;  /* peers: when it last answered, or was first asked */
  guint withheld;      /* announced chunks not delivered since its last good one */
  gint64 busy_until;
  guint errors;
  gint64 retry_at;
  GBytes *have;        /* peers: their bitfield */
  CanopyOrigin *origin;
  GPtrArray *runs;     /* the origin: its range requests' Jobs */
  guint64 report_bytes; /* since the last progress */
  guint report_failed;
} Source;

/* A request to a source: one chunk, or a run of them from the origin. */
typedef struct {
  CanopyFetch *fetch;
  guint index;
  guint count; /* origin reads: adjacent chunks from @index on */
  guint source;
  GBytes *data;
  gint64 started_at; /* monotonic µs */
  GCancellable *cancellable; /* origin reads: this one alone, or the fetch */
  gulong cancelled_handler;
} Job;

struct _CanopyFetch {
  CanopyCache *cache;
  CanopyPeers *peers;
  CanopyManifest *manifest;
  char *deployment_id;
  char *destination;
  GStrv destinations; /* where this device allows packages */
  CanopyRole role;
  guint64 wan_rate; /* bits/s, 0: unlimited */
  CanopyWanPacer *pacer; /* the background class; NULL: normal */
  guint32 target_ms;
  GPtrArray *sources; /* Source; only appended to, so indices stay valid */
  CanopyCacheEntry *entry;
  CanopyInstall *install; /* NULL once committed, or after the agent stopped */
  guint n;
  guint n_held; /* chunks in state CHUNK_HELD */
  guint8 *state;
  guint *chunk_source;
  gint64 *chunk_since;
  guint inflight;
  guint origin_inflight; /* of @inflight, asked of origins */
  guint storing;
  gboolean assembling;
  gboolean finished;
  gboolean failed;
  gboolean stopped;
  GCancellable *cancellable;
  double tokens;
  gint64 tokens_at;
  guint wake_timer;
  guint soon_source; /* schedule() once the haves read together are in */
  guint tick_timer;
  guint ticks;
  gint64 started_at;
  gboolean disk_full;    /* since the last ENOSPC until something is stored again */
  gint64 disk_full_since; /* monotonic µs */
  guint disk_retry_s;
  gint64 disk_retry_at;  /* monotonic µs before which nothing is fetched */
  gint64 allowed_at;     /* monotonic µs the destination was last found allowed */
  guint64 bytes[N_KINDS];
  guint reused_chunks;  /* set by the opening thread, read once it returns */
  guint64 reused_bytes;
  gboolean changed;
  CanopyFetchReportFunc report;
  gpointer report_data;
  char *device_id;       /* (nullable) this device, for the log */
  char *office;          /* (nullable) its office, for the log */
  char *said_sources;    /* the role and sources the log last named */
  gint64 first_started_at; /* monotonic µs the first chunk could be asked for */
};

G_DEFINE_QUARK (canopy-fetch-error-quark, canopy_fetch_error)

static void schedule (CanopyFetch *fetch);
static void fail (CanopyFetch *fetch, const char *reason);
static const CanopyPeersClient fetch_peers_client;

/* The same, as a pointer for canopy_log_event(). */
#define FETCH_SUBJECT(fetch)                                                                \
  (&(const CanopyLogSubject) { (fetch)->deployment_id, (fetch)->manifest->content_id,      \
                                (fetch)->device_id, (fetch)->office })

/* What the journal files this fetch's lines under. */
static CanopyLogSubject
subject_of (const CanopyFetch *fetch)
{
  return (CanopyLogSubject) { fetch->deployment_id, fetch->manifest->content_id, fetch->device_id,
                              fetch->office };
}

static void
source_free (Source *s)
{
  g_free (s->device_id);
  g_free (s->host);
  g_clear_pointer (&s->have, g_bytes_unref);
  g_clear_pointer (&s->runs, g_ptr_array_unref);
  canopy_origin_free (s->origin);
  g_free (s);
}

/* Runs with the last reference, maybe on a worker thread after the agent
 * stopped: the cache and entry references keep what it stored alive. */
static void
fetch_clear (CanopyFetch *fetch)
{
  g_clear_pointer (&fetch->install, canopy_install_free);
  g_clear_pointer (&fetch->entry, canopy_cache_entry_unref);
  g_clear_pointer (&fetch->cache, canopy_cache_unref);
  g_clear_pointer (&fetch->sources, g_ptr_array_unref);
  g_clear_pointer (&fetch->pacer, canopy_wan_pacer_free);
  canopy_manifest_free (fetch->manifest);
  g_free (fetch->deployment_id);
  g_free (fetch->destination);
  g_strfreev (fetch->destinations);
  g_free (fetch->device_id);
  g_free (fetch->office);
  g_free (fetch->said_sources);
  g_free (fetch->state);
  g_free (fetch->chunk_source);
  g_free (fetch->chunk_since);
  g_clear_object (&fetch->cancellable);
}

static CanopyFetch *
fetch_ref (CanopyFetch *fetch)
{
  return g_atomic_rc_box_acquire (fetch);
}

static void
fetch_unref (CanopyFetch *fetch)
{
  g_atomic_rc_box_release_full (fetch, (GDestroyNotify) fetch_clear);
}

/* --- assignment ------------------------------------------------------------ */

static gboolean
is_peer_kind (CanopySourceKind kind)
{
  return kind != CANOPY_SOURCE_ORIGIN;
}

static Source *
find_source (CanopyFetch *fetch, CanopySourceKind kind, const char *device_id, const char *host,
             guint16 port)
{
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);
      if (s->kind == kind && g_str_equal (s->device_id, device_id) && g_str_equal (s->host, host)
          && s->port == port)
        return s;
    }
  return NULL;
}

static Source *
find_peer (CanopyFetch *fetch, const char *device_id)
{
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);
      if (is_peer_kind (s->kind) && g_str_equal (s->device_id, device_id))
        return s;
    }
  return NULL;
}

static guint
source_index (CanopyFetch *fetch, Source *s)
{
  guint index = 0;

  g_ptr_array_find (fetch->sources, s, &index);
  return index;
}

static void
apply_sources (CanopyFetch *fetch, GVariant *sources)
{
  GVariantIter iter;
  const char *device_id, *host;
  guint32 kind;
  guint16 port;
  guint order = 0;

  for (guint i = 0; i < fetch->sources->len; i++)
    ((Source *) g_ptr_array_index (fetch->sources, i))->listed = FALSE;
  g_variant_iter_init (&iter, sources);
  while (g_variant_iter_next (&iter, "(u&s&sq)", &kind, &device_id, &host, &port))
    {
      Source *s;

      if (kind > CANOPY_SOURCE_ORIGIN)
        continue;
      s = find_source (fetch, kind, device_id, host, port);
      if (s == NULL)
        {
          g_autoptr (GError) error = NULL;

          s = g_new0 (Source, 1);
          s->kind = kind;
          s->device_id = g_strdup (device_id);
          s->host = g_strdup (host);
          s->port = port;
          s->run_next = G_MAXUINT;
          if (kind == CANOPY_SOURCE_ORIGIN)
            {
              s->runs = g_ptr_array_new ();
              s->origin = canopy_origin_new (host, &error);
              if (s->origin == NULL)
                {
                  g_message (_("Cannot use the origin of \"%s\": %s"), fetch->manifest->name,
                             error->message);
                  s->failed = TRUE;
                }
            }
          g_ptr_array_add (fetch->sources, s);
        }
      s->listed = TRUE;
      s->order = order++;
      /* A new assignment gives a failing origin another chance. */
      s->failed = s->failed && s->origin == NULL;
      s->errors = 0;
    }
}

typedef struct {
  const char *deployment_id;
  GBytes *manifest;
  guint32 role;
  GVariant *sources;
  const char *destination;
  guint64 wan_rate;
} Assignment;

static void
assignment_clear (Assignment *a)
{
  g_clear_pointer (&a->manifest, g_bytes_unref);
  g_clear_pointer (&a->sources, g_variant_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Assignment, assignment_clear)

static gboolean
read_assignment (GVariant *body, Assignment *a, GError **error)
{
  g_autoptr (GVariant) manifest = NULL;

  if (!g_variant_is_of_type (body, G_VARIANT_TYPE ("(sayua(ussq)st)")))
    {
      g_set_error (error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_ASSIGNMENT,
                   _("The server sent an assignment of the wrong type"));
      return FALSE;
    }
  g_variant_get (body, "(&s@ayu@a(ussq)&st)", &a->deployment_id, &manifest, &a->role,
                 &a->sources, &a->destination, &a->wan_rate);
  a->manifest = g_variant_get_data_as_bytes (manifest);
  if (a->role > CANOPY_ROLE_WAIT || !g_path_is_absolute (a->destination))
    {
      g_set_error (error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_ASSIGNMENT,
                   _("The assignment of deployment %s has role %u or destination \"%s\", which "
                     "this agent cannot carry out; upgrade the agent or fix the deployment"),
                   a->deployment_id, a->role, a->destination);
      return FALSE;
    }
  return TRUE;
}

static void pace_origin (CanopyFetch *fetch, Source *s);
static gboolean origin_streams (const CanopyFetch *fetch, const Source *s);
static void cut_origin_runs (CanopyFetch *fetch, Source *s, guint64 keep, const Source *peer);
static void cut_for_office_peer (CanopyFetch *fetch, const Source *peer);
static gboolean wan_kind_allowed (CanopyFetch *fetch, CanopySourceKind kind);

static void
apply_assignment (CanopyFetch *fetch, const Assignment *a)
{
  g_free (fetch->destination);
  fetch->destination = g_strdup (a->destination);
  fetch->allowed_at = 0;
  fetch->role = a->role;
  fetch->wan_rate = a->wan_rate;
  if (fetch->pacer != NULL)
    canopy_wan_pacer_set_max_rate (fetch->pacer, (double) fetch->wan_rate / 8.0);
  apply_sources (fetch, a->sources);
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);

      if (s->origin == NULL)
        continue;
      /* A run may hold the rest of the content: one this device may no
       * longer carry across the WAN (it leads no more) stops at the chunk
       * under way, not when it ends. */
      if (!s->listed || !wan_kind_allowed (fetch, s->kind))
        cut_origin_runs (fetch, s, 1, NULL);
      pace_origin (fetch, s);
    }
  for (guint i = 0; i < fetch->sources->len; i++)
    cut_for_office_peer (fetch, g_ptr_array_index (fetch->sources, i));
}

static double
background_min_rate (const CanopyFetch *fetch)
{
  return MAX ((double) fetch->manifest->chunk_size / BACKGROUND_MIN_CHUNK_S,
              (double) fetch->wan_rate / 8.0 * BACKGROUND_MIN_SHARE);
}

void
canopy_fetch_set_wan_class (CanopyFetch *fetch, gboolean background, guint target_ms)
{
  target_ms = CLAMP (target_ms, CANOPY_WAN_PACER_MIN_TARGET_MS, CANOPY_WAN_PACER_MAX_TARGET_MS);
  if (!background)
    {
      g_clear_pointer (&fetch->pacer, canopy_wan_pacer_free);
      /* The background class's windows go; a streaming origin keeps its
       * own, set before its connections grow theirs (a window once
       * offered cannot be taken back). */
      for (guint i = 0; i < fetch->sources->len; i++)
        {
          Source *s = g_ptr_array_index (fetch->sources, i);
          if (s->origin != NULL && !origin_streams (fetch, s))
            canopy_origin_set_receive_window (s->origin, 0);
          pace_origin (fetch, s);
        }
      return;
    }
  /* The same class again (with every assignment) keeps what was learnt. */
  if (fetch->pacer != NULL && fetch->target_ms == target_ms)
    return;
  g_clear_pointer (&fetch->pacer, canopy_wan_pacer_free);
  fetch->target_ms = target_ms;
  fetch->pacer = canopy_wan_pacer_new ((gint64) target_ms * 1000, (double) fetch->wan_rate / 8.0,
                                       background_min_rate (fetch));
  g_debug ("deployment %s: background class, target %u ms", fetch->deployment_id, target_ms);
}

double
canopy_fetch_get_background_rate (const CanopyFetch *fetch)
{
  return fetch->pacer != NULL ? canopy_wan_pacer_get_rate (fetch->pacer) : 0;
}

gint64
canopy_fetch_get_queueing_delay (const CanopyFetch *fetch)
{
  return fetch->pacer != NULL ? canopy_wan_pacer_get_queueing_delay (fetch->pacer) : -1;
}

CanopyFetch *
canopy_fetch_new (CanopyCache *cache, CanopyPeers *peers, const CanopyVerifyKey *key,
                  GVariant *assignment, CanopyFetchReportFunc report, gpointer user_data,
                  GError **error)
{
  g_auto (Assignment) a = { 0 };
  g_autoptr (GError) local_error = NULL;
  CanopyFetch *fetch;
  CanopyManifest *manifest;

  if (!read_assignment (assignment, &a, error))
    return NULL;
  manifest = canopy_manifest_parse (a.manifest, key, &local_error);
  if (manifest == NULL)
    {
      g_set_error (error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_ASSIGNMENT,
                   _("The manifest of deployment %s is not usable: %s"), a.deployment_id,
                   local_error->message);
      return NULL;
    }
  /* Atomic: worker threads drop their references when they finish. */
  fetch = g_atomic_rc_box_new0 (CanopyFetch);
  fetch->cache = canopy_cache_ref (cache);
  {
    static const char *const defaults[] = { CANOPY_AGENT_CONFIG_DESTINATIONS, NULL };
    fetch->destinations = g_strdupv ((char **) defaults);
  }
  fetch->peers = peers;
  fetch->manifest = manifest;
  fetch->n = canopy_manifest_get_n_chunks (manifest);
  fetch->deployment_id = g_strdup (a.deployment_id);
  fetch->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) source_free);
  fetch->state = g_new0 (guint8, fetch->n + 1);
  fetch->chunk_source = g_new0 (guint, fetch->n + 1);
  fetch->chunk_since = g_new0 (gint64, fetch->n + 1);
  fetch->cancellable = g_cancellable_new ();
  fetch->report = report;
  fetch->report_data = user_data;
  apply_assignment (fetch, &a);
  return fetch;
}

const char *
canopy_fetch_get_deployment_id (const CanopyFetch *fetch)
{
  return fetch->deployment_id;
}

const char *
canopy_fetch_get_destination (const CanopyFetch *fetch)
{
  return fetch->destination;
}

const char *
canopy_fetch_get_content_id (const CanopyFetch *fetch)
{
  return fetch->manifest->content_id;
}

gboolean
canopy_fetch_is_finished (const CanopyFetch *fetch)
{
  return fetch->finished;
}

guint64
canopy_fetch_get_bytes (const CanopyFetch *fetch, guint kind)
{
  return kind < N_KINDS ? fetch->bytes[kind] : 0;
}

/* --- reporting ------------------------------------------------------------- */

static void
send_progress (CanopyFetch *fetch)
{
  GVariantBuilder by_kind, by_peer;
  guint held = fetch->entry != NULL ? canopy_cache_entry_count_chunks (fetch->entry) : 0;

  g_variant_builder_init (&by_kind, G_VARIANT_TYPE ("at"));
  for (guint k = 0; k < N_KINDS; k++)
    g_variant_builder_add (&by_kind, "t", fetch->bytes[k]);
  g_variant_builder_init (&by_peer, G_VARIANT_TYPE ("a(stu)"));
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);
      if (s->report_bytes == 0 && s->report_failed == 0)
        continue;
      if (s->device_id[0] != '\0')
        g_variant_builder_add (&by_peer, "(stu)", s->device_id, s->report_bytes,
                               s->report_failed);
      s->report_bytes = 0;
      s->report_failed = 0;
    }
  fetch->changed = FALSE;
  fetch->report (fetch, CANOPY_WIRE_PROGRESS,
                 g_variant_new ("(su@at@a(stu))",
                                fetch->deployment_id, held, g_variant_builder_end (&by_kind),
                                g_variant_builder_end (&by_peer)),
                 fetch->report_data);
}

static void
stop_timers (CanopyFetch *fetch)
{
  if (fetch->wake_timer != 0)
    g_source_remove (fetch->wake_timer);
  if (fetch->tick_timer != 0)
    g_source_remove (fetch->tick_timer);
  if (fetch->soon_source != 0)
    g_source_remove (fetch->soon_source);
  fetch->wake_timer = fetch->tick_timer = fetch->soon_source = 0;
}

static void
fail (CanopyFetch *fetch, const char *reason)
{
  CanopyLogSubject subject = subject_of (fetch);

  if (fetch->finished)
    return;
  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_FAILED, &subject,
                    _("Cannot complete deployment %s of \"%s\": %s"), fetch->deployment_id,
                    fetch->manifest->name, reason);
  fetch->finished = TRUE;
  fetch->failed = TRUE;
  stop_timers (fetch);
  send_progress (fetch);
  fetch->report (fetch, CANOPY_WIRE_FAILED, g_variant_new ("(ss)", fetch->deployment_id, reason),
                 fetch->report_data);
}

/* What the device's policy refuses is refused before a byte is fetched,
 * and told to the server, which shows the reason to the admin. The check
 * walks the destination's directories, and requests are made many times
 * a second: a destination found allowed is looked at again after
 * ALLOWED_RECHECK_US, or at once when the policy or the assignment
 * changes. Putting the package in place checks it again in any case. */
static gboolean
destination_allowed (CanopyFetch *fetch)
{
  g_autoptr (GError) error = NULL;
  gint64 now = g_get_monotonic_time ();

  if (fetch->allowed_at != 0 && now - fetch->allowed_at < ALLOWED_RECHECK_US)
    return TRUE;
  if (canopy_install_policy_check ((const char *const *) fetch->destinations,
                                   fetch->destination, &error))
    {
      fetch->allowed_at = now;
      return TRUE;
    }
  fail (fetch, error->message);
  return FALSE;
}

void
canopy_fetch_set_destinations (CanopyFetch *fetch, const char *const *directories)
{
  g_strfreev (fetch->destinations);
  fetch->destinations = g_strdupv ((char **) directories);
  fetch->allowed_at = 0;
}

static gboolean
is_disk_full (const GError *error)
{
  return g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_NO_SPACE)
         || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC);
}

/* A full disk pauses the fetch instead of ending it: the admin and the
 * server hear it once per episode, the verified chunks stay (and are
 * served to the office), and storing is tried again later, less often
 * each time it still fails, until space is freed. */
static void
wait_for_disk (CanopyFetch *fetch, const GError *error)
{
  gint64 now = g_get_monotonic_time ();

  if (fetch->disk_retry_at > now)
    return; /* chunks that were already on their way fail the same way */
  if (!fetch->disk_full)
    {
      fetch->disk_full = TRUE;
      fetch->disk_full_since = now;
      fetch->disk_retry_s = DISK_RETRY_FIRST_S;
      g_message (_("Deployment %s of \"%s\" is paused: %s"), fetch->deployment_id,
                 fetch->manifest->name, error->message);
      send_progress (fetch);
      fetch->report (fetch, CANOPY_WIRE_FAILED,
                     g_variant_new ("(ss)", fetch->deployment_id, error->message),
                     fetch->report_data);
    }
  else
    fetch->disk_retry_s = MIN (fetch->disk_retry_s * 2, DISK_RETRY_MAX_S);
  fetch->disk_retry_at = now + (gint64) fetch->disk_retry_s * G_USEC_PER_SEC;
  g_debug ("deployment %s: disk still full, trying again in %u s", fetch->deployment_id,
           fetch->disk_retry_s);
}

/* A chunk stored since the disk filled up: space is back. One that was
 * started before proves nothing (it may have taken the last free blocks). */
static void
disk_has_space (CanopyFetch *fetch, gint64 started_at)
{
  if (!fetch->disk_full || started_at <= fetch->disk_full_since)
    return;
  fetch->disk_full = FALSE;
  fetch->disk_retry_at = 0;
  g_message (_("Deployment %s of \"%s\" has disk space again and goes on"),
             fetch->deployment_id, fetch->manifest->name);
}

static void
report_done (CanopyFetch *fetch)
{
  fetch->report (fetch, CANOPY_WIRE_DONE,
                 g_variant_new ("(s@ay)", fetch->deployment_id,
                                g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                           fetch->manifest->sha256,
                                                           sizeof fetch->manifest->sha256, 1)),
                 fetch->report_data);
}

/* --- requests -------------------------------------------------------------- */

static gboolean
peer_has (const Source *s, guint index)
{
  const guint8 *bits;
  gsize len;

  if (s->have == NULL)
    return FALSE;
  bits = g_bytes_get_data (s->have, &len);
  return index / 8 < len && (bits[index / 8] & (1u << (index % 8))) != 0;
}

/* The request for @index is over, answered or not. */
static void
release_chunk (CanopyFetch *fetch, guint index, ChunkState next)
{
  if (fetch->state[index] == CHUNK_INFLIGHT)
    {
      Source *s = g_ptr_array_index (fetch->sources, fetch->chunk_source[index]);
      s->inflight--;
      fetch->inflight--;
      if (s->kind == CANOPY_SOURCE_ORIGIN)
        {
          s->outstanding -= canopy_manifest_get_chunk_length (fetch->manifest, index);
          fetch->origin_inflight--;
        }
    }
  fetch->state[index] = next;
}

static void
release_source (CanopyFetch *fetch, Source *s, gboolean cancel)
{
  guint si = source_index (fetch, s);

  for (guint i = 0; i < fetch->n; i++)
    if (fetch->state[i] == CHUNK_INFLIGHT && fetch->chunk_source[i] == si)
      {
        if (cancel && s->kind != CANOPY_SOURCE_ORIGIN && fetch->peers != NULL)
          canopy_peers_cancel (fetch->peers, s->device_id, fetch->manifest->content_id, i);
        /* An origin read cannot be taken back; its answer is simply ignored. */
        release_chunk (fetch, i, CHUNK_MISSING);
      }
}

static void
mark_inflight (CanopyFetch *fetch, Source *s, guint index)
{
  fetch->state[index] = CHUNK_INFLIGHT;
  fetch->chunk_source[index] = source_index (fetch, s);
  fetch->chunk_since[index] = g_get_monotonic_time ();
  if (s->inflight == 0)
    s->answered_at = fetch->chunk_since[index];
  s->inflight++;
  fetch->inflight++;
  if (s->kind == CANOPY_SOURCE_ORIGIN)
    {
      s->outstanding += canopy_manifest_get_chunk_length (fetch->manifest, index);
      fetch->origin_inflight++;
    }
}


static void
job_free (Job *job)
{
  if (job->cancellable != NULL)
    g_cancellable_disconnect (job->fetch->cancellable, job->cancelled_handler);
  g_clear_object (&job->cancellable);
  fetch_unref (job->fetch);
  g_clear_pointer (&job->data, g_bytes_unref);
  g_free (job);
}

static Job *
job_new (CanopyFetch *fetch, guint index, guint source, GBytes *data)
{
  Job *job = g_new0 (Job, 1);

  job->fetch = fetch_ref (fetch);
  job->index = index;
  job->count = 1;
  job->source = source;
  job->data = data != NULL ? g_bytes_ref (data) : NULL;
  job->started_at = g_get_monotonic_time ();
  return job;
}

static void
store_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;
  gsize length;
  const guint8 *data = g_bytes_get_data (job->data, &length);

  if (canopy_cache_entry_store_chunk (job->fetch->entry, job->index, data, length, &error))
    {
      if (job->fetch->install != NULL)
        canopy_install_add_chunk (job->fetch->install, job->index, job->data);
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_error (task, error);
}

static void
reject_source (CanopyFetch *fetch, Source *s, guint index)
{
  s->report_failed++;
  fetch->changed = TRUE;
  if (s->dropped)
    return;
  s->dropped = TRUE;
  if (s->kind == CANOPY_SOURCE_ORIGIN)
    canopy_log_event (
        G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_SOURCES, FETCH_SUBJECT (fetch),
        _("Chunk %u of \"%s\" from the origin %s does not match the signed manifest: "
           "the package was changed after it was published. Publish it again"),
        index, fetch->manifest->name, s->host);
  else
    canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_SOURCES,
                      FETCH_SUBJECT (fetch),
                      _("Chunk %u of \"%s\" from peer %s does not match the signed manifest; that "
                         "peer is no longer used for this content and is reported to the server"),
                      index, fetch->manifest->name, s->device_id);
  release_source (fetch, s, TRUE);
}

/* Forgets that @s holds @index, until it announces it again. */
static void
forget_chunk (Source *s, guint index)
{
  g_autofree guint8 *bits = NULL;
  gsize len;

  if (s->have == NULL)
    return;
  bits = g_memdup2 (g_bytes_get_data (s->have, &len), g_bytes_get_size (s->have));
  bits[index / 8] &= (guint8) ~(1u << (index % 8));
  g_bytes_unref (s->have);
  s->have = g_bytes_new (bits, len);
}

/* @s did not deliver @index, which it announced: said it does not hold
 * it after all, or let the request time out. Now and then an honest peer
 * does (it evicted the content); one that keeps doing it is lying, and
 * would otherwise hold up the office, its lead above all, for ever. */
static void
note_withheld (CanopyFetch *fetch, Source *s, guint index)
{
  forget_chunk (s, index);
  if (s->dropped || ++s->withheld < MAX_WITHHELD)
    return;
  s->dropped = TRUE;
  s->report_failed += s->withheld;
  fetch->changed = TRUE;
  canopy_log_event (
      G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_SOURCES, FETCH_SUBJECT (fetch),
      _("Peer %s announced chunks of \"%s\" but withheld %u of them; that peer is no "
         "longer used for this content and is reported to the server"),
      s->device_id, fetch->manifest->name, s->withheld);
  release_source (fetch, s, TRUE);
}

/* What the bytes @s sent count as: an office peer that served them by
 * hash from other content (an earlier version) counts as earlier
 * versions, as the device's own cache does: content the office already
 * held, which crossed no link but the office's. */
static CanopySourceKind
source_kind_of (CanopyFetch *fetch, const Source *s)
{
  if (s->kind == CANOPY_SOURCE_OFFICE_PEER && fetch->peers != NULL
      && canopy_peers_serves_by_hash (fetch->peers, s->device_id, fetch->manifest->content_id))
    return CANOPY_SOURCE_EARLIER_VERSIONS;
  return s->kind;
}

static void
on_stored (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Job *job = g_task_get_task_data (G_TASK (result));
  CanopyFetch *fetch = job->fetch;
  g_autoptr (GError) error = NULL;
  Source *s = g_ptr_array_index (fetch->sources, job->source);

  fetch->storing--;
  if (fetch->stopped)
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      fetch->state[job->index] = CHUNK_MISSING;
      if (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT))
        reject_source (fetch, s, job->index);
      else if (is_disk_full (error))
        wait_for_disk (fetch, error);
      else
        {
          fail (fetch, error->message);
          return;
        }
    }
  else
    {
      gsize length = g_bytes_get_size (job->data);

      disk_has_space (fetch, job->started_at);
      fetch->state[job->index] = CHUNK_HELD;
      fetch->n_held++;
      fetch->bytes[source_kind_of (fetch, s)] += length;
      s->report_bytes += length;
      s->withheld = 0;
      fetch->changed = TRUE;
      if (fetch->peers != NULL)
        {
          canopy_peers_keep_chunk (fetch->peers, fetch->manifest->content_id, job->index,
                                   job->data);
          canopy_peers_announce (fetch->peers, fetch->manifest->content_id);
        }
    }
  schedule (fetch);
}

static void
store_async (CanopyFetch *fetch, guint index, guint source, GBytes *data)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_stored, NULL);

  fetch->state[index] = CHUNK_STORING;
  fetch->storing++;
  g_task_set_task_data (task, job_new (fetch, index, source, data), (GDestroyNotify) job_free);
  g_task_run_in_thread (task, store_thread);
}

/* Whether chunk @index is still waited for from the origin read of @job. */
static gboolean
run_wants (const CanopyFetch *fetch, const Job *job, guint index)
{
  return fetch->state[index] == CHUNK_INFLIGHT && fetch->chunk_source[index] == job->source;
}

/* Bytes each HTTP connection to the origin may have in flight: with the
 * office's link rate known, what fills the link over the base delay plus
 * the target, shared by the connections. Pacing requests alone leaves
 * each chunk's sender free to queue as much as its congestion window
 * holds; this bounds what a lead alone on the link adds to its queue
 * (as rLEDBAT, draft-irtf-iccrg-rledbat, does from the receiving side).
 * 0: no bound (no link rate, or no base delay yet). */
static guint
background_window (const CanopyFetch *fetch)
{
  gint64 base = canopy_wan_pacer_get_base_delay (fetch->pacer);
  double window;

  if (fetch->wan_rate == 0 || base < 0)
    return 0;
  window = (double) fetch->wan_rate / 8.0
           * (double) (base + canopy_wan_pacer_get_target (fetch->pacer)) / G_USEC_PER_SEC
           / MAX_PER_ORIGIN;
  return (guint) CLAMP (window, BACKGROUND_MIN_WINDOW, G_MAXINT / 2);
}

/* A background lead learns the link's queue from its own WAN requests:
 * the wait for the first byte of an HTTP answer, or for a whole chunk
 * from a transport that delivers chunks whole (parent-office peers, the
 * server) or from file storage. */
static void
note_wan_sample (CanopyFetch *fetch, const Source *s, gint64 wait_us, gint64 requested_at,
                 gsize length)
{
  gint64 now = g_get_monotonic_time ();

  if (fetch->pacer == NULL || s->kind == CANOPY_SOURCE_OFFICE_PEER)
    return;
  if (wait_us >= 0)
    canopy_wan_pacer_add_delay (fetch->pacer, now, wait_us);
  else
    canopy_wan_pacer_add_transfer (fetch->pacer, now, now - requested_at, length);
  if (s->origin != NULL)
    canopy_origin_set_receive_window (s->origin, background_window (fetch));
}

static guint origin_window (const CanopyFetch *fetch, const Source *s);

/* A streaming origin is read at the office's link rate, which the
 * server's schedule changes under a run that may last the whole
 * download; other origins are paced by request. */
static void
pace_origin (CanopyFetch *fetch, Source *s)
{
  /* One no longer used keeps its pace while the chunk under way ends:
   * the new assignment's rate (none, for an office peer) is not its. */
  if (s->origin == NULL || !s->listed || !wan_kind_allowed (fetch, s->kind))
    return;
  if (!origin_streams (fetch, s))
    {
      canopy_origin_set_rate (s->origin, 0);
      return;
    }
  canopy_origin_set_rate (s->origin, (double) fetch->wan_rate / 8.0);
  canopy_origin_set_receive_window (s->origin, origin_window (fetch, s));
}

/* Whether a chunk of @job's run from @index on is still wanted of it. */
static gboolean
run_wants_any (const CanopyFetch *fetch, const Job *job, guint index)
{
  for (guint i = index; i < job->index + job->count; i++)
    if (run_wants (fetch, job, i))
      return TRUE;
  return FALSE;
}

/* Cuts the runs the origin @s streams to this device at the first chunk
 * past @keep bytes still to come that @peer holds (NULL: any chunk);
 * what follows is scheduled again, from the office first. */
static void
cut_origin_runs (CanopyFetch *fetch, Source *s, guint64 keep, const Source *peer)
{
  guint si = source_index (fetch, s);
  guint64 on_its_way = 0;
  gboolean cut = FALSE;

  for (guint i = 0; i < fetch->n; i++)
    {
      if (fetch->state[i] != CHUNK_INFLIGHT || fetch->chunk_source[i] != si)
        continue;
      cut = cut || (on_its_way >= keep && (peer == NULL || peer_has (peer, i)));
      if (cut)
        release_chunk (fetch, i, CHUNK_MISSING);
      else
        on_its_way += canopy_manifest_get_chunk_length (fetch->manifest, i);
    }
  if (!cut)
    return;
  /* A run with nothing left wanted stops now; the others, at the last
   * chunk still wanted of them. */
  for (guint k = 0; k < s->runs->len; k++)
    {
      Job *job = g_ptr_array_index (s->runs, k);
      if (!run_wants_any (fetch, job, job->index))
        g_cancellable_cancel (job->cancellable);
    }
}

/* A run sent before office peer @peer's chunks were known would carry
 * them across the WAN a second time: a new lead's, while the old one was
 * still bringing the content in cut off from its server (unlisted until
 * it reached the new one). Runs are cut past what is on its way. */
static void
cut_for_office_peer (CanopyFetch *fetch, const Source *peer)
{
  if (peer->kind != CANOPY_SOURCE_OFFICE_PEER || !peer->listed || peer->dropped
      || peer->have == NULL)
    return;
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *o = g_ptr_array_index (fetch->sources, i);
      if (o->runs != NULL && o->runs->len > 0 && origin_streams (fetch, o))
        cut_origin_runs (fetch, o, MAX (origin_window (fetch, o), ORIGIN_WINDOW_MIN), peer);
    }
}

static void
on_origin_piece (guint piece, GBytes *data, gpointer user_data)
{
  Job *job = user_data;
  CanopyFetch *fetch = job->fetch;
  Source *s = g_ptr_array_index (fetch->sources, job->source);
  guint index = job->index + piece;

  if (fetch->stopped)
    return;
  /* Narrowed to the round trip measured since the run began. */
  pace_origin (fetch, s);
  if (run_wants (fetch, job, index))
    {
      release_chunk (fetch, index, CHUNK_MISSING);
      store_async (fetch, index, job->source, data);
    }
  /* The rest came from elsewhere, or the role moved: the WAN carries no
   * more of it. */
  if (index + 1 < job->index + job->count && !run_wants_any (fetch, job, index + 1))
    g_cancellable_cancel (job->cancellable);
}

static void
on_origin_read (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Job *job = user_data;
  CanopyFetch *fetch = job->fetch;
  Source *s = g_ptr_array_index (fetch->sources, job->source);
  g_autoptr (GError) error = NULL;
  gboolean read = canopy_origin_read_range_finish (s->origin, result, &error);
  guint64 start = canopy_manifest_get_chunk_offset (fetch->manifest, job->index);

  (void) object;
  s->requests--;
  g_ptr_array_remove_fast (s->runs, job);
  if (fetch->stopped)
    {
      job_free (job);
      return;
    }
  if (!read)
    for (guint i = job->index; i < job->index + job->count; i++)
      if (run_wants (fetch, job, i))
        release_chunk (fetch, i, CHUNK_MISSING);
  /* Cancelled here when the rest was no longer wanted of it: no error. */
  if (!read && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      s->errors++;
      s->retry_at = g_get_monotonic_time () + (gint64) s->errors * G_USEC_PER_SEC;
      if (s->errors >= ORIGIN_MAX_ERRORS && !s->failed)
        {
          canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_SOURCES,
                            FETCH_SUBJECT (fetch),
                            _("Giving up the origin %s for \"%s\" after %u failures: %s"), s->host,
                            fetch->manifest->name, s->errors, error->message);
          s->failed = TRUE;
        }
    }
  else if (read)
    {
      s->errors = 0;
      note_wan_sample (fetch, s, canopy_origin_read_range_get_wait (result), job->started_at,
                       canopy_manifest_get_chunk_offset (fetch->manifest, job->index + job->count)
                         - start);
    }
  schedule (fetch);
  job_free (job);
}

static void
on_fetch_cancelled (GCancellable *cancellable, gpointer user_data)
{
  (void) cancellable;
  g_cancellable_cancel (user_data);
}

/* Adjacent chunks to ask the origin for in one range request. */
typedef struct {
  Source *source;
  guint first;
  guint count;
  guint64 bytes;
} OriginRun;

static void
flush_origin_run (CanopyFetch *fetch, OriginRun *run)
{
  g_autofree gsize *pieces = NULL;
  Job *job;
  guint64 start;

  if (run->count == 0)
    return;
  run->source->run_next = G_MAXUINT;
  start = canopy_manifest_get_chunk_offset (fetch->manifest, run->first);
  job = job_new (fetch, run->first, source_index (fetch, run->source), NULL);
  job->count = run->count;
  job->cancellable = g_cancellable_new ();
  job->cancelled_handler = g_cancellable_connect (fetch->cancellable,
                                                  G_CALLBACK (on_fetch_cancelled),
                                                  g_object_ref (job->cancellable),
                                                  g_object_unref);
  pieces = g_new (gsize, run->count);
  for (guint i = 0; i < run->count; i++)
    pieces[i] = canopy_manifest_get_chunk_length (fetch->manifest, run->first + i);
  g_ptr_array_add (run->source->runs, job);
  pace_origin (fetch, run->source);
  g_debug ("deployment %s: chunks %u to %u asked of the origin", fetch->deployment_id,
           run->first, run->first + run->count - 1);
  canopy_origin_read_range_async (run->source->origin, start, pieces, run->count,
                                  on_origin_piece, job->cancellable, on_origin_read, job);
  run->count = 0;
  run->bytes = 0;
}

/* What arrives in @n times @us at the office's link rate (0: not known);
 * a guess while @us is not known (negative). */
static guint64
link_bytes (const CanopyFetch *fetch, gint64 us, guint n)
{
  if (us < 0)
    us = ORIGIN_WAIT_GUESS_US;
  return fetch->wan_rate / 8 * n * (guint64) us / G_USEC_PER_SEC;
}

static guint64
origin_low_water (const CanopyFetch *fetch, const Source *s)
{
  if (fetch->wan_rate == 0)
    return ORIGIN_LOW_WATER_UNKNOWN_RATE;
  return MAX (ORIGIN_LOW_WATER_MIN, link_bytes (fetch, canopy_origin_get_wait (s->origin), 2));
}

/* Whether the origin @s streams its ranges at the link rate, its requests
 * running ahead; the background class and file storage pace requests. */
static gboolean
origin_streams (const CanopyFetch *fetch, const Source *s)
{
  return fetch->pacer == NULL && canopy_origin_streams (s->origin);
}

static guint64
origin_run_max (const CanopyFetch *fetch, const Source *s)
{
  return origin_streams (fetch, s) ? ORIGIN_RUN_MAX : FILE_RUN_MAX;
}

/* The receive window of a streaming origin's connections; 0: the
 * system's, when the link rate is not known. By the network's round
 * trip, not the answer's wait: the origin's own time needs no window,
 * and a queue the window filled must not widen it further. */
static guint
origin_window (const CanopyFetch *fetch, const Source *s)
{
  if (fetch->wan_rate == 0)
    return 0;
  return (guint) CLAMP (link_bytes (fetch, canopy_origin_get_round_trip (s->origin),
                                    ORIGIN_WINDOW_ROUND_TRIPS),
                        ORIGIN_WINDOW_MIN, G_MAXINT / 2);
}

/* Whether @s, an origin, may be sent another range request now. */
static gboolean
origin_may_ask (const CanopyFetch *fetch, const Source *s)
{
  if (!origin_streams (fetch, s))
    return s->requests < MAX_PER_ORIGIN;
  return s->requests < CANOPY_ORIGIN_MAX_REQUESTS && s->outstanding < origin_low_water (fetch, s);
}

/* Chunk @index from the origin: it joins @run when it follows it, or
 * starts the next one. */
static void
add_to_origin_run (CanopyFetch *fetch, OriginRun *run, Source *s, guint index)
{
  guint32 length = canopy_manifest_get_chunk_length (fetch->manifest, index);

  if (run->count > 0
      && (run->source != s || run->first + run->count != index
          || run->bytes + length > origin_run_max (fetch, s)))
    flush_origin_run (fetch, run);
  mark_inflight (fetch, s, index);
  if (run->count == 0)
    {
      run->source = s;
      run->first = index;
      s->requests++;
    }
  run->count++;
  run->bytes += length;
  /* The next chunk may join the run beyond origin_may_ask(), as long as
   * the run stays within its size. */
  s->run_next = run->bytes + canopy_manifest_get_chunk_length (fetch->manifest, index + 1)
                    <= origin_run_max (fetch, s)
                  ? index + 1
                  : G_MAXUINT;
}

static gboolean
request_chunk (CanopyFetch *fetch, Source *s, guint index)
{
  g_autoptr (GError) error = NULL;

  /* Origin reads go through add_to_origin_run(). */
  g_return_val_if_fail (s->kind != CANOPY_SOURCE_ORIGIN, FALSE);
  if (!canopy_peers_request (fetch->peers, s->device_id, fetch->manifest->content_id, index,
                             &error))
    {
      /* Queue full: try again when something else changes. */
      g_debug ("cannot ask %s for chunk %u: %s", s->device_id, index, error->message);
      if (!g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL))
        s->connected = FALSE;
      return FALSE;
    }
  mark_inflight (fetch, s, index);
  return TRUE;
}

/* --- scheduling ------------------------------------------------------------ */

static gboolean
peer_usable (const Source *s, gint64 now)
{
  return s->listed && !s->dropped && s->connected && s->busy_until <= now
         && s->inflight < MAX_PER_SOURCE;
}

static Source *
pick_office_peer (CanopyFetch *fetch, guint index, gint64 now, gboolean *held)
{
  Source *best = NULL;

  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);
      if (s->kind != CANOPY_SOURCE_OFFICE_PEER || !s->listed || s->dropped || !peer_has (s, index))
        continue;
      *held = TRUE;
      if (peer_usable (s, now) && (best == NULL || s->inflight < best->inflight))
        best = s;
    }
  return best;
}

static gboolean
wan_kind_allowed (CanopyFetch *fetch, CanopySourceKind kind)
{
  return kind != CANOPY_SOURCE_OFFICE_PEER
         && (fetch->role == CANOPY_ROLE_LEAD || fetch->role == CANOPY_ROLE_DIRECT);
}

static int
compare_order (gconstpointer a, gconstpointer b)
{
  const Source *sa = *(Source *const *) a;
  const Source *sb = *(Source *const *) b;

  return sa->order < sb->order ? -1 : sa->order > sb->order;
}

/* The WAN sources this device may use, in the assignment's order: for one
 * pass of schedule(), which changes none of what this depends on. */
static GPtrArray *
wan_sources (CanopyFetch *fetch)
{
  GPtrArray *ordered = g_ptr_array_new ();

  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);
      if (s->listed && wan_kind_allowed (fetch, s->kind) && !s->dropped && !s->failed)
        g_ptr_array_add (ordered, s);
    }
  g_ptr_array_sort (ordered, compare_order);
  return ordered;
}

/* The first of the WAN sources @ordered that can serve @index; NULL when
 * it cannot take another request now, so later sources are used only when
 * earlier ones are gone, not merely busy. Sets @any_left when some source
 * may still serve it later. */
static Source *
pick_wan (CanopyFetch *fetch, GPtrArray *ordered, guint index, gint64 now, gboolean *any_left)
{
  for (guint i = 0; i < ordered->len; i++)
    {
      Source *s = g_ptr_array_index (ordered, i);

      if (s->kind == CANOPY_SOURCE_ORIGIN)
        {
          *any_left = TRUE;
          return s->retry_at <= now && (index == s->run_next || origin_may_ask (fetch, s)) ? s
                                                                                          : NULL;
        }
      if (s->unreachable)
        continue;
      if (s->connected && !peer_has (s, index)
          && (s->have != NULL || now - s->connected_at > HAVE_GRACE_US))
        {
          /* A parent-office peer verifies what it does not hold yet as its
           * own lead brings it in: without a later source listed, the
           * server means this device to wait for it, not to give up. */
          if (s->kind == CANOPY_SOURCE_PARENT_PEER)
            *any_left = TRUE;
          continue;
        }
      *any_left = TRUE;
      /* A background lead asks a WAN peer for one chunk at a time: a
       * chunk's time then measures the link, not the peer's own queue. */
      if (fetch->pacer != NULL && s->inflight > 0)
        return NULL;
      return peer_usable (s, now) && peer_has (s, index) ? s : NULL;
    }
  return NULL;
}

static gboolean
on_wake (gpointer user_data)
{
  CanopyFetch *fetch = user_data;

  fetch->wake_timer = 0;
  schedule (fetch);
  return G_SOURCE_REMOVE;
}

static void
wake_in (CanopyFetch *fetch, guint ms)
{
  if (fetch->wake_timer == 0)
    fetch->wake_timer = g_timeout_add (MAX (ms, 1), on_wake, fetch);
}

static gboolean
on_soon (gpointer user_data)
{
  CanopyFetch *fetch = user_data;

  fetch->soon_source = 0;
  schedule (fetch);
  return G_SOURCE_REMOVE;
}

/* Every office peer tells of every chunk it verifies: one pass over the
 * chunks for all the news of the next SOON_MS, not a pass for each (in a
 * large office, news of one chunk comes from every peer in turn). */
static void
schedule_soon (CanopyFetch *fetch)
{
  if (fetch->soon_source == 0)
    fetch->soon_source = g_timeout_add_full (G_PRIORITY_DEFAULT, SOON_MS, on_soon, fetch, NULL);
}

/* The WAN leg keeps to the office's link rate: a token bucket holding at
 * most one second of traffic (or one chunk, if larger), which may go into
 * debt by one chunk so that a rate below one chunk a second still moves. */
static gboolean
take_tokens (CanopyFetch *fetch, guint32 length, gint64 now)
{
  double rate = (double) fetch->wan_rate / 8.0;
  double capacity = MAX (rate, (double) fetch->manifest->chunk_size);

  /* The background class: at its controller's rate, and no burst of a
   * second's worth, which would fill the link's queue at once. */
  if (fetch->pacer != NULL)
    {
      rate = canopy_wan_pacer_get_rate (fetch->pacer);
      capacity = (double) fetch->manifest->chunk_size;
    }
  else if (fetch->wan_rate == 0)
    return TRUE;
  if (fetch->tokens_at == 0)
    fetch->tokens = capacity;
  else
    fetch->tokens = MIN (capacity,
                         fetch->tokens + rate * (double) (now - fetch->tokens_at) / G_USEC_PER_SEC);
  fetch->tokens_at = now;
  if (fetch->tokens <= 0)
    {
      wake_in (fetch, (guint) (-fetch->tokens / rate * 1000.0) + 1);
      return FALSE;
    }
  fetch->tokens -= length;
  return TRUE;
}

static void assemble (CanopyFetch *fetch);

/* Whether the lead knows what its office holds: each office peer has told
 * it, cannot be reached, or had its chance. */
static gboolean
office_settled (CanopyFetch *fetch, gint64 now)
{
  if (fetch->role != CANOPY_ROLE_LEAD || now - fetch->started_at > SETTLE_MAX_US)
    return TRUE;
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);

      if (s->kind != CANOPY_SOURCE_OFFICE_PEER || !s->listed || s->dropped || s->unreachable)
        continue;
      /* One that holds other content is asked by hash what it holds of
       * this one: its answer is awaited, as a have is. */
      if (!s->connected || (s->have == NULL && now - s->connected_at <= HAVE_GRACE_US)
          || (s->have == NULL && fetch->peers != NULL
              && canopy_peers_is_querying (fetch->peers, s->device_id,
                                           fetch->manifest->content_id)))
        {
          wake_in (fetch, 200);
          return FALSE;
        }
    }
  return TRUE;
}

/* Chunks the cache dropped since they were held, because they could no
 * longer be read or verified when served to a peer, are fetched again.
 * One lock when nothing was dropped: the cache counts a chunk stored
 * before it is held here, never after. */
static void
forget_dropped (CanopyFetch *fetch)
{
  if (canopy_cache_entry_count_chunks (fetch->entry) >= fetch->n_held)
    return;
  for (guint i = 0; i < fetch->n; i++)
    if (fetch->state[i] == CHUNK_HELD && !canopy_cache_entry_has_chunk (fetch->entry, i))
      {
        g_debug ("deployment %s: chunk %u was dropped from the cache; fetching it again",
                 fetch->deployment_id, i);
        fetch->state[i] = CHUNK_MISSING;
        fetch->n_held--;
      }
}

static void
schedule (CanopyFetch *fetch)
{
  gint64 now = g_get_monotonic_time ();
  gboolean wan_blocked = FALSE, waiting = FALSE;
  guint missing = 0;
  OriginRun run = { 0 };
  g_autoptr (GPtrArray) ordered = NULL;

  if (fetch->entry == NULL || fetch->finished || fetch->assembling || fetch->stopped
      || fetch->role == CANOPY_ROLE_WAIT || fetch->disk_retry_at > now)
    return;
  if (!destination_allowed (fetch))
    return;
  forget_dropped (fetch);
  if (!office_settled (fetch, now))
    wan_blocked = TRUE;
  for (guint i = 0; i < fetch->n; i++)
    {
      gboolean held = FALSE, any_left = FALSE;
      /* Origin reads are bounded by origin_may_ask() instead. */
      gboolean peers_full = fetch->inflight - fetch->origin_inflight >= MAX_INFLIGHT;
      Source *s = NULL;

      if (fetch->state[i] != CHUNK_MISSING)
        continue;
      missing++;
      if (peers_full && (wan_blocked || !wan_kind_allowed (fetch, CANOPY_SOURCE_ORIGIN)))
        {
          waiting = TRUE;
          continue;
        }
      if (fetch->role != CANOPY_ROLE_DIRECT)
        s = pick_office_peer (fetch, i, now, &held);
      if (s != NULL && peers_full)
        s = NULL; /* held: it waits for a request to end */
      if (s == NULL && !held && !wan_blocked && wan_kind_allowed (fetch, CANOPY_SOURCE_ORIGIN))
        {
          if (ordered == NULL)
            ordered = wan_sources (fetch);
          s = pick_wan (fetch, ordered, i, now, &any_left);
          if (s != NULL && s->kind != CANOPY_SOURCE_ORIGIN && peers_full)
            s = NULL;
          /* A streaming origin is read at the link rate instead
           * (canopy_origin_set_rate()): its requests run ahead. */
          if (s != NULL && !(s->kind == CANOPY_SOURCE_ORIGIN && origin_streams (fetch, s))
              && !take_tokens (fetch, canopy_manifest_get_chunk_length (fetch->manifest, i), now))
            {
              wan_blocked = TRUE;
              s = NULL;
            }
        }
      if (held || any_left || wan_blocked || fetch->role == CANOPY_ROLE_PEER)
        waiting = TRUE;
      if (s != NULL && s->kind == CANOPY_SOURCE_ORIGIN)
        add_to_origin_run (fetch, &run, s, i);
      else if (s != NULL)
        request_chunk (fetch, s, i);
    }
  flush_origin_run (fetch, &run);
  if (missing == 0 && fetch->storing == 0 && fetch->inflight == 0)
    assemble (fetch);
  else if (!waiting && fetch->inflight == 0 && fetch->storing == 0)
    fail (fetch, _("every source this device may use has failed or sent damaged chunks; the "
                   "server will assign other sources"));
}

/* --- peers ----------------------------------------------------------------- */

static void
on_peer_connected (const char *device_id, const char *host, guint16 port, gpointer user_data)
{
  CanopyFetch *fetch = user_data;

  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);

      if (!is_peer_kind (s->kind))
        continue;
      /* A source known by address only takes the authenticated ID of
       * whatever answers there. */
      if (s->device_id[0] == '\0' && host != NULL && g_str_equal (s->host, host)
          && s->port == port)
        {
          g_free (s->device_id);
          s->device_id = g_strdup (device_id);
        }
      if (g_str_equal (s->device_id, device_id) && !s->connected)
        {
          s->connected = TRUE;
          s->connected_at = g_get_monotonic_time ();
          s->unreachable = FALSE;
        }
    }
  schedule (fetch);
}

static void
on_peer_have (const char *device_id, GBytes *bitfield, gpointer user_data)
{
  CanopyFetch *fetch = user_data;
  Source *s = find_peer (fetch, device_id);

  if (s == NULL)
    return;
  g_clear_pointer (&s->have, g_bytes_unref);
  s->have = g_bytes_ref (bitfield);
  if (!s->connected)
    s->connected_at = g_get_monotonic_time ();
  s->connected = TRUE;
  s->unreachable = FALSE;
  cut_for_office_peer (fetch, s);
  schedule_soon (fetch);
}

static void
on_peer_data (const char *device_id, guint index, GBytes *payload, gpointer user_data)
{
  CanopyFetch *fetch = user_data;
  Source *s = find_peer (fetch, device_id);
  guint si;

  if (s == NULL || index >= fetch->n)
    return;
  si = source_index (fetch, s);
  /* Only answers to our own requests: anything else may be late or forged. */
  if (fetch->state[index] != CHUNK_INFLIGHT || fetch->chunk_source[index] != si)
    return;
  s->answered_at = g_get_monotonic_time ();
  note_wan_sample (fetch, s, -1, fetch->chunk_since[index], g_bytes_get_size (payload));
  release_chunk (fetch, index, CHUNK_MISSING);
  store_async (fetch, index, si, payload);
}

static void
on_peer_not_held (const char *device_id, guint index, guint retry_s, gpointer user_data)
{
  CanopyFetch *fetch = user_data;
  Source *s = find_peer (fetch, device_id);

  if (s == NULL)
    return;
  if (index == G_MAXUINT)
    {
      s->busy_until = g_get_monotonic_time () + (gint64) retry_s * G_USEC_PER_SEC;
      release_source (fetch, s, TRUE);
      wake_in (fetch, retry_s * 1000);
    }
  else if (index < fetch->n && fetch->state[index] == CHUNK_INFLIGHT
           && fetch->chunk_source[index] == source_index (fetch, s))
    {
      s->answered_at = g_get_monotonic_time ();
      release_chunk (fetch, index, CHUNK_MISSING);
      note_withheld (fetch, s, index);
    }
  schedule (fetch);
}

static void
on_peer_gone (const char *device_id, const char *host, guint16 port, gpointer user_data)
{
  CanopyFetch *fetch = user_data;

  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);

      if (!is_peer_kind (s->kind))
        continue;
      if (g_str_equal (s->device_id, device_id)
          || (s->device_id[0] == '\0' && host != NULL && g_str_equal (s->host, host)
              && s->port == port))
        {
          s->connected = FALSE;
          s->unreachable = TRUE;
          g_clear_pointer (&s->have, g_bytes_unref);
          release_source (fetch, s, FALSE);
        }
    }
  schedule (fetch);
}

static const CanopyPeersClient fetch_peers_client = {
  .connected = on_peer_connected,
  .have = on_peer_have,
  .data = on_peer_data,
  .not_held = on_peer_not_held,
  .gone = on_peer_gone,
};

static gboolean
role_uses (CanopyFetch *fetch, CanopySourceKind kind)
{
  switch (fetch->role)
    {
    case CANOPY_ROLE_LEAD:
      return TRUE;
    case CANOPY_ROLE_PEER:
      return kind == CANOPY_SOURCE_OFFICE_PEER;
    case CANOPY_ROLE_DIRECT:
      return kind != CANOPY_SOURCE_OFFICE_PEER;
    case CANOPY_ROLE_WAIT:
    default:
      return FALSE;
    }
}

static void
connect_sources (CanopyFetch *fetch, gboolean retry_unreachable)
{
  if (fetch->peers == NULL)
    return;
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      Source *s = g_ptr_array_index (fetch->sources, i);

      if (!s->listed || !is_peer_kind (s->kind) || s->connected || s->dropped
          || !role_uses (fetch, s->kind) || (s->unreachable && !retry_unreachable))
        continue;
      if (s->device_id[0] != '\0' && canopy_peers_is_connected (fetch->peers, s->device_id))
        {
          s->connected = TRUE;
          s->connected_at = g_get_monotonic_time ();
          continue;
        }
      canopy_peers_connect (fetch->peers, s->device_id, s->host, s->port);
    }
}

/* --- life ------------------------------------------------------------------ */

/* How long @s may take: over the WAN, at the office's link rate, an honest
 * parent-office peer or server may take a while for each chunk, and must
 * not pass for one that withholds them. */
static gint64
source_allowance (const CanopyFetch *fetch, const Source *s, gint64 base_us)
{
  if (s->kind == CANOPY_SOURCE_OFFICE_PEER)
    return base_us;
  return canopy_link_allowance (base_us, fetch->manifest->chunk_size, fetch->wan_rate,
                                WAN_ALLOWANCE_CHUNKS);
}

/* Requests a peer let time out, or all of a peer's when it went silent. */
static void
check_timeouts (CanopyFetch *fetch)
{
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < fetch->n; i++)
    if (fetch->state[i] == CHUNK_INFLIGHT)
      {
        Source *s = g_ptr_array_index (fetch->sources, fetch->chunk_source[i]);

        if (s->kind == CANOPY_SOURCE_ORIGIN)
          continue; /* libsoup and GIO time out on their own */
        if (now - fetch->chunk_since[i] < source_allowance (fetch, s, REQUEST_TIMEOUT_US)
            && now - s->answered_at < source_allowance (fetch, s, PEER_SILENCE_US))
          continue;
        g_debug ("peer %s did not send chunk %u in time", s->device_id, i);
        canopy_peers_cancel (fetch->peers, s->device_id, fetch->manifest->content_id, i);
        release_chunk (fetch, i, CHUNK_MISSING);
        note_withheld (fetch, s, i);
      }
}

/* --- what the admin reads in the log ------------------------------------- */

/* "as its office's lead; sources: 3 office peers, the origin URL". */
static char *
describe_sources (const CanopyFetch *fetch)
{
  g_autoptr (GString) text = g_string_new (NULL);
  guint office_peers = 0, parent_peers = 0;
  const char *role;

  switch (fetch->role)
    {
    case CANOPY_ROLE_LEAD:
      role = _("as its office's lead");
      break;
    case CANOPY_ROLE_PEER:
      role = _("from its office's peers");
      break;
    case CANOPY_ROLE_DIRECT:
      role = _("directly, in no office");
      break;
    case CANOPY_ROLE_WAIT:
    default:
      role = _("waiting for its office's lead");
      break;
    }
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      const Source *s = g_ptr_array_index (fetch->sources, i);

      if (!s->listed || s->dropped)
        continue;
      if (s->kind == CANOPY_SOURCE_OFFICE_PEER)
        office_peers++;
      else if (s->kind == CANOPY_SOURCE_PARENT_PEER)
        parent_peers++;
    }
  if (office_peers > 0)
    g_string_append_printf (text, g_dngettext (GETTEXT_PACKAGE, "%u office peer",
                                               "%u office peers", office_peers),
                            office_peers);
  if (parent_peers > 0)
    g_string_append_printf (text, "%s%s", text->len > 0 ? ", " : "",
                            g_dngettext (GETTEXT_PACKAGE, "1 peer of the parent office",
                                         "several peers of the parent office", parent_peers));
  for (guint i = 0; i < fetch->sources->len; i++)
    {
      const Source *s = g_ptr_array_index (fetch->sources, i);

      if (!s->listed || s->failed)
        continue;
      if (s->kind == CANOPY_SOURCE_SERVER)
        g_string_append_printf (text, "%s%s", text->len > 0 ? ", " : "", _("the server"));
      else if (s->kind == CANOPY_SOURCE_ORIGIN)
        {
          g_string_append (text, text->len > 0 ? ", " : "");
          g_string_append_printf (text, _("the origin %s"), s->host);
        }
    }
  if (text->len == 0)
    g_string_append (text, _("none yet"));
  return g_strdup_printf (_("%s; sources: %s"), role, text->str);
}

/* When it starts, and whenever the server changes its role or sources. */
static void
log_sources (CanopyFetch *fetch, gboolean start)
{
  g_autofree char *sources = describe_sources (fetch);
  g_autofree char *size = NULL;
  CanopyLogSubject subject = subject_of (fetch);

  if (g_strcmp0 (sources, fetch->said_sources) == 0)
    return;
  g_free (fetch->said_sources);
  fetch->said_sources = g_steal_pointer (&sources);
  if (!start)
    {
      canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_SOURCES, &subject,
                        _("Deployment %s of \"%s\" goes on %s"), fetch->deployment_id,
                        fetch->manifest->name, fetch->said_sources);
      return;
    }
  size = g_format_size_full (fetch->manifest->size, G_FORMAT_SIZE_IEC_UNITS);
  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_STARTED, &subject,
                    g_dngettext (GETTEXT_PACKAGE,
                                 "Deployment %s: fetching \"%s\" %s (%s, %u chunk, %u in the "
                                 "cache) for %s, %s",
                                 "Deployment %s: fetching \"%s\" %s (%s, %u chunks, %u in the "
                                 "cache) for %s, %s",
                                 fetch->n),
                    fetch->deployment_id, fetch->manifest->name, fetch->manifest->version, size,
                    fetch->n, fetch->n_held, fetch->destination, fetch->said_sources);
}

/* The completion: where it is, how long it took, at what rate, from where. */
static void
log_done (CanopyFetch *fetch)
{
  static const char *const kind_names[] = {
    N_("office peers"), N_("the parent office"), N_("the server"), N_("the origin"),
    N_("earlier versions held in this office"),
  };
  G_STATIC_ASSERT (G_N_ELEMENTS (kind_names) == N_KINDS);
  g_autoptr (GString) from = g_string_new (NULL);
  gint64 elapsed = MAX (g_get_monotonic_time () - fetch->first_started_at, 1);
  g_autofree char *took = canopy_log_format_duration (elapsed);
  g_autofree char *total = NULL;
  g_autofree char *rate = NULL;
  CanopyLogSubject subject = subject_of (fetch);
  guint64 sum = 0;

  for (guint k = 0; k < N_KINDS; k++)
    {
      g_autofree char *bytes = NULL;

      if (fetch->bytes[k] == 0)
        continue;
      sum += fetch->bytes[k];
      bytes = g_format_size_full (fetch->bytes[k], G_FORMAT_SIZE_IEC_UNITS);
      g_string_append_printf (from, "%s%s %s", from->len > 0 ? ", " : "", _(kind_names[k]),
                              bytes);
    }
  if (from->len == 0)
    g_string_append (from, _("all of it was in the cache"));
  total = g_format_size_full (sum, G_FORMAT_SIZE_IEC_UNITS);
  rate = g_format_size_full ((guint64) (sum * (double) G_USEC_PER_SEC / elapsed),
                             G_FORMAT_SIZE_IEC_UNITS);
  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_DONE, &subject,
                    _("\"%s\" %s is at %s (deployment %s): %s fetched in %s, %s/s; from %s"),
                    fetch->manifest->name, fetch->manifest->version, fetch->destination,
                    fetch->deployment_id, total, took, rate, from->str);
}

void
canopy_fetch_set_subject (CanopyFetch *fetch, const char *device_id, const char *office)
{
  g_free (fetch->device_id);
  g_free (fetch->office);
  fetch->device_id = g_strdup (device_id);
  fetch->office = g_strdup (office);
}

/* What a background lead's controller makes of the link, for the console
 * and /metrics. */
static void
send_pacing (CanopyFetch *fetch)
{
  if (fetch->pacer == NULL || fetch->finished
      || (fetch->role != CANOPY_ROLE_LEAD && fetch->role != CANOPY_ROLE_DIRECT))
    return;
  fetch->report (fetch, CANOPY_WIRE_WAN_PACING,
                 g_variant_new ("(stxx)", fetch->deployment_id,
                                (guint64) (canopy_wan_pacer_get_rate (fetch->pacer) * 8.0),
                                canopy_wan_pacer_get_queueing_delay (fetch->pacer),
                                canopy_wan_pacer_get_base_delay (fetch->pacer)),
                 fetch->report_data);
}

static gboolean
on_tick (gpointer user_data)
{
  CanopyFetch *fetch = user_data;

  fetch->ticks++;
  check_timeouts (fetch);
  connect_sources (fetch, fetch->ticks % RECONNECT_TICKS == 0);
  /* Paused, it reports nothing until it goes on: a chunk that was on its
   * way when the disk filled up and still found room would tell the
   * server it moves again, clearing the failure the admin must act on. */
  if (fetch->changed && !fetch->disk_full)
    send_progress (fetch);
  send_pacing (fetch);
  schedule (fetch);
  return G_SOURCE_CONTINUE;
}

/* A worker that opens the content or puts the package in place, with
 * where the package goes as the main thread knew it when the worker
 * started: canopy_fetch_update() and canopy_fetch_set_destinations()
 * replace the fetch's own strings, which the worker must not read. */
typedef struct {
  CanopyFetch *fetch; /* a reference */
  char **directories;
  char *destination;
} PlaceJob;

static void
place_job_free (PlaceJob *job)
{
  fetch_unref (job->fetch);
  g_strfreev (job->directories);
  g_free (job->destination);
  g_free (job);
}

static GTask *
place_task_new (CanopyFetch *fetch, GAsyncReadyCallback callback)
{
  GTask *task = g_task_new (NULL, NULL, callback, NULL);
  PlaceJob *job = g_new0 (PlaceJob, 1);

  job->fetch = fetch_ref (fetch);
  job->directories = g_strdupv (fetch->destinations);
  job->destination = g_strdup (fetch->destination);
  g_task_set_task_data (task, job, (GDestroyNotify) place_job_free);
  return task;
}

static CanopyFetch *
place_task_get_fetch (GAsyncResult *result)
{
  return ((PlaceJob *) g_task_get_task_data (G_TASK (result)))->fetch;
}

/* Puts the cache's copy in place, hashed as its chunks came. Runs while
 * no chunk is being stored, so the install is this thread's alone. A
 * refusal by the device's policy is final; other failures leave
 * assembling the package from the cache to try. */
static gboolean
commit_install (CanopyFetch *fetch, const PlaceJob *job, GError **error)
{
  g_autoptr (CanopyInstall) install = g_steal_pointer (&fetch->install);
  g_autoptr (GError) local_error = NULL;

  if (install == NULL)
    return FALSE;
  if (canopy_install_commit (install, (const char *const *) job->directories, job->destination,
                             &local_error))
    return TRUE;
  g_debug ("deployment %s: copying the package from the cache: %s", fetch->deployment_id,
           local_error->message);
  if (local_error->domain == CANOPY_DESTINATION_ERROR)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

static void
assemble_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  const PlaceJob *job = task_data;
  CanopyFetch *fetch = job->fetch;
  GError *error = NULL;

  /* Withdrawn or stopped meanwhile: the destination is not touched. */
  if (g_cancellable_is_cancelled (fetch->cancellable))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The deployment was stopped before its package was installed"));
      return;
    }
  if (commit_install (fetch, job, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (error == NULL
      && canopy_install_assemble (fetch->entry, (const char *const *) job->directories,
                                  job->destination, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  /* Chunks that verified when stored but no longer make the package were
   * changed on disk since: forgotten, they are fetched again, instead of
   * failing this content on this device for good. */
  if (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT)
      && canopy_cache_entry_recheck (fetch->entry) > 0)
    {
      g_clear_error (&error);
      fetch->install = canopy_install_new (fetch->entry, (const char *const *) job->directories,
                                           job->destination);
      g_set_error (&error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_REFETCH,
                   _("damaged chunks were discarded from the cache"));
    }
  g_task_return_error (task, error);
}

/* Fetches again the chunks the cache no longer holds. */
static void
refetch (CanopyFetch *fetch)
{
  forget_dropped (fetch);
  fetch->changed = TRUE;
  schedule (fetch);
}

static void
on_assembled (GObject *object, GAsyncResult *result, gpointer user_data)
{
  CanopyFetch *fetch = place_task_get_fetch (result);
  g_autoptr (GError) error = NULL;

  fetch->assembling = FALSE;
  if (fetch->stopped)
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (g_error_matches (error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_REFETCH))
        refetch (fetch);
      else if (is_disk_full (error))
        wait_for_disk (fetch, error);
      else
        fail (fetch, error->message);
      return;
    }
  /* Assembling starts only while the disk is not known to be full. */
  disk_has_space (fetch, G_MAXINT64);
  log_done (fetch);
  fetch->finished = TRUE;
  stop_timers (fetch);
  send_progress (fetch);
  report_done (fetch);
}

static void
assemble (CanopyFetch *fetch)
{
  g_autoptr (GTask) task = place_task_new (fetch, on_assembled);

  fetch->assembling = TRUE;
  g_task_run_in_thread (task, assemble_thread);
}

static void
open_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  const PlaceJob *job = task_data;
  CanopyFetch *fetch = job->fetch;
  GError *error = NULL;
  CanopyCacheEntry *entry = canopy_cache_acquire_entry (fetch->cache, fetch->manifest, &error);

  if (entry != NULL)
    {
      /* Local chunks first (an earlier version's): they cross no link. */
      fetch->reused_chunks = canopy_cache_entry_reuse (entry, &fetch->reused_bytes);
      /* Nothing else uses the install until the entry is handed over. */
      fetch->install = canopy_install_new (entry, (const char *const *) job->directories,
                                           job->destination);
      g_task_return_pointer (task, entry, (GDestroyNotify) canopy_cache_entry_unref);
    }
  else
    g_task_return_error (task, error);
}

static void
on_opened (GObject *object, GAsyncResult *result, gpointer user_data)
{
  CanopyFetch *fetch = place_task_get_fetch (result);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCacheEntry) entry = g_task_propagate_pointer (G_TASK (result), &error);
  g_autofree char *reused = NULL;

  if (fetch->stopped)
    return;
  if (entry == NULL)
    {
      fail (fetch, error->message);
      return;
    }
  fetch->entry = g_steal_pointer (&entry);
  for (guint i = 0; i < fetch->n; i++)
    if (canopy_cache_entry_has_chunk (fetch->entry, i))
      {
        fetch->state[i] = CHUNK_HELD;
        fetch->n_held++;
      }
  if (fetch->reused_chunks > 0)
    {
      reused = g_strdup_printf ("%" G_GUINT64_FORMAT, fetch->reused_bytes);
      g_message (g_dngettext (GETTEXT_PACKAGE,
                              "Deployment %s took %u of its %u chunk (%s bytes) from other "
                              "content in the cache",
                              "Deployment %s took %u of its %u chunks (%s bytes) from other "
                              "content in the cache",
                              fetch->n),
                 fetch->deployment_id, fetch->reused_chunks, fetch->n, reused);
      fetch->bytes[CANOPY_SOURCE_EARLIER_VERSIONS] += fetch->reused_bytes;
      fetch->changed = TRUE;
    }
  else if (canopy_cache_entry_count_chunks (fetch->entry) > 0)
    g_message (g_dngettext (GETTEXT_PACKAGE,
                            "Deployment %s resumes with %u of %u chunk already verified in "
                            "the cache",
                            "Deployment %s resumes with %u of %u chunks already verified in "
                            "the cache",
                            fetch->n),
               fetch->deployment_id, canopy_cache_entry_count_chunks (fetch->entry), fetch->n);
  fetch->first_started_at = g_get_monotonic_time ();
  log_sources (fetch, TRUE);
  /* Before the peers are told of the fetch: a peer connected already is
   * reported at once, and its news schedules requests, which a lead may
   * send across the WAN only once it knows what its office holds, or has
   * waited long enough since it started. */
  fetch->started_at = g_get_monotonic_time ();
  if (fetch->peers != NULL)
    {
      canopy_peers_set_client (fetch->peers, fetch->manifest->content_id, &fetch_peers_client,
                               fetch);
      canopy_peers_announce (fetch->peers, fetch->manifest->content_id);
    }
  connect_sources (fetch, TRUE);
  fetch->tick_timer = g_timeout_add_seconds (1, on_tick, fetch);
  schedule (fetch);
}

void
canopy_fetch_start (CanopyFetch *fetch)
{
  g_autoptr (GTask) task = place_task_new (fetch, on_opened);

  g_task_run_in_thread (task, open_thread);
}

gboolean
canopy_fetch_update (CanopyFetch *fetch, GVariant *assignment, GError **error)
{
  g_auto (Assignment) a = { 0 };

  if (!read_assignment (assignment, &a, error))
    return FALSE;
  apply_assignment (fetch, &a);
  /* A promoted lead first learns again what the office holds. */
  if (fetch->entry != NULL && !fetch->finished)
    log_sources (fetch, FALSE);
  fetch->started_at = g_get_monotonic_time ();
  if (fetch->finished && !fetch->failed)
    {
      /* The last progress may have been lost with the connection: the
       * totals by source kind go again, so the office's WAN count is
       * whole. */
      send_progress (fetch);
      report_done (fetch);
      return TRUE;
    }
  if (fetch->failed)
    {
      /* The server tries again, maybe with other sources. */
      fetch->finished = fetch->failed = FALSE;
      if (fetch->entry != NULL && fetch->tick_timer == 0)
        fetch->tick_timer = g_timeout_add_seconds (1, on_tick, fetch);
    }
  if (fetch->entry != NULL)
    {
      connect_sources (fetch, TRUE);
      schedule (fetch);
    }
  return TRUE;
}

void
canopy_fetch_free (CanopyFetch *fetch)
{
  if (fetch == NULL)
    return;
  fetch->stopped = TRUE;
  stop_timers (fetch);
  g_cancellable_cancel (fetch->cancellable);
  if (fetch->peers != NULL && fetch->entry != NULL)
    canopy_peers_set_client (fetch->peers, fetch->manifest->content_id, NULL, NULL);
  fetch_unref (fetch);
}
