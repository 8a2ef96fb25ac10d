/* shadow.c — the fuzz harness's shadow table: the 64 slots that record every
 * live object (pointer, requested size, alignment, usable size, seed), and
 * the checks run on an object when it is made (alignment, usable size,
 * calloc's zeros, no overlap with any other live object), whenever it is
 * verified (its pattern, tail mark and unchanging usable size) and when it is
 * freed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corona.h"
#include "fuzz.h"

/* p and usable of every slot change only under g_lock, so that the overlap
 * check of one thread sees a consistent table; a slot's other fields belong to
 * whichever thread owns the slot in the running segment. */
slot_t g_slots[NSLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

uint32_t new_seed(ctx_t *c, unsigned slot) {
  uint64_t x = ((uint64_t)c->id << 48) ^ ((uint64_t)c->ops << 8) ^ slot;
  x *= 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32) | 1;
}

/* Registers [p, p + usable) in slot i after checking it overlaps no live object. */
static void publish(ctx_t *c, unsigned i, uint8_t *p, size_t usable) {
  pthread_mutex_lock(&g_lock);
  for (unsigned j = 0; j < NSLOTS; j++) {
    const slot_t *o = &g_slots[j];
    if (j == i || o->p == NULL) continue;
    if (p < o->p + o->usable && o->p < p + usable)
      fail("thread %d: new object %p (usable %zu) in slot %u overlaps live object %p (usable %zu, "
           "requested %zu, from %s) in slot %u",
           c->id, (void *)p, usable, i, (void *)o->p, o->usable, o->req, o->how, j);
  }
  g_slots[i].p = p;
  g_slots[i].usable = usable;
  pthread_mutex_unlock(&g_lock);
}

void unpublish(unsigned i) {
  pthread_mutex_lock(&g_lock);
  g_slots[i].p = NULL;
  g_slots[i].usable = 0;
  pthread_mutex_unlock(&g_lock);
}

/* Checks the whole object in slot i (pattern, tail mark, usable size). */
void verify(ctx_t *c, unsigned i, const char *when) {
  slot_t *s = &g_slots[i];
  size_t bad = each_range(s->p, s->req, s->req, s->seed, check_range);
  if (bad != 0)
    fail("thread %d: %s: object %p (requested %zu, usable %zu, from %s) in slot %u: byte %zu is %#x, "
         "expected %#x",
         c->id, when, (void *)s->p, s->req, s->usable, s->how, i, bad - 1, s->p[bad - 1],
         pat(s->seed, bad - 1));
  if (s->usable > s->req && s->p[s->usable - 1] != tail_mark(s->seed))
    fail("thread %d: %s: object %p (requested %zu, usable %zu, from %s): last usable byte changed", c->id,
         when, (void *)s->p, s->req, s->usable, s->how);
  size_t u = corona_usable_size(s->p);
  if (u != s->usable)
    fail("thread %d: %s: usable size of %p (requested %zu, from %s) changed from %zu to %zu", c->id, when,
         (void *)s->p, s->req, s->how, s->usable, u);
}

void check_alignment(ctx_t *c, const char *how, const void *p, size_t size, size_t align) {
  size_t need = align > 16 ? align : 16;
  if ((uintptr_t)p % need != 0)
    fail("thread %d: %s(size %zu, alignment %zu) = %p is not %zu-aligned", c->id, how, size, align, p, need);
}

/* Records a fresh object p (requested req) in the empty slot i, checks it
 * and fills it with seed's pattern.  zeroed: it came from calloc.  After a
 * realloc the seed is the old one, so the kept prefix already matches. */
void adopt(ctx_t *c, unsigned i, uint8_t *p, size_t req, size_t align, const char *how, bool zeroed,
                  uint32_t seed) {
  if (p == NULL) fail("thread %d: %s(size %zu, alignment %zu) returned NULL", c->id, how, req, align);
  check_alignment(c, how, p, req, align);
  size_t usable = corona_usable_size(p);
  if (usable < req)
    fail("thread %d: %s(size %zu) = %p has usable size %zu", c->id, how, req, (void *)p, usable);
  if (zeroed) {
    size_t bad = each_range(p, req, req, 0, zero_range);
    if (bad != 0)
      fail("thread %d: %s(size %zu) = %p: byte %zu is %#x, not 0", c->id, how, req, (void *)p, bad - 1,
           p[bad - 1]);
  }
  publish(c, i, p, usable);
  slot_t *s = &g_slots[i];
  s->req = req;
  s->align = align;
  s->seed = seed;
  s->how = how;
  each_range(p, req, req, seed, fill_range);
  if (usable > req) p[usable - 1] = tail_mark(seed);
}

void release(ctx_t *c, unsigned i, const char *why) {
  slot_t *s = &g_slots[i];
  if (s->p == NULL) return;
#ifdef FUZZ_SELFTEST
  if (s->req > 0 && c->ops % 7 == 3) s->p[s->req - 1] ^= 0x40; /* the planted bug */
#endif
  verify(c, i, why);
  uint8_t *p = s->p;
  unpublish(i);
  corona_free(p);
}
