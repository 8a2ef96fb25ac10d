/* sync.c — the contended side of the spin lock (internal/sync.h). */
#include "internal/os.h"
#include "internal/sync.h"

void cr_lock_slow(cr_lock_t *lock) {
  for (unsigned spins = 0;; spins++) {
    if (cr_lock_try(lock)) return;
    /* Short spin first (the holder is usually on another core and about
     * to release); then give the CPU away so a preempted holder can run. */
    if (spins < 64) {
      cr_cpu_relax();
    } else {
      cr_os_yield();
    }
  }
}
