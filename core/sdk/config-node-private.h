/* The configuration tree, shared by the loader (core/lib/config.c) and
 * the SDK's read-only accessors (core/sdk/config-node.c). */
#pragma once

#include "lib/config.h"

#include <libxml/tree.h>

struct _CanopyConfigNode {
  const CanopyConfig *config;
  xmlNode *xml;
  char *text;
  GHashTable *attributes;
  GPtrArray *children;
};

struct _CanopyConfig {
  char *path;
  char *data;
  xmlDoc *doc;
  CanopyConfigNode *root;
};
