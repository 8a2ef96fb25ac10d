/* soft_limit.c — corona-soft-limit: the throughput of a program whose live
 * data stays above its soft heap limit, against the same program without a
 * limit, in one process.  Threads each keep live large objects (64 KiB to
 * 2 MiB, random), replacing one at random per step and touching its first
 * and last page; the live data (about 24 MiB a thread) is twice the limit,
 * so with the limit on every cache miss finds the heap over it.  Phases
 * with and without the limit alternate (5 of each by default); the line
 * printed gives the median of each, their ratio, the minor page faults of
 * each phase, and what the limit is for: the mapped bytes (the mean of
 * samples thread 0 takes as it runs, and the highest) and the resident
 * bytes at the end of each phase (medians).  corona only: the soft limit is
 * corona's (corona_allocation_mode).
 * Usage: corona-soft-limit [threads (2)] [steps per thread and phase (20000)] [reps (5)] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "corona.h"

#define LIVE 24
#define MAX_THREADS 64
static void *slots[MAX_THREADS][LIVE];
static long steps;
/* Mapped bytes sampled by thread 0 every SAMPLE_EVERY steps of a phase:
 * often enough to see the mapped bytes move, rarely enough (a stats call
 * takes the pool's lock) not to slow the phase. */
#define SAMPLE_EVERY 256
static double mapped_sum, mapped_max;
static long mapped_samples;

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

static double mapped_now(void) {
  corona_stats s;
  return corona_stats_get(&s) == 0 ? (double)s.memory_mapped : 0;
}

/* Resident bytes of the process (/proc/self/statm; 0 where there is none). */
static double rss_now(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
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
    if (t == 0 && i % SAMPLE_EVERY == 0) {
      double m = mapped_now();
      mapped_sum += m;
      mapped_samples++;
      if (m > mapped_max) mapped_max = m;
    }
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One phase's figures. */
typedef struct {
  double time, mapped_mean, mapped_max, rss;
} phase_t;

static phase_t phase(int threads) {
  pthread_t th[MAX_THREADS];
  mapped_sum = mapped_max = 0;
  mapped_samples = 0;
  double t0 = now();
  for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, (void *)(size_t)t);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  phase_t p = {now() - t0, mapped_samples ? mapped_sum / (double)mapped_samples : 0, mapped_max, rss_now()};
  return p;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmp);
  return v[n / 2];
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  steps = argc > 2 ? atol(argv[2]) : 20000;
  int reps = argc > 3 ? atoi(argv[3]) : 5;
  if (threads < 1 || threads > MAX_THREADS || reps < 1 || reps > 99) return 2;
  size_t limit = (size_t)threads * LIVE * ((size_t)1 << 20) / 2; /* live data is about twice this */
  phase(threads); /* warm up: the live set exists from here on */
  double with[4][99], without[4][99]; /* time, mapped mean, mapped max, RSS */
  long flt_with = 0, flt_without = 0;
  for (int r = 0; r < reps; r++) {
    long f0 = minflt();
    corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0);
    phase_t o = phase(threads);
    long f1 = minflt();
    corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, (intptr_t)limit);
    phase_t w = phase(threads);
    flt_without += f1 - f0;
    flt_with += minflt() - f1;
    without[0][r] = o.time, without[1][r] = o.mapped_mean, without[2][r] = o.mapped_max, without[3][r] = o.rss;
    with[0][r] = w.time, with[1][r] = w.mapped_mean, with[2][r] = w.mapped_max, with[3][r] = w.rss;
  }
  corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0);
  double m[2][4];
  for (int i = 0; i < 4; i++) m[0][i] = median(without[i], reps), m[1][i] = median(with[i], reps);
  const double mib = 1 << 20;
  printf("soft limit %zu MiB, %d threads x %ld steps, medians of %d: without %.3f s, with %.3f s, ratio %.2f; "
         "minor faults per phase without %ld, with %ld; mapped MiB mean/max without %.0f/%.0f, with %.0f/%.0f; "
         "RSS MiB at phase end without %.0f, with %.0f\n",
         limit >> 20, threads, steps, reps, m[0][0], m[1][0], m[1][0] / m[0][0], flt_without / reps, flt_with / reps,
         m[0][1] / mib, m[0][2] / mib, m[1][1] / mib, m[1][2] / mib, m[0][3] / mib, m[1][3] / mib);
  return 0;
}
