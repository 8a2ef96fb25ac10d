"""bench_measure.py — one run of the benchmark runner and its figures: a
command run through suite-measure (which preloads the allocator into it
only) and what it reported (wall, user and system time, peak RSS, page
faults, context switches), the record kept of each run, and the progress
line on stderr."""
import os
import shutil
import subprocess
import sys
import time

from bench_util import fmt_dur


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
