/* dlopen_late.c — corona loaded late, with dlopen, into a program that is
 * not linked with it, for the real-program tests.
 *
 *   dlopen_late /path/to/libcorona.so
 *
 * 1. Before the dlopen, the main thread and two threads allocate objects
 *    with the C library's malloc (calloc, realloc) and fill them.
 * 2. dlopen(RTLD_NOW | RTLD_LOCAL).  It must succeed: corona's thread
 *    pointer is initial-exec TLS, which a late dlopen must still find room
 *    for ("cannot allocate memory in static TLS block" would fail here).
 * 3. corona_malloc/calloc/realloc/aligned_malloc/usable_size/free/collect
 *    found with dlsym are used beside the C library's malloc/free: 20000
 *    mixed operations, every object's contents checked; corona_usable_size
 *    is non-zero for corona's objects and 0 for the C library's.  malloc in
 *    the program stays the C library's (RTLD_LOCAL).
 * 4. Three threads started after the dlopen use both allocators and free
 *    corona objects the main thread made; they exit (corona's thread-exit
 *    cleanup runs in a dlopen'ed library).
 * 5. The objects made before the dlopen are checked and freed with free().
 * 6. corona's exported malloc-family names, called through the handle on
 *    the C library's pointers (free, realloc, malloc_usable_size), must hand
 *    them on to the C library.
 * 7. A forked child uses both allocators and exits 0.
 * 8. dlclose, then the C library's malloc from a new thread.
 * stdout: a deterministic summary.  Exit status 0 when all checks passed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

enum { PRE_MAIN = 1500, PRE_THREAD = 400, LIVE = 512, OPS = 20000, LATE_THREADS = 3 };

typedef struct {
  void *p;
  size_t n;
  int corona; /* 1: corona's, 0: the C library's */
} obj_t;

static struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*aligned_malloc)(size_t, size_t);
  size_t (*usable)(void *);
  void (*free)(void *);
  void (*collect)(void);
  /* corona's override names, through the handle (NULL if not exported) */
  void (*ov_free)(void *);
  void *(*ov_realloc)(void *, size_t);
  size_t (*ov_usable)(void *);
  void *(*ov_malloc)(size_t);
} cr;

static int loaded;

static void obj_make(tu_rng_t *r, obj_t *o, int corona, size_t max) {
  size_t n = tu_below(r, 32) == 0 ? tu_log_range(r, 1, max) : tu_log_range(r, 1, 2048);
  unsigned kind = (unsigned)tu_below(r, 8);
  void *p;
  if (corona) {
    if (kind == 0) {
      p = cr.calloc(1, n);
      if (p != NULL) CHECK_ZERO(p, n);
    } else if (kind == 1) {
      size_t a = (size_t)1 << tu_range(r, 4, 12);
      p = cr.aligned_malloc(n, a);
      CHECKF(p == NULL || tu_is_aligned(p, a), "corona_aligned_malloc(%zu, %zu) = %p is not aligned", n, a, p);
    } else {
      p = cr.malloc(n);
    }
    if (p != NULL) CHECKF(cr.usable(p) >= n, "corona_usable_size(%p) = %zu < %zu", p, cr.usable(p), n);
  } else {
    if (kind == 0) {
      p = calloc(1, n);
      if (p != NULL) CHECK_ZERO(p, n);
    } else {
      p = malloc(n);
    }
    if (p != NULL && loaded)
      CHECKF(cr.usable(p) == 0, "corona_usable_size claims the C library's object %p (size %zu): %zu", p, n, cr.usable(p));
  }
  CHECKF(p != NULL, "%s allocation of %zu bytes failed", corona ? "corona" : "C library", n);
  o->p = p;
  o->n = p != NULL ? n : 0;
  o->corona = corona;
  if (p != NULL) tu_fill(p, n, tu_seed(p, n));
}

static void obj_check(const obj_t *o) {
  if (o->p != NULL) CHECK_PATTERN(o->p, o->n, tu_seed(o->p, o->n));
}

static void obj_drop(obj_t *o) {
  if (o->p == NULL) return;
  obj_check(o);
  if (o->corona)
    cr.free(o->p);
  else
    free(o->p);
  o->p = NULL;
  o->n = 0;
}

static void obj_realloc(tu_rng_t *r, obj_t *o) {
  if (o->p == NULL) return;
  obj_check(o);
  size_t n2 = tu_log_range(r, 1, tu_below(r, 8) == 0 ? 200000 : 4000);
  uint64_t old_seed = tu_seed(o->p, o->n);
  size_t keep = o->n < n2 ? o->n : n2;
  void *q = o->corona ? cr.realloc(o->p, n2) : realloc(o->p, n2);
  if (!CHECKF(q != NULL, "realloc to %zu failed", n2)) return;
  CHECK_PATTERN(q, keep, old_seed);
  o->p = q;
  o->n = n2;
  tu_fill(q, n2, tu_seed(q, n2));
}

/* ---- before the dlopen -------------------------------------------------- */

static obj_t pre[PRE_MAIN + 2 * PRE_THREAD];

static void *pre_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  tu_rng_t r;
  tu_rng_seed(&r, 300 + (uint64_t)t);
  for (int i = 0; i < PRE_THREAD; i++) obj_make(&r, &pre[PRE_MAIN + t * PRE_THREAD + i], 0, 100000);
  return NULL;
}

/* ---- after the dlopen: threads ----------------------------------------- */

static obj_t handed[LATE_THREADS][256]; /* corona objects made by main, freed by the threads */

static void *late_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  tu_rng_t r;
  tu_rng_seed(&r, 700 + (uint64_t)t);
  obj_t live[128];
  memset(live, 0, sizeof live);
  for (int k = 0; k < 4000; k++) {
    obj_t *o = &live[tu_below(&r, 128)];
    if (o->p != NULL && tu_below(&r, 5) == 0)
      obj_realloc(&r, o);
    else {
      obj_drop(o);
      obj_make(&r, o, (int)tu_below(&r, 2), 60000);
    }
  }
  for (int i = 0; i < 128; i++) obj_drop(&live[i]);
  for (int i = 0; i < 256; i++) obj_drop(&handed[t][i]); /* cross-thread corona frees */
  return NULL;
}

static void *plain_thread(void *arg) {
  (void)arg;
  tu_rng_t r;
  tu_rng_seed(&r, 999);
  obj_t o[64];
  for (int i = 0; i < 64; i++) obj_make(&r, &o[i], 0, 50000);
  for (int i = 0; i < 64; i++) obj_drop(&o[i]);
  return NULL;
}

static const char *object_of(void *addr) {
  Dl_info info;
  if (dladdr(addr, &info) == 0 || info.dli_fname == NULL) return "?";
  return info.dli_fname;
}

#define LOAD(field, name)                                                          \
  do {                                                                             \
    void *s_ = dlsym(h, name);                                                     \
    if (!CHECKF(s_ != NULL, "dlsym(%s) failed: %s", name, dlerror())) return 1; \
    memcpy(&cr.field, &s_, sizeof s_);                                             \
  } while (0)
/* Only a definition in libcorona.so itself counts: a dlsym on the handle
 * also searches its dependencies (the C library, a sanitizer runtime). */
#define LOAD_OPT(field, name)                            \
  do {                                                   \
    void *s_ = dlsym(h, name);                           \
    if (s_ != NULL && !same_object(s_, corona_base)) s_ = NULL; \
    memcpy(&cr.field, &s_, sizeof s_);                   \
  } while (0)

static int same_object(void *sym, void *base) {
  Dl_info info;
  return dladdr(sym, &info) != 0 && info.dli_fbase == base;
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  if (argc != 2) {
    fprintf(stderr, "usage: %s /path/to/libcorona.so\n", argv[0]);
    return 2;
  }
  const char *malloc_home = object_of((void *)malloc);
  if (strstr(malloc_home, "libcorona") != NULL) {
    fprintf(stderr, "dlopen_late: FAIL: malloc is already corona's (%s): run this without LD_PRELOAD\n", malloc_home);
    return 1;
  }

  /* 1. the C library's objects, from the main thread and two threads */
  tu_rng_t r;
  tu_rng_seed(&r, 1);
  for (int i = 0; i < PRE_MAIN; i++) obj_make(&r, &pre[i], 0, 300000);
  pthread_t pt[2];
  for (int t = 0; t < 2; t++) pthread_create(&pt[t], NULL, pre_thread, (void *)(intptr_t)t);
  for (int t = 0; t < 2; t++) pthread_join(pt[t], NULL);
  for (int i = 0; i < PRE_MAIN; i += 3) obj_realloc(&r, &pre[i]);

  /* 2. the late dlopen */
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    const char *e = dlerror();
    fprintf(stderr, "dlopen_late: FAIL: dlopen(%s) failed: %s\n", argv[1], e != NULL ? e : "?");
    if (e != NULL && strstr(e, "static TLS") != NULL)
      fprintf(stderr, "dlopen_late: corona's initial-exec TLS does not fit in the static TLS surplus\n");
    return 1;
  }
  LOAD(malloc, "corona_malloc");
  LOAD(calloc, "corona_calloc");
  LOAD(realloc, "corona_realloc");
  LOAD(aligned_malloc, "corona_aligned_malloc");
  LOAD(usable, "corona_usable_size");
  LOAD(free, "corona_free");
  LOAD(collect, "corona_collect");
  Dl_info corona_info;
  void *corona_base = NULL;
  {
    void *s_;
    memcpy(&s_, &cr.malloc, sizeof s_);
    if (dladdr(s_, &corona_info) != 0) corona_base = corona_info.dli_fbase;
  }
  LOAD_OPT(ov_free, "free");
  LOAD_OPT(ov_realloc, "realloc");
  LOAD_OPT(ov_usable, "malloc_usable_size");
  LOAD_OPT(ov_malloc, "malloc");
  loaded = 1;
  CHECKF(dlsym(RTLD_DEFAULT, "corona_malloc") == NULL, "RTLD_LOCAL, yet corona_malloc is in the global scope");
  const char *malloc_after = object_of((void *)malloc);
  CHECKF(strcmp(malloc_after, malloc_home) == 0, "the program's malloc moved from %s to %s after dlopen", malloc_home,
         malloc_after);

  /* 3. both allocators side by side */
  static obj_t live[LIVE];
  for (int k = 0; k < OPS; k++) {
    obj_t *o = &live[tu_below(&r, LIVE)];
    unsigned op = (unsigned)tu_below(&r, 10);
    if (o->p != NULL && op < 2)
      obj_realloc(&r, o);
    else {
      obj_drop(o);
      obj_make(&r, o, (int)(op & 1), 400000);
    }
    if (k % 5000 == 4999) cr.collect();
  }
  int n_corona = 0, n_libc = 0;
  for (int i = 0; i < LIVE; i++) {
    if (live[i].p == NULL) continue;
    obj_check(&live[i]);
    if (live[i].corona)
      n_corona++;
    else
      n_libc++;
  }

  /* 4. threads started after the dlopen */
  for (int t = 0; t < LATE_THREADS; t++)
    for (int i = 0; i < 256; i++) obj_make(&r, &handed[t][i], 1, 30000);
  pthread_t lt[LATE_THREADS];
  for (int t = 0; t < LATE_THREADS; t++)
    CHECK(pthread_create(&lt[t], NULL, late_thread, (void *)(intptr_t)t) == 0);
  for (int t = 0; t < LATE_THREADS; t++) pthread_join(lt[t], NULL);

  /* 5. the objects from before the dlopen, freed with free() */
  for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
    if (pre[i].p != NULL && i % 4 != 0) CHECKF(cr.usable(pre[i].p) == 0, "corona claims a pre-dlopen object");
    if (i % 4 != 0) obj_drop(&pre[i]);
  }

  /* 6. corona's override names, on the C library's pointers */
  int override_checked = 0;
  if (cr.ov_free != NULL && cr.ov_realloc != NULL && cr.ov_usable != NULL && cr.ov_malloc != NULL) {
    override_checked = 1;
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i += 4) {
      obj_t *o = &pre[i];
      if (o->p == NULL) continue;
      obj_check(o);
      size_t u = cr.ov_usable(o->p);
      CHECKF(u == malloc_usable_size(o->p), "corona's malloc_usable_size(%p) = %zu, the C library says %zu", o->p, u,
             malloc_usable_size(o->p));
      if (i % 8 == 0) {
        size_t n2 = o->n + 1000 + i;
        uint64_t seed = tu_seed(o->p, o->n);
        void *q = cr.ov_realloc(o->p, n2);
        if (CHECKF(q != NULL, "corona's realloc of a C library pointer failed")) {
          CHECK_PATTERN(q, o->n, seed);
          CHECKF(cr.usable(q) == 0, "corona's realloc took a C library object over (%p)", q);
          o->p = q;
          o->n = n2;
          tu_fill(q, n2, tu_seed(q, n2));
        }
        obj_drop(o); /* free() */
      } else {
        obj_check(o);
        cr.ov_free(o->p); /* must go to the C library's free */
        o->p = NULL;
      }
    }
    void *p = cr.ov_malloc(1000);
    CHECKF(p != NULL && cr.usable(p) >= 1000, "corona's malloc through the handle did not give a corona object");
    cr.ov_free(p);
  } else {
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i += 4) obj_drop(&pre[i]);
    fprintf(stderr, "dlopen_late: note: libcorona.so defines no malloc/free/realloc/malloc_usable_size"
                    " (a sanitizer build, or CORONA_OVERRIDE=OFF); step 6 skipped\n");
  }

  /* 7. fork: the child uses both */
  fflush(NULL);
  int failures_before_fork = tu_failure_count();
  pid_t pid = fork();
  if (pid == 0) {
    tu_rng_t cr_rng;
    tu_rng_seed(&cr_rng, 31337);
    obj_t c[64];
    memset(c, 0, sizeof c);
    for (int k = 0; k < 3000; k++) {
      obj_t *o = &c[tu_below(&cr_rng, 64)];
      obj_drop(o);
      obj_make(&cr_rng, o, k & 1, 100000);
    }
    for (int i = 0; i < 64; i++) obj_drop(&c[i]);
    for (int i = 0; i < LIVE; i++) obj_drop(&live[i]);
    _exit(tu_failure_count() == failures_before_fork ? 0 : 1);
  }
  int st = 0;
  if (CHECKF(pid > 0, "fork failed: %s", strerror(errno))) {
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child failed (status %#x)", st);
  }

  for (int i = 0; i < LIVE; i++) obj_drop(&live[i]);
  cr.collect();

  /* 8. unload, then the C library's malloc from a new thread */
  loaded = 0;
  CHECKF(dlclose(h) == 0, "dlclose failed: %s", dlerror());
  pthread_t last;
  CHECK(pthread_create(&last, NULL, plain_thread, NULL) == 0);
  pthread_join(last, NULL);

  printf("dlopen_late: %d pre-dlopen objects, %d ops, %d corona + %d libc live at the end of step 3, override names %s\n",
         PRE_MAIN + 2 * PRE_THREAD, OPS, n_corona, n_libc, override_checked ? "checked" : "absent");
  return tu_finish("dlopen_late", t0);
}
