/* test_introspect.c — glibc's introspection names answered by corona where
 * it replaces malloc: the program calls only glibc's names (<malloc.h>) and
 * checks each answer against corona's own figures (corona_stats_get) and
 * against what its calls must have changed.
 *
 * Built three ways (test/CMakeLists.txt):
 *   introspect               linked with libcorona.a (corona's names are
 *                            called directly)
 *   introspect_preload       introspect_plain, which knows nothing of
 *                            corona, run with LD_PRELOAD=libcorona.so (it
 *                            finds corona_stats_get with dlsym; without it
 *                            the test fails: glibc answered)
 *   introspect_full_static   linked with -static and libcorona.a, where the
 *                            toolchain has a static C library
 *   introspect_glibc         introspect_plain --glibc, without corona: the
 *                            schema checks of malloc_info accept glibc's own
 *                            XML, and glibc's mallopt and malloc_info answer
 *                            as the comments below say
 *   introspect (sanitizer builds, where corona replaces neither malloc nor
 *                            these names) the same checks of the same code:
 *                            src/introspect.c built into the test under
 *                            other names, corona_malloc as malloc
 * ctest runs them with CORONA_DECAY_MS=100000 and CORONA_BACKGROUND_PURGE=0,
 * so that nothing cached goes back on its own while a part measures, and no
 * purger thread is started (which allocates) in the middle of one.
 *
 * Parts:
 *   mallopt      every glibc parameter gives 1 (M_MXFAST only in 0..160),
 *                other numbers 0
 *   mallinfo2    arena + hblkhd = corona's memory_mapped; ten 200 KB objects raise
 *                uordblks by exactly their block bytes; freed, the same
 *                bytes (and ten blocks) move to fordblks / ordblks; after
 *                malloc_trim (1) fordblks, ordblks and keepcost are 0, and a
 *                second malloc_trim gives 0
 *   hblks        an 8 MB object is one more mapping of its own (hblks,
 *                hblkhd by its block bytes; arena and uordblks unchanged,
 *                as with glibc's mmapped chunks); freed, it stays cached
 *                (fordblks and arena grow by it) until malloc_trim
 *   mmap_threshold  2 MB objects get a mapping of their own only once
 *                M_MMAP_THRESHOLD is 1 MB; at 16 MB (or -1) an 8 MB one
 *                lives in a region, a 32 MB one still gets its own; back
 *                at the default, realloc moves the 8 MB one to a mapping of
 *                its own and shrinks the 2 MB one in its own, contents kept
 *   trim_threshold  16 MB of 256 KB objects freed one by one: with the
 *                default M_TRIM_THRESHOLD all of it stays cached (fordblks,
 *                and RSS); at 0 no more than the large-object caches and a
 *                quarter of the live heap (9 MB at the most); M_TOP_PAD
 *                8 MB on top of 0 lets 5 to 9 MB more stay
 *   mallinfo     the int fields equal mallinfo2's while small; with a 3 GB
 *                object hblkhd and usmblks saturate at INT_MAX instead of
 *                wrapping
 *   malloc_stats corona's table on stderr, naming this program and pid,
 *                with corona_stats_get's figures
 *   malloc_info  glibc's XML schema, line by line; the live objects of the
 *                112 B class, the mappings of their own, the cached and
 *                the mapped bytes as mallinfo2 and corona_stats_get give
 *                them; options 1 gives EINVAL and writes nothing */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corona.h"
#include "testutil.h"

/* Under a sanitizer (test/stats.cmake): glibc's names are renamed to the
 * copies built from src/introspect.c, and the test's own objects come from
 * corona, not from the sanitizer's malloc. */
#ifdef INTROSPECT_RENAMED
#define malloc corona_malloc
#define realloc corona_realloc
#define free corona_free
#endif

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

/* corona's own calls: direct when linked, through dlsym when preloaded. */
static int (*stats_get)(corona_stats *);
static int (*alloc_mode)(int, intptr_t);

static void find_corona(void) {
#ifdef INTROSPECT_PLAIN
  *(void **)&stats_get = dlsym(RTLD_DEFAULT, "corona_stats_get");
  *(void **)&alloc_mode = dlsym(RTLD_DEFAULT, "corona_allocation_mode");
#else
  stats_get = corona_stats_get;
  alloc_mode = corona_allocation_mode;
#endif
}

/* Keeps the compiler from pairing a malloc with its free and dropping both. */
static void *volatile sink;
static void *touch(void *p, size_t n) {
  if (p != NULL) memset(p, 0x5a, n);
  sink = p;
  return p;
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
/* Block bytes of a large object of n bytes (corona: a 64-byte header, whole
 * pages; a mapping of its own: 16 KB multiples). */
static size_t block_of(size_t n, bool own) { return round_up(round_up(n + 64, 4096), own ? 16 * KB : 4096); }

static long long dz(size_t a, size_t b) { return (long long)a - (long long)b; }

static size_t rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, res = 0;
  if (f != NULL) {
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void restore_options(void) {
  CHECK(mallopt(M_TRIM_THRESHOLD, 32 << 20) == 1);
  CHECK(mallopt(M_TOP_PAD, 0) == 1);
  CHECK(mallopt(M_MMAP_THRESHOLD, 4 << 20) == 1);
}

/* ---- mallopt ------------------------------------------------------------------ */
static void test_mallopt(void) {
  /* glibc's parameters; those without a counterpart change nothing. */
  const int known[] = {M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX, M_NLBLKS, M_GRAIN, M_KEEP};
  const int values[] = {0, 1, -1, 1000, 64 << 20};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
      CHECKF(mallopt(known[i], values[v]) == 1, "mallopt(%d, %d) is not 1", known[i], values[v]);
  const int tuned[] = {M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD};
  for (size_t i = 0; i < 3; i++)
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
      CHECKF(mallopt(tuned[i], values[v]) == 1, "mallopt(%d, %d) is not 1", tuned[i], values[v]);
  restore_options();
  /* M_MXFAST: glibc's range, 0 to 80 * sizeof(size_t) / 4. */
  CHECK(mallopt(M_MXFAST, 0) == 1 && mallopt(M_MXFAST, 64) == 1 && mallopt(M_MXFAST, 160) == 1);
  CHECK(mallopt(M_MXFAST, 161) == 0 && mallopt(M_MXFAST, -1) == 0 && mallopt(M_MXFAST, 1 << 20) == 0);
  /* Numbers that are none of glibc's parameters (glibc 2.36 says 1). */
  const int unknown[] = {0, 5, 6, 12345, -9, -100, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    CHECKF(mallopt(unknown[i], 1) == 0, "mallopt(%d, 1) (no such parameter) is not 0", unknown[i]);
}

/* ---- mallinfo2 and malloc_trim ------------------------------------------------ */
#define N_MID 10
#define MID_SIZE (200 * KB)

static void test_mallinfo2(void) {
  CHECKF(malloc_trim(0) >= 0, "malloc_trim");
  corona_stats s;
  struct mallinfo2 a = mallinfo2();
  if (!CHECK(stats_get(&s) == 0)) return;
  CHECKF(a.arena + a.hblkhd == s.memory_mapped, "arena %zu + hblkhd %zu, corona's memory_mapped %llu", a.arena,
         a.hblkhd, (unsigned long long)s.memory_mapped);
  CHECKF(a.uordblks + a.hblkhd <= s.memory_in_use, "uordblks %zu, corona's memory_in_use %llu",
         a.uordblks, (unsigned long long)s.memory_in_use);
  CHECKF(a.usmblks >= a.uordblks && a.usmblks <= s.peak_memory_in_use, "usmblks %zu (uordblks %zu, peak %llu)",
         a.usmblks, a.uordblks, (unsigned long long)s.peak_memory_in_use);
  CHECKF(a.arena >= a.uordblks + a.fordblks, "arena %zu < uordblks %zu + fordblks %zu", a.arena, a.uordblks,
         a.fordblks);
  CHECKF(a.smblks == 0 && a.fsmblks == 0 && a.keepcost == a.fordblks, "smblks %zu fsmblks %zu keepcost %zu", a.smblks,
         a.fsmblks, a.keepcost);

  void *p[N_MID];
  for (int i = 0; i < N_MID; i++)
    if (!CHECK(touch(p[i] = malloc(MID_SIZE), MID_SIZE) != NULL)) return;
  struct mallinfo2 b = mallinfo2();
  size_t blocks = N_MID * block_of(MID_SIZE, false);
  CHECKF(dz(b.uordblks, a.uordblks) == (long long)blocks, "ten 200 KB objects: uordblks %+lld, want %+lld",
         dz(b.uordblks, a.uordblks), (long long)blocks);
  for (int i = 0; i < N_MID; i++) free(p[i]);
  struct mallinfo2 c = mallinfo2();
  CHECKF(c.uordblks == a.uordblks, "freed: uordblks %zu, before them %zu", c.uordblks, a.uordblks);
  CHECKF(dz(c.fordblks, b.fordblks) == (long long)blocks && dz(c.ordblks, b.ordblks) == N_MID &&
             c.keepcost == c.fordblks,
         "freed: fordblks %+lld (want %+lld), ordblks %+lld (want %d), keepcost %zu", dz(c.fordblks, b.fordblks), (long long)blocks,
         dz(c.ordblks, b.ordblks), N_MID, c.keepcost);
  int r1 = malloc_trim(0);
  struct mallinfo2 d = mallinfo2();
  int r2 = malloc_trim(0);
  CHECKF(r1 == 1 && r2 == 0, "malloc_trim: %d with %zu bytes cached, then %d with none", r1, c.fordblks, r2);
  CHECKF(d.fordblks == 0 && d.ordblks == 0 && d.keepcost == 0, "trimmed: fordblks %zu ordblks %zu keepcost %zu",
         d.fordblks, d.ordblks, d.keepcost);
  CHECKF(d.arena <= c.arena, "trimmed: arena %zu, before %zu", d.arena, c.arena);
}

/* ---- hblks: mappings of their own -------------------------------------------------- */
static void test_hblks(void) {
  malloc_trim(0);
  struct mallinfo2 a = mallinfo2();
  void *big = touch(malloc(8 * MB), 4096);
  if (!CHECK(big != NULL)) return;
  struct mallinfo2 b = mallinfo2();
  size_t bytes = block_of(8 * MB, true);
  /* As glibc counts its mmapped chunks: in hblks and hblkhd, not in arena
   * (beyond the page map's own growth) nor in uordblks. */
  CHECKF(dz(b.hblks, a.hblks) == 1 && dz(b.hblkhd, a.hblkhd) == (long long)bytes,
         "8 MB: hblks %+lld (want +1), hblkhd %+lld (want %+lld)", dz(b.hblks, a.hblks), dz(b.hblkhd, a.hblkhd),
         (long long)bytes);
  CHECKF(dz(b.arena, a.arena) >= 0 && dz(b.arena, a.arena) <= (long long)(1 * MB) && b.uordblks == a.uordblks,
         "8 MB: arena %+lld, uordblks %+lld (want about 0 and 0)", dz(b.arena, a.arena), dz(b.uordblks, a.uordblks));
  free(big);
  /* Freed, it stays cached whole for reuse: free memory of the arena. */
  struct mallinfo2 c = mallinfo2();
  CHECKF(c.hblks == a.hblks && c.hblkhd == a.hblkhd && dz(c.fordblks, b.fordblks) == (long long)bytes &&
             dz(c.arena, b.arena) == (long long)bytes && dz(c.ordblks, b.ordblks) == 1,
         "8 MB freed: hblks %zu hblkhd %zu (before it %zu %zu), fordblks %+lld, arena %+lld, ordblks %+lld", c.hblks,
         c.hblkhd, a.hblks, a.hblkhd, dz(c.fordblks, b.fordblks), dz(c.arena, b.arena), dz(c.ordblks, b.ordblks));
  CHECK(malloc_trim(0) == 1);
  struct mallinfo2 d = mallinfo2();
  CHECKF(d.arena == b.arena && d.hblks == a.hblks && d.hblkhd == a.hblkhd && d.fordblks == 0,
         "trimmed: arena %zu (want %zu) hblks %zu hblkhd %zu fordblks %zu", d.arena, b.arena, d.hblks, d.hblkhd,
         d.fordblks);
}

/* ---- M_MMAP_THRESHOLD ---------------------------------------------------------------- */
/* hblks after malloc(n) minus before; the object stays live in *keep. */
static long long own_after(size_t n, void **keep) {
  size_t before = mallinfo2().hblks;
  *keep = touch(malloc(n), 4096);
  return CHECK(*keep != NULL) ? dz(mallinfo2().hblks, before) : -1;
}

static void test_mmap_threshold(void) {
  malloc_trim(0);
  void *p[5];
  long long d0 = own_after(2 * MB, &p[0]);
  CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1);
  long long d1 = own_after(2 * MB, &p[1]);
  CHECK(mallopt(M_MMAP_THRESHOLD, 16 << 20) == 1);
  long long d2 = own_after(8 * MB, &p[2]);
  CHECK(mallopt(M_MMAP_THRESHOLD, -1) == 1); /* as big as it goes: 16 MB */
  long long d3 = own_after(8 * MB, &p[3]);
  long long d4 = own_after(32 * MB, &p[4]);
  CHECKF(d0 == 0 && d1 == 1 && d2 == 0 && d3 == 0 && d4 == 1,
         "mappings of their own: 2 MB at the default %lld (want 0), at 1 MB %lld (want 1); 8 MB at 16 MB %lld and "
         "at -1 %lld (want 0); 32 MB at -1 %lld (want 1)",
         d0, d1, d2, d3, d4);
  restore_options();
  /* Blocks made under another threshold resize and move whole: the 8 MB
   * one in a region grows into a mapping of its own, the 2 MB one with its
   * own mapping shrinks in it. */
  size_t h0 = mallinfo2().hblks;
  void *grown = realloc(p[2], 9 * MB), *shrunk = realloc(p[1], 1 * MB);
  CHECKF(grown != NULL && shrunk != NULL && dz(mallinfo2().hblks, h0) == 1,
         "realloc across the threshold: hblks %+lld (want +1)", dz(mallinfo2().hblks, h0));
  const unsigned char *g = grown, *k = shrunk;
  bool kept = grown != NULL && shrunk != NULL;
  for (size_t i = 0; kept && i < 4096; i++) kept = g[i] == 0x5a && k[i] == 0x5a;
  CHECKF(kept, "realloc across the threshold: contents lost");
  p[2] = grown;
  p[1] = shrunk;
  for (int i = 0; i < 5; i++) free(p[i]);
  malloc_trim(0);
}

/* ---- M_TRIM_THRESHOLD and M_TOP_PAD ----------------------------------------------- */
#define N_CHURN 64
#define CHURN_SIZE (256 * KB)

/* 64 objects of 256 KB, touched, then freed: the most fordblks showed
 * during the frees, and RSS growth after them.  (At the end the backend may
 * have purged whole runs of free pages below its budget: the peak is what
 * the budget allowed.) */
static void churn(size_t *cached, long long *kept_rss) {
  malloc_trim(0);
  size_t r0 = rss();
  static void *p[N_CHURN];
  for (int i = 0; i < N_CHURN; i++) touch(p[i] = malloc(CHURN_SIZE), CHURN_SIZE);
  *cached = 0;
  for (int i = 0; i < N_CHURN; i++) {
    free(p[i]);
    size_t now = mallinfo2().fordblks;
    if (now > *cached) *cached = now;
  }
  *kept_rss = dz(rss(), r0);
}

static void test_trim_threshold(void) {
  size_t all = N_CHURN * block_of(CHURN_SIZE, false), def, zero, pad;
  long long rss_def, rss_zero, rss_pad;
  churn(&def, &rss_def);
  CHECK(mallopt(M_TRIM_THRESHOLD, 0) == 1);
  churn(&zero, &rss_zero);
  CHECK(mallopt(M_TOP_PAD, 8 << 20) == 1);
  churn(&pad, &rss_pad);
  restore_options();
  malloc_trim(0);
  printf("    16 MB freed: at most %zu KB cached, RSS then %+lld KB (default); %zu KB, %+lld KB (M_TRIM_THRESHOLD 0); "
         "%zu KB, %+lld KB (and M_TOP_PAD 8 MB)\n",
         def / KB, rss_def / 1024, zero / KB, rss_zero / 1024, pad / KB, rss_pad / 1024);
  /* Default: all of it stays for reuse.  0: what the large-object caches
   * hold (a thread's 4 MB, the heap's share) and a quarter of the live heap
   * (at most 4 MB here, early on).  8 MB of pad: up to that much more. */
  CHECKF(def == all, "default: at most %zu bytes cached, want all %zu", def, all);
  CHECKF(zero <= 9 * MB, "M_TRIM_THRESHOLD 0: %zu bytes cached, want at most 9 MB", zero);
  CHECKF(pad >= zero + 5 * MB && pad <= zero + 9 * MB, "M_TOP_PAD 8 MB: %zu bytes cached (with 0 pad: %zu)", pad,
         zero);
  CHECKF(rss_def - rss_zero >= (long long)(8 * MB), "RSS kept: %lld KB by default, %lld KB at M_TRIM_THRESHOLD 0",
         rss_def / 1024, rss_zero / 1024);
}

/* ---- mallinfo (int fields) ------------------------------------------------------------- */
static void test_mallinfo(void) {
  malloc_trim(0);
  void *live = touch(malloc(300 * KB), 300 * KB);
  struct mallinfo2 w = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
  CHECKF((size_t)m.arena == w.arena && (size_t)m.ordblks == w.ordblks && (size_t)m.hblks == w.hblks &&
             (size_t)m.hblkhd == w.hblkhd && (size_t)m.uordblks == w.uordblks && (size_t)m.fordblks == w.fordblks &&
             (size_t)m.keepcost == w.keepcost && (size_t)m.usmblks == w.usmblks && m.smblks == 0 && m.fsmblks == 0,
         "mallinfo %d/%d/%d/%d differs from mallinfo2 %zu/%zu/%zu/%zu", m.arena, m.hblkhd, m.uordblks, m.fordblks,
         w.arena, w.hblkhd, w.uordblks, w.fordblks);
  free(live);
  /* 3 GB, never touched: bigger than an int. */
  void *huge = malloc((size_t)3 << 30);
  if (huge == NULL) {
    printf("    (no 3 GB mapping here: the saturation is not checked)\n");
    return;
  }
  sink = huge;
  w = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  m = mallinfo();
#pragma GCC diagnostic pop
  CHECKF(w.hblkhd >= ((size_t)3 << 30) && w.usmblks >= ((size_t)3 << 30), "3 GB: mallinfo2 hblkhd %zu usmblks %zu",
         w.hblkhd, w.usmblks);
  CHECKF(m.hblkhd == INT_MAX && m.usmblks == INT_MAX, "3 GB: mallinfo hblkhd %d usmblks %d, want INT_MAX (%d)",
         m.hblkhd, m.usmblks, INT_MAX);
  CHECKF((size_t)m.arena == w.arena && (size_t)m.uordblks == w.uordblks && m.hblks == (int)w.hblks &&
             (size_t)m.fordblks == w.fordblks,
         "3 GB: the small fields differ: arena %d uordblks %d hblks %d", m.arena, m.uordblks, m.hblks);
  free(huge);
  malloc_trim(0);
}

/* ---- malloc_stats ------------------------------------------------------------------ */
static char text[65536];

static size_t slurp(FILE *f) {
  fflush(f);
  rewind(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  return n;
}

/* The number after "  label" at the start of a line of text, or -1. */
static long long row(const char *label) {
  char k[80];
  snprintf(k, sizeof k, "\n  %s ", label);
  const char *p = strstr(text, k);
  return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static void test_malloc_stats(void) {
  void *big = touch(malloc(100 * KB), 64);
  FILE *f = tmpfile();
  if (!CHECK(f != NULL && big != NULL)) return;
  fflush(stderr);
  int saved = dup(2);
  if (!CHECK(saved >= 0 && dup2(fileno(f), 2) == 2)) return;
  corona_stats s;
  int rc = stats_get(&s);
  malloc_stats();
  dup2(saved, 2);
  close(saved);
  slurp(f);
  fclose(f);
  char head[256];
  snprintf(head, sizeof head, "corona statistics: %s (pid %d)\n", program_invocation_short_name, (int)getpid());
  CHECKF(rc == 0 && strncmp(text, head, strlen(head)) == 0, "malloc_stats: does not start with \"%s\":\n%s", head,
         text);
  CHECKF(row("large objects live") == (long long)s.large_objects && s.large_objects >= 1 &&
             row("memory mapped (bytes)") == (long long)s.memory_mapped &&
             row("large allocations") == (long long)s.large_allocations,
         "malloc_stats: figures differ from corona_stats_get:\n%s", text);
  free(big);
}

/* ---- malloc_info ------------------------------------------------------------------ */
typedef struct xml_s {
  unsigned long long rest_count, rest_size, mmap_count, mmap_size, current, max, total, mprotect;
  unsigned long long class_count[64], class_to[64], class_total[64], class_from[64];
  int classes;
} xml_t;

/* Reads `text` as glibc's malloc_info schema (one or more heaps, then the
 * totals), line by line; fills *x from the totals and the first heap's
 * sizes.  Returns false, with a message, at the first line that breaks it. */
static bool parse_malloc_info(const char *t, xml_t *x, const char *what) {
  memset(x, 0, sizeof *x);
  unsigned long long a, b, c, d;
  int n = 0, heaps = 0;
#define EXPECT(fmt, ...)                                                                                       \
  do {                                                                                                         \
    n = 0;                                                                                                     \
    sscanf(t, fmt "\n%n", __VA_ARGS__, &n);                                                                   \
    if (!CHECKF(n > 0, "%s: want \"%s\" at: %.80s", what, fmt, t)) return false;                               \
    t += n;                                                                                                    \
  } while (0)
#define EXPECT_LINE(line)                                                                                      \
  do {                                                                                                         \
    if (!CHECKF(strncmp(t, line "\n", strlen(line) + 1) == 0, "%s: want \"%s\" at: %.80s", what, line, t))     \
      return false;                                                                                            \
    t += strlen(line) + 1;                                                                                     \
  } while (0)
  EXPECT_LINE("<malloc version=\"1\">");
  while (strncmp(t, "<heap nr=\"", 10) == 0) {
    int nr = -1;
    EXPECT("<heap nr=\"%d\">", &nr);
    CHECKF(nr == heaps, "%s: heap %d numbered %d", what, heaps, nr);
    EXPECT_LINE("<sizes>");
    for (;;) {
      n = 0;
      if (sscanf(t, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n%n", &a, &b, &c, &d, &n) == 4 &&
          n > 0) {
        if (!CHECKF(a <= b && d > 0 && c >= a * d && c <= b * d, "%s: size from %llu to %llu total %llu count %llu",
                    what, a, b, c, d))
          return false;
        if (heaps == 0 && x->classes < 64) {
          x->class_from[x->classes] = a;
          x->class_to[x->classes] = b;
          x->class_total[x->classes] = c;
          x->class_count[x->classes++] = d;
        }
        t += n;
        continue;
      }
      n = 0;
      if (sscanf(t, "  <unsorted from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n%n", &a, &b, &c, &d, &n) ==
              4 &&
          n > 0) {
        t += n;
        continue;
      }
      break;
    }
    EXPECT_LINE("</sizes>");
    EXPECT("<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>", &a, &b);
    EXPECT("<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>", &a, &b);
    EXPECT("<system type=\"current\" size=\"%llu\"/>", &a);
    EXPECT("<system type=\"max\" size=\"%llu\"/>", &b);
    CHECKF(b >= a, "%s: heap %d: system max %llu < current %llu", what, heaps, b, a);
    EXPECT("<aspace type=\"total\" size=\"%llu\"/>", &a);
    EXPECT("<aspace type=\"mprotect\" size=\"%llu\"/>", &a);
    if (strncmp(t, "<aspace type=\"subheaps\"", 23) == 0) /* glibc's arenas other than the first */
      EXPECT("<aspace type=\"subheaps\" size=\"%llu\"/>", &a);
    EXPECT_LINE("</heap>");
    heaps++;
  }
  CHECKF(heaps >= 1, "%s: no heap", what);
  EXPECT("<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>", &a, &b);
  EXPECT("<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>", &x->rest_count, &x->rest_size);
  EXPECT("<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>", &x->mmap_count, &x->mmap_size);
  EXPECT("<system type=\"current\" size=\"%llu\"/>", &x->current);
  EXPECT("<system type=\"max\" size=\"%llu\"/>", &x->max);
  EXPECT("<aspace type=\"total\" size=\"%llu\"/>", &x->total);
  EXPECT("<aspace type=\"mprotect\" size=\"%llu\"/>", &x->mprotect);
  EXPECT_LINE("</malloc>");
#undef EXPECT
#undef EXPECT_LINE
  return CHECKF(*t == '\0', "%s: after </malloc>: %.80s", what, t);
}

#define N_INFO 1000

static void test_malloc_info(void) {
  if (!CHECK(alloc_mode(CORONA_COUNT_CALLS, 1) == 0)) return; /* per-class counts */
  static void *p[N_INFO];
  for (int i = 0; i < N_INFO; i++) touch(p[i] = malloc(100), 100);
  void *big = touch(malloc(8 * MB), 4096);
  static char fbuf[65536];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL && big != NULL)) return;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf); /* no allocation from here on */
  corona_stats s;
  int rc = stats_get(&s);
  struct mallinfo2 m = mallinfo2();
  errno = 0;
  int r = malloc_info(0, f);
  int e = errno;
  long at = ftell(f);
  int bad = malloc_info(1, f);
  long after = ftell(f);
  slurp(f);
  fclose(f);
  CHECKF(r == 0 && e == 0 && bad == EINVAL && after == at && rc == 0,
         "malloc_info(0) = %d (errno %d), malloc_info(1) = %d and wrote %ld bytes", r, e, bad, after - at);
  xml_t x;
  if (!parse_malloc_info(text, &x, "corona's malloc_info")) {
    printf("%s", text);
    return;
  }
  CHECKF(x.current == m.arena && x.total == m.arena && x.mprotect == m.arena && x.max >= x.current,
         "malloc_info: system %llu/%llu, aspace %llu/%llu; mallinfo2 arena %zu", x.current, x.max, x.total, x.mprotect,
         m.arena);
  CHECKF(x.rest_count == m.ordblks && x.rest_size == m.fordblks && x.mmap_count == m.hblks &&
             x.mmap_size == m.hblkhd && m.hblks >= 1,
         "malloc_info: rest %llu/%llu mmap %llu/%llu; mallinfo2 %zu/%zu %zu/%zu", x.rest_count, x.rest_size,
         x.mmap_count, x.mmap_size, m.ordblks, m.fordblks, m.hblks, m.hblkhd);
  /* One entry per class with live objects, as corona_stats_get counts them. */
  int want = 0;
  unsigned long long prev = 0;
  for (int b = 0; b < CORONA_STATS_BINS; b++) {
    const corona_bin_stats *k = &s.bins[b];
    if (k->active != 0) {
      bool found = false;
      for (int i = 0; i < x.classes; i++)
        if (x.class_to[i] == k->object_size)
          found = CHECKF(x.class_from[i] == prev + 1 && x.class_count[i] == k->active &&
                             x.class_total[i] == k->active * k->object_size,
                         "malloc_info: class %llu: from %llu count %llu total %llu; corona: %llu live",
                         (unsigned long long)k->object_size, x.class_from[i], x.class_count[i], x.class_total[i],
                         (unsigned long long)k->active);
      CHECKF(found, "malloc_info: no entry for class %llu (%llu live)", (unsigned long long)k->object_size,
             (unsigned long long)k->active);
      want++;
    }
    prev = k->object_size;
  }
  CHECKF(x.classes == want && s.bins[6].active >= N_INFO, "malloc_info: %d size entries, %d classes live (112 B: %llu)",
         x.classes, want, (unsigned long long)s.bins[6].active);
  for (int i = 0; i < N_INFO; i++) free(p[i]);
  free(big);
  malloc_trim(0);
}

/* ---- glibc itself ------------------------------------------------------------------ */
/* Without corona: glibc's own malloc_info passes the same schema check, and
 * its mallopt answers as test_mallopt's comments say. */
static int glibc_mode(void) {
  if (!CHECKF(stats_get == NULL, "--glibc: corona is loaded")) return tu_finish("introspect --glibc", 0);
  void *p[200];
  for (int i = 0; i < 200; i++) touch(p[i] = malloc((size_t)(i * 37 + 1)), 1);
  for (int i = 0; i < 200; i += 3) free(p[i]);
  void *big = touch(malloc(300 * KB), 1); /* mmapped by glibc */
  static char fbuf[65536];
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return 1;
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
  CHECK(malloc_info(0, f) == 0 && malloc_info(1, f) == EINVAL);
  slurp(f);
  fclose(f);
  xml_t x;
  if (!parse_malloc_info(text, &x, "glibc's malloc_info")) printf("%s", text);
  CHECKF(x.mmap_count >= 1 && x.classes >= 1, "glibc's malloc_info: %llu mmapped, %d size entries", x.mmap_count,
         x.classes);
  CHECK(mallopt(M_MXFAST, 161) == 0 && mallopt(M_MXFAST, 160) == 1 && mallopt(M_ARENA_MAX, 4) == 1);
  printf("  glibc's mallopt(12345, 1) = %d (corona: 0)\n", mallopt(12345, 1));
  free(big);
  for (int i = 0; i < 200; i++)
    if (i % 3) free(p[i]);
  return tu_finish("introspect --glibc", 0);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  find_corona();
  if (argc >= 2 && strcmp(argv[1], "--glibc") == 0) return glibc_mode();
  /* A small object first: this thread's caches exist, as in any program
   * that has used stdio (the large-object counts below depend on them). */
  touch(malloc(64), 64);
  if (!CHECKF(stats_get != NULL && alloc_mode != NULL,
              "corona is not loaded (no corona_stats_get): glibc answers its own names")) return tu_finish("introspect", t0);
  static const tu_part_t parts[] = {
      {"mallopt", test_mallopt},
      {"mallinfo2", test_mallinfo2},
      {"hblks", test_hblks},
      {"mmap_threshold", test_mmap_threshold},
      {"trim_threshold", test_trim_threshold},
      {"mallinfo", test_mallinfo},
      {"malloc_stats", test_malloc_stats},
      {"malloc_info", test_malloc_info},
  };
  tu_run_parts(argc, argv, parts, sizeof parts / sizeof parts[0], 16);
  return tu_finish("introspect", t0);
}
