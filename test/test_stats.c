/* test_stats.c — exact checks of corona's statistics (corona_stats_get,
 * corona_stats_print, the MALLOC_STATS report at exit).  Counts are exact
 * for the calling thread and for threads that have exited, so every check
 * takes a snapshot, makes a known set of calls, takes another and compares
 * the differences with what those calls must have counted.  Calls on small
 * objects are counted only while counting is on (MALLOC_STATS=1, or
 * corona_allocation_mode(CORONA_COUNT_CALLS, 1), which main() does first):
 *   counting_off with counting off: small calls leave every per-bin, small
 *                and total figure at 0 (the table says "not counted"),
 *                while large calls, cache hits, cross-thread frees and
 *                memory are still counted; CORONA_COUNT_CALLS takes 0 or 1
 *   switch_on    counting switched on while this thread already holds
 *                objects in its per-class lists: its figures still move by
 *                exactly its calls from then on
 *                (these two switch counting off, so when all parts run they
 *                run in a child process of their own)
 *   classes      the 45 object sizes; for every request size 0..32704 one
 *                malloc lands in exactly the bin whose class is the
 *                smallest that holds it (and usable size is that class)
 *   small        N objects of known sizes: per-bin allocations, frees,
 *                active, small_* and total_* (frees of half of them too)
 *   calls        calloc, aligned_malloc, posix_memalign, realloc that moves
 *                (one allocation + one free), realloc in place (nothing),
 *                realloc(NULL, n) and realloc(p, 0), malloc(0)
 *   large        large allocations/frees/live counts; a free then the same
 *                size again is a cache hit; a new size after
 *                corona_collect is a miss; hits + misses = large allocations
 *   memory       memory_in_use rises with live data and falls after frees +
 *                corona_collect; peak >= every in_use seen and never falls;
 *                memory_mapped >= memory_in_use; big blocks raise mapped
 *   cross_thread A allocates K, B frees them: cross_thread_frees grows by
 *                exactly K once B has exited (and K more when the calling
 *                thread frees another thread's objects); a running thread's
 *                figures are off by at most a block's worth per class
 *   threads      many threads allocate (leaving some objects to the main
 *                thread) and exit: per-bin and large totals exact after the
 *                joins, and again after the main thread frees what they left
 *   print        corona_stats_print to a file and to stderr (NULL): every
 *                row, and every bin row, holds the value corona_stats_get
 *                gives; corona_stats_get(NULL) is EINVAL; the first line is
 *                "corona statistics: test_stats (pid N)" with this pid
 *   json         corona_stats_print_json: one line, valid JSON (a strict
 *                parser), program and pid, every field and all 45 bins
 *                equal to corona_stats_get's
 *   report       a child (fork + exec of this program) run with
 *                MALLOC_STATS=1 or CORONA_STATS=1 counts small calls and
 *                prints the same table on stderr at exit, with the figures
 *                the child saw last; no report (and no small-call counting)
 *                without the variable, with MALLOC_STATS=0, or with
 *                CORONA_STATS=0 beside MALLOC_STATS=1 (CORONA_ wins); the
 *                table names the child and its pid
 *   stats_file   STATS_FILE: with %p the child's own file holds its table
 *                and stderr nothing; CORONA_STATS_FILE alone turns the
 *                report and counting on, %% is a %; without %p two
 *                children's tables are appended in order; an unwritable
 *                path gives a line saying so and the table on stderr; an
 *                empty value a warning and no report
 *   pipeline     sh -c "test_stats child-pipe | ... " (40 stages) with
 *                MALLOC_STATS=1: 40 whole tables, 40 different pids, on
 *                stderr, and again appended to one STATS_FILE
 * Every check of a delta ends with the identities between the fields
 * (total = small + large, active = allocations - frees, ...).
 *
 * Statistics compiled out (-DCORONA_STATS=OFF): corona_stats_get returns
 * ENOTSUP and a zeroed struct, CORONA_COUNT_CALLS ENOTSUP; the test checks
 * that, checks the report says "not available", and skips the rest with a
 * message.
 *
 * Usage: test_stats [part...]           the parts above (default: all)
 *        test_stats preload LIBCORONA   stats_preload: a program that knows
 *          nothing of corona (python3, else perl) run with
 *          LD_PRELOAD=LIBCORONA MALLOC_STATS=1 prints the report at exit
 *          with non-zero allocations (exit status 77: no such program)
 *        test_stats child-report        (internal: the child of "report")
 *        test_stats child-pipe          (internal: a stage of "pipeline")
 * Exit status 0 pass, 1 fail.
 *
 * In a build with the malloc override, the C library's own calls land in
 * corona too, so the checks use size classes the C library does not touch
 * between two snapshots (thread creation allocates its DTV, about 300 B),
 * and only the sizes of this test's own objects are compared exactly. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "childutil.h"
#include "corona.h"
#include "testutil.h"

#define NBINS CORONA_STATS_BINS
#define MAX_SMALL 32704
#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

/* The size classes (docs/design.md, "Small objects"). */
static const uint64_t class_size[NBINS] = {16,   32,   48,   64,   80,   96,   112,  128,  160,  192,  224,
                                           256,  320,  384,  448,  512,  640,  768,  896,  1024, 1344, 1472,
                                           1600, 1792, 1984, 2304, 2688, 3200, 4032, 4352, 4608, 4992, 5440,
                                           5888, 6528, 7232, 8128, 9280, 10880, 13056, 16320, 18688, 21760,
                                           26176, 32704};

/* Bin of a request of n bytes: the smallest class that holds it. */
static unsigned bin_of(size_t n) {
  for (unsigned b = 0; b < NBINS; b++)
    if (class_size[b] >= (n ? n : 1)) return b;
  return NBINS; /* large */
}

static bool stats_supported = true;

static bool snap(corona_stats *s) {
  int rc = corona_stats_get(s);
  return CHECKF(rc == 0, "corona_stats_get returned %d", rc);
}

static int64_t dlt(uint64_t after, uint64_t before) { return (int64_t)(after - before); }

/* The identities every snapshot satisfies. */
static void check_consistent(const corona_stats *s, const char *what) {
  uint64_t sa = 0, sf = 0;
  CHECKF(s->counting == 0 || s->counting == 1, "%s: counting is %llu", what, (unsigned long long)s->counting);
  if (s->counting == 0) { /* calls on small objects not counted: those figures are 0 */
    for (unsigned b = 0; b < NBINS; b++)
      CHECKF(s->bins[b].allocations == 0 && s->bins[b].frees == 0 && s->bins[b].active == 0,
             "%s (not counting): bin %u shows %llu allocations, %llu frees", what, b,
             (unsigned long long)s->bins[b].allocations, (unsigned long long)s->bins[b].frees);
    CHECKF(s->small_allocations == 0 && s->small_frees == 0 && s->small_objects == 0 && s->total_allocations == 0 &&
               s->total_frees == 0 && s->active_allocations == 0,
           "%s (not counting): small %llu/%llu/%llu, total %llu/%llu/%llu", what,
           (unsigned long long)s->small_allocations, (unsigned long long)s->small_frees,
           (unsigned long long)s->small_objects, (unsigned long long)s->total_allocations,
           (unsigned long long)s->total_frees, (unsigned long long)s->active_allocations);
  }
  for (unsigned b = 0; b < NBINS; b++) {
    const corona_bin_stats *x = &s->bins[b];
    CHECKF(x->object_size == class_size[b], "%s: bin %u object_size %llu, expected %llu", what, b,
           (unsigned long long)x->object_size, (unsigned long long)class_size[b]);
    /* active is allocations - frees, never below 0 (frees of objects made
     * before counting was switched on have no allocation counted). */
    CHECKF(x->active == (x->allocations > x->frees ? x->allocations - x->frees : 0),
           "%s: bin %u active %llu != %llu - %llu", what, b,
           (unsigned long long)x->active, (unsigned long long)x->allocations, (unsigned long long)x->frees);
    sa += x->allocations;
    sf += x->frees;
  }
  CHECKF(s->small_allocations == sa, "%s: small_allocations %llu, bins sum to %llu", what,
         (unsigned long long)s->small_allocations, (unsigned long long)sa);
  CHECKF(s->small_frees == sf, "%s: small_frees %llu, bins sum to %llu", what, (unsigned long long)s->small_frees,
         (unsigned long long)sf);
  CHECKF(s->small_objects == (sa > sf ? sa - sf : 0), "%s: small_objects %llu", what,
         (unsigned long long)s->small_objects);
  CHECKF(s->large_objects == s->large_allocations - s->large_frees, "%s: large_objects %llu", what,
         (unsigned long long)s->large_objects);
  if (s->counting) {
    CHECKF(s->total_allocations == s->small_allocations + s->large_allocations, "%s: total_allocations %llu", what,
           (unsigned long long)s->total_allocations);
    CHECKF(s->total_frees == s->small_frees + s->large_frees, "%s: total_frees %llu", what,
           (unsigned long long)s->total_frees);
    CHECKF(s->active_allocations == s->small_objects + s->large_objects, "%s: active_allocations %llu", what,
           (unsigned long long)s->active_allocations);
  }
  CHECKF(s->cache_hits + s->cache_misses == s->large_allocations,
         "%s: cache hits %llu + misses %llu != large allocations %llu", what, (unsigned long long)s->cache_hits,
         (unsigned long long)s->cache_misses, (unsigned long long)s->large_allocations);
  CHECKF(s->memory_mapped >= s->memory_in_use, "%s: memory_mapped %llu < memory_in_use %llu", what,
         (unsigned long long)s->memory_mapped, (unsigned long long)s->memory_in_use);
  CHECKF(s->peak_memory_in_use >= s->memory_in_use, "%s: peak %llu < in use %llu", what,
         (unsigned long long)s->peak_memory_in_use, (unsigned long long)s->memory_in_use);
}

/* Expected per-bin and large deltas between two snapshots. */
typedef struct expect_s {
  int64_t alloc[NBINS], free[NBINS];
  int64_t large_alloc, large_free, cross;
} expect_t;

static void expect_small(expect_t *e, size_t n, int64_t allocs, int64_t frees) {
  unsigned b = bin_of(n);
  e->alloc[b] += allocs;
  e->free[b] += frees;
}

/* Compares b - a with e: every bin (only the bins in `mask`, when mask is
 * not all ones: the other bins may see the C library's calls), the large
 * counts, the cross-thread frees, and the totals when mask is all ones.
 * While calls on small objects are not counted (b->counting 0), e's small
 * calls must not show: every per-bin, small and total delta must be 0. */
#define ALL_BINS UINT64_MAX
static void check_delta(const corona_stats *a, const corona_stats *b, const expect_t *e, uint64_t mask,
                        const char *what) {
  int64_t ta = 0, tf = 0, tla = e->large_alloc, tlf = e->large_free;
  bool counted = a->counting && b->counting;
  if (!counted) tla = tlf = 0; /* total_* are 0 too */
  for (unsigned k = 0; k < NBINS; k++) {
    if (!(mask >> k & 1)) continue;
    int64_t ea = counted ? e->alloc[k] : 0, ef = counted ? e->free[k] : 0;
    int64_t da = dlt(b->bins[k].allocations, a->bins[k].allocations);
    int64_t df = dlt(b->bins[k].frees, a->bins[k].frees);
    CHECKF(da == ea, "%s: bin %u (%llu B) allocations grew by %lld, expected %lld", what, k,
           (unsigned long long)class_size[k], (long long)da, (long long)ea);
    CHECKF(df == ef, "%s: bin %u (%llu B) frees grew by %lld, expected %lld", what, k,
           (unsigned long long)class_size[k], (long long)df, (long long)ef);
    int64_t dact = dlt(b->bins[k].active, a->bins[k].active);
    CHECKF(dact == ea - ef, "%s: bin %u active changed by %lld, expected %lld", what, k, (long long)dact,
           (long long)(ea - ef));
    ta += ea;
    tf += ef;
  }
  CHECKF(dlt(b->large_allocations, a->large_allocations) == e->large_alloc,
         "%s: large_allocations grew by %lld, expected %lld", what,
         (long long)dlt(b->large_allocations, a->large_allocations), (long long)e->large_alloc);
  CHECKF(dlt(b->large_frees, a->large_frees) == e->large_free, "%s: large_frees grew by %lld, expected %lld", what,
         (long long)dlt(b->large_frees, a->large_frees), (long long)e->large_free);
  CHECKF(dlt(b->large_objects, a->large_objects) == e->large_alloc - e->large_free,
         "%s: large_objects changed by %lld, expected %lld", what, (long long)dlt(b->large_objects, a->large_objects),
         (long long)(e->large_alloc - e->large_free));
  CHECKF(dlt(b->cross_thread_frees, a->cross_thread_frees) == e->cross,
         "%s: cross_thread_frees grew by %lld, expected %lld", what,
         (long long)dlt(b->cross_thread_frees, a->cross_thread_frees), (long long)e->cross);
  if (mask == ALL_BINS) {
    CHECKF(dlt(b->small_allocations, a->small_allocations) == ta, "%s: small_allocations grew by %lld, expected %lld",
           what, (long long)dlt(b->small_allocations, a->small_allocations), (long long)ta);
    CHECKF(dlt(b->small_frees, a->small_frees) == tf, "%s: small_frees grew by %lld, expected %lld", what,
           (long long)dlt(b->small_frees, a->small_frees), (long long)tf);
    CHECKF(dlt(b->small_objects, a->small_objects) == ta - tf, "%s: small_objects changed by %lld, expected %lld",
           what, (long long)dlt(b->small_objects, a->small_objects), (long long)(ta - tf));
    CHECKF(dlt(b->total_allocations, a->total_allocations) == ta + tla,
           "%s: total_allocations grew by %lld, expected %lld", what,
           (long long)dlt(b->total_allocations, a->total_allocations), (long long)(ta + tla));
    CHECKF(dlt(b->total_frees, a->total_frees) == tf + tlf, "%s: total_frees grew by %lld, expected %lld", what,
           (long long)dlt(b->total_frees, a->total_frees), (long long)(tf + tlf));
    CHECKF(dlt(b->active_allocations, a->active_allocations) == ta - tf + tla - tlf,
           "%s: active_allocations changed by %lld, expected %lld", what,
           (long long)dlt(b->active_allocations, a->active_allocations), (long long)(ta - tf + tla - tlf));
  }
  check_consistent(b, what);
}

/* ---- classes: every request size lands in its class's bin ----------------- */
static void test_classes(void) {
  corona_stats a, b;
  if (!snap(&a)) return;
  check_consistent(&a, "classes: first snapshot");
  for (size_t n = 0; n <= MAX_SMALL; n++) {
    void *p = corona_malloc(n);
    if (!CHECKF(p != NULL, "malloc(%zu)", n)) return;
    if (!snap(&b)) return;
    unsigned want = bin_of(n);
    unsigned moved = 0, where = NBINS;
    for (unsigned k = 0; k < NBINS; k++) {
      int64_t d = dlt(b.bins[k].allocations, a.bins[k].allocations);
      if (d != 0) {
        moved++;
        where = k;
      }
    }
    CHECKF(moved == 1 && where == want, "malloc(%zu): %u bins moved (last %u), expected bin %u (%llu B)", n, moved,
           where, want, (unsigned long long)class_size[want]);
    CHECKF(dlt(b.bins[want].allocations, a.bins[want].allocations) == 1, "malloc(%zu): bin %u grew by %lld", n, want,
           (long long)dlt(b.bins[want].allocations, a.bins[want].allocations));
    CHECKF(corona_usable_size(p) == b.bins[want].object_size, "malloc(%zu): usable %zu, class %llu", n,
           corona_usable_size(p), (unsigned long long)b.bins[want].object_size);
    corona_free(p);
    if (!snap(&a)) return;
    CHECKF(dlt(a.bins[want].frees, b.bins[want].frees) == 1 && a.small_frees - b.small_frees == 1,
           "free of malloc(%zu): bin %u frees grew by %lld, small frees by %lld", n, want,
           (long long)dlt(a.bins[want].frees, b.bins[want].frees), (long long)dlt(a.small_frees, b.small_frees));
    if (tu_failure_count() > 20) return;
  }
  check_consistent(&a, "classes: last snapshot");
}

/* ---- small: many objects of known sizes ----------------------------------- */
#define SMALL_KINDS 9
#define SMALL_MAX_EACH 400
static void *small_objs[SMALL_KINDS][SMALL_MAX_EACH];

static void test_small(void) {
  static const size_t sizes[SMALL_KINDS] = {1, 16, 17, 100, 1000, 1025, 4000, 5376, 8064};
  static const int counts[SMALL_KINDS] = {37, 400, 123, 1000 / 3, 77, 250, 19, 64, 399};
  corona_stats a, b, c;
  expect_t e = {0};
  if (!snap(&a)) return;
  for (int k = 0; k < SMALL_KINDS; k++) {
    for (int i = 0; i < counts[k]; i++) {
      small_objs[k][i] = corona_malloc(sizes[k]);
      if (!CHECK(small_objs[k][i] != NULL)) return;
      memset(small_objs[k][i], k, sizes[k]);
    }
    expect_small(&e, sizes[k], counts[k], 0);
  }
  if (!snap(&b)) return;
  check_delta(&a, &b, &e, ALL_BINS, "small: after the mallocs");
  /* Free every other object, in reverse order. */
  expect_t f = {0};
  for (int k = SMALL_KINDS - 1; k >= 0; k--) {
    int freed = 0;
    for (int i = counts[k] - 1; i >= 0; i -= 2) {
      CHECK(((unsigned char *)small_objs[k][i])[sizes[k] - 1] == (unsigned char)k);
      corona_free(small_objs[k][i]);
      small_objs[k][i] = NULL;
      freed++;
    }
    expect_small(&f, sizes[k], 0, freed);
  }
  if (!snap(&c)) return;
  check_delta(&b, &c, &f, ALL_BINS, "small: after freeing half");
  /* And the rest. */
  expect_t g = {0};
  for (int k = 0; k < SMALL_KINDS; k++) {
    int freed = 0;
    for (int i = 0; i < counts[k]; i++) {
      if (small_objs[k][i] == NULL) continue;
      corona_free(small_objs[k][i]);
      small_objs[k][i] = NULL;
      freed++;
    }
    expect_small(&g, sizes[k], 0, freed);
  }
  if (!snap(&b)) return;
  check_delta(&c, &b, &g, ALL_BINS, "small: after freeing the rest");
  /* Back where it started: the same live counts per bin. */
  for (unsigned k = 0; k < NBINS; k++)
    CHECKF(b.bins[k].active == a.bins[k].active, "small: bin %u active %llu, was %llu", k,
           (unsigned long long)b.bins[k].active, (unsigned long long)a.bins[k].active);
}

/* ---- calls: calloc, aligned, realloc ------------------------------------- */
static void test_calls(void) {
  corona_stats a, b;
  expect_t e;
  void *p, *q;

#define STEP(what, code, expectations)                                    \
  do {                                                                    \
    if (!snap(&a)) return;                                                \
    memset(&e, 0, sizeof e);                                              \
    code;                                                                 \
    expectations;                                                         \
    if (!snap(&b)) return;                                                \
    check_delta(&a, &b, &e, ALL_BINS, what);                              \
  } while (0)

  STEP("malloc(0)", p = corona_malloc(0), expect_small(&e, 0, 1, 0));
  STEP("free of malloc(0)", corona_free(p), expect_small(&e, 0, 0, 1));
  STEP("free(NULL)", corona_free(NULL), (void)0);
  STEP("calloc(10, 10)", p = corona_calloc(10, 10), expect_small(&e, 100, 1, 0));
  CHECK(p != NULL && tu_first_nonzero(p, 100) == (size_t)-1);
  STEP("free of calloc(10, 10)", corona_free(p), expect_small(&e, 100, 0, 1));
  STEP("calloc(10, 4000) (large)", p = corona_calloc(10, 4000), e.large_alloc = 1);
  CHECK(p != NULL && tu_first_nonzero(p, 40000) == (size_t)-1);
  STEP("free of calloc(10, 4000)", corona_free(p), e.large_free = 1);
  errno = 0;
  STEP("calloc overflow (no object)", p = corona_calloc(SIZE_MAX / 2, 3), (void)0);
  CHECK(p == NULL && errno == ENOMEM);
  STEP("aligned_malloc(100, 64)", p = corona_aligned_malloc(100, 64), expect_small(&e, 128, 1, 0));
  CHECK(p != NULL && tu_is_aligned(p, 64));
  STEP("free of aligned_malloc(100, 64)", corona_free(p), expect_small(&e, 128, 0, 1));
  STEP("aligned_malloc(3000, 4096) (large)", p = corona_aligned_malloc(3000, 4096), e.large_alloc = 1);
  CHECK(p != NULL && tu_is_aligned(p, 4096));
  STEP("free of aligned_malloc(3000, 4096)", corona_free(p), e.large_free = 1);
  STEP("posix_memalign(32, 200)", CHECK(corona_posix_memalign(&p, 32, 200) == 0), expect_small(&e, 224, 1, 0));
  STEP("free of posix_memalign", corona_free(p), expect_small(&e, 224, 0, 1));
  STEP("posix_memalign(3, 200) (EINVAL, no object)", CHECK(corona_posix_memalign(&q, 3, 200) == EINVAL), (void)0);
  STEP("realloc(NULL, 300)", p = corona_realloc(NULL, 300), expect_small(&e, 300, 1, 0));
  if (!CHECK(p != NULL)) return;
  tu_fill(p, 300, 42);
  /* 300 -> 320 B class; 290 fits without waste: stays, counts nothing. */
  STEP("realloc in place (300 -> 290)", q = corona_realloc(p, 290), (void)0);
  CHECK(q == p);
  /* 290 -> 1000: moves to the 1024 class: one allocation and one free. */
  STEP("realloc that moves (290 -> 1000)", q = corona_realloc(p, 1000),
       (expect_small(&e, 1000, 1, 0), expect_small(&e, 300, 0, 1)));
  CHECK(q != p && q != NULL);
  if (q == NULL) return;
  CHECK_PATTERN(q, 290, 42);
  p = q;
  STEP("realloc small -> large (1000 -> 50000)", q = corona_realloc(p, 50000),
       (expect_small(&e, 1000, 0, 1), e.large_alloc = 1));
  if (!CHECK(q != NULL)) return;
  CHECK_PATTERN(q, 290, 42);
  p = q;
  STEP("realloc large -> small (50000 -> 40)", q = corona_realloc(p, 40),
       (expect_small(&e, 40, 1, 0), e.large_free = 1));
  if (!CHECK(q != NULL)) return;
  CHECK_PATTERN(q, 40, 42);
  p = q;
  STEP("realloc(p, 0) (frees)", q = corona_realloc(p, 0), expect_small(&e, 40, 0, 1));
  CHECK(q == NULL);
  /* aligned_realloc that must move for the alignment. */
  p = corona_malloc(100);
  if (!CHECK(p != NULL)) return;
  if (tu_is_aligned(p, 256)) { /* make sure the alignment forces a move */
    void *r = corona_malloc(100);
    corona_free(p);
    p = r;
  }
  if (!CHECK(p != NULL && !tu_is_aligned(p, 256))) return;
  STEP("aligned_realloc(p, 100, 256) moves", q = corona_aligned_realloc(p, 100, 256),
       (expect_small(&e, 256, 1, 0), expect_small(&e, 100, 0, 1)));
  CHECK(q != NULL && tu_is_aligned(q, 256));
  STEP("free of aligned_realloc", corona_free(q), expect_small(&e, 256, 0, 1));
#undef STEP
}

/* ---- large ---------------------------------------------------------------- */
#define LARGE_N 12
static void test_large(void) {
  corona_stats a, b, c;
  void *p[LARGE_N];
  corona_collect(); /* empty caches: the first allocations are misses */
  if (!snap(&a)) return;
  expect_t e = {0};
  for (int i = 0; i < LARGE_N; i++) {
    /* Distinct sizes: from 33000 B (just above the small classes) to 6 MB
     * (a mapping of its own). */
    size_t n = i == LARGE_N - 1 ? 6 * MB : 33000 + (size_t)i * 97 * KB;
    p[i] = corona_malloc(n);
    if (!CHECK(p[i] != NULL)) return;
    memset(p[i], i, 64);
  }
  e.large_alloc = LARGE_N;
  if (!snap(&b)) return;
  check_delta(&a, &b, &e, ALL_BINS, "large: allocations");
  CHECKF(dlt(b.cache_misses, a.cache_misses) == LARGE_N, "large: %lld misses after corona_collect, expected %d",
         (long long)dlt(b.cache_misses, a.cache_misses), LARGE_N);
  CHECKF(b.cache_hits == a.cache_hits, "large: %lld cache hits, expected none",
         (long long)dlt(b.cache_hits, a.cache_hits));

  /* A free, then the same size again: served by the cache. */
  for (int i = 0; i < LARGE_N; i++) {
    size_t n = i == LARGE_N - 1 ? 6 * MB : 33000 + (size_t)i * 97 * KB;
    if (!snap(&a)) return;
    corona_free(p[i]);
    if (!snap(&b)) return;
    memset(&e, 0, sizeof e);
    e.large_free = 1;
    check_delta(&a, &b, &e, ALL_BINS, "large: a free");
    p[i] = corona_malloc(n);
    if (!CHECK(p[i] != NULL)) return;
    if (!snap(&c)) return;
    memset(&e, 0, sizeof e);
    e.large_alloc = 1;
    check_delta(&b, &c, &e, ALL_BINS, "large: the same size again");
    CHECKF(dlt(c.cache_hits, b.cache_hits) == 1 && c.cache_misses == b.cache_misses,
           "large: free + malloc(%zu) again: %lld hits, %lld misses; expected 1 hit", n,
           (long long)dlt(c.cache_hits, b.cache_hits), (long long)dlt(c.cache_misses, b.cache_misses));
  }
  /* Free all; after corona_collect a new size is a miss. */
  if (!snap(&a)) return;
  for (int i = 0; i < LARGE_N; i++) corona_free(p[i]);
  if (!snap(&b)) return;
  memset(&e, 0, sizeof e);
  e.large_free = LARGE_N;
  check_delta(&a, &b, &e, ALL_BINS, "large: frees");
  corona_collect();
  if (!snap(&a)) return;
  void *q = corona_malloc(777 * KB);
  if (!CHECK(q != NULL)) return;
  if (!snap(&b)) return;
  CHECKF(dlt(b.cache_misses, a.cache_misses) == 1 && b.cache_hits == a.cache_hits,
         "large: new size after corona_collect: %lld misses, %lld hits; expected 1 miss",
         (long long)dlt(b.cache_misses, a.cache_misses), (long long)dlt(b.cache_hits, a.cache_hits));
  corona_free(q);
  /* An aligned large allocation never comes from the cache: a miss. */
  if (!snap(&a)) return;
  q = corona_aligned_malloc(100 * KB, 64 * KB);
  if (!CHECK(q != NULL && tu_is_aligned(q, 64 * KB))) return;
  if (!snap(&b)) return;
  CHECKF(dlt(b.large_allocations, a.large_allocations) == 1 && dlt(b.cache_misses, a.cache_misses) == 1,
         "large: aligned: %lld allocations, %lld misses", (long long)dlt(b.large_allocations, a.large_allocations),
         (long long)dlt(b.cache_misses, a.cache_misses));
  corona_free(q);
  /* A large realloc keeps the live count whether it moves or not. */
  if (!snap(&a)) return;
  q = corona_malloc(100 * KB);
  void *r = corona_realloc(q, 300 * KB);
  if (!CHECK(r != NULL)) return;
  r = corona_realloc(r, 5 * MB);
  if (!CHECK(r != NULL)) return;
  r = corona_realloc(r, 120 * KB);
  if (!CHECK(r != NULL)) return;
  if (!snap(&b)) return;
  CHECKF(dlt(b.large_objects, a.large_objects) == 1, "large: realloc chain: live changed by %lld, expected 1",
         (long long)dlt(b.large_objects, a.large_objects));
  CHECKF(dlt(b.large_allocations, a.large_allocations) >= 1 && dlt(b.large_allocations, a.large_allocations) <= 4,
         "large: realloc chain: %lld allocations", (long long)dlt(b.large_allocations, a.large_allocations));
  corona_free(r);
  if (!snap(&c)) return;
  CHECKF(c.large_objects == a.large_objects, "large: live %llu, was %llu", (unsigned long long)c.large_objects,
         (unsigned long long)a.large_objects);
}

/* ---- memory: in use, peak, mapped ---------------------------------------- */
#define MEM_SMALL 600
#define MEM_SMALL_SIZE 5000 /* the 5376 class: 3 per 16 KB block */
#define MEM_LARGE 6
static void *mem_small[MEM_SMALL];
static void *mem_large[MEM_LARGE];

static uint64_t peak_seen, in_use_max;

/* A snapshot that also checks the peak against everything seen so far. */
static bool snap_mem(corona_stats *s, const char *what) {
  if (!snap(s)) return false;
  check_consistent(s, what);
  if (s->memory_in_use > in_use_max) in_use_max = s->memory_in_use;
  CHECKF(s->peak_memory_in_use >= in_use_max, "%s: peak %llu below an in_use seen before (%llu)", what,
         (unsigned long long)s->peak_memory_in_use, (unsigned long long)in_use_max);
  CHECKF(s->peak_memory_in_use >= peak_seen, "%s: peak fell from %llu to %llu", what,
         (unsigned long long)peak_seen, (unsigned long long)s->peak_memory_in_use);
  peak_seen = s->peak_memory_in_use;
  return true;
}

static void test_memory(void) {
  corona_stats base, s, t;
  corona_collect();
  if (!snap_mem(&base, "memory: start")) return;
  /* Small objects: in_use grows by at least their blocks, 16 KB per 3. */
  for (int i = 0; i < MEM_SMALL; i++) {
    mem_small[i] = corona_malloc(MEM_SMALL_SIZE);
    if (!CHECK(mem_small[i] != NULL)) return;
    tu_fill(mem_small[i], MEM_SMALL_SIZE, (uint64_t)i);
  }
  if (!snap_mem(&s, "memory: small live")) return;
  uint64_t small_need = (MEM_SMALL + 2) / 3 * 16 * KB;
  int64_t grew = dlt(s.memory_in_use, base.memory_in_use);
  CHECKF(grew >= (int64_t)small_need - 16 * (int64_t)KB && grew <= (int64_t)(small_need + 256 * KB),
         "memory: %d objects of %d B: in_use grew by %lld, expected about %llu", MEM_SMALL, MEM_SMALL_SIZE,
         (long long)grew, (unsigned long long)small_need);
  CHECKF(s.memory_mapped >= base.memory_mapped, "memory: mapped fell from %llu to %llu",
         (unsigned long long)base.memory_mapped, (unsigned long long)s.memory_mapped);
  /* Large objects: 6 of 1..6 MB (21 MB), in regions and own mappings. */
  uint64_t large_bytes = 0;
  for (int i = 0; i < MEM_LARGE; i++) {
    size_t n = (size_t)(i + 1) * MB;
    mem_large[i] = corona_malloc(n);
    if (!CHECK(mem_large[i] != NULL)) return;
    memset(mem_large[i], i, 4096);
    large_bytes += n;
  }
  if (!snap_mem(&t, "memory: large live")) return;
  grew = dlt(t.memory_in_use, s.memory_in_use);
  CHECKF(grew >= (int64_t)large_bytes && grew <= (int64_t)(large_bytes + large_bytes / 4 + MB),
         "memory: %llu large bytes live: in_use grew by %lld", (unsigned long long)large_bytes, (long long)grew);
  CHECKF(dlt(t.memory_mapped, base.memory_mapped) >= (int64_t)large_bytes,
         "memory: %llu large bytes live: mapped grew by only %lld", (unsigned long long)large_bytes,
         (long long)dlt(t.memory_mapped, base.memory_mapped));
  uint64_t high = t.memory_in_use;
  CHECKF(t.peak_memory_in_use >= high, "memory: peak %llu < in use %llu", (unsigned long long)t.peak_memory_in_use,
         (unsigned long long)high);
  /* Free everything and collect: back to about the start. */
  for (int i = 0; i < MEM_SMALL; i++) {
    CHECK_PATTERN(mem_small[i], MEM_SMALL_SIZE, (uint64_t)i);
    corona_free(mem_small[i]);
  }
  for (int i = 0; i < MEM_LARGE; i++) corona_free(mem_large[i]);
  if (!snap_mem(&s, "memory: all freed")) return;
  CHECKF(s.memory_in_use + large_bytes <= high, "memory: after the frees in_use %llu, was %llu",
         (unsigned long long)s.memory_in_use, (unsigned long long)high);
  corona_collect();
  if (!snap_mem(&s, "memory: after corona_collect")) return;
  CHECKF(s.memory_in_use <= base.memory_in_use + 32 * KB, "memory: after frees and collect in_use %llu, at start %llu",
         (unsigned long long)s.memory_in_use, (unsigned long long)base.memory_in_use);
  CHECKF(s.peak_memory_in_use >= high, "memory: peak %llu fell below the high %llu",
         (unsigned long long)s.peak_memory_in_use, (unsigned long long)high);
  CHECKF(s.memory_mapped + 16 * MB <= t.memory_mapped,
         "memory: corona_collect left mapped at %llu (with 21 MB live: %llu)", (unsigned long long)s.memory_mapped,
         (unsigned long long)t.memory_mapped);
  /* A second, smaller high: the peak stays at the first. */
  void *x = corona_malloc(2 * MB);
  if (!CHECK(x != NULL)) return;
  if (!snap_mem(&t, "memory: 2 MB live")) return;
  CHECK(t.peak_memory_in_use >= high);
  corona_free(x);
}

/* ---- cross-thread frees --------------------------------------------------- */
#define XT_SIZE 600 /* the 640 class: the C library's thread set-up stays out of it */
#define XT_K 500
static void *xt_objs[XT_K];
static pthread_barrier_t xt_barrier;

static void *xt_alloc_main(void *arg) {
  (void)arg;
  for (int i = 0; i < XT_K; i++) {
    xt_objs[i] = corona_malloc(XT_SIZE);
    if (xt_objs[i] != NULL) tu_fill(xt_objs[i], XT_SIZE, (uint64_t)i);
  }
  pthread_barrier_wait(&xt_barrier); /* 1: objects ready */
  pthread_barrier_wait(&xt_barrier); /* 2: the freer has exited */
  return NULL;
}

static void *xt_free_main(void *arg) {
  (void)arg;
  for (int i = 0; i < XT_K; i++) {
    if (xt_objs[i] == NULL) continue;
    CHECK_PATTERN(xt_objs[i], XT_SIZE, (uint64_t)i);
    corona_free(xt_objs[i]);
  }
  return NULL;
}

static void *xt_alloc_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < XT_K; i++) xt_objs[i] = corona_malloc(XT_SIZE);
  return NULL;
}

static void test_cross_thread(void) {
  uint64_t mask = (uint64_t)1 << bin_of(XT_SIZE);
  corona_stats a, b, c;
  expect_t e;
  pthread_t ta, tb;

  /* 1. A allocates K and stays; B frees them and exits. */
  if (!snap(&a)) return;
  pthread_barrier_init(&xt_barrier, NULL, 2);
  if (!CHECK(pthread_create(&ta, NULL, xt_alloc_main, NULL) == 0)) return;
  pthread_barrier_wait(&xt_barrier); /* 1 */
  for (int i = 0; i < XT_K; i++)
    if (!CHECK(xt_objs[i] != NULL)) break;
  if (!snap(&b)) return;
  /* A runs on: its figures may be off by what its list of the class holds,
   * at most a block's worth (corona.h). */
  int64_t seen = dlt(b.bins[bin_of(XT_SIZE)].allocations, a.bins[bin_of(XT_SIZE)].allocations);
  int64_t per_block = (int64_t)((16 * KB - 128) / class_size[bin_of(XT_SIZE)]);
  CHECKF(seen >= XT_K - per_block && seen <= XT_K + per_block,
         "cross_thread: a running thread's %d allocations show as %lld (more than %lld off)", XT_K, (long long)seen,
         (long long)per_block);
  if (!CHECK(pthread_create(&tb, NULL, xt_free_main, NULL) == 0)) return;
  pthread_join(tb, NULL);
  if (!snap(&b)) return;
  CHECKF(dlt(b.cross_thread_frees, a.cross_thread_frees) == XT_K,
         "cross_thread: B freed %d of A's objects and exited: cross_thread_frees grew by %lld", XT_K,
         (long long)dlt(b.cross_thread_frees, a.cross_thread_frees));
  CHECKF(dlt(b.bins[bin_of(XT_SIZE)].frees, a.bins[bin_of(XT_SIZE)].frees) == XT_K,
         "cross_thread: B's %d frees show as %lld", XT_K,
         (long long)dlt(b.bins[bin_of(XT_SIZE)].frees, a.bins[bin_of(XT_SIZE)].frees));
  pthread_barrier_wait(&xt_barrier); /* 2 */
  pthread_join(ta, NULL);
  pthread_barrier_destroy(&xt_barrier);
  if (!snap(&c)) return;
  memset(&e, 0, sizeof e);
  expect_small(&e, XT_SIZE, XT_K, XT_K);
  e.cross = XT_K;
  check_delta(&a, &c, &e, mask, "cross_thread: A allocated K, B freed them, both exited");

  /* 2. A allocates K and exits; the calling thread frees them. */
  if (!snap(&a)) return;
  if (!CHECK(pthread_create(&ta, NULL, xt_alloc_exit, NULL) == 0)) return;
  pthread_join(ta, NULL);
  if (!snap(&b)) return;
  memset(&e, 0, sizeof e);
  expect_small(&e, XT_SIZE, XT_K, 0);
  check_delta(&a, &b, &e, mask, "cross_thread: A allocated K and exited");
  for (int i = 0; i < XT_K; i++) corona_free(xt_objs[i]);
  if (!snap(&c)) return;
  memset(&e, 0, sizeof e);
  expect_small(&e, XT_SIZE, 0, XT_K);
  e.cross = XT_K;
  check_delta(&b, &c, &e, mask, "cross_thread: the calling thread freed an exited thread's K objects");
}

/* ---- many threads allocate and exit ---------------------------------------- */
#define TH_THREADS 16
#define TH_ROUNDS 3
#define TH_PER 300
#define TH_LEFT 40 /* objects each thread leaves to the main thread */
/* Sizes in classes the C library's thread creation does not use (its DTV is
 * about 300 B): 640, 1344, 2304 and 8064 B, and large. */
static const size_t th_sizes[4] = {600, 1300, 2300, 8000};
static void *th_left[TH_THREADS][TH_LEFT];
static void *th_large_left[TH_THREADS];

static void *th_main(void *arg) {
  int t = (int)(intptr_t)arg;
  static _Thread_local void *mine[TH_PER];
  for (int i = 0; i < TH_PER; i++) {
    mine[i] = corona_malloc(th_sizes[(t + i) % 4]);
    if (mine[i] == NULL) return NULL;
  }
  void *big = corona_malloc(100 * KB + (size_t)t * 4096);
  th_large_left[t] = corona_malloc(50 * KB);
  corona_free(big);
  for (int i = 0; i < TH_PER; i++) {
    if (i < TH_LEFT) th_left[t][i] = mine[i];
    else corona_free(mine[i]);
  }
  return NULL;
}

static void test_threads(void) {
  uint64_t mask = 0;
  for (int k = 0; k < 4; k++) mask |= (uint64_t)1 << bin_of(th_sizes[k]);
  corona_stats a, b, c;
  if (!snap(&a)) return;
  expect_t e = {0};
  for (int round = 0; round < TH_ROUNDS; round++) {
    pthread_t th[TH_THREADS];
    for (int t = 0; t < TH_THREADS; t++)
      if (!CHECK(pthread_create(&th[t], NULL, th_main, (void *)(intptr_t)t) == 0)) return;
    for (int t = 0; t < TH_THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < TH_THREADS; t++) {
      for (int i = 0; i < TH_PER; i++) expect_small(&e, th_sizes[(t + i) % 4], 1, i < TH_LEFT ? 0 : 1);
      e.large_alloc += 2;
      e.large_free += 1;
    }
    if (!snap(&b)) return;
    check_delta(&a, &b, &e, mask, "threads: after the joins");
    /* The main thread frees what they left: cross-thread frees. */
    expect_t f = {0};
    for (int t = 0; t < TH_THREADS; t++) {
      for (int i = 0; i < TH_LEFT; i++) {
        if (!CHECK(th_left[t][i] != NULL)) return;
        corona_free(th_left[t][i]);
        expect_small(&f, th_sizes[(t + i) % 4], 0, 1);
      }
      corona_free(th_large_left[t]);
      f.large_free++;
    }
    f.cross = TH_THREADS * TH_LEFT;
    if (!snap(&c)) return;
    check_delta(&b, &c, &f, mask, "threads: the main thread freed what they left");
    a = c;
    memset(&e, 0, sizeof e);
  }
}

/* ---- print ----------------------------------------------------------------- */
static char text[16384];

/* Reads f (from the start) into text. */
static size_t slurp(FILE *f) {
  fflush(f);
  rewind(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  return n;
}

/* The value of the row "  label  value" of a report (the label first on
 * its line, after spaces), or -1 if absent or present more than once. */
static long long row_value(const char *report, const char *label) {
  long long v = -1;
  int found = 0;
  size_t ll = strlen(label);
  for (const char *p = report; (p = strstr(p, label)) != NULL; p += ll) {
    const char *s = p;
    while (s > report && s[-1] == ' ') s--;
    if (s == p || (s != report && s[-1] != '\n') || p[ll] != ' ') continue; /* part of a longer label */
    const char *q = p + ll;
    while (*q == ' ') q++;
    if (*q < '0' || *q > '9') continue;
    v = strtoll(q, NULL, 10);
    found++;
  }
  return found == 1 ? v : -1;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* Whether text starts with the first line of a report of program `name`
 * (NULL: any) in process `pid` (-1: any): "corona statistics: NAME (pid N)". */
static bool has_label(const char *text, const char *name, long long pid) {
  static const char head[] = "corona statistics: ";
  if (strncmp(text, head, sizeof head - 1) != 0) return false;
  const char *p = text + sizeof head - 1, *open = strstr(p, " (pid "), *eol = strchr(p, '\n');
  if (open == NULL || eol == NULL || open > eol) return false;
  if (name != NULL && ((size_t)(open - p) != strlen(name) || strncmp(p, name, strlen(name)) != 0)) return false;
  char *end;
  long long got = strtoll(open + 6, &end, 10);
  return got > 0 && strncmp(end, ")\n", 2) == 0 && (pid < 0 || got == pid);
}

/* Checks that report holds every figure of s. */
static void check_report(const char *report, const corona_stats *s, const char *what) {
  CHECKF(has_label(report, "test_stats", (long long)getpid()),
         "%s: does not start with \"corona statistics: test_stats (pid %d)\":\n%s", what, (int)getpid(), report);
  CHECKF(count_of(report, "corona statistics") == 1, "%s: %d tables", what, count_of(report, "corona statistics"));
  const struct {
    const char *label;
    uint64_t value;
  } rows[] = {
      {"total allocations", s->total_allocations}, {"total frees", s->total_frees},
      {"active allocations", s->active_allocations}, {"small allocations", s->small_allocations},
      {"small frees", s->small_frees}, {"large allocations", s->large_allocations}, {"large frees", s->large_frees},
      {"cross-thread frees", s->cross_thread_frees}, {"memory in use (bytes)", s->memory_in_use},
      {"memory mapped (bytes)", s->memory_mapped}, {"peak memory in use (bytes)", s->peak_memory_in_use},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    long long v = row_value(report, rows[i].label);
    CHECKF(v == (long long)rows[i].value, "%s: row \"%s\" shows %lld, corona_stats_get says %llu", what,
           rows[i].label, v, (unsigned long long)rows[i].value);
  }
  /* The live counts and the cache rows are there too (labels as printed). */
  const char *labels[] = {"small objects live", "large objects live", "large cache hits", "large cache misses"};
  const uint64_t values[] = {s->small_objects, s->large_objects, s->cache_hits, s->cache_misses};
  for (int i = 0; i < 4; i++)
    CHECKF(row_value(report, labels[i]) == (long long)values[i], "%s: row \"%s\" shows %lld, expected %llu", what,
           labels[i], row_value(report, labels[i]), (unsigned long long)values[i]);
  /* The bin table: its header, then one row per bin that has counts. */
  const char *head = strstr(report, "bin");
  while (head != NULL && !(head[-1] == ' ' && strncmp(head, "bin ", 4) == 0)) head = strstr(head + 1, "bin");
  if (!CHECKF(head != NULL, "%s: no bin table header", what)) return;
  unsigned long long f1, f2, f3, f4, f5;
  char w[5][16];
  CHECKF(sscanf(head, "%15s %15s %15s %15s %15s", w[0], w[1], w[2], w[3], w[4]) == 5 && strcmp(w[1], "size") == 0 &&
             strcmp(w[2], "allocations") == 0 && strcmp(w[3], "frees") == 0 && strcmp(w[4], "active") == 0,
         "%s: bin table header is not \"bin size allocations frees active\"", what);
  const char *line = strchr(head, '\n');
  bool row_seen[NBINS] = {false};
  int rows_seen = 0;
  while (line != NULL && line[1] != '\0') {
    line++;
    if (sscanf(line, "%llu %llu %llu %llu %llu", &f1, &f2, &f3, &f4, &f5) != 5) break;
    rows_seen++;
    if (!CHECKF(f1 < NBINS && !row_seen[f1], "%s: bad bin row %llu", what, f1)) break;
    row_seen[f1] = true;
    const corona_bin_stats *x = &s->bins[f1];
    CHECKF(f2 == x->object_size && f3 == x->allocations && f4 == x->frees && f5 == x->active,
           "%s: bin row %llu: %llu %llu %llu %llu, expected %llu %llu %llu %llu", what, f1, f2, f3, f4, f5,
           (unsigned long long)x->object_size, (unsigned long long)x->allocations, (unsigned long long)x->frees,
           (unsigned long long)x->active);
    line = strchr(line, '\n');
  }
  for (unsigned k = 0; k < NBINS; k++)
    CHECKF(row_seen[k] == (s->bins[k].allocations != 0 || s->bins[k].frees != 0),
           "%s: bin %u with %llu allocations %s a row", what, k, (unsigned long long)s->bins[k].allocations,
           row_seen[k] ? "has" : "lacks");
  CHECKF(rows_seen > 0, "%s: no bin rows", what);
}

static void test_print(void) {
  CHECK(corona_stats_get(NULL) == EINVAL);
  /* Objects in three bins and a large one, so the table has something. */
  void *p[4] = {corona_malloc(16), corona_malloc(700), corona_malloc(8064), corona_malloc(40000)};
  static char fbuf[8192];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf); /* no allocation from here on */
  corona_stats s;
  if (!snap(&s)) return;
  corona_stats_print(f);
  slurp(f);
  fclose(f);
  check_report(text, &s, "corona_stats_print(file)");
  CHECKF(s.total_allocations > 0 && s.large_objects >= 1, "print: total %llu, large live %llu",
         (unsigned long long)s.total_allocations, (unsigned long long)s.large_objects);

  /* NULL: the same table on stderr. */
  FILE *g = tmpfile();
  if (!CHECK(g != NULL)) return;
  fflush(stderr);
  int saved = dup(2);
  if (!CHECK(saved >= 0 && dup2(fileno(g), 2) == 2)) return;
  if (!snap(&s)) return;
  corona_stats_print(NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  slurp(g);
  fclose(g);
  check_report(text, &s, "corona_stats_print(NULL) on stderr");
  for (int i = 0; i < 4; i++) corona_free(p[i]);
}

/* ---- json: the same figures as one JSON object ----------------------------- */
/* A strict JSON check of one value at *p (RFC 8259, no extensions). */
static bool json_value(const char **p);
static void json_ws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}
static bool json_string(const char **p) {
  if (**p != '"') return false;
  for ((*p)++; **p != '"'; (*p)++) {
    if ((unsigned char)**p < 0x20) return false;
    if (**p == '\\') {
      (*p)++;
      if (**p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!isxdigit((unsigned char)(*p)[i])) return false;
        *p += 4;
      } else if (strchr("\"\\/bfnrt", **p) == NULL || **p == '\0') {
        return false;
      }
    }
  }
  (*p)++;
  return true;
}
static bool json_number(const char **p) {
  const char *s = *p;
  if (*s == '-') s++;
  if (*s == '0') s++;
  else if (*s >= '1' && *s <= '9') while (isdigit((unsigned char)*s)) s++;
  else return false;
  if (*s == '.') {
    if (!isdigit((unsigned char)*++s)) return false;
    while (isdigit((unsigned char)*s)) s++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (!isdigit((unsigned char)*s)) return false;
    while (isdigit((unsigned char)*s)) s++;
  }
  *p = s;
  return true;
}
static bool json_items(const char **p, char close, bool object) {
  (*p)++;
  json_ws(p);
  if (**p == close) return (*p)++, true;
  for (;;) {
    if (object) {
      if (!json_string(p)) return false;
      json_ws(p);
      if (*(*p)++ != ':') return false;
    }
    if (!json_value(p)) return false;
    json_ws(p);
    if (**p == close) return (*p)++, true;
    if (*(*p)++ != ',') return false;
    json_ws(p);
  }
}
static bool json_value(const char **p) {
  json_ws(p);
  bool ok;
  if (**p == '{') ok = json_items(p, '}', true);
  else if (**p == '[') ok = json_items(p, ']', false);
  else if (**p == '"') ok = json_string(p);
  else if (strncmp(*p, "true", 4) == 0) ok = (*p += 4, true);
  else if (strncmp(*p, "false", 5) == 0) ok = (*p += 5, true);
  else if (strncmp(*p, "null", 4) == 0) ok = (*p += 4, true);
  else ok = json_number(p);
  json_ws(p);
  return ok;
}
/* Whether text is exactly one JSON object on one line, ended by a newline. */
static bool json_one_line_object(const char *text) {
  const char *p = text;
  size_t n = strlen(text);
  if (n < 3 || text[0] != '{' || text[n - 1] != '\n' || strchr(text, '\n') != text + n - 1) return false;
  return json_value(&p) && *p == '\0';
}

/* The number after "key": in text (the first such key), or -1. */
static long long json_number_of(const char *text, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(text, k);
  if (p == NULL || !isdigit((unsigned char)p[strlen(k)])) return -1;
  return strtoll(p + strlen(k), NULL, 10);
}

static void check_json(const char *text, const corona_stats *s, const char *what) {
  if (!CHECKF(json_one_line_object(text), "%s: not one JSON object on one line:\n%s", what, text)) return;
  char head[64];
  snprintf(head, sizeof head, "{\"program\":\"test_stats\",\"pid\":%d,\"available\":true,", (int)getpid());
  CHECKF(strncmp(text, head, strlen(head)) == 0, "%s: does not start with %s:\n%s", what, head, text);
  CHECKF(strstr(text, s->counting ? "\"counting\":true," : "\"counting\":false,") != NULL, "%s: counting:\n%s", what,
         text);
  const struct {
    const char *key;
    uint64_t value;
  } fields[] = {
      {"total_allocations", s->total_allocations}, {"total_frees", s->total_frees},
      {"active_allocations", s->active_allocations}, {"small_allocations", s->small_allocations},
      {"small_frees", s->small_frees}, {"small_objects", s->small_objects},
      {"large_allocations", s->large_allocations}, {"large_frees", s->large_frees},
      {"large_objects", s->large_objects}, {"cache_hits", s->cache_hits}, {"cache_misses", s->cache_misses},
      {"cross_thread_frees", s->cross_thread_frees}, {"memory_mapped", s->memory_mapped},
      {"memory_in_use", s->memory_in_use}, {"peak_memory_in_use", s->peak_memory_in_use},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    CHECKF(json_number_of(text, fields[i].key) == (long long)fields[i].value, "%s: \"%s\" is %lld, expected %llu",
           what, fields[i].key, json_number_of(text, fields[i].key), (unsigned long long)fields[i].value);
  /* "bins": the 45 classes in order, each with its four figures. */
  const char *b = strstr(text, ",\"bins\":[");
  if (!CHECKF(b != NULL, "%s: no bins array", what)) return;
  b += strlen(",\"bins\":[");
  for (unsigned k = 0; k < NBINS; k++) {
    unsigned long long sz, al, fr, ac;
    int used = 0;
    if (!CHECKF(sscanf(b, "{\"object_size\":%llu,\"allocations\":%llu,\"frees\":%llu,\"active\":%llu}%n", &sz, &al, &fr,
                       &ac, &used) == 4 && used > 0,
                "%s: bin %u is not {object_size, allocations, frees, active}: %.80s", what, k, b))
      return;
    const corona_bin_stats *x = &s->bins[k];
    CHECKF(sz == x->object_size && al == x->allocations && fr == x->frees && ac == x->active,
           "%s: bin %u: %llu %llu %llu %llu, expected %llu %llu %llu %llu", what, k, sz, al, fr, ac,
           (unsigned long long)x->object_size, (unsigned long long)x->allocations, (unsigned long long)x->frees,
           (unsigned long long)x->active);
    b += used;
    CHECKF(*b == (k + 1 < NBINS ? ',' : ']'), "%s: after bin %u: %.20s", what, k, b);
    b++;
  }
  CHECKF(strcmp(b, "}\n") == 0, "%s: after the bins: %s", what, b);
}

static void test_json(void) {
  void *p[4] = {corona_malloc(48), corona_malloc(48), corona_malloc(3000), corona_malloc(50000)};
  corona_free(p[1]);
  static char fbuf[16384];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf); /* no allocation from here on */
  corona_stats s;
  if (!snap(&s)) return;
  corona_stats_print_json(f);
  slurp(f);
  fclose(f);
  check_json(text, &s, "corona_stats_print_json(file)");
  CHECKF(s.bins[bin_of(48)].frees >= 1 && s.bins[bin_of(3000)].active >= 1 && s.large_objects >= 1,
         "json: this test's objects are not in the figures");
  /* The quoting: a JSON string holds no raw quote, backslash or control byte. */
  const char *tricky = "{\"a\":\"x\\\"y\\\\z\\u0001\",\"b\":[1,-2.5e3,true,null]}\n";
  CHECK(json_one_line_object(tricky) && !json_one_line_object("{\"a\":1,}\n") &&
        !json_one_line_object("{\"a\":\"x\ty\"}\n") && !json_one_line_object("{\"a\":1}"));
  for (int i = 0; i < 4; i++)
    if (i != 1) corona_free(p[i]);
}

/* ---- counting off: small calls not counted, the rest still is ------------- */
#define OFF_SMALL 50
#define OFF_SIZE 300
static void *off_objs[OFF_SMALL];

static void *off_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < XT_K; i++) xt_objs[i] = corona_malloc(XT_SIZE);
  return NULL;
}

static void test_counting_off(void) {
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 2) == EINVAL);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, -1) == EINVAL);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 0) == 0);
  corona_stats a, b, c;
  if (!snap(&a)) return;
  CHECKF(a.counting == 0, "counting_off: counting is %llu", (unsigned long long)a.counting);
  check_consistent(&a, "counting_off: first snapshot");
  /* Small calls (not counted) beside large ones (counted). */
  expect_t e = {0};
  for (int i = 0; i < OFF_SMALL; i++)
    if (!CHECK((off_objs[i] = corona_malloc(OFF_SIZE)) != NULL)) return;
  for (int i = 0; i < 20; i++) corona_free(off_objs[i]);
  expect_small(&e, OFF_SIZE, OFF_SMALL, 20);
  void *big[3];
  for (int i = 0; i < 3; i++)
    if (!CHECK((big[i] = corona_malloc(100 * KB + (size_t)i * 8 * KB)) != NULL)) return;
  corona_free(big[0]);
  e.large_alloc = 3;
  e.large_free = 1;
  if (!snap(&b)) return;
  check_delta(&a, &b, &e, ALL_BINS, "counting_off: small and large calls");
  CHECKF(dlt(b.memory_in_use, a.memory_in_use) >= (int64_t)(200 * KB),
         "counting_off: in_use grew by %lld with > 200 KB of large objects live",
         (long long)dlt(b.memory_in_use, a.memory_in_use));
  /* A cache hit is counted. */
  big[0] = corona_malloc(100 * KB);
  if (!CHECK(big[0] != NULL) || !snap(&c)) return;
  CHECKF(dlt(c.cache_hits, b.cache_hits) == 1 && dlt(c.large_allocations, b.large_allocations) == 1,
         "counting_off: free + malloc of the same size: %lld hits, %lld large allocations",
         (long long)dlt(c.cache_hits, b.cache_hits), (long long)dlt(c.large_allocations, b.large_allocations));
  /* Cross-thread frees are counted. */
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, off_thread, NULL) == 0)) return;
  pthread_join(t, NULL);
  if (!snap(&a)) return;
  for (int i = 0; i < XT_K; i++) corona_free(xt_objs[i]);
  if (!snap(&b)) return;
  memset(&e, 0, sizeof e);
  expect_small(&e, XT_SIZE, 0, XT_K);
  e.cross = XT_K;
  check_delta(&a, &b, &e, (uint64_t)1 << bin_of(XT_SIZE), "counting_off: frees of an exited thread's objects");
  /* The table says that small objects are not counted. */
  static char fbuf[8192];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
  corona_stats_print(f);
  slurp(f);
  fclose(f);
  CHECKF(has_label(text, "test_stats", (long long)getpid()) && strstr(text, "not counted") != NULL &&
             row_value(text, "total allocations") == 0 && row_value(text, "large allocations") == (long long)b.large_allocations,
         "counting_off: the table:\n%s", text);
  for (int i = 20; i < OFF_SMALL; i++) corona_free(off_objs[i]);
  for (int i = 0; i < 3; i++) corona_free(big[i]);
}

/* ---- switch_on: counting switched on mid-run is exact from then on ---------- */
static void test_switch_on(void) {
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 0) == 0);
  /* While not counting, this thread gets lists in the 320 B class: objects
   * checked out to its free list, one on its local list. */
  void *old[3];
  for (int i = 0; i < 3; i++)
    if (!CHECK((old[i] = corona_malloc(OFF_SIZE)) != NULL)) return;
  corona_free(old[2]);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 1) == 0);
  corona_stats a, b;
  if (!snap(&a)) return;
  CHECKF(a.counting == 1, "switch_on: counting is %llu", (unsigned long long)a.counting);
  check_consistent(&a, "switch_on: first snapshot");
  void *p[5];
  for (int i = 0; i < 5; i++)
    if (!CHECK((p[i] = corona_malloc(OFF_SIZE)) != NULL)) return;
  corona_free(p[0]);
  corona_free(p[1]);
  corona_free(old[0]); /* allocated before, freed now: a free */
  corona_free(old[1]);
  if (!snap(&b)) return;
  expect_t e = {0};
  expect_small(&e, OFF_SIZE, 5, 4);
  check_delta(&a, &b, &e, ALL_BINS, "switch_on: 5 mallocs and 4 frees right after switching counting on");
  for (int i = 2; i < 5; i++) corona_free(p[i]);
}

/* ---- report at exit: a child process --------------------------------------- */
#define CHILD_SMALL 1234
#define CHILD_FREED 34
#define CHILD_LARGE 5

/* The child: known objects, then its own figures on stdout (one write, no
 * allocation), then exit: the report must show those very figures. */
static int child_report(void) {
  static void *objs[CHILD_SMALL];
  for (int i = 0; i < CHILD_SMALL; i++) objs[i] = corona_malloc(100);
  for (int i = 0; i < CHILD_FREED; i++) corona_free(objs[i]);
  for (int i = 0; i < CHILD_LARGE; i++) (void)!corona_malloc(100000 + (size_t)i);
  corona_stats s;
  int rc = corona_stats_get(&s);
  char line[512];
  int n = snprintf(line, sizeof line,
                   "child rc=%d pid=%d counting=%llu total=%llu frees=%llu small=%llu large=%llu hits=%llu misses=%llu "
                   "inuse=%llu mapped=%llu peak=%llu bin112=%llu\n",
                   rc, (int)getpid(), (unsigned long long)s.counting, (unsigned long long)s.total_allocations, (unsigned long long)s.total_frees,
                   (unsigned long long)s.small_allocations, (unsigned long long)s.large_allocations,
                   (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses,
                   (unsigned long long)s.memory_in_use, (unsigned long long)s.memory_mapped,
                   (unsigned long long)s.peak_memory_in_use, (unsigned long long)s.bins[6].allocations);
  if (write(1, line, (size_t)n) != n) return 3;
  return 0; /* exit: the report */
}

static char out_buf[65536], err_buf[262144];

/* Runs argv with the environment changed by `env` ("NAME=value" sets,
 * "NAME" unsets; NULL-terminated), stdout and stderr into out_buf and
 * err_buf.  Returns the wait status, or -1. */
static int run_child(char *const argv[], const char *const env[]) {
  int po[2], pe[2];
  if (pipe(po) != 0 || pipe(pe) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]);
    close(po[1]);
    close(pe[0]);
    close(pe[1]);
    for (int i = 0; env[i] != NULL; i++) {
      static char name[256];
      const char *eq = strchr(env[i], '=');
      if (eq == NULL) {
        unsetenv(env[i]);
        continue;
      }
      size_t nl = (size_t)(eq - env[i]);
      if (nl >= sizeof name) _exit(126);
      memcpy(name, env[i], nl);
      name[nl] = '\0';
      setenv(name, eq + 1, 1);
    }
    /* A program of this build runs through the emulator of a cross build;
     * the host's shell (the pipeline) runs as it is. */
    if (cu_emulator() != NULL && strcmp(argv[0], "/bin/sh") != 0) cu_execve(argv[0], argv, environ);
    else execvp(argv[0], argv);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  /* Read both pipes to the end (poll-free: alternate non-blocking reads). */
  size_t no = 0, ne = 0;
  bool open_o = true, open_e = true;
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  while (open_o || open_e) {
    bool progress = false;
    if (open_o) {
      ssize_t r = read(po[0], out_buf + no, sizeof out_buf - 1 - no);
      if (r > 0) no += (size_t)r, progress = true;
      else if (r == 0 || (errno != EAGAIN && errno != EINTR) || no == sizeof out_buf - 1) open_o = false;
    }
    if (open_e) {
      ssize_t r = read(pe[0], err_buf + ne, sizeof err_buf - 1 - ne);
      if (r > 0) ne += (size_t)r, progress = true;
      else if (r == 0 || (errno != EAGAIN && errno != EINTR) || ne == sizeof err_buf - 1) open_e = false;
    }
    if (!progress) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  out_buf[no] = '\0';
  err_buf[ne] = '\0';
  close(po[0]);
  close(pe[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return status;
}

static bool exited_ok(int status, const char *what) {
  return CHECKF(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s: child status %#x; stderr:\n%s", what, (unsigned)status, err_buf);
}

/* Reads "key=value" from the child's stdout line. */
static long long child_value(const char *key) {
  char k[64];
  snprintf(k, sizeof k, " %s=", key);
  const char *p = strstr(out_buf, k);
  return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static char self_path[4096];

/* Checks that table (one report) shows the figures child-report printed on
 * its stdout (out_buf), under the child's own label. */
static void check_child_table(const char *table, const char *what) {
  CHECKF(has_label(table, "test_stats", child_value("pid")),
         "report %s: the table does not start with \"corona statistics: test_stats (pid %lld)\":\n%s", what,
         child_value("pid"), table);
  const struct {
    const char *key, *label;
  } map[] = {{"total", "total allocations"},        {"frees", "total frees"},
             {"small", "small allocations"},        {"large", "large allocations"},
             {"hits", "large cache hits"},          {"misses", "large cache misses"},
             {"inuse", "memory in use (bytes)"},    {"mapped", "memory mapped (bytes)"},
             {"peak", "peak memory in use (bytes)"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    long long want = child_value(map[i].key), got = row_value(table, map[i].label);
    CHECKF(want >= 0 && got == want, "report %s: \"%s\" is %lld, the child saw %lld", what, map[i].label, got, want);
  }
  CHECKF(child_value("total") >= CHILD_SMALL + CHILD_LARGE && child_value("large") >= CHILD_LARGE &&
             child_value("bin112") >= CHILD_SMALL,
         "report %s: the child's own objects are missing: %s", what, out_buf);
  CHECKF(row_value(table, "active allocations") >= CHILD_SMALL - CHILD_FREED + CHILD_LARGE,
         "report %s: active allocations %lld", what, row_value(table, "active allocations"));
  /* The bin of 100 B (112) has its row with at least the child's objects. */
  const char *row = strstr(table, "\n    6    112 ");
  CHECKF(row != NULL && strtoll(row + 14, NULL, 10) == child_value("bin112"), "report %s: bin 6 row wrong or missing:\n%s",
         what, table);
}

static void test_report(void) {
  char *argv[] = {self_path, "child-report", NULL};
  const char *clean[] = {"MALLOC_STATS",   "CORONA_STATS",      "MALLOC_DEBUG",      "CORONA_DEBUG",
                         "MALLOC_STATS_FILE", "CORONA_STATS_FILE", NULL};
  struct {
    const char *what;
    const char *env[3];
    bool report;
  } cases[] = {
      {"MALLOC_STATS=1", {"MALLOC_STATS=1", NULL}, true},
      {"CORONA_STATS=1", {"CORONA_STATS=1", NULL}, true},
      {"MALLOC_STATS=yes", {"MALLOC_STATS=yes", NULL}, true},
      {"no variable", {NULL}, false},
      {"MALLOC_STATS=0", {"MALLOC_STATS=0", NULL}, false},
      {"MALLOC_STATS=1 CORONA_STATS=0", {"MALLOC_STATS=1", "CORONA_STATS=0", NULL}, false},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *env[12];
    int n = 0;
    for (int i = 0; clean[i]; i++) env[n++] = clean[i];
    for (int i = 0; cases[c].env[i]; i++) env[n++] = cases[c].env[i];
    env[n] = NULL;
    int status = run_child(argv, env);
    if (!exited_ok(status, cases[c].what)) continue;
    CHECKF(child_value("rc") == (stats_supported ? 0 : ENOTSUP), "report %s: child's corona_stats_get gave %lld",
           cases[c].what, child_value("rc"));
    if (stats_supported)
      CHECKF(child_value("counting") == (cases[c].report ? 1 : 0),
             "report %s: the child's small-object counting is %lld, expected %d (on with the report)", cases[c].what,
             child_value("counting"), cases[c].report ? 1 : 0);
    int tables = count_of(err_buf, "corona statistics");
    if (!cases[c].report) {
      CHECKF(tables == 0, "report %s: %d tables on stderr, expected none:\n%s", cases[c].what, tables, err_buf);
      continue;
    }
    if (!CHECKF(tables == 1, "report %s: %d tables on stderr, expected 1:\n%s", cases[c].what, tables, err_buf))
      continue;
    if (!stats_supported) {
      CHECKF(has_label(err_buf, "test_stats", child_value("pid")), "report %s (no statistics): label:\n%s",
             cases[c].what, err_buf);
      CHECKF(strstr(err_buf, "not available") != NULL, "report %s (no statistics): says:\n%s", cases[c].what,
             err_buf);
      continue;
    }
    check_child_table(err_buf, cases[c].what);
  }
}

/* ---- stats_file: the report at exit into a file ---------------------------- */
static char tmp_dir[64];
static char file_buf[262144];

/* Reads path into file_buf; false when it cannot be read. */
static bool read_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof file_buf - 1 && (r = read(fd, file_buf + n, sizeof file_buf - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  file_buf[n] = '\0';
  return true;
}

/* Runs child-report (or argv) with the clean environment plus `extra`
 * (NULL-terminated); false when it does not exit 0. */
static bool run_with(char *const argv[], const char *const extra[], const char *what) {
  const char *env[16] = {"MALLOC_STATS", "CORONA_STATS", "MALLOC_DEBUG", "CORONA_DEBUG", "MALLOC_STATS_FILE",
                         "CORONA_STATS_FILE"};
  int n = 6;
  for (int i = 0; extra[i] != NULL && n < 15; i++) env[n++] = extra[i];
  env[n] = NULL;
  return exited_ok(run_child(argv, env), what);
}

/* The tables of a text that holds only reports: each must start with a
 * label of test_stats, name a process no other table names, and hold its
 * rows once (tables from processes writing at once do not interleave).
 * Returns how many; the pids go to pids[] (up to cap). */
static int split_tables(const char *text, long long *pids, int cap, const char *what) {
  int n = 0;
  const char *t = text;
  static char one[16384];
  while (*t != '\0') {
    const char *next = strstr(t + 1, "corona statistics: ");
    size_t len = next ? (size_t)(next - t) : strlen(t);
    if (!CHECKF(len < sizeof one && has_label(t, "test_stats", -1), "%s: table %d does not start with a label:\n%.300s",
                what, n, t))
      return -1;
    memcpy(one, t, len);
    one[len] = '\0';
    long long pid = strtoll(strstr(one, " (pid ") + 6, NULL, 10);
    for (int k = 0; k < n && k < cap; k++)
      CHECKF(pids[k] != pid, "%s: tables %d and %d both name pid %lld", what, k, n, pid);
    if (n < cap) pids[n] = pid;
    CHECKF(row_value(one, "total allocations") > 0 && row_value(one, "memory mapped (bytes)") > 0 &&
               count_of(one, "total allocations") == 1 && strstr(one, "  bin   size") != NULL,
           "%s: table %d (pid %lld) is not whole:\n%s", what, n, pid, one);
    n++;
    t += len;
  }
  return n;
}

static void test_stats_file(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/corona-stats-XXXXXX");
  if (!CHECK(mkdtemp(tmp_dir) != NULL)) return;
  char *argv[] = {self_path, "child-report", NULL};
  static char var[512], path[512];

  /* %p: a file of the child's own, with its table; nothing on stderr. */
  snprintf(var, sizeof var, "MALLOC_STATS_FILE=%s/stats.%%p.txt", tmp_dir);
  if (run_with(argv, (const char *[]){"MALLOC_STATS=1", var, NULL}, "STATS_FILE with %p")) {
    snprintf(path, sizeof path, "%s/stats.%lld.txt", tmp_dir, child_value("pid"));
    if (CHECKF(read_file(path), "STATS_FILE: no file %s", path)) {
      CHECKF(count_of(file_buf, "corona statistics") == 1, "STATS_FILE: %d tables in %s", count_of(file_buf, "corona statistics"), path);
      check_child_table(file_buf, "STATS_FILE with %p");
    }
    CHECKF(count_of(err_buf, "corona statistics") == 0 && err_buf[0] == '\0', "STATS_FILE: stderr holds:\n%s", err_buf);
    unlink(path);
  }
  /* CORONA_STATS_FILE alone turns the report (and counting) on; %% is a %. */
  snprintf(var, sizeof var, "CORONA_STATS_FILE=%s/pct.%%%%p.%%p", tmp_dir);
  if (run_with(argv, (const char *[]){var, NULL}, "CORONA_STATS_FILE alone")) {
    snprintf(path, sizeof path, "%s/pct.%%p.%lld", tmp_dir, child_value("pid"));
    CHECKF(child_value("counting") == 1, "CORONA_STATS_FILE alone: counting is %lld", child_value("counting"));
    if (CHECKF(read_file(path), "CORONA_STATS_FILE alone: no file %s", path)) check_child_table(file_buf, "CORONA_STATS_FILE alone");
    CHECKF(err_buf[0] == '\0', "CORONA_STATS_FILE alone: stderr holds:\n%s", err_buf);
    unlink(path);
  }
  /* Without %p, reports are appended: two children, two tables. */
  snprintf(var, sizeof var, "MALLOC_STATS_FILE=%s/both.txt", tmp_dir);
  snprintf(path, sizeof path, "%s/both.txt", tmp_dir);
  long long pids[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    if (run_with(argv, (const char *[]){"MALLOC_STATS=1", var, NULL}, "STATS_FILE appended")) pids[i] = child_value("pid");
  if (CHECKF(read_file(path), "STATS_FILE appended: no file %s", path)) {
    long long seen[2] = {0, 0};
    CHECKF(split_tables(file_buf, seen, 2, "STATS_FILE appended") == 2 && seen[0] == pids[0] && seen[1] == pids[1],
           "STATS_FILE appended: want the tables of pids %lld and %lld in that order:\n%s", pids[0], pids[1], file_buf);
  }
  unlink(path);
  /* A file that cannot be written: a line saying so, then the table on stderr. */
  snprintf(var, sizeof var, "MALLOC_STATS_FILE=%s/no/such/dir/x", tmp_dir);
  if (run_with(argv, (const char *[]){"MALLOC_STATS=1", var, NULL}, "STATS_FILE unwritable")) {
    char want[600];
    snprintf(want, sizeof want, "corona: cannot write the statistics to %s/no/such/dir/x (STATS_FILE); they follow here\n",
             tmp_dir);
    CHECKF(strncmp(err_buf, want, strlen(want)) == 0, "STATS_FILE unwritable: stderr starts:\n%.200s", err_buf);
    if (strncmp(err_buf, want, strlen(want)) == 0) check_child_table(err_buf + strlen(want), "STATS_FILE unwritable");
  }
  /* An empty value: a warning, no report. */
  if (run_with(argv, (const char *[]){"MALLOC_STATS_FILE=", NULL}, "STATS_FILE empty")) {
    CHECKF(strcmp(err_buf, "corona: MALLOC_STATS_FILE=: empty or too long; using the default\n") == 0,
           "STATS_FILE empty: stderr:\n%s", err_buf);
    CHECKF(child_value("counting") == 0, "STATS_FILE empty: counting is %lld", child_value("counting"));
  }
  DIR *d = opendir(tmp_dir);
  int left = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) left += e->d_name[0] != '.';
  if (d != NULL) closedir(d);
  CHECKF(left == 0, "STATS_FILE: %d unexpected files left in %s", left, tmp_dir);
  rmdir(tmp_dir);
}

/* ---- pipeline: 40 processes, 40 labelled tables ----------------------------- */
#define PIPE_PROCS 40

/* A stage of the pipeline: reads its input to the end, keeps a 64-byte copy
 * of each line, writes them and one line more. */
static int child_pipe(void) {
  static char in[65536];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof in && (r = read(0, in + n, sizeof in - n)) != 0)
    if (r > 0) n += (size_t)r;
    else if (errno != EINTR) return 3;
  static char *lines[PIPE_PROCS + 1];
  size_t k = 0;
  for (size_t i = 0; i < n && k < PIPE_PROCS; i++)
    if (in[i] == '\n') {
      if ((lines[k] = corona_malloc(64)) == NULL) return 4;
      snprintf(lines[k++], 64, "line\n");
    }
  if ((lines[k] = corona_malloc(64)) == NULL) return 4;
  snprintf(lines[k++], 64, "line\n");
  for (size_t i = 0; i < k; i++) {
    if (write(1, lines[i], 5) != 5) return 5;
    corona_free(lines[i]);
  }
  return 0;
}

static int line_count(const char *text) {
  int n = 0;
  for (; *text; text++) n += *text == '\n';
  return n;
}

static void run_pipeline(const char *file_var, const char *what) {
  static char cmd[PIPE_PROCS * 4200 + 64];
  size_t n = (size_t)snprintf(cmd, sizeof cmd, "exec </dev/null; ");
  /* In a cross build each stage runs under the emulator (its words, as
   * CRTEST_EMULATOR gives them). */
  const char *emu = cu_emulator();
  for (int i = 0; i < PIPE_PROCS; i++)
    n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s%s'%s' child-pipe", i ? " | " : "", emu ? emu : "",
                          emu ? " " : "", self_path);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  if (!run_with(argv, (const char *[]){"MALLOC_STATS=1", file_var, NULL}, what)) return;
  CHECKF(line_count(out_buf) == PIPE_PROCS, "%s: the pipeline wrote %d lines, expected %d", what, line_count(out_buf),
         PIPE_PROCS);
  const char *text = err_buf;
  if (file_var != NULL) {
    CHECKF(err_buf[0] == '\0', "%s: stderr holds:\n%.300s", what, err_buf);
    if (!CHECKF(read_file(strchr(file_var, '=') + 1), "%s: no file", what)) return;
    text = file_buf;
  }
  long long pids[PIPE_PROCS];
  int tables = split_tables(text, pids, PIPE_PROCS, what);
  CHECKF(tables == PIPE_PROCS, "%s: %d tables, expected %d:\n%.2000s", what, tables, PIPE_PROCS, text);
}

static void test_pipeline(void) {
  run_pipeline(NULL, "pipeline on stderr");
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/corona-stats-XXXXXX");
  if (!CHECK(mkdtemp(tmp_dir) != NULL)) return;
  static char var[512];
  snprintf(var, sizeof var, "MALLOC_STATS_FILE=%s/pipeline.txt", tmp_dir);
  run_pipeline(var, "pipeline into one STATS_FILE");
  unlink(strchr(var, '=') + 1);
  rmdir(tmp_dir);
}

/* ---- preload: a program that knows nothing of corona ----------------------- */
static int test_preload(const char *lib, const char *target) {
  /* python3's real interpreter (PATH may hold a wrapper script that runs
   * other programs first); perl when there is no python3; or, given (a
   * cross build, whose library no host program can load), preload_target
   * of this build. */
  static char interp[4096];
  char *ask[] = {"python3", "-c", "import sys; print(sys.executable)", NULL};
  const char *none[] = {"LD_PRELOAD", NULL};
  int status = target != NULL ? -1 : run_child(ask, none);
  char *argv[4];
  const char *expect_out;
  if (target != NULL) {
    argv[0] = (char *)target;
    argv[1] = "strings";
    argv[2] = "100000";
    expect_out = "488890\n";
  } else if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && out_buf[0] == '/') {
    size_t len = strcspn(out_buf, "\n");
    if (len >= sizeof interp) len = sizeof interp - 1;
    memcpy(interp, out_buf, len);
    interp[len] = '\0';
    argv[0] = interp;
    argv[1] = "-c";
    argv[2] = "print(sum(len(str(i)) for i in range(100000)))";
    expect_out = "488890\n";
  } else {
    argv[0] = "perl";
    argv[1] = "-e";
    argv[2] = "my %h; $h{$_} = 'x' x ($_ % 50) for 1..20000; print scalar(keys %h), \"\\n\";";
    expect_out = "20000\n";
  }
  argv[3] = NULL;
  static char preload[4200];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  const char *env[] = {preload, "MALLOC_STATS=1", "CORONA_STATS", "MALLOC_DEBUG", "CORONA_DEBUG", NULL};
  status = run_child(argv, env);
  if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    printf("test_stats preload: SKIP: neither python3 nor perl can be run\n");
    return 77;
  }
  printf("test_stats preload: %s with LD_PRELOAD=%s MALLOC_STATS=1\n", argv[0], lib);
  if (!exited_ok(status, argv[0])) return 1;
  CHECKF(strcmp(out_buf, expect_out) == 0, "preload: %s printed \"%s\", expected \"%s\"", argv[0], out_buf,
         expect_out);
  int tables = count_of(err_buf, "corona statistics");
  CHECKF(tables == 1, "preload: %d tables on stderr, expected 1:\n%s", tables, err_buf);
  if (strstr(err_buf, "not available") != NULL) {
    printf("test_stats preload: corona was built without statistics; the report says so\n");
    return tu_failure_count() ? 1 : 0;
  }
  long long total = row_value(err_buf, "total allocations"), small = row_value(err_buf, "small allocations"),
            frees = row_value(err_buf, "total frees"), mapped = row_value(err_buf, "memory mapped (bytes)");
  CHECKF(total >= 1000 && small >= 1000 && frees >= 100 && frees <= total && mapped > 0,
         "preload: figures too small for %s: total %lld, small %lld, frees %lld, mapped %lld:\n%s", argv[0], total,
         small, frees, mapped, err_buf);
  CHECKF(strstr(err_buf, "allocations") != NULL && strstr(err_buf, "bin") != NULL, "preload: no bin table:\n%s",
         err_buf);
  printf("%s", err_buf);
  return tu_failure_count() ? 1 : 0;
}

/* ---- statistics compiled out ------------------------------------------------ */
static void test_unsupported(const corona_stats *s) {
  static const corona_stats zero;
  /* The contract (corona.h): ENOTSUP, and *out zeroed. */
  CHECKF(memcmp(s, &zero, sizeof zero) == 0, "ENOTSUP: the struct is not zeroed (bin 0 object_size %llu)",
         (unsigned long long)s->bins[0].object_size);
  CHECK(corona_stats_get(NULL) == EINVAL);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 1) == ENOTSUP);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 0) == ENOTSUP);
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 2) == EINVAL);
  static char fbuf[8192];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
  corona_stats_print(f);
  slurp(f);
  fclose(f);
  CHECKF(strstr(text, "corona statistics") != NULL && strstr(text, "not available") != NULL,
         "ENOTSUP: corona_stats_print wrote:\n%s", text);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "child-report") == 0) return child_report();
  if (argc >= 2 && strcmp(argv[1], "child-pipe") == 0) return child_pipe();
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "preload") == 0) return test_preload(argv[2], argv[3]);
  ssize_t sl = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (sl > 0) self_path[sl] = '\0';
  else snprintf(self_path, sizeof self_path, "%s", argv[0]);

  corona_stats first;
  memset(&first, 0xee, sizeof first);
  int rc = corona_stats_get(&first);
  if (rc == ENOTSUP) {
    stats_supported = false;
    printf("test_stats: corona was built without statistics (corona_stats_get: ENOTSUP); checking that, and the "
           "report, then skipping the counters\n");
    test_unsupported(&first);
    test_report();
    return tu_finish("test_stats", t0);
  }
  if (!CHECKF(rc == 0, "corona_stats_get returned %d", rc)) return tu_finish("test_stats", t0);
  check_consistent(&first, "first snapshot");
  /* Count calls on small objects from here on, before this program makes
   * its first object (MALLOC_STATS=1 would do it from the start). */
  CHECK(corona_allocation_mode(CORONA_COUNT_CALLS, 1) == 0);

  struct {
    const char *name;
    void (*fn)(void);
    bool isolated; /* in a child process when all parts run: it switches counting off */
  } tests[] = {
      /* report and the isolated parts fork: before any thread exists. */
      {"report", test_report, false},
      {"stats_file", test_stats_file, false},
      {"pipeline", test_pipeline, false},
      {"counting_off", test_counting_off, true},
      {"switch_on", test_switch_on, true},
      {"classes", test_classes, false},
      {"small", test_small, false},
      {"calls", test_calls, false},
      {"large", test_large, false},
      {"memory", test_memory, false},
      {"cross_thread", test_cross_thread, false},
      {"threads", test_threads, false},
      {"print", test_print, false},
      {"json", test_json, false},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    bool wanted = argc < 2;
    for (int k = 1; k < argc; k++) wanted = wanted || strcmp(argv[k], tests[i].name) == 0;
    if (!wanted) continue;
    int before = tu_failure_count();
    double t = tu_now();
    if (argc < 2 && tests[i].isolated) {
      char *child_argv[] = {self_path, (char *)tests[i].name, NULL};
      const char *no_env[] = {NULL};
      int status = run_child(child_argv, no_env);
      CHECKF(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "%s (child process): status %#x; its output:\n%s%s", tests[i].name, (unsigned)status, out_buf, err_buf);
    } else {
      tests[i].fn();
    }
    int f = tu_failure_count() - before;
    printf("  %-14s %s (%.3f s)%s\n", tests[i].name, f ? "FAILED" : "ok", tu_now() - t,
           argc < 2 && tests[i].isolated ? " (child process)" : "");
  }
  return tu_finish("test_stats", t0);
}
