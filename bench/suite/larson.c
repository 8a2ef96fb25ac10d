/* larson.c — a server simulation (after Larson and Krishnan's benchmark).
 *
 * Pattern: a server keeps per-connection state (here, a session: an array
 * of 256 live objects of 16 .. 1024 B).  Worker threads take whichever
 * session is ready, handle a chunk of its requests (each request frees a
 * random object of the session and allocates a new one of a random size:
 * random lifetimes), and put the session back on a shared queue, so the
 * next chunk usually runs on another thread.  Objects are thus allocated by
 * one thread and freed by another at random later times, with a large,
 * steadily churning live set: the case that makes per-thread heaps hand
 * memory back and forth, and that punishes allocators which strand memory
 * in the heap of the thread that happened to allocate it.
 * 128 sessions (or 2 per thread when there are more than 64 threads), each
 * with its own random-number stream, so the work and the checksum do not
 * depend on which thread runs what.  Every object carries its id at the
 * start and a tag at the end, checked before its free. */
#include "suite.h"

#define SLOTS 256
#define CHUNK 1024 /* requests per visit */

typedef struct session {
  rng_t g;
  size_t left; /* requests still to run */
  uint64_t next_id, sum;
  uint64_t *slot[SLOTS];
} session;

static struct {
  pthread_mutex_t lock;
  size_t *queue; /* FIFO of ready sessions, capacity nsessions */
  size_t head, count, cap, done, nsessions;
  session *s;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline size_t obj_size(uint64_t id) { return 16 + (size_t)(mix64(id) % 1009); }

static uint64_t *make(session *s) {
  uint64_t id = s->next_id++;
  size_t n = obj_size(id);
  uint64_t *p = malloc(n);
  if (!p)
    suite_oom(n);
  p[0] = id;
  ((unsigned char *)p)[n - 1] = tag_byte(id, n - 1);
  return p;
}

static void drop(session *s, uint64_t *p) {
  uint64_t id = p[0];
  size_t n = obj_size(id);
  unsigned char last = ((unsigned char *)p)[n - 1];
  if (last != tag_byte(id, n - 1))
    suite_corrupt("larson", id, n - 1, last, tag_byte(id, n - 1));
  s->sum += id * 0x9e3779b97f4a7c15ull + last;
  free(p);
}

static void visit(session *s) {
  if (s->slot[0] == NULL) /* first visit: open the session */
    for (size_t k = 0; k < SLOTS; k++)
      s->slot[k] = make(s);
  size_t n = s->left < CHUNK ? s->left : CHUNK;
  for (size_t i = 0; i < n; i++) {
    size_t k = (size_t)(rng_u64(&s->g) % SLOTS);
    drop(s, s->slot[k]);
    s->slot[k] = make(s);
  }
  s->left -= n;
  if (s->left == 0) /* last visit: close it */
    for (size_t k = 0; k < SLOTS; k++)
      drop(s, s->slot[k]);
}

static void *run(void *arg) {
  (void)arg;
  unsigned spins = 0;
  for (;;) {
    pthread_mutex_lock(&g.lock);
    if (g.done == g.nsessions) {
      pthread_mutex_unlock(&g.lock);
      return NULL;
    }
    if (g.count == 0) { /* all sessions busy elsewhere */
      pthread_mutex_unlock(&g.lock);
      backoff(&spins);
      continue;
    }
    size_t i = g.queue[g.head];
    g.head = (g.head + 1) % g.cap;
    g.count--;
    pthread_mutex_unlock(&g.lock);
    spins = 0;

    visit(&g.s[i]);

    pthread_mutex_lock(&g.lock);
    if (g.s[i].left == 0) {
      g.done++;
    } else {
      g.queue[(g.head + g.count) % g.cap] = i;
      g.count++;
    }
    pthread_mutex_unlock(&g.lock);
  }
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-larson",
                            "server simulation: sessions of live objects handed between threads\n",
                            NULL);
  g.nsessions = a.threads > 64 ? 2 * (size_t)a.threads : 128;
  size_t total = (size_t)(4e6 * a.scale);
  g.s = xmalloc(g.nsessions * sizeof *g.s);
  g.queue = xmalloc(g.nsessions * sizeof *g.queue);
  g.cap = g.nsessions;
  for (size_t i = 0; i < g.nsessions; i++) {
    session *s = &g.s[i];
    memset(s, 0, sizeof *s);
    s->g = rng_make(0x1a850000 + i);
    s->left = share_begin(total, (int)g.nsessions, (int)i + 1) - share_begin(total, (int)g.nsessions, (int)i);
    if (s->left == 0)
      s->left = 1;
    s->next_id = (uint64_t)i << 40;
    g.queue[i] = i;
  }
  g.count = g.nsessions;
  suite_run_threads(a.threads, run, NULL, 0);
  uint64_t sum = 0;
  for (size_t i = 0; i < g.nsessions; i++)
    sum += g.s[i].sum;
  free(g.queue);
  free(g.s);
  suite_report("larson", &a, sum, "");
  return 0;
}
