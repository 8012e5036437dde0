/* canopyctl's side of the console API: HTTPS requests with the profile's
 * token, the server certificate pinned or checked against a CA, and the
 * server's JSON errors turned into GErrors whose code is the exit status. */
#pragma once

#include <json-glib/json-glib.h>
#include "ctl/ctl-profile.h"

G_BEGIN_DECLS

#define CTL_ERROR (ctl_error_quark ())
GQuark ctl_error_quark (void);

/* The codes are canopyctl's exit statuses, documented in docs/commands.md;
 * each remedy has its own, so scripts can tell them apart. */
typedef enum {
  CTL_ERROR_FAILED = 1,        /* the server refused the request (bad input, conflict) */
  CTL_ERROR_USAGE = 2,         /* wrong command line */
  CTL_ERROR_CONNECT = 3,       /* cannot reach or trust the server */
  CTL_ERROR_AUTH = 4,          /* token wrong, expired or revoked, role too low, rate-limited */
  CTL_ERROR_SERVER = 5,        /* the server failed (5xx) or answered nonsense */
  CTL_ERROR_TIMEOUT = 6,       /* deployment-wait gave up before every device was done */
  CTL_ERROR_NOT_FOUND = 7,     /* no such ID or name (HTTP 404, or nothing it names) */
  CTL_ERROR_NOT_LOGGED_IN = 8, /* no connection profile, or one without a token */
  CTL_ERROR_NO_MATCH = 9,      /* a filter matched nothing, as grep's 1 */
} CtlError;

typedef struct _CtlClient CtlClient;

CtlClient *ctl_client_new (const CtlProfile *profile, GError **error);
void ctl_client_free (CtlClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlClient, ctl_client_free)

/**
 * ctl_client_request:
 * @body: (nullable): the request body
 * @content_type: (nullable): its type
 * @error: a #CtlError; for a refused request, the server's message with
 *   any problems it lists, one per line
 *
 * Returns: (transfer full): the response body of a 2xx answer.
 */
GBytes *ctl_client_request (CtlClient *client, const char *method, const char *path,
                            const char *content_type, GBytes *body, GError **error);

/* As ctl_client_request(), with JSON in and out. */
JsonNode *ctl_client_request_json (CtlClient *client, const char *method, const char *path,
                                   JsonNode *body, GError **error);

/* How long to wait for the server's answer; 0 waits as long as it takes
 * (registering content reads the whole package before the server answers). */
void ctl_client_set_timeout (CtlClient *client, guint seconds);

/**
 * ctl_client_get_error_body:
 *
 * Returns: (transfer none) (nullable): the JSON error the server sent with
 *   the last refused request, for --json output.
 */
JsonNode *ctl_client_get_error_body (CtlClient *client);

G_END_DECLS
