// override_new.cpp (layer: api) — every C++ operator new and delete, on corona.
//
// Built without exceptions and linked without libstdc++: a dependency on it
// cost every C program that preloads corona 1.3 MB of resident memory
// (libstdc++, libm and libgcc_s mapped and relocated) for nothing.  A
// failed new must still call the new-handler and throw std::bad_alloc (or
// return null, for the nothrow forms); that is the C++ runtime's own
// operator's job, so a failure is handed to the next definition of the same
// operator -- the runtime's, which calls the handler, retries through
// malloc (ours) and throws.  A program that calls operator new has that
// runtime loaded; the lookup is done once, at the first failure.
// delete goes through free, which also takes pointers that came from the C
// library before corona did.
#include <cstddef>
#include <cstdlib>
#include <new>

#include "corona.h"

#define CR_EXPORT __attribute__((visibility("default")))

// From internal/os.h and internal/report.h (C headers, not C++-clean).
extern "C" void *cr_os_next_symbol(const char *name);
extern "C" [[noreturn]] void cr_fatal(const char *what, const void *addr);

namespace {

// The runtime's operators, by mangled name (Itanium C++ ABI, 64-bit size_t).
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
const char *const mangled[KINDS] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
};

// Written racily but always with the same value (a symbol address).
void *next_op[KINDS];

void *next(int kind) {
  void *f = __atomic_load_n(&next_op[kind], __ATOMIC_RELAXED);
  if (f == nullptr) {
    f = cr_os_next_symbol(mangled[kind]);
    __atomic_store_n(&next_op[kind], f, __ATOMIC_RELAXED);
  }
  return f;
}

[[noreturn]] void no_runtime(std::size_t size) {
  cr_fatal("operator new: out of memory, and no C++ runtime to report it (size as address)",
           reinterpret_cast<const void *>(size));
}

__attribute__((noinline)) void *failed(int kind, std::size_t size) {
  void *f = next(kind);
  if (f == nullptr) no_runtime(size);
  return reinterpret_cast<void *(*)(std::size_t)>(f)(size);
}

__attribute__((noinline)) void *failed_nothrow(int kind, std::size_t size, const std::nothrow_t &nt) {
  void *f = next(kind);
  if (f == nullptr) return nullptr; // no handler to call: nothrow means null
  return reinterpret_cast<void *(*)(std::size_t, const std::nothrow_t &)>(f)(size, nt);
}

__attribute__((noinline)) void *failed_aligned(int kind, std::size_t size, std::align_val_t a) {
  void *f = next(kind);
  if (f == nullptr) no_runtime(size);
  return reinterpret_cast<void *(*)(std::size_t, std::align_val_t)>(f)(size, a);
}

__attribute__((noinline)) void *failed_aligned_nothrow(int kind, std::size_t size, std::align_val_t a,
                                                      const std::nothrow_t &nt) {
  void *f = next(kind);
  if (f == nullptr) return nullptr;
  return reinterpret_cast<void *(*)(std::size_t, std::align_val_t, const std::nothrow_t &)>(f)(size, a, nt);
}

inline void *plain(int kind, std::size_t n) {
  void *p = corona_malloc(n);
  return p != nullptr ? p : failed(kind, n);
}

inline void *aligned(int kind, std::size_t n, std::align_val_t a) {
  void *p = corona_aligned_malloc(n, std::size_t(a));
  return p != nullptr ? p : failed_aligned(kind, n, a);
}

}  // namespace

CR_EXPORT void *operator new(std::size_t n) { return plain(NEW, n); }
CR_EXPORT void *operator new[](std::size_t n) { return plain(NEW_ARRAY, n); }
CR_EXPORT void *operator new(std::size_t n, const std::nothrow_t &nt) noexcept {
  void *p = corona_malloc(n);
  return p != nullptr ? p : failed_nothrow(NEW_NOTHROW, n, nt);
}
CR_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &nt) noexcept {
  void *p = corona_malloc(n);
  return p != nullptr ? p : failed_nothrow(NEW_ARRAY_NOTHROW, n, nt);
}
CR_EXPORT void *operator new(std::size_t n, std::align_val_t a) { return aligned(NEW_ALIGNED, n, a); }
CR_EXPORT void *operator new[](std::size_t n, std::align_val_t a) { return aligned(NEW_ARRAY_ALIGNED, n, a); }
CR_EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept {
  void *p = corona_aligned_malloc(n, std::size_t(a));
  return p != nullptr ? p : failed_aligned_nothrow(NEW_ALIGNED_NOTHROW, n, a, nt);
}
CR_EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept {
  void *p = corona_aligned_malloc(n, std::size_t(a));
  return p != nullptr ? p : failed_aligned_nothrow(NEW_ARRAY_ALIGNED_NOTHROW, n, a, nt);
}

CR_EXPORT void operator delete(void *p) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p) noexcept { free(p); }
CR_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }
CR_EXPORT void operator delete(void *p, std::size_t) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p, std::size_t) noexcept { free(p); }
CR_EXPORT void operator delete(void *p, std::align_val_t) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { free(p); }
CR_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { free(p); }
CR_EXPORT void operator delete(void *p, std::size_t, std::align_val_t) noexcept { free(p); }
CR_EXPORT void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { free(p); }
