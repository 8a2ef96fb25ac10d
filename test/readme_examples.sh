#!/usr/bin/env bash
# readme_examples.sh — the `readme_examples` ctest case: every example in
# README.md and in docs/*.md is compiled and run, so neither can show code
# that does not build or a program that does not start (an example moved
# from the README into docs/ stays compiled).  Names are unique across the
# files.
#
# An example is a fenced block right after a marker line
#
#   <!-- example: NAME [app=OTHER] [installed] [windows] [run=FILE] -->
#
# and what is done with it depends on the fence's language:
#   c      a whole program: compiled against include/ and the built
#          library, static (libcorona.a) and shared (libcorona.so; on
#          Windows corona.dll), with -Werror except under mingw-w64, and
#          each binary run, once as is and once with MALLOC_DEBUG=1, where
#          corona must report nothing;
#   sh     build commands for a user program, run with bash -eu in a fresh
#          directory holding app.c (the C example OTHER), `include` and
#          `build` (links to the source's include/ and to the build tree;
#          `build-win` with --windows), without LD_LIBRARY_PATH or
#          LD_PRELOAD; then FILE, when given, is run (under Wine for Windows);
#   cmake  a consumer's CMakeLists.txt, configured with
#          -DCMAKE_PREFIX_PATH=$P, built, and FILE run.
# `installed`: corona is first installed into a temporary prefix, which the
# block sees as $P (as the README calls it).  `windows`: the commands are
# for the mingw-w64 cross build; they run only with --windows, and the other
# commands only without it.  The C programs run in both.  A ```c block
# without a marker, or a marked block of another language, fails the test,
# so no example escapes it.
#
# Usage: readme_examples.sh --source DIR --libdir DIR [--cc CC] [--cmake CMAKE]
#          [--install-build DIR] [--cflags FLAGS] [--sanitizer] [--windows]
#          [--cross] [--emulator CMD...] [--readme FILE]...
#   --libdir         the directory holding the built libcorona.a / .so (.dll)
#   --install-build  the build tree `cmake --install` installs from (for the
#                    `installed` examples; default: --libdir)
#   --cflags         extra flags for the C examples (a sanitizer's)
#   --readme         a file to read instead of README.md and docs/*.md
#                    (may be given more than once)
#   --sanitizer      the library is instrumented: only the C examples run
#                    (built with --cflags); a user's command line has no
#                    sanitizer flags, so the sh and cmake examples cannot
#   --cross          a Linux cross build (arm64): the C examples are built with
#                    --cc and run under the emulator; the sh and cmake ones,
#                    whose commands call the host's compiler, are skipped,
#                    and the test then exits 77 (a visible skip) once the C
#                    examples have passed
#   --emulator       everything after it: the command that runs a program
#                    (Wine for a .exe, qemu-user for a cross build)
# The work directory is removed on success and kept (and named) on failure,
# or always with CRTEST_KEEP_README_TMP=1.
# shellcheck disable=SC2317 # functions called through logged, a trap, ${lang}_example
set -uo pipefail

src='' libdir='' cc=cc cmake=cmake install_build='' cflags='' sanitizer=0 windows=0 cross=0
readmes=()
cross_skips=0
emulator=()
while (($#)); do
    case $1 in
    --source) src=$2; shift 2 ;;
    --libdir) libdir=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --cmake) cmake=$2; shift 2 ;;
    --install-build) install_build=$2; shift 2 ;;
    --cflags) cflags=$2; shift 2 ;;
    --sanitizer) sanitizer=1; shift ;;
    --windows) windows=1; shift ;;
    --cross) cross=1; shift ;;
    --readme) readmes+=("$2"); shift 2 ;;
    --emulator) shift; emulator=("$@"); break ;;
    *) echo "readme_examples.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -n $src && -n $libdir ]] || { echo "usage: readme_examples.sh --source DIR --libdir DIR [...]" >&2; exit 2; }
if ((${#readmes[@]} == 0)); then
    readmes=("$src/README.md")
    for doc in "$src"/docs/*.md; do [[ -f $doc ]] && readmes+=("$doc"); done
fi
install_build=${install_build:-$libdir}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/corona-readme.XXXXXX") && tmp=$(cd "$tmp" && pwd -P) || exit 1
# shellcheck source=test/install/steps.sh
. "$src/test/install/steps.sh" # pass, fail and the failures array
finish() {
    if ((${#failures[@]} == 0)) && [[ ${CRTEST_KEEP_README_TMP:-0} != 1 ]]; then
        rm -rf "$tmp"
    else
        echo "readme example files kept in $tmp"
    fi
}
trap finish EXIT

# logged LOG CMD...: runs CMD with its output in LOG, shown on failure.
logged() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 && return 0
    local rc=$?
    echo "    command failed (exit $rc): $*"
    sed 's/^/    | /' "$log"
    return "$rc"
}
# A program runs under the emulator (Wine) for Windows, and with a bound.
run_program() {
    timeout 120 ${emulator[@]+"${emulator[@]}"} "$@"
}

# ---- extract ---------------------------------------------------------------
# One file per block (NAME.c, NAME.sh, NAME.cmake) and a manifest line
# "NAME<TAB>LANG<TAB>FILE:LINE<TAB>ATTRIBUTES"; errors go to errors.txt.
mkdir -p "$tmp/blocks"
awk -v dir="$tmp/blocks" -v root="$src/" '
    function err_at(line, msg) { printf "%s:%d: %s\n", file_name, line, msg > (dir "/errors.txt"); }
    function err(msg) { err_at(FNR, msg) }
    # What a file left open is its own error, found at the next file or the
    # end, and named at its last line.
    function file_end() {
        if (inblock) err_at(last_line, "a fenced block is not closed")
        if (want) err_at(last_line, "example \"" name "\": the marker is not followed by a fenced block")
        want = 0; inblock = 0
    }
    BEGIN { want = 0; inblock = 0 }
    FNR == 1 {
        if (NR > 1) file_end()
        file_name = FILENAME
        if (index(file_name, root) == 1) file_name = substr(file_name, length(root) + 1)
    }
    { last_line = FNR }
    inblock {
        if ($0 ~ /^```[[:space:]]*$/) { inblock = 0; close(file); next }
        if (marked) print > file
        next
    }
    /^<!-- example:/ {
        spec = $0
        sub(/^<!-- example:[[:space:]]*/, "", spec)
        if (spec !~ /-->[[:space:]]*$/) { err("example marker not closed on its line"); next }
        sub(/[[:space:]]*-->[[:space:]]*$/, "", spec)
        n = split(spec, w, /[[:space:]]+/)
        name = w[1]; attrs = ""
        for (i = 2; i <= n; i++) attrs = attrs (attrs == "" ? "" : " ") w[i]
        if (name !~ /^[A-Za-z0-9_-]+$/) { err("bad example name \"" name "\""); next }
        if (name in seen) { err("example \"" name "\" named twice"); next }
        seen[name] = 1; want = 1; markline = FNR
        next
    }
    /^```/ {
        lang = $0; sub(/^```[[:space:]]*/, "", lang); sub(/[[:space:]].*$/, "", lang)
        inblock = 1; marked = want
        if (want) {
            want = 0
            if (lang != "c" && lang != "sh" && lang != "cmake") {
                err("example \"" name "\": a ```" lang " block (c, sh or cmake expected)"); marked = 0; next
            }
            file = dir "/" name "." lang
            printf "" > file
            printf "%s\t%s\t%s:%d\t%s\n", name, lang, file_name, markline, attrs > (dir "/manifest.tsv")
        } else if (lang == "c") {
            err("a ```c block without an <!-- example: NAME --> marker")
        }
        next
    }
    want && /[^[:space:]]/ { err("example \"" name "\": the marker is not followed by a fenced block"); want = 0 }
    END { file_end() }
' "${readmes[@]}"
touch "$tmp/blocks/manifest.tsv"
if [[ -s $tmp/blocks/errors.txt ]]; then
    while IFS= read -r line; do fail "$line"; done <"$tmp/blocks/errors.txt"
fi
echo "examples in ${readmes[*]#"$src/"}:"
sed 's/\t/  /g; s/^/    /' "$tmp/blocks/manifest.tsv"

attr() { # attr ATTRS KEY: the value of KEY=VALUE, or "1" for a bare KEY
    local a
    for a in $1; do
        [[ $a == "$2" ]] && { echo 1; return 0; }
        [[ $a == "$2="* ]] && { echo "${a#*=}"; return 0; }
    done
    return 1
}

# ---- install, for the `installed` examples ------------------------------------
prefix=$tmp/prefix
installed=0
ensure_installed() {
    ((installed)) && return 0
    if logged "$tmp/install.log" "$cmake" --install "$install_build" --prefix "$prefix"; then
        installed=1
        return 0
    fi
    return 1
}

# ---- run them ----------------------------------------------------------------
exe=''
((windows)) && exe=.exe
if ((windows)); then
    c_flags=(-std=c11 -Wall -Wextra)
    static_link=(-DCORONA_STATIC "$libdir/libcorona.a" -static)
    shared_link=(-L"$libdir" -lcorona)
else
    c_flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
    static_link=("$libdir/libcorona.a" -lpthread -ldl)
    shared_link=(-L"$libdir" -lcorona "-Wl,-rpath,$libdir")
fi
# shellcheck disable=SC2206 # the flags split into words on purpose
extra_cflags=($cflags)

c_example() { # NAME
    local name=$1 kind ok=1
    local dir=$tmp/c/$name
    mkdir -p "$dir"
    for kind in static shared; do
        local bin=$dir/$name-$kind$exe link=()
        if [[ $kind == static ]]; then link=("${static_link[@]}"); else link=("${shared_link[@]}"); fi
        if ! logged "$dir/$kind-build.log" "$cc" "${c_flags[@]}" ${extra_cflags[@]+"${extra_cflags[@]}"} \
            -I"$src/include" "$tmp/blocks/$name.c" "${link[@]}" -o "$bin"; then
            fail "example $name ($kind): does not compile"
            ok=0
            continue
        fi
        # corona.dll beside the program, where Windows looks first.
        [[ $kind == shared && $windows == 1 ]] && cp "$libdir/corona.dll" "$dir/"
        if ! (cd "$dir" && logged "$dir/$kind-run.log" run_program "$bin"); then
            fail "example $name ($kind): does not run"
            ok=0
            continue
        fi
        if ! (cd "$dir" && MALLOC_DEBUG=1 logged "$dir/$kind-debug.log" run_program "$bin"); then
            fail "example $name ($kind): does not run with MALLOC_DEBUG=1"
            ok=0
        elif grep -q '^corona:' "$dir/$kind-debug.log"; then
            fail "example $name ($kind): debug mode reports: $(grep -m1 '^corona:' "$dir/$kind-debug.log")"
            ok=0
        fi
    done
    if ((ok)); then
        pass "example $name: compiles and runs (static and shared, also with MALLOC_DEBUG=1)"
        sed -n '1,3s/^/    > /p' "$dir/static-run.log"
    fi
}

# A work directory for a build-command example, in $dir: app.c and the
# links the README's commands name.
prepare_dir() { # NAME ATTRS
    local name=$1 attrs=$2 app
    dir=$tmp/sh/$name
    mkdir -p "$dir"
    if app=$(attr "$attrs" app); then
        if [[ ! -f $tmp/blocks/$app.c ]]; then
            fail "example $name: app=$app names no C example"
            return 1
        fi
        cp "$tmp/blocks/$app.c" "$dir/app.c"
    fi
    ln -s "$src/include" "$dir/include"
    if ((windows)); then ln -s "$libdir" "$dir/build-win"; else ln -s "$libdir" "$dir/build"; fi
    if attr "$attrs" installed >/dev/null; then
        if ! ensure_installed; then
            fail "example $name: cmake --install into $prefix failed"
            return 1
        fi
    fi
}

run_file() { # NAME DIR ATTRS
    local name=$1 dir=$2 file
    file=$(attr "$3" run) || return 0
    if [[ ! -f $dir/$file ]]; then
        fail "example $name: the commands did not make $file"
        return 1
    fi
    if ! (cd "$dir" && unset LD_LIBRARY_PATH LD_PRELOAD && logged "$dir/run.log" run_program "./$file"); then
        fail "example $name: $file does not run"
        return 1
    fi
    sed -n '1,3s/^/    > /p' "$dir/run.log"
}

sh_example() { # NAME ATTRS
    local name=$1 attrs=$2 dir
    prepare_dir "$name" "$attrs" || return
    sed 's/^/    $ /' "$tmp/blocks/$name.sh"
    if ! (cd "$dir" && logged "$dir/commands.log" env -u LD_LIBRARY_PATH -u LD_PRELOAD P="$prefix" \
        PKG_CONFIG_PATH='' bash -eu "$tmp/blocks/$name.sh"); then
        fail "example $name: its commands fail"
        return
    fi
    sed 's/^/    > /' "$dir/commands.log" | head -n 5
    run_file "$name" "$dir" "$attrs" && pass "example $name: its commands build a program that runs"
}

cmake_example() { # NAME ATTRS
    local name=$1 attrs=$2 dir
    prepare_dir "$name" "$attrs" || return
    cp "$tmp/blocks/$name.cmake" "$dir/CMakeLists.txt"
    # -B build: the consumer's own build directory, not corona's.
    rm -f "$dir/build"
    if ! logged "$dir/configure.log" env -u CMAKE_PREFIX_PATH "$cmake" -S "$dir" -B "$dir/build" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release ||
        ! logged "$dir/build.log" "$cmake" --build "$dir/build"; then
        fail "example $name: the CMake project does not configure and build"
        return
    fi
    run_file "$name" "$dir" "$attrs" && pass "example $name: the CMake project builds a program that runs"
}

while IFS=$'\t' read -r name lang line attrs; do
    [[ -n $name ]] || continue
    is_windows=0
    attr "$attrs" windows >/dev/null && is_windows=1
    # C programs are portable; command lines belong to one platform.
    if [[ $lang != c ]] && ((is_windows != windows)); then
        if ((is_windows)); then
            echo "skip: example $name ($line) is for Windows: the Windows flavour runs it"
        else
            echo "skip: example $name ($line) is not for Windows"
        fi
        continue
    fi
    echo
    echo "==== example $name ($line, $lang${attrs:+, $attrs})"
    case $lang in
    c) c_example "$name" ;;
    sh | cmake)
        if ((sanitizer)); then
            echo "skip: a user's command line has no sanitizer flags, so it cannot link this instrumented library"
            continue
        fi
        if ((cross)); then
            echo "SKIP: a cross build: the commands call the host's compiler, which cannot link this build's library"
            cross_skips=$((cross_skips + 1))
            continue
        fi
        "${lang}_example" "$name" "$attrs"
        ;;
    esac
done <"$tmp/blocks/manifest.tsv"

echo
if ((${#failures[@]} == 0 && cross_skips > 0)); then
    echo "readme examples: the C examples passed; $cross_skips build-command example(s) skipped (cross build)"
    exit 77
fi
if ((${#failures[@]} == 0)); then
    echo "readme examples: all passed"
    exit 0
fi
printf 'readme examples: %d failure(s)\n' "${#failures[@]}"
printf '  - %s\n' "${failures[@]}"
exit 1
