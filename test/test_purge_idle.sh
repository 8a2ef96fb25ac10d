#!/bin/sh
# test_purge_idle.sh PROGRAM — strace -f of an idle process: PROGRAM idle
# (test_purge.c) frees memory, waits until the purger has given it back and
# has nothing left to do, then writes "idle begin", sleeps 3 s and writes
# "idle end".  Between the two writes the purger thread must make no system
# call at all: it waits on a futex with no time limit, not on a timer.
# A visible skip (77) where strace is missing or cannot trace here.
prog="$1"
if ! command -v strace >/dev/null 2>&1; then
  echo "SKIP: strace is not installed (scripts/deps installs it)"
  exit 77
fi
if ! strace -f -qq -o /dev/null true 2>/dev/null; then
  echo "SKIP: strace cannot trace here (ptrace not permitted)"
  exit 77
fi
# LeakSanitizer cannot run under ptrace: the leak check is the other
# purge_* entries' (an AddressSanitizer build).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
strace -f -qq -o "$log" "$prog" idle
status=$?
# Lines between the two marker writes, by threads other than the writer's.
report="$(awk '
  /write\(1, "idle begin\\n"/ { main = $1; on = 1; next }
  /write\(1, "idle end\\n"/ { on = 0; done = 1; next }
  on && $1 != main { n++; print "  " $0 }
  END { if (!done) print "MARKERS MISSING"; print n + 0 }' "$log")"
calls="$(printf '%s\n' "$report" | tail -n 1)"
echo "system calls of other threads during 3 s idle: $calls"
printf '%s\n' "$report" | sed '$d' | head -n 20
if printf '%s\n' "$report" | grep -q "MARKERS MISSING"; then
  echo "FAILED: the markers were not found in the strace log"
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "FAILED: $prog idle exited with $status"
  exit 1
fi
if [ "$calls" -ne 0 ]; then
  echo "FAILED: the purger woke up while the process was idle"
  exit 1
fi
echo "test_purge_idle: OK"
