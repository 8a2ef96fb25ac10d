/* bin.c (layer: thread) — the per-thread bins: what a thread does when its
 * active block for a class runs dry (mailbox, partial blocks, orphans, empty
 * blocks), where a block goes when objects come back to it; the hand-off
 * of a thread's blocks at its exit is bin_exit.c's. */
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

/* Checks objects of the active block b out into the (empty) bin lists: its
 * whole free_list, else a page's worth carved from the bump area (highest
 * address first, as a bump pointer would hand them out).  b has space.
 * Returns the number of objects checked out. */
static uint32_t bin_fill(void **list, cr_block_t *b) {
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
 * The one way an object leaves a thread's hands for its block: onto the
 * block's free list when this thread owns the block (which then moves to the
 * list its fill level asks for), else onto the block's public list, whose
 * owner learns of it through its mailbox (cr_block_free_remote).  free's own path
 * is the same two steps inline (cr_block_put, cr_block_free_remote). */
static void object_home(cr_tls_t *tls, void *p, unsigned bin) {
  cr_block_t *b = cr_block_of(p, CR_ROW(bin));
  if (cr_load_relaxed(&b->owner) != &tls->inbox) { /* another thread's, or an orphan */
    cr_block_free_remote(b, p);
    return;
  }
  cr_block_put(b, p);
  block_rebalance(tls, b);
}

/* Every object of a bin list goes home; returns how many. */
static int64_t list_home(cr_tls_t *tls, void *list, unsigned bin) {
  int64_t n = 0;
  for (void *p = list, *next; p != NULL; p = next, n++) {
    next = *(void **)p;
    object_home(tls, p, bin);
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
    act->next = tls->empty;
    tls->empty = act;
    tls->empty_count++;
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

/* The bin lists are empty: find a block with space, the active one first
 * (remote frees may have come back to it). */
static cr_block_t *bin_refill(cr_tls_t *tls, unsigned bin) {
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

#if CORONA_STATS
/* Statistics: the local list becomes the free list.  Its objects were
 * freed by this thread (counted now) and will be handed out (counted as
 * allocations now; the owner subtracts what is still on the list). */
static CR_NOINLINE void count_swap(cr_tls_t *tls, unsigned bin, int64_t n) {
  cr_stat_own(&tls->stats.bin_free[bin], n);
  cr_stat_own(&tls->stats.bin_alloc[bin], n);
}
#endif

/* The local list is about to be handed out.  In a class that is not a power
 * of two, free's active-block test lets through pointers at the class's
 * alignment that are not object starts (free(p + 16) of a 48-byte object):
 * every object of the list is checked here, once, before any is handed
 * out, so such a free ends in a report instead of overlapping memory.  A
 * list longer than the block holds is a cycle: an object freed twice whose
 * mark was overwritten meanwhile (a use after free).  Returns the list's
 * length: a watched thread's swap needs it and need not walk again (in
 * line, so that the unwatched swap's loop does not keep the count). */
CR_INLINE uint32_t check_local(cr_block_t *block, unsigned bin, void *list) {
  /* Every p here passed free's active-block test, so 0 < end - p <= the
   * span and one multiply and compare decide (see cr_bin_magic). */
  uintptr_t end = (uintptr_t)block + cr_bin_span(bin);
  uint64_t magic = cr_bin_magic[bin], limit = cr_bin_limit[bin];
  uint32_t left = block->capacity;
  for (void *p = list; p != NULL; p = *(void **)p) {
    if (cr_unlikely((end - (uintptr_t)p) * magic > limit)) cr_fatal("free(): invalid pointer", p);
    if (cr_unlikely(left-- == 0)) cr_fatal("free(): double free detected (list cycle), pointer", p);
  }
  return block->capacity - left;
}

_Atomic(cr_sample_hook_t) cr_sample_hook;

/* A list's length not counted (sample_take's have). */
#define SAMPLE_UNCOUNTED UINT32_MAX

/* The first object of the bin's (non-empty) free list, handed out. */
CR_INLINE void *pop_free(cr_tls_t *tls, unsigned row) {
  void *p = tls->bins.free[row];
  tls->bins.free[row] = *(void **)p;
  cr_free_mark_clear(p);
  return p;
}

/* The heap profiler's cut (see cr_sample_hook): the bin's free list of
 * `have` objects, just filled by a slow path of a sampling thread, keeps
 * what the thread may allocate before its next sample point; the rest
 * (objects of the active block) go on the local list, marked free as a
 * free would have left them, and leave the call counts as if they had never
 * been handed out.  hot: the hot objects put on the free list (and all
 * allocated) since the last hand-out.  Returns the sampled object serving
 * this allocation of size bytes, else the free list's first.  Reached by
 * tail calls only: a sample's stack starts two frames above the caller's
 * (the unwinder's cost is per frame). */
static CR_NOINLINE void *sample_cut(cr_tls_t *tls, unsigned bin, size_t size, uint32_t hot, uint32_t have) {
  cr_sample_hook_t hook = cr_load_relaxed(&cr_sample_hook);
  unsigned row = CR_ROW(bin);
  if (hook == NULL || tls->pool != &cr_default_pool) return pop_free(tls, row);
  bool beyond_drops = have == SAMPLE_UNCOUNTED; /* see sample_take */
  if (beyond_drops) have = (uint32_t)cr_list_length(tls->bins.free[row]);
  uint32_t allow = have;
  void *sampled = hook(tls, size, cr_bin_size[bin], hot, &allow, beyond_drops);
  if (sampled == NULL && allow >= have) return pop_free(tls, row); /* the whole list: the common case */
  void **link = &tls->bins.free[row];
  for (uint32_t i = 0; *link != NULL && i < allow && sampled == NULL; i++) link = (void **)*link;
  void *rest = *link;
  if (rest != NULL) {
    *link = NULL;
    int64_t n = 1;
    void *last = rest;
    for (; cr_free_mark(last, cr_block_of(last, row)), *(void **)last != NULL; last = *(void **)last) n++;
    *(void **)last = tls->bins.local[row];
    tls->bins.local[row] = rest;
    CR_STAT(if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_alloc[bin], -n));
    CR_STAT(if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_free[bin], -n)); /* counted again later */
  }
  return sampled != NULL ? sampled : pop_free(tls, row); /* allow >= 1: the list kept one */
}

/* The hand-out of a sampling thread's bin whose free list was just filled
 * with `have` objects: sample_cut's common case in line (the list's bytes,
 * and the hot objects', fit before the next sample point, and the bin has
 * none pending), else sample_cut, by a tail call.  Returns what the
 * allocation gets.
 *
 * A list nobody has counted (have == SAMPLE_UNCOUNTED: a swap while only
 * sampling; free never counts a local list) is not walked for its length:
 * its bytes are taken as bound objects' (at least its length), the part past
 * its real end being bytes of a stream that nobody allocates.  Sample
 * points fall on that stream as a Poisson process, and those that fall on
 * the real bytes are still one per PROFILE_RATE bytes on average, wherever
 * they are: only when a point falls within the bound is the list walked
 * (a few per cent of swaps at the default rate), and a point past the real
 * end is dropped (sample_cut tells the hook, which draws afresh). */
CR_INLINE void *sample_take(cr_tls_t *tls, unsigned bin, size_t size, uint32_t hot, uint32_t have, uint32_t bound) {
  if (hot == CR_HOT_NO_TURN) hot = 0; /* the class's first list: no frees were kept hot */
  uint64_t need = (uint64_t)(have != SAMPLE_UNCOUNTED ? have + hot : bound + hot) * cr_bin_size[bin];
  if (cr_likely(tls->sample_left >= need && !(tls->sample_pending & ((uint64_t)1 << bin)))) {
    tls->sample_left -= need;
    return pop_free(tls, CR_ROW(bin));
  }
  return sample_cut(tls, bin, size, hot, have);
}

/* The bin's lists are both empty: objects from a block (the active one, or
 * another), checked out into the free list, and the first handed out. */
static CR_NOINLINE void *refill_alloc(cr_tls_t *tls, unsigned bin, size_t size) {
  unsigned row = CR_ROW(bin);
  uint32_t hot = tls->hot[bin];
  tls->hot[bin] = 0; /* the list ran dry: a new turn */
  void *p;
  /* Nothing has changed yet: a safe point.  A purger start may have
   * allocated from this bin meanwhile: take what it left on the list. */
  if (cr_unlikely(cr_load_relaxed(&cr_purge_wanted)) && cr_policy_hooks.safe_point(tls->pool) &&
      (p = tls->bins.free[row]) != NULL) {
    tls->bins.free[row] = *(void **)p;
    cr_free_mark_clear(p);
    return p;
  }
  cr_block_t *b = bin_refill(tls, bin);
  if (b == NULL) {
    /* A medium block needs a free run aligned to its span; a user pool's
     * small buffer may have none where pages for a large object remain
     * (a fixed pool of 48 KB served 4100..32000 B as slab or large objects
     * before the medium classes, and nothing after): the object is then a
     * large one, as it used to be.  Not in the default heap, where the OS
     * refused a region: a mapping of its own for each such object would
     * only postpone the failure, a system call at a time. */
    if (cr_bin_is_medium(bin) && tls->pool->backend.source != NULL)
      return cr_large_alloc(tls->pool, tls, size, 0, false);
    errno = ENOMEM;
    return NULL;
  }
  uint32_t n = bin_fill(&tls->bins.free[row], b);
  CR_STAT(if (cr_tls_counting(tls)) cr_stat_own(&tls->stats.bin_alloc[bin], n));
  if (cr_tls_sampling(tls)) return sample_take(tls, bin, size, hot, n, n);
  return pop_free(tls, row);
}

/* The local list p (non-empty) becomes the free list; its first object is
 * handed out; the list ran dry, so a new turn of hot objects begins. */
CR_INLINE void *swap_local(cr_tls_t *tls, unsigned bin, void *p) {
  unsigned row = CR_ROW(bin);
  tls->hot[bin] = 0;
  tls->bins.local[row] = NULL;
  tls->bins.free[row] = *(void **)p;
  cr_free_mark_clear(p);
  return p;
}

/* The swap of a sampling thread: the local list p (n objects, or
 * SAMPLE_UNCOUNTED: then taken at bound, see sample_take) becomes the free
 * list, handed out through sample_take. */
static CR_NOINLINE void *swap_local_sampled(cr_tls_t *tls, unsigned bin, void *p, size_t size, uint32_t n,
                                            uint32_t bound) {
  unsigned row = CR_ROW(bin);
  uint32_t hot = tls->hot[bin];
  tls->hot[bin] = 0; /* the list ran dry: a new turn */
  tls->bins.local[row] = NULL;
  tls->bins.free[row] = p;
  return sample_take(tls, bin, size, hot, n, bound);
}

/* The swap of a thread that counts calls (the statistics): the list is
 * checked in a class that is not a power of two (check_local, which counts
 * it), counted, and cut for the heap profiler when it samples too. */
static CR_NOINLINE void *swap_local_counted(cr_tls_t *tls, unsigned bin, void *p, size_t size) {
  uint32_t object_size = cr_bin_size[bin], n;
  bool pow2 = (object_size & (object_size - 1)) == 0;
  if (!pow2) n = check_local(tls->bins.block[CR_ROW(bin)], bin, p);
  else n = (uint32_t)cr_list_length(p); /* counting: at most a block's objects */
  CR_STAT(count_swap(tls, bin, n));
  if (!cr_tls_sampling(tls)) return swap_local(tls, bin, p);
  return swap_local_sampled(tls, bin, p, size, n, n);
}

/* A sampled-only swap in a class that is not a power of two: checked, not
 * counted (see swap_local_watched). */
static CR_NOINLINE void *swap_local_checked_sampled(cr_tls_t *tls, unsigned bin, void *p, size_t size) {
  cr_block_t *block = tls->bins.block[CR_ROW(bin)];
  check_local(block, bin, p);
  return swap_local_sampled(tls, bin, p, size, SAMPLE_UNCOUNTED, block->capacity);
}

/* The swap of a watched thread.  Sampled only (not counting calls), the
 * list is not counted: the sampler takes it at a bound, the block's
 * capacity (a power of two's block header is not even read: a slab's
 * worth of objects, a little more).  Counting it cost more than the rare
 * walks of a bound (sample_take): small-random, profiling on, 786.5M ->
 * 781.6M instructions.  Only tail calls here: no registers to save on a
 * power of two's way. */
static CR_NOINLINE void *swap_local_watched(cr_tls_t *tls, unsigned bin, void *p, size_t size) {
  if (cr_tls_counting(tls)) return swap_local_counted(tls, bin, p, size);
  uint32_t object_size = cr_bin_size[bin];
  if ((object_size & (object_size - 1)) != 0) return swap_local_checked_sampled(tls, bin, p, size);
  return swap_local_sampled(tls, bin, p, size, SAMPLE_UNCOUNTED, (uint32_t)(cr_bin_span(bin) >> __builtin_ctz(object_size)));
}

/* The swap in a class that is not a power of two (the list is checked:
 * check_local), or while the thread is watched. */
static CR_NOINLINE void *swap_local_checked(cr_tls_t *tls, unsigned bin, void *p, size_t size) {
  if (cr_unlikely(cr_tls_watched(tls))) return swap_local_watched(tls, bin, p, size);
  check_local(tls->bins.block[CR_ROW(bin)], bin, p);
  return swap_local(tls, bin, p);
}

/* The common case, a swap of the local list of a power-of-two class into
 * the free list, touches no block and calls nothing, so it saves no
 * registers; the rest leaves by a tail call. */
void *cr_malloc_small_slow(cr_tls_t *tls, size_t size) {
  unsigned bin = cr_bin_index(size);
  void *p = tls->bins.local[CR_ROW(bin)];
  if (cr_unlikely(p == NULL)) return refill_alloc(tls, bin, size);
  /* objects this thread freed: allocate them next */
  if (cr_unlikely((cr_bin_size[bin] & (cr_bin_size[bin] - 1)) != 0 || cr_tls_watched(tls)))
    return swap_local_checked(tls, bin, p, size);
  return swap_local(tls, bin, p);
}
