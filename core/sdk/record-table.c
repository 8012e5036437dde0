/* Record kinds as relational tables: the one description of canopy's
 * schema that every backend shares (names, column types, which members
 * of a value become child rows), and the conversions between a value and
 * its rows. Each backend adds only its dialect: DDL and binding. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-backend"

#include <canopy/record-table.h>

#include <glib/gi18n-lib.h>
#include <string.h>

#define COLUMNS(a) a, G_N_ELEMENTS (a)

/* devices */
static const CanopyColumn device_keys[] = { { "device_id", CANOPY_COLUMN_UUID, "s" } };
static const CanopyColumn device_columns[] = {
  { "name", CANOPY_COLUMN_TEXT, "s" },
  { "agent_version", CANOPY_COLUMN_TEXT, "s" },
  { "office", CANOPY_COLUMN_TEXT, "s" },
  { "first_seen", CANOPY_COLUMN_TIME, "x" },
  { "last_seen", CANOPY_COLUMN_TIME, "x" },
  { "online_usec", CANOPY_COLUMN_INT64, "x" },
  { "bytes_served", CANOPY_COLUMN_INT64, "t" },
  { "peers_served", CANOPY_COLUMN_INT32, "u" },
  { "chunks_rejected", CANOPY_COLUMN_INT32, "u" },
};
static const CanopyColumn device_group_columns[] = {
  { "position", CANOPY_COLUMN_INT32, "u" },
  { "group_name", CANOPY_COLUMN_TEXT, "s" },
};
static const CanopyColumn device_address_columns[] = {
  { "position", CANOPY_COLUMN_INT32, "u" },
  { "address", CANOPY_COLUMN_TEXT, "s" },
  { "prefix_length", CANOPY_COLUMN_INT32, "y" },
};
static const CanopyChildTable device_children[] = {
  { "device_groups", COLUMNS (device_group_columns), NULL },
  { "device_addresses", COLUMNS (device_address_columns), NULL },
};
/* (name, groups, addresses, agent version, office, first seen, last seen,
 *  online, bytes served, peers served, chunks rejected) */
static const gint8 device_members[] = { 0, -1, -2, 1, 2, 3, 4, 5, 6, 7, 8 };

/* offices */
static const CanopyColumn office_keys[] = { { "office_name", CANOPY_COLUMN_TEXT, "s" } };
static const CanopyColumn office_columns[] = {
  { "parent", CANOPY_COLUMN_TEXT, "s" },
  { "office_type", CANOPY_COLUMN_INT32, "u" },
  { "wan_rate_bps", CANOPY_COLUMN_INT64, "t" },
  { "metered", CANOPY_COLUMN_BOOL, "b" },
  { "automatic", CANOPY_COLUMN_BOOL, "b" },
};
static const CanopyColumn office_subnet_columns[] = {
  { "position", CANOPY_COLUMN_INT32, "u" },
  { "subnet", CANOPY_COLUMN_TEXT, "s" },
};
static const CanopyChildTable office_children[] = {
  { "office_subnets", COLUMNS (office_subnet_columns), NULL },
};
static const gint8 office_members[] = { 0, 1, -1, 2, 3, 4 };

/* settings */
static const CanopyColumn setting_keys[] = { { "name", CANOPY_COLUMN_TEXT, "s" } };
static const CanopyColumn setting_columns[] = { { "value", CANOPY_COLUMN_TEXT, "s" } };
static const gint8 setting_members[] = { 0 };

/* contents */
static const CanopyColumn content_keys[] = { { "content_id", CANOPY_COLUMN_UUID, "s" } };
static const CanopyColumn content_columns[] = {
  { "name", CANOPY_COLUMN_TEXT, "s" },
  { "version", CANOPY_COLUMN_TEXT, "s" },
  { "origin", CANOPY_COLUMN_TEXT, "s" },
  { "manifest", CANOPY_COLUMN_BYTES, "ay" },
  { "registered_at", CANOPY_COLUMN_TIME, "x" },
  { "expires_at", CANOPY_COLUMN_TIME, "x" },
};
static const gint8 content_members[] = { 0, 1, 2, 3, 4, 5 };

/* deployments */
static const CanopyColumn deployment_keys[] = { { "deployment_id", CANOPY_COLUMN_UUID, "s" } };
static const CanopyColumn deployment_columns[] = {
  { "content_id", CANOPY_COLUMN_UUID, "s" },
  { "destination", CANOPY_COLUMN_TEXT, "s" },
  { "state", CANOPY_COLUMN_INT32, "u" },
  { "created_at", CANOPY_COLUMN_TIME, "x" },
  { "start_at", CANOPY_COLUMN_TIME, "x" },
  { "deadline", CANOPY_COLUMN_TIME, "x" },
  { "window_start_min", CANOPY_COLUMN_INT32, "u" },
  { "window_end_min", CANOPY_COLUMN_INT32, "u" },
  { "background", CANOPY_COLUMN_BOOL, "b" },
};
static const CanopyColumn deployment_group_columns[] = {
  { "position", CANOPY_COLUMN_INT32, "u" },
  { "group_name", CANOPY_COLUMN_TEXT, "s" },
};
static const CanopyChildTable deployment_children[] = {
  { "deployment_groups", COLUMNS (deployment_group_columns), NULL },
};
static const gint8 deployment_members[] = { 0, -1, 1, 2, 3, 4, 5, 6, 7, 8 };

/* assignments: one device's progress in one deployment */
static const CanopyColumn assignment_keys[] = {
  { "deployment_id", CANOPY_COLUMN_UUID, "s" },
  { "device_id", CANOPY_COLUMN_UUID, "s" },
};
static const CanopyColumn assignment_columns[] = {
  { "chunks_verified", CANOPY_COLUMN_INT32, "u" },
  { "done", CANOPY_COLUMN_BOOL, "b" },
};
static const CanopyColumn assignment_byte_columns[] = {
  { "source", CANOPY_COLUMN_TEXT, "s" },
  { "bytes", CANOPY_COLUMN_INT64, "t" },
};
/* The progress value's bytes by source kind, in its order; a new kind
 * appends a name here and needs no migration. */
static const char *const source_names[] = {
  "office-peer", "parent-office", "server", "origin", "earlier-versions", NULL,
};
static const CanopyChildTable assignment_children[] = {
  { "assignment_bytes", COLUMNS (assignment_byte_columns), source_names },
};
static const gint8 assignment_members[] = { 0, -1, 1 };

/* licences: the activations that count against the licence */
static const CanopyColumn licence_keys[] = { { "device_id", CANOPY_COLUMN_UUID, "s" } };
static const CanopyColumn licence_columns[] = {
  { "activated_at", CANOPY_COLUMN_TIME, "x" },
  { "last_seen", CANOPY_COLUMN_TIME, "x" },
  { "released_at", CANOPY_COLUMN_TIME, "x" },
};
static const gint8 licence_members[] = { 0, 1, 2 };

/* admins: console admins, and the tokens they sign in with (only the
 * SHA-256 of a token's secret is stored) */
static const CanopyColumn admin_keys[] = { { "admin_name", CANOPY_COLUMN_TEXT, "s" } };
static const CanopyColumn admin_columns[] = {
  { "role", CANOPY_COLUMN_TEXT, "s" },
  { "created_at", CANOPY_COLUMN_TIME, "x" },
};
static const gint8 admin_members[] = { 0, 1 };
static const CanopyColumn admin_token_keys[] = { { "token_id", CANOPY_COLUMN_TEXT, "s" } };
static const CanopyColumn admin_token_columns[] = {
  { "admin_name", CANOPY_COLUMN_TEXT, "s" },
  { "secret_sha256", CANOPY_COLUMN_BYTES, "ay" },
  { "created_at", CANOPY_COLUMN_TIME, "x" },
  { "expires_at", CANOPY_COLUMN_TIME, "x" },
};
static const gint8 admin_token_members[] = { 0, 1, 2, 3 };

static const CanopyTable record_tables[CANOPY_N_RECORD_KINDS] = {
  [CANOPY_RECORD_DEVICE] = { "devices", COLUMNS (device_keys), COLUMNS (device_columns),
                             COLUMNS (device_children), COLUMNS (device_members) },
  [CANOPY_RECORD_OFFICE] = { "offices", COLUMNS (office_keys), COLUMNS (office_columns),
                             COLUMNS (office_children), COLUMNS (office_members) },
  [CANOPY_RECORD_SETTING] = { "settings", COLUMNS (setting_keys), COLUMNS (setting_columns),
                              NULL, 0, COLUMNS (setting_members) },
  [CANOPY_RECORD_CONTENT] = { "contents", COLUMNS (content_keys), COLUMNS (content_columns),
                              NULL, 0, COLUMNS (content_members) },
  [CANOPY_RECORD_DEPLOYMENT] = { "deployments", COLUMNS (deployment_keys),
                                 COLUMNS (deployment_columns), COLUMNS (deployment_children),
                                 COLUMNS (deployment_members) },
  [CANOPY_RECORD_PROGRESS] = { "assignments", COLUMNS (assignment_keys),
                               COLUMNS (assignment_columns), COLUMNS (assignment_children),
                               COLUMNS (assignment_members) },
  [CANOPY_RECORD_ACTIVATION] = { "licences", COLUMNS (licence_keys), COLUMNS (licence_columns),
                                 NULL, 0, COLUMNS (licence_members) },
  [CANOPY_RECORD_ADMIN] = { "admins", COLUMNS (admin_keys), COLUMNS (admin_columns), NULL, 0,
                            COLUMNS (admin_members) },
  [CANOPY_RECORD_ADMIN_TOKEN] = { "admin_tokens", COLUMNS (admin_token_keys),
                                  COLUMNS (admin_token_columns), NULL, 0,
                                  COLUMNS (admin_token_members) },
};

/* transfers and audit: keyed by the backend's increasing id */
static const CanopyColumn transfer_columns[] = {
  { "at", CANOPY_COLUMN_TIME, "x" },
  { "content_id", CANOPY_COLUMN_TEXT, "s" },
  { "from_device", CANOPY_COLUMN_TEXT, "s" },
  { "to_device", CANOPY_COLUMN_TEXT, "s" },
  { "source", CANOPY_COLUMN_INT32, "u" },
  { "chunks", CANOPY_COLUMN_INT32, "u" },
  { "bytes", CANOPY_COLUMN_INT64, "t" },
  { "verified", CANOPY_COLUMN_BOOL, "b" },
};
static const gint8 transfer_members[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
static const CanopyColumn audit_columns[] = {
  { "at", CANOPY_COLUMN_TIME, "x" },
  { "actor", CANOPY_COLUMN_TEXT, "s" },
  { "action", CANOPY_COLUMN_TEXT, "s" },
  { "detail", CANOPY_COLUMN_TEXT, "s" },
};
static const gint8 audit_members[] = { 0, 1, 2, 3 };

static const CanopyTable log_tables[CANOPY_N_LOG_KINDS] = {
  [CANOPY_LOG_TRANSFER] = { "transfers", NULL, 0, COLUMNS (transfer_columns), NULL, 0,
                            COLUMNS (transfer_members) },
  [CANOPY_LOG_AUDIT] = { "audit", NULL, 0, COLUMNS (audit_columns), NULL, 0,
                         COLUMNS (audit_members) },
};

const CanopyTable *
canopy_record_table (CanopyRecordKind kind)
{
  g_return_val_if_fail (kind < CANOPY_N_RECORD_KINDS, NULL);
  return &record_tables[kind];
}

const CanopyTable *
canopy_log_table (CanopyLogKind kind)
{
  g_return_val_if_fail (kind < CANOPY_N_LOG_KINDS, NULL);
  return &log_tables[kind];
}

void
canopy_rows_clear (CanopyRows *rows)
{
  g_clear_pointer (&rows->keys, g_variant_unref);
  g_clear_pointer (&rows->columns, g_variant_unref);
  for (guint i = 0; i < CANOPY_TABLE_MAX_CHILDREN; i++)
    g_clear_pointer (&rows->children[i], g_ptr_array_unref);
}

static gboolean
is_uuid (const char *text)
{
  if (!g_uuid_string_is_valid (text))
    return FALSE;
  for (const char *c = text; *c != '\0'; c++)
    if (g_ascii_isupper (*c))
      return FALSE;
  return TRUE;
}

static gboolean
check_uuid (const CanopyTable *table, const CanopyColumn *column, const char *text,
            GError **error)
{
  if (column->type != CANOPY_COLUMN_UUID || is_uuid (text))
    return TRUE;
  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FAILED,
               _("Cannot store \"%s\" in %s.%s: it is not a lower-case UUID"), text,
               table->name, column->name);
  return FALSE;
}

GVariant *
canopy_table_split_key (const CanopyTable *table, const char *key, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (key, "/", (gint) table->n_keys);
  g_autofree GVariant **values = g_new0 (GVariant *, table->n_keys);

  if (g_strv_length (parts) != table->n_keys)
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FAILED,
                   _("The key \"%s\" of a row of %s does not have %u parts separated by "
                     "\"/\""), key, table->name, table->n_keys);
      return NULL;
    }
  for (guint i = 0; i < table->n_keys; i++)
    {
      if (!check_uuid (table, &table->keys[i], parts[i], error))
        {
          for (guint j = 0; j < i; j++)
            g_variant_unref (values[j]);
          return NULL;
        }
      values[i] = g_variant_ref_sink (g_variant_new_string (parts[i]));
    }
  {
    GVariant *tuple = g_variant_ref_sink (g_variant_new_tuple (values, table->n_keys));
    for (guint i = 0; i < table->n_keys; i++)
      g_variant_unref (values[i]);
    return tuple;
  }
}

char *
canopy_table_join_key (const CanopyTable *table, GVariant *keys)
{
  GString *key = g_string_new (NULL);

  for (guint i = 0; i < table->n_keys; i++)
    {
      g_autoptr (GVariant) part = g_variant_get_child_value (keys, i);
      if (i > 0)
        g_string_append_c (key, '/');
      g_string_append (key, g_variant_get_string (part, NULL));
    }
  return g_string_free (key, FALSE);
}

static GVariant *
position_value (const CanopyChildTable *child, guint index)
{
  if (child->position_names == NULL)
    return g_variant_new_uint32 (index);
  if (index < g_strv_length ((char **) child->position_names))
    return g_variant_new_string (child->position_names[index]);
  return g_variant_new_take_string (g_strdup_printf ("source-%u", index));
}

/* The index a stored position stands for, or -1. */
static gint64
position_index (const CanopyChildTable *child, GVariant *position)
{
  const char *name;

  if (child->position_names == NULL)
    return g_variant_is_of_type (position, G_VARIANT_TYPE_UINT32)
             ? (gint64) g_variant_get_uint32 (position)
             : -1;
  if (!g_variant_is_of_type (position, G_VARIANT_TYPE_STRING))
    return -1;
  name = g_variant_get_string (position, NULL);
  for (guint i = 0; child->position_names[i] != NULL; i++)
    if (g_str_equal (name, child->position_names[i]))
      return i;
  if (g_str_has_prefix (name, "source-"))
    {
      guint64 index;
      if (g_ascii_string_to_unsigned (name + 7, 10, 0, 1024, &index, NULL))
        return (gint64) index;
    }
  return -1;
}

/* One row of @child for element @index of a list member. */
static GVariant *
child_row (const CanopyChildTable *child, guint index, GVariant *element)
{
  g_autofree GVariant **values = g_new0 (GVariant *, child->n_columns);

  values[0] = position_value (child, index);
  if (child->n_columns == 2)
    values[1] = g_variant_ref (element);
  else
    for (guint i = 1; i < child->n_columns; i++)
      values[i] = g_variant_get_child_value (element, i - 1);
  {
    GVariant *row = g_variant_ref_sink (g_variant_new_tuple (values, child->n_columns));
    for (guint i = 1; i < child->n_columns; i++)
      g_variant_unref (values[i]);
    return row;
  }
}

gboolean
canopy_table_split (const CanopyTable *table, const char *key, GVariant *value, CanopyRows *rows,
                    GError **error)
{
  g_autofree GVariant **columns = g_new0 (GVariant *, table->n_columns);
  gboolean ok = TRUE;

  g_return_val_if_fail (g_variant_n_children (value) == table->n_members, FALSE);
  if (key != NULL && (rows->keys = canopy_table_split_key (table, key, error)) == NULL)
    return FALSE;
  for (guint m = 0; m < table->n_members; m++)
    {
      GVariant *member = g_variant_get_child_value (value, m);
      gint8 where = table->members[m];

      if (where >= 0)
        {
          columns[where] = member;
          if (g_variant_is_of_type (member, G_VARIANT_TYPE_STRING))
            ok = ok && check_uuid (table, &table->columns[where],
                                   g_variant_get_string (member, NULL), error);
          continue;
        }
      {
        const CanopyChildTable *child = &table->children[-1 - where];
        GPtrArray *child_rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
        gsize n = g_variant_n_children (member);

        for (gsize i = 0; i < n; i++)
          {
            g_autoptr (GVariant) element = g_variant_get_child_value (member, i);
            g_ptr_array_add (child_rows, child_row (child, (guint) i, element));
          }
        rows->children[-1 - where] = child_rows;
        g_variant_unref (member);
      }
    }
  rows->columns = g_variant_ref_sink (g_variant_new_tuple (columns, table->n_columns));
  for (guint i = 0; i < table->n_columns; i++)
    g_variant_unref (columns[i]);
  if (!ok)
    canopy_rows_clear (rows);
  return ok;
}

static gboolean
corrupt (const CanopyTable *table, const char *what, GError **error)
{
  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
               _("A stored row of %s is damaged (%s); restore the database from a backup"),
               table->name, what);
  return FALSE;
}

/* The list member kept in @child, rebuilt from its rows in position
 * order; a gap (a source kind with no row) reads as a zero value. */
static GVariant *
join_child (const CanopyTable *table, const CanopyChildTable *child, const GVariantType *type,
            GPtrArray *rows, GError **error)
{
  const GVariantType *element_type = g_variant_type_element (type);
  g_autoptr (GPtrArray) elements = g_ptr_array_new_with_free_func (
    (GDestroyNotify) g_variant_unref);

  for (guint r = 0; rows != NULL && r < rows->len; r++)
    {
      GVariant *row = g_ptr_array_index (rows, r);
      g_autoptr (GVariant) position = NULL;
      g_autoptr (GVariant) element = NULL;
      gint64 index;

      if (g_variant_n_children (row) != child->n_columns)
        return corrupt (table, child->name, error), NULL;
      position = g_variant_get_child_value (row, 0);
      index = position_index (child, position);
      if (index < 0 || index > 65536)
        return corrupt (table, child->name, error), NULL;
      if (child->n_columns == 2)
        element = g_variant_get_child_value (row, 1);
      else
        {
          g_autofree GVariant **parts = g_new0 (GVariant *, child->n_columns - 1);
          for (guint i = 1; i < child->n_columns; i++)
            parts[i - 1] = g_variant_get_child_value (row, i);
          element = g_variant_ref_sink (g_variant_new_tuple (parts, child->n_columns - 1));
          for (guint i = 1; i < child->n_columns; i++)
            g_variant_unref (parts[i - 1]);
        }
      if (!g_variant_is_of_type (element, element_type))
        return corrupt (table, child->name, error), NULL;
      while (elements->len <= (guint) index)
        g_ptr_array_add (elements, NULL);
      if (g_ptr_array_index (elements, index) != NULL)
        return corrupt (table, child->name, error), NULL;
      g_ptr_array_index (elements, index) = g_steal_pointer (&element);
    }
  for (guint i = 0; i < elements->len; i++)
    if (g_ptr_array_index (elements, i) == NULL)
      {
        if (!g_variant_type_is_basic (element_type))
          return corrupt (table, child->name, error), NULL;
        /* only sources with no bytes leave gaps */
        g_ptr_array_index (elements, i) = g_variant_ref_sink (
          g_variant_new_uint64 (0));
      }
  return g_variant_new_array (element_type, (GVariant **) elements->pdata, elements->len);
}

GVariant *
canopy_table_join (const CanopyTable *table, const CanopyRows *rows, GError **error)
{
  g_autofree GVariant **members = g_new0 (GVariant *, table->n_members);
  const GVariantType *type = NULL;
  g_autoptr (GVariantType) tuple_type = NULL;
  const GVariantType *member_type;

  if (rows->columns == NULL || g_variant_n_children (rows->columns) != table->n_columns)
    return corrupt (table, _("wrong number of columns"), error), NULL;
  /* the value's type, from the columns and the children's elements */
  {
    GString *signature = g_string_new ("(");
    for (guint m = 0; m < table->n_members; m++)
      {
        gint8 where = table->members[m];
        if (where >= 0)
          g_string_append (signature, table->columns[where].variant_type);
        else
          {
            const CanopyChildTable *child = &table->children[-1 - where];
            g_string_append_c (signature, 'a');
            if (child->n_columns > 2)
              g_string_append_c (signature, '(');
            for (guint i = 1; i < child->n_columns; i++)
              g_string_append (signature, child->columns[i].variant_type);
            if (child->n_columns > 2)
              g_string_append_c (signature, ')');
          }
      }
    g_string_append_c (signature, ')');
    tuple_type = g_variant_type_new (signature->str);
    g_string_free (signature, TRUE);
  }
  member_type = g_variant_type_first (tuple_type);
  for (guint m = 0; m < table->n_members; m++, member_type = g_variant_type_next (member_type))
    {
      gint8 where = table->members[m];
      GVariant *member;

      if (where >= 0)
        member = g_variant_get_child_value (rows->columns, (gsize) where);
      else
        member = join_child (table, &table->children[-1 - where], member_type,
                             rows->children[-1 - where], error);
      if (member == NULL)
        goto failed;
      /* A child value is a new full reference, a joined list a floating
       * one: either way, one reference of our own. */
      members[m] = g_variant_take_ref (member);
      if (!g_variant_is_of_type (members[m], member_type))
        {
          corrupt (table, _("a value of the wrong type"), error);
          goto failed;
        }
    }
  (void) type;
  {
    GVariant *value = g_variant_new_tuple (members, table->n_members);
    for (guint m = 0; m < table->n_members; m++)
      g_variant_unref (members[m]);
    return value;
  }
failed:
  for (guint m = 0; m < table->n_members; m++)
    if (members[m] != NULL)
      g_variant_unref (members[m]);
  return NULL;
}

/* The zero value of @type: 0, "", FALSE, empty arrays, tuples of zeros. */
static GVariant *
zero_value (const GVariantType *type)
{
  if (g_variant_type_is_array (type))
    return g_variant_new_array (g_variant_type_element (type), NULL, 0);
  if (g_variant_type_is_tuple (type))
    {
      GVariantBuilder builder;

      g_variant_builder_init (&builder, type);
      for (const GVariantType *t = g_variant_type_first (type); t != NULL;
           t = g_variant_type_next (t))
        g_variant_builder_add_value (&builder, zero_value (t));
      return g_variant_builder_end (&builder);
    }
  if (g_variant_type_is_maybe (type))
    return g_variant_new_maybe (g_variant_type_element (type), NULL);
  switch (g_variant_type_peek_string (type)[0])
    {
    case 'b':
      return g_variant_new_boolean (FALSE);
    case 'y':
      return g_variant_new_byte (0);
    case 'n':
      return g_variant_new_int16 (0);
    case 'q':
      return g_variant_new_uint16 (0);
    case 'i':
      return g_variant_new_int32 (0);
    case 'u':
      return g_variant_new_uint32 (0);
    case 'x':
      return g_variant_new_int64 (0);
    case 't':
      return g_variant_new_uint64 (0);
    case 'd':
      return g_variant_new_double (0);
    case 'o':
      return g_variant_new_object_path ("/");
    case 'g':
      return g_variant_new_signature ("");
    case 's':
    default:
      return g_variant_new_string ("");
    }
}

GVariant *
canopy_record_upgrade (GVariant *old, const GVariantType *type)
{
  GVariantBuilder builder;
  const GVariantType *t = g_variant_type_first (type);
  gsize n = g_variant_n_children (old);

  g_variant_builder_init (&builder, type);
  for (gsize i = 0; t != NULL; i++, t = g_variant_type_next (t))
    {
      g_autoptr (GVariant) member = i < n ? g_variant_get_child_value (old, i)
                                          : g_variant_ref_sink (zero_value (t));

      g_variant_builder_add_value (&builder, member);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

char *
canopy_time_to_iso8601 (gint64 usec)
{
  gint64 seconds = usec / G_USEC_PER_SEC, rest = usec % G_USEC_PER_SEC;
  g_autoptr (GDateTime) whole = NULL;
  g_autoptr (GDateTime) t = NULL;

  if (rest < 0)
    {
      seconds--;
      rest += G_USEC_PER_SEC;
    }
  whole = g_date_time_new_from_unix_utc (seconds);
  t = whole != NULL ? g_date_time_add (whole, rest) : NULL;
  if (t == NULL)
    return g_strdup ("");
  return g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.%fZ");
}

gint64
canopy_time_from_iso8601 (const char *text)
{
  g_autoptr (GDateTime) t = text != NULL ? g_date_time_new_from_iso8601 (text, NULL) : NULL;

  if (t == NULL)
    return 0;
  return g_date_time_to_unix (t) * G_USEC_PER_SEC + g_date_time_get_microsecond (t);
}
