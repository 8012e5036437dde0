/* The connection profile, a key file. The token in it lets its holder act
 * as the admin, so it is written like a key: owner-only, atomically. */
#include "build-config.h"

#include "ctl/ctl-profile.h"
#include "ctl/ctl-client.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define GROUP "console"

void
ctl_profile_free (CtlProfile *profile)
{
  if (profile == NULL)
    return;
  g_free (profile->url);
  if (profile->token != NULL)
    memset (profile->token, 0, strlen (profile->token));
  g_free (profile->token);
  g_free (profile->fingerprint);
  g_free (profile->ca_file);
  g_free (profile);
}

char *
ctl_profile_default_path (void)
{
  const char *env = g_getenv ("CANOPY_PROFILE");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_config_dir (), "canopy", "profile", NULL);
}

char *
ctl_profile_normalize_fingerprint (const char *text)
{
  GString *out = g_string_new (NULL);
  guint digits = 0;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == ':' || g_ascii_isspace (*p))
        continue;
      if (!g_ascii_isxdigit (*p) || digits == 64)
        return g_string_free (out, TRUE);
      if (digits > 0 && digits % 2 == 0)
        g_string_append_c (out, ':');
      g_string_append_c (out, g_ascii_toupper (*p));
      digits++;
    }
  if (digits != 64)
    return g_string_free (out, TRUE);
  return g_string_free (out, FALSE);
}

CtlProfile *
ctl_profile_load (const char *path, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (CtlProfile) profile = g_new0 (CtlProfile, 1);
  g_autoptr (GError) local_error = NULL;

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, CTL_ERROR, CTL_ERROR_NOT_LOGGED_IN,
                     _("There is no connection profile at %s; run \"canopyctl login --server "
                       "URL --fingerprint SHA256\" first"),
                     path);
      else
        g_set_error (error, CTL_ERROR, CTL_ERROR_FAILED,
                     _("Cannot read the connection profile %s: %s. Run \"canopyctl login\" "
                       "again to rewrite it"),
                     path, local_error->message);
      return NULL;
    }
  profile->url = g_key_file_get_string (file, GROUP, "url", NULL);
  profile->token = g_key_file_get_string (file, GROUP, "token", NULL);
  profile->fingerprint = g_key_file_get_string (file, GROUP, "certificate-sha256", NULL);
  profile->ca_file = g_key_file_get_string (file, GROUP, "ca-file", NULL);
  if (profile->url == NULL || profile->token == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_NOT_LOGGED_IN,
                   _("The connection profile %s lacks the server URL or the token; run "
                     "\"canopyctl login\" again"),
                   path);
      return NULL;
    }
  return g_steal_pointer (&profile);
}

gboolean
ctl_profile_save (const CtlProfile *profile, const char *path, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *text = NULL;
  gsize length;
  gboolean ok;

  g_key_file_set_comment (file, NULL, NULL,
                          " canopyctl connection profile, written by \"canopyctl login\".\n"
                          " The token acts as the admin: keep this file private.",
                          NULL);
  g_key_file_set_string (file, GROUP, "url", profile->url);
  g_key_file_set_string (file, GROUP, "token", profile->token);
  if (profile->fingerprint != NULL)
    g_key_file_set_string (file, GROUP, "certificate-sha256", profile->fingerprint);
  if (profile->ca_file != NULL)
    g_key_file_set_string (file, GROUP, "ca-file", profile->ca_file);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_FAILED,
                   _("Cannot create the directory %s for the connection profile: %s"), dir,
                   g_strerror (errno));
      return FALSE;
    }
  text = g_key_file_to_data (file, &length, NULL);
  ok = canopy_atomic_file_write (path, (const guint8 *) text, length, 0600, error);
  memset (text, 0, length);
  return ok;
}
