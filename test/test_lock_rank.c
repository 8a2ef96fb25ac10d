/* test_lock_rank.c — the lock-rank check of CORONA_LOCK_CHECK builds
 * (src/internal/sync.h): waiting for a lock while holding one of a higher
 * rank aborts with a line naming both ranks; taking them in rank order, two
 * of one rank, or a try-lock out of order does not.  The real locks pass the
 * whole suite under the check (ASan and TSan builds).  Without the check
 * there is nothing to test: a visible skip. */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "childutil.h"
#include "internal/fastpath.h"
#include "testutil.h"

#if CORONA_LOCK_CHECK
static cr_lock_t decay = CR_LOCK_INIT(CR_RANK_DECAY), pool = CR_LOCK_INIT(CR_RANK_POOL),
                 orphans_a = CR_LOCK_INIT(CR_RANK_ORPHANS), orphans_b = CR_LOCK_INIT(CR_RANK_ORPHANS);

static void in_order(void *arg) {
  (void)arg;
  cr_lock(&decay);
  cr_lock(&pool);
  cr_lock(&orphans_a);
  cr_lock(&orphans_b); /* a second lock of the rank held */
  cr_unlock(&orphans_b);
  cr_unlock(&orphans_a);
  cr_unlock(&pool);
  cr_unlock(&decay);
  cr_lock(&pool);
  if (!cr_lock_try(&decay)) _exit(4); /* a lower rank, but a try-lock never waits */
  cr_unlock(&decay);
  cr_unlock(&pool);
  cr_lock(&decay); /* everything was let go: rank order starts afresh */
  cr_unlock(&decay);
  _exit(0);
}

static void out_of_order(void *arg) {
  (void)arg;
  cr_lock(&pool);
  cr_lock(&decay); /* waits for a lower rank while holding POOL */
  _exit(0);
}
#endif

int main(void) {
  double t0 = tu_now();
#if !CORONA_LOCK_CHECK
  tu_skip("built without CORONA_LOCK_CHECK (on in Debug and sanitizer builds)");
  return tu_finish("test_lock_rank", t0);
#else
  static char err[4096];
  int st = cu_run_fn(in_order, NULL, err, sizeof err);
  CHECKF(cu_exited(st, 0), "locks in rank order: %s, stderr: %s", cu_describe(st), err);
  st = cu_run_fn(out_of_order, NULL, err, sizeof err);
  CHECKF(cu_signalled(st, SIGABRT) && strstr(err, "lock order") != NULL,
         "a wait out of rank order must abort naming the ranks: %s, stderr: %s", cu_describe(st), err);
  if (cu_signalled(st, SIGABRT)) printf("  out of order: %s", err);
  return tu_finish("test_lock_rank", t0);
#endif
}
