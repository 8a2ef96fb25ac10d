/* fastpath.h (layer: api) — the malloc and free fast paths, in one place,
 * top-down: the size class and the thread's bins (malloc), then the page
 * map, the active-block test and the push (free), and where each miss
 * goes.  corona_* (frontend.c) and the standard names (override.c) both
 * inline these. */
#ifndef CORONA_FASTPATH_H
#define CORONA_FASTPATH_H

#include "api.h"

/* ---- malloc ---------------------------------------------------------------- */

/* malloc of size <= CORONA_MAX_SMALL: pop the bin's list, else the slow path
 * (which swaps in the local list or refills from the active block's bump
 * area or free list).  No lock, no atomic read-modify-write, no block
 * header touched. */
CR_INLINE void *cr_malloc_small_tls(cr_tls_t *tls, size_t size) {
  void **list = &tls->bins.free[cr_row_index(size)];
  void *p = *list;
  if (cr_likely(p != NULL)) {
    void *next = *(void **)p;
    *list = next;
    cr_free_mark_clear(p);
    /* The next pop of this bin reads next's link: start that load now.
     * Objects of a reused block were freed long ago and are rarely still
     * cached; the prefetch hides the miss behind the caller's work (a
     * prefetch of NULL is harmless). */
    __builtin_prefetch(next);
    return p;
  }
  return cr_malloc_miss(tls, size); /* not the bin: the fast path need not keep it */
}

CR_INLINE void *cr_malloc_small(size_t size) { return cr_malloc_small_tls(cr_tls_get(), size); }

/* malloc and calloc, inlined into both corona_* and the standard names (a
 * call between them would go through the PLT: corona_* are exported). */
void *cr_large_entry(size_t size, size_t alignment, bool zero);
void *cr_calloc_other(size_t count, size_t size); /* overflow, large, or the slow path */

CR_INLINE void *cr_malloc_inline(size_t size) {
  if (cr_likely(size <= CORONA_MAX_SMALL)) return cr_malloc_small(size);
  return cr_large_entry(size, 0, false);
}

/* The small fast path pops and clears in line; anything else goes out. */
CR_INLINE void *cr_calloc_inline(size_t count, size_t size) {
  size_t total;
  if (cr_likely(!__builtin_mul_overflow(count, size, &total) && total <= CORONA_MAX_SMALL)) {
    void **list = &cr_tls_get()->bins.free[cr_row_index(total)];
    void *p = *list;
    if (cr_likely(p != NULL)) {
      *list = *(void **)p;
      cr_free_mark_clear(p); /* total may be under 16 bytes */
      __builtin_memset(p, 0, total);
      return p;
    }
  }
  return cr_calloc_other(count, size);
}

/* ---- free ------------------------------------------------------------------
 * One page-map load decides small (and its bin) / large / foreign.
 * An object of this thread's active block for that bin goes straight back on
 * the bin list (no block header touched: the bin's block being this one
 * proves we own it); an object of another block we own goes on that block's
 * free list; anything else is a remote free. */
/* Any kind the page map holds: true when p, an object of this thread's
 * active block for its class, went straight back on the bin's local list.
 * The bin's mask keeps the bits below the class's alignment: a pointer not
 * at that alignment never equals the active block (nor the
 * CR_BLOCK_NEVER), so a misaligned pointer, and any interior pointer of a
 * power-of-two class, is left to the checks of cr_free_to_other_block, and so
 * is an object that already carries the free mark (a double free).  The
 * interior pointers that do match (classes that are not powers of two) are
 * caught before anything is handed out from the local list
 * (cr_malloc_small_slow). */
CR_INLINE bool cr_free_to_active_block(void *p, unsigned kind, cr_tls_t *tls) {
  /* The row is the kind itself, for every kind the page map holds: no test
   * of the kind, nor kind - 1 and its zero-extension. */
  cr_block_t *b = (cr_block_t *)((uintptr_t)p & tls->bins.mask[kind]);
  if (cr_likely(tls->bins.block[kind] == b) && cr_likely(!cr_free_marked(p, b))) {
    cr_free_mark(p, b);
    *(void **)p = tls->bins.local[kind];
    tls->bins.local[kind] = p;
    return true;
  }
  return false;
}

/* A small object (kind 1..CORONA_NUM_BINS) not of the active block: kept
 * hot on the bin's free list while the turn has room (CORONA_HOT_OBJECTS),
 * else onto its block's free list if this thread owns the block; another
 * thread's goes to cr_free_not_owned (which may keep it hot too). */
CR_INLINE void cr_free_to_other_block(void *p, unsigned kind, cr_tls_t *tls) {
  cr_block_t *b = cr_block_of(p, kind);
  if (cr_unlikely(!cr_is_object_start((uintptr_t)p, kind - 1))) {
    cr_free_refused(p);
    return;
  }
  if (cr_unlikely(cr_free_marked(p, b))) cr_report_double_free(p);
  /* Relaxed: only this thread can have stored its own TLS here. */
  if (cr_likely(cr_load_relaxed(&b->owner) == &tls->inbox)) {
    unsigned bin = kind - 1;
    /* hot_limit: CORONA_HOT_OBJECTS, or 0 while counting calls (thread.h).
     * Relaxed: another thread switches counting, under pool->lock. */
    if (cr_likely(tls->hot[bin] < cr_load_relaxed(&tls->hot_limit))) {
      tls->hot[bin]++;
      cr_free_mark(p, b);
      *(void **)p = tls->bins.free[kind];
      tls->bins.free[kind] = p;
      return;
    }
    if (cr_unlikely(cr_block_put(b, p))) cr_block_threshold_reached(tls, b);
    return;
  }
  cr_free_not_owned(tls, b, p);
}

/* free of an object whose page-map kind is known, by thread tls: small
 * here, the rest (NULL, large, not ours) to other, out of line. */
CR_INLINE void cr_free_known_kind(void *p, unsigned kind, cr_tls_t *tls, void (*other)(void *p, unsigned kind)) {
  if (cr_likely(cr_free_to_active_block(p, kind, tls))) return;
  if (cr_likely(cr_kind_is_small(kind))) cr_free_to_other_block(p, kind, tls);
  else other(p, kind);
}

/* free: the masked lookup is enough for the active-block test (a match
 * proves p lies in a real block, below the end of the address space); any
 * other case looks the kind up again, checked.  other (a constant, so the
 * call is direct) takes NULL, large objects and pointers corona does not
 * know: corona_free refuses those (cr_free_not_small), free hands them to the
 * C library (override.c). */
CR_INLINE void cr_free_fast(void *p, void (*other)(void *p, unsigned kind)) {
  cr_tls_t *tls = cr_tls_get();
  if (cr_likely(cr_free_to_active_block(p, cr_pagemap_kind_masked((uintptr_t)p), tls))) return;
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  if (cr_likely(cr_kind_is_small(kind))) cr_free_to_other_block(p, kind, tls);
  else other(p, kind);
}

#endif /* CORONA_FASTPATH_H */
