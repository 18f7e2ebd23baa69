#!/usr/bin/env python3
"""Variable-length buckets: one scripted exchange, recorded from the real MarketStore and replayed
against the test server, so the test server's model of them (append, order, ticks, record type,
schema traps) is checked against the real thing rather than against what we believe it does.

usage: variable_length_contract.py record URL FILE   # run against a real server, write FILE
       variable_length_contract.py check URL FILE    # run against a server, compare with FILE
Each step prints one line; check exits 1 naming every step whose answer differs.
The real server must start empty (the steps use keys V1..V9 and expect to create them).
"""
import json
import sys

import msgpack
import numpy as np
import requests

T = 1709640000  # 2024-03-05 12:00:00 UTC
YEAR_END = 1735689599  # 2024-12-31 23:59:59 UTC


def rpc(url, method, params):
    body = msgpack.packb({"jsonrpc": "2.0", "method": method, "id": "1", "params": params}, use_bin_type=True)
    r = requests.post(url, data=body, headers={"Content-Type": "application/x-msgpack"}, timeout=30)
    return msgpack.unpackb(r.content, raw=False, strict_map_key=False)


def write(url, key, columns, variable=True):
    """columns: [(name, numpy dtype code, values)]; one key, one request."""
    n = len(columns[0][2])
    ds = {"types": [t for _, t, _ in columns], "names": [c for c, _, _ in columns],
          "data": [np.array(v, dtype="<" + t).tobytes() for _, t, v in columns],
          "startindex": {key: 0}, "lengths": {key: n}}
    return normalize(rpc(url, "DataService.Write", {"requests": [{"dataset": ds, "is_variable_length": variable}]}))


def query(url, key, **extra):
    req = {"destination": key}
    req.update(extra)
    return normalize(rpc(url, "DataService.Query", {"requests": [req]}))


def normalize(answer):
    """The decoded answer with column bytes turned into values (and the JSON-RPC id dropped)."""
    answer = dict(answer)
    answer.pop("id", None)
    result = answer.get("result")
    if isinstance(result, dict):
        for resp in result.get("responses") or []:
            res = resp.get("result") if isinstance(resp, dict) else None
            if isinstance(res, dict) and res.get("data") is not None:
                res["data"] = [np.frombuffer(raw, dtype="<" + t).tolist() for raw, t in zip(res["data"], res["types"])]
    return answer


def trades(epochs, nanos, ids, price_type="f8"):
    return [("Epoch", "i8", epochs), ("Price", price_type, [100.0 + i / 8 for i in ids]),
            ("Qty", "f8", [float(i) / 4 for i in ids]), ("TradeID", "i8", ids), ("Nanoseconds", "i4", nanos)]


def steps(url):
    all_time = {"epoch_start": T - 86400, "epoch_end": T + 86400}
    # 1. Records of one second written out of time order, and one in the next second.
    yield "write out of order", write(url, "V1/1Sec/TRADES", trades([T, T, T, T + 1], [500_000_000, 100, 300_000_000, 0], [1, 2, 3, 4]))
    yield "read back in time order", query(url, "V1/1Sec/TRADES", **all_time)
    # 2. The same records again: appended a second time.
    yield "re-write two records", write(url, "V1/1Sec/TRADES", trades([T, T], [500_000_000, 100], [1, 2]))
    yield "read back duplicates", query(url, "V1/1Sec/TRADES", **all_time)
    # 3. A later request with earlier times; equal times in two requests.
    yield "write earlier times later", write(url, "V1/1Sec/TRADES", trades([T - 5, T], [0, 100], [5, 6]))
    yield "read back merged", query(url, "V1/1Sec/TRADES", **all_time)
    # 4. A window and a record limit.
    yield "window of one second", query(url, "V1/1Sec/TRADES", epoch_start=T, epoch_end=T)
    yield "limit from the end", query(url, "V1/1Sec/TRADES", limit_record_count=2, **all_time)
    yield "limit from the start", query(url, "V1/1Sec/TRADES", limit_record_count=2, limit_from_start=True, **all_time)
    # 5. Columns in another order, and another type, into the existing bucket.
    yield "write columns swapped", write(url, "V1/1Sec/TRADES", [("Epoch", "i8", [T + 2]), ("Qty", "f8", [7.25]),
                                                                 ("Price", "f8", [1.5]), ("TradeID", "i8", [7]), ("Nanoseconds", "i4", [0])])
    yield "write price as f4", write(url, "V1/1Sec/TRADES", trades([T + 3], [0], [8], price_type="f4"))
    yield "read back traps", query(url, "V1/1Sec/TRADES", epoch_start=T + 2, epoch_end=T + 3)
    yield "info of a variable bucket", normalize(rpc(url, "DataService.GetInfo", {"requests": [{"key": "V1/1Sec/TRADES"}]}))
    # 6. A wider timeframe: the sub-second time goes through 32-bit interval ticks.
    yield "write 1Min", write(url, "V2/1Min/TRADES", trades([T + 7, T + 59, T + 61], [123_456_789, 999_999_999, 1], [1, 2, 3]))
    yield "read back 1Min ticks", query(url, "V2/1Min/TRADES", **all_time)
    # 7. Record type: a fixed bucket written variable, and a variable bucket written fixed.
    yield "fixed first", write(url, "V3/1Sec/TRADES", trades([T, T + 1], [0, 0], [1, 2])[:4], variable=False)
    yield "then variable", write(url, "V3/1Sec/TRADES", trades([T, T], [100, 200], [3, 4]))
    yield "read back fixed-then-variable", query(url, "V3/1Sec/TRADES", **all_time)
    yield "variable first", write(url, "V4/1Sec/TRADES", trades([T], [100], [1]))
    yield "then fixed", write(url, "V4/1Sec/TRADES", trades([T, T + 1], [0, 0], [2, 3])[:4], variable=False)
    yield "read back variable-then-fixed", query(url, "V4/1Sec/TRADES", **all_time)
    # 8. No Nanoseconds column at all.
    yield "variable without nanoseconds", write(url, "V5/1Sec/TRADES", trades([T, T], [0, 0], [1, 2])[:4])
    yield "read back without nanoseconds", query(url, "V5/1Sec/TRADES", **all_time)
    # 9. One request across a year boundary.
    yield "write across new year", write(url, "V6/1Sec/TRADES", trades([YEAR_END, YEAR_END + 1], [900_000_000, 5], [1, 2]))
    yield "read back across new year", query(url, "V6/1Sec/TRADES", epoch_start=YEAR_END - 10, epoch_end=YEAR_END + 10)
    # 10. Destroy, then the key is gone.
    yield "destroy", normalize(rpc(url, "DataService.Destroy", {"requests": [{"key": "V1/1Sec/TRADES"}]}))
    yield "read back destroyed", query(url, "V1/1Sec/TRADES", **all_time)
    yield "write after destroy", write(url, "V1/1Sec/TRADES", trades([T], [42], [9]))
    yield "read back recreated", query(url, "V1/1Sec/TRADES", **all_time)
    # 11. One-byte columns (a trade's side) are stored as written and come back typed u1, in
    # variable and fixed buckets alike (the server's byte columns are Go []uint8).
    flags = [("Epoch", "i8", [T, T + 60]), ("Price", "f8", [1.5, 2.5]), ("IsBuyerMaker", "i1", [1, -3]), ("Nanoseconds", "i4", [7, 0])]
    yield "write i1 variable", write(url, "V7/1Sec/TRADES", flags)
    yield "read back i1 variable", query(url, "V7/1Sec/TRADES", **all_time)
    yield "info of an i1 column", normalize(rpc(url, "DataService.GetInfo", {"requests": [{"key": "V7/1Sec/TRADES"}]}))
    yield "write i1 fixed", write(url, "V8/1Min/OHLCV", flags[:3], variable=False)
    yield "read back i1 fixed", query(url, "V8/1Min/OHLCV", **all_time)
    # 12. The range's end is a time (epoch_end plus epoch_end_nanos, default 0), and the server
    # trims the records after it only when some record is at or before it and more than one
    # record was read (executor/scanner.go trimResultsToRange): a window of whole seconds loses
    # its last second's sub-second records, unless nothing is at or before its start.
    yield "write sub-second records", write(url, "V9/1Sec/TRADES", trades([T, T, T + 1, T + 1, T + 2, T + 10, T + 10],
                                                                           [0, 500_000_000, 0, 250_000_000, 750_000_000, 500_000_000, 700_000_000],
                                                                           [1, 2, 3, 4, 5, 6, 7]))
    yield "window ending on a second", query(url, "V9/1Sec/TRADES", epoch_start=T, epoch_end=T + 1)
    yield "window ending on a second's last nanosecond", query(url, "V9/1Sec/TRADES", epoch_start=T, epoch_end=T + 1, epoch_end_nanos=999_999_999)
    yield "window starting inside a second", query(url, "V9/1Sec/TRADES", epoch_start=T, epoch_start_nanos=400_000_000, epoch_end=T + 2, epoch_end_nanos=999_999_999)
    yield "window of one second, two records", query(url, "V9/1Sec/TRADES", epoch_start=T + 1, epoch_end=T + 1)
    yield "window of one second, one record", query(url, "V9/1Sec/TRADES", epoch_start=T + 2, epoch_end=T + 2)
    yield "window with nothing at or before its end", query(url, "V9/1Sec/TRADES", epoch_start=T + 10, epoch_end=T + 10)
    yield "window ending on a second, last record", query(url, "V9/1Sec/TRADES", epoch_start=T, epoch_end=T + 2, limit_record_count=1)
    yield "window past the records", query(url, "V9/1Sec/TRADES", epoch_start=T + 3, epoch_end=T + 9)


def main():
    mode, url, path = sys.argv[1:4]
    got = []
    for name, answer in steps(url):
        got.append([name, answer])
        print(name, "->", json.dumps(answer, sort_keys=True)[:160])
    if mode == "record":
        json.dump(got, open(path, "w"), indent=1, sort_keys=True)
        return 0
    expected = json.load(open(path))
    got = json.loads(json.dumps(got))  # the same JSON round trip the recording took
    different = [e[0] for e, g in zip(expected, got) if e != g]
    for name in different:
        e = dict(expected)[name]
        g = dict(got)[name]
        print("DIFFERENT:", name, "\n  real server:", json.dumps(e, sort_keys=True), "\n  this server:", json.dumps(g, sort_keys=True))
    if len(expected) != len(got):
        different.append("step count")
        print("DIFFERENT: step count", len(expected), len(got))
    print("variable-length contract:", "ok" if not different else f"{len(different)} steps differ")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
