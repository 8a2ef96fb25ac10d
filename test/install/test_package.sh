#!/usr/bin/env bash
# test_package.sh — the `package` ctest case: the Debian packages, built by
# scripts/package, installed into this machine and used as a user would.
#   1. scripts/package builds libcorona0 and libcorona-dev (in WORK/);
#      their names, versions, dependencies, files and ldconfig call are
#      checked;
#   2. `apt-get install ./libcorona0_*.deb ./libcorona-dev_*.deb`;
#   3. consumer.c built with `pkg-config --cflags --libs corona` and with
#      find_package(corona) runs with no rpath and no LD_LIBRARY_PATH, malloc
#      bound to the installed libcorona.so.0;
#   4. `corona-run python3` maps the installed library, and corona's own
#      statistics (MALLOC_STATS_FILE) count python's allocations;
#   5. `apt-get remove --purge` both: every file gone, ldconfig forgets it.
# It changes the machine, so it needs root and apt (otherwise it exits 77,
# a visible skip), and skips as well when a corona it did not install is
# there (packages, or files that would be found first).  An EXIT trap
# purges what it installed however it ends; a marker file
# (/var/tmp/corona-package-test.installed) lets the next run purge what a
# killed run (a ctest timeout) left behind.
# Usage: test_package.sh SOURCE_DIR WORK_DIR VERSION [CMAKE] [CC]
set -uo pipefail

src=${1:?usage: test_package.sh SOURCE_DIR WORK_DIR VERSION [CMAKE] [CC]}
work=${2:?usage: test_package.sh SOURCE_DIR WORK_DIR VERSION [CMAKE] [CC]}
version=${3:?usage: test_package.sh SOURCE_DIR WORK_DIR VERSION [CMAKE] [CC]}
cmake=${4:-cmake}
cc=${5:-cc}
# shellcheck source=test/install/steps.sh
. "$src/test/install/steps.sh"

work_made=0
skip() {
    echo "SKIP: $*"
    ((work_made)) && rm -rf "$work"
    exit 77
}
[[ $(id -u) -eq 0 ]] || skip "not root: the test installs and removes Debian packages"
for tool in apt-get dpkg dpkg-deb dpkg-query ldconfig; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found: not a Debian system with apt"
done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || "$cc" -print-multiarch 2>/dev/null)
[[ -n $multiarch ]] || skip "no multiarch triplet (dpkg-architecture, $cc -print-multiarch)"

pkgs=(libcorona-dev libcorona0) # dependent first, for removal
libdir=/usr/lib/$multiarch
marker=/var/tmp/corona-package-test.installed
export DEBIAN_FRONTEND=noninteractive
unset LD_LIBRARY_PATH LD_PRELOAD PKG_CONFIG_PATH CMAKE_PREFIX_PATH

# The packages of ours dpkg knows of in any state (installed, or removed
# with their configuration kept), one a line.
known_pkgs() {
    local p st
    for p in "${pkgs[@]}"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || continue
        [[ -n $st && $st != not-installed ]] && echo "$p"
    done
}
# shellcheck disable=SC2317 # called through run_logged and the EXIT trap
purge_pkgs() { apt-get remove --purge -y "${pkgs[@]}" || dpkg --purge "${pkgs[@]}"; }

rm -rf "$work" && mkdir -p "$work" && work=$(cd "$work" && pwd -P) || exit 1
work_made=1

step "before: no other corona on this machine"
mapfile -t left < <(known_pkgs)
if ((${#left[@]} > 0)); then
    if [[ -f $marker ]]; then
        echo "a run of this test was stopped before it removed ${left[*]}: purging them first"
        run_logged "$work/purge.log" purge_pkgs || { fail "purging what an earlier run left" && summary package; }
        rm -f "$marker"
    else
        skip "${left[*]} installed, not by this test, which would replace and then purge it (apt-get remove --purge ${pkgs[*]} first)"
    fi
fi
rm -f "$marker"
# A corona installed from source (cmake --install, /usr/local) is found
# before the packaged one: the checks would measure it instead.
others=()
while read -r line; do others+=("ld.so.cache: $line"); done < <(ldconfig -p | grep -F 'libcorona.so')
pkg-config --exists corona 2>/dev/null && others+=("pkg-config: $(pkg-config --variable=pcfiledir corona)/corona.pc")
command -v corona-run >/dev/null 2>&1 && others+=("PATH: $(command -v corona-run)")
for d in /usr/local/lib/cmake/corona /usr/local/lib/*/cmake/corona /usr/local/lib64/cmake/corona /usr/local/share/cmake/corona; do
    [[ -d $d ]] && others+=("CMake package: $d")
done
if ((${#others[@]} > 0)); then
    list=$(printf '%s; ' "${others[@]}")
    skip "a corona not from the packages is installed and would be found first: ${list%; }"
fi
pass "no corona installed (packages, ld.so.cache, pkg-config, PATH, /usr/local CMake packages)"

installed=0
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if ((installed)); then
        echo "package test: removing the packages it installed"
        purge_pkgs >"$work/cleanup.log" 2>&1 || cat "$work/cleanup.log"
        mapfile -t left < <(known_pkgs)
        ((${#left[@]} == 0)) && rm -f "$marker"
    fi
    ((${#failures[@]} == 0)) && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step "scripts/package"
if ! run_logged "$work/package.log" env CMAKE="$cmake" "$src/scripts/package" \
    --build-dir "$work/build" --out "$work/debs"; then
    fail "scripts/package"
    summary package
fi
sed -n '/^==== package: \//,$p' "$work/package.log" | sed 's/^/    /'
deb_version="$version-1"
runtime=$work/debs/libcorona0_${deb_version}_$(dpkg --print-architecture).deb
dev=$work/debs/libcorona-dev_${deb_version}_$(dpkg --print-architecture).deb
for deb in "$runtime" "$dev"; do
    [[ -f $deb ]] || { fail "scripts/package made no $(basename "$deb")" && summary package; }
done

# What each package must hold, and what belongs to the other one.
runtime_files=(/usr/bin/corona-run "$libdir/libcorona.so.$version" "$libdir/libcorona.so.0")
dev_files=(/usr/include/corona.h "$libdir/libcorona.a" "$libdir/libcorona.so"
    "$libdir/pkgconfig/corona.pc" "$libdir/cmake/corona/coronaConfig.cmake"
    "$libdir/cmake/corona/coronaConfigVersion.cmake" "$libdir/cmake/corona/coronaTargets.cmake")
# contents_of DEB: the paths it holds, without ./ and link targets.
contents_of() { dpkg-deb --contents "$1" | awk '{ print substr($6, 2) }'; }
check_contents() { # DEB, then the paths it must hold, --, the paths it must not
    local deb=$1 name list
    name=$(basename "$deb")
    list=$(contents_of "$deb")
    shift
    local must=1 f
    for f in "$@"; do
        if [[ $f == -- ]]; then must=0 && continue; fi
        if grep -qxF "$f" <<<"$list"; then
            ((must)) || fail "$name holds $f (the other package's)"
        else
            ((must)) && fail "$name lacks $f"
        fi
    done
}
check_contents "$runtime" "${runtime_files[@]}" -- "${dev_files[@]}"
check_contents "$dev" "${dev_files[@]}" -- "${runtime_files[@]}"
[[ $(dpkg-deb -f "$runtime" Version) == "$deb_version" ]] || fail "libcorona0's version is not $deb_version"
[[ $(dpkg-deb -f "$runtime" Depends) == *libc6* ]] || fail "libcorona0 does not depend on libc6"
dev_depends=$(dpkg-deb -f "$dev" Depends)
[[ $dev_depends == "libcorona0 (= $deb_version)" ]] ||
    fail "libcorona-dev should depend on exactly libcorona0 (= $deb_version), not '$dev_depends'"
if dpkg-deb --info "$runtime" postinst 2>/dev/null | grep -q ldconfig ||
    dpkg-deb --info "$runtime" triggers 2>/dev/null | grep -q ldconfig; then
    pass "libcorona0 $deb_version (Depends: $(dpkg-deb -f "$runtime" Depends)) runs ldconfig when installed"
else
    fail "libcorona0 runs no ldconfig (no postinst or triggers naming it)"
fi
pass "libcorona-dev $deb_version, Depends: $dev_depends; each package holds its own files"

step "apt-get install ./$(basename "$runtime") ./$(basename "$dev")"
touch "$marker"
installed=1
if ! run_logged "$work/apt-install.log" apt-get install -y "$runtime" "$dev"; then
    fail "apt-get install"
    summary package
fi
grep -E '^(Setting up|Unpacking|Processing)' "$work/apt-install.log" | sed 's/^/    /'
for p in "${pkgs[@]}"; do
    v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>&1)
    [[ $v == "installed $deb_version" ]] || fail "$p: dpkg says '$v'"
done
for f in "${runtime_files[@]}" "${dev_files[@]}"; do
    [[ -e $f ]] || fail "not installed: $f"
done
# The cache may name it through /lib, a link to /usr/lib (merged /usr).
cache=$(ldconfig -p | grep -F 'libcorona.so.0 ')
if [[ -n $cache && $(readlink -f "${cache##*=> }") == "$(readlink -f "$libdir/libcorona.so.0")" ]]; then
    pass "ld.so.cache (ldconfig ran): ${cache#"${cache%%[![:space:]]*}"}"
else
    fail "ld.so.cache lacks $libdir/libcorona.so.0 (ldconfig did not run?): '$cache'"
fi
mapfile -t files < <(dpkg -L "${pkgs[@]}" | while read -r f; do [[ -f $f || -L $f ]] && echo "$f"; done)

# check_run NAME PROGRAM ARGS...: PROGRAM (no rpath, nothing in the
# environment pointing at corona) maps the installed library.
check_run() {
    local name=$1 prog=$2
    shift 2
    if readelf -d "$prog" | grep -Eq 'RPATH|RUNPATH'; then
        fail "$name: the program has an rpath: $(readelf -d "$prog" | grep -E 'RPATH|RUNPATH')"
    elif run_logged "$work/$name.log" "$prog" "$@"; then
        sed 's/^/    /' "$work/$name.log"
        if grep -qF " $libdir/libcorona.so.$version" "$work/$name.log"; then
            pass "$name runs without an rpath on $libdir/libcorona.so.$version"
        else
            fail "$name did not map $libdir/libcorona.so.$version"
        fi
    else
        fail "$name run"
    fi
}

step "pkg-config"
pc_version=$(pkg-config --modversion corona 2>&1)
pc_libdir=$(pkg-config --variable=libdir corona 2>&1)
[[ $pc_version == "$version" && $pc_libdir == "$libdir" ]] ||
    fail "pkg-config says version '$pc_version', libdir '$pc_libdir' (expected $version, $libdir)"
flags=$(pkg-config --cflags --libs corona)
echo "pkg-config --cflags --libs corona: $flags"
# shellcheck disable=SC2086 # the flags split into words on purpose
if run_logged "$work/pc-build.log" "$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-pc" \
    "$src/test/install/consumer.c" $flags -ldl; then
    check_run consumer-pc "$work/consumer-pc" --expect-corona --maps
else
    fail "pkg-config consumer build"
fi

step "find_package(corona)"
if run_logged "$work/cmake-configure.log" "$cmake" -S "$src/test/install" -B "$work/consumer-cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" &&
    run_logged "$work/cmake-build.log" "$cmake" --build "$work/consumer-cmake"; then
    found=$(sed -n 's/^corona_DIR:PATH=//p' "$work/consumer-cmake/CMakeCache.txt")
    if [[ $found == "$libdir/cmake/corona" ]]; then
        pass "corona_DIR=$found"
    else
        fail "find_package found corona in '$found', not $libdir/cmake/corona"
    fi
    check_run consumer-cmake "$work/consumer-cmake/consumer" --expect-corona --maps
    if run_logged "$work/cmake-static.log" "$work/consumer-cmake/consumer_static" --expect-self --maps &&
        ! grep -q libcorona "$work/cmake-static.log"; then
        pass "corona::corona_static: $(head -n 1 "$work/cmake-static.log")"
    else
        fail "corona::corona_static consumer (must run with corona linked in, no libcorona.so)"
    fi
else
    fail "find_package consumer configure/build"
fi

step "corona-run python3"
run=$(command -v corona-run)
[[ $run == /usr/bin/corona-run ]] || fail "corona-run on PATH is '$run', not /usr/bin/corona-run"
got=$(corona-run --version 2>&1)
[[ $got == "corona-run $version" ]] || fail "corona-run --version says '$got'"
# Objects over 512 bytes: python's own small-object allocator passes them
# to malloc.  Every process of the run (a pyenv shim is a shell script)
# writes its own table; python's names it.
mkdir -p "$work/stats"
if run_logged "$work/python.log" env MALLOC_STATS_FILE="$work/stats/%p" corona-run python3 -c '
blobs = [bytearray(1000) for _ in range(50000)]
assert sum(len(b) for b in blobs) == 50000 * 1000
print("".join(l for l in open("/proc/self/maps") if "libcorona" in l), end="")'; then
    if grep -qF " $libdir/libcorona.so.$version" "$work/python.log"; then
        pass "python3 under corona-run maps $libdir/libcorona.so.$version"
    else
        fail "python3 under corona-run did not map $libdir/libcorona.so.$version"
        sed 's/^/    /' "$work/python.log"
    fi
    table=$(grep -l '^corona statistics: python' "$work"/stats/* 2>/dev/null | head -n 1)
    allocs=$(sed -n 's/^ *total allocations *\([0-9]*\)$/\1/p' "${table:-/dev/null}")
    if [[ -n $allocs ]] && ((allocs >= 50000)); then
        pass "corona served python's malloc: $(head -n 1 "$table"), total allocations $allocs"
    else
        fail "no corona statistics table from python3 counting its 50000 allocations (got '${allocs}')"
        cat "$work"/stats/* 2>/dev/null | head -n 20 | sed 's/^/    /'
    fi
else
    fail "corona-run python3"
fi

step "apt-get remove --purge ${pkgs[*]}"
if run_logged "$work/apt-remove.log" apt-get remove --purge -y "${pkgs[@]}"; then
    grep -E '^(Removing|Purging|Processing)' "$work/apt-remove.log" | sed 's/^/    /'
    mapfile -t left < <(known_pkgs)
    if ((${#left[@]} == 0)); then
        installed=0
        rm -f "$marker"
    fi
    ((${#left[@]} == 0)) || fail "dpkg still knows ${left[*]}"
    gone=1
    for f in "${files[@]}"; do
        if [[ -e $f || -L $f ]]; then
            fail "left behind: $f"
            gone=0
        fi
    done
    ((gone)) && pass "the ${#files[@]} files of the packages are gone"
    ldconfig -p | grep -qF libcorona && fail "ld.so.cache still names libcorona: $(ldconfig -p | grep -F libcorona)"
    pkg-config --exists corona 2>/dev/null && fail "pkg-config still finds corona"
    hash -r
    command -v corona-run >/dev/null 2>&1 && fail "corona-run is still on PATH"
else
    fail "apt-get remove --purge"
fi

summary package
