/* test_coalesce.c — the backend's coalescing of large blocks carved from regions,
 * observed through addresses (each scenario runs in a fresh thread, after
 * corona_collect, so the objects are carved from the backend):
 *   pair      A, B, C of 64 KB back to back; A and B freed (both orders),
 *             CORONA_CLEAN_ALL_BUFFERS; one object of A's + B's usable size
 *             reuses their range;
 *   triple    A, C freed, then B: the three merge into one;
 *   run       12 neighbours freed in random order merge into one range;
 *   remote    A and B freed by a thread that then exits (its cache goes to
 *             the backend): they merge too;
 *   refused   A and B freed, then a request that needs the OS is refused
 *             (NULL, ENOMEM; the retry after corona_collect too): the merged
 *             range survives it and serves A + B;
 *   release   regions whose blocks are all freed go back to the OS: the
 *             OS's count of mapped bytes is back where it started;
 *   bestfit   holes of 10, 75 and 50 pages between live objects, freed
 *             by a thread that exits and pushed from the global cache to
 *             the backend by newer blocks: a request of 50 pages takes
 *             the last (best fit, not first fit), one of 75 the second;
 *   mixed     a clean hole of 3 MiB (freed, purged), a live separator, a
 *             resident hole of 2 MiB (freed by a thread that exits: the
 *             global cache's budget sends it to the backend) and the
 *             region's untouched rest: a request of 2.5 MiB, which no run
 *             of resident pages fits, covers the resident hole and 512 KB
 *             after it (the fewest pages to fault in), not the clean hole
 *             that comes first;
 *   own       a freed 24 MiB mapping of its own serves three 8 MiB buffers
 *             while every mapping is refused (cut twice), and, those freed,
 *             one of 24 MiB again (joined twice), and an 8 MiB one cut
 *             again grows by realloc to 16 MiB in place, into the cached
 *             rest; after corona_collect the OS's counts are back where
 *             they started.
 * Linked with the fake OS (corona_fakeos, test/fakeos.h): its mappings come
 * first fit from one reservation, the same on every run, so a scenario's
 * objects lie back to back on the first try or the test fails.  And while
 * the merged range is reused every mapping is refused: the reuse must need
 * nothing from the OS.  Each scenario prints how many address checks ran. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>

#include "corona.h"
#include "fakeos.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)
/* Most a block may add in front of / behind its usable area (header,
 * granule rounding) for two objects to count as neighbours. */
#define NEIGHBOUR_SLACK (32 * KB)

/* Address checks made; the scenarios run one at a time (each thread is
 * joined before the next starts). */
static int address_checks;
#define ADDR_CHECKF(cond, ...)                                                                                        \
  do {                                                                                                                 \
    address_checks++;                                                                                                  \
    CHECKF(cond, __VA_ARGS__);                                                                                         \
  } while (0)

static void run_in_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, fn, arg) == 0)) return;
  pthread_join(t, NULL);
}

/* b's block directly follows a's. */
static bool follows(void *a, void *b) {
  uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  size_t ua = corona_usable_size(a);
  return y > x && y - x >= ua && y - x - ua <= NEIGHBOUR_SLACK;
}

static void *alloc_filled(size_t size, uint64_t seed) {
  void *p = corona_malloc(size);
  if (CHECKF(p != NULL, "malloc(%zu) failed", size)) tu_fill(p, corona_usable_size(p), seed);
  return p;
}

static void check_free(void *p, uint64_t seed) {
  if (p == NULL) return;
  CHECK_PATTERN(p, corona_usable_size(p), seed);
  corona_free(p);
}

/* o[0..n): objects of sizes[i], filled with seed0 + i, each directly after
 * the one before (checked).  False (reported) when one is missing, or not
 * next to the one before; the objects are freed then. */
static bool alloc_adjacent(void **o, const size_t *sizes, int n, uint64_t seed0, const char *what) {
  bool ok = true;
  for (int i = 0; i < n; i++) {
    o[i] = alloc_filled(sizes[i], seed0 + (uint64_t)i);
    if (o[i] == NULL) ok = false;
    else if (i > 0 && o[i - 1] != NULL) {
      bool next = follows(o[i - 1], o[i]);
      ADDR_CHECKF(next, "%s: object %d at %p does not follow object %d at %p (%zu usable)", what, i, o[i], i - 1,
                  o[i - 1], corona_usable_size(o[i - 1]));
      ok = ok && next;
    }
  }
  if (ok) return true;
  for (int i = 0; i < n; i++) check_free(o[i], seed0 + (uint64_t)i);
  return false;
}

/* While the fake OS refuses every mapping: the merged range is reused from
 * the backend alone. */
static void refuse_all(bool on) {
  fakeos_fail_above(FAKEOS_ALL, on ? 0 : SIZE_MAX);
}

/* The scenario's closing line: its checks ran. */
static void report(const char *what, int checks_before) {
  printf("    %s: %d address checks ran\n", what, address_checks - checks_before);
}

/* Allocates `size`, with every mapping refused, and checks it lies in
 * [lo, hi); returns it (filled). */
static void *expect_within(size_t size, uintptr_t lo, uintptr_t hi, const char *what) {
  fakeos_stats_t before, after;
  fakeos_stats(&before);
  refuse_all(true);
  void *p = corona_malloc(size);
  refuse_all(false);
  fakeos_stats(&after);
  CHECKF(after.refused == before.refused, "%s: reusing the merged range asked the OS for memory (%zu refusals)", what,
         after.refused - before.refused);
  if (!CHECKF(p != NULL, "%s: malloc(%zu) failed", what, size)) return NULL;
  uintptr_t x = (uintptr_t)p;
  ADDR_CHECKF(x >= lo && x + size <= hi,
         "%s: %zu-byte object at %p, not in the merged range [%#lx, %#lx) (%zu bytes) of the freed neighbours", what,
         size, p, (unsigned long)lo, (unsigned long)hi, (size_t)(hi - lo));
  printf("    %s: merged range [%#lx, %#lx) reused by %zu-byte object at %p\n", what, (unsigned long)lo,
         (unsigned long)hi, size, p);
  memset(p, 0x6B, size);
  return p;
}

/* ---- pair ----------------------------------------------------------------------- */
static void *pair_body(void *arg) {
  int b_first = (int)(intptr_t)arg;
  const char *what = b_first ? "pair (B freed first)" : "pair (A freed first)";
  corona_collect();
  int checks = address_checks;
  void *o[3];
  static const size_t sizes[3] = {64 * KB, 64 * KB, 64 * KB};
  if (!alloc_adjacent(o, sizes, 3, 1, what)) return NULL;
  void *a = o[0], *b = o[1], *c = o[2];
  size_t ua = corona_usable_size(a), ub = corona_usable_size(b);
  if (b_first) {
    check_free(b, 2);
    check_free(a, 1);
  } else {
    check_free(a, 1);
    check_free(b, 2);
  }
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  CHECK_PATTERN(c, corona_usable_size(c), 3);
  void *m = expect_within(ua + ub, (uintptr_t)a, (uintptr_t)b + ub, what);
  ADDR_CHECKF(m == a, "%s: merged object at %p, A was %p", what, m, a);
  corona_free(m);
  check_free(c, 3);
  report(what, checks);
  return NULL;
}

/* ---- triple ----------------------------------------------------------------------- */
static void *triple_body(void *arg) {
  (void)arg;
  corona_collect();
  int checks = address_checks;
  void *o[4];
  static const size_t sizes[4] = {64 * KB, 72 * KB, 80 * KB, 88 * KB};
  if (!alloc_adjacent(o, sizes, 4, 10, "triple")) return NULL;
  size_t u[3];
  for (int i = 0; i < 3; i++) u[i] = corona_usable_size(o[i]);
  check_free(o[0], 10);
  check_free(o[2], 12);
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  check_free(o[1], 11); /* merges with both sides */
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  void *m = expect_within(u[0] + u[1] + u[2], (uintptr_t)o[0], (uintptr_t)o[2] + u[2], "triple");
  ADDR_CHECKF(m == o[0], "triple: merged object at %p, A was %p", m, o[0]);
  CHECK_PATTERN(o[3], corona_usable_size(o[3]), 13);
  corona_free(m);
  check_free(o[3], 13);
  report("triple", checks);
  return NULL;
}

/* ---- run of 12 neighbours ---------------------------------------------------------- */
#define RUN 12
static void *run_body(void *arg) {
  (void)arg;
  corona_collect();
  int checks = address_checks;
  void *o[RUN + 1]; /* o[RUN] is a sentinel that keeps the region in use */
  size_t sizes[RUN + 1];
  tu_rng_t r;
  tu_rng_seed(&r, 5);
  for (int i = 0; i <= RUN; i++) sizes[i] = 40 * KB + tu_below(&r, 4) * 8 * KB;
  if (!alloc_adjacent(o, sizes, RUN + 1, 20, "run of 12")) return NULL;
  size_t sum = 0;
  for (int i = 0; i < RUN; i++) sum += corona_usable_size(o[i]);
  uintptr_t lo = (uintptr_t)o[0], hi = (uintptr_t)o[RUN - 1] + corona_usable_size(o[RUN - 1]);
  /* Free in random order, flushing now and then. */
  int order[RUN];
  for (int i = 0; i < RUN; i++) order[i] = i;
  for (int i = RUN; i > 1; i--) {
    int j = (int)tu_below(&r, (size_t)i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (int k = 0; k < RUN; k++) {
    check_free(o[order[k]], 20 + (uint64_t)order[k]);
    if (k % 4 == 3) corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL);
  }
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  void *m = expect_within(sum, lo, hi, "run of 12");
  CHECK_PATTERN(o[RUN], corona_usable_size(o[RUN]), 20 + RUN);
  corona_free(m);
  check_free(o[RUN], 20 + RUN);
  report("run of 12", checks);
  return NULL;
}

/* ---- remote: the neighbours are freed by another thread that exits ------------------ */
static void *remote_free_body(void *arg) {
  void **ab = arg;
  check_free(ab[0], 31);
  check_free(ab[1], 32);
  return NULL; /* exits: its caches go back */
}

static void *remote_body(void *arg) {
  (void)arg;
  corona_collect();
  int checks = address_checks;
  void *o[3];
  static const size_t sizes[3] = {64 * KB, 64 * KB, 64 * KB};
  if (!alloc_adjacent(o, sizes, 3, 31, "remote")) return NULL;
  void *a = o[0], *b = o[1], *c = o[2];
  size_t ua = corona_usable_size(a), ub = corona_usable_size(b);
  void *ab[2] = {a, b};
  run_in_thread(remote_free_body, ab);
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  void *m = expect_within(ua + ub, (uintptr_t)a, (uintptr_t)b + ub, "remote");
  corona_free(m);
  check_free(c, 33);
  report("remote", checks);
  return NULL;
}

/* ---- refused: a request the OS refuses leaves the merge in place --------------------- */
static void *refused_body(void *arg) {
  (void)arg;
  corona_collect();
  int checks = address_checks;
  void *o[3];
  static const size_t sizes[3] = {64 * KB, 64 * KB, 64 * KB};
  if (!alloc_adjacent(o, sizes, 3, 41, "refused")) return NULL;
  void *a = o[0], *b = o[1], *c = o[2];
  size_t ua = corona_usable_size(a), ub = corona_usable_size(b);
  check_free(a, 41);
  check_free(b, 42);
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  /* Too big for a region: only the OS could give it, and it refuses the
   * first try and the one after corona_collect. */
  fakeos_stats_t before, after;
  fakeos_stats(&before);
  refuse_all(true);
  errno = 0;
  void *big = corona_malloc(8 * MB);
  int err = errno;
  refuse_all(false);
  fakeos_stats(&after);
  CHECKF(big == NULL && err == ENOMEM, "refused: malloc(8 MB) with every mapping refused = %p, errno %d", big, err);
  CHECKF(after.refused >= before.refused + 2, "refused: %zu refusals, want the first try and the retry",
         after.refused - before.refused);
  if (big != NULL) corona_free(big);
  CHECK_PATTERN(c, corona_usable_size(c), 43);
  void *m = expect_within(ua + ub, (uintptr_t)a, (uintptr_t)b + ub, "refused");
  ADDR_CHECKF(m == a, "refused: merged object at %p, A was %p", m, a);
  corona_free(m);
  check_free(c, 43);
  report("refused", checks);
  return NULL;
}

/* ---- release: wholly free regions go back to the OS -------------------------------- */
#define REL_OBJS 160
static void *release_body(void *arg) {
  (void)arg;
  static void *o[REL_OBJS];
  static size_t sz[REL_OBJS];
  tu_rng_t r;
  tu_rng_seed(&r, 9);
  corona_collect();
  fakeos_stats_t base, live, end;
  fakeos_stats(&base);
  size_t sum = 0;
  for (int i = 0; i < REL_OBJS; i++) {
    sz[i] = tu_log_range(&r, 16 * KB, 900 * KB);
    o[i] = alloc_filled(sz[i], 100 + (uint64_t)i);
    if (o[i] != NULL) sum += sz[i];
  }
  fakeos_stats(&live);
  for (int i = 0; i < REL_OBJS; i += 2) check_free(o[i], 100 + (uint64_t)i);
  for (int i = 1; i < REL_OBJS; i += 2) check_free(o[i], 100 + (uint64_t)i);
  CHECK(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0);
  fakeos_stats(&end);
  printf("    release: %.1f MiB in %d blocks of 16 KB .. 900 KB; object memory mapped %.1f MiB in %zu mappings before,"
         " %.1f MiB in %zu live, %.1f MiB in %zu after all freed + CLEAN_ALL\n",
         (double)sum / MB, REL_OBJS, (double)base.mapped / MB, base.mappings, (double)live.mapped / MB, live.mappings,
         (double)end.mapped / MB, end.mappings);
  CHECKF(live.maps > base.maps, "release: %.1f MiB of objects took no new mapping", (double)sum / MB);
  CHECKF(end.mapped == base.mapped && end.mappings == base.mappings,
         "release: %zu bytes in %zu mappings still mapped after CLEAN_ALL_BUFFERS (%zu in %zu before)", end.mapped,
         end.mappings, base.mapped, base.mappings);
  CHECKF(end.unmaps > live.unmaps, "release: no mapping went back to the OS");
  return NULL;
}

/* ---- own: a mapping of its own cut into pieces, and the pieces joined ---------------- */
static void *own_body(void *arg) {
  (void)arg;
  const size_t third = 8 * MB - 64; /* a block of 8 MiB with its header */
  corona_collect();
  fakeos_stats_t base, cut, joined, end;
  fakeos_stats(&base);
  void *a = alloc_filled(3 * third + 128, 60), *p[3] = {NULL, NULL, NULL};
  check_free(a, 60);
  /* With every mapping refused, three buffers of a third still come: cut
   * from the freed one's pages. */
  refuse_all(true);
  for (int i = 0; i < 3; i++) p[i] = alloc_filled(third, 61 + (uint64_t)i);
  fakeos_stats(&cut);
  for (int i = 0; i < 3; i++) check_free(p[i], 61 + (uint64_t)i);
  a = alloc_filled(3 * third + 128, 64); /* the pieces joined again */
  fakeos_stats(&joined);
  check_free(a, 64);
  /* Cut again; realloc grows the piece into the cached rest after it, in
   * place (no mapping to move onto: every one is refused). */
  void *g = alloc_filled(third, 65), *grown = NULL;
  size_t ug = g != NULL ? corona_usable_size(g) : 0;
  if (g != NULL && CHECK((grown = corona_realloc(g, 2 * third)) != NULL)) {
    CHECK_PATTERN(grown, ug, 65);
    ADDR_CHECKF(grown == g, "own: realloc to 16 MiB moved the buffer from %p to %p", g, grown);
    corona_free(grown);
  }
  refuse_all(false);
  corona_collect();
  fakeos_stats(&end);
  printf("    own: a 24 MiB mapping cut %zu times into 8 MiB buffers, joined %zu times for one of 24 MiB; mapped "
         "%.1f MiB in %zu mappings before, %.1f MiB in %zu after collect\n",
         cut.splits - base.splits, joined.joins - cut.joins, (double)base.mapped / MB, base.mappings,
         (double)end.mapped / MB, end.mappings);
  CHECKF(cut.splits - base.splits == 2 && cut.maps == base.maps + 1,
         "own: %zu cuts for three thirds of a freed mapping (want 2), %zu new mappings (want only the first)",
         cut.splits - base.splits, cut.maps - base.maps);
  CHECKF(joined.joins - cut.joins == 2 && joined.maps == cut.maps, "own: %zu joins (want 2), %zu new mappings (want 0)",
         joined.joins - cut.joins, joined.maps - cut.maps);
  CHECKF(end.mapped == base.mapped && end.mappings == base.mappings,
         "own: %zu bytes in %zu mappings after collect (%zu in %zu before)", end.mapped, end.mappings, base.mapped,
         base.mappings);
  return NULL;
}

/* Frees the holes of bestfit (their seeds are their index + 1); the
 * thread's exit puts them into the global cache. */
static void *bestfit_free_body(void *arg) {
  void **o = arg;
  for (int i = 0; i < 6; i += 2) check_free(o[i], (uint64_t)i + 1);
  return NULL;
}

/* Fills the global cache past its budget with blocks freed after the
 * holes: the holes, its oldest entries, go to the backend, resident. */
static void *bestfit_push_body(void *arg) {
  (void)arg;
  void *f[3];
  for (int i = 0; i < 3; i++) f[i] = alloc_filled(MB, 40 + (uint64_t)i);
  for (int i = 0; i < 3; i++) check_free(f[i], 40 + (uint64_t)i);
  return NULL;
}

/* Holes of resident free pages between live objects: a small one, a big
 * one (75 pages: it spans words of the dirty map) and one of 50 pages
 * after it.  A request of 50 pages takes the hole it fits exactly, not the
 * first that covers it, and one of 75 pages the big hole. */
static void *bestfit_body(void *arg) {
  (void)arg;
  const char *what = "bestfit";
  corona_collect();
  int checks = address_checks;
  void *o[6];
  static const size_t sizes[6] = {40 * KB - 64, 36 * KB, 300 * KB - 64, 36 * KB, 200 * KB - 64, 36 * KB};
  if (!alloc_adjacent(o, sizes, 6, 1, what)) return NULL;
  run_in_thread(bestfit_free_body, o);
  run_in_thread(bestfit_push_body, NULL);
  void *m = alloc_filled(sizes[4], 7);
  ADDR_CHECKF(m == o[4], "%s: %zu bytes at %p, the hole that fits them is at %p", what, sizes[4], m, o[4]);
  void *h = alloc_filled(sizes[2], 8);
  ADDR_CHECKF(h == o[2], "%s: %zu bytes at %p, the hole that fits them is at %p", what, sizes[2], h, o[2]);
  check_free(m, 7);
  check_free(h, 8);
  for (int i = 1; i < 6; i += 2) check_free(o[i], (uint64_t)i + 1);
  report(what, checks);
  return NULL;
}

/* ---- mixed ---------------------------------------------------------------------- */
static void *mixed_free_body(void *arg) {
  check_free(arg, 3);
  return NULL;
}

static void *mixed_body(void *arg) {
  (void)arg;
  const char *what = "mixed";
  corona_collect();
  int checks = address_checks;
  void *o[3];
  static const size_t sizes[3] = {3 * MB - 64, 36 * KB, 2 * MB - 64};
  if (!alloc_adjacent(o, sizes, 3, 1, what)) return NULL;
  check_free(o[0], 1);
  corona_collect(); /* the first hole is purged: clean */
  run_in_thread(mixed_free_body, o[2]);
  uintptr_t lo = (uintptr_t)o[2], hi = lo + 3 * MB; /* the resident hole and the clean pages after it */
  void *p = expect_within(5 * MB / 2 - 64, lo, hi, what);
  ADDR_CHECKF(p == o[2], "%s: 2.5 MiB at %p, the resident hole it covers is at %p (the clean one at %p)", what, p, o[2],
              o[0]);
  if (p != NULL) {
    tu_fill(p, corona_usable_size(p), 9);
    check_free(p, 9);
  }
  check_free(o[1], 2);
  report(what, checks);
  return NULL;
}

int main(void) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct {
    const char *name;
    void *(*fn)(void *);
    void *arg;
  } tests[] = {
      {"pair_a_first", pair_body, (void *)0}, {"pair_b_first", pair_body, (void *)1},
      {"triple", triple_body, NULL},          {"run", run_body, NULL},
      {"remote", remote_body, NULL},          {"refused", refused_body, NULL},
      {"release", release_body, NULL},        {"own", own_body, NULL},
      {"bestfit", bestfit_body, NULL},        {"mixed", mixed_body, NULL},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int before = tu_failure_count();
    double t = tu_now();
    run_in_thread(tests[i].fn, tests[i].arg);
    printf("  %-14s %s (%.3f s)\n", tests[i].name, tu_failure_count() != before ? "FAILED" : "ok", tu_now() - t);
  }
  printf("test_coalesce: %d address checks ran\n", address_checks);
  return tu_finish("test_coalesce", t0);
}
