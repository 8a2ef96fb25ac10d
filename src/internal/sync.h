/* sync.h — atomics named after their memory order, and the spin lock used
 * by slow paths.  Every shared access in corona goes through these, so the
 * ordering can be read at the call site. */
#ifndef CORONA_SYNC_H
#define CORONA_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>

#include "types.h"

#define cr_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define cr_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define cr_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define cr_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define cr_exchange_acquire(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)
#define cr_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
/* CAS that publishes what was written before it (release) on success. */
#define cr_cas_weak_release(p, expected, desired) \
  atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_release, memory_order_relaxed)
/* CAS that both publishes and observes (acq_rel) on success. */
#define cr_cas_strong_acq_rel(p, expected, desired) \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel, memory_order_acquire)

void cr_lock_slow(cr_lock_t *lock); /* sync.c: spins, then yields */

/* Tells the CPU we are spinning (saves power, frees the sibling thread). */
static inline void cr_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline void cr_lock_init(cr_lock_t *lock) { atomic_init(&lock->locked, 0); }

static inline bool cr_lock_try(cr_lock_t *lock) {
  return cr_load_relaxed(&lock->locked) == 0 &&
         atomic_exchange_explicit(&lock->locked, 1, memory_order_acquire) == 0;
}

static inline void cr_lock(cr_lock_t *lock) {
  if (__builtin_expect(!cr_lock_try(lock), 0)) cr_lock_slow(lock);
}

/* Pairs with the acquire in cr_lock_try. */
static inline void cr_unlock(cr_lock_t *lock) { cr_store_release(&lock->locked, 0); }

#endif /* CORONA_SYNC_H */
