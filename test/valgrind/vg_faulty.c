/* vg_faulty.c — a program with memory errors on corona objects, for
 * memcheck (run.sh, test valgrind_errors*).  Each error sits in a function
 * of its own, so the driver can tie memcheck's report to it:
 *   read_after_free   reads a freed 100 B object (small) and a freed
 *                     200000 B object (large): "Invalid read ... free'd"
 *   write_past_end    writes the byte just past a 100 B object and past a
 *                     5000 B one: "Invalid write of size 1 ... 0 bytes after
 *                     a block of size N alloc'd"
 *   branch_on_uninit  branches on a byte of a fresh 64 B object that was
 *                     never written: "Conditional jump or move depends on
 *                     uninitialised value(s)"
 *   free_twice        frees a 48 B object twice: "Invalid free()"
 * and, as a control, calloc memory and written memory are read in branches
 * without a report.  Memcheck goes on after each error, so one run shows all
 * six; the program itself runs to the end (corona aborts on a bad free only
 * in debug mode). */
#define _POSIX_C_SOURCE 200809L
#include "vgprog.h"

/* The errors are the point: GCC 12 sees the use after free too. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static volatile int sink;

VG_NOINLINE void read_after_free(size_t n) {
  volatile char *p = VG_MALLOC(n);
  if (p == NULL) exit(3);
  p[n / 2] = 7;
  VG_FREE((void *)p);
  VG_OPAQUE(p);
  sink += p[n / 2]; /* the error */
}

VG_NOINLINE void write_past_end(size_t n) {
  char *p = VG_MALLOC(n);
  if (p == NULL) exit(3);
  memset(p, 1, n);
  VG_OPAQUE(p);
  ((volatile char *)p)[n] = 2; /* the error */
  VG_FREE(p);
}

VG_NOINLINE void branch_on_uninit(void) {
  unsigned char *p = VG_MALLOC(64);
  if (p == NULL) exit(3);
  p[0] = 1;
  VG_OPAQUE(p);
  if (p[10] > 5) /* the error: p[10] was never written */
    sink += 1;
  else
    sink += 2;
  VG_FREE(p);
}

VG_NOINLINE void free_twice(void) {
  void *p = VG_MALLOC(48);
  if (p == NULL) exit(3);
  VG_FREE(p);
  VG_OPAQUE(p);
  VG_FREE(p); /* the error */
}

/* No error: defined memory read in branches. */
VG_NOINLINE void control(void) {
  unsigned char *z = VG_CALLOC(100, 3);
  unsigned char *w = VG_MALLOC(5000);
  if (z == NULL || w == NULL) exit(3);
  memset(w, 3, 5000);
  VG_OPAQUE(z);
  VG_OPAQUE(w);
  int s = 0;
  for (int i = 0; i < 300; i++)
    if (z[i] != 0) s++;
  for (int i = 0; i < 5000; i++)
    if (w[i] != 3) s++;
  sink += s;
  VG_FREE(z);
  VG_FREE(w);
}

int main(void) {
  control();
  read_after_free(100);
  read_after_free(200000);
  write_past_end(100);
  write_past_end(5000);
  branch_on_uninit();
  free_twice();
  control();
  printf("vg_faulty (%s): done\n", VG_API_NAME);
  return 0;
}
