/* The man pages (issue 21): made by tools/md2man.pl from docs/commands.md,
 * configuration.md and operations.md, each renders with man-db and groff
 * without a warning at 80 columns, and says what its reference says. */
#include "build-config.h"

#include "tests/canopy-test.h"

#include <string.h>

static const char *const pages[] = {
  "canopyd.8", "canopy-agent.8", "canopyctl.1", "canopyd.xml.5", "canopy-agent.xml.5", NULL,
};

/* The page as an admin reads it, with groff's warnings in @warnings. */
static char *
render (const char *page, char **warnings)
{
  g_autofree char *built = canopy_test_build_path ("man", page, NULL);
  /* From a tarball the pages come made, in the source tree. */
  g_autofree char *path = g_file_test (built, G_FILE_TEST_EXISTS)
                            ? g_strdup (built)
                            : canopy_test_src_path ("man", page, NULL);
  const char *argv[] = { "man", "--warnings", "-l", path, NULL };
  g_auto (GStrv) env = g_environ_setenv (g_get_environ (), "MANWIDTH", "80", TRUE);
  char *out = NULL;
  int status = -1;

  env = g_environ_setenv (env, "LC_ALL", "C.UTF-8", TRUE);
  if (!g_spawn_sync (NULL, (char **) argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, warnings,
                     &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    {
      g_free (out);
      return NULL;
    }
  return out;
}

static gboolean
have_man (void)
{
  g_autofree char *man = g_find_program_in_path ("man");
  g_autofree char *groff = g_find_program_in_path ("groff");

  if (man == NULL || groff == NULL)
    {
      canopy_test_skip ("man or groff is not installed (Debian packages man-db, groff-base; "
                        "tools/install-deps.sh installs them)");
      return FALSE;
    }
  return TRUE;
}

/* Every page renders at 80 columns with no warning (text wraps; only
 * examples, shown as written, may be wider), and has the sections an
 * admin looks for. */
static void
test_render (void)
{
  if (!have_man ())
    return;
  for (const char *const *page = pages; *page != NULL; page++)
    {
      g_autofree char *warnings = NULL;
      g_autofree char *text = render (*page, &warnings);

      if (text == NULL)
        fprintf (stderr, "\n    man -l %s failed: %s\n", *page, warnings != NULL ? warnings : "");
      CU_ASSERT_PTR_NOT_NULL_FATAL (text);
      if (warnings[0] != '\0')
        fprintf (stderr, "\n    man --warnings -l %s: %s\n", *page, warnings);
      CU_ASSERT_STRING_EQUAL (warnings, "");
      CANOPY_ASSERT_CONTAINS (text, "NAME\n");
      CANOPY_ASSERT_CONTAINS (text, "DESCRIPTION\n");
      CANOPY_ASSERT_CONTAINS (text, "SEE ALSO\n");
    }
}

/* @page, rendered as @text, says @needle. */
static void
assert_page_has (const char *page, const char *text, const char *needle)
{
  g_autoptr (GRegex) space = g_regex_new ("\\s+", 0, 0, NULL);
  /* A phrase may wrap: lines are joined, as for a reader. */
  g_autofree char *flat = g_regex_replace_literal (space, text, -1, 0, " ", 0, NULL);

  if (g_str_has_prefix (needle, "\n"))
    flat = (g_free (flat), g_strdup (text));
  if (strstr (flat, needle) == NULL)
    fprintf (stderr, "\n    %s does not say \"%s\"\n", page, needle);
  CU_ASSERT (strstr (flat, needle) != NULL);
}

/* Each page says what its reference says: every canopyctl command, every
 * element of each configuration file, every exit status, the journal
 * fields, so neither can lose what the other has. */
static void
test_same_as_docs (void)
{
  g_autofree char *commands_path = canopy_test_src_path ("docs", "commands.md", NULL);
  g_autofree char *config_path = canopy_test_src_path ("docs", "configuration.md", NULL);
  g_autofree char *commands = NULL, *config = NULL;
  g_autofree char *ctl = NULL, *server = NULL, *agent = NULL, *server_xml = NULL,
                  *agent_xml = NULL, *warnings = NULL;
  g_autoptr (GRegex) command = g_regex_new ("^\\| `([a-z][a-z-]*)[ `]", G_REGEX_MULTILINE, 0,
                                            NULL);
  g_autoptr (GRegex) heading = g_regex_new ("^#{2,4} (canopyctl [a-z-]+)$", G_REGEX_MULTILINE,
                                            0, NULL);
  g_autoptr (GRegex) element = g_regex_new ("^\\| `<([a-z-]+)[ >/]", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  const char *ctl_start, *agent_start, *plugins_start;
  guint n = 0;

  if (!have_man ())
    return;
  CU_ASSERT_FATAL (g_file_get_contents (commands_path, &commands, NULL, NULL));
  CU_ASSERT_FATAL (g_file_get_contents (config_path, &config, NULL, NULL));
  ctl = render ("canopyctl.1", &warnings);
  g_clear_pointer (&warnings, g_free);
  server = render ("canopyd.8", &warnings);
  g_clear_pointer (&warnings, g_free);
  agent = render ("canopy-agent.8", &warnings);
  g_clear_pointer (&warnings, g_free);
  server_xml = render ("canopyd.xml.5", &warnings);
  g_clear_pointer (&warnings, g_free);
  agent_xml = render ("canopy-agent.xml.5", &warnings);
  CU_ASSERT_FATAL (ctl != NULL && server != NULL && agent != NULL && server_xml != NULL
                   && agent_xml != NULL);

  /* canopyctl: each command of its table, or each "### canopyctl NAME". */
  ctl_start = strstr (commands, "### canopyctl");
  CU_ASSERT_PTR_NOT_NULL_FATAL (ctl_start);
  g_regex_match (command, ctl_start, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL), n++)
    {
      g_autofree char *name = g_match_info_fetch (match, 1);
      g_autofree char *shown = g_strdup_printf ("\n       %s", name);

      assert_page_has ("canopyctl.1", ctl, shown);
    }
  g_clear_pointer (&match, g_match_info_free);
  g_regex_match (heading, commands, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL), n++)
    {
      g_autofree char *name = g_match_info_fetch (match, 1);

      assert_page_has ("canopyctl.1", ctl, name);
    }
  g_clear_pointer (&match, g_match_info_free);
  CU_ASSERT (n >= 20);

  /* The daemons: options, exit statuses, the journal's fields. */
  assert_page_has ("canopyd.8", server, "--check-config FILE");
  assert_page_has ("canopyd.8", server, "admin-add NAME --role ROLE");
  assert_page_has ("canopyd.8", server, "EXIT STATUS");
  assert_page_has ("canopyd.8", server, "a runtime failure while starting");
  assert_page_has ("canopyd.8", server, "CANOPY_DEPLOYMENT");
  assert_page_has ("canopy-agent.8", agent, "canopy-agent --check-config FILE");
  assert_page_has ("canopy-agent.8", agent, "a runtime failure while starting");
  assert_page_has ("canopy-agent.8", agent, "CANOPY_DEVICE");

  /* The configuration files: every element of each. */
  agent_start = strstr (config, "## canopy-agent.xml");
  plugins_start = strstr (config, "## Plugin elements");
  CU_ASSERT_FATAL (agent_start != NULL && plugins_start != NULL && agent_start < plugins_start);
  n = 0;
  g_regex_match (element, config, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL), n++)
    {
      gint start;
      g_autofree char *name = g_match_info_fetch (match, 1);
      g_autofree char *shown = g_strdup_printf ("<%s", name);

      g_match_info_fetch_pos (match, 0, &start, NULL);
      if (config + start < agent_start)
        assert_page_has ("canopyd.xml.5", server_xml, shown);
      else if (config + start < plugins_start)
        assert_page_has ("canopy-agent.xml.5", agent_xml, shown);
      else
        assert_page_has ("canopyd.xml.5", server_xml, shown);
    }
  CU_ASSERT (n >= 20);
  assert_page_has ("canopyd.xml.5", server_xml, "TOPOLOGY SPREADSHEET");
}

CANOPY_TEST_SUITE (man, "man", NULL, NULL, { "every page renders without warnings", test_render },
                   { "pages say what the docs say", test_same_as_docs })
