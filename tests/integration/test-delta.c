/* Version deltas end to end, with real processes on loopback: version 1
 * of a package deployed to two offices of four agents, then version 2
 * (64 KiB inserted near the start, 2 % of its bytes changed in several
 * places). Each office takes across its WAN only the chunks version 1
 * lacks, every copy matches version 2 byte for byte, and an agent holding
 * version 1 builds version 2 from its cache and office peers alone. */
#include "build-config.h"

#include "tests/integration/site.h"
#include "lib/manifest.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS_PER_OFFICE CANOPY_TEST_SITE_AGENTS_PER_OFFICE
#define INSERTED (64 * 1024)
#define EDITS 8

static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* Version 2 of @v1: INSERTED new bytes near the start, and 2 % of the
 * bytes changed in EDITS places spread over the package. */
static guint8 *
make_version_2 (const guint8 *v1, gsize size, gsize *size_2)
{
  const gsize at = 200 * 1024;
  gsize edit = size / 50 / EDITS;
  guint8 *v2 = g_malloc (size + INSERTED);
  guint32 x = 77u;

  memcpy (v2, v1, at);
  for (gsize i = 0; i < INSERTED; i++)
    v2[at + i] = (guint8) (i * 31 + 7);
  memcpy (v2 + at + INSERTED, v1 + at, size - at);
  for (guint e = 1; e <= EDITS; e++)
    {
      gsize start = at + INSERTED + (size - at) / (EDITS + 1) * e;

      for (gsize i = 0; i < edit && start + i < size + INSERTED; i++)
        {
          x ^= x << 13, x ^= x >> 17, x ^= x << 5;
          v2[start + i] ^= (guint8) (x | 1);
        }
    }
  *size_2 = size + INSERTED;
  return v2;
}

/* The bytes of @m2's chunks that no chunk of @m1 has: what must cross
 * the WAN at least. */
static guint64
changed_chunk_bytes (const CanopyManifest *m1, const CanopyManifest *m2)
{
  g_autoptr (GHashTable) old = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                      (GDestroyNotify) g_bytes_unref, NULL);
  guint64 bytes = 0;

  for (guint i = 0; i < canopy_manifest_get_n_chunks (m1); i++)
    g_hash_table_add (old, g_bytes_new (canopy_manifest_get_chunk_hash (m1, i),
                                        CANOPY_MANIFEST_HASH_SIZE));
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m2); i++)
    {
      g_autoptr (GBytes) hash = g_bytes_new (canopy_manifest_get_chunk_hash (m2, i),
                                             CANOPY_MANIFEST_HASH_SIZE);

      if (!g_hash_table_contains (old, hash))
        bytes += canopy_manifest_get_chunk_length (m2, i);
    }
  return bytes;
}

static char *
register_version (CanopyTestSite *s, const char *version)
{
  g_autofree char *body = g_strdup_printf (
    "{\"name\": \"Package\", \"version\": \"%s\", \"location\": \"%s\"}", version,
    s->origin_url);
  g_autoptr (JsonNode) content = canopy_test_site_api (s, "POST", "/api/v1/content", body,
                                                       SOUP_STATUS_CREATED);

  return g_strdup (json_object_get_string_member (json_node_get_object (content), "id"));
}

static guint64
office_member (JsonObject *deployment, const char *office, const char *member)
{
  JsonObject *o = canopy_test_site_office_of (deployment, office);

  return o != NULL ? (guint64) json_object_get_int_member_with_default (o, member, 0) : 0;
}

/* Logs canopyctl in to @s's console; returns its connection profile. */
static char *
ctl_login (CanopyTestSite *s)
{
  char *profile = g_build_filename (s->dir, "ctl-profile", NULL);
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u", s->console_port);
  g_autofree char *certificate = g_build_filename (s->state, "console-cert.pem", NULL);
  g_autofree char *token_file = g_build_filename (s->dir, "admin-token", NULL);
  g_autofree char *out = NULL;

  g_assert (g_file_set_contents_full (token_file, s->token, -1, G_FILE_SET_CONTENTS_NONE, 0600,
                                      NULL));
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "login", "--server", url, "--certificate",
                                    certificate, "--token-file", token_file, NULL),
                   0);
  return profile;
}

/* The bytes taken from earlier versions, as /metrics and canopyctl show
 * them to the admin. */
static void
assert_reuse_shown (CanopyTestSite *s)
{
  g_autofree char *metrics = canopy_test_site_get_text (s, "/metrics");
  const char *sample =
    "canopy_office_received_bytes{office=\"North\",source=\"earlier_versions\"} ";
  const char *at = metrics != NULL ? strstr (metrics, sample) : NULL;
  g_autofree char *profile = ctl_login (s);
  g_autofree char *out = NULL;

  CU_ASSERT_PTR_NOT_NULL (at);
  if (at != NULL)
    CU_ASSERT (g_ascii_strtoull (at + strlen (sample), NULL, 10) > 0);
  CU_ASSERT_EQUAL (canopy_test_ctl (profile, &out, "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "EARLIER VERSIONS");
}

static void
stop_agent (CanopyTestSite *s, guint slot)
{
  canopy_test_process_signal (s->agents[slot], SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (s->agents[slot], 20), 0);
  g_clear_pointer (&s->agents[slot], canopy_test_process_free);
}

static void
test_version_2_changed_chunks_only (void)
{
  CanopyTestSite *s = &site;
  CanopyTestSiteOptions options = { 0 };
  const char *office_names[] = { "North", "South" };
  /* The last agent of North is away while version 2 goes out. */
  guint away = canopy_test_site_slot (1, AGENTS_PER_OFFICE - 1);
  g_autofree char *v1_id = NULL, *v2_id = NULL, *deployment_2 = NULL;
  g_autofree guint8 *v1 = NULL, *v2 = NULL;
  g_autoptr (CanopyManifest) m1 = NULL, m2 = NULL;
  g_autoptr (JsonNode) done_1 = NULL, done_2 = NULL, done_all = NULL;
  g_autoptr (GError) error = NULL;
  gsize size_1, size_2;
  guint64 changed, served, north_wan, north_reused;
  gboolean precise = !canopy_test_instrumented ();

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  v1_id = canopy_test_site_deploy (s);
  done_1 = canopy_test_site_wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done_1);
  canopy_test_site_assert_copy (s);
  stop_agent (s, away);

  /* The leads asked the origin for runs of adjacent chunks in one range
   * request each, not chunk by chunk (plus the server's one read). */
  canopy_test_site_stop_origin (s);
  {
    g_autoptr (CanopyManifest) m = canopy_test_site_manifest_of (s->package);
    guint per_chunk = OFFICES * canopy_manifest_get_n_chunks (m) + 1;

    printf ("[version 1: %" G_GUINT64_FORMAT " origin requests for %u chunks] ",
            s->origin_requests, per_chunk);
    CU_ASSERT (s->origin_requests >= 1 + OFFICES);
    CU_ASSERT (!precise || s->origin_requests * 2 < per_chunk);
  }

  /* Version 2 at the same origin. */
  CU_ASSERT_FATAL (g_file_get_contents (s->package, (char **) &v1, &size_1, &error));
  v2 = make_version_2 (v1, size_1, &size_2);
  CU_ASSERT_FATAL (g_file_set_contents (s->package, (const char *) v2, (gssize) size_2, &error));
  s->content_size = size_2;
  canopy_test_site_restart_origin (s);
  m2 = canopy_test_site_manifest_of (s->package);
  {
    g_autofree char *v1_path = g_build_filename (s->dir, "version-1.bin", NULL);

    CU_ASSERT_FATAL (g_file_set_contents (v1_path, (const char *) v1, (gssize) size_1, &error));
    m1 = canopy_test_site_manifest_of (v1_path);
  }
  changed = changed_chunk_bytes (m1, m2);
  printf ("[changed chunks %.1f%% of version 2] ", 100.0 * (double) changed / (double) size_2);
  /* Under valgrind the package is 4 MiB: its few chunks nearly all change. */
  CU_ASSERT (changed >= INSERTED && changed < size_2);
  CU_ASSERT (!precise || changed < size_2 / 2);

  v2_id = register_version (s, "2.0");
  deployment_2 = canopy_test_site_create_deployment (s, v2_id, NULL);
  done_2 = canopy_test_site_wait_deployment_done (s, deployment_2,
                                                  OFFICES * AGENTS_PER_OFFICE - 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done_2);
  for (guint o = 0; o < OFFICES; o++)
    {
      JsonObject *d = json_node_get_object (done_2);
      guint64 wan = office_member (d, office_names[o], "wan_bytes");
      guint64 reused = office_member (d, office_names[o], "bytes_earlier_versions");

      printf ("[%s: WAN %.3f × changed chunks, %.1f MiB from earlier versions] ",
              office_names[o], (double) wan / (double) changed, reused / 1048576.0);
      CU_ASSERT (wan >= changed);
      CU_ASSERT (!precise || wan <= (guint64) (1.1 * (double) changed));
      CU_ASSERT (reused > 0);
    }
  /* The origin served the server's read of version 2 and each office's
   * changed chunks, in range requests. */
  served = canopy_test_site_stop_origin (s);
  printf ("[origin served version 2 + %.3f × changed chunks] ",
          (double) (served - size_2) / (double) changed);
  CU_ASSERT (!precise || served <= size_2 + (guint64) (OFFICES * 1.1 * (double) changed));

  /* The agent away holds version 1; its office peers hold version 2, and
   * the origin is gone: it builds version 2 from its cache and its peers,
   * and North's WAN count does not move. */
  north_wan = office_member (json_node_get_object (done_2), "North", "wan_bytes");
  north_reused = office_member (json_node_get_object (done_2), "North",
                                "bytes_earlier_versions");
  s->agents[away] = canopy_test_site_agent_start (s, 1, AGENTS_PER_OFFICE - 1);
  done_all = canopy_test_site_wait_deployment_done (s, deployment_2,
                                                    OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done_all);
  CU_ASSERT_EQUAL (office_member (json_node_get_object (done_all), "North", "wan_bytes"),
                   north_wan);
  CU_ASSERT (office_member (json_node_get_object (done_all), "North", "bytes_earlier_versions")
             >= north_reused + (size_2 - changed) / 2);
  CU_ASSERT (canopy_test_process_wait_output (s->agents[away], "from other content in the cache",
                                              10));
  assert_reuse_shown (s);
  canopy_test_site_assert_copy (s);
  canopy_test_site_stop (s, TRUE);
}

/* Compares the copy installed in @slot with @original, byte for byte. */
static void
assert_copy_of (CanopyTestSite *s, guint slot, const char *original)
{
  g_autofree char *copy = canopy_test_site_copy_path (s, slot);

  if (!canopy_test_site_same_file (copy, original))
    fprintf (stderr, "\n    the copy of agent slot %u, %s, differs from %s\n", slot, copy,
             original);
  CU_ASSERT (canopy_test_site_same_file (copy, original));
}

/* What North's agents and the server printed, to tell which source the
 * excess WAN bytes came from. */
static void
print_north_outputs (CanopyTestSite *s)
{
  fprintf (stderr, "\n    --- server ---\n%s", canopy_test_process_output (s->server));
  for (guint i = 0; i < AGENTS_PER_OFFICE; i++)
    fprintf (stderr, "\n    --- North agent %u ---\n%s", i,
             canopy_test_process_output (s->agents[canopy_test_site_slot (1, i)]));
}

/* Version 1 went to two agents of North only (group Early); version 2
 * goes to the other two (group Late), which never held version 1 and
 * whose office peers holding it are not assigned version 2. They take
 * every unchanged chunk from those peers by its SHA-256, and North's WAN
 * carries only the chunks version 1 lacks. */
static void
test_version_2_from_peers_holding_version_1 (void)
{
  CanopyTestSite *s = &site;
  CanopyTestSiteOptions options = { 0 };
  const char *const early[] = { "Early", NULL };
  const char *const late[] = { "Late", NULL };
  g_autofree char *v1_id = NULL, *v2_id = NULL, *deployment_1 = NULL, *deployment_2 = NULL;
  g_autofree char *v1_path = NULL;
  g_autofree guint8 *v1 = NULL, *v2 = NULL;
  g_autoptr (CanopyManifest) m1 = NULL, m2 = NULL;
  g_autoptr (JsonNode) done_1 = NULL, done_2 = NULL;
  g_autoptr (GError) error = NULL;
  gsize size_1, size_2;
  guint64 changed, wan, reused, peers, served;
  gboolean precise = !canopy_test_instrumented ();
  JsonObject *d;

  if (!canopy_test_site_available ())
    return;
  for (guint i = 0; i < AGENTS_PER_OFFICE; i++)
    options.agent_groups[canopy_test_site_slot (1, i)] = i < 2 ? "Early" : "Late";
  options.server_xml = "<assigned-group>Early</assigned-group>"
                       "<assigned-group>Late</assigned-group>";
  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  v1_id = canopy_test_site_register (s);
  deployment_1 = canopy_test_site_create_deployment (s, v1_id, early);
  done_1 = canopy_test_site_wait_deployment_done (s, deployment_1, 2, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done_1);
  canopy_test_site_stop_origin (s);

  CU_ASSERT_FATAL (g_file_get_contents (s->package, (char **) &v1, &size_1, &error));
  v1_path = g_build_filename (s->dir, "version-1.bin", NULL);
  CU_ASSERT_FATAL (g_file_set_contents (v1_path, (const char *) v1, (gssize) size_1, &error));
  v2 = make_version_2 (v1, size_1, &size_2);
  CU_ASSERT_FATAL (g_file_set_contents (s->package, (const char *) v2, (gssize) size_2, &error));
  s->content_size = size_2;
  canopy_test_site_restart_origin (s);
  m1 = canopy_test_site_manifest_of (v1_path);
  m2 = canopy_test_site_manifest_of (s->package);
  changed = changed_chunk_bytes (m1, m2);
  CU_ASSERT (changed >= INSERTED && changed < size_2);

  v2_id = register_version (s, "2.0");
  deployment_2 = canopy_test_site_create_deployment (s, v2_id, late);
  done_2 = canopy_test_site_wait_deployment_done (s, deployment_2, 2, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done_2);
  d = json_node_get_object (done_2);
  wan = office_member (d, "North", "wan_bytes");
  reused = office_member (d, "North", "bytes_earlier_versions");
  peers = office_member (d, "North", "bytes_office_peer");
  printf ("[North, held version 1 on 2 of 4 agents: WAN %" G_GUINT64_FORMAT " bytes = %.3f × "
          "changed chunks (%" G_GUINT64_FORMAT " bytes, %.1f%% of version 2); "
          "%.1f MiB from earlier versions, %.1f MiB from office peers] ",
          wan, (double) wan / (double) changed, changed,
          100.0 * (double) changed / (double) size_2, reused / 1048576.0, peers / 1048576.0);
  CU_ASSERT (wan >= changed);
  CU_ASSERT (!precise || wan <= (guint64) (1.1 * (double) changed));
  if (precise && wan > (guint64) (1.1 * (double) changed))
    print_north_outputs (s);
  /* Each unchanged chunk came first, to one of the two, from a peer
   * holding version 1: nothing else held it in the office. */
  CU_ASSERT (reused >= size_2 - changed);
  CU_ASSERT_EQUAL (office_member (d, "South", "wan_bytes"), 0);
  served = canopy_test_site_stop_origin (s);
  CU_ASSERT (!precise || served <= size_2 + (guint64) (1.1 * (double) changed));

  /* Each says in its log where its bytes came from, by name. */
  for (guint i = 2; i < AGENTS_PER_OFFICE; i++)
    {
      CanopyTestProcess *late_agent = s->agents[canopy_test_site_slot (1, i)];

      CU_ASSERT (canopy_test_process_wait_output (late_agent,
                                                  "earlier versions held in this office", 10));
      CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (late_agent), "(null)"));
    }

  /* Version 2 where it was deployed, version 1 left alone where it was. */
  for (guint i = 0; i < AGENTS_PER_OFFICE; i++)
    if (i >= 2 || getuid () == 0)
      assert_copy_of (s, canopy_test_site_slot (1, i), i < 2 ? v1_path : s->package);
  canopy_test_site_stop (s, TRUE);
}

CANOPY_TEST_SUITE (delta, "delta", NULL, suite_cleanup,
                   { "version 2 crosses the WAN as its changed chunks",
                     test_version_2_changed_chunks_only },
                   { "office peers holding version 1 serve its chunks by hash",
                     test_version_2_from_peers_holding_version_1 })
