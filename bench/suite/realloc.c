/* realloc.c — strings and vectors growing by appends.
 *
 * Pattern: the two ways programs grow buffers.  A naive string builder
 * reallocs to the exact new length on every append (many small steps, the
 * allocator's in-place growth and size-class slack decide whether each step
 * copies); a vector doubles its capacity (few steps, large copies, sizes
 * crossing from small to large objects).  Several strings and vectors grow
 * at once, their appends interleaved, so a buffer's neighbour is usually
 * taken and in-place growth is not free.
 * Each round: 32 strings grow to 16 B .. 16 KB (log-uniform) by appends of
 * 1 .. 24 bytes; 8 vectors of 8-byte elements grow to 16 .. 256 K elements
 * (128 B .. 2 MB) by push-back with doubling capacity.  Every byte of every
 * string and every element of every vector is checked before the free.
 * Threads: the rounds are split among the threads (no sharing).  The
 * checksum depends only on the rounds. */
#include "suite.h"

#define STRINGS 32
#define VECTORS 8

typedef suite_span job;

static inline char str_char(uint64_t id, size_t pos) { return (char)('a' + (id * 7 + pos) % 26); }
static inline uint64_t vec_elem(uint64_t id, size_t k) { return id * 0x100000001b3ull ^ k; }

NOINLINE static uint64_t one_round(size_t r) {
  rng_t g = rng_make(0x7ea110cull + r);
  char *s[STRINGS];
  size_t slen[STRINGS], starget[STRINGS];
  uint64_t *v[VECTORS];
  size_t vlen[VECTORS], vcap[VECTORS], vtarget[VECTORS];
  for (int i = 0; i < STRINGS; i++) {
    s[i] = NULL;
    slen[i] = 0;
    starget[i] = rng_octaves(&g, 16, 10);
  }
  for (int i = 0; i < VECTORS; i++) {
    v[i] = NULL;
    vlen[i] = vcap[i] = 0;
    vtarget[i] = rng_octaves(&g, 16, 14);
  }
  /* Interleaved growth: one append to each unfinished buffer per pass. */
  int busy = 1;
  while (busy) {
    busy = 0;
    for (int i = 0; i < STRINGS; i++) {
      if (slen[i] >= starget[i])
        continue;
      busy = 1;
      size_t add = rng_between(&g, 1, 24);
      uint64_t id = r * STRINGS + (uint64_t)i;
      char *n = realloc(s[i], slen[i] + add + 1);
      if (!n)
        suite_oom(slen[i] + add + 1);
      for (size_t k = 0; k < add; k++)
        n[slen[i] + k] = str_char(id, slen[i] + k);
      slen[i] += add;
      n[slen[i]] = '\0';
      s[i] = n;
    }
    for (int i = 0; i < VECTORS; i++) {
      if (vlen[i] >= vtarget[i])
        continue;
      busy = 1;
      uint64_t id = r * VECTORS + (uint64_t)i;
      /* push_back of 64 elements per pass (so vectors finish with the strings) */
      for (int k = 0; k < 64 && vlen[i] < vtarget[i]; k++) {
        if (vlen[i] == vcap[i]) {
          size_t cap = vcap[i] ? vcap[i] * 2 : 4;
          uint64_t *n = realloc(v[i], cap * sizeof *n);
          if (!n)
            suite_oom(cap * sizeof *n);
          v[i] = n;
          vcap[i] = cap;
        }
        v[i][vlen[i]] = vec_elem(id, vlen[i]);
        vlen[i]++;
      }
    }
  }
  uint64_t sum = 0;
  for (int i = 0; i < STRINGS; i++) {
    uint64_t id = r * STRINGS + (uint64_t)i;
    for (size_t k = 0; k < slen[i]; k++) {
      if (s[i][k] != str_char(id, k))
        suite_corrupt("realloc string", id, k, (unsigned char)s[i][k], (unsigned char)str_char(id, k));
      sum += (unsigned char)s[i][k];
    }
    if (s[i][slen[i]] != '\0')
      suite_corrupt("realloc string end", id, slen[i], (unsigned char)s[i][slen[i]], 0);
    free(s[i]);
  }
  for (int i = 0; i < VECTORS; i++) {
    uint64_t id = r * VECTORS + (uint64_t)i;
    for (size_t k = 0; k < vlen[i]; k++) {
      if (v[i][k] != vec_elem(id, k))
        suite_corrupt("realloc vector", id, k * 8, (unsigned)v[i][k], (unsigned)vec_elem(id, k));
      sum += v[i][k];
    }
    sum += vcap[i];
    free(v[i]);
  }
  return sum;
}

static void *run(void *arg) {
  job *j = arg;
  uint64_t sum = 0;
  for (size_t r = j->begin; r < j->end; r++)
    sum += one_round(r);
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-realloc",
                            "strings (exact-length appends) and vectors (doubling) grown by realloc\n",
                            NULL);
  size_t rounds = (size_t)(200 * a.scale);
  if (rounds < 1)
    rounds = 1;
  uint64_t sum = suite_run_spans(a.threads, rounds, run);
  suite_report("realloc", &a, sum, "");
  return 0;
}
