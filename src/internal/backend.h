/* backend.h (layer: backend) — memory from the OS (or a user pool's
 * source) cut into slabs and page-granular large blocks, with coalescing,
 * purging and time-based release.  It is told its budgets (dirty_max); it
 * asks nothing of the layers above. */
#ifndef CORONA_BACKEND_H
#define CORONA_BACKEND_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "block.h"
#include "config.h"
#include "meta.h"
#include "sync.h"

/* ---- backend: regions ---------------------------------------------------
 * All memory comes from OS regions (CORONA_REGION_SIZE for slabs,
 * CORONA_LARGE_REGION_SIZE for large blocks), aligned to their size, except large objects above the
 * MMAP_THRESHOLD option (CORONA_LARGE_REGION_MAX by default), which get
 * a mapping of their own.  A slab region is cut into 16 KB slabs; a large
 * region into page-granular blocks tracked by bitmaps, so freed neighbours
 * coalesce by construction (a free run of pages is one block) and a region
 * whose pages are all free is unmapped.  Descriptors live in metadata memory,
 * not in the region, so every page of a region can be purged. */
#define CR_REGION_PAGES (CORONA_LARGE_REGION_SIZE / CORONA_PAGE_SIZE)
#define CR_REGION_WORDS (CR_REGION_PAGES / 64)
#define CR_RUN_BINS 49 /* run lengths 1 .. 16, then four bins a doubling up to CR_REGION_PAGES */
_Static_assert(CR_REGION_PAGES == 4096, "the dirty runs' bins and 16-bit links assume 4096 pages a region");

typedef struct cr_region_s cr_region_t;

/* A large region's dirty runs: every maximal run of its dirty_map on the
 * list of its length's bin (CR_RUN_BINS: exact up to 16 pages, then four a
 * doubling), linked through arrays indexed by the run's first page
 * (page + 1: 0 is none), kept by cr_dirty_set (backend_map.c), so that a
 * best fit looks at one list or two instead of every run of the region.
 * 32 KB a 16 MB region, apart from the descriptor: slab regions have none. */
typedef struct cr_run_link_s {
  uint16_t next, prev, len; /* valid at a run's first page */
  uint16_t pad;             /* 8 bytes: an entry never straddles a cache line */
} cr_run_link_t;
typedef struct cr_region_runs_s {
  uint16_t head[CR_RUN_BINS];
  /* A run's links and length side by side: a best-fit walk reads both of
   * each run, one cache miss each where separate arrays took two. */
  _Alignas(8) cr_run_link_t link[CR_REGION_PAGES];
} cr_region_runs_t;
enum cr_region_kind_e { CR_REGION_SLAB, CR_REGION_LARGE };

struct cr_region_s {   /* everything lock(backend->lock) */
  char *base;
  size_t size;          /* bytes; a user pool's regions may be smaller than the default */
  cr_region_t *next, *prev; /* the backend's list of regions of this kind */
  uint32_t kind;
  uint32_t used;        /* slabs (slab region) or pages (large region) in use */
  uint32_t carved;      /* slab region: slabs handed out at least once */
  bool huge;            /* backed by huge pages: purge only whole huge pages */
  bool user;            /* a user pool's memory: never purged, never zero (calloc clears) */
  cr_block_t *free_slabs; /* slab region: slabs back from use, by next (dirty ones first) */
  uint64_t dirty_since; /* oldest free-but-unpurged page (ms), 0 = none; 1 = only parts of huge
                           or OS pages a purge had to leave (no age: the next free stamps it) */
  uint64_t dirty_any, dirty_full; /* bit w: dirty_map[w] has a bit set / all bits set (cr_dirty_set) */
  uint64_t run_bins;      /* large region: bit b, runs->head[b] is not empty */
  cr_region_runs_t *runs; /* large region (not a user pool's): the index of its dirty runs; metadata
                             memory, kept with the descriptor when it is recycled */
  uint64_t free_map[CR_REGION_WORDS];  /* large region: 1 = page free */
  uint64_t dirty_map[CR_REGION_WORDS]; /* 1 = free page that may hold data (slab region: its first
                                          CORONA_REGION_SIZE / CORONA_PAGE_SIZE bits) */
};

/* A piece of memory a user pool's raw_alloc gave: returned to raw_free with
 * exactly these ptr and bytes.  Regions are cut from [carve, end); an "own"
 * chunk holds one big block.  The descriptor comes from cr_chunk_desc_alloc
 * (its own lock) and is then reached only through its pool's source->chunks,
 * so every field is lock(backend->lock) of that pool; the immutable ones are
 * written once, before the chunk is linked there. */
typedef struct cr_chunk_s {
  char *ptr;           /* immutable */
  size_t bytes;        /* immutable */
  char *carve, *end;   /* lock: 16 KB aligned; carve moves up as regions are cut, end is immutable */
  char *start;         /* immutable: the first carve position */
  uint8_t kind_before; /* immutable: page-map kind of [start, end) before the pool took it */
  bool own;            /* immutable: dedicated to one block */
  bool own_free;       /* lock: own, and its block is free (kept: keep_all_memory, or reset) */
  struct cr_chunk_s *next; /* lock: the source's list */
} cr_chunk_t;

/* Where a user pool's memory comes from (the policy, and what it gave). */
typedef struct cr_source_s {
  void *(*raw_alloc)(intptr_t pool_id, size_t *bytes);
  int (*raw_free)(intptr_t pool_id, void *ptr, size_t bytes);
  intptr_t pool_id;
  size_t granularity;
  bool fixed, keep_all;
  bool asked;         /* lock(backend->lock): raw_alloc was called (a fixed pool asks once) */
  cr_chunk_t *chunks; /* lock(backend->lock) */
} cr_source_t;

typedef struct cr_backend_s {
  cr_lock_t lock;
  cr_source_t *source;        /* NULL: the OS (the default pool); else a user pool's policy */
  cr_region_t *slab_regions;  /* lock */
  cr_region_t *large_regions; /* lock */
  cr_region_t *free_descs;    /* lock: recycled descriptors (by next) */
  _Atomic(size_t) dirty_bytes; /* free but unpurged bytes (large-region pages and slabs): written
                                 under lock, read relaxed without it by a free deciding to purge */
  _Atomic(size_t) slab_bytes; /* slabs in use (written under lock; read relaxed for the budget) */
  _Atomic(size_t) mapped_bytes; /* bytes mapped from the OS (regions + own mappings) */
  _Atomic(size_t) peak_mapped;  /* the highest mapped_bytes so far */
  _Atomic(size_t) own_count;    /* own mappings of the biggest blocks (the OS's heap only) */
  _Atomic(size_t) own_bytes;    /* and their bytes (a part of mapped_bytes) */
  _Atomic(uint64_t) released;   /* bytes given back to the OS so far: purged or unmapped */
} cr_backend_t;

/* ---- backend.c: regions, slabs, large blocks ----------------------------- */
/* ---- backend_user.c: a user pool's memory (be->source set) ---------------
 * Memory for a user region of at least need bytes (be->lock held): the rest
 * of a chunk, up to the largest region, else a new chunk; *size gets the
 * region's size.  NULL when raw_alloc refuses (or a fixed pool has asked). */
char *cr_user_region_memory(cr_backend_t *be, size_t need, size_t *size);
/* A block too big for a region: a chunk of its own (a free one kept from
 * before if big enough), marked in the page map; NULL when refused.
 * cr_user_own_unmap gives it back (to raw_free unless the pool keeps all). */
char *cr_user_own_map(cr_backend_t *be, size_t bytes);
void cr_user_own_unmap(cr_backend_t *be, char *p, size_t bytes);
/* Descriptors of user-pool chunks (metadata memory, recycled). */
cr_chunk_t *cr_chunk_desc_alloc(void);
void cr_chunk_desc_free(cr_chunk_t *c);
void cr_chunk_desc_fork_lock(bool take); /* fork handlers */
/* A 16 KB-aligned slab registered in the backref table; NULL when the OS
 * refuses.  cr_backend_slab_free takes it back; its pages stay resident
 * while the backend's free resident bytes stay under dirty_max. */
cr_block_t *cr_backend_slab_alloc(cr_backend_t *be);
void cr_backend_slab_free(cr_backend_t *be, cr_block_t *b, size_t dirty_max);
/* A block of bytes (a power of two from 16 KB up to a large region),
 * aligned to its size, cut from the large regions and registered in the
 * backref table: a medium block (a user pool's slabs come this way too).
 * Counted in slab_bytes.  NULL when the OS refuses.  cr_backend_span_free
 * takes it back as cr_backend_block_free takes a large block. */
cr_block_t *cr_backend_span_alloc(cr_backend_t *be, size_t bytes);
void cr_backend_span_free(cr_backend_t *be, cr_block_t *b, size_t bytes, size_t dirty_max);
/* A page-granular block of bytes (<= CORONA_LARGE_REGION_SIZE) from a large
 * region; *zeroed tells whether it reads as zero.  NULL when the OS refuses. */
char *cr_backend_block_alloc(cr_backend_t *be, size_t bytes, cr_region_t **region, bool *zeroed);
char *cr_backend_block_alloc_aligned(cr_backend_t *be, size_t bytes, size_t align, cr_region_t **region, bool *zeroed);
/* Frees the pages; they stay resident for reuse (until the decay time) while
 * the backend's resident free bytes stay under dirty_max. */
void cr_backend_block_free(cr_backend_t *be, cr_region_t *r, char *block, size_t bytes, size_t dirty_max);
/* A large block of a region, for cr_backend_blocks_free. */
typedef struct cr_span_s {
  cr_region_t *region;
  char *block;
  size_t bytes;
} cr_span_t;
/* Frees n blocks (at most CORONA_RELEASE_BATCH) as cr_backend_block_free
 * does, under one take of the lock (the large-object cache evicts several
 * at a time). */
void cr_backend_blocks_free(cr_backend_t *be, const cr_span_t *spans, size_t n, size_t dirty_max);
/* Shrinks, or grows into free following pages; false when it cannot grow. */
bool cr_backend_block_resize(cr_backend_t *be, cr_region_t *r, char *block, size_t old_bytes, size_t new_bytes,
                             size_t dirty_max);
/* Purges free pages idle longer than decay_ms and unmaps wholly free large
 * regions (everything free when force). */
void cr_backend_decay(cr_backend_t *be, uint64_t now, uint64_t decay_ms, bool force);
/* The oldest dirty_since of the regions with free pages a decay can still
 * purge (ms); 0 when none (1, parts of huge or OS pages, counts as none:
 * only a free of their neighbours lets them go). */
uint64_t cr_backend_dirty_since(cr_backend_t *be);
/* Unmaps the large regions with no block in use (the soft heap limit). */
void cr_backend_release_empty(cr_backend_t *be);
/* Free pages resident in the regions (purged at the decay time), read under
 * the lock: what the introspection calls report as cached. */
size_t cr_backend_dirty_bytes(cr_backend_t *be);
/* Purges free pages, oldest first, until at most dirty_max are resident. */
void cr_backend_trim(cr_backend_t *be, size_t dirty_max);
/* Mappings of their own for the biggest blocks (bytes: 16 KB multiple, or a
 * huge-page multiple when huge).  align 0: the block is 16 KB aligned (huge:
 * huge-page aligned); else (default heap only, a power of two above 16 KB)
 * block + offset is a multiple of align. */
char *cr_backend_own_map(cr_backend_t *be, size_t bytes, bool huge, size_t align, size_t offset);
void cr_backend_own_unmap(cr_backend_t *be, char *p, size_t bytes);
/* Cuts the own mapping [p, p+bytes) in two at p+at (a 16 KB multiple), or
 * joins the adjacent own mappings [p, p+at) and [p+at, p+bytes) into one:
 * from then on each result is unmapped or remapped alone, as any own
 * mapping (cr_os_cut).  false, with nothing changed, where
 * the OS cannot, and for a user pool (its chunks go back whole). */
bool cr_backend_own_split(cr_backend_t *be, char *p, size_t bytes, size_t at);
bool cr_backend_own_join(cr_backend_t *be, char *p, size_t bytes, size_t at);
/* Moves the pages of the own mapping [src, src+bytes) onto [dst,
 * dst+bytes), a part of the own mapping [base, base+size), without a copy:
 * they replace what was there, and the source mapping is gone.  false,
 * with both unchanged, where the OS cannot. */
bool cr_backend_own_move_into(cr_backend_t *be, char *src, size_t bytes, char *base, size_t size, char *dst);
/* Resizes an own mapping without copying (in place, or by moving its pages);
 * NULL with everything unchanged when it cannot. */
char *cr_backend_own_remap(cr_backend_t *be, char *p, size_t old_bytes, size_t new_bytes, bool huge);

/* The backend's byte counters, kept by backend.c and backend_own.c (relaxed
 * atomics: statistics, and the peak is a best effort under races). */
static inline void cr_backend_mapped_add(cr_backend_t *be, size_t n) {
  size_t now = atomic_fetch_add_explicit(&be->mapped_bytes, n, memory_order_relaxed) + n;
  size_t peak = atomic_load_explicit(&be->peak_mapped, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&be->peak_mapped, &peak, now, memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

static inline void cr_backend_released_add(cr_backend_t *be, size_t n) {
  atomic_fetch_add_explicit(&be->released, n, memory_order_relaxed);
}

#endif /* CORONA_BACKEND_H */
