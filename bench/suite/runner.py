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

This file holds the command line and the order of the runs; the rest is in
bench_workloads.py (the workloads and allocators), bench_allocators.py
(finding them and checking they are in use), bench_measure.py (one run),
bench_report.py (latest.md and latest.csv) and bench_chart.py (latest.svg).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

from bench_allocators import base_env, check_real_programs, find_allocators
from bench_chart import write_chart
from bench_measure import Progress, Run, run_once
from bench_report import write_csv, write_report
from bench_util import die, fmt_dur, median, sh
from bench_workloads import ALL_ALLOCS, ROOT, SUITE_SRC, WORKLOADS


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

    write_csv(csv_path, raw)
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

