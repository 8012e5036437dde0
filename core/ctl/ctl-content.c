/* canopyctl's content and deployment subcommands. Registering reads the
 * whole package on the server before it answers, so those requests run in
 * a thread while the terminal shows that canopyctl is still waiting. */
#include "build-config.h"

#include "ctl/ctl-content.h"
#include "ctl/ctl-resolve.h"
#include "ctl/ctl-table.h"
#include "lib/i18n.h"

#include <string.h>
#include <unistd.h>

#define TICK_MS 125
#define POLL_S 1

/* --- JSON and formatting helpers ---------------------------------------------- */

static const char *
member_string (JsonObject *o, const char *name)
{
  return json_object_get_string_member_with_default (o, name, "?");
}

static guint64
member_bytes (JsonObject *o, const char *name)
{
  gint64 value = json_object_get_int_member_with_default (o, name, 0);

  return value > 0 ? (guint64) value : 0;
}

/* Counts of devices, chunks, contents. */
static guint
member_count (JsonObject *o, const char *name)
{
  return (guint) MIN (member_bytes (o, name), G_MAXUINT);
}

static char *
format_bytes (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

static char *
format_elapsed (gint64 start)
{
  double seconds = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  guint whole = (guint) seconds;

  if (seconds < 10)
    return g_strdup_printf (_("%.1f s"), seconds);
  if (whole < 60)
    return g_strdup_printf (_("%u s"), whole);
  return g_strdup_printf (_("%u min %02u s"), whole / 60, whole % 60);
}

static char *
join_strings (JsonObject *o, const char *name)
{
  JsonArray *array = json_object_has_member (o, name) ? json_object_get_array_member (o, name)
                                                      : NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    g_string_append_printf (out, "%s%s", i > 0 ? ", " : "",
                            json_array_get_string_element (array, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* "PATH?id=ID", the ID escaped: it comes from the admin's command line. */
static char *
path_with_id (const char *path, const char *id)
{
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);

  return g_strdup_printf ("%s?id=%s", path, escaped);
}

/* The status line a terminal shows while canopyctl waits; nothing when
 * standard error is a file or a pipe, so logs get only the final line. */
static void
show_status (gboolean tty, guint turn, const char *text)
{
  static const char spinner[] = "|/-\\";

  if (tty)
    g_printerr ("\r%c %s\033[K", spinner[turn % 4], text);
}

static void
clear_status (gboolean tty)
{
  if (tty)
    g_printerr ("\r\033[K");
}

/* --- one long request, with a ticker ------------------------------------------ */

typedef struct {
  const CtlGlobal *global;
  const char *method;
  const char *path;
  JsonNode *body;
  CtlClient *client;
  JsonNode *answer;
  GError *error;
  GMutex lock;
  GCond finished_cond;
  gboolean finished;
} LongRequest;

/* The client is made in the thread that uses it: a libsoup session
 * belongs to one thread. */
static gpointer
long_request_run (gpointer data)
{
  LongRequest *r = data;

  r->client = ctl_console_open_client (r->global, &r->error);
  if (r->client != NULL)
    {
      /* The server answers only once it has read the whole package. */
      ctl_client_set_timeout (r->client, 0);
      r->answer = ctl_client_request_json (r->client, r->method, r->path, r->body, &r->error);
    }
  g_mutex_lock (&r->lock);
  r->finished = TRUE;
  g_cond_signal (&r->finished_cond);
  g_mutex_unlock (&r->lock);
  return NULL;
}

/* Sends the request and waits for it, showing @what and the time spent. */
static void
long_request (LongRequest *r, const char *what, gint64 start)
{
  gboolean tty = isatty (STDERR_FILENO);
  GThread *thread;
  guint turn = 0;

  g_mutex_init (&r->lock);
  g_cond_init (&r->finished_cond);
  thread = g_thread_new ("canopyctl-request", long_request_run, r);
  g_mutex_lock (&r->lock);
  while (!r->finished)
    {
      g_autofree char *elapsed = format_elapsed (start);
      g_autofree char *line = g_strdup_printf ("%s (%s)", what, elapsed);

      show_status (tty, turn++, line);
      g_cond_wait_until (&r->finished_cond, &r->lock,
                         g_get_monotonic_time () + TICK_MS * G_TIME_SPAN_MILLISECOND);
    }
  g_mutex_unlock (&r->lock);
  g_thread_join (thread);
  clear_status (tty);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->finished_cond);
}

static void
long_request_clear (LongRequest *r)
{
  g_clear_pointer (&r->client, ctl_client_free);
  g_clear_pointer (&r->answer, json_node_unref);
  g_clear_error (&r->error);
}

/* --- content ------------------------------------------------------------------- */

static void
show_content (const CtlGlobal *global, JsonNode *answer)
{
  JsonArray *list = JSON_NODE_HOLDS_ARRAY (answer) ? json_node_get_array (answer) : NULL;
  const char *headers[] = { _("CONTENT"), _("SIZE"), _("CHUNKS"), _("LOCATION"), _("ID"),
                            NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  if (list == NULL || json_array_get_length (list) == 0)
    {
      g_printerr (_("No content is registered; add a package with \"canopyctl "
                    "content-add\".\n"));
      return;
    }
  ctl_table_set_wide_only (table, 4);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *c = json_array_get_object_element (list, i);
      g_autofree char *size = format_bytes (member_bytes (c, "size"));
      g_autofree char *chunks = g_strdup_printf ("%u", member_count (c, "chunks"));
      g_autofree char *name = g_strdup_printf ("%s %s", member_string (c, "name"),
                                               member_string (c, "version"));
      const char *row[] = { name, size, chunks, member_string (c, "location"),
                            member_string (c, "id"), NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
}

int
ctl_content_list (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) answer = NULL;

  if (argc != 1)
    return ctl_console_usage ("canopyctl content");
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  answer = ctl_client_request_json (client, "GET", "/api/v1/content", NULL, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_list (answer, "content");
  else
    show_content (global, answer);
  return 0;
}

static JsonNode *
content_request (const char *name, const char *version, const char *location)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, version);
  json_builder_set_member_name (b, "location");
  json_builder_add_string_value (b, location);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
ctl_content_add (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *name = NULL, *version = NULL;
  const GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, NULL, NULL },
    { "version", 0, 0, G_OPTION_ARG_STRING, &version, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (JsonNode) body = NULL;
  g_autofree char *what = NULL, *elapsed = NULL, *size = NULL;
  LongRequest r = { global, "POST", "/api/v1/content" };
  gint64 start = g_get_monotonic_time ();
  JsonObject *c;
  guint chunks;
  int status = 0;

  if (!ctl_console_parse_options (&argc, &argv, entries, 1) || argc != 2 || name == NULL
      || version == NULL)
    return ctl_console_usage (_("canopyctl content-add --name NAME --version VERSION LOCATION "
                                "(an http:// or https:// URL, or an absolute path on the "
                                "server)"));
  /* The server would refuse it too, but this is a mistake on the
   * command line: say so before the server is asked. */
  if (!g_str_has_prefix (argv[1], "http://") && !g_str_has_prefix (argv[1], "https://")
      && !g_path_is_absolute (argv[1]))
    {
      g_printerr (_("\"%s\" is neither an http(s) URL nor an absolute path; give the package's "
                    "absolute path on the server, e.g. /srv/packages/%s\n"),
                  argv[1], argv[1]);
      return CTL_ERROR_USAGE;
    }
  body = content_request (name, version, argv[1]);
  r.body = body;
  what = g_strdup_printf (_("The server is reading %s once to build its signed manifest"),
                          argv[1]);
  long_request (&r, what, start);
  if (r.answer == NULL)
    status = ctl_console_fail (global, r.client, r.error);
  else if (global->json)
    ctl_console_print_json (r.answer);
  else
    {
      c = json_node_get_object (r.answer);
      elapsed = format_elapsed (start);
      size = format_bytes (member_bytes (c, "size"));
      chunks = member_count (c, "chunks");
      g_print (g_dngettext (GETTEXT_PACKAGE,
                            "Registered %s %s as %s: %s in %u chunk, manifest signed (%s)\n",
                            "Registered %s %s as %s: %s in %u chunks, manifest signed (%s)\n",
                            chunks),
               member_string (c, "name"), member_string (c, "version"), member_string (c, "id"),
               size, chunks, elapsed);
    }
  long_request_clear (&r);
  return status;
}

/* Sends @method @path?id=ID for the item @typed names; the server
 * answers without a body. @id_out: the whole ID. */
static int
act_on_item (const CtlGlobal *global, const char *method, const char *path, CtlKind kind,
             const char *typed, char **id_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = ctl_console_open_client (global, &error);
  g_autofree char *id = NULL, *target = NULL;
  g_autoptr (GBytes) response = NULL;

  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  id = ctl_resolve (client, kind, typed, &error);
  if (id == NULL)
    return ctl_console_fail (global, client, error);
  target = path_with_id (path, id);
  response = ctl_client_request (client, method, target, NULL, NULL, &error);
  if (response == NULL)
    return ctl_console_fail (global, client, error);
  *id_out = g_steal_pointer (&id);
  return 0;
}

/* The one JSON answer of a command that changes one item. */
static void
print_json_result (const char *id, const char *what)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "result");
  json_builder_add_string_value (b, what);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  ctl_console_print_json (root);
}

int
ctl_content_expire (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) body = NULL, answer = NULL;
  g_autofree char *path = NULL;
  g_autofree char *id = NULL;
  const char *when;

  if (argc != 3)
    return ctl_console_usage (_("canopyctl content-expire CONTENT TIME|never (TIME as RFC "
                                "3339, for example 2027-01-31T00:00:00Z)"));
  when = g_str_equal (argv[2], "never") ? "" : argv[2];
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "expires");
  json_builder_add_string_value (b, when);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  id = ctl_resolve (client, CTL_KIND_CONTENT, argv[1], &error);
  if (id == NULL)
    return ctl_console_fail (global, client, error);
  path = path_with_id ("/api/v1/content/expiry", id);
  answer = ctl_client_request_json (client, "POST", path, body, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else if (when[0] == '\0')
    g_print (_("Content %s no longer expires\n"), id);
  else
    g_print (_("Content %s expires at %s: then each of its deployments is retired, its "
               "package removed from the devices where it is unchanged\n"),
             id, member_string (json_node_get_object (answer), "expires"));
  return 0;
}

int
ctl_content_remove (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *id = NULL;
  int status;

  if (argc != 2)
    return ctl_console_usage (_("canopyctl content-remove CONTENT (\"canopyctl content\" lists "
                                "the IDs and names)"));
  status = act_on_item (global, "DELETE", "/api/v1/content", CTL_KIND_CONTENT, argv[1], &id);
  if (status == 0 && global->json)
    print_json_result (id, "removed");
  else if (status == 0)
    g_print (_("Content %s removed\n"), id);
  return status;
}

/* The copies Publish Content started go on after the answer. */
static void
show_copying (guint copying)
{
  if (copying == 0)
    return;
  g_print (g_dngettext (GETTEXT_PACKAGE,
                        "%u content item the content store lacks is being copied from its "
                        "origin; \"canopyctl content-store\" shows when the server seeds it\n",
                        "%u content items the content store lacks are being copied from their "
                        "origin, one at a time; \"canopyctl content-store\" shows when the "
                        "server seeds each\n",
                        copying),
           copying);
}

int
ctl_content_publish (const CtlGlobal *global, int argc, char **argv)
{
  LongRequest r = { global, "POST", "/api/v1/publish" };
  gint64 start = g_get_monotonic_time ();
  g_autofree char *elapsed = NULL;
  guint published;
  int status = 0;

  if (argc != 1)
    return ctl_console_usage ("canopyctl publish");
  long_request (&r, _("The server is signing every manifest again"), start);
  if (r.answer == NULL)
    status = ctl_console_fail (global, r.client, r.error);
  else if (global->json)
    ctl_console_print_json (r.answer);
  else
    {
      elapsed = format_elapsed (start);
      published = member_count (json_node_get_object (r.answer), "published");
      g_print (g_dngettext (GETTEXT_PACKAGE,
                            "Published %u content item: its manifest is signed again and every "
                            "deployment offered again to the devices online (%s)\n",
                            "Published %u content items: every manifest is signed again and "
                            "every deployment offered again to the devices online (%s)\n",
                            published),
               published, elapsed);
      show_copying (member_count (json_node_get_object (r.answer), "copying"));
    }
  long_request_clear (&r);
  return status;
}

/* --- content store ------------------------------------------------------------ */

static void
show_store_settings (JsonObject *o)
{
  guint64 quota = member_bytes (o, "quota");
  g_autofree char *quota_text = quota > 0 ? format_bytes (quota) : g_strdup (_("no limit"));
  g_autofree char *used = format_bytes (member_bytes (o, "used"));
  g_autofree char *uploaded = format_bytes (member_bytes (o, "uploaded_bytes"));

  g_print (_("Directory:     %s\nQuota:         %s\nUsed:          %s\nUpload slots:  %u\n"
             "Uploaded:      %s since canopyd started\n"),
           member_string (o, "directory"), quota_text, used, member_count (o, "upload_slots"),
           uploaded);
}

static void
show_store_contents (const CtlGlobal *global, JsonArray *contents)
{
  const char *headers[] = { _("CONTENT"), _("SIZE"), _("STORED"), _("REASON"), _("ID"), NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  ctl_table_set_wide_only (table, 4);
  for (guint i = 0; i < json_array_get_length (contents); i++)
    {
      JsonObject *c = json_array_get_object_element (contents, i);
      g_autofree char *size = format_bytes (member_bytes (c, "size"));
      g_autofree char *name = g_strdup_printf ("%s %s", member_string (c, "name"),
                                               member_string (c, "version"));
      gboolean stored = json_object_get_boolean_member_with_default (c, "stored", FALSE);
      const char *row[] = { name, size, stored ? _("yes") : _("no"),
                            stored ? NULL : member_string (c, "reason"), member_string (c, "id"),
                            NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
}

static void
show_content_store (const CtlGlobal *global, JsonNode *answer)
{
  JsonObject *o = json_node_get_object (answer);
  JsonArray *contents = json_object_get_array_member (o, "contents");

  if (json_object_get_boolean_member_with_default (o, "configured", FALSE))
    show_store_settings (o);
  else
    ctl_console_print_wrapped (global, _("No content store is configured: the server keeps metadata only, and leads fetch "
               "content from its origin. Add <content-store> to canopyd's configuration and "
               "restart canopyd to have the server seed content."));
  if (contents == NULL || json_array_get_length (contents) == 0)
    {
      g_print (_("No content is registered; add a package with \"canopyctl content-add\".\n"));
      return;
    }
  g_print ("\n");
  show_store_contents (global, contents);
}

int
ctl_content_store (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl content-store");
  return ctl_console_get_and_show (global, "/api/v1/content-store", show_content_store);
}

/* --- deployments ---------------------------------------------------------------- */

/* "normal", "background", or with what its lead measures now:
 * "background: 12.5 Mbit/s, queue 18 ms". */
static char *
format_wan_class (JsonObject *o)
{
  const char *wan_class = json_object_get_string_member_with_default (o, "transfer_class",
                                                                      "normal");
  JsonNode *rate = json_object_get_member (o, "background_rate");
  JsonNode *queue = json_object_get_member (o, "queueing_delay_ms");

  if (!g_str_equal (wan_class, "background"))
    return g_strdup (_("normal"));
  if (rate == NULL || JSON_NODE_TYPE (rate) != JSON_NODE_VALUE || queue == NULL
      || JSON_NODE_TYPE (queue) != JSON_NODE_VALUE)
    return g_strdup (_("background"));
  return g_strdup_printf (_("background: %.1f Mbit/s, queue %.0f ms"),
                          (double) json_node_get_int (rate) / 1e6,
                          json_node_get_double (queue));
}

static void
show_offices (const CtlGlobal *global, const CtlNames *names, JsonObject *d)
{
  JsonArray *offices = json_object_get_array_member (d, "offices");
  const char *headers[] = { _("OFFICE"), _("DONE"), _("LEAD"), _("PEER BYTES"),
                            _("EARLIER VERSIONS"), _("WAN BYTES"), _("SAVINGS"), _("WAN CLASS"),
                            NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  for (guint i = 0; offices != NULL && i < json_array_get_length (offices); i++)
    {
      JsonObject *o = json_array_get_object_element (offices, i);
      g_autofree char *done = g_strdup_printf ("%u/%u",
                                               member_count (o, "done"),
                                               member_count (o, "devices"));
      g_autofree char *peer = format_bytes (member_bytes (o, "bytes_office_peer"));
      g_autofree char *reused = format_bytes (member_bytes (o, "bytes_earlier_versions"));
      g_autofree char *wan = format_bytes (member_bytes (o, "wan_bytes"));
      g_autofree char *savings = g_strdup_printf (
        "%.0f%%", 100.0 * json_object_get_double_member_with_default (o, "savings", 0.0));
      const char *lead = json_object_get_string_member_with_default (o, "lead", "");
      g_autofree char *wan_class = format_wan_class (o);
      const char *lead_name = json_object_get_string_member_with_default (o, "lead_name", "");
      const char *row[] = { member_string (o, "office"), done,
                            lead_name[0] != '\0' ? lead_name
                            : lead[0] != '\0'    ? ctl_names_lookup (names, lead)
                                                : NULL,
                            peer, reused, wan, savings, wan_class, NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
}

/* A cancelled deployment: what each device did. */
static void
show_withdrawn (const CtlNames *names, JsonObject *d)
{
  JsonArray *withdrawn = json_object_has_member (d, "withdrawn")
                           ? json_object_get_array_member (d, "withdrawn") : NULL;

  JsonArray *uninstalled = json_object_has_member (d, "uninstalled")
                             ? json_object_get_array_member (d, "uninstalled") : NULL;

  for (guint i = 0; uninstalled != NULL && i < json_array_get_length (uninstalled); i++)
    {
      JsonObject *o = json_array_get_object_element (uninstalled, i);

      if (i == 0)
        g_print (_("  Retired; what each device that had installed it did:\n"));
      g_print ("    %s (%s): %s\n", member_string (o, "device"), member_string (o, "outcome"),
               member_string (o, "message"));
    }
  if (withdrawn == NULL)
    return;
  g_print (_("  Cancelled; what each device did:\n"));
  for (guint i = 0; i < json_array_get_length (withdrawn); i++)
    {
      JsonObject *o = json_array_get_object_element (withdrawn, i);

      g_print ("    %s: %s\n", ctl_names_lookup (names, member_string (o, "device")),
               member_string (o, "message"));
    }
}

/* When its content may move, if it was given a start, window or deadline. */
static void
show_timing (JsonObject *d)
{
  const char *fields[] = { "start", "window", "deadline" };
  const char *labels[] = { N_("start"), N_("daily window (office time)"), N_("deadline") };
  g_autoptr (GString) line = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      JsonNode *node = json_object_get_member (d, fields[i]);

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
        g_string_append_printf (line, "%s%s %s", line->len > 0 ? ", " : "", _(labels[i]),
                                json_node_get_string (node));
    }
  if (line->len > 0)
    g_print (_("  Moves: %s\n"), line->str);
}

/* -o name and --no-headers make a plain list of IDs, one a line. */
static void
show_deployment_ids (JsonArray *list)
{
  for (guint i = 0; i < json_array_get_length (list); i++)
    g_print ("%s\n", member_string (json_array_get_object_element (list, i), "id"));
}

static void
show_deployments (const CtlGlobal *global, const CtlNames *names, JsonNode *answer)
{
  JsonArray *list = JSON_NODE_HOLDS_ARRAY (answer) ? json_node_get_array (answer) : NULL;

  if (list != NULL && global->style.names_only)
    {
      show_deployment_ids (list);
      return;
    }
  if (list == NULL || json_array_get_length (list) == 0)
    {
      g_print (_("No deployments; create one with \"canopyctl deploy\".\n"));
      return;
    }
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *d = json_array_get_object_element (list, i);
      g_autofree char *groups = join_strings (d, "groups");
      guint done = member_count (d, "done"), devices = member_count (d, "devices");

      g_autofree char *heading = g_strdup_printf (
        g_dngettext (GETTEXT_PACKAGE, "Deployment %s: %s to %s at %s, %u of %u device done",
                     "Deployment %s: %s to %s at %s, %u of %u devices done", devices),
        member_string (d, "id"), ctl_names_lookup (names, member_string (d, "content")), groups,
        member_string (d, "destination"), done, devices);

      g_print ("%s", i > 0 ? "\n" : "");
      ctl_console_print_wrapped (global, heading);
      show_timing (d);
      show_offices (global, names, d);
      show_withdrawn (names, d);
    }
}

int
ctl_content_deployments (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autoptr (CtlNames) names = NULL;

  if (argc != 1)
    return ctl_console_usage ("canopyctl deployments");
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  answer = ctl_client_request_json (client, "GET", "/api/v1/deployments", NULL, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    {
      ctl_console_print_list (answer, "deployments");
      return 0;
    }
  names = ctl_names_new (client);
  show_deployments (global, names, answer);
  return 0;
}

/* When the content may move: each given one is sent as the admin wrote
 * it; the server checks it and says what is wrong. */
typedef struct {
  const char *start;
  const char *deadline;
  const char *window;
} DeployTiming;

static void
add_optional (JsonBuilder *b, const char *name, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static JsonNode *
deployment_request (const char *content, char **groups, const char *destination,
                    const DeployTiming *timing, gboolean background)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "content");
  json_builder_add_string_value (b, content);
  json_builder_set_member_name (b, "groups");
  json_builder_begin_array (b);
  for (char **g = groups; *g != NULL; g++)
    json_builder_add_string_value (b, *g);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "destination");
  json_builder_add_string_value (b, destination);
  add_optional (b, "start", timing->start);
  add_optional (b, "deadline", timing->deadline);
  add_optional (b, "window", timing->window);
  if (background)
    {
      json_builder_set_member_name (b, "background");
      json_builder_add_boolean_value (b, TRUE);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
ctl_content_deploy (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *content = NULL, *destination = NULL, *joined = NULL;
  g_autofree char *start = NULL, *deadline = NULL, *window = NULL;
  g_auto (GStrv) groups = NULL;
  gboolean background = FALSE;
  const GOptionEntry entries[] = {
    { "content", 0, 0, G_OPTION_ARG_STRING, &content, NULL, NULL },
    { "group", 0, 0, G_OPTION_ARG_STRING_ARRAY, &groups, NULL, NULL },
    { "destination", 0, 0, G_OPTION_ARG_STRING, &destination, NULL, NULL },
    { "start", 0, 0, G_OPTION_ARG_STRING, &start, NULL, NULL },
    { "deadline", 0, 0, G_OPTION_ARG_STRING, &deadline, NULL, NULL },
    { "window", 0, 0, G_OPTION_ARG_STRING, &window, NULL, NULL },
    { "background", 0, 0, G_OPTION_ARG_NONE, &background, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  DeployTiming timing;
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) body = NULL, answer = NULL;
  g_autofree char *content_id = NULL;
  const char *id;

  if (!ctl_console_parse_options (&argc, &argv, entries, 0) || content == NULL || groups == NULL
      || destination == NULL)
    return ctl_console_usage (_("canopyctl deploy --content CONTENT --group GROUP "
                                "[--group GROUP...] --destination /ABSOLUTE/PATH/ON/THE/DEVICES "
                                "[--start TIME] [--deadline TIME] [--window HH:MM-HH:MM] "
                                "[--background]"));
  timing = (DeployTiming) { start, deadline, window };
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  content_id = ctl_resolve (client, CTL_KIND_CONTENT, content, &error);
  if (content_id == NULL)
    return ctl_console_fail (global, client, error);
  body = deployment_request (content_id, groups, destination, &timing, background);
  answer = ctl_client_request_json (client, "POST", "/api/v1/deployments", body, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    {
      ctl_console_print_json (answer);
      return 0;
    }
  id = member_string (json_node_get_object (answer), "id");
  joined = g_strjoinv (", ", groups);
  g_print (_("Deployment %s created: content %s to %s at %s. Follow it with \"canopyctl "
             "deployment-wait %s\".\n"),
           id, content_id, joined, destination, id);
  return 0;
}

int
ctl_content_deployment_remove (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *id = NULL;
  int status;

  if (argc != 2)
    return ctl_console_usage (_("canopyctl deployment-remove DEPLOYMENT (\"canopyctl "
                                "deployments\" lists the IDs)"));
  status = act_on_item (global, "DELETE", "/api/v1/deployments", CTL_KIND_DEPLOYMENT, argv[1],
                        &id);
  if (status == 0 && global->json)
    print_json_result (id, "removed");
  else if (status == 0)
    g_print (_("Deployment %s removed\n"), id);
  return status;
}

int
ctl_content_deployment_retire (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *id = NULL;
  int status;

  if (argc != 2)
    return ctl_console_usage (_("canopyctl deployment-retire DEPLOYMENT (\"canopyctl "
                                "deployments\" lists the IDs)"));
  status = act_on_item (global, "POST", "/api/v1/deployments/retire", CTL_KIND_DEPLOYMENT,
                        argv[1], &id);
  if (status == 0 && global->json)
    print_json_result (id, "retired");
  else if (status == 0)
    g_print (_("Deployment %s retired: every device stops it, and each that installed its "
               "package removes it unless the file was changed since; \"canopyctl "
               "deployments\" shows what each did\n"), id);
  return status;
}

int
ctl_content_deployment_cancel (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *id = NULL;
  int status;

  if (argc != 2)
    return ctl_console_usage (_("canopyctl deployment-cancel DEPLOYMENT (\"canopyctl "
                                "deployments\" lists the IDs)"));
  status = act_on_item (global, "POST", "/api/v1/deployments/cancel", CTL_KIND_DEPLOYMENT,
                        argv[1], &id);
  if (status == 0 && global->json)
    print_json_result (id, "cancelled");
  else if (status == 0)
    g_print (_("Deployment %s cancelled: every device stops it before installing. \"canopyctl "
               "deployments\" shows what each did\n"), id);
  return status;
}

/* --- deployment-wait ------------------------------------------------------------ */

/* Returns: (transfer none) (nullable): the deployment @id in @list. */
static JsonObject *
find_deployment (JsonNode *list, const char *id)
{
  JsonArray *array = JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonObject *d = json_array_get_object_element (array, i);

      if (g_strcmp0 (json_object_get_string_member_with_default (d, "id", NULL), id) == 0)
        return d;
    }
  return NULL;
}

/* Every device the server knows as a target has finished; none known is
 * not done: the devices of the groups may not have reported yet. */
static gboolean
deployment_done (JsonObject *d)
{
  guint64 devices = member_count (d, "devices");

  return devices > 0 && member_count (d, "done") >= devices;
}

/* What the figures of GET /api/v1/deployments say about one deployment. */
typedef struct {
  guint64 received; /* verified bytes every device received, from every source */
  guint64 total;    /* the content's size times the target devices */
  guint done, devices;
} Progress;

static Progress
measure (JsonObject *d, guint64 size)
{
  static const char *const sources[] = { "bytes_office_peer", "bytes_parent_peer",
                                         "bytes_server", "bytes_origin" };
  JsonArray *offices = json_object_get_array_member (d, "offices");
  Progress p = { 0, 0, member_count (d, "done"), member_count (d, "devices") };

  for (guint i = 0; offices != NULL && i < json_array_get_length (offices); i++)
    for (gsize k = 0; k < G_N_ELEMENTS (sources); k++)
      p.received += member_bytes (json_array_get_object_element (offices, i), sources[k]);
  p.total = size * p.devices;
  p.received = MIN (p.received, p.total);
  return p;
}

/* "North 14.0 MiB, South 3.2 MiB": what crossed each office's WAN link. */
static char *
describe_wan (JsonObject *d)
{
  JsonArray *offices = json_object_get_array_member (d, "offices");
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; offices != NULL && i < json_array_get_length (offices); i++)
    {
      JsonObject *o = json_array_get_object_element (offices, i);
      g_autofree char *wan = format_bytes (member_bytes (o, "wan_bytes"));

      g_string_append_printf (out, "%s%s %s", i > 0 ? ", " : "", member_string (o, "office"),
                              wan);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
format_duration (guint64 seconds)
{
  if (seconds < 60)
    return g_strdup_printf (_("%u s"), (guint) seconds);
  if (seconds < 3600)
    return g_strdup_printf (_("%u min %02u s"), (guint) (seconds / 60), (guint) (seconds % 60));
  return g_strdup_printf (_("%u h %02u min"), (guint) (seconds / 3600),
                          (guint) (seconds % 3600 / 60));
}

/* One status line: devices done, bytes of total with the percentage, the
 * rate since the wait began, time left at that rate and the WAN bytes. */
static char *
describe_progress (JsonObject *d, const char *id, const Progress *p, guint64 first_received,
                   gint64 start)
{
  g_autofree char *elapsed = format_elapsed (start);
  g_autofree char *done = NULL, *total = NULL, *rate = NULL, *left = NULL, *wan = NULL;
  double seconds = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  double per_second = seconds > 0 ? (double) (p->received - first_received) / seconds : 0;

  if (p->devices == 0)
    return g_strdup_printf (_("Deployment %s: no target device known yet (%s)"), id, elapsed);
  done = format_bytes (p->received);
  total = format_bytes (p->total);
  rate = format_bytes ((guint64) per_second);
  left = per_second >= 1 ? format_duration ((guint64) ((double) (p->total - p->received)
                                                       / per_second))
                         : g_strdup (_("unknown"));
  wan = describe_wan (d);
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u of %u device done, %s of %s (%.0f%%), %s/s, %s left; "
                                       "WAN: %s (%s)",
                                       "%u of %u devices done, %s of %s (%.0f%%), %s/s, %s left; "
                                       "WAN: %s (%s)",
                                       p->devices),
                          p->done, p->devices, done, total,
                          p->total > 0 ? 100.0 * (double) p->received / (double) p->total : 0.0,
                          rate, left, wan, elapsed);
}

/* One poll: the deployment's state, or %NULL with @error. */
static JsonNode *
poll_deployments (CtlClient *client, const char *id, JsonObject **found, GError **error)
{
  g_autoptr (JsonNode) list = ctl_client_request_json (client, "GET", "/api/v1/deployments",
                                                       NULL, error);

  if (list == NULL)
    return NULL;
  *found = find_deployment (list, id);
  if (*found == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_NOT_FOUND,
                   _("No deployment has the ID %s (or it was removed); \"canopyctl deployments\" "
                     "lists them"),
                   id);
      return NULL;
    }
  return g_steal_pointer (&list);
}

static void
print_deployment_json (JsonObject *d)
{
  JsonNode *node = json_node_init_object (json_node_alloc (), d);

  ctl_console_print_json (node);
  json_node_unref (node);
}

static int
wait_finished (const CtlGlobal *global, JsonObject *d, const char *id, gint64 start)
{
  g_autofree char *elapsed = format_elapsed (start);
  g_autofree char *wan = describe_wan (d);
  guint devices = member_count (d, "devices");

  if (global->json)
    {
      print_deployment_json (d);
      return 0;
    }
  g_print (g_dngettext (GETTEXT_PACKAGE,
                        "Deployment %s: every device is done (%u of %u) after %s; WAN: %s\n",
                        "Deployment %s: every device is done (%u of %u) after %s; WAN: %s\n",
                        devices),
           id, member_count (d, "done"), devices, elapsed, wan);
  return 0;
}

static int
wait_timed_out (const CtlGlobal *global, JsonObject *d, const char *id, guint timeout)
{
  guint devices = member_count (d, "devices");

  if (global->json)
    print_deployment_json (d);
  g_printerr (g_dngettext (GETTEXT_PACKAGE,
                           "Deployment %s: %u of %u device done when the wait of %u s ran out. "
                           "\"canopyctl deployments\" shows which offices lag and who leads "
                           "them; \"canopyctl devices\" shows which devices are online.\n",
                           "Deployment %s: %u of %u devices done when the wait of %u s ran out. "
                           "\"canopyctl deployments\" shows which offices lag and who leads "
                           "them; \"canopyctl devices\" shows which devices are online.\n",
                           devices),
              id, member_count (d, "done"), devices, timeout);
  return CTL_ERROR_TIMEOUT;
}

/* The line a terminal shows is cut to its width, so it never wraps. */
static void
show_progress_line (gboolean tty, guint turn, const char *line)
{
  guint width = ctl_table_terminal_width ();
  g_autofree char *cut = ctl_table_ellipsize (line, width > 2 ? (glong) width - 3 : 0);

  show_status (tty, turn, cut);
}

int
ctl_content_deployment_wait (const CtlGlobal *global, int argc, char **argv)
{
  int timeout = 0;
  const GOptionEntry entries[] = {
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (CtlNames) names = NULL;
  g_autofree char *last = NULL, *id = NULL;
  gboolean tty = isatty (STDERR_FILENO);
  gint64 start = g_get_monotonic_time ();
  guint64 first_received = G_MAXUINT64;

  if (!ctl_console_parse_options (&argc, &argv, entries, 1) || argc != 2 || timeout < 0)
    return ctl_console_usage (_("canopyctl deployment-wait DEPLOYMENT [--timeout SECONDS]"));
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  id = ctl_resolve (client, CTL_KIND_DEPLOYMENT, argv[1], &error);
  if (id == NULL)
    return ctl_console_fail (global, client, error);
  names = ctl_names_new (client);
  for (guint turn = 0;; turn++)
    {
      JsonObject *d = NULL;
      g_autoptr (JsonNode) list = poll_deployments (client, id, &d, &error);
      g_autofree char *line = NULL;
      Progress p;

      if (list == NULL)
        {
          clear_status (tty);
          return ctl_console_fail (global, client, error);
        }
      if (deployment_done (d))
        {
          clear_status (tty);
          return wait_finished (global, d, id, start);
        }
      if (timeout > 0 && g_get_monotonic_time () - start >= (gint64) timeout * G_USEC_PER_SEC)
        {
          clear_status (tty);
          return wait_timed_out (global, d, id, (guint) timeout);
        }
      p = measure (d, ctl_names_content_size (names, member_string (d, "content")));
      /* The rate counts what arrived while canopyctl watched. */
      first_received = MIN (first_received, p.received);
      line = describe_progress (d, id, &p, first_received, start);
      show_progress_line (tty, turn, line);
      /* Without a terminal, a line each time the count of done devices
       * changes, not one a second. */
      if (!tty && !global->json)
        {
          g_autofree char *counts = g_strdup_printf ("%u/%u", p.done, p.devices);
          if (g_strcmp0 (counts, last) != 0)
            g_printerr ("%s\n", line);
          g_free (last);
          last = g_steal_pointer (&counts);
        }
      g_usleep (POLL_S * G_USEC_PER_SEC);
    }
}
