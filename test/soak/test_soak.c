/* test_soak.c — the soak test (ctest name soak, label soak): corona under a
 * long, mixed, multi-threaded load, checked for corruption and for memory
 * that does not come back.
 *
 * The run is a series of waves until the time is up (--seconds N or
 * --minutes N; 60 s by default, 20 s under a sanitizer).  Each wave starts
 * 2-6 worker threads and, unless --no-exit-handoff, 1-2 sweeper threads;
 * all of them end within the wave, at different times.
 *   worker   keeps a ring of live objects and replaces random slots (half the
 *            picks in a short-lived corner of the ring, so lifetimes range
 *            from a few operations to the whole thread).  Sizes: mostly
 *            1 B..8 KB, some 8 KB..256 KB, a few up to 4 MB; malloc, calloc
 *            (checked zero), aligned, posix_memalign, realloc; a tenth from
 *            a user pool.  A retired object is freed, reallocated, or posted
 *            to another worker's mailbox; workers take what was posted to
 *            them and free (sometimes realloc) it.  At its end a worker
 *            posts half its ring: those objects outlive their thread.
 *   sweeper  allocates only in the smallest class (default heap and pool),
 *            frees a few thousand posted objects of every class, and exits:
 *            a thread that exits holding other threads' objects freed in
 *            classes where it never allocated.  Corona keeps such objects
 *            "hot" on the freeing thread's bin lists; an exit that hands
 *            back only the lists of bins with an active block loses them,
 *            and their blocks stay in use for good (default heap and pool).
 * Every object holds a pattern derived from its address and size (all of
 * it up to 64 KB; above, the first and last 4 KB and one word per page, so
 * every page is resident), checked before every free and realloc; a
 * mismatch prints the object, the offset and the seed, then aborts.
 *
 * After each wave main frees what the mailboxes still hold, calls
 * corona_collect and checks: no live bytes left in the test's accounting;
 * corona_stats memory_in_use (slab blocks out of the default heap's
 * regions, plus live large blocks) within 64 KB of its baseline taken at
 * the start; the same for the pool, read white-box from its struct after
 * the pool's collect (corona_stats covers the default heap only, and the
 * API has no collect for a pool); peak RSS (VmHWM) below 1.5 x peak live
 * bytes + 32 MB (skipped under ASan/TSan: shadow memory).  The first wave
 * that fails a check ends the run.  At the end the pool is destroyed and
 * must have given back every raw byte.
 *
 * A new wave starts only while the last one's length still fits before the
 * deadline.  Choices come from testutil's seeded PRNG: --seed S replays
 * them (the seed is printed at the start and in failures; thread
 * interleavings differ).  --no-exit-handoff is for diagnosis: no sweepers,
 * and every worker allocates once in every small class (default heap and
 * pool) before it frees anything, so no thread exits holding objects freed
 * in a class where it never allocated; a run that fails only without it
 * points at that exit path.  --waves N stops after N waves. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "corona.h"
#include "internal/fastpath.h" /* the pool's in-use figure, see pool_in_use */
#include "procutil.h"
#include "testutil.h"

#define MAX_WORKERS 6
#define MAX_SWEEPERS 2
#define RING 256        /* live objects per worker */
#define SHORT_SLOTS 16  /* half the picks land here: short lifetimes */
#define SMALL_MAX ((size_t)8 << 10)
#define MEDIUM_MAX ((size_t)256 << 10)
#define BIG_MAX ((size_t)4 << 20)
#define POOL_MAX ((size_t)64 << 10)
#define DENSE_MAX ((size_t)64 << 10) /* bigger objects get the sparse pattern */
#define EDGE 4096                    /* sparse: this much at each end, then one word a page */
#define SLACK ((size_t)64 << 10)     /* allowed distance from the memory-in-use baseline */
#define KIB(x) ((double)(x) / 1024.0)

typedef struct {
  void *p;
  uint32_t size;
  int16_t owner; /* allocating thread's index in its wave; -1: main */
  uint8_t in_pool;
} obj_t;

static struct {
  double seconds;
  uint64_t seed;
  bool exit_handoff;
  size_t max_waves;
} opt = {0.0, 0, true, SIZE_MAX};

static corona_pool *pool;
static atomic_size_t live_bytes, peak_live, wave_peak_live;
/* n_handoffs: objects freed by a thread other than the one that allocated them. */
static atomic_size_t n_allocs, n_pool_allocs, n_bytes, n_handoffs, n_reallocs;
static atomic_int workers_running;
static int wave_no; /* for messages only */

/* ---- the pool's memory: mmap, every byte accounted ---------------------- */
static atomic_size_t raw_bytes; /* given by raw_alloc, not yet back through raw_free */

static void *raw_alloc(intptr_t id, size_t *bytes) {
  (void)id;
  void *p = pu_map(*bytes);
  if (p != NULL) atomic_fetch_add(&raw_bytes, *bytes);
  return p;
}

static int raw_free(intptr_t id, void *p, size_t bytes) {
  (void)id;
  pu_unmap(p, bytes);
  atomic_fetch_sub(&raw_bytes, bytes);
  return 0;
}

/* ---- live-byte accounting (peaks for the RSS bound) -------------------- */
static void raise_peak(atomic_size_t *peak, size_t now) {
  size_t old = atomic_load_explicit(peak, memory_order_relaxed);
  while (now > old && !atomic_compare_exchange_weak_explicit(peak, &old, now, memory_order_relaxed,
                                                             memory_order_relaxed)) {
  }
}

static void live_add(size_t n) {
  size_t now = atomic_fetch_add_explicit(&live_bytes, n, memory_order_relaxed) + n;
  raise_peak(&peak_live, now);
  raise_peak(&wave_peak_live, now);
}

static void live_sub(size_t n) { atomic_fetch_sub_explicit(&live_bytes, n, memory_order_relaxed); }

/* ---- patterns ------------------------------------------------------------
 * Words of tu_pattern_word(seed, i) with seed = tu_seed(address, size).
 * walk() visits the positions an object of `size` bytes carries its
 * pattern in, below limit (realloc checks the kept prefix with the old
 * seed): fills them, checks them against the pattern, or checks them zero.
 * Returns the first bad offset, or SIZE_MAX. */
enum { FILL, CHECK_PAT, CHECK_ZERO };

static size_t span(unsigned char *c, size_t from, size_t to, uint64_t seed, int mode) {
  for (size_t j = from / 8; j * 8 < to; j++) {
    uint64_t w = mode == CHECK_ZERO ? 0 : tu_pattern_word(seed, j);
    size_t off = j * 8, n = to - off < 8 ? to - off : 8;
    if (mode == FILL) {
      memcpy(c + off, &w, n);
    } else if (memcmp(c + off, &w, n) != 0) {
      for (size_t i = 0; i < n; i++)
        if (c[off + i] != ((unsigned char *)&w)[i]) return off + i;
    }
  }
  return SIZE_MAX;
}

static size_t walk(void *p, size_t size, uint64_t seed, size_t limit, int mode) {
  unsigned char *c = p;
  size_t end = size < limit ? size : limit, bad;
  if (size <= DENSE_MAX) return span(c, 0, end, seed, mode);
  if ((bad = span(c, 0, end < EDGE ? end : EDGE, seed, mode)) != SIZE_MAX) return bad;
  size_t tail = (size - EDGE) & ~(size_t)7;
  for (size_t off = EDGE; off < tail && off < end; off += 4096)
    if ((bad = span(c, off, off + 8 < end ? off + 8 : end, seed, mode)) != SIZE_MAX) return bad;
  return tail < end ? span(c, tail, end, seed, mode) : SIZE_MAX;
}

static const char *obj_kind(const obj_t *o) { return o->in_pool ? "pool" : "default heap"; }

/* A damaged object is reported and the process aborts: whatever else it
 * would do next runs on a corrupted heap. */
static void check_pattern(const obj_t *o, void *at, uint64_t seed, size_t limit, const char *who) {
  size_t bad = walk(at, o->size, seed, limit, CHECK_PAT);
  if (bad == SIZE_MAX) return;
  uint64_t w = tu_pattern_word(seed, bad / 8);
  fprintf(stderr,
          "FAIL test_soak: wave %d, %s: %s object %p size %u (allocated by thread %d): byte %zu is 0x%02x, "
          "expected 0x%02x (run seed %llu)\n",
          wave_no, who, obj_kind(o), at, (unsigned)o->size, o->owner, bad, ((unsigned char *)at)[bad],
          ((unsigned char *)&w)[bad % 8], (unsigned long long)opt.seed);
  abort();
}

static uint64_t seed_of(const obj_t *o) { return tu_seed(o->p, o->size); }

/* ---- objects ------------------------------------------------------------- */
static size_t random_size(tu_rng_t *r) {
  size_t c = tu_below(r, 1000);
  if (c < 850) return tu_log_range(r, 1, SMALL_MAX);
  if (c < 985) return tu_log_range(r, SMALL_MAX + 1, MEDIUM_MAX);
  return tu_log_range(r, MEDIUM_MAX + 1, BIG_MAX);
}

static size_t random_pool_size(tu_rng_t *r) {
  return tu_below(r, 10) != 0 ? tu_log_range(r, 1, SMALL_MAX) : tu_log_range(r, SMALL_MAX + 1, POOL_MAX);
}

/* Allocates o (size bytes, from the pool or the default heap, through a
 * random call), checks what the call promises and fills the pattern. */
static bool new_object(tu_rng_t *r, obj_t *o, size_t size, bool in_pool, int owner) {
  size_t align = 16;
  bool zeroed = false;
  void *p = NULL;
  size_t c = tu_below(r, 100);
  if (c < 10) align = (size_t)1 << tu_range(r, 5, c < 2 ? 16 : 12);
  if (in_pool) {
    if (c < 10) p = corona_pool_aligned_malloc(pool, size, align);
    else if (c < 20) p = corona_pool_calloc(pool, 1, size), zeroed = true;
    else p = corona_pool_malloc(pool, size);
  } else {
    if (c < 8) p = corona_aligned_malloc(size, align);
    else if (c < 10) CHECK(corona_posix_memalign(&p, align, size) == 0);
    else if (c < 20) p = corona_calloc(size, 1), zeroed = true;
    else p = corona_malloc(size);
  }
  o->p = NULL;
  if (!CHECKF(p != NULL, "wave %d: %s allocation of %zu bytes (align %zu) failed, errno %d", wave_no,
              in_pool ? "pool" : "default", size, align, errno))
    return false;
  o->p = p;
  o->size = (uint32_t)size;
  o->owner = (int16_t)owner;
  o->in_pool = in_pool;
  CHECKF(tu_is_aligned(p, align), "%p not aligned to %zu", p, align);
  CHECKF(corona_usable_size(p) >= size, "usable size of %p: %zu < %zu", p, corona_usable_size(p), size);
  CHECKF((corona_pool_identify(p) == pool) == in_pool, "corona_pool_identify(%p) is wrong", p);
  if (zeroed) {
    size_t bad = walk(p, size, 0, SIZE_MAX, CHECK_ZERO);
    CHECKF(bad == SIZE_MAX, "calloc object %p size %zu: byte %zu not zero", p, size, bad);
  }
  walk(p, size, seed_of(o), SIZE_MAX, FILL);
  live_add(size);
  atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&n_bytes, size, memory_order_relaxed);
  if (in_pool) atomic_fetch_add_explicit(&n_pool_allocs, 1, memory_order_relaxed);
  return true;
}

/* Checks and frees o; self is the freeing thread (-1: main). */
static void free_object(obj_t *o, int self, const char *who) {
  check_pattern(o, o->p, seed_of(o), SIZE_MAX, who);
  live_sub(o->size);
  if (o->owner != self) atomic_fetch_add_explicit(&n_handoffs, 1, memory_order_relaxed);
  /* corona_free takes pool objects too: both ways are exercised. */
  if (o->in_pool && ((uintptr_t)o->p >> 4) % 8 != 0) corona_pool_free(pool, o->p);
  else corona_free(o->p);
  o->p = NULL;
}

/* Reallocates o to a random size (the kept prefix is checked with the old
 * seed, then the whole object gets the new pattern); o keeps its owner. */
static void realloc_object(tu_rng_t *r, obj_t *o, const char *who) {
  size_t old = o->size, size = tu_below(r, 2) ? tu_range(r, old / 2 + 1, old + old / 2 + 1)
                                              : (o->in_pool ? random_pool_size(r) : random_size(r));
  if (size > (o->in_pool ? POOL_MAX : BIG_MAX)) size = o->in_pool ? POOL_MAX : BIG_MAX;
  uint64_t old_seed = seed_of(o);
  check_pattern(o, o->p, old_seed, SIZE_MAX, who);
  size_t align = tu_below(r, 8) == 0 ? 256 : 16;
  void *q = o->in_pool ? corona_pool_realloc(pool, o->p, size)
            : align > 16 ? corona_aligned_realloc(o->p, size, align)
                         : corona_realloc(o->p, size);
  if (!CHECKF(q != NULL, "wave %d: realloc of %p from %zu to %zu failed, errno %d", wave_no, o->p, old, size, errno))
    return; /* o stays valid */
  if (o->in_pool) align = 16;
  CHECKF(tu_is_aligned(q, align), "realloc gave %p, not aligned to %zu", q, align);
  check_pattern(o, q, old_seed, size, "contents kept by realloc");
  o->p = q;
  o->size = (uint32_t)size;
  walk(q, size, seed_of(o), SIZE_MAX, FILL);
  live_sub(old);
  live_add(size);
  atomic_fetch_add_explicit(&n_reallocs, 1, memory_order_relaxed);
}

/* ---- hand-offs: one mailbox per worker (a mutex each; the allocator is
 * what is under test).  A worker posts to another worker's mailbox, so the
 * object really changes threads: on two cores one thread runs alone for a
 * whole time slice and would take back its own objects from a shared queue.
 * A post into a full mailbox fails and the sender frees the object. */
#define MAILBOX_CAP 1024
static struct {
  pthread_mutex_t lock;
  obj_t buf[MAILBOX_CAP];
  size_t head, count;
} mbox[MAX_WORKERS];

static bool post(int to, obj_t *o) {
  pthread_mutex_lock(&mbox[to].lock);
  bool ok = mbox[to].count < MAILBOX_CAP;
  if (ok) mbox[to].buf[(mbox[to].head + mbox[to].count++) % MAILBOX_CAP] = *o;
  pthread_mutex_unlock(&mbox[to].lock);
  if (ok) o->p = NULL;
  return ok;
}

static size_t take(int from, obj_t *out, size_t max) {
  pthread_mutex_lock(&mbox[from].lock);
  size_t n = mbox[from].count < max ? mbox[from].count : max;
  for (size_t i = 0; i < n; i++) out[i] = mbox[from].buf[(mbox[from].head + i) % MAILBOX_CAP];
  mbox[from].head = (mbox[from].head + n) % MAILBOX_CAP;
  mbox[from].count -= n;
  pthread_mutex_unlock(&mbox[from].lock);
  return n;
}

/* ---- threads --------------------------------------------------------------- */
typedef struct {
  int index, workers; /* workers: how many of this wave's threads have mailboxes (0..workers-1) */
  uint64_t seed;
  size_t ops;
} targ_t;

/* A random worker other than self. */
static int other(tu_rng_t *r, const targ_t *a) {
  int to = (int)tu_below(r, (size_t)a->workers - 1);
  return to >= a->index ? to + 1 : to;
}

static obj_t rings[MAX_WORKERS][RING];

/* --no-exit-handoff: one allocation in every small class, default heap
 * and pool, so that every bin of this thread has had a block of its own. */
static void prime_classes(void) {
  for (size_t s = 16; s <= 8064; s += 16) {
    corona_free(corona_malloc(s));
    corona_pool_free(pool, corona_pool_malloc(pool, s));
  }
}

static void *worker(void *arg) {
  const targ_t *a = arg;
  tu_rng_t r;
  tu_rng_seed(&r, a->seed);
  obj_t *ring = rings[a->index];
  memset(ring, 0, sizeof rings[0]);
  if (!opt.exit_handoff) prime_classes();
  for (size_t op = 0; op < a->ops; op++) {
    obj_t *o = &ring[tu_below(&r, 2) ? tu_below(&r, SHORT_SLOTS) : tu_below(&r, RING)];
    if (o->p != NULL) {
      size_t c = tu_below(&r, 100);
      if (c < 6) {
        realloc_object(&r, o, "worker realloc");
        continue;
      }
      if (c >= 40 || !post(other(&r, a), o)) free_object(o, a->index, "worker free");
    }
    bool in_pool = tu_below(&r, 10) == 0;
    new_object(&r, o, in_pool ? random_pool_size(&r) : random_size(&r), in_pool, a->index);
    if (tu_below(&r, 4) == 0) { /* other threads' objects, some still in use by a live thread */
      obj_t got[4];
      size_t n = take(a->index, got, tu_range(&r, 1, 4));
      for (size_t i = 0; i < n; i++) {
        if (tu_below(&r, 10) == 0) realloc_object(&r, &got[i], "realloc of another thread's object");
        free_object(&got[i], a->index, "worker freeing a handed-off object");
      }
    }
  }
  /* Half the ring outlives this thread: whoever takes it from a mailbox
   * (another worker, a sweeper, main) frees it while or after this thread
   * exits. */
  for (size_t i = 0; i < RING; i++)
    if (ring[i].p != NULL && (tu_below(&r, 2) != 0 || !post(other(&r, a), &ring[i])))
      free_object(&ring[i], a->index, "worker free at exit");
  atomic_fetch_sub(&workers_running, 1);
  return NULL;
}

static void *sweeper(void *arg) {
  const targ_t *a = arg;
  tu_rng_t r;
  tu_rng_seed(&r, a->seed);
  /* Its only allocations: the smallest class, in the default heap and in
   * the pool (so it has a TLS in each). */
  obj_t own[2];
  new_object(&r, &own[0], tu_range(&r, 1, 16), false, a->index);
  new_object(&r, &own[1], tu_range(&r, 1, 16), true, a->index);
  size_t freed = 0;
  obj_t got[16];
  for (int from = 0; freed < a->ops; from = (from + 1) % a->workers) {
    size_t n = take(from, got, 16);
    for (size_t i = 0; i < n; i++) free_object(&got[i], a->index, "sweeper freeing a handed-off object");
    freed += n;
    if (n == 0) {
      if (atomic_load(&workers_running) == 0) break;
      sched_yield();
    }
  }
  for (int i = 0; i < 2; i++)
    if (own[i].p != NULL) free_object(&own[i], a->index, "sweeper free at exit");
  return NULL;
}

/* ---- checks ------------------------------------------------------------------ */
/* Where the process's RSS is not corona's alone: a sanitizer's shadow
 * memory, or an emulator's own memory (qemu-user's translation cache and
 * page tables, in a cross build: CRTEST_EMULATOR is set). */
static bool sanitized(void) { return TU_ASAN || TU_TSAN || getenv("CRTEST_EMULATOR") != NULL; }

/* Debug mode (MALLOC_DEBUG / CORONA_DEBUG, CORONA_ wins) holds freed
 * objects in its quarantine: the memory figures do not apply. */
static bool debug_mode(void) {
  const char *v = getenv("CORONA_DEBUG");
  if (v == NULL) v = getenv("MALLOC_DEBUG");
  return v != NULL && strcmp(v, "0") != 0 && v[0] != '\0';
}

/* The default heap's memory in use after corona_collect (0 without
 * statistics). */
static size_t heap_in_use(void) {
  corona_collect();
  corona_stats st;
  return corona_stats_get(&st) == 0 ? (size_t)st.memory_in_use : 0;
}

/* White-box: the pool's share of what memory_in_use counts for the default
 * heap (slab blocks out of its regions, live large blocks), after the
 * collect corona_collect does for the default heap (main's caches in the
 * pool, orphans, cached empty blocks).  The API has neither for a pool. */
static size_t pool_in_use(void) {
#if CORONA_STATS
  cr_pool_t *p = (cr_pool_t *)(void *)pool;
  cr_collect(p, cr_pool_tls_peek(p));
  return atomic_load(&p->small_in_use) + atomic_load(&p->large_in_use);
#else
  return 0;
#endif
}

static struct {
  size_t heap_base, pool_base;
  long max_dev, max_pool_dev; /* largest |in use - baseline| seen, signed */
  size_t peak_rss, bound;
} chk;

static long deviation(size_t now, size_t base) { return (long)now - (long)base; }
static void note_dev(long *max, long dev) {
  if (labs(dev) > labs(*max)) *max = dev;
}

/* The wave's end (or the run's, when is "end": secs and the peak are the
 * run's): every object is freed; memory must be back. */
static bool wave_checks(const char *when, double secs, int workers, int sweepers) {
  int before = tu_failure_count();
  size_t live = atomic_load(&live_bytes), wave_peak = atomic_exchange(&wave_peak_live, 0);
  if (strcmp(when, "end") == 0) wave_peak = atomic_load(&peak_live);
  CHECKF(live == 0, "%s: %zu live bytes in the test's accounting after every object was freed", when, live);
  bool mem = !debug_mode();
  size_t heap = mem ? heap_in_use() : 0, pl = mem ? pool_in_use() : 0;
  long dev = deviation(heap, chk.heap_base), pdev = deviation(pl, chk.pool_base);
  note_dev(&chk.max_dev, dev);
  note_dev(&chk.max_pool_dev, pdev);
  chk.peak_rss = pu_peak_rss();
  chk.bound = atomic_load(&peak_live) * 3 / 2 + 32 * PU_MIB;
  printf("  %-9s %d+%d threads %5.2f s  live peak %7.1f MiB  in use %+8.1f KiB (%.1f KiB)  pool %+8.1f KiB  "
         "RSS %6.1f MiB (peak %6.1f, bound %6.1f)\n",
         when, workers, sweepers, secs, pu_mib(wave_peak), KIB(dev), KIB(heap), KIB(pdev), pu_mib(pu_rss()),
         pu_mib(chk.peak_rss), pu_mib(chk.bound));
  if (mem) {
    CHECKF(labs(dev) <= (long)SLACK,
           "%s: default heap memory_in_use %zu bytes after corona_collect, baseline %zu: %+.1f KiB, more than "
           "64 KiB off (blocks still held for objects that were all freed)",
           when, heap, chk.heap_base, KIB(dev));
    CHECKF(labs(pdev) <= (long)SLACK,
           "%s: pool memory in use %zu bytes after its collect, baseline %zu: %+.1f KiB, more than 64 KiB off",
           when, pl, chk.pool_base, KIB(pdev));
    CHECKF(sanitized() || chk.peak_rss < chk.bound,
           "%s: peak RSS %.1f MiB is not below 1.5 x peak live bytes (%.1f MiB) + 32 MiB = %.1f MiB", when,
           pu_mib(chk.peak_rss), pu_mib(atomic_load(&peak_live)), pu_mib(chk.bound));
  }
  return tu_failure_count() == before;
}

/* ---- main ---------------------------------------------------------------------- */
static void usage(void) {
  fprintf(stderr, "usage: test_soak [--seconds N | --minutes N] [--seed S] [--waves N] [--no-exit-handoff]\n");
  exit(2);
}

static void parse(int argc, char **argv) {
  opt.seconds = TU_ASAN || TU_TSAN ? 20.0 : 60.0;
  opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-exit-handoff") == 0) {
      opt.exit_handoff = false;
      continue;
    }
    if (v == NULL) usage();
    i++;
    if (strcmp(a, "--seconds") == 0) opt.seconds = strtod(v, NULL);
    else if (strcmp(a, "--minutes") == 0) opt.seconds = 60.0 * strtod(v, NULL);
    else if (strcmp(a, "--seed") == 0) opt.seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--waves") == 0) opt.max_waves = strtoull(v, NULL, 0);
    else usage();
  }
  if (opt.seconds <= 0.0 || opt.max_waves == 0) usage();
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  parse(argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  corona_stats st;
  bool stats = corona_stats_get(&st) == 0;
  printf("test_soak: %.0f s, seed %llu (replay: --seed %llu)%s%s%s%s\n", opt.seconds, (unsigned long long)opt.seed,
         (unsigned long long)opt.seed, opt.exit_handoff ? "" : ", --no-exit-handoff: no sweepers, classes primed",
         sanitized() ? "; RSS bound not checked under a sanitizer or an emulator (their own memory)" : "",
         debug_mode() ? "; debug mode: memory checks off" : "",
         stats ? "" : "; statistics compiled out: memory-in-use checks see 0");

  for (int k = 0; k < MAX_WORKERS; k++) pthread_mutex_init(&mbox[k].lock, NULL);
  corona_pool_policy policy = {.raw_alloc = raw_alloc, .raw_free = raw_free};
  if (corona_pool_create(&policy, &pool) != 0) {
    fprintf(stderr, "test_soak: corona_pool_create failed\n");
    return 2;
  }
  /* main's own caches (one small block in each heap) exist before the
   * baselines, so they are part of them. */
  tu_rng_t r;
  tu_rng_seed(&r, opt.seed);
  obj_t warm;
  if (new_object(&r, &warm, 16, false, -1)) free_object(&warm, -1, "main");
  if (new_object(&r, &warm, 16, true, -1)) free_object(&warm, -1, "main");
  chk.heap_base = heap_in_use();
  chk.pool_base = pool_in_use();
  printf("test_soak: baselines: default heap %.1f KiB in use, pool %.1f KiB\n", KIB(chk.heap_base),
         KIB(chk.pool_base));

  size_t base_ops = tu_scaled(12000, 1000), waves = 0, threads = 0;
  bool ok = true;
  double last = 0.0;
  while (ok && waves < opt.max_waves && (waves == 0 || tu_now() - t0 + last <= opt.seconds)) {
    double tw = tu_now();
    wave_no = (int)waves;
    int nw = (int)tu_range(&r, 2, MAX_WORKERS), ns = opt.exit_handoff ? (int)tu_range(&r, 1, MAX_SWEEPERS) : 0;
    pthread_t th[MAX_WORKERS + MAX_SWEEPERS];
    targ_t args[MAX_WORKERS + MAX_SWEEPERS];
    atomic_store(&workers_running, nw);
    for (int i = 0; i < nw + ns; i++) {
      args[i].index = i;
      args[i].workers = nw;
      args[i].seed = opt.seed ^ ((uint64_t)waves << 32) ^ ((uint64_t)i << 24);
      args[i].ops = i < nw ? tu_range(&r, base_ops / 2, base_ops * 3 / 2) : tu_range(&r, base_ops / 8, base_ops / 3);
      if (pthread_create(&th[i], NULL, i < nw ? worker : sweeper, &args[i]) != 0) {
        fprintf(stderr, "test_soak: pthread_create failed\n");
        return 2;
      }
    }
    for (int i = 0; i < nw + ns; i++) pthread_join(th[i], NULL);
    threads += (size_t)(nw + ns);
    /* What the mailboxes still hold outlived its thread: main frees it. */
    obj_t got[64];
    for (int k = 0; k < nw; k++)
      for (size_t n; (n = take(k, got, 64)) != 0;)
        for (size_t i = 0; i < n; i++) free_object(&got[i], -1, "main freeing what the wave left");
    char when[32];
    snprintf(when, sizeof when, "wave %zu", waves);
    last = tu_now() - tw;
    ok = wave_checks(when, last, nw, ns);
    waves++;
  }
  if (!ok) printf("test_soak: stopped at the first wave that failed a check (seed %llu)\n", (unsigned long long)opt.seed);
  else ok = wave_checks("end", tu_now() - t0, (int)threads, 0);

  corona_pool_destroy(pool);
  CHECKF(atomic_load(&raw_bytes) == 0, "pool destroyed, but %zu raw bytes were not given back",
         atomic_load(&raw_bytes));
  printf("test_soak: summary: %zu waves, %zu threads, %zu objects (%zu from the pool, %zu reallocs), %.2f GiB, "
         "%zu hand-offs, max memory_in_use deviation %+.1f KiB (pool %+.1f KiB), peak RSS %.1f MiB vs bound "
         "%.1f MiB%s, %.1f s, seed %llu\n",
         waves, threads, atomic_load(&n_allocs), atomic_load(&n_pool_allocs), atomic_load(&n_reallocs),
         (double)atomic_load(&n_bytes) / (1 << 30), atomic_load(&n_handoffs), KIB(chk.max_dev),
         KIB(chk.max_pool_dev), pu_mib(chk.peak_rss), pu_mib(chk.bound), sanitized() ? " (not checked)" : "",
         tu_now() - t0, (unsigned long long)opt.seed);
  return tu_finish("test_soak", t0);
}
