/* The SDK's transport helpers: the error domain of transport plugins, and
 * payloads that are slices of a mapped file, so chunk data is not copied. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-transport"

#include <canopy/transport.h>
#include "lib/i18n.h"

G_DEFINE_QUARK (canopy-transport-error-quark, canopy_transport_error)

GBytes *
canopy_transport_payload_new_mapped (GMappedFile *file, gsize offset, gsize length,
                                     GError **error)
{
  gsize size;
  const char *data;

  g_return_val_if_fail (file != NULL, NULL);
  size = g_mapped_file_get_length (file);
  if (offset > size || length > size - offset)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("The payload slice at offset %zu of %zu bytes lies outside the mapped file of "
                     "%zu bytes."),
                   offset, length, size);
      return NULL;
    }
  data = g_mapped_file_get_contents (file);
  return g_bytes_new_with_free_func (data != NULL ? data + offset : "", length,
                                     (GDestroyNotify) g_mapped_file_unref,
                                     g_mapped_file_ref (file));
}
