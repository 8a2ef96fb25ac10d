/* types.h — every shared struct of corona, with its invariants and who may
 * touch each field.  Three kinds of field appear below:
 *   owner   : read and written only by the thread that owns the struct
 *             (a block's owner is the TLS in block->owner);
 *   atomic  : shared, accessed only through sync.h operations whose memory
 *             order is named at the call site;
 *   lock(X) : guarded by lock X.
 * "Immutable while owned" fields are written before the block is published
 * to other threads (by handing out an object) and not changed until the
 * block is empty again. */
#ifndef CORONA_TYPES_H
#define CORONA_TYPES_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct cr_block_s cr_block_t;
typedef struct cr_tls_s cr_tls_t;
typedef struct cr_pool_s cr_pool_t;

/* The lock of the slow paths (sync.h): 0 free, 1 held, 2 held and maybe
 * waited on by a thread asleep in the OS. */
typedef struct cr_lock_s {
  atomic_int locked;
} cr_lock_t;

/* Marker in a block's public free list: the block is orphaned (or being
 * orphaned), so a remote free must not notify any mailbox.  It also ends
 * the list, like NULL does. */
#define CR_UNUSABLE ((void *)(uintptr_t)1)

/* Which of its owner's lists a block is on (block->list). */
enum cr_list_e {
  CR_LIST_NONE = 0,  /* empty pool, global pool, orphan list, or free */
  CR_LIST_ACTIVE,    /* tls->bins.block[CR_ROW(bin)] */
  CR_LIST_PARTIAL,   /* tls->partial[bin]: has free objects */
  CR_LIST_FULL,      /* tls->full[bin]: exhausted when it was last active */
  CR_LIST_OWED       /* thread exit: a mailbox notice for it is still on its way */
};

/* ---- 16 KB slab block ---------------------------------------------------
 * Layout: objects are carved downwards from the block end, so an object of
 * class c is aligned to the largest power of two dividing c (the end is
 * 16 KB aligned); the first object never overlaps the header
 * (CORONA_BLOCK_HEADER bytes).
 *
 * Line 0 is the only line other threads write (public_free, mail_next);
 * line 1 holds what the owner's fast paths touch, so a remote free never
 * invalidates the owner's line (brief §2, note a).
 *
 * Object accounting: allocated = objects that left the block and have not
 * come back, where "left" means moved to the owner's bin lists (tls->bins
 * .free/.local) and "came back" means pushed on
 * free_list by the owner or taken from public_free by the owner.  Objects in
 * public_free or in the bin lists count as allocated.  So allocated == 0
 * implies public_free is empty and the block is not in any mailbox, and a
 * block whose free_list and bump area are empty while the bin list is empty
 * has allocated == capacity.
 *
 * Mailbox protocol: the remote freer whose CAS turns public_free from NULL
 * into a list is the one that pushes the block onto its owner's mailbox for
 * this bin; while the block sits in a mailbox, public_free stays non-NULL
 * (only the owner clears it, and only after taking the block out of the
 * mailbox), so a block is in at most one mailbox at a time.  An orphaned
 * block's list holds CR_UNUSABLE instead of NULL, so nobody notifies. */
/* Guards: the second word of every 16-byte slot of the header holds the
 * block's own address (cr_block_guard), from the moment the block serves a
 * class.  The header lies in the slab beside the objects, so an address in
 * it can pass free's active-block test (block bits equal, the class's
 * alignment met); that word is what free reads as the free mark, so a free
 * of any such address looks like a double free and goes to the slow path,
 * which refuses it (cr_is_object_start) before anything is written.  Data
 * thus sits in the first word of each slot only. */
#define CR_GUARD(n) cr_block_t *guard##n
struct cr_block_s {
  /* line 0: written by other threads */
  alignas(CORONA_CACHE_LINE) _Atomic(void *) public_free; /* atomic: remote frees (CAS push), owner takes all (exchange) */
  CR_GUARD(0);
  _Atomic(cr_block_t *) mail_next; /* atomic: mailbox link, written by the notifying freer */
  CR_GUARD(1);
  cr_pool_t *pool;                 /* immutable while owned */
  CR_GUARD(2);
  uint32_t bin;                    /* immutable while owned; remote notifiers read it */
  uint32_t backref;                /* backref index (backref.c), set while the backend lends
                                      the slab out; the table points back to this block */
  CR_GUARD(3);

  /* line 1: owner only, what the slow paths of malloc and free touch */
  alignas(CORONA_CACHE_LINE) void *free_list; /* owner: local frees, linked through the objects' first word */
  CR_GUARD(4);
  char *bump;              /* owner: next object to carve (objects are carved downwards, a
                              batch at a time, into the bin list); exhausted when below
                              block + header */
  CR_GUARD(5);
  _Atomic(cr_tls_t *) owner; /* atomic: written by the owner (or the adopter of an orphan);
                                other threads only compare it against their own TLS or, as
                                mailbox notifier, read it with acquire */
  CR_GUARD(6);
  int32_t allocated;       /* owner: see accounting above */
  int32_t threshold;       /* owner: a local free with allocated <= threshold after the
                              decrement takes the slow path; -1 while active (never),
                              0 on the partial list (empty), capacity*3/4 on the full list */
  CR_GUARD(7);

  /* line 2: owner only, block lists */
  uint32_t object_size;    /* owner: immutable while owned */
  uint16_t capacity;       /* owner: objects per block for this class */
  uint8_t list;            /* owner: enum cr_list_e */
  CR_GUARD(8);
  cr_block_t *next;        /* owner (or lock of the list holding an unowned block) */
  CR_GUARD(9);
  cr_block_t *prev;        /* owner */
  CR_GUARD(10);
  uint64_t idle_since;     /* lock(pool->lock): when the block entered the pool's
                              empty list (ms), for time-based release */
  CR_GUARD(11);
};

_Static_assert(offsetof(cr_block_t, free_list) == CORONA_CACHE_LINE, "owner fields must start on line 1");
_Static_assert(sizeof(cr_block_t) == CORONA_BLOCK_HEADER, "the header is exactly its 16-byte slots");
#define CR_GUARD_AT(n) _Static_assert(offsetof(cr_block_t, guard##n) == 16 * (n) + 8, "guard " #n " misplaced");
CR_GUARD_AT(0) CR_GUARD_AT(1) CR_GUARD_AT(2) CR_GUARD_AT(3) CR_GUARD_AT(4) CR_GUARD_AT(5)
CR_GUARD_AT(6) CR_GUARD_AT(7) CR_GUARD_AT(8) CR_GUARD_AT(9) CR_GUARD_AT(10) CR_GUARD_AT(11)
#undef CR_GUARD_AT
#undef CR_GUARD

/* Doubly linked list of blocks (partial or full) of one bin. */
typedef struct cr_blocklist_s {
  cr_block_t *head;
} cr_blocklist_t;

/* One size class of one thread.  malloc's fast path pops `free`; free's
 * fast path pushes objects of the active block on `local`; when `free` runs
 * dry the two swap.  Both lists hold objects checked out of the active
 * block (carved from its bump area or taken from its free_list), and keeping
 * them here, not in the block header, means neither fast path touches a
 * header: 16 KB-aligned headers all fall into the same L1 sets and would
 * evict each other.  Two lists, not one, so malloc never pops the object a
 * free has just written (that store-to-load round trip through the same
 * word costs more than the whole fast path). */
/* The block of the rows that serve no class: bits 4..13 of an object's block address, as the free
 * fast path masks it, are zero; this value has bit 4 set. */
#define CR_BLOCK_NEVER ((cr_block_t *)(uintptr_t)CORONA_MIN_ALIGN)

/* Rows of the bin columns: one per page-map kind (pagemap's enum cr_kind_e),
 * so free indexes them by the kind itself: row 0 for "not ours", row
 * CR_ROW(bin) for small class bin, and the two kinds above the small ones. */
#define CR_ROWS (CORONA_NUM_BINS + 3)
#define CR_ROW(bin) ((bin) + 1)

/* The bins of one thread, a column per field (x86 reaches row k of each
 * column with one scaled address, where an array of structs would need a
 * shift and an add on both fast paths).  Rows that serve no class (0 and the
 * two last) hold block CR_BLOCK_NEVER and mask 0: nothing matches them. */
typedef struct cr_bins_s {
  void *free[CR_ROWS];        /* owner: objects ready to hand out: of `block`, and up to
                                 CORONA_HOT_OBJECTS a turn (hot, counted in tls->hot) just freed
                                 from other blocks, this thread's or other threads' of the same pool */
  void *local[CR_ROWS];       /* owner: objects of `block` freed by this thread */
  cr_block_t *block[CR_ROWS]; /* owner: the active block; never NULL (cr_block_empty) */
  uintptr_t mask[CR_ROWS];    /* immutable: what free's active-block test keeps of a pointer: the
                                 bits above the block and those below the class's alignment (the
                                 largest power of two dividing it), so that only pointers at that
                                 alignment match: every interior pointer of a power-of-two class
                                 fails the test and meets the full checks. */
} cr_bins_t;

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

/* ---- per-thread data ----------------------------------------------------
 * One per (thread, pool).  Everything is owner-only except mailbox[] (atomic,
 * pushed by remote freers) and the pool-list links (lock(pool->lock)).
 * The fast paths read `bins` only: lines no other thread writes. */
struct cr_tls_s {
  cr_bins_t bins;
  cr_pool_t *pool;                     /* immutable */
  cr_blocklist_t partial[CORONA_NUM_BINS];
  cr_blocklist_t full[CORONA_NUM_BINS];
  uint32_t hot[CORONA_NUM_BINS];       /* owner: objects of other blocks put on bins.free by
                                          frees since that list last ran dry */
  cr_block_t *empty;                   /* owner: LIFO of empty blocks (linked by next) */
  uint32_t empty_count;                /* owner */
  uint32_t kept_empty;                 /* owner: empty blocks resting on partial lists */
  _Atomic(bool) counting;              /* statistics count calls (a copy of cr_stats_on on a line
                                          the slow paths touch anyway); written under pool->lock */
  uint32_t loc_count;                  /* owner: local large-object cache: entries */
  size_t loc_bytes;                    /* owner: and their block bytes */
  struct cr_large_s *loc;              /* owner: most recent first */
  cr_tls_t *pool_next, *pool_prev;     /* lock(pool->lock): the pool's thread list */
#if CORONA_STATS
  cr_stats_t stats;                    /* owner writes; summed under pool->lock */
#endif

  /* Remote freers push here: kept on lines of their own. */
  alignas(CORONA_CACHE_LINE) _Atomic(cr_block_t *) mailbox[CORONA_NUM_BINS];
  /* Set by a notifier after its push, cleared by the owner before a sweep
   * of all mailboxes: a hint that lets the sweep be skipped when no mail
   * came (the mailboxes themselves stay the truth). */
  _Atomic(uint32_t) mail_pending;
};

/* ---- backend: regions ---------------------------------------------------
 * All memory comes from OS regions (CORONA_REGION_SIZE for slabs,
 * CORONA_LARGE_REGION_SIZE for large blocks), aligned to their size, except large objects of more than CORONA_LARGE_REGION_MAX, which get
 * a mapping of their own.  A slab region is cut into 16 KB slabs; a large
 * region into page-granular blocks tracked by bitmaps, so freed neighbours
 * coalesce by construction (a free run of pages is one block) and a region
 * whose pages are all free is unmapped.  Descriptors live in metadata memory,
 * not in the region, so every page of a region can be purged. */
#define CR_REGION_PAGES (CORONA_LARGE_REGION_SIZE / CORONA_PAGE_SIZE)
#define CR_REGION_WORDS (CR_REGION_PAGES / 64)

typedef struct cr_region_s cr_region_t;
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
  uint64_t dirty_since; /* oldest free-but-unpurged page (ms), 0 = none */
  uint64_t free_map[CR_REGION_WORDS];  /* large region: 1 = page free */
  uint64_t dirty_map[CR_REGION_WORDS]; /* 1 = free page that may hold data (slab region: its first
                                          CORONA_REGION_SIZE / CORONA_PAGE_SIZE bits) */
};

/* A piece of memory a user pool's raw_alloc gave: returned to raw_free with
 * exactly these ptr and bytes.  Regions are cut from [carve, end); an "own"
 * chunk holds one big block. */
typedef struct cr_chunk_s {
  char *ptr;
  size_t bytes;
  char *carve, *end;   /* 16 KB aligned */
  char *start;         /* the first carve position */
  uint8_t kind_before; /* page-map kind of [start, end) before the pool took it */
  bool own;            /* dedicated to one block */
  bool own_free;       /* own, and its block is free (kept: keep_all_memory, or reset) */
  struct cr_chunk_s *next;
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
  size_t dirty_bytes;         /* lock: free but unpurged bytes (large-region pages and slabs) */
  _Atomic(size_t) slab_bytes; /* slabs in use (written under lock; read relaxed for the budget) */
  _Atomic(size_t) mapped_bytes; /* bytes mapped from the OS (regions + own mappings) */
} cr_backend_t;

/* ---- memory pool --------------------------------------------------------
 * The default heap is one of these (cr_default_pool); user pools will be
 * further instances of the same struct. */
typedef struct cr_orphans_s {
  alignas(CORONA_CACHE_LINE) cr_lock_t lock;
  _Atomic(cr_block_t *) head; /* lock for changes; read relaxed without it to skip
                                 taking the lock when the list is empty */
} cr_orphans_t;

/* Global large-object cache: free large blocks kept for reuse, binned by
 * block size, with one list in age order for time-based release. */
#define CR_LOC_BINS 352
typedef struct cr_loc_s {
  cr_lock_t lock;
  struct cr_large_s *bins[CR_LOC_BINS]; /* lock: most recent first */
  struct cr_large_s *oldest, *newest;   /* lock: age-ordered list */
  size_t bytes;                         /* lock: block bytes cached */
} cr_loc_t;

struct cr_pool_s {
  cr_lock_t lock;          /* guards threads, free_tls, empty, empty_count */
  uint32_t id;             /* 0: the default pool; user pools 1..CORONA_MAX_POOLS-1 */
  _Atomic(uint32_t) state; /* CR_POOL_LIVE, or CR_POOL_DEAD after destroy */
  _Atomic(uint64_t) gen;   /* changes at destroy: per-thread entries of the old pool go stale */
  cr_source_t source;      /* user pools */
  cr_tls_t *threads;       /* lock: live per-thread structs */
  cr_tls_t *free_tls;      /* lock: recycled per-thread structs (linked by pool_next) */
  cr_block_t *empty;       /* lock: global pool of empty blocks (linked by next) */
  size_t empty_count;      /* lock */
  cr_orphans_t orphans[CORONA_NUM_BINS];
  cr_loc_t loc;
  _Atomic(size_t) large_in_use; /* block bytes of live large objects */
  _Atomic(size_t) own_slack;    /* bytes of live objects' own mappings beyond their needs */
  cr_backend_t backend;
  _Atomic(uint64_t) next_decay; /* when the next time-based release is due (ms) */
  cr_lock_t decay_lock;         /* one releasing thread at a time (try-lock) */
  _Atomic(bool) over_soft_limit; /* mapped bytes were above the soft limit at the last check */
#if CORONA_STATS
  cr_stats_t stats;             /* exited threads, and events without a TLS */
  _Atomic(size_t) small_in_use; /* bytes of slab blocks out of the backend (serving objects,
                                   or empty in a thread's or the pool's cache) */
  _Atomic(size_t) peak_in_use;  /* highest small_in_use + large_in_use seen */
#endif
};

enum { CR_POOL_FREE = 0, CR_POOL_LIVE = 0x6c697665, CR_POOL_DEAD = 0x64656164 };

/* ---- large objects ------------------------------------------------------
 * The header sits in the CORONA_LARGE_HEADER bytes right below the user
 * pointer; for alignment <= 64 it is also the start of the block.  A live
 * object's header is registered in the backref table; a cached one has
 * user == NULL, so freeing it again is caught.  While cached, the cache links
 * live in the (unused) user memory: see cr_lnode_t in large.c. */
typedef struct cr_large_s {
  uint32_t backref;    /* backref index of this header */
  uint32_t slack_pages; /* own mapping kept bigger than its object needs: those pages,
                           counted in pool->own_slack (0 otherwise) */
  char *block;         /* start of the block (page aligned) */
  size_t block_size;   /* bytes from block to the block's end */
  size_t size;         /* bytes requested */
  _Atomic(void *) user; /* the user pointer, NULL while cached; atomic: the free that turns it
                           NULL (CAS) is the one free of the object, racing double frees lose */
  cr_pool_t *pool;
  cr_region_t *region; /* large region it was cut from; NULL: own mapping */
  uint64_t cached_at;  /* ms, while in a cache */
} cr_large_t;

_Static_assert(sizeof(cr_large_t) == CORONA_LARGE_HEADER, "large header size");


#endif /* CORONA_TYPES_H */
