/* large.c (layer: thread) — objects above CORONA_MAX_SMALL: allocation
 * (from the caches of large_cache.c, else from the backend), free (into
 * them), in-place resizing and validation of large pointers.
 *
 * Layout: [block ... [cr_large_t][user memory ...] ... block end].  For
 * alignment <= 64 the header is the first 64 bytes of the block; only such
 * blocks are cached (their header stays put, with its backref). */
#include <errno.h>
#include <string.h>

#include "internal/thread.h"
#include "internal/os.h"
#include "internal/options.h"
#include "internal/report.h"

static inline size_t round_up(size_t x, size_t to) { return (x + to - 1) & ~(to - 1); }

static bool huge_for(size_t bytes) {
  return cr_option(CR_OPT_USE_HUGE_PAGES) && bytes >= (size_t)cr_option(CR_OPT_HUGE_THRESHOLD);
}

/* The default heap's blocks above this many bytes get a mapping of their
 * own: the option MMAP_THRESHOLD (glibc's M_MMAP_THRESHOLD; by default
 * CORONA_LARGE_REGION_MAX), at most a large region.  Read at each
 * decision: mallopt may move it while blocks of either kind live, and every
 * path below tells the kinds apart by h->region, not by size. */
static size_t own_above(void) {
  uint64_t t = (uint64_t)cr_option(CR_OPT_MMAP_THRESHOLD);
  return t < CORONA_LARGE_REGION_SIZE ? (size_t)t : CORONA_LARGE_REGION_SIZE;
}

/* Block bytes a fresh allocation of size (alignment <= 64) gets; own_max:
 * own_above(), which the caller reads once for all its decisions. */
static size_t block_bytes_for(size_t size, size_t own_max) {
  size_t b = round_up(size + CORONA_LARGE_HEADER, CORONA_PAGE_SIZE);
  if (b <= own_max) return b;
  return round_up(b, huge_for(b) ? CORONA_HUGE_SPAN : CORONA_SLAB_SIZE);
}

/* Makes [user, user + size) of a block that may hold old contents read as
 * zero (calloc).  Up to CORONA_CALLOC_PURGE_MIN with memset; above it the
 * whole OS pages inside the object go back to the OS and read as zero when
 * touched, as a fresh mapping's pages do: a memset would write, and make
 * resident, every page of an object the program may touch only sparsely
 * (calloc of 512 MB reusing a cached mapping: 190 ms and 256 MB resident
 * after the free, where glibc maps fresh memory at no cost).  User memory
 * is never purged, and a huge-page region only in whole huge pages, so
 * those are written. */
static void zero_object(cr_pool_t *pool, cr_region_t *region, char *user, size_t size) {
  size_t page = cr_os_info()->page_size;
  char *a = (char *)round_up((uintptr_t)user, page), *b = (char *)((uintptr_t)(user + size) & ~(uintptr_t)(page - 1));
  if (size < CORONA_CALLOC_PURGE_MIN || pool->backend.source != NULL || (region != NULL && region->huge) || a >= b) {
    memset(user, 0, size);
    return;
  }
  memset(user, 0, (size_t)(a - user));
  cr_os_purge(a, (size_t)(b - a));
  memset(b, 0, (size_t)(user + size - b));
}

/* ---- slack of own mappings ----------------------------------------------
 * A cached own mapping found for a smaller request is kept whole, instead of
 * being cut down with mremap, while the pool's slack -- resident bytes of
 * live objects' own mappings beyond their needs -- stays within the
 * resident budget of cr_dirty_limit (a budget of its own, beside the free
 * pages').  A program that frees a big buffer and asks for one of another
 * size, over and over, then keeps reusing mappings at the biggest size it
 * asked for: cutting them down and growing them again faulted in every page
 * of the difference.  big-buffers (100 buffers of 8..48 MB, 2 live): 176k
 * page faults and 0.34 s before, 74k and 0.14-0.20 s with the slack, for
 * 96 MB peak RSS instead of 91 (tcmalloc: 54k, 0.12 s, 132 MB); with half
 * the budget, 148k faults.  The slack is given up when the object is freed
 * or resized. */
static bool slack_take(cr_pool_t *pool, size_t waste) {
  size_t limit = cr_policy_hooks.dirty_budget(pool);
  size_t cur = cr_load_relaxed(&pool->own_slack);
  do {
    if (cur + waste > limit) return false;
  } while (!atomic_compare_exchange_weak_explicit(&pool->own_slack, &cur, cur + waste, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}

static void slack_drop(cr_large_t *h) {
  if (h->slack_pages == 0) return;
  atomic_fetch_sub_explicit(&h->pool->own_slack, (size_t)h->slack_pages * CORONA_PAGE_SIZE, memory_order_relaxed);
  h->slack_pages = 0;
}

/* ---- allocation and free ----------------------------------------------- */

/* A block of *bytes from a large region, else from a mapping of its own
 * (*bytes is rounded for it); NULL when the OS refuses both.  os_align: 0,
 * or the alignment the OS is to give the block's second granule (see
 * CORONA_ALIGN_SLACK_MAX). */
static char *backend_alloc(cr_pool_t *pool, size_t *bytes, size_t alignment, size_t os_align, cr_region_t **region,
                           bool *zeroed) {
  char *block = NULL;
  *region = NULL;
  /* A user pool's regions are its memory: anything that fits one goes there. */
  size_t region_max = pool->backend.source != NULL ? CORONA_LARGE_REGION_SIZE : own_above();
  if (*bytes <= region_max && alignment <= CORONA_PAGE_SIZE)
    block = cr_backend_block_alloc(&pool->backend, *bytes, region, zeroed);
  else if (*bytes <= region_max && pool->backend.source != NULL) /* regions are 16 KB aligned */
    block = cr_backend_block_alloc_aligned(&pool->backend, *bytes, CORONA_SLAB_SIZE, region, zeroed);
  if (block != NULL) return block;
  size_t own = round_up(*bytes, CORONA_SLAB_SIZE);
  bool huge = huge_for(own);
  if (huge) own = round_up(own, CORONA_HUGE_SPAN);
  block = cr_backend_own_map(&pool->backend, own, huge, os_align, os_align ? CORONA_SLAB_SIZE : 0);
  if (block == NULL) return NULL;
  *region = NULL;
  *zeroed = pool->backend.source == NULL; /* user memory is never known to be zero */
  *bytes = own;
  return block;
}

void *cr_large_alloc(cr_pool_t *pool, cr_tls_t *own, size_t size, size_t alignment, bool zero) {
  if (size > cr_max_request || alignment > cr_max_request || alignment > CORONA_MAX_ALIGNMENT) goto oom;
  if (cr_unlikely(cr_load_relaxed(&cr_purge_wanted))) cr_policy_hooks.safe_point(pool); /* nothing read yet */
  size_t offset = alignment > CORONA_LARGE_HEADER ? alignment : CORONA_LARGE_HEADER;
  size_t os_align = 0;
  cr_large_t *h = NULL;
  char *block;
  size_t bytes;
  cr_region_t *region = NULL;
  bool zeroed = false;

  if (offset == CORONA_LARGE_HEADER) {
    size_t own_max = own_above(); /* one option read: each was a call, on every cache hit */
    bytes = block_bytes_for(size, own_max);
    bool own = bytes > own_max;
    h = cr_large_cache_take(pool, bytes, own && !zero);
    size_t slack = 0;
    size_t min_tail = own_max > CORONA_SLAB_SIZE ? own_max : CORONA_SLAB_SIZE;
    if (h != NULL && own && h->region == NULL && h->block_size > bytes && h->block_size - bytes >= min_tail &&
        cr_large_own_cuttable(pool) && cr_large_own_cut(pool, h, bytes)) {
      /* cut to size: the tail stays cached, resident */
    } else if (h != NULL && own && h->region == NULL && h->block_size > bytes && h->block_size - bytes > bytes / 4 &&
               slack_take(pool, h->block_size - bytes)) {
      slack = h->block_size - bytes; /* kept whole: see slack_take */
    } else if (h != NULL && h->block_size != bytes && own && h->region == NULL &&
               (h->block_size < bytes || h->block_size - bytes > bytes / 4)) {
      /* Another size of own mapping: resize it in place or move its pages. */
      size_t old_bytes = h->block_size;
      char *q = cr_backend_own_remap(&pool->backend, h->block, h->block_size, bytes, huge_for(bytes));
      if (q == NULL) { /* kept for a request it covers; this one takes fresh pages, filled below */
        cr_large_cache_put(pool, h);
        h = NULL;
      } else {
        h = (cr_large_t *)q;
        h->block = q;
        h->block_size = bytes;
        cr_backref_set(h->backref, h);
        if (old_bytes < bytes && cr_large_own_cuttable(pool)) cr_large_own_fill(pool, q, old_bytes, bytes);
      }
    }
    if (h != NULL) { /* cache hit: header and backref are in place */
      h->slack_pages = (uint32_t)(slack / CORONA_PAGE_SIZE);
      h->sample = NULL; /* live: cached_at's word is the profiler's now */
      void *user = (char *)h + CORONA_LARGE_HEADER;
      h->size = size;
      atomic_fetch_add_explicit(&pool->large_in_use, h->block_size, memory_order_relaxed);
      CR_STAT(cr_stat_event(pool, CR_STAT_LARGE_ALLOC, 1));
      CR_STAT(cr_stat_event(pool, CR_STAT_CACHE_HIT, 1));
      CR_STAT(cr_stats_note_peak(pool));
      if (zero) zero_object(pool, h->region, user, size);
      cr_store_relaxed(&h->user, user); /* published with the pointer, as the header is */
      return user;
    }
  } else {
    /* Aligned: room for the header below an aligned pointer, and at least
     * one byte past it even for size 0 (the pointer must be inside). */
    size_t body = size < CORONA_MIN_ALIGN ? CORONA_MIN_ALIGN : size;
    if (alignment > CORONA_ALIGN_SLACK_MAX && pool->backend.source == NULL) {
      /* The header's granule, then the object, where the OS aligns it. */
      os_align = alignment;
      bytes = round_up(CORONA_SLAB_SIZE + body, CORONA_SLAB_SIZE);
    } else {
      bytes = round_up(offset + body, alignment > CORONA_PAGE_SIZE ? CORONA_SLAB_SIZE : CORONA_PAGE_SIZE);
    }
  }
  if (own != NULL) cr_tls_decay_check(own);
  cr_policy_hooks.tick(pool, cr_os_now_ms());
  block = backend_alloc(pool, &bytes, alignment, os_align, &region, &zeroed);
  if (block == NULL) { /* the OS refuses: give back what the caches hold, retry */
    cr_policy_hooks.reclaim(pool, own);
    block = backend_alloc(pool, &bytes, alignment, os_align, &region, &zeroed);
  }
  if (block == NULL) goto oom;
  if (region == NULL && offset == CORONA_LARGE_HEADER && !zero && cr_large_own_cuttable(pool)) {
    cr_large_own_fill(pool, block, 0, bytes); /* resident pages of cached pieces, before the header is written */
    zeroed = false;
  }
  /* An own mapping is aligned to 16 KB: alignments above that are met by
   * the offset (bytes include it) or by the OS (the granule after the
   * block's first is aligned), below it by the block's alignment. */
  char *user = alignment <= CORONA_SLAB_SIZE ? block + offset
                                             : (char *)round_up((uintptr_t)block + CORONA_LARGE_HEADER, alignment);
  h = (cr_large_t *)(user - CORONA_LARGE_HEADER);
  h->block = block;
  h->block_size = bytes;
  h->size = size;
  cr_store_relaxed(&h->user, (void *)user);
  h->pool = pool;
  h->region = region;
  h->slack_pages = 0;
  h->sample = NULL;
  h->backref = cr_backref_alloc(h);
  if (h->backref == 0) {
    if (region != NULL) cr_backend_block_free(&pool->backend, region, block, bytes, cr_policy_hooks.dirty_budget(pool));
    else cr_backend_own_unmap(&pool->backend, block, bytes);
    goto oom;
  }
  atomic_fetch_add_explicit(&pool->large_in_use, bytes, memory_order_relaxed);
  CR_STAT(cr_stat_event(pool, CR_STAT_LARGE_ALLOC, 1));
  CR_STAT(cr_stat_event(pool, CR_STAT_CACHE_MISS, 1));
  CR_STAT(cr_stats_note_peak(pool));
  if (zero && !zeroed) zero_object(pool, region, user, size);
  cr_policy_hooks.grew(pool);
  return user;
oom:
  errno = ENOMEM;
  return NULL;
}

void cr_large_claim(cr_large_t *h) {
  /* Exactly one free turns user NULL; the other is a double free and must
   * not cache the block a second time, nor read its fields. */
  void *user = cr_load_relaxed(&h->user);
  if (cr_unlikely(user == NULL || !atomic_compare_exchange_strong_explicit(&h->user, &user, NULL, memory_order_relaxed,
                                                                           memory_order_relaxed)))
    cr_fatal("free(): double free of a large object at", user != NULL ? user : (char *)h + CORONA_LARGE_HEADER);
}

void cr_large_free(cr_large_t *h) {
  cr_large_claim(h);
  cr_large_free_claimed(h);
}

void cr_large_free_claimed(cr_large_t *h) {
  cr_pool_t *pool = h->pool;
  slack_drop(h);
  atomic_fetch_sub_explicit(&pool->large_in_use, h->block_size, memory_order_relaxed);
  CR_STAT(cr_stat_event(pool, CR_STAT_LARGE_FREE, 1));
  uint64_t now = cr_os_now_ms(); /* one clock read for the cache's stamp and the tick */
  if ((char *)h != h->block || h->block_size > CORONA_LOC_MAX_OBJECT ||
      (h->region == NULL && pool->backend.source != NULL && !pool->source.keep_all)) {
    cr_large_release(h);
  } else {
    h->cached_at = now;
    cr_large_cache_put(pool, h);
  }
  cr_policy_hooks.tick(pool, now);
  cr_tls_t *own = cr_tls_own();
  if (own != NULL && own->pool == pool) cr_tls_decay_check(own);
  cr_policy_hooks.cached(pool); /* the global cache or the backend may hold it now */
  /* A safe point too (thread.h): a thread of large objects only has no TLS,
   * so no exit hook, and may make no allocation after its frees. */
  if (cr_unlikely(cr_load_relaxed(&cr_purge_wanted))) cr_policy_hooks.safe_point(pool);
}

cr_large_t *cr_large_header(const void *p, unsigned kind) {
  if (kind != CR_KIND_LARGE || ((uintptr_t)p & (CORONA_MIN_ALIGN - 1)) != 0) return NULL;
  /* The header must lie in memory the page map says is ours. */
  if (((uintptr_t)p & (CORONA_SLAB_SIZE - 1)) < CORONA_LARGE_HEADER &&
      cr_pagemap_kind((uintptr_t)p - CORONA_LARGE_HEADER) != CR_KIND_LARGE)
    return NULL;
  cr_large_t *h = (cr_large_t *)((char *)p - CORONA_LARGE_HEADER);
  if (cr_backref_get(h->backref) != h || cr_load_relaxed(&h->user) != p) return NULL;
  return h;
}

static void in_use_adjust(cr_pool_t *pool, size_t old_bytes, size_t new_bytes) {
  if (new_bytes > old_bytes) {
    atomic_fetch_add_explicit(&pool->large_in_use, new_bytes - old_bytes, memory_order_relaxed);
    CR_STAT(cr_stats_note_peak(pool));
  } else atomic_fetch_sub_explicit(&pool->large_in_use, old_bytes - new_bytes, memory_order_relaxed);
}

void *cr_large_resize(cr_large_t *h, size_t size) {
  if ((char *)h != h->block) return NULL; /* aligned: moved by the caller */
  cr_backend_t *be = &h->pool->backend;
  size_t bytes = block_bytes_for(size, own_above());
  if (h->region != NULL) {
    if (bytes > (h->pool->backend.source != NULL ? CORONA_LARGE_REGION_SIZE : own_above())) return NULL;
    if (bytes == h->block_size || (bytes < h->block_size && bytes >= h->block_size / 2)) {
      h->size = size; /* fits, and not worth a trim */
      return cr_load_relaxed(&h->user);
    }
    if (!cr_backend_block_resize(be, h->region, h->block, h->block_size, bytes, cr_policy_hooks.dirty_budget(h->pool))) return NULL;
    in_use_adjust(h->pool, h->block_size, bytes);
    h->block_size = bytes;
    h->size = size;
    return cr_load_relaxed(&h->user);
  }
  if (bytes <= own_above()) bytes = round_up(bytes, CORONA_SLAB_SIZE); /* stays an own mapping */
  slack_drop(h); /* the block is resized to the need (or needed whole) */
  if (bytes == h->block_size) {
    h->size = size;
    return cr_load_relaxed(&h->user);
  }
  cr_pool_t *pool = h->pool;
  size_t old_bytes = h->block_size;
  if (bytes > old_bytes && cr_large_own_extend(h, bytes)) {
    in_use_adjust(pool, old_bytes, bytes);
    h->block_size = bytes;
    h->size = size;
    return cr_load_relaxed(&h->user);
  }
  char *q = cr_backend_own_remap(be, h->block, old_bytes, bytes, huge_for(bytes));
  if (q == NULL) return NULL;
  in_use_adjust(pool, old_bytes, bytes); /* h may be gone: its pages moved to q */
  cr_large_t *nh = (cr_large_t *)q; /* the header moved with its pages */
  nh->block = q;
  nh->block_size = bytes;
  nh->size = size;
  cr_store_relaxed(&nh->user, (void *)(q + CORONA_LARGE_HEADER));
  cr_backref_set(nh->backref, nh);
  return q + CORONA_LARGE_HEADER;
}
