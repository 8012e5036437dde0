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

gboolean
canopy_wire_send (CanopyTransportConnection *conn, CanopyWireKind kind, GVariant *body,
                  GBytes *payload, GError **error)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (kind, body);

  return canopy_transport_send (conn, frame, payload, error);
}
