# steps.sh — the reporting helpers the install and package tests share
# (sourced): a heading per step, "ok:"/"FAIL:" lines, the failures kept in
# the array `failures` for the summary, and commands whose output is shown
# only when they fail.
# shellcheck shell=bash
failures=()

step() { printf '\n==== %s\n' "$*"; }
pass() { printf 'ok: %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*"
    failures+=("$*")
}
# run_logged LOG CMD...: runs CMD with its output in LOG, shown on failure.
run_logged() {
    local log=$1
    shift
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    local rc=$?
    echo "command failed (exit $rc): $*"
    sed 's/^/    /' "$log"
    return "$rc"
}
# summary NAME: the closing lines; exits 0 when no check failed, else 1.
summary() {
    step "summary"
    if ((${#failures[@]} == 0)); then
        echo "$1 test: all checks passed"
        exit 0
    fi
    printf '%s test: %d failure(s)\n' "$1" "${#failures[@]}"
    printf '  - %s\n' "${failures[@]}"
    exit 1
}
