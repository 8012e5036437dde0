/* The Peer Distribution settings an admin changes at run time: server
 * name, distribution optimization with its topology, assigned groups,
 * what no-office clients get.
 * The configuration file gives the first values; a change made through
 * the console is kept in the backend and wins over the file from then on. */
#pragma once

#include <json-glib/json-glib.h>
#include "lib/topology.h"
#include "server/server-config.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

#define CANOPY_SETTINGS_ERROR (canopy_settings_error_quark ())
GQuark canopy_settings_error_quark (void);

typedef enum {
  CANOPY_SETTINGS_ERROR_INVALID,       /* a value of the wrong type or form */
  CANOPY_SETTINGS_ERROR_UNKNOWN_FIELD, /* a field this server does not know */
  CANOPY_SETTINGS_ERROR_NO_TOPOLOGY,   /* optimization on without a spreadsheet */
  CANOPY_SETTINGS_ERROR_TOPOLOGY,      /* the spreadsheet has problems */
} CanopySettingsError;

/* Each setting, as a bit: which were changed, which come from the backend. */
typedef enum {
  CANOPY_SETTINGS_NAME = 1 << 0,
  CANOPY_SETTINGS_OPTIMIZATION = 1 << 1,
  CANOPY_SETTINGS_GROUPS = 1 << 2,
  CANOPY_SETTINGS_TOPOLOGY = 1 << 3,
  CANOPY_SETTINGS_NO_OFFICE = 1 << 4,
} CanopySettingsField;

/* What a device whose address is in no office of the topology gets. */
typedef enum {
  CANOPY_NO_OFFICE_ORIGIN, /* enrolled, no peer-to-peer: fetches from the origin */
  CANOPY_NO_OFFICE_REFUSE, /* refused: stays dormant */
} CanopyNoOfficeClients;

const char *canopy_no_office_clients_to_string (CanopyNoOfficeClients value);

typedef struct {
  char *name;                         /* the Server Name/IP setting */
  gboolean distribution_optimization;
  GStrv assigned_groups;
  char *topology_csv;                 /* the spreadsheet, or NULL when none */
  CanopyNoOfficeClients no_office_clients;
  guint stored;                       /* CanopySettingsField kept in the backend */
} CanopySettings;

/**
 * canopy_settings_new_from_config:
 * @error: the topology spreadsheet the file names cannot be read
 *
 * The settings as the configuration file gives them. Reads the topology
 * spreadsheet when distribution optimization is on (blocking: at start).
 */
CanopySettings *canopy_settings_new_from_config (const CanopyServerConfig *config,
                                                 GError **error);
CanopySettings *canopy_settings_copy (const CanopySettings *settings);
void canopy_settings_free (CanopySettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopySettings, canopy_settings_free)

/* Overlays the values kept in the backend (blocking: at start). */
gboolean canopy_settings_load_stored (CanopySettings *settings, CanopyStore *store,
                                      GError **error);

/* Takes the file's values of @config for every setting not kept in the backend. */
void canopy_settings_update_from_config (CanopySettings *settings,
                                         const CanopyServerConfig *config);

/* Queues the @fields of @settings for the backend and marks them stored. */
void canopy_settings_save (CanopySettings *settings, guint fields, CanopyStore *store);

/**
 * canopy_settings_build_topology:
 * @problems: (out) (optional) (transfer full): with
 *   %CANOPY_SETTINGS_ERROR_TOPOLOGY, each problem of the spreadsheet
 * @locations: (out) (optional) (transfer full): the line and column of
 *   each problem (#CanopyTopologyLocation)
 *
 * Returns: (transfer full): the spreadsheet's offices when distribution
 *   optimization is on, otherwise an empty topology that reported subnets
 *   fill.
 */
CanopyTopology *canopy_settings_build_topology (const CanopySettings *settings,
                                                GPtrArray **problems, GArray **locations,
                                                GError **error);

/* Returns: (transfer full): the settings as the console shows them. */
JsonNode *canopy_settings_to_json (const CanopySettings *settings);

/**
 * canopy_settings_apply_json:
 * @object: the fields to change; those left out keep their value
 * @changed: (out): the CanopySettingsField whose value differs now
 * @error: names the field at fault; nothing is changed then
 */
gboolean canopy_settings_apply_json (CanopySettings *settings, JsonObject *object,
                                     guint *changed, GError **error);

/* Returns: (transfer full): "old → new" of @field, for the audit log. */
char *canopy_settings_describe_change (const CanopySettings *before,
                                       const CanopySettings *after, CanopySettingsField field);

/* Returns: the audit action naming @field ("settings.assigned-groups"). */
const char *canopy_settings_field_to_action (CanopySettingsField field);

/* Whether @name is a host name or an IP address. */
gboolean canopy_settings_check_name (const char *name, GError **error);

/* Overlays one stored setting record (another server of the cluster
 * changed it). */
void canopy_settings_load_record (CanopySettings *settings, const char *key, GVariant *value);

G_END_DECLS
