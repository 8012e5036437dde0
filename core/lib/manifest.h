/* Content manifests: a package's name, version, size and the offset,
 * length and SHA-256 of each chunk, signed by the server (Ed25519) so
 * agents can verify every chunk whoever serves it. */
#pragma once

#include <gio/gio.h>
#include "lib/signing.h"

G_BEGIN_DECLS

#define CANOPY_MANIFEST_ERROR (canopy_manifest_error_quark ())
GQuark canopy_manifest_error_quark (void);

typedef enum {
  CANOPY_MANIFEST_ERROR_READ,      /* the origin could not be read */
  CANOPY_MANIFEST_ERROR_FORMAT,    /* not a manifest, or inconsistent */
  CANOPY_MANIFEST_ERROR_SIGNATURE, /* not signed by the key it is checked with */
} CanopyManifestError;

/* Format 1: fixed-size chunks (the last one short), as built before
 * content-defined chunking; still read, and built when a caller asks for a
 * chunk size. */
#define CANOPY_MANIFEST_DEFAULT_CHUNK_SIZE (1024 * 1024)
/* Pass as the chunk size to cut at content-defined points (format 2). */
#define CANOPY_MANIFEST_CONTENT_DEFINED 0
#define CANOPY_MANIFEST_HASH_SIZE 32
/* The largest serialized manifest an assignment carries (its payload; the
 * transports accept 64 MiB by default): over a million chunks. */
#define CANOPY_MANIFEST_MAX_SERIALIZED (48u * 1024 * 1024)

typedef enum {
  CANOPY_MANIFEST_FORMAT_FIXED = 1,
  CANOPY_MANIFEST_FORMAT_CONTENT_DEFINED = 2,
} CanopyManifestFormat;

typedef struct {
  char *content_id;
  char *name;
  char *version;
  guint64 size;
  /* Format 1: bytes per chunk. Format 2: the longest chunk's length, so
   * that one buffer of that size holds any chunk. */
  guint32 chunk_size;
  GBytes *chunk_hashes;  /* n_chunks × 32 bytes */
  guint64 *chunk_offsets; /* format 2: n_chunks + 1 offsets, the last = size */
  guint8 sha256[CANOPY_MANIFEST_HASH_SIZE]; /* of the whole package */
  GBytes *signature;     /* NULL until signed */
} CanopyManifest;

void canopy_manifest_free (CanopyManifest *manifest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyManifest, canopy_manifest_free)

guint canopy_manifest_get_n_chunks (const CanopyManifest *manifest);

/* Format 2 when it has chunk offsets. */
CanopyManifestFormat canopy_manifest_get_format (const CanopyManifest *manifest);

/**
 * canopy_manifest_copy:
 *
 * Returns: (transfer full): a copy of @manifest, signature and all.
 */
CanopyManifest *canopy_manifest_copy (const CanopyManifest *manifest);

/* The length of chunk @index (the last one may be short); 0 past the end. */
guint32 canopy_manifest_get_chunk_length (const CanopyManifest *manifest, guint index);

/* Where chunk @index starts in the package. */
guint64 canopy_manifest_get_chunk_offset (const CanopyManifest *manifest, guint index);

/* The SHA-256 of chunk @index (CANOPY_MANIFEST_HASH_SIZE bytes). */
const guint8 *canopy_manifest_get_chunk_hash (const CanopyManifest *manifest, guint index);

/**
 * canopy_link_allowance:
 * @base_us: what a fast link is allowed (µs)
 * @chunk_bytes: the size of one chunk
 * @bits_per_second: the link's rate; 0 for unlimited
 * @chunks: how many chunk transfers the allowance covers
 *
 * How long to wait for @chunks chunks over a link of that rate before
 * calling its sender stalled: @base_us, or longer on a link too slow to
 * carry them in that time, so that a slow WAN is not taken for a stall.
 *
 * Returns: µs.
 */
gint64 canopy_link_allowance (gint64 base_us, guint64 chunk_bytes, guint64 bits_per_second,
                              guint chunks);

/**
 * canopy_manifest_build:
 * @stream: the package, read once from start to end
 * @name: the content's name
 * @version: its version
 * @chunk_size: bytes per chunk, or %CANOPY_MANIFEST_CONTENT_DEFINED to cut
 *   where the content says (lib/chunker.h), as the server does
 * @cancellable: (nullable): to stop a long read
 * @error: %CANOPY_MANIFEST_ERROR_READ naming the cause
 *
 * Blocking: call it from a worker thread.
 */
CanopyManifest *canopy_manifest_build (GInputStream *stream, const char *name,
                                       const char *version, guint32 chunk_size,
                                       GCancellable *cancellable, GError **error);

/**
 * CanopyManifestSinkFunc:
 * @data: the next bytes of the package
 *
 * Sees the package as canopy_manifest_build_full() reads it, block after
 * block, so a copy can be kept without reading the origin twice. It cannot
 * stop the build: a copy that fails is the sink's own business.
 */
typedef void (*CanopyManifestSinkFunc) (const guint8 *data, gsize length, gpointer user_data);

/**
 * canopy_manifest_build_full:
 * @content_id: (nullable): the ID to give the content; %NULL for a new one
 * @sink: (nullable): sees every byte read, in order, on the calling thread
 *
 * Like canopy_manifest_build(), for a caller that keeps a copy of the
 * package under a content ID it chose before the read.
 */
CanopyManifest *canopy_manifest_build_full (GInputStream *stream, const char *content_id,
                                            const char *name, const char *version,
                                            guint32 chunk_size, CanopyManifestSinkFunc sink,
                                            gpointer sink_data, GCancellable *cancellable,
                                            GError **error);

/**
 * canopy_manifest_verify_chunk:
 *
 * Returns: whether @data is chunk @index of the content, by length and
 *   SHA-256.
 */
gboolean canopy_manifest_verify_chunk (const CanopyManifest *manifest, guint index,
                                       const guint8 *data, gsize length);

/* A package's SHA-256 computed piece by piece, in order. */
typedef struct _CanopyManifestHash CanopyManifestHash;

CanopyManifestHash *canopy_manifest_hash_new (void);
void canopy_manifest_hash_update (CanopyManifestHash *hash, const guint8 *data, gsize length);

/**
 * canopy_manifest_hash_matches:
 *
 * Finishes @hash; it takes no more data afterwards.
 *
 * Returns: whether the bytes given were @manifest's whole package.
 */
gboolean canopy_manifest_hash_matches (CanopyManifestHash *hash, const CanopyManifest *manifest);

void canopy_manifest_hash_free (CanopyManifestHash *hash);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyManifestHash, canopy_manifest_hash_free)

gboolean canopy_manifest_sign (CanopyManifest *manifest, const CanopySigningKey *key,
                               GError **error);

/**
 * canopy_manifest_serialize:
 *
 * Returns: (transfer full): the manifest and its signature, as sent to
 *   agents and stored by backends.
 */
GBytes *canopy_manifest_serialize (const CanopyManifest *manifest);

/**
 * canopy_manifest_parse:
 * @data: bytes from canopy_manifest_serialize(), from anywhere
 * @key: (nullable): the server's public key; %NULL only for the server
 *   re-reading manifests from its own database to sign them again
 * @error: %CANOPY_MANIFEST_ERROR_FORMAT or %CANOPY_MANIFEST_ERROR_SIGNATURE
 *
 * Checks the form (normal-form GVariant, consistent sizes) and the
 * signature before returning anything.
 */
CanopyManifest *canopy_manifest_parse (GBytes *data, const CanopyVerifyKey *key, GError **error);

G_END_DECLS
