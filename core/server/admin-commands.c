/* "canopyd admin-add", "admin-list" and "admin-revoke": the installer-style
 * commands that manage console admins on the server itself. They write the
 * database canopyd uses, so they work whether canopyd runs or not; a
 * running canopyd reads the admins again within seconds (console-api.c). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-admin-commands"

#include "server/admin-commands.h"
#include "server/admins.h"
#include "server/server.h"
#include "lib/i18n.h"
#include "lib/program.h"

typedef struct {
  CanopyServer *server;
  CanopyBackend *backend;
  CanopyAdmins *admins;
} Session;

static void
session_clear (Session *session)
{
  canopy_admins_free (session->admins);
  canopy_backend_close (session->backend);
  canopy_server_free (session->server);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Session, session_clear)

/* Parses the options; the exit status on failure, or -1. */
static int
parse (const char *usage, const char *summary, const GOptionEntry *entries, char **config_path,
       int *argc, char ***argv, int n_args)
{
  const GOptionEntry common[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, config_path,
      N_("Read the configuration from FILE"), N_("FILE") },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GOptionContext) context = g_option_context_new (usage);
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, common, GETTEXT_PACKAGE);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr (_("%s\nRun \"canopyd %s --help\" to see the options.\n"), error->message,
                  (*argv)[0]);
      return CANOPY_EXIT_USAGE;
    }
  if (*argc != n_args + 1)
    {
      g_printerr (_("Usage: canopyd %s %s\nRun \"canopyd %s --help\" to see the options.\n"),
                  (*argv)[0], usage, (*argv)[0]);
      return CANOPY_EXIT_USAGE;
    }
  return -1;
}

/* Opens the configured database and reads the admins; the exit status on
 * failure, or -1. */
static int
open_session (Session *session, const char *config_path)
{
  g_autoptr (GError) error = NULL;

  session->server = canopy_server_new (config_path != NULL ? config_path
                                                           : CANOPY_SERVER_CONFIG_DEFAULT,
                                       &error);
  if (session->server == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_CONFIG;
    }
  session->backend = canopy_server_open_backend (session->server, &error);
  if (session->backend != NULL)
    session->admins = canopy_admins_load (session->backend, &error);
  if (session->admins == NULL)
    {
      g_printerr (_("%s\nRun \"canopyd init\" first if this server was never set up.\n"),
                  error->message);
      return CANOPY_EXIT_RUNTIME;
    }
  return -1;
}

/* Who ran the command, in the audit log; a failure to record is reported,
 * not fatal: the change itself is made. */
static void
audit (Session *session, const char *action, const char *detail)
{
  g_autofree char *actor = g_strdup_printf ("canopyd command run by %s", g_get_user_name ());
  g_autoptr (GVariant) entry = g_variant_ref_sink (
    g_variant_new ("(xsss)", g_get_real_time (), actor, action, detail));
  g_autoptr (GError) error = NULL;

  if (!canopy_backend_append (session->backend, CANOPY_LOG_AUDIT, &entry, 1, &error))
    g_printerr (_("The change is made but could not be recorded in the audit log: %s\n"),
                error->message);
}

int
canopy_admin_commands_add (int argc, char **argv)
{
  g_autofree char *config_path = NULL, *role_text = NULL;
  double days = -1;
  const GOptionEntry entries[] = {
    { "role", 'r', 0, G_OPTION_ARG_STRING, &role_text,
      N_("administrator (everything), operator (content and deployments) or auditor (read "
         "only)"), N_("ROLE") },
    { "expires", 0, 0, G_OPTION_ARG_DOUBLE, &days,
      N_("Days until the token expires; 0: never. Default: <console token-lifetime-days>"),
      N_("DAYS") },
    G_OPTION_ENTRY_NULL
  };
  g_auto (Session) session = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL, *expiry = NULL;
  const CanopyAdmin *admin;
  const CanopyAdminToken *token;
  CanopyAdminRole role;
  gboolean existed;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC, expires = 0;
  int status = parse ("NAME --role ROLE",
                      _("Add a console admin, or give an existing one another token. The token "
                        "is printed once; only its hash is kept."),
                      entries, &config_path, &argc, &argv, 1);

  if (status >= 0)
    return status;
  role = canopy_admin_role_from_string (role_text, &error);
  if (role == CANOPY_ADMIN_ROLE_NONE)
    {
      if (role_text == NULL)
        g_printerr (_("Say the admin's role with --role: administrator, operator or auditor\n"));
      else
        g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_USAGE;
    }
  if (days != -1 && !(days >= 0 && days <= 36500))
    {
      g_printerr (_("--expires takes a number of days from 0 (never) to 36500\n"));
      return CANOPY_EXIT_USAGE;
    }
  status = open_session (&session, config_path);
  if (status >= 0)
    return status;
  if (days == -1)
    days = (double) canopy_server_get_config (session.server)->console_token_lifetime_days;
  if (days > 0)
    expires = now + MAX ((gint64) (days * 86400 + 0.5), 1);
  existed = canopy_admins_lookup (session.admins, argv[1]) != NULL;
  admin = canopy_admins_add (session.admins, argv[1], role, now, &error);
  token = admin != NULL ? canopy_admins_issue_token (session.admins, admin->name, now, expires,
                                                     &text, &error)
                        : NULL;
  if (token == NULL
      || !canopy_admins_save (session.backend, existed ? NULL : admin, token, NULL, &error))
    {
      g_printerr ("%s\n", error->message);
      canopy_admins_free_text (g_steal_pointer (&text));
      return existed || admin == NULL ? CANOPY_EXIT_USAGE : CANOPY_EXIT_RUNTIME;
    }
  {
    g_autofree char *detail = g_strdup_printf ("%s token %s", admin->name, token->id);
    audit (&session, existed ? "admin-token-issued" : "admin-added", detail);
  }
  expiry = expires != 0 ? canopy_admins_format_time (expires) : g_strdup (_("never"));
  if (existed)
    g_print (_("The admin \"%s\" (%s) exists; a new token was issued.\n"), admin->name,
             canopy_admin_role_to_string (admin->role));
  else
    g_print (_("Admin \"%s\" (%s) added.\n"), admin->name,
             canopy_admin_role_to_string (admin->role));
  g_print (_("  token:    %s\n"), text);
  g_print (_("  token ID: %s\n"), token->id);
  g_print (_("  expires:  %s\n\n"), expiry);
  g_print (_("Copy the token now: it is shown only this once. Log in with it: save it in a "
             "file readable only by you and run \"canopyctl login --server https://HOST:7444 "
             "--fingerprint SHA256 --token-file FILE\", or paste it in the web console's token "
             "field. Revoke it with \"canopyd admin-revoke %s\".\n"),
           token->id);
  canopy_admins_free_text (g_steal_pointer (&text));
  return CANOPY_EXIT_OK;
}

int
canopy_admin_commands_list (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_auto (Session) session = { 0 };
  g_autoptr (GPtrArray) admins = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  int status = parse ("", _("List the console admins and their tokens' IDs and expiry (never a "
                            "token itself)."),
                      NULL, &config_path, &argc, &argv, 0);

  if (status >= 0 || (status = open_session (&session, config_path)) >= 0)
    return status;
  admins = canopy_admins_list (session.admins);
  if (admins->len == 0)
    {
      g_print (_("No console admin exists; add one with \"canopyd admin-add NAME --role "
                 "administrator\".\n"));
      return CANOPY_EXIT_OK;
    }
  g_print ("%-24s %-14s %-17s %s\n", _("NAME"), _("ROLE"), _("TOKEN ID"), _("EXPIRES"));
  for (guint i = 0; i < admins->len; i++)
    {
      const CanopyAdmin *admin = admins->pdata[i];
      g_autoptr (GPtrArray) tokens = canopy_admins_list_tokens (session.admins, admin->name);

      if (tokens->len == 0)
        g_print ("%-24s %-14s %-17s %s\n", admin->name,
                 canopy_admin_role_to_string (admin->role), "-", "-");
      for (guint t = 0; t < tokens->len; t++)
        {
          const CanopyAdminToken *token = tokens->pdata[t];
          g_autofree char *expiry = token->expires != 0 ? canopy_admins_format_time (token->expires)
                                                        : g_strdup (_("never"));
          g_autofree char *shown = token->expires != 0 && token->expires <= now
                                     ? g_strdup_printf (_("%s (expired)"), expiry)
                                     : g_strdup (expiry);

          g_print ("%-24s %-14s %-17s %s\n", admin->name,
                   canopy_admin_role_to_string (admin->role), token->id, shown);
        }
    }
  return CANOPY_EXIT_OK;
}

int
canopy_admin_commands_revoke (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_auto (Session) session = { 0 };
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) removed = NULL;
  gboolean is_admin;
  int status = parse ("NAME|TOKEN-ID",
                      _("Remove a console admin with every token of theirs, or revoke one "
                        "token. A running canopyd refuses them within seconds."),
                      NULL, &config_path, &argc, &argv, 1);

  if (status >= 0 || (status = open_session (&session, config_path)) >= 0)
    return status;
  is_admin = canopy_admins_lookup (session.admins, argv[1]) != NULL;
  if (!canopy_admins_revoke (session.admins, argv[1], &removed, &error))
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_USAGE;
    }
  if (!canopy_admins_save (session.backend, NULL, NULL, (const char *const *) removed, &error))
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_RUNTIME;
    }
  audit (&session, is_admin ? "admin-removed" : "admin-token-revoked", argv[1]);
  if (is_admin)
    g_print (_("The admin \"%s\" and every token of theirs are removed.\n"), argv[1]);
  else
    g_print (_("The token %s is revoked.\n"), argv[1]);
  if (canopy_admins_count (session.admins) == 0)
    g_print (_("No console admin is left; add one with \"canopyd admin-add NAME --role "
               "administrator\".\n"));
  return CANOPY_EXIT_OK;
}
