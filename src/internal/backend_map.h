/* backend_map.h (layer: backend) — a large region's page maps, for the
 * backend's files only: the free and dirty bitmaps (a bit a page), the
 * dirty map's one-word summaries and its index of dirty runs
 * (backend_map.c).  Everything under the backend's lock. */
#ifndef CORONA_BACKEND_MAP_H
#define CORONA_BACKEND_MAP_H
#include "backend.h"

/* ---- bitmaps of large regions -------------------------------------------- */

static inline bool cr_bit_get(const uint64_t *m, size_t i) { return (m[i >> 6] >> (i & 63)) & 1; }

/* The bits of word w that [from, from + n) covers. */
static inline uint64_t cr_word_mask(size_t w, size_t from, size_t end) {
  size_t lo = w * 64 > from ? 0 : from - w * 64, hi = end - w * 64 >= 64 ? 64 : end - w * 64;
  uint64_t m = hi == 64 ? ~(uint64_t)0 : ((uint64_t)1 << hi) - 1;
  return m & (~(uint64_t)0 << lo);
}

/* A word at a time: a 4 MB block is 1024 bits, and a bit at a time showed
 * in profiles of large-object churn. */
static inline void cr_bits_set(uint64_t *m, size_t from, size_t n, bool on) {
  if (n == 0) return;
  size_t end = from + n;
  for (size_t w = from >> 6; w <= (end - 1) >> 6; w++) {
    uint64_t mask = cr_word_mask(w, from, end);
    m[w] = on ? m[w] | mask : m[w] & ~mask;
  }
}

/* First index >= from whose bit equals want, or CR_REGION_PAGES. */
static inline size_t cr_bit_find(const uint64_t *m, size_t from, bool want) {
  while (from < CR_REGION_PAGES) {
    uint64_t w = want ? m[from >> 6] : ~m[from >> 6];
    w &= ~(uint64_t)0 << (from & 63);
    if (w != 0) return (from & ~(size_t)63) + (size_t)__builtin_ctzll(w);
    from = (from | 63) + 1;
  }
  return CR_REGION_PAGES;
}

/* The set bits of x, in line: the builtin is a libgcc call on x86-64
 * without POPCNT (1 % of suite-buffers mid). */
static inline unsigned cr_popcount64(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* The set bits of m in [from, from + n). */
size_t cr_bits_count(const uint64_t *m, size_t from, size_t n);
/* Start of the first run of n set bits in map (the free map, or the dirty
 * map: dirty pages are free) whose start plus skew is a multiple of align,
 * or CR_REGION_PAGES. */
size_t cr_bits_find_run(const uint64_t *map, size_t n, size_t align, size_t skew);

/* Turns r's pages [from, from + n) dirty (on: none of them was) or clean,
 * keeping the summaries and, in a large region, the index of runs. */
void cr_dirty_set(cr_region_t *r, size_t from, size_t n, bool on);
/* First page >= from of r whose dirty bit equals want, or CR_REGION_PAGES. */
size_t cr_dirty_find(const cr_region_t *r, size_t from, bool want);
/* Start of the smallest run of at least n dirty pages of large region r,
 * *len its length; CR_REGION_PAGES when there is none. */
size_t cr_dirty_best_run(const cr_region_t *r, size_t n, size_t *len);
/* For a block of n pages when no run of n dirty pages exists: the start of
 * n free pages of r that cover a dirty run and the free pages around it,
 * the most dirty pages among the placements tried (from the start or to
 * the end of the longest runs, CORONA_MIXED_FIT_RUNS of them); *covered:
 * how many.  CR_REGION_PAGES when no run lies in n free pages. */
size_t cr_dirty_mixed_fit(const cr_region_t *r, size_t n, size_t *covered);
/* The bin of dirty runs of len pages (1 .. CR_REGION_PAGES): exact up to
 * 16, then four a doubling. */
static inline unsigned cr_run_bin(size_t len) {
  if (len <= 16) return (unsigned)len - 1;
  unsigned lg = 63u - (unsigned)__builtin_clzll(len); /* 4 .. 12 */
  return 16 + (lg - 4) * 4 + (unsigned)((len >> (lg - 2)) & 3);
}
/* Whether large region r may hold a dirty run of n pages (its bins). */
static inline bool cr_dirty_may_fit(const cr_region_t *r, size_t n) {
  return (r->run_bins & (~(uint64_t)0 << cr_run_bin(n))) != 0;
}

#endif /* CORONA_BACKEND_MAP_H */
