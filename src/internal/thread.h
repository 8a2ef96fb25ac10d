/* thread.h (layer: thread) — per-thread state and the heap it belongs to:
 * the bins of small objects (bin.c, bin_swap.c), the per-thread struct and its life
 * (tls.c), the heap's shared lists of empty and orphaned blocks (pool.c),
 * large objects and their caches (large.c, large_cache.c), and the statistics counters
 * (counters.c). */
#ifndef CORONA_THREAD_H
#define CORONA_THREAD_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
#include "block.h"
#include "config.h"
#include "meta.h"
#include "sync.h"

typedef struct cr_tls_s cr_tls_t;

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


/* tls->hot[bin] of a class with no turn running: above the limit, so frees
 * put nothing on the free list (the fast path's test is `< limit`), and
 * distinct from a turn that reached the limit: the heap profiler counts
 * the hot objects of a turn as allocated (bin_swap.c, sample_take), and a new
 * thread's or a collected class's phantom turn would count bytes nobody
 * allocated (a short thread touching many classes: five times the
 * samples). */
#define CR_HOT_NO_TURN (CORONA_HOT_OBJECTS + 1)

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

/* Remote frees of one class held back by the freeing thread: objects of one
 * block it does not own, each marked (so a second free of one is caught as
 * a double free) and linked through its first word, head .. tail, pushed
 * onto the block's public list together (cr_block_free_chain): one atomic
 * operation on the block, and at most one mailbox notice, for a run of
 * frees into the same block instead of one per object (a consumer frees a
 * producer's objects in about the order they were carved).  The chain goes
 * out when it is CORONA_REMOTE_CHAIN long, when a free of the class meets
 * another block, when the thread needs a new block (bin_refill), and
 * whenever its bins go home (thread exit, corona_collect, a reclaim before
 * a retry), so at most CORONA_REMOTE_CHAIN objects per class wait here and
 * none outlives the thread. */
typedef struct cr_remote_s {
  cr_block_t *block; /* owner: the block of the held objects; NULL when none */
  void *head, *tail; /* owner: the held objects, most recent first */
  uint32_t count;    /* owner: how many (at most CORONA_REMOTE_CHAIN) */
} cr_remote_t;

/* One entry of a thread's local cache of large blocks: the block's size
 * beside its header, so that a lookup scans one array in the TLS instead
 * of a list through the headers of the cached blocks (a page each, cold:
 * that walk was most of a large malloc's own time in suite-buffers mid). */
typedef struct cr_loc_slot_s {
  size_t bytes;         /* h->block_size */
  struct cr_large_s *h; /* the cached block's header */
} cr_loc_slot_t;
_Static_assert(CORONA_NUM_BINS <= 64, "cr_tls_t.remote_held and .sample_pending have a bit per class");

/* ---- per-thread data ----------------------------------------------------
 * One per (thread, pool).  Everything is owner-only except the inbox (atomic,
 * pushed by remote freers) and the pool-list links (lock(pool->lock)).
 * The fast paths read `bins` only: lines no other thread writes. */
struct cr_tls_s {
  cr_bins_t bins;   /* first: the fast paths reach its columns with the smallest offsets */
  cr_pool_t *pool;                     /* immutable */
  cr_blocklist_t partial[CORONA_NUM_BINS];
  cr_blocklist_t full[CORONA_NUM_BINS];
  uint32_t hot[CORONA_NUM_BINS];       /* owner: objects of other blocks put on bins.free by
                                          frees since that list last ran dry; CR_HOT_NO_TURN
                                          (none, and none may be) before the thread's first
                                          refill of the class */
  _Atomic(uint32_t) hot_limit;         /* what hot[bin] must stay below for a free to keep its object
                                          hot: CORONA_HOT_OBJECTS, 0 while the thread counts calls
                                          (one compare on free's path instead of two); written with
                                          counting, under pool->lock */
  uint64_t sample_left;                /* owner: heap profiler, bytes the thread may be handed before
                                          its next sample point (cr_sample_hook) */
  uint64_t sample_pending;             /* owner: heap profiler, bins whose next hand-out is a sample */
  uint64_t remote_held;                /* owner: bit b set when remote[b] holds a chain */
  cr_remote_t remote[CORONA_NUM_BINS]; /* owner: remote frees held back, per class */
  cr_block_t *empty;                   /* owner: LIFO of empty blocks (linked by next) */
  uint32_t empty_count;                /* owner */
  uint32_t kept_empty;                 /* owner: empty blocks resting on partial lists, in 16 KB
                                          slabs (a medium block counts its span) */
  _Atomic(uint8_t) counting;           /* CR_COUNT_* bits, on a line the slow paths touch anyway;
                                          written under pool->lock (cr_pool_set_counting) */
  _Atomic(uint32_t) cache_state;       /* CR_CACHE_*: what the purger knows of the caches below
                                          (empty, loc): HOLDING is set by the owner under pool->lock,
                                          MARKED by the purger under pool->lock, EMPTY by the owner
                                          (from MARKED) when it hands them back */
  uint64_t cache_since;                /* lock(pool->lock): when cache_state last became HOLDING (ms) */
  uint32_t loc_count;                  /* owner: local large-object cache: entries of loc */
  _Atomic(size_t) loc_bytes;           /* owner: and their block bytes (relaxed stores, no RMW: the
                                          heap's growth trim sums them under pool->lock) */
  cr_loc_slot_t loc[CORONA_LOCAL_LOC_MAX_COUNT]; /* owner: oldest first; a lookup reads
                                          these sizes, not the cached blocks' cold headers */
  cr_tls_t *pool_next, *pool_prev;     /* lock(pool->lock): the pool's thread list */
#if CORONA_STATS
  cr_stats_t stats;                    /* owner writes; summed under pool->lock */
#endif
  cr_inbox_t inbox; /* a block's owner is its thread's inbox (block.h); atomic, pushed by
                       remote freers, on lines of its own */
  /* Last, and kept when the TLS is recycled (cr_pool_tls_alloc clears what
   * comes before it): a thread that takes over another's stack (glibc
   * reuses the stacks of exited threads) and samples where it did finds
   * the stack there, checked frame by frame like any memo (os.h). */
  cr_os_stack_memo_t stack_memo; /* owner: heap profiler, the last samples' stacks */
};

/* What a thread counts (tls->counting): calls, for the statistics (a copy of
 * cr_stats_on: no hot objects on the free lists then, every free is seen);
 * the objects its slow paths hand out, for the heap profiler
 * (cr_sample_hook: every swap of a local list takes the checked route). */
enum { CR_COUNT_CALLS = 1, CR_COUNT_SAMPLES = 2 };

/* A thread's caches as the purger (policy layer) sees them.  A thread that
 * sleeps cannot be robbed of its owner-only caches, so the purger marks
 * those idle for DECAY_MS and the owner hands them back at its next slow
 * path (cr_tls_decay_check); at thread exit they go back anyway. */
enum { CR_CACHE_EMPTY = 0, CR_CACHE_HOLDING = 1, CR_CACHE_MARKED = 2 };

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
  size_t count;                         /* lock: blocks cached */
  size_t own_count, own_bytes;          /* lock: of them, mappings of their own (region NULL) */
} cr_loc_t;

struct cr_pool_s {
  cr_lock_t lock;          /* guards threads, free_tls, empty, empty_oldest, empty_count */
  uint32_t id;             /* 0: the default pool; user pools 1..CORONA_MAX_POOLS-1 */
  _Atomic(uint32_t) state; /* CR_POOL_LIVE, or CR_POOL_DEAD after destroy */
  _Atomic(uint64_t) gen;   /* changes at destroy: per-thread entries of the old pool go stale */
  cr_source_t source;      /* user pools */
  cr_tls_t *threads;       /* lock: live per-thread structs */
  _Atomic(uint32_t) thread_count; /* lock (read relaxed without it): the structs on threads */
  cr_tls_t *free_tls;      /* lock: recycled per-thread structs (linked by pool_next) */
  cr_block_t *empty;       /* lock: pool's list of empty blocks, newest first (linked by next,
                              and back by prev, so the oldest leave without a walk) */
  cr_block_t *empty_oldest; /* lock: its last block; NULL when it is empty */
  size_t empty_count;      /* lock */
  cr_orphans_t orphans[CORONA_NUM_BINS];
  cr_loc_t loc;
  _Atomic(size_t) large_in_use; /* block bytes of live large objects */
  _Atomic(size_t) own_slack;    /* bytes of live objects' own mappings beyond their needs */
  cr_backend_t backend;
  _Atomic(uint64_t) next_decay; /* when the next time-based release is due (ms) */
  cr_lock_t decay_lock;         /* one releasing thread at a time (try-lock) */
  _Atomic(bool) over_soft_limit; /* mapped bytes were above the soft limit at the last check */
  _Atomic(size_t) mapped_seen;   /* decay_lock (read relaxed): mapped bytes at the last growth trim */
  _Atomic(size_t) live_high;     /* policy: the highest live bytes (large in use + slab bytes) the
                                    dirty budget saw since the last time-based release; racy
                                    relaxed max (a lost raise only shrinks the budget) */
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
 * live in the (unused) user memory: see cr_lnode_t in large_cache.c.
 * Who writes: while the object is live, the thread that holds it, in
 * malloc, realloc or free (a program gives one object to one call at a
 * time; the one race it may start, two frees, is settled on `user`); the
 * pointer's handing-out publishes the fields to any thread it reaches.
 * While cached, the cache that holds it: a thread's local cache (owner), or
 * the pool's global one (lock(pool->loc.lock)). */
typedef struct cr_large_s {
  uint32_t backref;    /* immutable while live: backref index of this header */
  uint32_t slack_pages; /* holder: own mapping kept bigger than its object needs: those pages,
                           counted in pool->own_slack (0 otherwise) */
  char *block;         /* holder: start of the block (page aligned) */
  size_t block_size;   /* holder: bytes from block to the block's end */
  size_t size;         /* holder: bytes requested */
  _Atomic(void *) user; /* the user pointer, NULL while cached; atomic: the free that turns it
                           NULL (CAS) is the one free of the object, racing double frees lose */
  cr_pool_t *pool;     /* immutable */
  cr_region_t *region; /* holder: large region it was cut from; NULL: own mapping */
  union {
    uint64_t cached_at;          /* the cache holding it: ms, while in a cache */
    struct cr_sample_s *sample;  /* holder: while live, the heap profiler's record of it when it was
                                    sampled (profile.c), else NULL (set by every allocation) */
  };
} cr_large_t;

_Static_assert(sizeof(cr_large_t) == CORONA_LARGE_HEADER, "large header size");

/* ---- bin.c, bin_swap.c: the per-thread bins ------------------------------ */
/* Gives every row of the bins of a new (or zeroed) TLS its block and mask. */
void cr_bins_init(cr_tls_t *tls);

/* Slow path of small malloc of size bytes (bin's class) for a thread with
 * its TLS: the bin's free list is empty.  Returns NULL with errno ENOMEM on
 * failure. */
void *cr_malloc_small_slow(cr_tls_t *tls, size_t size); /* finds the bin again from size (bin_swap.c) */
/* bin.c, for bin_swap.c: the bin lists of bin are empty: a block with space
 * for it, the active one first (remote frees may have come back to it),
 * made active; NULL when none can be had.  cr_bin_fill checks objects of b
 * (the active block, with space) out into the empty list *list and returns
 * how many. */
cr_block_t *cr_bin_refill(cr_tls_t *tls, unsigned bin);
uint32_t cr_bin_fill(void **list, cr_block_t *b);

/* The heap profiler (profile.c, API layer), while it samples; NULL when it
 * does not (set before, cleared after, every thread's CR_COUNT_SAMPLES bit
 * is switched: relaxed, a thread that sees it late samples a few
 * allocations late).  Objects reach a bin's free list in two ways: a slow
 * path hands a list over (a swap or a refill), and a free puts a hot object
 * there (tls->hot counts those since the list last ran dry).  Whenever a
 * slow path of a sampling thread of the default heap is about to hand a
 * list of `*allow` size-class objects (object_size bytes) over, the list
 * having run dry (so the `hot` hot objects put there since the last time
 * have all been allocated), it takes their bytes from tls->sample_left;
 * where they do not fit, or the bin has a sample pending, it asks the hook
 * instead, which answers how many of them the thread may allocate before
 * its next sample point (*allow, at least 1; the rest wait on the bin's
 * local list), or gives the sampled object that serves this allocation of
 * size bytes.  beyond_drops: the list's bytes were taken from
 * tls->sample_left at a bound past its real end (bin_swap.c, sample_take), so a
 * point beyond the list is dropped and the next drawn afresh. */
typedef void *(*cr_sample_hook_t)(cr_tls_t *tls, size_t size, size_t object_size, uint32_t hot, uint32_t *allow,
                                  bool beyond_drops);
extern _Atomic(cr_sample_hook_t) cr_sample_hook;

/* A local free made block b reach its threshold (empty, or reusable; or
 * any free while statistics count calls). */
void cr_block_threshold_reached(cr_tls_t *tls, cr_block_t *b);
/* Resets the thresholds of tls's non-active blocks after counting was
 * switched on or off (owner only). */
void cr_bins_set_thresholds(cr_tls_t *tls);
/* Publishes every chain of remote frees tls holds back (cr_remote_t). */
void cr_bins_remote_flush(cr_tls_t *tls);
/* A free by tls of p (marked), an object of another thread's block b of
 * the same pool, when tls's chain for b's class holds none of b's objects
 * or is full (cr_free_not_owned appends to any other chain of b's): that
 * chain goes out, and p starts a new one. */
void cr_bins_remote_start(cr_tls_t *tls, cr_block_t *b, void *p);
/* Drains every mailbox of tls (remote frees become reusable). */
void cr_bins_drain_all(cr_tls_t *tls);
/* Drains the mailboxes, then hands the thread's empty blocks to the pool. */
void cr_bins_flush_empty(cr_tls_t *tls);
/* Only the empty blocks the thread caches (resting and pooled) to the pool. */
void cr_bins_hand_back_empty(cr_tls_t *tls);
/* Both lists of every bin go home (bin.c): thread exit, corona_collect and
 * a user pool's thread teardown. */
void cr_bins_home(cr_tls_t *tls);
/* Thread exit (bin_exit.c): orphans or releases every block of tls.  false
 * when some block is still owed a mailbox notice: tls must then never be
 * reused. */
bool cr_bins_release_all(cr_tls_t *tls);

/* ---- tls.c: per-thread data ------------------------------------------- */
/* The calling thread's TLS for the default pool; starts as cr_tls_empty, a
 * static TLS whose bins all hold the static empty block, so the first malloc
 * falls into the slow path without a separate "initialised?" test. */
extern _Thread_local cr_tls_t *cr_tls_current __attribute__((tls_model("initial-exec")));
extern cr_tls_t cr_tls_empty;
extern cr_block_t cr_block_empty;
/* Set when the thread's TLS was torn down at its exit (destructors that
 * run later may still call malloc and free). */
extern _Thread_local bool cr_tls_gone __attribute__((tls_model("initial-exec")));
/* Checked mode (debug.c): the thread's real TLS, NULL until created. */
extern _Thread_local cr_tls_t *cr_tls_inner __attribute__((tls_model("initial-exec")));
/* Creates (or recycles) the TLS of the calling thread for the default pool. */
cr_tls_t *cr_tls_create(cr_pool_t *pool);
/* Thread exit of one TLS: its caches and blocks go to its pool. */
void cr_tls_teardown(cr_tls_t *tls);
/* Has on_exit(value) run when this thread exits (cr_os_thread_exit: slot
 * 0 the default heap's TLS, 1 the table of user-pool TLS structs); a
 * failure is reported once per process (the thread keeps its blocks). */
void cr_thread_exit_hook(unsigned slot, void (*on_exit)(void *value), void *value);

CR_INLINE cr_tls_t *cr_tls_get(void) { return cr_tls_current; }
/* The calling thread's real TLS, also in checked mode; NULL if none yet. */
CR_INLINE cr_tls_t *cr_tls_own(void) {
  cr_tls_t *tls = cr_tls_current;
  return tls != &cr_tls_empty ? tls : cr_tls_inner;
}
/* What this layer asks of the policy layer above it, which fills these in
 * at initialisation (cr_init), before the first object: a lower layer calls
 * up only through them. */
typedef struct cr_policy_hooks_s {
  /* A thread is about to take a block from its heap's shared lists or the
   * backend, or has freed a large one: time-based release may be due
   * (cheap when it is not).  now: cr_os_now_ms(), which the caller has
   * read anyway or reads for it (a large free stamps the block with it). */
  void (*tick)(cr_pool_t *pool, uint64_t now);
  /* The OS refused memory: everything cached goes back before one retry
   * (tls: the calling thread's for pool, or NULL). */
  void (*reclaim)(cr_pool_t *pool, cr_tls_t *tls);
  /* How many free bytes pool's backend may keep resident before the decay
   * time (its dirty_max), and the slack of live own mappings. */
  size_t (*dirty_budget)(cr_pool_t *pool);
  /* How many block bytes of large regions pool's global large-object
   * cache may hold, and how many of mappings of their own; *keep_newest:
   * whether the newest mapping of its own may stay beyond that budget (so
   * that a big buffer freed and asked for again stays resident), which a
   * soft heap limit forbids. */
  size_t (*loc_budget)(cr_pool_t *pool);
  size_t (*own_budget)(cr_pool_t *pool, bool *keep_newest);
  /* A large allocation took new memory from the backend. */
  void (*grew)(cr_pool_t *pool);
  /* Memory went into one of pool's caches (a thread's, the pool's lists,
   * the backend's dirty pages), which the caller made visible under that
   * cache's lock before this call: wakes the purger where it sleeps with
   * nothing to do; with no purger thread yet, sets cr_purge_wanted.  Never
   * allocates; a load when the purger is awake. */
  void (*cached)(cr_pool_t *pool);
  /* Where cr_purge_wanted is set, at a point where the purger's thread may
   * start: the caller holds no lock, its thread's state is whole, and the C
   * library holds none of its own: the start of an allocation's slow path,
   * thread exit, the end of a large free; never a small free (glibc frees a
   * joined thread's DTV under the lock its pthread_create takes).  true when
   * it started the thread, whose creation may have allocated here. */
  bool (*safe_point)(cr_pool_t *pool);
  /* pool took a fresh slab from its backend: a big heap wants the purger
   * early (CORONA_PURGER_EAGER_BYTES).  A load and a compare otherwise. */
  void (*slab_grew)(cr_pool_t *pool);
} cr_policy_hooks_t;
/* The purger's thread is wanted and not started yet (written by the policy
 * layer; read relaxed by the slow paths before they call safe_point). */
extern atomic_bool cr_purge_wanted;
extern cr_policy_hooks_t cr_policy_hooks; /* written once by cr_init, read after it */

/* Checked mode (debug mode, or running under Valgrind; set once by cr_init
 * before any object exists): every thread's fast-path TLS stays
 * cr_tls_empty, so every call reaches a slow path, which hands it to the
 * API layer's debug.c. */
extern bool cr_checked;

/* ---- counters.c: statistics kept per thread and per pool ------------------ */
/* Whether tls's slow paths watch what they hand out (counting calls, or
 * sampling): the local list's swap then takes the checked route. */
CR_INLINE bool cr_tls_watched(cr_tls_t *tls) { return cr_unlikely(cr_load_relaxed(&tls->counting) != 0); }
CR_INLINE bool cr_tls_sampling(cr_tls_t *tls) { return (cr_load_relaxed(&tls->counting) & CR_COUNT_SAMPLES) != 0; }
#if CORONA_STATS
/* Whether tls counts calls (its own copy of cr_stats_on: no extra cache
 * line on slow paths). */
CR_INLINE bool cr_tls_counting(cr_tls_t *tls) {
  return cr_unlikely((cr_load_relaxed(&tls->counting) & CR_COUNT_CALLS) != 0);
}
/* Adds n to event ev: the calling thread's counters when it has a TLS of
 * pool (in line: every large allocation and free counts), else the pool's
 * shared ones. */
void cr_stat_event_shared(cr_pool_t *pool, unsigned ev, uint64_t n);
CR_INLINE void cr_stat_event(cr_pool_t *pool, unsigned ev, uint64_t n) {
  cr_tls_t *tls = cr_tls_own();
  if (cr_likely(tls != NULL && tls->pool == pool)) cr_stat_own(&tls->stats.event[ev], (int64_t)n);
  else cr_stat_event_shared(pool, ev, n);
}
/* Thread exit (pool->lock held): tls's counts go to the pool's. */
void cr_stats_retire_locked(cr_pool_t *pool, cr_tls_t *tls);
/* Slab bytes serving objects changed by delta; tracks the peak. */
void cr_stats_small_in_use(cr_pool_t *pool, int64_t delta);
/* Large bytes in use grew: tracks the peak. */
void cr_stats_note_peak(cr_pool_t *pool);
#else
CR_INLINE bool cr_tls_counting(cr_tls_t *tls) { (void)tls; return false; }
#endif

/* ---- pool.c: memory pools (the default heap is one) --------------------- */
extern cr_pool_t cr_default_pool;
/* Cache-line aligned metadata (TLS structs, region descriptors) from OS
 * chunks, never from malloc and never freed; NULL when the OS refuses. */
/* Releases empty blocks of the global pool idle since before now - decay_ms
 * (all of them when force) to the backend. */
void cr_pool_decay_empty(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool force);
/* A zeroed TLS linked into pool's thread list (recycled or new); NULL if
 * the OS refuses memory.  cr_pool_tls_free unlinks and recycles it. */
cr_tls_t *cr_pool_tls_alloc(cr_pool_t *pool);
void cr_pool_tls_free(cr_pool_t *pool, cr_tls_t *tls);
/* Sets every thread's counting flag of the default heap to what the
 * statistics (cr_stats_on) and the heap profiler (cr_sample_hook) ask for,
 * under the pool lock, after the caller changed one of them.  The calling
 * thread's (self, or NULL) counts are settled against its lists as its flag
 * flips, so they stay exact (see cr_stats_switch). */
void cr_pool_set_counting(cr_tls_t *self);
/* Unlinks tls for good (never recycled: a notice may still arrive). */
void cr_pool_tls_retire(cr_pool_t *pool, cr_tls_t *tls);
/* Gives the pool's locks their ranks (sync.h): a user pool's, or the
 * default heap's; before the locks are first used. */
void cr_pool_set_ranks(cr_pool_t *pool, bool user);
/* The pool's list of empty blocks (pool->lock). */
cr_block_t *cr_pool_take_empty(cr_pool_t *pool);
void cr_pool_put_empty(cr_pool_t *pool, cr_block_t *list, size_t count);
/* An empty medium block goes straight back to the backend (the empty lists
 * of threads and of the pool hold slabs, which any class can take); put_empty
 * sends those of its list there. */
void cr_pool_medium_return(cr_pool_t *pool, cr_block_t *b);
/* Per-bin orphan lists. */
void cr_pool_orphan(cr_pool_t *pool, cr_block_t *b);
cr_block_t *cr_pool_adopt(cr_pool_t *pool, unsigned bin);
/* Orphans whose objects have all been freed go to the pool's empty list. */
void cr_pool_reclaim_orphans(cr_pool_t *pool);
/* The purger's view of the pool (under pool->lock): with mark, marks the
 * threads whose caches have been HOLDING for decay_ms; returns the oldest
 * idle stamp left among the pool's empty blocks and the threads' unmarked
 * caches (0: nothing). */
uint64_t cr_pool_idle_since(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool mark);
/* Block bytes the pool's threads hold in their local large-object caches,
 * read under pool->lock (each figure as its owner last stored it). */
size_t cr_pool_threads_cached(cr_pool_t *pool);

/* ---- tls.c: the thread's caches and the purger ---------------------------- */
/* The owner's caches gained memory: the purger must learn of them once
 * (HOLDING); the default heap's only (the purger serves that one). */
void cr_tls_cache_hold(cr_tls_t *tls);
CR_INLINE void cr_tls_cache_note(cr_tls_t *tls) {
  if (cr_load_relaxed(&tls->cache_state) == CR_CACHE_EMPTY && tls->pool == &cr_default_pool) cr_tls_cache_hold(tls);
}
/* The purger marked the caches: they go to the pool (owner only, at a slow
 * path where its lists may change). */
void cr_tls_hand_back(cr_tls_t *tls);
CR_INLINE void cr_tls_decay_check(cr_tls_t *tls) {
  if (cr_unlikely(cr_load_relaxed(&tls->cache_state) == CR_CACHE_MARKED)) cr_tls_hand_back(tls);
}

/* ---- large.c: objects above CORONA_MAX_SMALL ----------------------------- */
/* own: the calling thread's TLS for pool, or NULL (what a reclaim before
 * the retry may flush); alignment: 0 or a power of two; zero: the memory
 * must read as zero.
 * NULL with errno ENOMEM on failure. */
void *cr_large_alloc(cr_pool_t *pool, cr_tls_t *own, size_t size, size_t alignment, bool zero);
void cr_large_free(cr_large_t *h); /* cr_large_claim, then cr_large_free_claimed */
/* The free of h claims it first: of two frees racing on one pointer, both
 * of which passed validation, exactly one claims it; the other ends the
 * process with a report.  Only the claimant may then read what the live
 * object's holder owns (h->sample: the same word becomes cached_at once
 * the claimant caches the block). */
void cr_large_claim(cr_large_t *h);
void cr_large_free_claimed(cr_large_t *h);
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
/* ---- large_cache.c: the caches of large objects ---------------------------
 * Gives a block back to the backend (or the OS), its backref with it. */
void cr_large_release(cr_large_t *h);
/*
 * A cached block for bytes (block bytes, alignment <= 64): the calling
 * thread's local cache first (exact size), then pool's global one (its own
 * bin, or with any_own the cached mapping of its own that fits best: the
 * smallest that covers bytes, else the biggest, for the caller to resize);
 * taken out of the cache; NULL when none. */
cr_large_t *cr_large_cache_take(cr_pool_t *pool, size_t bytes, bool any_own);
/* Caches the freed block h (cached_at set): the calling thread's local
 * cache when it is of pool, else the global one, which may release the
 * oldest entries over the budgets. */
void cr_large_cache_put(cr_pool_t *pool, cr_large_t *h);
/* Mappings of their own in the global cache may be cut and joined (the
 * OS's heap, without huge pages). */
bool cr_large_own_cuttable(cr_pool_t *pool);
/* Cuts h (a mapping of its own, out of the cache) down to bytes; the rest
 * goes to the global cache; false, h unchanged, when it cannot. */
bool cr_large_own_cut(cr_pool_t *pool, cr_large_t *h, size_t bytes);
/* [block + from, block + to) of an own mapping holds fresh, untouched
 * pages: moves cached pieces' resident pages onto them, as far as they go. */
void cr_large_own_fill(cr_pool_t *pool, char *block, size_t from, size_t to);
/* Grows the live own mapping h to bytes into the cached piece right after
 * it; false, nothing changed, when there is none big enough. */
bool cr_large_own_extend(cr_large_t *h, size_t bytes);
/* The calling thread's local cache into the global one (thread exit). */
void cr_large_flush_local(cr_tls_t *tls);
/* Releases the global cache's blocks cached before older_than (ms), and the
 * oldest others while it holds more than max_bytes of region blocks or more
 * than own_max of mappings of their own; returns the block bytes it holds
 * after that. */
size_t cr_large_cache_evict(cr_pool_t *pool, uint64_t older_than, size_t max_bytes, size_t own_max, bool keep_newest);
/* When the global cache's oldest block was cached (ms); 0 when empty. */
uint64_t cr_large_cache_oldest(cr_pool_t *pool);
/* Everything the calling thread caches goes to the pool: its local
 * large-object cache, its mailboxes' frees and its empty blocks. */
void cr_tls_flush(cr_tls_t *tls);

#endif /* CORONA_THREAD_H */
