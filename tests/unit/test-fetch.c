/* Content distribution in one process: agents with real caches on disk,
 * the real tcp transport on loopback and a file origin. An office's lead
 * crosses the "WAN" once while its peers fetch from it; a peer serving
 * damaged chunks is dropped; a restarted fetch takes no verified chunk
 * again. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/delay-proxy.h"
#include "agent/agent-config.h"
#include "agent/cache.h"
#include "agent/fetch.h"
#include "agent/peers.h"
#include "lib/config.h"
#include "lib/keys.h"
#include "lib/manifest.h"
#include "lib/planner.h"
#include "lib/plugin-loader.h"
#include "lib/shared-key.h"
#include "lib/wire.h"

#include <signal.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)
#define CONTENT_SIZE (12 * CHUNK + 4321)
#define TIMEOUT_S 30

typedef struct {
  char *id;
  char *dir;
  CanopyConfig *config;
  CanopyCache *cache;
  CanopyPeers *peers;
  guint16 port;
  CanopyFetch *fetch;
  char *destination;
  gboolean done;
  gboolean failed;
  guint n_failed;
  char *failure;
  guint peer_failures; /* chunks reported as failing verification, all peers */
  guint pacing_reports; /* wan-pacing reports with a rate */
} TestAgent;

typedef struct {
  char *dir;
  char *origin;
  guint8 *data;
  CanopyManifest *manifest;
  GBytes *signed_manifest;
  CanopyVerifyKey *key;
  CanopyPluginLoader *loader;
  const CanopyPlugin *tcp;
} Content;

static gboolean
make_content (Content *c)
{
  g_autofree char *key_path = NULL;
  g_autoptr (CanopySigningKey) signing = NULL;
  g_autoptr (GBytes) public_key = NULL;
  g_autoptr (GFile) file = NULL;
  g_autoptr (GFileInputStream) stream = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);

  c->loader = canopy_plugin_loader_new (NULL);
  c->tcp = canopy_plugin_loader_load (c->loader, "tcp", CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  if (c->tcp == NULL)
    {
      canopy_test_skip ("the tcp transport was not built (%s)", error->message);
      return FALSE;
    }
  c->dir = canopy_test_make_tmpdir ("fetch");
  c->origin = g_build_filename (c->dir, "origin.bin", NULL);
  c->data = g_malloc (CONTENT_SIZE);
  for (gsize i = 0; i < CONTENT_SIZE; i += 4)
    {
      guint32 r = g_rand_int (rand);
      memcpy (c->data + i, &r, MIN (4, CONTENT_SIZE - i));
    }
  g_assert (g_file_set_contents (c->origin, (const char *) c->data, CONTENT_SIZE, NULL));

  key_path = g_build_filename (c->dir, "signing.pem", NULL);
  g_assert (canopy_signing_key_generate_file (key_path, &error));
  signing = canopy_signing_key_load (key_path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  public_key = canopy_signing_key_get_public (signing);
  c->key = canopy_verify_key_new (public_key, &error);
  file = g_file_new_for_path (c->origin);
  stream = g_file_read (file, NULL, &error);
  c->manifest = canopy_manifest_build (G_INPUT_STREAM (stream), "app", "1.0", CHUNK, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  g_assert (canopy_manifest_sign (c->manifest, signing, &error));
  c->signed_manifest = canopy_manifest_serialize (c->manifest);
  return TRUE;
}

static void
content_clear (Content *c)
{
  g_clear_pointer (&c->signed_manifest, g_bytes_unref);
  g_clear_pointer (&c->manifest, canopy_manifest_free);
  g_clear_pointer (&c->key, canopy_verify_key_free);
  g_clear_pointer (&c->loader, canopy_plugin_loader_free);
  g_free (c->data);
  g_free (c->origin);
  g_free (c->dir);
}

static void
agent_open_cache (TestAgent *a)
{
  g_autofree char *cache_dir = g_build_filename (a->dir, "cache", NULL);
  g_autoptr (GError) error = NULL;

  a->cache = canopy_cache_open (cache_dir, 0, &error);
  CANOPY_ASSERT_NO_ERROR (error);
}

static TestAgent *
agent_new (Content *c, const char *id)
{
  TestAgent *a = g_new0 (TestAgent, 1);
  g_autoptr (GError) error = NULL;
  CanopySharedKey key;
  CanopyTransportCredentials creds;

  a->id = g_strdup (id);
  a->dir = g_build_filename (c->dir, id, NULL);
  a->destination = g_build_filename (a->dir, "installed", "app.bin", NULL);
  agent_open_cache (a);
  a->config = canopy_config_load_data (
    "<agent><server host='-'/><transport plugin='tcp'><listen address='127.0.0.1' port='0'/>"
    "</transport></agent>",
    -1, "<test>", CANOPY_SCHEMA_AGENT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  memset (key.bytes, 0x5a, sizeof key.bytes);
  g_assert (canopy_keys_make_transport_credentials (&key, id, &creds, &error));
  a->peers = canopy_peers_new (
    c->tcp, canopy_config_node_get_child (canopy_config_get_root (a->config), "transport"),
    &creds, a->cache, 2, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  g_assert (canopy_peers_listen (a->peers, &a->port, &error));
  CU_ASSERT (a->port != 0);
  return a;
}

static void
agent_free (TestAgent *a)
{
  g_clear_pointer (&a->fetch, canopy_fetch_free);
  g_clear_pointer (&a->peers, canopy_peers_free);
  /* Let worker threads that still hold the fetch finish before the cache goes. */
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_clear_pointer (&a->cache, canopy_cache_free);
  canopy_config_free (a->config);
  g_free (a->failure);
  g_free (a->destination);
  g_free (a->dir);
  g_free (a->id);
  g_free (a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestAgent, agent_free)

static void
on_report (CanopyFetch *fetch, guint kind, GVariant *body, gpointer user_data)
{
  TestAgent *a = user_data;
  g_autoptr (GVariant) sunk = g_variant_ref_sink (body);

  CU_ASSERT (g_variant_is_of_type (sunk, canopy_wire_kind_type (kind)));
  if (kind == CANOPY_WIRE_DONE)
    a->done = TRUE;
  else if (kind == CANOPY_WIRE_FAILED)
    {
      a->failed = TRUE;
      a->n_failed++;
      g_clear_pointer (&a->failure, g_free);
      g_variant_get_child (sunk, 1, "s", &a->failure);
      fprintf (stderr, "\n    %s failed: %s\n", a->id, a->failure);
    }
  else if (kind == CANOPY_WIRE_PROGRESS)
    {
      g_autoptr (GVariant) peers = g_variant_get_child_value (sunk, 3);
      GVariantIter iter;
      const char *device;
      guint64 bytes;
      guint32 failed;

      g_variant_iter_init (&iter, peers);
      while (g_variant_iter_next (&iter, "(&stu)", &device, &bytes, &failed))
        a->peer_failures += failed;
    }
  else if (kind == CANOPY_WIRE_WAN_PACING)
    {
      guint64 rate;

      g_variant_get_child (sunk, 1, "t", &rate);
      a->pacing_reports += rate > 0;
    }
}

typedef struct {
  guint32 kind;
  const TestAgent *agent; /* NULL for the origin */
  const char *url;        /* the origin's, if not the content's file */
} Src;

static GVariant *
assignment (Content *c, CanopyRole role, const Src *sources, gsize n_sources,
            const char *destination, guint64 rate)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ussq)"));
  for (gsize i = 0; i < n_sources; i++)
    if (sources[i].agent != NULL)
      g_variant_builder_add (&b, "(ussq)", sources[i].kind, sources[i].agent->id, "127.0.0.1",
                             sources[i].agent->port);
    else
      g_variant_builder_add (&b, "(ussq)", sources[i].kind, "",
                             sources[i].url != NULL ? sources[i].url : c->origin, (guint16) 0);
  return g_variant_ref_sink (g_variant_new (
    "(s@ayu@a(ussq)st)", "deployment-1",
    g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, c->signed_manifest, TRUE), role,
    g_variant_builder_end (&b), destination, rate));
}

/* The devices of these tests write under the test's directory only. */
static void
allow_test_dir (CanopyFetch *fetch, const Content *c)
{
  const char *allowed[] = { c->dir, NULL };

  canopy_fetch_set_destinations (fetch, allowed);
}

/* @a starts carrying out the assignment @body. */
static void
agent_fetch_body (TestAgent *a, Content *c, GVariant *body)
{
  g_autoptr (GError) error = NULL;

  a->fetch = canopy_fetch_new (a->cache, a->peers, c->key, body, on_report, a, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  allow_test_dir (a->fetch, c);
  canopy_fetch_start (a->fetch);
}

static void
agent_fetch (TestAgent *a, Content *c, CanopyRole role, const Src *sources, gsize n_sources)
{
  g_autoptr (GVariant) body = assignment (c, role, sources, n_sources, a->destination, 0);

  agent_fetch_body (a, c, body);
}

static gboolean
run_until_done (TestAgent **agents, gsize n)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      gboolean all = TRUE;

      for (gsize i = 0; i < n; i++)
        if (!agents[i]->done && !agents[i]->failed)
          all = FALSE;
      if (all)
        return TRUE;
      g_main_context_iteration (NULL, TRUE);
    }
  return FALSE;
}

static void
iterate_for (guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static void
assert_installed (Content *c, TestAgent *a)
{
  g_autofree char *contents = NULL;
  gsize length = 0;

  CU_ASSERT (a->done);
  CU_ASSERT_FALSE (a->failed);
  CU_ASSERT_FATAL (g_file_get_contents (a->destination, &contents, &length, NULL));
  CU_ASSERT_EQUAL (length, CONTENT_SIZE);
  CU_ASSERT (length == CONTENT_SIZE && memcmp (contents, c->data, length) == 0);
}

/* The lead crosses the WAN once; its peers take every chunk from the office. */
static void
test_office_shares (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) lead = NULL;
  g_autoptr (TestAgent) b = NULL;
  g_autoptr (TestAgent) d = NULL;

  if (!make_content (&c))
    return;
  lead = agent_new (&c, "lead");
  b = agent_new (&c, "peer-b");
  d = agent_new (&c, "peer-d");
  {
    Src lead_src[] = { { CANOPY_SOURCE_OFFICE_PEER, b }, { CANOPY_SOURCE_OFFICE_PEER, d },
                       { CANOPY_SOURCE_ORIGIN, NULL } };
    Src b_src[] = { { CANOPY_SOURCE_OFFICE_PEER, lead }, { CANOPY_SOURCE_OFFICE_PEER, d } };
    Src d_src[] = { { CANOPY_SOURCE_OFFICE_PEER, lead }, { CANOPY_SOURCE_OFFICE_PEER, b } };
    TestAgent *all[] = { lead, b, d };

    agent_fetch (b, &c, CANOPY_ROLE_PEER, b_src, G_N_ELEMENTS (b_src));
    agent_fetch (d, &c, CANOPY_ROLE_PEER, d_src, G_N_ELEMENTS (d_src));
    agent_fetch (lead, &c, CANOPY_ROLE_LEAD, lead_src, G_N_ELEMENTS (lead_src));
    CU_ASSERT_FATAL (run_until_done (all, G_N_ELEMENTS (all)));
  }
  assert_installed (&c, lead);
  assert_installed (&c, b);
  assert_installed (&c, d);
  /* The office's WAN link carried the content once. */
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_ORIGIN), CONTENT_SIZE);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_OFFICE_PEER), 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (b->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (b->fetch, CANOPY_SOURCE_OFFICE_PEER), CONTENT_SIZE);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (d->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (d->fetch, CANOPY_SOURCE_OFFICE_PEER), CONTENT_SIZE);
  CU_ASSERT (canopy_peers_get_uploaded (lead->peers) > 0);
  content_clear (&c);
}

/* Fills @a's cache with the whole content, as a run before a restart did,
 * then reopens it from the stored manifest alone. */
static void
seed_cache (Content *c, TestAgent *a)
{
  g_autoptr (GError) error = NULL;
  CanopyCacheEntry *entry = canopy_cache_open_entry (a->cache, c->manifest, &error);
  guint n = canopy_manifest_get_n_chunks (c->manifest);

  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < n; i++)
    g_assert (canopy_cache_entry_store_chunk (entry, i, c->data + (gsize) i * CHUNK,
                                              canopy_manifest_get_chunk_length (c->manifest, i),
                                              &error));
}

static void
on_result (GObject *object, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A peer whose disk damaged every chunk (it finds out as it reads them,
 * and says it cannot serve them) is dropped and reported; the chunks come
 * from the good peer, which serves a cache reopened after a restart. */
static void
test_bad_peer_dropped (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) bad = NULL;
  g_autoptr (TestAgent) good = NULL;
  g_autoptr (TestAgent) fetcher = NULL;

  if (!make_content (&c))
    return;
  bad = agent_new (&c, "bad");
  good = agent_new (&c, "good");
  fetcher = agent_new (&c, "fetcher");
  seed_cache (&c, bad);
  seed_cache (&c, good);

  /* The good peer restarts: its cache reopens from the kept manifest. */
  g_clear_pointer (&good->peers, canopy_peers_free);
  g_clear_pointer (&good->cache, canopy_cache_free);
  agent_open_cache (good);
  {
    /* Off the main loop, as the agent does it; the main loop keeps running. */
    g_autoptr (GAsyncResult) result = NULL;
    g_autoptr (GError) error = NULL;
    g_auto (GStrv) ids = NULL;
    g_autoptr (GBytes) public_key = NULL;
    g_autofree char *key_path = g_build_filename (c.dir, "signing.pem", NULL);
    g_autoptr (CanopySigningKey) signing = canopy_signing_key_load (key_path, &error);

    public_key = canopy_signing_key_get_public (signing);
    canopy_cache_reopen_async (good->cache, public_key, NULL, on_result, &result);
    while (result == NULL)
      g_main_context_iteration (NULL, TRUE);
    ids = canopy_cache_reopen_finish (result, &error);
    CANOPY_ASSERT_NO_ERROR (error);
    CU_ASSERT_FATAL (ids != NULL && g_strv_length (ids) == 1);
    CU_ASSERT_STRING_EQUAL (ids[0], c.manifest->content_id);
    CU_ASSERT_PTR_NOT_NULL (canopy_cache_lookup_entry (good->cache, c.manifest->content_id));
  }
  {
    CanopySharedKey key;
    CanopyTransportCredentials creds;
    g_autoptr (GError) error = NULL;

    memset (key.bytes, 0x5a, sizeof key.bytes);
    g_assert (canopy_keys_make_transport_credentials (&key, "good", &creds, &error));
    good->peers = canopy_peers_new (
      c.tcp, canopy_config_node_get_child (canopy_config_get_root (good->config), "transport"),
      &creds, good->cache, 2, &error);
    g_assert (canopy_peers_listen (good->peers, &good->port, &error));
  }

  /* The bad peer's disk damages every chunk after they were verified. */
  {
    g_autofree char *path = g_strdup_printf ("%s/cache/%s/data", bad->dir,
                                             c.manifest->content_id);
    canopy_test_damage_file (path, 100, c.manifest->chunk_size);
  }
  {
    Src src[] = { { CANOPY_SOURCE_OFFICE_PEER, bad }, { CANOPY_SOURCE_OFFICE_PEER, good } };
    TestAgent *all[] = { fetcher };

    agent_fetch (fetcher, &c, CANOPY_ROLE_PEER, src, G_N_ELEMENTS (src));
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, fetcher);
  CU_ASSERT (fetcher->peer_failures >= 1);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_OFFICE_PEER),
                   CONTENT_SIZE);
  content_clear (&c);
}

static char *
data_file (Content *c, TestAgent *a)
{
  return g_strdup_printf ("%s/cache/%s/data", a->dir, c->manifest->content_id);
}

/* @fetcher leads an office where only @holder holds the content, then
 * crosses the WAN to the origin: what @holder cannot serve comes from
 * there. Returns what was logged meanwhile. */
static char *
fetch_from_holder (Content *c, TestAgent *holder, TestAgent *fetcher)
{
  Src src[] = { { CANOPY_SOURCE_OFFICE_PEER, holder }, { CANOPY_SOURCE_ORIGIN, NULL } };
  TestAgent *all[] = { fetcher };

  canopy_test_log_capture_begin ();
  agent_fetch (fetcher, c, CANOPY_ROLE_LEAD, src, G_N_ELEMENTS (src));
  CU_ASSERT (run_until_done (all, 1));
  return canopy_test_log_capture_end ();
}

/* The holder's cache no longer counts the chunks @dropped (ending with
 * G_MAXUINT), and holds the rest. */
static void
assert_dropped (Content *c, TestAgent *holder, const guint *dropped)
{
  CanopyCacheEntry *entry = canopy_cache_lookup_entry (holder->cache, c->manifest->content_id);
  guint n = canopy_manifest_get_n_chunks (c->manifest);
  guint64 size = CONTENT_SIZE;
  guint count = n;

  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  for (guint i = 0; dropped[i] != G_MAXUINT; i++)
    {
      CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, dropped[i]));
      size -= canopy_manifest_get_chunk_length (c->manifest, dropped[i]);
      count--;
    }
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), count);
  CU_ASSERT_EQUAL (canopy_cache_get_size (holder->cache), size);
}

static guint
count_lines_with (const char *text, const char *words)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], words) != NULL)
      n++;
  return n;
}

/* Chunks the holder's disk damaged after they were verified are not sent:
 * the holder checks each as it reads it, says so in its log (once: a
 * failing disk must not flood it), drops them from its cache and tells
 * the asking peer they are not available, which takes them from the
 * origin and does not take the holder for a liar. */
static void
test_damaged_chunk_not_served (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) fetcher = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  g_autofree char *stop_log = NULL;
  const guint damaged[] = { 2, 5, G_MAXUINT };

  if (!make_content (&c))
    return;
  holder = agent_new (&c, "holder");
  fetcher = agent_new (&c, "fetcher");
  seed_cache (&c, holder);
  path = data_file (&c, holder);
  for (guint i = 0; damaged[i] != G_MAXUINT; i++)
    canopy_test_damage_file (path, (gsize) damaged[i] * CHUNK + 10, 2 * CONTENT_SIZE);

  log = fetch_from_holder (&c, holder, fetcher);
  assert_installed (&c, fetcher);
  CU_ASSERT_EQUAL (fetcher->peer_failures, 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_OFFICE_PEER),
                   CONTENT_SIZE - 2 * CHUNK);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_ORIGIN), 2 * CHUNK);
  assert_dropped (&c, holder, damaged);
  /* Chunk 2 or 5, whichever failed first. */
  CANOPY_ASSERT_CONTAINS (log, c.manifest->content_id);
  CANOPY_ASSERT_CONTAINS (log, "to office peer fetcher");
  CANOPY_ASSERT_CONTAINS (log, "no longer matches its manifest");
  CANOPY_ASSERT_CONTAINS (log, path);
  CANOPY_ASSERT_CONTAINS (log, "will be fetched again");
  CU_ASSERT_EQUAL (count_lines_with (log, "Cannot serve chunk"), 1);
  /* What the rate limit held back is counted, at the latest on stopping. */
  canopy_test_log_capture_begin ();
  g_clear_pointer (&holder->peers, canopy_peers_free);
  stop_log = canopy_test_log_capture_end ();
  CANOPY_ASSERT_CONTAINS (stop_log, "1 more chunk could not be served to office peers");
  content_clear (&c);
}

/* Chunks an agent has just fetched are served from memory: the fetcher
 * gets every one of them from the office although the disk under the
 * holder's cache damaged them all since. */
static void
test_recent_chunks_served_from_memory (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) fetcher = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  Src origin[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  TestAgent *first[1];

  if (!make_content (&c))
    return;
  holder = agent_new (&c, "holder");
  fetcher = agent_new (&c, "fetcher");
  first[0] = holder;
  agent_fetch (holder, &c, CANOPY_ROLE_LEAD, origin, G_N_ELEMENTS (origin));
  CU_ASSERT_FATAL (run_until_done (first, 1));
  path = data_file (&c, holder);
  canopy_test_damage_file (path, 10, CHUNK);

  log = fetch_from_holder (&c, holder, fetcher);
  assert_installed (&c, fetcher);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_OFFICE_PEER),
                   CONTENT_SIZE);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_EQUAL (count_lines_with (log, "Cannot serve chunk"), 0);
  content_clear (&c);
}

/* @holder holds an earlier version of @c (chunks @changed, ending with
 * G_MAXUINT, differ), never assigned @c itself. */
static CanopyManifest *
seed_earlier_version (Content *c, TestAgent *holder, const guint *changed)
{
  g_autofree guint8 *v1 = g_memdup2 (c->data, CONTENT_SIZE);
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GError) error = NULL;
  CanopyManifest *m1;
  CanopyCacheEntry *entry;

  for (guint i = 0; changed[i] != G_MAXUINT; i++)
    v1[(gsize) changed[i] * CHUNK + 100] ^= 0x55;
  stream = g_memory_input_stream_new_from_data (v1, CONTENT_SIZE, NULL);
  m1 = canopy_manifest_build (stream, "app", "0.9", CHUNK, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  entry = canopy_cache_open_entry (holder->cache, m1, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m1); i++)
    g_assert (canopy_cache_entry_store_chunk (entry, i, v1 + (gsize) i * CHUNK,
                                              canopy_manifest_get_chunk_length (m1, i), &error));
  return m1;
}

/* An office peer that holds only an earlier version serves the chunks the
 * two share, asked for by SHA-256: the lead takes from the origin only
 * the changed chunks and one the holder's disk damaged (which the holder
 * checks as it reads it, and does not send), and counts the rest as
 * earlier versions. */
static void
test_chunks_by_hash_from_earlier_version (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) fetcher = NULL;
  g_autoptr (CanopyManifest) m1 = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  const guint changed[] = { 3, 7, G_MAXUINT };
  const guint damaged = 5;

  if (!make_content (&c))
    return;
  holder = agent_new (&c, "holder");
  fetcher = agent_new (&c, "fetcher");
  m1 = seed_earlier_version (&c, holder, changed);
  CU_ASSERT_STRING_NOT_EQUAL (m1->content_id, c.manifest->content_id);
  path = g_strdup_printf ("%s/cache/%s/data", holder->dir, m1->content_id);
  canopy_test_damage_file (path, (gsize) damaged * CHUNK + 10, 2 * CONTENT_SIZE);

  log = fetch_from_holder (&c, holder, fetcher);
  assert_installed (&c, fetcher);
  CU_ASSERT_EQUAL (fetcher->peer_failures, 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_ORIGIN), 3 * CHUNK);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_EARLIER_VERSIONS),
                   CONTENT_SIZE - 3 * CHUNK);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_OFFICE_PEER), 0);
  /* The holder was never given the new version; it checked the damaged
   * chunk against its own manifest and dropped it. */
  CU_ASSERT_PTR_NULL (canopy_cache_lookup_entry (holder->cache, c.manifest->content_id));
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (
    canopy_cache_lookup_entry (holder->cache, m1->content_id), damaged));
  CANOPY_ASSERT_CONTAINS (log, m1->content_id);
  CANOPY_ASSERT_CONTAINS (log, "no longer matches its manifest");
  content_clear (&c);
}

/* An office peer that holds the whole content connected to the lead
 * before the lead's fetch started (as a peer that started fetching first
 * does): the lead learns what that peer holds before it crosses the WAN,
 * and takes nothing from the origin. */
static void
test_peer_connected_before_lead (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) lead = NULL;
  gint64 deadline;

  if (!make_content (&c))
    return;
  holder = agent_new (&c, "holder");
  lead = agent_new (&c, "lead");
  seed_cache (&c, holder);
  canopy_peers_connect (holder->peers, lead->id, "127.0.0.1", lead->port);
  deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;
  while (!canopy_peers_is_connected (lead->peers, holder->id)
         && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_FATAL (canopy_peers_is_connected (lead->peers, holder->id));

  g_free (fetch_from_holder (&c, holder, lead));
  assert_installed (&c, lead);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_OFFICE_PEER), CONTENT_SIZE);
  content_clear (&c);
}

/* The holder's data file was cut short under it: the last chunk cannot be
 * read. The holder logs which chunk of which file, drops it and answers
 * "not available"; the asking peer takes it from the origin. */
static void
test_unreadable_chunk_not_served (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) fetcher = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  guint last;

  if (!make_content (&c))
    return;
  last = canopy_manifest_get_n_chunks (c.manifest) - 1;
  holder = agent_new (&c, "holder");
  fetcher = agent_new (&c, "fetcher");
  seed_cache (&c, holder);
  path = data_file (&c, holder);
  CU_ASSERT_FATAL (truncate (path, (off_t) last * CHUNK) == 0);

  log = fetch_from_holder (&c, holder, fetcher);
  assert_installed (&c, fetcher);
  CU_ASSERT_EQUAL (fetcher->peer_failures, 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (fetcher->fetch, CANOPY_SOURCE_ORIGIN),
                   CONTENT_SIZE - (gsize) last * CHUNK);
  {
    const guint dropped[] = { last, G_MAXUINT };

    assert_dropped (&c, holder, dropped);
  }
  {
    g_autofree char *what = g_strdup_printf ("Cannot read chunk %u of \"app\"", last);

    CANOPY_ASSERT_CONTAINS (log, what);
  }
  CANOPY_ASSERT_CONTAINS (log, "to office peer fetcher");
  CANOPY_ASSERT_CONTAINS (log, path);
  CANOPY_ASSERT_CONTAINS (log, "check the disk holding");
  content_clear (&c);
}

static gboolean
connect_asker (TestAgent *asker, TestAgent *holder)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;

  canopy_peers_connect (asker->peers, holder->id, "127.0.0.1", holder->port);
  while (!canopy_peers_is_connected (asker->peers, holder->id)
         && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  return canopy_peers_is_connected (asker->peers, holder->id);
}

/* A device still fetching serves an office peer a chunk it held since
 * before, which its disk damaged meanwhile: the chunk is dropped as it is
 * served, and the device's own fetch takes it again from the origin at
 * once, instead of failing or finding out only when the package does not
 * match its SHA-256. */
static void
test_dropped_chunk_fetched_again (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (TestAgent) asker = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  CanopyCacheEntry *entry;
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  /* 4 MiB/s: the rest takes about two seconds, time for the peer to ask. */
  guint64 rate = 4ull * CHUNK * 8;
  const guint kept = 5;

  if (!make_content (&c))
    return;
  a = agent_new (&c, "fetching");
  asker = agent_new (&c, "asker");
  entry = canopy_cache_open_entry (a->cache, c.manifest, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < kept; i++)
    g_assert (canopy_cache_entry_store_chunk (entry, i, c.data + (gsize) i * CHUNK, CHUNK,
                                              &error));
  path = data_file (&c, a);
  canopy_test_damage_file (path, CHUNK + 10, 2 * CONTENT_SIZE);
  {
    g_autoptr (GVariant) body = assignment (&c, CANOPY_ROLE_DIRECT, src, 1, a->destination, rate);
    TestAgent *all[] = { a };

    a->fetch = canopy_fetch_new (a->cache, a->peers, c.key, body, on_report, a, &error);
    CANOPY_ASSERT_NO_ERROR (error);
    allow_test_dir (a->fetch, &c);
    canopy_test_log_capture_begin ();
    canopy_fetch_start (a->fetch);
    CU_ASSERT_FATAL (connect_asker (asker, a));
    CU_ASSERT (canopy_peers_request (asker->peers, a->id, c.manifest->content_id, 1, &error));
    CU_ASSERT_FATAL (run_until_done (all, 1));
    log = canopy_test_log_capture_end ();
  }
  assert_installed (&c, a);
  /* Caught as it was served, not by a package that failed its SHA-256. */
  CANOPY_ASSERT_CONTAINS (log, "Cannot serve chunk 1 of content");
  CU_ASSERT (strstr (log, "changed on disk") == NULL);
  CU_ASSERT (canopy_cache_entry_has_chunk (entry, 1));
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN),
                   CONTENT_SIZE - (kept - 1) * CHUNK);
  content_clear (&c);
}

static gboolean
on_tick (gpointer user_data)
{
  gint64 *last = user_data;
  gint64 now = g_get_monotonic_time ();

  last[1] = MAX (last[1], now - last[0]);
  last[0] = now;
  return G_SOURCE_CONTINUE;
}

/* Runs the main loop for @ms; returns the longest it went without
 * dispatching a 10 ms timer. */
static gint64
longest_stall (guint ms)
{
  gint64 ticks[2] = { g_get_monotonic_time (), 0 };
  guint id = g_timeout_add (10, on_tick, ticks);

  iterate_for (ms);
  g_source_remove (id);
  on_tick (ticks);
  return ticks[1];
}

/* Opens and closes the writing end of the FIFO @user_data, which lets
 * every reader blocked opening it go on (to read nothing). */
static gpointer
unblock_fifo (gpointer user_data)
{
  const char *path = user_data;
  int fd = open (path, O_WRONLY | O_NONBLOCK);

  if (fd >= 0)
    close (fd);
  return NULL;
}

typedef struct {
  const char *path;
  gint stop;
} Safety;

/* The safety net: lets a blocked open go on every 3 s until stopped. */
static gpointer
keep_unblocking (gpointer user_data)
{
  Safety *safety = user_data;

  for (guint i = 1; !g_atomic_int_get (&safety->stop); i++)
    {
      g_usleep (G_USEC_PER_SEC / 10);
      if (i % 30 == 0)
        unblock_fifo ((gpointer) safety->path);
    }
  return NULL;
}


/* A disk that stalls (a FIFO in place of the data file blocks whoever
 * opens it) does not stall the agent: its main loop keeps running while a
 * worker waits. The asking peer leaves, then the serving agent stops,
 * each while a read is in flight: the reads finish on their own
 * references (ASan and LeakSanitizer report any use after free or leak),
 * the failure is still logged and the chunks dropped. A safety thread
 * opens the FIFO every 3 s, so a loop that does block goes on. */
static void
test_read_in_flight (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) asker = NULL;
  g_autoptr (TestAgent) stopper = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  Safety safety = { NULL, 0 };
  GThread *thread;
  CanopyCacheEntry *entry;
  gint64 stall;

  if (!make_content (&c))
    return;
  holder = agent_new (&c, "holder");
  asker = agent_new (&c, "asker");
  stopper = agent_new (&c, "stopper");
  seed_cache (&c, holder);
  entry = canopy_cache_lookup_entry (holder->cache, c.manifest->content_id);
  path = data_file (&c, holder);
  CU_ASSERT_FATAL (g_unlink (path) == 0 && mkfifo (path, 0600) == 0);
  safety.path = path;
  thread = g_thread_new ("fifo-safety", keep_unblocking, &safety);

  canopy_test_log_capture_begin ();
  CU_ASSERT_FATAL (connect_asker (asker, holder));
  CU_ASSERT (canopy_peers_request (asker->peers, holder->id, c.manifest->content_id, 0, &error));
  stall = longest_stall (400);
  CU_ASSERT (stall < G_USEC_PER_SEC / 2);
  /* The asking peer goes while the read waits on the disk. */
  g_clear_pointer (&asker->peers, canopy_peers_free);
  iterate_for (200);
  /* The disk answers: reading a FIFO at an offset fails. */
  unblock_fifo (path);
  iterate_for (300);
  log = canopy_test_log_capture_end ();
  CANOPY_ASSERT_CONTAINS (log, "Cannot serve chunk 0 of content");
  CANOPY_ASSERT_CONTAINS (log, "to office peer asker");
  CANOPY_ASSERT_CONTAINS (log, path);
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 0));

  /* Another asks, and the serving agent stops while that read waits. */
  CU_ASSERT_FATAL (connect_asker (stopper, holder));
  CU_ASSERT (canopy_peers_request (stopper->peers, holder->id, c.manifest->content_id, 1,
                                   &error));
  iterate_for (200);
  g_clear_pointer (&holder->peers, canopy_peers_free);
  unblock_fifo (path);
  iterate_for (300);
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 1));
  CU_ASSERT (canopy_cache_entry_has_chunk (entry, 2));
  g_atomic_int_set (&safety.stop, 1);
  g_thread_join (thread);
  content_clear (&c);
}

/* A fetch resumed after a restart asks the origin only for what is missing. */
static void
test_resume (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GError) error = NULL;
  CanopyCacheEntry *entry;
  const guint kept = 5;

  if (!make_content (&c))
    return;
  a = agent_new (&c, "resumer");
  entry = canopy_cache_open_entry (a->cache, c.manifest, &error);
  for (guint i = 0; i < kept; i++)
    g_assert (canopy_cache_entry_store_chunk (entry, i, c.data + (gsize) i * CHUNK, CHUNK,
                                              &error));
  g_clear_pointer (&a->peers, canopy_peers_free);
  g_clear_pointer (&a->cache, canopy_cache_free);
  agent_open_cache (a);
  {
    Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
    TestAgent *all[] = { a };

    agent_fetch (a, &c, CANOPY_ROLE_DIRECT, src, G_N_ELEMENTS (src));
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, a);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN),
                   CONTENT_SIZE - kept * CHUNK);
  content_clear (&c);
}

/* Cache data changed on disk after it was verified (an installed file
 * that was once a hard link to it, or disk damage): the package no longer
 * matches, so the damaged chunk is forgotten and fetched again, instead
 * of the deployment failing on this device for good. */
static void
test_damaged_cache_refetched (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  CanopyCacheEntry *entry;
  guint n;

  if (!make_content (&c))
    return;
  a = agent_new (&c, "damaged");
  entry = canopy_cache_open_entry (a->cache, c.manifest, &error);
  n = canopy_manifest_get_n_chunks (c.manifest);
  for (guint i = 0; i < n; i++)
    g_assert (canopy_cache_entry_store_chunk (entry, i, c.data + (gsize) i * CHUNK,
                                              canopy_manifest_get_chunk_length (c.manifest, i),
                                              &error));
  data = g_build_filename (a->dir, "cache", c.manifest->content_id, "data", NULL);
  canopy_test_damage_file (data, 2 * CHUNK + 17, G_MAXSIZE);
  {
    Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
    TestAgent *all[] = { a };

    agent_fetch (a, &c, CANOPY_ROLE_DIRECT, src, G_N_ELEMENTS (src));
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, a);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN), CHUNK);
  content_clear (&c);
}

/* A destination outside the device's <destinations>: refused before a
 * byte is fetched, with a reason the server passes on to the admin. */
static void
test_destination_refused (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GError) error = NULL;
  const char *allowed[] = { "/nonexistent-canopy-test", NULL };
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  TestAgent *all[] = { NULL };

  if (!make_content (&c))
    return;
  a = agent_new (&c, "refuser");
  all[0] = a;
  {
    g_autoptr (GVariant) body = assignment (&c, CANOPY_ROLE_DIRECT, src, 1, a->destination, 0);

    a->fetch = canopy_fetch_new (a->cache, NULL, c.key, body, on_report, a, &error);
    CANOPY_ASSERT_NO_ERROR (error);
    canopy_fetch_set_destinations (a->fetch, allowed);
    canopy_fetch_start (a->fetch);
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  CU_ASSERT (a->failed);
  CU_ASSERT_FALSE (a->done);
  CANOPY_ASSERT_CONTAINS (a->failure, "not under a directory this device allows");
  CANOPY_ASSERT_CONTAINS (a->failure, a->destination);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_FALSE (g_file_test (a->destination, G_FILE_TEST_EXISTS));
  content_clear (&c);
}

/* The WAN leg keeps to the assignment's rate; a waiting device fetches nothing. */
static void
test_rate_and_wait (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (TestAgent) w = NULL;
  g_autoptr (GError) error = NULL;
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  /* 4 MiB/s: after the first second's allowance the rest needs ~2 s more. */
  guint64 rate = 4ull * CHUNK * 8;
  gint64 start;
  double elapsed;

  if (!make_content (&c))
    return;
  a = agent_new (&c, "rated");
  w = agent_new (&c, "waiter");
  {
    g_autoptr (GVariant) body = assignment (&c, CANOPY_ROLE_DIRECT, src, 1, a->destination, rate);
    g_autoptr (GVariant) wait = assignment (&c, CANOPY_ROLE_WAIT, src, 1, w->destination, 0);
    TestAgent *all[] = { a };

    a->fetch = canopy_fetch_new (a->cache, NULL, c.key, body, on_report, a, &error);
    w->fetch = canopy_fetch_new (w->cache, NULL, c.key, wait, on_report, w, &error);
    CANOPY_ASSERT_NO_ERROR (error);
    allow_test_dir (a->fetch, &c);
    allow_test_dir (w->fetch, &c);
    start = g_get_monotonic_time ();
    canopy_fetch_start (a->fetch);
    canopy_fetch_start (w->fetch);
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  elapsed = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  assert_installed (&c, a);
  CU_ASSERT (elapsed >= 1.8);
  CU_ASSERT (elapsed < 6.0);
  CU_ASSERT_FALSE (w->done);
  CU_ASSERT_EQUAL (canopy_fetch_get_bytes (w->fetch, CANOPY_SOURCE_ORIGIN), 0);
  CU_ASSERT_FALSE (g_file_test (w->destination, G_FILE_TEST_EXISTS));
  content_clear (&c);
}

/* The HTTP origin program serving @c's package on loopback; its URL's
 * port in @port. */
static GSubprocess *
start_http_origin (Content *c, guint16 *port)
{
  g_autofree char *program = canopy_test_build_path ("tests", "canopy-test-origin", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  GSubprocess *origin = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, program,
                                          c->origin, "127.0.0.1", "0", NULL);
  const char *colon;

  CANOPY_ASSERT_NO_ERROR (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (origin));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (line);
  /* "origin http://127.0.0.1:PORT/origin.bin" */
  colon = strrchr (line, ':');
  CU_ASSERT_PTR_NOT_NULL_FATAL (colon);
  *port = (guint16) g_ascii_strtoull (colon + 1, NULL, 10);
  return origin;
}

/* Starts the HTTP origin program serving @c's package; its URL. */
static char *
start_http_origin_url (Content *c, GSubprocess **origin)
{
  guint16 port = 0;

  *origin = start_http_origin (c, &port);
  return g_strdup_printf ("http://127.0.0.1:%u/origin.bin", port);
}

/* Stops @a's fetch, then the origin program it fetched from. */
static void
stop_http_origin (TestAgent *a, GSubprocess *origin)
{
  g_clear_pointer (&a->fetch, canopy_fetch_free);
  iterate_for (100);
  g_subprocess_send_signal (origin, SIGTERM);
  g_subprocess_wait (origin, NULL, NULL);
}

static gboolean
iterate_until_rate (TestAgent *a, gboolean (*reached) (TestAgent *a, gpointer data),
                    gpointer data)
{
  gint64 deadline = g_get_monotonic_time ()
                    + (gint64) canopy_test_timeout (TIMEOUT_S * 2) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline && !a->done && !a->failed)
    {
      if (reached (a, data))
        return TRUE;
      iterate_for (50);
    }
  return FALSE;
}

static gboolean
got_chunks_and_grew (TestAgent *a, gpointer data)
{
  return canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN) >= 3 * CHUNK
         && canopy_fetch_get_background_rate (a->fetch) >= 2 * *(double *) data;
}

static gboolean
at_minimum (TestAgent *a, gpointer data)
{
  return canopy_fetch_get_background_rate (a->fetch) <= *(double *) data * 1.01;
}

/* A background lead fetching over HTTP from an origin behind a path whose
 * delay the test raises mid-fetch, as a queue filled by someone else's
 * traffic would: its controller measures the rise on its own range
 * requests and throttles to its minimum rate instead of going on at the
 * link's rate. Put back in the normal class, it completes the package.
 * Nothing here is timed: each step waits for a state, with a timeout
 * only against hanging. */
static void
test_background_throttled (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GSubprocess) origin = NULL;
  g_autoptr (CanopyTestDelayProxy) proxy = NULL;
  g_autoptr (GVariant) body = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  guint16 origin_port = 0, proxy_port = 0;
  /* 2 MiB/s: the controller starts at a tenth of it and its minimum is a
   * chunk each 8 s (the larger of that and 1 % of the link). */
  guint64 link = 2ull * CHUNK;
  double start_rate, min_rate = (double) CHUNK / 8.0;

  if (!make_content (&c))
    return;
  origin = start_http_origin (&c, &origin_port);
  proxy = canopy_test_delay_proxy_new ("127.0.0.1", origin_port, &proxy_port);
  canopy_test_delay_proxy_set_delay (proxy, 2000);
  url = g_strdup_printf ("http://127.0.0.1:%u/origin.bin", proxy_port);
  a = agent_new (&c, "background");
  {
    Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL, url } };

    body = assignment (&c, CANOPY_ROLE_LEAD, src, 1, a->destination, link * 8);
  }
  a->fetch = canopy_fetch_new (a->cache, NULL, c.key, body, on_report, a, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  allow_test_dir (a->fetch, &c);
  canopy_fetch_set_wan_class (a->fetch, TRUE, 25);
  start_rate = canopy_fetch_get_background_rate (a->fetch);
  CU_ASSERT_DOUBLE_EQUAL (start_rate, (double) link / 10, 1);
  canopy_fetch_start (a->fetch);

  /* An idle path: the rate grows past where it started. */
  CU_ASSERT_FATAL (iterate_until_rate (a, got_chunks_and_grew, &start_rate));
  CU_ASSERT (canopy_fetch_get_queueing_delay (a->fetch) < 25000);

  /* 200 ms more on the way back: the controller backs off to its floor. */
  canopy_test_delay_proxy_set_delay (proxy, 200000);
  CU_ASSERT_FATAL (iterate_until_rate (a, at_minimum, &min_rate));
  CU_ASSERT (canopy_fetch_get_queueing_delay (a->fetch) >= 100000);
  CU_ASSERT_FALSE (a->done);
  CU_ASSERT (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN) < CONTENT_SIZE);
  CU_ASSERT (a->pacing_reports > 0);

  /* The normal class again: the office's link rate alone, to the end. */
  canopy_test_delay_proxy_set_delay (proxy, 2000);
  canopy_fetch_set_wan_class (a->fetch, FALSE, 0);
  CU_ASSERT_EQUAL (canopy_fetch_get_background_rate (a->fetch), 0);
  {
    TestAgent *all[] = { a };
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, a);
  stop_http_origin (a, origin);
  content_clear (&c);
}

static gboolean
got_chunks (TestAgent *a, gpointer data)
{
  return canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN) >= *(guint64 *) data;
}

/* A lead streams the rest of the package from the origin in one range
 * request. When the server hands the lead to another device, that request
 * stops there: the office's WAN does not carry the rest a second time. */
static void
test_demoted_lead_stops (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GSubprocess) origin = NULL;
  g_autoptr (GVariant) lead = NULL;
  g_autoptr (GVariant) peer = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  guint64 demoted_at, three = 3 * CHUNK;

  if (!make_content (&c))
    return;
  url = start_http_origin_url (&c, &origin);
  a = agent_new (&c, "demoted");
  {
    /* 2 MiB/s: the package takes six seconds. */
    Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL, url } };

    lead = assignment (&c, CANOPY_ROLE_LEAD, src, 1, a->destination, 2ull * CHUNK * 8);
    peer = assignment (&c, CANOPY_ROLE_PEER, NULL, 0, a->destination, 0);
  }
  agent_fetch_body (a, &c, lead);
  CU_ASSERT_FATAL (iterate_until_rate (a, got_chunks, &three));

  CU_ASSERT_FATAL (canopy_fetch_update (a->fetch, peer, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  demoted_at = canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN);
  /* Two and a half seconds: five more chunks had the request gone on.
   * At most the chunk being stored and the one under way are counted
   * after. */
  iterate_for (2500);
  CU_ASSERT (canopy_fetch_get_bytes (a->fetch, CANOPY_SOURCE_ORIGIN) <= demoted_at + 2 * CHUNK);
  CU_ASSERT_FALSE (a->done);
  CU_ASSERT_FALSE (a->failed);

  /* Lead again, it completes the package from where it stopped. */
  CU_ASSERT_FATAL (canopy_fetch_update (a->fetch, lead, &error));
  {
    TestAgent *all[] = { a };
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, a);
  stop_http_origin (a, origin);
  content_clear (&c);
}

/* A lead's range request streams the rest of the package. An office
 * peer it learns of afterwards that holds the rest (the lead before it,
 * cut off from its server meanwhile) serves what the lead has not yet
 * received: the request is cut short, the office's WAN does not carry it
 * a second time. */
static void
test_origin_run_cut_by_peer (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) holder = NULL;
  g_autoptr (TestAgent) lead = NULL;
  g_autoptr (GSubprocess) origin = NULL;
  g_autoptr (GVariant) alone = NULL;
  g_autoptr (GVariant) with_peer = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  guint64 told_at, two = 2 * CHUNK;

  if (!make_content (&c))
    return;
  url = start_http_origin_url (&c, &origin);
  holder = agent_new (&c, "holder");
  seed_cache (&c, holder);
  lead = agent_new (&c, "lead");
  {
    /* 2 MiB/s: the package takes six seconds from the origin. */
    Src origin_only[] = { { CANOPY_SOURCE_ORIGIN, NULL, url } };
    Src both[] = { { CANOPY_SOURCE_OFFICE_PEER, holder, NULL },
                   { CANOPY_SOURCE_ORIGIN, NULL, url } };

    alone = assignment (&c, CANOPY_ROLE_LEAD, origin_only, 1, lead->destination,
                        2ull * CHUNK * 8);
    with_peer = assignment (&c, CANOPY_ROLE_LEAD, both, 2, lead->destination, 2ull * CHUNK * 8);
  }
  agent_fetch_body (lead, &c, alone);
  CU_ASSERT_FATAL (iterate_until_rate (lead, got_chunks, &two));

  told_at = canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_ORIGIN);
  CU_ASSERT_FATAL (canopy_fetch_update (lead->fetch, with_peer, &error));
  {
    TestAgent *all[] = { lead };
    CU_ASSERT_FATAL (run_until_done (all, 1));
  }
  assert_installed (&c, lead);
  /* What was on its way when the peer's news came (a receive window, a
   * chunk being read, one being stored), and nothing after. */
  CU_ASSERT (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_ORIGIN) <= told_at + 3 * CHUNK);
  CU_ASSERT (canopy_fetch_get_bytes (lead->fetch, CANOPY_SOURCE_OFFICE_PEER)
             >= CONTENT_SIZE - told_at - 3 * CHUNK);
  stop_http_origin (lead, origin);
  content_clear (&c);
}

/* A manifest not signed by the server's key is refused before anything is fetched. */
static void
test_unsigned_refused (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) public_key = NULL;
  g_autoptr (CanopySigningKey) other = NULL;
  g_autoptr (CanopyVerifyKey) wrong = NULL;
  g_autofree char *path = NULL;
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };

  if (!make_content (&c))
    return;
  a = agent_new (&c, "strict");
  path = g_build_filename (c.dir, "other.pem", NULL);
  g_assert (canopy_signing_key_generate_file (path, &error));
  other = canopy_signing_key_load (path, &error);
  public_key = canopy_signing_key_get_public (other);
  wrong = canopy_verify_key_new (public_key, &error);
  {
    g_autoptr (GVariant) body = assignment (&c, CANOPY_ROLE_DIRECT, src, 1, a->destination, 0);
    CanopyFetch *fetch = canopy_fetch_new (a->cache, NULL, wrong, body, on_report, a, &error);

    CU_ASSERT_PTR_NULL (fetch);
    CU_ASSERT (g_error_matches (error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_ASSIGNMENT));
  }
  content_clear (&c);
}

static void
count_report (CanopyFetch *fetch, guint kind, GVariant *body, gpointer user_data)
{
  g_autoptr (GVariant) sunk = g_variant_ref_sink (body);

  (*(guint *) user_data)++;
}

/* What an agent stopped at any moment leaves behind: only chunks that
 * verify, no temporary files. */
static void
assert_cache_sound (Content *c, const char *cache_dir)
{
  g_autofree char *path = g_build_filename (cache_dir, c->manifest->content_id, NULL);
  g_autofree char *data_path = g_build_filename (path, "data", NULL);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  g_autoptr (CanopyCache) cache = NULL;
  g_autofree char *data = NULL;
  gsize length = 0;
  CanopyCacheEntry *entry;
  const char *name;
  guint written = 0;

  if (dir == NULL)
    return; /* stopped before the entry was created */
  while ((name = g_dir_read_name (dir)) != NULL)
    CU_ASSERT (strstr (name, ".tmp") == NULL);
  /* Random content: a chunk never written is all zeros. */
  if (g_file_get_contents (data_path, &data, &length, NULL))
    for (guint i = 0; i < canopy_manifest_get_n_chunks (c->manifest); i++)
      {
        gsize start = (gsize) i * c->manifest->chunk_size;
        gsize end = MIN (length, start + canopy_manifest_get_chunk_length (c->manifest, i));

        for (gsize j = start; j < end; j++)
          if (data[j] != 0)
            {
              written++;
              break;
            }
      }
  cache = canopy_cache_open (cache_dir, 0, NULL);
  entry = canopy_cache_open_entry (cache, c->manifest, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
  /* Reopening discards any chunk that does not verify. */
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), written);
}

/* The agent stops (SIGTERM) while workers are opening the entry, storing
 * chunks or assembling the package: the fetch and the cache are freed at
 * once, each time a little later, and the workers must finish on memory
 * that is still theirs (ASan reports any use after free). */
static void
test_stop_mid_fetch (void)
{
  Content c = { 0 };
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  g_autoptr (GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);
  const guint rounds = 16;
  guint reports = 0;

  if (!make_content (&c))
    return;
  for (guint round = 0; round <= rounds; round++)
    {
      g_autofree char *name = g_strdup_printf ("stop-%u", round);
      char *cache_dir = g_build_filename (c.dir, name, "cache", NULL);
      g_autofree char *dest = g_build_filename (c.dir, name, "app.bin", NULL);
      g_autoptr (GVariant) body = assignment (&c, CANOPY_ROLE_DIRECT, src, 1, dest, 0);
      g_autoptr (GError) error = NULL;
      CanopyCache *cache = canopy_cache_open (cache_dir, 0, &error);
      CanopyFetch *fetch;

      CANOPY_ASSERT_NO_ERROR (error);
      g_ptr_array_add (dirs, cache_dir);
      fetch = canopy_fetch_new (cache, NULL, c.key, body, count_report, &reports, &error);
      CANOPY_ASSERT_NO_ERROR (error);
      allow_test_dir (fetch, &c);
      canopy_fetch_start (fetch);
      if (round == rounds)
        {
          /* The last round stops once every chunk is stored: assembling. */
          gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;
          while (canopy_cache_get_size (cache) < CONTENT_SIZE
                 && g_get_monotonic_time () < deadline)
            g_main_context_iteration (NULL, TRUE);
          g_main_context_iteration (NULL, FALSE);
        }
      else
        for (guint i = 0; i < round; i++)
          {
            g_main_context_iteration (NULL, FALSE);
            g_usleep (1500);
          }
      canopy_fetch_free (fetch);
      canopy_cache_free (cache);
    }
  /* The workers finish on their own references. */
  iterate_for (1500);
  for (guint i = 0; i < dirs->len; i++)
    assert_cache_sound (&c, dirs->pdata[i]);
  content_clear (&c);
}

/* A full disk pauses the fetch: the admin and the server hear it once,
 * verified chunks stay, nothing spins, and once space is freed the fetch
 * goes on by itself. A small tmpfs is mounted by the test (as root). */
static void
test_disk_full (void)
{
  Content c = { 0 };
  g_autoptr (TestAgent) a = NULL;
  g_autofree char *dir = NULL;
  Src src[] = { { CANOPY_SOURCE_ORIGIN, NULL } };
  TestAgent *all[1];
  gint64 deadline;

  if (!make_content (&c))
    return;
  dir = g_build_filename (c.dir, "full", NULL);
  g_assert (g_mkdir_with_parents (dir, 0700) == 0);
  if (mount ("tmpfs", dir, "tmpfs", 0, "size=4m") != 0)
    {
      canopy_test_skip ("cannot mount a small tmpfs here (%s); full-disk fetch not run",
              g_strerror (errno));
      content_clear (&c);
      return;
    }
  a = agent_new (&c, "full");
  all[0] = a;
  agent_fetch (a, &c, CANOPY_ROLE_DIRECT, src, G_N_ELEMENTS (src));
  CU_ASSERT_FATAL (run_until_done (all, 1));
  CU_ASSERT (a->failed);
  CU_ASSERT_FALSE (a->done);
  CU_ASSERT_PTR_NOT_NULL_FATAL (a->failure);
  CANOPY_ASSERT_CONTAINS (a->failure, "is full");
  CANOPY_ASSERT_CONTAINS (a->failure, "Free space on that disk");
  /* Paused, not given up: the agent keeps the fetch and what it verified. */
  CU_ASSERT_FALSE (canopy_fetch_is_finished (a->fetch));
  {
    CanopyCacheEntry *entry = canopy_cache_lookup_entry (a->cache, c.manifest->content_id);

    CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
    CU_ASSERT (canopy_cache_entry_count_chunks (entry) > 0);
  }
  /* A retry that still finds the disk full says nothing new. */
  iterate_for (2500);
  CU_ASSERT_EQUAL (a->n_failed, 1);
  CU_ASSERT_FALSE (a->done);

  /* The admin frees space: the fetch finishes without a new assignment. */
  CU_ASSERT_FATAL (mount ("tmpfs", dir, NULL, MS_REMOUNT, "size=64m") == 0);
  a->failed = FALSE;
  deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;
  while (!a->done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  assert_installed (&c, a);
  CU_ASSERT_EQUAL (a->n_failed, 1);
  g_clear_pointer (&a, agent_free);
  umount2 (dir, MNT_DETACH);
  content_clear (&c);
}

/* Sizes as admins write them, and the peer listener derived from the
 * transport element with the admin's other settings kept. */
static void
test_agent_config (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("agent-config");
  g_autofree char *path = g_build_filename (dir, "agent.xml", NULL);
  g_autoptr (CanopyAgentConfig) config = NULL;
  g_autoptr (CanopyAgentConfig) defaults = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) listen = NULL;
  guint64 size = 0;

  CU_ASSERT (canopy_config_parse_size ("1048576", &size) && size == 1048576);
  CU_ASSERT (canopy_config_parse_size ("10GiB", &size) && size == 10ull << 30);
  CU_ASSERT (canopy_config_parse_size ("500MB", &size) && size == 500000000);
  CU_ASSERT (canopy_config_parse_size ("1.5 G", &size) && size == 3ull << 29);
  CU_ASSERT_FALSE (canopy_config_parse_size ("lots", &size));
  CU_ASSERT_FALSE (canopy_config_parse_size ("10 parsecs", &size));

  g_assert (g_file_set_contents (path,
                                 "<agent><server host='h'/><server host='g' port='8443'/>"
                                 "<state-directory>/s</state-directory><cache quota='2GB'/><peers address='::' port='0' "
                                 "upload-slots='9'/><transport plugin='tcp'>"
                                 "<listen address='127.0.0.1' port='5'/><connect timeout-ms='77'/>"
                                 "</transport><destinations><directory path='/srv/a'/>"
                                 "<directory path='/srv/b'/></destinations></agent>", -1, NULL));
  config = canopy_agent_config_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (config->cache_directory, "/s/cache");
  CU_ASSERT_EQUAL_FATAL (config->servers->len, 2);
  CU_ASSERT_EQUAL (((CanopyServerAddress *) config->servers->pdata[0])->port, CANOPY_DEFAULT_PORT);
  CU_ASSERT_STRING_EQUAL (((CanopyServerAddress *) config->servers->pdata[1])->host, "g");
  CU_ASSERT_EQUAL (((CanopyServerAddress *) config->servers->pdata[1])->port, 8443);
  CU_ASSERT_EQUAL (config->cache_quota, 2000000000);
  CU_ASSERT_EQUAL (config->upload_slots, 9);
  CU_ASSERT_EQUAL (config->peer_port, 0);
  CU_ASSERT_EQUAL_FATAL (g_strv_length (config->destinations), 2);
  CU_ASSERT_STRING_EQUAL (config->destinations[0], "/srv/a");
  CU_ASSERT_STRING_EQUAL (config->destinations[1], "/srv/b");
  listen = canopy_config_node_get_children (config->peer_transport, "listen");
  CU_ASSERT_EQUAL_FATAL (listen->len, 1);
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_attribute (listen->pdata[0], "address"), "::");
  CU_ASSERT_STRING_EQUAL (canopy_config_node_get_attribute (
                            canopy_config_node_get_child (config->peer_transport, "connect"),
                            "timeout-ms"), "77");

  g_assert (g_file_set_contents (path, "<agent><server host='h'/><transport plugin='tcp'/></agent>",
                                 -1, NULL));
  defaults = canopy_agent_config_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (defaults->cache_quota, CANOPY_DEFAULT_CACHE_QUOTA);
  CU_ASSERT_EQUAL (defaults->peer_port, CANOPY_DEFAULT_PEER_PORT);
  CU_ASSERT_EQUAL (defaults->upload_slots, CANOPY_DEFAULT_UPLOAD_SLOTS);
  CU_ASSERT (g_str_has_suffix (defaults->cache_directory, "/cache"));
  /* Left out: the packaged default; empty: nowhere. */
  CU_ASSERT_EQUAL_FATAL (g_strv_length (defaults->destinations), 2);
  CU_ASSERT_STRING_EQUAL (defaults->destinations[0], "/opt");
  CU_ASSERT (g_str_has_suffix (defaults->destinations[1], "/lib/canopy/packages"));
  g_clear_pointer (&defaults, canopy_agent_config_free);
  g_assert (g_file_set_contents (path, "<agent><server host='h'/><destinations/>"
                                 "<transport plugin='tcp'/></agent>", -1, NULL));
  defaults = canopy_agent_config_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (g_strv_length (defaults->destinations), 0);
}

CANOPY_TEST_SUITE (fetch, "fetch", NULL, NULL,
                   { "office lead crosses the WAN once", test_office_shares },
                   { "bad peer dropped, good peer serves after restart", test_bad_peer_dropped },
                   { "damaged chunk not served, fetched elsewhere",
                     test_damaged_chunk_not_served },
                   { "chunks just fetched served from memory",
                     test_recent_chunks_served_from_memory },
                   { "chunks by hash from an office peer's earlier version",
                     test_chunks_by_hash_from_earlier_version },
                   { "office peer connected before the lead started",
                     test_peer_connected_before_lead },
                   { "unreadable chunk not served, fetched elsewhere",
                     test_unreadable_chunk_not_served },
                   { "disk stall blocks no loop; peer or agent gone mid-read",
                     test_read_in_flight },
                   { "chunk dropped while fetching is fetched again",
                     test_dropped_chunk_fetched_again },
                   { "resume fetches no verified chunk again", test_resume },
                   { "damaged cache data fetched again", test_damaged_cache_refetched },
                   { "destination outside <destinations> refused", test_destination_refused },
                   { "WAN rate and role wait", test_rate_and_wait },
                   { "demoted lead stops its origin request", test_demoted_lead_stops },
                   { "origin request cut where an office peer holds the rest",
                     test_origin_run_cut_by_peer },
                   { "background lead throttled when the delay rises",
                     test_background_throttled },
                   { "manifest with a wrong signature refused", test_unsigned_refused },
                   { "stopped at any moment while storing", test_stop_mid_fetch },
                   { "full disk pauses and resumes", test_disk_full },
                   { "agent configuration", test_agent_config })
