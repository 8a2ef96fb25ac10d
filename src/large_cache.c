/* large_cache.c (layer: thread) — the caches of large objects: each
 * thread's local cache (exact sizes, owner only) and the pool's global one
 * (binned by size, with an age list for time-based release), and what the
 * global one does with mappings of their own: cuts them to size, joins
 * freed neighbours, gathers pieces into a bigger block and lets a live one
 * grow into the piece after it, so that big buffers replaced by others of
 * other sizes keep reusing resident pages.  How much the caches keep is the
 * policy layer's (cr_policy_hooks); large.c allocates and frees through
 * them.  A cached block keeps its cache links in its user memory
 * (cr_lnode_t); its header stays put, with its backref. */
#include <string.h>

#include "internal/thread.h"
#include "internal/options.h"

typedef struct cr_lnode_s {
  cr_large_t *next, *prev;   /* bin list (global) or the local list (next only) */
  cr_large_t *newer, *older; /* global age list */
} cr_lnode_t;

static inline cr_lnode_t *node(cr_large_t *h) { return (cr_lnode_t *)((char *)h + CORONA_LARGE_HEADER); }

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

/* ---- giving a block back ---------------------------------------------- */

void cr_large_release(cr_large_t *h) {
  cr_backend_t *be = &h->pool->backend;
  cr_backref_free(h->backref);
  if (h->region != NULL) cr_backend_block_free(be, h->region, h->block, h->block_size, cr_policy_hooks.dirty_budget(h->pool));
  else cr_backend_own_unmap(be, h->block, h->block_size);
}

/* Releases a chain (linked by node()->next) of one pool's blocks: those of
 * large regions CORONA_RELEASE_BATCH at a time, under one take of the
 * backref table's lock and one of the backend's (an eviction releases
 * several, and the locks are the ones every thread's misses take). */
static void release_chain(cr_large_t *h) {
  while (h != NULL) {
    cr_pool_t *pool = h->pool;
    cr_span_t spans[CORONA_RELEASE_BATCH];
    uint32_t refs[CORONA_RELEASE_BATCH];
    size_t n = 0;
    for (cr_large_t *next; h != NULL && n < CORONA_RELEASE_BATCH; h = next) {
      next = node(h)->next; /* read first: a released block is not ours */
      if (h->region == NULL) {
        cr_large_release(h);
        continue;
      }
      refs[n] = h->backref;
      spans[n++] = (cr_span_t){h->region, h->block, h->block_size};
    }
    if (n == 0) continue;
    cr_backref_free_many(refs, n);
    cr_backend_blocks_free(&pool->backend, spans, n, cr_policy_hooks.dirty_budget(pool));
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

/* Takes entries out, oldest first: those cached before older_than, and
 * while the cache is over a budget, those of the kind over it -- blocks of
 * large regions against max_bytes, mappings of their own against own_max
 * (a budget of their own: a program that replaces big buffers by others of
 * other sizes finds a resident one that fits among them, where the small
 * blocks' budget kept one or two).  Returns them as a chain for release
 * outside the lock.  The newest entry, if it has a mapping of its own, stays
 * whatever its size (until it ages) when keep_newest (no soft heap limit,
 * cr_policy_hooks.own_budget): a program that frees a big buffer and
 * then asks for another gets the resident pages back (resized by mremap)
 * instead of faulting in fresh ones. */
static cr_large_t *gloc_evict(cr_loc_t *loc, uint64_t older_than, size_t max_bytes, size_t own_max,
                              bool keep_newest) {
  cr_large_t *chain = NULL;
  cr_large_t *h = loc->oldest;
  while (h != NULL) {
    cr_large_t *newer = node(h)->newer;
    bool over = h->region != NULL ? loc->bytes - loc->own_bytes > max_bytes
                                  : loc->own_bytes > own_max && (h != loc->newest || !keep_newest);
    if (h->cached_at < older_than || over) {
      gloc_unlink(loc, h);
      node(h)->next = chain;
      chain = h;
    } else if (loc->bytes - loc->own_bytes <= max_bytes && loc->own_bytes <= own_max) {
      break; /* within both budgets, and the rest is younger */
    }
    h = newer;
  }
  return chain;
}

/* Links h into the global cache: first in its bin, and in the age list
 * after every entry cached no later than it (a put is the newest but for
 * clock races between threads; a cut-off tail keeps the age of its block). */
static void gloc_link(cr_loc_t *loc, cr_large_t *h) {
  cr_lnode_t *n = node(h);
  unsigned bin = loc_bin(h->block_size);
  n->prev = NULL;
  n->next = loc->bins[bin];
  if (n->next) node(n->next)->prev = h;
  loc->bins[bin] = h;
  cr_large_t *older = loc->newest;
  while (older != NULL && older->cached_at > h->cached_at) older = node(older)->older;
  cr_large_t *newer = older != NULL ? node(older)->newer : loc->oldest;
  n->older = older;
  n->newer = newer;
  if (older) node(older)->newer = h;
  else loc->oldest = h;
  if (newer) node(newer)->older = h;
  else loc->newest = h;
  loc->bytes += h->block_size;
  loc->count++;
  if (h->region == NULL) {
    loc->own_count++;
    loc->own_bytes += h->block_size;
  }
}

/* Whether cached mappings of their own may be cut and joined: the OS's
 * heap (a user pool's chunks go back whole) without huge pages (a cut
 * inside one would split it). */
bool cr_large_own_cuttable(cr_pool_t *pool) {
  return pool->backend.source == NULL && !cr_option(CR_OPT_USE_HUGE_PAGES);
}

/* Joins the mapping of its own h (not in the cache) with the cached ones
 * right below and above it, which leave the cache; returns the header of
 * the joined block (the lowest), aged as the oldest of the parts, so that
 * no freed byte stays cached longer than the decay time.  Cut pieces of
 * one buffer, freed, become one resident block again, which serves a
 * request of any size up to the whole. */
static cr_large_t *own_join(cr_pool_t *pool, cr_large_t *h) {
  cr_loc_t *loc = &pool->loc;
  for (bool joined = true; joined;) {
    joined = false;
    for (cr_large_t *c = loc->newest; c != NULL; c = node(c)->older) {
      if (c->region != NULL || (c->block + c->block_size != h->block && h->block + h->block_size != c->block))
        continue;
      cr_large_t *lo = c->block < h->block ? c : h, *hi = lo == c ? h : c;
      if (!cr_backend_own_join(&pool->backend, lo->block, lo->block_size + hi->block_size, lo->block_size)) continue;
      gloc_unlink(loc, c);
      lo->block_size += hi->block_size;
      if (hi->cached_at < lo->cached_at) lo->cached_at = hi->cached_at;
      cr_backref_free(hi->backref);
      h = lo;
      joined = true;
      break;
    }
  }
  return h;
}

/* Puts a chain (linked by next) of cached headers into the global cache. */
static void gloc_put(cr_pool_t *pool, cr_large_t *chain) {
  cr_loc_t *loc = &pool->loc;
  bool keep_newest;
  size_t limit = cr_policy_hooks.loc_budget(pool), own_limit = cr_policy_hooks.own_budget(pool, &keep_newest);
  bool cuttable = cr_large_own_cuttable(pool);
  cr_lock(&loc->lock);
  while (chain != NULL) {
    cr_large_t *h = chain;
    chain = node(h)->next;
    if (h->region == NULL && cuttable) h = own_join(pool, h);
    gloc_link(loc, h);
  }
  cr_large_t *evicted = gloc_evict(loc, 0, limit, own_limit, keep_newest);
  cr_unlock(&loc->lock);
  release_chain(evicted);
}

/* The cached mapping of its own that fits bytes best: the smallest that
 * covers them, else the biggest; NULL when none is cached (loc->lock). */
static cr_large_t *own_best(cr_loc_t *loc, size_t bytes) {
  cr_large_t *fit = NULL, *big = NULL;
  for (cr_large_t *c = loc->newest; c != NULL; c = node(c)->older) {
    if (c->region != NULL) continue;
    if (c->block_size >= bytes && (fit == NULL || c->block_size < fit->block_size)) fit = c;
    if (big == NULL || c->block_size > big->block_size) big = c;
  }
  return fit ? fit : big;
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
  /* A block a little bigger serves too (CORONA_LOC_FIT_SHIFT): the exact
   * bins' neighbours, smallest first (exact ones only: a bin above 1 MB
   * spans a quarter of a doubling). */
  if (h == NULL && bytes < LOC_EXACT_MAX) {
    size_t most = bytes + (bytes >> CORONA_LOC_FIT_SHIFT);
    unsigned last = loc_bin(most < LOC_EXACT_MAX ? most : LOC_EXACT_MAX);
    for (unsigned b = bin + 1; h == NULL && b <= last; b++) h = loc->bins[b];
  }
  if (h == NULL && any_own) h = own_best(loc, bytes);
  if (h != NULL) gloc_unlink(loc, h);
  cr_unlock(&loc->lock);
  return h;
}

/* Cuts the cached mapping of its own h (taken out of the cache) down to
 * bytes: its tail becomes a mapping of its own, cached with h's age, its
 * header written in its first page (resident: it was part of h).  A program
 * that replaces big buffers by others of random sizes then reuses the
 * resident pages of a bigger one for two requests, where mremap cut them
 * off and faulted in fresh ones for the next.  false, with h unchanged,
 * when the backref table has no room for the tail's header. */
bool cr_large_own_cut(cr_pool_t *pool, cr_large_t *h, size_t bytes) {
  cr_large_t *t = (cr_large_t *)(h->block + bytes);
  uint32_t backref = cr_backref_alloc(t);
  if (backref == 0) return false;
  if (!cr_backend_own_split(&pool->backend, h->block, h->block_size, bytes)) {
    cr_backref_free(backref);
    return false;
  }
  t->backref = backref;
  t->slack_pages = 0;
  t->block = (char *)t;
  t->block_size = h->block_size - bytes;
  t->size = 0;
  cr_store_relaxed(&t->user, NULL);
  t->pool = pool;
  t->region = NULL;
  t->cached_at = h->cached_at;
  h->block_size = bytes;
  node(t)->next = NULL;
  gloc_put(pool, t);
  return true;
}

/* The own mapping [block, block + to) has just grown from `from` bytes
 * with fresh pages, untouched: moves the resident pages of other cached
 * mappings of their own onto them (best fit first, the last one cut to
 * size), without a copy, for as far as they go.  A request bigger than any
 * cached piece then still reuses resident memory, where it faulted in a
 * page for each 4 KB the biggest piece lacked.  A piece the OS cannot move
 * goes back to the cache, and the rest of the block stays fresh. */
void cr_large_own_fill(cr_pool_t *pool, char *block, size_t from, size_t to) {
  cr_loc_t *loc = &pool->loc;
  cr_large_t *aside = NULL; /* pieces the OS would not move: back to the cache at the end */
  while (from < to) {
    cr_lock(&loc->lock);
    cr_large_t *c = own_best(loc, to - from);
    if (c != NULL) gloc_unlink(loc, c);
    cr_unlock(&loc->lock);
    if (c == NULL) break;
    if (c->block_size > to - from && !cr_large_own_cut(pool, c, to - from)) {
      node(c)->next = aside;
      aside = c;
      break;
    }
    size_t n = c->block_size;
    uint32_t backref = c->backref;
    if (!cr_backend_own_move_into(&pool->backend, c->block, n, block, to, block + from)) {
      node(c)->next = aside; /* Linux: a piece made of others the kernel keeps apart */
      aside = c;
      continue;
    }
    cr_backref_free(backref); /* its header moved into the block: user memory now */
    from += n;
  }
  if (aside != NULL) gloc_put(pool, aside);
}

/* Grows the live mapping of its own h to bytes into the cached one right
 * after it, when that one is big enough: its resident pages join h's (it
 * is cut to what h lacks, the rest stays cached).  A buffer that realloc
 * grows step by step in the place of a bigger one freed before (cut to the
 * buffer's first size) takes back that one's pages instead of moving onto
 * fresh ones beside them.  false, with nothing changed, when it cannot. */
bool cr_large_own_extend(cr_large_t *h, size_t bytes) {
  cr_pool_t *pool = h->pool;
  cr_loc_t *loc = &pool->loc;
  size_t need = bytes - h->block_size;
  if (!cr_large_own_cuttable(pool)) return false;
  cr_lock(&loc->lock);
  cr_large_t *c = loc->newest;
  while (c != NULL && (c->region != NULL || c->block != h->block + h->block_size)) c = node(c)->older;
  if (c != NULL && c->block_size >= need) gloc_unlink(loc, c);
  else c = NULL;
  cr_unlock(&loc->lock);
  if (c == NULL) return false;
  if ((c->block_size > need && !cr_large_own_cut(pool, c, need)) ||
      !cr_backend_own_join(&pool->backend, h->block, bytes, h->block_size)) {
    node(c)->next = NULL;
    gloc_put(pool, c);
    return false;
  }
  cr_backref_free(c->backref);
  return true;
}

/* ---- local cache (owner only) --------------------------------------------
 * tls->loc[0 .. loc_count) holds the thread's cached blocks of large
 * regions, oldest first, each with its size (cr_loc_slot_t). */

/* loc_bytes changes by d: only the owner writes it, others only read it. */
static void lloc_count_bytes(cr_tls_t *tls, size_t d, bool add) {
  size_t now = cr_load_relaxed(&tls->loc_bytes);
  cr_store_relaxed(&tls->loc_bytes, add ? now + d : now - d);
}

/* Takes slot i out, keeping the age order. */
static cr_large_t *lloc_remove(cr_tls_t *tls, uint32_t i) {
  cr_large_t *h = tls->loc[i].h;
  lloc_count_bytes(tls, tls->loc[i].bytes, false);
  tls->loc_count--;
  memmove(&tls->loc[i], &tls->loc[i + 1], (tls->loc_count - i) * sizeof tls->loc[0]);
  return h;
}

static cr_large_t *lloc_get(cr_tls_t *tls, size_t bytes) {
  /* The exact size, newest first (the common hit: a tight loop), else the
   * smallest a little bigger (CORONA_LOC_FIT_SHIFT; one unsigned
   * difference tests both bounds: a smaller block wraps around). */
  uint32_t best = UINT32_MAX;
  size_t best_over = (bytes >> CORONA_LOC_FIT_SHIFT) + 1;
  for (uint32_t i = tls->loc_count; i-- > 0;) {
    size_t over = tls->loc[i].bytes - bytes;
    if (over < best_over) {
      best_over = over, best = i;
      if (over == 0) break;
    }
  }
  return best == UINT32_MAX ? NULL : lloc_remove(tls, best);
}

/* Links slots [0, n) into a chain (by node()->next) and takes them out. */
static cr_large_t *lloc_take_oldest(cr_tls_t *tls, uint32_t n) {
  cr_large_t *chain = NULL;
  size_t bytes = 0;
  for (uint32_t i = n; i-- > 0;) {
    node(tls->loc[i].h)->next = chain;
    chain = tls->loc[i].h;
    bytes += tls->loc[i].bytes;
  }
  lloc_count_bytes(tls, bytes, false);
  tls->loc_count -= n;
  memmove(&tls->loc[0], &tls->loc[n], tls->loc_count * sizeof tls->loc[0]);
  return chain;
}

/* The bytes a thread of pool may keep: its share of the threads' total
 * (config.h), read as the thread count stood a moment ago. */
static size_t lloc_max_bytes(cr_pool_t *pool) {
  uint32_t n = cr_load_relaxed(&pool->thread_count);
  size_t share = CORONA_LOCAL_LOC_TOTAL_BYTES / (n != 0 ? n : 1);
  return share < CORONA_LOCAL_LOC_MIN_BYTES ? CORONA_LOCAL_LOC_MIN_BYTES
         : share > CORONA_LOCAL_LOC_MAX_BYTES ? CORONA_LOCAL_LOC_MAX_BYTES : share;
}

static void lloc_put(cr_tls_t *tls, cr_large_t *h) {
  size_t max_bytes = lloc_max_bytes(tls->pool);
  /* Own mappings go global at once: there any later big request can take
   * one and resize it (a local hit needs the exact size). */
  if (h->region == NULL || h->block_size > max_bytes) {
    node(h)->next = NULL;
    gloc_put(tls->pool, h);
    return;
  }
  if (tls->loc_count == CORONA_LOCAL_LOC_MAX_COUNT || cr_load_relaxed(&tls->loc_bytes) + h->block_size > max_bytes) {
    /* Keep the most recent few (within half the byte bound, h included),
     * the rest go global in one batch. */
    uint32_t keep = 0;
    size_t bytes = h->block_size;
    while (keep < tls->loc_count && keep + 1 < CORONA_LOCAL_LOC_TRIM &&
           bytes + tls->loc[tls->loc_count - 1 - keep].bytes <= max_bytes / 2)
      bytes += tls->loc[tls->loc_count - 1 - keep++].bytes;
    gloc_put(tls->pool, lloc_take_oldest(tls, tls->loc_count - keep));
  }
  tls->loc[tls->loc_count++] = (cr_loc_slot_t){h->block_size, h};
  lloc_count_bytes(tls, h->block_size, true);
  cr_tls_cache_note(tls);
}

cr_large_t *cr_large_cache_take(cr_pool_t *pool, size_t bytes, bool any_own) {
  cr_tls_t *tls = cr_tls_get();
  cr_large_t *h = NULL;
  if (tls != &cr_tls_empty && tls->pool == pool) h = lloc_get(tls, bytes);
  if (h == NULL && bytes <= CORONA_LOC_MAX_OBJECT) h = gloc_get(pool, bytes, any_own);
  return h;
}

void cr_large_cache_put(cr_pool_t *pool, cr_large_t *h) {
  cr_tls_t *tls = cr_tls_get();
  if (tls != &cr_tls_empty && tls->pool == pool) {
    lloc_put(tls, h);
  } else {
    node(h)->next = NULL;
    gloc_put(pool, h);
  }
}

void cr_tls_flush(cr_tls_t *tls) {
  cr_large_flush_local(tls);
  cr_bins_flush_empty(tls);
}

size_t cr_large_cache_evict(cr_pool_t *pool, uint64_t older_than, size_t max_bytes, size_t own_max, bool keep_newest) {
  cr_lock(&pool->loc.lock);
  cr_large_t *evicted = gloc_evict(&pool->loc, older_than, max_bytes, own_max, keep_newest);
  size_t left = pool->loc.bytes;
  cr_unlock(&pool->loc.lock);
  release_chain(evicted);
  return left;
}

uint64_t cr_large_cache_oldest(cr_pool_t *pool) {
  cr_lock(&pool->loc.lock);
  uint64_t t = pool->loc.oldest != NULL ? pool->loc.oldest->cached_at : 0;
  cr_unlock(&pool->loc.lock);
  return t;
}

void cr_large_flush_local(cr_tls_t *tls) {
  if (tls->loc_count != 0) gloc_put(tls->pool, lloc_take_oldest(tls, tls->loc_count));
}

