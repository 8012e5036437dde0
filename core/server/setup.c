/* The installer step: each piece of state is created if missing and kept
 * if present, so running it again is always safe. */
#include "build-config.h"

#include "server/setup.h"
#include "lib/i18n.h"
#include "lib/identity.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
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

  return canopy_identity_load (path, _("server ID"), error);
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

static gboolean
set_signing_key_error (GError **error, const char *path, int rc)
{
  g_set_error (error, CANOPY_SETUP_ERROR, CANOPY_SETUP_ERROR_SIGNING_KEY,
               _("Cannot create the content-signing key %s: %s"), path, gnutls_strerror (rc));
  return FALSE;
}

/* Ed25519, PKCS#8 PEM, owner-only: manifests are signed with it. */
static gboolean
ensure_signing_key (const char *state_directory, gboolean *is_new, GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, CANOPY_SETUP_SIGNING_KEY_FILE, NULL);
  gnutls_x509_privkey_t key = NULL;
  gnutls_datum_t pem = { NULL, 0 };
  g_autoptr (GError) local_error = NULL;
  gboolean ok;
  int rc;

  *is_new = FALSE;
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;

  if ((rc = gnutls_x509_privkey_init (&key)) < 0)
    return set_signing_key_error (error, path, rc);
  rc = gnutls_x509_privkey_generate2 (key, GNUTLS_PK_EDDSA_ED25519, 256, 0, NULL, 0);
  if (rc >= 0)
    rc = gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
                                            &pem);
  gnutls_x509_privkey_deinit (key);
  if (rc < 0)
    return set_signing_key_error (error, path, rc);

  ok = g_file_set_contents_full (path, (const char *) pem.data, pem.size,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local_error);
  gnutls_memset (pem.data, 0, pem.size);
  gnutls_free (pem.data);
  if (!ok)
    {
      g_set_error (error, CANOPY_SETUP_ERROR, CANOPY_SETUP_ERROR_SIGNING_KEY,
                   _("Cannot write the content-signing key: %s"), local_error->message);
      return FALSE;
    }
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
