/* vgprog.h — what the Valgrind test programs (test/valgrind/vg_*.c) share:
 * the allocation calls they make.  Each program is built twice:
 *   - linked with libcorona.a, calling corona_malloc & co. (VG_API_CORONA);
 *   - plain (VG_API_PLAIN): malloc & co., not linked with corona; the driver
 *     runs it with LD_PRELOAD=libcorona.so.
 * Either way every object is corona's, and memcheck learns about it only
 * through corona's client requests (Valgrind's own malloc replacement
 * covers the C library, not libcorona).  The helpers are noinline and
 * external, so they appear by name in memcheck's stack traces, which the
 * driver (run.sh) checks. */
#ifndef CORONA_VGPROG_H
#define CORONA_VGPROG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(VG_API_CORONA)
#include "corona.h"
#define VG_MALLOC corona_malloc
#define VG_CALLOC corona_calloc
#define VG_REALLOC corona_realloc
#define VG_FREE corona_free
#define VG_ALIGNED(a, n) corona_aligned_malloc((n), (a))
#define VG_MEMALIGN(out, a, n) corona_posix_memalign((out), (a), (n))
#define VG_USABLE corona_usable_size
#define VG_API_NAME "corona_*"
#elif defined(VG_API_PLAIN)
#include <malloc.h> /* malloc_usable_size */
#define VG_MALLOC malloc
#define VG_CALLOC calloc
#define VG_REALLOC realloc
#define VG_FREE free
#define VG_ALIGNED(a, n) aligned_alloc((a), (n))
#define VG_MEMALIGN(out, a, n) posix_memalign((out), (a), (n))
#define VG_USABLE malloc_usable_size
#define VG_API_NAME "malloc"
#else
#error "define VG_API_CORONA or VG_API_PLAIN"
#endif

/* noclone keeps gcc from making a specialised copy with another name, which
 * valgrind's stack would show; clang never clones and has no such attribute. */
#if defined(__clang__)
#define VG_NOINLINE __attribute__((noinline))
#else
#define VG_NOINLINE __attribute__((noinline, noclone))
#endif

/* Stops the compiler from knowing what a pointer points at, or from
 * dropping a read or write of it. */
#define VG_OPAQUE(p) __asm__ volatile("" : "+r"(p) : : "memory")

#endif /* CORONA_VGPROG_H */
