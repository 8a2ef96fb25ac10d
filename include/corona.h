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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CORONA_API marks the exported functions.  On Windows: dllexport while
 * corona.dll is built (CORONA_BUILD_DLL), nothing for the static library
 * (define CORONA_STATIC; CMake's corona::corona_static does), dllimport for
 * a program linking corona.dll.  Elsewhere: default visibility (the
 * library is built with hidden visibility). */
#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(CORONA_STATIC)
#define CORONA_API
#elif defined(CORONA_BUILD_DLL)
#define CORONA_API __declspec(dllexport)
#else
#define CORONA_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define CORONA_API __attribute__((visibility("default")))
#else
#define CORONA_API
#endif
#if defined(__GNUC__) || defined(__clang__)
#define CORONA_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define CORONA_MALLOC_ATTR
#endif

/* The version of this header.  corona_version() gives the library's as
 * "MAJOR.MINOR.PATCH"; the shared library's SONAME is libcorona.so.MAJOR. */
#define CORONA_VERSION_MAJOR 0
#define CORONA_VERSION_MINOR 2
#define CORONA_VERSION_PATCH 0
CORONA_API const char *corona_version(void);

CORONA_API CORONA_MALLOC_ATTR void *corona_malloc(size_t size);
CORONA_API CORONA_MALLOC_ATTR void *corona_calloc(size_t count, size_t size);
CORONA_API void *corona_realloc(void *ptr, size_t size);
CORONA_API void corona_free(void *ptr);

/* alignment: a power of two (any size, 1 included). */
CORONA_API CORONA_MALLOC_ATTR void *corona_aligned_malloc(size_t size, size_t alignment);
/* Like corona_realloc, but the result is aligned to alignment. ptr may come
 * from any corona_* allocation call. */
CORONA_API void *corona_aligned_realloc(void *ptr, size_t size, size_t alignment);
/* POSIX: alignment must be a power of two multiple of sizeof(void *);
 * returns 0, EINVAL or ENOMEM and leaves errno alone. */
CORONA_API int corona_posix_memalign(void **out, size_t alignment, size_t size);
/* Bytes usable at ptr (>= the size asked for); 0 for NULL and for a pointer
 * corona did not return.  Not const, like malloc_usable_size: compilers
 * take a const pointer argument as a read of fresh (uninitialised) memory. */
CORONA_API size_t corona_usable_size(void *ptr);

/* ---- giving memory back ---------------------------------------------------
 * Returns to the OS every cached free block and large-object cache entry it
 * can: the calling thread's caches and the process-wide ones.  Without this
 * call, cached memory idle for longer than the decay time (about a second)
 * goes back on later allocator calls anyway. */
CORONA_API void corona_collect(void);

/* ---- modes and commands (modelled on tbbmalloc's scalable_allocation_*) ---
 * corona_allocation_mode returns 0, or EINVAL for an unknown mode or value. */
#define CORONA_USE_HUGE_PAGES 0          /* value 0 or 1: back new regions with huge pages */
#define CORONA_SET_SOFT_HEAP_LIMIT 1     /* value: bytes (0 = none); caches are trimmed to stay under it */
#define CORONA_SET_HUGE_SIZE_THRESHOLD 2 /* value: bytes; large objects from this size on use huge pages */
#define CORONA_COUNT_CALLS 3             /* value 0 or 1: count calls on small objects (statistics) */
CORONA_API int corona_allocation_mode(int mode, intptr_t value);

/* corona_allocation_command returns 0, or EINVAL for an unknown command or a
 * non-NULL param. */
#define CORONA_CLEAN_THREAD_BUFFERS 0 /* the calling thread's caches back to the shared ones / the OS */
#define CORONA_CLEAN_ALL_BUFFERS 1    /* corona_collect() */
CORONA_API int corona_allocation_command(int cmd, void *param);

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
/* 45 since 0.2 (31 in 0.1: the classes of 4 to 32 KB came with 0.2), and
 * SONAME stays libcorona.so.0 while the major version is 0: a program that
 * calls corona_stats_get must be built with the header of the library it
 * runs with. */
#define CORONA_STATS_BINS 45
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
  uint64_t small_allocations;  /* objects of at most 32704 bytes */
  uint64_t small_frees;
  uint64_t small_objects;      /* live small objects */
  uint64_t large_allocations;
  uint64_t large_frees;
  uint64_t large_objects;      /* live large objects */
  uint64_t cache_hits;         /* large allocations served by a large-object cache */
  uint64_t cache_misses;       /* large allocations that needed new pages */
  uint64_t cross_thread_frees; /* small objects freed by a thread other than their owner */
  uint64_t memory_mapped;      /* bytes corona holds from the OS (heap and metadata) */
  uint64_t memory_in_use;      /* bytes of slab blocks taken from the heap's regions (holding objects,
                                  or empty and cached for reuse), plus large blocks in use */
  uint64_t peak_memory_in_use; /* the highest memory_in_use so far */
  corona_bin_stats bins[CORONA_STATS_BINS];
} corona_stats;

/* Fills *out.  Returns 0, EINVAL for NULL, or ENOTSUP when corona was built
 * without statistics (CORONA_STATS=OFF; *out is then zeroed). */
CORONA_API int corona_stats_get(corona_stats *out);
/* Prints the statistics as a readable table to out (stderr when NULL).  Its
 * first line names the program and its process id. */
CORONA_API void corona_stats_print(FILE *out);
/* The same figures as one JSON object on one line, for tools: "program",
 * "pid", "available" (false when built without statistics, and then
 * nothing more), "counting", each field of corona_stats by its name above,
 * and "bins", an array of the 45 classes' figures ("object_size",
 * "allocations", "frees", "active"). */
CORONA_API void corona_stats_print_json(FILE *out);

/* ---- heap profiling (docs/profiling.md) ----------------------------------------
 * Samples one allocation of the default heap per `rate` bytes on average
 * (geometric intervals), with its call stack; a profile in pprof's legacy
 * heap format lists the sampled objects still live and all those sampled,
 * per stack.  The options PROFILE, PROFILE_RATE, PROFILE_INTERVAL and
 * PROFILE_LEAKS start it from the environment.  Not in debug mode. */
/* Starts sampling (rate 0: the option PROFILE_RATE, by default 512 KiB), or
 * changes the rate.  0, or ENOTSUP in debug mode. */
CORONA_API int corona_profile_start(size_t rate);
/* Stops sampling; the samples taken stay, and their frees still count. */
CORONA_API int corona_profile_stop(void);
/* Writes the profile to the file at path (created or truncated): 0, or an
 * errno value (EINVAL for NULL, the open's or EIO on failure). */
CORONA_API int corona_profile_dump(const char *path);

/* ---- memory pools -----------------------------------------------------------
 * A pool is a heap of its own whose memory comes from the caller's raw_alloc
 * (for example one static buffer): the same per-thread caches, cross-thread
 * frees and large objects as the default heap, thread safe, many at once.
 * corona_free and corona_usable_size accept pool objects too.
 *
 *   raw_alloc(pool_id, &bytes): memory of at least bytes (it may set bytes
 *     higher, and a fixed pool's may answer with its whole buffer whatever
 *     was asked), or NULL: the allocation that needed it returns NULL with
 *     errno ENOMEM and the pool stays usable.
 *   raw_free(pool_id, ptr, bytes): called with exactly the ptr and bytes that
 *     raw_alloc gave; NULL is allowed for fixed pools only.
 *   granularity: bytes to ask for at a time (0: 4 MiB).
 *   fixed: raw_alloc is called once; when that memory is full, allocations
 *     return NULL with ENOMEM.
 *   keep_all_memory: nothing goes back through raw_free before destroy
 *     (otherwise a block too big for the pool's regions, which gets memory
 *     of its own, gives it back when freed).
 * Objects bigger than 16 MiB get memory of their own, so a fixed pool
 * cannot hold them. */
typedef struct corona_pool corona_pool;
typedef struct corona_pool_policy {
  void *(*raw_alloc)(intptr_t pool_id, size_t *bytes);
  int (*raw_free)(intptr_t pool_id, void *ptr, size_t bytes);
  size_t granularity;
  bool fixed;
  bool keep_all_memory;
  intptr_t pool_id;
} corona_pool_policy;

/* 0, EINVAL (no raw_alloc, or no raw_free for a pool that is not fixed),
 * or ENOMEM (no memory for the pool's own structures, or 255 pools alive). */
CORONA_API int corona_pool_create(const corona_pool_policy *policy, corona_pool **pool);
/* As their corona_* counterparts; a NULL or destroyed pool gives NULL with
 * EINVAL (in debug mode, a report and an abort). */
CORONA_API CORONA_MALLOC_ATTR void *corona_pool_malloc(corona_pool *pool, size_t size);
CORONA_API CORONA_MALLOC_ATTR void *corona_pool_calloc(corona_pool *pool, size_t count, size_t size);
CORONA_API void *corona_pool_realloc(corona_pool *pool, void *ptr, size_t size);
CORONA_API CORONA_MALLOC_ATTR void *corona_pool_aligned_malloc(corona_pool *pool, size_t size, size_t alignment);
/* ptr must be an object of pool (or NULL); anything else is reported, then
 * the process aborts. */
CORONA_API void corona_pool_free(corona_pool *pool, void *ptr);
/* Frees every object of the pool at once and keeps its memory for reuse.
 * No other thread may use the pool meanwhile.  0 or EINVAL. */
CORONA_API int corona_pool_reset(corona_pool *pool);
/* Frees every object and gives every byte back through raw_free.  No other
 * thread may use the pool meanwhile, nor anyone afterwards.  0 or EINVAL. */
CORONA_API int corona_pool_destroy(corona_pool *pool);
/* The pool that owns ptr; NULL for the default heap's objects and for
 * pointers corona does not know. */
CORONA_API corona_pool *corona_pool_identify(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* CORONA_H */
