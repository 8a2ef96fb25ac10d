#!/usr/bin/env bash
# binary.sh — runs one of the realprog C/C++ test programs the three ways
# and compares them (used by realprog_cxx_threads, realprog_fork_threads,
# realprog_tls_exit):
#   binary.sh LIBCORONA NAME [--timeout S] [--static STATIC_EXE] -- EXE [ARGS...]
#   1. plain: EXE as built (glibc's malloc), no LD_PRELOAD;
#   2. preload: EXE with LD_PRELOAD=LIBCORONA and LD_DEBUG=bindings; the
#      program's malloc, free and (for C++) operator new/delete must bind
#      to libcorona.so, nothing may bind elsewhere;
#   3. static (with --static): STATIC_EXE, linked with libcorona.a; the C
#      library's own malloc/free calls must bind to it.
# Runs 2 and 3 get CRTEST_EXPECT=corona, so the program checks
# that its allocations are corona's (see realprog.h).  Every run must exit
# 0 within the timeout, and all stdouts must be byte-identical.
RP_NAME=${2:-binary}
source "$(dirname "$0")/common.sh" "$1"
shift 2
limit=120
static=""
while (($#)); do
    case $1 in
    --timeout) limit=$2; shift 2 ;;
    --static) static=$2; shift 2 ;;
    --) shift; break ;;
    *) rp_fail "binary.sh: unknown argument $1" ;;
    esac
done
(($# >= 1)) || rp_fail "binary.sh: no program given"
exe=$1
shift
[[ -x $exe ]] || rp_fail "program $exe is not built"

extra=()
if nm -D "$exe" 2>/dev/null | grep -q ' U _Znwm$'; then extra+=(_Znwm); fi
# A cross build's programs run under its emulator (CRTEST_EMULATOR, words
# split at spaces), which hands LD_PRELOAD and LD_DEBUG on to the program.
emu=()
[[ -n ${CRTEST_EMULATOR:-} ]] && read -r -a emu <<<"$CRTEST_EMULATOR"

rp_run plain plain --timeout "$limit" -- ${emu[@]+"${emu[@]}"} "$exe" "$@"
t_plain=$RP_LAST_SECS
CRTEST_EXPECT=corona rp_run corona preload --timeout "$limit" -- ${emu[@]+"${emu[@]}"} "$exe" "$@"
t_corona=$RP_LAST_SECS
rp_same "$RP_TMP/plain.out" "$RP_TMP/corona.out" "stdout of $(basename "$exe") (plain vs preloaded)"
rp_check_served corona "$exe" ${extra[@]+"${extra[@]}"}
msg="$(basename "$exe") $t_plain s plain, $t_corona s preloaded"
if [[ -n $static ]]; then
    [[ -x $static ]] || rp_fail "program $static is not built"
    CRTEST_EXPECT=corona rp_run static bindings --timeout "$limit" -- ${emu[@]+"${emu[@]}"} "$static" "$@"
    rp_same "$RP_TMP/plain.out" "$RP_TMP/static.out" "stdout of $(basename "$static") (plain vs linked with libcorona.a)"
    rp_check_linked static "$static"
    msg+=", $RP_LAST_SECS s linked with libcorona.a"
fi
echo "[$RP_NAME] OK: $(wc -l <"$RP_TMP/plain.out") identical stdout lines; $msg; total $(rp_secs) s"
