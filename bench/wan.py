#!/usr/bin/env python3
"""`make bench-wan`: the importer over a real network's round trip. The fixture archive server
(files and the S3 listing) behind Tests/servers/latency_proxy.py, which delays every chunk by
half the round trip each way, at 0, 100 and 250 ms round trips. For 50 and 200 keys (symbols x
1d, 10 small archives each: 3 monthly, 7 daily), side by side in one run:

- a first nightly (empty state, cache and target) and a quiet nightly (nothing new);
- the same first nightly with --baseline-bin (an earlier build), when given;
- the physical limit of the same transfer: `curl --parallel --parallel-max 16` fetching the same
  files (archives and CHECKSUMs) through the same proxy.

Then a whole market's quiet nightly (--market-keys, 2,000 by default; one monthly and one daily
archive per key), against its bound: ceil(keys / 32 listings in flight) round trips.

Medians of --runs runs. Appends a section to docs/performance.md (or --out).
"""
import argparse
import datetime
import os
import platform
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

TODAY = "2024-04-08"  # the current month: April, with 1..7 published as dailies


class Server:
    def __init__(self, script, *args):
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/servers", script), *args, "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        self.port = int(line.split("127.0.0.1:")[1].split("/")[0])

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


def tree(root, symbols):
    for s in symbols:
        for m in (1, 2, 3):
            gen_archives.write_archive(os.path.join(root, "data/spot/monthly/klines", s, "1d"), s, "1d", 2024, m)
        for d in range(1, 8):
            gen_archives.write_archive(os.path.join(root, "data/spot/daily/klines", s, "1d"), s, "1d", 2024, 4, day=d)


def job(work, port, symbols, name):
    path = os.path.join(work, name + ".yml")
    with open(path, "w") as f:
        f.write(f"""name: {name}
source:
  base_url: http://127.0.0.1:{port}/
  listing_url: http://127.0.0.1:{port}/listing
  cache_dir: {work}/cache-{name}
market: spot
symbols: [{", ".join(symbols)}]
intervals: [1d]
from: 2024-01
to: latest
target:
  directory: {work}/db-{name}
manifest: {work}/state/{name}.manifest.db
""")
    return path


def timed(args):
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, BINANCE_IMPORT_TODAY=TODAY))
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {p.returncode}: {p.stdout[-500:]} {p.stderr[-500:]}")
    return time.perf_counter() - t0


def curl_parallel(work, port, root):
    files = []
    for dirpath, _, names in os.walk(os.path.join(root, "data")):
        for n in names:
            files.append(os.path.relpath(os.path.join(dirpath, n), root))
    config = os.path.join(work, "curl.cfg")
    out = os.path.join(work, "curl-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with open(config, "w") as f:
        for i, rel in enumerate(files):
            f.write(f'url = "http://127.0.0.1:{port}/{rel}"\noutput = "{out}/{i}"\n')
    t0 = time.perf_counter()
    subprocess.run(["curl", "--silent", "--fail", "--parallel", "--parallel-max", "16", "--config", config], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, len(files)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--baseline-bin", help="an earlier build, run beside --bin on the same first nightly")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rtts", default="0,100,250", help="round trips in ms")
    ap.add_argument("--keys", default="50,200")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/performance.md"))
    ap.add_argument("--market-keys", type=int, default=2000, help="keys of the whole-market quiet nightly (0: skip it)")
    ap.add_argument("--only-market", action="store_true", help="run the whole-market quiet nightly alone")
    a = ap.parse_args()
    if a.only_market:
        a.keys = ""
    work = tempfile.mkdtemp(prefix="bench-wan-")
    rows = []
    try:
        for n in [int(k) for k in a.keys.split(",") if k]:
            symbols = [f"S{i:04d}USDT" for i in range(n)]
            root = os.path.join(work, f"tree-{n}")
            tree(root, symbols)
            archives = Server("archive_server.py", root, "--page-size", "1000")  # S3's page
            try:
                for rtt in map(int, a.rtts.split(",")):
                    proxy = Server("latency_proxy.py", "--upstream", str(archives.port), "--delay-ms", str(rtt / 2))
                    try:
                        figures = {"first": [], "quiet": [], "baseline first": [], "baseline quiet": [], "curl": []}
                        for r in range(a.runs):
                            for label, binary in [("", a.bin)] + ([("baseline ", a.baseline_bin)] if a.baseline_bin else []):
                                name = f"{'b' if label else 'n'}{n}-{rtt}-{r}"
                                path = job(work, proxy.port, symbols, name)
                                figures[label + "first"].append(timed([binary, "nightly", path]))
                                figures[label + "quiet"].append(timed([binary, "nightly", path]))
                                for d in ("cache-" + name, "db-" + name):
                                    shutil.rmtree(os.path.join(work, d), ignore_errors=True)
                            seconds, count = curl_parallel(work, proxy.port, root)
                            figures["curl"].append(seconds)
                        med = {k: statistics.median(v) for k, v in figures.items() if v}
                        rows.append((n, rtt, med, count))
                        print(n, rtt, {k: round(v, 2) for k, v in med.items()}, flush=True)
                    finally:
                        proxy.stop()
            finally:
                archives.stop()
        market = whole_market(a, work) if a.market_keys else []
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"\n## make bench-wan ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores)\n",
             "Nightly of N keys (symbols x 1d, 10 archives each: 3 monthly, 7 daily) from the fixture archive server "
             "behind a proxy that delays each chunk by half the round trip each way (Tests/servers/latency_proxy.py); "
             f"medians of {a.runs} runs, seconds. curl: `curl --parallel --parallel-max 16` fetching the same files "
             "(archives and CHECKSUMs) through the same proxy: the transfer's physical limit. The first run's download "
             "phase is about first minus quiet (a quiet nightly is the planning alone).\n",
             "| keys | round trip | first nightly | quiet nightly | first - quiet (downloads) | curl --parallel (files) | downloads / curl |"
             + (" baseline first | baseline quiet |" if a.baseline_bin else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if a.baseline_bin else "")]
    for n, rtt, med, count in rows:
        downloads = med["first"] - med["quiet"]
        line = (f"| {n} | {rtt} ms | {med['first']:.1f} | {med['quiet']:.1f} | {downloads:.1f} | {med['curl']:.1f} ({count}) | "
                f"{downloads / med['curl']:.2f} |")
        if a.baseline_bin:
            line += f" {med['baseline first']:.1f} | {med['baseline quiet']:.1f} |"
        lines.append(line)
    if not rows:
        lines = [f"\n## make bench-wan --only-market ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores)"]
    if market:
        # A quiet night lists, per key, the monthly folder (February, a recent month, has no
        # monthly archive yet) and, in the same round trip, the daily files from February on (one
        # request: 2024's prefix after January): one round trip a key, 32 keys in flight.
        bound = -(-a.market_keys // 32)
        lines += ["", f"Whole-market quiet nightly: {a.market_keys} keys (symbols x 1d; one monthly archive, 2024-03, and one daily, "
                  "2024-04-01, each; today 2024-04-08), the first nightly without delay, then quiet nightlies through the proxy; "
                  f"medians of {a.runs} runs, seconds. A quiet night lists 2 folders a key, at once: the monthly folder "
                  "(February has no monthly archive yet) and the daily files from February on (one request: the recent months "
                  "together); the baseline, an earlier build, listed 3 one after another (the monthly folder, then February's and "
                  f"April's dailies). Bound: ceil(keys / 32 keys in flight) x round trip = {bound} round trips.", "",
                  "| keys | round trip | quiet nightly | bound | quiet / bound |" + (" baseline quiet |" if a.baseline_bin else ""),
                  "|---|---|---|---|---|" + ("---|" if a.baseline_bin else "")]
        for rtt, quiet, baseline in market:
            b = bound * rtt / 1000
            lines.append(f"| {a.market_keys} | {rtt} ms | {quiet:.1f} | {b:.1f} | {quiet / b:.2f} |" if rtt else
                         f"| {a.market_keys} | 0 ms | {quiet:.1f} | - | - |")
            if a.baseline_bin:
                lines[-1] += f" {baseline:.1f} |"
    with open(a.out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def whole_market(a, work):
    """The quiet nightly of a whole market's keys at each round trip (the first nightly, which
    only fills the state, without delay), for --bin and --baseline-bin side by side."""
    n = a.market_keys
    symbols = [f"M{i:04d}USDT" for i in range(n)]
    root = os.path.join(work, f"market-{n}")
    for s in symbols:
        gen_archives.write_archive(os.path.join(root, "data/spot/monthly/klines", s, "1d"), s, "1d", 2024, 3)
        gen_archives.write_archive(os.path.join(root, "data/spot/daily/klines", s, "1d"), s, "1d", 2024, 4, day=1)
    archives = Server("archive_server.py", root, "--page-size", "1000")
    out = []
    try:
        binaries = [("n", a.bin)] + ([("b", a.baseline_bin)] if a.baseline_bin else [])
        for rtt in map(int, a.rtts.split(",")):
            proxy = Server("latency_proxy.py", "--upstream", str(archives.port), "--delay-ms", str(rtt / 2))
            try:
                quiet = {tag: [] for tag, _ in binaries}
                for r in range(a.runs):
                    for tag, binary in binaries:
                        name = f"m{tag}{n}-{rtt}-{r}"
                        timed([binary, "nightly", job(work, archives.port, symbols, name)])
                        quiet[tag].append(timed([binary, "nightly", job(work, proxy.port, symbols, name)]))
                        for d in ("cache-" + name, "db-" + name):
                            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
                out.append((rtt, statistics.median(quiet["n"]), statistics.median(quiet["b"]) if a.baseline_bin else None))
                print("market", n, rtt, [round(statistics.median(v), 2) for v in quiet.values()], flush=True)
            finally:
                proxy.stop()
    finally:
        archives.stop()
    return out


if __name__ == "__main__":
    main()
