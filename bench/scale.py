#!/usr/bin/env python3
"""`make bench-scale`: the importer's cost per unit as jobs grow. N symbols x 24 months of tiny
monthly 1d archives (a local mirror, generated once), a directory target and write.chunk_rows 100
(about 3 units a Write request, as with 1m archives where a request carries about one unit), at
2,400, 9,600 and 38,400 units. For each size: a first run from nothing, then a re-run with nothing
to do; units/s, peak RSS (the importer's own VmHWM, from its JSON summary) and the state files'
size (snapshot + journal). Runs per size: --runs (median). Appends a section to docs/performance.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_archives  # noqa: E402

MONTHS = [(2022 + i // 12, i % 12 + 1) for i in range(24)]


def mirror(root, symbols):
    for s in symbols:
        folder = os.path.join(root, "data/spot/monthly/klines", s, "1d")
        for y, m in MONTHS:
            gen_archives.write_archive(folder, s, "1d", y, m)


def job(work, root, symbols, name):
    path = os.path.join(work, name + ".yml")
    with open(path, "w") as f:
        f.write(f"""name: {name}
source:
  base_url: {root}
  cache_dir: {work}/cache
market: spot
symbols: [{", ".join(symbols)}]
intervals: [1d]
from: 2022-01
to: 2023-12
target:
  directory: {work}/mktsdb-{name}
write:
  chunk_rows: 100
manifest: {work}/state/{name}.manifest.db
""")
    return path


def run(binary, path):
    t0 = time.perf_counter()
    p = subprocess.run([binary, "nightly", path], capture_output=True, text=True,
                       env=dict(os.environ, BINANCE_IMPORT_TODAY="2024-06-01"))
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"run failed ({p.returncode}): {p.stderr[-1500:]}")
    summary = json.loads(p.stdout[p.stdout.index("{"): p.stdout.rindex("}") + 1])
    return wall, summary


def fresh(work):
    """A new folder for one run's target and state. Runs never delete the trees of earlier runs
    while the bench goes on: ext4 (here without a journal) skips recently deleted inodes when it
    allocates new ones, and tens of thousands of deletions slowed the next run's file creation
    two-fold in perf (find_inode_bit/recently_deleted). Everything goes at the end."""
    runs = os.path.join(work, "runs")
    os.makedirs(runs, exist_ok=True)
    return tempfile.mkdtemp(dir=runs)


def state_bytes(work, name):
    base = os.path.join(work, "state", name + ".manifest.db")
    return sum(os.path.getsize(p) for p in (base, base + "-wal") if os.path.exists(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default="bench/out/scale")
    ap.add_argument("--sizes", default="100,400,1600", help="symbols per size (x 24 months = units)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory-symbols", type=int, default=4200, help="symbols of the one ~100,000-unit run (0: skip)")
    ap.add_argument("--out", default="docs/performance.md")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    root = os.path.join(a.work, "mirror")
    symbols = [f"S{i:04d}USDT" for i in range(max(sizes))]
    t0 = time.time()
    mirror(root, symbols)
    print(f"mirror of {len(symbols) * 24} archives ready in {time.time() - t0:.0f} s", flush=True)
    rows = []
    for n in sizes:
        first, again, rss, state = [], [], [], []
        for r in range(a.runs):
            name = f"scale-{n}"
            path = job(fresh(a.work), os.path.abspath(root), symbols[:n], name)
            wall, summary = run(a.bin, path)
            units = summary["units"]
            assert summary["done"] == units == n * 24, summary
            first.append(units / wall)
            rss.append(summary["peak_rss_bytes"] / 2**20)
            state.append(state_bytes(os.path.dirname(path), name) / 2**20)
            wall2, summary2 = run(a.bin, path)
            assert summary2["skipped"] == units and summary2["write_requests"] == 0, summary2
            again.append(units / wall2)
            print(f"{units} units: first run {units / wall:.0f} units/s, re-run {units / wall2:.0f} units/s, "
                  f"peak RSS {rss[-1]:.0f} MB, state {state[-1]:.1f} MB", flush=True)
        rows.append((n * 24, statistics.median(first), statistics.median(again), statistics.median(rss), statistics.median(state),
                     min(first), max(first)))
    memory = None
    if a.memory_symbols:
        # One first run at about 100,000 units, for peak memory (the bound: 200 MB).
        symbols = [f"S{i:04d}USDT" for i in range(a.memory_symbols)]
        mirror(root, symbols)
        wall, summary = run(a.bin, job(fresh(a.work), os.path.abspath(root), symbols, f"scale-{a.memory_symbols}"))
        assert summary["done"] == summary["units"] == a.memory_symbols * 24, summary
        memory = (summary["units"], summary["peak_rss_bytes"] / 2**20, summary["units"] / wall)
        print(f"{summary['units']} units: first run {memory[2]:.0f} units/s, peak RSS {memory[1]:.0f} MB", flush=True)
    shutil.rmtree(os.path.join(a.work, "runs"), ignore_errors=True)
    lines = ["", f"## Scale (`make bench-scale`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores. N symbols x 24 monthly 1d archives from a local mirror into a",
             f"directory target, write.chunk_rows 100 (about 3 units a request); medians of {a.runs} runs per size.", "",
             "| units | first run units/s (min-max) | time per unit vs the smallest | re-run (nothing to do) units/s | peak RSS MB | state files MB |",
             "|---|---|---|---|---|---|"]
    base = 1 / rows[0][1]
    for units, f, g, rss, st, lo, hi in rows:
        lines.append(f"| {units:,} | {f:,.0f} ({lo:,.0f}-{hi:,.0f}) | {(1 / f) / base:.2f} | {g:,.0f} | {rss:.0f} | {st:.1f} |")
    if memory:
        lines += ["", f"At {memory[0]:,} units (one first run): peak RSS {memory[1]:.0f} MB, {memory[2]:,.0f} units/s."]
    lines += ["", "Targets (issue 14): 4x the units at most 1.3x the time per unit; >= 2,000 units/s first run at 38,400 units;",
              ">= 20,000 units/s for a re-run with nothing to do; peak RSS under 200 MB at 100,000 units.", ""]
    with open(a.out, "a") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
