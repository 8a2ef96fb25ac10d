/* benchutil.h — what the benchmark programs share: attributes that keep
 * the compiler from optimising a workload away or specialising it for one
 * allocator. */
#ifndef CORONA_BENCHUTIL_H
#define CORONA_BENCHUTIL_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The workloads must really call through the allocator table: no inlining
 * or cloning for a known allocator (GCC could then turn a direct malloc+free
 * pair into nothing). */
#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#elif defined(__GNUC__)
#define NOINLINE __attribute__((noinline, noclone))
#else
#define NOINLINE
#endif

#if defined(__GNUC__) || defined(__clang__)
/* Makes the compiler assume *p is read and written: the stores to the object
 * happen and the reads after it are real loads. */
#define TOUCHED(p) __asm__ volatile("" : : "r"(p) : "memory")
#define NORETURN __attribute__((noreturn))
#define COLD __attribute__((cold))
#else
#define TOUCHED(p) ((void)(p))
#define NORETURN
#define COLD
#endif

/* The allocator a workload runs on: every call goes through this table. */
typedef struct alloc_api {
  const char *name;
  void *(*malloc_fn)(size_t);
  void (*free_fn)(void *);
  void *(*realloc_fn)(void *, size_t);
} alloc_api;

/* The C library's own allocator.  corona's build exports malloc & co. (the
 * drop-in override), so in a program linked with it the plain names are
 * corona's: the C library's are the next definitions after the program's.
 * Needs _GNU_SOURCE and <dlfcn.h> before this header. */
static inline alloc_api libc_api(const char *name) {
  alloc_api a = {name, NULL, NULL, NULL};
  *(void **)&a.malloc_fn = dlsym(RTLD_NEXT, "malloc");
  *(void **)&a.free_fn = dlsym(RTLD_NEXT, "free");
  *(void **)&a.realloc_fn = dlsym(RTLD_NEXT, "realloc");
  if (a.malloc_fn == NULL || a.free_fn == NULL || a.realloc_fn == NULL) {
    a.malloc_fn = malloc; /* no dynamic libc (static program): plain names */
    a.free_fn = free;
    a.realloc_fn = realloc;
  }
  return a;
}

/* splitmix64 with a fixed seed, so every allocator sees the same sizes and
 * orders (one generator per program; rng_seed restarts it). */
static uint64_t rng_state = 0x5eed0c0120a2024ull;
static inline void rng_seed(uint64_t s) { rng_state = s; }
static inline uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* Uniform in [lo, hi]. */
static inline size_t rng_range(size_t lo, size_t hi) { return lo + (size_t)(rng_next() % (uint64_t)(hi - lo + 1)); }

#endif /* CORONA_BENCHUTIL_H */
