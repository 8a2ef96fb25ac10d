/* large.c (layer: thread) — objects above CORONA_MAX_SMALL: the per-thread
 * and the global large-object caches (LOC), allocation from the backend on a
 * miss, in-place resizing and validation of large pointers.  What the caches
 * may keep and when it goes back is the policy layer's (cr_policy_hooks).
 *
 * Layout: [block ... [cr_large_t][user memory ...] ... block end].  For
 * alignment <= 64 the header is the first 64 bytes of the block; only such
 * blocks are cached (their header stays put, with its backref).  A cached
 * block keeps its cache links in its user memory (cr_lnode_t). */
#include <errno.h>
#include <string.h>

#include "internal/thread.h"
#include "internal/os.h"
#include "internal/options.h"
#include "internal/report.h"

typedef struct cr_lnode_s {
  cr_large_t *next, *prev;   /* bin list (global) or the local list (next only) */
  cr_large_t *newer, *older; /* global age list */
} cr_lnode_t;

static inline cr_lnode_t *node(cr_large_t *h) { return (cr_lnode_t *)((char *)h + CORONA_LARGE_HEADER); }
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

/* Block bytes a fresh allocation of size (alignment <= 64) gets. */
static size_t block_bytes_for(size_t size) {
  size_t b = round_up(size + CORONA_LARGE_HEADER, CORONA_PAGE_SIZE);
  if (b <= own_above()) return b;
  return round_up(b, huge_for(b) ? CORONA_HUGE_SPAN : CORONA_SLAB_SIZE);
}

/* Global cache bin: exact page count up to 1 MB, then four bins per
 * doubling (a cached block serves requests of its own bin that it covers). */
#define LOC_EXACT_MAX ((size_t)1 << 20)
static unsigned loc_bin(size_t bytes) {
  size_t pages = bytes / CORONA_PAGE_SIZE;
  if (bytes <= LOC_EXACT_MAX) return (unsigned)pages;
  unsigned lg = 63u - (unsigned)__builtin_clzll(bytes - 1); /* 2^lg < bytes <= 2^(lg+1), lg >= 20 */
  unsigned sub = (unsigned)(((bytes - 1) >> (lg - 2)) & 3);
  unsigned b = (unsigned)(LOC_EXACT_MAX / CORONA_PAGE_SIZE) + 1 + (lg - 20) * 4 + sub;
  return b < CR_LOC_BINS ? b : CR_LOC_BINS - 1;
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
  size_t page = cr_os_page_size();
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

/* ---- giving a block back ---------------------------------------------- */

static void block_release(cr_large_t *h) {
  cr_backend_t *be = &h->pool->backend;
  cr_backref_free(h->backref);
  if (h->region != NULL) cr_backend_block_free(be, h->region, h->block, h->block_size, cr_policy_hooks.dirty_budget(h->pool));
  else cr_backend_own_unmap(be, h->block, h->block_size);
}

static void release_chain(cr_large_t *h) { /* linked by node()->next */
  while (h != NULL) {
    cr_large_t *next = node(h)->next;
    block_release(h);
    h = next;
  }
}

/* ---- global cache (loc->lock) -------------------------------------------- */

static void gloc_unlink(cr_loc_t *loc, cr_large_t *h) {
  cr_lnode_t *n = node(h);
  unsigned bin = loc_bin(h->block_size);
  if (n->prev) node(n->prev)->next = n->next;
  else loc->bins[bin] = n->next;
  if (n->next) node(n->next)->prev = n->prev;
  if (n->older) node(n->older)->newer = n->newer;
  else loc->oldest = n->newer;
  if (n->newer) node(n->newer)->older = n->older;
  else loc->newest = n->older;
  loc->bytes -= h->block_size;
  loc->count--;
  if (h->region == NULL) {
    loc->own_count--;
    loc->own_bytes -= h->block_size;
  }
}

/* Takes the oldest entries out while they are older than older_than or the
 * cache holds more than max_bytes; returns them as a chain for release
 * outside the lock.  The newest entry, if it has a mapping of its own, stays
 * whatever its size (until it ages): a program that frees a big buffer and
 * then asks for another gets the resident pages back (resized by mremap)
 * instead of faulting in fresh ones. */
static cr_large_t *gloc_evict(cr_loc_t *loc, uint64_t older_than, size_t max_bytes) {
  cr_large_t *chain = NULL;
  cr_large_t *h;
  while ((h = loc->oldest) != NULL &&
         (h->cached_at < older_than || (loc->bytes > max_bytes && (h != loc->newest || h->region != NULL)))) {
    gloc_unlink(loc, h);
    node(h)->next = chain;
    chain = h;
  }
  return chain;
}

/* Puts a chain (linked by next) of cached headers into the global cache. */
static void gloc_put(cr_pool_t *pool, cr_large_t *chain) {
  cr_loc_t *loc = &pool->loc;
  size_t limit = cr_policy_hooks.loc_budget(pool);
  cr_lock(&loc->lock);
  while (chain != NULL) {
    cr_large_t *h = chain;
    chain = node(h)->next;
    cr_lnode_t *n = node(h);
    unsigned bin = loc_bin(h->block_size);
    n->prev = NULL;
    n->next = loc->bins[bin];
    if (n->next) node(n->next)->prev = h;
    loc->bins[bin] = h;
    n->newer = NULL;
    n->older = loc->newest;
    if (loc->newest) node(loc->newest)->newer = h;
    else loc->oldest = h;
    loc->newest = h;
    loc->bytes += h->block_size;
    loc->count++;
    if (h->region == NULL) {
      loc->own_count++;
      loc->own_bytes += h->block_size;
    }
  }
  cr_large_t *evicted = gloc_evict(loc, 0, limit);
  cr_unlock(&loc->lock);
  release_chain(evicted);
}

/* A cached block for bytes: one of its own bin that covers it, else, for a
 * block with a mapping of its own, the cached own mapping that fits best
 * (the caller resizes it with mremap: its resident pages are reused). */
static cr_large_t *gloc_get(cr_pool_t *pool, size_t bytes, bool any_own) {
  cr_loc_t *loc = &pool->loc;
  unsigned bin = loc_bin(bytes);
  cr_lock(&loc->lock);
  cr_large_t *h = loc->bins[bin];
  while (h != NULL && h->block_size < bytes) h = node(h)->next;
  if (h == NULL && any_own) { /* the smallest that covers bytes, else the biggest */
    cr_large_t *fit = NULL, *big = NULL;
    for (cr_large_t *c = loc->newest; c != NULL; c = node(c)->older) {
      if (c->region != NULL) continue;
      if (c->block_size >= bytes && (fit == NULL || c->block_size < fit->block_size)) fit = c;
      if (big == NULL || c->block_size > big->block_size) big = c;
    }
    h = fit ? fit : big;
  }
  if (h != NULL) gloc_unlink(loc, h);
  cr_unlock(&loc->lock);
  return h;
}

/* ---- local cache (owner only) -------------------------------------------- */

static cr_large_t *lloc_get(cr_tls_t *tls, size_t bytes) {
  cr_large_t **link = &tls->loc;
  for (cr_large_t *h = tls->loc; h != NULL; link = &node(h)->next, h = node(h)->next) {
    if (h->block_size == bytes) {
      *link = node(h)->next;
      tls->loc_count--;
      tls->loc_bytes -= bytes;
      return h;
    }
  }
  return NULL;
}

static void lloc_put(cr_tls_t *tls, cr_large_t *h) {
  /* Own mappings go global at once: there any later big request can take
   * one and resize it (a local hit needs the exact size). */
  if (h->region == NULL || h->block_size > CORONA_LOCAL_LOC_MAX_BYTES) {
    node(h)->next = NULL;
    gloc_put(tls->pool, h);
    return;
  }
  node(h)->next = tls->loc;
  tls->loc = h;
  tls->loc_count++;
  tls->loc_bytes += h->block_size;
  cr_tls_cache_note(tls);
  if (tls->loc_count <= CORONA_LOCAL_LOC_MAX_COUNT && tls->loc_bytes <= CORONA_LOCAL_LOC_MAX_BYTES) return;
  /* Keep the most recent few (within the byte bound), the rest go global. */
  cr_large_t *keep = tls->loc;
  uint32_t count = 1;
  size_t bytes = keep->block_size;
  while (node(keep)->next != NULL && count < CORONA_LOCAL_LOC_TRIM &&
         bytes + node(keep)->next->block_size <= CORONA_LOCAL_LOC_MAX_BYTES / 2) {
    keep = node(keep)->next;
    count++;
    bytes += keep->block_size;
  }
  cr_large_t *rest = node(keep)->next;
  node(keep)->next = NULL;
  tls->loc_count = count;
  tls->loc_bytes = bytes;
  gloc_put(tls->pool, rest);
}

void cr_tls_flush(cr_tls_t *tls) {
  cr_large_flush_local(tls);
  cr_bins_flush_empty(tls);
}

void cr_large_cache_evict(cr_pool_t *pool, uint64_t older_than, size_t max_bytes) {
  cr_lock(&pool->loc.lock);
  cr_large_t *evicted = gloc_evict(&pool->loc, older_than, max_bytes);
  cr_unlock(&pool->loc.lock);
  release_chain(evicted);
}

uint64_t cr_large_cache_oldest(cr_pool_t *pool) {
  cr_lock(&pool->loc.lock);
  uint64_t t = pool->loc.oldest != NULL ? pool->loc.oldest->cached_at : 0;
  cr_unlock(&pool->loc.lock);
  return t;
}

void cr_large_flush_local(cr_tls_t *tls) {
  cr_large_t *chain = tls->loc;
  tls->loc = NULL;
  tls->loc_count = 0;
  tls->loc_bytes = 0;
  if (chain != NULL) gloc_put(tls->pool, chain);
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
  cr_tls_t *tls = cr_tls_get();
  size_t offset = alignment > CORONA_LARGE_HEADER ? alignment : CORONA_LARGE_HEADER;
  size_t os_align = 0;
  cr_large_t *h = NULL;
  char *block;
  size_t bytes;
  cr_region_t *region = NULL;
  bool zeroed = false;

  if (offset == CORONA_LARGE_HEADER) {
    bytes = block_bytes_for(size);
    if (tls != &cr_tls_empty && tls->pool == pool) h = lloc_get(tls, bytes);
    bool own = bytes > own_above();
    if (h == NULL && bytes <= CORONA_LOC_MAX_OBJECT) h = gloc_get(pool, bytes, own && !zero);
    size_t slack = 0;
    if (h != NULL && own && h->region == NULL && h->block_size > bytes && h->block_size - bytes > bytes / 4 &&
        slack_take(pool, h->block_size - bytes)) {
      slack = h->block_size - bytes; /* kept whole: see slack_take */
    } else if (h != NULL && h->block_size != bytes && own && h->region == NULL &&
               (h->block_size < bytes || h->block_size - bytes > bytes / 4)) {
      /* Another size of own mapping: resize it in place or move its pages. */
      char *q = cr_backend_own_remap(&pool->backend, h->block, h->block_size, bytes, huge_for(bytes));
      if (q == NULL) {
        block_release(h);
        h = NULL;
      } else {
        h = (cr_large_t *)q;
        h->block = q;
        h->block_size = bytes;
        cr_backref_set(h->backref, h);
      }
    }
    if (h != NULL) { /* cache hit: header and backref are in place */
      h->slack_pages = (uint32_t)(slack / CORONA_PAGE_SIZE);
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
  cr_policy_hooks.tick(pool);
  block = backend_alloc(pool, &bytes, alignment, os_align, &region, &zeroed);
  if (block == NULL) { /* the OS refuses: give back what the caches hold, retry */
    cr_policy_hooks.reclaim(pool, own);
    block = backend_alloc(pool, &bytes, alignment, os_align, &region, &zeroed);
  }
  if (block == NULL) goto oom;
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
  h->cached_at = 0;
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

void cr_large_free(cr_large_t *h) {
  cr_pool_t *pool = h->pool;
  /* Claim the object: of two frees racing on one pointer, both of which
   * passed validation, exactly one turns user NULL; the other is a double
   * free and must not cache the block a second time. */
  void *user = cr_load_relaxed(&h->user);
  if (cr_unlikely(user == NULL || !atomic_compare_exchange_strong_explicit(&h->user, &user, NULL, memory_order_relaxed,
                                                                           memory_order_relaxed)))
    cr_fatal("free(): double free of a large object at", user != NULL ? user : (char *)h + CORONA_LARGE_HEADER);
  slack_drop(h);
  atomic_fetch_sub_explicit(&pool->large_in_use, h->block_size, memory_order_relaxed);
  CR_STAT(cr_stat_event(pool, CR_STAT_LARGE_FREE, 1));
  if ((char *)h != h->block || h->block_size > CORONA_LOC_MAX_OBJECT ||
      (h->region == NULL && pool->backend.source != NULL && !pool->source.keep_all)) {
    block_release(h);
  } else {
    h->cached_at = cr_os_now_ms();
    cr_tls_t *tls = cr_tls_get();
    if (tls != &cr_tls_empty && tls->pool == pool) lloc_put(tls, h);
    else {
      node(h)->next = NULL;
      gloc_put(pool, h);
    }
  }
  cr_policy_hooks.tick(pool);
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
  size_t bytes = block_bytes_for(size);
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
