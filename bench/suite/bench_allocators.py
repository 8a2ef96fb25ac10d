"""bench_allocators.py — finding the allocators for the benchmark runner: where
each peer's library is installed, the environment a run gets (the preload,
and nothing that tunes an allocator), and the checks that malloc really
comes from the allocator meant, in the suite's programs and in python3 and
sqlite3."""
import os
import platform
import re
import shutil
import subprocess
import sys

from bench_util import die
from bench_workloads import PEERS, PEERS_DIR, ROOT, UPSTREAM_PEERS

# Environment variables that tune an allocator: removed, so every allocator
# runs with its defaults.
SCRUB = re.compile(r"^(LD_PRELOAD|MALLOC_.*|CORONA_.*|MIMALLOC_.*|TCMALLOC_.*|SNMALLOC_.*|RPMALLOC_.*|JE_MALLOC_CONF|"
                   r"_RJEM_MALLOC_CONF|TBB_.*|GLIBC_TUNABLES|PYTHONMALLOC|PYTHONHASHSEED)$")


def ldconfig_path(soname):
    """The path ldconfig's cache gives for SONAME on this machine's ABI, or None."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        try:
            out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
        except OSError:
            return None
    arch_tag = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(platform.machine(), "")
    found = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m and m.group(1) == soname:
            found.append((arch_tag and arch_tag in m.group(2), m.group(3)))
    found.sort(key=lambda x: not x[0])
    return found[0][1] if found else None


def dpkg_path(package, soname):
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if os.path.basename(line) == soname and os.path.exists(line):
            return line
    return None


def which(prog, env):
    """The files that define malloc, free, realloc, calloc under ENV."""
    r = subprocess.run([prog, "--which"], capture_output=True, text=True, env=env)
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    return got, r.stderr.strip()


def base_env():
    env = {k: v for k, v in os.environ.items() if not SCRUB.match(k)}
    env["PYTHONHASHSEED"] = "0"
    return env


def alloc_env(base, path):
    env = dict(base)
    if path:
        env["LD_PRELOAD"] = path
    return env


def upstream_peer(name):
    """(path, description) of an upstream peer in PEERS_DIR, or (None, None)
    when it is not there (a note on stderr if the folder exists but lacks it).
    The version comes from the folder's README.md table, whose rows read
    | file | project | version (commit) | build | license |."""
    fname, project = next((p[1], p[2]) for p in UPSTREAM_PEERS if p[0] == name)
    path = os.path.join(os.path.abspath(PEERS_DIR), fname)
    if not os.path.isfile(path):
        if os.path.isdir(PEERS_DIR):
            sys.stderr.write(f"bench: {name} ({path}) is missing; leaving it out\n")
        return None, None
    version = "version unknown"
    try:
        with open(os.path.join(PEERS_DIR, "README.md")) as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) >= 3 and cells[0] == fname:
                    version = cells[2]
                    break
    except OSError:
        pass
    return path, f"{path} (upstream {project} {version}, built from source: {PEERS_DIR}/README.md)"


def find_allocators(a, bindir):
    """name -> (preload path or None, expected basename of the malloc file, description)."""
    found = {}
    probe = os.path.join(bindir, "suite-small")
    base = base_env()
    for name in a.alloc_list:
        if name == "corona":
            path = os.path.join(os.path.abspath(a.build_dir), "libcorona.so")
            if not os.path.exists(path):
                die(f"{path} is missing (scripts/bench builds it)")
            desc = f"{os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path} (this tree, Release)"
        elif name == "glibc":
            path = None
            desc = f"glibc {platform.libc_ver()[1] or '?'} (no preload)"
        elif any(p[0] == name for p in UPSTREAM_PEERS):
            path, desc = upstream_peer(name)
            if not path:
                continue
        else:
            soname, pkg = next((p[1], p[2]) for p in PEERS if p[0] == name)
            path = ldconfig_path(soname) or dpkg_path(pkg, soname)
            if not path:
                sys.stderr.write(f"bench: {name} ({soname}) is not installed here; leaving it out\n")
                continue
            ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                                 text=True).stdout.strip() if shutil.which("dpkg-query") else ""
            desc = f"{path}" + (f" (Debian {pkg} {ver})" if ver else "")
        expect = os.path.basename(path) if path else "libc.so.6"
        got, err = which(probe, alloc_env(base, path))
        bad = {fn: f for fn, f in got.items() if os.path.basename(f) != expect}
        if len(got) != 4 or bad:
            die(f"under {name} (LD_PRELOAD={path or ''}), the allocator is not the one in use:\n"
                f"  expected malloc, free, realloc, calloc from {expect}; got {got or 'nothing'}\n"
                f"  {err}")
        found[name] = (path, expect, desc)
    return found


def check_real_programs(allocs, progs):
    """LD_DEBUG=bindings: in python3 and sqlite3, malloc binds to the allocator."""
    base = base_env()
    for name, (path, expect, _) in allocs.items():
        for label, cmd in progs.items():
            env = alloc_env(base, path)
            env["LD_DEBUG"] = "bindings"
            r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                               input="select 1;\n" if label == "sqlite" else None)
            exe = os.path.realpath(cmd[0])
            targets = set()
            for line in r.stderr.splitlines():
                m = re.search(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `malloc'", line)
                if not m:
                    continue
                src = os.path.realpath(m.group(1)) if m.group(1).startswith("/") else m.group(1)
                dst = os.path.realpath(m.group(2)) if m.group(2).startswith("/") else m.group(2)
                # A program that is not position-independent binds its own
                # data references to malloc to its PLT entry (the function's
                # canonical address): that is not the definition.
                if dst == exe:
                    continue
                if src == exe or "libsqlite3" in src or "libpython" in src:
                    targets.add(os.path.basename(m.group(2)))
            if targets != {expect}:
                die(f"under {name}, {label} ({cmd[0]}) binds malloc to {sorted(targets) or 'nothing'}, "
                    f"not {expect} (LD_DEBUG=bindings)")
