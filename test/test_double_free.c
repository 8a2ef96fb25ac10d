/* test_double_free.c — bad frees end in a one-line message naming the
 * address and an abort, never in memory handed out twice.  Each case runs
 * in a forked child that makes the mistake and then allocates on, holding
 * everything it gets and checking that no pointer comes back twice or
 * overlaps a live object; the child must die of SIGABRT with the message.
 * A child that gets through its allocations has been corrupted silently
 * (exit 3), or would have been (exit 0: the mistake went unnoticed).
 *   large_claim       both frees of a racing pair passed validation (white
 *                     box: the headers taken before either free)
 *   large_race        two threads free one large pointer at once
 *   small_twice       free(p); free(p)                    same thread
 *   small_apart       free(p); free(q); free(p)           same thread
 *   small_swapped     free(p), its list handed out again, free(p)
 *   small_remote      free(p) here, free(p) again in another thread
 *   small_hot         another thread's object freed twice here
 *   small_held        the same, once this thread holds it back in its
 *                     chain of remote frees (past the hot objects)
 *   interior_pow2     free(p + 16) of a live 64 B object
 *   interior_odd      free(p + 16) of a live 48 B object
 *   header_16 .. _256 free() of an address in the active block's header
 *                     that is aligned like the class's objects */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "childutil.h"
#include "corona.h"
#include "internal/fastpath.h"
#include "testutil.h"

#define HOLD 4096
static void *held[HOLD];

/* Allocates on in the class of size and checks nothing comes back twice and
 * nothing overlaps [live, live + live_size) (a live object, or a block
 * header); exits 3 on a bad pointer, 0 when all went well (the mistake was
 * not caught). */
static _Noreturn void allocate_on_range(size_t size, const char *live, size_t live_size) {
  for (int i = 0; i < HOLD; i++) {
    char *q = corona_malloc(size);
    if (q == NULL) _exit(4);
    for (int k = 0; k < i; k++)
      if (held[k] == q) _exit(3);
    if (live != NULL && q < live + live_size && live < q + size) _exit(3);
    memset(q, 0x5a, size);
    held[i] = q;
  }
  _exit(0);
}
static _Noreturn void allocate_on(size_t size, const char *live) { allocate_on_range(size, live, size); }

static void large_claim(void *arg) {
  (void)arg;
  char *p = corona_malloc(100000);
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  cr_large_t *h1 = cr_large_header(p, kind), *h2 = cr_large_header(p, kind);
  if (h1 == NULL || h2 == NULL) _exit(5);
  cr_large_free(h1);
  cr_large_free(h2);
  char *a = corona_malloc(100000), *b = corona_malloc(100000);
  _exit(a == b ? 3 : 0);
}

static char *race_p;
static atomic_int race_go;
static void *race_free(void *arg) {
  (void)arg;
  while (!atomic_load(&race_go)) {
  }
  corona_free(race_p);
  return NULL;
}
static void large_race(void *arg) {
  (void)arg;
  race_p = corona_malloc(100000);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, race_free, NULL);
  atomic_store(&race_go, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  char *a = corona_malloc(100000), *b = corona_malloc(100000);
  _exit(a == b ? 3 : 0);
}

static void small_twice(void *arg) {
  (void)arg;
  char *keep = corona_malloc(32), *p = corona_malloc(32);
  corona_free(p);
  corona_free(p);
  allocate_on(32, keep);
}

static void small_apart(void *arg) {
  (void)arg;
  char *p = corona_malloc(32), *q = corona_malloc(32);
  corona_free(p);
  corona_free(q);
  corona_free(p);
  allocate_on(32, NULL);
}

static void small_swapped(void *arg) {
  (void)arg;
  char *p = corona_malloc(32);
  corona_free(p);
  /* Allocate until p comes back from the list its free went on, free it
   * (legitimately), then allocate until the list runs dry again, and free
   * p once more while it is still on a list. */
  for (int i = 0; i < HOLD; i++) {
    held[i] = corona_malloc(32);
    if (held[i] == p) {
      corona_free(p);
      held[i] = corona_malloc(32);
      corona_free(held[i]);
      corona_free(held[i]); /* held[i] is on a list now, twice */
      allocate_on(32, NULL);
    }
  }
  _exit(6); /* p never came back: the premise failed */
}

static void *free_it(void *p) {
  corona_free(p);
  return NULL;
}
static void small_remote(void *arg) {
  (void)arg;
  char *p = corona_malloc(32);
  corona_free(p);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
  allocate_on(32, NULL);
}

static void *alloc_it(void *arg) {
  (void)arg;
  return corona_malloc(32);
}
static void small_hot(void *arg) {
  (void)arg;
  pthread_t t;
  void *p;
  pthread_create(&t, NULL, alloc_it, NULL);
  pthread_join(t, &p);
  corona_free(p);
  corona_free(p);
  allocate_on(32, NULL);
}

#define HELD 300 /* more than CORONA_HOT_OBJECTS */
static void *alloc_many(void *arg) {
  void **p = arg;
  for (int i = 0; i < HELD; i++) p[i] = corona_malloc(32);
  return NULL;
}
static void small_held(void *arg) {
  (void)arg;
  static void *p[HELD];
  pthread_t t;
  pthread_create(&t, NULL, alloc_many, p);
  pthread_join(t, NULL);
  for (int i = 0; i < HELD; i++) corona_free(p[i]);
  corona_free(p[HELD - 1]);
  allocate_on(32, NULL);
}

static void interior(size_t size) {
  char *p = corona_malloc(size);
  memset(p, 0x11, size);
  corona_free(p + 16);
  allocate_on(size, p);
}
static void interior_pow2(void *arg) {
  (void)arg;
  interior(64);
}
static void interior_odd(void *arg) {
  (void)arg;
  interior(48);
}

/* The block header sits below the objects, in the same 16 KB slab; an
 * address in it at the class's alignment passes free's active-block test. */
static void header(size_t size, size_t offset) {
  char *p = corona_malloc(size);
  char *block = (char *)((uintptr_t)p & ~(uintptr_t)(CORONA_SLAB_SIZE - 1));
  corona_free(block + offset);
  allocate_on_range(size, block, CORONA_BLOCK_HEADER);
}
static void header_16(void *arg) {
  (void)arg;
  header(16, 48);
}
static void header_48(void *arg) {
  (void)arg;
  header(48, 0);
}
static void header_64(void *arg) {
  (void)arg;
  header(64, 64);
}
static void header_256(void *arg) {
  (void)arg;
  header(256, 0);
}

static const struct {
  const char *name;
  void (*fn)(void *);
  const char *message; /* what the abort must say */
} cases[] = {
    {"large_claim", large_claim, "double free"},
    {"large_race", large_race, "free(): "},
    {"small_twice", small_twice, "double free"},
    {"small_apart", small_apart, "double free"},
    {"small_swapped", small_swapped, "double free"},
    {"small_remote", small_remote, "double free"},
    {"small_hot", small_hot, "double free"},
    {"small_held", small_held, "double free"},
    {"interior_pow2", interior_pow2, "invalid pointer"},
    {"interior_odd", interior_odd, "invalid pointer"},
    {"header_16", header_16, "invalid pointer"},
    {"header_48", header_48, "invalid pointer"},
    {"header_64", header_64, "invalid pointer"},
    {"header_256", header_256, "invalid pointer"},
};

int main(int argc, char **argv) {
  double t0 = tu_now();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool wanted = argc < 2;
    for (int k = 1; k < argc; k++) wanted = wanted || strcmp(argv[k], cases[i].name) == 0;
    if (!wanted) continue;
    /* The race may go either way; every run must abort. */
    int runs = strcmp(cases[i].name, "large_race") == 0 ? 20 : 1;
    bool ok = true;
    for (int r = 0; r < runs && ok; r++) {
      static char err[4096];
      int status = cu_run_fn(cases[i].fn, NULL, err, sizeof err);
      ok = CHECKF(cu_signalled(status, SIGABRT) && strstr(err, cases[i].message) != NULL &&
                      strstr(err, "0x") != NULL,
                  "%s: %s (exit 3: memory handed out twice; 0: not caught), stderr: %s", cases[i].name,
                  cu_describe(status), err);
      if (ok && r == 0) printf("  %-14s %s", cases[i].name, err);
    }
  }
  return tu_finish("test_double_free", t0);
}
