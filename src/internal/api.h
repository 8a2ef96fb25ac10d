/* api.h (layer: api) — what the public entry points share: process
 * initialisation, debug mode, user pools, statistics reports, and the slow
 * paths the fast paths (fastpath.h) fall into. */
#ifndef CORONA_API_H
#define CORONA_API_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policy.h"
#include "thread.h"

/* ---- process.c: initialisation, fork and exit ---------------------------- */
/* One-time process initialisation; cheap to call again. */
void cr_init(void);
/* pthread_atfork handlers (pool.c): take every lock in rank order before a
 * fork, release them in parent and child afterwards. */
void cr_fork_prepare(void);
void cr_fork_release(void);
/* The child's: the same release, and the child has no purger thread. */
void cr_fork_child(void);
/* Switches counting of small-object calls on or off; the calling thread's
 * counts are settled against its current lists, so they stay exact. */
void cr_stats_switch(bool on);
/* The exit report (MALLOC_STATS) and the debug quarantine's last check. */
void cr_at_exit(void);
/* The default heap's memory in glibc's terms, for the introspection calls
 * (introspect.c: mallinfo, malloc_info, malloc_trim).  Read without
 * allocating, each figure under its own lock, one lock at a time. */
typedef struct cr_heap_figures_s {
  size_t mapped, peak_mapped; /* bytes from the OS: regions, own mappings, metadata */
  size_t in_use;              /* slab blocks holding objects (not the cached empty ones below) and
                                 live large objects */
  size_t peak_in_use;         /* corona_stats' peak (in_use without statistics) */
  size_t cached;              /* free memory kept resident for reuse: free pages of the regions, the
                                 large-object caches, empty slab blocks in the heap's list, and the
                                 calling thread's own caches and empty blocks (other threads' count
                                 as in use, as do the free slots of blocks that hold objects) */
  size_t cached_blocks;       /* the blocks among them: large blocks in the caches and empty slab
                                 blocks, an empty medium block as the slabs it spans (free pages
                                 of the regions count in bytes only) */
  size_t own_count, own_bytes; /* live objects with mappings of their own (blocks above
                                  MMAP_THRESHOLD): a part of mapped and of in_use (cached ones count
                                  in cached) */
  uint64_t released;          /* bytes given back to the OS so far (purged or unmapped) */
} cr_heap_figures_t;
void cr_heap_figures(cr_heap_figures_t *f);

/* ---- debug.c: debug mode and Valgrind client requests --------------------
 * In "checked" mode (MALLOC_DEBUG, or running under Valgrind) every public
 * call goes through debug.c, which wraps each object in a header and
 * canaries and keeps freed objects in a quarantine.  Checked mode costs the
 * fast paths nothing: the thread's fast-path TLS stays cr_tls_empty, so
 * every call falls into a slow path, and only there is cr_checked tested.
 * debug.c allocates underneath through the thread's real TLS
 * (cr_tls_inner).  Set once by cr_init, before any object exists. */
void cr_debug_init(void);
void *cr_debug_alloc(size_t size, size_t alignment, bool zero); /* errno on failure */
void cr_debug_free(void *p, const char *call);
void *cr_debug_realloc(void *p, size_t size, size_t alignment);
size_t cr_debug_usable_size(void *p);
void cr_debug_flush(void); /* checks and releases the whole quarantine */
void cr_debug_fork_lock(bool take); /* fork handlers: the quarantine's lock */

/* ---- profile.c: heap profiling ----------------------------------------------
 * While it runs, cr_sample_hook (thread.h) is set and every thread of the
 * default heap counts calls; large allocations of the default heap come to
 * cr_profile_large, and the free of a large object whose header has a
 * sample record (h->sample) calls cr_profile_free between cr_large_claim and
 * cr_large_free_claimed. */
CR_INLINE bool cr_profiling(void) { return cr_unlikely(cr_load_relaxed(&cr_sample_hook) != NULL); }
void cr_profile_init(void);  /* cr_init, after the options: the options that start it */
void *cr_profile_large(size_t size, size_t alignment, bool zero); /* cr_large_alloc, maybe sampled */
void cr_profile_free(cr_large_t *h); /* h->sample != NULL */
bool cr_profile_at_exit_wanted(void);
void cr_profile_at_exit(void); /* the final profile (PROFILE), the leak report (PROFILE_LEAKS) */
void cr_profile_fork_lock(bool take);

/* ---- pool_user.c: user pools ---------------------------------------------- */
/* The calling thread's TLS for user pool `pool` (created on first use);
 * NULL when no memory can be had for it. */
cr_tls_t *cr_pool_tls(cr_pool_t *pool);
/* The same, or NULL when the thread has none (never creates one). */
cr_tls_t *cr_pool_tls_peek(cr_pool_t *pool);
/* Frees small object p of user pool `pool` (a corona_free of it). */
void cr_pool_free_small(cr_pool_t *pool, void *p, unsigned kind);
/* The pool owning p (page-map kind `kind`), NULL when p is not a live
 * object; never faults. */
cr_pool_t *cr_owner_pool(const void *p, unsigned kind);
/* Fork handlers for the user pools (after / before the default pool's). */
void cr_pools_fork_lock(bool take);
/* Every lock of one pool, in rank order (fork). */
void cr_pool_lock_all(cr_pool_t *pool, bool take);

/* ---- frontend.c ------------------------------------------------------- */
/* The allocation calls behind the public API, shared with override.c. */
void *cr_aligned_alloc(size_t size, size_t alignment); /* alignment: power of two; errno on failure */
void *cr_realloc(void *p, size_t size, size_t alignment); /* alignment 0: plain */
size_t cr_usable_size(const void *p, unsigned kind); /* 0 when p is not ours */
size_t cr_usable_size_raw(const void *p, unsigned kind); /* the same, never checked mode */
/* free() of anything that is not a small object: NULL, large, invalid. */
void cr_free_not_small(void *p, unsigned kind);
/* free() of a pointer corona refuses: reports it and aborts.  Not marked
 * noreturn, so that the fast path reaches it by a jump. */
void cr_free_refused(void *p);
/* free's path when the freeing thread (TLS tls, maybe cr_tls_empty) does
 * not own b: checked mode, statistics, the hot list, then the thread's
 * chain of remote frees for b's class (cr_remote_t), or
 * cr_block_free_remote when the thread has no TLS or counts calls. */
void cr_free_not_owned(cr_tls_t *tls, cr_block_t *b, void *p);
/* The size to ask the bins for, to serve size bytes at alignment (a power
 * of two above 16): a class that is a multiple of the alignment; 0 when
 * only a large object serves it.  corona_aligned_malloc and the pools'. */
size_t cr_aligned_small_size(size_t size, size_t alignment);
/* realloc's answer without a move (corona_realloc and the pools'): p when
 * size fits it well, the resized large object, or NULL when the object must
 * move.  alignment: 0, or what p must keep. */
void *cr_resize_in_place(void *p, unsigned kind, size_t have, size_t size, size_t alignment);
/* malloc's miss of size (small): the bin's list is empty, or the thread has
 * no TLS yet (its first call, or checked mode). */
void *cr_malloc_miss(cr_tls_t *tls, size_t size);
/* A free of p found its mark: reports the double free and aborts. */
_Noreturn void cr_report_double_free(void *p);

#endif /* CORONA_API_H */
