#!/usr/bin/env bash
# test_profile.sh — heap profiles read back by google-pprof (Debian's
# google-perftools; scripts/deps installs it), against known answers:
#  1. test_profile's accuracy workload (three functions allocating 60/30/10 %
#     of 500 MB, 16 B .. 1 MiB, fb leaking a fifth of its objects) at a
#     16 KiB rate: `google-pprof --text` gives each function's in-use and
#     allocated bytes within 15 % of what the program counted; at exit,
#     PROFILE_LEAKS=1 names fb first.
#  2. python3 under LD_PRELOAD (PYTHONMALLOC=malloc) building a dict of a
#     million strings, profiled from the environment: the profile's in-use
#     total within 15 % of corona_stats' memory in use, read at the same
#     moment through ctypes.
# Exit 77 (skip) without google-pprof or python3.
# Usage: test_profile.sh TEST_PROFILE LIBCORONA_SO
set -euo pipefail
prog=$1 lib=$(readlink -f "$2")
# Debian's python3 (a python3 found first on PATH may be a wrapper script).
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3 || true)
if ! command -v google-pprof >/dev/null || [[ -z $python ]]; then
  echo "SKIP: google-pprof or python3 is not installed (scripts/deps installs google-perftools and python3)"
  exit 77
fi
python=$(readlink -f "$python")
dir=$(mktemp -d /tmp/corona-pprof.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0

# within NAME MEASURED EXPECTED: |measured / expected - 1| <= 15 %
within() {
  if awk -v m="$2" -v e="$3" 'BEGIN { r = m / e; exit !(r >= 0.85 && r <= 1.15) }'; then
    awk -v n="$1" -v m="$2" -v e="$3" 'BEGIN { printf "  ok   %-22s %12d B, expected %12d B (%+.1f %%)\n", n, m, e, (m / e - 1) * 100 }'
  else
    awk -v n="$1" -v m="$2" -v e="$3" 'BEGIN { printf "  FAIL %-22s %12d B, expected %12d B (%+.1f %%)\n", n, m, e, (m / e - 1) * 100 }'
    fail=1
  fi
}

# The flat bytes pprof gives function $2 in its text report $1.
flat() { awk -v f="$2" '$NF == f { print $1; found = 1 } END { if (!found) print 0 }' "$1"; }

echo "1. three functions, rate 16 KiB"
CORONA_PROFILE_RATE=16K CORONA_PROFILE_LEAKS=1 CORONA_PROFILE="$dir/iv" CORONA_PROFILE_INTERVAL=100M \
  "$prog" workload "$dir/w.heap" >"$dir/expect" 2>"$dir/leaks"
google-pprof --text --show_bytes --inuse_space "$prog" "$dir/w.heap" >"$dir/inuse" 2>/dev/null
google-pprof --text --show_bytes --alloc_space "$prog" "$dir/w.heap" >"$dir/alloc" 2>/dev/null
while read -r _ fn live allocated; do
  if [[ $live -gt 0 ]]; then
    within "$fn in use" "$(flat "$dir/inuse" "$fn")" "$live"
  elif [[ $(flat "$dir/inuse" "$fn") -ne 0 ]]; then
    echo "  FAIL $fn holds nothing, pprof says $(flat "$dir/inuse" "$fn") B in use"
    fail=1
  fi
  within "$fn allocated" "$(flat "$dir/alloc" "$fn")" "$allocated"
done <"$dir/expect"
first=$(sed -n 's/^corona: ~[0-9]* bytes at \([^ ]*\).*/\1/p' "$dir/leaks" | head -1)
if [[ $first == fb ]]; then
  echo "  ok   the leak report names fb first: $(sed -n 2p "$dir/leaks")"
else
  echo "  FAIL the leak report names '$first' first, not fb:"
  sed 's/^/    /' "$dir/leaks"
  fail=1
fi

# PROFILE_INTERVAL=100M over about 570 MB allocated: a profile every 100 MB
# (numbered from 0), each one read by pprof, and the final one at exit.
n=$(ls "$dir"/iv.*.[0-9]*.heap 2>/dev/null | wc -l)
last=$(ls "$dir"/iv.*.[0-9]*.heap 2>/dev/null | sort -t. -k3 -n | tail -1)
total=$(google-pprof --text --show_bytes --alloc_space "$prog" "$last" 2>/dev/null | sed -n 's/^Total: \([0-9]*\) B$/\1/p')
if [[ $n -ge 4 && $n -le 7 && ${total:-0} -gt 300000000 ]] && ls "$dir"/iv.*.final.heap >/dev/null 2>&1; then
  echo "  ok   PROFILE_INTERVAL=100M: $n profiles, the last with $total B allocated, and the final one"
else
  echo "  FAIL PROFILE_INTERVAL=100M: $n profiles (want 4..7), the last ($last) with ${total:-no} B allocated"
  ls "$dir" | sed 's/^/    /'
  fail=1
fi

echo "2. python3 under LD_PRELOAD, profiled from the environment"
# corona_stats: 15 uint64_t before the bins; memory_in_use is the 15th
# (include/corona.h), memory_mapped the 14th.
PYTHONMALLOC=malloc CORONA_PROFILE="$dir/py" CORONA_PROFILE_RATE=64K LD_PRELOAD="$lib" "$python" - "$dir/py.heap" \
  >"$dir/py.out" <<'EOF'
import ctypes, sys
corona = ctypes.CDLL(None)
d = {}
for i in range(1_000_000):
    d[i] = "value %d" % i * 3
stats = (ctypes.c_uint64 * 1024)()
if corona.corona_profile_dump(sys.argv[1].encode()) != 0 or corona.corona_stats_get(stats) != 0:
    sys.exit("dump or stats failed")
assert stats[13] >= stats[14] > 0, "corona_stats layout"
print(stats[14], len(d))
EOF
read -r in_use entries <"$dir/py.out"
total=$(google-pprof --text --show_bytes --inuse_space "$python" "$dir/py.heap" 2>/dev/null | sed -n 's/^Total: \([0-9]*\) B$/\1/p')
within "python3 in use" "${total:-0}" "$in_use"
if ! ls "$dir"/py.*.final.heap >/dev/null 2>&1; then
  echo "  FAIL no profile at exit (CORONA_PROFILE=$dir/py)"
  fail=1
fi
[[ $entries == 1000000 ]] || { echo "  FAIL python3 built $entries entries"; fail=1; }
exit $fail
