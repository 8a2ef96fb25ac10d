/* test_bad_input.c — every call of the malloc family with every edge of
 * size and alignment gives glibc's answer, at once, and costs no memory.
 *
 * The same table of calls runs twice.  bad_input_glibc (this file built with
 * BAD_INPUT_GLIBC, linked without corona and without a sanitizer) runs it
 * through the C library and prints one line per call: its index, whether a
 * pointer came back, and the error (errno, or posix_memalign's code).
 * test_bad_input (linked with corona) runs that program, then runs the
 * table itself and compares outcome and error call by call, nothing
 * hard-coded:
 *   - through the standard names (malloc, calloc, realloc, reallocarray,
 *     posix_memalign, aligned_alloc, memalign, valloc, pvalloc), where they
 *     are corona's (the override is in, which it is not beside a
 *     sanitizer's runtime: then a visible skip);
 *   - through the corona_* names, always: corona_malloc, _calloc,
 *     _realloc and _posix_memalign against their standard twins;
 *     corona_aligned_malloc(s, a) and corona_aligned_realloc(NULL or p, s,
 *     a) against aligned_alloc(a, s) (realloc(p, 0) for s == 0 with p)
 *     when a is a power of two, and EINVAL otherwise (corona.h's rule, also
 *     glibc 2.38's aligned_alloc).
 * Sizes: 0, 1, 3, 24, 48, 100, every power of two up to 2^63, SIZE_MAX,
 * PTRDIFF_MAX, PTRDIFF_MAX + 1, SIZE_MAX - 4095; alignments: the same plus
 * 2^63 + 1.  Outcomes that depend on the machine (a 16 GiB malloc succeeds
 * on glibc here when RAM + swap allows it) are glibc's on this machine, so
 * corona must then succeed too.
 * Each corona call must answer within 10 ms of the thread's CPU time (user
 * and system: the work the call does, the kernel's included, and not the
 * time a busy machine gives other processes; the fastest of five tries; 100 ms under
 * ThreadSanitizer, whose runtime takes a call for each of the million
 * atomic page-map stores that mark a 16 GiB object: 43 ms there, 1 to 5 ms in
 * Release) and leave RSS
 * (/proc/self/statm) within 1 MiB of where it was once its object is freed
 * (not asserted under ThreadSanitizer, whose shadow memory is resident).
 * Usage: test_bad_input PATH-OF-bad_input_glibc */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procutil.h"
#include "testutil.h"
#ifndef BAD_INPUT_GLIBC
#include "corona.h"
#endif

/* ---- the table ------------------------------------------------------------- */
typedef enum {
  F_MALLOC,           /* malloc(s) */
  F_CALLOC_1,         /* calloc(1, s) */
  F_CALLOC_2,         /* calloc(s, 2) */
  F_CALLOC_SQ,        /* calloc(s, s) */
  F_REALLOC_NULL,     /* realloc(NULL, s) */
  F_REALLOC_SMALL,    /* realloc(100-byte object, s) */
  F_REALLOC_LARGE,    /* realloc(256 KiB object, s) */
  F_REALLOCARRAY,     /* reallocarray(NULL, s, 2) */
  F_REALLOCARRAY_OBJ, /* reallocarray(100-byte object, 2, s) */
  F_VALLOC,           /* valloc(s) */
  F_PVALLOC,          /* pvalloc(s) */
  F_POSIX_MEMALIGN,   /* posix_memalign(&p, a, s) */
  F_ALIGNED_ALLOC,    /* aligned_alloc(a, s) */
  F_MEMALIGN,         /* memalign(a, s) */
  F_COUNT
} fn_t;
#define F_FIRST_ALIGNED F_POSIX_MEMALIGN

#define P2(k) ((size_t)1 << (k))
/* The large object realloc starts from: large for both allocators, and
 * small enough that the copy a move makes (which stays resident in the
 * new block, cached after the free) fits in the RSS slack below. */
#define LARGE_OLD ((size_t)256 << 10)
#define MAX_VALUES 80
static size_t sizes[MAX_VALUES], aligns[MAX_VALUES];
static size_t n_sizes, n_aligns;

static void build_values(void) {
  static const size_t odd[] = {0, 1, 3, 24, 48, 100};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) sizes[n_sizes++] = aligns[n_aligns++] = odd[i];
  for (unsigned k = 1; k < 64; k++) sizes[n_sizes++] = aligns[n_aligns++] = P2(k);
  static const size_t edges[] = {SIZE_MAX, PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4095};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) sizes[n_sizes++] = aligns[n_aligns++] = edges[i];
  aligns[n_aligns++] = P2(63) + 1;
}

/* Calls are numbered: every size for each plain function, then every
 * (alignment, size) for each aligned one. */
static size_t n_calls(void) {
  return (size_t)F_FIRST_ALIGNED * n_sizes + (size_t)(F_COUNT - F_FIRST_ALIGNED) * n_aligns * n_sizes;
}

static void call_of(size_t i, fn_t *f, size_t *a, size_t *s) {
  size_t plain = (size_t)F_FIRST_ALIGNED * n_sizes;
  if (i < plain) {
    *f = (fn_t)(i / n_sizes);
    *a = 0;
    *s = sizes[i % n_sizes];
    return;
  }
  i -= plain;
  *f = (fn_t)(F_FIRST_ALIGNED + i / (n_aligns * n_sizes));
  i %= n_aligns * n_sizes;
  *a = aligns[i / n_sizes];
  *s = sizes[i % n_sizes];
}

/* ---- one call -------------------------------------------------------------- */
typedef struct {
  bool ok;  /* a pointer came back (posix_memalign: 0) */
  int err;  /* errno after a NULL (posix_memalign: its code), else 0 */
  int errno_after; /* errno after the call, preset to 0 (posix_memalign must not set it) */
  bool misaligned;
} outcome_t;

static bool aligned_to(const void *p, size_t a) { return a == 0 || ((uintptr_t)p & (a - 1)) == 0; }

/* The alignment memalign and aligned_alloc (glibc 2.36) promise for a: the
 * next power of two (0: none to check). */
static size_t rounded_align(size_t a) {
  if (a <= 1 || a > P2(63)) return 0;
  return (a & (a - 1)) == 0 ? a : P2(64 - __builtin_clzll(a));
}

/* Runs a standard-name call of the table; the object is freed again. */
static outcome_t run_standard(fn_t f, size_t a, size_t s) {
  outcome_t o = {false, 0, 0, false};
  void *p = NULL, *old = NULL;
  int rc = 0;
  if (f == F_REALLOC_SMALL || f == F_REALLOCARRAY_OBJ) old = malloc(100);
  if (f == F_REALLOC_LARGE) old = malloc(LARGE_OLD);
  if (old != NULL) memset(old, 0x5a, 100);
  errno = 0;
  switch (f) {
    case F_MALLOC: p = malloc(s); break;
    case F_CALLOC_1: p = calloc(1, s); break;
    case F_CALLOC_2: p = calloc(s, 2); break;
    case F_CALLOC_SQ: p = calloc(s, s); break;
    case F_REALLOC_NULL: p = realloc(NULL, s); break;
    case F_REALLOC_SMALL:
    case F_REALLOC_LARGE: p = realloc(old, s); break;
    case F_REALLOCARRAY: p = reallocarray(NULL, s, 2); break;
    case F_REALLOCARRAY_OBJ: p = reallocarray(old, 2, s); break;
    case F_VALLOC: p = valloc(s); break;
    case F_PVALLOC: p = pvalloc(s); break;
    case F_POSIX_MEMALIGN: rc = posix_memalign(&p, a, s); break;
    case F_ALIGNED_ALLOC: p = aligned_alloc(a, s); break;
    case F_MEMALIGN: p = memalign(a, s); break;
    default: break;
  }
  o.errno_after = errno;
  if (f == F_POSIX_MEMALIGN) {
    o.ok = rc == 0;
    o.err = rc;
    if (!o.ok) p = NULL;
  } else {
    o.ok = p != NULL;
    o.err = p == NULL ? errno : 0;
  }
  if (o.ok && f >= F_FIRST_ALIGNED) o.misaligned = !aligned_to(p, f == F_POSIX_MEMALIGN ? a : rounded_align(a));
  if (o.ok && (f == F_VALLOC || f == F_PVALLOC)) o.misaligned = !aligned_to(p, 4096);
  bool consumed = old != NULL && (o.ok || s == 0); /* realloc(p, 0) frees p */
  free(p);
  if (!consumed) free(old);
  return o;
}

#ifdef BAD_INPUT_GLIBC
/* ---- the reference: glibc ---------------------------------------------------- */
int main(void) {
  build_values();
  for (size_t i = 0, n = n_calls(); i < n; i++) {
    fn_t f;
    size_t a, s;
    call_of(i, &f, &a, &s);
    outcome_t o = run_standard(f, a, s);
    printf("%zu %d %d %d\n", i, o.ok ? 1 : 0, o.err, o.errno_after);
  }
  return 0;
}
#else
/* ---- corona ------------------------------------------------------------------ */
static const char *const fn_name[F_COUNT] = {
    "malloc(s)",           "calloc(1, s)",      "calloc(s, 2)",   "calloc(s, s)",          "realloc(NULL, s)",
    "realloc(small, s)",   "realloc(256 KiB, s)", "reallocarray(NULL, s, 2)", "reallocarray(small, 2, s)",
    "valloc(s)",           "pvalloc(s)",        "posix_memalign(a, s)", "aligned_alloc(a, s)", "memalign(a, s)"};

#define MAX_CALLS 40000
static outcome_t ref[MAX_CALLS]; /* glibc's answers, by call index */

static bool read_reference(const char *path) {
  FILE *in = popen(path, "r");
  if (!CHECKF(in != NULL, "cannot run %s", path)) return false;
  size_t n = n_calls(), got = 0, i;
  int ok, err, after;
  while (fscanf(in, "%zu %d %d %d", &i, &ok, &err, &after) == 4) {
    if (!CHECKF(i == got && i < n, "reference line %zu names call %zu", got, i)) break;
    ref[i].ok = ok != 0;
    ref[i].err = err;
    ref[i].errno_after = after;
    got++;
  }
  int status = pclose(in);
  return CHECKF(got == n && status == 0, "%s: %zu of %zu answers, exit status %d", path, got, n, status);
}

/* corona_* twins of the table's calls.  kind: 0 the corona_* twin of f, 1
 * corona_aligned_malloc(s, a), 2 corona_aligned_realloc(NULL, s, a), 3
 * corona_aligned_realloc(object, s, a) (kinds 1-3 ride on F_ALIGNED_ALLOC). */
static outcome_t run_corona(fn_t f, int kind, size_t a, size_t s) {
  outcome_t o = {false, 0, 0, false};
  void *p = NULL, *old = NULL;
  int rc = 0;
  if (f == F_REALLOC_SMALL || f == F_REALLOCARRAY_OBJ || kind == 3) old = corona_malloc(100);
  if (f == F_REALLOC_LARGE) old = corona_malloc(LARGE_OLD);
  if (old != NULL) memset(old, 0x5a, 100);
  errno = 0;
  if (kind == 1) p = corona_aligned_malloc(s, a);
  else if (kind == 2) p = corona_aligned_realloc(NULL, s, a);
  else if (kind == 3) p = corona_aligned_realloc(old, s, a);
  else switch (f) {
      case F_MALLOC: p = corona_malloc(s); break;
      case F_CALLOC_1: p = corona_calloc(1, s); break;
      case F_CALLOC_2: p = corona_calloc(s, 2); break;
      case F_CALLOC_SQ: p = corona_calloc(s, s); break;
      case F_REALLOC_NULL: p = corona_realloc(NULL, s); break;
      case F_REALLOC_SMALL:
      case F_REALLOC_LARGE: p = corona_realloc(old, s); break;
      case F_POSIX_MEMALIGN: rc = corona_posix_memalign(&p, a, s); break;
      default: break;
    }
  o.errno_after = errno;
  if (f == F_POSIX_MEMALIGN && kind == 0) {
    o.ok = rc == 0;
    o.err = rc;
    if (!o.ok) p = NULL;
  } else {
    o.ok = p != NULL;
    o.err = p == NULL ? errno : 0;
  }
  if (o.ok) o.misaligned = !aligned_to(p, a);
  if (o.ok && old != NULL && p != old) o.misaligned = o.misaligned || ((unsigned char *)p)[0] != 0x5a; /* moved: kept */
  bool consumed = old != NULL && (o.ok || s == 0);
  corona_free(p);
  if (!consumed) corona_free(old);
  return o;
}

/* Whether corona has a twin of f among the corona_* names. */
static bool has_corona_twin(fn_t f) {
  return f <= F_REALLOC_LARGE || f == F_POSIX_MEMALIGN || f == F_ALIGNED_ALLOC;
}

/* What glibc's answer to call i means for the corona_* call of kind. */
static outcome_t expected(size_t i, fn_t f, int kind, size_t a, size_t s) {
  outcome_t e = ref[i];
  if (kind == 0) return e;
  if (a == 0 || (a & (a - 1)) != 0) return (outcome_t){false, EINVAL, EINVAL, false};
  if (kind == 3 && s == 0) return (outcome_t){false, 0, 0, false}; /* realloc(p, 0) frees p */
  (void)f;
  return e;
}

#define MAX_S (TU_TSAN ? 0.1 : 0.01)
#define RSS_SLACK PU_MIB
static bool standard_is_corona;
static size_t checked, rss_worst;
static double time_worst;
static char worst_what[160];

static void describe(char *buf, size_t cap, fn_t f, int kind, size_t a, size_t s, bool standard) {
  static const char *const kinds[] = {NULL, "corona_aligned_malloc(s, a)", "corona_aligned_realloc(NULL, s, a)",
                                      "corona_aligned_realloc(small, s, a)"};
  const char *name = kind ? kinds[kind] : fn_name[f];
  snprintf(buf, cap, "%s%s a=%#zx s=%#zx", standard || kind ? "" : "corona_", name, a, s);
}

/* CPU time of the calling thread, user and system (s). */
static double thread_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs one call (up to five times while it is slow), checks it against e. */
static void check_call(fn_t f, int kind, size_t a, size_t s, bool standard, outcome_t e) {
  char what[160];
  describe(what, sizeof what, f, kind, a, s, standard);
  outcome_t o;
  double best = 1e9;
  size_t grew = 0;
  for (int attempt = 0; attempt < 5 && best >= MAX_S; attempt++) {
    size_t before = pu_rss();
    double t = thread_cpu_now();
    o = standard ? run_standard(f, a, s) : run_corona(f, kind, a, s);
    t = thread_cpu_now() - t;
    size_t after = pu_rss();
    if (t < best) best = t;
    if (after > before && after - before > grew) grew = after - before;
  }
  checked++;
  if (best > time_worst) {
    time_worst = best;
    snprintf(worst_what, sizeof worst_what, "%s", what);
  }
  if (grew > rss_worst) rss_worst = grew;
  /* errno after a success is no answer (glibc may leave one from a failed
   * first try); posix_memalign's answer is its code, and errno stays. */
  CHECKF(o.ok == e.ok && o.err == e.err, "%s: corona %s (error %d), glibc %s (error %d)", what, o.ok ? "pointer" : "NULL",
         o.err, e.ok ? "pointer" : "NULL", e.err);
  CHECKF(!o.misaligned, "%s: misaligned pointer", what);
  if (f == F_POSIX_MEMALIGN && kind == 0)
    CHECKF(o.errno_after == 0, "%s: posix_memalign changed errno to %d", what, o.errno_after);
  CHECKF(best < MAX_S, "%s took %.3f ms", what, best * 1e3);
  if (!TU_TSAN) CHECKF(grew <= RSS_SLACK, "%s: RSS %.2f MiB higher after the free", what, (double)grew / (double)PU_MIB);
}

static void run_table(bool standard) {
  for (size_t i = 0, n = n_calls(); i < n; i++) {
    fn_t f;
    size_t a, s;
    call_of(i, &f, &a, &s);
    if (standard) {
      check_call(f, 0, a, s, true, ref[i]);
      continue;
    }
    if (has_corona_twin(f) && f != F_ALIGNED_ALLOC) check_call(f, 0, a, s, false, ref[i]);
    if (f == F_ALIGNED_ALLOC)
      for (int kind = 1; kind <= 3; kind++) check_call(f, kind, a, s, false, expected(i, f, kind, a, s));
  }
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!CHECKF(argc == 2, "usage: test_bad_input PATH-OF-bad_input_glibc")) return 1;
  if (tu_emulator() != NULL) {
    /* qemu-user 7.2 keeps bookkeeping in host memory for every page of a
     * guest mapping: glibc's answers to the huge requests (its mappings of
     * up to the machine's RAM and its brk attempts) leave it failing every
     * later mmap, and the reference program dies of a NULL arena. */
    tu_skip("under qemu-user the glibc reference cannot run: the emulator's page bookkeeping for glibc's huge "
            "mappings makes every later mmap fail");
    return tu_finish("test_bad_input", t0);
  }
  build_values();
  if (!CHECK(n_calls() <= MAX_CALLS) || !read_reference(argv[1])) return tu_finish("test_bad_input", t0);
  if (pu_rss() == 0) printf("test_bad_input: /proc/self/statm unreadable: RSS not checked\n");
  /* Warm up: the first calls map regions and leaves that later ones use. */
  for (int i = 0; i < 2; i++) {
    corona_free(corona_malloc(100));
    corona_free(corona_malloc(P2(20)));
    free(malloc(100));
  }
  void *probe = malloc(64);
  standard_is_corona = corona_usable_size(probe) != 0;
  free(probe);
  size_t rss0 = pu_rss();
  printf("  %zu calls per name set; glibc's answers from %s\n", n_calls(), argv[1]);
  if (standard_is_corona) {
    double t = tu_now();
    run_table(true);
    printf("  standard names: %zu calls checked (%.2f s)\n", checked, tu_now() - t);
  } else {
    printf("  standard names: skipped, they are not corona's here (a sanitizer's runtime, or no override)\n");
  }
  size_t before = checked;
  double t = tu_now();
  run_table(false);
  printf("  corona_* names: %zu calls checked (%.2f s)\n", checked - before, tu_now() - t);
  printf("  slowest call %.3f ms (%s); largest RSS growth after a free %.2f MiB; RSS %.1f -> %.1f MiB\n",
         time_worst * 1e3, worst_what, (double)rss_worst / (double)PU_MIB, (double)rss0 / (double)PU_MIB,
         (double)pu_rss() / (double)PU_MIB);
  return tu_finish("test_bad_input", t0);
}
#endif
