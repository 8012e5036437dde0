/* Enrolment load benchmark: a real canopyd (SQLite, TCP+TLS on loopback)
 * and N simulated agents over the real transport: each connects, says
 * hello, is welcomed, then sends heartbeats that the server echoes. Prints
 * enrolments per second, heartbeat round trip p50 and p99, the server's
 * memory per session, its descriptors and its CPU time while the sessions
 * are idle; the reference in the same run is the rate of bare connections
 * (handshake only) to the same server.
 *
 * Each simulated agent has its own transport instance (the device ID is
 * part of the instance's credentials), which costs a socket, an epoll
 * descriptor and, here, the wakeup descriptor of the agent's own main
 * context (see the driver below), so the agents are spread over several
 * load processes: this binary re-executed with the hidden --worker mode,
 * at most PER_WORKER_MAX agents each. The parent drives them over their stdin and
 * reads their reports from their stdout, one line each:
 *   parent → worker      worker → parent
 *   ref                  ref CONNECTED FAILED START END CPU DESCRIPTORS
 *   enrol                enrol WELCOMED FAILED START END CPU DESCRIPTORS
 *   beat ROUNDS WINDOW   beat SENT RECEIVED DROPPED CPU COUNT, then COUNT
 *                        lines of one round trip each (µs)
 *   quit (or EOF)        exits
 * START and END are g_get_monotonic_time() values, one clock for all
 * processes on Linux; CPU is the worker's own CPU time in the phase (ms);
 * WINDOW is in ms.
 *
 * canopyd holds a descriptor per session, so the agent count is capped
 * below the descriptor hard limit, and the cap is printed.
 *
 * Then the cluster part: two canopyd on one PostgreSQL of the bench's own
 * (initdb and pg_ctl, on a Unix socket in a temporary directory, as the
 * cluster suite does), each with <cluster changes="notify"/> and its own
 * agents (each process has its own descriptor limit). Prints the sessions
 * each server holds, the heartbeat round trips (goal: p99 under 50 ms) with
 * the machine offered the single part's heartbeats per second, then with
 * each server offered that many, the enrolments per second of both
 * against the single server's in the same run, and PostgreSQL's share of
 * the CPU used.
 *   usage: enrol-bench [AGENTS] [HEARTBEAT-ROUNDS] [ROUND-WINDOW-SECONDS]
 *   environment: BENCH_ENROL=single|cluster|both (both by default),
 *                BENCH_CLUSTER_AGENTS=N agents per server of the cluster */
#include "build-config.h"

#include "lib/config.h"
#include "lib/keys.h"
#include "lib/transport.h"
#include "lib/wire.h"
#ifdef CANOPY_BENCH_POSTGRESQL
#include "tests/pg-server.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENTS_ASKED 20000   /* what the issue asks one server to hold */
#define CLUSTER_AGENTS_ASKED 19000 /* per server of the cluster */
#define IN_FLIGHT_TOTAL 256  /* connects under way at once, over all workers */
#define PER_WORKER_MAX 5000  /* agents per load process */
#define DESCRIPTOR_MARGIN 64 /* canopyd's own descriptors, and some slack */
#define ROUND_WINDOW_MS 5000 /* each agent beats once at a random moment in it */
#define IDLE_SECONDS 10      /* idle period for the server's CPU time */
#define WATCHDOG_SECONDS 1500

/* --- the load: simulated agents, in a worker process ----------------------- */

typedef struct _Load Load;

#define AGENT_MAX_FDS 8

typedef struct {
  Load *load;
  guint index;
  char *id;
  GMainContext *context; /* the agent's own, acquired for good */
  CanopyTransport *transport;
  CanopyTransportConnection *conn;
  gboolean settled; /* counted as connected/welcomed or as failed */
  gboolean up;      /* connected (reference) or welcomed (agents) */
  gboolean queued;  /* in driver.runnable */
  /* The context's descriptors, as registered with driver.epfd, and when
   * its next timer is due. */
  int fds[AGENT_MAX_FDS];
  guint32 fd_events[AGENT_MAX_FDS];
  guint n_fds;
  gint64 wake_at;
} Agent;

struct _Load {
  const CanopyPlugin *plugin;
  const CanopyConfigNode *element;
  const CanopySharedKey *key;
  guint16 port;
  Agent *agents;
  guint n, next, connecting, in_flight;
  guint up, failed, dropped, settled;
  gboolean say_hello;
  GArray *rtts; /* gint64, µs */
};

static void start_more (Load *load);

/* The driver. Were all agents on one GMainContext, every turn of it would
 * poll and check each agent's epoll descriptor: O(agents) per event, which
 * makes the load process, not the server, the bottleneck at a few
 * thousand agents. So each agent has its own context, the descriptors of
 * all contexts sit in one epoll set, and only the contexts with something
 * ready are run, like a real agent's. Timers (connect timeouts) are seen
 * by a sweep every SWEEP_MS. */
#define SWEEP_MS 100

static struct {
  int epfd;
  Agent **owner; /* by descriptor: the agent that registered it */
  guint n_owner;
  GQueue runnable; /* agents to run at the next turn */
  GPtrArray *loads;
  gint64 next_sweep;
} driver;

static guint32
to_epoll (gushort events)
{
  return ((events & G_IO_IN) ? EPOLLIN : 0) | ((events & G_IO_OUT) ? EPOLLOUT : 0)
         | ((events & G_IO_PRI) ? EPOLLPRI : 0);
}

static void
driver_forget (Agent *agent, int fd)
{
  if (fd >= 0 && (guint) fd < driver.n_owner && driver.owner[fd] == agent)
    {
      epoll_ctl (driver.epfd, EPOLL_CTL_DEL, fd, NULL); /* gone already if closed */
      driver.owner[fd] = NULL;
    }
}

static void
driver_register (Agent *agent, int fd, guint32 events, gboolean known)
{
  struct epoll_event event = { .events = events, .data.ptr = agent };

  if ((guint) fd >= driver.n_owner)
    g_error ("descriptor %d beyond the limit", fd);
  /* A descriptor number closed by one agent may be taken by another:
   * whoever registered it last owns it. */
  if ((known && driver.owner[fd] == agent) ? epoll_ctl (driver.epfd, EPOLL_CTL_MOD, fd, &event) != 0
                                           : epoll_ctl (driver.epfd, EPOLL_CTL_ADD, fd, &event) != 0
                                               && (errno != EEXIST
                                                   || epoll_ctl (driver.epfd, EPOLL_CTL_MOD, fd,
                                                                 &event) != 0))
    g_error ("epoll_ctl (%d): %s", fd, g_strerror (errno));
  driver.owner[fd] = agent;
}

/* Brings the epoll set in line with the agent's context. */
static void
agent_sync (Agent *agent, const GPollFD *fds, gint n_fds, gint timeout)
{
  for (guint i = 0; i < agent->n_fds;)
    {
      gboolean kept = FALSE;

      for (gint j = 0; j < n_fds && !kept; j++)
        kept = fds[j].fd == agent->fds[i];
      if (kept)
        i++;
      else
        {
          driver_forget (agent, agent->fds[i]);
          agent->n_fds--;
          agent->fds[i] = agent->fds[agent->n_fds];
          agent->fd_events[i] = agent->fd_events[agent->n_fds];
        }
    }
  for (gint j = 0; j < n_fds; j++)
    {
      guint32 events = to_epoll (fds[j].events);
      guint i;

      for (i = 0; i < agent->n_fds && agent->fds[i] != fds[j].fd; i++)
        ;
      if (i == agent->n_fds)
        {
          driver_register (agent, fds[j].fd, events, FALSE);
          agent->fds[agent->n_fds] = fds[j].fd;
          agent->fd_events[agent->n_fds++] = events;
        }
      else if (agent->fd_events[i] != events || driver.owner[fds[j].fd] != agent)
        {
          driver_register (agent, fds[j].fd, events, TRUE);
          agent->fd_events[i] = events;
        }
    }
  agent->wake_at = timeout < 0 ? G_MAXINT64 : g_get_monotonic_time () + (gint64) timeout * 1000;
}

/* One agent's context: dispatch whatever is ready, until nothing is. */
static void
agent_run (Agent *agent)
{
  GMainContext *context = agent->context;
  GPollFD fds[AGENT_MAX_FDS];
  gint n_fds = 0, timeout = -1, priority;
  gboolean settled = FALSE;

  if (context == NULL)
    return;
  g_main_context_push_thread_default (context);
  for (guint spin = 0; spin < 64 && !settled; spin++)
    {
      g_main_context_prepare (context, &priority);
      n_fds = g_main_context_query (context, priority, &timeout, fds, AGENT_MAX_FDS);
      if (n_fds > AGENT_MAX_FDS)
        g_error ("an agent's context has %d descriptors", n_fds);
      if (n_fds > 0)
        g_poll (fds, (guint) n_fds, 0);
      if (g_main_context_check (context, priority, fds, n_fds))
        g_main_context_dispatch (context);
      else
        settled = TRUE;
    }
  g_main_context_pop_thread_default (context);
  agent_sync (agent, fds, n_fds, settled ? timeout : 0);
}

static void
agent_queue (Agent *agent)
{
  if (!agent->queued)
    {
      agent->queued = TRUE;
      g_queue_push_tail (&driver.runnable, agent);
    }
}

static void
driver_init (void)
{
  struct rlimit limit;

  getrlimit (RLIMIT_NOFILE, &limit);
  driver.n_owner = limit.rlim_cur == RLIM_INFINITY ? 1 << 20 : (guint) limit.rlim_cur;
  driver.owner = g_new0 (Agent *, driver.n_owner);
  driver.epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (driver.epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  driver.loads = g_ptr_array_new ();
}

/* Runs what is ready; waits at most until @until (monotonic µs). */
static void
pump (gint64 until)
{
  struct epoll_event events[256];
  gint64 now = g_get_monotonic_time ();
  gint64 limit = MIN (until, driver.next_sweep);
  int n;

  n = epoll_wait (driver.epfd, events, G_N_ELEMENTS (events),
                  driver.runnable.length > 0 || limit <= now ? 0 : (int) ((limit - now + 999) / 1000));
  if (n < 0 && errno != EINTR)
    g_error ("epoll_wait: %s", g_strerror (errno));
  for (int i = 0; i < n; i++)
    agent_run (events[i].data.ptr);
  while (driver.runnable.length > 0)
    {
      Agent *agent = g_queue_pop_head (&driver.runnable);

      agent->queued = FALSE;
      agent_run (agent);
    }
  now = g_get_monotonic_time ();
  if (now >= driver.next_sweep)
    {
      for (guint l = 0; l < driver.loads->len; l++)
        {
          Load *load = g_ptr_array_index (driver.loads, l);

          for (guint i = 0; i < load->next; i++)
            if (load->agents[i].wake_at <= now)
              agent_run (&load->agents[i]);
        }
      driver.next_sweep = now + SWEEP_MS * 1000;
    }
}

static void
settle (Agent *agent, gboolean up)
{
  if (agent->settled)
    return;
  agent->settled = TRUE;
  agent->up = up;
  agent->load->settled++;
  if (up)
    agent->load->up++;
  else
    agent->load->failed++;
}

static void
on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload, gpointer user_data)
{
  Agent *agent = user_data;
  Load *load = agent->load;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, NULL);

  (void) conn;
  (void) payload;
  if (body == NULL)
    return;
  if (kind == CANOPY_WIRE_WELCOME)
    settle (agent, TRUE);
  else if (kind == CANOPY_WIRE_HEARTBEAT)
    {
      gint64 sent, rtt;

      g_variant_get_child (body, 0, "x", &sent);
      rtt = g_get_monotonic_time () - sent;
      g_array_append_val (load->rtts, rtt);
    }
  else if (kind == CANOPY_WIRE_REFUSED)
    {
      if (load->failed < 5)
        g_printerr ("enrol-bench: agent %s refused\n", agent->id);
      settle (agent, FALSE);
    }
}

static void
on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  Agent *agent = user_data;

  (void) conn;
  agent->conn = NULL;
  if (agent->settled && agent->up)
    {
      if (agent->load->dropped++ < 5)
        g_printerr ("enrol-bench: %s lost its connection: %s\n", agent->id,
                    error != NULL ? error->message : "closed");
    }
  settle (agent, FALSE);
}

static void
ignore (CanopyTransportConnection *conn, gpointer user_data)
{
  (void) conn;
  (void) user_data;
}

static const CanopyTransportEvents events = {
  .incoming = ignore,
  .message = on_message,
  .drained = ignore,
  .closed = on_closed,
};

static void
send_hello (Agent *agent)
{
  const char *groups[] = { "Bench", NULL };
  GVariantBuilder addresses;
  g_autofree char *address = g_strdup_printf ("10.%u.%u.%u", agent->index >> 16,
                                              (agent->index >> 8) & 255, agent->index & 255);
  g_autoptr (GBytes) frame = NULL;

  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", address, 24);
  frame = canopy_wire_encode (CANOPY_WIRE_HELLO,
                              g_variant_new ("(ssa(sy)^asqs)", agent->id, PACKAGE_VERSION,
                                             &addresses, groups, (guint16) 0, agent->id));
  canopy_transport_send (agent->conn, frame, NULL, NULL);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Agent *agent = user_data;
  Load *load = agent->load;
  g_autoptr (GError) error = NULL;

  (void) source;
  load->connecting--;
  agent->conn = canopy_transport_connect_finish (agent->transport, result, &error);
  if (agent->conn == NULL)
    {
      if (load->failed < 5)
        g_printerr ("enrol-bench: %s: connect failed: %s\n", agent->id, error->message);
      settle (agent, FALSE);
    }
  else if (load->say_hello)
    send_hello (agent);
  else
    settle (agent, TRUE);
  start_more (load);
}

static void
start_more (Load *load)
{
  while (load->connecting < load->in_flight && load->next < load->n)
    {
      Agent *agent = &load->agents[load->next++];
      CanopyTransportCredentials creds;
      g_autoptr (GError) error = NULL;

      agent->context = g_main_context_new ();
      if (!g_main_context_acquire (agent->context))
        g_error ("cannot acquire an agent's context");
      canopy_keys_make_transport_credentials (load->key, agent->id, &creds, NULL);
      agent->transport = canopy_transport_new (load->plugin, load->element, &creds,
                                               agent->context, &events, agent, &error);
      canopy_keys_wipe (creds.secret, sizeof creds.secret);
      if (agent->transport == NULL)
        g_error ("%s", error->message);
      load->connecting++;
      canopy_transport_connect_async (agent->transport, "127.0.0.1", load->port, NULL,
                                      on_connected, agent);
      agent_queue (agent);
    }
}

static Load *
load_new (const CanopyPlugin *plugin, const CanopyConfigNode *element, const CanopySharedKey *key,
          guint16 port, guint base, guint n, guint in_flight, gboolean say_hello,
          const char *prefix)
{
  Load *load = g_new0 (Load, 1);

  load->plugin = plugin;
  load->element = element;
  load->key = key;
  load->n = n;
  load->port = port;
  load->in_flight = MAX (in_flight, 1);
  load->say_hello = say_hello;
  load->agents = g_new0 (Agent, n);
  load->rtts = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_ptr_array_add (driver.loads, load);
  for (guint i = 0; i < n; i++)
    {
      load->agents[i].load = load;
      load->agents[i].index = base + i;
      /* The server refuses a device ID that is not a UUID. */
      load->agents[i].id = g_strdup_printf ("%08x-0000-4000-8000-%012x", g_str_hash (prefix),
                                            base + i);
    }
  return load;
}

/* Connects every agent; returns when each is up or has failed. */
static void
run_load (Load *load)
{
  gint64 deadline = g_get_monotonic_time () + 600 * G_USEC_PER_SEC;

  start_more (load);
  while (load->settled < load->n && g_get_monotonic_time () < deadline)
    pump (deadline);
  if (load->settled < load->n)
    g_printerr ("enrol-bench: %u of %u agents neither up nor failed after 600 s\n",
                load->n - load->settled, load->n);
}

static void
load_free (Load *load)
{
  if (load == NULL)
    return;
  g_ptr_array_remove (driver.loads, load);
  for (guint i = 0; i < load->n; i++)
    {
      Agent *agent = &load->agents[i];

      if (agent->queued)
        g_queue_remove (&driver.runnable, agent);
      for (guint j = 0; j < agent->n_fds; j++)
        driver_forget (agent, agent->fds[j]);
      g_clear_pointer (&agent->transport, canopy_transport_free);
      if (agent->context != NULL)
        {
          g_main_context_release (agent->context);
          g_clear_pointer (&agent->context, g_main_context_unref);
        }
      g_free (agent->id);
    }
  g_free (load->agents);
  g_array_unref (load->rtts);
  g_free (load);
}

typedef struct {
  gint64 at;
  guint agent;
} Beat;

static int
compare_beats (gconstpointer a, gconstpointer b)
{
  gint64 x = ((const Beat *) a)->at, y = ((const Beat *) b)->at;

  return x < y ? -1 : x > y;
}

/* Like real agents, which beat on their own timers and not in step: each
 * connected agent sends one heartbeat at a random moment of the round's
 * window. One timer for the whole schedule, not one per agent. */
static void
heartbeat_round (Load *load, guint window_ms, guint *sent)
{
  gint64 start = g_get_monotonic_time ();
  gint64 deadline = start + (gint64) window_ms * 1000 + 30 * G_USEC_PER_SEC;
  g_autoptr (GArray) beats = g_array_new (FALSE, FALSE, sizeof (Beat));
  guint expected = load->rtts->len, next = 0;

  for (guint i = 0; i < load->n; i++)
    if (load->agents[i].conn != NULL && load->agents[i].up)
      {
        Beat beat = { start + g_random_int_range (0, (gint32) MAX (window_ms, 1) * 1000), i };
        g_array_append_val (beats, beat);
      }
  g_array_sort (beats, compare_beats);
  while ((next < beats->len || load->rtts->len < expected) && g_get_monotonic_time () < deadline)
    {
      gint64 now = g_get_monotonic_time ();

      for (; next < beats->len && g_array_index (beats, Beat, next).at <= now; next++)
        {
          Agent *agent = &load->agents[g_array_index (beats, Beat, next).agent];
          g_autoptr (GBytes) frame = NULL;

          if (agent->conn == NULL)
            continue;
          frame = canopy_wire_encode (CANOPY_WIRE_HEARTBEAT,
                                      g_variant_new ("(xt)", g_get_monotonic_time (),
                                                     (guint64) 0));
          if (canopy_transport_send (agent->conn, frame, NULL, NULL))
            {
              expected++;
              (*sent)++;
              agent_queue (agent);
            }
        }
      /* Until the next beat is due, or the deadline if replies never come. */
      pump (next < beats->len ? g_array_index (beats, Beat, next).at : deadline);
    }
}

static guint
count_descriptors (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/fd", pid);
  DIR *dir = opendir (path);
  struct dirent *entry;
  guint n = 0;

  if (dir == NULL)
    return 0;
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir (dir);
  return n;
}

/* This process's CPU time (user + system), in milliseconds. */
static double
self_cpu_ms (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0
         + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
}

static void
raise_limits (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
        g_printerr ("enrol-bench: cannot raise the descriptor limit: %s\n", g_strerror (errno));
    }
}

static void
report (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
report (const char *format, ...)
{
  va_list args;

  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  fflush (stdout);
}

/*   enrol-bench --worker PORT KEY-FILE BASE COUNT REF-BASE REF-COUNT IN-FLIGHT */
static int
worker_main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = NULL;
  g_autoptr (CanopyConfig) config = NULL;
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyConfigNode *element;
  const CanopyPlugin *tcp;
  guint16 port;
  guint base, count, ref_base, ref_count, in_flight;
  Load *load = NULL;
  char command[256];

  if (argc != 9)
    g_error ("enrol-bench --worker: wrong arguments");
  port = (guint16) atoi (argv[2]);
  base = (guint) atoi (argv[4]);
  count = (guint) atoi (argv[5]);
  ref_base = (guint) atoi (argv[6]);
  ref_count = (guint) atoi (argv[7]);
  in_flight = (guint) atoi (argv[8]);
  raise_limits ();
  driver_init ();
  key = canopy_shared_key_load (argv[3], &error);
  if (key == NULL)
    g_error ("%s", error->message);
  config = canopy_config_load_data ("<agent><server host='127.0.0.1'/><transport plugin='tcp'>"
                                    "<connect timeout-ms='60000'/></transport></agent>", -1,
                                    "bench.xml", CANOPY_SCHEMA_AGENT, &error);
  if (config == NULL)
    g_error ("%s", error->message);
  element = canopy_config_node_get_child (canopy_config_get_root (config), "transport");
  tcp = canopy_plugin_loader_load_for_node (loader, element, CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  if (tcp == NULL)
    g_error ("%s", error->message);

  /* Between commands the agents sit idle: nothing reads their sockets,
   * and nothing needs to. */
  while (fgets (command, sizeof command, stdin) != NULL)
    {
      guint rounds, window_ms;

      if (g_str_has_prefix (command, "ref"))
        {
          Load *reference = load_new (tcp, element, key, port, ref_base, ref_count, in_flight,
                                      FALSE, "ref");
          gint64 start = g_get_monotonic_time (), end;
          double cpu = self_cpu_ms ();

          run_load (reference);
          end = g_get_monotonic_time ();
          report ("ref %u %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %.0f %u\n", reference->up,
                  reference->failed, start, end, self_cpu_ms () - cpu, count_descriptors ("self"));
          load_free (reference);
        }
      else if (g_str_has_prefix (command, "enrol") && load == NULL)
        {
          gint64 start = g_get_monotonic_time (), end;
          double cpu = self_cpu_ms ();

          load = load_new (tcp, element, key, port, base, count, in_flight, TRUE, "agent");
          run_load (load);
          end = g_get_monotonic_time ();
          report ("enrol %u %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %.0f %u\n", load->up,
                  load->failed, start, end, self_cpu_ms () - cpu, count_descriptors ("self"));
        }
      else if (sscanf (command, "beat %u %u", &rounds, &window_ms) == 2 && load != NULL)
        {
          guint sent = 0;
          double cpu = self_cpu_ms ();

          g_array_set_size (load->rtts, 0);
          for (guint r = 0; r < rounds; r++)
            heartbeat_round (load, window_ms, &sent);
          report ("beat %u %u %u %.0f %u\n", sent, load->rtts->len, load->dropped,
                  self_cpu_ms () - cpu, load->rtts->len);
          for (guint i = 0; i < load->rtts->len; i++)
            printf ("%" G_GINT64_FORMAT "\n", g_array_index (load->rtts, gint64, i));
          fflush (stdout);
        }
      else if (g_str_has_prefix (command, "quit"))
        break;
      else
        g_error ("enrol-bench --worker: unexpected command %s", command);
    }
  load_free (load);
  return 0;
}

/* --- the parent: canopyd, the workers, the figures ------------------------- */

#define SERVERS_MAX 2

/* What one canopyd logged. It logs every enrolment: its stderr is read
 * all the time, so that it never blocks on a full pipe, and what is out
 * of the ordinary is kept. */
typedef struct {
  GMutex lock;
  guint lines, enrolled, disconnected, other;
  GPtrArray *samples;
} ServerLog;

typedef struct {
  const char *name;
  GSubprocess *proc;
  char *pid; /* kept: the subprocess forgets it once reaped */
  char *port;
  char *config, *state, *key;
  GDataInputStream *out; /* its stderr */
  GThread *drainer;
  ServerLog log;
} Server;

typedef struct {
  GSubprocess *proc;
  GOutputStream *in;
  GDataInputStream *out;
  char *pid;
  guint server; /* its agents' server, in bench.servers */
  guint base, count, ref_base, ref_count;
} Worker;

static struct {
  Server servers[SERVERS_MAX];
  guint n_servers;
  Worker *workers;
  guint n_workers;
  char *dir;
  char *pg_dir, *pg_password; /* the cluster's PostgreSQL, while it runs */
} bench;

/* For the signal handler: every process started and still running, with
 * the signal that stops it. */
static volatile pid_t children[64];
static volatile int children_signal[64];
static volatile sig_atomic_t n_children;

static void
remember_pid (pid_t pid, int signum)
{
  if (n_children < (sig_atomic_t) G_N_ELEMENTS (children))
    {
      children[n_children] = pid;
      children_signal[n_children] = signum;
      n_children++;
    }
}

static void
remember_child (GSubprocess *proc, int signum)
{
  remember_pid ((pid_t) atoi (g_subprocess_get_identifier (proc)), signum);
}

/* PostgreSQL's postmaster while it runs, for the signal handler. */
static volatile pid_t postmaster;

static void
on_fatal_signal (int signum)
{
  const char *rm[] = { "/bin/rm", "-rf", bench.dir, bench.pg_dir, NULL };
  pid_t pid = -1;

  /* canopyd stops cleanly on SIGTERM, PostgreSQL at once on SIGQUIT; the
   * workers hold nothing. Then the temporary directories go, once the
   * postmaster is gone (at most 5 s): only calls that are safe here. */
  for (int i = 0; i < n_children; i++)
    kill (children[i], children_signal[i]);
  for (int i = 0; i < 100 && postmaster > 0 && kill (postmaster, 0) == 0; i++)
    {
      struct timespec pause = { 0, 50 * 1000 * 1000 };
      nanosleep (&pause, NULL);
    }
  if (bench.dir != NULL && (pid = fork ()) == 0)
    {
      execv (rm[0], (char **) rm);
      _exit (127);
    }
  else if (pid > 0)
    waitpid (pid, NULL, 0);
  signal (signum, SIG_DFL);
  raise (signum);
}

static void
child_setup (gpointer user_data)
{
  /* Nothing outlives the parent, even if it is killed. */
  prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (user_data));
}

static int
remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  (void) ftw;
  return remove (path);
}

static gboolean
is_running (GSubprocess *proc)
{
  /* GLib reaps its children in its worker thread; the identifier goes
   * away once it has. */
  return proc != NULL && g_subprocess_get_identifier (proc) != NULL;
}

static double
stop_process (GSubprocess *proc, int signum, double grace_seconds)
{
  gint64 start = g_get_monotonic_time ();

  if (!is_running (proc))
    return 0;
  g_subprocess_send_signal (proc, signum);
  while (is_running (proc)
         && g_get_monotonic_time () - start < (gint64) (grace_seconds * G_USEC_PER_SEC))
    g_usleep (20000);
  if (is_running (proc))
    {
      g_printerr ("enrol-bench: process %s still running after %.0f s; killing it\n",
                  g_subprocess_get_identifier (proc), grace_seconds);
      g_subprocess_force_exit (proc);
    }
  g_subprocess_wait (proc, NULL, NULL);
  return (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
}

static void
free_workers (void)
{
  for (guint i = 0; i < bench.n_workers; i++)
    {
      g_clear_object (&bench.workers[i].out);
      g_clear_object (&bench.workers[i].proc);
      g_free (bench.workers[i].pid);
    }
  g_clear_pointer (&bench.workers, g_free);
  bench.n_workers = 0;
}

/* Stops @s (if it runs), waits for its log to be read, and returns how
 * long it took to stop. */
static double
server_stop (Server *s, double grace_seconds)
{
  double seconds = stop_process (s->proc, SIGTERM, grace_seconds);

  if (s->drainer != NULL)
    g_thread_join (g_steal_pointer (&s->drainer));
  return seconds;
}

static void
server_clear (Server *s)
{
  g_clear_object (&s->out);
  g_clear_object (&s->proc);
  g_clear_pointer (&s->pid, g_free);
  g_clear_pointer (&s->port, g_free);
  g_clear_pointer (&s->config, g_free);
  g_clear_pointer (&s->state, g_free);
  g_clear_pointer (&s->key, g_free);
  if (s->log.samples != NULL)
    {
      g_clear_pointer (&s->log.samples, g_ptr_array_unref);
      g_mutex_clear (&s->log.lock);
    }
  memset (s, 0, sizeof *s);
}

#ifdef CANOPY_BENCH_POSTGRESQL
static void
pg_stop (void)
{
  postmaster = 0;
  if (bench.pg_dir != NULL)
    canopy_test_pg_stop (bench.pg_dir);
  g_clear_pointer (&bench.pg_dir, g_free);
  g_clear_pointer (&bench.pg_password, g_free);
}
#endif

/* Stops every process started (PostgreSQL too) and forgets them. */
static void
stop_all (void)
{
  for (guint i = 0; i < bench.n_workers; i++)
    stop_process (bench.workers[i].proc, SIGKILL, 5);
  for (guint i = 0; i < bench.n_servers; i++)
    server_stop (&bench.servers[i], 30);
#ifdef CANOPY_BENCH_POSTGRESQL
  pg_stop ();
#endif
  n_children = 0;
}

static void fail (const char *format, ...) G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN;

static void
fail (const char *format, ...)
{
  va_list args;

  fflush (stdout);
  fputs ("enrol-bench: ", stderr);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputs ("\n", stderr);
  stop_all ();
  if (bench.dir != NULL)
    nftw (bench.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  exit (1);
}

static void
tell_workers (const char *command)
{
  for (guint i = 0; i < bench.n_workers; i++)
    {
      g_autoptr (GError) error = NULL;

      if (!g_output_stream_write_all (bench.workers[i].in, command, strlen (command), NULL, NULL,
                                      &error)
          || !g_output_stream_flush (bench.workers[i].in, NULL, &error))
        fail ("cannot reach load process %u: %s", i, error->message);
    }
}

static char *
read_report (Worker *worker, const char *expected)
{
  g_autoptr (GError) error = NULL;
  char *line = g_data_input_stream_read_line (worker->out, NULL, NULL, &error);

  if (line == NULL)
    fail ("load process %s stopped (%s) while the parent waited for \"%s\"", worker->pid,
          error != NULL ? error->message : "end of output", expected);
  if (!g_str_has_prefix (line, expected))
    fail ("load process said \"%s\", expected \"%s\"", line, expected);
  return line;
}

static double cpu_ms (const char *pid);

static double
servers_cpu_ms (void)
{
  double sum = 0;

  for (guint i = 0; i < bench.n_servers; i++)
    sum += cpu_ms (bench.servers[i].pid);
  return sum;
}

static void
check_servers (const char *during)
{
  for (guint i = 0; i < bench.n_servers; i++)
    if (!is_running (bench.servers[i].proc))
      fail ("canopyd %s exited during %s", bench.servers[i].name, during);
}

typedef struct {
  guint up, failed;
  guint up_by[SERVERS_MAX];
  double seconds;
  double worker_cpu_ms; /* all workers */
  double server_cpu_ms; /* all servers */
  guint max_descriptors; /* of one worker */
} Phase;

/* Sends @command to every worker and gathers their "ref"/"enrol" lines. */
static Phase
run_phase (const char *command, const char *reply)
{
  Phase phase = { 0 };
  gint64 first = G_MAXINT64, last = 0;
  double server_cpu = servers_cpu_ms ();

  tell_workers (command);
  for (guint i = 0; i < bench.n_workers; i++)
    {
      g_autofree char *line = read_report (&bench.workers[i], reply);
      guint up = 0, failed = 0, descriptors = 0;
      gint64 start = 0, end = 0;
      double cpu = 0;

      if (sscanf (line + strlen (reply),
                  " %u %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %lf %u", &up, &failed,
                  &start, &end, &cpu, &descriptors)
          != 6)
        fail ("cannot read \"%s\"", line);
      phase.up += up;
      phase.up_by[bench.workers[i].server] += up;
      phase.worker_cpu_ms += cpu;
      phase.failed += failed;
      phase.max_descriptors = MAX (phase.max_descriptors, descriptors);
      if (up + failed > 0)
        {
          first = MIN (first, start);
          last = MAX (last, end);
        }
    }
  phase.seconds = last > first ? (last - first) / (double) G_USEC_PER_SEC : 0;
  check_servers (command);
  phase.server_cpu_ms = servers_cpu_ms () - server_cpu;
  return phase;
}

typedef struct {
  guint sent, received, dropped;
  guint dropped_by[SERVERS_MAX];
  double seconds, worker_cpu_ms, server_cpu_ms;
  GArray *rtts;                /* double, µs: every agent's */
  GArray *rtts_by[SERVERS_MAX]; /* and by server */
} Beats;

static void
beats_clear (Beats *beats)
{
  g_clear_pointer (&beats->rtts, g_array_unref);
  for (guint i = 0; i < SERVERS_MAX; i++)
    g_clear_pointer (&beats->rtts_by[i], g_array_unref);
}

/* Heartbeats, spread over each round's window. */
static void
run_beats (guint rounds, guint window_ms, Beats *beats)
{
  g_autofree char *command = g_strdup_printf ("beat %u %u\n", rounds, MAX (window_ms, 1));
  double server_cpu = servers_cpu_ms ();
  gint64 start = g_get_monotonic_time ();

  memset (beats, 0, sizeof *beats);
  beats->rtts = g_array_new (FALSE, FALSE, sizeof (double));
  for (guint i = 0; i < SERVERS_MAX; i++)
    beats->rtts_by[i] = g_array_new (FALSE, FALSE, sizeof (double));
  tell_workers (command);
  for (guint i = 0; i < bench.n_workers; i++)
    {
      Worker *worker = &bench.workers[i];
      g_autofree char *report_line = read_report (worker, "beat");
      guint sent, received, lost_sessions, count;
      double cpu;

      if (sscanf (report_line, "beat %u %u %u %lf %u", &sent, &received, &lost_sessions, &cpu,
                  &count)
          != 5)
        fail ("cannot read \"%s\"", report_line);
      beats->worker_cpu_ms += cpu;
      beats->sent += sent;
      beats->received += received;
      beats->dropped += lost_sessions;
      beats->dropped_by[worker->server] += lost_sessions;
      for (guint j = 0; j < count; j++)
        {
          g_autofree char *value = read_report (worker, "");
          double rtt = g_ascii_strtod (value, NULL);

          g_array_append_val (beats->rtts, rtt);
          g_array_append_val (beats->rtts_by[worker->server], rtt);
        }
    }
  beats->seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  beats->server_cpu_ms = servers_cpu_ms () - server_cpu;
  check_servers ("the heartbeats");
}

static long
rss_kib (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (line = strstr (text, "VmRSS:")) == NULL)
    return 0;
  return strtol (line + 6, NULL, 10);
}

/* The fields of /proc/PID/stat after the command name, from field 3
 * (state) on: [1] is the parent, [11] and [12] utime and stime, [13] and
 * [14] those of the children waited for. NULL when the process is gone. */
static char **
stat_fields (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/stat", pid);
  g_autofree char *text = NULL;
  char **fields;
  const char *after;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    return NULL;
  fields = g_strsplit (after + 2, " ", 0);
  if (g_strv_length (fields) < 15)
    g_clear_pointer (&fields, g_strfreev);
  return fields;
}

static double
ticks_ms (char **fields, guint from, guint to)
{
  double ticks = 0;

  for (guint i = from; i <= to; i++)
    ticks += g_ascii_strtod (fields[i], NULL);
  return ticks * 1000.0 / (double) sysconf (_SC_CLK_TCK);
}

/* utime + stime, in milliseconds. */
static double
cpu_ms (const char *pid)
{
  g_auto (GStrv) fields = pid != NULL ? stat_fields (pid) : NULL;

  return fields != NULL ? ticks_ms (fields, 11, 12) : 0;
}

static char *
descriptor_limits (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/limits", pid);
  g_autofree char *text = NULL;
  const char *line;
  unsigned long soft, hard;

  if (!g_file_get_contents (path, &text, NULL, NULL)
      || (line = strstr (text, "Max open files")) == NULL
      || sscanf (line + strlen ("Max open files"), " %lu %lu", &soft, &hard) != 2)
    return g_strdup ("unknown");
  return g_strdup_printf ("soft %lu, hard %lu", soft, hard);
}

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
percentile (GArray *values, double p)
{
  if (values->len == 0)
    return 0;
  g_array_sort (values, compare_doubles);
  return g_array_index (values, double, (guint) (p * (values->len - 1)));
}

static gpointer
drain (gpointer user_data)
{
  Server *s = user_data;
  ServerLog *log = &s->log;
  char *line;

  while ((line = g_data_input_stream_read_line (s->out, NULL, NULL, NULL)) != NULL)
    {
      g_mutex_lock (&log->lock);
      log->lines++;
      if (strstr (line, "Enrolled agent") != NULL)
        log->enrolled++;
      else if (strstr (line, " disconnected: ") != NULL)
        log->disconnected++;
      else if (strstr (line, "Received SIGTERM") != NULL || strstr (line, "canopyd stopped") != NULL)
        ;
      else
        {
          log->other++;
          if (log->samples->len < 5)
            {
              g_ptr_array_add (log->samples, line);
              line = NULL;
            }
        }
      g_mutex_unlock (&log->lock);
      g_free (line);
    }
  return NULL;
}

static GSubprocess *
spawn (const char *const *argv, GSubprocessFlags flags, int death_signal, GError **error)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);

  g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (death_signal),
                                         NULL);
  return g_subprocess_launcher_spawnv (launcher, argv, error);
}

static void
wait_for_descriptors (const char *pid, guint target, double seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (count_descriptors (pid) > target && g_get_monotonic_time () < deadline)
    g_usleep (50000);
}

static void
copy_key (const Server *from, const Server *to, const char *name)
{
  g_autofree char *source = g_build_filename (from->state, name, NULL);
  g_autofree char *target = g_build_filename (to->state, name, NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  gsize length;

  if (!g_file_get_contents (source, &text, &length, &error)
      || !g_file_set_contents_full (target, text, (gssize) length, G_FILE_SET_CONTENTS_NONE, 0600,
                                    &error))
    fail ("%s", error->message);
}

/* Makes a canopyd's configuration and state (with the keys of @keys_from,
 * as the servers of a cluster share them), starts it, and reads its port
 * from its log. */
static void
server_start (Server *s, const char *canopyd, const char *name, const char *backend_xml,
              const Server *keys_from)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *xml = NULL, *line = NULL, *state_name = g_strdup_printf ("%s-state", name);
  g_autofree char *config_name = g_strdup_printf ("%s.xml", name);
  g_autoptr (GSubprocess) init = NULL;
  const char *at;

  s->name = name;
  s->config = g_build_filename (bench.dir, config_name, NULL);
  s->state = g_build_filename (bench.dir, state_name, NULL);
  s->key = g_build_filename (s->state, "shared-key", NULL);
  xml = g_strdup_printf (
    "<server><state-directory>%s</state-directory><assigned-group>Bench</assigned-group>"
    "<licensing seats='1000000'/><heartbeat interval='300'/>%s"
    "<transport plugin='tcp'><listen address='127.0.0.1' port='0'/>"
    "<limits send-queue-high='65536'/></transport></server>", s->state, backend_xml);
  if (!g_file_set_contents (s->config, xml, -1, &error))
    fail ("%s", error->message);
  {
    const char *init_argv[] = { canopyd, "init", "--config", s->config, NULL };

    init = g_subprocess_newv (init_argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
    if (init == NULL || !g_subprocess_wait_check (init, NULL, &error))
      fail ("canopyd init: %s", error->message);
  }
  if (keys_from != NULL)
    {
      copy_key (keys_from, s, "shared-key");
      copy_key (keys_from, s, "signing-key.pem");
    }
  {
    const char *run_argv[] = { canopyd, "--config", s->config, NULL };

    s->proc = spawn (run_argv, G_SUBPROCESS_FLAGS_STDERR_PIPE, SIGTERM, &error);
    if (s->proc == NULL)
      fail ("%s", error->message);
    remember_child (s->proc, SIGTERM);
  }
  bench.n_servers = MAX (bench.n_servers, (guint) (s - bench.servers) + 1);
  s->pid = g_strdup (g_subprocess_get_identifier (s->proc));
  g_mutex_init (&s->log.lock);
  s->log.samples = g_ptr_array_new_with_free_func (g_free);
  s->out = g_data_input_stream_new (g_subprocess_get_stderr_pipe (s->proc));
  while ((line = g_data_input_stream_read_line (s->out, NULL, NULL, NULL)) != NULL
         && (at = strstr (line, "127.0.0.1 port ")) == NULL)
    g_clear_pointer (&line, g_free);
  if (line == NULL)
    fail ("canopyd %s did not start", name);
  s->port = g_strdup_printf ("%d", atoi (at + strlen ("127.0.0.1 port ")));
  s->drainer = g_thread_new ("drain", drain, s);
}

/* Starts @n_workers load processes for @n agents of server @server,
 * their IDs from @id_base on, and their share of @ref_n references. */
static void
workers_start (const char *self, guint server, guint n, guint id_base, guint ref_n,
               guint n_workers, guint in_flight)
{
  Server *s = &bench.servers[server];
  g_autofree char *in_flight_text = g_strdup_printf ("%u", in_flight);
  g_autoptr (GError) error = NULL;

  bench.workers = g_renew (Worker, bench.workers, bench.n_workers + n_workers);
  for (guint i = 0; i < n_workers; i++)
    {
      Worker *worker = &bench.workers[bench.n_workers];
      g_autofree char *base = NULL, *count = NULL, *ref_base = NULL, *ref_count = NULL;
      guint first = (guint) ((guint64) n * i / n_workers);

      memset (worker, 0, sizeof *worker);
      worker->server = server;
      worker->base = id_base + first;
      worker->count = (guint) ((guint64) n * (i + 1) / n_workers) - first;
      worker->ref_base = (guint) ((guint64) ref_n * i / n_workers);
      worker->ref_count = (guint) ((guint64) ref_n * (i + 1) / n_workers) - worker->ref_base;
      base = g_strdup_printf ("%u", worker->base);
      count = g_strdup_printf ("%u", worker->count);
      ref_base = g_strdup_printf ("%u", worker->ref_base);
      ref_count = g_strdup_printf ("%u", worker->ref_count);
      {
        const char *worker_argv[] = { self,     "--worker", s->port,   s->key,         base,
                                      count,    ref_base,   ref_count, in_flight_text, NULL };

        worker->proc = spawn (worker_argv,
                              G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              SIGKILL, &error);
      }
      if (worker->proc == NULL)
        fail ("cannot start a load process: %s", error->message);
      bench.n_workers++;
      remember_child (worker->proc, SIGKILL);
      worker->pid = g_strdup (g_subprocess_get_identifier (worker->proc));
      worker->in = g_subprocess_get_stdin_pipe (worker->proc);
      worker->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (worker->proc));
    }
}

/* The workers hang up and exit; returns how long the last took. */
static double
workers_stop (void)
{
  double seconds = 0;

  tell_workers ("quit\n");
  for (guint i = 0; i < bench.n_workers; i++)
    seconds = MAX (seconds, stop_process (bench.workers[i].proc, SIGKILL, 60));
  return seconds;
}

static void
print_server_log (Server *s, double stop_seconds)
{
  g_autofree char *label = g_strdup_printf ("canopyd%s%s:", bench.n_servers > 1 ? " " : "",
                                            bench.n_servers > 1 ? s->name : "");

  g_mutex_lock (&s->log.lock);
  printf ("  %-22sstopped in %.1f s after SIGTERM; it logged %u lines (%u "
          "enrolments, %u disconnections, %u other%s)\n",
          label, stop_seconds, s->log.lines, s->log.enrolled, s->log.disconnected, s->log.other,
          s->log.other > 0 ? ", the first below" : "");
  for (guint i = 0; i < s->log.samples->len; i++)
    printf ("    %s\n", (const char *) g_ptr_array_index (s->log.samples, i));
  g_mutex_unlock (&s->log.lock);
}

static char *
read_loadavg (void)
{
  char *loadavg = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    return g_strdup ("?");
  *strchrnul (loadavg, ' ') = '\0';
  return loadavg;
}

/* How many agents one canopyd can hold: it needs one descriptor per
 * session and a few of its own, within its hard limit (ours). */
static guint
cap_agents (guint asked, const struct rlimit *limit)
{
  if (limit->rlim_max != RLIM_INFINITY && asked + DESCRIPTOR_MARGIN > limit->rlim_max)
    return limit->rlim_max > DESCRIPTOR_MARGIN ? (guint) limit->rlim_max - DESCRIPTOR_MARGIN : 1;
  return asked;
}

/* A worker needs three descriptors per agent: socket, epoll set and the
 * wakeup of the agent's context. */
static guint
per_worker_max (const struct rlimit *limit)
{
  if (limit->rlim_max == RLIM_INFINITY)
    return PER_WORKER_MAX;
  return MIN (PER_WORKER_MAX, ((guint) limit->rlim_max - DESCRIPTOR_MARGIN) / 3);
}

/* One canopyd on SQLite: the reference of the cluster part too. Returns
 * whether every agent enrolled; *@rate is the enrolments per second. */
static gboolean
run_single (const char *canopyd, const char *self, guint asked, guint rounds, guint window_ms,
            const struct rlimit *limit, double *rate)
{
  g_autofree char *loadavg = read_loadavg (), *loadavg_end = NULL, *limits = NULL;
  Server *server = &bench.servers[0];
  guint n = cap_agents (asked, limit), n_workers, in_flight, ref_n;
  guint descriptors_base, descriptors_full;
  long rss_start, rss_base, rss_after;
  double cpu_idle, stop_seconds, worker_stop_seconds;
  const char *pid;
  Phase reference, enrol;
  Beats beats;

  if (n != asked)
    printf ("enrol-bench: %u agents asked, %u run: the descriptor limit here is %lu (hard, "
            "cannot be raised), and canopyd needs one descriptor per session and a few of "
            "its own\n",
            asked, n, (unsigned long) limit->rlim_max);
  fflush (stdout);
  n_workers = (n + per_worker_max (limit) - 1) / per_worker_max (limit);
  in_flight = MAX (IN_FLIGHT_TOTAL / n_workers, 1);
  ref_n = MAX (n / 10, 1);

  server_start (server, canopyd, "single", "<backend plugin='sqlite'/>", NULL);
  pid = server->pid;
  workers_start (self, 0, n, 0, ref_n, n_workers, in_flight);

  /* Reference: bare authenticated connections, no hello; then wait for
   * the server to let go of them. */
  g_usleep (G_USEC_PER_SEC / 2);
  descriptors_base = count_descriptors (pid);
  rss_start = rss_kib (pid);
  reference = run_phase ("ref\n", "ref");
  wait_for_descriptors (pid, descriptors_base, 30);
  /* The baseline of the sessions' memory is what the server holds once the
   * reference's connections are gone: the heap the reference grew and
   * glibc kept is not the sessions'. */
  g_usleep (G_USEC_PER_SEC / 2);
  rss_base = rss_kib (pid);

  /* Enrolment: every agent connects, says hello and is welcomed. */
  enrol = run_phase ("enrol\n", "enrol");
  g_usleep (G_USEC_PER_SEC);
  rss_after = rss_kib (pid);
  descriptors_full = count_descriptors (pid);
  limits = descriptor_limits (pid);

  /* Idle: every session open, nothing sent. */
  g_usleep (G_USEC_PER_SEC);
  cpu_idle = cpu_ms (pid);
  g_usleep (IDLE_SECONDS * G_USEC_PER_SEC);
  cpu_idle = cpu_ms (pid) - cpu_idle;

  run_beats (rounds, window_ms, &beats);

  /* Shut down: the agents hang up, then the server stops. */
  worker_stop_seconds = workers_stop ();
  wait_for_descriptors (pid, descriptors_base, 60);
  stop_seconds = server_stop (server, 30);
  n_children = 0;

  loadavg_end = read_loadavg ();
  printf ("enrol-bench: %u agents over TCP+TLS on loopback, one canopyd (SQLite), "
          "%u load processes, %u CPUs (load average %s at the start, %s at the end: other "
          "work on the machine skews the round trips first)\n",
          n, n_workers, g_get_num_processors (), loadavg, loadavg_end);
  if (n != asked)
    printf ("  agents:               %u asked, %u run (descriptor hard limit %lu)\n", asked, n,
            (unsigned long) limit->rlim_max);
  printf ("  enrolled:             %u of %u (%u failed, %u lost later)\n", enrol.up, n,
          enrol.failed, beats.dropped);
  *rate = enrol.seconds > 0 ? enrol.up / enrol.seconds : 0.0;
  printf ("  enrolments:           %8.0f /s  (%.1f s, %u connects in flight; CPU per "
          "enrolment: server %.2f ms, load processes %.2f ms)\n",
          *rate, enrol.seconds, in_flight * n_workers,
          enrol.up > 0 ? enrol.server_cpu_ms / enrol.up : 0.0,
          enrol.up > 0 ? enrol.worker_cpu_ms / enrol.up : 0.0);
  printf ("  bare connections:     %8.0f /s  (reference, %u of %u in %.1f s; CPU per "
          "connection: server %.2f ms, load processes %.2f ms)\n",
          reference.seconds > 0 ? reference.up / reference.seconds : 0.0, reference.up, ref_n,
          reference.seconds, reference.up > 0 ? reference.server_cpu_ms / reference.up : 0.0,
          reference.up > 0 ? reference.worker_cpu_ms / reference.up : 0.0);
  printf ("  ratio to reference:   %8.2f\n",
          reference.up > 0 && enrol.seconds > 0 && reference.seconds > 0
            ? (enrol.up / enrol.seconds) / (reference.up / reference.seconds) : 0.0);
  printf ("  heartbeat round trip: p50 %.2f ms, p99 %.2f ms\n",
          percentile (beats.rtts, 0.5) / 1000.0, percentile (beats.rtts, 0.99) / 1000.0);
  printf ("                        (%u of %u echoed in %u rounds of %.1f s; in each round every "
          "agent beats once at a random moment of a %.0f s window, not all at once: %.0f /s "
          "offered, where the configured 300 s interval gives %.0f /s)\n",
          beats.received, beats.sent, rounds, beats.seconds / MAX (rounds, 1),
          window_ms / 1000.0, enrol.up / (window_ms / 1000.0), enrol.up / 300.0);
  printf ("  server memory:        %.1f KiB per session (RSS %ld MiB at start, %ld after the "
          "reference, %ld with every session up)\n",
          enrol.up > 0 ? (double) (rss_after - rss_base) / enrol.up : 0.0, rss_start / 1024,
          rss_base / 1024, rss_after / 1024);
  printf ("  server descriptors:   %u with every session up, %u before (limit: %s)\n",
          descriptors_full, descriptors_base, limits);
  printf ("  server CPU, idle:     %.0f ms in %d s with %u sessions open: %.3f ms per second "
          "per 1000 sessions\n",
          cpu_idle, IDLE_SECONDS, enrol.up,
          enrol.up > 0 ? cpu_idle / IDLE_SECONDS / (enrol.up / 1000.0) : 0.0);
  printf ("  server CPU, beating:  %.0f ms in %.1f s (%.0f%% of a CPU): %.0f µs per heartbeat; "
          "load processes %.0f ms (%.0f%% of a CPU)\n",
          beats.server_cpu_ms, beats.seconds, 100.0 * beats.server_cpu_ms / (beats.seconds * 1000.0),
          beats.received > 0 ? beats.server_cpu_ms * 1000.0 / beats.received : 0.0,
          beats.worker_cpu_ms, 100.0 * beats.worker_cpu_ms / (beats.seconds * 1000.0));
  printf ("  load processes:       %u descriptors at most each; all stopped in %.1f s\n",
          enrol.max_descriptors, worker_stop_seconds);
  print_server_log (server, stop_seconds);
  fflush (stdout);

  beats_clear (&beats);
  free_workers ();
  server_clear (server);
  bench.n_servers = 0;
  return enrol.up == n && enrol.failed == 0;
}

#ifdef CANOPY_BENCH_POSTGRESQL
/* PostgreSQL's postmaster, from its pid file; NULL when it is not running. */
static char *
postmaster_pid (void)
{
  g_autofree char *path = g_build_filename (bench.pg_dir, "data", "postmaster.pid", NULL);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  *strchrnul (text, '\n') = '\0';
  return g_strdup (text);
}

/* The CPU time of every PostgreSQL process: the postmaster's own, that
 * of the backends it has waited for, and that of those still running. */
static double
pg_cpu_ms (const char *pm)
{
  g_auto (GStrv) fields = stat_fields (pm);
  double sum = fields != NULL ? ticks_ms (fields, 11, 14) : 0;
  DIR *dir = opendir ("/proc");
  struct dirent *entry;

  while (dir != NULL && (entry = readdir (dir)) != NULL)
    {
      g_auto (GStrv) child = NULL;

      if (!g_ascii_isdigit (entry->d_name[0]))
        continue;
      child = stat_fields (entry->d_name);
      if (child != NULL && g_str_equal (child[1], pm))
        sum += ticks_ms (child, 11, 12);
    }
  if (dir != NULL)
    closedir (dir);
  return sum;
}

static double
workers_cpu_ms (void)
{
  double sum = 0;

  for (guint i = 0; i < bench.n_workers; i++)
    sum += cpu_ms (bench.workers[i].pid);
  return sum;
}

static void
print_beats (const char *label, const Beats *beats, guint rounds, guint window_ms)
{
  printf ("  %-22s p50 %.2f ms, p99 %.2f ms (goal: p99 under 50 ms, %s); "
          "A: p50 %.2f, p99 %.2f; B: p50 %.2f, p99 %.2f\n",
          label, percentile (beats->rtts, 0.5) / 1000.0, percentile (beats->rtts, 0.99) / 1000.0,
          percentile (beats->rtts, 0.99) < 50000 ? "met" : "missed",
          percentile (beats->rtts_by[0], 0.5) / 1000.0,
          percentile (beats->rtts_by[0], 0.99) / 1000.0,
          percentile (beats->rtts_by[1], 0.5) / 1000.0,
          percentile (beats->rtts_by[1], 0.99) / 1000.0);
  printf ("                        (%u of %u echoed in %u rounds of %.1f s; every agent beats "
          "once at a random moment of a %.1f s window: %.0f /s offered to the machine)\n",
          beats->received, beats->sent, rounds, beats->seconds / MAX (rounds, 1),
          window_ms / 1000.0, beats->sent / (double) MAX (rounds, 1) / (window_ms / 1000.0));
}

/* Two canopyd on one PostgreSQL, @asked agents each. The heartbeats are
 * offered first at @window_ms, which gives the machine the single
 * server's rate, then at @busy_window_ms, which gives each server that
 * rate. Returns whether every agent enrolled. */
static gboolean
run_cluster (const char *canopyd, const char *self, guint asked, guint rounds, guint window_ms,
             guint busy_window_ms, const struct rlimit *limit, double single_rate)
{
  g_autofree char *loadavg = read_loadavg (), *loadavg_end = NULL;
  g_autofree char *skip = NULL, *backend = NULL, *cluster_xml = NULL, *pm = NULL;
  g_autofree char *devices = NULL;
  g_autoptr (GError) failure = NULL;
  guint n = cap_agents (asked, limit), n_workers, in_flight;
  guint descriptors[SERVERS_MAX], descriptors_base[SERVERS_MAX];
  double pg_cpu, canopyd_cpu, load_cpu, rate, stop_seconds[SERVERS_MAX], worker_stop_seconds;
  gint64 start, end;
  Phase enrol;
  Beats beats, busy;

  bench.pg_password = g_build_filename (bench.dir, "pg.password", NULL);
  bench.pg_dir = canopy_test_pg_start (bench.pg_password, &skip, &failure);
  if (bench.pg_dir == NULL && skip != NULL)
    {
      printf ("enrol-bench: cluster part skipped: PostgreSQL cannot run here (%s)\n", skip);
      g_clear_pointer (&bench.pg_password, g_free);
      return TRUE;
    }
  if (bench.pg_dir == NULL)
    fail ("the benchmark's PostgreSQL server did not start: %s", failure->message);
  pm = postmaster_pid ();
  if (pm == NULL)
    fail ("PostgreSQL started but left no postmaster.pid");
  remember_pid ((pid_t) atoi (pm), SIGQUIT);
  postmaster = (pid_t) atoi (pm);
  backend = canopy_test_pg_backend_xml (bench.pg_dir, bench.pg_password);
  cluster_xml = g_strdup_printf ("<cluster changes='notify'/>%s", backend);

  if (n != asked)
    printf ("enrol-bench: %u agents per server asked, %u run: the descriptor limit here is %lu "
            "(hard, cannot be raised)\n",
            asked, n, (unsigned long) limit->rlim_max);
  fflush (stdout);
  server_start (&bench.servers[0], canopyd, "A", cluster_xml, NULL);
  server_start (&bench.servers[1], canopyd, "B", cluster_xml, &bench.servers[0]);
  n_workers = (n + per_worker_max (limit) - 1) / per_worker_max (limit);
  in_flight = MAX (IN_FLIGHT_TOTAL / (2 * n_workers), 1);
  /* The agents of B number on from A's, so that every device ID differs. */
  workers_start (self, 0, n, 0, 0, n_workers, in_flight);
  workers_start (self, 1, n, n, 0, n_workers, in_flight);
  g_usleep (G_USEC_PER_SEC / 2);
  for (guint i = 0; i < SERVERS_MAX; i++)
    descriptors_base[i] = count_descriptors (bench.servers[i].pid);

  /* Everything from the first enrolment to the last heartbeat. */
  pg_cpu = pg_cpu_ms (pm);
  canopyd_cpu = servers_cpu_ms ();
  load_cpu = workers_cpu_ms ();
  start = g_get_monotonic_time ();
  enrol = run_phase ("enrol\n", "enrol");
  g_usleep (G_USEC_PER_SEC);
  for (guint i = 0; i < SERVERS_MAX; i++)
    descriptors[i] = count_descriptors (bench.servers[i].pid);
  run_beats (rounds, window_ms, &beats);
  end = g_get_monotonic_time ();
  pg_cpu = pg_cpu_ms (pm) - pg_cpu;
  canopyd_cpu = servers_cpu_ms () - canopyd_cpu;
  load_cpu = workers_cpu_ms () - load_cpu;
  run_beats (rounds, busy_window_ms, &busy);
  devices = canopy_test_pg_psql (bench.pg_dir, bench.pg_password, "SELECT count(*) FROM devices");

  worker_stop_seconds = workers_stop ();
  for (guint i = 0; i < SERVERS_MAX; i++)
    wait_for_descriptors (bench.servers[i].pid, descriptors_base[i], 60);
  for (guint i = 0; i < SERVERS_MAX; i++)
    stop_seconds[i] = server_stop (&bench.servers[i], 30);
  pg_stop ();
  n_children = 0;

  loadavg_end = read_loadavg ();
  rate = enrol.seconds > 0 ? enrol.up / enrol.seconds : 0.0;
  printf ("enrol-bench: cluster: two canopyd on one PostgreSQL (<cluster changes=\"notify\"/>), "
          "%u agents each over TCP+TLS on loopback, %u load processes, %u CPUs (load average %s "
          "at the start, %s at the end)\n",
          n, bench.n_workers, g_get_num_processors (), loadavg, loadavg_end);
  for (guint i = 0; i < SERVERS_MAX; i++)
    printf ("  sessions held by %s:   %u of %u (%u welcomed, %u lost later; %u descriptors)\n",
            bench.servers[i].name, enrol.up_by[i] - beats.dropped_by[i] - busy.dropped_by[i], n,
            enrol.up_by[i], beats.dropped_by[i] + busy.dropped_by[i], descriptors[i]);
  printf ("  enrolled:             %u of %u (%u failed); devices in the database: %s\n", enrol.up,
          2 * n, enrol.failed, devices != NULL ? g_strstrip (devices) : "(psql failed)");
  printf ("  enrolments:           %8.0f /s  (both servers, %.1f s, %u connects in flight; CPU "
          "per enrolment: servers %.2f ms, load processes %.2f ms)\n",
          rate, enrol.seconds, in_flight * bench.n_workers,
          enrol.up > 0 ? enrol.server_cpu_ms / enrol.up : 0.0,
          enrol.up > 0 ? enrol.worker_cpu_ms / enrol.up : 0.0);
  if (single_rate > 0)
    printf ("  ratio to one server:  %8.2f  (one canopyd on SQLite, above: %.0f /s)\n",
            rate / single_rate, single_rate);
  print_beats ("heartbeat round trip:", &beats, rounds, window_ms);
  printf ("                        (the single server's rate, spread over both: the machine's "
          "%u CPUs carry both servers, PostgreSQL and the load processes)\n",
          g_get_num_processors ());
  print_beats ("each at that rate:", &busy, rounds, busy_window_ms);
  printf ("                        (each server beaten as hard as the single one: twice its "
          "rate on the same CPUs)\n");
  printf ("  PostgreSQL CPU:       %.1f s in the %.1f s from the first enrolment to the last "
          "heartbeat: %.1f%% of the CPU the bench's processes used (canopyd %.1f s, load "
          "processes %.1f s), %.1f%% of the machine's %u CPUs\n",
          pg_cpu / 1000.0, (end - start) / (double) G_USEC_PER_SEC,
          100.0 * pg_cpu / MAX (pg_cpu + canopyd_cpu + load_cpu, 1), canopyd_cpu / 1000.0,
          load_cpu / 1000.0,
          100.0 * pg_cpu / ((end - start) / 1000.0 * g_get_num_processors ()),
          g_get_num_processors ());
  printf ("  load processes:       %u descriptors at most each; all stopped in %.1f s\n",
          enrol.max_descriptors, worker_stop_seconds);
  for (guint i = 0; i < SERVERS_MAX; i++)
    print_server_log (&bench.servers[i], stop_seconds[i]);
  fflush (stdout);

  beats_clear (&beats);
  beats_clear (&busy);
  free_workers ();
  for (guint i = 0; i < SERVERS_MAX; i++)
    server_clear (&bench.servers[i]);
  bench.n_servers = 0;
  return enrol.up == 2 * n && enrol.failed == 0;
}
#endif

static guint
env_uint (const char *name, guint fallback)
{
  const char *text = g_getenv (name);
  guint64 value;

  if (text == NULL || text[0] == '\0')
    return fallback;
  if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT, &value, NULL))
    g_error ("%s must be a positive number, not \"%s\"", name, text);
  return (guint) value;
}

int
main (int argc, char **argv)
{
  guint asked = argc > 1 && argv[1][0] != '\0' ? (guint) atoi (argv[1]) : AGENTS_ASKED;
  guint rounds = argc > 2 ? (guint) atoi (argv[2]) : 3;
  guint window_ms = argc > 3 ? (guint) (g_ascii_strtod (argv[3], NULL) * 1000) : ROUND_WINDOW_MS;
  guint cluster_asked = env_uint ("BENCH_CLUSTER_AGENTS", CLUSTER_AGENTS_ASKED);
  const char *mode = g_getenv ("BENCH_ENROL");
  const char *builddir = g_getenv ("CANOPY_TEST_BUILDDIR");
  g_autofree char *canopyd = g_build_filename (builddir != NULL ? builddir : ".", "canopyd", NULL);
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr (GError) error = NULL;
  gboolean single, cluster, ok = TRUE;
  double single_rate = 0;
  struct rlimit limit;

  if (argc > 1 && strcmp (argv[1], "--worker") == 0)
    return worker_main (argc, argv);

  if (mode == NULL || mode[0] == '\0')
    mode = "both";
  single = g_str_equal (mode, "both") || g_str_equal (mode, "single");
  cluster = g_str_equal (mode, "both") || g_str_equal (mode, "cluster");
  if (!single && !cluster)
    g_error ("BENCH_ENROL is \"single\", \"cluster\" or \"both\", not \"%s\"", mode);
  if (asked == 0)
    g_error ("usage: enrol-bench [AGENTS] [HEARTBEAT-ROUNDS] [ROUND-WINDOW-SECONDS]");
  signal (SIGPIPE, SIG_IGN);
  signal (SIGINT, on_fatal_signal);
  signal (SIGTERM, on_fatal_signal);
  signal (SIGHUP, on_fatal_signal);
  signal (SIGALRM, on_fatal_signal);
  alarm (WATCHDOG_SECONDS);
  raise_limits ();
  if (self == NULL)
    g_error ("cannot find this program in /proc/self/exe");
  /* canopyd holds one descriptor per session, besides its own few; its
   * hard limit is ours (it raises its soft limit itself). */
  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    g_error ("getrlimit: %s", g_strerror (errno));

  bench.dir = g_dir_make_tmp ("canopy-enrol-bench-XXXXXX", &error);
  if (bench.dir == NULL)
    g_error ("%s", error->message);
  if (single)
    ok = run_single (canopyd, self, asked, rounds, window_ms, &limit, &single_rate);
  if (cluster)
    {
#ifdef CANOPY_BENCH_POSTGRESQL
      /* the machine offered the single part's heartbeats per second */
      guint spread_ms = (guint) ((guint64) window_ms * 2 * cluster_asked / asked);

      ok = run_cluster (canopyd, self, cluster_asked, rounds, spread_ms, window_ms, &limit,
                        single_rate)
           && ok;
#else
      (void) cluster_asked;
      printf ("enrol-bench: cluster part skipped: built without the postgresql backend\n");
#endif
    }
  nftw (bench.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  g_free (bench.dir);
  return ok ? 0 : 1;
}
