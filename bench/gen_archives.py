#!/usr/bin/env python3
"""Deterministic synthetic Binance kline archives with real-looking values, for benchmarks.

A random walk of prices with 2 decimals around 30,000, volumes with 8 decimals, quote volumes,
trade counts and taker volumes, written exactly as Binance writes them (no header, LF, final
newline, ms open/close times; us with --micro), deflated into SYMBOL-INTERVAL-YYYY-MM.zip with its
.CHECKSUM sidecar.
"""
import argparse
import calendar
import hashlib
import os
import random
import sys
import zipfile

INTERVALS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "1d": 86400}


def rows(symbol, interval, year, month, micro=False, seed=0, base_price=30000.0, day=None):
    step = INTERVALS[interval]
    start = calendar.timegm((year, month, day or 1, 0, 0, 0))
    days = 1 if day else calendar.monthrange(year, month)[1]
    unit = 1_000_000 if micro else 1000
    rng = random.Random(f"{symbol}-{interval}-{year}-{month}-{seed}")
    price = base_price * (0.5 + rng.random())
    out = []
    for i in range(days * 86400 // step):
        t = (start + i * step) * unit
        o = price
        c = max(0.01, o * (1 + rng.gauss(0, 0.0008)))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.0003)))
        lo = min(o, c) * (1 - abs(rng.gauss(0, 0.0003)))
        price = c
        v = rng.random() * 50
        tb = v * rng.random()
        # Binance prints prices on their tick (0.01 here) with 8 decimals: 7195.24000000.
        o, h, lo, c = (round(x, 2) for x in (o, h, lo, c))
        out.append(f"{t},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},{t + step * unit - 1},"
                   f"{v * o:.8f},{rng.randrange(1, 5000)},{tb:.8f},{tb * o:.8f},0\n")
    return "".join(out)


def write_trades_archive(directory, symbol, year, month, day, count, seed=0):
    """A spot trades archive of `count` trades in one day, in µs (2025 on), Binance's format:
    id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch."""
    name = f"{symbol}-trades-{year:04d}-{month:02d}-{day:02d}"
    path = os.path.join(directory, name + ".zip")
    if os.path.exists(path):
        return path
    rng = random.Random(f"{name}-{seed}")
    start = calendar.timegm((year, month, day, 0, 0, 0)) * 1_000_000
    price, out = 90000.0 * (0.5 + rng.random()), []
    for i in range(count):
        price = max(0.01, price * (1 + rng.gauss(0, 0.00005)))
        p = round(price, 2)
        q = round(rng.random() * 0.5, 5)
        out.append(f"{4_000_000_000 + i},{p:.8f},{q:.8f},{p * q:.8f},{start + i * 86_400_000_000 // count},"
                   f"{'True' if rng.random() < 0.5 else 'False'},True\n")
    write_text_archive(path, name, "".join(out), (year, month, day, 0, 0, 0))
    return path


HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore\n")


def write_archive(directory, symbol, interval, year, month, micro=False, seed=0, day=None, header=False):
    name = f"{symbol}-{interval}-{year:04d}-{month:02d}" + (f"-{day:02d}" if day else "")
    path = os.path.join(directory, name + ".zip")
    if os.path.exists(path):
        return path
    text = (HEADER if header else "") + rows(symbol, interval, year, month, micro, seed, day=day)
    write_text_archive(path, name, text, (year, month, day or 1, 0, 0, 0))
    return path


def write_text_archive(path, name, text, date_time):
    """`text` as the CSV member `name`.csv of the zip at `path` (replacing it), with its CHECKSUM;
    the member's fixed date makes the bytes deterministic."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name + ".csv", date_time=date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, text)
    os.replace(tmp, path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with open(path + ".CHECKSUM", "w") as f:
        f.write(f"{digest}  {name}.zip\n")


def day_set(spec, last_day):
    """'1-7,9,12-31' -> {1..7, 9, 12..31}; 'all' -> every day; '' or 'none' -> nothing."""
    if spec in ("", "none"):
        return set()
    if spec == "all":
        return set(range(1, last_day + 1))
    out = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def write_cut(root, market, symbol, interval, year, month, month_days, daily_days, drop=None, reference=None):
    """One month of rows, cut into the archive shapes Binance really publishes: a monthly archive
    holding only `month_days` (truncated, or missing a day: binance-public-data #359, #253, #186),
    daily archives of `daily_days` cut from the same rows (so a day has the same values in both),
    and rows in the `drop` ranges ([first, last) UTC seconds) absent from all of them (maintenance
    gaps, #84). `reference`: a path for an archive of every row that should land (the union)."""
    step = INTERVALS[interval]
    last_day = calendar.monthrange(year, month)[1]
    lines = rows(symbol, interval, year, month).splitlines(keepends=True)
    def keep(line, days):
        t = int(line.split(",", 1)[0]) // 1000
        day = (t - calendar.timegm((year, month, 1, 0, 0, 0))) // 86400 + 1
        return day in days and not any(a <= t < b for a, b in drop or [])
    stem = f"{symbol}-{interval}-{year:04d}-{month:02d}"
    monthly = day_set(month_days, last_day)
    dailies = day_set(daily_days, last_day)
    if monthly:
        folder = os.path.join(root, "data", market, "monthly", "klines", symbol, interval)
        write_text_archive(os.path.join(folder, stem + ".zip"), stem, "".join(l for l in lines if keep(l, monthly)), (year, month, 1, 0, 0, 0))
    for d in sorted(dailies):
        folder = os.path.join(root, "data", market, "daily", "klines", symbol, interval)
        name = f"{stem}-{d:02d}"
        write_text_archive(os.path.join(folder, name + ".zip"), name, "".join(l for l in lines if keep(l, {d})), (year, month, d, 0, 0, 0))
    if reference:
        write_text_archive(reference, stem, "".join(l for l in lines if keep(l, monthly | dailies)), (year, month, 1, 0, 0, 0))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", help="the folder of the archives (not with --cut)")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--interval", default="1m")
    ap.add_argument("--month", default="2024-01")
    ap.add_argument("--day", type=int, help="a daily archive of this day of the month")
    ap.add_argument("--days", help="daily archives of these days of the month: FIRST-LAST")
    ap.add_argument("--header", action="store_true", help="a header line, as USD-M files have")
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("--cut", metavar="ROOT", help="cut one month into a monthly and daily archives under the tree ROOT "
                    "(with --month-days, --daily-days, --drop, --reference)")
    ap.add_argument("--market", default="spot")
    ap.add_argument("--month-days", default="all", help="days the monthly archive holds: all, none, or 1-7,9")
    ap.add_argument("--daily-days", default="none", help="days that have a daily archive: all, none, or 1-31")
    ap.add_argument("--drop", help="FIRST,LAST[;FIRST,LAST...]: UTC seconds [FIRST, LAST) absent from every archive")
    ap.add_argument("--reference", help="also write an archive of every row that should land here")
    a = ap.parse_args()
    y, m = map(int, a.month.split("-"))
    if a.cut:
        drop = [tuple(map(int, r.split(","))) for r in a.drop.split(";")] if a.drop else None
        write_cut(a.cut, a.market, a.symbol, a.interval, y, m, a.month_days, a.daily_days, drop, a.reference)
        sys.exit(0)
    if a.days:
        first, last = map(int, a.days.split("-"))
        for d in range(first, last + 1):
            print(write_archive(a.out, a.symbol, a.interval, y, m, a.micro, day=d, header=a.header))
    else:
        print(write_archive(a.out, a.symbol, a.interval, y, m, a.micro, day=a.day, header=a.header))
