/* test_rss.c — measured memory use of large objects (resident set size from
 * /proc/self/statm; every figure is printed):
 *   bulk    1 GiB of large objects of mixed sizes (8 KB .. 8 MB, at most
 *           ~100 MB live), every page touched, all freed, corona_collect:
 *           RSS ends within 16 MiB of the baseline taken after a warm-up;
 *   loop    a 3 MiB buffer allocated, touched and freed 5000 times: RSS
 *           after 5000 rounds exceeds RSS after 100 by less than 4 MiB;
 *   decay   ~200 MB of large objects touched and freed without
 *           corona_collect; after 1.5 s idle and a few malloc/free calls
 *           most of it has gone back to the OS (time-based aging); the same
 *           when a thread that freed them has exited;
 *   limit   with CORONA_SET_SOFT_HEAP_LIMIT at 32 MB, freeing 150 MB leaves
 *           at most the limit (+ 4 MiB slack) resident;
 *   exit    threads that fill their caches and exit leave nothing behind
 *           once corona_collect has run;
 *   big     buffers of 8..48 MiB, two live, each freed and replaced by
 *           one of another size, 200 times: cached mappings are reused
 *           whole (their slack bounded), so RSS stays within two of the
 *           biggest buffers plus the slack budget, contents survive, a
 *           realloc of a buffer with slack keeps its bytes, and all of it
 *           goes back at corona_collect;
 *   reuse   a 24 MiB buffer touched and freed, then three of 8 MiB: they
 *           are cut from its resident pages (under a quarter of their pages
 *           fault in), contents intact; freed, one of 24 MiB again reuses
 *           the joined pieces likewise;
 *   small   ~128 MB of small objects, all but one in 1024 freed (a
 *           survivor on about one slab in eight, so no slab region can be
 *           unmapped): right after the frees at most the resident budget
 *           of free slabs stays, and after 1.5 s idle and a few calls most
 *           of the rest is gone too (freed slabs are purged lazily, in
 *           runs, never left resident for good);
 *   absurd  alignments above 1 TiB fail with ENOMEM whatever the kernel
 *           allows; requests no system here could back (2^40 and 2^44
 *           bytes; alignments of 2^40 and 2^44) fail with ENOMEM where the
 *           kernel's overcommit heuristic refuses them, and a 1 GiB
 *           alignment, objects of a quarter of RAM + swap, and callocs of
 *           4 and 512 MiB that reuse a cached mapping succeed; each
 *           call answers within 10 ms (100 ms under ThreadSanitizer) and
 *           leaves RSS within 1 MiB of where it was once freed (the page
 *           map marks only an object's own pages, and gives its marks
 *           back with it).
 * Under ThreadSanitizer the runtime's shadow memory (written on every
 * access, and not released when the allocator gives pages back with
 * madvise) is part of RSS, so the figures are printed but not asserted
 * there; AddressSanitizer leaves corona's own mappings alone and is checked
 * like Release, with work scaled down. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>

#include "corona.h"
#include "procutil.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)

/* Whether RSS figures are asserted (see the header comment). */
#define ASSERT_RSS (!TU_TSAN)

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A few ordinary allocator calls of each kind (the "later calls" that give
 * aged memory back). */
static void few_calls(void) {
  for (int i = 0; i < 4; i++) {
    void *a = corona_malloc(64);
    void *b = corona_malloc(100 * KB);
    void *c = corona_malloc(2 * MB);
    corona_free(c);
    corona_free(b);
    corona_free(a);
  }
}

static size_t baseline;

static void warm_up(void) {
  tu_rng_t r;
  tu_rng_seed(&r, 3);
  void *p[64];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 64; i++) {
      size_t s = i < 16 ? (size_t)(i + 1) * 100 : tu_log_range(&r, 8 * KB, 8 * MB);
      p[i] = corona_malloc(s);
      if (p[i]) pu_touch(p[i], s, 1);
    }
    for (int i = 0; i < 64; i++) corona_free(p[i]);
  }
  corona_collect();
  baseline = pu_rss();
  printf("    baseline RSS after warm-up and collect: %.1f MiB\n", pu_mib(baseline));
}

/* ---- bulk: 1 GiB through, ~100 MB live ------------------------------------------------ */
#define BULK_SLOTS 4096
static struct {
  unsigned char *p;
  size_t size;
} bulk[BULK_SLOTS];

static void test_bulk(void) {
  tu_rng_t r;
  tu_rng_seed(&r, 11);
  const size_t total = tu_scaled((size_t)1 << 30, 256 * MB), live_cap = 100 * MB;
  size_t done = 0, live = 0, head = 0, tail = 0, count = 0, max_live = 0;
  size_t rss_start = pu_rss();
  pu_reset_peak_rss();
  double t = tu_now();
  while (done < total) {
    size_t s = tu_log_range(&r, 8 * KB, 8 * MB);
    /* FIFO with random-ish lifetimes: free the oldest until there is room. */
    while (count > 0 && (live + s > live_cap || count == BULK_SLOTS)) {
      size_t i = tail++ % BULK_SLOTS;
      size_t bad = pu_touched_ok(bulk[i].p, bulk[i].size, (unsigned char)i);
      CHECKF(bad == (size_t)-1, "bulk: object %p size %zu: page at %zu lost its byte", (void *)bulk[i].p,
             bulk[i].size, bad);
      corona_free(bulk[i].p);
      live -= bulk[i].size;
      count--;
    }
    size_t i = head++ % BULK_SLOTS;
    bulk[i].p = corona_malloc(s);
    if (!CHECKF(bulk[i].p != NULL, "bulk: malloc(%zu) failed", s)) {
      head--;
      break;
    }
    bulk[i].size = s;
    pu_touch(bulk[i].p, s, (unsigned char)i);
    live += s;
    count++;
    done += s;
    if (live > max_live) max_live = live;
  }
  size_t rss_live = pu_rss();
  while (count > 0) {
    size_t i = tail++ % BULK_SLOTS;
    CHECK(pu_touched_ok(bulk[i].p, bulk[i].size, (unsigned char)i) == (size_t)-1);
    corona_free(bulk[i].p);
    count--;
  }
  size_t rss_freed = pu_rss();
  corona_collect();
  size_t rss_end = pu_rss();
  printf("    bulk: %.0f MiB through (max %.0f MiB live) in %.2f s; RSS start %.1f, peak %.1f, with last objects "
         "live %.1f, all freed %.1f, after collect %.1f MiB (%+.1f MiB vs baseline)\n",
         pu_mib(done), pu_mib(max_live), tu_now() - t, pu_mib(rss_start), pu_mib(pu_peak_rss()), pu_mib(rss_live),
         pu_mib(rss_freed), pu_mib(rss_end), pu_mib_signed(rss_end, baseline));
  if (ASSERT_RSS)
    CHECKF(rss_end < baseline + 16 * MB, "bulk: RSS after collect %.1f MiB is %.1f MiB above the baseline %.1f MiB",
           pu_mib(rss_end), pu_mib_signed(rss_end, baseline), pu_mib(baseline));
}

/* ---- loop: one 3 MiB buffer, 5000 times ------------------------------------------------ */
static void test_loop(void) {
  const size_t rounds = tu_scaled(5000, 1000), s = 3 * MB;
  size_t rss100 = 0;
  double t = tu_now();
  for (size_t k = 1; k <= rounds; k++) {
    unsigned char *p = corona_malloc(s);
    if (!CHECKF(p != NULL, "loop: malloc(3 MiB) failed in round %zu", k)) break;
    pu_touch(p, s, (unsigned char)k);
    if (k % 500 == 0) CHECK(pu_touched_ok(p, s, (unsigned char)k) == (size_t)-1);
    corona_free(p);
    if (k == 100) rss100 = pu_rss();
  }
  size_t rss_end = pu_rss();
  printf("    loop: %zu x (malloc 3 MiB, touch, free) in %.2f s; RSS after 100: %.1f MiB, after %zu: %.1f MiB "
         "(%+.2f MiB)\n",
         rounds, tu_now() - t, pu_mib(rss100), rounds, pu_mib(rss_end), pu_mib_signed(rss_end, rss100));
  if (ASSERT_RSS)
    CHECKF(rss_end < rss100 + 4 * MB, "loop: RSS grew %.2f MiB between round 100 and round %zu",
           pu_mib_signed(rss_end, rss100), rounds);
  corona_collect();
}

/* ---- decay: freed memory goes back after ~1 s without corona_collect ------------------- */
#define DECAY_SLOTS 1024
static struct {
  unsigned char *p;
  size_t size;
} decay_objs[DECAY_SLOTS];

/* Allocates and touches about `total` bytes (64 KB .. 4 MB objects), then
 * frees them all; returns the bytes allocated and the RSS with them live. */
static size_t alloc_touch_free(size_t total, uint64_t seed, size_t *rss_live) {
  tu_rng_t r;
  tu_rng_seed(&r, seed);
  size_t n = 0, sum = 0;
  while (sum < total && n < DECAY_SLOTS) {
    size_t s = tu_log_range(&r, 64 * KB, 4 * MB);
    decay_objs[n].p = corona_malloc(s);
    if (!CHECKF(decay_objs[n].p != NULL, "decay: malloc(%zu) failed", s)) break;
    decay_objs[n].size = s;
    pu_touch(decay_objs[n].p, s, (unsigned char)n);
    sum += s;
    n++;
  }
  *rss_live = pu_rss();
  for (size_t i = 0; i < n; i++) {
    CHECK(pu_touched_ok(decay_objs[i].p, decay_objs[i].size, (unsigned char)i) == (size_t)-1);
    corona_free(decay_objs[i].p);
  }
  return sum;
}

static void check_decay(const char *label, size_t base, size_t sum, size_t rss_live, size_t rss_freed) {
  sleep_s(1.5);
  size_t rss_slept = pu_rss();
  few_calls();
  size_t rss_after = pu_rss();
  size_t held_before = rss_live > base ? rss_live - base : 0;
  size_t kept = rss_after > base ? rss_after - base : 0;
  printf("    decay (%s): %.0f MiB freed; RSS base %.1f, live %.1f, just freed %.1f, after 1.5 s idle %.1f, after a "
         "few calls %.1f MiB: %.0f%% of it returned\n",
         label, pu_mib(sum), pu_mib(base), pu_mib(rss_live), pu_mib(rss_freed), pu_mib(rss_slept), pu_mib(rss_after),
         held_before ? 100.0 * (1.0 - (double)kept / (double)held_before) : 0.0);
  if (ASSERT_RSS)
    CHECKF(kept < held_before / 2,
           "decay (%s): %.1f of %.1f MiB still resident 1.5 s after the free and a few calls (no collect)", label,
           pu_mib(kept), pu_mib(held_before));
}

static void *decay_thread(void *arg) {
  size_t *out = arg; /* out[0]: bytes, out[1]: RSS live */
  out[0] = alloc_touch_free(out[0], 23, &out[1]);
  return NULL;
}

static void test_decay(void) {
  const size_t total = tu_scaled(200 * MB, 100 * MB);
  /* Same thread. */
  corona_collect();
  size_t base = pu_rss(), rss_live;
  size_t sum = alloc_touch_free(total, 21, &rss_live);
  check_decay("same thread", base, sum, rss_live, pu_rss());

  /* A thread frees them and exits; the main thread's calls age them out. */
  corona_collect();
  base = pu_rss();
  size_t io[2] = {total, 0};
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, decay_thread, io) == 0)) return;
  pthread_join(t, NULL);
  check_decay("freeing thread exited", base, io[0], io[1], pu_rss());
  corona_collect();
}

/* ---- soft heap limit ----------------------------------------------------------------- */
static void test_soft_limit(void) {
  const size_t limit = 32 * MB;
  corona_collect();
  size_t base = pu_rss();
  if (!CHECK(corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, (intptr_t)limit) == 0)) return;
  size_t rss_live;
  size_t sum = alloc_touch_free(tu_scaled(150 * MB, 100 * MB), 31, &rss_live);
  size_t rss_freed = pu_rss();
  size_t kept = rss_freed > base ? rss_freed - base : 0;
  printf("    soft limit %.0f MiB: %.0f MiB freed; RSS base %.1f, live %.1f, freed %.1f MiB (%.1f MiB kept)\n",
         pu_mib(limit), pu_mib(sum), pu_mib(base), pu_mib(rss_live), pu_mib(rss_freed), pu_mib(kept));
  /* Nothing is live: what stays resident is cache, which the limit bounds
   * (4 MiB of slack for metadata and page tables). */
  if (ASSERT_RSS)
    CHECKF(kept <= limit + 4 * MB, "soft limit: %.1f MiB still resident after freeing everything, limit %.0f MiB",
           pu_mib(kept), pu_mib(limit));
  CHECK(corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0) == 0);
  corona_collect();
}

/* ---- threads that exit with full caches ------------------------------------------------ */
#define EXIT_THREADS 4
#define EXIT_OBJS 48

static void *exit_thread(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  tu_rng_t r;
  tu_rng_seed(&r, 100 + id);
  void *p[EXIT_OBJS];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < EXIT_OBJS; i++) {
      size_t s = tu_log_range(&r, 8 * KB, 4 * MB);
      p[i] = corona_malloc(s);
      if (CHECK(p[i] != NULL)) pu_touch(p[i], s, 7);
    }
    for (int i = 0; i < EXIT_OBJS; i++) corona_free(p[i]);
  }
  return NULL; /* exits with whatever its caches hold */
}

static void test_thread_exit(void) {
  corona_collect();
  size_t base = pu_rss();
  for (int wave = 0; wave < 2; wave++) {
    pthread_t t[EXIT_THREADS];
    int n = 0;
    for (int i = 0; i < EXIT_THREADS; i++)
      if (CHECK(pthread_create(&t[n], NULL, exit_thread, (void *)(uintptr_t)(wave * EXIT_THREADS + i)) == 0)) n++;
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  }
  size_t rss_joined = pu_rss();
  corona_collect();
  size_t rss_end = pu_rss();
  printf("    thread exit: RSS base %.1f, threads joined %.1f, after collect %.1f MiB (%+.1f vs base, %+.1f vs "
         "baseline)\n",
         pu_mib(base), pu_mib(rss_joined), pu_mib(rss_end), pu_mib_signed(rss_end, base),
         pu_mib_signed(rss_end, baseline));
  if (ASSERT_RSS)
    CHECKF(rss_end < base + 16 * MB, "thread exit: RSS after collect %.1f MiB above where it started",
           pu_mib_signed(rss_end, base));
}

/* ---- big: buffers of 8..48 MiB replaced by other sizes --------------------------------- */
static void test_big(void) {
  const size_t rounds = tu_scaled(200, 60);
  corona_collect();
  size_t base = pu_rss();
  tu_rng_t r;
  tu_rng_seed(&r, 51);
  unsigned char *slot[2] = {NULL, NULL};
  size_t size[2] = {0, 0}, rss_max = 0;
  double t = tu_now();
  for (size_t k = 0; k < rounds; k++) {
    size_t i = k & 1;
    if (slot[i] != NULL) {
      size_t bad = pu_touched_ok(slot[i], size[i], (unsigned char)(k - 2));
      if (!CHECKF(bad == (size_t)-1, "big: buffer of %zu lost its byte at %zu", size[i], bad)) break;
      corona_free(slot[i]);
    }
    size[i] = tu_range(&r, 8 * MB, 48 * MB);
    slot[i] = corona_malloc(size[i]);
    if (!CHECKF(slot[i] != NULL, "big: malloc(%zu) failed", size[i])) break;
    pu_touch(slot[i], size[i], (unsigned char)k);
    size_t now = pu_rss();
    if (now > rss_max) rss_max = now;
  }
  /* Grow and shrink one that may carry slack: the bytes stay. */
  unsigned char v = (unsigned char)(rounds - 1);
  size_t i = (rounds - 1) & 1;
  if (slot[i] != NULL) {
    unsigned char *g = corona_realloc(slot[i], size[i] + 3 * MB);
    if (CHECK(g != NULL)) {
      CHECKF(pu_touched_ok(g, size[i], v) == (size_t)-1, "big: realloc up lost bytes");
      unsigned char *s2 = corona_realloc(g, 9 * MB);
      if (CHECK(s2 != NULL)) {
        size_t bad = pu_pages_ok(s2, 9 * MB, v); /* page starts (OS pages: 4, 16 or 64 KB) */
        CHECKF(bad == (size_t)-1, "big: realloc down (%p of %zu bytes to %p) lost the byte at %zu", (void *)g,
               size[i] + 3 * MB, (void *)s2, bad);
        g = s2;
      }
      corona_free(g);
      slot[i] = NULL;
    }
  }
  corona_free(slot[0]);
  corona_free(slot[1]);
  corona_collect();
  size_t rss_end = pu_rss();
  printf("    big: %zu buffers of 8..48 MiB, 2 live, in %.2f s; RSS base %.1f, max %.1f, after collect %.1f MiB\n", rounds,
         tu_now() - t, pu_mib(base), pu_mib(rss_max), pu_mib(rss_end));
  if (ASSERT_RSS && tu_emulator() != NULL) {
    /* qemu-user 7.2 ignores madvise (it answers 0 and does nothing), so the
     * pieces a collect purges but keeps mapped stay resident there. */
    tu_skip("big: under qemu-user madvise(MADV_DONTNEED) does nothing: the RSS bounds are not checked");
  } else if (ASSERT_RSS) {
    /* Two of the biggest buffers, half the resident budget (32 MiB + a
     * quarter of ~96 MiB live, halved) as slack, and 8 MiB for the rest. */
    size_t bound = base + 96 * MB + (32 * MB + 24 * MB) / 2 + 8 * MB;
    CHECKF(rss_max <= bound, "big: RSS reached %.1f MiB, bound %.1f MiB", pu_mib(rss_max), pu_mib(bound));
    CHECKF(rss_end < base + 8 * MB, "big: RSS after collect %.1f MiB, base %.1f MiB", pu_mib(rss_end), pu_mib(base));
  }
}

/* ---- reuse: a freed big buffer serves smaller ones, its pieces a big one ---------------- */
static long minor_faults(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

/* Allocates n - 64 bytes (a block of n: the header is 64), touches every
 * page with v; returns the minor faults that took, or -1 on failure. */
static long take_touched(unsigned char **p, size_t n, unsigned char v) {
  long f = minor_faults();
  *p = corona_malloc(n - 64);
  if (!CHECKF(*p != NULL, "reuse: malloc(%zu) failed", n - 64)) return -1;
  pu_touch(*p, n - 64, v);
  return minor_faults() - f;
}

static void test_reuse(void) {
  const size_t third = 8 * MB, pages = third / pu_page_size();
  corona_collect();
  unsigned char *a, *p[3];
  if (take_touched(&a, 3 * third, 1) < 0) return;
  corona_free(a);
  long cut = 0, whole;
  for (int i = 0; i < 3; i++) {
    long f = take_touched(&p[i], third, (unsigned char)(10 + i));
    if (f < 0) return;
    cut += f;
  }
  for (int i = 0; i < 3; i++) {
    size_t bad = pu_touched_ok(p[i], third - 64, (unsigned char)(10 + i));
    CHECKF(bad == (size_t)-1, "reuse: third %d lost its byte at %zu", i, bad);
    corona_free(p[i]);
  }
  if ((whole = take_touched(&a, 3 * third, 2)) < 0) return;
  CHECKF(pu_touched_ok(a, 3 * third - 64, 2) == (size_t)-1, "reuse: the whole buffer lost bytes");
  corona_free(a);
  corona_collect();
  printf("    reuse: a 24 MiB buffer freed, three of 8 MiB in its place took %ld page faults (%zu pages), "
         "freed, one of 24 MiB again %ld (%zu pages)\n", cut, 3 * pages, whole, 3 * pages);
  if (ASSERT_RSS) {
    /* Resident memory reused: at most a quarter of the pages faulted in
     * (page-map and backref pages, the odd purge). */
    CHECKF((size_t)cut < 3 * pages / 4, "reuse: three buffers cut from a freed one took %ld page faults of %zu pages",
           cut, 3 * pages);
    CHECKF((size_t)whole < 3 * pages / 4, "reuse: a buffer the size of the three took %ld page faults of %zu pages",
           whole, 3 * pages);
  }
}

/* ---- small: freed slabs in regions that stay in use ------------------------------------ */
static void test_small(void) {
  const size_t total = tu_scaled(128 * MB, 64 * MB), keep_every = 1024;
  size_t cap = total / 16, n = 0, sum = 0, live_kept = 0;
  unsigned char **p = corona_malloc(cap * sizeof *p);
  if (!CHECK(p != NULL)) return;
  corona_collect();
  size_t base = pu_rss();
  tu_rng_t r;
  tu_rng_seed(&r, 41);
  while (sum < total && n < cap) {
    size_t s = tu_range(&r, 16, 255); /* fits the size byte */
    if (!CHECKF((p[n] = corona_malloc(s)) != NULL, "small: malloc(%zu) failed", s)) break;
    memset(p[n], (int)(n * 7 + s), s);
    p[n][0] = (unsigned char)s;
    sum += s;
    n++;
  }
  size_t rss_live = pu_rss();
  for (size_t i = 0; i < n; i++) {
    size_t s = p[i][0];
    if (!CHECKF(p[i][s - 1] == (unsigned char)(i * 7 + s), "small: object %zu lost its last byte", i)) break;
    if (i % keep_every == 0) {
      live_kept += s;
      continue;
    }
    corona_free(p[i]);
  }
  size_t rss_freed = pu_rss();
  sleep_s(1.5);
  few_calls();
  size_t rss_after = pu_rss();
  size_t held = rss_live > base ? rss_live - base : 0, kept_now = rss_freed > base ? rss_freed - base : 0;
  size_t kept_later = rss_after > base ? rss_after - base : 0;
  printf("    small: %zu objects, %.0f MiB, %.2f MiB kept live; RSS base %.1f, live %.1f, just freed %.1f (%.1f MiB "
         "held), after 1.5 s idle and a few calls %.1f MiB (%.1f held)\n",
         n, pu_mib(sum), pu_mib(live_kept), pu_mib(base), pu_mib(rss_live), pu_mib(rss_freed), pu_mib(kept_now),
         pu_mib(rss_after), pu_mib(kept_later));
  if (ASSERT_RSS) {
    /* The resident budget of free slabs is 32 MiB + a quarter of the bytes
     * in use, which were all of it when the frees began; besides: the
     * pool's list of empty blocks (16 MiB), the survivors' slabs (about one
     * in eight) and 12 MiB for the touched part of the pointer array and
     * metadata. */
    size_t bound = 32 * MB + held / 4 + 16 * MB + held / 8 + 12 * MB;
    CHECKF(kept_now <= bound, "small: %.1f MiB resident right after the frees, bound %.1f MiB", pu_mib(kept_now),
           pu_mib(bound));
    CHECKF(kept_later < held / 4, "small: %.1f of %.1f MiB still resident 1.5 s after the frees", pu_mib(kept_later),
           pu_mib(held));
  }
  for (size_t i = 0; i < n; i += keep_every) {
    size_t s = p[i][0];
    CHECKF(p[i][s - 1] == (unsigned char)(i * 7 + s) && p[i][s / 2] == (unsigned char)(i * 7 + s),
           "small: survivor %zu changed", i);
    corona_free(p[i]);
  }
  corona_free(p);
  corona_collect();
}

/* ---- absurd: what the system cannot back, huge alignments ---------------------------- */
/* Per call; ThreadSanitizer's runtime takes a call for each atomic store
 * of the page-map marks (a million for a 16 GiB object). */
#define ABSURD_MAX_S (TU_TSAN ? 0.1 : 0.01)
#define ABSURD_RSS_SLACK MB  /* after the free */

/* One call: its time, its answer, and RSS before and after the free. */
/* A call slower than the bound is tried again, up to 5 times, and the
 * fastest counts: on a shared machine a preempted call measures the
 * machine, not corona (these calls used to take seconds, not milliseconds). */
static void absurd_call(const char *what, size_t align, size_t size, bool calloc_it, int expect) {
  size_t before = pu_rss(), after = before;
  void *p = NULL;
  double t = 1e9;
  int err = 0;
  bool aligned = true;
  for (int attempt = 0; attempt < 5 && t >= ABSURD_MAX_S; attempt++) {
    p = NULL;
    errno = 0;
    double t0 = tu_now();
    int rc = 0;
    if (align == 0) p = calloc_it ? corona_calloc(1, size) : corona_malloc(size);
    else rc = corona_posix_memalign(&p, align, size);
    double dt = tu_now() - t0;
    if (dt < t) t = dt;
    err = align ? rc : p == NULL ? errno : 0;
    aligned = aligned && (p == NULL || align == 0 || ((uintptr_t)p & (align - 1)) == 0);
    corona_free(p);
    after = pu_rss();
  }
  printf("    %-32s %s (%s) in %.3f ms; RSS after free %+.2f MiB\n", what, p ? "pointer" : "NULL", strerror(err),
         t * 1e3, pu_mib_signed(after, before));
  /* Under qemu-user each mapping costs the emulator bookkeeping of its own
   * per page, in time and in its (the process's) RSS: test_absurd skips
   * these two bounds there. */
  if (tu_emulator() == NULL) CHECKF(t < ABSURD_MAX_S, "%s took %.3f ms", what, t * 1e3);
  CHECKF(aligned, "%s: %p misaligned", what, p);
  if (expect == ENOMEM) CHECKF(p == NULL && err == ENOMEM, "%s: %p, error %d, not ENOMEM", what, p, err);
  if (expect == 0) CHECKF(p != NULL, "%s failed: error %d", what, err);
  if (ASSERT_RSS && tu_emulator() == NULL)
    CHECKF(after <= before + ABSURD_RSS_SLACK, "%s: RSS %.2f MiB higher after the free", what,
           pu_mib_signed(after, before));
}

static void test_absurd(void) {
  if (tu_emulator() != NULL)
    tu_skip("absurd: under qemu-user the 10 ms and RSS bounds measure the emulator's page bookkeeping: "
            "only the answers are checked");
  char buf[16];
  int mode = pu_read_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf) > 0 ? buf[0] - '0' : -1;
  long mem_kb = pu_proc_kb("/proc/meminfo", "MemTotal:"), swap_kb = pu_proc_kb("/proc/meminfo", "SwapTotal:");
  /* Beyond the largest alignment corona tries (1 TiB), whatever the mode:
   * nothing else would stop it where the kernel grants everything. */
  absurd_call("posix_memalign(2^41, 64)", (size_t)1 << 41, 64, false, ENOMEM);
  absurd_call("posix_memalign(2^45, 2^20)", (size_t)1 << 45, MB, false, ENOMEM);
  if (mode != 0 || mem_kb <= 0) {
    /* Mode 1 grants everything (a 16 TiB object would then be served, its
     * page-map marks costing a 16384th of it); mode 2 depends on what is
     * committed already. */
    printf("    skipped: vm.overcommit_memory is %d, not the heuristic this part assumes\n", mode);
    return;
  }
  size_t backed = ((size_t)mem_kb + (size_t)(swap_kb > 0 ? swap_kb : 0)) * KB; /* the heuristic's bound */
  const size_t t40 = (size_t)1 << 40, t44 = (size_t)1 << 44;
  corona_collect();
  absurd_call("posix_memalign(2^40, 64)", t40, 64, false, t40 > backed ? ENOMEM : -1);
  absurd_call("posix_memalign(2^44, 64)", t44, 64, false, t44 > backed ? ENOMEM : -1);
  absurd_call("posix_memalign(2^44, 2^44)", t44, t44, false, t44 > backed ? ENOMEM : -1);
  absurd_call("malloc(2^40)", 0, t40, false, t40 > backed ? ENOMEM : -1);
  absurd_call("malloc(2^44)", 0, t44, false, t44 > backed ? ENOMEM : -1);
  absurd_call("calloc(1, 2^44)", 0, t44, true, t44 > backed ? ENOMEM : -1);
  /* glibc serves these: a 1 GiB alignment maps 1 GiB + 64 bytes for a moment. */
  absurd_call("posix_memalign(2^30, 64)", (size_t)1 << 30, 64, false, backed > ((size_t)2 << 30) ? 0 : -1);
  absurd_call("posix_memalign(2^30, 2^20)", (size_t)1 << 30, MB, false, backed > ((size_t)2 << 30) ? 0 : -1);
  /* calloc reusing a cached mapping of a plain malloc: fresh zero pages, not
   * a memset of every byte. */
  for (unsigned k = 22; k <= 29; k += 7) {
    char what[64];
    snprintf(what, sizeof what, "calloc(1, 2^%u) after malloc", k);
    corona_free(corona_malloc((size_t)1 << k));
    absurd_call(what, 0, (size_t)1 << k, true, 0);
  }
  size_t quarter = backed / 4 & ~(MB - 1);
  absurd_call("malloc(RAM / 4)", 0, quarter, false, 0);
  absurd_call("calloc(1, RAM / 4)", 0, quarter, true, 0);
  absurd_call("posix_memalign(2^30, RAM / 4)", (size_t)1 << 30, quarter, false, 0);
}

int main(void) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!ASSERT_RSS) tu_skip("ThreadSanitizer build: RSS figures are printed, not asserted");
  if (pu_rss() == 0) {
    tu_skip("/proc/self/statm unreadable: nothing checked");
    return tu_finish("test_rss", t0);
  }
  struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
      {"warm_up", warm_up},         {"bulk", test_bulk},          {"loop", test_loop},
      {"decay", test_decay},        {"soft_limit", test_soft_limit}, {"thread_exit", test_thread_exit},
      {"big", test_big},            {"reuse", test_reuse},        {"small", test_small},
      {"absurd", test_absurd},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int before = tu_failure_count();
    double t = tu_now();
    tests[i].fn();
    int f = tu_failure_count() - before;
    printf("  %-12s %s (%.3f s)\n", tests[i].name, f ? "FAILED" : ASSERT_RSS ? "ok" : "ok, RSS not asserted",
           tu_now() - t);
  }
  return tu_finish("test_rss", t0);
}
