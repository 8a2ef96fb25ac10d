#!/usr/bin/env bash
# cmake/wine-run.sh — the Windows tests' emulator (CMAKE_CROSSCOMPILING_EMULATOR
# of cmake/mingw-w64-x86_64.cmake):  wine-run.sh WINE PROGRAM.exe [ARGS...]
# runs the program under the Wine loader WINE and exits with its status.
#
# Why a script and not the loader itself: once in a few hundred starts
# (seen in CI, not reproduced here) the loader exits non-zero within
# 0.02 s and prints nothing (WINEDEBUG=-all hides Wine's own errors): too
# soon for any program to have run, since a start on a warm wine server
# alone takes 0.12 s here.  Such a start is retried, at most twice, with a
# line on stderr that says so.  Any exit after that time is the program's
# and passes through unchanged, so a failing test still fails.
set -u
wine="$1"
shift
too_soon_ns=60000000 # 0.06 s
for try in 1 2 3; do
    t0=$(date +%s%N)
    "$wine" "$@"
    rc=$?
    elapsed=$(($(date +%s%N) - t0))
    if ((rc == 0 || elapsed >= too_soon_ns || try == 3)); then
        exit "$rc"
    fi
    printf 'wine-run: %s exited %d after %d ms, before any program could run; starting it again\n' \
        "$wine" "$rc" $((elapsed / 1000000)) >&2
    sleep 1
done
