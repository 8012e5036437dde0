/* One assignment being carried out: fetch the content's missing chunks from
 * the sources the role allows, verify and cache each, put the package in
 * place, and tell the server how it went. */
#pragma once

#include <glib.h>
#include "agent/cache.h"
#include "agent/peers.h"
#include "lib/signing.h"

G_BEGIN_DECLS

#define CANOPY_FETCH_ERROR (canopy_fetch_error_quark ())
GQuark canopy_fetch_error_quark (void);

typedef enum {
  CANOPY_FETCH_ERROR_ASSIGNMENT, /* the assignment is malformed or its manifest does not verify */
  CANOPY_FETCH_ERROR_REFETCH,    /* internal: damaged chunks were dropped, fetch them again */
} CanopyFetchError;

typedef struct _CanopyFetch CanopyFetch;

/**
 * CanopyFetchReportFunc:
 * @kind: %CANOPY_WIRE_PROGRESS, %CANOPY_WIRE_DONE or %CANOPY_WIRE_FAILED
 * @body: (transfer floating): its body
 *
 * How a fetch reaches the server (the agent sends it on its uplink).
 */
typedef void (*CanopyFetchReportFunc) (CanopyFetch *fetch, guint kind, GVariant *body,
                                       gpointer user_data);

/**
 * canopy_fetch_new:
 * @cache: where chunks go (must outlive the fetch)
 * @peers: (nullable): the office peers (must outlive the fetch); without
 *   them only the origin is reachable
 * @key: the server's content-signing key
 * @assignment: an ASSIGNMENT body, `(sayua(ussq)st)`
 *
 * Checks the assignment and its manifest's signature; nothing is fetched
 * until canopy_fetch_start().
 */
CanopyFetch *canopy_fetch_new (CanopyCache *cache, CanopyPeers *peers, const CanopyVerifyKey *key,
                               GVariant *assignment, CanopyFetchReportFunc report,
                               gpointer user_data, GError **error);

/* Stops at once: pending requests are cancelled, verified chunks stay. */
void canopy_fetch_free (CanopyFetch *fetch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyFetch, canopy_fetch_free)

/**
 * canopy_fetch_set_destinations:
 * @directories: where this device allows packages (<destinations>);
 *   until set, the packaged default (CANOPY_AGENT_CONFIG_DESTINATIONS)
 *
 * Call before canopy_fetch_start(). A destination outside them, or one the
 * policy refuses when the package is written, fails the fetch with the
 * reason, which the server shows the admin.
 */
void canopy_fetch_set_destinations (CanopyFetch *fetch, const char *const *directories);

/* This device and its office (nullable), for the fields of the log lines. */
void canopy_fetch_set_subject (CanopyFetch *fetch, const char *device_id, const char *office);
/**
 * canopy_fetch_set_wan_class:
 * @background: yield to other traffic on the WAN link (LEDBAT, RFC 6817)
 * @target_ms: the queueing delay a background lead aims at (5 to 100)
 *
 * As the server says after each assignment. A background lead paces its
 * WAN requests by the queueing delay it measures on them; the normal
 * class keeps to the office's link rate alone.
 */
void canopy_fetch_set_wan_class (CanopyFetch *fetch, gboolean background, guint target_ms);
/* The background class's current rate (bytes/s; 0 in the normal class)
 * and queueing delay (µs; -1 before the first sample or when normal). */
double canopy_fetch_get_background_rate (const CanopyFetch *fetch);
gint64 canopy_fetch_get_queueing_delay (const CanopyFetch *fetch);

/* Opens the cache entry off the main loop (resuming from its verified
 * chunks), then fetches. */
void canopy_fetch_start (CanopyFetch *fetch);

/**
 * canopy_fetch_update:
 *
 * Takes a new assignment for the same deployment (another role or other
 * sources: a promoted lead continues from what the office holds). A
 * finished fetch reports DONE again, for a server that missed it.
 */
gboolean canopy_fetch_update (CanopyFetch *fetch, GVariant *assignment, GError **error);

const char *canopy_fetch_get_deployment_id (const CanopyFetch *fetch);
const char *canopy_fetch_get_content_id (const CanopyFetch *fetch);
/* Where the package goes, as the assignment said. */
const char *canopy_fetch_get_destination (const CanopyFetch *fetch);

/* Whether the package is in place (DONE sent) or the fetch gave up. */
gboolean canopy_fetch_is_finished (const CanopyFetch *fetch);

/**
 * canopy_fetch_get_bytes:
 * @kind: a #CanopySourceKind
 *
 * Returns: verified bytes this fetch got from sources of @kind.
 */
guint64 canopy_fetch_get_bytes (const CanopyFetch *fetch, guint kind);

G_END_DECLS
