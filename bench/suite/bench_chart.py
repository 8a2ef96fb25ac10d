"""bench_chart.py — latest.svg, the chart of the benchmark runner: each peer's
median divided by corona's per workload and thread count, for wall time and
peak RSS, drawn by gnuplot."""
import os
import shutil
import subprocess
import sys

from bench_util import geomean, median
from bench_workloads import ALL_ALLOCS


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
