#!/usr/bin/env python3
"""The Python baseline: the loader users would otherwise write. For each archive, pandas'
read_csv (C parser) on the zip, a numpy record array with Epoch (int64 seconds) and the price and
volume columns as float32 or float64, and one pymarketstore Client.write per archive.

usage: baseline_loader.py URL DTYPE ARCHIVE... ; prints a JSON line with rows and peak RSS.
"""
import json
import os
import sys

import numpy as np
import pandas as pd
import pymarketstore as pymkts

NAMES = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
         "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
TIMEFRAMES = {"1s": "1Sec", "1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1H", "2h": "2H", "1d": "1D"}


def load(client, path, dtype):
    symbol, interval = os.path.basename(path).split("-")[:2]
    df = pd.read_csv(path, header=None, names=NAMES, compression="zip")
    if not str(df["open_time"].iloc[0]).isdigit():  # a header line
        df = pd.read_csv(path, header=0, names=NAMES, compression="zip")
    t = df["open_time"].to_numpy(dtype=np.int64)
    epoch = t // 1_000_000 if t[0] > 10**15 else t // 1000
    rec = np.empty(len(df), dtype=[("Epoch", "i8"), ("Open", dtype), ("High", dtype), ("Low", dtype), ("Close", dtype), ("Volume", dtype)])
    rec["Epoch"] = epoch
    for col, src in (("Open", "open"), ("High", "high"), ("Low", "low"), ("Close", "close"), ("Volume", "volume")):
        rec[col] = df[src].to_numpy().astype(dtype)
    client.write(rec, f"{symbol}/{TIMEFRAMES[interval]}/OHLCV")
    return len(rec)


def peak_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    url, dtype, archives = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = pymkts.Client(url)
    rows = sum(load(client, a, "f4" if dtype == "float32" else "f8") for a in archives)
    print(json.dumps({"rows": rows, "peak_rss_bytes": peak_rss()}))
