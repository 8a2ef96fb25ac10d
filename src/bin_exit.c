/* bin_exit.c (layer: thread) — a thread's blocks handed on when it exits:
 * every object home, every public list closed to notices and the notices
 * owed collected (bounded), then empty blocks to the heap's empty list and
 * the others orphaned for any thread of their class to adopt. */
#include "internal/thread.h"
#include "internal/os.h"

/* Unlinks every block of every bin into one chain (linked by next); the
 * bin lists are empty (cr_bins_home). */
static cr_block_t *detach_all(cr_tls_t *tls) {
  cr_block_t *chain = NULL;
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    cr_block_t *lists[2] = {tls->partial[bin].head, tls->full[bin].head};
    for (int l = 0; l < 2; l++) {
      for (cr_block_t *b = lists[l], *next; b != NULL; b = next) {
        next = b->next;
        b->next = chain;
        chain = b;
      }
    }
    cr_block_t **act = &tls->bins.block[CR_ROW(bin)];
    if (*act != &cr_block_empty) {
      (*act)->next = chain;
      chain = *act;
    }
    tls->partial[bin].head = tls->full[bin].head = NULL;
    *act = &cr_block_empty;
  }
  tls->kept_empty = 0; /* the resting empty blocks are on the chain */
  return chain;
}

bool cr_bins_release_all(cr_tls_t *tls) {
  cr_bins_home(tls);
  cr_block_t *chain = detach_all(tls);

  /* 1. Close every public list to notices: NULL -> CR_UNUSABLE.  Where the
   *    CAS fails the list is non-empty, so exactly one notice for that block
   *    is in our mailbox or on its way there: mark the block as owed one. */
  uint32_t expected = 0, received = 0;
  for (cr_block_t *b = chain; b != NULL; b = b->next) {
    void *cur = NULL;
    b->list = CR_LIST_NONE;
    if (!cr_cas_strong_acq_rel(&b->public_free, &cur, CR_UNUSABLE)) {
      b->list = CR_LIST_OWED;
      expected++;
    }
  }
  /* 2. Collect those notices.  A notifier finishes its push without waiting
   *    on anyone, so they come within a few yields, unless the notifier can
   *    never run again (it was mid-push when this process forked, or a
   *    real-time priority keeps it off the CPU): then, after a bounded wait,
   *    the blocks still owed a notice stay with this TLS, which is never
   *    reused, so the late notice lands in a mailbox nobody reads.  Those
   *    blocks are lost to reuse; nothing is corrupted and nobody hangs.
   *    Privatising with CR_UNUSABLE keeps a block silent from now on. */
  for (unsigned spins = 0; received < expected && spins < CORONA_EXIT_NOTICE_WAIT; spins++) {
    for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
      for (cr_block_t *m = cr_list_take(&tls->inbox.mailbox[bin], NULL), *next; m != NULL; m = next) {
        next = (cr_block_t *)cr_load_relaxed(&m->mail_next);
        cr_block_privatize(m, CR_UNUSABLE);
        m->list = CR_LIST_NONE;
        received++;
      }
    }
    if (received < expected) cr_os_yield();
  }
  /* 3. Empty blocks to the global pool, the others become orphans that any
   *    thread allocating in their class adopts. */
  cr_block_t *empties = tls->empty;
  size_t n_empty = tls->empty_count;
  tls->empty = NULL;
  tls->empty_count = 0;
  for (cr_block_t *b = chain, *next; b != NULL; b = next) {
    next = b->next;
    if (b->list == CR_LIST_OWED) continue; /* keeps its owner, see above */
    if (b->allocated == 0) {
      b->next = empties;
      empties = b;
      n_empty++;
    } else {
      cr_store_relaxed(&b->owner, NULL); /* published by the orphan list's lock */
      cr_pool_orphan(tls->pool, b);
    }
  }
  if (empties != NULL) cr_pool_put_empty(tls->pool, empties, n_empty);
  return received == expected;
}
