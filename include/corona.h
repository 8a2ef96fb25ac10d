/* corona.h — the public API of corona, a scalable general-purpose memory
 * allocator.  Every exported name carries the corona_ prefix; the standard
 * malloc family is provided separately by the drop-in override.
 *
 * Semantics follow glibc/POSIX: corona_malloc(0) returns a unique pointer
 * that may be freed; corona_free(NULL) does nothing; corona_realloc(NULL, n)
 * is corona_malloc(n) and corona_realloc(p, 0) frees p and returns NULL;
 * a size that cannot be served gives NULL with errno ENOMEM; an alignment
 * that is not a power of two gives NULL with errno EINVAL.  Every returned
 * pointer is aligned to at least 16 bytes. */
#ifndef CORONA_H
#define CORONA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CORONA_EXPORT __attribute__((visibility("default")))
#define CORONA_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define CORONA_EXPORT
#define CORONA_MALLOC_ATTR
#endif

#define CORONA_VERSION_MAJOR 0
#define CORONA_VERSION_MINOR 1

CORONA_EXPORT CORONA_MALLOC_ATTR void *corona_malloc(size_t size);
CORONA_EXPORT CORONA_MALLOC_ATTR void *corona_calloc(size_t count, size_t size);
CORONA_EXPORT void *corona_realloc(void *ptr, size_t size);
CORONA_EXPORT void corona_free(void *ptr);

/* alignment: a power of two (any size, 1 included). */
CORONA_EXPORT CORONA_MALLOC_ATTR void *corona_aligned_malloc(size_t size, size_t alignment);
/* Like corona_realloc, but the result is aligned to alignment. ptr may come
 * from any corona_* allocation call. */
CORONA_EXPORT void *corona_aligned_realloc(void *ptr, size_t size, size_t alignment);
/* POSIX: alignment must be a power of two multiple of sizeof(void *);
 * returns 0, EINVAL or ENOMEM and leaves errno alone. */
CORONA_EXPORT int corona_posix_memalign(void **out, size_t alignment, size_t size);
/* Bytes usable at ptr (>= the size asked for); 0 for NULL and for a pointer
 * corona did not return.  Not const, like malloc_usable_size: compilers
 * take a const pointer argument as a read of fresh (uninitialised) memory. */
CORONA_EXPORT size_t corona_usable_size(void *ptr);

/* ---- giving memory back ---------------------------------------------------
 * Returns to the OS every cached free block and large-object cache entry it
 * can: the calling thread's caches and the process-wide ones.  Without this
 * call, cached memory idle for longer than the decay time (about a second)
 * goes back on later allocator calls anyway. */
CORONA_EXPORT void corona_collect(void);

/* ---- modes and commands (modelled on tbbmalloc's scalable_allocation_*) ---
 * corona_allocation_mode returns 0, or EINVAL for an unknown mode or value. */
#define CORONA_USE_HUGE_PAGES 0          /* value 0 or 1: back new regions with huge pages */
#define CORONA_SET_SOFT_HEAP_LIMIT 1     /* value: bytes (0 = none); caches are trimmed to stay under it */
#define CORONA_SET_HUGE_SIZE_THRESHOLD 2 /* value: bytes; large objects from this size on use huge pages */
#define CORONA_COUNT_CALLS 3             /* value 0 or 1: count calls on small objects (statistics) */
CORONA_EXPORT int corona_allocation_mode(int mode, intptr_t value);

/* corona_allocation_command returns 0, or EINVAL for an unknown command or a
 * non-NULL param. */
#define CORONA_CLEAN_THREAD_BUFFERS 0 /* the calling thread's caches back to the shared ones / the OS */
#define CORONA_CLEAN_ALL_BUFFERS 1    /* corona_collect() */
CORONA_EXPORT int corona_allocation_command(int cmd, void *param);

/* ---- statistics -------------------------------------------------------------
 * Counted per thread, on slow paths only, and summed on demand.  Large
 * objects, cache hits and misses, cross-thread frees and memory are always
 * counted.  Calls on small objects are counted while counting is on
 * (MALLOC_STATS=1, or corona_allocation_mode(CORONA_COUNT_CALLS, 1); it
 * costs the fast paths nothing, and the slow paths a walk of each list they
 * install): the figures are then exact for the calling thread and for
 * threads that have exited, and for other running threads may be off by the
 * objects in their per-class lists (at most a block's worth per class).
 * Allocation counts include every call that returned an object (calloc,
 * aligned and a realloc that moved count as allocations; a realloc that
 * moved also counts a free).  With MALLOC_STATS=1 (or CORONA_STATS=1)
 * corona_stats_print's report goes to stderr at process exit. */
#define CORONA_STATS_BINS 31
typedef struct corona_bin_stats {
  uint64_t object_size; /* bytes per object of this size class */
  uint64_t allocations; /* objects of this class handed out */
  uint64_t frees;       /* and given back */
  uint64_t active;      /* allocations - frees */
} corona_bin_stats;

typedef struct corona_stats {
  uint64_t counting;           /* 1: calls on small objects are counted (else the small and total
                                  call counts below are 0) */
  uint64_t total_allocations;  /* small + large */
  uint64_t total_frees;
  uint64_t active_allocations; /* total_allocations - total_frees */
  uint64_t small_allocations;  /* objects of at most 8128 bytes */
  uint64_t small_frees;
  uint64_t small_objects;      /* live small objects */
  uint64_t large_allocations;
  uint64_t large_frees;
  uint64_t large_objects;      /* live large objects */
  uint64_t cache_hits;         /* large allocations served by a large-object cache */
  uint64_t cache_misses;       /* large allocations that needed new pages */
  uint64_t cross_thread_frees; /* small objects freed by a thread other than their owner */
  uint64_t memory_mapped;      /* bytes corona holds from the OS (heap and metadata) */
  uint64_t memory_in_use;      /* bytes of slab blocks holding objects, plus large blocks in use */
  uint64_t peak_memory_in_use; /* the highest memory_in_use so far */
  corona_bin_stats bins[CORONA_STATS_BINS];
} corona_stats;

/* Fills *out.  Returns 0, EINVAL for NULL, or ENOTSUP when corona was built
 * without statistics (CORONA_STATS=OFF; *out is then zeroed). */
CORONA_EXPORT int corona_stats_get(corona_stats *out);
/* Prints the statistics as a readable table to out (stderr when NULL). */
CORONA_EXPORT void corona_stats_print(FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* CORONA_H */
