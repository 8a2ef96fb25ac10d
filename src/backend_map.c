/* backend_map.c (layer: backend) — a large region's page maps: the dirty
 * map's summaries (dirty_any, dirty_full) and its index of maximal dirty
 * runs by length (cr_region_t), which make the best fit among resident free
 * pages a look at one bin or two; the searches of the free map.  Under
 * the backend's lock, as everything of a region. */
#include "internal/backend_map.h"
#include "internal/report.h"

/* ---- the dirty map and its summary (lock(backend->lock)) -------------------
 * dirty_any has bit w set when dirty_map[w] has a bit set, dirty_full when
 * all 64 are: cr_dirty_find jumps over empty words and through the full
 * words of a long run with one count of trailing zeros (the ends of runs,
 * for the index and the purges). */
_Static_assert(CR_REGION_WORDS <= 64, "one summary bit per word of a region's map");

/* ---- the index of a large region's dirty runs (see cr_region_t) ---------- */

static void run_link(cr_region_t *r, size_t start, size_t len) {
  unsigned b = cr_run_bin(len);
  uint16_t self = (uint16_t)(start + 1), head = r->runs->head[b];
  r->runs->link[start].len = (uint16_t)len;
  r->runs->link[start].prev = 0;
  r->runs->link[start].next = head;
  if (head != 0) r->runs->link[head - 1].prev = self;
  r->runs->head[b] = self;
  r->run_bins |= (uint64_t)1 << b;
}

static void run_unlink(cr_region_t *r, size_t start) {
  unsigned b = cr_run_bin(r->runs->link[start].len);
  uint16_t prev = r->runs->link[start].prev, next = r->runs->link[start].next;
  if (prev != 0) r->runs->link[prev - 1].next = next;
  else if ((r->runs->head[b] = next) == 0) r->run_bins &= ~((uint64_t)1 << b);
  if (next != 0) r->runs->link[next - 1].prev = prev;
}

/* The first page of the run of set bits in m that ends at page p (p's own
 * bit not read): the page after the last clear bit below p, else 0. */
static size_t run_begin(const uint64_t *m, size_t p) {
  size_t w = p >> 6;
  uint64_t clear = ~m[w] & (((uint64_t)1 << (p & 63)) - 1); /* below p in its word */
  while (clear == 0) {
    if (w == 0) return 0;
    clear = ~m[--w];
  }
  return w * 64 + (size_t)(63 - __builtin_clzll(clear)) + 1;
}

/* The first page of the dirty run holding dirty page p. */
static size_t run_start(const cr_region_t *r, size_t p) { return run_begin(r->dirty_map, p); }

/* Keeps the index as [from, from + n) turns dirty (on: none of it was) or
 * clean (any of it may have been). */
static void runs_update(cr_region_t *r, size_t from, size_t n, bool on) {
  size_t end = from + n;
  if (on) { /* the new run, joined with the runs just before and after it */
    size_t start = from;
    if (from > 0 && cr_bit_get(r->dirty_map, from - 1)) run_unlink(r, start = run_start(r, from - 1));
    if (end < CR_REGION_PAGES && cr_bit_get(r->dirty_map, end)) {
      size_t len = r->runs->link[end].len;
      run_unlink(r, end);
      end += len;
    }
    run_link(r, start, end - start);
    return;
  }
  /* Every run meeting the range leaves; what lies outside it comes back. */
  size_t s = cr_bit_get(r->dirty_map, from) ? run_start(r, from) : cr_dirty_find(r, from, true);
  while (s < end) {
    size_t e = s + r->runs->link[s].len;
    run_unlink(r, s);
    if (s < from) run_link(r, s, from - s);
    if (e > end) run_link(r, end, e - end);
    s = e < end ? cr_dirty_find(r, e, true) : end;
  }
}

#if CR_SELF_CHECK
/* The index holds exactly the maximal runs of the dirty map, each in its
 * length's bin, the lists well linked; else a fatal error. */
static void runs_verify(const cr_region_t *r) {
  size_t runs = 0, listed = 0;
  for (size_t s = cr_dirty_find(r, 0, true); s < CR_REGION_PAGES; runs++) s = cr_dirty_find(r, cr_dirty_find(r, s, false), true);
  for (unsigned b = 0; b < CR_RUN_BINS; b++) {
    if ((r->runs->head[b] != 0) != (((r->run_bins >> b) & 1) != 0)) cr_fatal("backend: dirty run bins disagree, region", r->base);
    uint16_t prev = 0;
    for (uint16_t i = r->runs->head[b]; i != 0; prev = i, i = r->runs->link[i - 1].next) {
      size_t s = i - 1, len = r->runs->link[s].len;
      bool ok = listed++ < runs && r->runs->link[s].prev == prev && len > 0 && s + len <= CR_REGION_PAGES &&
                cr_run_bin(len) == b && cr_bit_get(r->dirty_map, s) && (s == 0 || !cr_bit_get(r->dirty_map, s - 1)) &&
                cr_dirty_find(r, s, false) == s + len;
      if (!ok) cr_fatal("backend: dirty run index wrong at page of region", r->base + s * CORONA_PAGE_SIZE);
    }
  }
  if (listed != runs) cr_fatal("backend: dirty runs missing from the index, region", r->base);
}
#endif

void cr_dirty_set(cr_region_t *r, size_t from, size_t n, bool on) {
  if (n == 0) return;
  if (r->kind == CR_REGION_LARGE) runs_update(r, from, n, on); /* before the map changes: it reads the old one */
  cr_bits_set(r->dirty_map, from, n, on);
  for (size_t w = from >> 6; w <= (from + n - 1) >> 6; w++) {
    uint64_t bit = (uint64_t)1 << w, word = r->dirty_map[w];
    r->dirty_any = word != 0 ? r->dirty_any | bit : r->dirty_any & ~bit;
    r->dirty_full = word == ~(uint64_t)0 ? r->dirty_full | bit : r->dirty_full & ~bit;
  }
#if CR_SELF_CHECK
  if (r->kind == CR_REGION_LARGE) runs_verify(r);
#endif
}

/* bit_find on r's dirty map, through its summary. */
size_t cr_dirty_find(const cr_region_t *r, size_t from, bool want) {
  uint64_t words = want ? r->dirty_any : ~r->dirty_full; /* the words that may hold a wanted bit */
  while (from < CR_REGION_PAGES) {
    size_t w = from >> 6;
    uint64_t word = want ? r->dirty_map[w] : ~r->dirty_map[w];
    word &= ~(uint64_t)0 << (from & 63);
    if (word != 0) return w * 64 + (size_t)__builtin_ctzll(word);
    uint64_t later = w + 1 < 64 ? words & (~(uint64_t)0 << (w + 1)) : 0;
    if (later == 0) break;
    from = (size_t)__builtin_ctzll(later) * 64;
  }
  return CR_REGION_PAGES;
}

/* Start of the smallest run of at least n dirty pages in r, *len its
 * length; CR_REGION_PAGES when there is none.  Only the bin of n can hold
 * shorter runs: the first bin above it that is not empty holds the best
 * fit.  The scan of every run of every region, at each allocation, was
 * most of the instructions of a churn of 8 KiB..2 MiB objects
 * (suite-buffers mid). */
size_t cr_dirty_best_run(const cr_region_t *r, size_t n, size_t *len) {
  unsigned b = cr_run_bin(n);
  for (uint64_t bins = r->run_bins & (~(uint64_t)0 << b); bins != 0; bins &= bins - 1) {
    size_t best = CR_REGION_PAGES, best_len = SIZE_MAX;
    for (uint16_t i = r->runs->head[__builtin_ctzll(bins)]; i != 0; i = r->runs->link[i - 1].next) {
      size_t l = r->runs->link[i - 1].len;
      if (l >= n && l < best_len) {
        best = i - 1, best_len = l;
        if (l == n) break;
      }
    }
    if (best < CR_REGION_PAGES) {
      *len = best_len;
      return best;
    }
  }
  *len = SIZE_MAX;
  return CR_REGION_PAGES;
}

size_t cr_dirty_mixed_fit(const cr_region_t *r, size_t n, size_t *covered) {
  size_t best = CR_REGION_PAGES, best_cov = 0, looked = 0;
  for (uint64_t bins = r->run_bins; bins != 0 && looked < CORONA_MIXED_FIT_RUNS;) {
    unsigned b = 63u - (unsigned)__builtin_clzll(bins);
    bins &= ~((uint64_t)1 << b);
    for (uint16_t i = r->runs->head[b]; i != 0 && looked < CORONA_MIXED_FIT_RUNS; i = r->runs->link[i - 1].next, looked++) {
      size_t s = i - 1, e = s + r->runs->link[s].len;
      size_t hi = cr_bit_find(r->free_map, e, false), lo = run_begin(r->free_map, s);
      if (hi - lo < n) continue; /* the free pages around the run are too few */
      /* The block from the run's start, else ending at its end, kept in [lo, hi). */
      size_t tries[2] = {s + n <= hi ? s : hi - n, e >= lo + n ? e - n : lo};
      for (int t = 0; t < 2; t++) {
        size_t cov = cr_bits_count(r->dirty_map, tries[t], n);
        if (cov > best_cov) best_cov = cov, best = tries[t];
      }
    }
  }
  *covered = best_cov;
  return best;
}

/* Start of the first run of n set bits in map (the free map, or the dirty
 * map: dirty pages are free) that begins at a multiple of align, or
 * CR_REGION_PAGES. */
size_t cr_bits_find_run(const uint64_t *map, size_t n, size_t align, size_t skew) {
  for (size_t start = cr_bit_find(map, 0, true); start < CR_REGION_PAGES;) {
    size_t end = cr_bit_find(map, start, false);
    size_t at = (start + skew + align - 1) / align * align - skew;
    if (at + n <= end) return at;
    start = cr_bit_find(map, end, true);
  }
  return CR_REGION_PAGES;
}

size_t cr_bits_count(const uint64_t *m, size_t from, size_t n) {
  if (n == 0) return 0;
  size_t c = 0, end = from + n;
  for (size_t w = from >> 6; w <= (end - 1) >> 6; w++) c += cr_popcount64(m[w] & cr_word_mask(w, from, end));
  return c;
}
