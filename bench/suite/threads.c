/* threads.c — thread churn: short-lived threads that allocate and exit.
 *
 * Pattern: a thread per task (or a pool that is resized all the time).
 * Each thread allocates 200 objects (16 .. 2048 B, one in 32 of 8 .. 64
 * KB), frees the half it allocated first, frees the objects that a thread
 * of the previous wave left behind, leaves its other half for a thread of
 * the next wave, and exits.  The threads run in waves of THREADS at a time.
 * This measures what an allocator spends to set up and tear down a
 * thread's heap and caches, and what it does with memory whose owner has
 * exited: objects freed after their thread is gone, blocks left partly
 * used.  Every object carries its id and a tag, checked before the free. */
#include "suite.h"

#define OBJS 200

typedef struct batch {
  size_t n;
  uint64_t *obj[OBJS];
} batch;

typedef struct job {
  uint64_t k;     /* thread number */
  batch **slot;   /* in: the previous wave's leftovers; out: ours */
  uint64_t sum;
} job;

static inline size_t obj_size(uint64_t id) {
  uint64_t h = mix64(id);
  return h % 32 == 0 ? 8192 + (size_t)((h >> 8) % (56 * 1024)) : 16 + (size_t)((h >> 8) % 2033);
}

static uint64_t drop(uint64_t *p) {
  uint64_t id = p[0];
  size_t n = obj_size(id);
  unsigned char last = ((unsigned char *)p)[n - 1];
  if (last != tag_byte(id, n - 1))
    suite_corrupt("threads", id, n - 1, last, tag_byte(id, n - 1));
  free(p);
  return id * 0x9e3779b97f4a7c15ull + last;
}

static uint64_t drop_batch(batch *b) {
  uint64_t sum = 0;
  if (b) {
    for (size_t i = 0; i < b->n; i++)
      sum += drop(b->obj[i]);
    free(b);
  }
  return sum;
}

static void *run(void *arg) {
  job *j = arg;
  uint64_t *mine[OBJS];
  for (size_t i = 0; i < OBJS; i++) {
    uint64_t id = j->k * OBJS + i;
    size_t n = obj_size(id);
    uint64_t *p = malloc(n);
    if (!p)
      suite_oom(n);
    p[0] = id;
    ((unsigned char *)p)[n - 1] = tag_byte(id, n - 1);
    mine[i] = p;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < OBJS / 2; i++)
    sum += drop(mine[i]);
  sum += drop_batch(*j->slot);
  batch *b = xmalloc(sizeof *b);
  b->n = 0;
  for (size_t i = OBJS / 2; i < OBJS; i++)
    b->obj[b->n++] = mine[i];
  *j->slot = b;
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-threads",
                            "thread churn: waves of short-lived threads that allocate, hand over, exit\n",
                            NULL);
  int t = a.threads;
  size_t total = (size_t)(3000 * a.scale);
  if (total < (size_t)t)
    total = (size_t)t;
  batch **slot = calloc((size_t)t, sizeof *slot);
  job *jobs = xmalloc((size_t)t * sizeof *jobs);
  pthread_t *tid = xmalloc((size_t)t * sizeof *tid);
  if (!slot)
    suite_oom((size_t)t * sizeof *slot);
  uint64_t sum = 0;
  for (size_t k0 = 0; k0 < total; k0 += (size_t)t) {
    int n = total - k0 < (size_t)t ? (int)(total - k0) : t;
    for (int i = 0; i < n; i++) {
      jobs[i] = (job){k0 + (size_t)i, &slot[i], 0};
      int err = pthread_create(&tid[i], NULL, run, &jobs[i]);
      if (err)
        suite_die("pthread_create: %s", strerror(err));
    }
    for (int i = 0; i < n; i++) {
      pthread_join(tid[i], NULL);
      sum += jobs[i].sum;
    }
  }
  for (int i = 0; i < t; i++)
    sum += drop_batch(slot[i]);
  free(tid);
  free(jobs);
  free(slot);
  suite_report("thread-churn", &a, sum, "");
  return 0;
}
