/* Fuzz target: a frame as a peer or the server sends it, read by
 * canopy_wire_decode(); whatever it accepts must encode back unchanged. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "lib/wire.h"

#include <string.h>

gboolean
canopy_fuzz_wire (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) frame = g_bytes_new (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) body = NULL;
  g_autoptr (GBytes) again = NULL;
  CanopyWireKind kind;

  body = canopy_wire_decode (frame, &kind, &error);
  if (body == NULL)
    {
      g_assert (error != NULL);
      return FALSE;
    }
  g_assert (error == NULL);
  g_assert (g_variant_is_of_type (body, canopy_wire_kind_type (kind)));
  g_assert (canopy_wire_kind_to_string (kind) != NULL);
  /* Normal form only: one meaning per frame, so it round-trips exactly. */
  again = canopy_wire_encode (kind, body);
  g_assert (g_bytes_equal (frame, again));
  /* The kinds whose fields the type does not fully check are read as an
   * agent reads them: accepted with their values, or refused with a reason. */
  if (kind == CANOPY_WIRE_CHUNK_QUERY)
    {
      g_autoptr (GBytes) hashes = NULL;
      const char *content_id;
      guint32 first;
      gboolean ok = canopy_wire_read_chunk_query (body, &content_id, &first, &hashes, &error);

      g_assert (ok == (error == NULL));
      if (ok)
        g_assert (g_bytes_get_size (hashes) > 0
                  && g_bytes_get_size (hashes) % CANOPY_WIRE_HASH_SIZE == 0);
    }
  else if (kind == CANOPY_WIRE_CHUNK_REQUEST)
    {
      guint8 hash[CANOPY_WIRE_HASH_SIZE];
      const char *content_id;
      guint32 index;
      gboolean ok = canopy_wire_read_chunk_request (body, &content_id, &index, hash, &error);

      g_assert (ok == (error == NULL));
    }
  return TRUE;
}
