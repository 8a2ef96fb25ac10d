#!/usr/bin/env bash
# realprog_redis: Debian's redis-server on 127.0.0.1 (a free port from 6390
# up; --save "" --appendonly no), under three allocators in turn:
#   corona   LD_PRELOAD=libcorona.so (with LD_DEBUG=bindings: redis-server's
#            malloc/free must bind to corona, and /proc/PID/maps must list
#            libcorona.so);
#   jemalloc no preload: Debian links redis-server with libjemalloc;
#   glibc    LD_PRELOAD of the glibc_malloc shim (second argument), which
#            hands malloc back to the C library.
# Each server gets the same deterministic load of SET/RPUSH/HSET/APPEND/
# INCRBY commands from redis-cli, whose replies and the read-back of every
# key must be byte-identical across the three, then a bounded
# `redis-benchmark -n 20000 -t set,get,lpush,lpop`, which must report all
# four tests with no error.  The server must still answer, stop cleanly on
# SHUTDOWN NOSAVE, and log no crash.  Throughputs are printed side by side.
# Skips (77) only when redis-server/redis-cli/redis-benchmark are missing.
source "$(dirname "$0")/common.sh" "$@"
SHIM=${1:-}
for t in redis-server redis-cli redis-benchmark; do
    command -v "$t" >/dev/null 2>&1 || rp_skip "$t is not installed (scripts/deps installs redis-server and redis-tools)"
done
[[ -n $SHIM && -f $SHIM ]] || rp_fail "the glibc shim module is not built (second argument: $SHIM)"
rp_need awk
SERVER=$(command -v redis-server)
CLI=$(command -v redis-cli)
BENCH=$(command -v redis-benchmark)
N=${CRTEST_REDIS_REQUESTS:-20000}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cli() { timeout -k 2 30 env -u LD_PRELOAD "$CLI" -h 127.0.0.1 -p "$port" "$@"; }

# The server runs under `timeout`, so even if this script is killed it
# goes away by itself: server_pid is timeout's pid, redis_pid the server's.
server_pid="" redis_pid=""
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        [[ -n $redis_pid ]] && kill -9 "$redis_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid="" redis_pid=""
}
rp_before_exit() { stop_server; }

# start_server MODE: starts redis-server under MODE's allocator on a free
# port; sets server_pid and port.
start_server() {
    local mode=$1 envs=(-u LD_PRELOAD -u LD_DEBUG -u LD_DEBUG_OUTPUT) try
    case $mode in
    corona) envs+=("LD_PRELOAD=$CRTEST_LIB" LD_DEBUG=bindings "LD_DEBUG_OUTPUT=$RP_TMP/$mode.ld") ;;
    glibc) envs+=("LD_PRELOAD=$SHIM") ;;
    jemalloc) ;;
    esac
    port=6390
    for ((try = 0; try < 100; try++, port++)); do
        port_free "$port" || continue
        mkdir -p "$RP_TMP/$mode"
        timeout -k 5 170 env "${envs[@]}" "$SERVER" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$RP_TMP/$mode" --logfile "$RP_TMP/$mode.log" --loglevel notice \
            >"$RP_TMP/$mode.stdout" 2>"$RP_TMP/$mode.stderr" &
        server_pid=$!
        local i
        for ((i = 0; i < 200; i++)); do
            if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
            if [[ "$(cli ping 2>/dev/null)" == PONG ]]; then
                redis_pid=$(cli info server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }')
                [[ $redis_pid =~ ^[0-9]+$ ]] || rp_fail "redis-server ($mode) did not report its process_id"
                return 0
            fi
            sleep 0.05
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            stop_server
            rp_fail "redis-server ($mode) started but does not answer PING on port $port within 10 s; log: $(tail -n 5 "$RP_TMP/$mode.log" 2>/dev/null)"
        fi
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        # lost a race for the port? try the next one; anything else fails
        grep -q 'Address already in use' "$RP_TMP/$mode.log" 2>/dev/null && continue
        echo "FAIL [$RP_NAME]: redis-server ($mode) exited at start-up; log and stderr:" >&2
        rp_tail "$RP_TMP/$mode.log" 20 >&2
        rp_tail "$RP_TMP/$mode.stderr" 20 >&2
        exit 1
    done
    rp_fail "no free port in 6390..6489"
}

# The deterministic load: commands for redis-cli, one per line.
awk 'BEGIN {
    for (i = 0; i < 3000; i++) {
        printf "SET key:%d %s\n", i, sprintf("v%d-%0" (i % 500 + 1) "d", i * 7919, 0)
        printf "RPUSH list:%d %d item-%d %s\n", i % 50, i, i * 31, sprintf("%0" (i % 90 + 1) "d", i)
        printf "HSET hash:%d f%d %d g%d %s\n", i % 100, i, i * i, i, sprintf("x%0" (i % 200 + 1) "d", 1)
        if (i % 3 == 0) printf "APPEND key:%d -appended-%d\n", i / 3, i
        if (i % 5 == 0) printf "INCRBY counter:%d %d\n", i % 17, i
        if (i % 7 == 0) printf "DEL key:%d\n", (i * 13) % 3000
    }
    for (i = 0; i < 3000; i += 7) printf "GET key:%d\n", i
    for (i = 0; i < 50; i++) printf "LRANGE list:%d 0 -1\n", i
    for (i = 0; i < 100; i += 3) printf "HLEN hash:%d\n", i       # (HGETALL order is per-process random)
    for (i = 0; i < 3000; i += 11) printf "HMGET hash:%d f%d g%d nothere\n", i % 100, i, i
    for (i = 0; i < 17; i++) printf "GET counter:%d\n", i
    for (i = 0; i < 50; i += 2) printf "LPOP list:%d 5\n", i
    printf "DBSIZE\n"
}' >"$RP_TMP/load.txt"

declare -A rps
run_mode() {
    local mode=$1
    start_server "$mode"
    if [[ $mode == corona ]]; then
        grep -q 'libcorona\.so' "/proc/$redis_pid/maps" ||
            rp_fail "libcorona.so is not mapped in the preloaded redis-server (pid $redis_pid)"
    fi
    if [[ $mode == glibc ]]; then
        grep -q "$(basename "$SHIM")" "/proc/$redis_pid/maps" || rp_fail "the glibc shim is not mapped in redis-server"
    fi
    # 1. the deterministic load and its read-back
    cli <"$RP_TMP/load.txt" >"$RP_TMP/$mode.replies" 2>"$RP_TMP/$mode.cli.err" ||
        rp_fail "redis-cli load against the $mode server failed: $(head -n 3 "$RP_TMP/$mode.cli.err")"
    # 2. the benchmark
    local rc=0
    timeout -k 5 180 env -u LD_PRELOAD "$BENCH" -h 127.0.0.1 -p "$port" -n "$N" -t set,get,lpush,lpop --csv \
        >"$RP_TMP/$mode.bench" 2>"$RP_TMP/$mode.bench.err" || rc=$?
    if ((rc != 0)); then
        echo "FAIL [$RP_NAME]: redis-benchmark against the $mode server failed (status $rc); stderr:" >&2
        rp_tail "$RP_TMP/$mode.bench.err" >&2
        rp_tail "$RP_TMP/$mode.log" >&2
        exit 1
    fi
    if grep -qiE 'error|err ' "$RP_TMP/$mode.bench" "$RP_TMP/$mode.bench.err"; then
        echo "FAIL [$RP_NAME]: redis-benchmark against the $mode server reported errors:" >&2
        grep -iE 'error|err ' "$RP_TMP/$mode.bench" "$RP_TMP/$mode.bench.err" | head | sed 's/^/    /' >&2
        exit 1
    fi
    local t v
    for t in SET GET LPUSH LPOP; do
        v=$(awk -F, -v t="\"$t\"" '$1 == t { gsub(/"/, "", $2); print $2 }' "$RP_TMP/$mode.bench")
        [[ $v =~ ^[0-9.]+$ ]] || rp_fail "redis-benchmark ($mode) printed no $t result: $(cat "$RP_TMP/$mode.bench")"
        rps[$mode,$t]=$v
    done
    # 3. still sane afterwards
    [[ "$(cli ping)" == PONG ]] || rp_fail "the $mode server stopped answering after the benchmark"
    cli info memory | tr -d '\r' | awk -F: '$1 == "used_memory_rss_human" || $1 == "used_memory_human" { print $1 "=" $2 }' |
        tr '\n' ' ' >"$RP_TMP/$mode.mem"
    cli shutdown nosave >/dev/null 2>&1 || true
    local st=0 i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        stop_server
        rp_fail "the $mode server did not stop on SHUTDOWN NOSAVE within 10 s"
    fi
    wait "$server_pid" || st=$?
    server_pid="" redis_pid=""
    ((st == 0)) || rp_fail "the $mode server exited with status $st; log: $(tail -n 20 "$RP_TMP/$mode.log")"
    if grep -qE 'REDIS BUG REPORT|Guru Meditation|crashed by signal|Segmentation fault' "$RP_TMP/$mode.log"; then
        echo "FAIL [$RP_NAME]: the $mode server logged a crash:" >&2
        rp_tail "$RP_TMP/$mode.log" 30 >&2
        exit 1
    fi
}

for mode in corona jemalloc glibc; do
    run_mode "$mode"
done
rp_same "$RP_TMP/jemalloc.replies" "$RP_TMP/corona.replies" "redis replies (jemalloc vs corona server)"
rp_same "$RP_TMP/glibc.replies" "$RP_TMP/corona.replies" "redis replies (glibc vs corona server)"
[[ "$(tail -n 1 "$RP_TMP/corona.replies")" =~ ^[0-9]+$ ]] || rp_fail "the corona server's DBSIZE reply is missing"
rp_check_served corona "$SERVER"

echo "[$RP_NAME] replies to $(wc -l <"$RP_TMP/load.txt") commands identical under corona, jemalloc and glibc"
echo "[$RP_NAME] redis-benchmark -n $N (requests/s, 50 clients; server allocator):"
printf '    %-6s %12s %12s %12s   %s\n' test corona jemalloc glibc "corona/glibc"
for t in SET GET LPUSH LPOP; do
    printf '    %-6s %12s %12s %12s   %s\n' "$t" "${rps[corona,$t]}" "${rps[jemalloc,$t]}" "${rps[glibc,$t]}" \
        "$(awk -v a="${rps[corona,$t]}" -v b="${rps[glibc,$t]}" 'BEGIN { printf "%.2fx", a / b }')"
done
for mode in corona jemalloc glibc; do
    echo "    memory after the run, $mode: $(cat "$RP_TMP/$mode.mem")"
done
echo "[$RP_NAME] OK: total $(rp_secs) s"
