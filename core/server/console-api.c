/* The console API's HTTPS server and its route table. Authentication and
 * body limits are checked as soon as the headers are in, so a wrong key
 * or an oversized upload costs the server no memory. */
#include "build-config.h"

#include "server/console-private.h"
#include "server/console-cert.h"
#include "server/setup.h"
#include "lib/i18n.h"

#include <string.h>

/* libsoup 3.2 has no name for it. */
#define STATUS_TOO_MANY_REQUESTS 429

/* The web console's files, compiled in (console-resource.c). */
#define WEB_RESOURCE_PREFIX "/org/canopy/console"
void canopy_console_register_resource (void);
void canopy_console_unregister_resource (void);

G_DEFINE_QUARK (canopy-console-error-quark, canopy_console_error)

typedef struct {
  const char *method;
  const char *path;
  gsize max_body;              /* 0: the request has no body */
  CanopyConsoleHandler handle;
} Route;

/* Every route needs the token. */
static const Route routes[] = {
  { "GET", "/api/v1/server-id", 0, canopy_console_get_server_id },
  { "GET", "/api/v1/settings", 0, canopy_console_get_settings },
  { "PUT", "/api/v1/settings", CANOPY_CONSOLE_JSON_LIMIT, canopy_console_put_settings },
  { "GET", "/api/v1/topology", 0, canopy_console_get_topology },
  { "PUT", "/api/v1/topology", CANOPY_CONSOLE_CSV_LIMIT, canopy_console_put_topology },
  { "POST", "/api/v1/topology", CANOPY_CONSOLE_CSV_LIMIT, canopy_console_put_topology },
  { "GET", "/api/v1/health", 0, canopy_console_get_health },
  { "GET", "/api/v1/devices", 0, canopy_console_get_devices },
  { "GET", "/api/v1/offices", 0, canopy_console_get_offices },
  { "GET", "/api/v1/licences/report.csv", 0, canopy_console_get_licence_report },
  { "GET", "/api/v1/content", 0, canopy_console_get_content },
  { "POST", "/api/v1/content", CANOPY_CONSOLE_JSON_LIMIT, canopy_console_post_content },
  { "DELETE", "/api/v1/content", 0, canopy_console_delete_content },
  { "POST", "/api/v1/publish", 0, canopy_console_post_publish },
  { "GET", "/api/v1/content-store", 0, canopy_console_get_content_store },
  { "GET", "/api/v1/deployments", 0, canopy_console_get_deployments },
  { "POST", "/api/v1/deployments", CANOPY_CONSOLE_JSON_LIMIT, canopy_console_post_deployments },
  { "DELETE", "/api/v1/deployments", 0, canopy_console_delete_deployments },
  { "POST", "/api/v1/deployments/cancel", 0, canopy_console_cancel_deployment },
  { "GET", "/metrics", 0, canopy_console_get_metrics },
};

static gboolean
is_protected (const char *path)
{
  return g_str_has_prefix (path, "/api/") || g_str_equal (path, "/metrics");
}

static const Route *
find_route (const char *method, const char *path, gboolean *path_known)
{
  *path_known = FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (g_str_equal (routes[i].path, path))
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
    if (g_str_equal (routes[i].path, path))
      g_string_append_printf (allow, "%s%s", allow->len > 0 ? ", " : "", routes[i].method);
  return g_string_free (g_steal_pointer (&allow), FALSE);
}

char *
canopy_console_actor (SoupServerMessage *msg)
{
  const char *host = soup_server_message_get_remote_host (msg);

  return g_strdup_printf ("console API from %s", host != NULL ? host : "?");
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

static gboolean
check_auth (CanopyConsole *console, SoupServerMessage *msg)
{
  const char *host = soup_server_message_get_remote_host (msg);
  const char *authorization = soup_message_headers_get_one (
    soup_server_message_get_request_headers (msg), "Authorization");
  guint retry_after = 0;
  g_autofree char *seconds = NULL;

  switch (canopy_console_auth_check (console->auth, host != NULL ? host : "?", authorization,
                                     g_get_monotonic_time (), &retry_after))
    {
    case CANOPY_CONSOLE_AUTH_OK:
      return TRUE;
    case CANOPY_CONSOLE_AUTH_MISSING:
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "WWW-Authenticate", "Bearer realm=\"canopy\"");
      canopy_console_respond_error (msg, SOUP_STATUS_UNAUTHORIZED, "unauthenticated",
                                    _("This request carries no key. Log in with the shared key "
                                      "(\"canopyctl login\", or the key field of the web "
                                      "console); scripts send \"Authorization: Bearer TOKEN\""));
      break;
    case CANOPY_CONSOLE_AUTH_MISMATCH:
      g_message (_("The console API refused a request from %s: its key does not match this "
                   "server's shared key"), host);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "WWW-Authenticate",
                                    "Bearer realm=\"canopy\", error=\"invalid_token\"");
      canopy_console_respond_error (msg, SOUP_STATUS_UNAUTHORIZED, "key-mismatch",
                                    _("Key mismatch: the key entered does not match this "
                                      "server's shared key. Enter the most recent key the "
                                      "installer printed; if the key was regenerated "
                                      "(\"canopyd init --regenerate-key\"), use the new one"));
      break;
    case CANOPY_CONSOLE_AUTH_LOCKED:
      seconds = g_strdup_printf ("%u", retry_after);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", seconds);
      {
        g_autofree char *text = g_strdup_printf (
          _("Too many wrong keys from this address; wait %u seconds, then try again with the "
            "current shared key"),
          retry_after);
        canopy_console_respond_error (msg, STATUS_TOO_MANY_REQUESTS, "rate-limited", text);
      }
      break;
    }
  refuse_body (msg);
  return FALSE;
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
  if (is_protected (path) && !check_auth (console, msg))
    return;
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
on_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  CanopyConsole *console = user_data;
  gboolean path_known;
  const char *method = soup_server_message_get_method (msg);
  const Route *route = find_route (method, path, &path_known);

  if (route != NULL)
    route->handle (console, msg);
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

static gboolean
listen_console (CanopyConsole *console, const CanopyServerConfig *config, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gboolean ok;

  if (config->console_address == NULL)
    ok = soup_server_listen_all (console->soup, (guint) config->console_port,
                                 SOUP_SERVER_LISTEN_HTTPS, &local_error);
  else
    {
      g_autoptr (GSocketAddress) address = g_inet_socket_address_new_from_string (
        config->console_address, (guint) config->console_port);
      ok = soup_server_listen (console->soup, address, SOUP_SERVER_LISTEN_HTTPS, &local_error);
    }
  if (!ok)
    g_set_error (error, CANOPY_CONSOLE_ERROR, CANOPY_CONSOLE_ERROR_LISTEN,
                 _("The console API cannot listen on %s port %u: %s. Choose another port in "
                   "<console port>, or stop what uses it"),
                 config->console_address != NULL ? config->console_address : _("every address"),
                 (guint) config->console_port, local_error->message);
  return ok;
}

static void
log_listening (CanopyConsole *console)
{
  GSList *uris = soup_server_get_uris (console->soup);

  for (GSList *u = uris; u != NULL; u = u->next)
    {
      g_autofree char *text = g_uri_to_string (u->data);
      g_message (_("Console API listening on %s (web console at %sconsole/)"), text, text);
    }
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
}

CanopyConsole *
canopy_console_new (CanopyServer *server, const CanopySharedKey *key, GError **error)
{
  const CanopyServerConfig *config = canopy_server_get_config (server);
  g_autoptr (CanopyConsole) console = g_new0 (CanopyConsole, 1);
  g_autoptr (GTlsCertificate) certificate = load_certificate (config, error);

  if (certificate == NULL)
    return NULL;
  canopy_console_register_resource ();
  console->server = server;
  console->cancellable = g_cancellable_new ();
  console->key_path = g_build_filename (config->state_directory, CANOPY_SETUP_SHARED_KEY_FILE,
                                        NULL);
  console->auth = canopy_console_auth_new (key, error);
  if (console->auth == NULL)
    return NULL;
  console->soup = soup_server_new ("tls-certificate", certificate, "server-header",
                                   "canopyd/" PACKAGE_VERSION, NULL);
  console->close_connections = soup_leaks_idle_connections ();
  soup_server_add_early_handler (console->soup, NULL, on_early, console, NULL);
  soup_server_add_handler (console->soup, NULL, on_request, console, NULL);
  if (!listen_console (console, config, error))
    return NULL;
  log_listening (console);
  return g_steal_pointer (&console);
}

void
canopy_console_free (CanopyConsole *console)
{
  if (console == NULL)
    return;
  if (console->server != NULL)
    canopy_console_unregister_resource ();
  if (console->cancellable != NULL)
    g_cancellable_cancel (console->cancellable);
  /* A health check in a worker thread uses the store, which the server
   * frees next: let it finish (one database round trip). */
  while (console->probes > 0)
    g_main_context_iteration (NULL, TRUE);
  if (console->soup != NULL)
    {
      soup_server_disconnect (console->soup);
      g_object_unref (console->soup);
    }
  g_clear_object (&console->cancellable);
  canopy_console_auth_free (console->auth);
  g_free (console->key_path);
  g_free (console);
}
