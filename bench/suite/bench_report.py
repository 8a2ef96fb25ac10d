"""bench_report.py — the results files of the benchmark runner: latest.md (the
machine, the command, tables of medians with each peer's ratio to corona,
geometric means, where corona loses, the workloads) and latest.csv (every
run, raw)."""
import csv
import datetime
import os
import platform

from bench_util import fmt_dur, geomean, median, sh
from bench_workloads import ALL_ALLOCS


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


def write_csv(csv_path, raw):
    """latest.csv: one row per run, in the order they ran; RAW holds
    (seq, rep, workload, threads, allocator, Run)."""
    with open(csv_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["seq", "rep", "workload", "threads", "allocator", "status", "wall_ms", "user_ms", "sys_ms",
                     "maxrss_kb", "minflt", "majflt", "nvcsw", "nivcsw", "cpu_ms", "work_ms", "checksum", "live_peak_kb",
                     "note"])
        for seq, rep, w, t, n, r in raw:
            wr.writerow([seq, rep, w, t, n, r.status, f"{r.wall_ms:.3f}", f"{r.user_ms:.3f}", f"{r.sys_ms:.3f}",
                         r.maxrss_kb, r.minflt, r.majflt, r.nvcsw, r.nivcsw,
                         "" if r.cpu_ms is None else f"{r.cpu_ms:.3f}",
                         "" if r.work_ms is None else f"{r.work_ms:.3f}", r.checksum or "",
                         "" if r.live_peak_kb is None else r.live_peak_kb, r.note])
