/* purger.c (layer: policy) — the background purger: one thread that gives
 * the default heap's idle memory back to the OS after DECAY_MS with no
 * allocator call, so that a program which frees and then waits does not
 * keep what it freed.
 *
 * - Lazy: once memory is first cached (cr_policy_hooks.cached), the thread
 *   starts at the next safe point (cr_policy_hooks.safe_point): the start
 *   of an allocation's slow path, a thread's exit, the end of a large free.
 *   Never a small free: glibc frees a joined thread's DTV holding the lock
 *   of its stack cache, which pthread_create takes too (a thread's dynamic
 *   TLS blocks are freed there as well: one above 8 KB, of a dlopen'ed
 *   module, freed before any other safe point would still deadlock); and
 *   pthread_create allocates, so the caller's state must be whole.  A heap
 *   past CORONA_PURGER_EAGER_BYTES wants it before anything is cached
 *   (cr_purger_heap_grew): its one thread may free only small objects and
 *   then sleep, reaching no safe point.  A process that never frees, with a
 *   smaller heap, starts none; BACKGROUND_PURGE=0 starts none.
 * - Quiet: while something is cached it sleeps until the next deadline
 *   (the oldest cached stamp + DECAY_MS, at least a quarter decay after its
 *   last round); once nothing is, it waits on purger_state with no time
 *   limit, until a cached() wakes it.  An idle process sees no wake-ups.
 * - A round is the release the allocator calls do (policy.c), run whether
 *   due or not, plus marking the caches of threads idle for DECAY_MS: a
 *   thread's caches are its own, so it hands them back at its next slow path
 *   (thread.h, cr_tls_decay_check), or its exit does.
 * - Fork: the child has no thread; it starts its own when needed.  Exit:
 *   the thread holds no lock between rounds, and one it holds in a round is
 *   let go like any thread's; exit_group ends it wherever it is. */
#include "internal/policy.h"
#include "internal/options.h"
#include "internal/os.h"

/* purger_state, and who moves it:
 *   NONE -> WANTED      the first cached(), or a heap grown past
 *                       CORONA_PURGER_EAGER_BYTES, with cr_purge_wanted set
 *   WANTED -> BUSY      the safe point that starts the thread (CAS: one)
 *   NONE -> OFF         BACKGROUND_PURGE=0; BUSY -> OFF: the OS refused
 *   BUSY -> IDLE        the purger, before its last look (purger_main)
 *   IDLE -> BUSY        the purger when that look found something, or a
 *                       cached() that then wakes it (CAS: one wake)
 *   IDLE|BUSY -> WANTED the fork child's handler (no thread there)
 * No wake-up is lost: a cached() makes its memory visible under the lock of
 * the cache it fills, then reads the state; the purger stores IDLE, then
 * looks at every cache under its lock.  Whichever takes a lock second sees
 * what the other did before (lock order gives happens-before): the purger
 * sees the memory, or cached() sees IDLE and wakes it. */
enum { PURGER_NONE, PURGER_WANTED, PURGER_IDLE, PURGER_BUSY, PURGER_OFF };
static atomic_int purger_state;

/* The oldest cached stamp of pool (ms; 0: nothing): its empty blocks and
 * threads' caches (marking those idle for decay_ms when mark), the global
 * large-object cache, the backend's dirty pages.  Each under its lock. */
static uint64_t oldest_cached(cr_pool_t *pool, uint64_t now, uint64_t decay_ms, bool mark) {
  uint64_t t[3] = {cr_pool_idle_since(pool, now, decay_ms, mark), cr_large_cache_oldest(pool),
                   cr_backend_dirty_since(&pool->backend)};
  uint64_t oldest = 0;
  for (int i = 0; i < 3; i++)
    if (t[i] != 0 && (oldest == 0 || t[i] < oldest)) oldest = t[i];
  return oldest;
}

static void purger_main(void *unused) {
  (void)unused;
  cr_pool_t *pool = &cr_default_pool;
  uint64_t last = 0;   /* when the last round ran */
  bool woken = true;   /* just started, or woken: what is cached is fresh, so no round before a deadline */
  for (;;) {
    uint64_t decay = (uint64_t)cr_option(CR_OPT_DECAY_MS), gap = decay >= 4 ? decay / 4 : 1;
    uint64_t now = cr_os_now_ms();
    if (!woken && last != 0 && now < last + gap) { /* rounds at most as often as the calls' own (policy.c) */
      cr_os_wait(&purger_state, PURGER_BUSY, last + gap - now);
      continue;
    }
    if (!woken) {
      last = now;
      cr_decay_wait(pool, now);
    }
    woken = false;
    uint64_t oldest = oldest_cached(pool, now, decay, true);
    if (oldest == 0) {
      cr_store_relaxed(&purger_state, PURGER_IDLE);
      oldest = oldest_cached(pool, now, decay, false); /* the last look (see purger_state) */
      if (oldest == 0) {
        while (cr_load_relaxed(&purger_state) == PURGER_IDLE) cr_os_wait(&purger_state, PURGER_IDLE, CR_OS_FOREVER);
        woken = true;
        continue;
      }
      int idle = PURGER_IDLE; /* a cached() may have woken us already: either way, BUSY */
      atomic_compare_exchange_strong_explicit(&purger_state, &idle, PURGER_BUSY, memory_order_relaxed,
                                              memory_order_relaxed);
    }
    now = cr_os_now_ms();
    if (oldest + decay > now) cr_os_wait(&purger_state, PURGER_BUSY, oldest + decay - now);
  }
}

static CR_NOINLINE void purger_kick(int state) {
  if (state == PURGER_IDLE) {
    if (atomic_compare_exchange_strong_explicit(&purger_state, &state, PURGER_BUSY, memory_order_relaxed,
                                                memory_order_relaxed))
      cr_os_wake_one(&purger_state);
    return;
  }
  if (!cr_option(CR_OPT_BACKGROUND_PURGE)) {
    atomic_compare_exchange_strong_explicit(&purger_state, &state, PURGER_OFF, memory_order_relaxed,
                                            memory_order_relaxed);
    return;
  }
  /* NONE: the next safe point starts it (cr_purger_safe_point). */
  if (atomic_compare_exchange_strong_explicit(&purger_state, &state, PURGER_WANTED, memory_order_relaxed,
                                              memory_order_relaxed))
    cr_store_relaxed(&cr_purge_wanted, true);
}

void cr_purger_cached(cr_pool_t *pool) {
  int state = cr_load_relaxed(&purger_state);
  if (cr_likely(state == PURGER_BUSY || state == PURGER_OFF || state == PURGER_WANTED) || pool != &cr_default_pool)
    return;
  purger_kick(state);
}

void cr_purger_heap_grew(cr_pool_t *pool) {
  if (cr_likely(cr_load_relaxed(&purger_state) != PURGER_NONE) || pool != &cr_default_pool ||
      cr_load_relaxed(&pool->backend.mapped_bytes) < CORONA_PURGER_EAGER_BYTES)
    return;
  purger_kick(PURGER_NONE); /* WANTED: the next safe point starts it, and it waits */
}

bool cr_purger_safe_point(cr_pool_t *pool) {
  int state = PURGER_WANTED;
  if (pool != &cr_default_pool || !atomic_compare_exchange_strong_explicit(&purger_state, &state, PURGER_BUSY,
                                                                           memory_order_relaxed, memory_order_relaxed))
    return false; /* another thread starts it, or it is not wanted */
  cr_store_relaxed(&cr_purge_wanted, false);
  /* Refused (or Windows, which has none: os_windows.c): off for good, not
   * retried; the calls' own release goes on as before. */
  if (!cr_os_thread_start(purger_main, NULL)) cr_store_relaxed(&purger_state, PURGER_OFF);
  return true;
}

void cr_purger_fork_child(void) {
  int state = cr_load_relaxed(&purger_state);
  if (state != PURGER_IDLE && state != PURGER_BUSY) return;
  cr_store_relaxed(&purger_state, PURGER_WANTED);
  cr_store_relaxed(&cr_purge_wanted, true);
}
