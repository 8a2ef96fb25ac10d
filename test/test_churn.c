/* test_churn.c — thread churn: waves of short-lived threads (default 40
 * waves x 8 threads, scaled by CRTEST_SCALE or argv[1] waves) that
 * allocate objects of various sizes (some large), fill them with an
 * address-derived pattern and exit while most of their objects are still
 * live.  Part goes to a long-lived consumer thread (which frees them while
 * or after their allocator exits), part stays in a shared array: after the
 * wave is joined, main frees half of it and the next wave's threads free the
 * rest while they allocate the same sizes (remote frees into orphaned
 * blocks, adoption of orphans).  Other threads only allocate and free
 * locally and exit; "tiny" threads leave 1-3 objects behind.  Every object's
 * every byte is checked before it is freed. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "corona.h"
#include "testutil.h"

#define WAVE_THREADS 8
#define OBJS 250             /* objects per producer thread */
#define QUEUE_CAP 4096       /* consumer queue */
#define MAX_SMALL 32704

typedef struct {
  void *p;
  size_t size;
} obj_t;

/* handoff[w % 2][i]: what thread i of wave w left behind. */
typedef struct {
  obj_t objs[OBJS];
  size_t count;
} handoff_t;
static handoff_t handoff[2][WAVE_THREADS];

/* The consumer queue. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  obj_t buf[QUEUE_CAP];
  size_t head, count;
  bool done;
  size_t pushed, consumed;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, false, 0, 0};

typedef struct {
  int wave, index;
} targ_t;

static atomic_size_t total_allocs;

static size_t random_size(tu_rng_t *r) {
  size_t c = tu_below(r, 100);
  if (c < 70) return tu_range(r, 1, 512);
  if (c < 95) return tu_range(r, 513, MAX_SMALL);
  return tu_range(r, MAX_SMALL + 1, 128 * 1024);
}

static void verify_free(obj_t *o, const char *who) {
  if (!CHECK_PATTERN(o->p, o->size, tu_seed(o->p, o->size)))
    fprintf(stderr, "  (%s: object %p size %zu)\n", who, o->p, o->size);
  corona_free(o->p);
  o->p = NULL;
}

static bool new_object(tu_rng_t *r, obj_t *o, size_t size) {
  void *p = tu_below(r, 10) == 0 ? corona_calloc(1, size) : corona_malloc(size);
  o->p = p;
  o->size = size;
  if (!CHECKF(p != NULL, "allocation of %zu bytes failed", size)) return false;
  CHECK(tu_is_aligned(p, 16));
  CHECKF(corona_usable_size(p) >= size, "usable %zu < %zu", corona_usable_size(p), size);
  tu_fill(p, size, tu_seed(p, size));
  atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
  return true;
}

static void push_consumer(const obj_t *o) {
  pthread_mutex_lock(&queue.lock);
  while (queue.count == QUEUE_CAP) pthread_cond_wait(&queue.not_full, &queue.lock);
  queue.buf[(queue.head + queue.count) % QUEUE_CAP] = *o;
  queue.count++;
  queue.pushed++;
  pthread_cond_signal(&queue.not_empty);
  pthread_mutex_unlock(&queue.lock);
}

static void *consumer_main(void *arg) {
  (void)arg;
  static obj_t batch[QUEUE_CAP];
  for (;;) {
    pthread_mutex_lock(&queue.lock);
    while (queue.count == 0 && !queue.done) pthread_cond_wait(&queue.not_empty, &queue.lock);
    size_t n = queue.count;
    if (n == 0 && queue.done) {
      pthread_mutex_unlock(&queue.lock);
      return NULL;
    }
    for (size_t i = 0; i < n; i++) batch[i] = queue.buf[(queue.head + i) % QUEUE_CAP];
    queue.head = (queue.head + n) % QUEUE_CAP;
    queue.count = 0;
    pthread_cond_broadcast(&queue.not_full);
    pthread_mutex_unlock(&queue.lock);
    for (size_t i = 0; i < n; i++) verify_free(&batch[i], "consumer");
    pthread_mutex_lock(&queue.lock);
    queue.consumed += n;
    pthread_mutex_unlock(&queue.lock);
  }
}

/* Frees (after checking) what the previous wave's thread of this index left
 * and main did not free; that thread has exited. */
static void free_previous(handoff_t *prev) {
  for (size_t i = 0; i < prev->count; i++)
    if (prev->objs[i].p != NULL) verify_free(&prev->objs[i], "next wave");
  prev->count = 0;
}

static void producer(tu_rng_t *r, handoff_t *prev, handoff_t *cur) {
  obj_t mine[OBJS];
  /* Free half of the predecessor's leftovers, allocate, free the rest, so
   * both adoption and remote frees into adopted blocks happen. */
  size_t half = prev->count / 2;
  for (size_t i = 0; i < half; i++)
    if (prev->objs[i].p != NULL) verify_free(&prev->objs[i], "next wave");
  for (size_t i = 0; i < OBJS; i++) new_object(r, &mine[i], random_size(r));
  free_previous(prev);

  cur->count = 0;
  for (size_t i = 0; i < OBJS; i++) {
    if (mine[i].p == NULL) continue;
    size_t c = tu_below(r, 100);
    if (c < 15) {
      verify_free(&mine[i], "local");
    } else if (c < 50) {
      push_consumer(&mine[i]);
    } else {
      cur->objs[cur->count++] = mine[i];
    }
  }
}

/* Allocates and frees only locally, several rounds, then exits clean. */
static void local_only(tu_rng_t *r, handoff_t *prev, handoff_t *cur) {
  obj_t mine[OBJS];
  free_previous(prev);
  for (int round = 0; round < 4; round++) {
    size_t n = tu_range(r, 1, OBJS);
    /* A few fixed sizes per round, so blocks fill up and empty again. */
    size_t sizes[3] = {random_size(r), random_size(r), tu_range(r, 1, 64)};
    for (size_t i = 0; i < n; i++) new_object(r, &mine[i], sizes[i % 3]);
    for (size_t i = 0; i < n; i++)
      if (mine[i].p != NULL) verify_free(&mine[i], "local-only");
  }
  cur->count = 0;
}

/* Leaves 1-3 small objects behind: orphaned blocks with almost nothing in. */
static void tiny(tu_rng_t *r, handoff_t *prev, handoff_t *cur) {
  free_previous(prev);
  cur->count = 0;
  size_t n = tu_range(r, 1, 3);
  for (size_t i = 0; i < n; i++) {
    obj_t o;
    if (new_object(r, &o, tu_range(r, 1, 256))) cur->objs[cur->count++] = o;
  }
}

static void *wave_thread(void *arg) {
  const targ_t *a = arg;
  tu_rng_t r;
  tu_rng_seed(&r, (uint64_t)a->wave * 1000 + (uint64_t)a->index);
  handoff_t *prev = &handoff[(a->wave + 1) % 2][a->index];
  handoff_t *cur = &handoff[a->wave % 2][a->index];
  int role = a->index % 8;
  if (role <= 4)
    producer(&r, prev, cur);
  else if (role <= 6)
    local_only(&r, prev, cur);
  else
    tiny(&r, prev, cur);
  return NULL;
}

/* ---- hot objects of other threads go home --------------------------------
 * A thread allocates objects of 1000 B and exits; main frees them in random
 * order.  The first frees of a turn keep objects of the exited thread's
 * (orphaned) blocks on main's bin list for reuse (CORONA_HOT_OBJECTS);
 * corona_collect must send them home, or their blocks stay in use. */
#define HOME_OBJS 2000
static void *home_objs[HOME_OBJS];

static void *home_alloc(void *arg) {
  (void)arg;
  for (size_t i = 0; i < HOME_OBJS; i++) {
    home_objs[i] = corona_malloc(1000);
    if (home_objs[i] != NULL) memset(home_objs[i], (int)(i & 0xff), 1000);
  }
  return NULL;
}

/* Debug mode (MALLOC_DEBUG / CORONA_DEBUG, CORONA_ wins) holds freed
 * objects in its quarantine: the memory figures below do not apply. */
static bool debug_mode(void) {
  const char *v = getenv("CORONA_DEBUG");
  if (v == NULL) v = getenv("MALLOC_DEBUG");
  return v != NULL && strcmp(v, "0") != 0 && v[0] != '\0';
}

static void test_hot_home(tu_rng_t *r) {
  corona_stats st;
  if (debug_mode()) return;
  corona_collect();
  if (corona_stats_get(&st) != 0) return; /* built without statistics */
  uint64_t base = st.memory_in_use;
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, home_alloc, NULL) == 0)) return;
  pthread_join(t, NULL);
  for (size_t k = 0; k + 1 < HOME_OBJS; k++) { /* shuffle */
    size_t j = k + tu_below(r, HOME_OBJS - k);
    void *x = home_objs[k];
    home_objs[k] = home_objs[j];
    home_objs[j] = x;
  }
  for (size_t k = 0; k < HOME_OBJS; k++) {
    unsigned char *p = home_objs[k];
    if (!CHECK(p != NULL)) continue;
    CHECKF(p[0] == p[999], "hot home: object %p changed", (void *)p);
    corona_free(p);
  }
  corona_collect();
  CHECK(corona_stats_get(&st) == 0);
  printf("test_churn: hot objects home: %.0f KiB in use before, %.0f KiB after %d frees of an exited thread's "
         "objects and collect\n",
         (double)base / 1024.0, (double)st.memory_in_use / 1024.0, HOME_OBJS);
  CHECKF(st.memory_in_use <= base + 64 * 1024, "%zu bytes in use after collect, %zu before: blocks kept",
         (size_t)st.memory_in_use, (size_t)base);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  size_t waves = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : tu_scaled(40, 4);
  if (waves < 1) waves = 1;

  pthread_t consumer;
  if (pthread_create(&consumer, NULL, consumer_main, NULL) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    return 2;
  }

  tu_rng_t r;
  tu_rng_seed(&r, 7);
  size_t threads = 0, main_freed = 0;
  for (size_t w = 0; w < waves; w++) {
    pthread_t th[WAVE_THREADS];
    targ_t args[WAVE_THREADS];
    for (int i = 0; i < WAVE_THREADS; i++) {
      args[i].wave = (int)w;
      args[i].index = i;
      if (pthread_create(&th[i], NULL, wave_thread, &args[i]) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 2;
      }
      threads++;
    }
    for (int i = 0; i < WAVE_THREADS; i++) pthread_join(th[i], NULL);

    /* main: a long-lived thread freeing a random half of each exited
     * thread's leftovers (remote frees into orphaned blocks). */
    for (int i = 0; i < WAVE_THREADS; i++) {
      handoff_t *h = &handoff[w % 2][i];
      size_t n = h->count;
      for (size_t k = 0; k + 1 < n; k++) { /* shuffle */
        size_t j = k + tu_below(&r, n - k);
        obj_t t = h->objs[k];
        h->objs[k] = h->objs[j];
        h->objs[j] = t;
      }
      size_t keep = 0;
      for (size_t k = 0; k < n; k++) {
        if (k < n / 2) {
          verify_free(&h->objs[k], "main");
          main_freed++;
        } else {
          h->objs[keep++] = h->objs[k];
        }
      }
      h->count = keep;
    }
  }
  /* The last wave's leftovers. */
  for (int i = 0; i < WAVE_THREADS; i++) free_previous(&handoff[(waves - 1) % 2][i]);

  pthread_mutex_lock(&queue.lock);
  queue.done = true;
  pthread_cond_broadcast(&queue.not_empty);
  pthread_mutex_unlock(&queue.lock);
  pthread_join(consumer, NULL);
  CHECKF(queue.consumed == queue.pushed, "consumer freed %zu of %zu", queue.consumed, queue.pushed);

  /* The allocator still works for main after all this. */
  for (size_t s = 1; s <= 100000; s = s * 3 + 1) {
    obj_t o;
    if (new_object(&r, &o, s)) verify_free(&o, "main final");
  }

  test_hot_home(&r);

  /* Every thread but main has exited, every object is freed: once main's
   * caches are flushed, only main's active blocks may stay in use.  Objects
   * of other threads that frees kept for reuse (CORONA_HOT_OBJECTS) must
   * have gone home -- at the exits, and main's at the collect -- or their
   * blocks would stay in use. */
  corona_collect();
  corona_stats st;
  if (!debug_mode() && corona_stats_get(&st) == 0) {
    printf("test_churn: after collect, %.2f MiB in use (peak %.1f MiB)\n", (double)st.memory_in_use / 1048576.0,
           (double)st.peak_memory_in_use / 1048576.0);
    CHECKF(st.memory_in_use <= 2 * 1048576, "%zu bytes still in use after every object was freed and collect",
           (size_t)st.memory_in_use);
  }
  printf("test_churn: %zu waves, %zu threads, %zu objects, %zu via consumer, %zu freed by main\n", waves, threads,
         atomic_load(&total_allocs), queue.pushed, main_freed);
  return tu_finish("test_churn", t0);
}
