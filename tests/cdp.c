/* A small Chrome DevTools Protocol client over libsoup's WebSocket client:
 * one connection to the browser, the page reached through a flattened
 * session (every page command carries its sessionId). */
#include "build-config.h"

#include "tests/cdp.h"
#include "tests/canopy-test.h"

#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (canopy-cdp-error-quark, canopy_cdp_error)

struct _CanopyCdp {
  char *profile;                 /* Chromium's --user-data-dir, unique to this browser */
  CanopyTestProcess *browser;
  SoupSession *session;
  SoupWebsocketConnection *ws;
  char *page_session;            /* the page target's session ID */
  gint64 next_id;
  GHashTable *answers;           /* command ID → its answer (JsonNode) */
  gboolean closed;
};

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer user_data)
{
  CanopyCdp *cdp = user_data;
  gsize length;
  const char *data = g_bytes_get_data (message, &length);
  g_autofree char *text = g_strndup (data, length);
  g_autoptr (JsonNode) root = json_from_string (text, NULL);
  JsonObject *object;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  object = json_node_get_object (root);
  /* Events are not needed: the tests wait on what the page shows. */
  if (json_object_has_member (object, "id"))
    g_hash_table_replace (cdp->answers,
                          GINT_TO_POINTER ((gint) json_object_get_int_member (object, "id")),
                          g_steal_pointer (&root));
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer user_data)
{
  ((CanopyCdp *) user_data)->closed = TRUE;
}

static gboolean
on_timeout (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  SoupWebsocketConnection *ws = soup_session_websocket_connect_finish (SOUP_SESSION (source),
                                                                       result, &error);

  if (ws != NULL)
    g_task_return_pointer (task, ws, g_object_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

/* The browser's DevTools address, from what it printed at start. */
static char *
devtools_url (CanopyCdp *cdp, GError **error)
{
  const char *needle = "DevTools listening on ";
  const char *output, *at, *end;

  if (!canopy_test_process_wait_output (cdp->browser, needle, canopy_test_timeout (60)))
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_START,
                   "Chromium did not start its DevTools server; it printed: %s",
                   canopy_test_process_output (cdp->browser));
      return NULL;
    }
  output = canopy_test_process_output (cdp->browser);
  at = strstr (output, needle) + strlen (needle);
  end = strchr (at, '\n');
  return end != NULL ? g_strstrip (g_strndup (at, end - at)) : NULL;
}

static gboolean
connect_ws (CanopyCdp *cdp, const char *url, GError **error)
{
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  GTask *task = g_task_new (NULL, NULL, NULL, NULL);
  gboolean expired = FALSE;
  guint timer = g_timeout_add_seconds (canopy_test_timeout (30), on_timeout, &expired);

  g_object_ref (task);
  soup_session_websocket_connect_async (cdp->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        on_connected, task);
  while (!g_task_get_completed (task) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  if (!g_task_get_completed (task))
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_START,
                   "Chromium's DevTools WebSocket %s did not answer", url);
      return FALSE;
    }
  cdp->ws = g_task_propagate_pointer (task, error);
  g_object_unref (task);
  if (cdp->ws == NULL)
    return FALSE;
  /* Screenshots are megabytes; the default cap is 128 KiB. */
  soup_websocket_connection_set_max_incoming_payload_size (cdp->ws, 0);
  g_signal_connect (cdp->ws, "message", G_CALLBACK (on_message), cdp);
  g_signal_connect (cdp->ws, "closed", G_CALLBACK (on_closed), cdp);
  return TRUE;
}

static JsonNode *
params_of (const char *first_name, ...)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  va_list args;

  json_builder_begin_object (b);
  va_start (args, first_name);
  for (const char *name = first_name; name != NULL; name = va_arg (args, const char *))
    {
      json_builder_set_member_name (b, name);
      json_builder_add_string_value (b, va_arg (args, const char *));
    }
  va_end (args);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

JsonNode *
canopy_cdp_call (CanopyCdp *cdp, const char *method, JsonNode *params, gboolean page,
                 GError **error)
{
  g_autoptr (JsonNode) owned = params;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) request = NULL;
  g_autofree char *text = NULL;
  gint64 id = ++cdp->next_id;
  gboolean expired = FALSE;
  guint timer;
  JsonNode *answer;
  JsonObject *object;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_int_value (b, id);
  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, method);
  if (page)
    {
      json_builder_set_member_name (b, "sessionId");
      json_builder_add_string_value (b, cdp->page_session);
    }
  json_builder_set_member_name (b, "params");
  json_builder_add_value (b, owned != NULL ? g_steal_pointer (&owned)
                                           : json_node_init_object (json_node_alloc (),
                                                                    json_object_new ()));
  json_builder_end_object (b);
  request = json_builder_get_root (b);
  text = json_to_string (request, FALSE);
  if (cdp->closed)
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_PROTOCOL,
                   "Chromium closed the DevTools connection before %s", method);
      return NULL;
    }
  soup_websocket_connection_send_text (cdp->ws, text);
  timer = g_timeout_add_seconds (canopy_test_timeout (60), on_timeout, &expired);
  while (!g_hash_table_contains (cdp->answers, GINT_TO_POINTER ((gint) id)) && !expired
         && !cdp->closed)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  if (!g_hash_table_steal_extended (cdp->answers, GINT_TO_POINTER ((gint) id), NULL,
                                    (gpointer *) &answer))
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_TIMEOUT,
                   "Chromium did not answer %s", method);
      return NULL;
    }
  object = json_node_get_object (answer);
  if (json_object_has_member (object, "error"))
    {
      g_autofree char *detail = json_to_string (json_object_get_member (object, "error"), FALSE);

      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_PROTOCOL, "%s failed: %s", method,
                   detail);
      json_node_unref (answer);
      return NULL;
    }
  {
    JsonNode *result = json_node_copy (json_object_get_member (object, "result"));

    json_node_unref (answer);
    return result;
  }
}

/* Opens a blank page and attaches to it with a flattened session. */
static gboolean
open_page (CanopyCdp *cdp, const char *downloads, GError **error)
{
  g_autoptr (JsonNode) target = NULL, attached = NULL, done = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *target_id;

  target = canopy_cdp_call (cdp, "Target.createTarget", params_of ("url", "about:blank", NULL),
                            FALSE, error);
  if (target == NULL)
    return FALSE;
  target_id = json_object_get_string_member (json_node_get_object (target), "targetId");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "targetId");
  json_builder_add_string_value (b, target_id);
  json_builder_set_member_name (b, "flatten");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  attached = canopy_cdp_call (cdp, "Target.attachToTarget", json_builder_get_root (b), FALSE,
                              error);
  if (attached == NULL)
    return FALSE;
  cdp->page_session = g_strdup (json_object_get_string_member (json_node_get_object (attached),
                                                                "sessionId"));
  done = canopy_cdp_call (cdp, "Browser.setDownloadBehavior",
                          params_of ("behavior", "allow", "downloadPath", downloads, NULL),
                          FALSE, error);
  if (done == NULL)
    return FALSE;
  g_clear_pointer (&done, json_node_unref);
  done = canopy_cdp_call (cdp, "Page.enable", NULL, TRUE, error);
  return done != NULL && canopy_cdp_set_viewport (cdp, 1280, 800, error);
}

CanopyCdp *
canopy_cdp_start (const char *dir, const char *downloads, GError **error)
{
  g_autoptr (CanopyCdp) cdp = g_new0 (CanopyCdp, 1);
  g_autofree char *chromium = g_find_program_in_path ("chromium");
  g_autofree char *profile_arg = NULL;
  g_autofree char *url = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  cdp->answers = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) json_node_unref);
  cdp->profile = g_build_filename (dir, "chromium-profile", NULL);
  if (chromium == NULL)
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_START,
                   "chromium is not installed; tools/install-deps.sh installs Debian's");
      return NULL;
    }
  profile_arg = g_strdup_printf ("--user-data-dir=%s", cdp->profile);
  g_ptr_array_add (argv, chromium);
  g_ptr_array_add (argv, (gpointer) "--headless=new");
  /* Root has no sandbox: Chromium refuses to run as root with one. */
  if (geteuid () == 0)
    g_ptr_array_add (argv, (gpointer) "--no-sandbox");
  g_ptr_array_add (argv, profile_arg);
  g_ptr_array_add (argv, (gpointer) "--remote-debugging-port=0");
  /* canopyd's console certificate is its own, not a CA's. */
  g_ptr_array_add (argv, (gpointer) "--ignore-certificate-errors");
  g_ptr_array_add (argv, (gpointer) "--disable-gpu");
  g_ptr_array_add (argv, (gpointer) "--disable-dev-shm-usage");
  g_ptr_array_add (argv, (gpointer) "--no-first-run");
  g_ptr_array_add (argv, (gpointer) "--no-default-browser-check");
  g_ptr_array_add (argv, (gpointer) "--disable-background-networking");
  g_ptr_array_add (argv, (gpointer) "--disable-component-update");
  g_ptr_array_add (argv, (gpointer) "--disable-sync");
  g_ptr_array_add (argv, (gpointer) "--password-store=basic");
  g_ptr_array_add (argv, (gpointer) "--lang=en-US");
  g_ptr_array_add (argv, (gpointer) "--window-size=1280,800");
  g_ptr_array_add (argv, (gpointer) "about:blank");
  g_ptr_array_add (argv, NULL);
  cdp->browser = canopy_test_process_spawn ((const char *const *) argv->pdata, error);
  if (cdp->browser == NULL)
    return NULL;
  cdp->session = soup_session_new ();
  url = devtools_url (cdp, error);
  if (url == NULL || !connect_ws (cdp, url, error) || !open_page (cdp, downloads, error))
    return NULL;
  return g_steal_pointer (&cdp);
}

/* The processes whose command line names @profile: the browser's helpers. */
static GArray *
profile_processes (const char *profile)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", name, "cmdline", NULL);
      g_autofree char *cmdline = NULL;
      gsize length;
      int pid = atoi (name);

      if (pid <= 0 || !g_file_get_contents (path, &cmdline, &length, NULL))
        continue;
      for (gsize i = 0; i + 1 < length; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (strstr (cmdline, profile) != NULL)
        g_array_append_val (pids, pid);
    }
  return pids;
}

guint
canopy_cdp_stop (CanopyCdp *cdp)
{
  g_autoptr (GArray) left = NULL;

  if (cdp->browser == NULL)
    return 0;
  if (cdp->ws != NULL && !cdp->closed)
    {
      g_autoptr (JsonNode) ignored = canopy_cdp_call (cdp, "Browser.close", NULL, FALSE, NULL);
    }
  if (canopy_test_process_wait_exit (cdp->browser, canopy_test_timeout (20)) == -1)
    fprintf (stderr, "\n    Chromium did not exit after Browser.close; killed\n");
  g_clear_pointer (&cdp->browser, canopy_test_process_free);
  /* Helpers (renderer, GPU, zygote) normally go with the browser; any
   * left are killed by their process ID. */
  left = profile_processes (cdp->profile);
  for (guint i = 0; i < left->len; i++)
    kill (g_array_index (left, int, i), SIGKILL);
  return left->len;
}

void
canopy_cdp_free (CanopyCdp *cdp)
{
  canopy_cdp_stop (cdp);
  if (cdp->ws != NULL && soup_websocket_connection_get_state (cdp->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (cdp->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&cdp->ws);
  g_clear_object (&cdp->session);
  g_clear_pointer (&cdp->answers, g_hash_table_unref);
  g_free (cdp->page_session);
  g_free (cdp->profile);
  g_free (cdp);
}

JsonNode *
canopy_cdp_eval (CanopyCdp *cdp, const char *expression, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *object;
  JsonNode *value;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "expression");
  json_builder_add_string_value (b, expression);
  json_builder_set_member_name (b, "awaitPromise");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "returnByValue");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "userGesture");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  answer = canopy_cdp_call (cdp, "Runtime.evaluate", json_builder_get_root (b), TRUE, error);
  if (answer == NULL)
    return NULL;
  object = json_node_get_object (answer);
  if (json_object_has_member (object, "exceptionDetails"))
    {
      g_autofree char *detail = json_to_string (json_object_get_member (object,
                                                                        "exceptionDetails"),
                                                FALSE);

      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_SCRIPT, "%s threw: %s", expression,
                   detail);
      return NULL;
    }
  value = json_object_get_member (json_object_get_object_member (object, "result"), "value");
  return value != NULL ? json_node_copy (value) : json_node_new (JSON_NODE_NULL);
}

char *
canopy_cdp_eval_string (CanopyCdp *cdp, const char *expression, GError **error)
{
  g_autoptr (JsonNode) value = canopy_cdp_eval (cdp, expression, error);

  if (value == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (value));
  return json_to_string (value, FALSE);
}

static gboolean
truthy (JsonNode *value)
{
  if (value == NULL || JSON_NODE_HOLDS_NULL (value))
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (value))
    return TRUE;
  switch (json_node_get_value_type (value))
    {
    case G_TYPE_BOOLEAN:
      return json_node_get_boolean (value);
    case G_TYPE_STRING:
      return json_node_get_string (value)[0] != '\0';
    case G_TYPE_INT64:
      return json_node_get_int (value) != 0;
    default:
      return json_node_get_double (value) != 0;
    }
}

gboolean
canopy_cdp_wait_for (CanopyCdp *cdp, const char *expression, guint timeout_s, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;

  while (TRUE)
    {
      g_autoptr (GError) failed = NULL;
      g_autoptr (JsonNode) value = canopy_cdp_eval (cdp, expression, &failed);
      gboolean expired = FALSE;

      if (truthy (value))
        return TRUE;
      /* A page in the middle of loading may throw; only a lasting error counts. */
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_TIMEOUT,
                       "after %u s, still false: %s%s%s", timeout_s, expression,
                       failed != NULL ? "; " : "", failed != NULL ? failed->message : "");
          return FALSE;
        }
      g_timeout_add (200, on_timeout, &expired);
      while (!expired)
        g_main_context_iteration (NULL, TRUE);
    }
}

gboolean
canopy_cdp_navigate (CanopyCdp *cdp, const char *url, GError **error)
{
  g_autoptr (JsonNode) done = canopy_cdp_call (cdp, "Page.navigate", params_of ("url", url, NULL),
                                               TRUE, error);

  return done != NULL
         && canopy_cdp_wait_for (cdp, "document.readyState === 'complete'",
                                 canopy_test_timeout (30), error);
}

static gboolean
mouse (CanopyCdp *cdp, const char *type, double x, double y, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) done = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "x");
  json_builder_add_double_value (b, x);
  json_builder_set_member_name (b, "y");
  json_builder_add_double_value (b, y);
  json_builder_set_member_name (b, "button");
  json_builder_add_string_value (b, "left");
  json_builder_set_member_name (b, "clickCount");
  json_builder_add_int_value (b, 1);
  json_builder_end_object (b);
  done = canopy_cdp_call (cdp, "Input.dispatchMouseEvent", json_builder_get_root (b), TRUE,
                          error);
  return done != NULL;
}

gboolean
canopy_cdp_click (CanopyCdp *cdp, const char *selector, GError **error)
{
  g_autofree char *quoted = g_strescape (selector, NULL);
  g_autofree char *script = g_strdup_printf (
    "(() => { const e = document.querySelector(\"%s\"); if (!e) return null;"
    " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
    " return r.width > 0 && r.height > 0 ? [r.left + r.width / 2, r.top + r.height / 2] : null; })()",
    quoted);
  g_autoptr (JsonNode) at = canopy_cdp_eval (cdp, script, error);
  JsonArray *xy;

  if (at == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (at))
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_SCRIPT,
                   "no visible element matches %s", selector);
      return FALSE;
    }
  xy = json_node_get_array (at);
  return mouse (cdp, "mousePressed", json_array_get_double_element (xy, 0),
                json_array_get_double_element (xy, 1), error)
         && mouse (cdp, "mouseReleased", json_array_get_double_element (xy, 0),
                   json_array_get_double_element (xy, 1), error);
}

gboolean
canopy_cdp_type (CanopyCdp *cdp, const char *selector, const char *text, GError **error)
{
  g_autofree char *quoted = g_strescape (selector, NULL);
  g_autofree char *script = g_strdup_printf (
    "(() => { const e = document.querySelector(\"%s\"); if (!e) return false;"
    " e.focus(); if ('value' in e) e.value = ''; return document.activeElement === e; })()",
    quoted);
  g_autoptr (JsonNode) focused = canopy_cdp_eval (cdp, script, error);
  g_autoptr (JsonNode) done = NULL;

  if (focused == NULL)
    return FALSE;
  if (!truthy (focused))
    {
      g_set_error (error, CANOPY_CDP_ERROR, CANOPY_CDP_ERROR_SCRIPT,
                   "no element to type into matches %s", selector);
      return FALSE;
    }
  done = canopy_cdp_call (cdp, "Input.insertText", params_of ("text", text, NULL), TRUE, error);
  return done != NULL;
}

gboolean
canopy_cdp_key (CanopyCdp *cdp, const char *key, GError **error)
{
  static const char *const types[] = { "keyDown", "keyUp" };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) done = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, types[i]);
      json_builder_set_member_name (b, "key");
      json_builder_add_string_value (b, key);
      json_builder_set_member_name (b, "code");
      json_builder_add_string_value (b, key);
      if (g_str_equal (key, "Enter"))
        {
          json_builder_set_member_name (b, "windowsVirtualKeyCode");
          json_builder_add_int_value (b, 13);
          if (i == 0)
            {
              json_builder_set_member_name (b, "text");
              json_builder_add_string_value (b, "\r");
            }
        }
      else if (g_str_equal (key, "Tab"))
        {
          json_builder_set_member_name (b, "windowsVirtualKeyCode");
          json_builder_add_int_value (b, 9);
        }
      json_builder_end_object (b);
      done = canopy_cdp_call (cdp, "Input.dispatchKeyEvent", json_builder_get_root (b), TRUE,
                              error);
      if (done == NULL)
        return FALSE;
    }
  return TRUE;
}

gboolean
canopy_cdp_set_file (CanopyCdp *cdp, const char *selector, const char *path, GError **error)
{
  g_autoptr (JsonNode) document = canopy_cdp_call (cdp, "DOM.getDocument", NULL, TRUE, error);
  g_autoptr (JsonBuilder) q = json_builder_new ();
  g_autoptr (JsonBuilder) f = json_builder_new ();
  g_autoptr (JsonNode) found = NULL, done = NULL;

  if (document == NULL)
    return FALSE;
  json_builder_begin_object (q);
  json_builder_set_member_name (q, "nodeId");
  json_builder_add_int_value (q, json_object_get_int_member (
                                     json_object_get_object_member (
                                         json_node_get_object (document), "root"), "nodeId"));
  json_builder_set_member_name (q, "selector");
  json_builder_add_string_value (q, selector);
  json_builder_end_object (q);
  found = canopy_cdp_call (cdp, "DOM.querySelector", json_builder_get_root (q), TRUE, error);
  if (found == NULL)
    return FALSE;
  json_builder_begin_object (f);
  json_builder_set_member_name (f, "nodeId");
  json_builder_add_int_value (f, json_object_get_int_member (json_node_get_object (found),
                                                             "nodeId"));
  json_builder_set_member_name (f, "files");
  json_builder_begin_array (f);
  json_builder_add_string_value (f, path);
  json_builder_end_array (f);
  json_builder_end_object (f);
  done = canopy_cdp_call (cdp, "DOM.setFileInputFiles", json_builder_get_root (f), TRUE, error);
  return done != NULL;
}

gboolean
canopy_cdp_set_viewport (CanopyCdp *cdp, guint width, guint height, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) done = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, height);
  json_builder_set_member_name (b, "deviceScaleFactor");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "mobile");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_end_object (b);
  done = canopy_cdp_call (cdp, "Emulation.setDeviceMetricsOverride", json_builder_get_root (b),
                          TRUE, error);
  return done != NULL;
}

gboolean
canopy_cdp_screenshot (CanopyCdp *cdp, const char *path, GError **error)
{
  g_autoptr (JsonNode) shot = canopy_cdp_call (cdp, "Page.captureScreenshot",
                                               params_of ("format", "png", NULL), TRUE, error);
  g_autofree guchar *png = NULL;
  gsize length;

  if (shot == NULL)
    return FALSE;
  png = g_base64_decode (json_object_get_string_member (json_node_get_object (shot), "data"),
                         &length);
  return g_file_set_contents (path, (const char *) png, length, error);
}
