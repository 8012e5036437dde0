/* Fuzz target: the body of PUT /api/v1/settings, read as the console API
 * reads it and applied to settings; a refused body changes nothing. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "server/console/console-json.h"
#include "server/distribution-settings.h"

static const char topology_csv[] =
  "office,parent,type,subnets,wan_rate,metered\n"
  "North,,Default,10.0.1.0/24,200M,no\n";

gboolean
canopy_fuzz_settings (const uint8_t *data, size_t size)
{
  const char *groups[] = { "Branch", NULL };
  CanopySettings initial = { (char *) "p2p.example.com", FALSE, (GStrv) groups,
                             (char *) topology_csv, 0 };
  g_autoptr (CanopySettings) settings = canopy_settings_copy (&initial);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;
  g_autoptr (JsonNode) shown = NULL;
  guint changed = 0;

  object = canopy_console_parse_object ((const char *) data, size, &error);
  if (object == NULL)
    {
      g_assert (error != NULL);
      return FALSE;
    }
  if (!canopy_settings_apply_json (settings, object, &changed, &error))
    {
      g_assert (error != NULL);
      g_assert (changed == 0);
      g_assert_cmpstr (settings->name, ==, initial.name);
      g_assert (g_strv_equal ((const char *const *) settings->assigned_groups, groups));
      return FALSE;
    }
  g_assert (error == NULL);
  for (guint field = CANOPY_SETTINGS_NAME; field <= CANOPY_SETTINGS_GROUPS; field <<= 1)
    if (changed & field)
      {
        g_autofree char *change = canopy_settings_describe_change (&initial, settings, field);
        g_assert (change != NULL);
      }
  shown = canopy_settings_to_json (settings);
  g_assert (shown != NULL);
  return TRUE;
}
