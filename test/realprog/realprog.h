/* realprog.h — shared by the C and C++ programs of the real-program tests
 * (test/realprog/): is a pointer served by corona?
 *
 * The programs are built three ways and must print the same stdout in each:
 *   plain    linked with nothing of corona, run as is (glibc's malloc);
 *   preload  the same binary, run with LD_PRELOAD=libcorona.so;
 *   static   compiled with RP_LINKED_CORONA and linked with libcorona.a.
 * When the environment has CRTEST_EXPECT=corona (the runner sets it
 * for the preload and static runs), rp_expect_corona() is true and the
 * programs check that their allocations really come from corona: corona's
 * corona_usable_size() is non-zero only for pointers it handed out (it reads
 * its page map, never the memory).  These checks report to stderr only, so
 * stdout stays comparable with the plain run.
 * Include after the system headers; the including file defines _GNU_SOURCE. */
#ifndef CORONA_REALPROG_H
#define CORONA_REALPROG_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RP_LINKED_CORONA
#include "corona.h"
#endif

typedef size_t (*rp_usable_fn)(void *);

/* corona's corona_usable_size in this process, or NULL where corona is not
 * there (plain run). */
static inline rp_usable_fn rp_corona_usable(void) {
#ifdef RP_LINKED_CORONA
  return corona_usable_size;
#else
  rp_usable_fn f;
  void *sym = dlsym(RTLD_DEFAULT, "corona_usable_size");
  memcpy(&f, &sym, sizeof f);
  return f;
#endif
}

static inline int rp_expect_corona(void) {
  const char *e = getenv("CRTEST_EXPECT");
  return e != NULL && strcmp(e, "corona") == 0;
}

/* Returns 1 when p (asked for with size n) is corona's and corona says it
 * holds at least n bytes; otherwise prints why to stderr and returns 0.
 * Only meaningful when rp_expect_corona(). */
static inline int rp_is_corona(const char *prog, const char *what, const void *p, size_t n) {
  rp_usable_fn usable = rp_corona_usable();
  if (usable == NULL) {
    fprintf(stderr, "%s: corona_usable_size not found: corona is not in this process\n", prog);
    return 0;
  }
  if (p == NULL) {
    fprintf(stderr, "%s: %s returned NULL\n", prog, what);
    return 0;
  }
  size_t u = usable((void *)p);
  if (u == 0) {
    fprintf(stderr, "%s: %s (%p) was not allocated by corona\n", prog, what, p);
    return 0;
  }
  if (u < n) {
    fprintf(stderr, "%s: %s (%p): corona says %zu usable bytes, %zu were asked for\n", prog, what, p, u, n);
    return 0;
  }
  return 1;
}

#endif /* CORONA_REALPROG_H */
