/* HTTPS to the console API with libsoup. A pinned fingerprint is checked
 * on every response, not only when the CA check fails, so a certificate
 * a public CA signed cannot stand in for the pinned one. */
#include "build-config.h"

#include "ctl/ctl-client.h"
#include "lib/i18n.h"

#include <libsoup/soup.h>
#include <string.h>

/* libsoup 3.2 has no name for it. */
#define STATUS_TOO_MANY_REQUESTS 429

#define TIMEOUT_S 60

G_DEFINE_QUARK (canopy-ctl-error-quark, ctl_error)

struct _CtlClient {
  SoupSession *session;
  char *url;
  char *authorization;
  char *fingerprint;
  char *presented; /* fingerprint of the last certificate refused */
  JsonNode *error_body;
};

static char *
fingerprint_of (GTlsCertificate *certificate)
{
  g_autoptr (GByteArray) der = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize size = sizeof digest;
  GString *out = g_string_new (NULL);

  g_object_get (certificate, "certificate", &der, NULL);
  g_checksum_update (checksum, der->data, der->len);
  g_checksum_get_digest (checksum, digest, &size);
  for (gsize i = 0; i < size; i++)
    g_string_append_printf (out, "%s%02X", i > 0 ? ":" : "", digest[i]);
  return g_string_free (out, FALSE);
}

static gboolean
on_accept_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                       GTlsCertificateFlags errors, gpointer user_data)
{
  CtlClient *client = user_data;
  g_autofree char *presented = fingerprint_of (certificate);

  if (client->fingerprint != NULL && g_str_equal (presented, client->fingerprint))
    return TRUE;
  g_free (client->presented);
  client->presented = g_steal_pointer (&presented);
  return FALSE;
}

void
ctl_client_free (CtlClient *client)
{
  if (client == NULL)
    return;
  g_clear_object (&client->session);
  g_free (client->url);
  if (client->authorization != NULL)
    memset (client->authorization, 0, strlen (client->authorization));
  g_free (client->authorization);
  g_free (client->fingerprint);
  g_free (client->presented);
  g_clear_pointer (&client->error_body, json_node_unref);
  g_free (client);
}

CtlClient *
ctl_client_new (const CtlProfile *profile, GError **error)
{
  g_autoptr (CtlClient) client = g_new0 (CtlClient, 1);

  if (!g_str_has_prefix (profile->url, "https://"))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   _("The server URL \"%s\" does not start with https://; the console API "
                     "speaks HTTPS only"),
                   profile->url);
      return NULL;
    }
  client->session = soup_session_new_with_options ("timeout", TIMEOUT_S, "user-agent",
                                                   "canopyctl/" PACKAGE_VERSION, NULL);
  if (profile->ca_file != NULL)
    {
      g_autoptr (GTlsDatabase) database = g_tls_file_database_new (profile->ca_file, error);
      if (database == NULL)
        return NULL;
      soup_session_set_tls_database (client->session, database);
    }
  client->url = g_strdup (profile->url);
  while (g_str_has_suffix (client->url, "/"))
    client->url[strlen (client->url) - 1] = '\0';
  client->authorization = g_strconcat ("Bearer ", profile->token, NULL);
  client->fingerprint = g_strdup (profile->fingerprint);
  return g_steal_pointer (&client);
}

static void
set_transport_error (CtlClient *client, const GError *cause, GError **error)
{
  if (client->presented != NULL && client->fingerprint != NULL)
    g_set_error (error, CTL_ERROR, CTL_ERROR_CONNECT,
                 _("The server's certificate (SHA-256 %s) is not the one the profile trusts "
                   "(%s). If the server's certificate was replaced on purpose, log in again "
                   "with its new fingerprint; otherwise something stands between you and the "
                   "server"),
                 client->presented, client->fingerprint);
  else if (client->presented != NULL)
    g_set_error (error, CTL_ERROR, CTL_ERROR_CONNECT,
                 _("The server's certificate (SHA-256 %s) is not trusted; log in with "
                   "--fingerprint (\"canopyd init\" prints it) or --ca-file"),
                 client->presented);
  else
    g_set_error (error, CTL_ERROR, CTL_ERROR_CONNECT,
                 _("Cannot reach the console API at %s: %s. Check the URL, that canopyd runs "
                   "with a <console> element, and the firewall"),
                 client->url, cause->message);
}

/* The server's message, and each problem it lists on a line of its own. */
static char *
describe_refusal (JsonNode *body, guint status)
{
  JsonObject *object = body != NULL && JSON_NODE_HOLDS_OBJECT (body) ? json_node_get_object (body)
                                                                      : NULL;
  const char *message = object != NULL ? json_object_get_string_member_with_default (
                                           object, "message", NULL)
                                       : NULL;
  JsonArray *problems = object != NULL && json_object_has_member (object, "problems")
                          ? json_object_get_array_member (object, "problems")
                          : NULL;
  GString *out = g_string_new (NULL);

  if (message != NULL)
    g_string_append (out, message);
  else
    g_string_append_printf (out, _("The server answered HTTP %u (%s)"), status,
                            soup_status_get_phrase (status));
  for (guint i = 0; problems != NULL && i < json_array_get_length (problems); i++)
    {
      JsonObject *p = json_array_get_object_element (problems, i);
      g_string_append_printf (out, "\n  %s", json_object_get_string_member_with_default (
                                               p, "message", ""));
    }
  return g_string_free (out, FALSE);
}

static int
code_for_status (guint status)
{
  /* A role too low is the same remedy as no token: another admin's token. */
  if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN
      || status == STATUS_TOO_MANY_REQUESTS)
    return CTL_ERROR_AUTH;
  if (status >= 500 || status < 400)
    return CTL_ERROR_SERVER;
  if (status == SOUP_STATUS_NOT_FOUND)
    return CTL_ERROR_NOT_FOUND;
  return CTL_ERROR_FAILED;
}

static gboolean
check_pin (CtlClient *client, SoupMessage *msg, GError **error)
{
  GTlsCertificate *certificate = soup_message_get_tls_peer_certificate (msg);
  g_autofree char *presented = NULL;

  if (client->fingerprint == NULL)
    return TRUE;
  presented = certificate != NULL ? fingerprint_of (certificate) : g_strdup ("?");
  if (g_str_equal (presented, client->fingerprint))
    return TRUE;
  g_free (client->presented);
  client->presented = g_steal_pointer (&presented);
  set_transport_error (client, NULL, error);
  return FALSE;
}

GBytes *
ctl_client_request (CtlClient *client, const char *method, const char *path,
                    const char *content_type, GBytes *body, GError **error)
{
  g_autofree char *uri = g_strconcat (client->url, path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) response = NULL;
  g_autofree char *message = NULL;
  guint status;

  if (msg == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   _("\"%s\" is not a valid server URL; write it as https://HOST:PORT"),
                   client->url);
      return NULL;
    }
  g_clear_pointer (&client->error_body, json_node_unref);
  g_clear_pointer (&client->presented, g_free);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                client->authorization);
  if (body != NULL)
    soup_message_set_request_body_from_bytes (msg, content_type, body);
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_accept_certificate), client);
  response = soup_session_send_and_read (client->session, msg, NULL, &local_error);
  if (response == NULL)
    {
      set_transport_error (client, local_error, error);
      return NULL;
    }
  if (!check_pin (client, msg, error))
    return NULL;
  status = soup_message_get_status (msg);
  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    return g_steal_pointer (&response);
  client->error_body = json_from_string (g_bytes_get_size (response) > 0
                                           ? (const char *) g_bytes_get_data (response, NULL)
                                           : "null",
                                         NULL);
  message = describe_refusal (client->error_body, status);
  g_set_error_literal (error, CTL_ERROR, code_for_status (status), message);
  return NULL;
}

JsonNode *
ctl_client_request_json (CtlClient *client, const char *method, const char *path,
                         JsonNode *body, GError **error)
{
  g_autoptr (GBytes) request = NULL;
  g_autoptr (GBytes) response = NULL;
  g_autofree char *text = NULL;
  JsonNode *node;

  if (body != NULL)
    {
      gsize length;

      text = json_to_string (body, FALSE);
      length = strlen (text);
      request = g_bytes_new_take (g_steal_pointer (&text), length);
    }
  response = ctl_client_request (client, method, path, "application/json", request, error);
  if (response == NULL)
    return NULL;
  text = g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
  node = json_from_string (text, NULL);
  if (node == NULL)
    g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                 _("The server's answer to %s is not JSON; is %s a canopy server?"), path,
                 client->url);
  return node;
}

void
ctl_client_set_timeout (CtlClient *client, guint seconds)
{
  g_object_set (client->session, "timeout", seconds, NULL);
}

JsonNode *
ctl_client_get_error_body (CtlClient *client)
{
  return client->error_body;
}
