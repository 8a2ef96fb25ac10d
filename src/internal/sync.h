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

/* ---- lock ranks ----------------------------------------------------------
 * Every lock has a rank, and a thread waits for a lock only when it holds
 * none of a higher rank (it may hold others of the same rank: the fork
 * handlers take every orphan list, and every user pool, at one rank).  A
 * try-lock never waits, so it may be taken out of order.  The fork handlers
 * (process.c) take every lock in this order.  A user pool's locks come
 * before the default heap's: its raw_alloc runs under its backend lock and
 * may allocate from the default heap.  With CORONA_LOCK_CHECK (debug and
 * sanitizer builds) each lock carries its rank and a wait out of order
 * aborts, naming both ranks. */
typedef enum cr_rank_e {
  CR_RANK_NONE = 0,    /* not checked */
  CR_RANK_DEBUG,       /* debug.c: the quarantine (taken alone) */
  CR_RANK_POOLS,       /* pool_user.c: the user-pool registry */
  CR_RANK_USER_DECAY,  /* a user pool's locks, as the default heap's below */
  CR_RANK_USER_POOL,
  CR_RANK_USER_ORPHANS,
  CR_RANK_USER_LOC,
  CR_RANK_USER_BACKEND,
  CR_RANK_DECAY,       /* cr_pool_t.decay_lock: one releasing thread */
  CR_RANK_POOL,        /* cr_pool_t.lock: threads, empty blocks */
  CR_RANK_ORPHANS,     /* cr_orphans_t.lock, one per bin */
  CR_RANK_LOC,         /* cr_loc_t.lock: the global large-object cache */
  CR_RANK_BACKEND,     /* cr_backend_t.lock */
  CR_RANK_CHUNK_DESC,  /* backend.c: user-pool chunk descriptors */
  CR_RANK_PROFILE,     /* profile.c: the heap profiler's samples (takes metadata memory) */
  CR_RANK_META,        /* meta.c: metadata memory */
  CR_RANK_BACKREF,     /* backref.c: the table */
  CR_RANKS
} cr_rank_t;
_Static_assert(CR_RANK_BACKEND - CR_RANK_DECAY == CR_RANK_USER_BACKEND - CR_RANK_USER_DECAY &&
                   CR_RANK_DECAY - CR_RANK_USER_DECAY == CR_RANK_BACKEND - CR_RANK_USER_BACKEND,
               "a user pool's ranks run parallel to the default heap's (cr_pool_set_ranks)");

/* The lock of the slow paths: 0 free, 1 held, 2 held and maybe waited on
 * by a thread asleep in the OS. */
typedef struct cr_lock_s {
  atomic_int locked;
#if CORONA_LOCK_CHECK
  uint8_t rank; /* cr_rank_t; set before the lock is first used */
#endif
} cr_lock_t;

#if CORONA_LOCK_CHECK
#define CR_LOCK_INIT(r) {0, (r)}
static inline void cr_lock_rank(cr_lock_t *lock, cr_rank_t r) { lock->rank = (uint8_t)r; }
void cr_lock_check_wait(const cr_lock_t *lock); /* sync.c: aborts on a wait out of rank order */
void cr_lock_note(const cr_lock_t *lock, int delta); /* sync.c: the thread took (+1) or left (-1) it */
#else
#define CR_LOCK_INIT(r) {0}
static inline void cr_lock_rank(cr_lock_t *lock, cr_rank_t r) { (void)lock, (void)r; }
#endif

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

/* 0 -> 1 only: a held lock's 2 (waiters) must not be lost. */
static inline bool cr_lock_try_raw(cr_lock_t *lock) {
  int free = 0;
  return cr_load_relaxed(&lock->locked) == 0 &&
         atomic_compare_exchange_strong_explicit(&lock->locked, &free, 1, memory_order_acquire, memory_order_relaxed);
}

static inline bool cr_lock_try(cr_lock_t *lock) {
  bool got = cr_lock_try_raw(lock);
#if CORONA_LOCK_CHECK
  if (got) cr_lock_note(lock, 1);
#endif
  return got;
}

static inline void cr_lock(cr_lock_t *lock) {
#if CORONA_LOCK_CHECK
  cr_lock_check_wait(lock);
  cr_lock_note(lock, 1);
#endif
  if (__builtin_expect(!cr_lock_try_raw(lock), 0)) cr_lock_slow(lock);
}

/* Release pairs with the acquire of the next holder; a 2 means someone may
 * sleep on the lock, so one sleeper is woken. */
static inline void cr_unlock(cr_lock_t *lock) {
#if CORONA_LOCK_CHECK
  cr_lock_note(lock, -1);
#endif
  if (__builtin_expect(atomic_exchange_explicit(&lock->locked, 0, memory_order_release) == 2, 0)) cr_lock_wake(lock);
}

#endif /* CORONA_SYNC_H */
