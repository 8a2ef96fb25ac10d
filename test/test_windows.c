/* test_windows.c — what the Windows OS layer (src/os_windows.c) must get
 * right, checked through the public API (run under Wine by ctest):
 *   refused   requests that pass corona's own limits but that VirtualAlloc
 *             refuses (tens of TiB; alignments of TiB): NULL with ENOMEM,
 *             live objects untouched, nothing left committed, the heap
 *             serving and verifying afterwards, 100 times over
 *   pool      a pool whose raw_alloc fails: NULL with ENOMEM, the pool
 *             usable again once raw_alloc succeeds
 *   exit      thread exit through the FLS callback: 300 threads started with
 *             CreateThread (and 100 through pthreads) each fill and empty
 *             their caches and hand objects to main; memory does not grow
 *             with the number of threads, the handed objects stay intact
 *             and can be freed after their owner has gone
 *   purge     freed pages given back (decommit) and taken again read as
 *             zero and stay writable: calloc after corona_collect, small
 *             and large, contents checked
 *   remap     a big object (its own reservation) shrinks in place, grows
 *             back in place into the reserved tail, then moves; contents
 *             kept, nothing left mapped after the free
 *   aligned   alignments from 64 KiB (the allocation granularity) to 16 MiB,
 *             four threads creating regions at once (the re-reserve race)
 *   huge      CORONA_USE_HUGE_PAGES on: large pages where the privilege is
 *             held, a clean fallback where not; contents checked
 *   abort     a bad free in a child process: exit code 3 and one "corona:"
 *             line on stderr naming the address (cr_os_fatal)
 *   report    MALLOC_STATS=1 in a child: the report at exit on stderr
 * Usage: test_windows [name...] (default: all); "child CASE" is internal. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>

#include "childutil.h"
#include "corona.h"
#include "procutil.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)
#define GB ((size_t)1 << 30)
#define TB ((size_t)1 << 40)

static uint64_t mapped_now(void) {
  corona_stats st;
  return corona_stats_get(&st) == 0 ? st.memory_mapped : 0;
}

/* ---- a set of live objects, filled and checked ----------------------------------- */
typedef struct {
  void *p;
  size_t n;
} obj_t;

#define LIVE 400
static obj_t live[LIVE];

static void live_make(uint64_t seed) {
  tu_rng_t r;
  tu_rng_seed(&r, seed);
  for (size_t i = 0; i < LIVE; i++) {
    size_t n = i % 10 == 0 ? tu_range(&r, 9 * KB, 3 * MB) : tu_log_range(&r, 1, 8 * KB);
    live[i].p = corona_malloc(n);
    live[i].n = n;
    if (CHECKF(live[i].p != NULL, "malloc(%zu)", n)) tu_fill(live[i].p, n, tu_seed(live[i].p, n));
  }
}

static void live_check(const char *what) {
  size_t bad = 0;
  for (size_t i = 0; i < LIVE && bad < 5; i++)
    if (live[i].p != NULL && !CHECK_PATTERN(live[i].p, live[i].n, tu_seed(live[i].p, live[i].n))) {
      printf("    (%s)\n", what);
      bad++;
    }
}

static void live_free(void) {
  for (size_t i = 0; i < LIVE; i++) corona_free(live[i].p);
  memset(live, 0, sizeof live);
}

/* Allocates, fills, checks and frees a mix of sizes: the heap works. */
static void heap_works(const char *what) {
  static obj_t o[600];
  tu_rng_t r;
  tu_rng_seed(&r, 99);
  for (size_t i = 0; i < 600; i++) {
    size_t n = i % 20 == 0 ? tu_range(&r, 9 * KB, 6 * MB) : tu_log_range(&r, 1, 8 * KB);
    o[i].p = corona_malloc(n);
    o[i].n = n;
    if (!CHECKF(o[i].p != NULL, "%s: malloc(%zu) failed", what, n)) continue;
    tu_fill(o[i].p, n, tu_seed(o[i].p, n) ^ 7);
  }
  for (size_t i = 0; i < 600; i++)
    if (o[i].p != NULL) {
      CHECK_PATTERN(o[i].p, o[i].n, tu_seed(o[i].p, o[i].n) ^ 7);
      corona_free(o[i].p);
    }
}

/* ---- refused: VirtualAlloc says no ----------------------------------------------------- */
static void test_refused(void) {
  live_make(1);
  uint64_t mapped0 = mapped_now();
  size_t commit0 = pu_vm_size();
  /* Under corona's limit (2^46), far over any commit limit. */
  const size_t sizes[] = {40 * TB, 63 * TB, 17 * TB + 12345, 60 * TB + 3 * MB};
  size_t refused = 0, served = 0;
  for (int round = 0; round < 100; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      errno = 0;
      void *p = round % 2 ? corona_aligned_malloc(sizes[i], 64 * KB << (i % 4)) : corona_malloc(sizes[i]);
      if (p == NULL) {
        CHECKF(errno == ENOMEM, "malloc(%zu): NULL with errno %d, want ENOMEM", sizes[i], errno);
        refused++;
      } else { /* a system that does grant it: the memory must be real */
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[sizes[i] - 1] = 2;
        corona_free(p);
        served++;
      }
    }
    /* Alignments no hole in the address space has room for. */
    errno = 0;
    void *q = corona_aligned_malloc(MB, (size_t)32 * TB);
    if (q == NULL) CHECKF(errno == ENOMEM, "aligned_malloc(1 MB, 32 TB): errno %d", errno), refused++;
    else {
      CHECK(tu_is_aligned(q, (size_t)32 * TB));
      memset(q, 0x5A, MB);
      corona_free(q);
      served++;
    }
    /* A realloc that cannot be served leaves the object as it was. */
    obj_t *o = &live[(size_t)round * 7 % LIVE];
    errno = 0;
    void *r = corona_realloc(o->p, 50 * TB);
    if (r == NULL) CHECK(errno == ENOMEM);
    else { /* granted: shrink it back (contents up to n are kept either way) */
      o->p = corona_realloc(r, o->n);
      CHECK(o->p != NULL);
    }
  }
  printf("    %zu refused, %zu granted by the system\n", refused, served);
  live_check("after refused requests");
  heap_works("after refused requests");
  corona_collect();
  uint64_t mapped1 = mapped_now();
  size_t commit1 = pu_vm_size();
  CHECKF(mapped1 <= mapped0 + 64 * MB, "mapped bytes grew from %.1f to %.1f MiB across refusals",
         (double)mapped0 / MB, (double)mapped1 / MB);
  CHECKF(commit1 <= commit0 + 128 * MB, "commit grew from %.1f to %.1f MiB across refusals", pu_mib(commit0),
         pu_mib(commit1));
  live_free();
}

/* ---- pool: raw_alloc fails -------------------------------------------------------------- */
static atomic_int pool_fail;
static atomic_int pool_chunks;

static void *pool_alloc(intptr_t id, size_t *bytes) {
  (void)id;
  if (atomic_load(&pool_fail)) return NULL;
  void *p = pu_map(*bytes);
  if (p != NULL) atomic_fetch_add(&pool_chunks, 1);
  return p;
}

static int pool_free(intptr_t id, void *p, size_t bytes) {
  (void)id;
  pu_unmap(p, bytes);
  atomic_fetch_sub(&pool_chunks, 1);
  return 0;
}

static void test_pool(void) {
  corona_pool_policy pol = {pool_alloc, pool_free, 1 * MB, false, false, 5};
  corona_pool *pool = NULL;
  if (!CHECK(corona_pool_create(&pol, &pool) == 0)) return;
  static obj_t o[256];
  size_t n_ok = 0;
  for (size_t i = 0; i < 256; i++) {
    size_t n = i % 16 == 0 ? 200 * KB + i : 24 + i * 13;
    o[i].p = corona_pool_malloc(pool, n);
    o[i].n = n;
    if (CHECK(o[i].p != NULL)) tu_fill(o[i].p, n, tu_seed(o[i].p, n)), n_ok++;
  }
  atomic_store(&pool_fail, 1);
  size_t refused = 0;
  for (int k = 0; k < 200; k++) {
    errno = 0;
    void *p = corona_pool_malloc(pool, 3 * MB + (size_t)k); /* more than any chunk holds */
    if (p == NULL) {
      CHECKF(errno == ENOMEM, "pool malloc with raw_alloc failing: errno %d", errno);
      refused++;
    } else {
      CHECKF(p == NULL, "pool malloc served 3 MB with raw_alloc failing");
      corona_pool_free(pool, p);
    }
  }
  CHECK(refused == 200);
  atomic_store(&pool_fail, 0);
  for (size_t i = 0; i < 256; i++)
    if (o[i].p) CHECK_PATTERN(o[i].p, o[i].n, tu_seed(o[i].p, o[i].n));
  void *big = corona_pool_malloc(pool, 3 * MB);
  if (CHECK(big != NULL)) {
    tu_fill(big, 3 * MB, 3);
    CHECK_PATTERN(big, 3 * MB, 3);
    corona_pool_free(pool, big);
  }
  for (size_t i = 0; i < 256; i++) corona_pool_free(pool, o[i].p);
  CHECK(corona_pool_destroy(pool) == 0);
  CHECKF(atomic_load(&pool_chunks) == 0, "%d raw chunks not given back", atomic_load(&pool_chunks));
}

/* ---- exit: thread exit through the FLS callback ----------------------------------------- */
#define HAND 8
static obj_t handed[HAND];

/* Fills and empties the thread's caches: every small class, a few large
 * objects for the thread's large-object cache; leaves HAND objects for
 * main. */
static void thread_work(unsigned id) {
  static _Thread_local void *keep[512];
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < 512; i++) {
      size_t n = 16 + (i * 16) % 8000;
      keep[i] = corona_malloc(n);
      if (keep[i]) memset(keep[i], (int)(i & 0xff), n);
    }
    for (size_t i = 0; i < 512; i++) corona_free(keep[i]);
  }
  for (size_t i = 0; i < 4; i++) {
    void *p = corona_malloc(100 * KB + i * 300 * KB);
    if (p) memset(p, 1, 1000);
    corona_free(p);
  }
  for (size_t i = 0; i < HAND; i++) {
    size_t n = i == 0 ? 40 * KB + id : 32 + i * 100 + id % 64;
    handed[i].p = corona_malloc(n);
    handed[i].n = n;
    if (handed[i].p) tu_fill(handed[i].p, n, tu_seed(handed[i].p, n));
  }
}

static DWORD WINAPI win_thread(void *arg) {
  thread_work((unsigned)(uintptr_t)arg);
  return 0;
}

static void *posix_thread(void *arg) {
  thread_work((unsigned)(uintptr_t)arg);
  return NULL;
}

static void take_handed(void) {
  for (size_t i = 0; i < HAND; i++) {
    if (!CHECK(handed[i].p != NULL)) continue;
    CHECK_PATTERN(handed[i].p, handed[i].n, tu_seed(handed[i].p, handed[i].n));
    corona_free(handed[i].p); /* its owner has exited: an orphaned block */
    handed[i].p = NULL;
  }
}

static void test_exit(void) {
  corona_collect();
  /* A first few threads, so that the pool's shared caches are warm. */
  for (unsigned t = 0; t < 10; t++) {
    HANDLE h = CreateThread(NULL, 0, win_thread, (void *)(uintptr_t)t, 0, NULL);
    if (!CHECK(h != NULL)) return;
    WaitForSingleObject(h, INFINITE);
    CloseHandle(h);
    take_handed();
  }
  uint64_t mapped0 = mapped_now();
  for (unsigned t = 0; t < 300; t++) {
    HANDLE h = CreateThread(NULL, 0, win_thread, (void *)(uintptr_t)t, 0, NULL);
    if (!CHECK(h != NULL)) return;
    WaitForSingleObject(h, INFINITE);
    CloseHandle(h);
    take_handed();
  }
  for (unsigned t = 0; t < 100; t++) {
    pthread_t th;
    if (!CHECK(pthread_create(&th, NULL, posix_thread, (void *)(uintptr_t)t) == 0)) return;
    pthread_join(th, NULL);
    take_handed();
  }
  uint64_t mapped1 = mapped_now();
  /* Without the exit callback every thread would keep its blocks and its
   * large-object cache: about 2 MB each, 800 MB in all. */
  printf("    400 threads: mapped %.1f -> %.1f MiB\n", (double)mapped0 / MB, (double)mapped1 / MB);
  CHECKF(mapped1 < mapped0 + 48 * MB, "mapped memory grew by %.1f MiB over 400 exited threads: their caches stayed",
         ((double)mapped1 - (double)mapped0) / MB);
  heap_works("after thread exits");
}

/* ---- purge: decommitted pages come back as zeros ------------------------------------------ */
static void test_purge(void) {
  static void *p[64];
  for (int round = 0; round < 3; round++) {
    size_t n = 256 * KB + (size_t)round * 100 * KB;
    for (size_t i = 0; i < 64; i++) {
      p[i] = corona_malloc(n);
      if (CHECK(p[i] != NULL)) memset(p[i], 0xEE, n);
    }
    for (size_t i = 0; i < 64; i++) corona_free(p[i]);
    corona_collect(); /* caches back to the regions, free pages purged */
    for (size_t i = 0; i < 64; i++) {
      p[i] = corona_calloc(1, n);
      if (!CHECK(p[i] != NULL)) continue;
      CHECK_ZERO(p[i], n);
      tu_fill(p[i], n, tu_seed(p[i], n));
    }
    for (size_t i = 0; i < 64; i++)
      if (p[i]) CHECK_PATTERN(p[i], n, tu_seed(p[i], n)), corona_free(p[i]);
  }
  /* Small objects: whole slabs go back and are purged, then reused. */
  static void *s[20000];
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < 20000; i++) {
      s[i] = corona_malloc(48 + i % 200);
      if (s[i]) memset(s[i], 0xCD, 48 + i % 200);
    }
    for (size_t i = 0; i < 20000; i++) corona_free(s[i]);
    corona_collect();
    for (size_t i = 0; i < 20000; i++) {
      size_t n = 48 + i % 200;
      s[i] = corona_calloc(1, n);
      if (!CHECK(s[i] != NULL)) continue;
      CHECK_ZERO(s[i], n);
      tu_fill(s[i], n, tu_seed(s[i], n));
    }
    for (size_t i = 0; i < 20000; i++)
      if (s[i]) CHECK_PATTERN(s[i], 48 + i % 200, tu_seed(s[i], 48 + i % 200)), corona_free(s[i]);
  }
}

/* ---- remap: shrink in place, grow back in place, move ------------------------------------- */
static void test_remap(void) {
  corona_collect();
  uint64_t mapped0 = mapped_now();
  char *p = corona_malloc(64 * MB);
  if (!CHECK(p != NULL)) return;
  tu_fill(p, 64 * MB, 11);
  char *q = corona_realloc(p, 20 * MB);
  if (!CHECK(q != NULL)) return;
  CHECKF(q == p, "64 MB -> 20 MB moved (%p -> %p)", (void *)p, (void *)q);
  CHECK_PATTERN(q, 20 * MB, 11);
  CHECKF(mapped_now() <= mapped0 + 24 * MB, "after the shrink %.1f MiB more mapped", (mapped_now() - mapped0) / 1.0 / MB);
  char *r = corona_realloc(q, 60 * MB);
  if (!CHECK(r != NULL)) return;
  printf("    64 MB -> 20 MB: in place; 20 MB -> 60 MB: %s\n", r == q ? "in place (reserved tail)" : "moved");
  CHECK_PATTERN(r, 20 * MB, 11);
  tu_fill(r, 60 * MB, 12);
  char *s = corona_realloc(r, 200 * MB);
  if (!CHECK(s != NULL)) return;
  CHECK_PATTERN(s, 60 * MB, 12);
  tu_fill(s, 200 * MB, 13);
  CHECK_PATTERN(s, 200 * MB, 13);
  corona_free(s);
  corona_collect();
  uint64_t mapped1 = mapped_now();
  CHECKF(mapped1 <= mapped0 + 4 * MB, "mapped %.1f MiB before, %.1f MiB after the big object's free",
         (double)mapped0 / MB, (double)mapped1 / MB);
  CHECK(corona_usable_size(p) == 0); /* the address is no longer corona's */
}

/* ---- aligned: above the 64 KiB granularity, and the re-reserve race --------------------- */
static void *aligned_worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  static _Thread_local void *p[64];
  for (int round = 0; round < 4; round++) {
    for (size_t i = 0; i < 64; i++) {
      size_t a = (64 * KB) << (i % 9), n = 1000 + i * 7919 + id;
      p[i] = corona_aligned_malloc(n, a);
      if (!CHECKF(p[i] != NULL, "aligned_malloc(%zu, %zu)", n, a)) continue;
      CHECKF(tu_is_aligned(p[i], a), "aligned_malloc(%zu, %zu) = %p", n, a, p[i]);
      tu_fill(p[i], n, tu_seed(p[i], n));
    }
    for (size_t i = 0; i < 64; i++) {
      size_t n = 1000 + i * 7919 + id;
      if (p[i]) CHECK_PATTERN(p[i], n, tu_seed(p[i], n)), corona_free(p[i]);
    }
    /* Many small objects at once: new slab regions (4 MB aligned) in every thread. */
    static _Thread_local void *s[4096];
    for (size_t i = 0; i < 4096; i++) {
      s[i] = corona_malloc(2000 + id);
      if (s[i]) memset(s[i], (int)id, 2000 + id);
    }
    for (size_t i = 0; i < 4096; i++) corona_free(s[i]);
  }
  return NULL;
}

static void test_aligned(void) {
  pthread_t t[4];
  for (unsigned i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, aligned_worker, (void *)(uintptr_t)i) == 0);
  for (unsigned i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

/* ---- huge: large pages or the fallback ------------------------------------------------- */
static void test_huge(void) {
  CHECK(corona_allocation_mode(CORONA_USE_HUGE_PAGES, 1) == 0);
  live_make(3);
  heap_works("with huge pages on");
  static obj_t big[8];
  for (size_t i = 0; i < 8; i++) {
    big[i].n = 3 * MB + i * MB;
    big[i].p = corona_malloc(big[i].n);
    if (CHECK(big[i].p != NULL)) tu_fill(big[i].p, big[i].n, i);
  }
  for (size_t i = 0; i < 8; i++)
    if (big[i].p) CHECK_PATTERN(big[i].p, big[i].n, i), corona_free(big[i].p);
  live_check("huge pages on");
  live_free();
  CHECK(corona_allocation_mode(CORONA_USE_HUGE_PAGES, 0) == 0);
  corona_collect();
}

/* ---- abort and report: in a child --------------------------------------------------------- */
static char child_out[16 * 1024], child_err[64 * 1024];
static cu_child_t child;

static int run_self(const char *what, const char *var) {
  static cu_env_t env;
  cu_env_clean(&env);
  if (var) cu_env_set(&env, var);
  char *argv[] = {(char *)cu_self_exe(), "child", (char *)what, NULL};
  cu_child_init(&child, child_out, sizeof child_out, child_err, sizeof child_err);
  return cu_run(&child, argv[0], argv, &env);
}

static char not_ours[256];

static int child_case(const char *what) {
  if (strcmp(what, "badfree") == 0) {
    void *p = corona_malloc(100); /* corona is up */
    cu_put(1, "addr %p", (void *)(not_ours + 64));
    corona_free(not_ours + 64);
    corona_free(p);
    cu_put(1, "went on");
    return 0;
  }
  if (strcmp(what, "report") == 0) {
    for (int i = 0; i < 1000; i++) corona_free(corona_malloc((size_t)i * 8 + 1));
    void *q = corona_malloc(300 * KB);
    corona_free(q);
    cu_put(1, "done");
    return 0;
  }
  return 2;
}

static void test_abort(void) {
  int st = run_self("badfree", NULL);
  CHECKF(cu_signalled(st, SIGABRT), "bad free: child ended by %s, want abort (exit 3); stderr: %.300s",
         cu_describe(st), child_err);
  CHECKF(strstr(child_out, "went on") == NULL, "bad free: the child went on");
  char line[512] = "";
  cu_line(child_err, 0, line, sizeof line);
  CHECKF(cu_line_count(child_err) == 1 && cu_starts(line, "corona: "), "bad free: stderr \"%.300s\"", child_err);
  const char *a = strstr(child_out, "addr ");
  char addr[40] = "";
  if (a) sscanf(a + 5, "%39s", addr);
  /* %p prints upper-case hex without 0x here; the report has its own form */
  size_t i = 0;
  while (addr[i] == '0' || addr[i] == 'x') i++;
  bool named = false;
  for (const char *s = child_err; *s && !named && addr[i]; s++) {
    size_t k = 0;
    while (addr[i + k] && s[k] && (s[k] | 0x20) == (addr[i + k] | 0x20)) k++;
    named = addr[i + k] == '\0';
  }
  CHECKF(named, "bad free: \"%s\" does not name %s", line, addr);
  printf("    bad free: %s, \"%s\"\n", cu_describe(st), line);
}

static void test_report(void) {
  int st = run_self("report", "MALLOC_STATS=1");
  CHECKF(cu_exited(st, 0) && strstr(child_out, "done"), "report: child ended by %s", cu_describe(st));
  CHECKF(strstr(child_err, "corona statistics") != NULL && cu_line_count(child_err) > 5,
         "report: no statistics on stderr at exit: \"%.300s\"", child_err);
  st = run_self("report", NULL);
  CHECKF(cu_exited(st, 0) && child_err[0] == '\0', "no report asked for: stderr \"%.300s\"", child_err);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "child") == 0) return child_case(argv[2]);
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  static const tu_part_t tests[] = {
      {"abort", test_abort},   {"report", test_report}, {"refused", test_refused}, {"pool", test_pool},
      {"exit", test_exit},     {"purge", test_purge},   {"remap", test_remap},     {"aligned", test_aligned},
      {"huge", test_huge},
  };
  tu_run_parts(argc, argv, tests, sizeof tests / sizeof tests[0], 8);
  return tu_finish("test_windows", t0);
}
