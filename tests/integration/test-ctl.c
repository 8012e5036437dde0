/* canopyctl as an admin meets it: help for every command (and a section
 * of docs/commands.md for each), then against a real site of canopyd and
 * agents: devices by name, content by "NAME VERSION", ID prefixes and
 * ambiguity, live progress, tables that fit 80 columns, the --json shape
 * of every command against tests/integration/ctl-schemas.json, and each
 * documented exit status. */
#include "build-config.h"

#include "tests/integration/json-schema.h"
#include "tests/integration/site.h"

#include <string.h>

#define OFFICES CANOPY_TEST_SITE_OFFICES
#define AGENTS_PER_OFFICE CANOPY_TEST_SITE_AGENTS_PER_OFFICE

static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

typedef struct {
  int status;
  char *out; /* standard output */
  char *err; /* standard error */
} CtlRun;

static void
ctl_run_clear (CtlRun *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CtlRun, ctl_run_clear)

/* Runs canopyctl with @profile and the NULL-ended arguments; @columns:
 * $COLUMNS, 0 for none. Standard output and error are kept apart so the
 * JSON can be parsed whole. */
static void
ctl_run (CtlRun *run, const char *profile, guint columns, const char *first, ...)
{
  g_autofree char *exe = canopy_test_build_path ("canopyctl", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = g_get_environ ();
  g_autoptr (GError) error = NULL;
  va_list args;
  int wait_status = 0;

  ctl_run_clear (run);
  g_ptr_array_add (argv, exe);
  g_ptr_array_add (argv, (gpointer) "--profile");
  g_ptr_array_add (argv, (gpointer) profile);
  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  if (columns > 0)
    {
      g_autofree char *text = g_strdup_printf ("%u", columns);
      env = g_environ_setenv (env, "COLUMNS", text, TRUE);
    }
  else
    env = g_environ_unsetenv (env, "COLUMNS");
  if (!g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &run->out,
                     &run->err, &wait_status, &error))
    {
      fprintf (stderr, "\n    cannot run canopyctl: %s\n", error->message);
      run->status = -1;
      return;
    }
  run->status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1;
}

/* Every line of @text is at most @width characters. */
static gboolean
fits_quietly (const char *text, glong width, gboolean quiet)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    if (g_utf8_strlen (*l, -1) > width)
      {
        if (!quiet)
          printf ("\n    %ld characters: %s\n", g_utf8_strlen (*l, -1), *l);
        return FALSE;
      }
  return TRUE;
}

static gboolean
fits (const char *text, glong width)
{
  return fits_quietly (text, width, FALSE);
}

#define ASSERT_FITS_80(text) CU_ASSERT (fits ((text), 80))

/* The section of docs/commands.md for @command, up to the next heading. */
static char *
docs_section (const char *docs, const char *command)
{
  g_autofree char *heading = g_strdup_printf ("\n### canopyctl %s\n", command);
  const char *start = strstr (docs, heading);
  const char *end;

  if (start == NULL)
    return NULL;
  end = strstr (start + strlen (heading), "\n### ");
  return end != NULL ? g_strndup (start, (gsize) (end - start)) : g_strdup (start);
}

/* The command's own options as its help lists them: lines "  --NAME"
 * between "Options:" and the global --json. */
static GPtrArray *
own_options (const char *help)
{
  GPtrArray *options = g_ptr_array_new_with_free_func (g_free);
  const char *start = strstr (help, "Options:\n");
  g_auto (GStrv) lines = NULL;

  if (start == NULL)
    return options;
  lines = g_strsplit (start, "\n", -1);
  for (char **l = lines + 1; *l != NULL; l++)
    {
      if (g_str_has_prefix (*l, "  --json"))
        break;
      if (g_str_has_prefix (*l, "  --"))
        g_ptr_array_add (options, g_strndup (*l + 2, strcspn (*l + 2, " ")));
    }
  return options;
}

/* Walks the command table ("help --list"): each command has --help with
 * usage, options and an example, the same as "help COMMAND", within 80
 * columns, and a section of docs/commands.md with each of its options. */
static void
test_help_every_command (void)
{
  g_autofree char *docs_path = canopy_test_src_path ("docs", "commands.md", NULL);
  g_autofree char *docs = NULL;
  g_autofree char *dir = canopy_test_make_tmpdir ("ctl-help");
  g_autofree char *profile = g_build_filename (dir, "no-profile", NULL);
  g_auto (CtlRun) list = { 0 };
  g_auto (CtlRun) run = { 0 };
  g_auto (GStrv) names = NULL;
  guint n = 0;

  g_assert (g_file_get_contents (docs_path, &docs, NULL, NULL));
  ctl_run (&list, profile, 80, "help", "--list", NULL);
  CU_ASSERT_EQUAL_FATAL (list.status, 0);
  names = g_strsplit (g_strstrip (list.out), "\n", -1);
  for (char **name = names; *name != NULL; name++, n++)
    {
      g_auto (CtlRun) again = { 0 };
      g_autofree char *usage = g_strdup_printf ("Usage:\n  canopyctl %s", *name);
      g_autofree char *example = g_strdup_printf ("Example:\n  canopyctl %s", *name);
      g_autofree char *synopsis = g_strdup_printf ("    canopyctl %s", *name);
      g_autofree char *section = docs_section (docs, *name);
      g_autoptr (GPtrArray) options = NULL;

      /* No profile exists: --help must not need the server. */
      ctl_run (&run, profile, 80, *name, "--help", NULL);
      CU_ASSERT_EQUAL (run.status, 0);
      CANOPY_ASSERT_CONTAINS (run.out, usage);
      CANOPY_ASSERT_CONTAINS (run.out, "Options:\n");
      CANOPY_ASSERT_CONTAINS (run.out, example);
      ASSERT_FITS_80 (run.out);
      ctl_run (&again, profile, 80, "help", *name, NULL);
      CU_ASSERT_EQUAL (again.status, 0);
      CU_ASSERT_STRING_EQUAL (again.out, run.out);
      if (section == NULL)
        {
          printf ("\n    docs/commands.md has no section \"### canopyctl %s\"\n", *name);
          CU_FAIL ("a command without its section in docs/commands.md");
          continue;
        }
      CANOPY_ASSERT_CONTAINS (section, synopsis);
      CANOPY_ASSERT_CONTAINS (section, "Example:");
      options = own_options (run.out);
      for (guint i = 0; i < options->len; i++)
        {
          g_autofree char *quoted = g_strdup_printf ("`%s", (char *) g_ptr_array_index (options, i));
          CANOPY_ASSERT_CONTAINS (section, quoted);
        }
    }
  CU_ASSERT (n >= 30);

  /* The global help fits too, and names the exit statuses. */
  ctl_run (&run, profile, 80, "help", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  ASSERT_FITS_80 (run.out);
  CANOPY_ASSERT_CONTAINS (run.out, "9 a filter matched nothing");
  ctl_run (&run, profile, 80, "help", "no-such-command", NULL);
  CU_ASSERT_EQUAL (run.status, 2);
  CANOPY_ASSERT_CONTAINS (run.err, "There is no command \"no-such-command\"");
  /* --help is never an argument: no file named --help is opened. */
  ctl_run (&run, profile, 0, "topology-upload", "--help", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  CANOPY_ASSERT_CONTAINS (run.out, "canopyctl topology-upload FILE.csv");
  ctl_run (&run, profile, 0, "content-remove", "-h", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  CANOPY_ASSERT_CONTAINS (run.out, "canopyctl content-remove CONTENT");
}

/* The checker itself finds what is wrong, so a passing shape means
 * something. */
static void
test_schema_checker (void)
{
  g_autofree char *path = canopy_test_src_path ("tests", "integration", "ctl-schemas.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GString) problems = g_string_new (NULL);
  JsonObject *root, *commands;
  g_autoptr (JsonNode) good = json_from_string ("{\"program\": \"canopyctl\", \"version\": \"1\"}",
                                                NULL);
  g_autoptr (JsonNode) extra = json_from_string (
    "{\"program\": \"canopyctl\", \"version\": \"1\", \"more\": 1}", NULL);
  g_autoptr (JsonNode) bare = json_from_string ("[]", NULL);
  g_autoptr (JsonNode) epoch = json_from_string (
    "{\"content\": [{\"id\": \"a\", \"name\": \"A\", \"version\": \"1\", \"location\": \"/a\", "
    "\"size\": 1, \"chunks\": 1, \"registered_at\": 1700000000}]}", NULL);
  g_autoptr (JsonNode) rfc = json_from_string (
    "{\"content\": [{\"id\": \"a\", \"name\": \"A\", \"version\": \"1\", \"location\": \"/a\", "
    "\"size\": 1, \"chunks\": 1, \"registered_at\": \"2026-05-04T09:30:00Z\"}]}", NULL);

  CU_ASSERT_FATAL (json_parser_load_from_file (parser, path, NULL));
  root = json_node_get_object (json_parser_get_root (parser));
  commands = json_object_get_object_member (root, "commands");
  CU_ASSERT (canopy_test_json_schema_check (
    root, json_object_get_object_member (commands, "version"), good, "$", problems));
  CU_ASSERT_FALSE (canopy_test_json_schema_check (
    root, json_object_get_object_member (commands, "version"), extra, "$", problems));
  CANOPY_ASSERT_CONTAINS (problems->str, "$.more: not in the schema");
  CU_ASSERT_FALSE (canopy_test_json_schema_check (
    root, json_object_get_object_member (commands, "content"), bare, "$", problems));
  CU_ASSERT_FALSE (canopy_test_json_schema_check (
    root, json_object_get_object_member (commands, "content"), epoch, "$", problems));
  CANOPY_ASSERT_CONTAINS (problems->str, "$.content[0].registered_at: integer");
  CU_ASSERT (canopy_test_json_schema_check (
    root, json_object_get_object_member (commands, "content"), rfc, "$", problems));
}

/* --- against a site ----------------------------------------------------------- */

typedef struct {
  JsonParser *parser;
  JsonObject *root;
  JsonObject *commands;
  char *profile;
  guint checked;
} Shapes;

/* Checks what @run printed on standard output against @command's schema. */
static void
assert_shape (Shapes *shapes, const char *command, const CtlRun *run)
{
  JsonObject *schema = json_object_get_object_member (shapes->commands, command);
  g_autoptr (GString) problems = g_string_new (NULL);
  g_autoptr (JsonNode) value = json_from_string (run->out, NULL);

  CU_ASSERT_PTR_NOT_NULL_FATAL (schema);
  if (value == NULL)
    {
      printf ("\n    %s --json printed no JSON: %s\n", command, run->out);
      CU_FAIL ("not JSON");
      return;
    }
  if (!canopy_test_json_schema_check (shapes->root, schema, value, "$", problems))
    printf ("\n    %s --json:\n%s", command, problems->str);
  CU_ASSERT_STRING_EQUAL (problems->str, "");
  shapes->checked++;
}

/* Runs "canopyctl --json COMMAND ARGS..." expecting @status and checks the shape. */
#define json_shape(shapes, run, expected, command, ...)                                     \
  G_STMT_START                                                                               \
  {                                                                                          \
    ctl_run ((run), (shapes)->profile, 0, "--json", command, __VA_ARGS__);                   \
    CU_ASSERT_EQUAL ((run)->status, (expected));                                             \
    assert_shape ((shapes), (expected) == 0 ? command : "error", (run));                     \
  }                                                                                          \
  G_STMT_END

static Shapes *
shapes_load (Shapes *shapes)
{
  g_autofree char *path = canopy_test_src_path ("tests", "integration", "ctl-schemas.json", NULL);

  shapes->parser = json_parser_new ();
  g_assert (json_parser_load_from_file (shapes->parser, path, NULL));
  shapes->root = json_node_get_object (json_parser_get_root (shapes->parser));
  shapes->commands = json_object_get_object_member (shapes->root, "commands");
  return shapes;
}

/* The offline commands' JSON: validate, licence-keygen, licence-show. */
static void
test_offline_json (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("ctl-offline");
  g_autofree char *key = g_build_filename (dir, "issuer.pem", NULL);
  g_autofree char *licence = g_build_filename (dir, "example.licence", NULL);
  g_autofree char *server = canopy_test_src_path ("conf", "canopyd.xml", NULL);
  g_autofree char *agent = canopy_test_src_path ("conf", "canopy-agent.xml", NULL);
  g_autofree char *broken = g_build_filename (dir, "broken.xml", NULL);
  g_autofree char *public_key = NULL;
  Shapes shapes = { 0 };
  g_auto (CtlRun) run = { 0 };

  shapes.profile = g_build_filename (dir, "no-profile", NULL);
  shapes_load (&shapes);
  g_assert (g_file_set_contents (broken, "<agent><nothing/></agent>", -1, NULL));
  json_shape (&shapes, &run, 0, "validate", server, agent, NULL);
  CANOPY_ASSERT_CONTAINS (run.out, "\"schema\" : \"canopy-agent\"");
  ctl_run (&run, shapes.profile, 0, "--json", "validate", server, broken, NULL);
  CU_ASSERT_EQUAL (run.status, 1);
  assert_shape (&shapes, "validate", &run);
  CANOPY_ASSERT_CONTAINS (run.out, "\"valid\" : false");
  json_shape (&shapes, &run, 0, "licence-keygen", key, NULL);
  {
    g_autoptr (JsonNode) answer = json_from_string (run.out, NULL);
    public_key = g_strdup (json_object_get_string_member (json_node_get_object (answer),
                                                          "public_key"));
  }
  ctl_run (&run, shapes.profile, 0, "licence-issue", "--key", key, "--customer", "Example Ltd",
           "--seats", "5", "--expires", "2031-01-31", NULL);
  CU_ASSERT_EQUAL_FATAL (run.status, 0);
  g_assert (g_file_set_contents (licence, run.out, -1, NULL));
  json_shape (&shapes, &run, 0, "licence-show", licence, public_key, NULL);
  CANOPY_ASSERT_CONTAINS (run.out, "\"expires\" : \"2031-01-31T23:59:59Z\"");
  CU_ASSERT_EQUAL (shapes.checked, 4);
  g_clear_object (&shapes.parser);
  g_free (shapes.profile);
}

static char *
ctl_login (CanopyTestSite *s)
{
  char *profile = g_build_filename (s->dir, "ctl-profile", NULL);
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u", s->console_port);
  g_autofree char *certificate = g_build_filename (s->state, "console-cert.pem", NULL);
  g_autofree char *token_file = g_build_filename (s->dir, "admin-token", NULL);
  g_auto (CtlRun) run = { 0 };

  g_assert (g_file_set_contents_full (token_file, s->token, -1, G_FILE_SET_CONTENTS_NONE, 0600,
                                      NULL));
  ctl_run (&run, profile, 0, "login", "--server", url, "--certificate", certificate,
           "--token-file", token_file, NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  return profile;
}

/* Waits until canopyctl lists @expected devices online by name. */
static gboolean
wait_devices (const char *profile, guint expected)
{
  gint64 end = g_get_monotonic_time () + canopy_test_timeout (60) * G_USEC_PER_SEC;
  g_auto (CtlRun) run = { 0 };

  while (g_get_monotonic_time () < end)
    {
      g_auto (GStrv) lines = NULL;

      ctl_run (&run, profile, 0, "devices", "-o", "name", NULL);
      lines = g_strsplit (g_strstrip (run.out), "\n", -1);
      if (run.status == 0 && run.out[0] != '\0' && g_strv_length (lines) >= expected)
        return TRUE;
      g_usleep (G_USEC_PER_SEC / 4);
    }
  return FALSE;
}

/* Devices by name: the agent's <name>, else its host name; the IDs one
 * flag away; --no-headers; a filter matching none exits 9. */
static void
check_devices (CanopyTestSite *s, const char *profile)
{
  g_auto (CtlRun) run = { 0 };
  const char *host = g_get_host_name ();

  ctl_run (&run, profile, 0, "devices", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  for (guint o = 1; o <= OFFICES; o++)
    for (guint i = 1; i <= AGENTS_PER_OFFICE; i++)
      {
        g_autofree char *name = g_strdup_printf ("pc-%u-%u", o, i);
        CANOPY_ASSERT_CONTAINS (run.out, name);
      }
  CANOPY_ASSERT_CONTAINS (run.out, host);
  CU_ASSERT_PTR_NULL (strstr (run.out, s->device_ids[0]));
  ctl_run (&run, profile, 0, "devices", "-o", "wide", NULL);
  CANOPY_ASSERT_CONTAINS (run.out, s->device_ids[0]);
  CANOPY_ASSERT_CONTAINS (run.out, "WHY PREFERRED");
  ctl_run (&run, profile, 0, "devices", "--no-headers", "--office", "North", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  CU_ASSERT_PTR_NULL (strstr (run.out, "OFFICE"));
  CANOPY_ASSERT_CONTAINS (run.out, "pc-1-1");
  CU_ASSERT_PTR_NULL (strstr (run.out, "pc-2-1"));
  ctl_run (&run, profile, 0, "devices", "--group", "Nowhere", NULL);
  CU_ASSERT_EQUAL (run.status, 9);
  CANOPY_ASSERT_CONTAINS (run.err, "No device matches --group Nowhere");
}

/* Content by "NAME VERSION", an ambiguous name refused with both listed. */
static void
check_names (CanopyTestSite *s, const char *profile, const char *destination)
{
  g_auto (CtlRun) run = { 0 };

  ctl_run (&run, profile, 0, "content", "-o", "name", NULL);
  CU_ASSERT_STRING_EQUAL (run.out, "Package 1.0\nPackage 2.0\n");
  ctl_run (&run, profile, 0, "deploy", "--content", "Package", "--group", "Branch",
           "--destination", destination, NULL);
  CU_ASSERT_EQUAL (run.status, 2);
  CANOPY_ASSERT_CONTAINS (run.err, "\"Package\" could be any of 2 contents:");
  CANOPY_ASSERT_CONTAINS (run.err, "Package 1.0 (");
  CANOPY_ASSERT_CONTAINS (run.err, "Package 2.0 (");
  ctl_run (&run, profile, 0, "deploy", "--content", "Nothing 9", "--group", "Branch",
           "--destination", destination, NULL);
  CU_ASSERT_EQUAL (run.status, 7);
}

/* A real deployment followed by canopyctl: names, prefix, progress lines
 * (standard error is not a terminal: plain lines), the final summary. */
static char *
check_deploy_and_wait (CanopyTestSite *s, Shapes *shapes, const char *destination)
{
  g_auto (CtlRun) run = { 0 };
  g_autofree char *timeout = g_strdup_printf ("%u", canopy_test_timeout (300));
  g_autofree char *id = NULL, *prefix = NULL, *lead_line = NULL;
  guint expected = OFFICES * AGENTS_PER_OFFICE + 1;
  g_autofree char *final = g_strdup_printf ("every device is done (%u of %u)", expected,
                                            expected);

  canopy_test_site_stop_origin (s);
  json_shape (shapes, &run, 0, "deploy", "--content", "Package 1.0", "--group", "Branch",
              "--destination", destination, NULL);
  CANOPY_ASSERT_CONTAINS (run.err, "\"Package 1.0\" is content Package 1.0");
  {
    g_autoptr (JsonNode) answer = json_from_string (run.out, NULL);
    id = g_strdup (json_object_get_string_member (json_node_get_object (answer), "id"));
  }
  prefix = g_strndup (id, 6);
  /* The origin is stopped, so nothing can finish: the wait runs out
   * after its progress lines, whatever the machine's speed. */
  ctl_run (&run, shapes->profile, 0, "deployment-wait", prefix, "--timeout", "2", NULL);
  CU_ASSERT_EQUAL (run.status, 6);
  CANOPY_ASSERT_CONTAINS (run.err, id);
  CANOPY_ASSERT_CONTAINS (run.err, " devices done, ");
  CANOPY_ASSERT_CONTAINS (run.err, " left; WAN: ");
  CANOPY_ASSERT_CONTAINS (run.err, "when the wait of 2 s ran out");
  canopy_test_site_restart_origin (s);
  ctl_run (&run, shapes->profile, 0, "deployment-wait", prefix, "--timeout", timeout, NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  CANOPY_ASSERT_CONTAINS (run.out, final);
  CANOPY_ASSERT_CONTAINS (run.out, "North ");
  CANOPY_ASSERT_CONTAINS (run.out, "South ");
  json_shape (shapes, &run, 0, "deployment-wait", id, NULL);
  /* The deployment shows the content by name and each lead by name. */
  ctl_run (&run, shapes->profile, 0, "deployments", NULL);
  CANOPY_ASSERT_CONTAINS (run.out, ": Package 1.0 to Branch at ");
  CANOPY_ASSERT_CONTAINS (run.out, " pc-");
  /* The same deployment again is refused, naming the one that exists. */
  ctl_run (&run, shapes->profile, 0, "deploy", "--content", "Package 1.0", "--group", "Branch",
           "--destination", destination, NULL);
  CU_ASSERT_EQUAL (run.status, 1);
  CANOPY_ASSERT_CONTAINS (run.err, id);
  return g_steal_pointer (&id);
}

/* Every table and the help fit 80 columns. */
static void
check_widths (const char *profile)
{
  const char *const commands[] = { "devices", "offices", "content", "deployments", "health",
                                   "settings", "admins", "content-store", "whoami", "help",
                                   NULL };
  g_auto (CtlRun) run = { 0 };

  for (const char *const *c = commands; *c != NULL; c++)
    {
      ctl_run (&run, profile, 80, *c, NULL);
      CU_ASSERT_EQUAL (run.status, 0);
      if (!fits (run.out, 80))
        printf ("    (canopyctl %s)\n", *c);
      ASSERT_FITS_80 (run.out);
    }
  /* -o wide is whole: the devices' reasons are longer than 80. */
  ctl_run (&run, profile, 80, "devices", "-o", "wide", NULL);
  CU_ASSERT_FALSE (fits_quietly (run.out, 80, TRUE));
}

static void
check_shapes (Shapes *shapes, const char *deployment)
{
  g_auto (CtlRun) run = { 0 };
  const char *const reads[] = { "version", "whoami", "admins", "settings", "server-id", "health",
                                "devices", "offices", "content", "content-store", "deployments",
                                NULL };

  for (const char *const *c = reads; *c != NULL; c++)
    json_shape (shapes, &run, 0, *c, NULL);
  json_shape (shapes, &run, 0, "publish", NULL);
  json_shape (shapes, &run, 0, "deployment-cancel", deployment, NULL);
  json_shape (shapes, &run, 0, "deployment-remove", deployment, NULL);
  /* A refusal prints the server's JSON error. */
  json_shape (shapes, &run, 7, "deployment-remove", deployment, NULL);
  json_shape (shapes, &run, 1, "deploy", "--content", "Package 2.0", "--group", "Nowhere",
              "--destination", "/opt/never.bin", NULL);
}

/* login reads a token piped to it without printing a prompt, and
 * something that is not a token is a usage mistake (2). */
static void
check_login_from_pipe (CanopyTestSite *s)
{
  g_autofree char *exe = canopy_test_build_path ("canopyctl", NULL);
  g_autofree char *profile = g_build_filename (s->dir, "piped-profile", NULL);
  g_autofree char *url = g_strdup_printf ("https://127.0.0.1:%u", s->console_port);
  g_autofree char *certificate = g_build_filename (s->state, "console-cert.pem", NULL);
  g_autofree char *token_file = g_build_filename (s->dir, "admin-token", NULL);
  g_autofree char *key_file = g_build_filename (s->state, "shared-key", NULL);
  const char *script = "exec \"$0\" --profile \"$1\" login --server \"$2\" "
                       "--certificate \"$3\" < \"$4\"";
  g_autofree char *out = NULL, *err = NULL;
  int wait_status = 0;
  const char *argv[] = { "/bin/sh", "-c", script, exe, profile, url, certificate, token_file,
                         NULL };

  CU_ASSERT_FATAL (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &wait_status, NULL));
  CU_ASSERT (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0);
  CU_ASSERT_PTR_NULL (strstr (err, "Admin token ("));
  CANOPY_ASSERT_CONTAINS (out, "Logged in");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  argv[7] = key_file;
  CU_ASSERT_FATAL (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &wait_status, NULL));
  CU_ASSERT (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 2);
  CANOPY_ASSERT_CONTAINS (err, "not an admin token");
}

/* Each documented exit status, from its real cause. */
static void
check_exit_statuses (CanopyTestSite *s, Shapes *shapes)
{
  g_autofree char *missing = g_build_filename (s->dir, "no-such-profile", NULL);
  g_autofree char *unreachable = g_build_filename (s->dir, "unreachable-profile", NULL);
  g_autofree char *wrong = g_build_filename (s->dir, "wrong-token-profile", NULL);
  g_autofree char *profile = NULL, *text = NULL;
  g_auto (CtlRun) run = { 0 };
  g_autoptr (GKeyFile) file = g_key_file_new ();

  g_assert (g_file_get_contents (shapes->profile, &profile, NULL, NULL));
  g_assert (g_key_file_load_from_data (file, profile, -1, G_KEY_FILE_NONE, NULL));
  g_key_file_set_string (file, "console", "token",
                         "cnp_0123456789abcdef_0123456789abcdef0123456789abcdef"
                         "0123456789abcdef0123456789abcdef");
  g_assert (g_key_file_save_to_file (file, wrong, NULL));
  g_key_file_set_string (file, "console", "url", "https://127.0.0.1:1");
  g_assert (g_key_file_save_to_file (file, unreachable, NULL));

  ctl_run (&run, shapes->profile, 0, "deploy", "--content", NULL);
  CU_ASSERT_EQUAL (run.status, 2);
  check_login_from_pipe (s);
  ctl_run (&run, unreachable, 0, "settings", NULL);
  CU_ASSERT_EQUAL (run.status, 3);
  ctl_run (&run, wrong, 0, "settings", NULL);
  CU_ASSERT_EQUAL (run.status, 4);
  ctl_run (&run, shapes->profile, 0, "deployment-wait", "ffffffff-no-such", NULL);
  CU_ASSERT_EQUAL (run.status, 7);
  ctl_run (&run, missing, 0, "settings", NULL);
  CU_ASSERT_EQUAL (run.status, 8);
  CANOPY_ASSERT_CONTAINS (run.err, "canopyctl login");
  ctl_run (&run, shapes->profile, 0, "devices", "--office", "Nowhere", NULL);
  CU_ASSERT_EQUAL (run.status, 9);
  ctl_run (&run, shapes->profile, 0, "--json", "logout", NULL);
  CU_ASSERT_EQUAL (run.status, 0);
  assert_shape (shapes, "logout", &run);
}

static void
test_site (void)
{
  CanopyTestSite *s = &site;
  /* A WAN rate, so the wait sees the download under way. */
  CanopyTestSiteOptions options = { .wan_rate = "20M",
                                    .content_size = CANOPY_TEST_SITE_VALGRIND_CONTENT_SIZE };
  g_autofree char *destination = NULL, *deployment = NULL, *second = NULL, *body = NULL;
  g_autoptr (JsonNode) added = NULL;
  Shapes shapes = { 0 };
  g_auto (CtlRun) run = { 0 };

  if (!canopy_test_site_available ())
    return;
  shapes_load (&shapes);

  canopy_test_site_begin (s, &options);
  canopy_test_site_start_agents (s);
  s->agents[canopy_test_site_slot (1, AGENTS_PER_OFFICE)] =
    canopy_test_site_agent_start (s, 1, AGENTS_PER_OFFICE);
  shapes.profile = ctl_login (s);
  CU_ASSERT_FATAL (wait_devices (shapes.profile, OFFICES * AGENTS_PER_OFFICE + 1));
  check_devices (s, shapes.profile);

  g_free (canopy_test_site_register (s));
  body = g_strdup_printf ("{\"name\": \"Package\", \"version\": \"2.0\", \"location\": \"%s\"}",
                          s->origin_url);
  added = canopy_test_site_api (s, "POST", "/api/v1/content", body, SOUP_STATUS_CREATED);
  destination = g_build_filename (s->dir, "copies", "package.bin", NULL);
  check_names (s, shapes.profile, destination);
  deployment = check_deploy_and_wait (s, &shapes, destination);
  check_widths (shapes.profile);
  check_shapes (&shapes, deployment);
  check_exit_statuses (s, &shapes);
  /* Every command with JSON output was checked. */
  CU_ASSERT (shapes.checked >= 19);

  canopy_test_site_stop (s, TRUE);
  g_clear_object (&shapes.parser);
  g_free (shapes.profile);
}

CANOPY_TEST_SUITE (ctl, "ctl", NULL, suite_cleanup,
                   { "every command has --help and a docs section", test_help_every_command },
                   { "the JSON schema checker finds what is wrong", test_schema_checker },
                   { "offline commands print JSON of their own shape", test_offline_json },
                   { "names, prefixes, progress, widths, JSON shapes, exit statuses",
                     test_site });
