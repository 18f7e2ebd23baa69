#!/usr/bin/env python3
"""Two decode-bench binaries side by side (`make bench-decode-compare A=path/to/old B=new`): the
kline decoder's decode / ISA-L inflate on `make bench-decode`'s generated 1m and 1s archives,
one process per round, the two binaries alternating (A B, then B A) so that a noisy machine
weighs on both alike. Prints each binary's median ratio and its decode time against A's."""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_bench import kline_archives, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline decode-bench binary")
    ap.add_argument("--b", required=True, help="the decode-bench binary to compare")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3, help="decode and inflate runs in each process")
    ap.add_argument("--work", default="bench/out")
    a = ap.parse_args()
    for label, path in kline_archives(a.work):
        ratios = {"A": [], "B": []}
        decodes = {"A": [], "B": []}
        for r in range(a.rounds):
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                c = run([a.a if name == "A" else a.b, "compare", path, "--runs", str(a.runs)])
                ratios[name] += [d / i for d, i in zip(c["decode_isal_seconds"], c["inflate_isal_seconds"])]
                decodes[name] += c["decode_isal_seconds"]
        base = statistics.median(decodes["A"])
        for name, binary in (("A", a.a), ("B", a.b)):
            r, decode = ratios[name], statistics.median(decodes[name])
            print(f"{label} {name} ({binary}): decode / inflate {statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f}), "
                  f"decode median {decode:.4f} s, {decode / base:.3f}x A's", flush=True)


if __name__ == "__main__":
    main()
