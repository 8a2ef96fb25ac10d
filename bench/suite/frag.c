/* frag.c — fragmentation: peak RSS against live bytes.
 *
 * Pattern: a program loads a big data set of small records (a cache, a
 * parsed document), drops most of it, then builds something else out of
 * objects of other sizes.  Phase 1 allocates small objects (16 .. 256 B)
 * until it holds 128 MB (at scale 1); phase 2 frees a random 90 % of them,
 * so a survivor sits on nearly every page; phase 3 allocates the same
 * number of bytes again in objects of 257 .. 4096 B.  The live bytes never
 * exceed those of phase 1, but an allocator that cannot reuse the pages
 * emptied in phase 2 for the new sizes needs nearly twice the memory.
 * scripts/bench reports the process's peak RSS beside live_peak_kb, the
 * peak of the bytes requested and not yet freed, the workload's own arrays
 * of pointers included (exact: the threads meet
 * at a barrier after each phase, and within a phase a thread's live bytes
 * only grow or only shrink).  Every object carries its id and a tag,
 * checked before its free.
 * Threads: the bytes are split among the threads, each with its own
 * objects. */
#include "suite.h"

#define MB ((size_t)1024 * 1024)

typedef struct job {
  int index;
  size_t bytes; /* this thread's phase-1 bytes */
  size_t live1, live3;
  uint64_t sum;
} job;

static pthread_barrier_t barrier;

typedef struct objv {
  uint64_t **p;
  size_t n, cap;
} objv;

static void push(objv *v, uint64_t *p) {
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 1024;
    uint64_t **n = realloc(v->p, v->cap * sizeof *n);
    if (!n)
      suite_oom(v->cap * sizeof *n);
    v->p = n;
  }
  v->p[v->n++] = p;
}

static uint64_t *make(uint64_t id, size_t n) {
  uint64_t *p = malloc(n);
  if (!p)
    suite_oom(n);
  p[0] = id << 13 | n; /* id and size (<= 4096); the last byte is a tag */
  ((unsigned char *)p)[n - 1] = tag_byte(id, n - 1);
  return p;
}

static uint64_t drop(uint64_t *p, size_t *live) {
  uint64_t id = p[0] >> 13;
  size_t n = (size_t)(p[0] & 8191);
  unsigned char last = ((unsigned char *)p)[n - 1];
  if (n < 16 || n > 4096 || last != tag_byte(id, n - 1))
    suite_corrupt("frag", id, n - 1, last, tag_byte(id, n - 1));
  *live -= n;
  free(p);
  return id * 0x9e3779b97f4a7c15ull + n + last;
}

static void *run(void *arg) {
  job *j = arg;
  rng_t g = rng_make(0xf4a90000 + (uint64_t)j->index);
  uint64_t base = (uint64_t)j->index << 40, sum = 0;
  objv v = {0}, w = {0};
  size_t live = 0;

  /* phase 1: small objects up to the thread's share */
  while (live < j->bytes) {
    size_t n = rng_between(&g, 16, 256);
    push(&v, make(base + v.n, n));
    live += n;
  }
  size_t freed = 0;
  j->live1 = live + v.cap * sizeof *v.p; /* the pointer arrays count too */
  pthread_barrier_wait(&barrier);

  /* phase 2: free 90 %, at random */
  for (size_t i = 0; i < v.n; i++) {
    if (rng_u64(&g) % 10 != 0) {
      size_t before = live;
      sum += drop(v.p[i], &live);
      freed += before - live;
      v.p[i] = NULL;
    }
  }
  pthread_barrier_wait(&barrier);

  /* phase 3: as many bytes again, in other sizes */
  size_t again = 0;
  while (again < freed) {
    size_t n = rng_between(&g, 257, 4096);
    push(&w, make(base + ((uint64_t)1 << 39) + w.n, n));
    live += n;
    again += n;
  }
  j->live3 = live + (v.cap + w.cap) * sizeof *v.p;
  pthread_barrier_wait(&barrier);

  for (size_t i = 0; i < v.n; i++)
    if (v.p[i])
      sum += drop(v.p[i], &live);
  for (size_t i = 0; i < w.n; i++)
    sum += drop(w.p[i], &live);
  free(v.p);
  free(w.p);
  if (live != 0)
    suite_die("frag: %zu live bytes left after freeing everything", live);
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-frag",
                            "fragmentation: many small objects, 90 % freed, then other sizes\n",
                            NULL);
  size_t total = (size_t)(128.0 * (double)MB * a.scale);
  job *jobs = xmalloc((size_t)a.threads * sizeof *jobs);
  for (int i = 0; i < a.threads; i++)
    jobs[i] = (job){i, share_begin(total, a.threads, i + 1) - share_begin(total, a.threads, i), 0, 0, 0};
  int err = pthread_barrier_init(&barrier, NULL, (unsigned)a.threads);
  if (err)
    suite_die("pthread_barrier_init: %s", strerror(err));
  suite_run_threads(a.threads, run, jobs, sizeof *jobs);
  pthread_barrier_destroy(&barrier);
  uint64_t sum = 0;
  size_t live1 = 0, live3 = 0;
  for (int i = 0; i < a.threads; i++) {
    sum += jobs[i].sum;
    live1 += jobs[i].live1;
    live3 += jobs[i].live3;
  }
  free(jobs);
  char extra[64];
  snprintf(extra, sizeof extra, "live_peak_kb=%zu", (live1 > live3 ? live1 : live3) / 1024);
  suite_report("frag", &a, sum, extra);
  return 0;
}
