/* Console admins as releases before the admins table kept them: setting
 * records "admin/NAME" and "admin-token/ID" whose values are GVariant
 * text. Every backend's migration to the admins tables reads them with
 * this one parser, so the conversion is the same in every dialect. */
#pragma once

#include <glib.h>
#include <canopy/backend.h>

G_BEGIN_DECLS

/* The setting names' prefixes, for a migration's LIKE 'admin/%'. */
#define CANOPY_ADMIN_SETTING_PREFIX "admin/"
#define CANOPY_ADMIN_TOKEN_SETTING_PREFIX "admin-token/"

/**
 * CanopyAdminSettings:
 * @admins: a #GArray of #CanopyRecord of %CANOPY_RECORD_ADMIN (keys and
 *   values owned by the array)
 * @tokens: the same of %CANOPY_RECORD_ADMIN_TOKEN, each of an admin in
 *   @admins
 * @moved: (element-type utf8): the names of the settings to delete: those
 *   converted, and tokens of no admin (they could never sign in). A
 *   damaged setting is in none of the three: it stays where it was, with
 *   a warning naming it.
 *
 * What a migration writes and deletes.
 */
typedef struct {
  GArray *admins;
  GArray *tokens;
  GPtrArray *moved;
} CanopyAdminSettings;

/** canopy_admin_settings_init: zeroes and prepares @settings. */
void canopy_admin_settings_init (CanopyAdminSettings *settings);

/** canopy_admin_settings_clear: frees what @settings holds. */
void canopy_admin_settings_clear (CanopyAdminSettings *settings);

/**
 * canopy_admin_settings_add:
 * @name: a setting's name
 * @value: its value (the text of a CANOPY_RECORD_SETTING_TYPE record)
 *
 * Takes one setting in any order.
 *
 * Returns: %FALSE when @name is not an admin's or a token's setting.
 */
gboolean canopy_admin_settings_add (CanopyAdminSettings *settings, const char *name,
                                    const char *value);

/**
 * canopy_admin_settings_finish:
 *
 * After the last add: drops tokens whose admin is not among the admins,
 * and sorts both arrays by key.
 */
void canopy_admin_settings_finish (CanopyAdminSettings *settings);

G_END_DECLS
