"""bench_util.py — the small helpers every part of the benchmark runner uses:
stopping with a message, a shell command's output, durations, medians and
geometric means."""
import math
import statistics
import subprocess
import sys


def die(msg):
    sys.stderr.write(f"\nbench: {msg}\n")
    sys.exit(1)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def fmt_dur(s):
    s = int(s + 0.5)
    return f"{s // 60}:{s % 60:02d}"


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None
