/* pool.c (layer: thread) — a pool is a heap: the default heap is
 * cr_default_pool, and each user pool is another.  It owns what its threads
 * share: the list of their TLS structs, its list of empty blocks, the
 * per-bin orphan lists, and its backend.  ("Pool" means nothing else in
 * corona: a thread's own empty blocks are its empty cache.) */
#include <stddef.h>
#include <string.h>

#include "internal/thread.h"
#include "internal/os.h"

/* All-zero is a valid empty pool: unlocked locks, empty lists. */
cr_pool_t cr_default_pool;

/* What threads of pool count (CR_COUNT_*): calls for the statistics, and
 * what they are handed for the heap profiler (the default heap's only). */
static uint8_t counting_wanted(cr_pool_t *pool) {
  uint8_t samples = pool == &cr_default_pool && cr_load_relaxed(&cr_sample_hook) != NULL ? CR_COUNT_SAMPLES : 0;
#if CORONA_STATS
  return (uint8_t)(samples | (cr_load_relaxed(&cr_stats_on) ? CR_COUNT_CALLS : 0));
#else
  return samples;
#endif
}

/* Gives t the counting want and the hot-object limit that goes with it
 * (tls->hot_limit).  Under pool->lock. */
static void tls_set_counting(cr_tls_t *t, uint8_t want) {
  cr_store_relaxed(&t->counting, want);
  cr_store_relaxed(&t->hot_limit, (want & CR_COUNT_CALLS) != 0 ? 0u : (uint32_t)CORONA_HOT_OBJECTS);
}

/* Switching a thread's counting of calls on, its lists were never counted: its
 * counters start so that they cancel (its figures move by exactly its calls
 * from then on); switching off, the correction goes into the counters,
 * which then hold the exact totals.  While counting, a thread's figure for
 * a class is its counters minus its free list plus its local list. */
void cr_pool_set_counting(cr_tls_t *self) {
  cr_pool_t *pool = &cr_default_pool;
  uint8_t want = counting_wanted(pool);
#if CORONA_STATS
  bool on = (want & CR_COUNT_CALLS) != 0;
  if (self != NULL && self->pool == pool && cr_tls_counting(self) != on) {
    int64_t sign = on ? 1 : -1;
    for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
      cr_stat_own(&self->stats.bin_alloc[bin], sign * cr_list_length(self->bins.free[CR_ROW(bin)]));
      cr_stat_own(&self->stats.bin_free[bin], -sign * cr_list_length(self->bins.local[CR_ROW(bin)]));
    }
  }
#endif
  cr_lock(&pool->lock);
  for (cr_tls_t *t = pool->threads; t != NULL; t = t->pool_next) tls_set_counting(t, want);
  cr_unlock(&pool->lock);
  if (self != NULL && self->pool == pool) cr_bins_set_thresholds(self);
}

cr_tls_t *cr_pool_tls_alloc(cr_pool_t *pool) {
  cr_lock(&pool->lock);
  cr_tls_t *tls = pool->free_tls;
  if (tls != NULL) pool->free_tls = tls->pool_next;
  cr_unlock(&pool->lock);
  /* A recycled TLS has empty mailboxes (its exit collected every notice),
   * and keeps its stack memo (thread.h). */
  size_t clear = offsetof(cr_tls_t, stack_memo);
  if (tls == NULL) {
    if ((tls = cr_meta_alloc(sizeof *tls)) == NULL) return NULL;
    clear = sizeof *tls;
  }
  memset(tls, 0, clear); /* the caller gives the bins their rows (cr_bins_init) */
  tls->pool = pool;
  cr_lock(&pool->lock);
  /* Under the lock, like cr_pool_set_counting's update of every thread's copy. */
  tls_set_counting(tls, counting_wanted(pool));
  tls->pool_next = pool->threads;
  if (pool->threads != NULL) pool->threads->pool_prev = tls;
  pool->threads = tls;
  cr_store_relaxed(&pool->thread_count, cr_load_relaxed(&pool->thread_count) + 1);
  cr_unlock(&pool->lock);
  return tls;
}

static void tls_unlink_locked(cr_pool_t *pool, cr_tls_t *tls) {
  if (tls->pool_prev != NULL) tls->pool_prev->pool_next = tls->pool_next;
  else pool->threads = tls->pool_next;
  if (tls->pool_next != NULL) tls->pool_next->pool_prev = tls->pool_prev;
  tls->pool_prev = tls->pool_next = NULL;
  cr_store_relaxed(&pool->thread_count, cr_load_relaxed(&pool->thread_count) - 1);
}

void cr_pool_tls_free(cr_pool_t *pool, cr_tls_t *tls) {
  cr_lock(&pool->lock);
  CR_STAT(cr_stats_retire_locked(pool, tls));
  tls_unlink_locked(pool, tls);
  tls->pool_next = pool->free_tls;
  pool->free_tls = tls;
  cr_unlock(&pool->lock);
}

void cr_pool_tls_retire(cr_pool_t *pool, cr_tls_t *tls) {
  cr_lock(&pool->lock);
  CR_STAT(cr_stats_retire_locked(pool, tls));
  tls_unlink_locked(pool, tls);
  cr_unlock(&pool->lock);
}

void cr_pool_set_ranks(cr_pool_t *pool, bool user) {
  int shift = user ? 0 : CR_RANK_DECAY - CR_RANK_USER_DECAY;
  cr_lock_rank(&pool->decay_lock, (cr_rank_t)(CR_RANK_USER_DECAY + shift));
  cr_lock_rank(&pool->lock, (cr_rank_t)(CR_RANK_USER_POOL + shift));
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++)
    cr_lock_rank(&pool->orphans[bin].lock, (cr_rank_t)(CR_RANK_USER_ORPHANS + shift));
  cr_lock_rank(&pool->loc.lock, (cr_rank_t)(CR_RANK_USER_LOC + shift));
  cr_lock_rank(&pool->backend.lock, (cr_rank_t)(CR_RANK_USER_BACKEND + shift));
}

/* ---- fork ----------------------------------------------------------------
 * Every lock of one pool, in rank order (cr_rank_t in sync.h): the fork
 * handlers (process.c) take all of them before fork(), so no lock is held
 * mid-update by a thread that does not exist in the child. */
void cr_pool_lock_all(cr_pool_t *pool, bool take) {
  if (take) {
    cr_lock(&pool->decay_lock);
    cr_lock(&pool->lock);
    for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) cr_lock(&pool->orphans[bin].lock);
    cr_lock(&pool->loc.lock);
    cr_lock(&pool->backend.lock);
  } else {
    cr_unlock(&pool->backend.lock);
    cr_unlock(&pool->loc.lock);
    for (unsigned bin = CORONA_NUM_BINS; bin-- > 0;) cr_unlock(&pool->orphans[bin].lock);
    cr_unlock(&pool->lock);
    cr_unlock(&pool->decay_lock);
  }
}

/* An empty block's slab goes back to the backend, which keeps its pages
 * resident while it holds at most dirty_max free bytes. */
static void slab_return(cr_pool_t *pool, cr_block_t *b, size_t dirty_max) {
  CR_STAT(cr_stats_small_in_use(pool, -(int64_t)CORONA_SLAB_SIZE));
  cr_backend_slab_free(&pool->backend, b, dirty_max);
}

void cr_pool_medium_return(cr_pool_t *pool, cr_block_t *b) {
  size_t span = cr_bin_span(b->bin);
  CR_STAT(cr_stats_small_in_use(pool, -(int64_t)span));
  cr_store_relaxed(&b->owner, NULL);
  cr_backend_span_free(&pool->backend, b, span, cr_policy_hooks.dirty_budget(pool));
}

/* ---- the pool's list of empty blocks ---------------------------------------
 * Newest first, so ordered by idle_since: put_empty adds at the head, the
 * bound and the decay take the oldest from the tail.  Every block but the
 * head has prev pointing at its newer neighbour (the head's prev is stale:
 * a pop leaves it, so that taking a block touches no other header), so the
 * oldest k < empty_count leave in k steps.  A walk of the whole list here
 * (1024 headers, each a cache miss, under the pool's lock) made a program
 * freeing its heap at 2 threads wait on the lock. */

cr_block_t *cr_pool_take_empty(cr_pool_t *pool) {
  cr_lock(&pool->lock);
  cr_block_t *b = pool->empty;
  if (b != NULL) {
    pool->empty = b->next;
    if (b->next == NULL) pool->empty_oldest = NULL;
    pool->empty_count--;
  }
  cr_unlock(&pool->lock);
  return b;
}

/* Unlinks the n oldest blocks (0 < n <= empty_count; lock held), newest of
 * them first, linked by next. */
static cr_block_t *take_oldest_locked(cr_pool_t *pool, size_t n) {
  cr_block_t *first = pool->empty_oldest;
  for (size_t i = 1; i < n; i++) first = first->prev;
  if (n == pool->empty_count) {
    pool->empty = pool->empty_oldest = NULL;
  } else {
    pool->empty_oldest = first->prev;
    first->prev->next = NULL;
  }
  pool->empty_count -= n;
  return first;
}

void cr_pool_put_empty(cr_pool_t *pool, cr_block_t *list, size_t count) {
  for (cr_block_t **link = &list, *b; (b = *link) != NULL;) { /* the list holds slabs only */
    if (!cr_bin_is_medium(b->bin)) {
      link = &b->next;
      continue;
    }
    *link = b->next;
    count--;
    cr_pool_medium_return(pool, b);
  }
  if (list == NULL) {
    cr_policy_hooks.cached(pool); /* the backend holds their pages now */
    return;
  }
  uint64_t now = cr_os_now_ms();
  cr_block_t *tail = list;
  for (cr_block_t *b = list, *newer = NULL; b != NULL; newer = tail = b, b = b->next) {
    cr_store_relaxed(&b->owner, NULL);
    b->idle_since = now;
    b->prev = newer;
    /* Frees into an empty block are double frees: make them fail the check. */
    cr_pagemap_set((uintptr_t)b, CORONA_SLAB_SIZE, CR_KIND_SLAB_FREE);
  }
  cr_block_t *excess = NULL;
  cr_lock(&pool->lock);
  tail->next = pool->empty;
  if (pool->empty != NULL) pool->empty->prev = tail;
  else pool->empty_oldest = tail;
  pool->empty = list;
  pool->empty_count += count;
  /* Past the bound, the oldest go back to the backend (and pages to the OS). */
  if (pool->empty_count > CORONA_POOL_EMPTY_MAX)
    excess = take_oldest_locked(pool, pool->empty_count - CORONA_POOL_EMPTY_MAX);
  cr_unlock(&pool->lock);
  for (cr_block_t *b = excess, *next; b != NULL; b = next) {
    next = b->next;
    slab_return(pool, b, cr_policy_hooks.dirty_budget(pool));
  }
  cr_policy_hooks.cached(pool);
}

void cr_pool_decay_empty(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool force) {
  cr_block_t *stale = NULL;
  size_t n = 0;
  cr_lock(&pool->lock);
  /* From the oldest, while idle long enough.  idle_since may be later than
   * now (stamped by another thread after we read the clock): compare by
   * addition, not by a difference that wraps. */
  for (cr_block_t *b = pool->empty_oldest; n < pool->empty_count && (force || b->idle_since + decay_ms <= now);
       b = b->prev)
    n++;
  if (n != 0) stale = take_oldest_locked(pool, n);
  cr_unlock(&pool->lock);
  /* Idle for the decay time already: their pages go back now (a budget of
   * 0), not after a second decay time in the backend.  They used to, by
   * chance, while the backend purged at each free at the edge of its budget;
   * since it purges down to well below it (CORONA_DIRTY_SLACK_SHIFT), they
   * would stay.  A forced release leaves that to the backend's own. */
  size_t dirty_max = force ? cr_policy_hooks.dirty_budget(pool) : 0;
  for (cr_block_t *b = stale, *next; b != NULL; b = next) {
    next = b->next;
    slab_return(pool, b, dirty_max);
  }
}

size_t cr_pool_threads_cached(cr_pool_t *pool) {
  size_t bytes = 0;
  cr_lock(&pool->lock);
  for (cr_tls_t *t = pool->threads; t != NULL; t = t->pool_next) bytes += cr_load_relaxed(&t->loc_bytes);
  cr_unlock(&pool->lock);
  return bytes;
}

uint64_t cr_pool_idle_since(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool mark) {
  uint64_t oldest = 0;
  cr_lock(&pool->lock);
  if (pool->empty_oldest != NULL) oldest = pool->empty_oldest->idle_since;
  for (cr_tls_t *t = pool->threads; t != NULL; t = t->pool_next) {
    if (cr_load_relaxed(&t->cache_state) != CR_CACHE_HOLDING) continue;
    if (mark && t->cache_since + decay_ms <= now) cr_store_relaxed(&t->cache_state, CR_CACHE_MARKED);
    else if (oldest == 0 || t->cache_since < oldest) oldest = t->cache_since;
  }
  cr_unlock(&pool->lock);
  return oldest;
}

/* ---- orphans ------------------------------------------------------------- */

void cr_pool_orphan(cr_pool_t *pool, cr_block_t *b) {
  cr_orphans_t *o = &pool->orphans[b->bin];
  cr_lock(&o->lock);
  b->next = cr_load_relaxed(&o->head);
  cr_store_relaxed(&o->head, b);
  cr_unlock(&o->lock); /* release: the orphan's owner-only fields go to the adopter */
}

void cr_pool_reclaim_orphans(cr_pool_t *pool) {
  cr_block_t *empties = NULL;
  size_t n_empty = 0;
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    cr_orphans_t *o = &pool->orphans[bin];
    if (cr_load_relaxed(&o->head) == NULL) continue;
    cr_lock(&o->lock);
    cr_block_t *list = cr_load_relaxed(&o->head);
    cr_store_relaxed(&o->head, NULL);
    cr_unlock(&o->lock);
    for (cr_block_t *b = list, *next; b != NULL; b = next) {
      next = b->next;
      /* Nobody owns it and we hold it alone: take the frees that came in,
       * keeping the list closed to notices (CR_UNUSABLE). */
      cr_block_privatize(b, CR_UNUSABLE);
      if (b->allocated == 0) {
        b->next = empties;
        empties = b;
        n_empty++;
      } else {
        cr_pool_orphan(pool, b);
      }
    }
  }
  if (empties != NULL) cr_pool_put_empty(pool, empties, n_empty);
}

cr_block_t *cr_pool_adopt(cr_pool_t *pool, unsigned bin) {
  cr_orphans_t *o = &pool->orphans[bin];
  if (cr_load_relaxed(&o->head) == NULL) return NULL; /* no lock when there is nothing */
  cr_lock(&o->lock);
  cr_block_t *b = cr_load_relaxed(&o->head);
  if (b != NULL) cr_store_relaxed(&o->head, b->next);
  cr_unlock(&o->lock);
  if (b != NULL) b->next = NULL;
  return b;
}
