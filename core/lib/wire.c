/* The wire protocol: frames are checked field by field before any body is
 * read, and bodies are accepted only in GVariant normal form. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-wire"

#include "lib/wire.h"
#include "lib/i18n.h"
#include "lib/transport.h"

#include <string.h>

/* "CNPY" */
static const guint8 wire_magic[4] = { 'C', 'N', 'P', 'Y' };

static const struct {
  CanopyWireKind kind;
  const char *name;
  const char *type;
} wire_kinds[] = {
  /* device ID, agent version, addresses (address, prefix length), groups,
   * port it serves office peers on (0: none), the device's name for admins */
  { CANOPY_WIRE_HELLO, "hello", "(ssa(sy)asqs)" },
  /* server ID, server version, heartbeat interval (s), office name, the
   * server's content-signing public key (Ed25519), which manifests are
   * checked with */
  { CANOPY_WIRE_WELCOME, "welcome", "(ssusay)" },
  /* reason, message for the admin, oldest and newest supported agent version */
  { CANOPY_WIRE_REFUSED, "refused", "(usss)" },
  /* agent's clock (µs since the epoch), verified bytes in cache */
  { CANOPY_WIRE_HEARTBEAT, "heartbeat", "(xt)" },
  /* deployment ID, signed manifest, role (CanopyRole), sources in the
   * order to try them (CanopySourceKind, device ID or "", host or origin
   * location, port), destination path, WAN rate (bits/s, 0: unlimited) */
  { CANOPY_WIRE_ASSIGNMENT, "assignment", "(sayua(ussq)st)" },
  /* deployment ID, verified chunks, verified bytes by CanopySourceKind,
   * per peer that sent chunks since the last progress: (device ID,
   * verified bytes, chunks that failed verification) */
  { CANOPY_WIRE_PROGRESS, "progress", "(suata(stu))" },
  /* deployment ID, SHA-256 of the finished package */
  { CANOPY_WIRE_DONE, "done", "(say)" },
  /* deployment ID, reason */
  { CANOPY_WIRE_FAILED, "failed", "(ss)" },
  /* deployment ID, reason for the agent's log */
  { CANOPY_WIRE_WITHDRAW, "withdraw", "(ss)" },
  /* deployment ID, what the agent did (CanopyWireWithdrawn) */
  { CANOPY_WIRE_WITHDRAWN, "withdrawn", "(su)" },
  /* deployment ID, destination path, SHA-256 of the package: remove the
   * file if canopy put it there and it still has that hash */
  { CANOPY_WIRE_UNINSTALL, "uninstall", "(ssay)" },
  /* deployment ID, what the agent did (CanopyWireUninstalled), a sentence
   * for the admin */
  { CANOPY_WIRE_UNINSTALLED, "uninstalled", "(sus)" },
  /* deployment ID, background (yield to other traffic, LEDBAT), target
   * queueing delay (ms); sent after each assignment */
  { CANOPY_WIRE_WAN_CLASS, "wan-class", "(sbu)" },
  /* deployment ID, the background lead's rate (bits/s), queueing delay
   * and base delay (µs, -1 before the first sample) */
  { CANOPY_WIRE_WAN_PACING, "wan-pacing", "(stxx)" },
  /* device ID, content IDs it holds */
  { CANOPY_WIRE_PEER_HELLO, "peer-hello", "(sas)" },
  /* content ID, bitfield of verified chunks */
  { CANOPY_WIRE_HAVE, "have", "(say)" },
  /* content ID, chunk index */
  { CANOPY_WIRE_REQUEST, "request", "(su)" },
  /* content ID, chunk index; the chunk is the payload */
  { CANOPY_WIRE_DATA, "data", "(su)" },
  /* content ID, chunk index: the requester no longer wants it, or the
   * server of a request does not hold it */
  { CANOPY_WIRE_CANCEL, "cancel", "(su)" },
  /* content ID, seconds to wait before asking again */
  { CANOPY_WIRE_BUSY, "busy", "(su)" },
  /* the requester's content ID, index of the first hash, SHA-256s of its
   * chunks from that index on: which of these does the holder have, in
   * any content? */
  { CANOPY_WIRE_CHUNK_QUERY, "chunk-query", "(suaay)" },
  /* content ID and first index of the query, bitfield over its hashes
   * (bit i: chunk first + i held and verified, in any content) */
  { CANOPY_WIRE_CHUNK_HAVE, "chunk-have", "(suay)" },
  /* the requester's content ID, chunk index, the chunk's SHA-256:
   * answered with data or cancel for that content ID and index */
  { CANOPY_WIRE_CHUNK_REQUEST, "chunk-request", "(suay)" },
};

G_DEFINE_QUARK (canopy-wire-error-quark, canopy_wire_error)

static gssize
find_kind (CanopyWireKind kind)
{
  for (gsize i = 0; i < G_N_ELEMENTS (wire_kinds); i++)
    if (wire_kinds[i].kind == kind)
      return (gssize) i;
  return -1;
}

const GVariantType *
canopy_wire_kind_type (CanopyWireKind kind)
{
  gssize i = find_kind (kind);

  return i >= 0 ? G_VARIANT_TYPE (wire_kinds[i].type) : NULL;
}

const char *
canopy_wire_kind_to_string (CanopyWireKind kind)
{
  gssize i = find_kind (kind);

  return i >= 0 ? wire_kinds[i].name : "unknown";
}

/* Header: magic (4), version (2), kind (2), body length (4), big-endian. */
GBytes *
canopy_wire_encode (CanopyWireKind kind, GVariant *body)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (body);
  gsize body_size = g_variant_get_size (owned);
  guint8 *frame = g_malloc (CANOPY_WIRE_HEADER_SIZE + body_size);
  guint16 version = GUINT16_TO_BE (CANOPY_WIRE_VERSION);
  guint16 kind_be = GUINT16_TO_BE ((guint16) kind);
  guint32 length = GUINT32_TO_BE ((guint32) body_size);

  g_return_val_if_fail (g_variant_is_of_type (owned, canopy_wire_kind_type (kind)), NULL);

  memcpy (frame, wire_magic, 4);
  memcpy (frame + 4, &version, 2);
  memcpy (frame + 6, &kind_be, 2);
  memcpy (frame + 8, &length, 4);
  /* Not g_variant_store(): the body after a 12-byte header is not aligned
   * for every type, and GVariant insists on alignment when writing. */
  memcpy (frame + CANOPY_WIRE_HEADER_SIZE, g_variant_get_data (owned), body_size);
  return g_bytes_new_take (frame, CANOPY_WIRE_HEADER_SIZE + body_size);
}

GVariant *
canopy_wire_decode (GBytes *frame, CanopyWireKind *kind, GError **error)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);
  guint16 version, kind_be;
  guint32 length;
  const GVariantType *type;
  g_autoptr (GBytes) body_bytes = NULL;
  g_autoptr (GVariant) body = NULL;

  if (size < CANOPY_WIRE_HEADER_SIZE || memcmp (data, wire_magic, 4) != 0)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_MAGIC,
                   _("The peer sent something that is not a canopy message"));
      return NULL;
    }
  memcpy (&version, data + 4, 2);
  memcpy (&kind_be, data + 6, 2);
  memcpy (&length, data + 8, 4);
  version = GUINT16_FROM_BE (version);
  length = GUINT32_FROM_BE (length);
  *kind = (CanopyWireKind) GUINT16_FROM_BE (kind_be);

  if (version != CANOPY_WIRE_VERSION)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_VERSION,
                   _("The peer speaks canopy protocol version %u, this program version %u; "
                     "upgrade the older of the two"), version, CANOPY_WIRE_VERSION);
      return NULL;
    }
  type = canopy_wire_kind_type (*kind);
  if (type == NULL)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_KIND,
                   _("The peer sent a message of unknown kind %u"), (guint) *kind);
      return NULL;
    }
  if (length > CANOPY_WIRE_MAX_BODY || length != size - CANOPY_WIRE_HEADER_SIZE)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_LENGTH,
                   _("The peer sent a \"%s\" message whose length (%u bytes) does not match "
                     "what arrived (%zu) or exceeds the limit (%u)"),
                   canopy_wire_kind_to_string (*kind), length,
                   size - CANOPY_WIRE_HEADER_SIZE, (guint) CANOPY_WIRE_MAX_BODY);
      return NULL;
    }
  body_bytes = g_bytes_new_from_bytes (frame, CANOPY_WIRE_HEADER_SIZE, length);
  /* GVariant copies the body if the frame leaves it misaligned. */
  body = g_variant_ref_sink (g_variant_new_from_bytes (type, body_bytes, FALSE));
  if (!g_variant_is_normal_form (body))
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY,
                   _("The peer sent a malformed \"%s\" message"),
                   canopy_wire_kind_to_string (*kind));
      return NULL;
    }
  return g_steal_pointer (&body);
}

int
canopy_wire_compare_versions (const char *a, const char *b)
{
  while (*a != '\0' || *b != '\0')
    {
      guint64 va = g_ascii_strtoull (a, (char **) &a, 10);
      guint64 vb = g_ascii_strtoull (b, (char **) &b, 10);

      if (va != vb)
        return va < vb ? -1 : 1;
      /* Skip to the next part; anything that is not a digit separates. */
      while (*a != '\0' && !g_ascii_isdigit (*a))
        a++;
      while (*b != '\0' && !g_ascii_isdigit (*b))
        b++;
    }
  return 0;
}

static gboolean
check_content_id (const char *content_id, const char *kind, GError **error)
{
  if (content_id[0] != '\0' && content_id[0] != '+')
    return TRUE;
  g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY,
               _("The peer sent a \"%s\" message naming no content (\"%s\")"), kind,
               content_id);
  return FALSE;
}

gboolean
canopy_wire_read_chunk_query (GVariant *body, const char **content_id, guint32 *first,
                              GBytes **hashes, GError **error)
{
  g_autoptr (GVariant) list = NULL;
  g_autoptr (GByteArray) flat = NULL;
  gsize n;

  g_return_val_if_fail (g_variant_is_of_type (body, G_VARIANT_TYPE ("(suaay)")), FALSE);
  g_variant_get (body, "(&su@aay)", content_id, first, &list);
  if (!check_content_id (*content_id, "chunk-query", error))
    return FALSE;
  n = g_variant_n_children (list);
  if (n == 0 || n > CANOPY_WIRE_MAX_QUERY_HASHES || *first > G_MAXUINT32 - n)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY,
                   _("The peer sent a \"chunk-query\" for %zu chunks from index %u; a query "
                     "names 1 to %u chunks within the 32-bit index range"),
                   n, *first, (guint) CANOPY_WIRE_MAX_QUERY_HASHES);
      return FALSE;
    }
  flat = g_byte_array_sized_new ((guint) (n * CANOPY_WIRE_HASH_SIZE));
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) hash = g_variant_get_child_value (list, i);
      gsize size = g_variant_get_size (hash);

      if (size != CANOPY_WIRE_HASH_SIZE)
        {
          g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY,
                       _("The peer sent a \"chunk-query\" whose hash %zu is %zu bytes long; "
                         "a SHA-256 is %u bytes"),
                       i, size, (guint) CANOPY_WIRE_HASH_SIZE);
          return FALSE;
        }
      g_byte_array_append (flat, g_variant_get_data (hash), CANOPY_WIRE_HASH_SIZE);
    }
  *hashes = g_byte_array_free_to_bytes (g_steal_pointer (&flat));
  return TRUE;
}

gboolean
canopy_wire_read_chunk_request (GVariant *body, const char **content_id, guint32 *index,
                                guint8 hash[CANOPY_WIRE_HASH_SIZE], GError **error)
{
  g_autoptr (GVariant) value = NULL;
  gsize size;

  g_return_val_if_fail (g_variant_is_of_type (body, G_VARIANT_TYPE ("(suay)")), FALSE);
  g_variant_get (body, "(&su@ay)", content_id, index, &value);
  if (!check_content_id (*content_id, "chunk-request", error))
    return FALSE;
  size = g_variant_get_size (value);
  if (size != CANOPY_WIRE_HASH_SIZE)
    {
      g_set_error (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY,
                   _("The peer sent a \"chunk-request\" whose hash is %zu bytes long; a "
                     "SHA-256 is %u bytes"),
                   size, (guint) CANOPY_WIRE_HASH_SIZE);
      return FALSE;
    }
  memcpy (hash, g_variant_get_data (value), CANOPY_WIRE_HASH_SIZE);
  return TRUE;
}

gboolean
canopy_wire_send (CanopyTransportConnection *conn, CanopyWireKind kind, GVariant *body,
                  GBytes *payload, GError **error)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (kind, body);

  return canopy_transport_send (conn, frame, payload, error);
}
