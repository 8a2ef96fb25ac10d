/* vg_clean.c — a correct program, for memcheck (run.sh, test
 * valgrind_clean*): four threads allocate, write, read back and free
 * objects of every size class and some large ones, pass a share to the
 * next thread to free (cross-thread frees), grow and shrink them with
 * realloc, read calloc memory in branches, use aligned allocations and
 * corona's usable size.  Everything is freed, so memcheck must report no
 * error and no leak.  Prints the number of allocations it made; the driver
 * checks memcheck counted at least that many blocks (so it saw corona's). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "vgprog.h"

#define THREADS 4
#define PER_THREAD 2000
#define HANDED 256

static atomic_long allocations;
static void *handed[THREADS][HANDED]; /* [t]: filled by t, freed by t + 1 */
static pthread_barrier_t barrier;

static size_t size_of(int t, int i) {
  if (i % 97 == 0) return 9000 + (size_t)(i * 131 % 300000); /* large */
  return (size_t)((i * 53 + t * 7) % 8128) + 1;
}

static int check(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 1;
  return 0;
}

static void *worker(void *arg) {
  int t = (int)(long)arg;
  long made = 0;
  int bad = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    size_t n = size_of(t, i);
    unsigned char *p = VG_MALLOC(n);
    made++;
    if (p == NULL) exit(3);
    memset(p, (unsigned char)i, n);
    /* grow, check, shrink, check */
    unsigned char *q = VG_REALLOC(p, n * 2 + 10);
    made++;
    if (q == NULL) exit(3);
    bad += check(q, n, (unsigned char)i);
    memset(q + n, 0xee, n + 10);
    unsigned char *r = VG_REALLOC(q, n / 2 + 1);
    made++;
    if (r == NULL) exit(3);
    bad += check(r, n / 2 + 1, (unsigned char)i);
    /* calloc memory is defined: branch on it */
    unsigned char *z = VG_CALLOC(n, 1);
    made++;
    if (z == NULL) exit(3);
    bad += check(z, n, 0);
    unsigned char *a = VG_ALIGNED(64, 64 * (size_t)(i % 8 + 1));
    made++;
    if (a == NULL || ((size_t)a & 63) != 0) exit(3);
    memset(a, 1, 64 * (size_t)(i % 8 + 1));
    VG_FREE(a);
    VG_FREE(z);
    if (i < HANDED) handed[t][i] = r;
    else VG_FREE(r);
  }
#if defined(VG_API_CORONA)
  /* corona_usable_size: at least the size asked; all of it is usable. */
  unsigned char *u = VG_MALLOC(100);
  made++;
  size_t un = corona_usable_size(u);
  if (un < 100) exit(4);
  memset(u, 9, un);
  bad += check(u, un, 9);
  VG_FREE(u);
#endif
  pthread_barrier_wait(&barrier);
  /* the previous thread's objects: cross-thread frees */
  int from = (t + THREADS - 1) % THREADS;
  for (int i = 0; i < HANDED; i++) {
    bad += check(handed[from][i], 1, (unsigned char)i);
    VG_FREE(handed[from][i]);
  }
  atomic_fetch_add(&allocations, made);
  return (void *)(long)bad;
}

int main(void) {
  pthread_t th[THREADS];
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (long t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)t) != 0) return 3;
  long bad = 0;
  for (int t = 0; t < THREADS; t++) {
    void *ret;
    pthread_join(th[t], &ret);
    bad += (long)ret;
  }
  pthread_barrier_destroy(&barrier);
  printf("vg_clean (%s): %ld allocations, %ld bad contents\n", VG_API_NAME, atomic_load(&allocations), bad);
  return bad == 0 ? 0 : 1;
}
