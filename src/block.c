/* block.c (layer: block) — one slab or medium block: the size classes that cut
 * it, initialisation, the remote free (a chain of objects CAS'ed onto the
 * public free list, then the mailbox notice) and privatisation of the
 * public list by the owner.  The invariants are stated above cr_block_s in
 * internal/block.h. */
#include "internal/block.h"

/* ---- size classes --------------------------------------------------------
 * 45 classes, all multiples of 16 (so every pointer is 16-aligned):
 * 16..64 step 16, then four per doubling up to 1024 (as tbbmalloc), then
 * "fitting" classes ((16384 - CORONA_BLOCK_HEADER) / k) & ~63 for k = 12..4,
 * so a block holds exactly k of them with less than 64 B of slack per object
 * (64-aligned: an alignment up to 64 is served from the bins), then the medium classes,
 * fitted the same way: ((65536 - CORONA_BLOCK_HEADER) / k) & ~63 for
 * k = 15..4 and ((131072 - CORONA_BLOCK_HEADER) / k) & ~63 for k = 7..4
 * (config.h). */
#define CR_CLASSES(X, s)                                                                                 \
  X(16, s) X(32, s) X(48, s) X(64, s) X(80, s) X(96, s) X(112, s) X(128, s) X(160, s) X(192, s) X(224, s) \
  X(256, s) X(320, s) X(384, s) X(448, s) X(512, s) X(640, s) X(768, s) X(896, s) X(1024, s) X(1344, s)  \
  X(1472, s) X(1600, s) X(1792, s) X(1984, s) X(2304, s) X(2688, s) X(3200, s) X(4032, s) X(4352, s)     \
  X(4608, s) X(4992, s) X(5440, s) X(5888, s) X(6528, s) X(7232, s) X(8128, s) X(9280, s) X(10880, s)    \
  X(13056, s) X(16320, s) X(18688, s) X(21760, s) X(26176, s) X(32704, s)

/* The block a class cuts: a slab, or a medium block of 64 or 128 KB. */
#define CR_SPAN(c)                                                                                       \
  ((c) <= CORONA_SLAB_MAX_CLASS ? CORONA_SLAB_SIZE : (c) <= CORONA_MEDIUM_MAX_CLASS ? CORONA_MEDIUM_BLOCK : CORONA_MEDIUM_BLOCK_MAX)
#define CR_CLASS_ENTRY(c, s) c,
#define CR_CLASS_BELOW(c, s) +((c) < (s))
#define CR_CLASS_MEDIUM(c, s) +((c) <= CORONA_SLAB_MAX_CLASS)
_Static_assert((0 CR_CLASSES(CR_CLASS_MEDIUM, 0)) == CORONA_MEDIUM_FIRST_BIN, "the medium bins start at CORONA_MEDIUM_FIRST_BIN");

const uint32_t cr_bin_size[CORONA_NUM_BINS] = {CR_CLASSES(CR_CLASS_ENTRY, 0)};
#define CR_CLASS_HIGH(c, s) ~(uintptr_t)(CR_SPAN(c) - 1),

/* Object starts by one multiply and one compare (cr_is_object_start): with
 * magic = ceil(2^64 / c), n * magic (mod 2^64) is q * e for a multiple
 * n = q * c (e = c * magic mod 2^64, 0 < e < c) and at least magic
 * otherwise, for every n < 2^32 (Lemire et al., "Faster remainder by direct
 * computation", 2019).  A power of two has e = 0, which would lose q, so it
 * takes magic + 1 (e = c; a non-multiple n = q * c + r then gives
 * r * 2^64 / c + n).  Either way "n * magic <= capacity * e" says that n is
 * a multiple of c and at most capacity objects' worth: one test for the
 * position and for the range. */
#define CR_POW2(c) (((c) & ((c) - 1)) == 0)
#define CR_MAGIC(c) (UINT64_MAX / (c) + 1 + CR_POW2(c))
#define CR_CLASS_MAGIC(c, s) CR_MAGIC(c),
#define CR_CLASS_LIMIT(c, s) (uint64_t)(c) * CR_MAGIC(c) * ((CR_SPAN(c) - CORONA_BLOCK_HEADER) / (c)),
const cr_bin_geometry_t cr_bin_geometry = {
    .high = {CR_CLASSES(CR_CLASS_HIGH, 0)},
    .magic = {CR_CLASSES(CR_CLASS_MAGIC, 0)},
    .limit = {CR_CLASSES(CR_CLASS_LIMIT, 0)},
};

/* Entry i serves sizes ((i-1)*16, i*16]: the bin is the number of classes
 * smaller than i*16, i.e. the first class that holds i*16 bytes. */
#define CR_BIN_AT(i) (0 CR_CLASSES(CR_CLASS_BELOW, (i) * 16))
#define CR_ENTRY_ROW(i) (uint8_t)CR_ROW(CR_BIN_AT(i)),
#define B1(E, i) E(i)
#define B4(E, i) B1(E, i) B1(E, (i) + 1) B1(E, (i) + 2) B1(E, (i) + 3)
#define B16(E, i) B4(E, i) B4(E, (i) + 4) B4(E, (i) + 8) B4(E, (i) + 12)
#define B64(E, i) B16(E, i) B16(E, (i) + 16) B16(E, (i) + 32) B16(E, (i) + 48)
#define B256(E, i) B64(E, i) B64(E, (i) + 64) B64(E, (i) + 128) B64(E, (i) + 192)
#define B1024(E, i) B256(E, i) B256(E, (i) + 256) B256(E, (i) + 512) B256(E, (i) + 768)
#define CR_SIZE_TABLE(E)                                                                                     \
  B1024(E, 0) B256(E, 1024) B256(E, 1280) B256(E, 1536) B64(E, 1792) B64(E, 1856) B64(E, 1920) B16(E, 1984)   \
  B16(E, 2000) B16(E, 2016) B4(E, 2032) B4(E, 2036) B4(E, 2040) B1(E, 2044)
const uint8_t cr_size_row[CR_SIZE_BIN_ENTRIES] = {CR_SIZE_TABLE(CR_ENTRY_ROW)};

/* c & -c is the largest power of two dividing c, the alignment every
 * object of the class has. */
#define CR_CLASS_MASK(c, s) ~(uintptr_t)(CR_SPAN(c) - ((c) & -(c))),
const uintptr_t cr_bin_mask[CORONA_NUM_BINS] = {CR_CLASSES(CR_CLASS_MASK, 0)};

_Static_assert(CR_SIZE_BIN_ENTRIES == 2045, "the table literal above spells out entries 0..2044");


/* ---- one block ------------------------------------------------------------ */

void cr_block_init(cr_block_t *b, cr_inbox_t *owner, cr_pool_t *pool, unsigned bin) {
  uint32_t size = cr_bin_size[bin];
  /* Nobody else can reach an empty block: plain (relaxed) stores suffice,
   * and the objects handed out later carry them to other threads. */
  cr_store_relaxed(&b->public_free, NULL);
  cr_store_relaxed(&b->mail_next, NULL);
  b->pool = pool;
  b->bin = bin;
  b->free_list = NULL;
  size_t span = cr_bin_span(bin);
  b->bump = (char *)b + span - size;
  b->allocated = 0;
  b->threshold = -1;
  b->object_size = size;
  b->capacity = (uint16_t)((span - CORONA_BLOCK_HEADER) / size);
  b->list = CR_LIST_NONE;
  b->next = b->prev = NULL;
  cr_store_relaxed(&b->owner, owner);
  /* The guards (block.h): the second word of each 16-byte slot. */
  for (size_t i = 1; i < CORONA_BLOCK_HEADER / sizeof(void *); i += 2) ((cr_block_t **)b)[i] = b;
  /* The slab's leaf exists (its region is mapped), so this cannot fail. */
  cr_pagemap_set((uintptr_t)b, span, (uint8_t)(bin + 1));
}

uint32_t cr_block_privatize(cr_block_t *b, void *terminal) {
  /* acq_rel: the acquire pairs with the freers' release CAS (their links and
   * object contents become visible); the release publishes b->owner to the
   * next freer that finds the list empty and must notify its owner. */
  void *list = cr_list_take(&b->public_free, terminal);
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

void cr_block_free_chain(cr_block_t *b, void *head, void *tail) {
  /* Release: the links of the chain (the one stored in tail included), and
   * the user's last writes to its objects, reach the owner through its
   * acquire exchange in cr_block_privatize. */
  void *old = cr_list_push(&b->public_free, head, (_Atomic(void *) *)tail);
  if (old != NULL) return; /* already notified, or orphaned (CR_UNUSABLE) */

  /* We turned the list non-empty, so the owner learns of it through us.
   * The fence pairs with the release exchange of the owner (or adopter)
   * that last emptied the list, making its owner store visible. */
  atomic_thread_fence(memory_order_acquire);
  cr_inbox_t *owner = cr_load_relaxed(&b->owner);
  if (cr_unlikely(owner == NULL)) cr_fatal("remote free into an unowned block (double free?) at", head);
  cr_list_push(&owner->mailbox[b->bin], b, &b->mail_next); /* pairs with the owner's take */
  /* After the push, and release: an owner whose exchange reads this hint
   * sees the push; one that cleared the hint before it leaves it set for
   * the next sweep.  The owner may have exited meanwhile: its TLS memory is
   * never unmapped, and a stray hint only costs some thread one sweep. */
  cr_store_release(&owner->mail_pending, 1);
}
