/* fuzz_api.c — libFuzzer harness for corona's public API.
 *
 * Each input is turned into a sequence of corona_malloc, corona_calloc,
 * corona_realloc, corona_aligned_malloc, corona_aligned_realloc,
 * corona_posix_memalign, corona_free and corona_usable_size calls, run by two
 * threads: libFuzzer's own (the "main" thread) and one persistent worker
 * thread.  A shadow table of 64 slots records every live object (pointer,
 * requested size, alignment, usable size, fill seed).  Every object is filled
 * with a pattern derived from its seed and the byte offset (all bytes up to
 * 16 KiB; for bigger objects the first and last 4 KiB plus 8 bytes every 16 KiB
 * or so, every 256 KiB past 1 MiB, at offsets that vary with the seed),
 * and the harness aborts with a "fuzz_api: FAIL" message on any mismatch:
 *   - contents not matching the pattern on verify, free or realloc (realloc
 *     must keep the prefix min(old, new));
 *   - a pointer not 16-aligned, or an aligned call not honouring its alignment;
 *   - usable_size below the requested size, or changing while the object lives;
 *   - calloc memory not zero;
 *   - two live objects overlapping ([p, p + usable) ranges);
 *   - a valid request returning NULL; an impossible one (SIZE_MAX, sizes past
 *     the address space, calloc overflow, huge alignments) not returning NULL
 *     with ENOMEM; an alignment that is not a power of two not giving NULL with
 *     EINVAL; posix_memalign touching errno or *out on failure; a failed
 *     realloc damaging the old object;
 *   - corona_usable_size of NULL or of a pointer corona never returned not 0.
 * Objects allocated by one thread are freed and realloc'd by the other
 * (cross-thread frees), at times while that thread is itself allocating.
 * Everything still live is freed at the end of each input (by both threads).
 *
 * Input format (every read past the end of a stream yields 0):
 *   input   := segment*
 *   segment := hdr:u8 len:u8 body:u8[len + 1]      (the body may be cut short)
 *     hdr & 7 = 0, 1  the main thread runs the body alone, on all 64 slots
 *               2, 3  the worker thread runs the body alone, on all 64 slots
 *               4..6  both at once: main runs the first half of the body,
 *                     the worker the second; main owns the slots whose
 *                     parity is (hdr >> 3) & 1, the worker the others
 *               7     like 4..6; and when hdr >> 4 is 15, first the worker
 *                     thread is replaced by a new one (the old one exits,
 *                     orphaning its blocks; rare, as each thread costs ASan
 *                     a few KiB for good)
 *   body    := op*
 *   op      := code:u8 operands        (code % 32 picks the call)
 *     0-5    malloc          slot size
 *     6-7    calloc          slot count:u8 size    (count % 9 elements of size/count)
 *     8-12   realloc         slot size             (realloc(NULL, n) on an empty slot)
 *     13-14  aligned_malloc  slot size align
 *     15-16  aligned_realloc slot size align
 *     17-18  posix_memalign  slot align size       (align raised to >= 8)
 *     19-25  free            slot
 *     26     usable_size     slot                  (also NULL and foreign pointers)
 *     27     verify          slot                  (check the contents in place)
 *     28     impossible      kind:u8 slot arg:u8   (one of 12 kinds of request that must fail)
 *     29     shrink to 0     slot sel:u8           (realloc or aligned_realloc to size 0: a free)
 *     30-31  burst           sel:u8 size           (sel 0: corona_collect; else sel % 32 + 1
 *                                                   objects allocated, filled, checked and freed)
 *   slot    := u8    (% 64 alone; in a shared segment (% 32) * 2 + the thread's parity)
 *   size    := sel:u8 then: sel < 128: u8 (0..255); < 192: u16le % 8129;
 *              < 224: u8 indexing a table of boundary sizes;
 *              < 240: 8129 + u16le % (64 KiB - 8128) (up to 64 KiB);
 *              < 252: 8129 + u24le % (1 MiB - 8128) (up to 1 MiB);
 *              else 1 MiB + u24le % 7 MiB (up to 8 MiB)
 *   align   := u8:  < 240: 1 << (a % 13) (1 .. 4 KiB); else 1 << (12 + a % 12) (.. 8 MiB)
 * An allocation into an occupied slot first frees the object there.
 *
 * Build with -DFUZZ_SELFTEST for a harness that corrupts one byte of some
 * objects before freeing them: it must crash at once (scripts/fuzz --selftest). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corona.h"

#define NSLOTS 64
#define MIB ((size_t)1 << 20)
#define FULL_FILL (16 * 1024) /* objects up to this size are patterned in full */
#define EDGE 4096             /* bigger ones: this much at each end ... */
#define ERRNO_SENTINEL 7777   /* errno before a call whose errno is checked */

/* ---- failure -------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static _Noreturn void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz_api: FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

/* ---- input streams -------------------------------------------------------- */

typedef struct {
  const uint8_t *p, *end;
} reader_t;

static uint8_t rd8(reader_t *r) { return r->p < r->end ? *r->p++ : 0; }
static size_t rd16(reader_t *r) {
  size_t lo = rd8(r);
  return lo | (size_t)rd8(r) << 8;
}
static size_t rd24(reader_t *r) {
  size_t lo = rd16(r);
  return lo | (size_t)rd8(r) << 16;
}

/* Sizes where something changes: the small size classes and some of their
 * neighbours, the small/large boundary, pages, slabs, 1 MiB (the global
 * cache's exact bins), 2 MiB (huge pages), the 4 MiB region block limit. */
static const size_t boundary_sizes[] = {
    0,       1,       8,       15,      16,      17,       31,        32,       33,      48,     49,
    64,      65,      80,      96,      112,     113,      128,       129,      160,     192,    224,
    256,     257,     320,     384,     448,     512,      513,       640,      768,     896,    1024,
    1025,    1344,    1345,    1472,    1600,    1792,     1984,      2304,     2688,    3200,   4032,
    4033,    4096,    5376,    5377,    8127,    8128,     8129,      8192,     12288,   16320,  16384,
    16385,   65536,   65537,   262144,  1 << 20, (1 << 20) + 1, 2 << 20, (4 << 20) - 4096, 4 << 20,
    (4 << 20) + 1};
#define NBOUNDARY (sizeof boundary_sizes / sizeof boundary_sizes[0])

static size_t rd_size(reader_t *r) {
  uint8_t sel = rd8(r);
  if (sel < 128) return rd8(r);
  if (sel < 192) return rd16(r) % 8129;
  if (sel < 224) return boundary_sizes[rd8(r) % NBOUNDARY];
  if (sel < 240) return 8129 + rd16(r) % (65536 - 8128);
  if (sel < 252) return 8129 + rd24(r) % (MIB - 8128);
  return MIB + rd24(r) % (7 * MIB);
}

static size_t rd_align(reader_t *r) {
  uint8_t a = rd8(r);
  if (a < 240) return (size_t)1 << (a % 13);
  return (size_t)1 << (12 + a % 12);
}

/* ---- fill patterns ---------------------------------------------------------- */

/* The byte loops below see no coverage or ASan instrumentation: they are
 * the harness's hot spots, and the memory they touch is corona's (which ASan
 * does not track) anyway. */
#define HOT __attribute__((no_sanitize("coverage", "address")))

/* Byte i of the pattern of seed is byte i % 8 of word(seed, i / 8): the
 * loops work a word at a time, and a byte that lands at another offset or
 * in another object is still caught. */
HOT static inline uint64_t word(uint32_t seed, size_t k) {
  uint64_t x = ((uint64_t)k + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 17);
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 32);
}

HOT static inline uint8_t pat(uint32_t seed, size_t i) { return (uint8_t)(word(seed, i / 8) >> (i % 8 * 8)); }

static uint8_t tail_mark(uint32_t seed) { return (uint8_t)((seed >> 24) ^ 0x5A); }

/* The stride between the patterned 8-byte runs inside an object bigger than
 * FULL_FILL: a few pages, so that a big object costs few page faults; not a
 * multiple of the page size, and starting at an offset taken from the seed,
 * so that over many objects every offset in a page gets checked. */
static size_t stride_for(size_t n) { return n <= MIB ? 16381 : 262139; }

/* Calls visit(p, off, len, arg) for the patterned ranges of an object of n
 * bytes that start below limit (clipped to limit); stops at the first nonzero
 * return and passes it on. */
typedef size_t (*visit_fn)(uint8_t *p, size_t off, size_t len, uint32_t seed);

static size_t each_range(uint8_t *p, size_t n, size_t limit, uint32_t seed, visit_fn visit) {
  size_t r;
#define VISIT(off, len)                                                          \
  do {                                                                           \
    size_t o_ = (off), l_ = (len);                                               \
    if (o_ < limit) {                                                            \
      if (l_ > limit - o_) l_ = limit - o_;                                      \
      if ((r = visit(p, o_, l_, seed)) != 0) return r;                           \
    }                                                                            \
  } while (0)
  if (n <= FULL_FILL) {
    VISIT(0, n);
    return 0;
  }
  VISIT(0, EDGE);
  size_t stride = stride_for(n);
  for (size_t off = EDGE + seed % stride; off + 8 <= n - EDGE; off += stride) VISIT(off, 8);
  VISIT(n - EDGE, EDGE);
  return 0;
#undef VISIT
}

HOT static size_t fill_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  size_t i = off, end = off + len;
  for (; i < end && i % 8 != 0; i++) p[i] = pat(seed, i);
  for (; i + 8 <= end; i += 8) {
    uint64_t v = word(seed, i / 8);
    memcpy(p + i, &v, 8);
  }
  for (; i < end; i++) p[i] = pat(seed, i);
  return 0;
}

/* These return 1 + the offset of the first bad byte, or 0. */
HOT static size_t check_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  size_t i = off, end = off + len;
  for (; i < end && i % 8 != 0; i++)
    if (p[i] != pat(seed, i)) return i + 1;
  for (; i + 8 <= end; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != word(seed, i / 8)) break; /* the byte loop finds which */
  }
  for (; i < end; i++)
    if (p[i] != pat(seed, i)) return i + 1;
  return 0;
}

HOT static size_t zero_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  (void)seed;
  for (size_t i = off; i < off + len; i++)
    if (p[i] != 0) return i + 1;
  return 0;
}

/* ---- the shadow table ----------------------------------------------------- */

typedef struct {
  uint8_t *p; /* NULL: empty */
  size_t req, usable, align;
  uint32_t seed;
  const char *how; /* the call that made it, for messages */
} slot_t;

/* p and usable of every slot change only under g_lock, so that the overlap
 * check of one thread sees a consistent table; a slot's other fields belong to
 * whichever thread owns the slot in the running segment. */
static slot_t g_slots[NSLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
  int id;       /* 0 main, 1 worker */
  int shared;   /* this segment is run by both threads */
  int parity;   /* in a shared segment: the slots this thread owns */
  uint32_t ops; /* ops run in this input, for seeds */
} ctx_t;

static unsigned rd_slot(reader_t *r, const ctx_t *c) {
  unsigned b = rd8(r);
  return c->shared ? (b % (NSLOTS / 2)) * 2 + (unsigned)c->parity : b % NSLOTS;
}

static uint32_t new_seed(ctx_t *c, unsigned slot) {
  uint64_t x = ((uint64_t)c->id << 48) ^ ((uint64_t)c->ops << 8) ^ slot;
  x *= 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32) | 1;
}

/* Registers [p, p + usable) in slot i after checking it overlaps no live object. */
static void publish(ctx_t *c, unsigned i, uint8_t *p, size_t usable) {
  pthread_mutex_lock(&g_lock);
  for (unsigned j = 0; j < NSLOTS; j++) {
    const slot_t *o = &g_slots[j];
    if (j == i || o->p == NULL) continue;
    if (p < o->p + o->usable && o->p < p + usable)
      fail("thread %d: new object %p (usable %zu) in slot %u overlaps live object %p (usable %zu, "
           "requested %zu, from %s) in slot %u",
           c->id, (void *)p, usable, i, (void *)o->p, o->usable, o->req, o->how, j);
  }
  g_slots[i].p = p;
  g_slots[i].usable = usable;
  pthread_mutex_unlock(&g_lock);
}

static void unpublish(unsigned i) {
  pthread_mutex_lock(&g_lock);
  g_slots[i].p = NULL;
  g_slots[i].usable = 0;
  pthread_mutex_unlock(&g_lock);
}

/* Checks the whole object in slot i (pattern, tail mark, usable size). */
static void verify(ctx_t *c, unsigned i, const char *when) {
  slot_t *s = &g_slots[i];
  size_t bad = each_range(s->p, s->req, s->req, s->seed, check_range);
  if (bad != 0)
    fail("thread %d: %s: object %p (requested %zu, usable %zu, from %s) in slot %u: byte %zu is %#x, "
         "expected %#x",
         c->id, when, (void *)s->p, s->req, s->usable, s->how, i, bad - 1, s->p[bad - 1],
         pat(s->seed, bad - 1));
  if (s->usable > s->req && s->p[s->usable - 1] != tail_mark(s->seed))
    fail("thread %d: %s: object %p (requested %zu, usable %zu, from %s): last usable byte changed", c->id,
         when, (void *)s->p, s->req, s->usable, s->how);
  size_t u = corona_usable_size(s->p);
  if (u != s->usable)
    fail("thread %d: %s: usable size of %p (requested %zu, from %s) changed from %zu to %zu", c->id, when,
         (void *)s->p, s->req, s->how, s->usable, u);
}

static void check_alignment(ctx_t *c, const char *how, const void *p, size_t size, size_t align) {
  size_t need = align > 16 ? align : 16;
  if ((uintptr_t)p % need != 0)
    fail("thread %d: %s(size %zu, alignment %zu) = %p is not %zu-aligned", c->id, how, size, align, p, need);
}

/* Records a fresh object p (requested req) in the empty slot i, checks it
 * and fills it with seed's pattern.  zeroed: it came from calloc.  After a
 * realloc the seed is the old one, so the kept prefix already matches. */
static void adopt(ctx_t *c, unsigned i, uint8_t *p, size_t req, size_t align, const char *how, bool zeroed,
                  uint32_t seed) {
  if (p == NULL) fail("thread %d: %s(size %zu, alignment %zu) returned NULL", c->id, how, req, align);
  check_alignment(c, how, p, req, align);
  size_t usable = corona_usable_size(p);
  if (usable < req)
    fail("thread %d: %s(size %zu) = %p has usable size %zu", c->id, how, req, (void *)p, usable);
  if (zeroed) {
    size_t bad = each_range(p, req, req, 0, zero_range);
    if (bad != 0)
      fail("thread %d: %s(size %zu) = %p: byte %zu is %#x, not 0", c->id, how, req, (void *)p, bad - 1,
           p[bad - 1]);
  }
  publish(c, i, p, usable);
  slot_t *s = &g_slots[i];
  s->req = req;
  s->align = align;
  s->seed = seed;
  s->how = how;
  each_range(p, req, req, seed, fill_range);
  if (usable > req) p[usable - 1] = tail_mark(seed);
}

static void release(ctx_t *c, unsigned i, const char *why) {
  slot_t *s = &g_slots[i];
  if (s->p == NULL) return;
#ifdef FUZZ_SELFTEST
  if (s->req > 0 && c->ops % 7 == 3) s->p[s->req - 1] ^= 0x40; /* the planted bug */
#endif
  verify(c, i, why);
  uint8_t *p = s->p;
  unpublish(i);
  corona_free(p);
}

/* ---- the operations --------------------------------------------------------- */

static void op_alloc(ctx_t *c, reader_t *r, int kind) {
  unsigned i = rd_slot(r, c);
  release(c, i, "free before reuse");
  size_t size, align = 1, count = 1;
  void *p = NULL;
  const char *how;
  switch (kind) {
    case 0:
      size = rd_size(r);
      how = "malloc";
      p = corona_malloc(size);
      break;
    case 1: {
      count = rd8(r) % 9;
      size_t total = rd_size(r);
      size_t each = count ? total / count : total;
      size = count * each;
      how = "calloc";
      p = corona_calloc(count, each);
      break;
    }
    case 2:
      size = rd_size(r);
      align = rd_align(r);
      how = "aligned_malloc";
      p = corona_aligned_malloc(size, align);
      break;
    default: {
      align = rd_align(r);
      if (align < sizeof(void *)) align = sizeof(void *);
      size = rd_size(r);
      how = "posix_memalign";
      errno = ERRNO_SENTINEL;
      int rc = corona_posix_memalign(&p, align, size);
      if (rc != 0) fail("thread %d: posix_memalign(alignment %zu, size %zu) = %d", c->id, align, size, rc);
      if (errno != ERRNO_SENTINEL)
        fail("thread %d: posix_memalign(alignment %zu, size %zu) changed errno to %d", c->id, align, size,
             errno);
      break;
    }
  }
  adopt(c, i, p, size, align, how, kind == 1, new_seed(c, i));
}

static void op_realloc(ctx_t *c, reader_t *r, bool aligned) {
  unsigned i = rd_slot(r, c);
  size_t size = rd_size(r);
  size_t align = aligned ? rd_align(r) : 1;
  const char *how = aligned ? "aligned_realloc" : "realloc";
  slot_t *s = &g_slots[i];
  if (s->p == NULL) { /* realloc(NULL, n) is malloc(n), size 0 included */
    void *p = aligned ? corona_aligned_realloc(NULL, size, align) : corona_realloc(NULL, size);
    adopt(c, i, p, size, align, aligned ? "aligned_realloc(NULL)" : "realloc(NULL)", false, new_seed(c, i));
    return;
  }
  verify(c, i, "before realloc");
  if (size == 0) size = 1; /* size 0 is op 14 */
  uint8_t *old = s->p;
  size_t old_req = s->req, old_usable = s->usable;
  uint32_t seed = s->seed;
  const char *old_how = s->how;
  unpublish(i);
  uint8_t *p = aligned ? corona_aligned_realloc(old, size, align) : corona_realloc(old, size);
  if (p == NULL)
    fail("thread %d: %s(%p from %s with %zu bytes, size %zu, alignment %zu) returned NULL", c->id, how,
         (void *)old, old_how, old_req, size, align);
  size_t keep = old_req < size ? old_req : size;
  size_t bad = each_range(p, old_req, keep, seed, check_range);
  if (bad != 0)
    fail("thread %d: %s(%p from %s, %zu -> %zu bytes, alignment %zu) = %p lost the old contents: byte %zu "
         "is %#x, expected %#x (old usable %zu)",
         c->id, how, (void *)old, old_how, old_req, size, align, (void *)p, bad - 1, p[bad - 1],
         pat(seed, bad - 1), old_usable);
  adopt(c, i, p, size, align, how, false, seed);
}

/* realloc / aligned_realloc to size 0: frees and returns NULL. */
static void op_shrink0(ctx_t *c, reader_t *r) {
  unsigned i = rd_slot(r, c);
  uint8_t sel = rd8(r);
  slot_t *s = &g_slots[i];
  if (s->p == NULL) return;
  verify(c, i, "before realloc to 0");
  uint8_t *p = s->p;
  unpublish(i);
  void *q = (sel & 1) ? corona_aligned_realloc(p, 0, (size_t)1 << (sel % 13)) : corona_realloc(p, 0);
  if (q != NULL) fail("thread %d: realloc(%p, 0) returned %p, not NULL", c->id, (void *)p, q);
}

static void op_usable(ctx_t *c, reader_t *r) {
  unsigned i = rd_slot(r, c);
  static char foreign_static[64];
  char foreign_stack[64];
  if (corona_usable_size(NULL) != 0) fail("corona_usable_size(NULL) != 0");
  if (corona_usable_size(foreign_static + 16) != 0) fail("corona_usable_size(static buffer) != 0");
  if (corona_usable_size(foreign_stack) != 0) fail("corona_usable_size(stack buffer) != 0");
  corona_free(NULL);
  if (g_slots[i].p != NULL) verify(c, i, "usable_size");
}

static const size_t huge_sizes[] = {
    SIZE_MAX,          SIZE_MAX - 1,           SIZE_MAX - 4095, SIZE_MAX / 2, SIZE_MAX / 2 + 1,
    (size_t)1 << 62,   ((size_t)1 << 62) + 1,  (size_t)1 << 61, (size_t)1 << 48,
    ((size_t)1 << 47) + 1, (size_t)3 << 46,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

static const size_t bad_aligns[] = {0, 3, 5, 24, 48, 100, 1000, 4097, 65535, SIZE_MAX, SIZE_MAX / 2,
                                    ((size_t)1 << 40) + 16};
#define NBAD (sizeof bad_aligns / sizeof bad_aligns[0])

static const size_t huge_aligns[] = {(size_t)1 << 63, (size_t)1 << 62, (size_t)1 << 48, (size_t)1 << 47};
#define NHUGEALIGN (sizeof huge_aligns / sizeof huge_aligns[0])

static void expect_null(ctx_t *c, const char *what, size_t a, size_t b, void *p, int want) {
  if (p != NULL || errno != want)
    fail("thread %d: %s(%#zx, %#zx) = %p with errno %d, expected NULL with errno %d (%s)", c->id, what, a, b,
         p, errno, want, want == ENOMEM ? "ENOMEM" : "EINVAL");
}

/* Requests that cannot be served: they must fail cleanly and change nothing. */
static void op_impossible(ctx_t *c, reader_t *r) {
  uint8_t kind = rd8(r);
  unsigned i = rd_slot(r, c);
  uint8_t arg = rd8(r);
  size_t huge = huge_sizes[arg % NHUGE];
  size_t bad = bad_aligns[arg % NBAD];
  size_t halign = huge_aligns[arg % NHUGEALIGN];
  size_t small = arg; /* a servable size */
  slot_t *s = &g_slots[i];
  void *p = NULL;
  errno = ERRNO_SENTINEL;
  switch (kind % 12) {
    case 0:
      expect_null(c, "malloc", huge, 0, corona_malloc(huge), ENOMEM);
      break;
    case 1: { /* calloc whose product overflows, or is too big */
      static const size_t pairs[][2] = {{SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
                                        {SIZE_MAX, SIZE_MAX}, {3, SIZE_MAX / 3 + 1},
                                        {1, SIZE_MAX},        {(size_t)1 << 47, 2}};
      const size_t *pr = pairs[arg % 6];
      expect_null(c, "calloc", pr[0], pr[1], corona_calloc(pr[0], pr[1]), ENOMEM);
      expect_null(c, "calloc", pr[1], pr[0], corona_calloc(pr[1], pr[0]), ENOMEM);
      break;
    }
    case 2:
      expect_null(c, "aligned_malloc", small, bad, corona_aligned_malloc(small, bad), EINVAL);
      break;
    case 3: {
      size_t align = (size_t)64 << (arg % 8);
      expect_null(c, "aligned_malloc", huge, align, corona_aligned_malloc(huge, align), ENOMEM);
      break;
    }
    case 4:
      expect_null(c, "aligned_malloc", small, halign, corona_aligned_malloc(small, halign), ENOMEM);
      break;
    case 5:
    case 6:
    case 7: { /* posix_memalign: bad alignment, huge size, huge alignment */
      static const size_t pm_bad[] = {0, 1, 2, 4, 12, 24, 40, 3, 100, SIZE_MAX};
      size_t align = kind % 12 == 5 ? pm_bad[arg % 10] : kind % 12 == 6 ? (size_t)8 << (arg % 10) : halign;
      size_t size = kind % 12 == 6 ? huge : small;
      int want = kind % 12 == 5 ? EINVAL : ENOMEM;
      void *out = (void *)&p; /* sentinel: must stay */
      int rc = corona_posix_memalign(&out, align, size);
      if (rc != want || out != (void *)&p || errno != ERRNO_SENTINEL)
        fail("thread %d: posix_memalign(alignment %#zx, size %#zx) = %d (want %d), out %s, errno %d (want "
             "unchanged)",
             c->id, align, size, rc, want, out == (void *)&p ? "unchanged" : "CHANGED", errno);
      break;
    }
    case 8: /* realloc to a huge size: NULL, ENOMEM, the old object intact */
    case 9: /* aligned_realloc with a bad alignment: NULL, EINVAL, intact */
    case 10: { /* aligned_realloc to a huge alignment */
      int k = kind % 12;
      if (s->p != NULL) verify(c, i, "before a failing realloc");
      void *old = s->p; /* NULL: the malloc side of realloc */
      if (k == 8)
        p = corona_realloc(old, huge);
      else if (k == 9)
        p = corona_aligned_realloc(old, arg, bad);
      else
        p = corona_aligned_realloc(old, arg ? arg : 1, halign);
      expect_null(c, k == 8 ? "realloc" : "aligned_realloc", (size_t)(uintptr_t)old,
                  k == 8 ? huge : k == 9 ? bad : halign, p, k == 9 ? EINVAL : ENOMEM);
      if (s->p != NULL) verify(c, i, "after a failing realloc");
      break;
    }
    default: /* aligned_realloc to a huge size */
      if (s->p != NULL) verify(c, i, "before a failing realloc");
      p = corona_aligned_realloc(s->p, huge, (size_t)16 << (arg % 8));
      expect_null(c, "aligned_realloc", (size_t)(uintptr_t)s->p, huge, p, ENOMEM);
      if (s->p != NULL) verify(c, i, "after a failing realloc");
      break;
  }
}

/* Short-lived objects that never reach the table: churns a bin (or, rarely,
 * gives everything cached back with corona_collect). */
static void op_burst(ctx_t *c, reader_t *r) {
  uint8_t sel = rd8(r);
  size_t size = rd_size(r);
  if (sel == 0) {
    corona_collect();
    return;
  }
  if (size > 64 * 1024) size %= 64 * 1024;
  unsigned n = sel % 32 + 1;
  uint8_t *objs[32];
  uint32_t seed = new_seed(c, 255);
  for (unsigned k = 0; k < n; k++) {
    uint8_t *p = corona_malloc(size);
    if (p == NULL) fail("thread %d: burst: malloc(%zu) returned NULL", c->id, size);
    check_alignment(c, "malloc", p, size, 1);
    each_range(p, size, size, seed + k, fill_range);
    objs[k] = p;
  }
  /* Freed in two passes (odd or even indexes first), each forwards or backwards. */
  for (unsigned pass = 0; pass < 2; pass++)
    for (unsigned m = 0; m < n; m++) {
      unsigned k = (sel & 64) ? n - 1 - m : m;
      if ((k & 1) != (((sel >> 5) & 1) ^ pass)) continue;
      size_t bad = each_range(objs[k], size, size, seed + k, check_range);
      if (bad != 0)
        fail("thread %d: burst object %p (size %zu): byte %zu is %#x, expected %#x", c->id, (void *)objs[k],
             size, bad - 1, objs[k][bad - 1], pat(seed + k, bad - 1));
      corona_free(objs[k]);
    }
}

enum { MALLOC, CALLOC, REALLOC, ALIGNED_MALLOC, ALIGNED_REALLOC, POSIX_MEMALIGN, FREE, USABLE, VERIFY,
       IMPOSSIBLE, SHRINK0, BURST };

/* code % 32 -> operation: the weights of the mix. */
static const uint8_t op_of_code[32] = {
    MALLOC,         MALLOC,         MALLOC,         MALLOC,         MALLOC,  MALLOC,  /* 0-5 */
    CALLOC,         CALLOC,                                                           /* 6-7 */
    REALLOC,        REALLOC,        REALLOC,        REALLOC,        REALLOC,          /* 8-12 */
    ALIGNED_MALLOC, ALIGNED_MALLOC, ALIGNED_REALLOC, ALIGNED_REALLOC,                 /* 13-16 */
    POSIX_MEMALIGN, POSIX_MEMALIGN,                                                   /* 17-18 */
    FREE,           FREE,           FREE,           FREE,           FREE,    FREE,    FREE, /* 19-25 */
    USABLE,         VERIFY,         IMPOSSIBLE,     SHRINK0,        BURST,   BURST,   /* 26-31 */
};

static void run_ops(ctx_t *c, const uint8_t *data, size_t len) {
  reader_t r = {data, data + len};
  while (r.p < r.end) {
    c->ops++;
    unsigned op = op_of_code[rd8(&r) % 32];
#ifdef FUZZ_TRACE /* -DFUZZ_TRACE: one line per operation, to read a crash input */
    static const char *const names[] = {"malloc",         "calloc",      "realloc", "aligned_malloc",
                                        "aligned_realloc", "posix_memalign", "free", "usable_size",
                                        "verify",         "impossible",  "realloc_to_0", "burst"};
    fprintf(stderr, "[thread %d%s op %u] %s\n", c->id, c->shared ? " shared" : "", c->ops, names[op]);
#endif
    switch (op) {
      case MALLOC:
        op_alloc(c, &r, 0);
        break;
      case CALLOC:
        op_alloc(c, &r, 1);
        break;
      case REALLOC:
        op_realloc(c, &r, false);
        break;
      case ALIGNED_MALLOC:
        op_alloc(c, &r, 2);
        break;
      case ALIGNED_REALLOC:
        op_realloc(c, &r, true);
        break;
      case POSIX_MEMALIGN:
        op_alloc(c, &r, 3);
        break;
      case FREE:
        release(c, rd_slot(&r, c), "free");
        break;
      case USABLE:
        op_usable(c, &r);
        break;
      case VERIFY: {
        unsigned i = rd_slot(&r, c);
        if (g_slots[i].p != NULL) verify(c, i, "verify");
        break;
      }
      case IMPOSSIBLE:
        op_impossible(c, &r);
        break;
      case SHRINK0:
        op_shrink0(c, &r);
        break;
      default:
        op_burst(c, &r);
        break;
    }
  }
}

/* ---- the worker thread ---------------------------------------------------- */

/* A thread waiting for the other spins for up to SPIN_NS before it sleeps
 * on a condition variable: long enough to bridge the handoffs between the
 * segments of one input, so that a shared segment usually starts on both
 * threads at once without a wake-up (which can take hundreds of microseconds
 * in a VM); short enough not to steal a busy machine's cores. */
#ifndef SPIN_NS
#define SPIN_NS 50000 /* 50 us */
#endif

static struct {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t job_cv, start_cv, done_cv;
  atomic_uint job_gen, start_gen, done_gen;
  /* the job: written by main before job_gen moves on */
  enum { JOB_RUN, JOB_CLEANUP, JOB_EXIT } job;
  const uint8_t *data;
  size_t len;
  ctx_t ctx;
} w = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .job_cv = PTHREAD_COND_INITIALIZER,
       .start_cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until *gen differs from seen (acquire), spinning first; returns it. */
static unsigned wait_gen(atomic_uint *gen, pthread_cond_t *cv, unsigned seen) {
  unsigned g;
  uint64_t deadline = 0;
  for (unsigned spins = 0;; spins++) {
    if ((g = atomic_load_explicit(gen, memory_order_acquire)) != seen) return g;
    cpu_relax();
    if (spins % 256 == 255) {
      uint64_t t = now_ns();
      if (deadline == 0)
        deadline = t + SPIN_NS;
      else if (t > deadline)
        break;
    }
  }
  pthread_mutex_lock(&w.mu);
  while ((g = atomic_load_explicit(gen, memory_order_acquire)) == seen) pthread_cond_wait(cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  return g;
}

static void bump_gen(atomic_uint *gen, pthread_cond_t *cv, unsigned to) {
  pthread_mutex_lock(&w.mu);
  atomic_store_explicit(gen, to, memory_order_release);
  pthread_cond_signal(cv);
  pthread_mutex_unlock(&w.mu);
}

static void *worker_main(void *arg) {
  unsigned seen = (unsigned)(uintptr_t)arg;
  for (;;) {
    seen = wait_gen(&w.job_gen, &w.job_cv, seen);
    bump_gen(&w.start_gen, &w.start_cv, seen);
    if (w.job == JOB_EXIT) {
      bump_gen(&w.done_gen, &w.done_cv, seen);
      return NULL;
    }
    if (w.job == JOB_CLEANUP)
      for (unsigned i = 1; i < NSLOTS; i += 2) release(&w.ctx, i, "free at the end of the input");
    else
      run_ops(&w.ctx, w.data, w.len);
    bump_gen(&w.done_gen, &w.done_cv, seen);
  }
}

static void worker_post(int job, const uint8_t *data, size_t len) {
  w.job = job;
  w.data = data;
  w.len = len;
  bump_gen(&w.job_gen, &w.job_cv, atomic_load_explicit(&w.job_gen, memory_order_relaxed) + 1);
}

static void worker_wait(void) {
  unsigned g = atomic_load_explicit(&w.job_gen, memory_order_relaxed);
  unsigned d = atomic_load_explicit(&w.done_gen, memory_order_acquire);
  while (d != g) d = wait_gen(&w.done_gen, &w.done_cv, d);
}

/* Waits until the worker has picked up the job just posted, so that both
 * halves of a shared segment really run at the same time. */
static void worker_started(void) {
  unsigned g = atomic_load_explicit(&w.job_gen, memory_order_relaxed);
  unsigned d = atomic_load_explicit(&w.start_gen, memory_order_acquire);
  while (d != g) d = wait_gen(&w.start_gen, &w.start_cv, d);
}

static void worker_start(void) {
  unsigned g = atomic_load(&w.job_gen);
  int rc = pthread_create(&w.thread, NULL, worker_main, (void *)(uintptr_t)g);
  if (rc != 0) fail("pthread_create: %s", strerror(rc));
  w.started = true;
}

/* Ends the worker thread (its blocks become orphans) and starts a new one. */
static void worker_replace(void) {
#ifdef FUZZ_TRACE
  fprintf(stderr, "[worker thread replaced]\n");
#endif
  worker_post(JOB_EXIT, NULL, 0);
  worker_wait();
  pthread_join(w.thread, NULL);
  worker_start();
}

/* ---- libFuzzer entry points ----------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  worker_start();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!w.started) worker_start();
  ctx_t main_ctx = {.id = 0};
  w.ctx = (ctx_t){.id = 1};
  reader_t r = {data, data + size};
  while (r.p < r.end) {
    uint8_t hdr = rd8(&r);
    size_t len = (size_t)rd8(&r) + 1;
    if (len > (size_t)(r.end - r.p)) len = (size_t)(r.end - r.p);
    const uint8_t *body = r.p;
    r.p += len;
    unsigned mode = hdr & 7;
    if (mode < 2) {
      main_ctx.shared = 0;
      run_ops(&main_ctx, body, len);
    } else if (mode < 4) {
      w.ctx.shared = 0;
      worker_post(JOB_RUN, body, len);
      worker_wait();
    } else {
      if (mode == 7 && hdr >> 4 == 15) worker_replace();
      size_t half = len / 2;
      main_ctx.shared = w.ctx.shared = 1;
      main_ctx.parity = (hdr >> 3) & 1;
      w.ctx.parity = !main_ctx.parity;
      worker_post(JOB_RUN, body + half, len - half);
      worker_started();
      run_ops(&main_ctx, body, half);
      worker_wait();
    }
  }
  /* Everything left is freed, by both threads at once: the worker the odd
   * slots, main the even ones. */
  worker_post(JOB_CLEANUP, NULL, 0);
  worker_started();
  for (unsigned i = 0; i < NSLOTS; i += 2) release(&main_ctx, i, "free at the end of the input");
  worker_wait();
  return 0;
}
