/* block.c — one 16 KB slab block: initialisation, the remote free (CAS onto
 * the public free list, then the mailbox notice) and privatisation of the
 * public list by the owner.  The invariants are stated above cr_block_s in
 * internal/types.h. */
#include "internal/block.h"
#include "internal/api.h"

void cr_block_init(cr_block_t *b, cr_tls_t *tls, unsigned bin) {
  uint32_t size = cr_bin_size[bin];
  /* Nobody else can reach an empty block: plain (relaxed) stores suffice,
   * and the objects handed out later carry them to other threads. */
  cr_store_relaxed(&b->public_free, NULL);
  cr_store_relaxed(&b->mail_next, NULL);
  b->pool = tls->pool;
  b->bin = bin;
  b->free_list = NULL;
  b->bump = (char *)b + CORONA_SLAB_SIZE - size;
  b->allocated = 0;
  b->threshold = -1;
  b->object_size = size;
  b->capacity = (uint16_t)((CORONA_SLAB_SIZE - CORONA_BLOCK_HEADER) / size);
  b->list = CR_LIST_NONE;
  b->next = b->prev = NULL;
  cr_store_relaxed(&b->owner, tls);
  /* The guards (types.h): the second word of each 16-byte slot. */
  for (size_t i = 1; i < CORONA_BLOCK_HEADER / sizeof(void *); i += 2) ((cr_block_t **)b)[i] = b;
  /* The slab's leaf exists (its region is mapped), so this cannot fail. */
  cr_pagemap_set((uintptr_t)b, CORONA_SLAB_SIZE, (uint8_t)(bin + 1));
}

uint32_t cr_block_privatize(cr_block_t *b, void *terminal) {
  /* acq_rel: the acquire pairs with the freers' release CAS (their links and
   * object contents become visible); the release publishes b->owner to the
   * next freer that finds the list empty and must notify its owner. */
  void *list = cr_exchange_acq_rel(&b->public_free, terminal);
  if ((uintptr_t)list <= (uintptr_t)CR_UNUSABLE) return 0;
  uint32_t n = 1;
  void *tail = list;
  for (void *next; (uintptr_t)(next = *(void **)tail) > (uintptr_t)CR_UNUSABLE; tail = next) {
    /* A list longer than the block can hold means a double free or a
     * corrupted object: stop rather than loop forever. */
    if (cr_unlikely(++n > b->capacity)) cr_fatal("corrupted public free list (double free?) in block", b);
  }
  *(void **)tail = b->free_list;
  b->free_list = list;
  b->allocated -= (int32_t)n;
  return n;
}

void cr_free_remote(cr_block_t *b, void *p) {
  /* Release: the link stored in p, and the user's last writes to p, reach
   * the owner through its acquire exchange in cr_block_privatize. */
  cr_free_mark(p, b);
  void *old = cr_load_relaxed(&b->public_free);
  do {
    *(void **)p = old;
  } while (!cr_cas_weak_release(&b->public_free, &old, p));
  if (old != NULL) return; /* already notified, or orphaned (CR_UNUSABLE) */

  /* We turned the list non-empty, so the owner learns of it through us.
   * The fence pairs with the release exchange of the owner (or adopter)
   * that last emptied the list, making its owner store visible. */
  atomic_thread_fence(memory_order_acquire);
  cr_tls_t *owner = cr_load_relaxed(&b->owner);
  if (cr_unlikely(owner == NULL)) cr_fatal("remote free into an unowned block (double free?) at", p);
  _Atomic(cr_block_t *) *box = &owner->mailbox[b->bin];
  cr_block_t *head = cr_load_relaxed(box);
  do {
    cr_store_relaxed(&b->mail_next, head);
  } while (!cr_cas_weak_release(box, &head, b)); /* pairs with the owner's acquire exchange */
  /* After the push, and release: an owner whose exchange reads this hint
   * sees the push; one that cleared the hint before it leaves it set for
   * the next sweep.  The owner may have exited meanwhile: its TLS memory is
   * never unmapped, and a stray hint only costs some thread one sweep. */
  cr_store_release(&owner->mail_pending, 1);
}

CR_NOINLINE void cr_free_foreign_block(cr_tls_t *tls, cr_block_t *b, void *p) {
  /* An object of a user pool freed by corona_free (tls is the default
   * heap's): free it into its pool as that pool's own free would.  Read
   * before any check: b->pool is on the line the CAS below needs anyway. */
  if (cr_unlikely(b->pool != tls->pool)) {
    cr_pool_free_small(b->pool, p, b->bin + 1);
    return;
  }
  if (cr_unlikely(tls == &cr_tls_empty)) {
    /* Checked mode sends every free here (the fast-path TLS stays empty). */
    if (cr_checked) {
      cr_debug_free(p, "free");
      return;
    }
    CR_STAT(if (cr_counting()) atomic_fetch_add_explicit(&b->pool->stats.bin_free[b->bin], 1, memory_order_relaxed));
  } else if (cr_tls_counting(tls)) {
    CR_STAT(cr_stat_own(&tls->stats.bin_free[b->bin], 1));
  } else {
    CR_STAT(cr_stat_event(b->pool, CR_STAT_REMOTE_FREE, 1));
    /* Another thread's object of our pool: keep it for our own next
     * allocation in its class (CORONA_HOT_OBJECTS), with no atomic at all.
     * Its block keeps counting it as allocated: whoever frees it later
     * sends it home as usual. */
    void **list = &tls->bins.free[CR_ROW(b->bin)];
    if (cr_likely(tls->hot[b->bin] < CORONA_HOT_OBJECTS)) {
      tls->hot[b->bin]++;
      cr_free_mark(p, b);
      *(void **)p = *list;
      *list = p;
      return;
    }
    cr_free_remote(b, p);
    return;
  }
  CR_STAT(cr_stat_event(b->pool, CR_STAT_REMOTE_FREE, 1));
  cr_free_remote(b, p);
}
