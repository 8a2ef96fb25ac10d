/* introspect.c (layer: api) — glibc's introspection calls, answered with
 * corona's figures where corona replaces malloc (preloaded or linked, like
 * override.c): monitoring that reads mallinfo2 or malloc_info, and tuning
 * through mallopt or malloc_trim, reach corona instead of an idle glibc
 * heap.  A program linked fully statically would otherwise also pull
 * glibc's malloc.o in for these names, beside corona's malloc.
 *
 *   mallinfo2, mallinfo   cr_heap_figures in glibc's fields (mallinfo's int
 *                         fields saturate at INT_MAX instead of wrapping)
 *   malloc_trim(pad)      corona_collect; 1 when it gave memory back
 *   malloc_stats          corona's table on stderr
 *   malloc_info(0, fp)    the figures as XML in glibc's schema
 *   mallopt(param, value) glibc's parameters: 1 for each, 0 for any other;
 *                         M_TRIM_THRESHOLD, M_TOP_PAD and M_MMAP_THRESHOLD
 *                         set the options of those names
 * None of them allocates, and each takes corona's locks one at a time. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "corona.h"
#include "internal/api.h"
#include "internal/options.h"

#define CR_EXPORT __attribute__((visibility("default")))

/* glibc's <malloc.h> numbers (kept where another C library lacks them). */
#ifndef M_MXFAST
#define M_MXFAST 1
#endif
#ifndef M_NLBLKS
#define M_NLBLKS 2
#endif
#ifndef M_GRAIN
#define M_GRAIN 3
#endif
#ifndef M_KEEP
#define M_KEEP 4
#endif
#ifndef M_TRIM_THRESHOLD
#define M_TRIM_THRESHOLD -1
#endif
#ifndef M_TOP_PAD
#define M_TOP_PAD -2
#endif
#ifndef M_MMAP_THRESHOLD
#define M_MMAP_THRESHOLD -3
#endif
#ifndef M_MMAP_MAX
#define M_MMAP_MAX -4
#endif
#ifndef M_CHECK_ACTION
#define M_CHECK_ACTION -5
#endif
#ifndef M_PERTURB
#define M_PERTURB -6
#endif
#ifndef M_ARENA_TEST
#define M_ARENA_TEST -7
#endif
#ifndef M_ARENA_MAX
#define M_ARENA_MAX -8
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define CR_HAVE_MALLINFO2 1
#else
#define CR_HAVE_MALLINFO2 0
#endif

/* glibc's fields, glibc's relations: arena + hblkhd is everything mapped,
 * uordblks + hblkhd everything in use.  arena: bytes mapped (heap and
 * metadata) less the mappings of live objects that have one of their own;
 * hblks, hblkhd: those mappings (the objects above MMAP_THRESHOLD);
 * uordblks: in use besides them (slab blocks holding objects, large
 * objects in regions); fordblks, ordblks: the free memory and blocks kept
 * cached for reuse (cached own mappings included); keepcost: what
 * malloc_trim would give back, all of fordblks; usmblks: the peak in use
 * (glibc's historical meaning; glibc now leaves it 0).  No fastbins:
 * smblks and fsmblks are 0. */
typedef struct glibc_fields_s {
  size_t arena, ordblks, hblks, hblkhd, usmblks, uordblks, fordblks, keepcost;
} glibc_fields_t;

static glibc_fields_t glibc_fields(void) {
  cr_heap_figures_t f;
  cr_heap_figures(&f);
  return (glibc_fields_t){.arena = f.mapped - f.own_bytes,
                          .ordblks = f.cached_blocks,
                          .hblks = f.own_count,
                          .hblkhd = f.own_bytes,
                          .usmblks = f.peak_in_use,
                          .uordblks = f.in_use - f.own_bytes,
                          .fordblks = f.cached,
                          .keepcost = f.cached};
}

#if CR_HAVE_MALLINFO2
CR_EXPORT struct mallinfo2 mallinfo2(void) {
  glibc_fields_t g = glibc_fields();
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = g.arena;
  m.ordblks = g.ordblks;
  m.hblks = g.hblks;
  m.hblkhd = g.hblkhd;
  m.usmblks = g.usmblks;
  m.uordblks = g.uordblks;
  m.fordblks = g.fordblks;
  m.keepcost = g.keepcost;
  return m;
}
#endif

#ifdef __GLIBC__
static int saturate(size_t v) { return v > (size_t)INT_MAX ? INT_MAX : (int)v; }

/* The same figures in ints: above 2 GiB, INT_MAX (glibc's wrap). */
CR_EXPORT struct mallinfo mallinfo(void) {
  glibc_fields_t g = glibc_fields();
  struct mallinfo m;
  memset(&m, 0, sizeof m);
  m.arena = saturate(g.arena);
  m.ordblks = saturate(g.ordblks);
  m.hblks = saturate(g.hblks);
  m.hblkhd = saturate(g.hblkhd);
  m.usmblks = saturate(g.usmblks);
  m.uordblks = saturate(g.uordblks);
  m.fordblks = saturate(g.fordblks);
  m.keepcost = saturate(g.keepcost);
  return m;
}
#endif

/* pad is not kept: everything cached goes back, as glibc gives back the
 * free pages inside its heap whatever pad says (it keeps pad bytes only at
 * the top of its main heap).  1 when bytes went back to the OS meanwhile:
 * purged or unmapped, by this call or by another thread's release. */
CR_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  cr_init();
  uint64_t before = cr_load_relaxed(&cr_default_pool.backend.released);
  corona_collect();
  return cr_load_relaxed(&cr_default_pool.backend.released) > before;
}

CR_EXPORT void malloc_stats(void) { corona_stats_print(stderr); }

#define XML_APPEND(buf, n, ...)                                             \
  do {                                                                      \
    int k_ = snprintf((buf) + (n), sizeof(buf) - (n), __VA_ARGS__);         \
    if (k_ > 0) (n) += (size_t)k_ < sizeof(buf) - (n) ? (size_t)k_ : sizeof(buf) - (n) - 1; \
  } while (0)

/* glibc's schema, one heap.  Its <size> entries list free chunks by size;
 * corona's list the live objects of each size class (from one byte past
 * the class below to the class's size; while calls on small objects are
 * counted, else none).  "rest" is the cached free memory (fordblks), "mmap"
 * the live objects' own mappings (hblkhd), "current" and the aspaces the
 * rest of the mapped bytes (arena), "max" the peak of all mapped bytes.
 * options other than 0: EINVAL, as glibc. */
CR_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0 || fp == NULL) return EINVAL;
  cr_heap_figures_t f;
  cr_heap_figures(&f);
  size_t arena = f.mapped - f.own_bytes;
  corona_stats s;
  bool classes = corona_stats_get(&s) == 0 && s.counting;
  char buf[8192];
  size_t n = 0;
  XML_APPEND(buf, n, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
  for (unsigned bin = 0; bin < CORONA_STATS_BINS && classes; bin++) {
    const corona_bin_stats *b = &s.bins[bin];
    if (b->active == 0) continue;
    unsigned long long from = bin == 0 ? 1 : (unsigned long long)s.bins[bin - 1].object_size + 1;
    XML_APPEND(buf, n, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n", from,
               (unsigned long long)b->object_size, (unsigned long long)(b->active * b->object_size),
               (unsigned long long)b->active);
  }
  for (int whole = 0; whole < 2; whole++) {
    if (whole == 0) XML_APPEND(buf, n, "</sizes>\n");
    XML_APPEND(buf, n, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
    XML_APPEND(buf, n, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", f.cached_blocks, f.cached);
    if (whole) XML_APPEND(buf, n, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", f.own_count, f.own_bytes);
    XML_APPEND(buf, n, "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n", arena,
               f.peak_mapped);
    XML_APPEND(buf, n, "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n", arena,
               arena);
    XML_APPEND(buf, n, whole ? "</malloc>\n" : "</heap>\n");
  }
  fwrite(buf, 1, n, fp); /* after the figures: fwrite may allocate */
  return 0;
}

/* A negative value is a huge one to glibc (it reads it as a size_t): here
 * the largest the option takes. */
static int64_t bytes_of(int value) { return value < 0 ? INT64_MAX : (int64_t)value; }

/* glibc (2.36) answers 1 for any parameter, its own or not, and 0 only for
 * an M_MXFAST out of its range; corona answers 0 for a number that is none
 * of glibc's parameters, so that a program can tell.  Without a corona
 * counterpart, accepted with no effect: M_MXFAST (no fastbins; the
 * per-thread bins serve every class), M_MMAP_MAX (mappings of their own
 * are not counted out), M_ARENA_MAX and M_ARENA_TEST (no arenas: each
 * thread has its own bins), M_CHECK_ACTION (a detected misuse always
 * aborts with a line naming it), M_PERTURB (MALLOC_DEBUG=1 fills new and
 * freed memory), and glibc's unused M_NLBLKS, M_GRAIN, M_KEEP. */
CR_EXPORT int mallopt(int param, int value) {
  cr_init();
  switch (param) {
    case M_TRIM_THRESHOLD:
      return cr_option_set(CR_OPT_TRIM_THRESHOLD, bytes_of(value));
    case M_TOP_PAD:
      return cr_option_set(CR_OPT_TOP_PAD, bytes_of(value));
    case M_MMAP_THRESHOLD:
      return cr_option_set(CR_OPT_MMAP_THRESHOLD, bytes_of(value));
    case M_MXFAST: /* glibc's range: up to 80 * sizeof(size_t) / 4 */
      return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
    case M_NLBLKS:
    case M_GRAIN:
    case M_KEEP:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
      return 1;
    default:
      return 0;
  }
}
