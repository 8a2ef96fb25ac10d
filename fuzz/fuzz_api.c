/* fuzz_api.c — libFuzzer harness for corona's public API: what it checks,
 * the input format, its decoding and the libFuzzer entry points.  The other
 * parts: pattern.c (the fill patterns), shadow.c (the table of live objects),
 * ops.c (the operations), worker.c (the second thread); fuzz.h joins them.
 *
 * Each input is turned into a sequence of corona_malloc, corona_calloc,
 * corona_realloc, corona_aligned_malloc, corona_aligned_realloc,
 * corona_posix_memalign, corona_free and corona_usable_size calls, run by two
 * threads: libFuzzer's own (the "main" thread) and one persistent worker
 * thread.  A shadow table of 64 slots records every live object (pointer,
 * requested size, alignment, usable size, fill seed).  Every object is filled
 * with a pattern derived from its seed and the byte offset (all bytes up to
 * 16 KiB; for bigger objects the first and last 4 KiB plus 8 bytes every 16 KiB
 * or so, every 256 KiB past 1 MiB, at offsets that vary with the seed),
 * and the harness aborts with a "fuzz_api: FAIL" message on any mismatch:
 *   - contents not matching the pattern on verify, free or realloc (realloc
 *     must keep the prefix min(old, new));
 *   - a pointer not 16-aligned, or an aligned call not honouring its alignment;
 *   - usable_size below the requested size, or changing while the object lives;
 *   - calloc memory not zero;
 *   - two live objects overlapping ([p, p + usable) ranges);
 *   - a valid request returning NULL; an impossible one (SIZE_MAX, sizes past
 *     the address space, calloc overflow, huge alignments) not returning NULL
 *     with ENOMEM; an alignment that is not a power of two not giving NULL with
 *     EINVAL; posix_memalign touching errno or *out on failure; a failed
 *     realloc damaging the old object;
 *   - corona_usable_size of NULL or of a pointer corona never returned not 0.
 * Objects allocated by one thread are freed and realloc'd by the other
 * (cross-thread frees), at times while that thread is itself allocating.
 * Everything still live is freed at the end of each input (by both threads).
 *
 * Input format (every read past the end of a stream yields 0):
 *   input   := segment*
 *   segment := hdr:u8 len:u8 body:u8[len + 1]      (the body may be cut short)
 *     hdr & 7 = 0, 1  the main thread runs the body alone, on all 64 slots
 *               2, 3  the worker thread runs the body alone, on all 64 slots
 *               4..6  both at once: main runs the first half of the body,
 *                     the worker the second; main owns the slots whose
 *                     parity is (hdr >> 3) & 1, the worker the others
 *               7     like 4..6; and when hdr >> 4 is 15, first the worker
 *                     thread is replaced by a new one (the old one exits,
 *                     orphaning its blocks; rare, as each thread costs ASan
 *                     a few KiB for good)
 *   body    := op*
 *   op      := code:u8 operands        (code % 32 picks the call)
 *     0-5    malloc          slot size
 *     6-7    calloc          slot count:u8 size    (count % 9 elements of size/count)
 *     8-12   realloc         slot size             (realloc(NULL, n) on an empty slot)
 *     13-14  aligned_malloc  slot size align
 *     15-16  aligned_realloc slot size align
 *     17-18  posix_memalign  slot align size       (align raised to >= 8)
 *     19-25  free            slot
 *     26     usable_size     slot                  (also NULL and foreign pointers)
 *     27     verify          slot                  (check the contents in place)
 *     28     impossible      kind:u8 slot arg:u8   (one of 12 kinds of request that must fail)
 *     29     shrink to 0     slot sel:u8           (realloc or aligned_realloc to size 0: a free)
 *     30-31  burst           sel:u8 size           (sel 0: corona_collect; else sel % 32 + 1
 *                                                   objects allocated, filled, checked and freed)
 *   slot    := u8    (% 64 alone; in a shared segment (% 32) * 2 + the thread's parity)
 *   size    := sel:u8 then: sel < 128: u8 (0..255); < 192: u16le % 8129;
 *              < 224: u8 indexing a table of boundary sizes;
 *              < 240: 8129 + u16le % (64 KiB - 8128) (up to 64 KiB);
 *              < 252: 8129 + u24le % (1 MiB - 8128) (up to 1 MiB);
 *              else 1 MiB + u24le % 7 MiB (up to 8 MiB)
 *   align   := u8:  < 240: 1 << (a % 13) (1 .. 4 KiB); else 1 << (12 + a % 12) (.. 8 MiB)
 * An allocation into an occupied slot first frees the object there.
 *
 * Build with -DFUZZ_SELFTEST for a harness that corrupts one byte of some
 * objects before freeing them: it must crash at once (scripts/fuzz --selftest). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

/* ---- failure -------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz_api: FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

/* ---- operands ------------------------------------------------------------- */

/* rd8, rd16, rd24: fuzz.h */

/* Sizes where something changes: the small size classes and some of their
 * neighbours, the small/large boundary, pages, slabs, 1 MiB (the global
 * cache's exact bins), 2 MiB (huge pages), the 4 MiB region block limit. */
static const size_t boundary_sizes[] = {
    0,       1,       8,       15,      16,      17,       31,        32,       33,      48,     49,
    64,      65,      80,      96,      112,     113,      128,       129,      160,     192,    224,
    256,     257,     320,     384,     448,     512,      513,       640,      768,     896,    1024,
    1025,    1344,    1345,    1472,    1600,    1792,     1984,      2304,     2688,    3200,   4032,
    4033,    4096,    5376,    5377,    8127,    8128,     8129,      8192,     12288,   16320,  16384,
    16385,   65536,   65537,   262144,  1 << 20, (1 << 20) + 1, 2 << 20, (4 << 20) - 4096, 4 << 20,
    (4 << 20) + 1};
#define NBOUNDARY (sizeof boundary_sizes / sizeof boundary_sizes[0])

size_t rd_size(reader_t *r) {
  uint8_t sel = rd8(r);
  if (sel < 128) return rd8(r);
  if (sel < 192) return rd16(r) % 8129;
  if (sel < 224) return boundary_sizes[rd8(r) % NBOUNDARY];
  if (sel < 240) return 8129 + rd16(r) % (65536 - 8128);
  if (sel < 252) return 8129 + rd24(r) % (MIB - 8128);
  return MIB + rd24(r) % (7 * MIB);
}

size_t rd_align(reader_t *r) {
  uint8_t a = rd8(r);
  if (a < 240) return (size_t)1 << (a % 13);
  return (size_t)1 << (12 + a % 12);
}

unsigned rd_slot(reader_t *r, const ctx_t *c) {
  unsigned b = rd8(r);
  return c->shared ? (b % (NSLOTS / 2)) * 2 + (unsigned)c->parity : b % NSLOTS;
}

/* ---- libFuzzer entry points ----------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  worker_start();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!worker_exists()) worker_start();
  ctx_t main_ctx = {.id = 0};
  worker_ctx = (ctx_t){.id = 1};
  reader_t r = {data, data + size};
  while (r.p < r.end) {
    uint8_t hdr = rd8(&r);
    size_t len = (size_t)rd8(&r) + 1;
    if (len > (size_t)(r.end - r.p)) len = (size_t)(r.end - r.p);
    const uint8_t *body = r.p;
    r.p += len;
    unsigned mode = hdr & 7;
    if (mode < 2) {
      main_ctx.shared = 0;
      run_ops(&main_ctx, body, len);
    } else if (mode < 4) {
      worker_ctx.shared = 0;
      worker_post(JOB_RUN, body, len);
      worker_wait();
    } else {
      if (mode == 7 && hdr >> 4 == 15) worker_replace();
      size_t half = len / 2;
      main_ctx.shared = worker_ctx.shared = 1;
      main_ctx.parity = (hdr >> 3) & 1;
      worker_ctx.parity = !main_ctx.parity;
      worker_post(JOB_RUN, body + half, len - half);
      worker_started();
      run_ops(&main_ctx, body, half);
      worker_wait();
    }
  }
  /* Everything left is freed, by both threads at once: the worker the odd
   * slots, main the even ones. */
  worker_post(JOB_CLEANUP, NULL, 0);
  worker_started();
  for (unsigned i = 0; i < NSLOTS; i += 2) release(&main_ctx, i, "free at the end of the input");
  worker_wait();
  return 0;
}
