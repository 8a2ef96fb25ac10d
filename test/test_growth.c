/* test_growth.c — what corona keeps resident beside the live heap when the
 * heap grows (ctest name growth; CORONA_DECAY_MS=600000 from CMake, so no
 * time-based release runs and only the policy's budgets act).
 *
 * Each cache has a budget of its own: free pages of large regions 32 MiB +
 * a quarter of the live bytes, the global cache's mappings of their own
 * 64 MiB + a quarter.  A program that frees objects of both kinds fills
 * both, and the soak's bound on peak RSS (1.5 x peak live + 32 MiB) broke
 * now and then.  Where a request maps fresh memory, the caches together are
 * cut to the free pages' budget (growth_trim in policy.c).  The test:
 *   1. 12 objects of 5 MiB (mappings of their own, next to each other)
 *      written and freed: the global cache keeps them, joined, resident
 *      (60 MiB, within its budget);
 *   2. 40 objects of 1 MiB (blocks of large regions) written and freed:
 *      up to 32 MiB of free pages stay resident, and a thread's cache
 *      (the first of them maps a region: the trim acts already);
 *   3. 48 objects of 1 MiB allocated and written, one by one: the caches
 *      serve the first, fresh memory the rest.
 * Then RSS must be within baseline + live + 32 MiB + live/4 + 8 MiB (the
 * thread's cache of 4 MiB, slack); keeping both caches whole puts it at
 * about baseline + live + 60 MiB.  The live objects' contents are checked
 * before they are freed.  ThreadSanitizer builds skip: its shadow memory
 * is part of RSS (AddressSanitizer leaves corona's mappings alone; see
 * test_rss.c). */
#define _POSIX_C_SOURCE 200809L
#include "corona.h"
#include "procutil.h"
#include "testutil.h"

#define MB ((size_t)1 << 20)
#define OWN_COUNT 12
#define OWN_SIZE (5 * MB)
#define REGION_COUNT 40
#define LIVE_COUNT 48

/* n objects of size bytes, every page written, then all freed. */
static bool cycle(void **p, int n, size_t size) {
  for (int i = 0; i < n; i++) {
    p[i] = corona_malloc(size);
    if (!CHECKF(p[i] != NULL, "malloc(%zu) failed", size)) return false;
    pu_touch(p[i], size, (unsigned char)i);
  }
  for (int i = 0; i < n; i++) {
    CHECK(pu_touched_ok(p[i], size, (unsigned char)i) == (size_t)-1);
    corona_free(p[i]);
  }
  return true;
}

int main(void) {
  double t0 = tu_now();
  if (TU_TSAN) {
    tu_skip("growth: RSS under ThreadSanitizer counts its shadow memory");
    return tu_finish("test_growth", t0);
  }
  static void *p[OWN_COUNT > LIVE_COUNT ? OWN_COUNT : LIVE_COUNT];
  corona_free(corona_malloc(64)); /* corona's start-up before the baseline */
  size_t base = pu_rss();

  if (!cycle(p, OWN_COUNT, OWN_SIZE)) return tu_finish("test_growth", t0);
  size_t rss_own = pu_rss();
  if (!cycle(p, REGION_COUNT, MB)) return tu_finish("test_growth", t0);
  size_t rss_cached = pu_rss();

  for (int i = 0; i < LIVE_COUNT; i++) {
    p[i] = corona_malloc(MB);
    if (!CHECKF(p[i] != NULL, "malloc(%zu) failed", MB)) return tu_finish("test_growth", t0);
    tu_fill(p[i], MB, tu_seed(p[i], MB));
  }
  size_t rss = pu_rss(), live = LIVE_COUNT * MB, bound = base + live + 32 * MB + live / 4 + 8 * MB;
  printf("growth: RSS baseline %.1f MiB, own mappings cached %+.1f, region blocks too %+.1f, "
         "%zu MiB live %+.1f (bound %+.1f)\n",
         pu_mib(base), pu_mib_signed(rss_own, base), pu_mib_signed(rss_cached, base), live / MB,
         pu_mib_signed(rss, base), pu_mib_signed(bound, base));
  CHECKF(rss_own > base + 56 * MB, "the cache held %.1f MiB: too little for the test to mean anything",
         pu_mib_signed(rss_own, base));
  CHECKF(rss <= bound, "RSS %.1f MiB above the baseline with %zu MiB live: more than %.1f", pu_mib_signed(rss, base),
         live / MB, pu_mib_signed(bound, base));
  for (int i = 0; i < LIVE_COUNT; i++) {
    CHECK_PATTERN(p[i], MB, tu_seed(p[i], MB));
    corona_free(p[i]);
  }
  return tu_finish("test_growth", t0);
}
