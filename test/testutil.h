/* testutil.h — the tiny harness shared by corona's tests: CHECK macros that
 * print file:line and the failed expression and count failures (safe from
 * any thread), a per-thread splitmix64 PRNG, fill/verify helpers for byte
 * patterns derived from an object's address and size, a clock, and a work
 * scale (env CRTEST_SCALE; smaller by default under sanitizers).
 * The harness allocates nothing itself: every object under test comes from
 * corona_*, bookkeeping lives in static arrays or on the stack.
 * Each test file defines _POSIX_C_SOURCE before including anything. */
#ifndef CORONA_TESTUTIL_H
#define CORONA_TESTUTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- sanitizer detection (work is scaled down under them) ---------------- */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#ifndef TU_TSAN
#define TU_TSAN 0
#endif
#ifndef TU_ASAN
#define TU_ASAN 0
#endif

/* ---- failure accounting (tu_fail reports one failure, returns false) -------------------------------------------------- */
#define TU_MAX_REPORTS 100

static atomic_int tu_failures;

/* printf-style checking of a function's format argument f and first
 * variadic argument a.  mingw-w64: the C99 printf (the tests build with
 * __USE_MINGW_ANSI_STDIO), which gcc there calls gnu_printf. */
#if defined(__MINGW32__)
#define TU_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__) || defined(__clang__)
#define TU_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TU_PRINTF(f, a)
#endif

TU_PRINTF(4, 5)
static inline bool tu_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
  int n = atomic_fetch_add(&tu_failures, 1);
  if (n < TU_MAX_REPORTS) {
    fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
    if (fmt != NULL) {
      va_list ap;
      va_start(ap, fmt);
      fputs(" -- ", stderr);
      vfprintf(stderr, fmt, ap);
      va_end(ap);
    }
    fputc('\n', stderr);
  } else if (n == TU_MAX_REPORTS) {
    fprintf(stderr, "(further failures not printed)\n");
  }
  return false;
}

/* The arms of CHECK are calls, so an unused CHECK is no warning; tu_failed
 * tells the optimiser that a failed CHECK is false (tu_fail is variadic and
 * never inlined). */
static inline bool tu_pass(void) { return true; }
static inline bool tu_failed(bool reported) {
  (void)reported;
  return false;
}

/* CHECK(cond): counts and reports a failure; evaluates to cond (as bool) so
 * a test can skip work that depends on it: if (!CHECK(p != NULL)) return; */
#define CHECK(cond) ((cond) ? tu_pass() : tu_failed(tu_fail(__FILE__, __LINE__, #cond, NULL)))
/* CHECKF(cond, fmt, ...): the same with a printf-style explanation (the
 * arguments are evaluated only on failure). */
#define CHECKF(cond, ...) ((cond) ? tu_pass() : tu_failed(tu_fail(__FILE__, __LINE__, #cond, __VA_ARGS__)))

static inline int tu_failure_count(void) { return atomic_load(&tu_failures); }

/* ---- skips -------------------------------------------------------------------
 * A check whose precondition does not hold here (no fork, no THP, no
 * /proc file) and cannot be arranged is a skip, not a pass: tu_skip says
 * what went unchecked, and tu_finish then exits TU_EXIT_SKIP, which ctest
 * shows as "Skipped" where the test sets SKIP_RETURN_CODE 77.  A failure
 * still exits 1.  Preconditions a test can arrange (such as objects lying
 * next to each other) are arranged, not skipped. */
#define TU_EXIT_SKIP 77

static atomic_int tu_skips;

TU_PRINTF(1, 2)
static inline void tu_skip(const char *fmt, ...) {
  atomic_fetch_add(&tu_skips, 1);
  va_list ap;
  va_start(ap, fmt);
  fputs("    SKIP: ", stdout);
  vprintf(fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
}

static inline int tu_skip_count(void) { return atomic_load(&tu_skips); }

/* The emulator this program runs under (a cross build: CRTEST_EMULATOR,
 * "qemu-aarch64-static -L ..."), or NULL natively.  What an emulator does
 * not pass on to the kernel (qemu-user: RLIMIT_AS, the THP advice) or
 * measures of itself (RSS, time) is a skip there, with its reason. */
static inline const char *tu_emulator(void) {
  const char *e = getenv("CRTEST_EMULATOR");
  return e != NULL && e[0] != '\0' ? e : NULL;
}

/* ---- clock ------------------------------------------------------------------ */
/* x, hidden from the compiler's constant propagation: a Debug build
 * (always-inline lookups at -O0) otherwise warns of the out-of-range branch
 * a constant address beyond a table takes, though the code checks for it. */
static inline uintptr_t tu_opaque(uintptr_t x) {
  volatile uintptr_t v = x;
  return v;
}

static inline double tu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* main-return helper: prints a summary line, returns the exit status
 * (0 pass, 1 fail, TU_EXIT_SKIP when all ran passed but some were skipped). */
static inline int tu_finish(const char *name, double t0) {
  int f = tu_failure_count(), s = tu_skip_count();
  if (f == 0 && s > 0) {
    printf("%s: SKIPPED: passed, but %d check(s) could not run here (%.2f s)\n", name, s, tu_now() - t0);
    return TU_EXIT_SKIP;
  }
  if (f == 0) {
    printf("%s: OK (%.2f s)\n", name, tu_now() - t0);
    return 0;
  }
  printf("%s: %d FAILURE(S) (%.2f s)\n", name, f, tu_now() - t0);
  return 1;
}

/* Named parts of a test program, run in order: all of them, or those named
 * on the command line; one line each, name padded to width.  A program with
 * a part that may skip returns TU_EXIT_SKIP overall (tu_finish): every ctest
 * entry running it needs SKIP_RETURN_CODE 77. */
typedef struct {
  const char *name;
  void (*fn)(void);
} tu_part_t;

static inline void tu_run_parts(int argc, char **argv, const tu_part_t *parts, size_t n, int width) {
  for (int k = 1; k < argc; k++) { /* a misspelt name would run nothing and pass */
    bool known = false;
    for (size_t i = 0; i < n; i++) known = known || strcmp(argv[k], parts[i].name) == 0;
    if (!known) tu_fail(__FILE__, __LINE__, "a known part", "no part named \"%s\"", argv[k]);
  }
  for (size_t i = 0; i < n; i++) {
    bool wanted = argc < 2;
    for (int k = 1; k < argc; k++) wanted = wanted || strcmp(argv[k], parts[i].name) == 0;
    if (!wanted) continue;
    int before = tu_failure_count(), skipped = tu_skip_count();
    double t = tu_now();
    parts[i].fn();
    printf("  %-*s %s (%.3f s)\n", width, parts[i].name,
           tu_failure_count() != before ? "FAILED"
           : tu_skip_count() != skipped ? "ok, part skipped"
                                        : "ok",
           tu_now() - t);
  }
}

/* ---- work scale -------------------------------------------------------------
 * CRTEST_SCALE=<float> multiplies the default amount of work; without
 * it, ThreadSanitizer builds run a quarter of it, AddressSanitizer ones half. */
static inline double tu_scale(void) {
  const char *s = getenv("CRTEST_SCALE");
  if (s != NULL && *s != '\0') {
    double v = strtod(s, NULL);
    if (v > 0.0) return v;
  }
  return TU_TSAN ? 0.25 : TU_ASAN ? 0.5 : 1.0;
}

static inline size_t tu_scaled(size_t base, size_t min) {
  double v = (double)base * tu_scale();
  size_t n = (size_t)v;
  return n < min ? min : n;
}

/* ---- PRNG: splitmix64, one state per thread (pass it around) ------------- */
typedef struct tu_rng_s {
  uint64_t s;
} tu_rng_t;

static inline void tu_rng_seed(tu_rng_t *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull; }

static inline uint64_t tu_rand(tu_rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform-ish in [0, n) (n > 0). */
static inline size_t tu_below(tu_rng_t *r, size_t n) { return (size_t)(tu_rand(r) % n); }
/* Uniform-ish in [lo, hi]. */
static inline size_t tu_range(tu_rng_t *r, size_t lo, size_t hi) { return lo + tu_below(r, hi - lo + 1); }

/* Log-uniform-ish in [lo, hi] (0 < lo <= hi): a power-of-two octave is
 * picked uniformly, then a size within it, so small sizes of a wide range
 * are as common as big ones. */
static inline size_t tu_log_range(tu_rng_t *r, size_t lo, size_t hi) {
  int blo = 63 - __builtin_clzll((unsigned long long)lo), bhi = 63 - __builtin_clzll((unsigned long long)hi);
  int k = blo + (int)tu_below(r, (size_t)(bhi - blo + 1));
  size_t a = (size_t)1 << k, b = k >= 63 ? SIZE_MAX : ((size_t)2 << k) - 1;
  if (a < lo) a = lo;
  if (b > hi) b = hi;
  return tu_range(r, a, b);
}

/* ---- byte patterns -------------------------------------------------------------
 * Byte i of a pattern is byte (i % 8) of word(seed, i / 8); a prefix of a
 * pattern is the pattern of the shorter length, so realloc can be checked.
 * Words are stored with memcpy (no alignment assumed; one access per 8 bytes
 * keeps sanitizer builds fast). */
static inline uint64_t tu_pattern_word(uint64_t seed, size_t j) {
  uint64_t x = (seed ^ ((uint64_t)j * 0x9E3779B97F4A7C15ull)) * 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 32);
}

/* Seed of the pattern for an object at p of size n. */
static inline uint64_t tu_seed(const void *p, size_t n) {
  return ((uint64_t)(uintptr_t)p >> 4) ^ ((uint64_t)n * 0x100000001B3ull) ^ 0xA5A5A5A5A5A5A5A5ull;
}

static inline void tu_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *c = (unsigned char *)p;
  size_t j = 0;
  for (; j < n / 8; j++) {
    uint64_t w = tu_pattern_word(seed, j);
    memcpy(c + j * 8, &w, 8);
  }
  if (n % 8 != 0) {
    uint64_t w = tu_pattern_word(seed, j);
    memcpy(c + j * 8, &w, n % 8);
  }
}

/* Expected byte i of the pattern of seed. */
static inline unsigned char tu_pattern_byte(uint64_t seed, size_t i) {
  uint64_t w = tu_pattern_word(seed, i / 8);
  unsigned char b[8];
  memcpy(b, &w, 8);
  return b[i % 8];
}

/* Index of the first byte of p[0..n) that differs from the pattern, or
 * (size_t)-1 when all match. */
static inline size_t tu_verify(const void *p, size_t n, uint64_t seed) {
  const unsigned char *c = (const unsigned char *)p;
  size_t j = 0;
  for (; j < n / 8; j++) {
    uint64_t w;
    memcpy(&w, c + j * 8, 8);
    if (w != tu_pattern_word(seed, j)) break;
  }
  for (size_t i = j * 8; i < n; i++)
    if (c[i] != tu_pattern_byte(seed, i)) return i;
  return (size_t)-1;
}

static inline bool tu_check_pattern_at(const char *file, int line, const void *p, size_t n, uint64_t seed) {
  size_t bad = tu_verify(p, n, seed);
  if (bad == (size_t)-1) return true;
  tu_fail(file, line, "pattern intact", "object %p size %zu: byte %zu is 0x%02x, expected 0x%02x", p, n, bad,
          ((const unsigned char *)p)[bad], tu_pattern_byte(seed, bad));
  return false;
}
/* CHECK_PATTERN(p, n, seed): every byte of p[0..n) holds the pattern. */
#define CHECK_PATTERN(p, n, seed) tu_check_pattern_at(__FILE__, __LINE__, (p), (n), (seed))

/* Index of the first nonzero byte of p[0..n), or (size_t)-1. */
static inline size_t tu_first_nonzero(const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, c + i, 8);
    if (w != 0) break;
  }
  for (; i < n; i++)
    if (c[i] != 0) return i;
  return (size_t)-1;
}

static inline bool tu_check_zero_at(const char *file, int line, const void *p, size_t n) {
  size_t bad = tu_first_nonzero(p, n);
  if (bad == (size_t)-1) return true;
  tu_fail(file, line, "memory is zero", "object %p size %zu: byte %zu is 0x%02x", p, n, bad,
          ((const unsigned char *)p)[bad]);
  return false;
}
/* CHECK_ZERO(p, n): every byte of p[0..n) is 0. */
#define CHECK_ZERO(p, n) tu_check_zero_at(__FILE__, __LINE__, (p), (n))

static inline bool tu_is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* ---- overlap check: [lo, hi) ranges filled in by the caller --------------- */
typedef struct tu_interval_s {
  uintptr_t lo, hi;
} tu_interval_t;

static inline int tu_cmp_interval(const void *a, const void *b) {
  const tu_interval_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Sorts iv[0..m) and checks that no two ranges overlap. */
static inline void tu_check_disjoint(tu_interval_t *iv, size_t m, const char *what) {
  qsort(iv, m, sizeof iv[0], tu_cmp_interval);
  for (size_t i = 1; i < m; i++)
    CHECKF(iv[i - 1].hi <= iv[i].lo, "%s: [%#lx,%#lx) overlaps [%#lx,%#lx)", what, (unsigned long)iv[i - 1].lo,
           (unsigned long)iv[i - 1].hi, (unsigned long)iv[i].lo, (unsigned long)iv[i].hi);
}

#endif /* CORONA_TESTUTIL_H */
