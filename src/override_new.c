/* override_new.c (layer: api) — every C++ operator new and delete, on corona.
 *
 * Written in C, under the operators' mangled names (the Itanium C++ ABI that
 * gcc and clang follow on Linux: `new (size_t)` is _Znwm, a reference is
 * passed as a pointer, std::align_val_t as its size_t), so that the library
 * is C alone: a C++ object in libcorona.a made every C program linked with
 * it a C++ link (CMake picks the C++ driver and adds libstdc++ and libm;
 * under clang, which does not link --as-needed, both were then loaded in
 * every such process, and libstdc++'s own calls of operator new[] bound to
 * its own definition instead of corona's: test realprog_fork_threads).  A
 * dependency on libstdc++ also cost every C program that preloads corona
 * 1.3 MB of resident memory.
 *
 * A failed new must still call the new-handler and throw std::bad_alloc (or
 * return null, for the nothrow forms): that is the C++ runtime's own
 * operator's job, so a failure is handed to the next definition of the same
 * operator -- the runtime's, which calls the handler, retries through
 * malloc (ours) and throws.  A program that calls operator new has that
 * runtime loaded; the lookup is done once, at the first failure.  The
 * exception unwinds through this file's frames: it is compiled with
 * -fexceptions, which gives them unwind tables (CMakeLists.txt).
 * delete goes through free, which also takes pointers that came from the C
 * library before corona did. */
#include <stddef.h>
#include <stdlib.h>

#include "corona.h"
#include "internal/os.h"
#include "internal/report.h"

/* The mangled names below spell size_t as unsigned long ('m'). */
_Static_assert(_Generic((size_t)0, unsigned long: 1, default: 0), "size_t is not unsigned long: the mangled names differ");

#define CR_EXPORT __attribute__((visibility("default")))

/* The runtime's operators, by mangled name. */
enum {
  NEW,
  NEW_ARRAY,
  NEW_NOTHROW,
  NEW_ARRAY_NOTHROW,
  NEW_ALIGNED,
  NEW_ARRAY_ALIGNED,
  NEW_ALIGNED_NOTHROW,
  NEW_ARRAY_ALIGNED_NOTHROW,
  KINDS
};
static const char *const mangled[KINDS] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
};

typedef void *new_fn(size_t);
typedef void *new_nothrow_fn(size_t, const void *);
typedef void *new_aligned_fn(size_t, size_t);
typedef void *new_aligned_nothrow_fn(size_t, size_t, const void *);

/* Written racily but always with the same value (a symbol address). */
static void *next_op[KINDS];

static void *next(int kind) {
  void *f = __atomic_load_n(&next_op[kind], __ATOMIC_RELAXED);
  if (f == NULL) {
    f = cr_os_next_symbol(mangled[kind]);
    __atomic_store_n(&next_op[kind], f, __ATOMIC_RELAXED);
  }
  return f;
}

static _Noreturn void no_runtime(size_t size) {
  cr_fatal("operator new: out of memory, and no C++ runtime to report it (size as address)", (const void *)size);
}

__attribute__((noinline)) static void *failed(int kind, size_t size) {
  void *f = next(kind);
  if (f == NULL) no_runtime(size);
  return ((new_fn *)f)(size);
}

__attribute__((noinline)) static void *failed_nothrow(int kind, size_t size, const void *nt) {
  void *f = next(kind);
  if (f == NULL) return NULL; /* no handler to call: nothrow means null */
  return ((new_nothrow_fn *)f)(size, nt);
}

__attribute__((noinline)) static void *failed_aligned(int kind, size_t size, size_t a) {
  void *f = next(kind);
  if (f == NULL) no_runtime(size);
  return ((new_aligned_fn *)f)(size, a);
}

__attribute__((noinline)) static void *failed_aligned_nothrow(int kind, size_t size, size_t a, const void *nt) {
  void *f = next(kind);
  if (f == NULL) return NULL;
  return ((new_aligned_nothrow_fn *)f)(size, a, nt);
}

static inline void *plain(int kind, size_t n) {
  void *p = corona_malloc(n);
  return p != NULL ? p : failed(kind, n);
}

static inline void *plain_nothrow(int kind, size_t n, const void *nt) {
  void *p = corona_malloc(n);
  return p != NULL ? p : failed_nothrow(kind, n, nt);
}

static inline void *aligned(int kind, size_t n, size_t a) {
  void *p = corona_aligned_malloc(n, a);
  return p != NULL ? p : failed_aligned(kind, n, a);
}

static inline void *aligned_nothrow(int kind, size_t n, size_t a, const void *nt) {
  void *p = corona_aligned_malloc(n, a);
  return p != NULL ? p : failed_aligned_nothrow(kind, n, a, nt);
}

/* The operators, each beside its C++ declaration.  Declared first: they are
 * defined for other objects to call, never called here. */
#define CR_NEW(name, params) CR_EXPORT void *name params; CR_EXPORT void *name params
#define CR_DELETE(name, params) CR_EXPORT void name params; CR_EXPORT void name params

/* operator new(size_t), new[](size_t) */
CR_NEW(_Znwm, (size_t n)) { return plain(NEW, n); }
CR_NEW(_Znam, (size_t n)) { return plain(NEW_ARRAY, n); }
/* operator new(size_t, const nothrow_t &), and new[] */
CR_NEW(_ZnwmRKSt9nothrow_t, (size_t n, const void *nt)) { return plain_nothrow(NEW_NOTHROW, n, nt); }
CR_NEW(_ZnamRKSt9nothrow_t, (size_t n, const void *nt)) { return plain_nothrow(NEW_ARRAY_NOTHROW, n, nt); }
/* operator new(size_t, align_val_t), and new[] */
CR_NEW(_ZnwmSt11align_val_t, (size_t n, size_t a)) { return aligned(NEW_ALIGNED, n, a); }
CR_NEW(_ZnamSt11align_val_t, (size_t n, size_t a)) { return aligned(NEW_ARRAY_ALIGNED, n, a); }
/* operator new(size_t, align_val_t, const nothrow_t &), and new[] */
CR_NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t a, const void *nt)) {
  return aligned_nothrow(NEW_ALIGNED_NOTHROW, n, a, nt);
}
CR_NEW(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t a, const void *nt)) {
  return aligned_nothrow(NEW_ARRAY_ALIGNED_NOTHROW, n, a, nt);
}

/* operator delete(void *), delete[](void *) */
CR_DELETE(_ZdlPv, (void *p)) { free(p); }
CR_DELETE(_ZdaPv, (void *p)) { free(p); }
/* (void *, const nothrow_t &) */
CR_DELETE(_ZdlPvRKSt9nothrow_t, (void *p, const void *nt)) { (void)nt; free(p); }
CR_DELETE(_ZdaPvRKSt9nothrow_t, (void *p, const void *nt)) { (void)nt; free(p); }
/* (void *, size_t): sized */
CR_DELETE(_ZdlPvm, (void *p, size_t n)) { (void)n; free(p); }
CR_DELETE(_ZdaPvm, (void *p, size_t n)) { (void)n; free(p); }
/* (void *, align_val_t) */
CR_DELETE(_ZdlPvSt11align_val_t, (void *p, size_t a)) { (void)a; free(p); }
CR_DELETE(_ZdaPvSt11align_val_t, (void *p, size_t a)) { (void)a; free(p); }
/* (void *, align_val_t, const nothrow_t &) */
CR_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t a, const void *nt)) { (void)a, (void)nt; free(p); }
CR_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t a, const void *nt)) { (void)a, (void)nt; free(p); }
/* (void *, size_t, align_val_t): sized and aligned */
CR_DELETE(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t a)) { (void)n, (void)a; free(p); }
CR_DELETE(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t a)) { (void)n, (void)a; free(p); }
