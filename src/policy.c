/* policy.c (layer: policy) — process-wide decisions about memory, which the
 * layers below ask for through cr_policy_hooks (thread.h): how many free
 * bytes the caches may keep (the dirty budget, the global large-object
 * cache's budget), the soft heap limit, the cut of all of them where the
 * heap grows, the time-based release of what stays idle (decay), and
 * corona_collect.  The purger, which runs that release with no allocator
 * call, is purger.c. */
#include "internal/policy.h"
#include "internal/options.h"
#include "internal/os.h"
#include "internal/report.h"

/* ---- budgets ----------------------------------------------------------- */

/* Over the soft limit only the fixed base shrinks (see
 * CORONA_DIRTY_OVER_LIMIT_SHIFT): a limit big enough to hold it whole
 * changes nothing here. */
/* The fixed base: TRIM_THRESHOLD + TOP_PAD (glibc's M_TRIM_THRESHOLD and
 * M_TOP_PAD, mallopt's or the environment's), at most INT64_MAX. */
static size_t dirty_base(void) {
  uint64_t base = (uint64_t)cr_option(CR_OPT_TRIM_THRESHOLD) + (uint64_t)cr_option(CR_OPT_TOP_PAD);
  return base < (uint64_t)INT64_MAX ? (size_t)base : (size_t)INT64_MAX;
}

/* The live bytes the budgets scale with: large blocks in use and slab blocks
 * out of the backend. */
static size_t heap_live(cr_pool_t *pool) {
  return cr_load_relaxed(&pool->large_in_use) + cr_load_relaxed(&pool->backend.slab_bytes);
}

/* The free pages the caches may keep resident: the base and a quarter of
 * the live bytes; where a free asks (the dirty budget hook), also what the
 * program freed since its live bytes were highest (live_high - live, reset
 * at each time-based release), up to half the base
 * (CORONA_DIRTY_SWING_SHIFT).  That swing costs no peak: resident memory
 * stays within what the heap needed at its high.  A program whose live set
 * swings (suite-large churn: 16 slots of 8 KB .. 4 MB per thread) keeps the
 * pages of its low points instead of purging them and faulting them in
 * again at the next high.  The cap keeps the promise of a free: a program
 * that frees most of its heap at once keeps at most half the base more
 * (test_rss small), the rest goes at the next time-based release, and
 * TRIM_THRESHOLD 0 (M_TRIM_THRESHOLD) still gives every free page back at
 * once.  Where the heap grows, the caches are cut to the budget without
 * the swing (growth_trim): resident memory reaches a new height there.
 * Over the soft limit neither the base nor the swing is kept whole. */
static size_t dirty_limit(cr_pool_t *pool, bool swing) {
  size_t live = heap_live(pool);
  size_t base = dirty_base(), extra = 0;
  if (swing) {
    size_t high = cr_load_relaxed(&pool->live_high);
    if (live > high) cr_store_relaxed(&pool->live_high, high = live);
    extra = high - live;
    if (extra > base >> CORONA_DIRTY_SWING_SHIFT) extra = base >> CORONA_DIRTY_SWING_SHIFT;
  }
  size_t soft = (size_t)cr_option(CR_OPT_SOFT_LIMIT), over = soft - (soft >> CORONA_DIRTY_OVER_LIMIT_SHIFT);
  if (soft != 0 && over < base && cr_load_relaxed(&pool->backend.mapped_bytes) > soft) base = over, extra = 0;
  return base + (live >> CORONA_DIRTY_SHIFT) + extra;
}

size_t cr_dirty_limit(cr_pool_t *pool) { return dirty_limit(pool, true); }

/* At most the room the soft heap limit leaves above the mapped bytes (where
 * one is set): cached bytes count in the mapped ones. */
static size_t within_soft_limit(cr_pool_t *pool, size_t limit) {
  size_t soft = (size_t)cr_option(CR_OPT_SOFT_LIMIT);
  if (soft != 0) {
    size_t mapped = cr_load_relaxed(&pool->backend.mapped_bytes);
    size_t room = mapped < soft ? soft - mapped : 0;
    if (room < limit) limit = room;
  }
  return limit;
}

/* How many block bytes of large regions the pool's global large-object
 * cache may hold: a base plus a share of the large bytes in use, capped,
 * and within the room the soft heap limit leaves. */
static size_t loc_budget(cr_pool_t *pool) {
  size_t limit = CORONA_GLOBAL_LOC_BASE + (cr_load_relaxed(&pool->large_in_use) >> CORONA_GLOBAL_LOC_SHIFT);
  if (limit > CORONA_GLOBAL_LOC_MAX_BYTES) limit = CORONA_GLOBAL_LOC_MAX_BYTES;
  return within_soft_limit(pool, limit);
}

/* How many bytes of mappings of their own the cache may hold (see
 * CORONA_OWN_LOC_BASE), within the soft limit's room likewise; under a
 * soft limit the newest one has no exemption: the limit bounds every cache. */
static size_t own_budget(cr_pool_t *pool, bool *keep_newest) {
  size_t limit = CORONA_OWN_LOC_BASE + (cr_load_relaxed(&pool->large_in_use) >> CORONA_OWN_LOC_SHIFT);
  *keep_newest = cr_option(CR_OPT_SOFT_LIMIT) == 0;
  return within_soft_limit(pool, limit);
}

/* ---- time-based release --------------------------------------------------- */

static void decay_run(cr_pool_t *pool, uint64_t now, bool force) {
  /* The swing the dirty budget keeps is the recent one's (cr_dirty_limit). */
  cr_store_relaxed(&pool->live_high, heap_live(pool));
  uint64_t decay = (uint64_t)cr_option(CR_OPT_DECAY_MS);
  uint64_t older_than = force ? UINT64_MAX : (now > decay ? now - decay : 0);
  bool keep_newest;
  size_t own = own_budget(pool, &keep_newest);
  cr_large_cache_evict(pool, older_than, force ? 0 : loc_budget(pool), force ? 0 : own, keep_newest && !force);
  cr_pool_decay_empty(pool, now, decay, force);
  cr_backend_decay(&pool->backend, now, decay, force);
}

/* decay_lock held: the release due at now, and the time of the next. */
static void decay_due_locked(cr_pool_t *pool, uint64_t now) {
  uint64_t decay = (uint64_t)cr_option(CR_OPT_DECAY_MS);
  cr_store_relaxed(&pool->next_decay, now + (decay >= 4 ? decay / 4 : 1));
  decay_run(pool, now, false);
}

void cr_maybe_decay(cr_pool_t *pool, uint64_t now) {
  if (now < cr_load_relaxed(&pool->next_decay)) return;
  if (!cr_lock_try(&pool->decay_lock)) return; /* someone else is at it */
  decay_due_locked(pool, now);
  cr_unlock(&pool->decay_lock);
}

void cr_decay_wait(cr_pool_t *pool, uint64_t now) {
  cr_lock(&pool->decay_lock);
  decay_due_locked(pool, now);
  cr_unlock(&pool->decay_lock);
}

void cr_collect(cr_pool_t *pool, cr_tls_t *tls) {
  if (tls != NULL && tls->pool == pool) cr_tls_flush(tls);
  cr_pool_reclaim_orphans(pool);
  cr_lock(&pool->decay_lock);
  decay_run(pool, cr_os_now_ms(), true);
  cr_unlock(&pool->decay_lock);
}

/* Over the soft heap limit the caches shrink to their share of the limit
 * (the global large-object cache to loc_budget, free pages to
 * cr_dirty_limit), the pool's empty slabs go back, and large regions left
 * with no block in use are unmapped: what lowers the mapped bytes, without
 * emptying the caches a program living above its limit keeps reusing.  One
 * thread at a time, without waiting (a try-lock): this used to be a full
 * collect, under a blocking lock, on every cache miss of every thread.
 * Verbose mode says so once each time the mapped bytes cross the limit. */
static void soft_limit_check(cr_pool_t *pool) {
  size_t soft = (size_t)cr_option(CR_OPT_SOFT_LIMIT);
  if (soft == 0 || pool->backend.source != NULL) return; /* the default heap's limit */
  size_t mapped = cr_load_relaxed(&pool->backend.mapped_bytes);
  if (mapped <= soft) {
    if (cr_load_relaxed(&pool->over_soft_limit)) cr_store_relaxed(&pool->over_soft_limit, false);
    return;
  }
  if (!cr_load_relaxed(&pool->over_soft_limit) && !atomic_exchange_explicit(&pool->over_soft_limit, true, memory_order_relaxed) &&
      cr_verbose()) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "soft heap limit reached (mapped ");
    cr_line_u64(&l, mapped);
    cr_line_str(&l, " bytes, limit ");
    cr_line_u64(&l, soft);
    cr_line_str(&l, " bytes): caches trimmed");
    cr_line_emit(&l);
  }
  if (!cr_lock_try(&pool->decay_lock)) return; /* another thread is trimming */
  bool keep_newest;
  size_t own = own_budget(pool, &keep_newest);
  cr_large_cache_evict(pool, 0, loc_budget(pool), own, keep_newest);
  if (pool->empty_count != 0) /* a racy hint: a miss only delays the release */
    cr_pool_decay_empty(pool, cr_os_now_ms(), 0, true);
  cr_backend_release_empty(&pool->backend);
  cr_unlock(&pool->decay_lock);
}

/* ---- growth ---------------------------------------------------------------- */

/* Each cache has a budget of its own (free pages: cr_dirty_limit; the global
 * cache's region blocks: loc_budget; its own mappings: own_budget, the
 * biggest, see CORONA_OWN_LOC_BASE), and a program that frees objects of
 * both kinds fills them all: with the bases alone 97 MiB beside the live
 * heap, where the soak's bound on peak RSS allows 32 MiB + half the live
 * bytes in all (test_soak at seed 10334163427: 74-100 MiB held at the RSS
 * peak, the bound missed by up to 9.5 MiB in a third of the runs).  But
 * resident memory reaches a new height only where corona maps fresh memory
 * for a request its caches could not serve; there, what the caches hold
 * together is cut to the free pages' budget, free pages first (they serve
 * any size), the global cache's entries oldest first, the newest mapping
 * of its own too (the request just mapped found none that fits, so it has
 * no exemption here; test_growth: kept whole, 60 MiB stayed resident
 * beside the 32 MiB of free pages).  The threads' local large caches count
 * in that budget too, though only their owners can empty them: the shared
 * caches give way for them (test_growth trim: three threads holding
 * 11.3 MiB, 96 MiB live, RSS +164.1 MiB where the budget allows +156,
 * +151.1 with them counted).  Fresh pages of a region's clean runs raise
 * resident memory too, without mapping: no trim there (it would purge the
 * resident pages a churning program reuses).  Between such misses each
 * cache keeps its own budget, so a program that reuses what it frees
 * (suite-large big: faults doubled with a smaller own-mapping base) keeps
 * what it reuses.
 * One thread at a time (decay_lock, a try-lock); a miss that finds it
 * taken leaves the trim to the next. */
static void growth_trim(cr_pool_t *pool) {
  size_t mapped = cr_load_relaxed(&pool->backend.mapped_bytes);
  if (mapped == cr_load_relaxed(&pool->mapped_seen)) return; /* served from what was mapped */
  if (!cr_lock_try(&pool->decay_lock)) return;
  size_t seen = cr_load_relaxed(&pool->mapped_seen);
  cr_store_relaxed(&pool->mapped_seen, mapped);
  if (mapped > seen) {
    size_t limit = dirty_limit(pool, false), threads = cr_pool_threads_cached(pool);
    size_t budget = limit > threads ? limit - threads : 0, dirty = cr_backend_dirty_bytes(&pool->backend);
    size_t room = budget > dirty ? budget - dirty : 0, region_max = loc_budget(pool);
    if (region_max > room) region_max = room;
    size_t cached = cr_large_cache_evict(pool, 0, region_max, room - region_max, false);
    cr_backend_trim(&pool->backend, budget > cached ? budget - cached : 0);
  }
  cr_unlock(&pool->decay_lock);
}

static void grew(cr_pool_t *pool) {
  cr_purger_heap_grew(pool);
  growth_trim(pool);
  soft_limit_check(pool);
}

void cr_policy_init(void) {
  cr_policy_hooks = (cr_policy_hooks_t){
      .tick = cr_maybe_decay,
      .reclaim = cr_collect,
      .dirty_budget = cr_dirty_limit,
      .loc_budget = loc_budget,
      .own_budget = own_budget,
      .grew = grew,
      .cached = cr_purger_cached,
      .safe_point = cr_purger_safe_point,
      .slab_grew = cr_purger_heap_grew,
  };
}
