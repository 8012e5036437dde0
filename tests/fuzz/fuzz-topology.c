/* Fuzz target: the topology spreadsheet an admin uploads. A spreadsheet
 * accepted must export to one that imports to the same export. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "lib/topology.h"

gboolean
canopy_fuzz_topology (const uint8_t *data, size_t size)
{
  g_autofree char *csv = g_strndup ((const char *) data, size);
  g_autoptr (GPtrArray) errors = NULL;
  g_autoptr (GArray) locations = NULL;
  g_autoptr (CanopyTopology) topology = NULL;
  g_autoptr (CanopyTopology) again = NULL;
  g_autoptr (GPtrArray) again_errors = NULL;
  g_autofree char *exported = NULL;
  g_autofree char *exported_again = NULL;

  topology = canopy_topology_import_csv_located (csv, NULL, &errors, &locations);
  if (topology == NULL)
    {
      g_assert (errors != NULL && errors->len > 0);
      g_assert (locations != NULL && locations->len == errors->len);
      return FALSE;
    }
  exported = canopy_topology_export_csv (topology);
  again = canopy_topology_import_csv (exported, NULL, &again_errors);
  g_assert (again != NULL);
  exported_again = canopy_topology_export_csv (again);
  g_assert_cmpstr (exported, ==, exported_again);
  return TRUE;
}
