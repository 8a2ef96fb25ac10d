/* vg_leaky.c — a program that leaks, for memcheck (run.sh, test
 * valgrind_leaks*).  It frees correctly a few thousand objects of assorted
 * sizes, then leaks exactly six objects, one of each size:
 *   through the tested API (corona_malloc, or malloc when preloaded):
 *     100 B (small), 5000 B (small, a fitting class), 200000 B (large);
 *   through the standard malloc (corona's too: libcorona.a replaces it, or
 *   LD_PRELOAD does):  300 B, 7000 B, 300000 B.
 * Every leaked pointer is dropped (no copy anywhere), so memcheck must call
 * each one "definitely lost", with its size, allocated from leak_api() or
 * leak_malloc().  Prints the sizes it leaked. */
#define _POSIX_C_SOURCE 200809L
#include "vgprog.h"

static void *volatile slot; /* the only place a pointer passes through */

VG_NOINLINE void leak_api(size_t n) {
  char *p = VG_MALLOC(n);
  if (p == NULL) exit(3);
  memset(p, 0x5a, n);
  slot = p;
  slot = NULL;
}

VG_NOINLINE void leak_malloc(size_t n) {
  char *p = malloc(n);
  if (p == NULL) exit(3);
  memset(p, 0x5b, n);
  slot = p;
  slot = NULL;
}

/* Objects allocated and freed correctly around the leaks. */
VG_NOINLINE static void churn(int rounds) {
  static void *live[256];
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < 256; i++) {
      size_t n = (size_t)(i * 37 % 9000) + 1;
      if (i % 64 == 63) n = 20000 + (size_t)i * 100;
      live[i] = (i & 1) ? VG_MALLOC(n) : malloc(n);
      if (live[i] == NULL) exit(3);
      memset(live[i], i, n);
    }
    for (int i = 0; i < 256; i++) {
      if (i & 1) VG_FREE(live[i]);
      else free(live[i]);
    }
  }
}

int main(void) {
  churn(4);
  leak_api(100);
  leak_api(5000);
  leak_api(200000);
  leak_malloc(300);
  leak_malloc(7000);
  leak_malloc(300000);
  churn(4);
  printf("vg_leaky (%s): leaked 100 5000 200000 (api), 300 7000 300000 (malloc)\n", VG_API_NAME);
  return 0;
}
