#!/usr/bin/env python3
"""`make bench`: binance-import against the Python baseline (bench/baseline_loader.py) on the
same generated archives, side by side, alternating A/B, with the MarketStore ceiling beside them.

1. decode only: the importer's decoder vs pandas read_csv vs plain inflate (decode-bench);
2. end to end into a MarketStore-protocol sink: the test server in --sink mode (decodes and
   acknowledges without storing), and a real server at $MKTS_URL when set; beside them the
   sink's ceiling: the importer's own Write requests, recorded once, replayed back to back;
3. the directory sink on the same archives, against the RPC path into the (storing) test server.

Figures per run: wall time, client CPU seconds (user+sys of the client process only, from
getrusage of the child), rows/s, client CPU per million rows, peak RSS of the client (its own
VmHWM). Medians with min-max; ratios importer/baseline pair by pair. Writes docs/performance.md.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_archives  # noqa: E402


def timed(cmd, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-800:]}{p.stdout[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = p.stdout
    info = json.loads(out[out.index("{"): out.rindex("}") + 1])
    return wall, cpu, info


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/servers/marketstore_server.py"), *args, "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split("listening on ")[1].strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def job_file(work, mirror, target, symbols, months, name, dtype):
    tgt = f"marketstore: {target}" if target.startswith("http") else f"directory: {target}"
    path = os.path.join(work, name + ".yml")
    open(path, "w").write(f"""name: {name}
source:
  base_url: {mirror}
  cache_dir: {work}/cache
market: spot
symbols: [{", ".join(symbols)}]
intervals: [1m]
from: {months[0]}
to: {months[-1]}
dtype: {dtype}
target:
  {tgt}
write:
  chunk_rows: 50000
manifest: {work}/state/{name}.manifest.json
""")
    return path


def importer_run(binary, job, work, name):
    shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)
    wall, cpu, info = timed([binary, "run", job, "--log-format", "json"], env=dict(os.environ, BINANCE_IMPORT_TODAY="2030-01-01"))
    return {"wall": wall, "cpu": cpu, "rows": info["rows"], "rss": info["peak_rss_bytes"]}


def baseline_run(url, archives, dtype):
    wall, cpu, info = timed([sys.executable, os.path.join(HERE, "baseline_loader.py"), url, dtype, *archives])
    return {"wall": wall, "cpu": cpu, "rows": info["rows"], "rss": info["peak_rss_bytes"]}


def replay_run(url, recorded):
    wall, _, info = timed([sys.executable, os.path.join(HERE, "replay.py"), url, recorded])
    return {"wall": info["seconds"], "rows": info["rows"], "requests": info["requests"]}


def fmt(values, digits=2):
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def row(label, runs):
    walls = [r["wall"] for r in runs]
    cpus = [r["cpu"] for r in runs]
    rows = runs[0]["rows"]
    return (f"| {label} | {rows:,} | {fmt(walls)} | {fmt(cpus)} | {statistics.median(rows / w for w in walls):,.0f} | "
            f"{fmt([c / rows * 1e6 for c in cpus])} | {statistics.median(r['rss'] for r in runs) / 2**20:.0f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--decode-bin", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/performance.md"))
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    work = tempfile.mkdtemp(prefix="bench-")
    mirror = os.path.join(ROOT, "bench/out/mirror")
    symbols = [f"B{i:02d}USDT" for i in range(10)]
    months = ["2024-01", "2024-02", "2024-03"]
    archives = []
    for s in symbols:
        for m in months:
            y, mo = map(int, m.split("-"))
            archives.append(gen_archives.write_archive(os.path.join(mirror, f"data/spot/monthly/klines/{s}/1m"), s, "1m", y, mo))
    one_second = gen_archives.write_archive(os.path.join(ROOT, "bench/out"), "BTCUSDT", "1s", 2025, 3, micro=True)
    dtype = "float32"
    lines = ["# Performance (`make bench`)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Archive set: {len(archives)} monthly 1m archives "
             f"({len(symbols)} symbols x {len(months)} months, 44,640 to 41,760 rows each, `bench/gen_archives.py`), OHLCV as {dtype}, "
             f"plus one monthly 1s archive for decode. Runs alternate A/B, {a.runs} each; medians with (min-max). "
             "Client CPU is user+sys of the client process only. Sections run in the order 1, 3, 2 (a real server's "
             "background work after an ingest stays out of section 3). Command: `make bench`.", ""]

    # 1. Decode only.
    lines += ["## 1. Decode only (one core)", "",
              "| archive | inflater | inflate-only s | importer decode s | decode / inflate, same inflater | decode / zlib inflate | pandas read_csv s | importer vs pandas |",
              "|---|---|---|---|---|---|---|---|"]
    import pandas as pd
    for label, path in (("monthly 1m", archives[0]), ("monthly 1s", one_second)):
        c = json.loads(subprocess.run([a.decode_bin, "compare", path, "--runs", str(a.runs)], capture_output=True, text=True, check=True).stdout)
        pandas = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            pd.read_csv(path, header=None, compression="zip")
            pandas.append(time.perf_counter() - t0)
        for engine in ("isal", "zlib"):
            decode, inflate = c[f"decode_{engine}_seconds"], c[f"inflate_{engine}_seconds"]
            same = [d / i for d, i in zip(decode, inflate)]
            vs_zlib = [d / i for d, i in zip(decode, c["inflate_zlib_seconds"])]
            lines.append(f"| {label} | {engine}{' (default)' if engine == 'isal' else ''} | {fmt(inflate, 4)} | {fmt(decode, 4)} | {fmt(same)} | "
                         f"{fmt(vs_zlib)} | {fmt(pandas, 4)} | {statistics.median(pandas) / statistics.median(decode):.1f}x faster |")

    # Sections 3 then 2: a real server keeps working (its write-ahead log) after an ingest, which
    # must not fall into the directory timings. The document keeps the order 1, 2, 3.
    header = ["| client | rows | wall s | client CPU s | rows/s | client CPU s per million rows | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    # 3. Directory sink vs RPC into the storing test server.
    server = Server()
    rpc_job = job_file(work, mirror, server.url, symbols, months, "rpc", dtype)
    dir_target = os.path.join(work, "mktsdb")
    dir_job = job_file(work, mirror, dir_target, symbols, months, "dir", dtype)
    rpc, dirs = [], []
    for _ in range(a.runs):
        rpc.append(importer_run(binary, rpc_job, work, "rpc"))
        shutil.rmtree(dir_target, ignore_errors=True)
        dirs.append(importer_run(binary, dir_job, work, "dir"))
    server.stop()
    ratio = statistics.median(r["wall"] / d["wall"] for r, d in zip(rpc, dirs))
    third = ["## 3. Directory sink vs the RPC path", ""] + header + [row("binance-import -> data directory", dirs),
              row("binance-import -> RPC -> test server (storing)", rpc), "",
              f"Directory sink speed-up over the RPC path, pair by pair (median): {ratio:.1f}x (target: at least 10x). "
              "The storing test server is Python; the real server ingests 300k-550k rows/s on 2 cores "
              "(../shared/reference/marketstore.md), which the directory sink's rows/s above should be read against.", ""]
    # 2. End to end into the sink, with its ceiling: the importer's own requests, recorded once and
    # replayed back to back (bench/replay.py).
    second = []
    recorded = os.path.join(work, "recorded")
    recorder = Server("--sink", "--record", recorded)
    importer_run(binary, job_file(work, mirror, recorder.url, symbols, months, "record", dtype), work, "record")
    recorder.stop()
    sinks = [("test server, --sink", None)]
    if os.environ.get("MKTS_URL"):
        # MKTS_LABEL says which server it is (its build), for the reader of docs/performance.md.
        sinks.append((f"real MarketStore at $MKTS_URL ({os.environ.get('MKTS_LABEL', 'unlabelled')})", os.environ["MKTS_URL"]))
    for number, (label, url) in enumerate(sinks):
        server = Server("--sink") if url is None else None
        target = url or server.url
        job = job_file(work, mirror, target, symbols, months, "e2e", dtype)
        importer_run(binary, job, work, "e2e")  # warm-up: a real server creates its buckets once
        imp, base, ceiling = [], [], []
        for _ in range(a.runs):
            imp.append(importer_run(binary, job, work, "e2e"))
            base.append(baseline_run(target, archives, dtype))
            ceiling.append(replay_run(target, recorded))
        cpu_ratio = statistics.median(i["cpu"] / b["cpu"] for i, b in zip(imp, base))
        wall_ratio = statistics.median(i["wall"] / b["wall"] for i, b in zip(imp, base))
        of_ceiling = statistics.median(r["wall"] / i["wall"] for i, r in zip(imp, ceiling))
        second += [f"## 2{'ab'[number] if len(sinks) > 1 else ''}. End to end into {label}", ""] + header + [
            row("binance-import", imp), row("Python baseline (pandas + pymarketstore)", base),
            f"| ceiling: the importer's requests replayed | {ceiling[0]['rows']:,} | {fmt([r['wall'] for r in ceiling])} | - | "
            f"{ceiling[0]['rows'] / statistics.median(r['wall'] for r in ceiling):,.0f} | - | - |", "",
            f"Ratios importer/baseline, pair by pair (median): client CPU {cpu_ratio:.2f}, wall {wall_ratio:.2f} "
            f"(target: client CPU per million rows at most 1/3 of the baseline's).",
            f"Importer rows/s as a share of the ceiling's, run by run (median): {of_ceiling:.0%} (target for a real server: at least 90%). "
            f"The ceiling replays the {ceiling[0]['requests']} recorded Write requests over one connection, timing only the sending.", ""]
        if server:
            server.stop()

    lines += second + third
    if not os.environ.get("MKTS_URL"):
        lines += ["No real MarketStore in this run: set MKTS_URL (e.g. http://127.0.0.1:5993/rpc) to add section 2 for it.", ""]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
