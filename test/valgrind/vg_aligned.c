/* vg_aligned.c — a correct program, for memcheck (run.sh, test
 * valgrind_aligned*): 1500 rounds of posix_memalign with alignments from 64
 * to 65536 and sizes from a few bytes to 300 KB (small objects and large
 * ones), each object filled to its usable size (malloc_usable_size), kept
 * a while among eight live ones, checked and freed.  The freed aligned large
 * objects are reused by later ones of other alignments, which is where a
 * lookup that read the bytes in front of an aligned object once made
 * memcheck report "Conditional jump or move depends on uninitialised
 * value(s)" about 1700 times.  Under glibc memcheck reports nothing, so on
 * corona it must report nothing either.  Prints the number of allocations
 * and of bad contents, as vg_clean does, for the driver. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "vgprog.h"

#define ROUNDS 1500
#define LIVE 8

static const size_t sizes[] = {24, 100, 1000, 4000, 8128, 9000, 20000, 70000, 150000, 300000};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static struct {
  unsigned char *p;
  size_t n; /* usable bytes, all filled */
  uint64_t seed;
} live[LIVE];

static uint64_t word(uint64_t seed, size_t i) { return (seed + i) * 0x9E3779B97F4A7C15ull; }

static void fill(unsigned char *p, size_t n, uint64_t seed) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = word(seed, i);
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) p[i] = (unsigned char)seed;
}

/* 1 when p[0..n) does not hold the pattern: every byte is read in a branch,
 * so memcheck would see any byte that is not defined. */
static int bad(const unsigned char *p, size_t n, uint64_t seed) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != word(seed, i)) return 1;
  }
  for (; i < n; i++)
    if (p[i] != (unsigned char)seed) return 1;
  return 0;
}

int main(void) {
  long made = 0, wrong = 0;
  for (int r = 0; r < ROUNDS; r++) {
    int k = r % LIVE;
    if (live[k].p != NULL) {
      wrong += bad(live[k].p, live[k].n, live[k].seed);
      VG_FREE(live[k].p);
    }
    size_t align = (size_t)64 << (r * 7 % 11); /* 64 .. 65536 */
    size_t n = sizes[(size_t)r * 3 % N_SIZES] + (size_t)r % 61;
    void *p = NULL;
    if (VG_MEMALIGN(&p, align, n) != 0 || p == NULL) exit(3);
    made++;
    if (((uintptr_t)p & (align - 1)) != 0) exit(4);
    size_t u = VG_USABLE(p);
    if (u < n) exit(5);
    live[k].p = p;
    live[k].n = u;
    live[k].seed = (uint64_t)r * 1000003u;
    fill(live[k].p, u, live[k].seed);
    /* The usable size does not change while the object lives. */
    if (VG_USABLE(p) != u) wrong++;
  }
  for (int k = 0; k < LIVE; k++) {
    wrong += bad(live[k].p, live[k].n, live[k].seed);
    VG_FREE(live[k].p);
  }
  printf("vg_aligned (%s): %ld allocations, %ld bad contents\n", VG_API_NAME, made, wrong);
  return wrong == 0 ? 0 : 1;
}
