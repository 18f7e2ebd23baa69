#!/usr/bin/env python3
"""Two decode-bench binaries side by side (`make bench-decode-compare A=path/to/old B=new`): the
kline decoder's decode / ISA-L inflate on `make bench-decode`'s generated 1m and 1s archives,
one process per round, the two binaries alternating (A B, then B A) so that a noisy machine
weighs on both alike. Prints each binary's median ratio and its decode time against A's."""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_archives  # noqa: E402


def decode_runs(binary, archive, runs):
    out = subprocess.run([binary, "compare", archive, "--runs", str(runs)], check=True, capture_output=True, text=True).stdout
    c = json.loads(out)
    return c["decode_isal_seconds"], c["inflate_isal_seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline decode-bench binary")
    ap.add_argument("--b", required=True, help="the decode-bench binary to compare")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3, help="decode and inflate runs in each process")
    ap.add_argument("--work", default="bench/out")
    a = ap.parse_args()
    archives = [
        ("monthly 1m, ms", gen_archives.write_archive(a.work, "BTCUSDT", "1m", 2024, 1)),
        ("monthly 1s, us", gen_archives.write_archive(a.work, "BTCUSDT", "1s", 2025, 3, micro=True)),
    ]
    for label, path in archives:
        ratios = {a.a: [], a.b: []}
        decodes = {a.a: [], a.b: []}
        for r in range(a.rounds):
            for binary in ((a.a, a.b) if r % 2 == 0 else (a.b, a.a)):
                decode, inflate = decode_runs(binary, path, a.runs)
                ratios[binary] += [d / i for d, i in zip(decode, inflate)]
                decodes[binary] += decode
        base = statistics.median(decodes[a.a])
        for name, binary in (("A", a.a), ("B", a.b)):
            r = ratios[binary]
            print(f"{label} {name} ({binary}): decode / inflate {statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f}), "
                  f"decode median {statistics.median(decodes[binary]):.4f} s, {statistics.median(decodes[binary]) / base:.3f}x A's",
                  flush=True)


if __name__ == "__main__":
    main()
