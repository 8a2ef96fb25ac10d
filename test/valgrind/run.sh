#!/usr/bin/env bash
# test/valgrind/run.sh — runs one of the Valgrind test programs under
# memcheck and checks that memcheck reported exactly what it should, through
# corona's client requests (ctest -L valgrind; see test/stats.cmake).
#
# Usage: run.sh KIND MODE PROGRAM LIBCORONA [VALGRIND [OVERRIDE]]
#   KIND      leaks   vg_leaky: the six leaked objects are "definitely lost"
#                     with their sizes (100, 5000, 200000 through the API;
#                     300, 7000, 300000 through malloc), each allocated in
#                     leak_api() or leak_malloc(); nothing else is lost
#             errors  vg_faulty: "Invalid read" of a freed 100 B and 200000 B
#                     object ("free'd"), "Invalid write of size 1" just past
#                     a 100 B and a 5000 B object, "Conditional jump or move
#                     depends on uninitialised value(s)" and "Invalid free()"
#                     in their functions; exactly these six errors
#             clean   vg_clean or vg_aligned (any correct program that ends
#                     by printing "N allocations, 0 bad contents"): exactly
#                     0 errors, no leak, and memcheck saw at least as many
#                     blocks as the program allocated
#   MODE      static  PROGRAM is linked with libcorona.a (corona_* API)
#             preload PROGRAM is plain (malloc & co.), run with
#                     LD_PRELOAD=LIBCORONA
#             default static, with memcheck's default options: its own
#                     malloc replacement then takes the standard names
#                     (leaks only)
#   In static and preload modes memcheck runs with
#   --soname-synonyms=somalloc=nouserintercepts, which stops it from
#   replacing the malloc that corona exports (by default memcheck replaces
#   any exported malloc, corona's included), so corona serves every object;
#   the checks then demand that each reported block was allocated (and
#   freed) by corona's cr_debug_alloc (cr_debug_free) in PROGRAM or
#   LIBCORONA, never by memcheck's vg_replace_malloc.
#   OVERRIDE  ON (default) or OFF: whether libcorona.a exports malloc; OFF
#             makes the static program's malloc the C library's.
# Exit status 0 pass, 1 fail, 77 skip (no valgrind).  CRTEST_KEEP_TMP=1
# keeps the memcheck log.
set -euo pipefail

name="valgrind_$(basename "${1:-?}")_${2:-?}_$(basename "${3:-?}")"
fail() {
    echo "FAIL [$name]: $*" >&2
    if [[ -n ${log:-} && -f $log ]]; then
        echo "---- memcheck log ($log) ----" >&2
        cat "$log" >&2
        echo "---- program output ----" >&2
        cat "$out" >&2 || true
    fi
    exit 1
}

(($# >= 4)) || { echo "usage: $0 KIND MODE PROGRAM LIBCORONA [VALGRIND [OVERRIDE]]" >&2; exit 2; }
kind=$1 mode=$2 prog=$3 lib=$4 valgrind=${5:-valgrind} override=${6:-ON}
case $kind in leaks | errors | clean) ;; *) fail "unknown KIND '$kind'" ;; esac
case $mode in static | preload | default) ;; *) fail "unknown MODE '$mode'" ;; esac
command -v "$valgrind" >/dev/null 2>&1 || { echo "SKIP [$name]: valgrind not found"; exit 77; }
[[ -x $prog ]] || fail "program $prog not built"
[[ $mode != preload || -f $lib ]] || fail "library $lib not built"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/corona-vg.XXXXXX")"
cleanup() {
    if [[ ${CRTEST_KEEP_TMP:-0} == 1 ]]; then echo "[$name] kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
log=$tmp/memcheck.log
out=$tmp/program.out

# ---- run --------------------------------------------------------------------
exitcode=99
vg=("$valgrind" --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=$exitcode
    --num-callers=20 --log-file="$log")
[[ $mode == default ]] || vg+=(--soname-synonyms=somalloc=nouserintercepts)
env_run=(env -u MALLOC_DEBUG -u CORONA_DEBUG -u MALLOC_STATS -u CORONA_STATS)
[[ $mode == preload ]] && env_run+=(LD_PRELOAD="$lib")
start=$(date +%s.%N)
set +e
"${env_run[@]}" "${vg[@]}" "$prog" >"$out" 2>&1
status=$?
set -e
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
[[ -s $log ]] || fail "memcheck wrote no log (status $status)"

# The log without the "==PID== " prefixes: an empty line separates reports.
plain=$tmp/memcheck.txt
sed -E 's/^==[0-9]+== ?//' "$log" >"$plain"
# memcheck's own count of errors (reports, leaks included).
errors=$(sed -n 's/^ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$plain" | tr -d ,)
[[ -n $errors ]] || fail "no ERROR SUMMARY line"

# records PATTERN...: how many reports (paragraphs) match every ERE.
records() {
    # The patterns travel in the environment: awk -v would eat their backslashes.
    VG_PATS="$(printf '%s\n' "$@")" awk -v RS= '
        BEGIN { n = split(ENVIRON["VG_PATS"], p, "\n") }
        { ok = 1; for (i = 1; i <= n; i++) if (p[i] != "" && $0 !~ p[i]) { ok = 0; break }; if (ok) c++ }
        END { print c + 0 }' "$plain"
}
# expect_records N WHAT PATTERN...: exactly N reports match.
expect_records() {
    local want=$1 what=$2
    shift 2
    local got
    got=$(records "$@")
    [[ $got == "$want" ]] || fail "$what: $got matching reports, expected $want (patterns: $*)"
}
need_line() { # ERE WHAT
    grep -Eq -- "$1" "$plain" || fail "$2: no line matching '$1'"
}
commas() { # 200000 -> 200,000 (memcheck's spelling)
    echo "$1" | sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta'
}

# Who must appear as allocator / freer of corona's blocks.
if [[ $mode == preload ]]; then
    where="libcorona\\.so[.0-9]*" # the SONAME's file: libcorona.so.M.m.p
else
    where="$(basename "$prog" | sed 's/[.[\*^$]/\\&/g')"
fi
alloc_frame="at 0x[0-9A-F]+: cr_debug_alloc \\(in [^)]*$where\\)"
free_frame="at 0x[0-9A-F]+: cr_debug_free \\(in [^)]*$where\\)"
replaced="vg_replace_malloc|vgpreload_memcheck"
# The standard names are corona's unless memcheck replaced them (default
# mode) or libcorona.a does not export them (OVERRIDE=OFF).
malloc_is_corona=1
[[ $mode == default || ($mode == static && $override != ON && $override != 1) ]] && malloc_is_corona=0

# ---- checks -----------------------------------------------------------------
case $kind in
leaks)
    [[ $status == "$exitcode" ]] || fail "exit status $status, expected $exitcode (memcheck found errors)"
    grep -q "leaked 100 5000 200000 (api), 300 7000 300000 (malloc)" "$out" || fail "the program did not finish"
    for size in 100 5000 200000 300 7000 300000; do
        fn=leak_api
        [[ $size == 100 || $size == 5000 || $size == 200000 ]] || fn=leak_malloc
        head="^$(commas "$size") bytes in 1 blocks are definitely lost in loss record"
        expect_records 1 "leak of $size B" "$head" "by 0x[0-9A-F]+: $fn \\(([^)]*/)?vg_leaky\\.c:"
        if [[ $fn == leak_api || $malloc_is_corona == 1 ]]; then
            expect_records 1 "leak of $size B allocated by corona" "$head" "$alloc_frame"
            expect_records 0 "leak of $size B allocated by memcheck's malloc" "$head" "$replaced"
        fi
    done
    need_line "^ *definitely lost: 512,400 bytes in 6 blocks" "leak summary"
    need_line "^ *indirectly lost: 0 bytes in 0 blocks" "leak summary"
    need_line "^ *possibly lost: 0 bytes in 0 blocks" "leak summary"
    need_line "^ERROR SUMMARY: 6 errors from 6 contexts" "error summary"
    ;;
errors)
    [[ $status == "$exitcode" ]] || fail "exit status $status, expected $exitcode (memcheck found errors)"
    grep -q "vg_faulty .*: done" "$out" || fail "the program did not finish"
    for s in "50 bytes inside a block of size 100 free'd" "100,000 bytes inside a block of size 200,000 free'd"; do
        expect_records 1 "read after free ($s)" "^Invalid read of size 1" "at 0x[0-9A-F]+: read_after_free \\(" \
            "Address 0x[0-9a-f]+ is $s" "$free_frame" "Block was alloc'd at" "$alloc_frame"
    done
    for n in 100 5,000; do
        expect_records 1 "write past the end of $n B" "^Invalid write of size 1" \
            "at 0x[0-9A-F]+: write_past_end \\(" "Address 0x[0-9a-f]+ is 0 bytes after a block of size $n alloc'd" \
            "$alloc_frame"
    done
    expect_records 1 "branch on uninitialised memory" \
        "^Conditional jump or move depends on uninitialised value\\(s\\)" "at 0x[0-9A-F]+: branch_on_uninit \\("
    expect_records 1 "double free" "^Invalid free\\(\\)" "by 0x[0-9A-F]+: free_twice \\(" \
        "Address 0x[0-9a-f]+ is 0 bytes inside a block of size 48 free'd" "$free_frame"
    expect_records 0 "a report about the control (defined memory)" "control \\(vg_faulty"
    expect_records 0 "a block of memcheck's own malloc" "$replaced"
    need_line "^ERROR SUMMARY: 6 errors from 6 contexts" "error summary (exactly the six errors)"
    ;;
clean)
    ((errors == 0)) || fail "memcheck reported $errors errors in a correct program, expected 0"
    [[ $status == 0 ]] || fail "exit status $status, expected 0 (no error)"
    made=$(sed -n 's/^vg_[a-z]* .*: \([0-9]*\) allocations, 0 bad contents$/\1/p' "$out")
    [[ -n $made ]] || fail "the program did not finish cleanly: $(cat "$out")"
    need_line "^ERROR SUMMARY: 0 errors from 0 contexts" "error summary"
    if ! grep -Eq "^All heap blocks were freed -- no leaks are possible" "$plain"; then
        need_line "^ *definitely lost: 0 bytes in 0 blocks" "leak summary"
        need_line "^ *indirectly lost: 0 bytes in 0 blocks" "leak summary"
        need_line "^ *possibly lost: 0 bytes in 0 blocks" "leak summary"
    fi
    seen=$(sed -n 's/^ *total heap usage: \([0-9,]*\) allocs.*/\1/p' "$plain" | tr -d ,)
    [[ -n $seen ]] || fail "no heap usage line"
    ((seen >= made)) || fail "memcheck saw $seen blocks, the program made $made: corona's client requests missing?"
    ;;
esac
echo "PASS [$name]: $kind under memcheck ($mode, $(basename "$prog")) as expected, $errors memcheck errors (${secs} s)"
