/* xmalloc.c — producer/consumer: objects allocated in one thread and freed
 * in another (after xmalloc-test).
 *
 * Pattern: a pipeline stage allocates messages and hands them downstream,
 * where they are freed: every free is a remote free.  Allocators with
 * per-thread caches must send the memory back to its owner (or keep it
 * and let the producer run dry); a single locked heap serialises both
 * sides.  The threads form a ring: thread i fills batches of 64 objects
 * (16 .. 256 B, with a header and a tag byte) and passes them through a
 * lock-free single-producer single-consumer queue to thread i+1, which
 * checks and frees them, batch array included.  Every thread produces and
 * consumes, so none ever waits for one that waits for it.  With one thread
 * the objects come back to their own producer, in FIFO order, after a
 * delay of up to 16 batches.
 * Threads: the objects are split among the producers.  The checksum depends
 * only on the objects. */
#include "suite.h"

#define SIZES 4096 /* power of two */
#define BATCH 64
#define RING 16 /* batches in flight per queue; power of two */

typedef struct batch {
  size_t n;
  uint64_t *obj[BATCH];
} batch;

typedef struct queue {
  _Alignas(64) atomic_size_t head; /* written by the consumer */
  _Alignas(64) atomic_size_t tail; /* written by the producer */
  _Alignas(64) batch *slot[RING];
} queue;

typedef struct job {
  _Alignas(64) size_t begin, end; /* objects this thread produces */
  size_t consume;                 /* batches it consumes */
  queue *out, *in;
  uint64_t sum;
} job;

static uint16_t sizes[SIZES];

static inline uint64_t obj_word(uint64_t id) { return id * 0x9e3779b97f4a7c15ull; }

static uint64_t consume_one(batch *b) {
  uint64_t sum = 0;
  for (size_t k = 0; k < b->n; k++) {
    uint64_t *p = b->obj[k];
    uint64_t id = p[0];
    size_t sz = sizes[id & (SIZES - 1)];
    unsigned char last = ((unsigned char *)p)[sz - 1];
    if (last != tag_byte(id, sz - 1))
      suite_corrupt("xmalloc", id, sz - 1, last, tag_byte(id, sz - 1));
    sum += obj_word(id) + last;
    free(p);
  }
  free(b);
  return sum;
}

static void *run(void *arg) {
  job *j = arg;
  size_t next = j->begin, consumed = 0;
  size_t out_tail = 0, out_head_seen = 0, in_head = 0, in_tail_seen = 0;
  uint64_t sum = 0;
  unsigned spins = 0;
  while (next < j->end || consumed < j->consume) {
    int progress = 0;
    /* produce one batch when there is room */
    if (next < j->end) {
      if (out_tail - out_head_seen == RING)
        out_head_seen = atomic_load_explicit(&j->out->head, memory_order_acquire);
      if (out_tail - out_head_seen < RING) {
        batch *b = xmalloc(sizeof *b);
        b->n = 0;
        while (b->n < BATCH && next < j->end) {
          size_t sz = sizes[next & (SIZES - 1)];
          uint64_t *p = malloc(sz);
          if (!p)
            suite_oom(sz);
          p[0] = next; /* the id; the last byte is a tag (sizes >= 16) */
          ((unsigned char *)p)[sz - 1] = tag_byte(next, sz - 1);
          b->obj[b->n++] = p;
          next++;
        }
        j->out->slot[out_tail & (RING - 1)] = b;
        atomic_store_explicit(&j->out->tail, ++out_tail, memory_order_release);
        progress = 1;
      }
    }
    /* consume everything that is waiting */
    while (consumed < j->consume) {
      if (in_head == in_tail_seen) {
        in_tail_seen = atomic_load_explicit(&j->in->tail, memory_order_acquire);
        if (in_head == in_tail_seen)
          break;
      }
      batch *b = j->in->slot[in_head & (RING - 1)];
      atomic_store_explicit(&j->in->head, ++in_head, memory_order_release);
      sum += consume_one(b);
      consumed++;
      progress = 1;
    }
    if (progress)
      spins = 0;
    else
      backoff(&spins);
  }
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-xmalloc",
                            "producer/consumer ring: objects allocated by one thread, freed by the next\n",
                            NULL);
  rng_t g = rng_make(4);
  for (size_t i = 0; i < SIZES; i++)
    sizes[i] = (uint16_t)rng_between(&g, 16, 256);
  size_t total = (size_t)(6e6 * a.scale);
  int t = a.threads;
  queue *q = aligned_alloc(64, (size_t)t * sizeof *q);
  job *jobs = aligned_alloc(64, (size_t)t * sizeof *jobs);
  if (!q || !jobs)
    suite_oom((size_t)t * sizeof *q);
  for (int i = 0; i < t; i++) {
    atomic_init(&q[i].head, 0);
    atomic_init(&q[i].tail, 0);
  }
  for (int i = 0; i < t; i++) {
    size_t b = share_begin(total, t, i), e = share_begin(total, t, i + 1);
    jobs[i].begin = b;
    jobs[i].end = e;
    jobs[i].out = &q[i];
    jobs[i].in = &q[(i + t - 1) % t];
    jobs[i].sum = 0;
  }
  for (int i = 0; i < t; i++) { /* thread i consumes what thread i-1 produces */
    const job *p = &jobs[(i + t - 1) % t];
    jobs[i].consume = (p->end - p->begin + BATCH - 1) / BATCH;
  }
  suite_run_threads(t, run, jobs, sizeof *jobs);
  uint64_t sum = 0;
  for (int i = 0; i < t; i++)
    sum += jobs[i].sum;
  free(jobs);
  free(q);
  suite_report("xmalloc", &a, sum, "");
  return 0;
}
