/* pairs.c — small malloc+free pairs in three patterns, for counting
 * instructions with callgrind (scripts/count-instructions-peers), where
 * timing on a noisy machine is not repeatable.  It calls the standard
 * malloc and free, so it runs under any allocator by LD_PRELOAD, through
 * the PLT exactly as a program would.
 *
 * Patterns:
 *   fixed  malloc(SIZE) then free at once, over and over (SIZE default 64)
 *   cycle  the same, the size cycling through 16 small sizes, 16 .. 1024 B
 *          (16 32 48 64 80 96 112 128 160 192 224 256 384 512 768 1024), so
 *          every call switches size class
 *   batch  100 objects of SIZE allocated, then freed in the order of
 *          allocation (FIFO); N counts objects
 * The pointers go through a volatile slot, so the compiler cannot drop a
 * pair.  1000 pairs run first as a warm-up, then N; the tool runs N and 2N
 * and divides the difference by N, which leaves start-up and warm-up out.
 *
 * Usage: suite-pairs fixed|cycle|batch N [SIZE]
 *        suite-pairs --which */
#include "suite.h"

#define BATCH 100

static void *volatile slot;
static void *volatile live[BATCH];
static const uint16_t cycle_sizes[16] = {16,  32,  48,  64,  80,  96,  112, 128,
                                         160, 192, 224, 256, 384, 512, 768, 1024};

NOINLINE static void run_fixed(size_t size, long n) {
  for (long i = 0; i < n; i++) {
    slot = malloc(size);
    free(slot);
  }
}

NOINLINE static void run_cycle(size_t size, long n) {
  (void)size;
  for (long i = 0; i < n; i++) {
    slot = malloc(cycle_sizes[i & 15]);
    free(slot);
  }
}

NOINLINE static void run_batch(size_t size, long n) {
  for (long i = 0; i < n; i += BATCH) {
    for (int k = 0; k < BATCH; k++)
      live[k] = malloc(size);
    for (int k = 0; k < BATCH; k++)
      free(live[k]);
  }
}

int main(int argc, char **argv) {
  suite_prog = "suite-pairs";
  if (argc == 2 && strcmp(argv[1], "--which") == 0) {
    printf("malloc=%s\nfree=%s\n", suite_alloc_file("malloc"), suite_alloc_file("free"));
    return 0;
  }
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: suite-pairs fixed|cycle|batch N [SIZE]\n       suite-pairs --which\n");
    return 2;
  }
  long n = atol(argv[2]);
  size_t size = argc == 4 ? (size_t)atol(argv[3]) : 64;
  void (*run)(size_t, long);
  if (strcmp(argv[1], "fixed") == 0)
    run = run_fixed;
  else if (strcmp(argv[1], "cycle") == 0)
    run = run_cycle;
  else if (strcmp(argv[1], "batch") == 0)
    run = run_batch;
  else
    suite_die("unknown pattern '%s'", argv[1]);
  if (n < 0 || n % BATCH != 0)
    suite_die("N must be a multiple of %d", BATCH);
  run(size, 1000); /* warm-up: first-call set-up stays out of the difference */
  run(size, n);
  return 0;
}
