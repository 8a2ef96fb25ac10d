/* arena.c — corona-arena: the arena pattern, with a memory pool and without.
 * Each round allocates N small objects (random sizes 16..256 B from a fixed
 * seed), links them into a list whose nodes also point at a recent earlier
 * node (a tree-like structure, as a parser's AST), writes every byte of each
 * object, walks the structure once, then drops all of it:
 *   pool + reset      corona_pool_malloc per object, one corona_pool_reset per round
 *   pool + free each  corona_pool_malloc / corona_pool_free per object
 *   corona            corona_malloc / corona_free per object
 *   glibc             the C library's malloc / free per object (found with
 *                     dlsym(RTLD_NEXT): the program's own malloc is corona's)
 * The variants run interleaved (the order rotates each repetition) after one
 * warm-up run each; every variant must produce the same checksum.  With
 * --threads T, T threads run the workload at once, each on its own arena
 * (its own pool for the pool variants).  Prints the median wall time per run
 * and per object, and the ratios to "pool + reset".
 *
 * Usage: corona-arena [--reps N] [--objects N] [--rounds N] [--threads T] [--quick] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "benchutil.h"
#include "corona.h"

enum { V_POOL_RESET, V_POOL_FREE, V_CORONA, V_GLIBC, N_VARIANTS };
static const char *const variant_names[N_VARIANTS] = {"pool + reset", "pool + free each", "corona malloc/free",
                                                      "glibc malloc/free"};

#define MAX_THREADS 64
#define RECENT 64 /* power of two: the ring of recent nodes children point to */

typedef struct node {
  struct node *next;
  uint32_t key;
  uint32_t size;
  /* objects of 24 bytes or more: struct node *child, then payload */
} node_t;

static size_t n_objects = 100000, n_rounds = 30;
static long reps = 7;
static int n_threads = 1;
static uint32_t *sizes; /* n_objects entries, 16..256 */
static alloc_api glibc;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- raw memory of the pools: plain mmap ----------------------------------- */
static void *raw_alloc(intptr_t id, size_t *bytes) {
  (void)id;
  void *p = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
static int raw_free(intptr_t id, void *p, size_t bytes) {
  (void)id;
  return munmap(p, bytes);
}

/* ---- the workload ----------------------------------------------------------------- */
typedef struct worker {
  int variant;
  corona_pool *pool;
  uint64_t checksum;
} worker_t;

static inline void *obj_alloc(const worker_t *w, size_t size) {
  switch (w->variant) {
    case V_POOL_RESET:
    case V_POOL_FREE:
      return corona_pool_malloc(w->pool, size);
    case V_CORONA:
      return corona_malloc(size);
    default:
      return glibc.malloc_fn(size);
  }
}

NOINLINE static uint64_t one_round(worker_t *w, uint32_t round) {
  node_t *head = NULL;
  node_t *recent[RECENT] = {0};
  for (size_t i = 0; i < n_objects; i++) {
    size_t size = sizes[i];
    node_t *n = obj_alloc(w, size);
    if (n == NULL) {
      fprintf(stderr, "corona-arena: %s: allocation of %zu bytes failed\n", variant_names[w->variant], size);
      exit(1);
    }
    n->next = head;
    n->key = (uint32_t)i * 2654435761u + round;
    n->size = (uint32_t)size;
    if (size >= 24) {
      node_t **child = (node_t **)(n + 1);
      *child = recent[(i * 7) & (RECENT - 1)];
      memset(child + 1, (int)(n->key & 0xff), size - 24);
    } else {
      memset(n + 1, (int)(n->key & 0xff), size - sizeof *n);
    }
    recent[i & (RECENT - 1)] = n;
    head = n;
  }
  TOUCHED(head);
  uint64_t sum = 0;
  for (node_t *n = head; n != NULL; n = n->next) {
    sum += n->key + n->size + ((unsigned char *)n)[n->size - 1];
    if (n->size >= 24) {
      node_t *c = *(node_t **)(n + 1);
      if (c != NULL) sum += c->key >> 3;
    }
  }
  switch (w->variant) {
    case V_POOL_RESET:
      if (corona_pool_reset(w->pool) != 0) {
        fprintf(stderr, "corona-arena: pool reset failed\n");
        exit(1);
      }
      break;
    case V_POOL_FREE:
      for (node_t *n = head, *next; n != NULL; n = next) {
        next = n->next;
        corona_pool_free(w->pool, n);
      }
      break;
    case V_CORONA:
      for (node_t *n = head, *next; n != NULL; n = next) {
        next = n->next;
        corona_free(n);
      }
      break;
    default:
      for (node_t *n = head, *next; n != NULL; n = next) {
        next = n->next;
        glibc.free_fn(n);
      }
  }
  return sum;
}

static pthread_barrier_t start_line;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(&start_line);
  uint64_t sum = 0;
  for (size_t r = 0; r < n_rounds; r++) sum = sum * 31 + one_round(w, (uint32_t)r);
  w->checksum = sum;
  return NULL;
}

static worker_t workers[MAX_THREADS];
static corona_pool *pools[MAX_THREADS];

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* One run of a variant on every thread; returns the wall time. */
static double run(int variant, uint64_t *checksum, long *faults) {
  pthread_t th[MAX_THREADS];
  pthread_barrier_init(&start_line, NULL, (unsigned)n_threads + 1);
  for (int t = 0; t < n_threads; t++) {
    workers[t] = (worker_t){variant, pools[t], 0};
    pthread_create(&th[t], NULL, worker_main, &workers[t]);
  }
  long f0 = minor_faults();
  double t0 = now_seconds();
  pthread_barrier_wait(&start_line);
  for (int t = 0; t < n_threads; t++) pthread_join(th[t], NULL);
  double dt = now_seconds() - t0;
  *faults = minor_faults() - f0;
  pthread_barrier_destroy(&start_line);
  uint64_t sum = 0;
  for (int t = 0; t < n_threads; t++) sum += workers[t].checksum;
  *checksum = sum;
  return dt;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long parse_num(const char *opt, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long x = v ? strtol(v, &end, 10) : 0;
  if (v == NULL || *v == '\0' || *end != '\0' || errno || x < lo || x > hi) {
    fprintf(stderr, "corona-arena: %s needs a number from %ld to %ld\n", opt, lo, hi);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--reps") == 0) reps = parse_num(a, v, 1, 1000), i++;
    else if (strcmp(a, "--objects") == 0) n_objects = (size_t)parse_num(a, v, 1, 100000000), i++;
    else if (strcmp(a, "--rounds") == 0) n_rounds = (size_t)parse_num(a, v, 1, 1000000), i++;
    else if (strcmp(a, "--threads") == 0) n_threads = (int)parse_num(a, v, 1, MAX_THREADS), i++;
    else if (strcmp(a, "--quick") == 0) reps = 3, n_rounds = 5;
    else {
      printf("usage: corona-arena [--reps N] [--objects N] [--rounds N] [--threads T] [--quick]\n"
             "  The arena pattern: rounds of N small objects (16..256 B) built into a linked\n"
             "  structure, then dropped: with a corona pool and one reset per round, with a pool\n"
             "  and a free per object, with corona_malloc/free and with glibc malloc/free.\n"
             "  Defaults: --reps 7 --objects 100000 --rounds 30 --threads 1.\n");
      return strcmp(a, "--help") == 0 ? 0 : 2;
    }
  }
  glibc = libc_api("glibc");
  sizes = malloc(n_objects * sizeof *sizes); /* bookkeeping: outside the timed runs */
  if (sizes == NULL) return 1;
  rng_seed(0xa7e4a);
  for (size_t i = 0; i < n_objects; i++) sizes[i] = (uint32_t)rng_range(16, 256);
  for (int t = 0; t < n_threads; t++) {
    corona_pool_policy pol = {raw_alloc, raw_free, 0, false, true, t};
    if (corona_pool_create(&pol, &pools[t]) != 0) {
      fprintf(stderr, "corona-arena: corona_pool_create failed\n");
      return 1;
    }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  printf("corona-arena: %zu objects of 16..256 B per round, %zu rounds per run, %d thread(s), %ld CPU(s)", n_objects,
         n_rounds, n_threads, cpus);
#ifdef __GLIBC__
  printf(", glibc %s", gnu_get_libc_version());
#endif
  printf("\nruns: %ld timed per variant, interleaved (rotating order), after 1 warm-up each; medians\n\n", reps);

  double *t[N_VARIANTS];
  uint64_t sum[N_VARIANTS];
  long faults[N_VARIANTS] = {0}, f;
  for (int v = 0; v < N_VARIANTS; v++) {
    t[v] = malloc((size_t)reps * sizeof(double));
    if (t[v] == NULL) return 1;
    (void)run(v, &sum[v], &f); /* warm-up */
  }
  int bad = 0;
  for (long r = 0; r < reps; r++)
    for (int k = 0; k < N_VARIANTS; k++) {
      int v = (int)((r + k) % N_VARIANTS);
      uint64_t s;
      t[v][r] = run(v, &s, &f);
      faults[v] += f;
      if (s != sum[0]) bad = 1;
    }
  for (int v = 1; v < N_VARIANTS; v++) bad |= sum[v] != sum[0];
  double med[N_VARIANTS];
  for (int v = 0; v < N_VARIANTS; v++) med[v] = median(t[v], (size_t)reps);
  double per = (double)n_objects * (double)n_rounds * (double)n_threads;
  printf("%-20s %12s %14s %18s %16s\n", "variant", "ms per run", "ns per object", "time / pool+reset",
         "faults per run");
  for (int v = 0; v < N_VARIANTS; v++)
    printf("%-20s %12.1f %14.2f %17.2fx %16ld\n", variant_names[v], med[v] * 1e3, med[v] * 1e9 / per, med[v] / med[0],
           faults[v] / reps);
  printf("\ncorona malloc/free is %.2fx the time of pool + reset; glibc malloc/free %.2fx\n", med[V_CORONA] / med[0],
         med[V_GLIBC] / med[0]);
  for (int t2 = 0; t2 < n_threads; t2++) corona_pool_destroy(pools[t2]);
  if (bad) {
    fprintf(stderr, "corona-arena: checksums differ between variants\n");
    return 1;
  }
  printf("checksum %016llx (the same for every variant)\n", (unsigned long long)sum[0]);
  return 0;
}
