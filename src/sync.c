/* sync.c (layer: support) — the contended side of the slow paths' lock (internal/sync.h).
 *
 * A short spin first: the holder is usually on another core and about to
 * let go.  Then the waiter marks the lock 2 and sleeps in the OS until an
 * unlock that sees the 2 wakes it.  Yielding instead (as this lock first
 * did) let oversubscribed threads -- 8 on 2 cores -- burn their slices
 * re-queueing behind a preempted holder: frag at 8 threads made 22 000
 * sched_yield calls and ran at 0.6 of the peers' speed. */
#include "internal/sync.h"
#include "internal/os.h"
#include "internal/report.h"

void cr_lock_slow(cr_lock_t *lock) {
  for (unsigned spins = 0; spins < 128; spins++) {
    cr_os_cpu_relax();
    if (cr_lock_try_raw(lock)) return;
  }
  /* Taking the lock as 2 (not 1) is conservative: we cannot know whether
   * others sleep too, so our unlock will wake one if there is one. */
  while (atomic_exchange_explicit(&lock->locked, 2, memory_order_acquire) != 0) cr_os_wait(&lock->locked, 2, CR_OS_FOREVER);
}

void cr_lock_wake(cr_lock_t *lock) { cr_os_wake_one(&lock->locked); }

#if CORONA_LOCK_CHECK
/* How many locks of each rank this thread holds. */
static _Thread_local uint8_t held[CR_RANKS];

void cr_lock_check_wait(const cr_lock_t *lock) {
  if (lock->rank == CR_RANK_NONE) return;
  for (unsigned r = lock->rank + 1u; r < CR_RANKS; r++) {
    if (held[r] != 0) {
      cr_line_t l = CR_LINE_INIT;
      cr_line_str(&l, "lock order: waiting for a lock of rank ");
      cr_line_u64(&l, lock->rank);
      cr_line_str(&l, " while holding one of rank ");
      cr_line_u64(&l, r);
      cr_line_str(&l, " (sync.h, cr_rank_t), lock ");
      cr_line_addr(&l, lock);
      cr_fatal_line(&l);
    }
  }
}

void cr_lock_note(const cr_lock_t *lock, int delta) {
  if (lock->rank != CR_RANK_NONE) held[lock->rank] = (uint8_t)(held[lock->rank] + delta);
}
#endif
