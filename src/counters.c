/* counters.c (layer: thread) — the statistics counters the slow paths add
 * to: a thread's own copy (owner writes, relaxed load and store) or its
 * heap's shared one (relaxed fetch_add), and the heap's bytes in use and
 * their peak.  stats.c (API) sums and reports them.  With CORONA_STATS at 0
 * this file is empty. */
#include <string.h>

#include "internal/thread.h"

#if CORONA_STATS
static inline void add_shared(_Atomic(uint64_t) *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void cr_stat_event_shared(cr_pool_t *pool, unsigned ev, uint64_t n) { add_shared(&pool->stats.event[ev], n); }

void cr_stats_retire_locked(cr_pool_t *pool, cr_tls_t *tls) {
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    add_shared(&pool->stats.bin_alloc[bin], cr_load_relaxed(&tls->stats.bin_alloc[bin]));
    add_shared(&pool->stats.bin_free[bin], cr_load_relaxed(&tls->stats.bin_free[bin]));
  }
  for (unsigned ev = 0; ev < CR_STAT_EVENTS; ev++) add_shared(&pool->stats.event[ev], cr_load_relaxed(&tls->stats.event[ev]));
  memset(&tls->stats, 0, sizeof tls->stats); /* the TLS may be recycled */
}

void cr_stats_note_peak(cr_pool_t *pool) {
  size_t now = cr_load_relaxed(&pool->small_in_use) + cr_load_relaxed(&pool->large_in_use);
  size_t peak = cr_load_relaxed(&pool->peak_in_use);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&pool->peak_in_use, &peak, now, memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

void cr_stats_small_in_use(cr_pool_t *pool, int64_t delta) {
  /* Wraps correctly for a negative delta (modular arithmetic). */
  atomic_fetch_add_explicit(&pool->small_in_use, (size_t)delta, memory_order_relaxed);
  if (delta > 0) cr_stats_note_peak(pool);
}
#endif
