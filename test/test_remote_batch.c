/* test_remote_batch.c — remote frees that a thread holds back (a chain per
 * class of objects of one block it does not own, published together) are
 * never lost, and come back intact.
 *   exit     a pipeline's last stage: a worker that never allocates frees
 *            the main thread's objects (its first free gives it a TLS) and
 *            exits while its chains still hold them; after many rounds and
 *            corona_collect, memory in use must not have grown.
 *   collect  a worker that stays alive frees the main thread's objects and
 *            calls corona_collect, which must publish its chains: the main
 *            thread's blocks then all come back empty, so a second batch as
 *            big as the first fits in the same blocks.  Each class fills two
 *            fresh blocks exactly (white box: the block and header sizes),
 *            so a block held back by the worker would leave no room.
 *   late     a worker that used corona frees the main thread's objects from
 *            a thread-specific destructor in its last round, after
 *            corona's own exit hook tore its TLS down: those frees must go
 *            out at once (a TLS made then would never be torn down, and
 *            what it held back would be lost); memory in use must not grow.
 * Every object carries a pattern from its address, checked by the worker
 * before its free and by the main thread when it gets memory back. */
#define _GNU_SOURCE
#include <limits.h> /* PTHREAD_DESTRUCTOR_ITERATIONS */
#include <pthread.h>
#include <sched.h>

#include "corona.h"
#include "internal/config.h"
#include "testutil.h"

#define ROUNDS 200
static const size_t sizes[] = {16, 96, 512, 1024}; /* size classes */
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define SLAB ((uintptr_t)CORONA_SLAB_SIZE)
/* Two blocks' worth of each class, the most of all. */
#define BLOCK_OBJECTS(size) ((CORONA_SLAB_SIZE - CORONA_BLOCK_HEADER) / (size))
#define MAX_OBJS (NSIZES * 2 * BLOCK_OBJECTS(16))

static void *objs[MAX_OBJS];
static size_t objsize[MAX_OBJS];
static size_t nobjs;

static void fill_all(void) {
  nobjs = 0;
  for (size_t c = 0; c < NSIZES; c++) {
    for (size_t k = 0; k < 2 * BLOCK_OBJECTS(sizes[c]); k++, nobjs++) {
      objsize[nobjs] = sizes[c];
      objs[nobjs] = corona_malloc(sizes[c]);
      if (!CHECK(objs[nobjs] != NULL)) abort();
      tu_fill(objs[nobjs], sizes[c], (uint64_t)(uintptr_t)objs[nobjs]);
    }
  }
}

static void free_all(void) {
  for (size_t i = 0; i < nobjs; i++) {
    CHECK_PATTERN(objs[i], objsize[i], (uint64_t)(uintptr_t)objs[i]);
    corona_free(objs[i]);
  }
}

static void *last_stage(void *arg) {
  (void)arg;
  free_all(); /* no malloc in this thread, before or after */
  return NULL;
}

/* ---- late: frees in the last round of thread-specific destructors -------- */
static pthread_key_t late_key;

static void late_destructor(void *value) {
  uintptr_t round = (uintptr_t)value;
  if (round < PTHREAD_DESTRUCTOR_ITERATIONS) { /* again in the next round */
    pthread_setspecific(late_key, (void *)(round + 1));
    return;
  }
  free_all();
}

static void *late_stage(void *arg) {
  (void)arg;
  void *own = corona_malloc(100); /* a TLS, torn down by corona's hook in round 1 */
  CHECK(own != NULL);
  corona_free(own);
  pthread_setspecific(late_key, (void *)(uintptr_t)1);
  return NULL;
}

static uint64_t in_use(void) {
  corona_collect();
  corona_stats s;
  corona_stats_get(&s);
  return s.memory_in_use;
}

static void test_exit(void) {
  fill_all();
  pthread_t t;
  pthread_create(&t, NULL, last_stage, NULL);
  pthread_join(t, NULL);
  uint64_t base = in_use();
  for (int r = 0; r < ROUNDS; r++) {
    fill_all();
    pthread_create(&t, NULL, last_stage, NULL);
    pthread_join(t, NULL);
  }
  uint64_t after = in_use();
  printf("  exit: memory in use %llu B before, %llu B after %d rounds\n", (unsigned long long)base,
         (unsigned long long)after, ROUNDS);
  /* Lost chains would keep about one block per class a round. */
  CHECKF(after <= base + (64 << 10), "memory in use grew by %llu B: held remote frees lost at thread exit",
         (unsigned long long)(after - base));
}

static void test_late(void) {
  CHECK(pthread_key_create(&late_key, late_destructor) == 0);
  pthread_t t;
  fill_all();
  pthread_create(&t, NULL, late_stage, NULL);
  pthread_join(t, NULL);
  uint64_t base = in_use();
  for (int r = 0; r < ROUNDS; r++) {
    fill_all();
    pthread_create(&t, NULL, late_stage, NULL);
    pthread_join(t, NULL);
  }
  uint64_t after = in_use();
  printf("  late: memory in use %llu B before, %llu B after %d rounds\n", (unsigned long long)base,
         (unsigned long long)after, ROUNDS);
  CHECKF(after <= base + (64 << 10), "memory in use grew by %llu B: frees after the TLS's teardown held back",
         (unsigned long long)(after - base));
}

/* ---- collect: a worker that stays alive ----------------------------------- */
static atomic_int phase; /* 1: worker frees and collects; 2: done; 3: worker exits */

static void *living_stage(void *arg) {
  (void)arg;
  void *own = corona_malloc(4000); /* a TLS of its own, as any worker has */
  CHECK(own != NULL);
  while (atomic_load(&phase) != 1) sched_yield();
  free_all();
  corona_collect();
  atomic_store(&phase, 2);
  while (atomic_load(&phase) != 3) sched_yield();
  corona_free(own);
  return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Whether the block of p is one of the n sorted blocks. */
static bool known_block(const uintptr_t *blocks, size_t n, const void *p) {
  uintptr_t b = (uintptr_t)p & ~(SLAB - 1);
  return bsearch(&b, blocks, n, sizeof b, cmp_ptr) != NULL;
}

static void test_collect(void) {
  static uintptr_t blocks[MAX_OBJS];
  pthread_t t;
  atomic_store(&phase, 0);
  pthread_create(&t, NULL, living_stage, NULL);
  corona_collect(); /* the main thread's blocks from test_exit go: fresh ones for this batch */
  fill_all();
  size_t n = nobjs;
  for (size_t i = 0; i < n; i++) blocks[i] = (uintptr_t)objs[i] & ~(SLAB - 1);
  qsort(blocks, n, sizeof blocks[0], cmp_ptr);
  atomic_store(&phase, 1);
  while (atomic_load(&phase) != 2) sched_yield();
  /* The worker is alive and idle: only its corona_collect can have sent
   * back what it held.  The same batch again must fit in the same blocks
   * (each came back whole, so each serves its class or another again). */
  fill_all();
  size_t outside = 0;
  for (size_t i = 0; i < nobjs; i++) outside += !known_block(blocks, n, objs[i]);
  printf("  collect: %zu of %zu objects outside the first batch's blocks\n", outside, nobjs);
  CHECKF(outside == 0, "%zu objects needed new blocks: the idle worker's corona_collect kept remote frees",
         outside);
  for (size_t i = 0; i < nobjs; i++) {
    CHECK_PATTERN(objs[i], objsize[i], (uint64_t)(uintptr_t)objs[i]);
    corona_free(objs[i]);
  }
  atomic_store(&phase, 3);
  pthread_join(t, NULL);
}

int main(void) {
  double t0 = tu_now();
  corona_stats s;
  if (corona_stats_get(&s) != 0) {
    printf("test_remote_batch: SKIP (built without statistics)\n");
    return 77;
  }
  /* ThreadSanitizer's own thread-exit handling is gone by the later rounds
   * of thread-specific destructors, and it faults there. */
  if (TU_TSAN) printf("  late: skipped under ThreadSanitizer (its thread state is gone by the last round)\n");
  test_exit();
  if (!TU_TSAN) test_late();
  test_collect();
  return tu_finish("test_remote_batch", t0);
}
