/* soft_limit.c — corona-soft-limit: the throughput of a program whose live
 * data stays above its soft heap limit, against the same program without a
 * limit, in one process.  Threads each keep live large objects (64 KiB to
 * 2 MiB, random), replacing one at random per step and touching its first
 * and last page; the live data (about 24 MiB a thread) is twice the limit,
 * so with the limit on every cache miss finds the heap over it.  Phases
 * with and without the limit alternate (5 of each by default); the line
 * printed gives the median of each, their ratio, and the minor page faults
 * of each phase.  corona only: the soft limit is corona's
 * (corona_allocation_mode).
 * Usage: corona-soft-limit [threads (2)] [steps per thread and phase (20000)] [reps (5)] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "corona.h"

#define LIVE 24
#define MAX_THREADS 64
static void *slots[MAX_THREADS][LIVE];
static long steps;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static size_t pick(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return ((size_t)64 << 10) + (size_t)(*s % ((size_t)2 << 20));
}

static void *worker(void *arg) {
  size_t t = (size_t)arg;
  uint64_t seed = 0x9e3779b97f4a7c15ull * (t + 1);
  for (long i = 0; i < steps; i++) {
    size_t k = (size_t)(seed % LIVE), n = pick(&seed);
    corona_free(slots[t][k]);
    char *p = corona_malloc(n);
    if (p == NULL) abort();
    p[0] = (char)i;
    p[n - 1] = (char)i;
    slots[t][k] = p;
  }
  return NULL;
}

static double phase(int threads) {
  pthread_t th[MAX_THREADS];
  double t0 = now();
  for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, (void *)(size_t)t);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  return now() - t0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  steps = argc > 2 ? atol(argv[2]) : 20000;
  int reps = argc > 3 ? atoi(argv[3]) : 5;
  if (threads < 1 || threads > MAX_THREADS || reps < 1 || reps > 99) return 2;
  size_t limit = (size_t)threads * LIVE * ((size_t)1 << 20) / 2; /* live data is about twice this */
  phase(threads); /* warm up: the live set exists from here on */
  double with[99], without[99];
  long flt_with = 0, flt_without = 0;
  for (int r = 0; r < reps; r++) {
    long f0 = minflt();
    corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0);
    without[r] = phase(threads);
    long f1 = minflt();
    corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, (intptr_t)limit);
    with[r] = phase(threads);
    flt_without += f1 - f0;
    flt_with += minflt() - f1;
  }
  corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0);
  qsort(with, (size_t)reps, sizeof with[0], cmp);
  qsort(without, (size_t)reps, sizeof without[0], cmp);
  double mw = with[reps / 2], mo = without[reps / 2];
  printf("soft limit %zu MiB, %d threads x %ld steps, medians of %d: without %.3f s, with %.3f s, ratio %.2f; "
         "minor faults per phase without %ld, with %ld\n",
         limit >> 20, threads, steps, reps, mo, mw, mw / mo, flt_without / reps, flt_with / reps);
  return 0;
}
