/* test_stress.c — multi-threaded stress: N threads (argv[1], default 4) each
 * run a number of operations (argv[2], default scaled by CRTEST_SCALE)
 * on a bounded set of live objects of random sizes (mostly small, some large
 * up to 256 KB, some calloc'd or over-aligned).  Every object is filled with
 * a pattern derived from its address and size.  A share of the objects is
 * handed to other threads through per-thread mutex-protected inboxes; the
 * receiver checks every byte, sometimes reallocs, and frees (remote frees).
 * Objects freed or realloc'd by their allocating thread are checked too.
 * Any mismatch fails the test (nonzero exit). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>

#include "corona.h"
#include "testutil.h"

#define MAX_THREADS 64
#define LIVE_SLOTS 512      /* live objects per thread */
#define INBOX_CAP 2048      /* objects waiting in one thread's inbox */
#define DRAIN_EVERY 64      /* ops between inbox drains */
#define MAX_SMALL 32704
#define MAX_LARGE (256 * 1024)

typedef struct {
  void *p;
  size_t size;
} obj_t;

typedef struct {
  pthread_mutex_t lock;
  obj_t buf[INBOX_CAP];
  size_t head, count;
} inbox_t;

typedef struct {
  int id;
  size_t ops;
  obj_t live[LIVE_SLOTS];
  obj_t drained[INBOX_CAP];
  /* statistics */
  size_t allocs, local_frees, sent, received, reallocs;
} worker_t;

static int nthreads;
static inbox_t inboxes[MAX_THREADS];
static worker_t workers[MAX_THREADS];
static pthread_barrier_t start_barrier;

static size_t random_size(tu_rng_t *r) {
  size_t c = tu_below(r, 1000);
  if (c < 500) return tu_range(r, 0, 128);
  if (c < 850) return tu_range(r, 129, 1024);
  if (c < 990) return tu_range(r, 1025, MAX_SMALL);
  return tu_range(r, MAX_SMALL + 1, MAX_LARGE);
}

/* Checks o and reports which path saw a mismatch. */
static void verify(const obj_t *o, const char *who, int tid) {
  if (!CHECK_PATTERN(o->p, o->size, tu_seed(o->p, o->size)))
    fprintf(stderr, "  (thread %d, %s, object %p size %zu)\n", tid, who, o->p, o->size);
}

static void new_object(tu_rng_t *r, obj_t *o) {
  size_t s = random_size(r);
  size_t kind = tu_below(r, 100);
  void *p;
  if (kind < 3) {
    p = corona_calloc(1, s);
    if (p) CHECKF(tu_first_nonzero(p, s) == (size_t)-1, "calloc(1, %zu) = %p not zeroed", s, p);
  } else if (kind < 5) {
    size_t align = (size_t)1 << tu_range(r, 5, 13);
    p = corona_aligned_malloc(s, align);
    if (p) CHECKF(tu_is_aligned(p, align), "aligned_malloc(%zu, %zu) = %p", s, align, p);
  } else {
    p = corona_malloc(s);
  }
  if (!CHECKF(p != NULL, "allocation of %zu bytes failed", s)) {
    o->p = NULL;
    o->size = 0;
    return;
  }
  CHECKF(tu_is_aligned(p, 16), "%p (size %zu) not 16-aligned", p, s);
  CHECKF(corona_usable_size(p) >= s, "usable %zu < %zu", corona_usable_size(p), s);
  tu_fill(p, s, tu_seed(p, s));
  o->p = p;
  o->size = s;
}

/* realloc o to a random size, checking the kept prefix; then re-pattern. */
static void realloc_object(tu_rng_t *r, obj_t *o, int tid) {
  size_t n = random_size(r);
  if (n == 0) n = 1;
  uint64_t old_seed = tu_seed(o->p, o->size);
  void *q = corona_realloc(o->p, n);
  if (!CHECKF(q != NULL, "realloc to %zu failed", n)) return; /* old object stays */
  size_t keep = o->size < n ? o->size : n;
  if (!CHECK_PATTERN(q, keep, old_seed))
    fprintf(stderr, "  (thread %d, realloc %p size %zu -> %p size %zu)\n", tid, o->p, o->size, q, n);
  CHECKF(corona_usable_size(q) >= n, "usable %zu < %zu after realloc", corona_usable_size(q), n);
  tu_fill(q, n, tu_seed(q, n));
  o->p = q;
  o->size = n;
}

static bool send_to(int target, const obj_t *o) {
  inbox_t *ib = &inboxes[target];
  bool ok = false;
  pthread_mutex_lock(&ib->lock);
  if (ib->count < INBOX_CAP) {
    ib->buf[(ib->head + ib->count) % INBOX_CAP] = *o;
    ib->count++;
    ok = true;
  }
  pthread_mutex_unlock(&ib->lock);
  return ok;
}

/* Moves the inbox of tid into out[]; returns how many. */
static size_t take_inbox(int tid, obj_t *out) {
  inbox_t *ib = &inboxes[tid];
  pthread_mutex_lock(&ib->lock);
  size_t n = ib->count;
  for (size_t i = 0; i < n; i++) out[i] = ib->buf[(ib->head + i) % INBOX_CAP];
  ib->head = (ib->head + n) % INBOX_CAP;
  ib->count = 0;
  pthread_mutex_unlock(&ib->lock);
  return n;
}

static void drain(worker_t *w, tu_rng_t *r) {
  size_t n = take_inbox(w->id, w->drained);
  for (size_t i = 0; i < n; i++) {
    obj_t *o = &w->drained[i];
    verify(o, "received", w->id);
    if (tu_below(r, 8) == 0) {
      realloc_object(r, o, w->id); /* realloc of another thread's object */
      verify(o, "received+realloc", w->id);
    }
    corona_free(o->p);
    w->received++;
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  tu_rng_t r;
  tu_rng_seed(&r, 1000 + (uint64_t)w->id);
  pthread_barrier_wait(&start_barrier);

  for (size_t op = 0; op < w->ops; op++) {
    obj_t *o = &w->live[tu_below(&r, LIVE_SLOTS)];
    if (o->p != NULL) {
      size_t what = tu_below(&r, 16);
      if (what < 5 && nthreads > 1) {
        int target = (int)tu_below(&r, (size_t)nthreads - 1);
        if (target >= w->id) target++;
        if (send_to(target, o)) {
          w->sent++;
        } else {
          verify(o, "local free (inbox full)", w->id);
          corona_free(o->p);
          w->local_frees++;
        }
      } else if (what < 7) {
        realloc_object(&r, o, w->id);
        w->reallocs++;
        continue; /* the slot stays occupied */
      } else {
        verify(o, "local free", w->id);
        corona_free(o->p);
        w->local_frees++;
      }
      o->p = NULL;
    }
    new_object(&r, o);
    w->allocs++;
    if (op % DRAIN_EVERY == 0) drain(w, &r);
  }

  for (size_t i = 0; i < LIVE_SLOTS; i++)
    if (w->live[i].p != NULL) {
      verify(&w->live[i], "final local free", w->id);
      corona_free(w->live[i].p);
      w->live[i].p = NULL;
    }
  drain(w, &r);
  return NULL;
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  nthreads = argc > 1 ? atoi(argv[1]) : 4;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
  size_t ops = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : tu_scaled(300000, 2000);

  pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads);
  pthread_t th[MAX_THREADS];
  for (int i = 0; i < nthreads; i++) {
    pthread_mutex_init(&inboxes[i].lock, NULL);
    workers[i].id = i;
    workers[i].ops = ops;
  }
  for (int i = 0; i < nthreads; i++) {
    int rc = pthread_create(&th[i], NULL, worker_main, &workers[i]);
    if (rc != 0) {
      fprintf(stderr, "pthread_create: %s\n", strerror(rc));
      return 2;
    }
  }
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);

  /* Objects sent to threads that had already finished: freed here, by a
   * thread that allocated none of them. */
  static obj_t rest[INBOX_CAP];
  size_t leftover = 0, allocs = 0, sent = 0, received = 0, reallocs = 0;
  for (int i = 0; i < nthreads; i++) {
    size_t n = take_inbox(i, rest);
    for (size_t k = 0; k < n; k++) {
      verify(&rest[k], "main drain", -1);
      corona_free(rest[k].p);
    }
    leftover += n;
    allocs += workers[i].allocs;
    sent += workers[i].sent;
    received += workers[i].received;
    reallocs += workers[i].reallocs;
    pthread_mutex_destroy(&inboxes[i].lock);
  }
  pthread_barrier_destroy(&start_barrier);
  CHECKF(received + leftover == sent, "sent %zu but received %zu + %zu", sent, received, leftover);
  printf("test_stress: %d threads x %zu ops: %zu allocs, %zu reallocs, %zu cross-thread (%zu freed by main)\n",
         nthreads, ops, allocs, reallocs, sent, leftover);
  return tu_finish("test_stress", t0);
}
