/* internal.h — cross-file prototypes, grouped by the file that defines them,
 * and the inlined fast paths of malloc and free.  Names here carry the cr_
 * prefix and hidden visibility (the build sets it). */
#ifndef CORONA_INTERNAL_H
#define CORONA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sync.h"
#include "types.h"

#define cr_likely(x) __builtin_expect(!!(x), 1)
#define cr_unlikely(x) __builtin_expect(!!(x), 0)
#define CR_NOINLINE __attribute__((noinline))
#define CR_INLINE static inline __attribute__((always_inline))

/* ---- bin.c: size classes and the per-thread bins ---------------------- */
/* Bin of a small size s (0 <= s <= CORONA_MAX_SMALL) is
 * cr_size_bin[(s + 15) >> 4]: one table load for every small size. */
#define CR_SIZE_BIN_ENTRIES ((CORONA_MAX_SMALL + 15) / 16 + 1)
extern const uint8_t cr_size_bin[CR_SIZE_BIN_ENTRIES];
extern const uint16_t cr_size_bin_offset[CR_SIZE_BIN_ENTRIES]; /* offsetof(cr_tls_t, bins[bin]) */
extern const uint32_t cr_bin_size[CORONA_NUM_BINS];
extern const uint64_t cr_bin_magic[CORONA_NUM_BINS];

/* Whether a (an address in a live block of bin) is the start of one of its
 * objects: past the header, and a whole number of objects below the block
 * end.  Keeps an interior or misaligned pointer out of every free list. */
CR_INLINE bool cr_is_object_start(uintptr_t a, unsigned bin) {
  uint32_t below_end = (uint32_t)(CORONA_SLAB_SIZE - (a & (CORONA_SLAB_SIZE - 1)));
  return below_end <= CORONA_SLAB_SIZE - CORONA_BLOCK_HEADER && below_end * cr_bin_magic[bin] < cr_bin_magic[bin];
}

CR_INLINE unsigned cr_bin_index(size_t size) { return cr_size_bin[(size + 15) >> 4]; }
/* The bin of tls for a small size, by one table load and no arithmetic. */
CR_INLINE cr_bin_t *cr_bin_for_size(cr_tls_t *tls, size_t size) {
  return (cr_bin_t *)((char *)tls + cr_size_bin_offset[(size + 15) >> 4]);
}
/* Gives every bin of a new (or reset) TLS its empty block and its mask. */
void cr_bins_init(cr_tls_t *tls);

/* Slow path of small malloc of size bytes (bin's class): the bin's free
 * list is empty, or the thread has no TLS yet (or runs in checked mode).
 * Returns NULL with errno ENOMEM on failure. */
void *cr_malloc_small_slow(cr_tls_t *tls, size_t size); /* finds the bin again from size */

/* A local free made block b reach its threshold (empty, or reusable; or
 * any free while statistics count calls). */
void cr_block_threshold_reached(cr_tls_t *tls, cr_block_t *b);
/* Resets the thresholds of tls's non-active blocks after counting was
 * switched on or off (owner only). */
void cr_bins_set_thresholds(cr_tls_t *tls);
/* Drains every mailbox of tls (remote frees become reusable). */
void cr_bins_drain_all(cr_tls_t *tls);
/* pthread_atfork handlers (pool.c): take every lock in rank order before a
 * fork, release them in parent and child afterwards. */
void cr_fork_prepare(void);
void cr_fork_release(void);

/* Drains the mailboxes, then hands the thread's empty blocks to the pool. */
void cr_bins_flush_empty(cr_tls_t *tls);
/* Thread exit: orphans or releases every block of tls.  false when some
 * block is still owed a mailbox notice: tls must then never be reused. */
bool cr_bins_release_all(cr_tls_t *tls);

/* ---- block.c: one slab block ------------------------------------------ */
/* Makes the empty block b ready to serve class bin for owner tls. */
void cr_block_init(cr_block_t *b, cr_tls_t *tls, unsigned bin);
/* Takes the whole public free list of b (owner only, after b left the
 * mailbox or when adopting it); terminal is what public_free becomes (NULL,
 * or CR_UNUSABLE when orphaning). Returns the number of objects reclaimed. */
uint32_t cr_block_privatize(cr_block_t *b, void *terminal);
/* A free of p into block b by a thread that does not own it. */
void cr_free_remote(cr_block_t *b, void *p);
/* free's path when the freeing thread (TLS tls, maybe cr_tls_empty) does
 * not own b: checked mode, statistics, then cr_free_remote. */
void cr_free_foreign_block(cr_tls_t *tls, cr_block_t *b, void *p);

/* ---- tls.c: per-thread data ------------------------------------------- */
/* The calling thread's TLS for the default pool; starts as cr_tls_empty, a
 * static TLS whose bins all hold the static empty block, so the first malloc
 * falls into the slow path without a separate "initialised?" test. */
extern _Thread_local cr_tls_t *cr_tls_current __attribute__((tls_model("initial-exec")));
extern cr_tls_t cr_tls_empty;
extern cr_block_t cr_block_empty;
/* Checked mode (debug.c): the thread's real TLS, NULL until created. */
extern _Thread_local cr_tls_t *cr_tls_inner __attribute__((tls_model("initial-exec")));
/* Creates (or recycles) the TLS of the calling thread for the default pool. */
cr_tls_t *cr_tls_create(cr_pool_t *pool);
/* Thread exit of one TLS: its caches and blocks go to its pool. */
void cr_tls_teardown(cr_tls_t *tls);

CR_INLINE cr_tls_t *cr_tls_get(void) { return cr_tls_current; }
/* The calling thread's real TLS, also in checked mode; NULL if none yet. */
CR_INLINE cr_tls_t *cr_tls_own(void) {
  cr_tls_t *tls = cr_tls_current;
  return tls != &cr_tls_empty ? tls : cr_tls_inner;
}

/* One-time process initialisation; cheap to call again. */
void cr_init(void);

/* ---- options.c: run-time options (one table) ----------------------------- */
typedef enum cr_option_id_e {
  CR_OPT_USE_HUGE_PAGES,
  CR_OPT_HUGE_THRESHOLD,
  CR_OPT_DECAY_MS,
  CR_OPT_SOFT_LIMIT,
  CR_OPT_VERBOSE,
  CR_OPT_STATS,
  CR_OPT_DEBUG,
  CR_OPT_COUNT
} cr_option_id_t;
/* Reads the environment; called once by cr_init. */
void cr_options_init(void);
int64_t cr_option(cr_option_id_t id);
/* false when value is out of the option's range. */
bool cr_option_set(cr_option_id_t id, int64_t value);
CR_INLINE bool cr_verbose(void) { return cr_unlikely(cr_option(CR_OPT_VERBOSE) != 0); }

/* ---- report.c: lines on stderr without allocating ------------------------
 * A line starts as CR_LINE_INIT ("corona: "), gets parts appended (cut at
 * the buffer's end) and goes out in one write. */
typedef struct cr_line_s {
  char buf[256];
  size_t n;
} cr_line_t;
#define CR_LINE_INIT {"corona: ", 8}
void cr_line_str(cr_line_t *l, const char *s);
void cr_line_u64(cr_line_t *l, uint64_t v);
void cr_line_addr(cr_line_t *l, const void *addr); /* 0x + 16 hex digits */
void cr_line_emit(cr_line_t *l);
_Noreturn void cr_fatal_line(cr_line_t *l); /* emits, then aborts */
/* Verbose mode: "corona: <what> 0x<addr> (<bytes> bytes)". */
void cr_verbose_event(const char *what, const void *addr, size_t bytes);

/* ---- stats.c: statistics (compiled away without CORONA_STATS) ------------
 * Slow-path events (large objects, cache hits, cross-thread frees, memory)
 * are always counted.  Per-call counts of small objects cost the fast paths
 * nothing: they are derived from the lengths of the bin lists the slow
 * paths install and take back, and only while cr_stats_on (MALLOC_STATS=1,
 * or switched on by corona_allocation_mode): then a list swap walks the
 * list it installs, and a free into a non-active block counts itself. */
#if CORONA_STATS
#define CR_STAT(x) x
extern _Atomic(bool) cr_stats_on;
CR_INLINE bool cr_counting(void) { return cr_unlikely(cr_load_relaxed(&cr_stats_on)); }
/* The same, from the thread's own copy (no extra cache line on slow paths). */
CR_INLINE bool cr_tls_counting(cr_tls_t *tls) { return cr_unlikely(cr_load_relaxed(&tls->counting)); }
/* Adds n to event ev: the calling thread's counters when it has a TLS of
 * pool, else the pool's shared ones. */
void cr_stat_event(cr_pool_t *pool, unsigned ev, uint64_t n);
/* Objects on a free list (statistics: list lengths stand in for counts). */
CR_INLINE int64_t cr_list_length(void *list) {
  int64_t n = 0;
  for (void *p = list; p != NULL; p = *(void **)p) n++;
  return n;
}
/* Owner-only adds to the calling thread's per-class counts (n may be
 * negative: objects handed back unused). */
CR_INLINE void cr_stat_own(_Atomic(uint64_t) *c, int64_t n) {
  cr_store_relaxed(c, cr_load_relaxed(c) + (uint64_t)n);
}
/* Switches counting of small-object calls on or off; the calling thread's
 * counts are settled against its current lists, so they stay exact. */
void cr_stats_switch(bool on);
/* Thread exit (pool->lock held): tls's counts go to the pool's. */
void cr_stats_retire_locked(cr_pool_t *pool, cr_tls_t *tls);
/* Slab bytes serving objects changed by delta; tracks the peak. */
void cr_stats_small_in_use(cr_pool_t *pool, int64_t delta);
/* Large bytes in use grew: tracks the peak. */
void cr_stats_note_peak(cr_pool_t *pool);
/* Bytes of metadata mapped (page map, backrefs, TLS chunks). */
void cr_stats_meta_mapped(size_t bytes);
#else
#define CR_STAT(x) ((void)0)
CR_INLINE bool cr_counting(void) { return false; }
CR_INLINE bool cr_tls_counting(cr_tls_t *tls) { (void)tls; return false; }
#endif
/* The exit report (MALLOC_STATS) and the debug quarantine's last check. */
void cr_at_exit(void);

/* ---- debug.c: debug mode and Valgrind client requests --------------------
 * In "checked" mode (MALLOC_DEBUG, or running under Valgrind) every public
 * call goes through debug.c, which wraps each object in a header and
 * canaries and keeps freed objects in a quarantine.  Checked mode costs the
 * fast paths nothing: the thread's fast-path TLS stays cr_tls_empty, so
 * every call falls into a slow path, and only there is cr_checked tested.
 * debug.c allocates underneath through the thread's real TLS
 * (cr_tls_inner).  Set once by cr_init, before any object exists. */
extern bool cr_checked;
void cr_debug_init(void);
void *cr_debug_alloc(size_t size, size_t alignment, bool zero); /* errno on failure */
void cr_debug_free(void *p, const char *call);
void *cr_debug_realloc(void *p, size_t size, size_t alignment);
size_t cr_debug_usable_size(void *p);
void cr_debug_flush(void); /* checks and releases the whole quarantine */
void cr_debug_fork_lock(bool take); /* fork handlers: the quarantine's lock */

/* ---- backref.c: index -> header table --------------------------------------
 * Every slab block and every large object registers its header here; the
 * header keeps the index.  A pointer is trusted only if the header it
 * implies is the one the table holds at the header's index, so a forged or
 * stale header is refused.  Grows with the heap (2^30 entries). */
uint32_t cr_backref_alloc(void *header); /* 0 when out of memory */
void cr_backref_free(uint32_t idx);
void cr_backref_set(uint32_t idx, void *header);
void cr_backref_fork_lock(bool take); /* fork handlers: take or release the table's lock */
/* Frees every entry whose header owned() claims (a user pool's reset or
 * destroy: its objects all go at once).  Scans the whole table. */
void cr_backref_release_if(bool (*owned)(void *ctx, uintptr_t header), void *ctx);
/* The header registered at idx, NULL for an unused or out-of-range index. */
void *cr_backref_get(uint32_t idx);

/* ---- pool.c: memory pools (the default heap is one) --------------------- */
extern cr_pool_t cr_default_pool;
/* Cache-line aligned metadata (TLS structs, region descriptors) from OS
 * chunks, never from malloc and never freed; NULL when the OS refuses. */
void *cr_meta_alloc(size_t size);
/* Releases empty blocks of the global pool idle since before now - decay_ms
 * (all of them when force) to the backend. */
void cr_pool_decay_empty(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool force);
/* A zeroed TLS linked into pool's thread list (recycled or new); NULL if
 * the OS refuses memory.  cr_pool_tls_free unlinks and recycles it. */
cr_tls_t *cr_pool_tls_alloc(cr_pool_t *pool);
void cr_pool_tls_free(cr_pool_t *pool, cr_tls_t *tls);
/* Unlinks tls for good (never recycled: a notice may still arrive). */
void cr_pool_tls_retire(cr_pool_t *pool, cr_tls_t *tls);
/* Global pool of empty blocks (pool->lock). */
cr_block_t *cr_pool_take_empty(cr_pool_t *pool);
void cr_pool_put_empty(cr_pool_t *pool, cr_block_t *list, size_t count);
/* Per-bin orphan lists. */
void cr_pool_orphan(cr_pool_t *pool, cr_block_t *b);
cr_block_t *cr_pool_adopt(cr_pool_t *pool, unsigned bin);
/* Orphans whose objects have all been freed go to the empty pool. */
void cr_pool_reclaim_orphans(cr_pool_t *pool);

/* ---- pool_user.c: user pools ---------------------------------------------- */
/* The calling thread's TLS for user pool `pool` (created on first use);
 * NULL when no memory can be had for it. */
cr_tls_t *cr_pool_tls(cr_pool_t *pool);
/* The same, or NULL when the thread has none (never creates one). */
cr_tls_t *cr_pool_tls_peek(cr_pool_t *pool);
/* The exit hook of the thread's table of user-pool TLS structs. */
void cr_pools_on_thread_exit(void *table);
/* Frees small object p of user pool `pool` (a corona_free of it). */
void cr_pool_free_small(cr_pool_t *pool, void *p, unsigned kind);
/* The pool owning p (page-map kind `kind`), NULL when p is not a live
 * object; never faults. */
cr_pool_t *cr_owner_pool(const void *p, unsigned kind);
/* Fork handlers for the user pools (after / before the default pool's). */
void cr_pools_fork_lock(bool take);
/* Every lock of one pool, in rank order (fork). */
void cr_pool_lock_all(cr_pool_t *pool, bool take);

/* ---- backend.c: regions, slabs, large blocks ----------------------------- */
/* Descriptors of user-pool chunks (metadata memory, recycled). */
cr_chunk_t *cr_chunk_desc_alloc(void);
void cr_chunk_desc_free(cr_chunk_t *c);
void cr_chunk_desc_fork_lock(bool take); /* fork handlers */
/* A 16 KB-aligned slab registered in the backref table; NULL when the OS
 * refuses.  cr_backend_slab_free takes it back (pages to the OS at once). */
cr_block_t *cr_backend_slab_alloc(cr_backend_t *be);
void cr_backend_slab_free(cr_backend_t *be, cr_block_t *b);
/* A page-granular block of bytes (<= CORONA_LARGE_REGION_MAX) from a large
 * region; *zeroed tells whether it reads as zero.  NULL when the OS refuses. */
char *cr_backend_block_alloc(cr_backend_t *be, size_t bytes, cr_region_t **region, bool *zeroed);
char *cr_backend_block_alloc_aligned(cr_backend_t *be, size_t bytes, size_t align, cr_region_t **region, bool *zeroed);
/* How many free bytes the pool's backend may keep resident (unpurged) before
 * the decay time: a base plus a share of the bytes in use; past the soft
 * heap limit the base is at most a share of the limit (large.c). */
size_t cr_dirty_limit(cr_pool_t *pool);
/* Frees the pages; they stay resident for reuse (until the decay time) while
 * the backend's resident free bytes stay under dirty_max. */
void cr_backend_block_free(cr_backend_t *be, cr_region_t *r, char *block, size_t bytes, size_t dirty_max);
/* Shrinks, or grows into free following pages; false when it cannot grow. */
bool cr_backend_block_resize(cr_backend_t *be, cr_region_t *r, char *block, size_t old_bytes, size_t new_bytes,
                             size_t dirty_max);
/* Purges free pages idle longer than decay_ms and unmaps wholly free large
 * regions (everything free when force). */
void cr_backend_decay(cr_backend_t *be, uint64_t now, uint64_t decay_ms, bool force);
/* Unmaps the large regions with no block in use (the soft heap limit). */
void cr_backend_release_empty(cr_backend_t *be);
/* Mappings of their own for the biggest blocks (bytes: 16 KB multiple, or a
 * huge-page multiple when huge).  align 0: the block is 16 KB aligned (huge:
 * huge-page aligned); else (default heap only, a power of two above 16 KB)
 * block + offset is a multiple of align. */
char *cr_backend_own_map(cr_backend_t *be, size_t bytes, bool huge, size_t align, size_t offset);
void cr_backend_own_unmap(cr_backend_t *be, char *p, size_t bytes);
/* Resizes an own mapping without copying (in place, or by moving its pages);
 * NULL with everything unchanged when it cannot. */
char *cr_backend_own_remap(cr_backend_t *be, char *p, size_t old_bytes, size_t new_bytes, bool huge);

/* ---- large.c: objects above CORONA_MAX_SMALL ----------------------------- */
/* alignment: 0 or a power of two; zero: the memory must read as zero.
 * NULL with errno ENOMEM on failure. */
void *cr_large_alloc(cr_pool_t *pool, size_t size, size_t alignment, bool zero);
void cr_large_free(cr_large_t *h);
/* The live large header of p (page-map kind `kind`), or NULL when p is not
 * the user pointer of a live large object.  Never faults. */
cr_large_t *cr_large_header(const void *p, unsigned kind);
/* Resizes in place (or, for an own mapping, by moving its pages without a
 * copy); returns the user pointer, or NULL when the object must be moved. */
void *cr_large_resize(cr_large_t *h, size_t size);
/* Bytes usable from the user pointer to the end of the block. */
CR_INLINE size_t cr_large_usable(const cr_large_t *h) {
  return (size_t)(h->block + h->block_size - (char *)cr_load_relaxed(&h->user));
}
/* The calling thread's local cache into the global one (thread exit). */
void cr_large_flush_local(cr_tls_t *tls);
/* Everything the calling thread caches goes to the pool: its local
 * large-object cache, its mailboxes' frees and its empty blocks. */
void cr_tls_flush(cr_tls_t *tls);
/* Time-based release, due at most every quarter decay; cheap when not due. */
void cr_maybe_decay(cr_pool_t *pool);
/* Everything cached that can go back to the OS goes (corona_collect). */
void cr_collect(cr_pool_t *pool);

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
CR_INLINE bool cr_kind_is_small(unsigned kind) { return kind - 1u < CORONA_NUM_BINS; }
/* 18 leaf bits leave a 16-bit root index for 48 map bits, which x86-64
 * extracts in free's masked lookup with one zero-extending move; a 17-bit
 * index costs an instruction more per free (scripts/count-instructions). */
#define CR_PAGEMAP_LEAF_BITS 18
#define CR_PAGEMAP_ROOT_BITS (CORONA_MAP_BITS - CORONA_SLAB_SHIFT - CR_PAGEMAP_LEAF_BITS)
/* Root entries hold a leaf's distance from cr_pagemap_zero, a static leaf
 * that stays all zero (CR_KIND_NONE): the zero-filled root thus starts out
 * pointing every range at it, and a lookup needs no "leaf present?" test. */
extern _Atomic(uintptr_t) cr_pagemap_root[(size_t)1 << CR_PAGEMAP_ROOT_BITS];
extern _Atomic(uint8_t) cr_pagemap_zero[(size_t)1 << CR_PAGEMAP_LEAF_BITS];
/* Marks [addr, addr+size) (16 KB aligned) with kind; false if a leaf could
 * not be mapped or the range reaches beyond the map. */
bool cr_pagemap_set(uintptr_t addr, size_t size, uint8_t kind);
/* The largest request (and alignment) corona tries to serve; see config.h.
 * Set by cr_pagemap_init, which cr_init calls after cr_os_init. */
extern size_t cr_max_request;
void cr_pagemap_init(void);

/* The same lookup without the range check: an address beyond the map
 * wraps onto some entry of it.  Only for a test that the entry's answer must
 * then pass against the address itself (free's active-block test). */
CR_INLINE unsigned cr_pagemap_kind_masked(uintptr_t a) {
  uintptr_t i = (a >> (CORONA_SLAB_SHIFT + CR_PAGEMAP_LEAF_BITS)) & (((uintptr_t)1 << CR_PAGEMAP_ROOT_BITS) - 1);
  uintptr_t leaf = (uintptr_t)cr_pagemap_zero + cr_load_relaxed(&cr_pagemap_root[i]);
  uintptr_t j = (a >> CORONA_SLAB_SHIFT) & (((uintptr_t)1 << CR_PAGEMAP_LEAF_BITS) - 1);
  return cr_load_relaxed((_Atomic(uint8_t) *)(leaf + j));
}

CR_INLINE unsigned cr_pagemap_kind(uintptr_t a) {
  uintptr_t i = a >> (CORONA_SLAB_SHIFT + CR_PAGEMAP_LEAF_BITS);
  if (cr_unlikely(i >= ((uintptr_t)1 << CR_PAGEMAP_ROOT_BITS))) return CR_KIND_NONE;
  /* Relaxed: the entry asked about was written before the pointer reached
   * this thread, so coherence already shows the leaf that holds it. */
  uintptr_t leaf = (uintptr_t)cr_pagemap_zero + cr_load_relaxed(&cr_pagemap_root[i]);
  uintptr_t j = (a >> CORONA_SLAB_SHIFT) & (((uintptr_t)1 << CR_PAGEMAP_LEAF_BITS) - 1);
  return cr_load_relaxed((_Atomic(uint8_t) *)(leaf + j));
}

/* ---- frontend.c ------------------------------------------------------- */
/* The allocation calls behind the public API, shared with override.c. */
void *cr_aligned_alloc(size_t size, size_t alignment); /* alignment: power of two; errno on failure */
void *cr_realloc(void *p, size_t size, size_t alignment); /* alignment 0: plain */
size_t cr_usable_size(const void *p, unsigned kind); /* 0 when p is not ours */
size_t cr_usable_size_raw(const void *p, unsigned kind); /* the same, never checked mode */
/* free() of anything that is not a small object: NULL, large, invalid. */
void cr_free_other(void *p, unsigned kind);
/* free() of a pointer corona refuses: reports it and aborts.  Not marked
 * noreturn, so that the fast path reaches it by a jump. */
void cr_free_invalid(void *p);
/* Reports a fatal misuse naming the address, then aborts. */
_Noreturn void cr_fatal(const char *what, const void *addr);

/* ---- the fast paths ----------------------------------------------------- */

/* ---- the free mark --------------------------------------------------------
 * Every small object on a free list (a bin's, a block's, a public one) has
 * its block's address in its second word; handing an object out clears it.
 * The address of a block header is nothing a program stores in an object it
 * owns, so a free that finds the mark already there is a double free
 * (glibc's tcache does the same with a random key).  Every free tests the
 * mark: the active-block fast path, the other-block and cross-thread paths;
 * every list push sets it. */
CR_INLINE bool cr_free_marked(const void *p, const cr_block_t *b) { return ((void *const *)p)[1] == (const void *)b; }
CR_INLINE void cr_free_mark(void *p, cr_block_t *b) { ((void **)p)[1] = b; }
CR_INLINE void cr_free_mark_clear(void *p) { ((void **)p)[1] = NULL; }
/* A free of p found its mark: reports the double free and aborts. */
_Noreturn void cr_free_double(void *p);


/* malloc of size <= CORONA_MAX_SMALL: pop the bin's list, else the slow path
 * (which swaps in the local list or refills from the active block's bump
 * area or free list).  No lock, no atomic read-modify-write, no block
 * header touched. */
CR_INLINE void *cr_malloc_small_tls(cr_tls_t *tls, size_t size) {
  cr_bin_t *bn = cr_bin_for_size(tls, size);
  void *p = bn->free;
  if (cr_likely(p != NULL)) {
    void *next = *(void **)p;
    bn->free = next;
    cr_free_mark_clear(p);
    /* The next pop of this bin reads next's link: start that load now.
     * Objects of a reused block were freed long ago and are rarely still
     * cached; the prefetch hides the miss behind the caller's work (a
     * prefetch of NULL is harmless). */
    __builtin_prefetch(next);
    return p;
  }
  return cr_malloc_small_slow(tls, size); /* not bin: the fast path need not keep it */
}

CR_INLINE void *cr_malloc_small(size_t size) { return cr_malloc_small_tls(cr_tls_get(), size); }

/* free: one page-map load decides small (and its bin) / large / foreign.
 * An object of this thread's active block for that bin goes straight back on
 * the bin list (no block header touched: the bin's block being this one
 * proves we own it); an object of another block we own goes on that block's
 * free list; anything else is a remote free. */
/* The bin of page-map kind k: bins[k - 1] for a small object; for k = 0
 * (not ours) the TLS's bin_none, and for the kinds above the small ones
 * bin_beyond[], whose blocks match no object.  Indexed by kind itself, for
 * every kind the page map holds: the fast path needs no test of the kind,
 * nor kind - 1 and its zero-extension. */
CR_INLINE cr_bin_t *cr_bin_of_kind(cr_tls_t *tls, unsigned kind) {
  return (cr_bin_t *)((uintptr_t)&tls->bin_none + (uintptr_t)kind * sizeof(cr_bin_t));
}

/* The block holding small object (or any address in a slab) p. */
CR_INLINE cr_block_t *cr_block_of(const void *p) {
  return (cr_block_t *)((uintptr_t)p & ~(uintptr_t)(CORONA_SLAB_SIZE - 1));
}

/* p goes back on the free list of its block b, which the calling thread
 * owns; true when b's fill level now asks for the slow path
 * (cr_block_threshold_reached).  The one place an object returns to a block
 * of its owner: free, and every list that goes home (bin.c). */
CR_INLINE bool cr_block_put(cr_block_t *b, void *p) {
  cr_free_mark(p, b);
  *(void **)p = b->free_list;
  b->free_list = p;
  return --b->allocated <= b->threshold;
}

/* Any kind the page map holds: true when p, an object of this thread's
 * active block for its class, went straight back on the bin's local list.
 * The bin's mask keeps the bits below the class's alignment: a pointer not
 * at that alignment never equals the active block (nor bin_none's
 * CR_BLOCK_NEVER), so a misaligned pointer, and any interior pointer of a
 * power-of-two class, is left to the checks of cr_free_small_block, and so
 * is an object that already carries the free mark (a double free).  The
 * interior pointers that do match (classes that are not powers of two) are
 * caught before anything is handed out from the local list
 * (cr_malloc_small_slow). */
CR_INLINE bool cr_free_active(void *p, unsigned kind, cr_tls_t *tls) {
  cr_bin_t *bn = cr_bin_of_kind(tls, kind);
  cr_block_t *b = (cr_block_t *)((uintptr_t)p & bn->mask);
  if (cr_likely(bn->block == b) && cr_likely(!cr_free_marked(p, b))) {
    cr_free_mark(p, b);
    *(void **)p = bn->local;
    bn->local = p;
    return true;
  }
  return false;
}

/* A small object (kind 1..CORONA_NUM_BINS) not of the active block: kept
 * hot on the bin's free list while the turn has room (CORONA_HOT_OBJECTS),
 * else onto its block's free list if this thread owns the block; another
 * thread's goes to cr_free_foreign_block (which may keep it hot too). */
CR_INLINE void cr_free_small_block(void *p, unsigned kind, cr_tls_t *tls) {
  cr_block_t *b = cr_block_of(p);
  if (cr_unlikely(!cr_is_object_start((uintptr_t)p, kind - 1))) {
    cr_free_invalid(p);
    return;
  }
  if (cr_unlikely(cr_free_marked(p, b))) cr_free_double(p);
  /* Relaxed: only this thread can have stored its own TLS here. */
  if (cr_likely(cr_load_relaxed(&b->owner) == tls)) {
    unsigned bin = kind - 1;
    if (cr_likely(tls->hot[bin] < CORONA_HOT_OBJECTS) && !cr_tls_counting(tls)) { /* see CORONA_HOT_OBJECTS */
      cr_bin_t *bn = &tls->bins[bin];
      tls->hot[bin]++;
      cr_free_mark(p, b);
      *(void **)p = bn->free;
      bn->free = p;
      return;
    }
    if (cr_unlikely(cr_block_put(b, p))) cr_block_threshold_reached(tls, b);
    return;
  }
  cr_free_foreign_block(tls, b, p);
}

/* free of an object whose page-map kind is known: small here, the rest
 * (NULL, large, not ours) out of line. */
CR_INLINE void cr_free_kind_tls(void *p, unsigned kind, cr_tls_t *tls) {
  if (cr_likely(cr_free_active(p, kind, tls))) return;
  if (cr_likely(cr_kind_is_small(kind))) cr_free_small_block(p, kind, tls);
  else cr_free_other(p, kind);
}

CR_INLINE void cr_free_kind(void *p, unsigned kind) { cr_free_kind_tls(p, kind, cr_tls_get()); }

/* free: the masked lookup is enough for the active-block test (a match
 * proves p lies in a real block, below the end of the address space); any
 * other case looks the kind up again, checked. */
CR_INLINE void cr_free_inline(void *p) {
  cr_tls_t *tls = cr_tls_get();
  if (cr_likely(cr_free_active(p, cr_pagemap_kind_masked((uintptr_t)p), tls))) return;
  cr_free_kind_tls(p, cr_pagemap_kind((uintptr_t)p), tls);
}

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
    cr_bin_t *bn = cr_bin_for_size(cr_tls_get(), total);
    void *p = bn->free;
    if (cr_likely(p != NULL)) {
      bn->free = *(void **)p;
      cr_free_mark_clear(p); /* total may be under 16 bytes */
      __builtin_memset(p, 0, total);
      return p;
    }
  }
  return cr_calloc_other(count, size);
}


#endif /* CORONA_INTERNAL_H */
