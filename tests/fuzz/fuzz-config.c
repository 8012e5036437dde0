/* Fuzz targets: a configuration file of canopyd or canopy-agent (or the
 * XML of a plugin's element), parsed and checked against its schema. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "lib/config.h"

static gboolean
fuzz_config (const uint8_t *data, size_t size, const char *schema)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config =
    canopy_config_load_data ((const char *) data, (gssize) size, "fuzz.xml", schema, &error);

  if (config == NULL)
    {
      g_assert (error != NULL);
      return FALSE;
    }
  g_assert (error == NULL);
  g_free (canopy_config_node_to_xml (canopy_config_get_root (config)));
  return TRUE;
}

gboolean
canopy_fuzz_config_server (const uint8_t *data, size_t size)
{
  return fuzz_config (data, size, CANOPY_SCHEMA_SERVER);
}

gboolean
canopy_fuzz_config_agent (const uint8_t *data, size_t size)
{
  return fuzz_config (data, size, CANOPY_SCHEMA_AGENT);
}
