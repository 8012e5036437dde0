/* The delta benchmark's measuring tool (tests/bench/delta-bench.sh runs
 * it): the chunker's throughput against SHA-256 alone on the same bytes,
 * and the bytes canopy moves for version 2 of a package when an office
 * holds version 1: its chunks version 1 lacks, plus its manifest. */
#include "build-config.h"

#include "lib/chunker.h"
#include "lib/manifest.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (double *v, guint n)
{
  qsort (v, n, sizeof *v, compare_doubles);
  return v[n / 2];
}

static guint64
chunk_all (const CanopyChunker *chunker, const guint8 *data, gsize size)
{
  guint64 n = 0;

  for (gsize at = 0; at < size; n++)
    at += canopy_chunker_next (chunker, data + at, size - at);
  return n;
}

/* What one core does per second: the chunker alone, SHA-256 alone, and
 * both as a manifest is built (cuts, a SHA-256 per chunk and one of the
 * whole package). */
static void
throughput (const guint8 *data, gsize size)
{
  CanopyChunker chunker;
  double cdc[RUNS], sha[RUNS], both[RUNS];
  guint8 digest[32];
  guint64 sink = 0;

  canopy_chunker_init_default (&chunker);
  for (guint r = 0; r < RUNS; r++)
    {
      gint64 t0 = g_get_monotonic_time (), t1, t2, t3;
      gnutls_hash_hd_t whole;

      sink += chunk_all (&chunker, data, size);
      t1 = g_get_monotonic_time ();
      gnutls_hash_fast (GNUTLS_DIG_SHA256, data, size, digest);
      sink += digest[0];
      t2 = g_get_monotonic_time ();
      gnutls_hash_init (&whole, GNUTLS_DIG_SHA256);
      for (gsize at = 0; at < size;)
        {
          gsize cut = canopy_chunker_next (&chunker, data + at, size - at);

          gnutls_hash_fast (GNUTLS_DIG_SHA256, data + at, cut, digest);
          gnutls_hash (whole, data + at, cut);
          at += cut;
        }
      gnutls_hash_deinit (whole, digest);
      t3 = g_get_monotonic_time ();
      cdc[r] = (double) size / (double) (t1 - t0);
      sha[r] = (double) size / (double) (t2 - t1);
      both[r] = (double) size / (double) (t3 - t2);
    }
  printf ("throughput: chunker %.0f MB/s, SHA-256 alone %.0f MB/s, manifest build "
          "(chunker + SHA-256 per chunk + package SHA-256) %.0f MB/s; medians of %u runs over "
          "%.0f MB (%" G_GUINT64_FORMAT ")\n",
          median (cdc, RUNS), median (sha, RUNS), median (both, RUNS), RUNS, size / 1e6,
          sink % 2);
}

/* The bytes of @v2's chunks (cut by @chunker, or fixed @fixed bytes when
 * @chunker is NULL) that @v1 lacks; *n_chunks is v2's chunk count. */
static guint64
changed_bytes (const CanopyChunker *chunker, gsize fixed, const guint8 *v1, gsize size1,
               const guint8 *v2, gsize size2, guint64 *n_chunks)
{
  g_autoptr (GHashTable) old = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                      (GDestroyNotify) g_bytes_unref, NULL);
  guint8 digest[32];
  guint64 bytes = 0;

  for (gsize at = 0; at < size1;)
    {
      gsize cut = chunker != NULL ? canopy_chunker_next (chunker, v1 + at, size1 - at)
                                  : MIN (fixed, size1 - at);

      gnutls_hash_fast (GNUTLS_DIG_SHA256, v1 + at, cut, digest);
      g_hash_table_add (old, g_bytes_new (digest, sizeof digest));
      at += cut;
    }
  *n_chunks = 0;
  for (gsize at = 0; at < size2; (*n_chunks)++)
    {
      gsize cut = chunker != NULL ? canopy_chunker_next (chunker, v2 + at, size2 - at)
                                  : MIN (fixed, size2 - at);
      g_autoptr (GBytes) key = NULL;

      gnutls_hash_fast (GNUTLS_DIG_SHA256, v2 + at, cut, digest);
      key = g_bytes_new (digest, sizeof digest);
      if (!g_hash_table_contains (old, key))
        bytes += cut;
      at += cut;
    }
  return bytes;
}

/* canopy's WAN bytes for version 2: the chunks version 1 lacks and the
 * format 2 manifest (36 bytes a chunk and a few hundred more). */
static void
delta (const guint8 *v1, gsize size1, const guint8 *v2, gsize size2)
{
  CanopyChunker chunker;
  guint64 n, fixed_n, bytes, fixed;

  canopy_chunker_init_default (&chunker);
  bytes = changed_bytes (&chunker, 0, v1, size1, v2, size2, &n);
  fixed = changed_bytes (NULL, CANOPY_MANIFEST_DEFAULT_CHUNK_SIZE, v1, size1, v2, size2,
                         &fixed_n);
  printf ("canopy %" G_GUINT64_FORMAT " chunks %" G_GUINT64_FORMAT " manifest %" G_GUINT64_FORMAT
          " fixed1m %" G_GUINT64_FORMAT "\n",
          bytes, n, n * 36 + 300, fixed);
}

/* Changed bytes and manifest sizes for other average sizes (min = avg / 4,
 * max = avg × 4), to choose the defaults. */
static void
sizes (const guint8 *v1, gsize size1, const guint8 *v2, gsize size2)
{
  static const guint32 averages[] = { 64 * 1024, 128 * 1024, 256 * 1024, 512 * 1024,
                                      1024 * 1024, 2048 * 1024 };

  for (gsize i = 0; i < G_N_ELEMENTS (averages); i++)
    {
      CanopyChunker chunker;
      guint64 n, bytes;

      canopy_chunker_init (&chunker, averages[i] / 4, averages[i], averages[i] * 4);
      bytes = changed_bytes (&chunker, 0, v1, size1, v2, size2, &n);
      printf ("avg %u KiB: changed chunks %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
              " chunks, manifest %" G_GUINT64_FORMAT " bytes, WAN %" G_GUINT64_FORMAT "\n",
              averages[i] / 1024, bytes, n, n * 36 + 300, bytes + n * 36 + 300);
    }
}

static guint8 *
load (const char *path, gsize *size)
{
  char *data = NULL;
  g_autoptr (GError) error = NULL;

  if (!g_file_get_contents (path, &data, size, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      exit (1);
    }
  return (guint8 *) data;
}

int
main (int argc, char **argv)
{
  g_autofree guint8 *a = NULL, *b = NULL;
  gsize size_a, size_b;

  if (argc == 3 && g_str_equal (argv[1], "throughput"))
    {
      a = load (argv[2], &size_a);
      throughput (a, size_a);
      return 0;
    }
  if (argc == 4 && (g_str_equal (argv[1], "delta") || g_str_equal (argv[1], "sizes")))
    {
      a = load (argv[2], &size_a);
      b = load (argv[3], &size_b);
      if (g_str_equal (argv[1], "delta"))
        delta (a, size_a, b, size_b);
      else
        sizes (a, size_a, b, size_b);
      return 0;
    }
  fprintf (stderr, "usage: %s throughput FILE | delta V1 V2 | sizes V1 V2\n", argv[0]);
  return 2;
}
