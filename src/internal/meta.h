/* meta.h (layer: meta) — what corona knows about addresses and keeps beside
 * the heap: the page map (which addresses are corona's, and what they
 * hold), the backref table (index -> header), metadata memory, and the
 * statistics counters every layer above adds to. */
#ifndef CORONA_META_H
#define CORONA_META_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "os.h"
#include "sync.h"

/* ---- pagemap.c: which addresses are corona's ----------------------------
 * A two-level radix map with one byte per 16 KB granule of the addresses
 * below 2^CORONA_MAP_BITS (see config.h).  Lookups never touch the memory
 * they ask about, so a foreign pointer is recognised without faulting. */
enum cr_kind_e {
  CR_KIND_NONE = 0,  /* not corona's */
  /* 1 .. CORONA_NUM_BINS: a live slab block serving bin (kind - 1), so free
   * knows an object's class without reading its block header */
  CR_KIND_SLAB_FREE = CORONA_NUM_BINS + 1, /* a slab of a region, not in use as a block */
  CR_KIND_LARGE      /* inside a large region or a large object's own
                        mapping: the header below a pointer is readable */
};
/* Tables indexed by page-map kind (the bins' columns): CR_ROWS rows, row
 * CR_ROW(bin) for the slab blocks of small class bin. */
#define CR_ROWS (CR_KIND_LARGE + 1)
#define CR_ROW(bin) ((bin) + 1)
CR_INLINE bool cr_kind_is_small(unsigned kind) { return kind - 1u < CORONA_NUM_BINS; }
/* 18 leaf bits leave a 16-bit root index for 48 map bits, which x86-64
 * extracts in free's masked lookup with one zero-extending move; a 17-bit
 * index costs an instruction more per free (scripts/count-instructions). */
#define CR_PAGEMAP_LEAF_BITS 18
#define CR_PAGEMAP_ROOT_BITS (CORONA_MAP_BITS - CORONA_SLAB_SHIFT - CR_PAGEMAP_LEAF_BITS)
/* Root entries hold a leaf's distance from cr_pagemap_zero in words
 * ((leaf - zero) / 8), a static leaf that stays all zero (CR_KIND_NONE): the
 * zero-filled root thus starts out pointing every range at it, and a lookup
 * needs no "leaf present?" test.  In words, not bytes, at no cost (x86-64
 * scales the index in the load's address, arm64 in the add before it): a
 * conservative scan (memcheck's leak check) takes any word that falls
 * inside a heap block for a pointer to it, and a distance in bytes is an
 * address near corona's own mappings where corona is linked into the
 * program (under valgrind, an entry fell inside a leaked block, which
 * memcheck then called "possibly" lost: test valgrind_leaks_default).  An
 * eighth of it lies below every mapping there: natively below 2^44, under
 * valgrind below its first mapping (64 MB) while the leaves lie within
 * 512 MB of the program. */
extern _Atomic(uintptr_t) cr_pagemap_root[(size_t)1 << CR_PAGEMAP_ROOT_BITS];
extern _Atomic(uint8_t) cr_pagemap_zero[(size_t)1 << CR_PAGEMAP_LEAF_BITS];
/* The leaf a root entry names. */
CR_INLINE uintptr_t cr_pagemap_leaf_at(uintptr_t entry) { return (uintptr_t)cr_pagemap_zero + entry * 8; }
/* Marks [addr, addr+size) (16 KB aligned) with kind; false if a leaf could
 * not be mapped or the range reaches beyond the map. */
bool cr_pagemap_set(uintptr_t addr, size_t size, uint8_t kind);
/* The largest request (and alignment) corona tries to serve; see config.h.
 * Set by cr_pagemap_init, which cr_init calls before any object is made. */
extern size_t cr_max_request;
void cr_pagemap_init(void);

/* The same lookup without the range check: an address beyond the map
 * wraps onto some entry of it.  Only for a test that the entry's answer must
 * then pass against the address itself (free's active-block test). */
CR_INLINE unsigned cr_pagemap_kind_masked(uintptr_t a) {
  uintptr_t i = (a >> (CORONA_SLAB_SHIFT + CR_PAGEMAP_LEAF_BITS)) & (((uintptr_t)1 << CR_PAGEMAP_ROOT_BITS) - 1);
  uintptr_t leaf = cr_pagemap_leaf_at(cr_load_relaxed(&cr_pagemap_root[i]));
  uintptr_t j = (a >> CORONA_SLAB_SHIFT) & (((uintptr_t)1 << CR_PAGEMAP_LEAF_BITS) - 1);
  return cr_load_relaxed((_Atomic(uint8_t) *)(leaf + j));
}

CR_INLINE unsigned cr_pagemap_kind(uintptr_t a) {
  uintptr_t i = a >> (CORONA_SLAB_SHIFT + CR_PAGEMAP_LEAF_BITS);
  if (cr_unlikely(i >= ((uintptr_t)1 << CR_PAGEMAP_ROOT_BITS))) return CR_KIND_NONE;
  /* Relaxed: the entry asked about was written before the pointer reached
   * this thread, so coherence already shows the leaf that holds it. */
  uintptr_t leaf = cr_pagemap_leaf_at(cr_load_relaxed(&cr_pagemap_root[i]));
  uintptr_t j = (a >> CORONA_SLAB_SHIFT) & (((uintptr_t)1 << CR_PAGEMAP_LEAF_BITS) - 1);
  return cr_load_relaxed((_Atomic(uint8_t) *)(leaf + j));
}

/* ---- backref.c: index -> header table --------------------------------------
 * Every slab block and every large object registers its header here; the
 * header keeps the index.  A pointer is trusted only if the header it
 * implies is the one the table holds at the header's index, so a forged or
 * stale header is refused.  Grows with the heap (2^30 entries). */
uint32_t cr_backref_alloc(void *header); /* 0 when out of memory */
void cr_backref_free(uint32_t idx);
/* Frees n indexes (0s skipped) under one take of the table's lock. */
void cr_backref_free_many(const uint32_t *idx, size_t n);
void cr_backref_set(uint32_t idx, void *header);
void cr_backref_fork_lock(bool take); /* fork handlers: take or release the table's lock */
/* Frees every entry whose header owned() claims (a user pool's reset or
 * destroy: its objects all go at once).  Scans the whole table. */
void cr_backref_release_if(bool (*owned)(void *ctx, uintptr_t header), void *ctx);
/* The header registered at idx, NULL for an unused or out-of-range index. */
void *cr_backref_get(uint32_t idx);

/* ---- meta.c: metadata memory ----------------------------------------------
 * Cache-line aligned metadata (TLS structs, region descriptors) from OS
 * chunks, never from malloc and never freed; NULL when the OS refuses. */
void *cr_meta_alloc(size_t size);
void cr_meta_fork_lock(bool take); /* fork handlers: take or release its lock */

/* ---- statistics counters (compiled away without CORONA_STATS) ------------
 * Slow-path events (large objects, cache hits, cross-thread frees, memory)
 * are always counted.  Per-call counts of small objects cost the fast paths
 * nothing: they are derived from the lengths of the bin lists the slow
 * paths install and take back, and only while cr_stats_on (MALLOC_STATS=1,
 * or switched on by corona_allocation_mode): then a list swap walks the
 * list it installs, and a free into a non-active block counts itself. */
/* Objects on a free list (the statistics and the heap profiler count lists
 * handed over: their lengths stand in for calls). */
CR_INLINE int64_t cr_list_length(void *list) {
  int64_t n = 0;
  for (void *p = list; p != NULL; p = *(void **)p) n++;
  return n;
}

#if CORONA_STATS
#define CR_STAT(x) x
extern _Atomic(bool) cr_stats_on;
CR_INLINE bool cr_counting(void) { return cr_unlikely(cr_load_relaxed(&cr_stats_on)); }
/* Owner-only adds to the calling thread's per-class counts (n may be
 * negative: objects handed back unused). */
CR_INLINE void cr_stat_own(_Atomic(uint64_t) *c, int64_t n) {
  cr_store_relaxed(c, cr_load_relaxed(c) + (uint64_t)n);
}
#else
#define CR_STAT(x) ((void)0)
CR_INLINE bool cr_counting(void) { return false; }
#endif
/* Bytes of metadata mapped (page map, backrefs, TLS chunks): counted by
 * cr_meta_mapped, read by cr_meta_mapped_bytes. */
void cr_meta_mapped(size_t bytes);
size_t cr_meta_mapped_bytes(void);

/* Statistics events counted on slow paths. */
enum cr_stat_event_e {
  CR_STAT_LARGE_ALLOC,
  CR_STAT_LARGE_FREE,
  CR_STAT_CACHE_HIT,
  CR_STAT_CACHE_MISS,
  CR_STAT_REMOTE_FREE,
  CR_STAT_EVENTS
};

/* Per-thread (or pool-wide) statistics.  A thread's own copy is written by
 * the owner only (relaxed load + store: no atomic read-modify-write) and
 * read relaxed by whoever sums them; the pool's copy is shared (relaxed
 * fetch_add) and receives the counts of exited threads. */
typedef struct cr_stats_s {
  _Atomic(uint64_t) bin_alloc[CORONA_NUM_BINS];
  _Atomic(uint64_t) bin_free[CORONA_NUM_BINS];
  _Atomic(uint64_t) event[CR_STAT_EVENTS];
} cr_stats_t;

#endif /* CORONA_META_H */
