#!/usr/bin/env python3
"""The Python baseline for trades: pandas' read_csv on a spot trades archive, a numpy record
array in the importer's schema (Epoch, Price, Qty, QuoteQty as float64, TradeID, the two flags
as int8, Nanoseconds), and pymarketstore Client.write(isvariablelength=True) in pieces of
100,000 rows (one request of millions of rows is not how anyone writes ticks).

usage: baseline_trades.py URL ARCHIVE ; prints a JSON line with rows and peak RSS.
"""
import json
import os
import sys

import numpy as np
import pandas as pd
import pymarketstore as pymkts

NAMES = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"]


def main():
    url, path = sys.argv[1], sys.argv[2]
    symbol = os.path.basename(path).split("-")[0]
    df = pd.read_csv(path, header=None, names=NAMES, compression="zip")
    t = df["time"].to_numpy(dtype=np.int64)
    micros = t if t[0] > 10**15 else t * 1000
    rec = np.empty(len(df), dtype=[("Epoch", "i8"), ("Price", "f8"), ("Qty", "f8"), ("QuoteQty", "f8"), ("TradeID", "i8"),
                                   ("IsBuyerMaker", "i1"), ("IsBestMatch", "i1"), ("Nanoseconds", "i4")])
    rec["Epoch"] = micros // 1_000_000
    rec["Nanoseconds"] = (micros % 1_000_000) * 1000
    rec["Price"], rec["Qty"], rec["QuoteQty"] = df["price"].to_numpy(), df["qty"].to_numpy(), df["quote_qty"].to_numpy()
    rec["TradeID"] = df["id"].to_numpy(dtype=np.int64)
    rec["IsBuyerMaker"] = df["is_buyer_maker"].astype(bool).to_numpy().astype(np.int8)
    rec["IsBestMatch"] = df["is_best_match"].astype(bool).to_numpy().astype(np.int8)
    client = pymkts.Client(url)
    for start in range(0, len(rec), 100_000):
        client.write(rec[start:start + 100_000], f"{symbol}/1Sec/TRADES", isvariablelength=True)
    peak = next((int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")), 0)
    print(json.dumps({"rows": len(rec), "peak_rss_bytes": peak}))


if __name__ == "__main__":
    main()
