/* override.c (layer: api) — the standard allocation names, so that linking libcorona.a or
 * preloading libcorona.so replaces the C library's allocator for the whole
 * process.  The semantics live in frontend.c; this file only forwards, and
 * sends pointers corona never handed out (allocated before the preload took
 * effect, or by a library bound to the C library's malloc) back to the
 * C library's own functions, found once at load time. */
#include <errno.h>
#include <string.h>

#include "corona.h"
#include "internal/fastpath.h"
#include "internal/os.h"

#define CR_EXPORT __attribute__((visibility("default")))

/* The C library's functions, for foreign pointers.  Written once by the
 * constructor below, before main and before other threads exist. */
static struct {
  void (*free)(void *);
  void *(*realloc)(void *, size_t);
  size_t (*usable_size)(void *);
} libc;

__attribute__((constructor)) static void override_init(void) {
  cr_init();
  /* dlsym may call malloc: it is served by corona, which is ready. */
  *(void **)&libc.free = cr_os_next_symbol("free");
  *(void **)&libc.realloc = cr_os_next_symbol("realloc");
  *(void **)&libc.usable_size = cr_os_next_symbol("malloc_usable_size");
}

/* free of what is not a small object: NULL and large objects as corona_free
 * frees them; a pointer the page map does not know is the C library's, or
 * garbage. */
static void free_other(void *p, unsigned kind) {
  if (kind != CR_KIND_NONE || p == NULL) cr_free_not_small(p, kind);
  else if (libc.free != NULL) libc.free(p);
  /* Without the C library's free (fully static program) a foreign pointer
   * is left alone: never taken into a corona list. */
}

/* malloc and free start on a cache line of their own: where the linker
 * happened to put them moved with unrelated changes elsewhere in the
 * library and, with the same instructions, cost small-fixed 4-5 % of its
 * time (43.5 -> 45.8 ms, medians of 8, interleaved); aligned, 43.5. */
CR_EXPORT __attribute__((aligned(64))) void *malloc(size_t size) { return cr_malloc_inline(size); }
CR_EXPORT void *calloc(size_t count, size_t size) { return cr_calloc_inline(count, size); }

CR_EXPORT __attribute__((aligned(64))) void free(void *p) { cr_free_fast(p, free_other); }

CR_EXPORT void *realloc(void *p, size_t size) {
  if (p != NULL && cr_pagemap_kind((uintptr_t)p) == CR_KIND_NONE) {
    if (libc.realloc != NULL) return libc.realloc(p, size);
    errno = ENOMEM;
    return NULL;
  }
  return cr_realloc(p, size, 0);
}

CR_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

CR_EXPORT size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  if (kind == CR_KIND_NONE) return libc.usable_size != NULL ? libc.usable_size(p) : 0;
  return cr_usable_size(p, kind);
}

CR_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  return corona_posix_memalign(out, alignment, size);
}

/* glibc's memalign (and aligned_alloc, its alias up to glibc 2.37) passes
 * an alignment up to 16 to malloc and rounds one that is not a power of two
 * up to the next; only an alignment no power of two reaches (above 2^63) is
 * EINVAL.  A power of two too big to serve, 2^63 included, is ENOMEM. */
CR_EXPORT void *memalign(size_t alignment, size_t size) {
  if (alignment <= CORONA_MIN_ALIGN) return cr_malloc_inline(size);
  if (alignment > ((size_t)1 << 63)) {
    errno = EINVAL;
    return NULL;
  }
  if (alignment & (alignment - 1)) alignment = (size_t)1 << (64 - __builtin_clzll(alignment));
  return cr_aligned_alloc(size, alignment);
}

CR_EXPORT void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

CR_EXPORT void *valloc(size_t size) { return cr_aligned_alloc(size, cr_os_info()->page_size); }

CR_EXPORT void *pvalloc(size_t size) {
  size_t page = cr_os_info()->page_size;
  size_t rounded = (size + page - 1) & ~(page - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return cr_aligned_alloc(rounded ? rounded : page, page);
}

CR_EXPORT void cfree(void *p) { free(p); }
CR_EXPORT void free_sized(void *p, size_t size) {
  (void)size;
  free(p);
}
CR_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size) {
  (void)alignment;
  (void)size;
  free(p);
}

/* glibc's internal names, which some programs and libraries call directly. */
CR_EXPORT void *__libc_malloc(size_t size) { return malloc(size); }
CR_EXPORT void *__libc_calloc(size_t count, size_t size) { return calloc(count, size); }
CR_EXPORT void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
CR_EXPORT void __libc_free(void *p) { free(p); }
CR_EXPORT void *__libc_memalign(size_t alignment, size_t size) { return memalign(alignment, size); }
CR_EXPORT void *__libc_valloc(size_t size) { return valloc(size); }
CR_EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }
