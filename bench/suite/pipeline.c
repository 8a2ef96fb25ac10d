/* pipeline.c — a chain of threads where every object is freed by the thread
 * after the one that allocated it.
 *
 * Pattern: a processing pipeline (parse -> transform -> ... -> write):
 * stage 0 allocates messages (8 .. 1024 B) and passes them in batches of 64
 * through a bounded single-producer single-consumer queue (32 batches) to
 * stage 1; every middle stage checks each message it receives, allocates
 * its own output message of a new size, copies the header into it, frees
 * the input and passes the output on; the last stage checks and frees.
 * With two threads or more every free is a remote free, and an object's
 * memory can only be reused by its allocating thread after the freeing
 * thread has sent it back: the case where an allocator that returns remote
 * frees slowly keeps a producer running on fresh memory, with up to 2048
 * messages in flight per queue.  With 8 threads on 2 cores the stages are
 * oversubscribed and run a queue's worth at a time.
 * One thread: the thread queues its own messages and frees them after a
 * delay of one queue length (all frees local).
 * Work: 6 M objects at scale 1, whatever the thread count (6 M / (threads -
 * 1) messages, each going through every stage).  Every object carries its
 * message number and a tag byte at its end, checked before its free; the
 * checksum depends only on the messages and the thread count. */
#include "suite.h"

#define BATCH 64 /* messages per queue slot */
#define RING 32  /* slots between two stages; power of two */

typedef struct queue {
  _Alignas(64) atomic_size_t head; /* written by the consumer */
  _Alignas(64) atomic_size_t tail; /* written by the producer */
  _Alignas(64) uint64_t *slot[RING][BATCH];
} queue;

typedef struct stage {
  _Alignas(64) int k, last; /* stage number, the last stage's */
  size_t messages;          /* through the pipeline */
  queue *in, *out;          /* NULL at the ends */
  size_t out_tail, out_head_seen, in_head, in_tail_seen;
  uint64_t sum;
} stage;

/* The size of the object that stage K makes for message M. */
static inline size_t obj_size(uint64_t m, int k) { return 8 + (size_t)(mix64(m * 64 + (uint64_t)k) % 1017); }

/* Stage K's object for message M: the message number, and a tag of its own. */
static uint64_t *make(uint64_t m, int k) { return suite_tagged_new(m, m * 64 + (uint64_t)k, obj_size(m, k)); }

static uint64_t drop(uint64_t *p, uint64_t m, int k) {
  unsigned char last = suite_tagged_free(p, m, m * 64 + (uint64_t)k, obj_size(m, k), "pipeline");
  return m * 0x9e3779b97f4a7c15ull + (uint64_t)k * 31 + last;
}

/* The next slot to fill (waits while the queue is full). */
static uint64_t **put_slot(stage *s) {
  unsigned spins = 0;
  while (s->out_tail - s->out_head_seen == RING) {
    s->out_head_seen = atomic_load_explicit(&s->out->head, memory_order_acquire);
    if (s->out_tail - s->out_head_seen == RING)
      backoff(&spins);
  }
  return s->out->slot[s->out_tail & (RING - 1)];
}

static void put_done(stage *s) { atomic_store_explicit(&s->out->tail, ++s->out_tail, memory_order_release); }

/* The next full slot (waits while the queue is empty). */
static uint64_t **get_slot(stage *s) {
  unsigned spins = 0;
  while (s->in_head == s->in_tail_seen) {
    s->in_tail_seen = atomic_load_explicit(&s->in->tail, memory_order_acquire);
    if (s->in_head == s->in_tail_seen)
      backoff(&spins);
  }
  return s->in->slot[s->in_head & (RING - 1)];
}

static void get_done(stage *s) { atomic_store_explicit(&s->in->head, ++s->in_head, memory_order_release); }

static void *run(void *arg) {
  stage *s = arg;
  uint64_t sum = 0;
  for (size_t m0 = 0; m0 < s->messages; m0 += BATCH) {
    size_t n = s->messages - m0 < BATCH ? s->messages - m0 : BATCH;
    uint64_t **in = s->k > 0 ? get_slot(s) : NULL;
    uint64_t **out = s->k < s->last ? put_slot(s) : NULL;
    for (size_t i = 0; i < n; i++) {
      if (out)
        out[i] = make(m0 + i, s->k);
      if (in)
        sum += drop(in[i], m0 + i, s->k - 1);
    }
    if (in)
      get_done(s);
    if (out)
      put_done(s);
  }
  s->sum = sum;
  return NULL;
}

/* One thread: its own queue, filled a queue length (RING * BATCH) ahead of the frees. */
#define DELAY (RING * BATCH)
static uint64_t run_alone(size_t messages) {
  static uint64_t *fifo[DELAY];
  uint64_t sum = 0;
  for (size_t m = 0; m < messages + DELAY; m++) {
    if (m >= DELAY)
      sum += drop(fifo[m % DELAY], m - DELAY, 0);
    if (m < messages)
      fifo[m % DELAY] = make(m, 0);
  }
  return sum;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-pipeline",
                            "pipeline: a chain of threads, each object freed by the stage after its allocator's\n",
                            NULL);
  int t = a.threads;
  size_t objects = (size_t)(6e6 * a.scale);
  if (objects < 1)
    objects = 1;
  uint64_t sum;
  if (t == 1) {
    sum = run_alone(objects);
  } else {
    size_t messages = objects / (size_t)(t - 1);
    if (messages < 1)
      messages = 1;
    queue *q = aligned_alloc(64, (size_t)(t - 1) * sizeof *q);
    stage *st = aligned_alloc(64, (size_t)t * sizeof *st);
    if (!q || !st)
      suite_oom((size_t)t * sizeof *q);
    for (int i = 0; i < t - 1; i++) {
      atomic_init(&q[i].head, 0);
      atomic_init(&q[i].tail, 0);
    }
    for (int i = 0; i < t; i++)
      st[i] = (stage){.k = i, .last = t - 1, .messages = messages,
                      .in = i > 0 ? &q[i - 1] : NULL, .out = i < t - 1 ? &q[i] : NULL};
    suite_run_threads(t, run, st, sizeof *st);
    sum = 0;
    for (int i = 0; i < t; i++)
      sum += st[i].sum;
    free(st);
    free(q);
  }
  suite_report("pipeline", &a, sum, "");
  return 0;
}
