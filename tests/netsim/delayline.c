/* A WAN's propagation delay for the network benchmarks, which this
 * kernel cannot add (no netem): two tun devices, and every packet read
 * from one is written to the other a fixed delay later, in order.
 *
 *   usage: canopy-delayline TUN_A TUN_B DELAY_MS
 *
 * DELAY_MS may have a fraction (10.5: half of a 21 ms round trip).
 * Creates TUN_A and TUN_B (layer 3, no packet information) in the calling
 * network namespace and prints "ready" once both exist; the caller then
 * moves them into the namespaces they join, addresses them as a
 * point-to-point link and shapes them with tc. Runs until SIGTERM or
 * SIGINT. Memory is bounded: a direction holding more than MAX_QUEUED
 * packets drops the newest, as a full router queue would. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PACKET 65536
#define MAX_QUEUED 16384

typedef struct {
  int64_t due_us;
  uint16_t length;
  unsigned char *data;
} Packet;

/* One direction: packets read from @in wait here until due, then go to @out. */
typedef struct {
  int in, out;
  Packet slots[MAX_QUEUED];
  unsigned head, count;
  unsigned long long forwarded, dropped;
} Direction;

static volatile sig_atomic_t stopping;

static void
on_signal (int signo)
{
  (void) signo;
  stopping = 1;
}

static int64_t
now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
open_tun (const char *name)
{
  struct ifreq ifr;
  int fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0)
    {
      fprintf (stderr, "delayline: cannot open /dev/net/tun: %s\n", strerror (errno));
      return -1;
    }
  memset (&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    {
      fprintf (stderr, "delayline: cannot create tun device %s: %s\n", name, strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

/* Reads every packet waiting on @d->in; each becomes due @delay_us later. */
static void
take_in (Direction *d, int64_t delay_us)
{
  static unsigned char buffer[MAX_PACKET];

  for (;;)
    {
      ssize_t got = read (d->in, buffer, sizeof buffer);
      Packet *p;

      if (got <= 0)
        return;
      if (d->count == MAX_QUEUED)
        {
          d->dropped++;
          continue;
        }
      p = &d->slots[(d->head + d->count) % MAX_QUEUED];
      p->data = realloc (p->data, (size_t) got);
      if (p->data == NULL)
        abort ();
      memcpy (p->data, buffer, (size_t) got);
      p->length = (uint16_t) got;
      p->due_us = now_us () + delay_us;
      d->count++;
    }
}

/* Writes the packets that are due; returns µs until the next one, or -1. */
static int64_t
send_due (Direction *d)
{
  int64_t now = now_us ();

  while (d->count > 0)
    {
      Packet *p = &d->slots[d->head];

      if (p->due_us > now)
        return p->due_us - now;
      /* A full tun queue on the far side drops the packet, as a link would. */
      if (write (d->out, p->data, p->length) < 0 && errno != EAGAIN && errno != EIO)
        d->dropped++;
      else
        d->forwarded++;
      d->head = (d->head + 1) % MAX_QUEUED;
      d->count--;
    }
  return -1;
}

int
main (int argc, char **argv)
{
  static Direction ab, ba;
  int64_t delay_us;
  double delay_ms = 0;
  char *end = NULL;
  struct sigaction sa;

  if (argc == 4)
    delay_ms = strtod (argv[3], &end);
  if (argc != 4 || end == argv[3] || *end != '\0' || !(delay_ms >= 0 && delay_ms <= 60000))
    {
      fprintf (stderr, "usage: %s TUN_A TUN_B DELAY_MS\n", argv[0]);
      return 2;
    }
  delay_us = (int64_t) (delay_ms * 1000);
  ab.in = ba.out = open_tun (argv[1]);
  ab.out = ba.in = open_tun (argv[2]);
  if (ab.in < 0 || ab.out < 0)
    return 1;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  printf ("ready\n");
  fflush (stdout);
  while (!stopping)
    {
      struct pollfd fds[2] = { { ab.in, POLLIN, 0 }, { ba.in, POLLIN, 0 } };
      int64_t next_ab = send_due (&ab), next_ba = send_due (&ba), next = -1;
      struct timespec timeout;

      if (next_ab >= 0)
        next = next_ab;
      if (next_ba >= 0 && (next < 0 || next_ba < next))
        next = next_ba;
      if (next < 0)
        next = 1000000;
      timeout.tv_sec = next / 1000000;
      timeout.tv_nsec = (next % 1000000) * 1000;
      if (ppoll (fds, 2, &timeout, NULL) < 0 && errno != EINTR)
        break;
      if (fds[0].revents & POLLIN)
        take_in (&ab, delay_us);
      if (fds[1].revents & POLLIN)
        take_in (&ba, delay_us);
    }
  fprintf (stderr, "delayline: %s→%s %llu packets (%llu dropped), %s→%s %llu (%llu dropped)\n",
           argv[1], argv[2], ab.forwarded, ab.dropped, argv[2], argv[1], ba.forwarded,
           ba.dropped);
  return 0;
}
