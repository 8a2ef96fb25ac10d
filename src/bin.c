/* bin.c (layer: thread) — the per-thread bins' blocks: what a thread does
 * when its active block for a class runs dry (mailbox, partial blocks,
 * orphans, empty blocks), where a block goes when objects come back to it;
 * the hand-out of objects when malloc's free list runs dry (the local list
 * swapped in, or a refill) is bin_swap.c's, the hand-off of a thread's
 * blocks at its exit bin_exit.c's. */
#include <errno.h>

#include "internal/thread.h"
#include "internal/os.h"

void cr_bins_init(cr_tls_t *tls) {
  for (unsigned row = 0; row < CR_ROWS; row++) {
    tls->bins.block[row] = CR_BLOCK_NEVER;
    tls->bins.mask[row] = 0;
  }
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    tls->bins.block[CR_ROW(bin)] = &cr_block_empty;
    tls->bins.mask[CR_ROW(bin)] = cr_bin_mask[bin];
    /* No hot objects until the thread allocates in the class (its first
     * refill starts a turn): a thread that only frees there, such as a
     * pipeline's last stage, would never hand them out. */
    tls->hot[bin] = CR_HOT_NO_TURN;
  }
}


/* ---- block lists (owner only) -------------------------------------------- */

static void list_push(cr_blocklist_t *l, cr_block_t *b) {
  b->prev = NULL;
  b->next = l->head;
  if (l->head != NULL) l->head->prev = b;
  l->head = b;
}

static void list_remove(cr_blocklist_t *l, cr_block_t *b) {
  if (b->prev != NULL) b->prev->next = b->next;
  else l->head = b->next;
  if (b->next != NULL) b->next->prev = b->prev;
  b->next = b->prev = NULL;
}

static inline bool block_has_space(const cr_block_t *b) {
  return b->free_list != NULL || (uintptr_t)b->bump >= (uintptr_t)b + CORONA_BLOCK_HEADER;
}

static void block_set_active(cr_tls_t *tls, unsigned bin, cr_block_t *b) {
  b->list = CR_LIST_ACTIVE;
  b->threshold = -1; /* the active block never leaves through a local free */
  tls->bins.block[CR_ROW(bin)] = b;
}

/* Objects of b not yet carved from its bump area. */
static inline uint32_t bump_left(const cr_block_t *b) {
  uintptr_t lo = (uintptr_t)b + CORONA_BLOCK_HEADER;
  return (uintptr_t)b->bump < lo ? 0 : (uint32_t)(((uintptr_t)b->bump - lo) / b->object_size + 1);
}

/* See thread.h: the whole free_list, else a page's worth carved from the
 * bump area (highest address first, as a bump pointer would hand them out). */
uint32_t cr_bin_fill(void **list, cr_block_t *b) {
  if (b->free_list != NULL) {
    *list = b->free_list;
    b->free_list = NULL;
    /* The bin lists were empty, so every object is out except the uncarved. */
    int32_t out = b->capacity - (int32_t)bump_left(b);
    uint32_t n = (uint32_t)(out - b->allocated);
    b->allocated = out;
    return n;
  }
  uint32_t size = b->object_size;
  uint32_t n = CORONA_CARVE_BYTES / size;
  uint32_t left = bump_left(b);
  if (n == 0) n = 1;
  if (n > left) n = left;
  char *p = b->bump;
  *list = p;
  for (uint32_t i = 1; i < n; i++, p -= size) *(void **)p = p - size;
  *(void **)p = NULL;
  b->bump = p - size;
  b->allocated += (int32_t)n;
  return n;
}

/* The fill level at which a local free into b must act: a full block
 * becomes reusable at 3/4, a partial one goes at empty, the active one
 * never leaves through a local free. */
static inline int32_t real_threshold(const cr_block_t *b) {
  if (b->list == CR_LIST_FULL) return b->capacity * CORONA_REUSE_QUARTERS / 4;
  return b->list == CR_LIST_PARTIAL ? 0 : -1;
}

/* While statistics count calls, a block off the active list has threshold
 * CR_THRESHOLD_COUNT, so every local free into it takes the slow path and
 * is counted there: the fast path itself never counts. */
#define CR_THRESHOLD_COUNT INT32_MAX
static inline void set_threshold(cr_tls_t *tls, cr_block_t *b) {
  b->threshold = cr_tls_counting(tls) ? CR_THRESHOLD_COUNT : real_threshold(b);
}

static void block_set_full(cr_tls_t *tls, unsigned bin, cr_block_t *b) {
  b->list = CR_LIST_FULL;
  set_threshold(tls, b);
  list_push(&tls->full[bin], b);
}

/* An empty block goes to the thread's pool; a push into a full pool first
 * hands all but the most recent LOW_MARK - 1 blocks to the global pool. */
static void tls_pool_push(cr_tls_t *tls, cr_block_t *b) {
  b->list = CR_LIST_NONE;
  if (cr_bin_is_medium(b->bin)) { /* the empty cache holds slabs */
    cr_pool_medium_return(tls->pool, b);
    return;
  }
  if (tls->empty_count >= CORONA_EMPTY_CACHE_HIGH) {
    cr_block_t *keep = tls->empty;
    for (int i = 1; i < CORONA_EMPTY_CACHE_LOW - 1; i++) keep = keep->next;
    cr_block_t *cold = keep->next;
    keep->next = NULL;
    cr_pool_put_empty(tls->pool, cold, tls->empty_count - (CORONA_EMPTY_CACHE_LOW - 1));
    tls->empty_count = CORONA_EMPTY_CACHE_LOW - 1;
  }
  b->next = tls->empty;
  tls->empty = b;
  tls->empty_count++;
  cr_tls_cache_note(tls);
}

/* An empty block may rest on its bin's partial list, free list intact, for
 * the next refill of the same class: no carving, no page-map write, no trip
 * through the pools.  A burst of objects freed all at once (a request's
 * objects) otherwise turned every one of its blocks over.  The thread's
 * resting and pooled empty blocks together stay within the pool's high
 * mark. */
static inline uint32_t slabs_of(unsigned bin) { return (uint32_t)(cr_bin_span(bin) >> CORONA_SLAB_SHIFT); }

static bool keep_empty(cr_tls_t *tls, cr_block_t *b) {
  /* Counted in slabs: a medium block is worth four or eight of them, and
   * the mark bounds memory (a thread resting 128 empty 128 KB blocks would
   * keep 16 MB, not 2). */
  if (tls->kept_empty + tls->empty_count + slabs_of(b->bin) > CORONA_EMPTY_CACHE_HIGH) return false;
  tls->kept_empty += slabs_of(b->bin);
  b->threshold = -1; /* nothing left to free into it */
  cr_tls_cache_note(tls);
  return true;
}

/* Objects came back to b (local frees or privatisation): move it to the list
 * its fill level asks for. */
static void block_rebalance(cr_tls_t *tls, cr_block_t *b) {
  unsigned bin = b->bin;
  if (b->list == CR_LIST_PARTIAL) {
    if (b->allocated == 0 && !keep_empty(tls, b)) {
      list_remove(&tls->partial[bin], b);
      tls_pool_push(tls, b);
    }
  } else if (b->list == CR_LIST_FULL) {
    if (b->allocated == 0) {
      list_remove(&tls->full[bin], b);
      if (keep_empty(tls, b)) {
        b->list = CR_LIST_PARTIAL;
        list_push(&tls->partial[bin], b);
      } else {
        tls_pool_push(tls, b);
      }
    } else if (b->allocated <= real_threshold(b)) {
      list_remove(&tls->full[bin], b);
      b->list = CR_LIST_PARTIAL;
      set_threshold(tls, b); /* next stop: empty */
      list_push(&tls->partial[bin], b);
    }
  }
}

void cr_block_threshold_reached(cr_tls_t *tls, cr_block_t *b) {
#if CORONA_STATS
  if (b->threshold == CR_THRESHOLD_COUNT) {
    if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_free[b->bin], 1);
    else set_threshold(tls, b); /* counting was switched off */
    if (b->allocated > real_threshold(b)) return;
  }
#endif
  bool emptied = b->allocated == 0;
  block_rebalance(tls, b);
  /* b went to a cache (which told the purger), at the end of a free: the
   * caches go back here if the purger marked them. */
  if (emptied) cr_tls_decay_check(tls);
}

void cr_bins_set_thresholds(cr_tls_t *tls) {
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    for (cr_block_t *b = tls->partial[bin].head; b != NULL; b = b->next) set_threshold(tls, b);
    for (cr_block_t *b = tls->full[bin].head; b != NULL; b = b->next) set_threshold(tls, b);
  }
}

/* ---- objects going home --------------------------------------------------
 * The one way objects leave a thread's hands for their block: onto the
 * block's free list when this thread owns the block (which then moves to the
 * list its fill level asks for), else onto the block's public list, whose
 * owner learns of it through its mailbox (cr_block_free_chain).  free's own
 * path is the same two steps inline for one object (cr_block_put,
 * cr_block_free_remote).  A list goes home a run at a time: its objects of
 * one block in a row (a refill's objects come from one block in a row) are
 * already chained by their links, so the run costs one splice, one
 * rebalance and, for another thread's block, one atomic push; each object
 * only gets its free mark.  Thread exit hands home every object its bins'
 * lists hold (suite-threads: per object, a rebalance and a push each were
 * a sixth of all instructions). */
static void run_home(cr_tls_t *tls, cr_block_t *b, void *head, void *tail, int32_t n) {
  if (cr_load_relaxed(&b->owner) != &tls->inbox) { /* another thread's, or an orphan */
    cr_block_free_chain(b, head, tail);
    return;
  }
  cr_block_put_chain(b, head, tail, n);
  block_rebalance(tls, b);
}

/* Every object of a bin list goes home; returns how many. */
static int64_t list_home(cr_tls_t *tls, void *list, unsigned bin) {
  int64_t n = 0;
  for (void *head = list; head != NULL;) {
    cr_block_t *b = cr_block_of(head, CR_ROW(bin));
    void *tail = head, *next;
    int32_t k = 1;
    cr_free_mark(tail, b);
    while ((next = *(void **)tail) != NULL && cr_block_of(next, CR_ROW(bin)) == b) {
      tail = next;
      cr_free_mark(tail, b);
      k++;
    }
    run_home(tls, b, head, tail, k); /* rewrites tail's link: next was read first */
    n += k;
    head = next;
  }
  return n;
}

void cr_bins_remote_start(cr_tls_t *tls, cr_block_t *b, void *p) {
  unsigned bin = b->bin;
  cr_remote_t *r = &tls->remote[bin];
  if (r->block != NULL) cr_block_free_chain(r->block, r->head, r->tail);
  tls->remote_held |= (uint64_t)1 << bin;
  r->block = b;
  r->head = r->tail = p;
  r->count = 1;
}

void cr_bins_remote_flush(cr_tls_t *tls) {
  for (uint64_t held = tls->remote_held; held != 0; held &= held - 1) {
    cr_remote_t *r = &tls->remote[__builtin_ctzll(held)];
    cr_block_free_chain(r->block, r->head, r->tail);
    r->block = NULL;
  }
  tls->remote_held = 0;
}

/* Both lists of every bin go home: objects of the active blocks and hot
 * objects of other blocks alike (see CORONA_HOT_OBJECTS), also in classes
 * where the thread has no active block.  Thread exit, corona_collect and a
 * user pool's thread teardown all come here, so a thread never takes
 * objects with it.  While counting, what the free lists held was counted as
 * handed out, what the local lists held was not yet counted as freed. */
void cr_bins_home(cr_tls_t *tls) {
  cr_bins_remote_flush(tls); /* before the exit closes this thread's own public lists */
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    void *unused = tls->bins.free[CR_ROW(bin)], *freed = tls->bins.local[CR_ROW(bin)];
    tls->bins.free[CR_ROW(bin)] = tls->bins.local[CR_ROW(bin)] = NULL;
    tls->hot[bin] = CR_HOT_NO_TURN; /* as a new TLS: no turn until the next refill */
    int64_t n_unused = list_home(tls, unused, bin), n_freed = list_home(tls, freed, bin);
    CR_STAT(if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_alloc[bin], -n_unused));
    CR_STAT(if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_free[bin], n_freed));
    (void)n_unused;
    (void)n_freed;
  }
}

/* Takes the whole mailbox of bin (cr_list_take: the notifiers' links are
 * seen); the blocks are linked by
 * mail_next.  A caller reads a block's link before privatising it: once
 * its public list is emptied, a new remote free may push it on the mailbox
 * again and rewrite mail_next. */
static cr_block_t *mailbox_take(cr_tls_t *tls, unsigned bin) {
  return cr_list_take(&tls->inbox.mailbox[bin], NULL);
}

/* Takes every block the mailbox of bin holds and reclaims its remote frees. */
static void drain_bin(cr_tls_t *tls, unsigned bin) {
  for (cr_block_t *b = mailbox_take(tls, bin), *next; b != NULL; b = next) {
    next = (cr_block_t *)cr_load_relaxed(&b->mail_next);
    cr_block_privatize(b, NULL);
    block_rebalance(tls, b);
  }
}

void cr_bins_flush_empty(cr_tls_t *tls) {
  cr_bins_home(tls);
  cr_bins_drain_all(tls);
  cr_bins_hand_back_empty(tls);
}

void cr_bins_hand_back_empty(cr_tls_t *tls) {
  /* A medium active block none of whose objects is out (nor on the bin
   * lists) too: it holds a large region, which goes back to the OS only
   * once every block in it has.  An active slab stays: a slab region holds
   * many threads' blocks anyway, and with it a thread can still allocate
   * small objects when the OS refuses memory after a collect. */
  for (unsigned bin = CORONA_MEDIUM_FIRST_BIN; bin < CORONA_NUM_BINS; bin++) {
    cr_block_t *act = tls->bins.block[CR_ROW(bin)];
    if (act == &cr_block_empty || act->allocated != 0) continue;
    tls->bins.block[CR_ROW(bin)] = &cr_block_empty;
    act->list = CR_LIST_NONE;
    cr_pool_medium_return(tls->pool, act);
  }
  /* Resting empty blocks too: they are this thread's cache as much. */
  for (unsigned bin = 0; bin < CORONA_NUM_BINS && tls->kept_empty != 0; bin++) {
    for (cr_block_t *b = tls->partial[bin].head, *next; b != NULL; b = next) {
      next = b->next;
      if (b->allocated != 0) continue;
      list_remove(&tls->partial[bin], b);
      tls->kept_empty -= slabs_of(bin);
      b->list = CR_LIST_NONE;
      b->next = tls->empty;
      tls->empty = b;
      tls->empty_count++;
    }
  }
  if (tls->empty != NULL) cr_pool_put_empty(tls->pool, tls->empty, tls->empty_count);
  tls->empty = NULL;
  tls->empty_count = 0;
}

void cr_bins_drain_all(cr_tls_t *tls) {
  /* The relaxed look keeps the common case (no mail) to one load; the
   * acquire exchange pairs with the notifiers' release stores. */
  if (cr_load_relaxed(&tls->inbox.mail_pending) == 0 || cr_exchange_acquire(&tls->inbox.mail_pending, 0) == 0) return;
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++)
    if (cr_load_relaxed(&tls->inbox.mailbox[bin]) != NULL) drain_bin(tls, bin);
}

static cr_block_t *take_partial(cr_tls_t *tls, unsigned bin) {
  cr_block_t *b = tls->partial[bin].head;
  if (b != NULL) {
    if (b->allocated == 0) tls->kept_empty -= slabs_of(bin); /* a resting empty block (keep_empty) */
    list_remove(&tls->partial[bin], b);
    block_set_active(tls, bin, b);
  }
  return b;
}

/* Adopts orphans of bin until one has space; the others join the full list. */
static cr_block_t *take_orphan(cr_tls_t *tls, unsigned bin) {
  cr_block_t *b;
  while ((b = cr_pool_adopt(tls->pool, bin)) != NULL) {
    cr_store_relaxed(&b->owner, &tls->inbox); /* published by the release in privatize */
    cr_block_privatize(b, NULL);
    if (b->allocated == 0) cr_block_init(b, &tls->inbox, tls->pool, bin); /* all freed: start fresh */
    if (block_has_space(b)) {
      block_set_active(tls, bin, b);
      return b;
    }
    block_set_full(tls, bin, b);
  }
  return NULL;
}

/* A new block for bin from the backend (a slab, or a medium block),
 * counted in the heap's small bytes. */
static cr_block_t *block_new(cr_pool_t *pool, unsigned bin) {
  bool medium = cr_bin_is_medium(bin);
  cr_block_t *b = medium ? cr_backend_span_alloc(&pool->backend, cr_bin_span(bin))
                         : cr_backend_slab_alloc(&pool->backend);
  CR_STAT(if (b != NULL) cr_stats_small_in_use(pool, (int64_t)cr_bin_span(bin)));
  cr_policy_hooks.slab_grew(pool);
  return b;
}

cr_block_t *cr_bin_refill(cr_tls_t *tls, unsigned bin) {
  cr_block_t *act = tls->bins.block[CR_ROW(bin)];
  if (cr_load_relaxed(&tls->inbox.mailbox[bin]) != NULL) drain_bin(tls, bin);
  if (block_has_space(act)) return act;
  if (act != &cr_block_empty) {
    block_set_full(tls, bin, act);
    tls->bins.block[CR_ROW(bin)] = &cr_block_empty; /* stays valid if we fail below */
  }
  cr_block_t *b = take_partial(tls, bin);
  if (b == NULL) b = take_orphan(tls, bin);
  if (b != NULL) return b;

  /* A new block is needed: first let remote frees empty what they can,
   * ours to other threads (which may need their memory as much) included. */
  cr_bins_remote_flush(tls);
  cr_bins_drain_all(tls);
  cr_tls_decay_check(tls); /* only the caches change (an empty active medium block of another class
                             included: its lists hold none of its objects) */
  cr_policy_hooks.tick(tls->pool, cr_os_now_ms());
  if ((b = take_partial(tls, bin)) != NULL) return b;
  if (cr_bin_is_medium(bin)) {
    b = block_new(tls->pool, bin); /* the empty caches hold slabs only */
  } else if ((b = tls->empty) != NULL) {
    tls->empty = b->next;
    tls->empty_count--;
  } else if ((b = cr_pool_take_empty(tls->pool)) == NULL) {
    b = block_new(tls->pool, bin);
  }
  if (b == NULL) {
    /* The OS refuses: return what the caches hold to it and retry once. */
    cr_policy_hooks.reclaim(tls->pool, tls);
    if ((b = take_partial(tls, bin)) != NULL) return b;
    if ((b = block_new(tls->pool, bin)) != NULL) goto fresh;
    /* Settle for a block that is not empty enough to be reused normally
     * but has a free object or two. */
    for (b = tls->full[bin].head; b != NULL; b = b->next) {
      if (block_has_space(b)) {
        list_remove(&tls->full[bin], b);
        block_set_active(tls, bin, b);
        return b;
      }
    }
    return NULL;
  }
fresh:
  cr_block_init(b, &tls->inbox, tls->pool, bin);
  block_set_active(tls, bin, b);
  return b;
}
