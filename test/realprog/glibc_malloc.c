/* glibc_malloc.c — a preloadable shim that hands the malloc family to the
 * C library's own allocator, for realprog_redis only.
 *
 * Debian's redis-server is linked with libjemalloc, so running it without a
 * preload measures jemalloc, not glibc.  Preloading this module puts glibc's
 * malloc back in front, so the test can show corona beside both.  Every
 * function is looked up in libc.so.6 itself (a dlsym on its handle searches
 * libc first, not the global scope where jemalloc sits).  Until the lookups
 * are done (dlopen/dlsym may allocate), __libc_malloc and friends, which
 * glibc 2.36 still exports, serve. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define EXPORT __attribute__((visibility("default")))

static size_t (*libc_usable)(void *);
static int (*libc_posix_memalign)(void **, size_t, size_t);

__attribute__((constructor)) static void shim_init(void) {
  void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return;
  *(void **)&libc_usable = dlsym(h, "malloc_usable_size");
  *(void **)&libc_posix_memalign = dlsym(h, "posix_memalign");
}

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t c, size_t n) { return __libc_calloc(c, n); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_memalign(4096, n); }
EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  if (libc_posix_memalign != NULL) return libc_posix_memalign(out, a, n);
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
EXPORT size_t malloc_usable_size(void *p) { return libc_usable != NULL ? libc_usable(p) : 0; }
