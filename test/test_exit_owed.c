/* test_exit_owed.c — white-box: a thread exits while a mailbox notice owed
 * to it never arrives (its freer was mid-push when the process forked, say).
 * Simulated by doing a remote free's first half by hand: the object goes on
 * its block's public list (NULL -> list, which obliges the freer to notify
 * the owner) and no notice is ever sent.  The exit must finish (bounded
 * wait), and the block, which keeps its dead owner, must never be handed
 * to another thread: the heap stays consistent for everyone after. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "corona.h"
#include "internal/fastpath.h"
#include "testutil.h"

static void *obj, *keep;
static atomic_int phase;

static void *owner_thread(void *arg) {
  (void)arg;
  obj = corona_malloc(64);
  keep = corona_malloc(64); /* same block: it stays non-empty */
  tu_fill(keep, 64, 7);
  atomic_store(&phase, 1);
  while (atomic_load(&phase) != 2) sched_yield();
  return NULL; /* thread exit: waits for the notice that never comes */
}

static void *churn_thread(void *arg) {
  (void)arg;
  void *p[512];
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 512; i++) {
      p[i] = corona_malloc(64);
      tu_fill(p[i], 64, (uint64_t)(uintptr_t)p[i]);
    }
    for (int i = 0; i < 512; i++) {
      CHECK_PATTERN(p[i], 64, (uint64_t)(uintptr_t)p[i]);
      CHECK(p[i] != keep && p[i] != obj); /* the owed block is never reused */
      corona_free(p[i]);
    }
  }
  return NULL;
}

int main(void) {
  double t0 = tu_now();
  pthread_t t;
  pthread_create(&t, NULL, owner_thread, NULL);
  while (atomic_load(&phase) != 1) sched_yield();

  cr_block_t *b = (cr_block_t *)((uintptr_t)obj & ~(uintptr_t)(CORONA_SLAB_SIZE - 1));
  *(void **)obj = NULL;
  void *expected = NULL;
  CHECK(atomic_compare_exchange_strong(&b->public_free, &expected, obj)); /* ...and no notice */

  atomic_store(&phase, 2);
  double t1 = tu_now();
  pthread_join(t, NULL);
  double waited = tu_now() - t1;
  printf("  exit with an owed notice took %.3f s\n", waited);
  CHECKF(waited < 10.0, "thread exit waited %.1f s for a notice that cannot come", waited);

  pthread_t c[2];
  for (int i = 0; i < 2; i++) pthread_create(&c[i], NULL, churn_thread, NULL);
  for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
  CHECK_PATTERN(keep, 64, 7);
  return tu_finish("test_exit_owed", t0);
}
