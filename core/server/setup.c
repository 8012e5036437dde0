/* The installer step: each piece of state is created if missing and kept
 * if present, so running it again is always safe. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-setup"

#include "server/setup.h"
#include "server/console/console-cert.h"
#include "lib/i18n.h"
#include "lib/identity.h"
#include "lib/signing.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

G_DEFINE_QUARK (canopy-setup-error-quark, canopy_setup_error)

void
canopy_setup_result_free (CanopySetupResult *result)
{
  if (result == NULL)
    return;
  canopy_shared_key_free (result->shared_key);
  g_free (result->server_id);
  g_free (result->state_directory);
  g_free (result);
}

static gboolean
ensure_state_directory (const char *path, GError **error)
{
  GStatBuf st;

  if (g_mkdir_with_parents (path, 0700) != 0 || g_stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_SETUP_ERROR, CANOPY_SETUP_ERROR_STATE_DIRECTORY,
                   _("Cannot create the state directory %s: %s"), path, g_strerror (saved_errno));
      return FALSE;
    }
  /* Keys live here: nobody but the service user may look inside. */
  if ((st.st_mode & 077) != 0 && g_chmod (path, 0700) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_SETUP_ERROR, CANOPY_SETUP_ERROR_STATE_DIRECTORY,
                   _("The state directory %s is open to other users and cannot be closed "
                     "(%s); run \"chmod 700 %s\""), path, g_strerror (saved_errno), path);
      return FALSE;
    }
  return TRUE;
}

char *
canopy_setup_load_server_id (const char *state_directory, GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, CANOPY_SETUP_SERVER_ID_FILE, NULL);
  g_autoptr (GError) local_error = NULL;
  char *id = canopy_identity_load (path, _("server ID"), &local_error);

  if (id == NULL)
    g_set_error (error, local_error->domain, local_error->code,
                 _("%s. Run \"canopyd init\" to set up this server"), local_error->message);
  return id;
}

static CanopySharedKey *
ensure_shared_key (const char *state_directory, gboolean regenerate, gboolean *is_new,
                   GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, CANOPY_SETUP_SHARED_KEY_FILE, NULL);
  g_autoptr (CanopySharedKey) key = NULL;

  *is_new = FALSE;
  if (!regenerate && g_file_test (path, G_FILE_TEST_EXISTS))
    return canopy_shared_key_load (path, error);

  key = canopy_shared_key_generate (error);
  if (key == NULL || !canopy_shared_key_save (key, path, error))
    return NULL;
  *is_new = TRUE;
  return g_steal_pointer (&key);
}

/* Ed25519: manifests are signed with it. */
static gboolean
ensure_signing_key (const char *state_directory, gboolean *is_new, GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, CANOPY_SETUP_SIGNING_KEY_FILE, NULL);

  *is_new = FALSE;
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!canopy_signing_key_generate_file (path, error))
    return FALSE;
  *is_new = TRUE;
  return TRUE;
}

CanopySetupResult *
canopy_setup_run (const char *state_directory, gboolean regenerate_key, GError **error)
{
  g_autoptr (CanopySetupResult) result = g_new0 (CanopySetupResult, 1);

  result->state_directory = g_strdup (state_directory);
  if (!ensure_state_directory (state_directory, error))
    return NULL;
  {
    g_autofree char *path = g_build_filename (state_directory, CANOPY_SETUP_SERVER_ID_FILE, NULL);
    result->server_id = canopy_identity_ensure (path, _("server ID"), NULL, error);
    if (result->server_id == NULL)
      return NULL;
  }
  result->shared_key = ensure_shared_key (state_directory, regenerate_key, &result->key_is_new,
                                          error);
  if (result->shared_key == NULL)
    return NULL;
  if (!ensure_signing_key (state_directory, &result->signing_key_is_new, error))
    return NULL;
  return g_steal_pointer (&result);
}

gboolean
canopy_setup_ensure_console_certificate (const char *state_directory, const char *server_name,
                                         gboolean *is_new, char **fingerprint, GError **error)
{
  g_autofree char *cert = g_build_filename (state_directory, CANOPY_CONSOLE_CERT_FILE, NULL);
  g_autofree char *key = g_build_filename (state_directory, CANOPY_CONSOLE_KEY_FILE, NULL);
  g_autofree char *pem = NULL;

  *is_new = FALSE;
  if (!g_file_test (cert, G_FILE_TEST_EXISTS) || !g_file_test (key, G_FILE_TEST_EXISTS))
    {
      if (!canopy_console_cert_generate (server_name, cert, key, error))
        return FALSE;
      *is_new = TRUE;
    }
  if (!g_file_get_contents (cert, &pem, NULL, error))
    return FALSE;
  *fingerprint = canopy_console_cert_fingerprint (pem, error);
  return *fingerprint != NULL;
}
