#!/usr/bin/env bash
# test_exports.sh — the shared library as a distribution ships it: its
# SONAME is libcorona.so.MAJOR with MAJOR from corona.h, and it exports
# nothing but the public API: corona_* functions, the C library's
# allocation names (malloc ... malloc_usable_size, glibc's __libc_* and
# introspection calls) and C++ operator new/delete.  An internal cr_ symbol
# or anything else in the dynamic symbol table is a leak and fails the test.
# And it needs no library but the C library's (libc, libpthread, libdl and
# the dynamic loader; a sanitizer build's runtime too): no libstdc++, no libgcc_s (the heap profiler's
# unwinder is linked in, -static-libgcc), which every process that
# preloads corona would otherwise load (libgcc_s: about 170 KB of RSS).
# Usage: test_exports.sh LIBCORONA_SO CORONA_H
set -euo pipefail
lib=$1 header=$2
fail=0
major=$(sed -n 's/^#define CORONA_VERSION_MAJOR \([0-9][0-9]*\).*/\1/p' "$header")
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [[ "$soname" != "libcorona.so.$major" ]]; then
  echo "FAIL: SONAME is '$soname', expected libcorona.so.$major (corona.h's CORONA_VERSION_MAJOR)"
  fail=1
fi
allowed='^(corona_[a-z0-9_]+|malloc|calloc|realloc|reallocarray|free|cfree|free_sized|free_aligned_sized|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|__libc_(malloc|calloc|realloc|free|memalign|valloc|pvalloc)|mallinfo|mallinfo2|malloc_trim|malloc_stats|malloc_info|mallopt|_Zn[wa]m.*|_Zd[la]Pv.*)$'
exported=$(nm -D --defined-only "$lib" | awk '{print $3}')
n=$(wc -w <<<"$exported")
leaks=$(grep -Ev "$allowed" <<<"$exported" || true)
if [[ -n "$leaks" ]]; then
  echo "FAIL: symbols exported that are not public API:"
  sed 's/^/  /' <<<"$leaks"
  fail=1
fi
if ! grep -qx corona_version <<<"$exported" || ! grep -qx corona_malloc <<<"$exported"; then
  echo "FAIL: corona_malloc or corona_version is not exported"
  fail=1
fi
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\].*/\1/p')
extra=$(grep -Ev '^(libc\.so\.[0-9]+|libpthread\.so\.[0-9]+|libdl\.so\.[0-9]+|ld-linux.*\.so\.[0-9]+|lib(a|ub|t)san\.so\.[0-9]+)$' <<<"$needed" || true)
if [[ -n "$extra" ]]; then
  echo "FAIL: the library needs more than the C library:"
  sed 's/^/  /' <<<"$extra"
  fail=1
fi
if ((fail == 0)); then
  echo "test_exports: OK: SONAME $soname, $n symbols exported, all public; needs only" $needed
fi
exit $fail
