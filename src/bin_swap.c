/* bin_swap.c (layer: thread) — malloc's slow path for small objects: when
 * a bin's free list runs dry, the local list becomes the free list
 * (checked in a class that is not a power of two, counted while the
 * statistics count calls, cut for the heap profiler while it samples), or
 * the bin is refilled from a block (bin.c); the first object is handed
 * out.  The swap of a power-of-two class, the common case, touches no block
 * and calls nothing. */
#include <errno.h>

#include "internal/thread.h"

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
   * span and one multiply and compare decide (see cr_bin_geometry). */
  uintptr_t end = (uintptr_t)block + cr_bin_span(bin);
  uint64_t magic = cr_bin_geometry.magic[bin], limit = cr_bin_geometry.limit[bin];
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
  cr_block_t *b = cr_bin_refill(tls, bin);
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
  uint32_t n = cr_bin_fill(&tls->bins.free[row], b);
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
