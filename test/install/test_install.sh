#!/usr/bin/env bash
# test_install.sh — the `install` ctest case.  Installs a built corona into a
# temporary prefix with `cmake --install`, then builds and runs consumer.c
# three ways: with `pkg-config --cflags --libs corona`, with CMake's
# find_package(corona) (corona::corona and corona::corona_static), and runs
# programs through <prefix>/bin/corona-run, checking that malloc is bound to
# the installed libcorona.so.  It configures nothing in the build tree.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR [CMAKE] [CC] [LIBDIR] [BINDIR]
#        [INCLUDEDIR] [OVERRIDE]
#   LIBDIR/BINDIR/INCLUDEDIR: relative to the prefix (default lib, bin, include)
#   OVERRIDE: ON if libcorona.so must export malloc & co. (default ON)
# The prefix is removed on success and kept (and named) on failure, or
# always with CRTEST_KEEP_INSTALL_TMP=1.
set -uo pipefail

build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR [CMAKE] [CC] [LIBDIR] [BINDIR] [INCLUDEDIR] [OVERRIDE]}
src=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR ...}
cmake=${3:-cmake}
cc=${4:-cc}
libdir=${5:-lib}
bindir=${6:-bin}
includedir=${7:-include}
case ${8:-ON} in
ON | on | 1 | TRUE | true | YES | yes) override=1 ;;
*) override=0 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/corona-install.XXXXXX") && tmp=$(cd "$tmp" && pwd -P) || exit 1
prefix=$tmp/prefix
lib=$prefix/$libdir/libcorona.so
run=$prefix/$bindir/corona-run
consumer_src=$src/test/install
# shellcheck source=test/install/steps.sh
. "$consumer_src/steps.sh"

# shellcheck disable=SC2317 # called through the EXIT trap
finish() {
    if ((${#failures[@]} == 0)) && [[ ${CRTEST_KEEP_INSTALL_TMP:-0} != 1 ]]; then
        rm -rf "$tmp"
    else
        echo "install test files kept in $tmp"
    fi
}
trap finish EXIT

step "cmake --install $build --prefix $prefix"
if ! run_logged "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix"; then
    fail "cmake --install"
    exit 1
fi
sed 's/^/    /' "$tmp/install.log"
for f in "$lib" "$prefix/$libdir/libcorona.a" "$prefix/$includedir/corona.h" \
    "$prefix/$libdir/pkgconfig/corona.pc" \
    "$prefix/$libdir/cmake/corona/coronaConfig.cmake" \
    "$prefix/$libdir/cmake/corona/coronaConfigVersion.cmake" \
    "$prefix/$libdir/cmake/corona/coronaTargets.cmake"; do
    [[ -f $f ]] || fail "not installed: ${f#"$prefix"/}"
done
[[ -x $run ]] || fail "not installed or not executable: $bindir/corona-run"
if ((override)); then
    if nm -D --defined-only "$lib" 2>/dev/null | grep -Eq ' [TtWi] malloc$'; then
        pass "libcorona.so exports malloc"
    else
        fail "libcorona.so does not export malloc (the drop-in override is missing)"
    fi
fi
expect=()
((override)) && expect=(--expect-corona)

step "pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
if ! command -v pkg-config >/dev/null 2>&1; then
    fail "pkg-config is not installed (scripts/deps installs it)"
else
    echo "pkg-config --modversion corona: $(pkg-config --modversion corona 2>&1)"
    flags=$(pkg-config --cflags --libs corona) || fail "pkg-config --cflags --libs corona"
    echo "pkg-config --cflags --libs corona: $flags"
    static_libs=$(pkg-config --static --libs corona) || fail "pkg-config --static --libs corona"
    [[ " $static_libs " == *" -lpthread "* && " $static_libs " == *" -ldl "* ]] ||
        fail "pkg-config --static --libs lacks -lpthread -ldl: $static_libs"
    # shellcheck disable=SC2086 # flags split into words on purpose
    if run_logged "$tmp/pc-build.log" "$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-pc" \
        "$consumer_src/consumer.c" $flags -ldl; then
        if run_logged "$tmp/pc-run.log" env LD_LIBRARY_PATH="$prefix/$libdir" \
            "$tmp/consumer-pc" "${expect[@]}" --maps; then
            sed 's/^/    /' "$tmp/pc-run.log"
            if grep -qF " $lib" "$tmp/pc-run.log"; then
                pass "pkg-config consumer runs on the installed library"
            else
                fail "pkg-config consumer did not map $lib"
            fi
        else
            fail "pkg-config consumer run"
        fi
    else
        fail "pkg-config consumer build"
    fi
fi

step "find_package(corona)"
if run_logged "$tmp/cmake-configure.log" env -u CMAKE_PREFIX_PATH "$cmake" \
    -S "$consumer_src" -B "$tmp/consumer-cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" &&
    run_logged "$tmp/cmake-build.log" "$cmake" --build "$tmp/consumer-cmake"; then
    grep -E 'corona_DIR|Found|^--' "$tmp/cmake-configure.log" | grep -vE 'Check|Detecting|ABI' | sed 's/^/    /'
    if run_logged "$tmp/cmake-run.log" "$tmp/consumer-cmake/consumer" "${expect[@]}" --maps; then
        sed 's/^/    /' "$tmp/cmake-run.log"
        if grep -qF " $lib" "$tmp/cmake-run.log"; then
            pass "corona::corona consumer runs on the installed library"
        else
            fail "corona::corona consumer did not map $lib"
        fi
    else
        fail "corona::corona consumer run"
    fi
    static_expect=()
    ((override)) && static_expect=(--expect-self)
    if run_logged "$tmp/cmake-static-run.log" "$tmp/consumer-cmake/consumer_static" \
        "${static_expect[@]}" --maps; then
        sed 's/^/    /' "$tmp/cmake-static-run.log"
        if grep -q libcorona "$tmp/cmake-static-run.log"; then
            fail "corona::corona_static consumer loaded a shared libcorona"
        else
            pass "corona::corona_static consumer runs, corona linked in"
        fi
    else
        fail "corona::corona_static consumer run"
    fi
else
    fail "find_package consumer configure/build"
fi

step "corona-run"
if "$run" --help >"$tmp/help.log" 2>&1 && grep -q '^Usage: corona-run' "$tmp/help.log"; then
    pass "corona-run --help"
else
    fail "corona-run --help"
    sed 's/^/    /' "$tmp/help.log"
fi
if "$run" >"$tmp/noprog.log" 2>&1; then
    fail "corona-run without a program succeeded"
elif grep -q 'no program given' "$tmp/noprog.log"; then
    pass "corona-run without a program: $(cat "$tmp/noprog.log")"
else
    fail "corona-run without a program: unclear message: $(cat "$tmp/noprog.log")"
fi
if "$run" --lib "$tmp/nonexistent.so" true >"$tmp/nolib.log" 2>&1; then
    fail "corona-run --lib with a missing library succeeded"
else
    pass "corona-run --lib with a missing library: $(cat "$tmp/nolib.log")"
fi

# What a program loads (read now: the library is installed): the SONAME (libcorona.so.MAJOR), which libcorona.so,
# the development link, points at through it.
runlib=$prefix/$libdir/$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')

# ls, dynamically linked against glibc only, through the launcher; the
# dynamic linker logs each symbol binding into $tmp/ld-debug.PID.
ls_bin=$(command -v ls)
if LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld-debug" "$run" "$ls_bin" -l / >"$tmp/ls.log" 2>&1; then
    # The line for ls's own calls: "binding file /usr/bin/ls [0] to ...".
    binding=$(cat "$tmp"/ld-debug.* 2>/dev/null |
        grep -F "binding file $ls_bin [0] to $runlib [0]: normal symbol \`malloc'" | head -n 1)
    if ((override)); then
        if [[ -n $binding ]]; then
            pass "corona-run $ls_bin: malloc bound to libcorona.so"
            echo "    ${binding#*:[[:space:]]}"
        else
            fail "corona-run $ls_bin: malloc is not bound to $runlib"
            grep -h "normal symbol \`malloc'" "$tmp"/ld-debug.* 2>/dev/null | head -n 5 | sed 's/^/    /'
        fi
    else
        pass "corona-run $ls_bin runs (override off: malloc not checked)"
    fi
else
    fail "corona-run $ls_bin -l /"
    sed 's/^/    /' "$tmp/ls.log"
fi
rm -f "$tmp"/ld-debug.*

# A C++ program (operator new and delete come from corona too).
if "$run" "$cmake" --version >"$tmp/cxx.log" 2>&1; then
    pass "corona-run $cmake --version (a C++ program): $(head -n 1 "$tmp/cxx.log")"
else
    fail "corona-run $cmake --version"
    sed 's/^/    /' "$tmp/cxx.log"
fi

# The child's own /proc/self/maps, through a symbolic link to the launcher.
ln -s "$run" "$tmp/corona-run-link"
if "$tmp/corona-run-link" cat /proc/self/maps >"$tmp/maps.log" 2>&1 && grep -qF " $lib" "$tmp/maps.log"; then
    pass "corona-run (via a symlink) cat /proc/self/maps: $(grep -F " $lib" "$tmp/maps.log" | head -n 1 | awk '{print $NF}') mapped"
else
    fail "corona-run cat /proc/self/maps: $lib not mapped"
    sed 's/^/    /' "$tmp/maps.log"
fi

# An existing LD_PRELOAD stays, after corona; --lib picks another library.
# shellcheck disable=SC2016 # the child shell expands it
got=$(LD_PRELOAD=libm.so.6 "$run" sh -c 'printf %s "$LD_PRELOAD"' 2>&1)
if [[ $got == "$runlib:libm.so.6" ]]; then
    pass "corona-run prepends to LD_PRELOAD: $got"
else
    fail "corona-run LD_PRELOAD: expected '$runlib:libm.so.6', got '$got'"
fi
cp "$lib" "$tmp/libcorona-copy.so"
if (cd "$tmp" && "$run" --lib libcorona-copy.so cat /proc/self/maps) >"$tmp/maps2.log" 2>&1 &&
    grep -qF "$tmp/libcorona-copy.so" "$tmp/maps2.log"; then
    pass "corona-run --lib (a relative path)"
else
    fail "corona-run --lib libcorona-copy.so"
    sed 's/^/    /' "$tmp/maps2.log"
fi

summary install
