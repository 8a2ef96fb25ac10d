/* policy.h (layer: policy) — process-wide decisions about memory: what the
 * caches may keep (the dirty budget, the soft heap limit), when idle memory
 * goes back (decay), and corona_collect. */
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
/* Fills in cr_policy_hooks (cr_init, before the first object). */
void cr_policy_init(void);

#endif /* CORONA_POLICY_H */
