/* test_pool.c — black-box test of memory pools (issue 7): corona_pool_*
 * with fixed and growing policies, their raw memory, threads, lifecycle and
 * misuse.  Every object is filled with a pattern derived from its address
 * and size and checked before it is freed; raw memory is accounted for
 * exactly (every raw_free must match one raw_alloc, pointer and size).
 * Groups (run all without arguments, or name them):
 *   fixed      fixed pools over buffers of 48..160 KB serve 4100..32000 B
 *              (large objects where no medium block fits); a fixed pool
 *              over a static buffer (aligned, misaligned by 8,
 *              and a 20 MiB one spanning two regions): raw_alloc is called
 *              once; 1000-byte objects fill >= 85 % of the buffer until
 *              NULL/ENOMEM; a mixed fill (16 B .. 1 MiB) to the brim; every
 *              object lies inside the buffer, 16-aligned, disjoint, intact;
 *              after ENOMEM the pool serves again once objects are freed
 *              (through corona_pool_free and corona_free); reset gives it all
 *              back (the same amount fits again, several rounds); aligned
 *              objects up to 64 KiB; a large realloc shrink in a full pool;
 *              raw_alloc failing; destroy with and without raw_free; a big
 *              object after every small one was freed.
 *   growing    raw_alloc/raw_free count calls and bytes and match every
 *              (ptr, bytes) pair; keep_all_memory=true gives nothing back
 *              before destroy; with false a freed > 16 MiB block goes back at
 *              once; raw_alloc failing after N calls gives NULL/ENOMEM, then
 *              recovery; objects 0 .. 64 KiB and 20-40 MiB; realloc chains;
 *              calloc zero on dirty raw memory and on reused memory;
 *              aligned_malloc 16 .. 64 KiB; raw memory that is not 16 KB
 *              aligned; raw memory from corona_malloc itself (in a child).
 *   threads    8 pools (growing and fixed) x 4 threads: objects from random
 *              pools handed between threads through shared slots, checked,
 *              freed by other threads via corona_pool_free / corona_free,
 *              reallocated by other threads; some pools reset while the
 *              threads wait, then used again; identify() and usable_size on
 *              objects of every pool, NULL for default-heap, interior, stack
 *              and static pointers.
 *   lifecycle  create/destroy 1000 times (ids recycled, raw bytes given ==
 *              bytes returned); 255 pools alive at once, the 256th ENOMEM;
 *              threads that used a pool and exited before destroy; a thread
 *              that outlives its pool while a new pool takes the same id;
 *              destroy while another thread creates a pool.
 *   errors     EINVAL for bad policies, NULL and destroyed pools; in debug
 *              mode (a child with MALLOC_DEBUG=1) a destroyed or NULL pool
 *              aborts with a line naming the call and the pool; freeing or
 *              reallocating an object through the wrong pool aborts with a
 *              line naming the object (children; each beside its correct
 *              twin, which must exit 0 with an empty stderr).
 * Children are this program re-executed as "test_pool child NAME bug|ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "childutil.h"
#include "corona.h"
#include "procutil.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)
#define MAX_SMALL 32704

/* ==== raw memory sources ======================================================
 * A pool's policy.pool_id is the index of its source here.  Growing sources
 * map memory with mmap (optionally dirtied, shifted off 16 KB alignment, or
 * larger than asked) and record every piece; fixed sources answer with
 * their buffer. */
#define N_SRC 300

typedef struct src_s {
  unsigned char *buf; /* fixed: the buffer */
  size_t buf_bytes;
  bool dirty;      /* growing: new memory is filled with 0xAB (raw memory is not zero) */
  size_t offset;   /* growing: the pointer given is this far past a 16 KB boundary */
  size_t extra;    /* growing: *bytes is raised by this much */
  atomic_long allocs, frees, failed; /* raw_alloc calls that gave memory, raw_free calls, raw_alloc NULLs */
  atomic_size_t bytes_in, bytes_out, first_ask;
  atomic_long fail_after; /* raw_alloc calls that still succeed; -1: all */
  atomic_long frees_wrong; /* raw_free calls that matched no piece of this source */
} src_t;
static src_t srcs[N_SRC];

typedef struct rec_s {
  intptr_t id;
  char *p;      /* what raw_alloc returned */
  size_t n;     /* and the bytes it said */
  char *base;   /* the mapping */
  size_t len;
} rec_t;
#define N_RECS 16384
static rec_t recs[N_RECS];
static size_t n_recs;
static pthread_mutex_t recs_mu = PTHREAD_MUTEX_INITIALIZER;

static void src_reset(int id) {
  src_t *s = &srcs[id];
  s->buf = NULL;
  s->buf_bytes = 0;
  s->dirty = false;
  s->offset = s->extra = 0;
  atomic_store(&s->allocs, 0);
  atomic_store(&s->frees, 0);
  atomic_store(&s->failed, 0);
  atomic_store(&s->bytes_in, 0);
  atomic_store(&s->bytes_out, 0);
  atomic_store(&s->first_ask, 0);
  atomic_store(&s->fail_after, -1);
  atomic_store(&s->frees_wrong, 0);
}

static bool take_failure(src_t *s) {
  long left = atomic_load(&s->fail_after);
  while (left > 0 && !atomic_compare_exchange_weak(&s->fail_after, &left, left - 1)) {
  }
  if (left == 0) {
    atomic_fetch_add(&s->failed, 1);
    return true;
  }
  return false;
}

static void *grow_alloc(intptr_t id, size_t *bytes) {
  src_t *s = &srcs[id];
  if (take_failure(s)) return NULL;
  size_t n = *bytes + s->extra;
  size_t len = n + s->offset + 16 * KB;
  char *base = pu_map(len);
  if (base == NULL) return NULL;
  char *p = (char *)(((uintptr_t)base + 16 * KB - 1) & ~(uintptr_t)(16 * KB - 1)) + s->offset;
  if (s->dirty) memset(p, 0xAB, n);
  pthread_mutex_lock(&recs_mu);
  bool room = n_recs < N_RECS;
  if (room) recs[n_recs++] = (rec_t){id, p, n, base, len};
  pthread_mutex_unlock(&recs_mu);
  if (!CHECKF(room, "test: raw piece table full")) {
    pu_unmap(base, len);
    return NULL;
  }
  size_t expect = 0;
  atomic_compare_exchange_strong(&s->first_ask, &expect, *bytes);
  atomic_fetch_add(&s->allocs, 1);
  atomic_fetch_add(&s->bytes_in, n);
  *bytes = n;
  return p;
}

static int grow_free(intptr_t id, void *ptr, size_t bytes) {
  rec_t r = {0};
  bool found = false;
  pthread_mutex_lock(&recs_mu);
  for (size_t i = 0; i < n_recs; i++) {
    if (recs[i].p == ptr && recs[i].id == id && recs[i].n == bytes) {
      r = recs[i];
      recs[i] = recs[--n_recs];
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&recs_mu);
  atomic_fetch_add(&srcs[id].frees, 1);
  if (!found) {
    atomic_fetch_add(&srcs[id].frees_wrong, 1);
    tu_fail(__FILE__, __LINE__, "raw_free matches a piece", "raw_free(pool_id %ld, %p, %zu) matches no piece raw_alloc "
            "gave to that pool", (long)id, ptr, bytes);
    return -1;
  }
  atomic_fetch_add(&srcs[id].bytes_out, bytes);
  pu_unmap(r.base, r.len);
  return 0;
}

static void *fixed_alloc(intptr_t id, size_t *bytes) {
  src_t *s = &srcs[id];
  if (take_failure(s)) return NULL;
  atomic_fetch_add(&s->allocs, 1);
  atomic_store(&s->first_ask, *bytes);
  atomic_fetch_add(&s->bytes_in, s->buf_bytes);
  *bytes = s->buf_bytes;
  return s->buf;
}

static int fixed_free(intptr_t id, void *ptr, size_t bytes) {
  src_t *s = &srcs[id];
  atomic_fetch_add(&s->frees, 1);
  if (!CHECKF(ptr == s->buf && bytes == s->buf_bytes, "fixed raw_free(%p, %zu), want (%p, %zu)", ptr, bytes,
              (void *)s->buf, s->buf_bytes))
    atomic_fetch_add(&s->frees_wrong, 1);
  else atomic_fetch_add(&s->bytes_out, bytes);
  return 0;
}

/* Pieces of source id still held by its pool. */
static size_t src_live(int id) {
  size_t n = 0;
  pthread_mutex_lock(&recs_mu);
  for (size_t i = 0; i < n_recs; i++) n += recs[i].id == id;
  pthread_mutex_unlock(&recs_mu);
  return n;
}

/* Whether [p, p+n) lies inside one piece source id gave (or its buffer). */
static bool in_src(int id, const void *p, size_t n) {
  const char *c = p;
  const src_t *s = &srcs[id];
  if (s->buf != NULL) return c >= (const char *)s->buf && c + n <= (const char *)s->buf + s->buf_bytes;
  bool in = false;
  pthread_mutex_lock(&recs_mu);
  for (size_t i = 0; i < n_recs && !in; i++)
    in = recs[i].id == id && c >= recs[i].p && c + n <= recs[i].p + recs[i].n;
  pthread_mutex_unlock(&recs_mu);
  return in;
}

/* After destroy: every piece went back, exactly. */
static void check_src_returned(int id, const char *what) {
  src_t *s = &srcs[id];
  CHECKF(src_live(id) == 0, "%s: %zu raw pieces never given back", what, src_live(id));
  CHECKF(atomic_load(&s->bytes_in) == atomic_load(&s->bytes_out), "%s: raw bytes given %zu, returned %zu", what,
         (size_t)atomic_load(&s->bytes_in), (size_t)atomic_load(&s->bytes_out));
  CHECKF(atomic_load(&s->allocs) == atomic_load(&s->frees), "%s: raw_alloc gave %ld pieces, raw_free got %ld", what,
         atomic_load(&s->allocs), atomic_load(&s->frees));
  CHECKF(atomic_load(&s->frees_wrong) == 0, "%s: %ld raw_free calls matched nothing", what,
         atomic_load(&s->frees_wrong));
}

static corona_pool *make_growing(int id, size_t granularity, bool keep_all) {
  corona_pool_policy pol = {grow_alloc, grow_free, granularity, false, keep_all, id};
  corona_pool *pool = NULL;
  int rc = corona_pool_create(&pol, &pool);
  CHECKF(rc == 0 && pool != NULL, "pool_create(growing %d) = %d", id, rc);
  return rc == 0 ? pool : NULL;
}

static corona_pool *make_fixed(int id, unsigned char *buf, size_t bytes, bool with_free) {
  srcs[id].buf = buf;
  srcs[id].buf_bytes = bytes;
  corona_pool_policy pol = {fixed_alloc, with_free ? fixed_free : NULL, 0, true, false, id};
  corona_pool *pool = NULL;
  int rc = corona_pool_create(&pol, &pool);
  CHECKF(rc == 0 && pool != NULL, "pool_create(fixed %d) = %d", id, rc);
  return rc == 0 ? pool : NULL;
}

/* ==== objects ================================================================= */
typedef struct {
  void *p;
  size_t size;
  uint64_t seed;
} obj_t;

#define MAX_OBJS (1 << 18)
static obj_t objs[MAX_OBJS];
static size_t n_objs;
static tu_interval_t ivs[MAX_OBJS];

static bool debug_mode_on(void) {
  void *p = corona_malloc(24);
  size_t u = corona_usable_size(p);
  corona_free(p);
  return u == 24;
}

/* The common checks of a fresh pool object; fills it. */
static bool pool_obj_ok(corona_pool *pool, int src, void *p, size_t size, size_t align, const char *what) {
  bool ok = CHECKF(tu_is_aligned(p, align < 16 ? 16 : align), "%s: %p (size %zu) not %zu-aligned", what, p, size,
                   align < 16 ? 16 : align);
  size_t u = corona_usable_size(p);
  ok &= CHECKF(u >= size, "%s: usable_size(%p) = %zu < %zu", what, p, u, size);
  ok &= CHECKF(corona_pool_identify(p) == pool, "%s: identify(%p) = %p, want pool %p", what, p,
               (void *)corona_pool_identify(p), (void *)pool);
  if (src >= 0) ok &= CHECKF(in_src(src, p, size ? size : 1), "%s: %p + %zu outside the pool's raw memory", what, p, size);
  return ok;
}

static void obj_fill(obj_t *o, void *p, size_t size) {
  o->p = p;
  o->size = size;
  o->seed = tu_seed(p, size);
  tu_fill(p, size, o->seed);
}

static bool obj_check(const obj_t *o) { return CHECK_PATTERN(o->p, o->size, o->seed); }

static void check_all(obj_t *o, size_t n, const char *what) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i++)
    if (o[i].p != NULL && !obj_check(&o[i]) && ++bad > 5) break;
  CHECKF(bad == 0, "%s: objects damaged", what);
}

static void check_disjoint(obj_t *o, size_t n, const char *what) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (o[i].p != NULL) ivs[m++] = (tu_interval_t){(uintptr_t)o[i].p, (uintptr_t)o[i].p + (o[i].size ? o[i].size : 1)};
  tu_check_disjoint(ivs, m, what);
}

/* ==== fixed pools ============================================================= */
#define FIXED_MAX (20 * MB)
/* 64 KB aligned at run time: a PE object (Windows) cannot ask for more
 * than 8 KB of alignment. */
static unsigned char fixed_space[FIXED_MAX + 128 * KB];
#define fixed_mem ((unsigned char *)(((uintptr_t)fixed_space + 64 * KB - 1) & ~(uintptr_t)(64 * KB - 1)))

/* Allocates size-byte objects until NULL; returns how many. */
static size_t fill_uniform(corona_pool *pool, int src, size_t size, size_t *requested) {
  size_t n = 0;
  *requested = 0;
  for (;;) {
    if (!CHECKF(n < MAX_OBJS, "fill_uniform: more than %d objects", MAX_OBJS)) break;
    errno = 0;
    void *p = corona_pool_malloc(pool, size);
    if (p == NULL) {
      CHECKF(errno == ENOMEM, "full fixed pool: malloc(%zu) gave NULL with errno %d, want ENOMEM", size, errno);
      break;
    }
    if (!pool_obj_ok(pool, src, p, size, 16, "fixed uniform")) break;
    obj_fill(&objs[n++], p, size);
    *requested += size;
  }
  return n;
}

/* Sizes 16 B .. 1 MiB, log-uniform, from a fixed seed, until 64 failures in
 * a row; then each power of two from 1 MiB down to 16 until it fails: the
 * pool is full to the brim.  Returns the bytes requested. */
static size_t fill_mixed(corona_pool *pool, int src, uint64_t seed, size_t *count) {
  tu_rng_t rng;
  tu_rng_seed(&rng, seed);
  size_t n = 0, bytes = 0;
  unsigned fails = 0;
  while (fails < 64 && n < MAX_OBJS) {
    size_t size = tu_log_range(&rng, 16, MB);
    errno = 0;
    void *p = corona_pool_malloc(pool, size);
    if (p == NULL) {
      CHECKF(errno == ENOMEM, "fixed mixed: malloc(%zu) NULL with errno %d, want ENOMEM", size, errno);
      fails++;
      continue;
    }
    fails = 0;
    if (!pool_obj_ok(pool, src, p, size, 16, "fixed mixed")) break;
    obj_fill(&objs[n++], p, size);
    bytes += size;
  }
  for (size_t size = MB; size >= 16; size /= 2) {
    for (;;) {
      if (n >= MAX_OBJS) break;
      errno = 0;
      void *p = corona_pool_malloc(pool, size);
      if (p == NULL) {
        CHECKF(errno == ENOMEM, "fixed brim: malloc(%zu) NULL with errno %d", size, errno);
        break;
      }
      if (!pool_obj_ok(pool, src, p, size, 16, "fixed brim")) break;
      obj_fill(&objs[n++], p, size);
      bytes += size;
    }
  }
  *count = n;
  return bytes;
}

static void fixed_variant(size_t offset, size_t bytes, bool with_free) {
  const int id = 1;
  src_reset(id);
  unsigned char *buf = fixed_mem + offset;
  corona_pool *pool = make_fixed(id, buf, bytes, with_free);
  if (pool == NULL) return;
  char label[96];
  snprintf(label, sizeof label, "fixed %zu MiB at +%zu", bytes / MB, offset);

  /* 1000-byte objects until NULL, three rounds with a reset between. */
  size_t n0 = 0, req0 = 0;
  for (int round = 0; round < 3; round++) {
    size_t req;
    size_t n = fill_uniform(pool, id, 1000, &req);
    n_objs = n;
    double frac = (double)req / (double)bytes;
    if (round == 0) {
      n0 = n;
      req0 = req;
      printf("    %s: %zu objects of 1000 B, %.1f %% of the buffer requested\n", label, n, 100.0 * frac);
      CHECKF(frac >= 0.85, "%s: 1000-byte objects use only %.1f %% of the buffer", label, 100.0 * frac);
    } else {
      CHECKF(n == n0 && req == req0, "%s: round %d after reset fits %zu objects, round 0 fitted %zu", label, round, n,
             n0);
    }
    check_all(objs, n, label);
    check_disjoint(objs, n, label);
    /* Full: frees make room again (half through corona_free). */
    for (size_t i = 0; i < n; i += 7) {
      if (i % 2) corona_pool_free(pool, objs[i].p);
      else corona_free(objs[i].p);
      objs[i].p = NULL;
    }
    for (size_t i = 0; i < n; i += 7) {
      void *p = corona_pool_malloc(pool, 1000);
      if (!CHECKF(p != NULL, "%s: no room after frees (object %zu), errno %d", label, i, errno)) break;
      pool_obj_ok(pool, id, p, 1000, 16, label);
      obj_fill(&objs[i], p, 1000);
    }
    check_all(objs, n, label);
    CHECKF(corona_pool_reset(pool) == 0, "%s: reset", label);
  }

  /* Aligned objects, and big ones, right after a reset. */
  {
    static const size_t aligns[] = {4096, 8192, 16384, 65536};
    size_t tried = 0, failed = 0, fa = 0, fs = 0;
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
      for (size_t size = 100; size <= 100 * KB; size *= 10) {
        tried++;
        errno = 0;
        void *p = corona_pool_aligned_malloc(pool, size, aligns[k]);
        if (p == NULL) {
          if (failed++ == 0) fa = aligns[k], fs = size;
          continue;
        }
        pool_obj_ok(pool, id, p, size, aligns[k], label);
        obj_t o;
        obj_fill(&o, p, size);
        obj_check(&o);
        corona_pool_free(pool, p);
      }
    }
    CHECKF(failed == 0, "%s: %zu of %zu aligned_malloc calls (alignments 4 KiB..64 KiB, 100 B..100 KiB) failed in an "
           "empty fixed pool, e.g. aligned_malloc(%zu, %zu)", label, failed, tried, fs, fa);
    errno = 0;
    void *big = corona_pool_malloc(pool, 17 * MB);
    CHECKF(big == NULL && errno == ENOMEM, "%s: malloc(17 MiB) = %p, errno %d: want NULL, ENOMEM", label, big, errno);
    if (big) corona_pool_free(pool, big);
    size_t bigsz = bytes >= 16 * MB ? 12 * MB : bytes / 2;
    big = corona_pool_malloc(pool, bigsz);
    if (CHECKF(big != NULL, "%s: malloc(%zu) in the empty pool failed", label, bigsz)) {
      pool_obj_ok(pool, id, big, bigsz, 16, label);
      obj_t o;
      obj_fill(&o, big, bigsz);
      obj_check(&o);
      corona_pool_free(pool, big);
    }
    CHECKF(corona_pool_reset(pool) == 0, "%s: reset", label);
  }

  /* Mixed sizes to the brim; half freed and allocated again; three rounds. */
  size_t mixed0 = 0;
  for (int round = 0; round < 3; round++) {
    size_t n;
    size_t req = fill_mixed(pool, id, 42, &n);
    n_objs = n;
    if (round == 0) {
      mixed0 = req;
      printf("    %s: mixed 16 B..1 MiB: %zu objects, %.1f %% of the buffer requested\n", label, n,
             100.0 * (double)req / (double)bytes);
      CHECKF((double)req >= 0.70 * (double)bytes, "%s: mixed sizes use only %.1f %% of the buffer", label,
             100.0 * (double)req / (double)bytes);
    } else {
      CHECKF(req == mixed0, "%s: round %d after reset: %zu bytes fit, round 0: %zu", label, round, req, mixed0);
    }
    check_all(objs, n, label);
    check_disjoint(objs, n, label);
    size_t freed = 0, again = 0;
    static size_t sizes[MAX_OBJS];
    for (size_t i = 1; i < n; i += 2) {
      if (i % 4 == 1) corona_pool_free(pool, objs[i].p);
      else corona_free(objs[i].p);
      sizes[i] = objs[i].size;
      objs[i].p = NULL;
      freed++;
    }
    for (size_t i = 1; i < n; i += 2) {
      void *p = corona_pool_malloc(pool, sizes[i]);
      if (p == NULL) {
        if (getenv("POOL_TRACE")) printf("      refit of %zu B failed (object %zu)\n", sizes[i], i);
        continue;
      }
      pool_obj_ok(pool, id, p, sizes[i], 16, label);
      obj_fill(&objs[i], p, sizes[i]);
      again++;
    }
    /* First fit, and new slabs cut from freed large blocks, may leave a
     * hole too small for one object of the same size: allow 1 %. */
    if (round == 0 && again < freed) printf("    %s: %zu of %zu freed sizes did not fit again\n", label, freed - again, freed);
    CHECKF(again * 100 >= freed * 99, "%s: after freeing %zu objects, only %zu of the same sizes fit again", label,
           freed, again);
    check_all(objs, n, label);
    check_disjoint(objs, n, label);
    CHECKF(corona_pool_reset(pool) == 0, "%s: reset", label);
  }

  /* Shrinking a big object in a full pool must not fail. */
  if (bytes >= 16 * MB) {
    void *big = corona_pool_malloc(pool, 10 * MB);
    size_t req;
    size_t n = fill_uniform(pool, id, 1000, &req);
    if (CHECK(big != NULL)) {
      obj_t o;
      obj_fill(&o, big, 10 * MB);
      errno = 0;
      void *q = corona_pool_realloc(pool, big, 9 * MB);
      if (CHECKF(q != NULL, "%s: realloc 10 MiB -> 9 MiB in a full fixed pool = NULL, errno %d", label, errno)) {
        o.p = q;
        o.size = 9 * MB;
        obj_check(&o);
      }
    }
    check_all(objs, n, label);
    CHECKF(corona_pool_reset(pool) == 0, "%s: reset", label);
  }

  void *last = corona_pool_malloc(pool, 100);
  CHECK(last != NULL);
  CHECKF(corona_pool_destroy(pool) == 0, "%s: destroy", label);
  CHECKF(atomic_load(&srcs[id].allocs) == 1, "%s: raw_alloc called %ld times, want once", label,
         atomic_load(&srcs[id].allocs));
  if (with_free)
    CHECKF(atomic_load(&srcs[id].frees) == 1 && atomic_load(&srcs[id].frees_wrong) == 0,
           "%s: raw_free called %ld times (%ld wrong), want once with the buffer", label, atomic_load(&srcs[id].frees),
           atomic_load(&srcs[id].frees_wrong));
  /* The buffer is the caller's again: corona no longer claims it. */
  CHECKF(corona_pool_identify(last) == NULL && corona_usable_size(last) == 0,
         "%s: after destroy, identify/usable_size of an old object: %p / %zu", label,
         (void *)corona_pool_identify(last), corona_usable_size(last));
  memset(buf, 0x5A, bytes); /* the caller may reuse it at once */
}

/* All objects freed, by the thread that allocated them: a big object that
 * fits the (now empty) buffer must be served, as after a reset. */
static void fixed_free_all_then_big(void) {
  const int id = 2;
  src_reset(id);
  corona_pool *pool = make_fixed(id, fixed_mem, 2 * MB, false);
  if (pool == NULL) return;
  for (int round = 0; round < 2; round++) {
    size_t req;
    size_t n = fill_uniform(pool, id, 1000, &req);
    check_all(objs, n, "free all, then big");
    for (size_t i = 0; i < n; i++) corona_pool_free(pool, objs[i].p);
    errno = 0;
    void *big = corona_pool_malloc(pool, 1800 * KB);
    CHECKF(big != NULL, "2 MiB fixed pool, round %d: %zu objects of 1000 B all freed, then malloc(1800 KiB) = NULL, "
           "errno %d", round, n, errno);
    if (big != NULL) {
      obj_t o;
      obj_fill(&o, big, 1800 * KB);
      obj_check(&o);
      corona_pool_free(pool, big);
    }
    CHECK(corona_pool_reset(pool) == 0);
  }
  void *big = corona_pool_malloc(pool, 1800 * KB);
  CHECKF(big != NULL, "2 MiB fixed pool after reset: malloc(1800 KiB) = NULL");
  CHECK(corona_pool_destroy(pool) == 0);
}

/* Fixed pools over small buffers starting 16 KB past a 64 KB boundary hold
 * no free run aligned to a medium block (64 or 128 KB): requests of the
 * medium classes are served as large objects there, from the pages that
 * remain (with medium blocks alone, 4100..32000 B returned NULL from
 * buffers of 48 and 96 KB, and 20000 and 32000 B from 160 KB). */
static void fixed_small_buffers(void) {
  static const size_t bufs[] = {48 * KB, 96 * KB, 160 * KB};
  static const size_t sizes[] = {4100, 5000, 9000, 20000, 32000};
  const int id = 2;
  size_t served = 0;
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      src_reset(id);
      corona_pool *pool = make_fixed(id, fixed_mem + 16 * KB, bufs[i], false);
      if (pool == NULL) return;
      errno = 0;
      void *p = corona_pool_malloc(pool, sizes[k]);
      if (CHECKF(p != NULL, "fixed pool of %zu KB: malloc(%zu) = NULL, errno %d", bufs[i] / KB, sizes[k], errno) &&
          pool_obj_ok(pool, id, p, sizes[k], 16, "fixed small buffer")) {
        tu_fill(p, sizes[k], (uint64_t)(i * 10 + k));
        CHECK_PATTERN(p, sizes[k], (uint64_t)(i * 10 + k));
        corona_pool_free(pool, p);
        served++;
      }
      CHECK(corona_pool_destroy(pool) == 0);
    }
  }
  printf("    fixed pools of 48, 96 and 160 KB, 16 KB past a 64 KB boundary: %zu of 15 requests of 4100..32000 B served\n",
         served);
}

static void test_fixed(void) {
  fixed_small_buffers();
  fixed_free_all_then_big();
  fixed_variant(0, 8 * MB, false);
  fixed_variant(8, 8 * MB, true);
  fixed_variant(4096 + 8, FIXED_MAX, false);

  /* raw_alloc failing: NULL/ENOMEM, the pool stays usable, destroy works. */
  const int id = 2;
  src_reset(id);
  atomic_store(&srcs[id].fail_after, 0);
  corona_pool *pool = make_fixed(id, fixed_mem, MB, false);
  if (pool == NULL) return;
  for (int i = 0; i < 3; i++) {
    errno = 0;
    void *p = corona_pool_malloc(pool, i == 1 ? 100 * KB : 100);
    CHECKF(p == NULL && errno == ENOMEM, "fixed, raw_alloc NULL: malloc = %p errno %d, want NULL/ENOMEM", p, errno);
  }
  CHECK(corona_pool_reset(pool) == 0);
  CHECK(corona_pool_destroy(pool) == 0);
  CHECKF(atomic_load(&srcs[id].failed) >= 1, "fixed: raw_alloc was not asked");
  printf("    fixed pool whose raw_alloc fails: NULL/ENOMEM, raw_alloc asked %ld time(s)\n", atomic_load(&srcs[id].failed));
}

/* ==== growing pools =========================================================== */

static void *pool_new(corona_pool *pool, int src, size_t size, const char *what) {
  errno = 0;
  void *p = corona_pool_malloc(pool, size);
  if (!CHECKF(p != NULL, "%s: pool_malloc(%zu) = NULL, errno %d", what, size, errno)) return NULL;
  pool_obj_ok(pool, src, p, size, 16, what);
  return p;
}

static void growing_keep_all(void) {
  const int id = 3;
  src_reset(id);
  srcs[id].dirty = true;
  corona_pool *pool = make_growing(id, 0, true);
  if (pool == NULL) return;
  tu_rng_t rng;
  tu_rng_seed(&rng, 7);
  size_t n = tu_scaled(6000, 1000);
  n_objs = 0;
  for (size_t i = 0; i < n; i++) {
    size_t size = i % 50 == 0 ? 0 : tu_log_range(&rng, 1, 64 * KB);
    void *p = pool_new(pool, id, size, "growing");
    if (p == NULL) break;
    obj_fill(&objs[n_objs++], p, size);
  }
  static const size_t big[] = {20 * MB, 30 * MB + 123, 40 * MB};
  for (size_t k = 0; k < 3; k++) {
    void *p = pool_new(pool, id, big[k], "growing big");
    if (p != NULL) obj_fill(&objs[n_objs++], p, big[k]);
  }
  check_all(objs, n_objs, "growing");
  check_disjoint(objs, n_objs, "growing");
  /* Free half (both ways), the big ones too; allocate again. */
  for (size_t i = 0; i < n_objs; i += 2) {
    if (i % 4 == 0) corona_pool_free(pool, objs[i].p);
    else corona_free(objs[i].p);
    objs[i].p = NULL;
  }
  for (size_t k = 0; k < 3; k++) {
    size_t i = n_objs - 3 + k;
    if (objs[i].p != NULL) {
      corona_pool_free(pool, objs[i].p);
      objs[i].p = NULL;
    }
  }
  corona_collect();
  CHECKF(atomic_load(&srcs[id].frees) == 0, "keep_all_memory: %ld raw_free calls before destroy",
         atomic_load(&srcs[id].frees));
  for (size_t i = 0; i < n_objs; i += 2) {
    size_t size = tu_log_range(&rng, 1, 64 * KB);
    void *p = pool_new(pool, id, size, "growing again");
    if (p == NULL) break;
    obj_fill(&objs[i], p, size);
  }
  for (size_t k = 0; k < 3; k++) {
    size_t i = n_objs - 3 + k;
    void *p = pool_new(pool, id, big[2 - k], "growing big again");
    if (p != NULL) obj_fill(&objs[i], p, big[2 - k]);
  }
  check_all(objs, n_objs, "growing again");
  check_disjoint(objs, n_objs, "growing again");
  CHECKF(atomic_load(&srcs[id].frees) == 0, "keep_all_memory: %ld raw_free calls before destroy",
         atomic_load(&srcs[id].frees));
  size_t in = atomic_load(&srcs[id].bytes_in);
  long calls = atomic_load(&srcs[id].allocs);
  CHECKF(corona_pool_reset(pool) == 0, "growing: reset");
  CHECKF(atomic_load(&srcs[id].frees) == 0, "keep_all_memory: raw_free during reset");
  /* After the reset the same load needs no new memory. */
  for (size_t i = 0; i < n_objs; i++) {
    size_t size = objs[i].size;
    void *p = pool_new(pool, id, size, "growing after reset");
    if (p == NULL) break;
    obj_fill(&objs[i], p, size);
  }
  check_all(objs, n_objs, "growing after reset");
  CHECKF(atomic_load(&srcs[id].allocs) == calls, "growing: the same objects after reset needed %ld more raw_alloc calls",
         atomic_load(&srcs[id].allocs) - calls);
  printf("    growing keep_all: %zu objects, %ld raw_alloc calls, %.1f MiB raw, first ask %zu B\n", n_objs, calls,
         (double)in / (double)MB, (size_t)atomic_load(&srcs[id].first_ask));
  CHECK(corona_pool_destroy(pool) == 0);
  check_src_returned(id, "growing keep_all");
}

static void growing_give_back(void) {
  const int id = 4;
  src_reset(id);
  corona_pool *pool = make_growing(id, MB, false);
  if (pool == NULL) return;
  obj_t small[200];
  for (size_t i = 0; i < 200; i++) {
    void *p = pool_new(pool, id, 10 + i * 40, "give back");
    if (p) obj_fill(&small[i], p, 10 + i * 40);
    else small[i].p = NULL;
  }
  for (int k = 0; k < 4; k++) {
    size_t size = (size_t)(17 + 7 * k) * MB;
    void *p = pool_new(pool, id, size, "give back big");
    if (p == NULL) continue;
    obj_t o;
    obj_fill(&o, p, size);
    obj_check(&o);
    long before = atomic_load(&srcs[id].frees);
    size_t out = atomic_load(&srcs[id].bytes_out);
    if (k % 2) corona_free(p);
    else corona_pool_free(pool, p);
    long after = atomic_load(&srcs[id].frees);
    CHECKF(after == before + 1, "keep_all_memory=false: freeing a %zu MiB block made %ld raw_free calls, want 1",
           size / MB, after - before);
    CHECKF(atomic_load(&srcs[id].bytes_out) - out >= size, "the %zu MiB block gave back %zu bytes", size / MB,
           (size_t)(atomic_load(&srcs[id].bytes_out) - out));
  }
  check_all(small, 200, "give back small");
  long before = atomic_load(&srcs[id].frees);
  for (size_t i = 0; i < 200; i++) corona_pool_free(pool, small[i].p);
  CHECKF(atomic_load(&srcs[id].frees) == before, "small frees gave raw memory back (%ld calls)",
         atomic_load(&srcs[id].frees) - before);
  CHECK(corona_pool_destroy(pool) == 0);
  check_src_returned(id, "growing give back");
}

static void growing_failing(void) {
  const int id = 5;
  src_reset(id);
  corona_pool *pool = make_growing(id, 256 * KB, false);
  if (pool == NULL) return;
  atomic_store(&srcs[id].fail_after, 3);
  tu_rng_t rng;
  tu_rng_seed(&rng, 11);
  n_objs = 0;
  size_t nulls = 0, after_null = 0;
  for (size_t i = 0; i < 4000 && n_objs < MAX_OBJS; i++) {
    size_t size = tu_log_range(&rng, 16, MB);
    errno = 0;
    void *p = corona_pool_malloc(pool, size);
    if (p == NULL) {
      CHECKF(errno == ENOMEM, "raw_alloc failing: malloc(%zu) NULL with errno %d", size, errno);
      nulls++;
      continue;
    }
    if (nulls) after_null++;
    pool_obj_ok(pool, id, p, size, 16, "raw_alloc failing");
    obj_fill(&objs[n_objs++], p, size);
  }
  CHECKF(nulls > 0, "raw_alloc failing: no allocation failed");
  CHECKF(atomic_load(&srcs[id].failed) > 0, "raw_alloc failing: raw_alloc was never refused");
  check_all(objs, n_objs, "raw_alloc failing");
  check_disjoint(objs, n_objs, "raw_alloc failing");
  void *c = corona_pool_calloc(pool, 1, 2 * MB);
  CHECKF(c == NULL && errno == ENOMEM, "raw_alloc failing: calloc(2 MiB) = %p", c);
  if (c) corona_pool_free(pool, c);
  /* Recovery. */
  atomic_store(&srcs[id].fail_after, -1);
  size_t before = n_objs;
  static const size_t sizes[] = {16, 1000, 8000, 9000, 100 * KB, 1 * MB, 5 * MB, 20 * MB};
  for (int r = 0; r < 20; r++)
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      if (r > 2 && sizes[k] > MB) continue;
      void *p = pool_new(pool, id, sizes[k], "recovered");
      if (p) obj_fill(&objs[n_objs++], p, sizes[k]);
    }
  CHECKF(n_objs - before == 3 * 8 + 17 * 6, "recovery: %zu of %d allocations worked", n_objs - before, 3 * 8 + 17 * 6);
  check_all(objs, n_objs, "recovered");
  check_disjoint(objs, n_objs, "recovered");
  printf("    raw_alloc failing: %zu NULLs (%zu successes after the first), %ld refusals, recovered\n", nulls,
         after_null, atomic_load(&srcs[id].failed));
  for (size_t i = 0; i < n_objs; i++) corona_pool_free(pool, objs[i].p);
  CHECK(corona_pool_destroy(pool) == 0);
  check_src_returned(id, "growing failing");
}

static void growing_realloc_calloc_aligned(void) {
  const int id = 6;
  src_reset(id);
  srcs[id].dirty = true;
  corona_pool *pool = make_growing(id, 0, false);
  if (pool == NULL) return;

  /* realloc chains, contents kept through every size boundary. */
  static const size_t chain[] = {1, 24, 200, 5000, 8064, 8065, 70 * KB, 1 * MB, 5 * MB, 20 * MB, 17 * MB, 6 * MB,
                                 100 * KB, 3000, 10, 40000, 0};
  for (int rep = 0; rep < 3; rep++) {
    void *p = NULL;
    size_t have = 0;
    uint64_t seed = 0x1234 + (uint64_t)rep;
    for (size_t k = 0; chain[k]; k++) {
      size_t size = chain[k] + (size_t)rep * 16;
      errno = 0;
      void *q = corona_pool_realloc(pool, p, size);
      if (!CHECKF(q != NULL, "pool_realloc(%p, %zu) = NULL, errno %d", p, size, errno)) break;
      pool_obj_ok(pool, id, q, size, 16, "realloc chain");
      size_t keep = have < size ? have : size;
      CHECKF(tu_verify(q, keep, seed) == (size_t)-1, "pool_realloc %zu -> %zu lost contents", have, size);
      tu_fill(q, size, seed);
      p = q;
      have = size;
    }
    CHECKF(corona_pool_realloc(pool, p, 0) == NULL, "pool_realloc(p, 0) returns NULL");
  }

  /* calloc: zero on dirty raw memory, and on reused memory. */
  static const size_t csz[] = {1, 100, 1000, 8064, 9000, 100 * KB, 3 * MB, 12 * MB, 20 * MB};
  const size_t nc = sizeof csz / sizeof csz[0];
  for (int round = 0; round < 3; round++) {
    void *ps[sizeof csz / sizeof csz[0]];
    for (size_t k = 0; k < nc; k++) {
      ps[k] = corona_pool_calloc(pool, 1, csz[k]);
      if (!CHECKF(ps[k] != NULL, "pool_calloc(%zu) = NULL", csz[k])) continue;
      pool_obj_ok(pool, id, ps[k], csz[k], 16, "calloc");
      if (!CHECK_ZERO(ps[k], csz[k])) printf("    (round %d: calloc(%zu) not zero)\n", round, csz[k]);
      memset(ps[k], 0xFF, csz[k]);
    }
    for (size_t k = 0; k < nc; k++) corona_pool_free(pool, ps[k]);
    if (round == 1) CHECK(corona_pool_reset(pool) == 0);
  }
  errno = 0;
  CHECKF(corona_pool_calloc(pool, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow: ENOMEM");

  /* aligned_malloc 16 .. 64 KiB. */
  long calls = atomic_load(&srcs[id].allocs);
  obj_t al[13 * 6];
  size_t na = 0;
  for (size_t a = 16; a <= 64 * KB; a *= 2) {
    static const size_t asz[] = {1, 100, 1000, 5000, 20000, 300000};
    for (size_t k = 0; k < 6; k++) {
      void *p = corona_pool_aligned_malloc(pool, asz[k], a);
      if (!CHECKF(p != NULL, "pool_aligned_malloc(%zu, %zu) = NULL, errno %d", asz[k], a, errno)) continue;
      pool_obj_ok(pool, id, p, asz[k], a, "aligned");
      obj_fill(&al[na++], p, asz[k]);
    }
  }
  check_all(al, na, "aligned");
  check_disjoint(al, na, "aligned");
  printf("    %zu aligned objects (16 B .. 64 KiB alignments) took %ld raw_alloc calls\n", na,
         atomic_load(&srcs[id].allocs) - calls);
  for (size_t i = 0; i < na; i++) corona_pool_free(pool, al[i].p);
  errno = 0;
  CHECKF(corona_pool_aligned_malloc(pool, 10, 0) == NULL && errno == EINVAL, "aligned_malloc(10, 0): EINVAL");
  errno = 0;
  CHECKF(corona_pool_aligned_malloc(pool, 10, 48) == NULL && errno == EINVAL, "aligned_malloc(10, 48): EINVAL");
  errno = 0;
  CHECKF(corona_pool_malloc(pool, SIZE_MAX - 4096) == NULL && errno == ENOMEM, "malloc(SIZE_MAX - 4096): ENOMEM");
  void *z = corona_pool_malloc(pool, 0);
  CHECKF(z != NULL && corona_pool_identify(z) == pool, "pool_malloc(0)");
  corona_pool_free(pool, z);
  corona_pool_free(pool, NULL);
  CHECK(corona_pool_destroy(pool) == 0);
  check_src_returned(id, "growing realloc/calloc/aligned");
}

/* Raw memory not aligned to 16 KB, and more of it than asked for. */
static void growing_misaligned(void) {
  static const size_t offsets[] = {16, 4096, 4096 + 64};
  for (size_t v = 0; v < 3; v++) {
    const int id = 7;
    src_reset(id);
    srcs[id].offset = offsets[v];
    srcs[id].extra = v == 2 ? 5000 : 0;
    corona_pool *pool = make_growing(id, 0, v != 1);
    if (pool == NULL) return;
    /* One object just under the region limit: one chunk must be enough. */
    size_t size = 4 * MB - 8 * KB - 64;
    void *p = pool_new(pool, id, size, "misaligned raw");
    CHECKF(atomic_load(&srcs[id].allocs) == 1,
           "raw memory at +%zu: one %zu-byte object took %ld raw_alloc calls (%zu bytes)", offsets[v], size,
           atomic_load(&srcs[id].allocs), (size_t)atomic_load(&srcs[id].bytes_in));
    obj_t o;
    if (p) {
      obj_fill(&o, p, size);
      obj_check(&o);
    }
    tu_rng_t rng;
    tu_rng_seed(&rng, 99 + v);
    n_objs = 0;
    for (size_t i = 0; i < 1500; i++) {
      size_t s = tu_log_range(&rng, 16, 2 * MB);
      void *q = pool_new(pool, id, s, "misaligned raw");
      if (q) obj_fill(&objs[n_objs++], q, s);
    }
    check_all(objs, n_objs, "misaligned raw");
    check_disjoint(objs, n_objs, "misaligned raw");
    CHECK(corona_pool_destroy(pool) == 0);
    check_src_returned(id, "growing misaligned");
  }
}

/* Child: a pool whose raw memory comes from corona_malloc itself.  After
 * destroy (and the raw pieces freed to the default heap), the default heap
 * reuses that memory: its objects there must be its own again. */
static void *heap_raw_alloc(intptr_t id, size_t *bytes) {
  (void)id;
  return corona_malloc(*bytes);
}
static int heap_raw_free(intptr_t id, void *p, size_t bytes) {
  (void)id;
  (void)bytes;
  corona_free(p);
  return 0;
}
static char *heap_raw_last;
static size_t heap_raw_last_n;
static void *heap_raw_alloc_rec(intptr_t id, size_t *bytes) {
  void *p = heap_raw_alloc(id, bytes);
  heap_raw_last = p;
  heap_raw_last_n = *bytes;
  return p;
}

static int child_heap_raw(void) {
  void *keep = corona_malloc(20000); /* keeps the default heap's region alive */
  corona_pool_policy pol = {heap_raw_alloc_rec, heap_raw_free, 64 * KB, false, false, 0};
  corona_pool *pool;
  if (corona_pool_create(&pol, &pool) != 0) return 3;
  obj_t o[40];
  for (int i = 0; i < 40; i++) obj_fill(&o[i], corona_pool_malloc(pool, 1000), 1000);
  check_all(o, 40, "heap raw");
  char *raw = heap_raw_last;
  size_t raw_n = heap_raw_last_n;
  corona_pool_destroy(pool);
  corona_collect();
  /* The default heap takes that memory back for its own large objects. */
  static void *v[3000];
  size_t inside = 0, refused = 0;
  for (int i = 0; i < 3000; i++) {
    v[i] = corona_malloc(9000);
    if (v[i] == NULL) return 4;
    memset(v[i], 7, 9000);
    if ((char *)v[i] >= raw && (char *)v[i] < raw + raw_n) {
      inside++;
      if (corona_usable_size(v[i]) < 9000) {
        if (refused++ < 3)
          printf("default-heap object %p (in the pool's old raw memory) has usable_size %zu\n", v[i],
                 corona_usable_size(v[i]));
        v[i] = NULL; /* corona_free would abort */
      }
    }
  }
  for (int i = 0; i < 3000; i++) corona_free(v[i]);
  corona_free(keep);
  printf("%zu default-heap objects in the old raw memory, %zu refused\n", inside, refused);
  CHECKF(refused == 0, "raw memory from corona_malloc: %zu default-heap objects no longer recognised after destroy",
         refused);
  /* Same with a fresh pool, then its raw memory checked object by object. */
  return tu_failure_count() ? 1 : 0;
}

static int run_child(const char *name, const char *mode, bool debug);
static char child_out[64 * 1024];
static char child_err[64 * 1024];
static cu_child_t child;

static void growing_heap_raw(void) {
  int st = run_child("heap_raw", "ok", false);
  printf("    raw memory from corona_malloc: %s", child_out);
  CHECKF(cu_exited(st, 0), "raw memory from corona_malloc (child): ended by %s; stdout: %.600s; stderr: %.600s",
         cu_describe(st), child_out, child_err);
}

static void test_growing(void) {
  growing_keep_all();
  growing_give_back();
  growing_failing();
  growing_realloc_calloc_aligned();
  growing_misaligned();
  growing_heap_raw();
}

/* ==== many pools x many threads =============================================== */
#define T_POOLS 8
#define T_THREADS 4
#define T_SLOTS 2048
static corona_pool *t_pools[T_POOLS];
static const int t_src0 = 10;
static bool t_fixed[T_POOLS];
static _Atomic(void *) t_slots[T_SLOTS];
static unsigned char t_fixed_space[2 * 16 * MB + 16 * KB]; /* 16 KB aligned at run time (see fixed_mem) */
static unsigned char *t_fixed_mem(int i) {
  return (unsigned char *)(((uintptr_t)t_fixed_space + 16 * KB - 1) & ~(uintptr_t)(16 * KB - 1)) + (size_t)i * 16 * MB;
}
static pthread_barrier_t t_barrier;
static atomic_long t_nulls, t_moves, t_reallocs;

typedef struct {
  uint32_t size;
  uint32_t pool;
  uint64_t tag;
} t_hdr_t;

static uint64_t t_tag(const void *p, size_t size, unsigned pool) { return tu_seed(p, size) ^ ((uint64_t)pool << 56); }

static void t_write(void *p, size_t size, unsigned pool) {
  t_hdr_t h = {(uint32_t)size, pool, t_tag(p, size, pool)};
  memcpy(p, &h, sizeof h);
  tu_fill((char *)p + sizeof h, size - sizeof h, h.tag);
}

/* Checks an object taken from a slot; returns its header. */
static bool t_check(void *p, t_hdr_t *out) {
  t_hdr_t h;
  memcpy(&h, p, sizeof h);
  *out = h;
  if (!CHECKF(h.pool < T_POOLS && h.size >= sizeof h && h.tag == t_tag(p, h.size, h.pool),
              "threads: object %p has a damaged header", p))
    return false;
  bool ok = CHECKF(corona_pool_identify(p) == t_pools[h.pool], "threads: identify(%p) = %p, want pool %u (%p)", p,
                   (void *)corona_pool_identify(p), h.pool, (void *)t_pools[h.pool]);
  ok &= CHECKF(corona_usable_size(p) >= h.size, "threads: usable_size(%p) = %zu < %u", p, corona_usable_size(p), h.size);
  ok &= CHECK_PATTERN((char *)p + sizeof h, h.size - sizeof h, h.tag);
  return ok;
}

static size_t t_size(tu_rng_t *r) {
  size_t u = tu_below(r, 1000);
  if (u < 800) return tu_range(r, 16, 512);
  if (u < 985) return tu_range(r, 513, 64 * KB);
  return tu_log_range(r, 64 * KB, MB);
}

static void t_free(void *p, const t_hdr_t *h, tu_rng_t *r) {
  if (tu_below(r, 2)) corona_pool_free(t_pools[h->pool], p);
  else corona_free(p);
}

static void t_work(tu_rng_t *r, size_t iters) {
  for (size_t i = 0; i < iters; i++) {
    unsigned k = (unsigned)tu_below(r, T_POOLS);
    size_t size = t_size(r);
    unsigned how = (unsigned)tu_below(r, 10);
    size_t align = 16;
    errno = 0;
    void *p;
    if (how == 0) p = corona_pool_calloc(t_pools[k], 1, size);
    else if (how == 1) p = corona_pool_aligned_malloc(t_pools[k], size, align = (size_t)1 << tu_range(r, 5, 12));
    else p = corona_pool_malloc(t_pools[k], size);
    if (p == NULL) {
      CHECKF(t_fixed[k] && errno == ENOMEM, "threads: pool %u (%s) alloc(%zu) = NULL, errno %d", k,
             t_fixed[k] ? "fixed" : "growing", size, errno);
      atomic_fetch_add(&t_nulls, 1);
      continue;
    }
    if (how == 0 && tu_below(r, 8) == 0) CHECK_ZERO(p, size);
    CHECKF(tu_is_aligned(p, align), "threads: %p not %zu-aligned", p, align);
    t_write(p, size, k);
    void *old = atomic_exchange(&t_slots[tu_below(r, T_SLOTS)], p);
    if (old == NULL) continue;
    atomic_fetch_add(&t_moves, 1);
    t_hdr_t h;
    if (!t_check(old, &h)) continue; /* leaked: do not free what may be corrupt */
    if (tu_below(r, 10) < 2) {
      /* Realloc another thread's object, put it back. */
      size_t ns = t_size(r);
      errno = 0;
      void *q = corona_pool_realloc(t_pools[h.pool], old, ns);
      if (q == NULL) {
        CHECKF(t_fixed[h.pool] && errno == ENOMEM, "threads: realloc(%u -> %zu) in pool %u NULL, errno %d", h.size, ns,
               h.pool, errno);
        t_free(old, &h, r);
        continue;
      }
      size_t keep = (h.size < ns ? h.size : ns) - sizeof h;
      CHECKF(tu_verify((char *)q + sizeof h, keep, h.tag) == (size_t)-1, "threads: realloc lost contents");
      CHECKF(corona_pool_identify(q) == t_pools[h.pool], "threads: realloc moved the object out of its pool");
      atomic_fetch_add(&t_reallocs, 1);
      t_write(q, ns, h.pool);
      void *o2 = atomic_exchange(&t_slots[tu_below(r, T_SLOTS)], q);
      if (o2 != NULL && t_check(o2, &h)) t_free(o2, &h, r);
      continue;
    }
    t_free(old, &h, r);
  }
}

static void *t_thread(void *arg) {
  tu_rng_t r;
  tu_rng_seed(&r, (uint64_t)(uintptr_t)arg * 7919 + 1);
  size_t iters = tu_scaled(60000, 3000);
  t_work(&r, iters);
  pthread_barrier_wait(&t_barrier); /* main resets some pools */
  pthread_barrier_wait(&t_barrier);
  t_work(&r, iters);
  return NULL;
}

static int t_stack_probe;
static void test_threads(void) {
  for (int k = 0; k < T_POOLS; k++) {
    int id = t_src0 + k;
    src_reset(id);
    t_fixed[k] = k >= T_POOLS - 2;
    if (t_fixed[k]) t_pools[k] = make_fixed(id, t_fixed_mem(k - (T_POOLS - 2)), 16 * MB, k % 2);
    else t_pools[k] = make_growing(id, k == 1 ? 256 * KB : k == 2 ? MB : 0, k % 2 == 0);
    if (t_pools[k] == NULL) return;
  }
  for (int k = 0; k < T_POOLS; k++)
    for (int j = 0; j < k; j++) CHECKF(t_pools[j] != t_pools[k], "two live pools share a handle");
  pthread_barrier_init(&t_barrier, NULL, T_THREADS + 1);
  pthread_t th[T_THREADS];
  for (uintptr_t i = 0; i < T_THREADS; i++) pthread_create(&th[i], NULL, t_thread, (void *)i);

  pthread_barrier_wait(&t_barrier);
  /* The threads wait: check every object, drop those of pools 0, 3, 6 (reset). */
  size_t live = 0, dropped = 0;
  for (size_t s = 0; s < T_SLOTS; s++) {
    void *p = atomic_load(&t_slots[s]);
    if (p == NULL) continue;
    t_hdr_t h;
    if (!t_check(p, &h)) continue;
    live++;
    if (h.pool % 3 == 0) {
      atomic_store(&t_slots[s], NULL);
      dropped++;
    }
  }
  for (int k = 0; k < T_POOLS; k += 3) CHECKF(corona_pool_reset(t_pools[k]) == 0, "reset pool %d", k);
  /* The other pools' objects are untouched by those resets. */
  for (size_t s = 0; s < T_SLOTS; s++) {
    void *p = atomic_load(&t_slots[s]);
    t_hdr_t h;
    if (p != NULL) t_check(p, &h);
  }
  pthread_barrier_wait(&t_barrier);
  for (int i = 0; i < T_THREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&t_barrier);

  /* identify: every pool's objects; NULL for everything else. */
  size_t per_pool[T_POOLS] = {0};
  for (size_t s = 0; s < T_SLOTS; s++) {
    void *p = atomic_load(&t_slots[s]);
    t_hdr_t h;
    if (p == NULL || !t_check(p, &h)) continue;
    per_pool[h.pool]++;
    if (h.size > 32) CHECKF(corona_pool_identify((char *)p + 16) == NULL, "identify(interior pointer %p + 16)", p);
  }
  for (int k = 0; k < T_POOLS; k++) {
    if (per_pool[k] == 0) { /* unlikely; make one */
      void *p = corona_pool_malloc(t_pools[k], 100);
      if (p) CHECK(corona_pool_identify(p) == t_pools[k]);
      corona_pool_free(t_pools[k], p);
    }
  }
  void *d1 = corona_malloc(100), *d2 = corona_malloc(100 * KB), *d3 = corona_malloc(20 * MB);
  CHECKF(corona_pool_identify(d1) == NULL && corona_pool_identify(d2) == NULL && corona_pool_identify(d3) == NULL,
         "identify(default-heap objects) = NULL");
  corona_free(d1);
  corona_free(d2);
  corona_free(d3);
  int on_stack = 0;
  CHECKF(corona_pool_identify(&on_stack) == NULL && corona_pool_identify(&t_stack_probe) == NULL &&
             corona_pool_identify(NULL) == NULL && corona_pool_identify((void *)test_threads) == NULL,
         "identify(stack, static, NULL, code) = NULL");
  CHECKF(corona_usable_size(&on_stack) == 0, "usable_size(stack) = 0");

  /* Drain: free every object (default API or pool API). */
  tu_rng_t r;
  tu_rng_seed(&r, 5);
  for (size_t s = 0; s < T_SLOTS; s++) {
    void *p = atomic_exchange(&t_slots[s], NULL);
    t_hdr_t h;
    if (p != NULL && t_check(p, &h)) t_free(p, &h, &r);
  }
  printf("    %d pools x %d threads: %ld objects handed between threads, %ld reallocs by other threads, %ld NULLs "
         "(fixed pools full), %zu live at the pause, %zu dropped by resets\n",
         T_POOLS, T_THREADS, atomic_load(&t_moves), atomic_load(&t_reallocs), atomic_load(&t_nulls), live, dropped);
  for (int k = 0; k < T_POOLS; k++) {
    CHECKF(corona_pool_destroy(t_pools[k]) == 0, "destroy pool %d", k);
    if (!t_fixed[k]) check_src_returned(t_src0 + k, "threads");
    else CHECKF(atomic_load(&srcs[t_src0 + k].allocs) == 1, "threads: fixed pool %d: raw_alloc called %ld times", k,
                atomic_load(&srcs[t_src0 + k].allocs));
  }
}

/* ==== lifecycle ================================================================= */

static void lifecycle_many(void) {
  const int id = 20;
  src_reset(id);
  size_t cycles = tu_scaled(1000, 200);
  corona_pool *seen[8];
  size_t n_seen = 0;
  for (size_t c = 0; c < cycles; c++) {
    corona_pool *pool = make_growing(id, c % 3 == 0 ? 64 * KB : 0, c % 2 == 0);
    if (pool == NULL) return;
    bool known = false;
    for (size_t i = 0; i < n_seen; i++) known |= seen[i] == pool;
    if (!known && n_seen < 8) seen[n_seen++] = pool;
    obj_t o[5];
    size_t sizes[5] = {24, 1000, 8064, 100 * KB, c % 50 == 0 ? 17 * MB : 3000};
    for (int i = 0; i < 5; i++) {
      void *p = pool_new(pool, id, sizes[i], "lifecycle");
      o[i].p = NULL;
      if (p) obj_fill(&o[i], p, sizes[i]);
    }
    check_all(o, 5, "lifecycle");
    if (c % 2) corona_pool_free(pool, o[1].p); /* the rest go with the pool */
    if (c % 7 == 0) CHECK(corona_pool_reset(pool) == 0);
    CHECK(corona_pool_destroy(pool) == 0);
    if (src_live(id) != 0) {
      tu_fail(__FILE__, __LINE__, "src_live(id) == 0", "cycle %zu: %zu raw pieces kept after destroy", c, src_live(id));
      break;
    }
  }
  CHECKF(n_seen <= 2, "%zu distinct handles in %zu create/destroy cycles: ids not recycled", n_seen, cycles);
  printf("    %zu create/destroy cycles: %zu distinct handles, %ld raw pieces, %.1f MiB given and returned\n", cycles,
         n_seen, atomic_load(&srcs[id].allocs), (double)atomic_load(&srcs[id].bytes_out) / (double)MB);
  check_src_returned(id, "lifecycle");
}

static void lifecycle_max_pools(void) {
  static corona_pool *pools[300];
  size_t n = 0;
  int rc = 0;
  for (; n < 300; n++) {
    int id = 30 + (int)n < N_SRC ? 30 + (int)n : N_SRC - 1;
    if (n < N_SRC - 30) src_reset(id);
    corona_pool_policy pol = {grow_alloc, grow_free, 64 * KB, false, false, id};
    rc = corona_pool_create(&pol, &pools[n]);
    if (rc != 0) break;
  }
  CHECKF(n == 255 && rc == ENOMEM, "%zu pools alive at once, then %d; want 255, then ENOMEM", n, rc);
  printf("    %zu pools alive at once, the next: %s\n", n, rc == ENOMEM ? "ENOMEM" : "?");
  for (size_t i = 0; i < n; i++) {
    void *p = corona_pool_malloc(pools[i], 64 + i);
    if (CHECKF(p != NULL, "pool %zu of %zu: malloc failed", i, n)) {
      CHECK(corona_pool_identify(p) == pools[i]);
      memset(p, (int)i, 64 + i);
    }
  }
  for (size_t i = 0; i < n; i++) CHECK(corona_pool_destroy(pools[i]) == 0);
  for (size_t i = 0; i < n && 30 + i < N_SRC; i++) check_src_returned(30 + (int)i, "max pools");
  corona_pool_policy pol = {grow_alloc, grow_free, 0, false, false, 30};
  corona_pool *again;
  CHECKF(corona_pool_create(&pol, &again) == 0, "create after destroying them all");
  CHECK(corona_pool_destroy(again) == 0);
}

/* Threads that used a pool and exited before destroy. */
static corona_pool *lc_pool;
static obj_t lc_handed[4][100];
static void *lc_thread(void *arg) {
  uintptr_t t = (uintptr_t)arg;
  tu_rng_t r;
  tu_rng_seed(&r, t + 100);
  obj_t mine[200];
  for (int i = 0; i < 200; i++) {
    size_t size = i % 20 == 0 ? tu_range(&r, 9000, 300 * KB) : tu_range(&r, 1, 2000);
    void *p = corona_pool_malloc(lc_pool, size);
    mine[i].p = NULL;
    if (CHECK(p != NULL)) obj_fill(&mine[i], p, size);
  }
  for (int i = 0; i < 200; i++) {
    if (i % 2) lc_handed[t][i / 2] = mine[i];
    else if (CHECK(obj_check(&mine[i]))) corona_pool_free(lc_pool, mine[i].p);
  }
  return NULL;
}

static void lifecycle_exited_threads(void) {
  const int id = 21;
  src_reset(id);
  lc_pool = make_growing(id, 0, false);
  if (lc_pool == NULL) return;
  for (int round = 0; round < 3; round++) {
    pthread_t th[4];
    for (uintptr_t t = 0; t < 4; t++) pthread_create(&th[t], NULL, lc_thread, (void *)t);
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    /* The threads are gone: their objects are intact; free half (into
     * orphaned blocks), allocate more (adopting them). */
    for (int t = 0; t < 4; t++) {
      check_all(lc_handed[t], 100, "objects of exited threads");
      for (int i = 0; i < 100; i += 2) {
        if (i % 4) corona_free(lc_handed[t][i].p);
        else corona_pool_free(lc_pool, lc_handed[t][i].p);
        void *p = corona_pool_malloc(lc_pool, 50 + (size_t)i);
        lc_handed[t][i].p = NULL;
        if (CHECK(p != NULL)) obj_fill(&lc_handed[t][i], p, 50 + (size_t)i);
      }
      check_all(lc_handed[t], 100, "after adoption");
    }
    if (round == 1) CHECK(corona_pool_reset(lc_pool) == 0);
  }
  CHECK(corona_pool_destroy(lc_pool) == 0);
  check_src_returned(id, "exited threads");
}

/* A thread outlives its pool; a new pool takes the same id. */
static pthread_barrier_t lc_bar;
static corona_pool *lc_old, *lc_new;
static bool lc_use_new;
static obj_t lc_main_objs[64];   /* main's objects of the new pool */
static obj_t lc_thread_objs[64]; /* the thread's objects of the new pool */
static void *lc_survivor(void *arg) {
  (void)arg;
  obj_t mine[64];
  for (int i = 0; i < 64; i++) {
    void *p = corona_pool_malloc(lc_old, 16 + (size_t)i * 100);
    mine[i].p = NULL;
    if (CHECK(p != NULL)) obj_fill(&mine[i], p, 16 + (size_t)i * 100);
  }
  check_all(mine, 64, "survivor's objects");
  pthread_barrier_wait(&lc_bar); /* main destroys lc_old, creates lc_new */
  pthread_barrier_wait(&lc_bar);
  for (int i = 0; i < 64; i++) lc_thread_objs[i].p = NULL;
  if (lc_use_new) {
    for (int i = 0; i < 64; i++) {
      void *p = corona_pool_malloc(lc_new, 16 + (size_t)i * 100);
      if (CHECK(p != NULL)) obj_fill(&lc_thread_objs[i], p, 16 + (size_t)i * 100);
    }
    /* Frees half of main's objects of the new pool (cross-thread). */
    for (int i = 0; i < 64; i += 2) {
      obj_check(&lc_main_objs[i]);
      corona_pool_free(lc_new, lc_main_objs[i].p);
      lc_main_objs[i].p = NULL;
    }
  }
  return NULL; /* exits: its TLS of the old pool is stale, of the new one live */
}

static void lifecycle_survivor(void) {
  for (int v = 0; v < 2; v++) {
    const int ido = 22, idn = 23;
    src_reset(ido);
    src_reset(idn);
    lc_use_new = v == 1;
    lc_old = make_growing(ido, 0, false);
    if (lc_old == NULL) return;
    pthread_barrier_init(&lc_bar, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, lc_survivor, NULL);
    pthread_barrier_wait(&lc_bar);
    CHECK(corona_pool_destroy(lc_old) == 0);
    check_src_returned(ido, "survivor's old pool");
    lc_new = make_growing(idn, 0, true);
    if (lc_new == NULL) return;
    if (v == 0)
      printf("    a thread outlives its pool: the next pool %s the same handle\n",
             lc_new == lc_old ? "reuses" : "does not reuse");
    for (int i = 0; i < 64; i++) {
      void *p = pool_new(lc_new, idn, 16 + (size_t)i * 100, "new pool");
      lc_main_objs[i].p = NULL;
      if (p) obj_fill(&lc_main_objs[i], p, 16 + (size_t)i * 100);
    }
    pthread_barrier_wait(&lc_bar);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&lc_bar);
    check_all(lc_main_objs, 64, "new pool after the thread exited");
    check_all(lc_thread_objs, 64, "the exited thread's objects of the new pool");
    for (int i = 0; i < 64; i++)
      CHECK(lc_main_objs[i].p == NULL || corona_pool_identify(lc_main_objs[i].p) == lc_new);
    obj_t more[64];
    for (int i = 0; i < 64; i++) {
      void *p = pool_new(lc_new, idn, 100 + (size_t)i * 50, "new pool, more");
      more[i].p = NULL;
      if (p) obj_fill(&more[i], p, 100 + (size_t)i * 50);
    }
    check_all(more, 64, "new pool, more");
    check_all(lc_main_objs, 64, "new pool after the thread exited");
    check_all(lc_thread_objs, 64, "the exited thread's objects of the new pool");
    CHECK(corona_pool_destroy(lc_new) == 0);
    check_src_returned(idn, "survivor's new pool");
  }
}

/* destroy of one pool while another thread creates one: destroy must give
 * its memory to its own raw_free. */
static atomic_int race_stage;
static int race_free(intptr_t id, void *p, size_t n) {
  if (atomic_load(&race_stage) == 0) {
    atomic_store(&race_stage, 1); /* let the other thread create its pool now */
    for (int i = 0; i < 2000000 && atomic_load(&race_stage) != 2; i++) sched_yield();
  }
  return grow_free(id, p, n);
}
static int race_other_free(intptr_t id, void *p, size_t n) { return grow_free(id, p, n); }
static corona_pool *race_pool;
static void *race_creator(void *arg) {
  (void)arg;
  while (atomic_load(&race_stage) != 1) sched_yield();
  corona_pool_policy pol = {grow_alloc, race_other_free, 0, false, false, 25};
  CHECK(corona_pool_create(&pol, &race_pool) == 0);
  atomic_store(&race_stage, 2);
  return NULL;
}

static void lifecycle_destroy_create_race(void) {
  src_reset(24);
  src_reset(25);
  atomic_store(&race_stage, 0);
  corona_pool_policy pol = {grow_alloc, race_free, 0, false, false, 24};
  corona_pool *pool;
  if (!CHECK(corona_pool_create(&pol, &pool) == 0)) return;
  for (int i = 0; i < 3; i++) (void)pool_new(pool, 24, 3 * MB, "race"); /* three pieces */
  pthread_t th;
  pthread_create(&th, NULL, race_creator, NULL);
  CHECK(corona_pool_destroy(pool) == 0);
  pthread_join(th, NULL);
  CHECKF(atomic_load(&srcs[25].frees) == 0, "destroy gave %ld pieces of its pool to the raw_free of a pool created "
         "meanwhile", atomic_load(&srcs[25].frees));
  check_src_returned(24, "destroy racing create");
  if (race_pool) CHECK(corona_pool_destroy(race_pool) == 0);
  /* Pieces handed to the wrong raw_free were matched against the wrong id
   * and stay mapped: forget them. */
  pthread_mutex_lock(&recs_mu);
  for (size_t i = 0; i < n_recs;)
    if (recs[i].id == 24 || recs[i].id == 25) recs[i] = recs[--n_recs];
    else i++;
  pthread_mutex_unlock(&recs_mu);
}

static void test_lifecycle(void) {
  lifecycle_many();
  lifecycle_max_pools();
  lifecycle_exited_threads();
  lifecycle_survivor();
  lifecycle_destroy_create_race();
}

/* ==== errors and misuse ========================================================== */

/* Writes a line to stdout at once (the child may abort right after). */
/* One line on stdout (childutil.h). */
#define say(...) cu_put(1, __VA_ARGS__)

static corona_pool *child_pool(int id) {
  src_reset(id);
  return make_growing(id, 0, false);
}

/* Children: each announces "addr 0x..." (the address its report must name),
 * then misuses it when bug is set, and says "done" if it survives. */
static int child_case(const char *name, bool bug) {
  if (strcmp(name, "heap_raw") == 0) return child_heap_raw();
  corona_pool *a = child_pool(40), *b = child_pool(41);
  if (a == NULL || b == NULL) return 3;
  void *pa = corona_pool_malloc(a, 100), *pl = corona_pool_malloc(a, 100 * KB), *ph = corona_malloc(100);
  if (pa == NULL || pl == NULL || ph == NULL) return 3;
  if (strncmp(name, "debug_", 6) == 0) {
    if (!debug_mode_on()) {
      say("debug mode is off in the child");
      return 3;
    }
    if (strcmp(name, "debug_null_pool") == 0) {
      say("addr none");
      if (bug) (void)!corona_pool_malloc(NULL, 10);
    } else {
      corona_pool_destroy(b);
      say("addr 0x%016" PRIxPTR, (uintptr_t)b);
      if (bug) {
        if (strcmp(name, "debug_destroyed_malloc") == 0) (void)!corona_pool_malloc(b, 10);
        if (strcmp(name, "debug_destroyed_free") == 0) corona_pool_free(b, NULL);
        if (strcmp(name, "debug_destroyed_reset") == 0) (void)corona_pool_reset(b);
        if (strcmp(name, "debug_destroyed_destroy") == 0) (void)corona_pool_destroy(b);
      }
    }
  } else if (strcmp(name, "wrong_pool_free") == 0) {
    say("addr 0x%016" PRIxPTR, (uintptr_t)pa);
    if (bug) corona_pool_free(b, pa);
  } else if (strcmp(name, "wrong_pool_free_large") == 0) {
    say("addr 0x%016" PRIxPTR, (uintptr_t)pl);
    if (bug) corona_pool_free(b, pl);
  } else if (strcmp(name, "heap_object_pool_free") == 0) {
    say("addr 0x%016" PRIxPTR, (uintptr_t)ph);
    if (bug) corona_pool_free(a, ph);
  } else if (strcmp(name, "wrong_pool_realloc") == 0) {
    say("addr 0x%016" PRIxPTR, (uintptr_t)pa);
    if (bug) (void)!corona_pool_realloc(b, pa, 200);
  } else {
    say("no case %s", name);
    return 2;
  }
  corona_pool_free(a, pa);
  corona_pool_free(a, pl);
  corona_free(ph);
  if (strncmp(name, "debug_destroyed", 15) != 0) corona_pool_destroy(b);
  corona_pool_destroy(a);
  say("done");
  return 0;
}

static int run_child(const char *name, const char *mode, bool debug) {
  static cu_env_t env;
  cu_env_clean(&env);
  if (debug) cu_env_set(&env, "MALLOC_DEBUG=1");
  char *argv[] = {"test_pool", "child", (char *)name, (char *)mode, NULL};
  cu_child_init(&child, child_out, sizeof child_out, child_err, sizeof child_err);
  return cu_run(&child, cu_self_exe(), argv, &env);
}

typedef struct {
  const char *name;
  bool debug;
  const char *report; /* the line after "corona: ", %s: the address */
} misuse_t;

static const misuse_t misuses[] = {
    {"debug_destroyed_malloc", true, "pool_malloc(): destroyed (or never created) pool %s"},
    {"debug_destroyed_free", true, "pool_free(): destroyed (or never created) pool %s"},
    {"debug_destroyed_reset", true, "pool_reset(): destroyed (or never created) pool %s"},
    {"debug_destroyed_destroy", true, "pool_destroy(): destroyed (or never created) pool %s"},
    {"debug_null_pool", true, "pool_malloc(): NULL pool"},
    {"wrong_pool_free", false, "pool_free(): not an object of this pool: %s"},
    {"wrong_pool_free_large", false, "pool_free(): not an object of this pool: %s"},
    {"heap_object_pool_free", false, "pool_free(): not an object of this pool: %s"},
    {"wrong_pool_realloc", false, "pool_realloc(): not an object of this pool: %s"},
};

static void check_misuse(const misuse_t *m) {
  int st = run_child(m->name, "bug", m->debug);
  const char *a = strstr(child_out, "addr ");
  char addr[40] = "";
  if (a != NULL) sscanf(a + 5, "%39s", addr);
  char want[256];
  snprintf(want, sizeof want, "corona: ");
  snprintf(want + 8, sizeof want - 8, m->report, addr);
  char line[512] = "";
  cu_line(child_err, 0, line, sizeof line);
  bool ok = CHECKF(cu_signalled(st, SIGABRT), "%s: child ended by %s, want SIGABRT; stdout: %.300s; stderr: %.500s",
                   m->name, cu_describe(st), child_out, child_err);
  ok &= CHECKF(cu_line_count(child_err) == 1 && strcmp(line, want) == 0, "%s: stderr is \"%.500s\", want \"%s\"",
               m->name, child_err, want);
  ok &= CHECKF(strstr(child_out, "done") == NULL, "%s: the child went on after the misuse", m->name);
  printf("    %-24s %s\n", m->name, ok ? line : "FAILED");
  st = run_child(m->name, "ok", m->debug);
  CHECKF(cu_exited(st, 0) && child_err[0] == '\0' && strstr(child_out, "done") != NULL,
         "%s (no misuse): ended by %s; stdout: %.300s; stderr: %.500s", m->name, cu_describe(st), child_out, child_err);
}

static void test_errors(void) {
  corona_pool *pool = NULL;
  corona_pool_policy pol = {grow_alloc, grow_free, 0, false, false, 42};
  src_reset(42);
  CHECKF(corona_pool_create(NULL, &pool) == EINVAL, "create(NULL policy): EINVAL");
  CHECKF(corona_pool_create(&pol, NULL) == EINVAL, "create(policy, NULL): EINVAL");
  pol.raw_alloc = NULL;
  CHECKF(corona_pool_create(&pol, &pool) == EINVAL, "create without raw_alloc: EINVAL");
  pol.raw_alloc = grow_alloc;
  pol.raw_free = NULL;
  CHECKF(corona_pool_create(&pol, &pool) == EINVAL, "create growing without raw_free: EINVAL");
  pol.keep_all_memory = true;
  CHECKF(corona_pool_create(&pol, &pool) == EINVAL, "create growing, keep_all, without raw_free: EINVAL");
  pol.fixed = true;
  pol.raw_alloc = fixed_alloc;
  srcs[42].buf = fixed_mem;
  srcs[42].buf_bytes = MB;
  if (CHECKF(corona_pool_create(&pol, &pool) == 0, "create fixed without raw_free: 0")) {
    void *p = corona_pool_malloc(pool, 10);
    CHECK(p != NULL && corona_pool_identify(p) == pool);
    CHECK(corona_pool_destroy(pool) == 0);
  }
  if (pool != NULL && !debug_mode_on()) {
    /* A destroyed (or NULL) pool: EINVAL. */
    errno = 0;
    CHECKF(corona_pool_malloc(pool, 10) == NULL && errno == EINVAL, "malloc on a destroyed pool: NULL, EINVAL");
    errno = 0;
    CHECKF(corona_pool_calloc(pool, 1, 10) == NULL && errno == EINVAL, "calloc on a destroyed pool");
    errno = 0;
    CHECKF(corona_pool_realloc(pool, NULL, 10) == NULL && errno == EINVAL, "realloc on a destroyed pool");
    errno = 0;
    CHECKF(corona_pool_aligned_malloc(pool, 10, 64) == NULL && errno == EINVAL, "aligned_malloc on a destroyed pool");
    CHECKF(corona_pool_reset(pool) == EINVAL, "reset of a destroyed pool: EINVAL");
    CHECKF(corona_pool_destroy(pool) == EINVAL, "destroy of a destroyed pool: EINVAL");
    corona_pool_free(pool, NULL);
    errno = 0;
    CHECKF(corona_pool_malloc(NULL, 10) == NULL && errno == EINVAL, "malloc on NULL: EINVAL");
    CHECKF(corona_pool_reset(NULL) == EINVAL && corona_pool_destroy(NULL) == EINVAL, "reset/destroy(NULL): EINVAL");
    corona_pool_free(NULL, NULL);
  }
  for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++) check_misuse(&misuses[i]);
}

/* ==== main ====================================================================== */
int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "child") == 0) return child_case(argv[2], strcmp(argv[3], "bug") == 0);
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct {
    const char *name;
    void (*fn)(void);
  } groups[] = {
      {"errors", test_errors}, /* forks: first, before any thread exists */
      {"fixed", test_fixed},
      {"growing", test_growing},
      {"threads", test_threads},
      {"lifecycle", test_lifecycle},
  };
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
    bool wanted = argc < 2;
    for (int k = 1; k < argc; k++) wanted = wanted || strcmp(argv[k], groups[i].name) == 0;
    if (!wanted) continue;
    int before = tu_failure_count();
    double t = tu_now();
    printf("  %s:\n", groups[i].name);
    groups[i].fn();
    int f = tu_failure_count() - before;
    printf("  %-10s %s (%.3f s)\n", groups[i].name, f ? "FAILED" : "ok", tu_now() - t);
  }
  return tu_finish("test_pool", t0);
}
