#!/bin/sh
# test_stats_off.sh CC SRCDIR — the library still compiles, warning-free,
# with the statistics compiled out (-DCORONA_STATS=OFF): every source of
# src/ but the Windows one, syntax only, so that the build option nobody
# builds day to day cannot rot (a heap-profiler change once used a
# statistics-only helper outside CR_STAT).
set -eu
cc=$1 src=$2
n=0
for f in "$src"/src/*.c; do
  case "$f" in *os_windows.c) continue ;; esac
  "$cc" -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DCORONA_STATS=0 -DCORONA_DEBUG_DEFAULT=0 \
    -I"$src/include" -I"$src/src" -fsyntax-only "$f" || { echo "stats_off: $f does not compile with CORONA_STATS=0" >&2; exit 1; }
  n=$((n + 1))
done
echo "stats_off: $n sources compile with CORONA_STATS=0"
