#!/usr/bin/env python3
"""runner.py — the benchmark runner behind scripts/bench (which builds corona
and the suite and installs the peers first; run that, not this).

Runs every workload of bench/suite under every allocator, each run a process
of its own with the allocator preloaded (LD_PRELOAD; glibc: none), at each
thread count, interleaved: for each repetition, for each workload and thread
count, the allocators in an order rotated by one each time.  Records per
run the wall time, user and system time, peak RSS and page faults (wait4's
rusage of the child), checks that every run reached the allocator it was
meant to (the workload reports the file that defines malloc) and that every
allocator computed the same checksum, then writes a Markdown report with
medians and peer/corona ratios, the raw runs as CSV, and a chart (gnuplot).
"""
import argparse
import csv
import datetime
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE_SRC = os.path.join(ROOT, "bench", "suite")

# name, soname searched, Debian package that installs it (scripts/bench)
PEERS = [
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("tbbmalloc", "libtbbmalloc_proxy.so.2", "libtbbmalloc2"),
]
ALL_ALLOCS = ["corona", "glibc"] + [p[0] for p in PEERS]

# Workloads: name, program and its fixed arguments, threaded?, description.
# Program "python" / "sqlite" are the real programs.
WORKLOADS = [
    ("small-fixed", ["suite-small", "fixed"], True,
     "malloc+free at once, 64 B, 20 M pairs (small.c)"),
    ("small-random", ["suite-small", "random"], True,
     "malloc+free at once, 8..512 B uniform, 20 M pairs (small.c)"),
    ("bursts", ["suite-bursts"], True,
     "400 rounds of 5000 live objects, 16..1024 B (1 in 16 up to 8128 B), freed in shuffled order (bursts.c)"),
    ("realloc", ["suite-realloc"], True,
     "200 rounds of 32 strings grown by exact-length appends to 16 B..16 KB and 8 vectors doubling to 128 B..2 MB (realloc.c)"),
    ("xmalloc", ["suite-xmalloc"], True,
     "producer/consumer ring: 6 M objects of 16..256 B allocated by one thread, freed by the next (xmalloc.c)"),
    ("larson", ["suite-larson"], True,
     "server simulation: 128 sessions of 256 live objects (16..1024 B), 4 M requests, sessions handed between threads (larson.c)"),
    ("scratch", ["suite-scratch"], True,
     "false sharing: 40 000 objects of 8 B, each written 8000 times; the first per thread allocated by the main thread (scratch.c)"),
    ("large-churn", ["suite-large", "churn"], True,
     "16 live per thread, 10 000 replacements of 8 KB..4 MB, every page written (large.c)"),
    ("big-buffers", ["suite-large", "big"], True,
     "100 buffers of 8..48 MB, at most 2 live per thread, every page written and read (large.c)"),
    ("thread-churn", ["suite-threads"], True,
     "3000 short-lived threads in waves, 200 objects each, half left to the next wave (threads.c)"),
    ("frag", ["suite-frag"], True,
     "128 MB of 16..256 B objects, 90 % freed at random, then as many bytes of 257..4096 B; peak RSS vs live (frag.c)"),
    ("python", ["python"], False,
     "python3 (Debian) with PYTHONMALLOC=malloc: strings, dicts, objects, JSON, sorting (pywork.py)"),
    ("sqlite", ["sqlite"], False,
     "sqlite3 (Debian) CLI, in-memory database: 100 000 rows, indexes, group by, joins, updates, deletes (sqlwork.py)"),
]

# Environment variables that tune an allocator: removed, so every allocator
# runs with its defaults.
SCRUB = re.compile(r"^(LD_PRELOAD|MALLOC_.*|CORONA_.*|MIMALLOC_.*|TCMALLOC_.*|JE_MALLOC_CONF|"
                   r"_RJEM_MALLOC_CONF|TBB_.*|GLIBC_TUNABLES|PYTHONMALLOC|PYTHONHASHSEED)$")


def die(msg):
    sys.stderr.write(f"\nbench: {msg}\n")
    sys.exit(1)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads and 3 reps (under 3 minutes on 2 cores)")
    ap.add_argument("--reps", type=int, help="runs per workload, thread count and allocator (default 5; 3 with --quick)")
    ap.add_argument("--threads", help="comma-separated thread counts (default: 1, the cores, 4x the cores)")
    ap.add_argument("--only", help="run only the workloads whose name matches this regular expression")
    ap.add_argument("--alloc", help="comma-separated allocators (default: all that load: " + ",".join(ALL_ALLOCS) + ")")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                    help="directory for latest.md, latest.csv, latest.svg (default bench/results)")
    ap.add_argument("--scale", type=float, help="work multiplier (default 1; 0.4 with --quick)")
    ap.add_argument("--machine", default="", help="a name for the machine, put in the report (e.g. 'AWS c7i.16xlarge')")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed (default 300)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"), help="corona's build directory")
    ap.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    a = ap.parse_args(argv)
    if a.reps is None:
        a.reps = 3 if a.quick else 5
    if a.reps < 1:
        ap.error("--reps must be at least 1")
    if a.scale is None:
        a.scale = 0.4 if a.quick else 1.0
    if not a.scale > 0:
        ap.error("--scale must be above 0")
    ncpu = len(os.sched_getaffinity(0))
    a.ncpu = ncpu
    if a.threads:
        try:
            a.thread_list = sorted({int(x) for x in a.threads.split(",") if x.strip()})
        except ValueError:
            ap.error("--threads needs a comma-separated list of numbers")
        if not a.thread_list or a.thread_list[0] < 1:
            ap.error("--threads: thread counts must be at least 1")
    else:
        a.thread_list = sorted({1, ncpu, 4 * ncpu})
    if a.alloc:
        a.alloc_list = [x.strip() for x in a.alloc.split(",") if x.strip()]
        bad = [x for x in a.alloc_list if x not in ALL_ALLOCS]
        if bad:
            ap.error(f"--alloc: unknown allocator(s) {', '.join(bad)}; known: {', '.join(ALL_ALLOCS)}")
    else:
        a.alloc_list = list(ALL_ALLOCS)
    if a.only:
        try:
            rx = re.compile(a.only)
        except re.error as e:
            ap.error(f"--only: bad regular expression: {e}")
        a.workloads = [w for w in WORKLOADS if rx.search(w[0])]
        if not a.workloads:
            ap.error(f"--only: no workload matches '{a.only}' (see --list)")
    else:
        a.workloads = list(WORKLOADS)
    return a


# ---- allocators ------------------------------------------------------------

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


# ---- running ---------------------------------------------------------------

class Run:
    __slots__ = ("status", "wall_ms", "user_ms", "sys_ms", "maxrss_kb", "minflt", "majflt",
                 "nvcsw", "nivcsw", "cpu_ms", "work_ms", "checksum", "alloc", "live_peak_kb", "note")


class Usage:
    """What suite-measure reported about one run."""

    def __init__(self, kv):
        self.status = kv.get("status", "no-report")
        self.wall_ms = float(kv.get("wall_ms", "nan"))
        self.user_ms = float(kv.get("user_ms", "nan"))
        self.sys_ms = float(kv.get("sys_ms", "nan"))
        self.maxrss_kb = int(kv.get("maxrss_kb", "0"))
        self.minflt = int(kv.get("minflt", "0"))
        self.majflt = int(kv.get("majflt", "0"))
        self.nvcsw = int(kv.get("nvcsw", "0"))
        self.nivcsw = int(kv.get("nivcsw", "0"))


def run_once(measure, argv, env, preload, stdin_path, timeout, tmpdir):
    """Runs ARGV through suite-measure (which preloads PRELOAD into it only);
    returns (Usage, stdout, stderr)."""
    report = os.path.join(tmpdir, "report")
    cmd = [measure, "--timeout", f"{timeout:g}", "--report", report]
    if preload:
        cmd += ["--preload", preload]
    cmd += ["--"] + argv
    if os.path.exists(report):
        os.unlink(report)
    with open(stdin_path or os.devnull, "rb") as stdin:
        try:
            r = subprocess.run(cmd, stdin=stdin, capture_output=True, env=env, timeout=timeout + 60)
            o, e = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            return Usage({"status": "timeout"}), "", ""
    kv = {}
    try:
        with open(report) as f:
            for tok in f.read().split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    kv[k] = v
    except OSError:
        pass
    return Usage(kv), o, e


def fmt_dur(s):
    s = int(s + 0.5)
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total):
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, text, force=False):
        self.done += 1
        now = time.monotonic()
        el = now - self.t0
        left = el / self.done * (self.total - self.done)
        line = (f"[{self.done:4d}/{self.total} {100 * self.done // self.total:3d}%] {text}"
                f"  | {fmt_dur(el)} elapsed, ~{fmt_dur(left)} left")
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line[:max(20, shutil.get_terminal_size().columns - 1)])
            sys.stderr.flush()
        elif force or now - self.last >= 5 or self.done == self.total:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            self.last = now

    def finish(self):
        if self.tty:
            sys.stderr.write("\n")


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---- report ----------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine_description(a):
    model = sh("awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo") or platform.processor() or "unknown CPU"
    mem = sh("awk '/^MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    deb = sh("cat /etc/debian_version")
    osname = sh(". /etc/os-release && echo \"$PRETTY_NAME\"")
    thp = sh("cat /sys/kernel/mm/transparent_hugepage/enabled")
    cc = sh("cc --version | head -n 1")
    return {
        "cpu": f"{model}, {a.ncpu} CPUs available (sched_getaffinity), {os.cpu_count()} online",
        "memory": mem,
        "os": f"{osname} (debian_version {deb}), kernel {platform.release()}, glibc {platform.libc_ver()[1]}",
        "thp": thp,
        "cc": cc,
    }


def write_report(a, allocs, rows, runs, csv_path, md_path, svg_path, elapsed, failures, mismatches,
                 chart_ok):
    names = [n for n in ALL_ALLOCS if n in allocs]
    peers = [n for n in names if n != "corona"]
    have_corona = "corona" in names
    m = machine_description(a)
    commit = a.commit

    def med(key, field):
        vals = [getattr(r, field) for r in runs.get(key, []) if r.status == "ok"]
        vals = [v for v in vals if v is not None]
        return median(vals)

    L = []
    L.append("# Benchmark suite: corona and its peers")
    L.append("")
    L.append(f"- command: `{a.command_line}`" + (" (quick mode: smaller workloads, fewer reps)" if a.quick else ""))
    L.append(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
             f"the runs took {fmt_dur(elapsed)}")
    L.append(f"- machine: {a.machine + '; ' if a.machine else ''}{m['cpu']}; {m['memory']}; {m['os']}; "
             f"transparent huge pages: {m['thp']}")
    L.append(f"- compiler: {m['cc']}; corona commit {commit}, Release build")
    L.append(f"- runs: {a.reps} per workload, thread count and allocator, each a process of its own; interleaved "
             f"(for each rep, for each workload and thread count, the allocators in an order rotated by one each "
             f"time); scale {a.scale:g}; thread counts {', '.join(map(str, a.thread_list))} " +
             ("(as given)" if a.threads else "(1, the cores, 4x the cores)"))
    L.append("- the allocators run with their defaults: LD_PRELOAD of the library (glibc: none); variables that "
             "tune an allocator (MALLOC_*, CORONA_*, MIMALLOC_*, TCMALLOC_*, GLIBC_TUNABLES, ...) are removed")
    L.append("- allocators:")
    for n in names:
        L.append(f"  - {n}: {allocs[n][2]}")
    for n in a.alloc_list:
        if n not in allocs:
            L.append(f"  - {n}: not installed here, left out")
    if getattr(a, "baseline", None):
        L.append("- start-up: peak RSS and wall time of a run that does almost nothing (`suite-small -s 1e-6`, median "
                 "of 3): " + "; ".join(f"{n} {a.baseline[n][1] / 1024:.1f} MB, {a.baseline[n][0]:.1f} ms"
                                         for n in names if n in a.baseline))
    L.append("")
    L.append("Every run's workload reports the file that defines malloc in its process (dladdr; for python3 the "
             "first object in the dynamic linker's search order that defines it), and the runner checks it "
             "against the allocator it preloaded; python3 and sqlite3 were also checked once per allocator with "
             "LD_DEBUG=bindings. All allocators must compute the same checksum.")
    L.append("")
    L.append("Cells: the median over the runs; in brackets the peer's median divided by corona's, so **above 1 "
             "means corona is better** (faster, or less memory). Wall time is the process's, from spawn to exit "
             "(start-up included, about 1 ms; python3 about 30 ms).")

    def table(title, field, unit_fmt, scale=1.0, note=None):
        L.append("")
        L.append(f"## {title}")
        L.append("")
        if note:
            L.append(note)
            L.append("")
        L.append("| workload | threads | " + " | ".join(names) + " |")
        L.append("|---|---:|" + "---:|" * len(names))
        ratios = {n: [] for n in peers}
        ratios_by_t = {}
        for (w, t) in rows:
            key0 = (w, t)
            cells = []
            c = med((w, t, "corona"), field) if have_corona else None
            for n in names:
                v = med((w, t, n), field)
                nfail = sum(1 for r in runs.get((w, t, n), []) if r.status != "ok")
                if v is None:
                    cells.append(f"failed ({nfail})" if nfail else "—")
                    continue
                s = unit_fmt(v * scale)
                if n != "corona" and c:
                    ratio = v / c
                    ratios[n].append(ratio)
                    ratios_by_t.setdefault(t, {}).setdefault(n, []).append(ratio)
                    s += f" ({ratio:.2f})"
                if n == "corona":
                    s = f"**{s}**"
                if nfail:
                    s += f" [{nfail} failed]"
                cells.append(s)
            L.append(f"| {key0[0]} | {key0[1]} | " + " | ".join(cells) + " |")
        if have_corona and peers:
            L.append("| **geometric mean of peer / corona** | all | 1 | " +
                     " | ".join(f"**{geomean(ratios[n]):.2f}**" if geomean(ratios[n]) else "—" for n in peers) + " |")
            if len(ratios_by_t) > 1:
                for t in sorted(ratios_by_t):
                    L.append(f"| geometric mean | {t} | 1 | " +
                             " | ".join(f"{geomean(ratios_by_t[t].get(n, [])):.2f}"
                                        if geomean(ratios_by_t[t].get(n, [])) else "—" for n in peers) + " |")
        return ratios

    wall_ratios = table("Wall time (ms)", "wall_ms", lambda x: f"{x:.1f}")
    table("User + system time (ms)", "cpu_ms", lambda x: f"{x:.1f}",
          note="CPU time of all the process's threads: above the wall time when threads run in parallel; "
               "spinning and lock contention show up here.")
    table("Peak RSS (MB)", "maxrss_kb", lambda x: f"{x:.1f}", scale=1 / 1024,
          note="ru_maxrss of the process: the program, the libraries and the allocator's own memory included "
               "(a few MB).")

    # frag: RSS against live bytes
    frag_rows = [(w, t) for (w, t) in rows if w == "frag"]
    if frag_rows:
        L.append("")
        L.append("## Fragmentation: peak RSS / peak live bytes")
        L.append("")
        L.append("frag's peak RSS divided by the peak of the bytes it had requested and not yet freed "
                 "(live_peak_kb; 1.00 would be perfect).")
        L.append("")
        L.append("| threads | live MB | " + " | ".join(names) + " |")
        L.append("|---:|---:|" + "---:|" * len(names))
        for (w, t) in frag_rows:
            live = None
            cells = []
            for n in names:
                rss = med((w, t, n), "maxrss_kb")
                lv = med((w, t, n), "live_peak_kb")
                live = live or lv
                cells.append(f"{rss / lv:.2f}" if rss and lv else "—")
            L.append(f"| {t} | {live / 1024:.1f} | " + " | ".join(cells) + " |" if live else
                     f"| {t} | — | " + " | ".join(cells) + " |")

    # where corona loses
    if have_corona and peers:
        L.append("")
        L.append("## Where corona loses")
        L.append("")
        L.append("Rows where the best peer's median beats corona's by more than 5 % (ratio below 0.95).")
        L.append("")
        for title, field in (("wall time", "wall_ms"), ("peak RSS", "maxrss_kb")):
            losses = []
            for (w, t) in rows:
                c = med((w, t, "corona"), field)
                if not c:
                    continue
                best = None
                for n in peers:
                    v = med((w, t, n), field)
                    if v is not None and (best is None or v < best[1]):
                        best = (n, v)
                if best and best[1] / c < 0.95:
                    beaten = [n for n in peers if (med((w, t, n), field) or float("inf")) / c < 0.95]
                    losses.append((best[1] / c, w, t, best[0], beaten, c - best[1]))
            losses.sort()
            small = []
            if field == "maxrss_kb":  # losses within corona's start-up overhead: one line
                small = [x for x in losses if x[5] < 2048]
                losses = [x for x in losses if x[5] >= 2048]
            L.append(f"- {title}: " + ("none" if not losses else ""))
            for ratio, w, t, n, beaten, delta in losses:
                d = f"{delta / 1024:.1f} MB less" if field == "maxrss_kb" else f"{delta:.1f} ms less"
                L.append(f"  - {w}, {t} thread{'s' if t != 1 else ''}: best {n} at {ratio:.2f} of corona's "
                         f"({d}); beaten by {len(beaten)} of {len(peers)} peers ({', '.join(beaten)})")
            if small:
                L.append(f"  - and {len(small)} rows where a peer needs less than 2 MB less than corona (start-up "
                         f"overhead, see above): " + ", ".join(f"{w}/{t}" for _, w, t, *_ in small))

    L.append("")
    L.append("## Workloads")
    L.append("")
    L.append("Programs in `bench/suite/` (each file's header says what it models and why); the work is split "
             "among the threads, except where noted. Amounts are at scale 1.")
    L.append("")
    for name, _, threaded, desc in a.workloads:
        L.append(f"- **{name}**: {desc}" + ("" if threaded else "; one thread"))
    L.append("")
    if failures:
        L.append(f"**{len(failures)} runs failed**: " + "; ".join(failures[:20]))
        L.append("")
    if mismatches:
        L.append("**CHECKSUM MISMATCH**: " + "; ".join(mismatches))
        L.append("")
    L.append(f"Raw runs: `{os.path.basename(csv_path)}`." +
             (f" Chart of the ratios: `{os.path.basename(svg_path)}`." if chart_ok else ""))
    with open(md_path, "w") as f:
        f.write("\n".join(L) + "\n")
    return wall_ratios


def write_chart(a, allocs, rows, runs, svg_path, tmpdir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        sys.stderr.write("bench: gnuplot not found; no chart\n")
        return False
    names = [n for n in ALL_ALLOCS if n in allocs]
    peers = [n for n in names if n != "corona"]
    if "corona" not in names or not peers:
        return False

    def med(key, field):
        vals = [getattr(r, field) for r in runs.get(key, []) if r.status == "ok"]
        return median(vals)

    panels = []
    for field, title in (("wall_ms", "wall time"), ("maxrss_kb", "peak RSS")):
        dat = os.path.join(tmpdir, f"{field}.dat")
        with open(dat, "w") as f:
            f.write("row " + " ".join(peers) + "\n")
            for (w, t) in rows:
                c = med((w, t, "corona"), field)
                vals = []
                for n in peers:
                    v = med((w, t, n), field)
                    vals.append(f"{v / c:.4f}" if v and c else "NaN")
                f.write(f"\"{w}/{t}\" " + " ".join(vals) + "\n")
            gm = []
            for n in peers:
                rs = []
                for (w, t) in rows:
                    c, v = med((w, t, "corona"), field), med((w, t, n), field)
                    if c and v:
                        rs.append(v / c)
                g = geomean(rs)
                gm.append(f"{g:.4f}" if g else "NaN")
            f.write("\"geometric mean\" " + " ".join(gm) + "\n")
        panels.append((dat, title))
    width = max(900, 28 * len(rows) * max(1, len(peers)) // 2 + 200)
    script = [
        (f"set terminal pngcairo size {width},1000 enhanced font 'sans,10' background rgb 'white'"
         if svg_path.endswith(".png") else
         f"set terminal svg size {width},1000 dynamic enhanced font 'sans,11' background rgb 'white'"),
        f"set output '{svg_path}'",
        "set multiplot layout 2,1",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set logscale y 2",
        "set grid ytics",
        "set key outside right top",
        "set xtics rotate by -40 scale 0 font ',9'",
        "set ylabel 'peer / corona (log scale)'",
        "set yrange [0.05:20]",
        "set ytics (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16)",
    ]
    for dat, title in panels:
        script.append(f"set title 'corona vs peers: {title}, median peer / median corona per workload/threads "
                      f"(above 1: corona better)'")
        plot = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title columnheader({i + 2})" for i in range(len(peers)))
        script.append(f"plot {plot}, 1 with lines lw 2 lc rgb 'black' notitle")
    script.append("unset multiplot")
    gp = os.path.join(tmpdir, "chart.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(svg_path):
        sys.stderr.write(f"bench: gnuplot failed; no chart:\n{r.stderr}\n")
        return False
    return True


# ---- main ------------------------------------------------------------------

def main():
    a = parse_args(sys.argv[1:])
    if a.parse_only:
        return 0
    if a.list:
        for name, prog, threaded, desc in WORKLOADS:
            print(f"{name:13s} {'threads' if threaded else '1 thread'}  {desc}")
        return 0
    a.command_line = a.command_line or "scripts/bench " + " ".join(sys.argv[1:])
    # The commit measured, taken before any results file is rewritten (a
    # tracked file being written would make the report say "-dirty").
    a.commit = sh(f"git -C '{ROOT}' describe --always --dirty") or "unknown"
    bindir = os.path.join(os.path.abspath(a.build_dir), "bench", "suite")
    for w in a.workloads:
        if w[1][0].startswith("suite-") and not os.access(os.path.join(bindir, w[1][0]), os.X_OK):
            die(f"{os.path.join(bindir, w[1][0])} was not built (scripts/bench builds it)")

    allocs = find_allocators(a, bindir)
    if not allocs:
        die("no allocator to run")
    names = [n for n in ALL_ALLOCS if n in allocs]

    # the real programs: Debian's python3 and sqlite3 (not a pyenv shim)
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
    sqlite = shutil.which("sqlite3")
    tmpdir = tempfile.mkdtemp(prefix="corona-bench-")
    real = {}
    wl = []
    for w in a.workloads:
        if w[1][0] == "python":
            if not python:
                sys.stderr.write("bench: python3 not found; leaving out the python workload\n")
                continue
            real["python"] = [python, "-c", "pass"]
        elif w[1][0] == "sqlite":
            if not sqlite:
                sys.stderr.write("bench: sqlite3 not found; leaving out the sqlite workload\n")
                continue
            real["sqlite"] = [sqlite, ":memory:"]
            sql = os.path.join(tmpdir, "sqlwork.sql")
            with open(sql, "w") as f:
                subprocess.run([python or sys.executable, os.path.join(SUITE_SRC, "sqlwork.py"), "-s", f"{a.scale:g}"],
                               stdout=f, check=True)
        wl.append(w)
    a.workloads = wl
    check_real_programs(allocs, real)

    # the run list: (workload, threads) rows
    rows = []
    for name, prog, threaded, _ in a.workloads:
        for t in (a.thread_list if threaded else [1]):
            rows.append((name, t))
    wmap = {w[0]: w for w in a.workloads}

    def command(name, t):
        prog = wmap[name][1]
        if prog[0] == "python":
            return [python, os.path.join(SUITE_SRC, "pywork.py"), "-s", f"{a.scale:g}"], None
        if prog[0] == "sqlite":
            return [sqlite, ":memory:"], os.path.join(tmpdir, "sqlwork.sql")
        return [os.path.join(bindir, prog[0])] + prog[1:] + ["-t", str(t), "-s", f"{a.scale:g}"], None

    measure = os.path.join(bindir, "suite-measure")
    if not os.access(measure, os.X_OK):
        die(f"{measure} was not built (scripts/bench builds it)")
    base = base_env()
    envs = {}
    for n in names:
        envs[n] = dict(base)  # suite-measure preloads the allocator into the child only
        envs[n + "/python"] = dict(envs[n], PYTHONMALLOC="malloc")

    # start-up cost of each allocator: a run that does almost nothing
    a.baseline = {}
    for n in names:
        got = [run_once(measure, [os.path.join(bindir, "suite-small"), "-s", "1e-6"], envs[n], allocs[n][0],
                        None, 60, tmpdir)[0] for _ in range(3)]
        ok = [u for u in got if u.status == "ok"]
        if ok:
            a.baseline[n] = (median([u.wall_ms for u in ok]), median([u.maxrss_kb for u in ok]))

    os.makedirs(a.out, exist_ok=True)
    csv_path = os.path.join(a.out, "latest.csv")
    md_path = os.path.join(a.out, "latest.md")
    svg_path = os.path.join(a.out, "latest.svg")
    total = a.reps * len(rows) * len(names)
    sys.stderr.write(f"bench: {len(names)} allocators ({', '.join(names)}), {len(a.workloads)} workloads, "
                     f"threads {','.join(map(str, a.thread_list))}, {a.reps} reps, scale {a.scale:g}: "
                     f"{total} runs\n")
    prog = Progress(total)
    runs = {}
    failures = []
    raw = []
    seq = 0
    t_start = time.monotonic()
    for rep in range(a.reps):
        for ri, (w, t) in enumerate(rows):
            k = (rep + ri) % len(names)
            order = names[k:] + names[:k]
            for n in order:
                seq += 1
                argv, stdin = command(w, t)
                env = envs[n + "/python"] if w == "python" else envs[n]
                ru, out, err = run_once(measure, argv, env, allocs[n][0], stdin, a.timeout, tmpdir)
                st, wall = ru.status, ru.wall_ms
                r = Run()
                r.status, r.wall_ms = st, wall
                r.user_ms, r.sys_ms = ru.user_ms, ru.sys_ms
                r.maxrss_kb, r.minflt, r.majflt = ru.maxrss_kb, ru.minflt, ru.majflt
                r.nvcsw, r.nivcsw = ru.nvcsw, ru.nivcsw
                r.work_ms = r.checksum = r.alloc = r.live_peak_kb = None
                r.note = ""
                if st == "ok":
                    if w == "sqlite":
                        r.checksum = f"{zlib.crc32(out.encode()):016x}"
                        r.alloc = allocs[n][1]  # checked with LD_DEBUG above
                    else:
                        kv = {}
                        lines = [ln for ln in out.splitlines() if ln.startswith("workload=")]
                        for tok in (lines[-1].split() if lines else []):
                            if "=" in tok:
                                key, val = tok.split("=", 1)
                                kv[key] = val
                        r.checksum, r.alloc = kv.get("checksum"), kv.get("alloc")
                        r.work_ms = float(kv["work_ms"]) if "work_ms" in kv else None
                        r.live_peak_kb = int(kv["live_peak_kb"]) if "live_peak_kb" in kv else None
                        if not r.checksum:
                            r.status = "bad-output"
                    if r.alloc is not None and os.path.basename(r.alloc) != allocs[n][1]:
                        prog.finish()
                        die(f"{w} ({t} threads) under {n}: malloc came from {r.alloc}, not {allocs[n][1]}: "
                            f"the preload did not take effect. Stopping: the figures would be meaningless.")
                if r.status != "ok":
                    msg = (err.strip().splitlines() or [""])[-1][:200]
                    r.note = msg
                    failures.append(f"{w}/{t}/{n} rep {rep + 1}: {r.status} {msg}")
                r.cpu_ms = r.user_ms + r.sys_ms
                runs.setdefault((w, t, n), []).append(r)
                raw.append((seq, rep + 1, w, t, n, r))
                prog.show(f"rep {rep + 1}/{a.reps}  {w} t={t}  {n}: " +
                          (f"{wall:.0f} ms, {ru.maxrss_kb / 1024:.0f} MB" if r.status == "ok" else r.status.upper()),
                          force=r.status != "ok")
    prog.finish()
    elapsed = time.monotonic() - t_start

    # checksums: the same under every allocator
    mismatches = []
    for (w, t) in rows:
        sums = {}
        for n in names:
            for r in runs.get((w, t, n), []):
                if r.status == "ok":
                    sums.setdefault(r.checksum, set()).add(n)
        if len(sums) > 1:
            mismatches.append(f"{w}/{t}: " + ", ".join(f"{c} ({'/'.join(sorted(s))})" for c, s in sums.items()))

    with open(csv_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["seq", "rep", "workload", "threads", "allocator", "status", "wall_ms", "user_ms", "sys_ms",
                     "maxrss_kb", "minflt", "majflt", "nvcsw", "nivcsw", "cpu_ms", "work_ms", "checksum", "live_peak_kb",
                     "note"])
        for seq, rep, w, t, n, r in raw:
            wr.writerow([seq, rep, w, t, n, r.status, f"{r.wall_ms:.3f}", f"{r.user_ms:.3f}", f"{r.sys_ms:.3f}",
                         r.maxrss_kb, r.minflt, r.majflt, r.nvcsw, r.nivcsw,
                         "" if r.work_ms is None else f"{r.work_ms:.3f}", r.checksum or "",
                         "" if r.live_peak_kb is None else r.live_peak_kb, r.note])
    chart_ok = write_chart(a, allocs, rows, runs, svg_path, tmpdir)
    write_report(a, allocs, rows, runs, csv_path, md_path, svg_path, elapsed, failures, mismatches, chart_ok)
    shutil.rmtree(tmpdir, ignore_errors=True)
    with open(md_path) as f:
        sys.stdout.write(f.read())
    print(f"\nbench: wrote {md_path}, {csv_path}" + (f", {svg_path}" if chart_ok else "") +
          f" ({total} runs in {fmt_dur(elapsed)})")
    if mismatches:
        sys.stderr.write("bench: CHECKSUM MISMATCH: " + "; ".join(mismatches) + "\n")
    if failures:
        sys.stderr.write(f"bench: {len(failures)} runs failed (see {csv_path})\n")
    return 1 if (mismatches or failures) else 0


if __name__ == "__main__":
    sys.exit(main())
