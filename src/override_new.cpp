// override_new.cpp — every C++ operator new and delete, on corona.  In C++
// because a failed new must call the new-handler and throw std::bad_alloc;
// everything else forwards to the C API (delete through free, which also
// takes pointers that came from the C library before corona did).
#include <cstddef>
#include <cstdlib>
#include <new>

#include "corona.h"

#define CR_EXPORT __attribute__((visibility("default")))

namespace {

void *new_or_throw(std::size_t size, std::size_t alignment) {
  for (;;) {
    void *p = alignment ? corona_aligned_malloc(size, alignment) : corona_malloc(size);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void *new_or_null(std::size_t size, std::size_t alignment) noexcept {
  try {
    return new_or_throw(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

CR_EXPORT void *operator new(std::size_t n) { return new_or_throw(n, 0); }
CR_EXPORT void *operator new[](std::size_t n) { return new_or_throw(n, 0); }
CR_EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return new_or_null(n, 0); }
CR_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return new_or_null(n, 0); }
CR_EXPORT void *operator new(std::size_t n, std::align_val_t a) { return new_or_throw(n, std::size_t(a)); }
CR_EXPORT void *operator new[](std::size_t n, std::align_val_t a) { return new_or_throw(n, std::size_t(a)); }
CR_EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return new_or_null(n, std::size_t(a));
}
CR_EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return new_or_null(n, std::size_t(a));
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
