/* A whole site of real processes for the integration tests: canopyd
 * (SQLite, TCP, console API), an HTTP origin, and two offices of agents,
 * on loopback addresses or in network namespaces. */
#pragma once

#include "tests/canopy-test.h"
#include "lib/manifest.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#define CANOPY_TEST_SITE_OFFICES 2
#define CANOPY_TEST_SITE_AGENTS_PER_OFFICE 4
/* One slot more, for an extra agent a test starts. */
#define CANOPY_TEST_SITE_N_AGENTS (CANOPY_TEST_SITE_OFFICES * CANOPY_TEST_SITE_AGENTS_PER_OFFICE + 1)
#define CANOPY_TEST_SITE_CONTENT_SIZE (64 * 1024 * 1024 + 12345)
/* Under valgrind, where every byte costs fifty times more: a few chunks
 * cover the same code. */
#define CANOPY_TEST_SITE_VALGRIND_CONTENT_SIZE (4 * 1024 * 1024 + 12345)

typedef struct {
  const char *wan_rate; /* the offices' WAN rate in the topology; "" or NULL: unlimited */
  /* The first two octets of every address: the server and origin are at
   * NET.0.1, agent I of office O at NET.O.(10 + I), office O is NET.O.0/24.
   * NULL: "127.0", loopback. */
  const char *net;
  gsize content_size; /* 0: CANOPY_TEST_SITE_CONTENT_SIZE, or the valgrind size */
  gboolean content_store; /* canopyd keeps a copy in DIR/content */
  const char *content_store_quota; /* its quota attribute; NULL: none */
  /* A directory of DIR (created) that canopyd may register files from,
   * its only <content-sources>; NULL: URLs only, as canopyd's default. */
  const char *content_source;
  /* Prepended to the command line of the processes of office O (0: the
   * server and the origin), e.g. "ip netns exec NS" or "env VAR=...". */
  const char *const *prefix[CANOPY_TEST_SITE_OFFICES + 1];
  /* Distribution optimization off: offices are made from the subnets the
   * agents report, not from the site's spreadsheet. */
  gboolean optimization_off;
  /* The group of the agent of the extra slot instead of Branch, assigned
   * too; NULL: Branch. */
  const char *extra_group;
  /* The network namespace the console API is reached in; NULL: this one. */
  const char *console_netns;
  /* More attributes of <console>, e.g. "handshake-timeout='2'"; NULL: none. */
  const char *console_attributes;
  /* More elements of each agent's <agent>, e.g. "<cache max-age='1d'/>";
   * NULL: none. */
  const char *agent_xml;
  /* More elements of <server>, e.g. "<licensing .../>"; NULL: none. */
  const char *server_xml;
  /* The topology spreadsheet instead of North and South, each "NET" in it
   * replaced by the first two octets of the site's addresses; NULL: North
   * NET.1.0/24 and South NET.2.0/24, both at wan_rate. */
  const char *topology;
  /* More <server> elements of the agents, after the site's own server: the
   * other servers of a cluster; NULL: none. */
  const char *agent_servers;
  /* A group the agent of a slot (canopy_test_site_slot()) is in besides
   * its own, to deploy to some agents of an office only; NULL: none. */
  const char *agent_groups[CANOPY_TEST_SITE_N_AGENTS];
  /* The administrator the site's token is made for; NULL: site-admin.
   * Sites sharing a database need different ones. */
  const char *admin_name;
  /* The <backend> element; NULL: the embedded SQLite database. */
  const char *backend_xml;
} CanopyTestSiteOptions;

typedef struct {
  CanopyTestSiteOptions options;
  char *dir;
  char *config;
  char *state;
  char *package;
  gsize content_size;
  guint agent_port;
  guint console_port;
  CanopyTestProcess *server;
  CanopyTestProcess *origin;
  CanopyTestProcess *agents[CANOPY_TEST_SITE_N_AGENTS];
  char *device_ids[CANOPY_TEST_SITE_N_AGENTS];
  /* Whether the slot ran the real agent, which installs its own copy. */
  gboolean installs[CANOPY_TEST_SITE_N_AGENTS];
  char *origin_url;
  guint64 origin_requests; /* what the origin answered, as it said when last stopped */
  char *origin_log;        /* and a line per answer it gave */
  char *token;
  SoupSession *session;
} CanopyTestSite;

/* Whether the plugins a site needs were built; prints why not. */
gboolean canopy_test_site_available (void);

/* Stops what @s ran before, then starts canopyd and the origin. */
/**
 * canopy_test_admin_add:
 * @expires_days: (nullable): --expires, or the configured lifetime
 * @output: (out) (optional): everything the command printed
 *
 * Runs the real "canopyd admin-add NAME --role ROLE" against @config.
 * Returns: (transfer full) (nullable): the token it printed; NULL, the
 *   output printed, when it failed.
 */
char *canopy_test_admin_add (const char *config, const char *name, const char *role,
                             const char *expires_days, char **output);

void canopy_test_site_begin (CanopyTestSite *s, const CanopyTestSiteOptions *options);
/* Starts every agent of every office. */
void canopy_test_site_start_agents (CanopyTestSite *s);
/* Stops every process; @check asserts each stopped cleanly (not from a
 * suite cleanup, where CUnit takes no assertions). Leaves @s zeroed. */
void canopy_test_site_stop (CanopyTestSite *s, gboolean check);

/* Writes the configuration from the options, then starts canopyd. */
void canopy_test_site_server_start (CanopyTestSite *s);
/* Agent @index of @office (1-based), with its own state directory; an
 * index past the office's agents takes the extra slot. */
CanopyTestProcess *canopy_test_site_agent_start (CanopyTestSite *s, guint office, guint index);
/* The same with another program that reads an agent's configuration:
 * @command is its command line before "--config FILE"; NULL: canopy-agent. */
CanopyTestProcess *canopy_test_site_device_start (CanopyTestSite *s, guint office, guint index,
                                                  const char *const *command);
/* The address agent @index of @office serves its peers on. */
char *canopy_test_site_agent_address (const CanopyTestSite *s, guint office, guint index);
/* Its slot in agents[] and device_ids[]. */
guint canopy_test_site_slot (guint office, guint index);
guint canopy_test_site_agent_index (const CanopyTestSite *s, const char *device_id);

/* A console API call that must answer @expected; returns the JSON (NULL
 * for 204 No Content). */
JsonNode *canopy_test_site_api (CanopyTestSite *s, const char *method, const char *path,
                                const char *body, guint expected);
/* The text a console API GET of @path answers with 200 (a CSV download). */
char *canopy_test_site_get_text (CanopyTestSite *s, const char *path);
/* A console API call without a body that must answer @expected; returns
 * what it answered, JSON or not. */
/* @to takes @from's shared key and signing key, as the servers of a
 * cluster share them, and restarts with them. */
void canopy_test_site_share_keys (CanopyTestSite *from, CanopyTestSite *to);
/* How many devices @s lists as online. */
guint canopy_test_site_devices_online (CanopyTestSite *s);
/* Whether @s lists @expected devices as online within @timeout_s. */
gboolean canopy_test_site_wait_online (CanopyTestSite *s, guint expected, guint timeout_s);
/* The status a console API call answers, whatever it is. */
guint canopy_test_site_status (CanopyTestSite *s, const char *method, const char *path);
char *canopy_test_site_request (CanopyTestSite *s, const char *method, const char *path,
                                guint expected);
/* Sends a console API request and returns at once, answered or not: for a
 * test that stops canopyd while the request is at work. */
void canopy_test_site_api_send (CanopyTestSite *s, const char *method, const char *path,
                                const char *body);
/* Registers the package; returns the content ID. */
char *canopy_test_site_register (CanopyTestSite *s);
/* Deploys @content_id to group Branch. */
void canopy_test_site_deploy_content (CanopyTestSite *s, const char *content_id);
/* Deploys @content_id to @groups (NULL: Branch); returns the deployment's ID. */
char *canopy_test_site_create_deployment (CanopyTestSite *s, const char *content_id,
                                          const char *const *groups);
/* Registers the package and deploys it to group Branch; returns the content ID. */
char *canopy_test_site_deploy (CanopyTestSite *s);
/* Stops the origin; returns what it served in all, by its own count, so a
 * device that died before reporting cannot hide anything. */
guint64 canopy_test_site_stop_origin (CanopyTestSite *s);
/* Starts the origin again, on the port it had, after
 * canopy_test_site_stop_origin(): an origin that failed and was fixed. */
void canopy_test_site_restart_origin (CanopyTestSite *s);
/* Waits until @expected devices are done; returns the deployment, or NULL. */
JsonNode *canopy_test_site_wait_done (CanopyTestSite *s, guint expected, guint timeout_s);
/* The same for deployment @id (NULL: the first listed). */
JsonNode *canopy_test_site_wait_deployment_done (CanopyTestSite *s, const char *id,
                                                 guint expected, guint timeout_s);
/* The run's only deployment as the API lists it, held by @holder. */
JsonObject *canopy_test_site_deployment (CanopyTestSite *s, JsonNode **holder);
JsonObject *canopy_test_site_office_of (JsonObject *deployment, const char *name);
/* The element of @object's @array whose string @member is @value, or NULL. */
JsonObject *canopy_test_site_find (JsonObject *object, const char *array, const char *member,
                                   const char *value);
/* The health check's entry @name, held by @holder; NULL if absent. */
JsonObject *canopy_test_site_health_check (CanopyTestSite *s, const char *name,
                                           JsonNode **holder);
/* Whether files @a and @b hold the same bytes. */
gboolean canopy_test_site_same_file (const char *a, const char *b);

/* The manifest canopyd builds for the file at @path (content-defined
 * chunks), unsigned: where each chunk starts and ends. */
CanopyManifest *canopy_test_site_manifest_of (const char *path);

/* The index of @m's chunk holding byte @offset. */
guint canopy_test_site_chunk_at (const CanopyManifest *m, guint64 offset);
/* The copy that agent slot @slot installed at the deployment's destination. */
char *canopy_test_site_copy_path (const CanopyTestSite *s, guint slot);
/* Every copy installed by every real agent the site ran matches the package. */
void canopy_test_site_assert_copy (CanopyTestSite *s);

/* Runs the main context for @ms, so the processes' output keeps being read. */
void canopy_test_site_pump (guint ms);
/* kill -9, as a power cut or a crash would. */
void canopy_test_site_kill_hard (CanopyTestProcess **proc);
