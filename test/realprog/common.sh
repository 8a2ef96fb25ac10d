# test/realprog/common.sh — sourced (not run) by the real-program tests.
#
# Usage in a test script:   source "$(dirname "$0")/common.sh" "$@"
# The first argument of every test is the absolute path of the built
# libcorona.so (CMake passes $<TARGET_FILE:corona>).  Sourcing this file:
#   - sets CRTEST_LIB and RP_NAME (the script's name), makes a temp dir
#     $RP_TMP that is removed on exit (kept with CRTEST_KEEP_TMP=1); a
#     script that defines rp_before_exit gets it called first;
#   - defines the helpers below.  Every failure message starts with
#     "FAIL [name]:" and says what differed; a skip exits 77.
#
# Helpers:
#   rp_need TOOL...                 fail unless each tool is on PATH
#   rp_run TAG MODE [--timeout S] -- CMD...
#       runs CMD with stdout to $RP_TMP/TAG.out and stderr to $RP_TMP/TAG.err;
#       MODE is "plain" (LD_PRELOAD removed) or "preload" (LD_PRELOAD=corona,
#       with LD_DEBUG=bindings written to $RP_TMP/TAG.ld.<pid>, one file per
#       process) or "bindings" (no preload, LD_DEBUG only, for a program
#       linked with corona statically).  A non-zero status or a timeout fails.
#   rp_same A B [WHAT]              fail unless files A and B are byte-identical
#   rp_check_served TAG ARGV0 [SYM...]
#       reads TAG's LD_DEBUG files and fails unless (1) the program ARGV0
#       bound malloc and free (and each extra SYM) to libcorona.so and
#       (2) no object of any process bound an allocation symbol (malloc
#       family, C++ operator new/delete) anywhere but libcorona.so; calls
#       made by libcorona.so itself (its dlsym(RTLD_NEXT) of the C
#       library's functions) are left out, and a binding to a non-PIE
#       program's canonical PLT entry counts as corona's when that program
#       binds the symbol to corona.
#   rp_check_linked TAG ARGV0       the same for a program linked with
#       libcorona.a: the C library's malloc and free calls bind to ARGV0,
#       and no other object binds an allocation symbol elsewhere.
#   rp_secs                         seconds since the script started (2 decimals)

set -euo pipefail

RP_NAME="${RP_NAME:-$(basename "$0" .sh)}"
RP_START_NS=$(date +%s%N)

rp_fail() {
    echo "FAIL [$RP_NAME]: $*" >&2
    exit 1
}

rp_skip() {
    echo "SKIP [$RP_NAME]: $*"
    exit 77
}

rp_secs() {
    local now
    now=$(date +%s%N)
    awk -v a="$RP_START_NS" -v b="$now" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

if (($# < 1)); then
    echo "usage: $0 /path/to/libcorona.so [args...]" >&2
    exit 2
fi
CRTEST_LIB="$1"
shift
case "$CRTEST_LIB" in
/*) ;;
*) CRTEST_LIB="$(pwd)/$CRTEST_LIB" ;;
esac
[[ -f "$CRTEST_LIB" ]] || rp_fail "corona library $CRTEST_LIB does not exist (build it first)"
export CRTEST_LIB

RP_TMP="$(mktemp -d "${TMPDIR:-/tmp}/corona-$RP_NAME.XXXXXX")"
# On exit: a test's own rp_before_exit (if it defines one), then the temp
# dir goes, unless CRTEST_KEEP_TMP=1 keeps it for a post-mortem.
rp_cleanup() {
    if declare -F rp_before_exit >/dev/null; then rp_before_exit || true; fi
    if [[ "${CRTEST_KEEP_TMP:-0}" == 1 ]]; then
        echo "[$RP_NAME] temp dir kept: $RP_TMP" >&2
    else
        rm -rf "$RP_TMP"
    fi
}
trap rp_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

rp_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            rp_fail "'$t' is not installed; scripts/deps installs the packages these tests need"
    done
}

# The last lines of a file, indented, for failure messages.
rp_tail() {
    local f=$1 n=${2:-15}
    [[ -s "$f" ]] || { echo "    (empty)"; return 0; }
    tail -n "$n" "$f" | sed 's/^/    /'
}

rp_run() {
    local tag=$1 mode=$2
    shift 2
    local limit=120
    if [[ "${1:-}" == --timeout ]]; then
        limit=$2
        shift 2
    fi
    [[ "${1:-}" == -- ]] && shift
    local out="$RP_TMP/$tag.out" err="$RP_TMP/$tag.err"
    local envs=(-u LD_PRELOAD -u LD_DEBUG -u LD_DEBUG_OUTPUT)
    case $mode in
    plain) ;;
    preload) envs+=("LD_PRELOAD=$CRTEST_LIB" LD_DEBUG=bindings "LD_DEBUG_OUTPUT=$RP_TMP/$tag.ld") ;;
    bindings) envs+=(LD_DEBUG=bindings "LD_DEBUG_OUTPUT=$RP_TMP/$tag.ld") ;;
    *) rp_fail "rp_run: bad mode $mode" ;;
    esac
    local rc=0 t0 t1
    t0=$(date +%s%N)
    timeout -k 5 "$limit" env "${envs[@]}" "$@" >"$out" 2>"$err" || rc=$?
    t1=$(date +%s%N)
    RP_LAST_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    if ((rc == 124 || rc == 137)); then
        echo "FAIL [$RP_NAME]: '$*' ($mode) did not finish within $limit s (deadlock or hang?); stderr:" >&2
        rp_tail "$err" >&2
        exit 1
    fi
    if ((rc != 0)); then
        local why="exit status $rc"
        ((rc > 128)) && why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        echo "FAIL [$RP_NAME]: '$*' ($mode) failed: $why; stderr:" >&2
        rp_tail "$err" 30 >&2
        echo "  stdout (last lines):" >&2
        rp_tail "$out" 5 >&2
        exit 1
    fi
    return 0
}

rp_same() {
    local a=$1 b=$2 what=${3:-output}
    if ! cmp -s "$a" "$b"; then
        echo "FAIL [$RP_NAME]: $what differs between $(basename "$a") and $(basename "$b")" \
            "($(wc -c <"$a") vs $(wc -c <"$b") bytes); first differences:" >&2
        diff "$a" "$b" | head -n 20 | sed 's/^/    /' >&2 || true
        exit 1
    fi
}

# The allocation symbols whose bindings are checked.
RP_ALLOC_SYMS='malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree|free_sized|free_aligned_sized|_Zn[wa]m[A-Za-z0-9_]*|_Zd[la]Pv[A-Za-z0-9_]*'

# rp_bindings TAG: all binding lines of TAG's processes, as
# "pid<TAB>from<TAB>to<TAB>symbol" (paths without the " [ns]" suffix).
# rp_plain_and_corona WHAT PROGRAM ARGS...: runs the program plain and with
# corona preloaded, requires identical stdout and stderr, and sets t_plain and
# t_corona (seconds).
rp_plain_and_corona() {
    local what=$1
    shift
    rp_run plain plain -- "$@"
    t_plain=$RP_LAST_SECS
    rp_run corona preload -- "$@"
    t_corona=$RP_LAST_SECS
    rp_same "$RP_TMP/plain.out" "$RP_TMP/corona.out" "$what stdout"
    rp_same "$RP_TMP/plain.err" "$RP_TMP/corona.err" "$what stderr"
}

rp_bindings() {
    local tag=$1 f
    for f in "$RP_TMP/$tag".ld.*; do
        [[ -e "$f" ]] || continue
        sed -n -E 's/^ *([0-9]+):[[:space:]]+binding file (.*) \[[0-9]+\] to (.*) \[[0-9]+\]: normal symbol `([^'"'"']+)'"'"'.*/\1\t\2\t\3\t\4/p' "$f"
    done
}

rp_check_served() {
    local tag=$1 argv0=$2
    shift 2
    local syms=(malloc free "$@")
    local files
    files=$(ls "$RP_TMP/$tag".ld.* 2>/dev/null | wc -l)
    ((files > 0)) || rp_fail "no LD_DEBUG output for run '$tag': the preloaded program wrote no binding log"
    local all="$RP_TMP/$tag.bindings"
    rp_bindings "$tag" >"$all"
    local libre='libcorona\.so'
    # (1) The program's own calls.
    local s
    for s in "${syms[@]}"; do
        if ! awk -F'\t' -v p="$argv0" -v s="$s" '$2 == p && $4 == s && $3 ~ /libcorona\.so/ { found = 1 } END { exit !found }' "$all"; then
            echo "FAIL [$RP_NAME]: $argv0 did not bind \`$s' to libcorona.so under LD_PRELOAD=$CRTEST_LIB; its bindings of it:" >&2
            awk -F'\t' -v p="$argv0" -v s="$s" '$2 == p && $4 == s { print "    " $0 }' "$all" | sort -u | head >&2
            echo "    (binding lines for \`malloc' in the log, any object:)" >&2
            awk -F'\t' '$4 == "malloc"' "$all" | sort -u | head -n 5 | sed 's/^/    /' >&2
            exit 1
        fi
    done
    # (2) Nothing in any process bound an allocation symbol elsewhere.
    local bad
    # A binding to another object X is fine when X itself binds the symbol to
    # corona: X is then a non-PIE program whose canonical PLT entry stands
    # for the function (so that its address is the same everywhere).
    bad=$(awk -F'\t' -v re="^($RP_ALLOC_SYMS)\$" '
        NR == FNR { if ($3 ~ /libcorona\.so/) fwd[$1 SUBSEP $2 SUBSEP $4] = 1; next }
        $4 ~ re && $2 !~ /libcorona\.so/ && $3 !~ /libcorona\.so/ && !(($1 SUBSEP $3 SUBSEP $4) in fwd)' "$all" "$all" |
        cut -f2- | sort -u)
    if [[ -n "$bad" ]]; then
        echo "FAIL [$RP_NAME]: under LD_PRELOAD, these allocation calls bound to another allocator than corona (from, to, symbol):" >&2
        echo "$bad" | head -n 20 | sed 's/^/    /' >&2
        exit 1
    fi
    local nproc nobj
    nproc=$(awk -F'\t' '$3 ~ /libcorona\.so/ && $4 == "malloc" { print $1 }' "$all" | sort -u | wc -l)
    nobj=$(awk -F'\t' -v re="^($RP_ALLOC_SYMS)\$" '$3 ~ /libcorona\.so/ && $4 ~ re { print $2 }' "$all" | sort -u | wc -l)
    echo "[$RP_NAME] served by corona: malloc bound to libcorona.so in $nproc process(es), $nobj object(s) bound allocation calls to it, none elsewhere"
}

rp_check_linked() {
    local tag=$1 argv0=$2
    local all="$RP_TMP/$tag.bindings"
    rp_bindings "$tag" >"$all"
    local s
    for s in malloc free; do
        if ! awk -F'\t' -v p="$argv0" -v s="$s" '$2 ~ /libc\.so/ && $3 == p && $4 == s { found = 1 } END { exit !found }' "$all"; then
            echo "FAIL [$RP_NAME]: the C library's \`$s' calls did not bind to the statically linked $argv0; bindings of it:" >&2
            awk -F'\t' -v s="$s" '$4 == s' "$all" | sort -u | head | sed 's/^/    /' >&2
            exit 1
        fi
    done
    local bad
    # Lookups made from ARGV0 itself are corona's dlsym(RTLD_NEXT) of the C
    # library's functions (the program's own calls are bound at link time).
    bad=$(awk -F'\t' -v re="^($RP_ALLOC_SYMS)\$" -v p="$argv0" '$4 ~ re && $2 != p && $3 != p' "$all" | cut -f2- | sort -u)
    if [[ -n "$bad" ]]; then
        echo "FAIL [$RP_NAME]: allocation calls bound to another allocator than the one linked into $argv0 (from, to, symbol):" >&2
        echo "$bad" | head -n 20 | sed 's/^/    /' >&2
        exit 1
    fi
    echo "[$RP_NAME] served by corona (static): the C library's malloc/free bind to $(basename "$argv0"), nothing elsewhere"
}
