/* test_large_stress.c — multi-threaded stress of large objects.
 * Phase 1: 4 threads (argv[1]) each keep a few live objects of random large
 * sizes (8 KB .. 4 MB, log-uniform, and a few of 4 .. 12 MB so that own
 * mappings and mremap run too; some calloc'd, some over-aligned), fill
 * every byte with a pattern derived from the address, and on each operation
 * allocate, free, realloc (grow or shrink, prefix checked) or hand an object
 * to another thread through a mutex-protected inbox; the receiver checks
 * every byte and frees it (or reallocs first).  Meanwhile one thread calls
 * corona_collect and the others CORONA_CLEAN_THREAD_BUFFERS now and then,
 * so caches are flushed while other threads use them.
 * Phase 2: waves of short-lived threads; each wave checks and frees what the
 * previous one left behind, leaves its own objects, and exits with full
 * caches.
 * Every byte of every object is checked before it is freed or moved; live
 * objects of different threads overwriting each other show up as pattern
 * mismatches.  Work: argv[2] operations per thread, default scaled by
 * CRTEST_SCALE (sanitizer builds run less). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>

#include "corona.h"
#include "testutil.h"

#define MAX_THREADS 16
#define LIVE 6
#define INBOX_CAP 16
#define MIN_LARGE 8065
#define MAX_LARGE ((size_t)4 << 20)
#define MAX_HUGE ((size_t)12 << 20)

static size_t random_size(tu_rng_t *r) {
  if (tu_below(r, 100) < 3) return tu_range(r, MAX_LARGE, MAX_HUGE);
  return tu_log_range(r, MIN_LARGE, MAX_LARGE);
}

typedef struct {
  void *p;
  size_t size;
} obj_t;

typedef struct {
  pthread_mutex_t lock;
  obj_t buf[INBOX_CAP];
  size_t count;
} inbox_t;

typedef struct {
  int id;
  size_t ops;
  obj_t live[LIVE];
  size_t allocs, frees, sent, received, reallocs, collects;
} worker_t;

static int nthreads;
static inbox_t inboxes[MAX_THREADS];
static worker_t workers[MAX_THREADS];
static pthread_barrier_t barrier;

static void verify(const obj_t *o, const char *who, int tid) {
  if (!CHECK_PATTERN(o->p, o->size, tu_seed(o->p, o->size)))
    fprintf(stderr, "  (thread %d, %s, object %p size %zu)\n", tid, who, o->p, o->size);
}

static void fill(obj_t *o) { tu_fill(o->p, o->size, tu_seed(o->p, o->size)); }

static bool new_object(tu_rng_t *r, obj_t *o, int tid) {
  size_t s = random_size(r);
  size_t kind = tu_below(r, 100);
  void *p;
  if (kind < 8) {
    p = corona_calloc(1, s);
    if (p) CHECKF(tu_first_nonzero(p, s) == (size_t)-1, "thread %d: calloc(1, %zu) = %p not zeroed at %zu", tid, s,
                  p, tu_first_nonzero(p, s));
  } else if (kind < 14) {
    size_t align = (size_t)1 << tu_range(r, 12, 21);
    p = corona_aligned_malloc(s, align);
    if (p) CHECKF(tu_is_aligned(p, align), "thread %d: aligned_malloc(%zu, %zu) = %p", tid, s, align, p);
  } else {
    p = corona_malloc(s);
  }
  o->p = NULL;
  if (!CHECKF(p != NULL, "thread %d: allocation of %zu bytes failed (errno %d)", tid, s, errno)) return false;
  size_t u = corona_usable_size(p);
  CHECKF(u >= s, "thread %d: usable_size(%p) = %zu < %zu", tid, p, u, s);
  o->p = p;
  o->size = s;
  fill(o);
  return true;
}

/* Reallocs o to a random size (often near the old one, so in-place paths
 * run), checks the kept prefix and refills. */
static void realloc_object(tu_rng_t *r, obj_t *o, int tid) {
  verify(o, "before realloc", tid);
  size_t ns = tu_below(r, 2) ? random_size(r)
                             : o->size + tu_range(r, 0, 64 * 1024) - (o->size > 70000 ? 32 * 1024 : 0);
  if (tu_below(r, 16) == 0) ns = tu_range(r, 1, 8064); /* large -> small */
  void *q = corona_realloc(o->p, ns);
  if (!CHECKF(q != NULL, "thread %d: realloc(%p, %zu) failed", tid, o->p, ns)) return;
  size_t keep = o->size < ns ? o->size : ns;
  if (!CHECK_PATTERN(q, keep, tu_seed(o->p, o->size)))
    fprintf(stderr, "  (thread %d, realloc %p -> %p, %zu -> %zu)\n", tid, o->p, q, o->size, ns);
  o->p = q;
  o->size = ns;
  fill(o);
}

static void drain(worker_t *w, tu_rng_t *r) {
  obj_t got[INBOX_CAP];
  size_t n;
  inbox_t *in = &inboxes[w->id];
  pthread_mutex_lock(&in->lock);
  n = in->count;
  memcpy(got, in->buf, n * sizeof got[0]);
  in->count = 0;
  pthread_mutex_unlock(&in->lock);
  for (size_t i = 0; i < n; i++) {
    verify(&got[i], "received", w->id);
    if (tu_below(r, 4) == 0) {
      realloc_object(r, &got[i], w->id);
      w->reallocs++;
      verify(&got[i], "received + realloc", w->id);
    }
    corona_free(got[i].p);
    w->received++;
  }
}

static bool send(worker_t *w, int to, obj_t o) {
  inbox_t *in = &inboxes[to];
  bool ok = false;
  pthread_mutex_lock(&in->lock);
  if (in->count < INBOX_CAP) {
    in->buf[in->count++] = o;
    ok = true;
  }
  pthread_mutex_unlock(&in->lock);
  if (ok) w->sent++;
  return ok;
}

static void run_ops(worker_t *w, tu_rng_t *r, size_t ops) {
  for (size_t k = 0; k < ops; k++) {
    obj_t *o = &w->live[tu_below(r, LIVE)];
    if (o->p == NULL) {
      if (new_object(r, o, w->id)) w->allocs++;
    } else {
      size_t c = tu_below(r, 100);
      if (c < 45) {
        verify(o, "local free", w->id);
        corona_free(o->p);
        o->p = NULL;
        w->frees++;
      } else if (c < 75 && nthreads > 1) {
        int to = (int)tu_below(r, (size_t)nthreads - 1);
        if (to >= w->id) to++;
        verify(o, "send", w->id);
        if (send(w, to, *o)) {
          o->p = NULL;
        } else {
          corona_free(o->p);
          o->p = NULL;
          w->frees++;
        }
      } else {
        realloc_object(r, o, w->id);
        w->reallocs++;
      }
    }
    if (k % 8 == 7) drain(w, r);
    if (k % 97 == 96) {
      if (w->id == 0)
        corona_collect();
      else
        CHECK(corona_allocation_command(CORONA_CLEAN_THREAD_BUFFERS, NULL) == 0);
      w->collects++;
    }
  }
}

static void *phase1(void *arg) {
  worker_t *w = arg;
  tu_rng_t r;
  tu_rng_seed(&r, 1000 + (uint64_t)w->id);
  pthread_barrier_wait(&barrier);
  run_ops(w, &r, w->ops);
  /* Nobody sends any more once everyone is past this barrier. */
  pthread_barrier_wait(&barrier);
  drain(w, &r);
  for (int i = 0; i < LIVE; i++) {
    if (w->live[i].p == NULL) continue;
    verify(&w->live[i], "final", w->id);
    corona_free(w->live[i].p);
    w->live[i].p = NULL;
    w->frees++;
  }
  return NULL;
}

/* ---- phase 2: waves of short-lived threads --------------------------------------------- */
static obj_t left[MAX_THREADS][LIVE];

static void *phase2(void *arg) {
  worker_t *w = arg;
  tu_rng_t r;
  tu_rng_seed(&r, 5000 + (uint64_t)w->id * 31 + w->ops);
  /* Free what a thread of the previous wave left (another thread's objects). */
  int from = (w->id + 1) % nthreads;
  for (int i = 0; i < LIVE; i++) {
    if (left[from][i].p == NULL) continue;
    verify(&left[from][i], "left by previous wave", w->id);
    corona_free(left[from][i].p);
    left[from][i].p = NULL;
  }
  pthread_barrier_wait(&barrier); /* all of left[] is consumed */
  for (int i = 0; i < LIVE; i++) w->live[i].p = NULL;
  run_ops(w, &r, w->ops / 4);
  pthread_barrier_wait(&barrier);
  drain(w, &r);
  memcpy(left[w->id], w->live, sizeof w->live);
  return NULL; /* exits with objects alive and caches full */
}

static void start_all(void *(*fn)(void *), pthread_t *t) {
  for (int i = 0; i < nthreads; i++)
    if (pthread_create(&t[i], NULL, fn, &workers[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  nthreads = argc > 1 ? atoi(argv[1]) : 4;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
  size_t ops = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : tu_scaled(1500, 150);
  for (int i = 0; i < MAX_THREADS; i++) pthread_mutex_init(&inboxes[i].lock, NULL);
  pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
  pthread_t t[MAX_THREADS];

  for (int i = 0; i < nthreads; i++) {
    memset(&workers[i], 0, sizeof workers[i]);
    workers[i].id = i;
    workers[i].ops = ops;
  }
  double t1 = tu_now();
  start_all(phase1, t);
  size_t allocs = 0, frees = 0, sent = 0, received = 0, reallocs = 0;
  for (int i = 0; i < nthreads; i++) {
    allocs += workers[i].allocs;
    frees += workers[i].frees;
    sent += workers[i].sent;
    received += workers[i].received;
    reallocs += workers[i].reallocs;
  }
  CHECKF(sent == received, "phase 1: %zu objects sent, %zu received", sent, received);
  CHECKF(allocs == frees + received, "phase 1: %zu allocated, %zu freed locally + %zu remotely", allocs, frees,
         received);
  printf("  phase 1: %d threads x %zu ops: %zu allocs, %zu local frees, %zu handed over, %zu reallocs (%.2f s)\n",
         nthreads, ops, allocs, frees, sent, reallocs, tu_now() - t1);

  double t2 = tu_now();
  const int waves = 3;
  for (int wave = 0; wave < waves; wave++) {
    for (int i = 0; i < nthreads; i++) {
      int id = workers[i].id;
      memset(&workers[i], 0, sizeof workers[i]);
      workers[i].id = id;
      workers[i].ops = ops + (size_t)wave;
    }
    start_all(phase2, t);
  }
  for (int i = 0; i < nthreads; i++)
    for (int k = 0; k < LIVE; k++)
      if (left[i][k].p != NULL) {
        verify(&left[i][k], "left by last wave", -1);
        corona_free(left[i][k].p);
      }
  corona_collect();
  printf("  phase 2: %d waves of %d short-lived threads (%.2f s)\n", waves, nthreads, tu_now() - t2);
  pthread_barrier_destroy(&barrier);
  return tu_finish("test_large_stress", t0);
}
