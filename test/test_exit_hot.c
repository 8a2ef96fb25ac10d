/* test_exit_hot.c — nothing is lost when a thread exits holding objects it
 * freed for others.  A thread that frees another thread's object keeps it on
 * its own bin list for its next allocation in that class ("hot"); if it
 * exits first, those objects must go home.  The pattern of a thread pool
 * whose workers free what others allocated: the main thread allocates 128
 * objects of each of 64, 208 and 1024 B; a worker allocates 4000 B (so it
 * has bins, but no active block in those classes), frees the main thread's
 * objects and its own, and exits.  After many rounds and corona_collect,
 * memory in use must be back where it started, not grow with every round.
 * The same through a user pool, whose per-thread structs are torn down by
 * their own exit hook: the pool's memory must not keep growing. */
#define _GNU_SOURCE
#include <pthread.h>

#include "corona.h"
#include "testutil.h"

#define ROUNDS 300
#define PER_SIZE 128
static const size_t sizes[] = {64, 208, 1024};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void *objs[NSIZES * PER_SIZE];
static corona_pool *pool; /* NULL: the default heap */

static void *alloc(size_t n) { return pool ? corona_pool_malloc(pool, n) : corona_malloc(n); }
static void release(void *p) {
  if (pool) corona_pool_free(pool, p);
  else corona_free(p);
}

static void *worker(void *arg) {
  (void)arg;
  void *own = alloc(4000);
  CHECK(own != NULL);
  tu_fill(own, 4000, 77);
  for (size_t i = 0; i < NSIZES * PER_SIZE; i++) {
    size_t size = sizes[i / PER_SIZE];
    CHECK_PATTERN(objs[i], size, (uint64_t)(uintptr_t)objs[i]);
    release(objs[i]);
  }
  CHECK_PATTERN(own, 4000, 77);
  release(own);
  return NULL; /* exit: the freed objects sit on this thread's bin lists */
}

static void one_round(void) {
  for (size_t i = 0; i < NSIZES * PER_SIZE; i++) {
    size_t size = sizes[i / PER_SIZE];
    objs[i] = alloc(size);
    if (!CHECK(objs[i] != NULL)) abort();
    tu_fill(objs[i], size, (uint64_t)(uintptr_t)objs[i]);
  }
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
}

static uint64_t in_use(void) {
  corona_collect();
  corona_stats s;
  corona_stats_get(&s);
  return s.memory_in_use;
}

/* ---- user pool: counts what it asked its source for ---------------------- */
static atomic_size_t raw_bytes;
static void *raw_alloc(intptr_t id, size_t *bytes) {
  (void)id;
  atomic_fetch_add(&raw_bytes, *bytes);
  return malloc(*bytes);
}
static int raw_free(intptr_t id, void *p, size_t bytes) {
  (void)id;
  atomic_fetch_sub(&raw_bytes, bytes);
  free(p);
  return 0;
}

int main(void) {
  double t0 = tu_now();
  corona_stats s;
  if (corona_stats_get(&s) != 0) {
    printf("test_exit_hot: SKIP (built without statistics)\n");
    return 77;
  }
  one_round(); /* warm up: the main thread's blocks, TLS structs */
  uint64_t base = in_use();
  for (int r = 1; r < ROUNDS; r++) one_round();
  uint64_t after = in_use();
  printf("  default heap: memory in use %llu B before, %llu B after %d rounds\n", (unsigned long long)base,
         (unsigned long long)after, ROUNDS);
  CHECKF(after <= base + (64 << 10), "memory in use grew by %llu B: objects lost at thread exit",
         (unsigned long long)(after - base));

  corona_pool_policy policy = {.raw_alloc = raw_alloc, .raw_free = raw_free, .granularity = 1 << 20};
  CHECK(corona_pool_create(&policy, &pool) == 0);
  for (int r = 0; r < 10; r++) one_round();
  size_t pool_base = atomic_load(&raw_bytes);
  for (int r = 10; r < ROUNDS; r++) one_round();
  size_t pool_after = atomic_load(&raw_bytes);
  printf("  user pool: %zu B from its source after 10 rounds, %zu B after %d\n", pool_base, pool_after, ROUNDS);
  CHECKF(pool_after <= pool_base + (2 << 20), "the pool grew by %zu B: objects lost at thread exit",
         pool_after - pool_base);
  CHECK(corona_pool_destroy(pool) == 0);
  return tu_finish("test_exit_hot", t0);
}
