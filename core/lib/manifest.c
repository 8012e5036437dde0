/* Content manifests. The signed bytes are exactly the bytes sent, so a
 * manifest is verified before any field of it is read. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-manifest"

#include "lib/manifest.h"
#include "lib/chunker.h"
#include "lib/i18n.h"

#include <gnutls/crypto.h>
#include <string.h>

/* Format 1: content ID, name, version, chunk size, size, package SHA-256,
 * chunk hashes */
#define BODY_TYPE "(sssutayay)"
/* Format 2: the same with chunk size 0, then each chunk's length; its
 * offset is the sum of the lengths before it (8 bytes a chunk fewer, so a
 * bigger package fits the wire's body limit). Agents that know only
 * format 1 reject it as damaged: the server does not send it to them. */
#define BODY_TYPE_2 "(sssutayayau)"
/* signed body, signature */
#define ENVELOPE_TYPE "(ayay)"
#define MAX_CHUNK_SIZE (64u * 1024 * 1024)
#define READ_BLOCK (256 * 1024)

G_DEFINE_QUARK (canopy-manifest-error-quark, canopy_manifest_error)

void
canopy_manifest_free (CanopyManifest *manifest)
{
  if (manifest == NULL)
    return;
  g_free (manifest->content_id);
  g_free (manifest->name);
  g_free (manifest->version);
  g_clear_pointer (&manifest->chunk_hashes, g_bytes_unref);
  g_free (manifest->chunk_offsets);
  g_clear_pointer (&manifest->signature, g_bytes_unref);
  g_free (manifest);
}

CanopyManifestFormat
canopy_manifest_get_format (const CanopyManifest *manifest)
{
  return manifest->chunk_offsets != NULL ? CANOPY_MANIFEST_FORMAT_CONTENT_DEFINED
                                         : CANOPY_MANIFEST_FORMAT_FIXED;
}

CanopyManifest *
canopy_manifest_copy (const CanopyManifest *m)
{
  CanopyManifest *copy = g_new0 (CanopyManifest, 1);

  copy->content_id = g_strdup (m->content_id);
  copy->name = g_strdup (m->name);
  copy->version = g_strdup (m->version);
  copy->size = m->size;
  copy->chunk_size = m->chunk_size;
  copy->chunk_hashes = g_bytes_ref (m->chunk_hashes);
  if (m->chunk_offsets != NULL)
    copy->chunk_offsets = g_memdup2 (m->chunk_offsets,
                                     (canopy_manifest_get_n_chunks (m) + 1) * sizeof (guint64));
  memcpy (copy->sha256, m->sha256, sizeof copy->sha256);
  if (m->signature != NULL)
    copy->signature = g_bytes_ref (m->signature);
  return copy;
}

guint
canopy_manifest_get_n_chunks (const CanopyManifest *manifest)
{
  if (manifest->chunk_offsets != NULL)
    return (guint) (g_bytes_get_size (manifest->chunk_hashes) / CANOPY_MANIFEST_HASH_SIZE);
  /* Not (size + chunk_size - 1) / chunk_size, which overflows near G_MAXUINT64. */
  return (guint) (manifest->size / manifest->chunk_size
                  + (manifest->size % manifest->chunk_size != 0));
}

guint32
canopy_manifest_get_chunk_length (const CanopyManifest *manifest, guint index)
{
  guint64 start;

  if (manifest->chunk_offsets != NULL)
    {
      if (index >= canopy_manifest_get_n_chunks (manifest))
        return 0;
      return (guint32) (manifest->chunk_offsets[index + 1] - manifest->chunk_offsets[index]);
    }
  start = (guint64) index * manifest->chunk_size;
  if (start >= manifest->size)
    return 0;
  return (guint32) MIN ((guint64) manifest->chunk_size, manifest->size - start);
}

guint64
canopy_manifest_get_chunk_offset (const CanopyManifest *manifest, guint index)
{
  if (manifest->chunk_offsets != NULL)
    return manifest->chunk_offsets[MIN (index, canopy_manifest_get_n_chunks (manifest))];
  return MIN ((guint64) index * manifest->chunk_size, manifest->size);
}

const guint8 *
canopy_manifest_get_chunk_hash (const CanopyManifest *manifest, guint index)
{
  g_return_val_if_fail (index < canopy_manifest_get_n_chunks (manifest), NULL);
  return (const guint8 *) g_bytes_get_data (manifest->chunk_hashes, NULL)
         + (gsize) index * CANOPY_MANIFEST_HASH_SIZE;
}

CanopyManifest *
canopy_manifest_build (GInputStream *stream, const char *name, const char *version,
                       guint32 chunk_size, GCancellable *cancellable, GError **error)
{
  return canopy_manifest_build_full (stream, NULL, name, version, chunk_size, NULL, NULL,
                                     cancellable, error);
}

gint64
canopy_link_allowance (gint64 base_us, guint64 chunk_bytes, guint64 bits_per_second,
                       guint chunks)
{
  double chunk_us;

  if (bits_per_second == 0)
    return base_us;
  chunk_us = (double) chunk_bytes * 8.0 * G_USEC_PER_SEC / (double) bits_per_second;
  return MAX (base_us, (gint64) (chunk_us * chunks));
}

static gboolean hash_output (CanopyManifestHash *hash, guint8 *digest);

static gboolean
read_error (GError **error, const char *name, const GError *cause)
{
  g_set_error (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_READ,
               _("Cannot read the content of \"%s\" from its origin: %s"), name, cause->message);
  return FALSE;
}

/* Fixed-size chunks: each block read is hashed as it comes. */
static gboolean
build_fixed (CanopyManifest *manifest, GInputStream *stream, CanopyManifestHash *whole,
             GByteArray *hashes, CanopyManifestSinkFunc sink, gpointer sink_data,
             GCancellable *cancellable, GError **error)
{
  g_autofree guint8 *block = g_malloc (READ_BLOCK);
  g_autoptr (CanopyManifestHash) chunk = canopy_manifest_hash_new ();
  guint8 digest[CANOPY_MANIFEST_HASH_SIZE];
  guint32 chunk_size = manifest->chunk_size;
  guint32 in_chunk = 0;
  gboolean hashed = TRUE;
  g_autoptr (GError) local_error = NULL;

  for (;;)
    {
      gssize n = g_input_stream_read (stream, block, READ_BLOCK, cancellable, &local_error);
      gsize off = 0;

      if (n < 0)
        return read_error (error, manifest->name, local_error);
      if (n == 0)
        break;
      canopy_manifest_hash_update (whole, block, (gsize) n);
      if (sink != NULL)
        sink (block, (gsize) n, sink_data);
      manifest->size += (guint64) n;
      while (off < (gsize) n)
        {
          gsize take = MIN ((gsize) n - off, (gsize) (chunk_size - in_chunk));
          canopy_manifest_hash_update (chunk, block + off, take);
          off += take;
          in_chunk += (guint32) take;
          if (in_chunk == chunk_size)
            {
              hashed = hash_output (chunk, digest) && hashed;
              g_byte_array_append (hashes, digest, sizeof digest);
              in_chunk = 0;
            }
        }
    }
  if (in_chunk > 0)
    {
      hashed = hash_output (chunk, digest) && hashed;
      g_byte_array_append (hashes, digest, sizeof digest);
    }
  return hashed;
}

/* Content-defined chunks: the chunker needs up to max_size bytes ahead of
 * each cut, so reads fill a window of twice that, and what is left after
 * the cuts moves down once it passes the middle. */
static gboolean
build_content_defined (CanopyManifest *manifest, GInputStream *stream, CanopyManifestHash *whole,
                       GByteArray *hashes, GArray *offsets, CanopyManifestSinkFunc sink,
                       gpointer sink_data, GCancellable *cancellable, GError **error)
{
  CanopyChunker chunker;
  gsize capacity, start = 0, filled = 0;
  g_autofree guint8 *window = NULL;
  guint8 digest[CANOPY_MANIFEST_HASH_SIZE];
  gboolean at_end = FALSE, hashed = TRUE;
  guint32 longest = 0;
  guint64 offset = 0;
  g_autoptr (GError) local_error = NULL;

  canopy_chunker_init_default (&chunker);
  capacity = 2 * (gsize) chunker.max_size;
  window = g_malloc (capacity);
  g_array_append_val (offsets, offset);
  for (;;)
    {
      while (!at_end && filled - start < chunker.max_size)
        {
          gssize n;

          if (capacity - filled < READ_BLOCK)
            {
              memmove (window, window + start, filled - start);
              filled -= start;
              start = 0;
            }
          n = g_input_stream_read (stream, window + filled, MIN (READ_BLOCK, capacity - filled),
                                   cancellable, &local_error);
          if (n < 0)
            return read_error (error, manifest->name, local_error);
          if (n == 0)
            at_end = TRUE;
          canopy_manifest_hash_update (whole, window + filled, (gsize) n);
          if (sink != NULL && n > 0)
            sink (window + filled, (gsize) n, sink_data);
          filled += (gsize) n;
        }
      if (filled == start)
        break;
      {
        gsize cut = canopy_chunker_next (&chunker, window + start, filled - start);

        hashed = gnutls_hash_fast (GNUTLS_DIG_SHA256, window + start, cut, digest) == 0 && hashed;
        g_byte_array_append (hashes, digest, sizeof digest);
        start += cut;
        offset += cut;
        longest = MAX (longest, (guint32) cut);
        g_array_append_val (offsets, offset);
      }
    }
  manifest->size = offset;
  manifest->chunk_size = MAX (longest, 1u);
  return hashed;
}

CanopyManifest *
canopy_manifest_build_full (GInputStream *stream, const char *content_id, const char *name,
                            const char *version, guint32 chunk_size, CanopyManifestSinkFunc sink,
                            gpointer sink_data, GCancellable *cancellable, GError **error)
{
  g_autoptr (CanopyManifest) manifest = g_new0 (CanopyManifest, 1);
  g_autoptr (GByteArray) hashes = g_byte_array_new ();
  g_autoptr (GArray) offsets = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (CanopyManifestHash) whole = canopy_manifest_hash_new ();
  g_autoptr (GError) local_error = NULL;
  gboolean hashed;

  g_return_val_if_fail (chunk_size <= MAX_CHUNK_SIZE, NULL);

  manifest->content_id = content_id != NULL ? g_strdup (content_id) : g_uuid_string_random ();
  manifest->name = g_strdup (name);
  manifest->version = g_strdup (version);
  manifest->chunk_size = chunk_size;
  if (chunk_size != CANOPY_MANIFEST_CONTENT_DEFINED)
    hashed = build_fixed (manifest, stream, whole, hashes, sink, sink_data, cancellable,
                          &local_error);
  else
    {
      hashed = build_content_defined (manifest, stream, whole, hashes, offsets, sink, sink_data,
                                       cancellable, &local_error);
      manifest->chunk_offsets = (guint64 *) g_array_free (g_steal_pointer (&offsets), FALSE);
    }
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!hashed || !hash_output (whole, manifest->sha256))
    {
      g_set_error (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_READ,
                   _("Cannot compute the SHA-256 of \"%s\": GnuTLS refused; check that "
                     "the system's crypto policy allows SHA-256"),
                   name);
      return NULL;
    }
  manifest->chunk_hashes = g_byte_array_free_to_bytes (g_steal_pointer (&hashes));
  return g_steal_pointer (&manifest);
}

gboolean
canopy_manifest_verify_chunk (const CanopyManifest *manifest, guint index, const guint8 *data,
                              gsize length)
{
  guint8 digest[CANOPY_MANIFEST_HASH_SIZE];
  const guint8 *expected;

  if (index >= canopy_manifest_get_n_chunks (manifest)
      || length != canopy_manifest_get_chunk_length (manifest, index))
    return FALSE;
  if (gnutls_hash_fast (GNUTLS_DIG_SHA256, data, length, digest) < 0)
    return FALSE;
  expected = (const guint8 *) g_bytes_get_data (manifest->chunk_hashes, NULL)
             + (gsize) index * CANOPY_MANIFEST_HASH_SIZE;
  return gnutls_memcmp (digest, expected, sizeof digest) == 0;
}

/* Through GnuTLS, like the chunks: it uses the CPU's SHA instructions,
 * which makes hashing a package four times cheaper than GChecksum. A hash
 * GnuTLS cannot compute matches nothing. */
struct _CanopyManifestHash {
  gnutls_hash_hd_t handle;
  gboolean open;
};

CanopyManifestHash *
canopy_manifest_hash_new (void)
{
  CanopyManifestHash *hash = g_new0 (CanopyManifestHash, 1);

  hash->open = gnutls_hash_init (&hash->handle, GNUTLS_DIG_SHA256) == 0;
  return hash;
}

void
canopy_manifest_hash_update (CanopyManifestHash *hash, const guint8 *data, gsize length)
{
  if (hash->open && gnutls_hash (hash->handle, data, length) < 0)
    {
      gnutls_hash_deinit (hash->handle, NULL);
      hash->open = FALSE;
    }
}

/* Writes the digest of what was hashed so far and starts over. Returns
 * FALSE if any update failed. */
static gboolean
hash_output (CanopyManifestHash *hash, guint8 *digest)
{
  if (!hash->open)
    return FALSE;
  gnutls_hash_output (hash->handle, digest);
  return TRUE;
}

gboolean
canopy_manifest_hash_matches (CanopyManifestHash *hash, const CanopyManifest *manifest)
{
  guint8 digest[CANOPY_MANIFEST_HASH_SIZE];

  if (!hash_output (hash, digest))
    return FALSE;
  return gnutls_memcmp (digest, manifest->sha256, sizeof digest) == 0;
}

void
canopy_manifest_hash_free (CanopyManifestHash *hash)
{
  if (hash == NULL)
    return;
  if (hash->open)
    gnutls_hash_deinit (hash->handle, NULL);
  g_free (hash);
}

/* Serialized form. */

static GVariant *
body_variant (const CanopyManifest *manifest)
{
  if (manifest->chunk_offsets != NULL)
    {
      guint n = canopy_manifest_get_n_chunks (manifest);
      g_autofree guint32 *lengths = g_new (guint32, MAX (n, 1u));

      for (guint i = 0; i < n; i++)
        lengths[i] = canopy_manifest_get_chunk_length (manifest, i);
      return g_variant_new (
        "(sssut@ay@ay@au)", manifest->content_id, manifest->name, manifest->version, 0u,
        manifest->size,
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest->sha256,
                                   CANOPY_MANIFEST_HASH_SIZE, 1),
        g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, manifest->chunk_hashes, TRUE),
        g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, lengths, n, sizeof (guint32)));
    }
  return g_variant_new ("(sssut@ay@ay)", manifest->content_id, manifest->name, manifest->version,
                        manifest->chunk_size, manifest->size,
                        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest->sha256,
                                                   CANOPY_MANIFEST_HASH_SIZE, 1),
                        g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                  manifest->chunk_hashes, TRUE));
}

gboolean
canopy_manifest_sign (CanopyManifest *manifest, const CanopySigningKey *key, GError **error)
{
  g_autoptr (GVariant) body = g_variant_ref_sink (body_variant (manifest));
  GBytes *signature = canopy_signing_key_sign (key, g_variant_get_data (body),
                                               g_variant_get_size (body), error);

  if (signature == NULL)
    return FALSE;
  g_clear_pointer (&manifest->signature, g_bytes_unref);
  manifest->signature = signature;
  return TRUE;
}

GBytes *
canopy_manifest_serialize (const CanopyManifest *manifest)
{
  g_autoptr (GVariant) body = g_variant_ref_sink (body_variant (manifest));
  g_autoptr (GBytes) body_bytes = g_variant_get_data_as_bytes (body);
  g_autoptr (GVariant) envelope = NULL;
  static const guint8 unsigned_marker[1] = { 0 };
  g_autoptr (GBytes) none = g_bytes_new_static (unsigned_marker, 0);

  envelope = g_variant_ref_sink (
    g_variant_new ("(@ay@ay)",
                   g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, body_bytes, TRUE),
                   g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                             manifest->signature != NULL ? manifest->signature
                                                                         : none,
                                             TRUE)));
  return g_variant_get_data_as_bytes (envelope);
}

static gboolean
set_format_error (GError **error, const char *why)
{
  g_set_error (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_FORMAT,
               _("The content manifest is damaged (%s); ask the server for it again"), why);
  return FALSE;
}

static gboolean
check_consistent (const CanopyManifest *m, gsize sha_len, GError **error)
{
  guint64 n_chunks;

  if (m->chunk_size == 0 || m->chunk_size > MAX_CHUNK_SIZE)
    return set_format_error (error, _("impossible chunk size"));
  if (sha_len != CANOPY_MANIFEST_HASH_SIZE)
    return set_format_error (error, _("wrong package hash length"));
  /* In 64 bits: a size whose chunk count does not fit a guint must not
   * match a short list of hashes after truncation. */
  n_chunks = m->size / m->chunk_size + (m->size % m->chunk_size != 0);
  if (n_chunks > G_MAXUINT
      || g_bytes_get_size (m->chunk_hashes) != n_chunks * CANOPY_MANIFEST_HASH_SIZE)
    return set_format_error (error, _("chunk hashes do not match the size"));
  return TRUE;
}

/* A format 2 body has chunk size 0, which format 1 never has. */
static gboolean
is_content_defined (GVariant *body)
{
  guint32 chunk_size;

  g_variant_get_child (body, 3, "u", &chunk_size);
  return chunk_size == CANOPY_MANIFEST_CONTENT_DEFINED;
}

/* Format 2: as many lengths as hashes, none empty or beyond the limit,
 * adding up to the size. */
static gboolean
take_lengths (CanopyManifest *m, GVariant *lengths, gsize sha_len, GError **error)
{
  gsize n;
  const guint32 *length = g_variant_get_fixed_array (lengths, &n, sizeof (guint32));
  guint64 offset = 0;
  guint32 longest = 1;

  if (sha_len != CANOPY_MANIFEST_HASH_SIZE)
    return set_format_error (error, _("wrong package hash length"));
  if (n > G_MAXUINT - 1 || g_bytes_get_size (m->chunk_hashes) != n * CANOPY_MANIFEST_HASH_SIZE)
    return set_format_error (error, _("chunk hashes do not match the chunk lengths"));
  m->chunk_offsets = g_new (guint64, n + 1);
  for (gsize i = 0; i < n; i++)
    {
      if (length[i] == 0 || length[i] > MAX_CHUNK_SIZE)
        return set_format_error (error, _("impossible chunk length"));
      m->chunk_offsets[i] = offset;
      offset += length[i]; /* cannot overflow: fewer than 2^32 lengths below 2^27 */
      longest = MAX (longest, length[i]);
    }
  m->chunk_offsets[n] = offset;
  if (offset != m->size)
    return set_format_error (error, _("chunk lengths do not add up to the size"));
  m->chunk_size = longest;
  return TRUE;
}

CanopyManifest *
canopy_manifest_parse (GBytes *data, const CanopyVerifyKey *key, GError **error)
{
  g_autoptr (GVariant) envelope = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE (ENVELOPE_TYPE), data, FALSE));
  g_autoptr (GVariant) body_ay = NULL, sig_ay = NULL, body = NULL, sha = NULL, hashes = NULL;
  g_autoptr (GVariant) lengths = NULL;
  g_autoptr (CanopyManifest) m = g_new0 (CanopyManifest, 1);
  g_autoptr (GBytes) body_bytes = NULL;
  const guint8 *signed_data, *sig;
  gsize signed_size, sig_size, sha_len;
  const guint8 *sha_data;

  if (!g_variant_is_normal_form (envelope))
    return set_format_error (error, _("not in normal form")), NULL;
  body_ay = g_variant_get_child_value (envelope, 0);
  sig_ay = g_variant_get_child_value (envelope, 1);
  signed_data = g_variant_get_fixed_array (body_ay, &signed_size, 1);
  sig = g_variant_get_fixed_array (sig_ay, &sig_size, 1);
  if (key != NULL && !canopy_verify_key_verify (key, signed_data, signed_size, sig, sig_size))
    {
      g_set_error (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_SIGNATURE,
                   _("The content manifest is not signed by this server's key; it was altered, "
                     "or comes from another server"));
      return NULL;
    }

  /* Its own copy: the chunk hashes keep referring to it after we return. */
  body_bytes = g_bytes_new (signed_data, signed_size);
  body = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (BODY_TYPE_2), body_bytes,
                                                       FALSE));
  if (g_variant_is_normal_form (body) && is_content_defined (body))
    g_variant_get (body, "(sssut@ay@ay@au)", &m->content_id, &m->name, &m->version,
                   &m->chunk_size, &m->size, &sha, &hashes, &lengths);
  else
    {
      g_clear_pointer (&body, g_variant_unref);
      body = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (BODY_TYPE),
                                                           body_bytes, FALSE));
      if (!g_variant_is_normal_form (body))
        return set_format_error (error, _("in neither format 1 nor format 2: damaged, or "
                                          "from a newer server, then upgrade the agent")),
               NULL;
      g_variant_get (body, "(sssut@ay@ay)", &m->content_id, &m->name, &m->version,
                     &m->chunk_size, &m->size, &sha, &hashes);
    }
  sha_data = g_variant_get_fixed_array (sha, &sha_len, 1);
  if (sha_len == CANOPY_MANIFEST_HASH_SIZE)
    memcpy (m->sha256, sha_data, sha_len);
  m->chunk_hashes = g_variant_get_data_as_bytes (hashes);
  m->signature = g_bytes_new (sig, sig_size);
  if (lengths != NULL ? !take_lengths (m, lengths, sha_len, error)
                      : !check_consistent (m, sha_len, error))
    return NULL;
  return g_steal_pointer (&m);
}
