/* pair.c — one small malloc+free pair in a loop, for counting instructions
 * with callgrind (scripts/count-instructions): deterministic where timing on
 * a noisy machine is not.  Usage: corona-pair corona|system SIZE N.
 * The pointer goes through a volatile slot so the compiler cannot drop the
 * pair, and each allocator is called through a plain call, as a program
 * would. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "corona.h"

static void *volatile slot;

__attribute__((noinline)) static void run_corona(size_t size, long n) {
  for (long i = 0; i < n; i++) {
    slot = corona_malloc(size);
    corona_free(slot);
  }
}

static alloc_api libc;

__attribute__((noinline)) static void run_system(size_t size, long n) {
  for (long i = 0; i < n; i++) {
    slot = libc.malloc_fn(size);
    libc.free_fn(slot);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s corona|system SIZE N\n", argv[0]);
    return 2;
  }
  size_t size = (size_t)atol(argv[2]);
  long n = atol(argv[3]);
  libc = libc_api("system");
  void (*run)(size_t, long) = strcmp(argv[1], "corona") == 0 ? run_corona : run_system;
  run(size, 1000); /* warm up: first-call set-up stays out of the difference */
  run(size, n);
  return 0;
}
