/* test_debug.c — debug mode (MALLOC_DEBUG=1, which ctest sets in this
 * test's environment; the program first checks that it is really on:
 * corona_usable_size(corona_aligned_malloc(24, 64)) must be exactly 24, and
 * that first object 64-aligned).
 *
 * Detections: each case runs in a child (this program re-executed with
 * "case NAME bug", MALLOC_DEBUG=1 and no other CORONA_ / MALLOC_ variable),
 * which prints the user pointer it is about to misuse on stdout and then
 * misuses it; it too checks that debug mode is on.  The child must die by
 * SIGABRT, and its stderr must be exactly one line that starts "corona: ",
 * names the call ("free(): " / "realloc(): ") where the report has one,
 * holds the problem's keyword and then the pointer as "0x" + 16 lowercase
 * hex digits.  Cases: double free (small, large, a >4 MB object that skips
 * the quarantine, the old pointer after realloc moved it, realloc of a freed
 * pointer); free of a static buffer, of a stack buffer, of the middle of a
 * small and of a large object; realloc of the middle of an object; a write
 * one byte past the requested size (40, 13, 20000 bytes, a 256-aligned
 * object; found by free, and by realloc); a write to freed memory found when
 * the object leaves the quarantine after 1100 later frees, at
 * corona_collect(), and at process exit after main returns 0 (small and
 * large objects).  Each case also runs as "case NAME ok": the same program
 * without the misuse must exit 0 with an empty stderr, so a detection is
 * shown to come from the misuse alone.
 *
 * In this process: new memory is 0xA5 and usable_size is the requested size
 * (sizes 0 .. 5 MB), freed memory reads 0xDF while quarantined, calloc
 * memory is zero (also memory reused from a freed, dirtied object), realloc
 * keeps the contents through small, large and own-mapping sizes (the new
 * tail is 0xA5), aligned allocations (1 B .. 1 MB alignments,
 * aligned_malloc, posix_memalign, aligned_realloc) are aligned, malloc(0)
 * and friends work; producer/consumer threads hand objects across threads
 * with content checks; a correct child program exits 0 with nothing on
 * stderr, also after its exit-time quarantine check.
 *
 * "test_debug clean-run PROG ARGS..." runs another test program with
 * MALLOC_DEBUG=1 MALLOC_VERBOSE=1 and requires: exit 0, "OK" on stdout, the
 * verbose line saying debug mode is on (so the run really was checked), the
 * option line DEBUG = 1, and no corona line on stderr other than options
 * and OS events (no detection, no warning) and nothing else on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "childutil.h"
#include "corona.h"
#include "internal/options.h" /* CR_OPT_COUNT: the options verbose mode lists */
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)

static char child_out[64 * 1024];
static char child_err[1 << 20];
static cu_child_t child;

/* ---- child side ------------------------------------------------------------- */

/* Writes a line to stdout at once (the child may abort right after). */
/* One line on stdout (childutil.h). */
#define say(...) cu_put(1, __VA_ARGS__)

/* The pointer the report must name. */
static void say_addr(const void *p) { say("addr 0x%016" PRIxPTR, (uintptr_t)p); }

/* Keeps the compiler from dropping stores to freed memory or past the end. */
static void poke(void *p, size_t i, unsigned char v) { ((volatile unsigned char *)p)[i] = v; }

static void fill_bytes(void *p, size_t n, unsigned char v) { memset(p, v, n); }

/* Other frees that push older objects out of the quarantine (1024 deep). */
static void churn_quarantine(size_t frees) {
  for (size_t i = 0; i < frees; i++) {
    void *q = corona_malloc(32 + (i % 7) * 16);
    if (q == NULL) _exit(5);
    fill_bytes(q, 32, 0x33);
    corona_free(q);
  }
}

static int case_double_free_small(bool bug) {
  char *p = corona_malloc(48);
  fill_bytes(p, 48, 1);
  say_addr(p);
  corona_free(p);
  if (bug) corona_free(p);
  return 0;
}

static int case_double_free_large(bool bug) {
  char *p = corona_malloc(100 * KB); /* large (> 8064 B), kept in the quarantine */
  fill_bytes(p, 100 * KB, 1);
  say_addr(p);
  corona_free(p);
  if (bug) corona_free(p);
  return 0;
}

/* Objects above 4 MB skip the quarantine: their memory goes back at once. */
static int case_double_free_huge(bool bug) {
  char *p = corona_malloc(6 * MB);
  fill_bytes(p, 6 * MB, 1);
  say_addr(p);
  corona_free(p);
  if (bug) corona_free(p);
  return 0;
}

/* realloc moved the object; the program frees the old pointer. */
static int case_double_free_realloc(bool bug) {
  char *p = corona_malloc(100);
  fill_bytes(p, 100, 1);
  say_addr(p);
  char *q = corona_realloc(p, 3000);
  if (q == NULL || q == p) return 4; /* debug mode always moves */
  corona_free(bug ? p : q);
  return 0;
}

static int case_realloc_freed(bool bug) {
  char *p = corona_malloc(100);
  fill_bytes(p, 100, 1);
  say_addr(p);
  if (bug) {
    corona_free(p);
    p = corona_realloc(p, 200);
  } else {
    p = corona_realloc(p, 200);
  }
  corona_free(p);
  return 0;
}

static int case_free_static(bool bug) {
  static _Alignas(64) char sbuf[256];
  fill_bytes(sbuf, sizeof sbuf, 1);
  say_addr(sbuf + 64);
  if (bug) corona_free(sbuf + 64);
  return 0;
}

static int case_free_stack(bool bug) {
  _Alignas(64) char buf[256];
  fill_bytes(buf, sizeof buf, 1);
  say_addr(buf + 64);
  if (bug) corona_free(buf + 64);
  return buf[100] == 1 ? 0 : 4;
}

static int case_free_middle_small(bool bug) {
  char *p = corona_malloc(256);
  fill_bytes(p, 256, 1);
  say_addr(p + 64);
  corona_free(bug ? p + 64 : p);
  return 0;
}

static int case_free_middle_large(bool bug) {
  char *p = corona_malloc(200 * KB);
  fill_bytes(p, 200 * KB, 1);
  say_addr(p + 64 * KB);
  corona_free(bug ? p + 64 * KB : p);
  return 0;
}

static int case_realloc_middle(bool bug) {
  char *p = corona_malloc(1000);
  fill_bytes(p, 1000, 1);
  say_addr(p + 256);
  char *q = corona_realloc(bug ? p + 256 : p, 2000);
  corona_free(q);
  return 0;
}

/* Writes one byte at p[size] (the bug) or p[size - 1], then frees. */
static int overflow_then_free(char *p, size_t size, bool bug) {
  if (p == NULL) return 4;
  fill_bytes(p, size, 1);
  say_addr(p);
  poke(p, bug ? size : size - 1, 0x5a);
  corona_free(p);
  return 0;
}

static int case_overflow_small(bool bug) { return overflow_then_free(corona_malloc(40), 40, bug); }
static int case_overflow_odd(bool bug) { return overflow_then_free(corona_malloc(13), 13, bug); }
static int case_overflow_large(bool bug) { return overflow_then_free(corona_malloc(20000), 20000, bug); }

static int case_overflow_aligned(bool bug) {
  char *p = corona_aligned_malloc(1000, 256);
  if (p == NULL || !tu_is_aligned(p, 256)) return 4;
  return overflow_then_free(p, 1000, bug);
}

/* The same write, found by realloc. */
static int case_overflow_realloc(bool bug) {
  char *p = corona_malloc(40);
  fill_bytes(p, 40, 1);
  say_addr(p);
  poke(p, bug ? 40 : 39, 0x5a);
  p = corona_realloc(p, 4000);
  corona_free(p);
  return 0;
}

/* Frees an object of size bytes and writes byte `at` of it (the bug) or
 * writes it just before the free. */
static char *free_then_write(size_t size, size_t at, bool bug) {
  char *p = corona_malloc(size);
  fill_bytes(p, size, 1);
  say_addr(p);
  if (!bug) poke(p, at, 0x11);
  corona_free(p);
  if (bug) poke(p, at, 0x11);
  return p;
}

/* Found when the object leaves the quarantine: 1100 later frees. */
static int case_freed_write_quarantine(bool bug) {
  free_then_write(64, 5, bug);
  churn_quarantine(1100);
  say("after the other frees"); /* must not be reached with the bug */
  return 0;
}

static int case_freed_write_collect(bool bug) {
  free_then_write(64, 5, bug);
  churn_quarantine(10);
  say("before collect");
  corona_collect();
  say("after collect"); /* must not be reached with the bug */
  return 0;
}

static int case_freed_write_large(bool bug) {
  free_then_write(100 * KB, 50000, bug);
  say("before collect");
  corona_collect();
  say("after collect");
  return 0;
}

/* main returns 0 with the write still unnoticed: the exit-time check of the
 * quarantine must catch it. */
static int case_freed_write_exit(bool bug) {
  free_then_write(200, 150, bug);
  say("main returns");
  return 0;
}

typedef struct dcase_s {
  const char *name;
  int (*fn)(bool bug);
  const char *call;      /* "free" / "realloc": the report starts "corona: <call>(): "; NULL: no call named */
  const char *keywords;  /* the problem: one of these ('|'-separated) */
  const char *must_say;  /* a stdout line the child must reach before the report (or NULL) */
  const char *never_say; /* a stdout line the child must not reach with the bug (or NULL) */
} dcase_t;

static const dcase_t cases[] = {
    {"double_free_small", case_double_free_small, "free", "double free", NULL, NULL},
    {"double_free_large", case_double_free_large, "free", "double free", NULL, NULL},
    /* The memory of an object above the quarantine's 4 MB bound is gone
     * after the first free, so the second may only be told apart as a
     * pointer that is not a live object: either wording is accepted. */
    {"double_free_huge", case_double_free_huge, "free", "double free|invalid pointer", NULL, NULL},
    {"double_free_after_realloc", case_double_free_realloc, "free", "double free", NULL, NULL},
    {"realloc_of_freed", case_realloc_freed, "realloc", "double free", NULL, NULL},
    {"free_static", case_free_static, "free", "invalid pointer", NULL, NULL},
    {"free_stack", case_free_stack, "free", "invalid pointer", NULL, NULL},
    {"free_middle_small", case_free_middle_small, "free", "invalid pointer", NULL, NULL},
    {"free_middle_large", case_free_middle_large, "free", "invalid pointer", NULL, NULL},
    {"realloc_middle", case_realloc_middle, "realloc", "invalid pointer", NULL, NULL},
    {"overflow_small", case_overflow_small, "free", "write past the end", NULL, NULL},
    {"overflow_odd_size", case_overflow_odd, "free", "write past the end", NULL, NULL},
    {"overflow_large", case_overflow_large, "free", "write past the end", NULL, NULL},
    {"overflow_aligned", case_overflow_aligned, "free", "write past the end", NULL, NULL},
    {"overflow_realloc", case_overflow_realloc, "realloc", "write past the end", NULL, NULL},
    {"freed_write_quarantine", case_freed_write_quarantine, NULL, "write to freed memory", NULL,
     "after the other frees"},
    {"freed_write_collect", case_freed_write_collect, NULL, "write to freed memory", "before collect", "after collect"},
    {"freed_write_large", case_freed_write_large, NULL, "write to freed memory", "before collect", "after collect"},
    {"freed_write_exit", case_freed_write_exit, NULL, "write to freed memory", "main returns", NULL},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* The process's first object, so aligned: debug mode is decided by the
 * initialisation this very call runs, and the alignment must survive it. */
static bool debug_mode_on(void) {
  void *p = corona_aligned_malloc(24, 64);
  size_t u = corona_usable_size(p);
  CHECKF(p == NULL || tu_is_aligned(p, 64), "the first call, aligned_malloc(24, 64), gave %p", p);
  corona_free(p);
  return p != NULL && u == 24;
}

/* A correct program: mixed sizes, realloc, aligned, calloc, threads freeing
 * each other's objects, enough frees to cycle the quarantine; main returns
 * with objects in the quarantine (checked at exit). */
static void *clean_thread(void *arg) {
  char **objs = arg;
  for (int i = 0; i < 200; i++) {
    size_t n = 16 + (size_t)i * 37;
    if (objs[i] == NULL) continue;
    for (size_t k = 0; k < n; k++)
      if ((unsigned char)objs[i][k] != (unsigned char)i) return (void *)1;
    corona_free(objs[i]); /* allocated by main: cross-thread */
  }
  return NULL;
}

static int case_clean(void) {
  static char *objs[200];
  for (int i = 0; i < 200; i++) {
    size_t n = 16 + (size_t)i * 37;
    objs[i] = corona_malloc(n);
    if (objs[i] == NULL) return 4;
    memset(objs[i], i, n);
  }
  pthread_t th;
  if (pthread_create(&th, NULL, clean_thread, objs) != 0) return 4;
  void *r;
  pthread_join(th, &r);
  if (r != NULL) return 6;
  for (int round = 0; round < 3000; round++) {
    size_t n = (size_t)(round * 7919) % 30000 + 1;
    char *p = round % 5 == 0 ? corona_calloc(1, n) : corona_malloc(n);
    if (p == NULL) return 4;
    memset(p, 7, n);
    p = corona_realloc(p, n / 2 + 1);
    char *a = corona_aligned_malloc(n % 3000 + 1, (size_t)1 << (round % 12));
    if (p == NULL || a == NULL) return 4;
    corona_free(a);
    corona_free(p);
  }
  corona_free(corona_malloc(0));
  char *keep = corona_malloc(100); /* freed last: still in the quarantine at exit */
  memset(keep, 1, 100);
  corona_free(keep);
  say("done");
  return 0;
}

static int child_main(int argc, char **argv) {
  if (!debug_mode_on()) {
    say("debug mode is off in the child");
    return 3;
  }
  if (argc >= 3 && strcmp(argv[2], "clean") == 0) return case_clean();
  if (argc < 4) return 2;
  for (size_t i = 0; i < N_CASES; i++)
    if (strcmp(cases[i].name, argv[2]) == 0) {
      int rc = cases[i].fn(strcmp(argv[3], "bug") == 0);
      if (rc == 0) say("done");
      return rc;
    }
  say("no case %s", argv[2]);
  return 2;
}

/* ---- parent side: the detections ------------------------------------------ */

/* Runs this program again with "a1 a2 a3", in this environment without its
 * CORONA_ / MALLOC_ variables, plus MALLOC_DEBUG=1: stderr then holds only
 * what debug mode says. */
static int run_self(const char *a1, const char *a2, const char *a3) {
  static cu_env_t env;
  cu_env_clean(&env);
  cu_env_set(&env, "MALLOC_DEBUG=1");
  char *argv[] = {"test_debug", (char *)a1, (char *)a2, (char *)a3, NULL};
  cu_child_init(&child, child_out, sizeof child_out, child_err, sizeof child_err);
  return cu_run(&child, cu_self_exe(), argv, &env);
}

/* The address the child announced ("addr 0x..."), 0 if none. */
static uintptr_t announced_addr(const char *out) {
  const char *a = strstr(out, "addr 0x");
  return a ? (uintptr_t)strtoull(a + 7, NULL, 16) : 0;
}

static bool out_has_line(const char *out, const char *line) {
  size_t n = strlen(line);
  for (const char *p = out; p && *p;) {
    if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) return true;
    p = strchr(p, '\n');
    if (p) p++;
  }
  return false;
}

/* Does line hold one of the '|'-separated keywords followed (later on the
 * line) by addr? */
static bool keyword_then_addr(const char *line, const char *keywords, const char *addr) {
  for (const char *k = keywords; *k;) {
    const char *e = strchr(k, '|');
    size_t n = e ? (size_t)(e - k) : strlen(k);
    char kw[64];
    if (n >= sizeof kw) n = sizeof kw - 1;
    memcpy(kw, k, n);
    kw[n] = '\0';
    const char *at = strstr(line, kw);
    if (at != NULL) {
      const char *ad = strstr(at + n, addr);
      size_t al = strlen(addr);
      /* The address stands alone: the line ends or a detail follows. */
      if (ad != NULL && (ad[al] == '\0' || ad[al] == ' ')) return true;
    }
    k += n;
    if (*k == '|') k++;
  }
  return false;
}

static void check_detection(const dcase_t *c) {
  /* The misuse: SIGABRT, one line naming the problem and the address. */
  int st = run_self("case", c->name, "bug");
  uintptr_t a = announced_addr(child_out);
  char addr[40];
  snprintf(addr, sizeof addr, "0x%016" PRIxPTR, a);
  bool ok = CHECKF(cu_signalled(st, SIGABRT), "%s: child ended by %s, want SIGABRT; stdout: %.300s; stderr: %.500s",
                   c->name, cu_describe(st), child_out, child_err);
  ok &= CHECKF(a != 0, "%s: the child announced no address; stdout: %.300s", c->name, child_out);
  size_t lines = cu_line_count(child_err);
  ok &= CHECKF(lines == 1, "%s: %zu lines on stderr, want exactly 1: %.800s", c->name, lines, child_err);
  char line[512] = "";
  cu_line(child_err, 0, line, sizeof line);
  ok &= CHECKF(cu_starts(line, "corona: "), "%s: the report does not start \"corona: \": %s", c->name, line);
  if (c->call != NULL) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "corona: %s(): ", c->call);
    ok &= CHECKF(cu_starts(line, prefix), "%s: the report does not start \"%s\": %s", c->name, prefix, line);
  }
  ok &= CHECKF(keyword_then_addr(line, c->keywords, addr), "%s: the report does not say \"%s\" then %s: %s", c->name,
               c->keywords, addr, line);
  if (c->must_say)
    ok &= CHECKF(out_has_line(child_out, c->must_say), "%s: the child did not reach \"%s\" before the report", c->name,
                 c->must_say);
  if (c->never_say)
    ok &= CHECKF(!out_has_line(child_out, c->never_say), "%s: the child reached \"%s\": detected too late", c->name,
                 c->never_say);
  /* Only the exit-time check lets main finish. */
  if (strcmp(c->name, "freed_write_exit") != 0)
    CHECKF(!out_has_line(child_out, "done"), "%s: the child finished despite the misuse", c->name);
  printf("  %-28s %s\n", c->name, ok ? line : "FAILED");

  /* The same program without the misuse: exit 0, nothing on stderr. */
  st = run_self("case", c->name, "ok");
  CHECKF(cu_exited(st, 0), "%s (no misuse): child ended by %s; stdout: %.300s; stderr: %.500s", c->name,
         cu_describe(st), child_out, child_err);
  CHECKF(child_err[0] == '\0', "%s (no misuse): stderr not empty: %.500s", c->name, child_err);
  CHECKF(out_has_line(child_out, "done"), "%s (no misuse): the child did not finish; stdout: %.300s", c->name,
         child_out);
}

static void test_clean_child(void) {
  int st = run_self("case", "clean", NULL);
  CHECKF(cu_exited(st, 0), "clean program: child ended by %s; stdout: %.300s; stderr: %.500s", cu_describe(st),
         child_out, child_err);
  CHECKF(child_err[0] == '\0', "clean program: stderr not empty: %.500s", child_err);
  CHECKF(out_has_line(child_out, "done"), "clean program: did not finish; stdout: %.300s", child_out);
}

/* ---- parent side: what debug mode promises a correct program --------------- */

static size_t first_not(const void *p, size_t n, unsigned char v) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != v) return i;
  return (size_t)-1;
}

static const size_t fill_sizes[] = {1, 13, 16, 24, 100, 1000, 4000, 8064, 8065, 20000, 100 * KB, MB, 5 * MB};
#define N_FILL (sizeof fill_sizes / sizeof fill_sizes[0])

static void test_fills(void) {
  for (size_t i = 0; i < N_FILL; i++) {
    size_t n = fill_sizes[i];
    unsigned char *p = corona_malloc(n);
    if (!CHECKF(p != NULL, "malloc(%zu) failed", n)) continue;
    CHECKF(tu_is_aligned(p, 16), "malloc(%zu) = %p not 16-aligned", n, (void *)p);
    CHECKF(corona_usable_size(p) == n, "usable_size(malloc(%zu)) = %zu, want exactly %zu", n, corona_usable_size(p), n);
    size_t bad = first_not(p, n, 0xA5);
    CHECKF(bad == (size_t)-1, "malloc(%zu): byte %zu is 0x%02x, want the new-memory fill 0xa5", n, bad, p[bad]);
    memset(p, 0x3c, n);
    corona_free(p);
    /* Quarantined (up to 4 MB), so still mapped: it reads as the freed fill. */
    if (n <= MB) {
      volatile unsigned char *v = p;
      size_t badf = (size_t)-1;
      for (size_t k = 0; k < n; k++)
        if (v[k] != 0xDF) {
          badf = k;
          break;
        }
      CHECKF(badf == (size_t)-1, "freed %zu-byte object: byte %zu is 0x%02x, want the freed fill 0xdf", n, badf,
             v[badf]);
    }
  }
}

static void test_calloc(void) {
  for (size_t i = 0; i < N_FILL; i++) {
    size_t n = fill_sizes[i];
    /* Dirty memory of the same size, freed and pushed out of the quarantine,
     * so calloc may well get it back. */
    unsigned char *d = corona_malloc(n);
    if (d) memset(d, 0xff, n);
    corona_free(d);
    corona_collect();
    unsigned char *p = corona_calloc(1, n);
    if (!CHECKF(p != NULL, "calloc(1, %zu) failed", n)) continue;
    CHECK_ZERO(p, n);
    CHECKF(corona_usable_size(p) == n, "usable_size(calloc(1, %zu)) = %zu", n, corona_usable_size(p));
    corona_free(p);
  }
  unsigned char *p = corona_calloc(7, 13);
  if (CHECK(p != NULL)) {
    CHECK_ZERO(p, 91);
    CHECK(corona_usable_size(p) == 91);
    corona_free(p);
  }
  errno = 0;
  CHECK(corona_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
}

static void test_realloc(void) {
  static const size_t chain[] = {10, 100, 5000, 8064, 9000, 300 * KB, 6 * MB, 3 * MB, 20000, 1000, 13, 1};
  size_t have = 0;
  unsigned char *p = NULL;
  uint64_t seed = 0x1234567;
  for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
    size_t n = chain[i];
    unsigned char *q = corona_realloc(p, n);
    if (!CHECKF(q != NULL, "realloc(%p, %zu) failed", (void *)p, n)) return;
    CHECKF(corona_usable_size(q) == n, "usable_size after realloc to %zu = %zu", n, corona_usable_size(q));
    size_t keep = have < n ? have : n;
    CHECK_PATTERN(q, keep, seed);
    if (n > have) {
      size_t bad = first_not(q + have, n - have, 0xA5);
      CHECKF(bad == (size_t)-1, "realloc %zu -> %zu: new byte %zu is 0x%02x, want 0xa5", have, n, have + bad,
             q[have + bad]);
    }
    tu_fill(q, n, seed);
    p = q;
    have = n;
  }
  CHECK(corona_realloc(p, 0) == NULL); /* frees */
  p = corona_realloc(NULL, 50);
  CHECK(p != NULL && corona_usable_size(p) == 50);
  corona_free(p);
}

static void test_aligned(void) {
  static const size_t sizes[] = {1, 13, 100, 5000, 20000};
  for (size_t a = 1; a <= MB; a <<= 1)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      unsigned char *p = corona_aligned_malloc(n, a);
      if (!CHECKF(p != NULL, "aligned_malloc(%zu, %zu) failed", n, a)) continue;
      CHECKF(tu_is_aligned(p, a < 16 ? 16 : a), "aligned_malloc(%zu, %zu) = %p", n, a, (void *)p);
      CHECKF(corona_usable_size(p) == n, "usable_size(aligned_malloc(%zu, %zu)) = %zu", n, a, corona_usable_size(p));
      size_t bad = first_not(p, n, 0xA5);
      CHECKF(bad == (size_t)-1, "aligned_malloc(%zu, %zu): byte %zu is 0x%02x", n, a, bad, p[bad]);
      memset(p, 0x42, n);
      corona_free(p);
    }
  void *m = NULL;
  CHECK(corona_posix_memalign(&m, 4096, 3000) == 0 && m != NULL && tu_is_aligned(m, 4096) &&
        corona_usable_size(m) == 3000);
  tu_fill(m, 3000, 77);
  unsigned char *r = corona_aligned_realloc(m, 70000, 8192);
  if (CHECK(r != NULL)) {
    CHECKF(tu_is_aligned(r, 8192), "aligned_realloc(.., 70000, 8192) = %p", (void *)r);
    CHECK(corona_usable_size(r) == 70000);
    CHECK_PATTERN(r, 3000, 77);
    corona_free(r);
  }
  errno = 0;
  CHECK(corona_aligned_malloc(100, 24) == NULL && errno == EINVAL);
}

static void test_zero_size(void) {
  void *a = corona_malloc(0), *b = corona_malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  CHECK(corona_usable_size(a) == 0 && corona_usable_size(b) == 0);
  void *c = corona_calloc(0, 0);
  CHECK(c != NULL && corona_usable_size(c) == 0);
  void *d = corona_aligned_malloc(0, 256);
  CHECK(d != NULL && tu_is_aligned(d, 256));
  void *e = corona_realloc(NULL, 0);
  CHECK(e != NULL);
  corona_free(a);
  corona_free(b);
  corona_free(c);
  corona_free(d);
  corona_free(e);
  corona_free(NULL);
}

/* ---- producer/consumer threads ------------------------------------------------ */
#define PC_PRODUCERS 2
#define PC_CONSUMERS 2
#define PC_RING 256

typedef struct {
  void *p;
  size_t size;
} item_t;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  item_t ring[PC_RING];
  size_t head, count;
  int producers_left;
} pc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, PC_PRODUCERS};
static atomic_size_t pc_checked;
static size_t pc_per_producer;

static void *producer(void *arg) {
  tu_rng_t r;
  tu_rng_seed(&r, (uint64_t)(uintptr_t)arg + 1);
  for (size_t i = 0; i < pc_per_producer; i++) {
    size_t n = tu_below(&r, 16) == 0 ? tu_range(&r, 8065, 70000) : tu_log_range(&r, 1, 8064);
    void *p = tu_below(&r, 8) == 0 ? corona_aligned_malloc(n, 64) : corona_malloc(n);
    if (!CHECKF(p != NULL, "producer: malloc(%zu) failed", n)) break;
    CHECKF(corona_usable_size(p) == n, "producer: usable_size = %zu, want %zu", corona_usable_size(p), n);
    tu_fill(p, n, tu_seed(p, n));
    pthread_mutex_lock(&pc.lock);
    while (pc.count == PC_RING) pthread_cond_wait(&pc.not_full, &pc.lock);
    pc.ring[(pc.head + pc.count) % PC_RING] = (item_t){p, n};
    pc.count++;
    pthread_cond_signal(&pc.not_empty);
    pthread_mutex_unlock(&pc.lock);
  }
  pthread_mutex_lock(&pc.lock);
  pc.producers_left--;
  pthread_cond_broadcast(&pc.not_empty);
  pthread_mutex_unlock(&pc.lock);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&pc.lock);
    while (pc.count == 0 && pc.producers_left > 0) pthread_cond_wait(&pc.not_empty, &pc.lock);
    if (pc.count == 0) {
      pthread_mutex_unlock(&pc.lock);
      return NULL;
    }
    item_t it = pc.ring[pc.head];
    pc.head = (pc.head + 1) % PC_RING;
    pc.count--;
    pthread_cond_signal(&pc.not_full);
    pthread_mutex_unlock(&pc.lock);
    CHECK_PATTERN(it.p, it.size, tu_seed(it.p, it.size));
    CHECKF(corona_usable_size(it.p) == it.size, "consumer: usable_size = %zu, want %zu", corona_usable_size(it.p),
           it.size);
    if (it.size % 3 == 0) { /* sometimes grown here first, then freed */
      void *q = corona_realloc(it.p, it.size * 2);
      if (CHECK(q != NULL)) {
        CHECK_PATTERN(q, it.size, tu_seed(it.p, it.size));
        it.p = q;
      }
    }
    corona_free(it.p); /* allocated by a producer: a cross-thread free */
    atomic_fetch_add(&pc_checked, 1);
  }
}

static void test_threads(void) {
  pc_per_producer = tu_scaled(20000, 2000);
  pthread_t th[PC_PRODUCERS + PC_CONSUMERS];
  for (int i = 0; i < PC_PRODUCERS; i++) pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i);
  for (int i = 0; i < PC_CONSUMERS; i++) pthread_create(&th[PC_PRODUCERS + i], NULL, consumer, NULL);
  for (int i = 0; i < PC_PRODUCERS + PC_CONSUMERS; i++) pthread_join(th[i], NULL);
  size_t n = atomic_load(&pc_checked);
  CHECKF(n == pc_per_producer * PC_PRODUCERS, "threads: %zu objects checked, want %zu", n,
         pc_per_producer * PC_PRODUCERS);
  /* Every quarantined object, many freed by the consumers, is checked now
   * (a damaged fill would abort here). */
  corona_collect();
  printf("  threads: %zu objects handed from %d producers to %d consumers\n", n, PC_PRODUCERS, PC_CONSUMERS);
}

/* ---- clean-run: another test program under debug mode --------------------------- */

static const char *const event_prefixes[] = {"corona: mapped ", "corona: returned ", "corona: unmapped ",
                                             "corona: soft heap limit reached", "corona: huge pages o"};

static int clean_run(int argc, char **argv) {
  double t0 = tu_now();
  static cu_env_t env;
  cu_env_clean(&env);
  cu_env_set(&env, "MALLOC_DEBUG=1");
  cu_env_set(&env, "MALLOC_VERBOSE=1");
  cu_child_init(&child, child_out, sizeof child_out, child_err, sizeof child_err);
  int st = cu_run(&child, argv[2], argv + 2, &env);
  const char *name = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
  (void)argc;
  fputs(child_out, stdout);
  CHECKF(cu_exited(st, 0), "%s ended by %s; stderr: %.2000s", name, cu_describe(st), child_err);
  CHECKF(strstr(child_out, ": OK") != NULL, "%s did not print OK", name);
  CHECKF(!child.truncated, "%s: output cut at the capture's size", name);
  size_t debug_lines = 0, option_lines = 0, events = 0, bad = 0;
  char line[512];
  for (size_t i = 0; cu_line(child_err, i, line, sizeof line); i++) {
    if (cu_starts(line, "corona: debug mode on")) {
      debug_lines++;
      continue;
    }
    if (cu_starts(line, "corona: option ")) {
      option_lines++;
      continue;
    }
    bool event = false;
    for (size_t k = 0; k < sizeof event_prefixes / sizeof event_prefixes[0]; k++)
      event |= cu_starts(line, event_prefixes[k]);
    if (event) {
      events++;
      continue;
    }
    if (bad++ < 10)
      tu_fail(__FILE__, __LINE__, "only options and OS events on stderr", "%s: unexpected line: %s", name, line);
  }
  CHECKF(debug_lines == 1, "%s: %zu \"corona: debug mode on\" lines, want 1 (was debug mode on?)", name, debug_lines);
  CHECKF(option_lines == CR_OPT_COUNT, "%s: %zu option lines, want %d (one per option)", name, option_lines,
         (int)CR_OPT_COUNT);
  CHECKF(cu_count_prefix(child_err, "corona: option DEBUG = 1 (environment)") == 1,
         "%s: no \"corona: option DEBUG = 1 (environment)\" line", name);
  CHECKF(bad == 0, "%s: %zu unexpected stderr lines", name, bad);
  printf("debug mode on, %zu option lines, %zu OS events, no reports\n", option_lines, events);
  char label[128];
  snprintf(label, sizeof label, "test_debug clean-run %s", name);
  return tu_finish(label, t0);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "case") == 0) return child_main(argc, argv);
  if (argc >= 3 && strcmp(argv[1], "clean-run") == 0) return clean_run(argc, argv);
  double t0 = tu_now();
  if (!debug_mode_on()) {
    fprintf(stderr,
            "FAIL: debug mode is not on: corona_usable_size(corona_aligned_malloc(24, 64)) != 24 (run with MALLOC_DEBUG=1; "
            "ctest sets it)\n");
    return 1;
  }
  printf("detections (each in a child, and its correct twin):\n");
  for (size_t i = 0; i < N_CASES; i++) check_detection(&cases[i]);
  test_clean_child();
  test_fills();
  test_calloc();
  test_realloc();
  test_aligned();
  test_zero_size();
  test_threads(); /* last: no fork after threads */
  return tu_finish("test_debug", t0);
}
