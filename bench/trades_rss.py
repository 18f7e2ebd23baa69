#!/usr/bin/env python3
"""Peak memory of a trades import against the size of the archive: a synthetic monthly spot
trades archive of N rows (IDs consecutive, millisecond times, eight-decimal prices) read from a
local mirror and written to the MarketStore test server in --sink mode (it acknowledges and
drops the rows, so only the importer's own memory is measured). Prints, per size, the rows
written, the time and the importer's peak RSS from its run report.

usage: bench/trades_rss.py --bin .build/release/binance-import [--rows 5000000 50000000]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def write_archive(folder, rows):
    """BTCUSDT-trades-2024-01.zip with `rows` trades spread over January 2024."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "BTCUSDT-trades-2024-01.zip")
    start, span = 1_704_067_200_000, 31 * 86_400_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("BTCUSDT-trades-2024-01.csv", "w", force_zip64=True) as out:
            batch = []
            for n in range(rows):
                t = start + n * span // rows
                batch.append(f"{n + 1},{42000 + n % 977}.{(n * 7919) % 100000000:08d},0.{n % 99991:05d},{n % 5000}.25,{t},{'True' if n & 1 else 'False'},True\n")
                if len(batch) == 100_000:
                    out.write("".join(batch).encode())
                    batch = []
            out.write("".join(batch).encode())
    return path


def trades_job(work, mirror, url, name):
    """A job of BTCUSDT's January 2024 spot trades from `mirror` into `url`; its path."""
    path = os.path.join(work, f"{name}.yml")
    open(path, "w").write(f"""name: {name}
source: {{base_url: {mirror}, checksum: optional, cache_dir: {work}/cache}}
market: spot
dataset: trades
symbols: [BTCUSDT]
from: 2024-01
to: 2024-01
target: {{marketstore: "{url}"}}
write: {{chunk_rows: 100000}}
manifest: {work}/state/{name}.manifest.db
""")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/release/binance-import"))
    ap.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 50_000_000])
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="trades-rss-")
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/servers/marketstore_server.py"), "--sink", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().split("listening on ")[1].strip()
    print("| trades in the monthly archive | archive | rows written | time | rows/s | importer peak RSS |")
    print("|---|---|---|---|---|---|")
    try:
        for rows in a.rows:
            mirror = os.path.join(work, f"mirror-{rows}")
            archive = write_archive(os.path.join(mirror, "data/spot/monthly/trades/BTCUSDT"), rows)
            job = trades_job(work, mirror, url, f"rss-{rows}")
            manifest = os.path.join(work, f"state/rss-{rows}.manifest.db")
            env = dict(os.environ, BINANCE_IMPORT_TODAY="2024-02-15")
            p = subprocess.run([a.bin, "run", job], capture_output=True, text=True, env=env)
            if p.returncode != 0:
                print(p.stdout[-2000:], p.stderr[-2000:])
                sys.exit(1)
            report = json.load(open(manifest.replace(".manifest.db", ".report.json")))
            size = os.path.getsize(archive)
            print(f"| {rows:,} | {size / 1e6:.0f} MB | {report['rows']:,} | {report['seconds']:.1f} s | {report['rows_per_second']:,.0f} | "
                  f"{report['peak_rss_bytes'] / 1e6:.0f} MB |", flush=True)
            shutil.rmtree(mirror, ignore_errors=True)
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
