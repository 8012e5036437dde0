/* Logging settings: how the debug-domain setting is read. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/log.h"

static void
test_debug_domains (void)
{
  g_autoptr (CanopyLog) log = canopy_log_new ();

  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "");
  canopy_log_set_debug_domains (log, " canopy-tcp, canopy  canopyd ");
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "canopy-tcp,canopy,canopyd");
  canopy_log_set_debug_domains (log, NULL);
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "");
  canopy_log_set_debug_domains (log, "all");
  CU_ASSERT_STRING_EQUAL (canopy_log_get_debug_domains (log), "all");
}

typedef struct {
  char *key;
  guint suppressed;
  guint calls;
} Summary;

static void
on_summary (const char *key, guint suppressed, gpointer user_data)
{
  Summary *summary = user_data;

  g_free (summary->key);
  summary->key = g_strdup (key);
  summary->suppressed = suppressed;
  summary->calls++;
}

/* The first event of a key is logged, the rest of its window counted and
 * summed up once; a flood of keys cannot grow the table. */
static void
test_rate_limit (void)
{
  Summary summary = { 0 };
  g_autoptr (CanopyLogLimit) limit = canopy_log_limit_new (1, on_summary, &summary);
  guint allowed = 0;
  gint64 deadline;

  for (guint i = 0; i < 50; i++)
    allowed += canopy_log_limit_allow (limit, "198.51.100.7");
  CU_ASSERT_EQUAL (allowed, 1);
  CU_ASSERT (canopy_log_limit_allow (limit, "198.51.100.8"));
  CU_ASSERT_EQUAL (summary.calls, 0);

  /* The timer ends the window: one summary for the 49 held back. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (summary.calls == 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (summary.calls, 1);
  CU_ASSERT_STRING_EQUAL (summary.key, "198.51.100.7");
  CU_ASSERT_EQUAL (summary.suppressed, 49);
  /* A new window: the next one is logged again. */
  CU_ASSERT (canopy_log_limit_allow (limit, "198.51.100.7"));
  CU_ASSERT_FALSE (canopy_log_limit_allow (limit, "198.51.100.7"));

  /* Past 1024 keys, new ones share "*": the first is logged, not the rest. */
  allowed = 0;
  for (guint i = 0; i < 1100; i++)
    {
      g_autofree char *key = g_strdup_printf ("10.0.%u.%u", i / 256, i % 256);
      allowed += canopy_log_limit_allow (limit, key);
    }
  CU_ASSERT (allowed <= 1024);
  CU_ASSERT (allowed >= 1020);
  g_free (summary.key);
}

CANOPY_TEST_SUITE (log, "log", NULL, NULL, { "debug domains", test_debug_domains },
                   { "rate limit", test_rate_limit })
