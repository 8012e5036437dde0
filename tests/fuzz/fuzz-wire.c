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
  return TRUE;
}
