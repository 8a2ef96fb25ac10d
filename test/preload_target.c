/* preload_target.c — a plain program that knows nothing of corona, for the
 * preload tests of a cross build (options_preload, stats_preload in the
 * arm64 flavour), where no host program (/bin/true, python3, perl) can
 * load the library under test.  It stands in for them:
 *   preload_target            does nothing and exits 0 (/bin/true)
 *   preload_target buffers    50 zeroed buffers of 100 000 bytes, kept to
 *                             the end; prints "ok 5000000" (the python3
 *                             case of test_options)
 *   preload_target strings N  the decimal strings of 0..N-1 in objects of
 *                             their own, every fourth freed at once and the
 *                             rest at the end; prints the sum of their
 *                             lengths (488890 for N = 100000, as python3's
 *                             sum(len(str(i)) for i in range(N)))
 * Built without corona: the preload puts it under corona. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buffers(void) {
  static unsigned char *b[50];
  size_t total = 0;
  for (int i = 0; i < 50; i++) {
    b[i] = calloc(1, 100000);
    if (b[i] == NULL) return 1;
    for (size_t j = 0; j < 100000; j += 4096) total += b[i][j] == 0;
    total += 100000 - (100000 + 4095) / 4096;
  }
  printf("ok %zu\n", total);
  return 0;
}

static int strings(long n) {
  char **kept = malloc((size_t)n * sizeof *kept);
  if (kept == NULL) return 1;
  size_t total = 0, k = 0;
  for (long i = 0; i < n; i++) {
    char *s = malloc(24);
    if (s == NULL) return 1;
    snprintf(s, 24, "%ld", i);
    total += strlen(s);
    if (i % 4 == 0) free(s);
    else kept[k++] = s;
  }
  while (k > 0) free(kept[--k]);
  free(kept);
  printf("%zu\n", total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 1) return 0;
  if (strcmp(argv[1], "buffers") == 0) return buffers();
  if (strcmp(argv[1], "strings") == 0 && argc == 3) return strings(strtol(argv[2], NULL, 10));
  fprintf(stderr, "usage: preload_target [buffers | strings N]\n");
  return 2;
}
