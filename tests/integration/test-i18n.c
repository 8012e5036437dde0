/* Translations as an admin meets them: the real canopyd and canopyctl
 * from the build tree, run under LANGUAGE=de and LANGUAGE=fr with the
 * catalogs built from po/, say their errors in that language. */
#include "build-config.h"

#include "tests/canopy-test.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  const char *language;
  /* What canopyd --check-config says of an unknown element. */
  const char *bad_element;
  /* What canopyctl says when the console API refuses the connection. */
  const char *unreachable;
} Language;

static const Language german = { "de", "ist hier nicht erlaubt; prüfen Sie Schreibweise und Position",
                                 "ist nicht erreichbar" };
static const Language french = { "fr", "n'est pas autorisé ici ; vérifiez son orthographe et sa position",
                                 "Impossible de joindre l'API de la console" };

/* A locale directory LANG/LC_MESSAGES/canopy.mo holding the catalogs
 * "make" built in po/ (in the source tree, as gettext's po/Makefile
 * puts them), for CANOPY_LOCALEDIR. */
static char *
make_localedir (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("i18n");
  const char *languages[] = { "de", "fr" };

  for (guint i = 0; i < G_N_ELEMENTS (languages); i++)
    {
      g_autofree char *gmo_name = g_strconcat (languages[i], ".gmo", NULL);
      g_autofree char *gmo = canopy_test_src_path ("po", gmo_name, NULL);
      g_autofree char *messages = g_build_filename (dir, languages[i], "LC_MESSAGES", NULL);
      g_autofree char *mo = g_build_filename (messages, "canopy.mo", NULL);
      g_autofree char *data = NULL;
      gsize length = 0;
      g_autoptr (GError) error = NULL;

      if (!g_file_get_contents (gmo, &data, &length, &error))
        {
          fprintf (stderr, "\n    the catalog %s was not built: %s\n", gmo, error->message);
          return NULL;
        }
      g_mkdir_with_parents (messages, 0755);
      if (!g_file_set_contents (mo, data, (gssize) length, &error))
        {
          fprintf (stderr, "\n    cannot write %s: %s\n", mo, error->message);
          return NULL;
        }
    }
  return g_steal_pointer (&dir);
}

/* Runs @argv in @language (NULL: untranslated) and returns its status. */
static int
run_in (const char *localedir, const char *language, const char *const *argv, char **output)
{
  int status;

  g_setenv ("CANOPY_LOCALEDIR", localedir, TRUE);
  /* C.UTF-8 is the one UTF-8 locale every Debian system has; gettext
   * then follows LANGUAGE. */
  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  if (language != NULL)
    g_setenv ("LANGUAGE", language, TRUE);
  else
    g_unsetenv ("LANGUAGE");
  status = canopy_test_run (argv, output);
  g_unsetenv ("LANGUAGE");
  g_unsetenv ("LC_ALL");
  g_unsetenv ("CANOPY_LOCALEDIR");
  return status;
}

static void
check_config_speaks (const Language *lang)
{
  g_autofree char *localedir = make_localedir ();
  g_autofree char *canopyd = canopy_test_build_path ("canopyd", NULL);
  g_autofree char *dir = canopy_test_make_tmpdir ("i18n-config");
  g_autofree char *bad = g_build_filename (dir, "canopyd.xml", NULL);
  g_autofree char *english = NULL;
  g_autofree char *translated = NULL;
  const char *argv[] = { canopyd, "--check-config", bad, NULL };

  CU_ASSERT_PTR_NOT_NULL_FATAL (localedir);
  CU_ASSERT_TRUE_FATAL (g_file_set_contents (bad, "<server>\n  <frobnicate/>\n</server>\n", -1,
                                             NULL));
  CU_ASSERT_EQUAL (run_in (localedir, NULL, argv, &english), 1);
  CANOPY_ASSERT_CONTAINS (english, "element <frobnicate> is not allowed here");
  CU_ASSERT_EQUAL (run_in (localedir, lang->language, argv, &translated), 1);
  /* The file, line and element stay; the sentence is translated. */
  CANOPY_ASSERT_CONTAINS (translated, "canopyd.xml:2:");
  CANOPY_ASSERT_CONTAINS (translated, "<frobnicate>");
  CANOPY_ASSERT_CONTAINS (translated, lang->bad_element);
  CU_ASSERT_PTR_NULL (strstr (translated, "is not allowed here"));
}

static void
ctl_refusal_speaks (const Language *lang)
{
  g_autofree char *localedir = make_localedir ();
  g_autofree char *ctl = canopy_test_build_path ("canopyctl", NULL);
  g_autofree char *dir = canopy_test_make_tmpdir ("i18n-ctl");
  g_autofree char *profile = g_build_filename (dir, "profile", NULL);
  g_autofree char *token = g_build_filename (dir, "token", NULL);
  g_autofree char *translated = NULL;
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetSocketAddress) bound = NULL;
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autofree char *url = NULL;
  g_autofree char *fingerprint = NULL;
  GString *hex = g_string_new (NULL);

  CU_ASSERT_PTR_NOT_NULL_FATAL (localedir);
  /* A port that is bound but not listening: the connection is refused. */
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (socket);
  CU_ASSERT_TRUE_FATAL (g_socket_bind (socket, any, FALSE, NULL));
  bound = G_INET_SOCKET_ADDRESS (g_socket_get_local_address (socket, NULL));
  url = g_strdup_printf ("https://127.0.0.1:%u", g_inet_socket_address_get_port (bound));
  for (int i = 0; i < 32; i++)
    g_string_append (hex, "ab");
  fingerprint = g_string_free (hex, FALSE);
  CU_ASSERT_TRUE_FATAL (g_file_set_contents (token, "cnp_not-a-real-token\n", -1, NULL));

  const char *argv[] = { ctl, "--profile", profile, "login", "--server", url, "--fingerprint",
                         fingerprint, "--token-file", token, NULL };
  CU_ASSERT_EQUAL (run_in (localedir, lang->language, argv, &translated), 3);
  CANOPY_ASSERT_CONTAINS (translated, url);
  CANOPY_ASSERT_CONTAINS (translated, lang->unreachable);
  CU_ASSERT_PTR_NULL (strstr (translated, "Cannot reach the console API"));
  CU_ASSERT_FALSE (g_file_test (profile, G_FILE_TEST_EXISTS));
}

static void
test_check_config_german (void)
{
  check_config_speaks (&german);
}

static void
test_check_config_french (void)
{
  check_config_speaks (&french);
}

static void
test_ctl_refusal_german (void)
{
  ctl_refusal_speaks (&german);
}

static void
test_ctl_refusal_french (void)
{
  ctl_refusal_speaks (&french);
}

CANOPY_TEST_SUITE (i18n, "i18n", NULL, NULL,
                   { "canopyd --check-config on a bad file speaks German", test_check_config_german },
                   { "canopyd --check-config on a bad file speaks French", test_check_config_french },
                   { "canopyctl with a refused connection speaks German", test_ctl_refusal_german },
                   { "canopyctl with a refused connection speaks French", test_ctl_refusal_french })
