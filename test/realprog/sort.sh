#!/usr/bin/env bash
# realprog_sort: coreutils sort orders a generated file of 2 million lines
# (about 50 MB) plain and with corona preloaded, twice each: with a small
# buffer (-S 16M: sorted runs go to temp files and are merged, 2 threads)
# and with a big one (-S 512M: one large buffer in memory).  The sorted
# outputs must be byte-identical, and the preloaded sort's malloc/free must
# bind to corona.
source "$(dirname "$0")/common.sh" "$@"
rp_need sort awk cmp

SORT=$(command -v sort)
export LC_ALL=C
lines=${CRTEST_SORT_LINES:-2000000}
awk -v n="$lines" 'BEGIN { srand(7); for (i = 0; i < n; i++)
    printf "%08x %s %d\n", int(rand() * 4294967296), substr("qwertyuiopasdfghjklzxcvbnm", 1 + i % 26, 1 + (i * 7) % 20), i }' \
    >"$RP_TMP/input.txt"
mkdir "$RP_TMP/t"

timing=""
for buf in 16M 512M; do
    args=(-S "$buf" --parallel=2 -T "$RP_TMP/t" -k2,2 -k1,1r "$RP_TMP/input.txt")
    rp_run "plain-$buf" plain -- "$SORT" "${args[@]}"
    t_plain=$RP_LAST_SECS
    rp_run "corona-$buf" preload -- "$SORT" "${args[@]}"
    t_corona=$RP_LAST_SECS
    rp_same "$RP_TMP/plain-$buf.out" "$RP_TMP/corona-$buf.out" "sorted output (-S $buf)"
    rp_same "$RP_TMP/plain-$buf.err" "$RP_TMP/corona-$buf.err" "sort stderr (-S $buf)"
    n=$(wc -l <"$RP_TMP/corona-$buf.out")
    ((n == lines)) || rp_fail "sort -S $buf printed $n lines, expected $lines"
    "$SORT" -c -k2,2 -k1,1r "$RP_TMP/corona-$buf.out" || rp_fail "sort -S $buf output under corona is not sorted"
    rp_check_served "corona-$buf" "$SORT"
    timing+=" -S $buf: $t_plain s plain, $t_corona s corona;"
    rm -f "$RP_TMP/plain-$buf.out" "$RP_TMP/corona-$buf.out" # 50 MB each
done
echo "[$RP_NAME] OK: $lines lines sorted identically;$timing total $(rp_secs) s"
