/* server.c — a server simulation where threads own sets of live objects and
 * hand whole sets to one another.
 *
 * Pattern: each thread owns some connections (here, sets of 128 live
 * objects); handling a request replaces a random object of a set (a local
 * free and a new allocation: random lifetimes).  After a visit of VISIT
 * requests the set is handed to another thread, chosen at random, through
 * that thread's inbox (a lock-free stack taken whole); the receiver frees
 * every object of the set, which the sender allocated (remote frees), and
 * allocates replacements before it serves the set in its turn.  So memory
 * flows both ways between every pair of threads, live sets stay large, and
 * an allocator pays both for remote frees and for memory that sits in a
 * thread other than the one that needs it.
 * Modes:
 *   small  sizes 8 .. 1000 B uniform; a visit is 128 requests, so half the
 *          frees are remote
 *   mixed  sizes 8 .. 16000 B uniform (about half of them above 8 KB); a
 *          visit is 384 requests, so a quarter of the frees are remote
 * small: 16 sets per thread, 4 M requests at scale 1; mixed: 4 sets per
 * thread (as many bytes live), 1 M requests.  The requests are split among
 * the sets.  Each
 * set has its own random-number stream and a fixed number of visits, so
 * the work and the checksum do not depend on which thread serves which
 * set.  Every object carries its id at its start and a tag byte at its end,
 * checked before its free.  One thread: the sets come back to it. */
#include "suite.h"

#define SLOTS 128

typedef struct set {
  struct set *next;      /* inbox link */
  rng_t g;
  size_t left;           /* requests still to run */
  uint64_t next_id, sum;
  uint64_t *slot[SLOTS];
} set;

typedef struct worker {
  _Alignas(64) _Atomic(set *) inbox; /* pushed by any thread, taken whole by the owner */
  _Alignas(64) int k;
} worker;

static struct {
  size_t max_size, visit;
  int threads;
  size_t nsets;
  worker *w;
  _Alignas(64) atomic_size_t done; /* sets finished */
} g;

static inline size_t obj_size(uint64_t id) { return 8 + (size_t)(mix64(id) % (g.max_size - 7)); }

static uint64_t *make(set *s) {
  uint64_t id = s->next_id++;
  return suite_tagged_new(id, id, obj_size(id));
}

static void drop(set *s, uint64_t *p) {
  uint64_t id = p[0];
  unsigned char last = suite_tagged_free(p, id, id, obj_size(id), "server");
  s->sum += id * 0x9e3779b97f4a7c15ull + last;
}

/* A set arrives (or opens): what the sender allocated is freed here, and
 * replaced by this thread's own objects. */
static void receive(set *s) {
  for (size_t k = 0; k < SLOTS; k++) {
    if (s->slot[k])
      drop(s, s->slot[k]);
    s->slot[k] = make(s);
  }
}

static void visit(set *s) {
  size_t n = s->left < g.visit ? s->left : g.visit;
  for (size_t i = 0; i < n; i++) {
    size_t k = (size_t)(rng_u64(&s->g) % SLOTS);
    drop(s, s->slot[k]);
    s->slot[k] = make(s);
  }
  s->left -= n;
}

static void send(set *s, int from) {
  int to = from;
  if (g.threads > 1) /* another thread, from the set's own stream */
    to = (from + 1 + (int)(rng_u64(&s->g) % (uint64_t)(g.threads - 1))) % g.threads;
  _Atomic(set *) *head = &g.w[to].inbox;
  set *old = atomic_load_explicit(head, memory_order_relaxed);
  do
    s->next = old;
  while (!atomic_compare_exchange_weak_explicit(head, &old, s, memory_order_release, memory_order_relaxed));
}

static void *run(void *arg) {
  worker *w = arg;
  set *mine = NULL; /* received, to serve (LIFO) */
  unsigned spins = 0;
  for (;;) {
    if (!mine) {
      set *in = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
      for (set *s = in, *next; s; s = next) {
        next = s->next;
        receive(s);
        s->next = mine;
        mine = s;
      }
    }
    if (!mine) {
      if (atomic_load_explicit(&g.done, memory_order_acquire) == g.nsets)
        return NULL;
      backoff(&spins);
      continue;
    }
    spins = 0;
    set *s = mine;
    mine = s->next;
    visit(s);
    if (s->left == 0) { /* the connection closes */
      for (size_t k = 0; k < SLOTS; k++)
        drop(s, s->slot[k]);
      atomic_fetch_add_explicit(&g.done, 1, memory_order_release);
    } else {
      send(s, w->k);
    }
  }
}

int main(int argc, char **argv) {
  static const char *const modes[] = {"small", "mixed", NULL};
  suite_args a = suite_init(argc, argv, "suite-server",
                            "server simulation: threads own sets of live objects and hand them to each other\n",
                            modes);
  int mixed = strcmp(a.mode, "mixed") == 0;
  g.max_size = mixed ? 16000 : 1000;
  g.visit = mixed ? 3 * SLOTS : SLOTS;
  g.threads = a.threads;
  g.nsets = (size_t)a.threads * (mixed ? 4 : 16);
  size_t total = (size_t)((mixed ? 1e6 : 4e6) * a.scale);
  set *sets = xmalloc(g.nsets * sizeof *sets);
  g.w = aligned_alloc(64, (size_t)a.threads * sizeof *g.w);
  if (!g.w)
    suite_oom((size_t)a.threads * sizeof *g.w);
  for (int i = 0; i < a.threads; i++) {
    atomic_init(&g.w[i].inbox, NULL);
    g.w[i].k = i;
  }
  atomic_init(&g.done, 0);
  /* Sets start in the inboxes, dealt round the threads; their first
   * receive allocates them. */
  for (size_t i = 0; i < g.nsets; i++) {
    set *s = &sets[i];
    memset(s, 0, sizeof *s);
    s->g = rng_make(0x5e7e0000 + i);
    s->left = share_begin(total, (int)g.nsets, (int)i + 1) - share_begin(total, (int)g.nsets, (int)i);
    if (s->left == 0)
      s->left = 1;
    s->next_id = (uint64_t)i << 40;
    worker *w = &g.w[i % (size_t)a.threads];
    s->next = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    atomic_store_explicit(&w->inbox, s, memory_order_relaxed);
  }
  suite_run_threads(a.threads, run, g.w, sizeof *g.w);
  uint64_t sum = 0;
  for (size_t i = 0; i < g.nsets; i++)
    sum += sets[i].sum;
  free(g.w);
  free(sets);
  char extra[32];
  snprintf(extra, sizeof extra, "mode=%s", a.mode);
  suite_report("server", &a, sum, extra);
  return 0;
}
