/* bursts.c — bursts of live objects, freed in shuffled order.
 *
 * Pattern: build a few thousand objects of random sizes (a request's
 * parse tree, a batch of messages), use them, then drop them in an order
 * unrelated to the order of allocation.  The allocator's free lists get
 * scrambled and its slabs fill and empty in bulk, so this measures the
 * refill and release paths and the locality of what it hands out, where
 * a pure malloc+free pair only measures the fast path.
 * Each round allocates BURST objects: 15 in 16 of them 16 .. 1024 B, one in
 * 16 1025 .. 8128 B; every page of an object is written, its first and last
 * bytes are checked before the free.  The sizes and the free order come
 * from 8 precomputed patterns.
 * Threads: the rounds are split among the threads, each with its own burst
 * (no sharing).  The checksum depends only on the rounds. */
#include "suite.h"

#define BURST 5000
#define PATTERNS 8

static uint16_t sizes[PATTERNS][BURST];
static uint32_t order[PATTERNS][BURST];

typedef suite_span job;

NOINLINE static void *run(void *arg) {
  job *j = arg;
  unsigned char **live = xmalloc(BURST * sizeof *live);
  uint64_t sum = 0;
  for (size_t r = j->begin; r < j->end; r++) {
    const uint16_t *sz = sizes[r % PATTERNS];
    const uint32_t *ord = order[r % PATTERNS];
    for (size_t i = 0; i < BURST; i++) {
      size_t n = sz[i];
      unsigned char *p = malloc(n);
      if (!p)
        suite_oom(n);
      for (size_t off = 0; off < n; off += 4096)
        p[off] = tag_byte(r * BURST + i, off);
      p[n - 1] = tag_byte(r * BURST + i, n - 1);
      live[i] = p;
    }
    TOUCHED(live);
    for (size_t k = 0; k < BURST; k++) {
      size_t i = ord[k];
      unsigned char *p = live[i];
      size_t n = sz[i];
      uint64_t id = r * BURST + i;
      if (p[0] != tag_byte(id, 0))
        suite_corrupt("bursts", id, 0, p[0], tag_byte(id, 0));
      if (p[n - 1] != tag_byte(id, n - 1))
        suite_corrupt("bursts", id, n - 1, p[n - 1], tag_byte(id, n - 1));
      sum += (uint64_t)p[0] * 3 + p[n - 1] + n;
      free(p);
    }
  }
  free(live);
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-bursts",
                            "bursts of 5000 live objects of random sizes, freed in shuffled order\n",
                            NULL);
  rng_t g = rng_make(2);
  for (size_t k = 0; k < PATTERNS; k++) {
    for (size_t i = 0; i < BURST; i++) {
      sizes[k][i] = (uint16_t)(rng_u64(&g) % 16 == 0 ? rng_between(&g, 1025, 8128)
                                                       : rng_between(&g, 16, 1024));
      order[k][i] = (uint32_t)i;
    }
    for (size_t i = BURST - 1; i > 0; i--) { /* Fisher-Yates */
      size_t j = (size_t)(rng_u64(&g) % (i + 1));
      uint32_t t = order[k][i];
      order[k][i] = order[k][j];
      order[k][j] = t;
    }
  }
  size_t rounds = (size_t)(400 * a.scale);
  if (rounds < 1)
    rounds = 1;
  uint64_t sum = suite_run_spans(a.threads, rounds, run);
  suite_report("bursts", &a, sum, "");
  return 0;
}
