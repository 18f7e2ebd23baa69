#!/usr/bin/env python3
"""Two binaries of the importer side by side (`make bench-compare A=old B=new`): the same job of
`make bench` (30 monthly 1m archives, 1.3M rows) into the test server in --sink mode and into a
data directory, runs alternating A/B; medians and the pair-by-pair ratio B/A of client CPU and
wall time. For a change that must keep the speed: a ratio near 1 within the runs' spread."""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import gen_archives  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline binary")
    ap.add_argument("--b", required=True, help="the binary measured against it")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="compare-")
    mirror = os.path.join(bench.ROOT, "bench/out/mirror")
    symbols = [f"B{i:02d}USDT" for i in range(10)]
    months = ["2024-01", "2024-02", "2024-03"]
    for s in symbols:
        for m in months:
            y, mo = map(int, m.split("-"))
            gen_archives.write_archive(os.path.join(mirror, f"data/spot/monthly/klines/{s}/1m"), s, "1m", y, mo)
    server = bench.Server("--sink")
    print(f"| target | A CPU s | B CPU s | CPU B/A (min-max) | A wall s | B wall s | wall B/A (min-max) |\n|---|---|---|---|---|---|---|")
    for label, target in [("test server, --sink", server.url), ("data directory", os.path.join(work, "mktsdb"))]:
        job = bench.job_file(work, mirror, target, symbols, months, "compare", "float32")
        results = {"a": [], "b": []}
        for binary in (a.a, a.b):
            bench.importer_run(os.path.abspath(binary), job, work, "compare")  # warm-up
        for _ in range(a.runs):
            for side, binary in (("a", a.a), ("b", a.b)):
                if target.startswith("/"):
                    shutil.rmtree(target, ignore_errors=True)
                results[side].append(bench.importer_run(os.path.abspath(binary), job, work, "compare"))
        cpu = [b["cpu"] / x["cpu"] for x, b in zip(results["a"], results["b"])]
        wall = [b["wall"] / x["wall"] for x, b in zip(results["a"], results["b"])]
        med = lambda side, k: statistics.median(r[k] for r in results[side])
        print(f"| {label} | {med('a', 'cpu'):.2f} | {med('b', 'cpu'):.2f} | {statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) | "
              f"{med('a', 'wall'):.2f} | {med('b', 'wall'):.2f} | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) |")
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
