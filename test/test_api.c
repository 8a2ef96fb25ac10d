/* test_api.c — black-box test of every function in corona.h and its edge
 * cases, checking contents rather than just "did not crash":
 *   malloc(0) unique and freeable; free(NULL); realloc(NULL, n) / (p, 0);
 *   realloc grow/shrink keeps contents across small and large sizes;
 *   calloc zeroes (also on reused memory), overflow and huge sizes give
 *   NULL + ENOMEM (realloc failure leaves the old object intact);
 *   16-byte alignment and usable_size >= size (whole usable area writable)
 *   for every size 0..9000 and large sizes up to 64 MB;
 *   aligned_malloc / aligned_realloc / posix_memalign for every power-of-two
 *   alignment up to 4 MB, bad alignments (EINVAL), errno / *out rules;
 *   over-aligned tiny objects leave neighbouring slab objects intact;
 *   20000 live objects of random sizes never overlap. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>

#include "corona.h"
#include "testutil.h"

#define MIN_ALIGN 16
#define MAX_SMALL 32704 /* largest small class; sizes around it are probed */
#define SLAB_MAX 8064   /* largest class cut from 16 KB slabs */

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* ---- overlap check over static interval storage --------------------------- */
#define MAX_INTERVALS 40000
static tu_interval_t intervals[MAX_INTERVALS];

/* Every [p, p + usable) of ptrs[0..n) (NULLs skipped) is disjoint from the
 * others. */
static void check_disjoint(void *const *ptrs, size_t n, const char *what) {
  size_t m = 0;
  for (size_t i = 0; i < n && m < MAX_INTERVALS; i++) {
    if (ptrs[i] == NULL) continue;
    size_t u = corona_usable_size(ptrs[i]);
    intervals[m].lo = (uintptr_t)ptrs[i];
    intervals[m].hi = (uintptr_t)ptrs[i] + (u ? u : 1);
    m++;
  }
  tu_check_disjoint(intervals, m, what);
}

/* Common checks on a fresh allocation of size bytes with alignment align;
 * fills the whole usable area with the address pattern.  False if p is NULL. */
static bool check_fresh(void *p, size_t size, size_t align, const char *what) {
  if (!CHECKF(p != NULL, "%s: size %zu align %zu", what, size, align)) return false;
  CHECKF(tu_is_aligned(p, MIN_ALIGN), "%s: %p size %zu not 16-aligned", what, p, size);
  if (align > 1) CHECKF(tu_is_aligned(p, align), "%s: %p size %zu not %zu-aligned", what, p, size, align);
  size_t u = corona_usable_size(p);
  CHECKF(u >= size, "%s: usable %zu < size %zu", what, u, size);
  tu_fill(p, u, tu_seed(p, u));
  return true;
}

/* Re-verifies the pattern check_fresh wrote. */
static void check_intact(void *p) {
  size_t u = corona_usable_size(p);
  CHECK_PATTERN(p, u, tu_seed(p, u));
}

/* ---- malloc(0), free(NULL), usable_size(NULL) --------------------------------- */
#define N_ZERO 1000
static void *zero_ptrs[N_ZERO];

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static void test_malloc_zero(void) {
  void *a = corona_malloc(0);
  void *b = corona_malloc(0);
  CHECK(a != NULL);
  CHECK(b != NULL);
  CHECK(a != b);
  check_fresh(a, 0, 1, "malloc(0)");
  check_fresh(b, 0, 1, "malloc(0)");
  if (a) check_intact(a);
  if (b) check_intact(b);
  corona_free(a);
  corona_free(b);

  for (size_t i = 0; i < N_ZERO; i++) {
    zero_ptrs[i] = corona_malloc(0);
    CHECK(zero_ptrs[i] != NULL);
    if (zero_ptrs[i]) CHECK(tu_is_aligned(zero_ptrs[i], MIN_ALIGN));
  }
  void *sorted[N_ZERO];
  memcpy(sorted, zero_ptrs, sizeof sorted);
  qsort(sorted, N_ZERO, sizeof sorted[0], cmp_ptr);
  for (size_t i = 1; i < N_ZERO; i++)
    if (sorted[i]) CHECKF(sorted[i] != sorted[i - 1], "malloc(0) returned %p twice", sorted[i]);
  for (size_t i = 0; i < N_ZERO; i++) corona_free(zero_ptrs[i]);

  /* free(NULL) is a no-op and leaves errno alone; usable_size(NULL) is 0. */
  errno = 4242;
  corona_free(NULL);
  CHECK(errno == 4242);
  CHECK(corona_usable_size(NULL) == 0);
  /* The allocator still works afterwards. */
  void *c = corona_malloc(24);
  if (check_fresh(c, 24, 1, "malloc after free(NULL)")) check_intact(c);
  corona_free(c);
}

/* ---- realloc -------------------------------------------------------------------- */
static const size_t realloc_sizes[] = {0,     1,     15,    16,     17,      100,       1000,          4096,
                                       MAX_SMALL, MAX_SMALL + 1, 10000, 16384, 65536, 300000, 1 << 20, (4 << 20) + 123};
#define N_REALLOC_SIZES (sizeof realloc_sizes / sizeof realloc_sizes[0])

static void test_realloc_edges(void) {
  /* realloc(NULL, n) acts as malloc(n). */
  void *p = corona_realloc(NULL, 100);
  if (check_fresh(p, 100, 1, "realloc(NULL, 100)")) check_intact(p);
  corona_free(p);
  p = corona_realloc(NULL, 100000);
  if (check_fresh(p, 100000, 1, "realloc(NULL, 100000)")) check_intact(p);
  corona_free(p);
  p = corona_realloc(NULL, 0);
  CHECKF(p != NULL, "realloc(NULL, 0) must act as malloc(0)");
  corona_free(p);

  /* realloc(p, 0) frees p and returns NULL, for small and large p. */
  const size_t sizes[] = {0, 1, 100, MAX_SMALL, MAX_SMALL + 1, 100000, 5 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p = corona_malloc(sizes[i]);
    if (!check_fresh(p, sizes[i], 1, "malloc before realloc(p, 0)")) continue;
    void *q = corona_realloc(p, 0);
    CHECKF(q == NULL, "realloc(p, 0) of a %zu-byte object returned %p, not NULL", sizes[i], q);
    if (q != NULL) corona_free(q);
  }

  /* realloc to the same size, and to a size within the usable area. */
  p = corona_malloc(1000);
  if (check_fresh(p, 1000, 1, "malloc(1000)")) {
    uint64_t seed = 77;
    tu_fill(p, 1000, seed);
    void *q = corona_realloc(p, 1000);
    if (CHECK(q != NULL)) {
      CHECK_PATTERN(q, 1000, seed);
      size_t u = corona_usable_size(q);
      void *r = corona_realloc(q, u);
      if (CHECK(r != NULL)) {
        CHECK_PATTERN(r, 1000, seed);
        CHECK(corona_usable_size(r) >= u);
        corona_free(r);
      } else {
        corona_free(q);
      }
    }
  }
}

/* Every (from, to) pair of sizes: contents of min(from, to) survive. */
static void test_realloc_matrix(void) {
  for (size_t i = 0; i < N_REALLOC_SIZES; i++) {
    for (size_t k = 0; k < N_REALLOC_SIZES; k++) {
      size_t a = realloc_sizes[i], b = realloc_sizes[k];
      uint64_t seed = 0x5EED0000u + i * 131 + k;
      void *p = corona_malloc(a);
      if (!CHECKF(p != NULL, "malloc(%zu)", a)) continue;
      tu_fill(p, a, seed);
      void *q = corona_realloc(p, b);
      if (b == 0) {
        CHECKF(q == NULL, "realloc(p, 0) returned %p", q);
        if (q) corona_free(q);
        continue;
      }
      if (!CHECKF(q != NULL, "realloc %zu -> %zu", a, b)) {
        corona_free(p);
        continue;
      }
      CHECKF(tu_is_aligned(q, MIN_ALIGN), "realloc %zu -> %zu: %p", a, b, q);
      CHECKF(corona_usable_size(q) >= b, "realloc %zu -> %zu: usable %zu", a, b, corona_usable_size(q));
      if (!CHECK_PATTERN(q, min_sz(a, b), seed)) fprintf(stderr, "  (realloc %zu -> %zu)\n", a, b);
      if (check_fresh(q, b, 1, "realloc result")) check_intact(q);
      corona_free(q);
    }
  }
}

/* One object grown in many small steps to ~3 MB, then shrunk back. */
static void test_realloc_chain(void) {
  const uint64_t seed = 0xC4A1;
  size_t s = 1;
  void *p = corona_malloc(s);
  if (!CHECK(p != NULL)) return;
  tu_fill(p, s, seed);
  while (s < (3u << 20)) {
    size_t n = s + s / 3 + 1;
    void *q = corona_realloc(p, n);
    if (!CHECKF(q != NULL, "realloc grow %zu -> %zu", s, n)) break;
    CHECKF(tu_is_aligned(q, MIN_ALIGN), "grow to %zu: %p", n, q);
    CHECKF(corona_usable_size(q) >= n, "grow to %zu: usable %zu", n, corona_usable_size(q));
    if (!CHECK_PATTERN(q, s, seed)) fprintf(stderr, "  (grow %zu -> %zu)\n", s, n);
    tu_fill(q, n, seed);
    p = q;
    s = n;
  }
  while (s > 1) {
    size_t n = s * 3 / 4;
    if (n == 0) n = 1;
    void *q = corona_realloc(p, n);
    if (!CHECKF(q != NULL, "realloc shrink %zu -> %zu", s, n)) break;
    CHECKF(tu_is_aligned(q, MIN_ALIGN), "shrink to %zu: %p", n, q);
    CHECKF(corona_usable_size(q) >= n, "shrink to %zu: usable %zu", n, corona_usable_size(q));
    if (!CHECK_PATTERN(q, n, seed)) fprintf(stderr, "  (shrink %zu -> %zu)\n", s, n);
    p = q;
    s = n;
  }
  corona_free(p);
}

/* ---- calloc ---------------------------------------------------------------------- */
#define CALLOC_MAX 9000
static void *calloc_ptrs[CALLOC_MAX + 1];

static void test_calloc(void) {
  /* Dirty memory of every size first, so calloc gets reused objects. */
  for (int round = 0; round < 2; round++) {
    for (size_t s = 0; s <= CALLOC_MAX; s++) {
      calloc_ptrs[s] = corona_malloc(s);
      if (CHECK(calloc_ptrs[s] != NULL)) memset(calloc_ptrs[s], 0xAA, corona_usable_size(calloc_ptrs[s]));
    }
    for (size_t s = 0; s <= CALLOC_MAX; s++) corona_free(calloc_ptrs[s]);
    for (size_t s = 0; s <= CALLOC_MAX; s++) {
      /* Alternate the factorisation of the size. */
      void *p = (s % 2 == 0 && s > 0) ? corona_calloc(s / 2, 2) : corona_calloc(1, s);
      calloc_ptrs[s] = p;
      if (!CHECKF(p != NULL, "calloc size %zu", s)) continue;
      CHECK(tu_is_aligned(p, MIN_ALIGN));
      CHECKF(corona_usable_size(p) >= s, "calloc size %zu: usable %zu", s, corona_usable_size(p));
      CHECK_ZERO(p, s);
      memset(p, 0xAA, corona_usable_size(p));
    }
    for (size_t s = 0; s <= CALLOC_MAX; s++) corona_free(calloc_ptrs[s]);
  }

  /* n * s products. */
  const size_t ns[] = {2, 3, 7, 10, 100, 1000};
  const size_t ss[] = {1, 8, 24, 100, 1000, 4097};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
    for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++) {
      void *d = corona_malloc(ns[i] * ss[k]);
      if (d) memset(d, 0xAA, ns[i] * ss[k]);
      corona_free(d);
      void *p = corona_calloc(ns[i], ss[k]);
      if (!CHECKF(p != NULL, "calloc(%zu, %zu)", ns[i], ss[k])) continue;
      CHECK(corona_usable_size(p) >= ns[i] * ss[k]);
      CHECK_ZERO(p, ns[i] * ss[k]);
      corona_free(p);
    }

  /* Large sizes, dirtied and freed first (a large-object cache must zero). */
  const size_t large[] = {MAX_SMALL + 1, 20000, 100000, 1 << 20, (5 << 20) + 7, 64 << 20};
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
      void *d = corona_malloc(large[i]);
      if (CHECK(d != NULL)) memset(d, 0xAA, corona_usable_size(d));
      corona_free(d);
      void *p = corona_calloc(1, large[i]);
      if (!CHECKF(p != NULL, "calloc(1, %zu)", large[i])) continue;
      CHECK(tu_is_aligned(p, MIN_ALIGN));
      CHECK_ZERO(p, large[i]);
      corona_free(p);
    }

  /* Zero products give a unique freeable pointer, like malloc(0). */
  void *z1 = corona_calloc(0, 0), *z2 = corona_calloc(0, 100), *z3 = corona_calloc(100, 0);
  CHECK(z1 != NULL);
  CHECK(z2 != NULL);
  CHECK(z3 != NULL);
  CHECK(z1 != z2 && z2 != z3 && z1 != z3);
  corona_free(z1);
  corona_free(z2);
  corona_free(z3);

  /* Overflowing products: NULL with ENOMEM. */
  const size_t ov[][2] = {{SIZE_MAX, 2},
                          {2, SIZE_MAX},
                          {SIZE_MAX, SIZE_MAX},
                          {(size_t)1 << 32, (size_t)1 << 32},
                          {SIZE_MAX / 2 + 1, 2},
                          {(SIZE_MAX / 3) + 1, 3},
                          {65537, (SIZE_MAX / 65536)}};
  for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
    errno = 0;
    void *p = corona_calloc(ov[i][0], ov[i][1]);
    CHECKF(p == NULL, "calloc(%zu, %zu) overflows but returned %p", ov[i][0], ov[i][1], p);
    CHECKF(errno == ENOMEM, "calloc(%zu, %zu): errno %d", ov[i][0], ov[i][1], errno);
    if (p) corona_free(p);
  }
  /* Huge but not overflowing. */
  const size_t hg[][2] = {{1, SIZE_MAX}, {SIZE_MAX, 1}, {(size_t)1 << 31, (size_t)1 << 31}, {1, SIZE_MAX / 2}};
  for (size_t i = 0; i < sizeof hg / sizeof hg[0]; i++) {
    errno = 0;
    void *p = corona_calloc(hg[i][0], hg[i][1]);
    CHECKF(p == NULL, "calloc(%zu, %zu) returned %p", hg[i][0], hg[i][1], p);
    CHECKF(errno == ENOMEM, "calloc(%zu, %zu): errno %d", hg[i][0], hg[i][1], errno);
    if (p) corona_free(p);
  }
}

/* ---- sizes that cannot be served ------------------------------------------------ */
static const size_t huge_sizes[] = {SIZE_MAX,
                                    SIZE_MAX - 1,
                                    SIZE_MAX - 15,
                                    SIZE_MAX - 64,
                                    SIZE_MAX - 4096,
                                    SIZE_MAX - (4 << 20),
                                    SIZE_MAX / 2,
                                    SIZE_MAX / 2 + 1,
                                    (size_t)1 << 62,
                                    ((size_t)1 << 62) + 1,
                                    ((size_t)1 << 62) - 1,
                                    (size_t)1 << 50,
                                    (size_t)1 << 48};
#define N_HUGE (sizeof huge_sizes / sizeof huge_sizes[0])

static void test_huge(void) {
  for (size_t i = 0; i < N_HUGE; i++) {
    errno = 0;
    void *p = corona_malloc(huge_sizes[i]);
    CHECKF(p == NULL, "malloc(%zu) returned %p", huge_sizes[i], p);
    CHECKF(errno == ENOMEM, "malloc(%zu): errno %d, want ENOMEM", huge_sizes[i], errno);
    if (p) corona_free(p);

    const size_t aligns[] = {16, 64, 4096, 1 << 20};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
      errno = 0;
      p = corona_aligned_malloc(huge_sizes[i], aligns[k]);
      CHECKF(p == NULL, "aligned_malloc(%zu, %zu) returned %p", huge_sizes[i], aligns[k], p);
      CHECKF(errno == ENOMEM, "aligned_malloc(%zu, %zu): errno %d, want ENOMEM", huge_sizes[i], aligns[k], errno);
      if (p) corona_free(p);
    }
  }
  /* Valid alignments no address in the address space can satisfy. */
  const size_t big_aligns[] = {(size_t)1 << 62, (size_t)1 << 63};
  for (size_t k = 0; k < 2; k++) {
    errno = 0;
    void *p = corona_aligned_malloc(16, big_aligns[k]);
    CHECKF(p == NULL, "aligned_malloc(16, %#zx) returned %p", big_aligns[k], p);
    CHECKF(errno == ENOMEM, "aligned_malloc(16, %#zx): errno %d, want ENOMEM", big_aligns[k], errno);
    if (p) corona_free(p);
  }

  /* A failed realloc leaves the old object valid and unchanged. */
  const size_t olds[] = {0, 100, MAX_SMALL, 100000, 3 << 20};
  for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
    for (size_t k = 0; k < N_HUGE; k += 3) {
      void *p = corona_malloc(olds[i]);
      if (!CHECK(p != NULL)) continue;
      size_t u = corona_usable_size(p);
      uint64_t seed = tu_seed(p, u);
      tu_fill(p, u, seed);
      errno = 0;
      void *q = corona_realloc(p, huge_sizes[k]);
      CHECKF(q == NULL, "realloc(%zu-byte object, %zu) returned %p", olds[i], huge_sizes[k], q);
      CHECKF(errno == ENOMEM, "realloc(p, %zu): errno %d, want ENOMEM", huge_sizes[k], errno);
      if (q != NULL) {
        corona_free(q);
        continue;
      }
      CHECK(corona_usable_size(p) == u);
      CHECK_PATTERN(p, u, seed);

      errno = 0;
      q = corona_aligned_realloc(p, huge_sizes[k], 64);
      CHECKF(q == NULL, "aligned_realloc(%zu-byte object, %zu, 64) returned %p", olds[i], huge_sizes[k], q);
      CHECKF(errno == ENOMEM, "aligned_realloc(p, %zu, 64): errno %d, want ENOMEM", huge_sizes[k], errno);
      if (q != NULL) {
        corona_free(q);
        continue;
      }
      CHECK(corona_usable_size(p) == u);
      CHECK_PATTERN(p, u, seed);
      corona_free(p);
    }
  }

  /* Still works afterwards. */
  void *p = corona_malloc(123);
  if (check_fresh(p, 123, 1, "malloc after failures")) check_intact(p);
  corona_free(p);
}

/* ---- alignment and usable size for every size ------------------------------------ */
#define EVERY_MAX 9000
static void *every_ptrs[EVERY_MAX + 1];

static const size_t large_sizes[] = {16384,   16385,   32767,       32768,   65536,    100000,  262144,
                                     1000000, 1 << 20, (1 << 20) + 1, 4 << 20, 16 << 20, 64 << 20};
#define N_LARGE (sizeof large_sizes / sizeof large_sizes[0])

static void test_every_size(void) {
  for (size_t s = 0; s <= EVERY_MAX; s++) {
    every_ptrs[s] = corona_malloc(s);
    check_fresh(every_ptrs[s], s, 1, "malloc");
  }
  for (size_t s = 0; s <= EVERY_MAX; s++)
    if (every_ptrs[s]) check_intact(every_ptrs[s]);
  check_disjoint(every_ptrs, EVERY_MAX + 1, "sizes 0..9000");
  /* Free odd sizes, reallocate them (reuse), verify everything again. */
  for (size_t s = 1; s <= EVERY_MAX; s += 2) corona_free(every_ptrs[s]);
  for (size_t s = 1; s <= EVERY_MAX; s += 2) {
    every_ptrs[s] = corona_malloc(s);
    check_fresh(every_ptrs[s], s, 1, "malloc (reuse)");
  }
  for (size_t s = 0; s <= EVERY_MAX; s++)
    if (every_ptrs[s]) check_intact(every_ptrs[s]);
  check_disjoint(every_ptrs, EVERY_MAX + 1, "sizes 0..9000 after reuse");
  for (size_t s = EVERY_MAX + 1; s-- > 0;) corona_free(every_ptrs[s]);

  void *lp[N_LARGE];
  for (size_t i = 0; i < N_LARGE; i++) {
    lp[i] = corona_malloc(large_sizes[i]);
    check_fresh(lp[i], large_sizes[i], 1, "malloc large");
  }
  for (size_t i = 0; i < N_LARGE; i++)
    if (lp[i]) check_intact(lp[i]);
  check_disjoint(lp, N_LARGE, "large sizes");
  for (size_t i = 0; i < N_LARGE; i++) corona_free(lp[i]);
}

/* ---- aligned_malloc --------------------------------------------------------------- */
static const size_t aligned_sizes[] = {0,    1,    15,        16,            100,   1000,   1024,
                                       1025, 4000, MAX_SMALL, MAX_SMALL + 1, 20000, 1 << 20};
#define N_ASIZES (sizeof aligned_sizes / sizeof aligned_sizes[0])
#define MAX_ALIGN_SHIFT 22 /* 4 MB */

static const size_t bad_aligns[] = {0,   3,    5,         6,           7,        12,           24,
                                    48,  100,  1000,      4097,        (1 << 20) + 1, SIZE_MAX, SIZE_MAX - 1,
                                    SIZE_MAX / 2, ((size_t)1 << 63) + 1, ((size_t)1 << 63) | 16};
#define N_BAD_ALIGNS (sizeof bad_aligns / sizeof bad_aligns[0])

static void test_aligned_malloc(void) {
  for (unsigned sh = 0; sh <= MAX_ALIGN_SHIFT; sh++) {
    size_t align = (size_t)1 << sh;
    void *ptrs[N_ASIZES];
    for (size_t i = 0; i < N_ASIZES; i++) {
      ptrs[i] = corona_aligned_malloc(aligned_sizes[i], align);
      check_fresh(ptrs[i], aligned_sizes[i], align, "aligned_malloc");
    }
    for (size_t i = 0; i < N_ASIZES; i++)
      if (ptrs[i]) check_intact(ptrs[i]);
    check_disjoint(ptrs, N_ASIZES, "aligned_malloc");
    for (size_t i = 0; i < N_ASIZES; i++) corona_free(ptrs[i]);
  }

  /* Many small aligned objects live together (exercises in-slab alignment). */
  {
    enum { N = 2000 };
    static void *many[N];
    tu_rng_t r;
    tu_rng_seed(&r, 99);
    for (size_t i = 0; i < N; i++) {
      size_t align = (size_t)1 << tu_range(&r, 0, 13);
      size_t size = tu_range(&r, 0, 3000);
      many[i] = corona_aligned_malloc(size, align);
      check_fresh(many[i], size, align, "aligned_malloc (many)");
    }
    for (size_t i = 0; i < N; i++)
      if (many[i]) check_intact(many[i]);
    check_disjoint(many, N, "aligned_malloc (many)");
    for (size_t i = 0; i < N; i++) corona_free(many[i]);
  }

  /* Non-power-of-two alignment: NULL with EINVAL. */
  const size_t sizes[] = {0, 16, 100000};
  for (size_t i = 0; i < N_BAD_ALIGNS; i++)
    for (size_t k = 0; k < 3; k++) {
      errno = 0;
      void *p = corona_aligned_malloc(sizes[k], bad_aligns[i]);
      CHECKF(p == NULL, "aligned_malloc(%zu, %zu) returned %p", sizes[k], bad_aligns[i], p);
      CHECKF(errno == EINVAL, "aligned_malloc(%zu, %zu): errno %d, want EINVAL", sizes[k], bad_aligns[i], errno);
      if (p) corona_free(p);
    }

  /* An aligned object can go through plain realloc. */
  void *p = corona_aligned_malloc(100, 4096);
  if (check_fresh(p, 100, 4096, "aligned_malloc(100, 4096)")) {
    tu_fill(p, 100, 5);
    void *q = corona_realloc(p, 200000);
    if (CHECK(q != NULL)) {
      CHECK_PATTERN(q, 100, 5);
      tu_fill(q, 200000, 6);
      void *r = corona_realloc(q, 50);
      if (CHECK(r != NULL)) {
        CHECK_PATTERN(r, 50, 6);
        corona_free(r);
      } else {
        corona_free(q);
      }
    } else {
      corona_free(p);
    }
  }
}

/* Over-aligned tiny objects next to fresh slab memory: a large aligned
 * object must not disturb its neighbours (e.g. by marking a page-map granule
 * outside its own mapping).  Each round maps aligned objects of size 0..64,
 * allocates enough 8064-byte objects to need new slab regions, maps more
 * aligned objects, frees all aligned ones, and checks that every small
 * object still has its usable size and contents. */
#define NEIGH_PER_ROUND 600
#define NEIGH_ROUNDS (MAX_ALIGN_SHIFT - 14 + 1)
#define NEIGH_ALIGNED 16
static void *neigh_ptrs[NEIGH_PER_ROUND * NEIGH_ROUNDS];
static size_t neigh_usable[NEIGH_PER_ROUND * NEIGH_ROUNDS];

static void test_aligned_neighbours(void) {
  static const size_t sizes[] = {0, 1, 16, 64};
  size_t n = 0, bad = 0;
  for (unsigned sh = 14; sh <= MAX_ALIGN_SHIFT; sh++) {
    size_t align = (size_t)1 << sh;
    void *al[NEIGH_ALIGNED] = {NULL};
    for (size_t k = 0; k < NEIGH_ALIGNED; k++) {
      if (k == NEIGH_ALIGNED / 2)
        for (size_t i = 0; i < NEIGH_PER_ROUND; i++, n++) {
          neigh_ptrs[n] = corona_malloc(SLAB_MAX);
          if (!check_fresh(neigh_ptrs[n], SLAB_MAX, 1, "malloc(8064)")) continue;
          neigh_usable[n] = corona_usable_size(neigh_ptrs[n]);
          if (neigh_usable[n] < SLAB_MAX) { /* already unknown to corona: keep away from free */
            neigh_ptrs[n] = NULL;
            bad++;
          }
        }
      al[k] = corona_aligned_malloc(sizes[k % 4], align);
      check_fresh(al[k], sizes[k % 4], align, "aligned_malloc next to slabs");
    }
    for (size_t k = 0; k < NEIGH_ALIGNED; k++) {
      if (al[k]) check_intact(al[k]);
      corona_free(al[k]);
    }
    for (size_t i = 0; i < n; i++) {
      void *p = neigh_ptrs[i];
      if (p == NULL) continue;
      size_t u = corona_usable_size(p);
      if (!CHECKF(u == neigh_usable[i], "malloc(8064) = %p: usable size was %zu, is %zu after aligned_malloc(0..64, %zu)",
                  p, neigh_usable[i], u, align)) {
        neigh_ptrs[i] = NULL; /* corona no longer knows it: do not free it */
        bad++;
        continue;
      }
      check_intact(p);
    }
  }
  for (size_t i = 0; i < n; i++) corona_free(neigh_ptrs[i]);
  if (bad) fprintf(stderr, "  (%zu small objects lost by corona)\n", bad);
}

/* ---- aligned_realloc ------------------------------------------------------------- */
static void test_aligned_realloc(void) {
  /* NULL acts as aligned_malloc. */
  void *p = corona_aligned_realloc(NULL, 100, 256);
  if (!check_fresh(p, 100, 256, "aligned_realloc(NULL, 100, 256)")) return;
  void *z = corona_aligned_realloc(NULL, 0, 64);
  CHECKF(z != NULL, "aligned_realloc(NULL, 0, 64) must act as aligned_malloc(0, 64)");
  if (z) CHECK(tu_is_aligned(z, 64));
  corona_free(z);

  /* A walk through sizes and alignments. */
  static const size_t steps[][2] = {{5000, 4096},       {50000, 64},        {300, 65536},     {1 << 20, 1 << 21},
                                    {10, 16},           {8064, 8192},       {MAX_SMALL + 1, 32}, {64, 1},
                                    {(3 << 20) + 5, 4096}, {3 << 20, 4 << 20}, {17, 128},        {4000, 2048},
                                    {4000, 4096},       {100000, 1 << 16},  {100, 8},         {1, 1 << 12}};
  const uint64_t seed = 0xA11C;
  size_t cur = 100;
  tu_fill(p, cur, seed);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    size_t n = steps[i][0], a = steps[i][1];
    void *q = corona_aligned_realloc(p, n, a);
    if (!CHECKF(q != NULL, "aligned_realloc %zu -> (%zu, %zu)", cur, n, a)) break;
    CHECKF(tu_is_aligned(q, a), "aligned_realloc to (%zu, %zu) gave %p", n, a, q);
    CHECKF(tu_is_aligned(q, MIN_ALIGN), "aligned_realloc to (%zu, %zu) gave %p", n, a, q);
    CHECKF(corona_usable_size(q) >= n, "aligned_realloc to (%zu, %zu): usable %zu", n, a, corona_usable_size(q));
    if (!CHECK_PATTERN(q, min_sz(cur, n), seed)) fprintf(stderr, "  (aligned_realloc %zu -> (%zu, %zu))\n", cur, n, a);
    tu_fill(q, n, seed);
    p = q;
    cur = n;
  }

  /* Bad alignment: NULL, EINVAL, object untouched. */
  for (size_t i = 0; i < N_BAD_ALIGNS; i++) {
    errno = 0;
    void *q = corona_aligned_realloc(p, 200, bad_aligns[i]);
    CHECKF(q == NULL, "aligned_realloc(p, 200, %zu) returned %p", bad_aligns[i], q);
    CHECKF(errno == EINVAL, "aligned_realloc(p, 200, %zu): errno %d, want EINVAL", bad_aligns[i], errno);
    if (q) {
      p = q;
      break;
    }
    CHECK_PATTERN(p, cur, seed);
    errno = 0;
    q = corona_aligned_realloc(NULL, 100, bad_aligns[i]);
    CHECKF(q == NULL && errno == EINVAL, "aligned_realloc(NULL, 100, %zu): %p errno %d", bad_aligns[i], q, errno);
    if (q) corona_free(q);
  }
  /* Size 0 frees, like realloc(p, 0). */
  void *q = corona_aligned_realloc(p, 0, 64);
  CHECKF(q == NULL, "aligned_realloc(p, 0, 64) returned %p, want NULL (like realloc(p, 0))", q);
  if (q) corona_free(q);

  /* Objects from every allocation call go through aligned_realloc. */
  for (int kind = 0; kind < 4; kind++) {
    const size_t srcs[] = {0, 24, 1000, MAX_SMALL, 9000, 70000};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
      size_t s = srcs[i];
      void *o = NULL;
      switch (kind) {
        case 0: o = corona_malloc(s); break;
        case 1: o = corona_calloc(1, s); break;
        case 2: o = corona_aligned_malloc(s, 512); break;
        default:
          if (corona_posix_memalign(&o, 1024, s) != 0) o = NULL;
          break;
      }
      if (!CHECKF(o != NULL, "kind %d size %zu", kind, s)) continue;
      tu_fill(o, s, seed + s);
      /* Same size, stronger alignment; then grow; then shrink. */
      const size_t tgt[][2] = {{s, 4096}, {s * 2 + 10, 32}, {s * 2 + 10, 1 << 16}, {s / 2, 16}};
      size_t have = s;
      for (size_t k = 0; k < 4 && o != NULL; k++) {
        void *r = corona_aligned_realloc(o, tgt[k][0], tgt[k][1]);
        if (tgt[k][0] == 0) {
          CHECK(r == NULL);
          if (r) corona_free(r);
          o = NULL;
          break;
        }
        if (!CHECKF(r != NULL, "aligned_realloc(kind %d, %zu -> %zu, %zu)", kind, have, tgt[k][0], tgt[k][1])) break;
        CHECKF(tu_is_aligned(r, tgt[k][1]), "aligned_realloc(kind %d) to (%zu, %zu): %p", kind, tgt[k][0], tgt[k][1],
               r);
        CHECK(corona_usable_size(r) >= tgt[k][0]);
        if (!CHECK_PATTERN(r, min_sz(have, tgt[k][0]), seed + s))
          fprintf(stderr, "  (kind %d, %zu -> (%zu, %zu))\n", kind, have, tgt[k][0], tgt[k][1]);
        tu_fill(r, tgt[k][0], seed + s);
        have = tgt[k][0];
        o = r;
      }
      corona_free(o);
    }
  }
}

/* ---- posix_memalign -------------------------------------------------------------- */
static void test_posix_memalign(void) {
  for (unsigned sh = 3; sh <= MAX_ALIGN_SHIFT; sh++) {
    size_t align = (size_t)1 << sh;
    void *ptrs[N_ASIZES];
    for (size_t i = 0; i < N_ASIZES; i++) {
      void *out = NULL;
      errno = 4321;
      int rc = corona_posix_memalign(&out, align, aligned_sizes[i]);
      CHECKF(rc == 0, "posix_memalign(%zu, %zu) = %d", align, aligned_sizes[i], rc);
      CHECKF(errno == 4321, "posix_memalign(%zu, %zu) changed errno to %d", align, aligned_sizes[i], errno);
      ptrs[i] = rc == 0 ? out : NULL;
      if (rc == 0) check_fresh(out, aligned_sizes[i], align, "posix_memalign");
    }
    for (size_t i = 0; i < N_ASIZES; i++)
      if (ptrs[i]) check_intact(ptrs[i]);
    check_disjoint(ptrs, N_ASIZES, "posix_memalign");
    for (size_t i = 0; i < N_ASIZES; i++) corona_free(ptrs[i]);
  }

  /* Size 0: success and a freeable non-NULL pointer (as glibc). */
  void *out = NULL;
  CHECK(corona_posix_memalign(&out, 64, 0) == 0);
  CHECK(out != NULL);
  if (out) CHECK(tu_is_aligned(out, 64));
  corona_free(out);

  /* Bad alignments: EINVAL, errno and *out untouched. */
  static int sentinel_obj;
  void *const sentinel = &sentinel_obj;
  const size_t bad[] = {0, 1, 2, 3, 4, 6, 12, 24, 48, 65, 4100, SIZE_MAX, SIZE_MAX / 2, ((size_t)1 << 63) + 8};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    out = sentinel;
    errno = 12345;
    int rc = corona_posix_memalign(&out, bad[i], 64);
    CHECKF(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
    CHECKF(errno == 12345, "posix_memalign(align %zu) changed errno to %d", bad[i], errno);
    CHECKF(out == sentinel, "posix_memalign(align %zu) changed *out to %p", bad[i], out);
    if (rc == 0 && out != sentinel) corona_free(out);
  }

  /* Unservable sizes / alignments: ENOMEM, errno and *out untouched. */
  const size_t hs[][2] = {{64, SIZE_MAX},
                          {16, SIZE_MAX - 8},
                          {4096, SIZE_MAX / 2},
                          {16, (size_t)1 << 62},
                          {8, (size_t)1 << 50},
                          {(size_t)1 << 63, 16},
                          {(size_t)1 << 62, 16}};
  for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
    out = sentinel;
    errno = 12345;
    int rc = corona_posix_memalign(&out, hs[i][0], hs[i][1]);
    CHECKF(rc == ENOMEM, "posix_memalign(align %zu, size %zu) = %d, want ENOMEM", hs[i][0], hs[i][1], rc);
    CHECKF(errno == 12345, "posix_memalign(align %zu, size %zu) changed errno to %d", hs[i][0], hs[i][1], errno);
    CHECKF(out == sentinel, "posix_memalign(align %zu, size %zu) changed *out to %p", hs[i][0], hs[i][1], out);
    if (rc == 0 && out != sentinel) corona_free(out);
  }
}

/* ---- many live objects never overlap --------------------------------------------------- */
#define N_MANY 20000
static void *many_ptrs[N_MANY];
static size_t many_size[N_MANY];
static size_t many_order[N_MANY];

static size_t random_size(tu_rng_t *r) {
  size_t c = tu_below(r, 1000);
  if (c < 700) return tu_range(r, 0, 256);
  if (c < 970) return tu_range(r, 257, MAX_SMALL);
  if (c < 997) return tu_range(r, MAX_SMALL + 1, 32768);
  return tu_range(r, 32769, 256 * 1024);
}

static void alloc_many(tu_rng_t *r, size_t i) {
  size_t s = random_size(r);
  void *p = NULL;
  size_t align = 0;
  const char *call = "malloc";
  switch (tu_below(r, 8)) {
    case 0:
      p = corona_calloc(1, s);
      call = "calloc";
      break;
    case 1:
      align = (size_t)1 << tu_range(r, 4, 12);
      p = corona_aligned_malloc(s, align);
      call = "aligned_malloc";
      break;
    default: p = corona_malloc(s); break;
  }
  many_ptrs[i] = p;
  many_size[i] = s;
  if (!CHECKF(p != NULL, "%s of %zu (align %zu)", call, s, align)) return;
  CHECKF(tu_is_aligned(p, MIN_ALIGN), "%s of %zu (align %zu) = %p", call, s, align, p);
  if (align) CHECKF(tu_is_aligned(p, align), "%s of %zu (align %zu) = %p", call, s, align, p);
  if (!CHECKF(corona_usable_size(p) >= s, "%s of %zu (align %zu) = %p: usable %zu", call, s, align, p,
              corona_usable_size(p))) {
    many_ptrs[i] = NULL; /* not freeable as far as corona knows: leak it */
    return;
  }
  if (call[0] == 'c') CHECKF(tu_first_nonzero(p, s) == (size_t)-1, "calloc(1, %zu) = %p not zeroed", s, p);
  tu_fill(p, s, tu_seed(p, s));
}

static void shuffle_order(tu_rng_t *r) {
  for (size_t i = 0; i < N_MANY; i++) many_order[i] = i;
  for (size_t i = N_MANY - 1; i > 0; i--) {
    size_t k = tu_below(r, i + 1), t = many_order[i];
    many_order[i] = many_order[k];
    many_order[k] = t;
  }
}

static void verify_many(void) {
  for (size_t i = 0; i < N_MANY; i++)
    if (many_ptrs[i]) CHECK_PATTERN(many_ptrs[i], many_size[i], tu_seed(many_ptrs[i], many_size[i]));
}

static void test_many_objects(void) {
  tu_rng_t r;
  tu_rng_seed(&r, 2024);
  for (size_t i = 0; i < N_MANY; i++) alloc_many(&r, i);
  verify_many();
  check_disjoint(many_ptrs, N_MANY, "20000 random objects");

  /* Free half in random order, refill the holes, verify, repeat. */
  for (int round = 0; round < 3; round++) {
    shuffle_order(&r);
    for (size_t k = 0; k < N_MANY / 2; k++) {
      size_t i = many_order[k];
      if (many_ptrs[i]) CHECK_PATTERN(many_ptrs[i], many_size[i], tu_seed(many_ptrs[i], many_size[i]));
      corona_free(many_ptrs[i]);
      many_ptrs[i] = NULL;
    }
    for (size_t k = 0; k < N_MANY / 2; k++) alloc_many(&r, many_order[k]);
    verify_many();
    check_disjoint(many_ptrs, N_MANY, "random objects after reuse");
  }

  shuffle_order(&r);
  for (size_t k = 0; k < N_MANY; k++) {
    size_t i = many_order[k];
    if (many_ptrs[i]) CHECK_PATTERN(many_ptrs[i], many_size[i], tu_seed(many_ptrs[i], many_size[i]));
    corona_free(many_ptrs[i]);
    many_ptrs[i] = NULL;
  }
}

/* The library's version is the header's (a program built against one
 * corona.h and run with another library sees the difference). */
static void test_version(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", CORONA_VERSION_MAJOR, CORONA_VERSION_MINOR, CORONA_VERSION_PATCH);
  const char *got = corona_version();
  CHECKF(got != NULL && strcmp(got, want) == 0, "corona_version() = %s, corona.h says %s", got ? got : "NULL", want);
}

int main(void) {
  double t0 = tu_now();
  struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
      {"version", test_version},
      {"malloc_zero", test_malloc_zero},       {"realloc_edges", test_realloc_edges},
      {"realloc_matrix", test_realloc_matrix}, {"realloc_chain", test_realloc_chain},
      {"calloc", test_calloc},                 {"huge", test_huge},
      {"every_size", test_every_size},         {"aligned_malloc", test_aligned_malloc},
      {"aligned_neighbours", test_aligned_neighbours},
      {"aligned_realloc", test_aligned_realloc}, {"posix_memalign", test_posix_memalign},
      {"many_objects", test_many_objects},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int before = tu_failure_count();
    double t = tu_now();
    tests[i].fn();
    int f = tu_failure_count() - before;
    printf("  %-18s %s (%.3f s)\n", tests[i].name, f ? "FAILED" : "ok", tu_now() - t);
    fflush(stdout);
  }
  return tu_finish("test_api", t0);
}
