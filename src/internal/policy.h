/* policy.h (layer: policy) — process-wide decisions about memory: what the
 * caches may keep (the dirty budget, the soft heap limit), when idle memory
 * goes back (decay), corona_collect, and the background purger. */
#ifndef CORONA_POLICY_H
#define CORONA_POLICY_H

#include <stddef.h>
#include "thread.h"

/* How many free bytes the pool's backend may keep resident (unpurged) before
 * the decay time: a base plus a share of the bytes in use; past the soft
 * heap limit the base is at most a share of the limit (policy.c). */
size_t cr_dirty_limit(cr_pool_t *pool);
/* Time-based release, due at most every quarter decay; cheap when not due. */
void cr_maybe_decay(cr_pool_t *pool, uint64_t now);
/* Everything cached that can go back to the OS goes (corona_collect). */
void cr_collect(cr_pool_t *pool, cr_tls_t *tls); /* tls: the calling thread's for pool, or NULL */
/* The same, due or not, waiting for the pool's decay lock (the purger). */
void cr_decay_wait(cr_pool_t *pool, uint64_t now);
/* Fills in cr_policy_hooks (cr_init, before the first object). */
void cr_policy_init(void);

/* ---- purger.c: idle memory back to the OS with no allocator call -------- */
/* cr_policy_hooks.cached and .safe_point (thread.h). */
void cr_purger_cached(cr_pool_t *pool);
bool cr_purger_safe_point(cr_pool_t *pool);
/* cr_policy_hooks.slab_grew, and a large allocation's growth too. */
void cr_purger_heap_grew(cr_pool_t *pool);
/* The fork child's handler (after the locks are let go): the child has no
 * purger thread; its next safe point starts one if the parent had one. */
void cr_purger_fork_child(void);

#endif /* CORONA_POLICY_H */
