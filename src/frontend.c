/* frontend.c (layer: api) — the public corona_* API: argument checks, C/POSIX
 * semantics (errno, zero sizes, overflow, alignment rules) and routing to the
 * small-object fast path or the large-object path. */
#include <errno.h>
#include <string.h>

#include "corona.h"
#include "internal/fastpath.h"
#include "internal/os.h"
#include "internal/options.h"

CR_NOINLINE void cr_free_refused(void *p) {
  if (cr_checked) {
    cr_debug_free(p, "free");
    return;
  }
  cr_fatal("free(): invalid pointer", p);
}

/* The rarer cases of cr_free_not_owned, out of its way (so that the common
 * one saves no registers and calls nothing but by a tail call). */
static CR_NOINLINE void free_not_owned_rare(cr_tls_t *tls, cr_block_t *b, void *p) {
  /* An object of a user pool freed by corona_free (tls is the default
   * heap's): free it into its pool as that pool's own free would. */
  if (b->pool != tls->pool) {
    cr_pool_free_small(b->pool, p, b->bin + 1);
    return;
  }
  if (tls == &cr_tls_empty) {
    /* Checked mode sends every free here (the fast-path TLS stays empty). */
    if (cr_checked) {
      cr_debug_free(p, "free");
      return;
    }
    /* A thread that frees other threads' objects before it ever allocates
     * (a pipeline's last stage) gets its TLS now, so that its frees are
     * batched as any thread's are, and go out at its exit.  Not after its
     * TLS was torn down (a destructor freeing at thread exit): nothing
     * would send such a batch out.  A thread whose first call to corona is
     * a free in the OS's last round of thread-exit destructors still gets
     * a TLS that is never torn down, as a malloc there would. */
    if (!cr_tls_gone && (tls = cr_tls_create(&cr_default_pool)) != NULL) {
      cr_free_not_owned(tls, b, p);
      return;
    }
    CR_STAT(if (cr_counting()) atomic_fetch_add_explicit(&b->pool->stats.bin_free[b->bin], 1, memory_order_relaxed));
  } else { /* counting */
    CR_STAT(cr_stat_own(&tls->stats.bin_free[b->bin], 1));
  }
  CR_STAT(cr_stat_event(b->pool, CR_STAT_REMOTE_FREE, 1));
  cr_block_free_remote(b, p);
}

CR_NOINLINE void cr_free_not_owned(cr_tls_t *tls, cr_block_t *b, void *p) {
  /* b->pool and b->bin lie on the line of b that other threads write; it is
   * read, not written, while this thread's frees into b are held back. */
  if (cr_unlikely(b->pool != tls->pool || tls == &cr_tls_empty || cr_tls_counting(tls))) {
    free_not_owned_rare(tls, b, p);
    return;
  }
  /* tls is this pool's: its own counter, without cr_stat_event's search. */
  CR_STAT(cr_stat_own(&tls->stats.event[CR_STAT_REMOTE_FREE], 1));
  unsigned bin = b->bin;
  cr_free_mark(p, b);
  /* Another thread's object of our pool: keep it for our own next
   * allocation in its class (CORONA_HOT_OBJECTS), with no atomic at all.
   * Its block keeps counting it as allocated: whoever frees it later
   * sends it home as usual. */
  if (cr_likely(tls->hot[bin] < CORONA_HOT_OBJECTS)) {
    void **list = &tls->bins.free[CR_ROW(bin)];
    tls->hot[bin]++;
    *(void **)p = *list;
    *list = p;
    return;
  }
  /* Else held back with its block's other frees (cr_remote_t). */
  cr_remote_t *r = &tls->remote[bin];
  if (cr_likely(r->block == b) && cr_likely(r->count < CORONA_REMOTE_CHAIN)) {
    *(void **)p = r->head;
    r->head = p;
    r->count++;
    return;
  }
  cr_bins_remote_start(tls, b, p);
}

CR_NOINLINE void *cr_malloc_miss(cr_tls_t *tls, size_t size) {
  if (cr_unlikely(tls == &cr_tls_empty)) { /* this thread's first call, or checked mode */
    cr_init();
    if (cr_checked) return cr_debug_alloc(size, 0, false);
    tls = cr_tls_create(&cr_default_pool);
    if (tls == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  return cr_malloc_small_slow(tls, size);
}

_Noreturn CR_NOINLINE void cr_report_double_free(void *p) { cr_fatal("free(): double free detected, pointer", p); }

CR_NOINLINE void cr_free_not_small(void *p, unsigned kind) {
  if (p == NULL) return;
  if (cr_unlikely(cr_checked)) {
    cr_large_t *h = cr_large_header(p, kind);
    if (h != NULL && h->pool != &cr_default_pool) cr_large_free(h); /* a user pool's: not wrapped */
    else cr_debug_free(p, "free");
    return;
  }
  cr_large_t *h = cr_large_header(p, kind);
  if (h == NULL) cr_fatal("free(): invalid pointer (not allocated by corona, or freed twice)", p);
  cr_large_claim(h); /* first: a racing double free may already have cached it (thread.h) */
  if (cr_unlikely(h->sample != NULL)) cr_profile_free(h);
  cr_large_free_claimed(h);
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Large requests from the API (checked mode is tested here, off the fast
 * path: small requests reach debug.c through the slow path). */
CR_NOINLINE void *cr_large_entry(size_t size, size_t alignment, bool zero) {
  cr_init();
  if (cr_unlikely(cr_checked)) return cr_debug_alloc(size, alignment, zero);
  if (cr_profiling()) return cr_profile_large(size, alignment, zero);
  return cr_large_alloc(&cr_default_pool, cr_tls_own(), size, alignment, zero);
}

CR_NOINLINE void *cr_calloc_other(size_t count, size_t size) {
  size_t total;
  if (cr_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  if (total <= CORONA_MAX_SMALL) { /* only the slow path of a small calloc comes here */
    void *p = cr_malloc_small(total);
    if (p != NULL) memset(p, 0, total);
    return p;
  }
  return cr_large_entry(total, 0, true);
}

#define CR_STR(x) #x
#define CR_VERSION_STRING(a, b, c) CR_STR(a) "." CR_STR(b) "." CR_STR(c)
CORONA_API const char *corona_version(void) {
  return CR_VERSION_STRING(CORONA_VERSION_MAJOR, CORONA_VERSION_MINOR, CORONA_VERSION_PATCH);
}

CORONA_API void *corona_malloc(size_t size) { return cr_malloc_inline(size); }
CORONA_API void corona_free(void *ptr) { cr_free_fast(ptr, cr_free_not_small); }
CORONA_API void *corona_calloc(size_t count, size_t size) { return cr_calloc_inline(count, size); }

/* Whether p, of a slab or medium block of page-map kind `kind`, is where an
 * object of its class starts.  The page map alone vouches for the block:
 * it marks a block's slabs with its class while the block exists, and
 * marks them free (or large) before their memory serves anything else --
 * the free fast path trusts it the same way.  No header is read: sqlite
 * asks malloc_usable_size after every malloc, and the block header and its
 * backref were two cache misses each time (callgrind, sqlwork.py -s 0.1:
 * 4.3M of 425.6M instructions, 50k of 1.28M L1 read misses). */
static bool small_object(const void *p, unsigned kind) {
  return cr_kind_is_small(kind) && cr_is_object_start((uintptr_t)p, kind - 1);
}

/* Usable size of a pointer known to be non-NULL; 0 when it is not ours. */
size_t cr_usable_size(const void *p, unsigned kind) {
  if (cr_unlikely(cr_checked)) {
    cr_pool_t *pool = cr_owner_pool(p, kind);
    if (pool == NULL || pool == &cr_default_pool) return cr_debug_usable_size((void *)p);
  }
  return cr_usable_size_raw(p, kind);
}

size_t cr_usable_size_raw(const void *p, unsigned kind) {
  if (cr_kind_is_small(kind)) return small_object(p, kind) ? cr_bin_size[kind - 1] : 0;
  cr_large_t *h = cr_large_header(p, kind);
  return h != NULL ? cr_large_usable(h) : 0;
}

CORONA_API size_t corona_usable_size(void *ptr) {
  if (ptr == NULL) return 0;
  return cr_usable_size(ptr, cr_pagemap_kind((uintptr_t)ptr));
}

/* Aligned allocation without touching errno on success. */
void *cr_aligned_alloc(size_t size, size_t alignment) {
  if (alignment <= CORONA_MIN_ALIGN) return cr_malloc_inline(size);
  /* cr_checked is only known after cr_init: a program's first call, if
   * aligned, would otherwise take the small path below, whose slow path
   * finds checked mode and wraps the object without its alignment. */
  cr_init();
  if (cr_unlikely(cr_checked)) return cr_debug_alloc(size, alignment, false);
  size_t small = cr_aligned_small_size(size, alignment);
  if (small != 0) return cr_malloc_small(small);
  return cr_large_entry(size, alignment, false);
}

size_t cr_aligned_small_size(size_t size, size_t alignment) {
  /* A class that is a multiple of the alignment is aligned to it: objects
   * sit at the 16 KB-aligned block end minus whole objects, and up to 1024
   * every multiple of a power of two maps to a class that is a multiple of
   * it (the classes between 2^k and 2^(k+1) step by 2^(k-2)). */
  if (size <= 1024 && alignment <= 1024) return ((size ? size : 1) + alignment - 1) & ~(alignment - 1);
  /* The fitting classes above 1024 are multiples of 64. */
  if (size <= CORONA_MAX_SMALL && alignment <= 64) return size ? size : 1;
  return 0;
}

void *cr_resize_in_place(void *p, unsigned kind, size_t have, size_t size, size_t alignment) {
  if (((uintptr_t)p & (alignment ? alignment - 1 : 0)) != 0) return NULL;
  if (cr_kind_is_small(kind)) {
    /* Stay in place when the new size fits without wasting more than half
     * of the object (the smallest class always counts as a fit). */
    if (size <= have && (size >= have / 2 || have <= cr_bin_size[0])) return p;
  } else if (size > CORONA_MAX_SMALL) {
    /* Large to large: in place, or by moving pages; never a copy if not
     * needed.  A sampled object moves: the heap profiler takes back at its
     * free the size it counted (profile.c, size_key). */
    cr_large_t *h = cr_large_header(p, kind);
    if (h->sample != NULL) return NULL;
    return cr_large_resize(h, size);
  }
  return NULL;
}

CORONA_API void *corona_aligned_malloc(size_t size, size_t alignment) {
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return cr_aligned_alloc(size, alignment);
}

CORONA_API int corona_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = cr_aligned_alloc(size, alignment);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

/* Moves the object at p (usable bytes `have`) to a new one of size bytes,
 * in the pool that owns p. */
static void *move_object(void *p, size_t have, size_t size, size_t alignment) {
  cr_pool_t *owner = cr_owner_pool(p, cr_pagemap_kind((uintptr_t)p));
  if (owner != NULL && owner != &cr_default_pool) {
    corona_pool *h = (corona_pool *)(void *)owner;
    void *q = alignment ? corona_pool_aligned_malloc(h, size, alignment) : corona_pool_malloc(h, size);
    if (q == NULL) return NULL;
    memcpy(q, p, have < size ? have : size);
    corona_pool_free(h, p);
    return q;
  }
  void *q = alignment ? cr_aligned_alloc(size, alignment) : cr_malloc_inline(size);
  if (q == NULL) return NULL; /* p stays valid, errno is ENOMEM */
  memcpy(q, p, have < size ? have : size);
  cr_free_fast(p, cr_free_not_small);
  return q;
}

void *cr_realloc(void *p, size_t size, size_t alignment) {
  if (cr_unlikely(cr_checked)) return cr_debug_realloc(p, size, alignment);
  if (p == NULL) return alignment ? cr_aligned_alloc(size, alignment) : cr_malloc_inline(size);
  if (size == 0) { /* glibc: realloc(p, 0) frees p */
    cr_free_fast(p, cr_free_not_small);
    return NULL;
  }
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  size_t have = cr_usable_size(p, kind);
  if (have == 0) cr_fatal("realloc(): invalid pointer", p);
  if (size > cr_max_request) {
    errno = ENOMEM;
    return NULL;
  }
  void *q = cr_resize_in_place(p, kind, have, size, alignment);
  return q != NULL ? q : move_object(p, have, size, alignment);
}

CORONA_API void *corona_realloc(void *ptr, size_t size) { return cr_realloc(ptr, size, 0); }

CORONA_API void corona_collect(void) {
  cr_init();
  if (cr_checked) cr_debug_flush();
  cr_collect(&cr_default_pool, cr_tls_own());
}

CORONA_API int corona_allocation_mode(int mode, intptr_t value) {
  cr_init();
  switch (mode) {
    case CORONA_USE_HUGE_PAGES:
      if (!cr_option_set(CR_OPT_USE_HUGE_PAGES, value)) return EINVAL;
      if (cr_verbose()) {
        cr_line_t l = CR_LINE_INIT;
        cr_line_str(&l, value ? "huge pages on" : "huge pages off");
        cr_line_emit(&l);
      }
      return 0;
    case CORONA_SET_SOFT_HEAP_LIMIT:
      if (!cr_option_set(CR_OPT_SOFT_LIMIT, value)) return EINVAL;
      if (value != 0 && cr_load_relaxed(&cr_default_pool.backend.mapped_bytes) > (size_t)value)
        cr_collect(&cr_default_pool, cr_tls_own()); /* trim now, as tbbmalloc does */
      return 0;
    case CORONA_SET_HUGE_SIZE_THRESHOLD:
      return cr_option_set(CR_OPT_HUGE_THRESHOLD, value) ? 0 : EINVAL;
    case CORONA_COUNT_CALLS:
      if (value != 0 && value != 1) return EINVAL;
#if CORONA_STATS
      cr_stats_switch(value != 0);
      return 0;
#else
      return ENOTSUP;
#endif
    default:
      return EINVAL;
  }
}

CORONA_API int corona_allocation_command(int cmd, void *param) {
  if (param != NULL) return EINVAL;
  cr_init();
  cr_tls_t *tls = cr_tls_own();
  switch (cmd) {
    case CORONA_CLEAN_THREAD_BUFFERS:
      if (tls != NULL) cr_tls_flush(tls);
      return 0;
    case CORONA_CLEAN_ALL_BUFFERS:
      corona_collect();
      return 0;
    default:
      return EINVAL;
  }
}

CORONA_API void *corona_aligned_realloc(void *ptr, size_t size, size_t alignment) {
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return cr_realloc(ptr, size, alignment <= CORONA_MIN_ALIGN ? 0 : alignment);
}
