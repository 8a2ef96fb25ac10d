/* tls.c (layer: thread) — per-thread data: the thread's TLS pointer, the
 * static empty TLS it starts at, creating a thread's TLS on its first call
 * (after cr_init) and tearing it down when the thread exits; what the purger
 * (policy layer) knows of the thread's caches, and their hand-back. */
#include <string.h>

#include "internal/thread.h"
#include "internal/os.h"

/* Exhausted and ownerless: every bin of a thread without a TLS points here,
 * so the fast path fails into the slow path without testing for NULL. */
cr_block_t cr_block_empty;

#define E1 &cr_block_empty
#define E4 E1, E1, E1, E1
#define E16 E4, E4, E4, E4
cr_tls_t cr_tls_empty = {.bins = {.block = {CR_BLOCK_NEVER, E16, E16, E4, E4, E4, E1, CR_BLOCK_NEVER, CR_BLOCK_NEVER}},
                         .pool = &cr_default_pool};
_Static_assert(CR_KIND_LARGE == CR_ROWS - 1, "every page-map kind has a row in the bins");
_Static_assert(CORONA_NUM_BINS == 45, "cr_tls_empty spells out 45 bins");

/* One pointer of static TLS (initial-exec, so no __tls_get_addr call):
 * small enough to fit glibc's surplus when the library is dlopen'ed. */
_Thread_local cr_tls_t *cr_tls_current __attribute__((tls_model("initial-exec"))) = &cr_tls_empty;
/* Checked mode: the thread's real TLS, which only debug.c allocates from. */
_Thread_local cr_tls_t *cr_tls_inner __attribute__((tls_model("initial-exec")));
bool cr_checked;
cr_policy_hooks_t cr_policy_hooks;
atomic_bool cr_purge_wanted;

void cr_tls_teardown(cr_tls_t *tls) {
  cr_large_flush_local(tls);
  if (cr_bins_release_all(tls)) cr_pool_tls_free(tls->pool, tls);
  else cr_pool_tls_retire(tls->pool, tls); /* a late notice may still come */
}

/* One byte more of static TLS, beside the two pointers above (dlopen_late
 * checks that they fit glibc's surplus). */
_Thread_local bool cr_tls_gone __attribute__((tls_model("initial-exec")));

static void tls_on_thread_exit(void *value) {
  cr_pool_t *pool = ((cr_tls_t *)value)->pool;
  cr_tls_teardown(value);
  cr_tls_gone = true;
  /* A destructor running after ours that allocates gets a fresh TLS (and
   * the OS calls us again for it). */
  cr_tls_current = &cr_tls_empty;
  cr_tls_inner = NULL;
  /* The caches went to the pool; from here a nested malloc gets that fresh
   * TLS, so this is a safe point (cr_policy_hooks.safe_point). */
  cr_policy_hooks.cached(pool);
  if (cr_load_relaxed(&cr_purge_wanted)) cr_policy_hooks.safe_point(pool);
}

/* ---- the caches and the purger ----------------------------------------------
 * Who writes cache_state: see cr_tls_s.  HOLDING is set under pool->lock,
 * and the hook is called after the unlock, so a purger that goes to sleep
 * with nothing to do either sees HOLDING under that lock or is woken
 * (policy.c, purger). */
void cr_tls_cache_hold(cr_tls_t *tls) {
  cr_pool_t *pool = tls->pool;
  uint64_t now = cr_os_now_ms();
  cr_lock(&pool->lock);
  tls->cache_since = now;
  cr_store_relaxed(&tls->cache_state, CR_CACHE_HOLDING);
  cr_unlock(&pool->lock);
  cr_policy_hooks.cached(pool);
}

void cr_tls_hand_back(cr_tls_t *tls) {
  /* First: what goes back below may be cached again (HOLDING) at once. */
  cr_store_relaxed(&tls->cache_state, CR_CACHE_EMPTY);
  cr_large_flush_local(tls);
  cr_bins_hand_back_empty(tls);
  cr_policy_hooks.cached(tls->pool); /* the global cache is the purger's again */
}

cr_tls_t *cr_tls_create(cr_pool_t *pool) {
  cr_tls_t *tls = cr_pool_tls_alloc(pool);
  if (tls == NULL) return NULL;
  cr_bins_init(tls);
  if (cr_checked) cr_tls_inner = tls; /* the fast paths keep failing into debug.c */
  else cr_tls_current = tls;
  /* Last: the OS may allocate here (glibc's pthread_setspecific can), and
   * that re-entrant malloc now finds this thread's TLS ready. */
  cr_thread_exit_hook(0, tls_on_thread_exit, tls);
  return tls;
}

/* told: set by the first thread whose hook failed (any order will do: it
 * only keeps the line below to one per process). */
void cr_thread_exit_hook(unsigned slot, void (*on_exit)(void *value), void *value) {
  static atomic_flag told = ATOMIC_FLAG_INIT;
  if (cr_os_thread_exit(slot, on_exit, value) || atomic_flag_test_and_set_explicit(&told, memory_order_relaxed)) return;
  cr_line_t l = CR_LINE_INIT;
  cr_line_str(&l, "cannot register the thread-exit hook; exiting threads keep their blocks");
  cr_line_emit(&l);
}
