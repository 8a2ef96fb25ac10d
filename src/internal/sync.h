/* sync.h (layer: support) — atomics named after their memory order, and the
 * lock used by slow paths.  Every shared access in corona goes through
 * these, so the ordering can be read at the call site.
 *
 * Every shared struct says, field by field, who may touch it:
 *   owner   : read and written only by the thread that owns the struct
 *             (a block's owner is the TLS in block->owner);
 *   atomic  : shared, accessed only through the operations below, whose
 *             memory order is named at the call site;
 *   lock(X) : guarded by lock X.
 * "Immutable while owned" fields are written before the block is published
 * to other threads (by handing out an object) and not changed until the
 * block is empty again. */
#ifndef CORONA_SYNC_H
#define CORONA_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "os.h"

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

/* The lock of the slow paths: 0 free, 1 held, 2 held and maybe waited on
 * by a thread asleep in the OS. */
typedef struct cr_lock_s {
  atomic_int locked;
} cr_lock_t;

void cr_lock_slow(cr_lock_t *lock); /* sync.c: spins, then sleeps */
void cr_lock_wake(cr_lock_t *lock); /* sync.c: wakes one sleeper */

/* ---- the lock-free list: pushed by any thread, taken whole by its owner ---
 * The one primitive behind the blocks' public free lists and the threads'
 * mailboxes.  push stores the old head in the node's link (a word the
 * pusher owns until its CAS succeeds) and publishes the node with a release
 * CAS, so whatever the pusher wrote before, the link included, is seen by
 * the thread that takes the list.  It returns the head it replaced: the
 * list's end value (NULL, or a marker the list uses) tells the pusher that
 * it made the list non-empty.  take swaps in terminal (what the list holds
 * from then on) and returns the whole list; acq_rel: it sees every push
 * before it, and a pusher that later finds terminal sees what the taker
 * wrote before taking. */
static inline void *cr_list_push(_Atomic(void *) *head, void *node, _Atomic(void *) *link) {
  void *old = cr_load_relaxed(head);
  do {
    cr_store_relaxed(link, old);
  } while (!cr_cas_weak_release(head, &old, node));
  return old;
}
static inline void *cr_list_take(_Atomic(void *) *head, void *terminal) { return cr_exchange_acq_rel(head, terminal); }

static inline void cr_lock_init(cr_lock_t *lock) { atomic_init(&lock->locked, 0); }

/* 0 -> 1 only: a held lock's 2 (waiters) must not be lost. */
static inline bool cr_lock_try(cr_lock_t *lock) {
  int free = 0;
  return cr_load_relaxed(&lock->locked) == 0 &&
         atomic_compare_exchange_strong_explicit(&lock->locked, &free, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void cr_lock(cr_lock_t *lock) {
  if (__builtin_expect(!cr_lock_try(lock), 0)) cr_lock_slow(lock);
}

/* Release pairs with the acquire of the next holder; a 2 means someone may
 * sleep on the lock, so one sleeper is woken. */
static inline void cr_unlock(cr_lock_t *lock) {
  if (__builtin_expect(atomic_exchange_explicit(&lock->locked, 0, memory_order_release) == 2, 0)) cr_lock_wake(lock);
}

#endif /* CORONA_SYNC_H */
