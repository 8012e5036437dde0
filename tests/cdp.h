/* A small client of the Chrome DevTools Protocol for the tests: starts
 * Debian's headless Chromium with a profile of its own, talks to it over
 * libsoup's WebSocket client, and drives one page. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define CANOPY_CDP_ERROR (canopy_cdp_error_quark ())
GQuark canopy_cdp_error_quark (void);

typedef enum {
  CANOPY_CDP_ERROR_START,     /* Chromium cannot start or be reached */
  CANOPY_CDP_ERROR_PROTOCOL,  /* Chromium answered a command with an error */
  CANOPY_CDP_ERROR_SCRIPT,    /* the page's script threw */
  CANOPY_CDP_ERROR_TIMEOUT,   /* no answer, or a condition never held */
} CanopyCdpError;

typedef struct _CanopyCdp CanopyCdp;

/**
 * canopy_cdp_start:
 * @dir: a directory of the test's own; Chromium's profile goes under it
 * @downloads: where the page's downloads are saved
 *
 * Starts Chromium headless (--no-sandbox as root) at 1280×800, connects
 * to it and opens a blank page.
 *
 * Returns: (transfer full): the browser, or %NULL with @error naming why
 *   it could not start, with what Chromium printed.
 */
CanopyCdp *canopy_cdp_start (const char *dir, const char *downloads, GError **error);

/* Closes the browser and kills every process of its profile that is
 * left; returns how many had to be killed. */
guint canopy_cdp_stop (CanopyCdp *cdp);
void canopy_cdp_free (CanopyCdp *cdp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyCdp, canopy_cdp_free)

/**
 * canopy_cdp_call:
 * @params: (transfer full) (nullable): the command's parameters, an object
 * @page: whether the page's session receives it (else the browser)
 *
 * Sends a command and waits for its answer.
 *
 * Returns: (transfer full): the command's result object.
 */
JsonNode *canopy_cdp_call (CanopyCdp *cdp, const char *method, JsonNode *params, gboolean page,
                           GError **error);

/* Runs @expression in the page (a promise is awaited); returns its value. */
JsonNode *canopy_cdp_eval (CanopyCdp *cdp, const char *expression, GError **error);
/* The same, its value as text (JSON for what is not a string). */
char *canopy_cdp_eval_string (CanopyCdp *cdp, const char *expression, GError **error);
/* Waits until @expression is truthy; FALSE with @error after @timeout_s. */
gboolean canopy_cdp_wait_for (CanopyCdp *cdp, const char *expression, guint timeout_s,
                              GError **error);

gboolean canopy_cdp_navigate (CanopyCdp *cdp, const char *url, GError **error);
/* Clicks the element @selector matches, as a user would (mouse events at
 * its centre, after scrolling it into view). */
gboolean canopy_cdp_click (CanopyCdp *cdp, const char *selector, GError **error);
/* Focuses the element @selector matches and types @text into it. */
gboolean canopy_cdp_type (CanopyCdp *cdp, const char *selector, const char *text,
                          GError **error);
/* Presses a key (e.g. "Enter", "Tab") on the focused element. */
gboolean canopy_cdp_key (CanopyCdp *cdp, const char *key, GError **error);
/* Sets the files of the <input type=file> @selector matches. */
gboolean canopy_cdp_set_file (CanopyCdp *cdp, const char *selector, const char *path,
                              GError **error);
gboolean canopy_cdp_set_viewport (CanopyCdp *cdp, guint width, guint height, GError **error);
/* Saves a PNG of the page's viewport at @path. */
gboolean canopy_cdp_screenshot (CanopyCdp *cdp, const char *path, GError **error);

G_END_DECLS
