/* test_slab_purge.c — what freeing a big heap of small objects costs in
 * purges, and that the heap's lists of empty blocks stay whole through it
 * and what a growing heap costs in calls to bring its pages in (on the fake
 * OS, which counts both):
 *   small     a heap of 2 MiB of slabs: no page is brought in ahead of use
 *             (cr_os_populate is never called);
 *   teardown  a thread fills 96 MiB with 1 KiB objects (the fresh slabs'
 *             pages are brought in by groups: some cr_os_populate calls,
 *             fewer than one per slab), keeps one in 4096
 *             (so no slab region ever becomes wholly free and none is
 *             unmapped) and frees the rest in order.  The backend's budget
 *             of resident free slabs (a base plus a share of the bytes in
 *             use) falls with every slab, so once over it, purging only to
 *             the budget made every further slab one purge call: at least
 *             one per 16 slabs freed fails here.
 *   reuse     a second thread takes the empty blocks again from the heap's
 *             list (newest first), fills and frees them; then the
 *             survivors go, and corona_collect, which drains the list from
 *             its oldest end, gives every mapping back: the count of mapped
 *             bytes is where it started.
 * Every object carries a pattern, checked before its free. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "corona.h"
#include "fakeos.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)
#define OBJECT KB
#define HEAP (96 * MB)
#define KEEP_EVERY 4096
/* The bound: without batching, a purge per 16 KiB slab past the budget. */
#define SLAB (16 * KB)
#define SLABS_PER_PURGE 16

static void *objects[HEAP / OBJECT];

static void run_in_thread(void *(*fn)(void *)) {
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, fn, NULL) == 0)) return;
  pthread_join(t, NULL);
}

/* Fills objects[0..n) with OBJECT-byte objects, each with its pattern. */
static bool fill(size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    objects[i] = corona_malloc(OBJECT);
    if (!CHECKF(objects[i] != NULL, "malloc(%zu) failed at object %zu", OBJECT, i)) return false;
    tu_fill(objects[i], OBJECT, seed + i);
  }
  return true;
}

/* Frees objects[0..n), checking each pattern. */
static void drop(size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    CHECK_PATTERN(objects[i], OBJECT, seed + i);
    corona_free(objects[i]);
    objects[i] = NULL;
  }
}

static void *small_body(void *arg) {
  (void)arg;
  size_t n = 2 * MB / OBJECT;
  fakeos_stats_t before, after;
  fakeos_stats(&before);
  if (fill(n, 3)) drop(n, 3);
  fakeos_stats(&after);
  printf("    small: %zu MiB of objects, %zu populate calls\n", n * OBJECT / MB, after.populates - before.populates);
  CHECKF(after.populates == before.populates, "small: %zu populate calls for a heap of %zu MiB",
         after.populates - before.populates, n * OBJECT / MB);
  return NULL;
}

static void *teardown_body(void *arg) {
  (void)arg;
  size_t n = HEAP / OBJECT, freed = 0;
  fakeos_stats_t start, before, after;
  fakeos_stats(&start);
  if (!fill(n, 1)) return NULL;
  fakeos_stats(&before);
  size_t populates = before.populates - start.populates, slabs = (before.mapped - start.mapped) / SLAB;
  printf("    grow: %zu slabs mapped, %zu populate calls\n", slabs, populates);
  CHECKF(populates > 0 && populates < slabs, "grow: %zu populate calls for %zu slabs mapped", populates, slabs);
  for (size_t i = 0; i < n; i++) {
    if (i % KEEP_EVERY == 0) continue;
    CHECK_PATTERN(objects[i], OBJECT, 1 + i);
    corona_free(objects[i]);
    objects[i] = NULL;
    freed += OBJECT;
  }
  fakeos_stats(&after);
  size_t purges = after.purges - before.purges, bound = freed / (SLABS_PER_PURGE * SLAB);
  printf("    teardown: %zu MiB freed, %zu purge calls (bound %zu), %zu unmaps\n", freed / MB, purges, bound,
         after.unmaps - before.unmaps);
  CHECKF(purges <= bound, "teardown: %zu purge calls for %zu MiB of slabs freed (at most %zu)", purges, freed / MB,
         bound);
  return NULL;
}

static void *reuse_body(void *arg) {
  (void)arg;
  size_t n = HEAP / 4 / OBJECT;
  static void *again[HEAP / 4 / OBJECT];
  for (size_t i = 0; i < n; i++) {
    again[i] = corona_malloc(OBJECT);
    if (!CHECKF(again[i] != NULL, "reuse: malloc failed at object %zu", i)) return NULL;
    tu_fill(again[i], OBJECT, 7 + i);
  }
  for (size_t i = 0; i < n; i++) {
    CHECK_PATTERN(again[i], OBJECT, 7 + i);
    corona_free(again[i]);
  }
  return NULL;
}

int main(void) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  corona_collect();
  fakeos_stats_t base, end;
  fakeos_stats(&base);
  run_in_thread(small_body);
  run_in_thread(teardown_body);
  run_in_thread(reuse_body);
  for (size_t i = 0; i < HEAP / OBJECT; i += KEEP_EVERY) {
    if (objects[i] == NULL) continue;
    CHECK_PATTERN(objects[i], OBJECT, 1 + i);
    corona_free(objects[i]);
  }
  corona_collect();
  fakeos_stats(&end);
  printf("    reuse: %zu bytes in %zu mappings after collect (%zu in %zu before)\n", end.mapped, end.mappings,
         base.mapped, base.mappings);
  CHECKF(end.mapped == base.mapped && end.mappings == base.mappings,
         "reuse: %zu bytes in %zu mappings still mapped after corona_collect (%zu in %zu before)", end.mapped,
         end.mappings, base.mapped, base.mappings);
  return tu_finish("test_slab_purge", t0);
}
