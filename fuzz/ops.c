/* ops.c — the operations of the fuzz harness, one per op code of the input
 * (the format is at the top of fuzz_api.c): allocations of every kind into a
 * slot, realloc keeping the contents, free, usable_size, verify, requests
 * that must fail cleanly, and bursts of short-lived objects; run_ops runs a
 * body of them on one thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "corona.h"
#include "fuzz.h"

#define ERRNO_SENTINEL 7777 /* errno before a call whose errno is checked */

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

void run_ops(ctx_t *c, const uint8_t *data, size_t len) {
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
