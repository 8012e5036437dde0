/* Service lifecycle: signal sources on the main loop rather than signal
 * handlers, so reload and shutdown run as ordinary loop callbacks. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-service"

#include "lib/service.h"
#include "lib/i18n.h"

#include <glib-unix.h>
#include <signal.h>

struct _CanopyService {
  GMainContext *context;
  GMainLoop *loop;
  CanopyServiceReloadFunc reload;
  CanopyServiceDrainFunc drain;
  guint draining; /* the timer asking the drain again, 0 when not stopping */
  gpointer user_data;
  guint sources[3];
  int stopped_by;
};

typedef struct {
  CanopyService *service;
  int signum;
} SignalWatch;

/* Stops the loop once the work in flight is done. */
static gboolean
on_drain (gpointer data)
{
  CanopyService *service = data;

  if (service->drain != NULL && !service->drain (service->user_data))
    return G_SOURCE_CONTINUE;
  service->draining = 0;
  g_main_loop_quit (service->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_signal (gpointer data)
{
  SignalWatch *watch = data;
  CanopyService *service = watch->service;

  if (watch->signum == SIGHUP)
    {
      g_message (_("Received SIGHUP: reloading the configuration"));
      if (service->reload != NULL)
        service->reload (service->user_data);
      return G_SOURCE_CONTINUE;
    }
  g_message (_("Received %s: shutting down"), watch->signum == SIGTERM ? "SIGTERM" : "SIGINT");
  service->stopped_by = watch->signum;
  if (service->draining == 0 && on_drain (service) == G_SOURCE_CONTINUE)
    service->draining = g_timeout_add (10, on_drain, service);
  return G_SOURCE_CONTINUE;
}

static guint
watch_signal (CanopyService *service, int signum)
{
  SignalWatch *watch = g_new0 (SignalWatch, 1);
  g_autoptr (GSource) source = g_unix_signal_source_new (signum);

  watch->service = service;
  watch->signum = signum;
  g_source_set_callback (source, on_signal, watch, g_free);
  return g_source_attach (source, service->context);
}

CanopyService *
canopy_service_new (GMainContext *context, CanopyServiceReloadFunc reload, gpointer user_data)
{
  CanopyService *service = g_new0 (CanopyService, 1);

  service->context = context != NULL ? g_main_context_ref (context)
                                     : g_main_context_ref (g_main_context_default ());
  service->loop = g_main_loop_new (service->context, FALSE);
  service->reload = reload;
  service->user_data = user_data;
  service->sources[0] = watch_signal (service, SIGTERM);
  service->sources[1] = watch_signal (service, SIGINT);
  service->sources[2] = watch_signal (service, SIGHUP);
  return service;
}

void
canopy_service_free (CanopyService *service)
{
  if (service == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (service->sources); i++)
    {
      GSource *source = g_main_context_find_source_by_id (service->context, service->sources[i]);
      if (source != NULL)
        g_source_destroy (source);
    }
  if (service->draining != 0)
    g_source_remove (service->draining);
  g_main_loop_unref (service->loop);
  g_main_context_unref (service->context);
  g_free (service);
}

int
canopy_service_run (CanopyService *service)
{
  service->stopped_by = 0;
  g_main_loop_run (service->loop);
  return service->stopped_by;
}

void
canopy_service_set_drain (CanopyService *service, CanopyServiceDrainFunc drain)
{
  service->drain = drain;
}

void
canopy_service_quit (CanopyService *service)
{
  g_main_loop_quit (service->loop);
}
