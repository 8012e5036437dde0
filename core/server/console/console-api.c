/* The console API's HTTPS server and its route table, each route with the
 * least admin role it needs. Tokens and body limits are checked as soon as
 * the headers are in, so a wrong token or an oversized upload costs the
 * server no memory; a token not known yet waits, its body within the
 * limit, for the admins to be read again from the database. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-api"

#include "server/console/console-private.h"
#include "server/console/console-cert.h"
#include "server/console/console-listener.h"
#include "server/setup.h"
#include "lib/i18n.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <string.h>

/* libsoup 3.2 has no name for it. */
#define STATUS_TOO_MANY_REQUESTS 429

/* The web console's files, compiled in (console-resource.c). */
#define WEB_RESOURCE_PREFIX "/org/canopy/console"
void canopy_console_register_resource (void);
void canopy_console_unregister_resource (void);

G_DEFINE_QUARK (canopy-console-error-quark, canopy_console_error)

/* How long the admins read from the database are trusted before a request
 * makes canopyd read them again: what "canopyd admin-revoke" does while
 * canopyd runs takes effect within this time. */
#define ADMINS_FRESH_S 5
/* Requests waiting for the admins to be read again, at most. */
#define MAX_WAITING 256
/* Reads of the admins are at least this far apart (µs): unknown tokens,
 * a guesser's included, wait for the next read rather than cause one. */
#define MIN_READ_INTERVAL (G_USEC_PER_SEC / 2)

#define AUDITOR CANOPY_ADMIN_ROLE_AUDITOR
#define OPERATOR CANOPY_ADMIN_ROLE_OPERATOR
#define ADMINISTRATOR CANOPY_ADMIN_ROLE_ADMINISTRATOR

typedef struct {
  const char *method;
  const char *path;            /* ending in "/": every path below it */
  gsize max_body;              /* 0: the request has no body */
  CanopyAdminRole role;        /* the least role that may call it */
  CanopyConsoleHandler handle;
} Route;

/* Every route needs an admin's token; every GET is open to auditors. */
static const Route routes[] = {
  { "GET", "/api/v1/server-id", 0, AUDITOR, canopy_console_get_server_id },
  { "GET", "/api/v1/whoami", 0, AUDITOR, canopy_console_get_whoami },
  { "GET", "/api/v1/settings", 0, AUDITOR, canopy_console_get_settings },
  { "PUT", "/api/v1/settings", CANOPY_CONSOLE_JSON_LIMIT, ADMINISTRATOR,
    canopy_console_put_settings },
  { "GET", "/api/v1/topology", 0, AUDITOR, canopy_console_get_topology },
  { "PUT", "/api/v1/topology", CANOPY_CONSOLE_CSV_LIMIT, ADMINISTRATOR,
    canopy_console_put_topology },
  { "POST", "/api/v1/topology", CANOPY_CONSOLE_CSV_LIMIT, ADMINISTRATOR,
    canopy_console_put_topology },
  { "GET", "/api/v1/health", 0, AUDITOR, canopy_console_get_health },
  { "GET", "/api/v1/devices", 0, AUDITOR, canopy_console_get_devices },
  { "GET", "/api/v1/offices", 0, AUDITOR, canopy_console_get_offices },
  { "GET", "/api/v1/licences/report.csv", 0, AUDITOR, canopy_console_get_licence_report },
  { "GET", "/api/v1/content", 0, AUDITOR, canopy_console_get_content },
  { "POST", "/api/v1/content", CANOPY_CONSOLE_JSON_LIMIT, OPERATOR,
    canopy_console_post_content },
  { "DELETE", "/api/v1/content", 0, OPERATOR, canopy_console_delete_content },
  { "POST", "/api/v1/content/expiry", CANOPY_CONSOLE_JSON_LIMIT, OPERATOR,
    canopy_console_post_content_expiry },
  { "POST", "/api/v1/publish", 0, OPERATOR, canopy_console_post_publish },
  { "GET", "/api/v1/content-store", 0, AUDITOR, canopy_console_get_content_store },
  { "GET", "/api/v1/deployments", 0, AUDITOR, canopy_console_get_deployments },
  { "POST", "/api/v1/deployments", CANOPY_CONSOLE_JSON_LIMIT, OPERATOR,
    canopy_console_post_deployments },
  { "DELETE", "/api/v1/deployments", 0, OPERATOR, canopy_console_delete_deployments },
  { "POST", "/api/v1/deployments/cancel", 0, OPERATOR, canopy_console_cancel_deployment },
  { "POST", "/api/v1/deployments/retire", 0, OPERATOR, canopy_console_retire_deployment },
  { "GET", "/api/v1/deployments/", 0, AUDITOR, canopy_console_get_deployment_devices },
  { "GET", "/api/v1/audit", 0, AUDITOR, canopy_console_get_audit },
  { "GET", "/api/v1/admins", 0, AUDITOR, canopy_console_get_admins },
  { "POST", "/api/v1/admins", CANOPY_CONSOLE_JSON_LIMIT, ADMINISTRATOR,
    canopy_console_post_admins },
  { "POST", "/api/v1/admins/", CANOPY_CONSOLE_JSON_LIMIT, ADMINISTRATOR,
    canopy_console_post_admin_tokens },
  { "DELETE", "/api/v1/admins/", 0, ADMINISTRATOR, canopy_console_delete_admin },
  { "GET", "/metrics", 0, AUDITOR, canopy_console_get_metrics },
};

static gboolean
is_protected (const char *path)
{
  return g_str_has_prefix (path, "/api/") || g_str_equal (path, "/metrics");
}

static gboolean
route_matches (const Route *route, const char *path)
{
  if (g_str_has_suffix (route->path, "/"))
    return g_str_has_prefix (path, route->path) && strlen (path) > strlen (route->path);
  return g_str_equal (route->path, path);
}

static const Route *
find_route (const char *method, const char *path, gboolean *path_known)
{
  *path_known = FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (route_matches (&routes[i], path))
      {
        *path_known = TRUE;
        if (g_str_equal (routes[i].method, method))
          return &routes[i];
      }
  return NULL;
}

static char *
allowed_methods (const char *path)
{
  g_autoptr (GString) allow = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (route_matches (&routes[i], path))
      g_string_append_printf (allow, "%s%s", allow->len > 0 ? ", " : "", routes[i].method);
  return g_string_free (g_steal_pointer (&allow), FALSE);
}

void
canopy_console_routes_foreach (void (*func) (const char *method, const char *path,
                                             CanopyAdminRole role, gpointer user_data),
                               gpointer user_data)
{
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    func (routes[i].method, routes[i].path, routes[i].role, user_data);
}

/* Who is calling, kept on the message once the token is checked. */
#define CALLER_KEY "canopy-console-caller"
#define DEFERRED_KEY "canopy-console-deferred"

static void
caller_free (CanopyConsoleCaller *caller)
{
  g_free (caller->name);
  g_free (caller->token_id);
  g_free (caller);
}

const CanopyConsoleCaller *
canopy_console_get_caller (SoupServerMessage *msg)
{
  return g_object_get_data (G_OBJECT (msg), CALLER_KEY);
}

char *
canopy_console_actor (SoupServerMessage *msg)
{
  const char *host = soup_server_message_get_remote_host (msg);
  const CanopyConsoleCaller *caller = canopy_console_get_caller (msg);

  if (caller == NULL)
    return g_strdup_printf ("console API from %s", host != NULL ? host : "?");
  return g_strdup_printf ("admin %s (%s) from %s", caller->name,
                          canopy_admin_role_to_string (caller->role), host != NULL ? host : "?");
}

/* The body of a refused request is read and thrown away, never kept. */
static void
refuse_body (SoupServerMessage *msg)
{
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                "close");
}

static void
respond_too_large (SoupServerMessage *msg, gsize limit)
{
  g_autofree char *size = g_format_size (limit);
  g_autofree char *text = g_strdup_printf (_("The request body is larger than %s, the most this "
                                             "request takes; send less (split the topology "
                                             "spreadsheet, or leave out what does not change)"),
                                           size);

  refuse_body (msg);
  canopy_console_respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too-large", text);
}

static void
on_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
  gsize limit = GPOINTER_TO_SIZE (user_data);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  if (soup_server_message_get_status (msg) == 0 && body->length > (goffset) limit)
    {
      soup_message_body_truncate (body);
      respond_too_large (msg, limit);
    }
}

typedef enum {
  AUTH_PASSED,
  AUTH_DEFERRED, /* decided once the admins are read again */
  AUTH_REFUSED,  /* the response is set */
} AuthOutcome;

static void
respond_unauthorized (SoupServerMessage *msg, const char *error, const char *code,
                      const char *text)
{
  g_autofree char *challenge = error != NULL
                                 ? g_strdup_printf ("Bearer realm=\"canopy\", error=\"%s\"", error)
                                 : g_strdup ("Bearer realm=\"canopy\"");

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "WWW-Authenticate", challenge);
  canopy_console_respond_error (msg, SOUP_STATUS_UNAUTHORIZED, code, text);
}

static void
respond_expired (SoupServerMessage *msg, const CanopyAdminToken *token)
{
  g_autofree char *date = canopy_admins_format_time (token->expires);
  g_autofree char *text = g_strdup_printf (
    _("This token expired on %s; ask an administrator for a new one (\"canopyd admin-add %s "
      "--role ROLE\" on the server, or \"canopyctl admin-add %s --role ROLE\"), then log in "
      "with it"),
    date, token->admin, token->admin);

  respond_unauthorized (msg, "invalid_token", "token-expired", text);
}

static void
respond_locked (SoupServerMessage *msg, guint retry_after)
{
  g_autofree char *seconds = g_strdup_printf ("%u", retry_after);
  g_autofree char *text = g_strdup_printf (
    g_dngettext (GETTEXT_PACKAGE,
                 "Too many wrong tokens from this address; wait %u second, then try again "
                 "with an admin's token",
                 "Too many wrong tokens from this address; wait %u seconds, then try again "
                 "with an admin's token",
                 retry_after),
    retry_after);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                seconds);
  canopy_console_respond_error (msg, STATUS_TOO_MANY_REQUESTS, "rate-limited", text);
}

static gboolean
admins_are_fresh (CanopyConsole *console)
{
  return console->admins_read_at != 0
         && g_get_monotonic_time () - console->admins_read_at < ADMINS_FRESH_S * G_USEC_PER_SEC;
}

/* The caller's token, then the route's role. With @final the admins were
 * just read again, so nothing is deferred. */
static AuthOutcome
check_auth (CanopyConsole *console, SoupServerMessage *msg, const Route *route, gboolean final)
{
  const char *host = soup_server_message_get_remote_host (msg);
  const char *authorization = soup_message_headers_get_one (
    soup_server_message_get_request_headers (msg), "Authorization");
  const CanopyAdminToken *token = NULL;
  const CanopyAdmin *admin;
  CanopyConsoleCaller *caller;
  guint retry_after = 0;
  CanopyConsoleAuthResult result;

  result = canopy_console_auth_check (console->auth, host != NULL ? host : "?", authorization,
                                      final, g_get_monotonic_time (),
                                      g_get_real_time () / G_USEC_PER_SEC, &token, &retry_after);
  /* A token known but read a while ago may have been revoked since. */
  if ((result == CANOPY_CONSOLE_AUTH_UNKNOWN || result == CANOPY_CONSOLE_AUTH_OK) && !final
      && (result == CANOPY_CONSOLE_AUTH_UNKNOWN || !admins_are_fresh (console)))
    return AUTH_DEFERRED;
  switch (result)
    {
    case CANOPY_CONSOLE_AUTH_OK:
      break;
    case CANOPY_CONSOLE_AUTH_MISSING:
      respond_unauthorized (msg, NULL, "unauthenticated",
                            _("This request carries no token. Log in with an admin's token "
                              "(\"canopyctl login\", or the token field of the web console); "
                              "scripts send \"Authorization: Bearer TOKEN\". An administrator "
                              "makes tokens with \"canopyd admin-add NAME --role ROLE\""));
      return AUTH_REFUSED;
    case CANOPY_CONSOLE_AUTH_UNKNOWN:
    case CANOPY_CONSOLE_AUTH_INVALID:
      g_message (_("The console API refused a request from %s: its token is not one of this "
                   "server's admins' tokens, or was revoked"), host != NULL ? host : "?");
      respond_unauthorized (msg, "invalid_token", "invalid-token",
                            _("This token is not valid here: it was revoked, mistyped, or made "
                              "for another server. The shared key is no longer accepted. Ask an "
                              "administrator for a token (\"canopyd admin-add NAME --role "
                              "ROLE\") and log in with it"));
      return AUTH_REFUSED;
    case CANOPY_CONSOLE_AUTH_EXPIRED:
      respond_expired (msg, token);
      return AUTH_REFUSED;
    case CANOPY_CONSOLE_AUTH_LOCKED:
      respond_locked (msg, retry_after);
      return AUTH_REFUSED;
    }
  admin = canopy_admins_lookup (canopy_console_auth_get_admins (console->auth), token->admin);
  caller = g_new0 (CanopyConsoleCaller, 1);
  caller->name = g_strdup (admin->name);
  caller->role = admin->role;
  caller->token_id = g_strdup (token->id);
  g_object_set_data_full (G_OBJECT (msg), CALLER_KEY, caller, (GDestroyNotify) caller_free);
  if (route != NULL && admin->role < route->role)
    {
      g_autofree char *text = g_strdup_printf (
        _("The admin \"%s\" has the role %s; %s %s needs the role %s or higher. Ask an "
          "administrator to do it, or for a token of that role"),
        admin->name, canopy_admin_role_to_string (admin->role), route->method, route->path,
        canopy_admin_role_to_string (route->role));
      canopy_console_respond_error (msg, SOUP_STATUS_FORBIDDEN, "forbidden", text);
      return AUTH_REFUSED;
    }
  return AUTH_PASSED;
}

static void
count_response (SoupServerMessage *msg, gpointer user_data)
{
  CanopyConsole *console = user_data;
  guint status = soup_server_message_get_status (msg);

  if (status >= 100 && status < 600)
    console->responses[status / 100]++;
}

/* After the headers: the token, then the size of the body to come. */
static void
on_early (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
          gpointer user_data)
{
  CanopyConsole *console = user_data;
  gboolean path_known;
  const Route *route = find_route (soup_server_message_get_method (msg), path, &path_known);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  gsize limit = route != NULL && route->max_body > 0 ? route->max_body : CANOPY_CONSOLE_JSON_LIMIT;
  goffset length = soup_message_headers_get_content_length (headers);

  g_signal_connect (msg, "finished", G_CALLBACK (count_response), console);
  if (console->close_connections)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                  "close");
  if (is_protected (path))
    switch (check_auth (console, msg, route, FALSE))
      {
      case AUTH_PASSED:
        break;
      case AUTH_DEFERRED:
        /* The body is read within its limit, then the request waits. */
        g_object_set_data (G_OBJECT (msg), DEFERRED_KEY, GINT_TO_POINTER (TRUE));
        break;
      case AUTH_REFUSED:
        refuse_body (msg);
        return;
      }
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH
      && length > (goffset) limit)
    {
      respond_too_large (msg, limit);
      return;
    }
  g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), GSIZE_TO_POINTER (limit));
}

static const char *
content_type_of (const char *name)
{
  if (g_str_has_suffix (name, ".js"))
    return "text/javascript; charset=utf-8";
  if (g_str_has_suffix (name, ".css"))
    return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

/* The web console: static files, served without the token because they
 * hold no data; every value they show comes through the API. */
static void
serve_web (SoupServerMessage *msg, const char *path)
{
  const char *name = g_str_equal (path, "/console/") ? "index.html" : path + strlen ("/console/");
  g_autofree char *resource = g_strconcat (WEB_RESOURCE_PREFIX "/", name, NULL);
  g_autoptr (GBytes) bytes = NULL;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (strchr (name, '/') == NULL)
    bytes = g_resources_lookup_data (resource, G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  if (bytes == NULL)
    {
      canopy_console_respond_text (msg, SOUP_STATUS_NOT_FOUND, "text/plain; charset=utf-8",
                                   _("No such page; the web console is at /console/\n"));
      return;
    }
  soup_message_headers_replace (headers, "Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'; form-action 'self'");
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (headers, "Referrer-Policy", "no-referrer");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, content_type_of (name), SOUP_MEMORY_COPY,
                                    g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
serve_unprotected (SoupServerMessage *msg, const char *path)
{
  const char *method = soup_server_message_get_method (msg);

  if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD"))
    canopy_console_respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                                  _("Only GET reads this address"));
  else if (g_str_equal (path, "/livez"))
    canopy_console_respond_text (msg, SOUP_STATUS_OK, "text/plain; charset=utf-8", "alive\n");
  else if (g_str_equal (path, "/") || g_str_equal (path, "/console"))
    soup_server_message_set_redirect (msg, SOUP_STATUS_MOVED_PERMANENTLY, "/console/");
  else if (g_str_has_prefix (path, "/console/"))
    serve_web (msg, path);
  else
    canopy_console_respond_text (msg, SOUP_STATUS_NOT_FOUND, "text/plain; charset=utf-8",
                                 _("No such page; the web console is at /console/\n"));
}

static void
on_saved (gpointer user_data)
{
  soup_server_message_unpause (user_data);
}

void
canopy_console_respond_when_saved (CanopyConsole *console, SoupServerMessage *msg)
{
  canopy_store_sync (console->context.store, on_saved, g_object_ref (msg), g_object_unref);
}

/* A change is answered once it is durable: an admin told "201 Created"
 * must find the deployment after canopyd crashed a moment later. Handlers
 * that answered at once are held here; those that work in the background
 * call canopy_console_respond_when_saved() themselves. */
static void
hold_until_saved (CanopyConsole *console, SoupServerMessage *msg)
{
  guint status = soup_server_message_get_status (msg);

  if (g_str_equal (soup_server_message_get_method (msg), "GET") || status < 200 || status >= 300)
    return;
  soup_server_message_pause (msg);
  canopy_console_respond_when_saved (console, msg);
}

static void
dispatch (CanopyConsole *console, SoupServerMessage *msg, const char *path)
{
  gboolean path_known;
  const char *method = soup_server_message_get_method (msg);
  const Route *route = find_route (method, path, &path_known);

  if (route != NULL)
    {
      route->handle (console, msg);
      hold_until_saved (console, msg);
    }
  else if (path_known)
    {
      g_autofree char *allow = allowed_methods (path);
      g_autofree char *text = g_strdup_printf (_("%s does not take %s; use %s"), path, method,
                                               allow);

      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    allow);
      canopy_console_respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                                    text);
    }
  else if (is_protected (path))
    {
      g_autofree char *text = g_strdup_printf (_("There is no %s in this server's console API; "
                                                 "see the list of endpoints in README.md"),
                                               path);
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", text);
    }
  else
    serve_unprotected (msg, path);
}

/* The requests that waited for the admins to be read again go on. */
static void
resume_waiting (CanopyConsole *console)
{
  g_autoptr (GPtrArray) waiting = g_steal_pointer (&console->waiting);

  console->waiting = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < waiting->len; i++)
    {
      SoupServerMessage *msg = waiting->pdata[i];
      const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
      gboolean path_known;
      const Route *route = find_route (soup_server_message_get_method (msg), path, &path_known);

      soup_server_message_unpause (msg);
      if (check_auth (console, msg, route, TRUE) == AUTH_PASSED)
        dispatch (console, msg, path);
    }
}

static void
on_admins_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyConsole *console = user_data;
  g_autoptr (GError) error = NULL;
  CanopyAdmins *admins = canopy_console_admins_job_finish (console, result, &error);

  console->reading_admins = FALSE;
  if (g_cancellable_is_cancelled (console->cancellable))
    {
      canopy_admins_free (admins);
      return;
    }
  if (admins == NULL)
    g_warning (_("Cannot read the console admins from the database (%s); the ones read before "
                 "stay in force"), error->message);
  else
    canopy_console_set_admins (console, admins);
  /* Even after a failure: the next request retries, not this one. */
  console->admins_read_at = g_get_monotonic_time ();
  resume_waiting (console);
}

static gboolean
start_read (gpointer user_data)
{
  CanopyConsole *console = user_data;

  console->read_timer = 0;
  canopy_console_admins_job_start (console, on_admins_read, console);
  return G_SOURCE_REMOVE;
}

static void
on_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  CanopyConsole *console = user_data;

  if (g_object_get_data (G_OBJECT (msg), DEFERRED_KEY) == NULL)
    {
      dispatch (console, msg, path);
      return;
    }
  if (console->waiting->len >= MAX_WAITING)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "busy",
                                    _("Too many requests are waiting for the admins to be read "
                                      "from the database; try again in a few seconds"));
      return;
    }
  soup_server_message_pause (msg);
  g_ptr_array_add (console->waiting, g_object_ref (msg));
  if (!console->reading_admins)
    {
      gint64 wait = console->admins_read_at + MIN_READ_INTERVAL - g_get_monotonic_time ();

      console->reading_admins = TRUE;
      if (wait > 0)
        console->read_timer = g_timeout_add ((guint) (wait / 1000) + 1, start_read, console);
      else
        start_read (console);
    }
}

void
canopy_console_admins_changed (CanopyConsole *console)
{
  console->admins_read_at = 0;
}

void
canopy_console_set_admins (CanopyConsole *console, CanopyAdmins *admins)
{
  canopy_console_auth_set_admins (console->auth, admins);
  console->admins_read_at = g_get_monotonic_time ();
}

/* libsoup before 3.3.0 never notices that a client closed a kept-alive
 * connection while it was idle (fixed by libsoup commit d20c6601): each
 * one stays in CLOSE_WAIT for good, with its descriptor and TLS session,
 * so every canopyctl command cost the server a descriptor. With those
 * versions every response closes its connection instead. */
static gboolean
soup_leaks_idle_connections (void)
{
  guint major = soup_get_major_version (), minor = soup_get_minor_version ();

  return major < 3 || (major == 3 && minor < 3);
}

static GTlsCertificate *
load_certificate (const CanopyServerConfig *config, GError **error)
{
  g_autofree char *cert = config->console_certificate != NULL
                            ? g_strdup (config->console_certificate)
                            : g_build_filename (config->state_directory,
                                                CANOPY_CONSOLE_CERT_FILE, NULL);
  g_autofree char *key = config->console_key != NULL
                           ? g_strdup (config->console_key)
                           : g_build_filename (config->state_directory, CANOPY_CONSOLE_KEY_FILE,
                                               NULL);
  g_autoptr (GError) local_error = NULL;
  GTlsCertificate *certificate;

  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_set_error (error, CANOPY_CONSOLE_ERROR, CANOPY_CONSOLE_ERROR_CERTIFICATE,
                   _("The console API needs TLS and GLib has no TLS backend; install "
                     "glib-networking"));
      return NULL;
    }
  certificate = g_tls_certificate_new_from_files (cert, key, &local_error);
  if (certificate == NULL)
    g_set_error (error, CANOPY_CONSOLE_ERROR, CANOPY_CONSOLE_ERROR_CERTIFICATE,
                 _("Cannot use the console certificate %s with its key %s: %s. Run \"canopyd "
                   "init\" to make one, or name your own in <console certificate key>"),
                 cert, key, local_error->message);
  return certificate;
}

/* The console accepts its connections itself (console-listener.c), so
 * a client that never finishes its TLS handshake or its request holds
 * nothing for long, and a flood from one address cannot fill the rest. */
static gboolean
listen_console (CanopyConsole *console, const CanopyServerConfig *config,
                GTlsCertificate *certificate, GError **error)
{
  CanopyConsoleLimits limits = {
    .handshake_timeout = (guint) config->console_handshake_timeout,
    .idle_timeout = (guint) config->console_idle_timeout,
    .max_per_address = (guint) config->console_max_per_address,
    .max_connections = (guint) config->console_max_connections,
  };
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) uris = NULL;

  console->listener = canopy_console_listener_new (console->soup, certificate, &limits);
  if (!canopy_console_listener_listen (console->listener, config->console_address,
                                       (guint) config->console_port, &uris, &local_error))
    {
      g_set_error (error, CANOPY_CONSOLE_ERROR, CANOPY_CONSOLE_ERROR_LISTEN,
                   _("The console API cannot listen on %s port %u: %s. Choose another port in "
                     "<console port>, or stop what uses it"),
                   config->console_address != NULL ? config->console_address
                                                   : _("every address"),
                   (guint) config->console_port, local_error->message);
      return FALSE;
    }
  for (gsize i = 0; uris[i] != NULL; i++)
    g_message (_("Console API listening on %s (web console at %sconsole/)"), uris[i], uris[i]);
  return TRUE;
}

const CanopyServerConfig *
canopy_console_config (CanopyConsole *console)
{
  return console->context.get_config (console->context.owner);
}

const CanopySettings *
canopy_console_settings (CanopyConsole *console)
{
  return console->context.get_settings (console->context.owner);
}

const CanopyTopology *
canopy_console_topology (CanopyConsole *console)
{
  return console->context.get_topology (console->context.owner);
}

CanopyConsole *
canopy_console_new (const CanopyConsoleContext *context, const CanopySharedKey *key,
                    GError **error)
{
  const CanopyServerConfig *config = context->get_config (context->owner);
  g_autoptr (CanopyConsole) console = g_new0 (CanopyConsole, 1);
  g_autoptr (GTlsCertificate) certificate = load_certificate (config, error);
  g_autoptr (CanopyAdmins) admins = NULL;

  if (certificate == NULL)
    return NULL;
  canopy_console_register_resource ();
  console->registered = TRUE;
  console->context = *context;
  console->cancellable = g_cancellable_new ();
  console->key_path = g_build_filename (config->state_directory, CANOPY_SETUP_SHARED_KEY_FILE,
                                        NULL);
  console->waiting = g_ptr_array_new_with_free_func (g_object_unref);
  admins = canopy_admins_new ();
  if (!canopy_store_list (context->store, CANOPY_RECORD_ADMIN, canopy_admins_load_admin, admins,
                          error)
      || !canopy_store_list (context->store, CANOPY_RECORD_ADMIN_TOKEN, canopy_admins_load_token,
                             admins, error))
    return NULL;
  if (canopy_admins_count (admins) == 0)
    g_message (_("No console admin exists yet, so nobody can use the console API or the web "
                 "console. Create the first one on this server with \"canopyd admin-add NAME "
                 "--role administrator\"; it prints the token to log in with. The shared key "
                 "no longer opens the console"));
  console->auth = canopy_console_auth_new (g_steal_pointer (&admins));
  console->admins_read_at = g_get_monotonic_time ();
  gnutls_hash_fast (GNUTLS_DIG_SHA256, key->bytes, sizeof key->bytes, console->key_digest);
  console->soup = soup_server_new ("tls-certificate", certificate, "server-header",
                                   "canopyd/" PACKAGE_VERSION, NULL);
  console->close_connections = soup_leaks_idle_connections ();
  soup_server_add_early_handler (console->soup, NULL, on_early, console, NULL);
  soup_server_add_handler (console->soup, NULL, on_request, console, NULL);
  if (!listen_console (console, config, certificate, error))
    return NULL;
  return g_steal_pointer (&console);
}

gboolean
canopy_console_drain (CanopyConsole *console)
{
  /* Requests waiting on a worker are answered no more: the server stops. */
  g_cancellable_cancel (console->cancellable);
  return console->probes == 0;
}

void
canopy_console_free (CanopyConsole *console)
{
  if (console == NULL)
    return;
  /* A worker thread uses the store, which the server frees next: the
   * service's drain (canopy_server_drain()) waited for every one of them
   * on the main loop. Leaking is better than freeing under a thread. */
  g_return_if_fail (console->probes == 0);
  if (console->registered)
    canopy_console_unregister_resource ();
  if (console->read_timer != 0)
    g_source_remove (console->read_timer);
  if (console->cancellable != NULL)
    g_cancellable_cancel (console->cancellable);
  g_clear_pointer (&console->listener, canopy_console_listener_free);
  if (console->soup != NULL)
    {
      soup_server_disconnect (console->soup);
      g_object_unref (console->soup);
    }
  g_clear_object (&console->cancellable);
  canopy_console_auth_free (console->auth);
  g_clear_pointer (&console->waiting, g_ptr_array_unref);
  g_free (console->key_path);
  g_free (console);
}
