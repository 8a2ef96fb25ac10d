/* test_growth.c — what corona keeps resident beside the live heap when the
 * heap grows (ctest name growth; CORONA_DECAY_MS=600000 from CMake, so no
 * time-based release runs and only the policy's budgets act).
 *
 * Each cache has a budget of its own: free pages of large regions 32 MiB +
 * a quarter of the live bytes, the global cache's mappings of their own
 * 64 MiB + a quarter, and each thread its share of 16 MiB of large blocks
 * of its own (1 to 4 MiB).  A program that frees objects of all kinds
 * fills them all, and the soak's bound on peak RSS (1.5 x peak live +
 * 32 MiB) broke now and then.  Where a request maps fresh memory, the
 * caches together are cut to the free pages' budget (growth_trim in
 * policy.c).  Three scenarios, each from a collected heap:
 * own     1. 12 objects of 5 MiB (mappings of their own, next to each
 *            other) written and freed: the global cache keeps them, joined,
 *            resident (60 MiB, within its budget);
 *         2. 40 objects of 1 MiB (blocks of large regions) written and
 *            freed: up to 32 MiB of free pages stay resident, and a
 *            thread's cache (the first of them maps a region: the trim
 *            acts already);
 *         3. 48 objects of 1 MiB allocated and written, one by one: the
 *            caches serve the first, fresh memory the rest.
 *         RSS must be within baseline + live + 32 MiB + live/4 + 8 MiB (the
 *         thread's cache of 4 MiB, slack); keeping both caches whole puts
 *         it at about baseline + live + 60 MiB.
 * share   15 threads (16 with main), every one with its caches before any
 *         frees, each write and free 4 objects of 960 KiB and wait: what
 *         their caches hold (asked of the heap, white-box) is at most
 *         16 MiB (14.1: a block each; 56.5 when each kept 4 MiB).
 * trim    1. 3 threads do the same (4 MiB each: 11.3 MiB in all);
 *         2. 160 objects of 1 MiB written, every other one freed: free
 *            pages up to the budget, in holes no bigger request fits;
 *         3. 8 objects of 2 MiB written: fresh memory.
 *         RSS must be within baseline + live + 32 MiB + live/4 + 4 MiB
 *         (slack): the threads' caches count in the budget, and the free
 *         pages give way for them (+151.1 MiB against +156.0; +164.1
 *         without).
 * The live objects' contents are checked before they are freed.
 * ThreadSanitizer builds skip: its shadow memory is part of RSS
 * (AddressSanitizer leaves corona's mappings alone; see test_rss.c). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "corona.h"
#include "internal/thread.h" /* cr_pool_threads_cached: what the threads' caches hold */
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

/* ---- own: the global cache's own mappings and free pages ---------------- */
static void scenario_own(void) {
  static void *p[OWN_COUNT > LIVE_COUNT ? OWN_COUNT : LIVE_COUNT];
  size_t base = pu_rss();
  if (!cycle(p, OWN_COUNT, OWN_SIZE)) return;
  size_t rss_own = pu_rss();
  if (!cycle(p, REGION_COUNT, MB)) return;
  size_t rss_cached = pu_rss();

  for (int i = 0; i < LIVE_COUNT; i++) {
    p[i] = corona_malloc(MB);
    if (!CHECKF(p[i] != NULL, "malloc(%zu) failed", MB)) return;
    tu_fill(p[i], MB, tu_seed(p[i], MB));
  }
  size_t rss = pu_rss(), live = LIVE_COUNT * MB, bound = base + live + 32 * MB + live / 4 + 8 * MB;
  printf("growth own: RSS baseline %.1f MiB, own mappings cached %+.1f, region blocks too %+.1f, "
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
}

/* ---- threads: the threads' own caches ------------------------------------ */
#define THREAD_OBJS 4
#define THREAD_SIZE ((size_t)960 << 10)
#define MAX_THREADS 15

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int started_threads, running_threads, cached_threads;
static bool release_threads;

static void *cache_thread(void *arg) {
  (void)arg;
  void *p[THREAD_OBJS];
  /* A thread gets its caches with its first small object (large objects
   * alone would go to the shared cache); every thread has them before any
   * frees, so each sees the same share. */
  corona_free(corona_malloc(64));
  pthread_mutex_lock(&gate_lock);
  started_threads++;
  pthread_cond_broadcast(&gate_cond);
  while (started_threads < running_threads) pthread_cond_wait(&gate_cond, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
  bool ok = cycle(p, THREAD_OBJS, THREAD_SIZE);
  pthread_mutex_lock(&gate_lock);
  cached_threads += ok ? 1 : MAX_THREADS + 1; /* a failure shows as too many */
  pthread_cond_broadcast(&gate_cond);
  while (!release_threads) pthread_cond_wait(&gate_cond, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
  return NULL;
}

/* n threads each write and free THREAD_OBJS objects of THREAD_SIZE and
 * wait, holding what their caches kept, until threads_stop. */
static bool threads_start(pthread_t *t, int n) {
  started_threads = cached_threads = 0;
  running_threads = n;
  release_threads = false;
  for (int i = 0; i < n; i++)
    if (!CHECK(pthread_create(&t[i], NULL, cache_thread, NULL) == 0)) return false;
  pthread_mutex_lock(&gate_lock);
  while (cached_threads < n) pthread_cond_wait(&gate_cond, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
  return CHECKF(cached_threads == n, "a thread's objects failed");
}

static void threads_stop(pthread_t *t, int n) {
  pthread_mutex_lock(&gate_lock);
  release_threads = true;
  pthread_cond_broadcast(&gate_cond);
  pthread_mutex_unlock(&gate_lock);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

/* share: 15 threads (16 with main) keep 1 MiB each at most, their share of
 * CORONA_LOCAL_LOC_TOTAL_BYTES (each keeps one block of 964 KiB); without
 * the share each kept its four, 58 MiB in all.  (A thread's cache follows
 * the share as it stood at its last free: threads that start later do not
 * shrink the caches of those before them, so every thread here has its
 * caches before any frees.) */
#define SHARE_THREADS 15
static void scenario_share(void) {
  pthread_t t[SHARE_THREADS];
  if (!threads_start(t, SHARE_THREADS)) return;
  size_t held = cr_pool_threads_cached(&cr_default_pool);
  printf("growth share: %d threads hold %.1f MiB in their caches (at most %.1f)\n", SHARE_THREADS, pu_mib(held),
         pu_mib(CORONA_LOCAL_LOC_TOTAL_BYTES));
  CHECKF(held <= CORONA_LOCAL_LOC_TOTAL_BYTES, "%d threads hold %.1f MiB in their caches: more than their %.1f MiB",
         SHARE_THREADS, pu_mib(held), pu_mib(CORONA_LOCAL_LOC_TOTAL_BYTES));
  CHECKF(held >= SHARE_THREADS * THREAD_SIZE, "%d threads hold %.1f MiB: not even a block each, the test means "
         "nothing", SHARE_THREADS, pu_mib(held));
  threads_stop(t, SHARE_THREADS);
}

/* trim: the threads' caches count in the budget where the heap grows. */
#define TRIM_THREADS 3
#define HOLED_COUNT 160
#define BIG_COUNT 8
#define BIG_SIZE (2 * MB)
static void scenario_trim(void) {
  static void *holed[HOLED_COUNT], *big[BIG_COUNT];
  size_t base = pu_rss();
  pthread_t t[TRIM_THREADS];
  if (!threads_start(t, TRIM_THREADS)) return;
  size_t held = cr_pool_threads_cached(&cr_default_pool);

  for (int i = 0; i < HOLED_COUNT; i++) {
    holed[i] = corona_malloc(MB);
    if (!CHECKF(holed[i] != NULL, "malloc(%zu) failed", MB)) return;
    tu_fill(holed[i], MB, tu_seed(holed[i], MB));
  }
  for (int i = 0; i < HOLED_COUNT; i += 2) {
    CHECK_PATTERN(holed[i], MB, tu_seed(holed[i], MB));
    corona_free(holed[i]);
  }
  size_t rss_holes = pu_rss();
  for (int i = 0; i < BIG_COUNT; i++) {
    big[i] = corona_malloc(BIG_SIZE);
    if (!CHECKF(big[i] != NULL, "malloc(%zu) failed", BIG_SIZE)) return;
    tu_fill(big[i], BIG_SIZE, tu_seed(big[i], BIG_SIZE));
  }
  size_t rss = pu_rss(), live = HOLED_COUNT / 2 * MB + BIG_COUNT * BIG_SIZE;
  size_t bound = base + live + 32 * MB + live / 4 + 4 * MB;
  printf("growth trim: RSS baseline %.1f MiB, %d threads' caches %.1f, holes %+.1f, %zu MiB live %+.1f "
         "(bound %+.1f)\n",
         pu_mib(base), TRIM_THREADS, pu_mib(held), pu_mib_signed(rss_holes, base), live / MB,
         pu_mib_signed(rss, base), pu_mib_signed(bound, base));
  CHECKF(held > TRIM_THREADS * 3 * MB, "the threads' caches held %.1f MiB: too little for the test to mean anything",
         pu_mib(held));
  CHECKF(rss <= bound, "RSS %.1f MiB above the baseline with %zu MiB live and %d threads' caches: more than %.1f",
         pu_mib_signed(rss, base), live / MB, TRIM_THREADS, pu_mib_signed(bound, base));
  for (int i = 1; i < HOLED_COUNT; i += 2) {
    CHECK_PATTERN(holed[i], MB, tu_seed(holed[i], MB));
    corona_free(holed[i]);
  }
  for (int i = 0; i < BIG_COUNT; i++) {
    CHECK_PATTERN(big[i], BIG_SIZE, tu_seed(big[i], BIG_SIZE));
    corona_free(big[i]);
  }
  threads_stop(t, TRIM_THREADS);
}

int main(void) {
  double t0 = tu_now();
  if (TU_TSAN) {
    tu_skip("growth: RSS under ThreadSanitizer counts its shadow memory");
    return tu_finish("test_growth", t0);
  }
  corona_free(corona_malloc(64)); /* corona's start-up before the baseline */
  scenario_own();
  corona_collect();
  scenario_share();
  corona_collect();
  scenario_trim();
  return tu_finish("test_growth", t0);
}
