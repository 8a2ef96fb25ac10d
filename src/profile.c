/* profile.c (layer: api) — heap profiling: one allocation sampled per
 * PROFILE_RATE bytes on average, at geometric intervals drawn per thread,
 * with its call stack; the samples still live and those ever taken, per
 * (stack, size), written in the legacy heap-profile text format that pprof
 * reads (google-pprof, Go's pprof), the process's mappings appended; and
 * the leak report at exit.
 *
 * Nothing here runs while profiling is off: the fast paths do not change.
 * The profiler sets cr_sample_hook and every thread's CR_COUNT_SAMPLES bit
 * (cr_pool_set_counting): then every swap of a bin's local list takes the
 * checked route, and each slow path that hands a list of small objects to a
 * thread takes their bytes (and those of the hot objects frees put on the
 * list since the last time) from the thread's budget, tls->sample_left
 * (bin_swap.c, sample_take); where they do not fit, it asks sample_small, which
 * cuts the list at the sample point or serves the sample.  The
 * allocation at the sample point is served as a page-sized large object
 * whose header points to its record (cr_large_t.sample), so its free takes
 * the large path, where cr_profile_free takes it out of the live set: the
 * small free path never looks.  Large allocations are counted in
 * cr_profile_large.
 *
 * Estimates: a sample point falls in an allocation of s bytes with
 * probability 1 - exp(-s/rate), and the profile gives the raw samples with
 * the rate (heap_v2/rate), as tcmalloc and jemalloc do: pprof divides each
 * line's figures by that probability at the line's mean size.  s is the
 * size the sampler counted: the size class of a small request, the request
 * itself for a large one.  A record holds one class of small samples, or
 * the large ones of a sixteenth of an octave of sizes with their bytes
 * summed: a record per distinct size had made one per sample where sizes
 * vary (35,000 records, most of the profiling's cost, in a churn of 8 KiB
 * .. 2 MiB objects), and the mean of sizes within 6 % of each other gives
 * the same estimate to a small fraction of a per cent.
 *
 * Locking: records live in metadata memory (never freed), in a hash table
 * under prof_lock (rank CR_RANK_PROFILE, taken alone, or before metadata
 * memory's lock when a record is created; the fork handlers take it in
 * that order).  Stacks are taken without any lock held. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "corona.h"
#include "internal/api.h"
#include "internal/os.h"
#include "internal/options.h"
#include "internal/report.h"

/* One record per (stack, size key). */
typedef struct cr_sample_s {
  struct cr_sample_s *next; /* lock: the hash chain */
  uint64_t key;             /* immutable: hash of both */
  uint64_t stack_hash;      /* immutable: hash of the stack alone (the leak report) */
  uint64_t size_key;        /* immutable: see size_key() */
  uint64_t allocs;          /* lock: samples taken */
  uint64_t live;            /* lock: of them, not freed yet */
  uint64_t alloc_bytes;     /* lock: the bytes the sampler counted for them */
  uint64_t live_bytes;      /* lock: of those, not freed yet */
  uint32_t depth;           /* immutable */
  void *pcs[];              /* immutable: return addresses, innermost first */
} cr_sample_t;

/* A record's size key: a small sample's counted size (its class: a few
 * dozen values); a large one's sixteenth of an octave, flagged.  A large
 * sample's counted size is its request, h->size, which stays as it was
 * while the object is sampled (realloc moves a sampled object:
 * cr_resize_in_place), so its free takes that back from live_bytes. */
#define SIZE_BUCKETED ((uint64_t)1 << 63)
static uint64_t size_key(size_t size, bool large) {
  if (!large || size < 32) return size;
  int e = 63 - __builtin_clzll(size);
  return SIZE_BUCKETED | (uint64_t)e << 8 | (size >> (e - 4)); /* 16 .. 31 */
}

#define TABLE_SIZE 16384 /* chains of the hash table (a power of two) */

static cr_lock_t prof_lock = CR_LOCK_INIT(CR_RANK_PROFILE);
static cr_sample_t *table[TABLE_SIZE]; /* lock */
static size_t records;                 /* lock */
static uint64_t dropped;               /* lock: samples without a record (CORONA_PROFILE_MAX_RECORDS) */

static _Atomic(uint64_t) prof_rate;   /* mean bytes between samples; written by start */
static _Atomic(uint32_t) prof_gen;    /* changes at each start: threads draw afresh */
static _Atomic(uint64_t) counted;     /* bytes the samples stand for, summed (PROFILE_INTERVAL) */
static _Atomic(uint64_t) next_dump;   /* counted's value at which the next interval dump is due */
static _Atomic(uint64_t) dump_seq;    /* the number of the last interval dump */
static _Atomic(uint64_t) seeds;       /* threads' generators seeded so far: each its own stream */

/* The calling thread's sampler; the bytes to its next sample point and
 * its pending samples are in its TLS (cr_tls_t.sample_left and
 * .sample_pending: bin_swap.c takes from them in line).  initial-exec: reaching
 * this never allocates. */
typedef struct prof_thread_s {
  uint64_t rng;  /* splitmix64 state */
  uint32_t gen;  /* prof_gen when it was drawn */
  bool busy;     /* taking a sample: an allocation from inside it is never sampled */
} prof_thread_t;
static _Thread_local prof_thread_t self __attribute__((tls_model("initial-exec")));

/* ---- arithmetic without libm -------------------------------------------- */

/* Natural logarithm of x > 0: x = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh((m - 1) / (m + 1)), whose series converges fast there
 * (|t| <= 1/3: the terms kept are exact to about 1e-7). */
static double prof_log(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
  double m;
  memcpy(&m, &bits, sizeof m);
  double t = (m - 1) / (m + 1), t2 = t * t;
  double series = t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 / 11)))));
  return e * 0.6931471805599453 + 2 * series;
}

/* exp(-x) for x >= 0: halved until small, a Taylor polynomial, squared back. */
static double prof_exp_neg(double x) {
  if (x > 700) return 0;
  int halvings = 0;
  while (x > 0.125) x /= 2, halvings++;
  double r = 1 - x * (1 - x / 2 * (1 - x / 3 * (1 - x / 4 * (1 - x / 5))));
  while (halvings-- > 0) r *= r;
  return r;
}

static uint64_t splitmix(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The next interval: exponential with mean rate (the byte-level geometric
 * distribution), so that samples land where the bytes are, whatever the
 * period of the program's pattern.  A new start forgets what was pending. */
static void draw(prof_thread_t *t, cr_tls_t *tls) {
  uint32_t gen = cr_load_relaxed(&prof_gen);
  /* A seed of its own per thread: threads started one after the other
   * reuse one TLS address within one millisecond, and equal seeds drew
   * equal intervals (a thread churn's estimate off by 30 %). */
  if (t->rng == 0) {
    uint64_t n = atomic_fetch_add_explicit(&seeds, 1, memory_order_relaxed) + 1;
    t->rng = splitmix(&n) ^ (uintptr_t)t ^ (cr_os_now_ms() << 32);
  }
  double u = (double)((splitmix(&t->rng) >> 11) + 1) / 9007199254740992.0; /* (0, 1] */
  double interval = -prof_log(u) * (double)cr_load_relaxed(&prof_rate);
  tls->sample_left = interval < 1 ? 1 : interval > 4e18 ? (uint64_t)4e18 : (uint64_t)interval;
  if (t->gen != gen) tls->sample_pending = 0;
  t->gen = gen;
}

static bool profiling(void) { return cr_load_relaxed(&cr_sample_hook) != NULL; }

/* ---- records ------------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

/* The record of (pcs, size_key), created if new; NULL when the table is
 * full or metadata memory runs out.  Lock held. */
static cr_sample_t *record_locked(void **pcs, uint32_t depth, uint64_t size_key) {
  uint64_t stack_hash = depth;
  for (uint32_t i = 0; i < depth; i++) stack_hash = mix(stack_hash, (uintptr_t)pcs[i]);
  uint64_t key = mix(stack_hash, size_key);
  cr_sample_t **chain = &table[key & (TABLE_SIZE - 1)];
  for (cr_sample_t *r = *chain; r != NULL; r = r->next)
    if (r->key == key && r->size_key == size_key && r->depth == depth &&
        memcmp(r->pcs, pcs, depth * sizeof *pcs) == 0)
      return r;
  if (records >= CORONA_PROFILE_MAX_RECORDS) return NULL;
  cr_sample_t *r = cr_meta_alloc(sizeof *r + depth * sizeof *pcs);
  if (r == NULL) return NULL;
  memset(r, 0, sizeof *r);
  r->key = key;
  r->stack_hash = stack_hash;
  r->size_key = size_key;
  r->depth = depth;
  memcpy(r->pcs, pcs, depth * sizeof *pcs);
  r->next = *chain;
  *chain = r;
  records++;
  return r;
}

/* The caller's stack, corona's own frames left out by the OS layer when
 * corona is a shared object (in a program linked with libcorona.a they stay
 * on top, see docs/profiling.md). */
static uint32_t take_stack(void **pcs, cr_tls_t *tls) {
  int n = cr_os_backtrace(pcs, CORONA_PROFILE_FRAMES, &tls->stack_memo);
  return n > 0 ? (uint32_t)n : 0;
}

static void interval_dump(void);

/* Records a sample of the live large object whose header is h.  In line:
 * each frame between the unwinder and the program costs the unwinder. */
CR_INLINE void take_sample(prof_thread_t *t, cr_tls_t *tls, cr_large_t *h, size_t size, bool large) {
  void *pcs[CORONA_PROFILE_FRAMES];
  t->busy = true;
  uint32_t depth = take_stack(pcs, tls);
  cr_lock(&prof_lock);
  cr_sample_t *r = record_locked(pcs, depth, size_key(size, large));
  if (r != NULL) {
    r->allocs++;
    r->live++;
    r->alloc_bytes += size;
    r->live_bytes += size;
  } else {
    dropped++;
  }
  cr_unlock(&prof_lock);
  h->sample = r;
  uint64_t interval = (uint64_t)cr_option(CR_OPT_PROFILE_INTERVAL);
  if (interval != 0) { /* the bytes this sample stands for, as pprof estimates them */
    double p = 1 - prof_exp_neg((double)size / (double)cr_load_relaxed(&prof_rate));
    uint64_t bytes = p > 0 ? (uint64_t)((double)size / p) : size;
    uint64_t now = atomic_fetch_add_explicit(&counted, bytes, memory_order_relaxed) + bytes;
    if (now >= cr_load_relaxed(&next_dump)) interval_dump();
  }
  t->busy = false;
}

/* A large object for a sampled small allocation, of the class's alignment
 * (a class that is a multiple of an alignment is how aligned small requests
 * are served); NULL (then served unsampled) when there is no memory. */
CR_INLINE void *sampled_small(prof_thread_t *t, cr_tls_t *tls, size_t size, size_t object_size) {
  size_t align = object_size & (0 - object_size);
  void *p = cr_large_alloc(&cr_default_pool, tls, size, align > CORONA_LARGE_HEADER ? align : 0, false);
  if (p != NULL) take_sample(t, tls, cr_large_header(p, CR_KIND_LARGE), object_size, false);
  return p;
}

/* cr_sample_hook: see thread.h.  bin_swap.c has found that the list's bytes do
 * not fit in tls->sample_left, or that the bin has a sample pending. */
static void *sample_small(cr_tls_t *tls, size_t size, size_t object_size, uint32_t hot, uint32_t *allow,
                          bool beyond_drops) {
  prof_thread_t *t = &self;
  if (t->gen != cr_load_relaxed(&prof_gen)) draw(t, tls);
  if (t->busy) return NULL; /* the whole list, uncounted: only the sampler itself comes here */
  uint64_t bit = (uint64_t)1 << cr_bin_index(object_size);
  /* Hot objects were allocated without a slow path: their bytes count now,
   * and a sample point that fell among them is taken here (late by at most
   * CORONA_HOT_OBJECTS objects of this class). */
  int64_t left = (int64_t)tls->sample_left - (int64_t)(hot * object_size);
  bool now = true; /* one call site for both: the stack memo (os.h) sees one return address */
  if (tls->sample_pending & bit) {
    tls->sample_pending &= ~bit; /* the object a cut kept for this class's next list */
    tls->sample_left = left < 0 ? 0 : (uint64_t)left;
  } else if (left < (int64_t)object_size) { /* the point falls in this object */
    draw(t, tls);
  } else {
    now = false;
  }
  if (now) return sampled_small(t, tls, size, object_size);
  uint64_t k = (uint64_t)left / object_size;
  if (k >= *allow) {
    if (beyond_drops) /* the point fell past the list's real end (bin_swap.c, sample_take) */
      draw(t, tls);
    else
      tls->sample_left = (uint64_t)left - *allow * object_size;
    return NULL;
  }
  /* The point falls in object k + 1 of this list: the list stops short,
   * and this class's next list starts with the sample.  The bytes other
   * classes are handed meanwhile come after it, as if the list had gone on:
   * they count towards the point after (a fresh interval, by the
   * exponential's lack of memory).  Giving the point to whichever class
   * asked next instead would favour the classes that ask often. */
  *allow = (uint32_t)k;
  tls->sample_pending |= bit;
  draw(t, tls);
  return NULL;
}

/* The large object p of size bytes, sampled: out of line, so that the
 * common case of cr_profile_large saves no registers for a stack's buffer
 * (44 instructions an allocation there before, server-mixed). */
static CR_NOINLINE void *sampled_large(prof_thread_t *t, cr_tls_t *tls, void *p, size_t size) {
  take_sample(t, tls, cr_large_header(p, CR_KIND_LARGE), size, true);
  draw(t, tls);
  return p;
}

void *cr_profile_large(size_t size, size_t alignment, bool zero) {
  prof_thread_t *t = &self;
  cr_tls_t *tls = cr_tls_own();
  if (tls == NULL) tls = cr_tls_create(&cr_default_pool); /* as its first small allocation would */
  void *p = cr_large_alloc(&cr_default_pool, tls, size, alignment, zero);
  if (p == NULL || tls == NULL || t->busy) return p;
  if (t->gen != cr_load_relaxed(&prof_gen)) draw(t, tls);
  if (tls->sample_left >= size) {
    tls->sample_left -= size;
    return p;
  }
  return sampled_large(t, tls, p, size);
}

void cr_profile_free(cr_large_t *h) {
  cr_sample_t *r = h->sample;
  h->sample = NULL;
  cr_lock(&prof_lock);
  r->live--;
  r->live_bytes -= r->size_key & SIZE_BUCKETED ? h->size : r->size_key; /* as take_sample counted it */
  cr_unlock(&prof_lock);
}

/* ---- starting and stopping ---------------------------------------------- */

static int start(uint64_t rate) {
  if (cr_checked) return ENOTSUP; /* debug mode wraps every object: nothing to sample */
  /* What the calling thread's bins hold would be handed out unseen: it goes
   * home, so that sampling starts with its next allocation (other threads'
   * start once their lists run dry). */
  cr_tls_t *tls = cr_tls_own();
  if (tls != NULL && tls->pool == &cr_default_pool) cr_tls_flush(tls);
  cr_store_relaxed(&prof_rate, rate);
  atomic_fetch_add_explicit(&prof_gen, 1, memory_order_relaxed);
  cr_store_relaxed(&cr_sample_hook, sample_small);
  cr_pool_set_counting(tls);
  return 0;
}

void cr_profile_init(void) {
  uint64_t interval = (uint64_t)cr_option(CR_OPT_PROFILE_INTERVAL);
  cr_store_relaxed(&next_dump, interval);
  if (!cr_option(CR_OPT_PROFILE) && interval == 0 && !cr_option(CR_OPT_PROFILE_LEAKS)) return;
  if (start((uint64_t)cr_option(CR_OPT_PROFILE_RATE)) != 0) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "heap profiling is not available in debug mode; profiling off");
    cr_line_emit(&l);
  }
}

bool cr_profile_at_exit_wanted(void) { return cr_option(CR_OPT_PROFILE) || cr_option(CR_OPT_PROFILE_LEAKS); }

CORONA_API int corona_profile_start(size_t rate) {
  cr_init();
  if (rate == 0) rate = (size_t)cr_option(CR_OPT_PROFILE_RATE);
  return start(rate);
}

CORONA_API int corona_profile_stop(void) {
  cr_init();
  if (!profiling()) return 0;
  cr_store_relaxed(&cr_sample_hook, NULL);
  cr_pool_set_counting(cr_tls_own());
  return 0;
}

/* ---- the profile -------------------------------------------------------- */

/* A buffered writer to a file, formatted with snprintf (no allocation for
 * these formats); a failed write is remembered. */
typedef struct writer_s {
  const char *path;
  bool ok;
  size_t n;
  char buf[4096];
} writer_t;

static void flush(writer_t *w) {
  if (w->n > 0 && w->ok) w->ok = cr_os_write(w->path, w->buf, w->n);
  w->n = 0;
}

#define WRITE(w, ...)                                                    \
  do {                                                                   \
    if (sizeof (w)->buf - (w)->n < 256) flush(w);                        \
    int k_ = snprintf((w)->buf + (w)->n, sizeof (w)->buf - (w)->n, __VA_ARGS__); \
    if (k_ > 0) (w)->n += (size_t)k_ < sizeof (w)->buf - (w)->n ? (size_t)k_ : sizeof (w)->buf - (w)->n - 1; \
  } while (0)

typedef unsigned long long ull;

/* A record line's figures and addresses are written without snprintf,
 * which spent 90 % of the dump at exit (a churn of many sizes has
 * thousands of records, ~3000 instructions a call).  Callers leave room:
 * write_record_head flushes for the whole head and each address. */

/* v in decimal, right-aligned in width characters, as "%<width>llu". */
static void write_u64(writer_t *w, uint64_t v, int width) {
  char d[20];
  size_t n = cr_fmt_u64(d, v);
  for (; width > (int)n; width--) w->buf[w->n++] = ' ';
  for (size_t i = 0; i < n; i++) w->buf[w->n + i] = d[i]; /* a few bytes: no call */
  w->n += n;
}

/* "live: bytes [allocated: bytes] @", as "%6llu: %8llu [%6llu: %8llu] @". */
static void write_record_head(writer_t *w, uint64_t live, uint64_t live_bytes, uint64_t allocs, uint64_t alloc_bytes) {
  if (sizeof w->buf - w->n < 128) flush(w);
  write_u64(w, live, 6);
  w->buf[w->n++] = ':', w->buf[w->n++] = ' ';
  write_u64(w, live_bytes, 8);
  w->buf[w->n++] = ' ', w->buf[w->n++] = '[';
  write_u64(w, allocs, 6);
  w->buf[w->n++] = ':', w->buf[w->n++] = ' ';
  write_u64(w, alloc_bytes, 8);
  w->buf[w->n++] = ']', w->buf[w->n++] = ' ', w->buf[w->n++] = '@';
}

/* " 0x" and pc in hex, as " %p" writes it. */
static void write_pc(writer_t *w, const void *pc) {
  if (sizeof w->buf - w->n < 32) flush(w);
  w->buf[w->n++] = ' ', w->buf[w->n++] = '0', w->buf[w->n++] = 'x';
  w->n += cr_fmt_hex(w->buf + w->n, (uintptr_t)pc, 1);
}

/* The legacy heap profile: a header with the totals and the rate, a line
 * per record ("live: bytes [allocated: bytes] @ pcs"), and the mappings.
 * Record lines are written under the lock (no allocation there). */
static int write_profile(const char *path) {
  writer_t w = {path, true, 0, {0}};
  uint64_t live = 0, live_bytes = 0, allocs = 0, alloc_bytes = 0;
  cr_lock(&prof_lock);
  for (size_t i = 0; i < TABLE_SIZE; i++)
    for (cr_sample_t *r = table[i]; r != NULL; r = r->next) {
      live += r->live, live_bytes += r->live_bytes;
      allocs += r->allocs, alloc_bytes += r->alloc_bytes;
    }
  WRITE(&w, "heap profile: %6llu: %8llu [%6llu: %8llu] @ heap_v2/%llu\n", (ull)live, (ull)live_bytes, (ull)allocs,
        (ull)alloc_bytes, (ull)cr_load_relaxed(&prof_rate));
  for (size_t i = 0; i < TABLE_SIZE; i++)
    for (cr_sample_t *r = table[i]; r != NULL; r = r->next) {
      write_record_head(&w, r->live, r->live_bytes, r->allocs, r->alloc_bytes);
      for (uint32_t f = 0; f < r->depth; f++) write_pc(&w, r->pcs[f]);
      if (sizeof w.buf - w.n < 2) flush(&w);
      w.buf[w.n++] = '\n';
    }
  cr_unlock(&prof_lock);
  WRITE(&w, "\nMAPPED_LIBRARIES:\n");
  flush(&w);
  if (w.ok) cr_os_write_mappings(path);
  return w.ok ? 0 : EIO;
}

CORONA_API int corona_profile_dump(const char *path) {
  if (path == NULL) return EINVAL;
  cr_init();
  prof_thread_t *t = &self;
  bool was_busy = t->busy;
  t->busy = true; /* the C library may allocate in snprintf: never sample that */
  errno = 0;
  int status = !cr_os_write(path, NULL, 0) ? errno != 0 ? errno : EIO : write_profile(path);
  t->busy = was_busy;
  return status;
}

/* PREFIX.PID.WHAT.heap, PREFIX from the option PROFILE (else "corona"). */
static void dump_named(const char *what) {
  const char *prefix = cr_option_text(CR_OPT_PROFILE);
  char name[8], path[CORONA_OPTION_TEXT_MAX + 64];
  uint64_t pid = cr_os_process_id(name, sizeof name);
  snprintf(path, sizeof path, "%s.%llu.%s.heap", prefix != NULL ? prefix : CORONA_PROFILE_PREFIX, (ull)pid, what);
  if (corona_profile_dump(path) != 0) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "cannot write the heap profile ");
    cr_line_str(&l, path);
    cr_line_emit(&l);
  }
}

/* PROFILE_INTERVAL: the thread whose sample crosses the mark dumps; the
 * others move on (the CAS picks one). */
static void interval_dump(void) {
  uint64_t interval = (uint64_t)cr_option(CR_OPT_PROFILE_INTERVAL);
  uint64_t due = cr_load_relaxed(&next_dump);
  if (!atomic_compare_exchange_strong_explicit(&next_dump, &due, due + interval, memory_order_relaxed,
                                               memory_order_relaxed))
    return;
  char what[24];
  snprintf(what, sizeof what, "%llu", (ull)atomic_fetch_add_explicit(&dump_seq, 1, memory_order_relaxed));
  dump_named(what);
}

/* ---- the leak report ---------------------------------------------------- */

/* What the live samples of a record stand for (pprof's estimate, at their
 * mean size). */
static double live_estimate(const cr_sample_t *r, double rate) {
  if (r->live == 0) return 0;
  double p = 1 - prof_exp_neg((double)r->live_bytes / (double)r->live / rate);
  return p > 0 ? (double)r->live_bytes / p : 0;
}

#define LEAK_STACKS 10

/* Shell sort by stack hash (the C library's qsort may allocate). */
static void sort_by_stack(cr_sample_t **v, size_t n) {
  for (size_t gap = n / 2; gap > 0; gap /= 2)
    for (size_t i = gap; i < n; i++)
      for (size_t j = i; j >= gap && v[j - gap]->stack_hash > v[j]->stack_hash; j -= gap) {
        cr_sample_t *x = v[j];
        v[j] = v[j - gap], v[j - gap] = x;
      }
}

/* The stacks holding the most live bytes (estimates; the records of one
 * stack summed), with their functions, on stderr. */
static void leak_report(void) {
  double rate = (double)cr_load_relaxed(&prof_rate), total = 0;
  struct {
    const cr_sample_t *r;
    double bytes;
  } top[LEAK_STACKS] = {{0}};
  uint64_t stacks = 0;
  cr_lock(&prof_lock);
  size_t cap = (records + 1) * sizeof(cr_sample_t *), n = 0;
  cap = (cap + CORONA_PAGE_SIZE - 1) & ~(CORONA_PAGE_SIZE - 1);
  cr_sample_t **v = cr_os_map(cap, 0, 0, CR_OS_META);
  for (size_t i = 0; i < TABLE_SIZE && v != NULL; i++)
    for (cr_sample_t *r = table[i]; r != NULL; r = r->next)
      if (r->live != 0) v[n++] = r;
  if (v != NULL) sort_by_stack(v, n);
  /* Records of one stack are now together (a stack is known by its 64-bit
   * hash here: a collision would merge two stacks in this report only). */
  for (size_t i = 0, j; i < n; i = j) {
    double bytes = 0;
    for (j = i; j < n && v[j]->stack_hash == v[i]->stack_hash; j++) bytes += live_estimate(v[j], rate);
    total += bytes, stacks++;
    int k = LEAK_STACKS;
    while (k > 0 && (top[k - 1].r == NULL || top[k - 1].bytes < bytes)) k--;
    if (k < LEAK_STACKS) {
      memmove(&top[k + 1], &top[k], (LEAK_STACKS - 1 - (size_t)k) * sizeof top[0]);
      top[k].r = v[i], top[k].bytes = bytes;
    }
  }
  cr_unlock(&prof_lock);
  if (v != NULL) cr_os_unmap(v, cap);
  char line[1024];
  int len = snprintf(line, sizeof line, "corona: leak report: ~%.0f bytes live in %llu stacks (estimated from samples)\n",
                     total, (ull)stacks);
  cr_os_write(NULL, line, (size_t)len);
  for (int k = 0; k < LEAK_STACKS && top[k].r != NULL; k++) {
    len = snprintf(line, sizeof line, "corona: ~%.0f bytes at", top[k].bytes);
    for (uint32_t f = 0; f < top[k].r->depth && f < 8 && len < (int)sizeof line - 128; f++) {
      char name[96];
      /* A return address: the call is the byte before it. */
      if (!cr_os_symbol((char *)top[k].r->pcs[f] - 1, name, sizeof name))
        snprintf(name, sizeof name, "%p", top[k].r->pcs[f]);
      len += snprintf(line + len, sizeof line - (size_t)len, "%s %s", f ? " <-" : "", name);
    }
    line[len++] = '\n';
    cr_os_write(NULL, line, (size_t)len);
  }
}

void cr_profile_at_exit(void) {
  if (cr_option(CR_OPT_PROFILE)) dump_named("final");
  if (cr_option(CR_OPT_PROFILE_LEAKS)) leak_report();
}

void cr_profile_fork_lock(bool take) {
  if (take) cr_lock(&prof_lock);
  else cr_unlock(&prof_lock);
}
