#!/usr/bin/env python3
"""Generates samples/mirror: a small synthetic archive tree in Binance's remote layout, for the demo
job and the tests. Deterministic: the same bytes every time.

  spot       BTCUSDT, ETHUSDT   1h  monthly 2024-01, 2024-02   (ms, no header)
  spot       BTCUSDT            1h  monthly 2025-01            (us: spot from 2025 on)
  futures/um BTCUSDT            1h  monthly 2024-01            (with a header line, as USD-M files have)
each with its .CHECKSUM. The values are a random walk, not market data.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import gen_archives  # noqa: E402


def tree(root, market, symbol, interval, daily=False):
    kind = "daily" if daily else "monthly"
    return os.path.join(root, "data", market, kind, "klines", symbol, interval)


def main(root):
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for month in (1, 2):
            gen_archives.write_archive(tree(root, "spot", symbol, "1h"), symbol, "1h", 2024, month)
    gen_archives.write_archive(tree(root, "spot", "BTCUSDT", "1h"), "BTCUSDT", "1h", 2025, 1, micro=True)
    gen_archives.write_archive(tree(root, "futures/um", "BTCUSDT", "1h"), "BTCUSDT", "1h", 2024, 1, header=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirror"))
