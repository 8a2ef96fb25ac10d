/* pattern.c — the fill patterns of the fuzz harness: every live object is
 * filled with a pattern taken from its seed and the byte offset (in full up to
 * FULL_FILL bytes; past that its two ends and short runs in between), and
 * checked against it, a word at a time, whenever the harness touches it. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"

#define FULL_FILL (16 * 1024) /* objects up to this size are patterned in full */
#define EDGE 4096             /* bigger ones: this much at each end ... */

/* The byte loops below see no coverage or ASan instrumentation: they are
 * the harness's hot spots, and the memory they touch is corona's (which ASan
 * does not track) anyway. */
#define HOT __attribute__((no_sanitize("coverage", "address")))

/* Byte i of the pattern of seed is byte i % 8 of word(seed, i / 8): the
 * loops work a word at a time, and a byte that lands at another offset or
 * in another object is still caught. */
HOT static inline uint64_t word(uint32_t seed, size_t k) {
  uint64_t x = ((uint64_t)k + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 17);
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 32);
}

HOT uint8_t pat(uint32_t seed, size_t i) { return (uint8_t)(word(seed, i / 8) >> (i % 8 * 8)); }

uint8_t tail_mark(uint32_t seed) { return (uint8_t)((seed >> 24) ^ 0x5A); }

/* The stride between the patterned 8-byte runs inside an object bigger than
 * FULL_FILL: a few pages, so that a big object costs few page faults; not a
 * multiple of the page size, and starting at an offset taken from the seed,
 * so that over many objects every offset in a page gets checked. */
static size_t stride_for(size_t n) { return n <= MIB ? 16381 : 262139; }

/* visit_fn, and what each_range does: fuzz.h. */
size_t each_range(uint8_t *p, size_t n, size_t limit, uint32_t seed, visit_fn visit) {
  size_t r;
#define VISIT(off, len)                                                          \
  do {                                                                           \
    size_t o_ = (off), l_ = (len);                                               \
    if (o_ < limit) {                                                            \
      if (l_ > limit - o_) l_ = limit - o_;                                      \
      if ((r = visit(p, o_, l_, seed)) != 0) return r;                           \
    }                                                                            \
  } while (0)
  if (n <= FULL_FILL) {
    VISIT(0, n);
    return 0;
  }
  VISIT(0, EDGE);
  size_t stride = stride_for(n);
  for (size_t off = EDGE + seed % stride; off + 8 <= n - EDGE; off += stride) VISIT(off, 8);
  VISIT(n - EDGE, EDGE);
  return 0;
#undef VISIT
}

HOT size_t fill_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  size_t i = off, end = off + len;
  for (; i < end && i % 8 != 0; i++) p[i] = pat(seed, i);
  for (; i + 8 <= end; i += 8) {
    uint64_t v = word(seed, i / 8);
    memcpy(p + i, &v, 8);
  }
  for (; i < end; i++) p[i] = pat(seed, i);
  return 0;
}

/* These return 1 + the offset of the first bad byte, or 0. */
HOT size_t check_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  size_t i = off, end = off + len;
  for (; i < end && i % 8 != 0; i++)
    if (p[i] != pat(seed, i)) return i + 1;
  for (; i + 8 <= end; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != word(seed, i / 8)) break; /* the byte loop finds which */
  }
  for (; i < end; i++)
    if (p[i] != pat(seed, i)) return i + 1;
  return 0;
}

HOT size_t zero_range(uint8_t *p, size_t off, size_t len, uint32_t seed) {
  (void)seed;
  for (size_t i = off; i < off + len; i++)
    if (p[i] != 0) return i + 1;
  return 0;
}
