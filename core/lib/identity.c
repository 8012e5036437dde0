/* Identities kept on disk. A damaged ID file is an error, never silently
 * replaced: a new ID would make the device or server a stranger. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-identity"

#include "lib/identity.h"
#include "lib/i18n.h"

G_DEFINE_QUARK (canopy-identity-error-quark, canopy_identity_error)

char *
canopy_identity_load (const char *path, const char *what, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local_error = NULL;

  if (!g_file_get_contents (path, &text, NULL, &local_error))
    {
      g_set_error (error, CANOPY_IDENTITY_ERROR, CANOPY_IDENTITY_ERROR_READ,
                   _("Cannot read the %s: %s"), what, local_error->message);
      return NULL;
    }
  g_strstrip (text);
  if (!g_uuid_string_is_valid (text))
    {
      g_set_error (error, CANOPY_IDENTITY_ERROR, CANOPY_IDENTITY_ERROR_INVALID,
                   _("%s does not hold a %s (a UUID); restore it from a backup, or remove it "
                     "to make a new one"), path, what);
      return NULL;
    }
  return g_steal_pointer (&text);
}

char *
canopy_identity_ensure (const char *path, const char *what, gboolean *created, GError **error)
{
  g_autofree char *id = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GError) local_error = NULL;

  if (created != NULL)
    *created = FALSE;
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return canopy_identity_load (path, what, error);

  id = g_uuid_string_random ();
  line = g_strconcat (id, "\n", NULL);
  if (!g_file_set_contents_full (path, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                 &local_error))
    {
      g_set_error (error, CANOPY_IDENTITY_ERROR, CANOPY_IDENTITY_ERROR_WRITE,
                   _("Cannot record the %s: %s"), what, local_error->message);
      return NULL;
    }
  if (created != NULL)
    *created = TRUE;
  return g_steal_pointer (&id);
}
