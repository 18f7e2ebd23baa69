#!/usr/bin/env python3
"""Independent reference reader for kline archives, used by the Swift tests.

Reads a Binance kline zip with zipfile + csv + numpy (no code shared with the Swift decoder) and
prints JSON: row count, epochs (UTC seconds) and, per column, the IEEE bit patterns of the values
as float32 and float64. float64 comes from Python's float(), which rounds correctly. float32 is
np.float32(float(s)) checked against the exact decimal with fractions.Fraction, and moved to the
correctly rounded neighbour when double rounding went wrong.
"""
import csv
import io
import json
import sys
import zipfile
from fractions import Fraction

import numpy as np

COLUMNS = {  # MarketStore name -> CSV field
    "Open": 1, "High": 2, "Low": 3, "Close": 4, "Volume": 5, "QuoteVolume": 7,
    "TakerBuyBaseVolume": 9, "TakerBuyQuoteVolume": 10,
}


def float32_correctly_rounded(text):
    exact = Fraction(text)
    f = np.float32(float(text))
    candidates = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    best = min(candidates, key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(np.uint32)) & 1))
    return best


def main(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert len(names) == 1, names
        text = z.read(names[0]).decode("ascii")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if rows and not rows[0][0].isdigit():
        rows = rows[1:]
    digits = len(rows[0][0])
    divisor = {13: 1000, 16: 1000000}[digits]
    out = {
        "rows": len(rows),
        "time_unit": "ms" if digits == 13 else "us",
        "epochs": [int(r[0]) // divisor for r in rows],
        "f4": {}, "f8": {},
        "Trades": [int(r[8]) for r in rows],
    }
    for name, field in COLUMNS.items():
        strings = [r[field] for r in rows]
        f8 = np.array([float(s) for s in strings], dtype=np.float64)
        f4 = np.array([float32_correctly_rounded(s) for s in strings], dtype=np.float32)
        out["f8"][name] = [int(x) for x in f8.view(np.uint64)]
        out["f4"][name] = [int(x) for x in f4.view(np.uint32)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
