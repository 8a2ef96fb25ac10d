/* small.c — small objects allocated and freed at once.
 *
 * Pattern: malloc, touch the first and last byte, read them back, free,
 * over and over: the temporary buffer of a parser, a formatter or a
 * callback.  It is the allocator's fast path and nothing else, so it shows
 * the cost of one malloc+free pair (thread-local cache, size-class lookup,
 * the free-side lookup of the owning block) with no memory traffic to hide
 * it.  Modes:
 *   fixed   always 64 B
 *   random  8 .. 512 B, uniform, from a precomputed table (so the random
 *           number generator stays out of the loop)
 * Threads: the pairs are split evenly among the threads, which run
 * independently (a scalable allocator keeps them apart; a shared lock does
 * not).  The checksum depends only on the pair index, not on the thread
 * count. */
#include "suite.h"

#define SIZES 4096 /* power of two */

static const char *const modes[] = {"fixed", "random", NULL};

static uint16_t sizes[SIZES];

typedef suite_span job;

NOINLINE static void *run_fixed(void *arg) {
  job *j = arg;
  uint64_t sum = 0;
  for (size_t i = j->begin; i < j->end; i++) {
    uint64_t *p = malloc(64);
    if (!p)
      suite_oom(64);
    p[0] = i;
    p[7] = i ^ 0xff;
    TOUCHED(p);
    sum += p[0] + p[7];
    free(p);
  }
  j->sum = sum;
  return NULL;
}

NOINLINE static void *run_random(void *arg) {
  job *j = arg;
  uint64_t sum = 0;
  for (size_t i = j->begin; i < j->end; i++) {
    size_t sz = sizes[i & (SIZES - 1)];
    unsigned char *p = malloc(sz);
    if (!p)
      suite_oom(sz);
    p[0] = (unsigned char)i;
    p[sz - 1] = (unsigned char)(i >> 8);
    TOUCHED(p);
    sum += (uint64_t)p[0] + p[sz - 1];
    free(p);
  }
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-small",
                            "small objects allocated and freed at once (fixed 64 B, or random 8..512 B)\n",
                            modes);
  int random_sizes = strcmp(a.mode, "random") == 0;
  rng_t r = rng_make(1);
  for (size_t i = 0; i < SIZES; i++)
    sizes[i] = (uint16_t)rng_between(&r, 8, 512);
  size_t total = (size_t)(20e6 * a.scale);
  uint64_t sum = suite_run_spans(a.threads, total, random_sizes ? run_random : run_fixed);
  suite_report(random_sizes ? "small-random" : "small-fixed", &a, sum, "");
  return 0;
}
