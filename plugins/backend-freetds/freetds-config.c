/* The SQL Server backend's configuration element, read into settings. */
#include "build-config.h"

#include "freetds-backend.h"

#include <string.h>

gboolean
canopy_freetds_settings_from_config (const CanopyConfigNode *element,
                                     CanopyFreetdsSettings *s, GError **error)
{
  const CanopyConfigNode *server = canopy_config_node_get_child (element, "server");
  const CanopyConfigNode *login = canopy_config_node_get_child (element, "login-timeout");
  const CanopyConfigNode *query = canopy_config_node_get_child (element, "query-timeout");
  guint64 port, login_s = 10, query_s = 30;

  memset (s, 0, sizeof *s);
  if (!canopy_config_node_get_uint (server, "port", 1, 65535, 1433, &port, error)
      || (login != NULL && !canopy_config_node_get_uint (login, "s", 1, 600, 10, &login_s, error))
      || (query != NULL && !canopy_config_node_get_uint (query, "s", 1, 3600, 30, &query_s, error)))
    return FALSE;
  s->host = g_strdup (canopy_config_node_get_attribute (server, "host"));
  s->port = (guint) port;
  s->instance = g_strdup (canopy_config_node_get_attribute (server, "instance"));
  s->database = g_strdup (canopy_config_node_get_child_text (element, "database", NULL));
  s->user = g_strdup (canopy_config_node_get_child_text (element, "user", NULL));
  s->password_file = g_strdup (canopy_config_node_get_child_text (element, "password-file",
                                                                  NULL));
  s->tds_version = g_strdup (canopy_config_node_get_child_text (element, "tds-version", "7.4"));
  s->encrypt = g_strcmp0 (canopy_config_node_get_child_text (element, "encryption", "request"),
                          "off") != 0;
  s->login_timeout_s = (guint) login_s;
  s->query_timeout_s = (guint) query_s;
  return TRUE;
}

