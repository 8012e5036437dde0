/* Office peers: the agent-to-agent protocol. Listens for and connects to
 * other agents, tells them which chunks this agent holds, serves their
 * requests from the cache within a bounded number of upload slots, and
 * hands what they send to the fetcher of that content. */
#pragma once

#include <glib.h>
#include "agent/cache.h"
#include "lib/transport.h"

G_BEGIN_DECLS

typedef struct _CanopyPeers CanopyPeers;

/**
 * CanopyPeersClient:
 * @connected: (nullable): a connection to @device_id is ready (after both
 *   peer-hellos), reached at @host and @port when this agent connected,
 *   or %NULL and 0 for an incoming one
 * @have: @device_id holds the chunks set in @bitfield (already checked to
 *   be as long as the manifest needs)
 * @data: chunk @index arrived from @device_id, not yet verified; @payload
 *   is valid during the call (take a reference to keep it)
 * @not_held: @device_id cannot serve @index (a cancel from the holder),
 *   or every upload slot is taken and it asks to wait @retry_s seconds
 *   (a busy; @index is then G_MAXUINT)
 * @gone: the last connection to @device_id closed, or connecting failed
 *   (@host and @port say where to, or are %NULL and 0)
 *
 * What the fetcher of one content hears from the peers, on the main loop.
 */
typedef struct {
  void (*connected) (const char *device_id, const char *host, guint16 port, gpointer user_data);
  void (*have) (const char *device_id, GBytes *bitfield, gpointer user_data);
  void (*data) (const char *device_id, guint index, GBytes *payload, gpointer user_data);
  void (*not_held) (const char *device_id, guint index, guint retry_s, gpointer user_data);
  void (*gone) (const char *device_id, const char *host, guint16 port, gpointer user_data);
} CanopyPeersClient;

/**
 * canopy_peers_new:
 * @plugin: the transport plugin
 * @element: its element, with the <listen> the peers listen on
 * @creds: this device's ID and transport secret (copied)
 * @cache: the cache served from (must outlive the peers)
 * @upload_slots: how many peers may be sent chunks at once
 */
CanopyPeers *canopy_peers_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                               const CanopyTransportCredentials *creds, CanopyCache *cache,
                               guint upload_slots, GError **error);
void canopy_peers_free (CanopyPeers *peers);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyPeers, canopy_peers_free)

/**
 * canopy_peers_listen:
 * @port: (out) (optional): the port bound (the configured one, or the one
 *   picked for port 0)
 */
gboolean canopy_peers_listen (CanopyPeers *peers, guint16 *port, GError **error);

/**
 * canopy_peers_set_server:
 *
 * Where the server this agent enrols with is reached: a source with no
 * host (the server's content store) is connected to there.
 */
void canopy_peers_set_server (CanopyPeers *peers, const char *host, guint16 port);

/**
 * canopy_peers_connect:
 * @device_id: the peer's device ID, or "" when only its address is known
 * @host: where to reach it; "" for the server (see canopy_peers_set_server())
 *
 * Connects unless a connection to @device_id exists or is being made; the
 * clients hear `connected` or `gone`.
 */
void canopy_peers_connect (CanopyPeers *peers, const char *device_id, const char *host,
                           guint16 port);

/* Whether a ready connection to @device_id exists. */
gboolean canopy_peers_is_connected (CanopyPeers *peers, const char *device_id);

/**
 * canopy_peers_set_client:
 * @client: (nullable): %NULL to stop hearing about @content_id
 *
 * One client per content; the bitfields peers sent before are replayed
 * to it at once.
 */
void canopy_peers_set_client (CanopyPeers *peers, const char *content_id,
                              const CanopyPeersClient *client, gpointer user_data);

/* Keeps @data, chunk @index of @content_id just verified and stored, to
 * serve from memory for as long as room allows. */
void canopy_peers_keep_chunk (CanopyPeers *peers, const char *content_id, guint index,
                              GBytes *data);

/* Sends this agent's bitfield of @content_id to every connected peer:
 * after the content was opened and whenever a chunk was verified; at
 * once, then at most every 100 ms while chunks keep coming, and at once
 * when it is complete. */
void canopy_peers_announce (CanopyPeers *peers, const char *content_id);

/* Asks @device_id for chunk @index; fails when it is not connected. */
gboolean canopy_peers_request (CanopyPeers *peers, const char *device_id, const char *content_id,
                               guint index, GError **error);
/**
 * canopy_peers_serves_by_hash:
 *
 * Returns: whether @device_id serves chunks of @content_id by hash, from
 *   other content it holds (an earlier version), having not told of
 *   @content_id itself: its chunks then crossed no link but the office's.
 */
gboolean canopy_peers_serves_by_hash (CanopyPeers *peers, const char *device_id,
                                      const char *content_id);

/* Whether @device_id has yet to answer this agent's chunk queries for
 * @content_id: a lead waits for them before it crosses the WAN. */
gboolean canopy_peers_is_querying (CanopyPeers *peers, const char *device_id,
                                   const char *content_id);

void canopy_peers_cancel (CanopyPeers *peers, const char *device_id, const char *content_id,
                          guint index);

/** canopy_peers_get_uploaded: Returns: chunk bytes sent to peers since the start. */
guint64 canopy_peers_get_uploaded (const CanopyPeers *peers);

G_END_DECLS
