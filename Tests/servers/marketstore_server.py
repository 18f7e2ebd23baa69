#!/usr/bin/env python3
"""A MarketStore test server: what the real v4.1.23 server does on the wire, traps included.

Behaviour follows ../shared/reference/marketstore.md (observed on the real server):
- POST /rpc with msgpack (or JSON) bodies; 415 on another content type, 405 on GET/HEAD (with the
  Marketstore-Version header); an empty 200 body for undecodable msgpack or a request without id;
  the connection closed without a response where the real server panics (a key range past the
  data, `requests: [{}]`).
- DataService.Write with multi-key datasets: fixed-length buckets keep one row per timeframe slot
  (epochs floored to the slot, last write wins); the first write decides the schema; missing,
  extra or renamed columns are refused; SAME NAMES IN ANOTHER ORDER ARE STORED SCRAMBLED (taken
  by position); other types are SILENTLY CONVERTED to the bucket's; variable-length buckets append
  (times kept as 32-bit interval ticks, Nanoseconds out of the schema and returned last); i1
  columns come back from a query typed u1 (Tests/contracts/variable_length.real.json).
- DataService.Query (inclusive range, last-N limit or limit_from_start, several symbols), with
  the timeframes the real server cannot serve back failing, and 1D buckets losing 1 January.
- GetInfo, ListSymbols, Create, Destroy.

Test controls (not part of MarketStore): POST /_control with a JSON object sets faults on the
Nth write call from now (1-based): {"fail_write": N, "error": "text"} answers that write with the
given error, {"fail_key": KEY, "error": "text", "times": N} refuses the next N writes that carry
KEY (every one when times is absent; times 0 clears it) with nothing written, {"drop_write": N} closes the connection without a response, {"delay_write": N,
"delay": seconds} sleeps first; {"empty_write": N} answers with an empty body, {"garbage_write": N}
with bytes that are not msgpack; {"down_for": seconds} refuses RPCs with a closed connection for
that long (a server that is down, then back); {"reset": true} clears data and counters. GET /_stats returns the
number of write calls and the keys of each write. `--sink` decodes and acknowledges writes
without storing them (for benchmarks); `--record DIR` also saves their bodies, for `bench/replay.py`.
"""
import argparse
import calendar
import json
import math
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import msgpack
import numpy as np

from quiet_http import QuietThreadingServer

VERSION = "007586568aa92a1c83189b3c06843dc27a23e5b3"
TYPE_CODES = {"f4": 0, "i4": 1, "f8": 2, "i8": 3, "i1": 5, "i2": 9, "u1": 10, "u2": 11, "u4": 12, "u8": 13}
TYPE_NAMES = {"f4": "FLOAT32", "i4": "INT32", "f8": "FLOAT64", "i8": "INT64", "i1": "BYTE", "i2": "INT16",
              "u1": "UINT8", "u2": "UINT16", "u4": "UINT32", "u8": "UINT64"}
WRITE_UNITS = {"Sec": 1, "S": 1, "Min": 60, "T": 60, "H": 3600, "D": 86400, "W": 604800, "Y": 31536000}
QUERY_SERVED = {"1Sec", "10Sec", "30Sec", "1Min", "5Min", "15Min", "30Min", "1H", "2H", "1D"}


class Panic(Exception):
    """Where the real server panics: the connection is closed with no response."""


class RPCError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def write_timeframe_seconds(tf):
    m = re.fullmatch(r"(\d+)(Sec|S|Min|T|H|D|W|Y)", tf)
    if not m:
        return None
    return int(m.group(1)) * WRITE_UNITS[m.group(2)]


class Bucket:
    def __init__(self, names, types, variable, timeframe):
        self.names = list(names)  # without Epoch
        self.types = list(types)
        self.variable = variable
        self.timeframe = timeframe
        self.rows = {}  # fixed: slot epoch -> tuple of numpy scalars
        self.appended = []  # variable: (interval start epoch, interval ticks, tuple), in write order
        self.years = set()  # the years it has a file of (added on write, as the server makes them)


# Variable-length records keep their time as 32-bit ticks since the start of their timeframe
# interval (executor/writer.go appendIntervalTicks, utils/io/timeindex.go), not as nanoseconds;
# a read turns the ticks back into a second and nanoseconds (executor/rewritebuffer.go
# GetTimeFromTicks). In a 1Sec bucket that is exact to the nanosecond; in wider ones it is not.
TICKS_PER_INTERVAL_DIV_SECS_PER_DAY = 49710.269629629629629629629629629


def interval_ticks(epoch, nanos, timeframe):
    """(interval start epoch, ticks) of a record, as GetIntervalTicks32Bit computes them."""
    year_start = calendar.timegm((time.gmtime(epoch).tm_year, 1, 1, 0, 0, 0))
    t_ns = epoch * 10**9 + nanos
    index = 1 + (t_ns - year_start * 10**9) // (timeframe * 10**9)
    base = year_start + (index - 1) * timeframe
    d = t_ns - base * 10**9
    seconds = float(d // 10**9) + float(d % 10**9) / 1e9  # Go's Duration.Seconds
    per_second = float(86400 // timeframe) * TICKS_PER_INTERVAL_DIV_SECS_PER_DAY
    return base, int(per_second * seconds) & 0xFFFFFFFF


def time_from_ticks(base, ticks, timeframe):
    """(epoch, nanoseconds) of a record read back, as GetTimeFromTicks computes them."""
    fractional = float(ticks) / (float(86400 // timeframe) * TICKS_PER_INTERVAL_DIV_SECS_PER_DAY)
    sub = 1e9 * (fractional - math.floor(fractional))
    if sub >= 1e9:
        sub -= 1e9
        fractional += 1
    rounded = math.floor(fractional * 1e8 + 0.5) / 1e8  # Go's math.Round: half away from zero
    return base + int(rounded), int(sub + 0.5)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.buckets = {}
        self.write_calls = 0
        self.write_keys = []  # keys of each write call
        self.faults = {}
        self.key_faults = {}  # key -> fault, for writes that carry that key
        self.down_until = 0

    # --- DataService.Write -------------------------------------------------------------
    def write(self, params):
        if params is None or params == []:
            return {"responses": None}
        if isinstance(params, list):
            params = params[0]
        requests = params.get("requests") or []
        errors = []
        keys_this_call = []
        for req in requests:
            if not isinstance(req, dict) or "dataset" not in req:
                raise Panic("nil dataset")
            err = self.write_request(req["dataset"], bool(req.get("is_variable_length", False)), keys_this_call)
            if err:
                errors.append({"error": err, "version": VERSION})
        self.write_keys.append(keys_this_call)
        return {"responses": errors or None}

    def write_request(self, ds, variable, keys_seen):
        if not ds:
            return None
        names = list(ds.get("names") or [])
        types = list(ds.get("types") or [])
        data = list(ds.get("data") or [])
        startindex = ds.get("startindex") or {}
        lengths = ds.get("lengths") or {}
        if not names:
            return None
        columns = []
        for name, typ, raw in zip(names, types, data):
            if typ not in TYPE_CODES:
                return f"unsupported type {typ}"
            columns.append(np.frombuffer(raw, dtype="<" + typ))
        nrows = min(len(c) for c in columns) if columns else 0
        for key, start in startindex.items():
            if key not in lengths:
                continue  # silently skipped, as the real server does
            length = lengths[key]
            if start < 0 or length < 0 or start + length > nrows:
                raise Panic("slice bounds out of range")
            keys_seen.append(key)
            err = self.write_key(key, names, types, [c[start:start + length] for c in columns], variable)
            if err:
                return err  # the first failing key stops the rest of this request
        return None

    def write_key(self, key, names, types, columns, variable):
        parts = key.split("/")
        if len(parts) < 2:
            return "error: Unable to get timeframe from key"
        timeframe = write_timeframe_seconds(parts[1])
        if timeframe is None:
            return "error: Unable to get timeframe from key"
        if "Epoch" not in names or types[names.index("Epoch")] != "i8":
            return "unexpected data type for Epoch column"
        if "Nanoseconds" in names and types[names.index("Nanoseconds")] != "i4":
            return "unexpected data type for Nanoseconds column"
        ei = names.index("Epoch")
        epochs = columns[ei]
        # A variable-length write's Nanoseconds is the records' time, not a column of the bucket.
        ni = names.index("Nanoseconds") if variable and "Nanoseconds" in names else None
        nanos = columns[ni] if ni is not None else None
        data_names = [n for i, n in enumerate(names) if i not in (ei, ni)]
        data_types = [t for i, t in enumerate(types) if i not in (ei, ni)]
        data_cols = [c for i, c in enumerate(columns) if i not in (ei, ni)]
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = Bucket(data_names, data_types, variable, timeframe)
                self.buckets[key] = bucket
            elif sorted(bucket.names) != sorted(data_names):
                def shape(ns, ts):
                    return "[" + " ".join("{%s %s}" % (n, TYPE_NAMES[t]) for n, t in [("Epoch", "i8")] + list(zip(ns, ts))) + "]"
                return ("unable to match data columns (%s) to bucket columns (%s)"
                        % (shape(data_names, data_types), shape(bucket.names, bucket.types)))
            # Same names in another order are taken by POSITION (the scramble), and every column
            # is converted to the bucket's type without a word (the real server's traps).
            converted = [c.astype("<" + t) for c, t in zip(data_cols, bucket.types)]
            bucket.years.update(1970 + int(y) for y in np.unique(epochs.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)))
            for i in range(len(epochs)):
                values = tuple(c[i] for c in converted)
                epoch = int(epochs[i])
                if bucket.variable:
                    base, ticks = interval_ticks(epoch, int(nanos[i]) if nanos is not None else 0, bucket.timeframe)
                    bucket.appended.append((base, ticks, values))
                else:
                    bucket.rows[(epoch // bucket.timeframe) * bucket.timeframe] = values
        return None

    # --- DataService.Query ---------------------------------------------------------------
    def query(self, params):
        if isinstance(params, list):
            params = params[0]
        responses = []
        for req in params.get("requests") or []:
            responses.append({"result": self.query_one(req)})
        return {"responses": responses, "version": VERSION, "timezone": "UTC"}

    def query_one(self, req):
        dest = req.get("destination", "")
        parts = dest.split("/")
        if len(parts) != 3:
            raise RPCError(-32000, "no files returned from query parse")
        symbols, tf, group = parts[0].split(","), parts[1], parts[2]
        if not re.fullmatch(r"(\d+)(Sec|Min|H|D|W|M|Y)", tf):
            raise RPCError(-32000, 'timeframe not found in "%s"' % tf)
        if tf not in QUERY_SERVED:
            raise RPCError(-32000, "no files returned from query parse")
        start = req.get("epoch_start", -(1 << 62))
        end = req.get("epoch_end", 1 << 62)
        # The range's ends are times: epoch plus nanoseconds (0 when not given).
        start_t = (start, req.get("epoch_start_nanos", 0) or 0)
        end_t = (end, req.get("epoch_end_nanos", 0) or 0)
        limit = req.get("limit_record_count", 0) or 0
        from_start = bool(req.get("limit_from_start", False))
        out_names, out_types, pieces, startindex, lengths = None, None, [], {}, {}
        total = 0
        with self.lock:
            for sym in symbols:
                key = f"{sym}/{tf}/{group}"
                bucket = self.buckets.get(key)
                if bucket is None:
                    continue
                if not self.has_year_file_in(bucket, start, end):
                    continue  # no file of the range's years: the real server's parse finds none
                if bucket.variable:
                    rows = self.variable_rows(bucket, start_t, end_t, limit, from_start)
                else:
                    rows = sorted(bucket.rows.items())
                    rows = [r for r in rows if start <= r[0] <= end]
                    if tf == "1D":  # the 1 January slot overlaps the year file's header: never served
                        rows = [r for r in rows if time.gmtime(r[0])[1:3] != (1, 1)]
                    if limit:
                        rows = rows[:limit] if from_start else rows[-limit:]
                if out_names is None:
                    out_names, out_types = ["Epoch"] + bucket.names, ["i8"] + bucket.types
                    if bucket.variable:
                        out_names, out_types = out_names + ["Nanoseconds"], out_types + ["i4"]
                pieces.append((bucket, rows))
                full_key = key + ":Symbol/Timeframe/AttributeGroup"
                startindex[full_key] = total
                lengths[full_key] = len(rows)
                total += len(rows)
        if out_names is None:
            raise RPCError(-32000, "no files returned from query parse")
        data = []
        for ci, (name, typ) in enumerate(zip(out_names, out_types)):
            col = []
            for bucket, rows in pieces:
                col.extend(r[0] if ci == 0 else r[1][ci - 1] for r in rows)
            data.append(np.array(col, dtype="<" + typ).tobytes())
        # The real server keeps an i1 column as bytes (GetInfo says BYTE) but answers a query
        # with it typed u1: Go's []byte is []uint8. The bytes are the ones written.
        out_types = ["u1" if t == "i1" else t for t in out_types]
        return {"types": out_types, "names": out_names, "data": data, "length": total,
                "startindex": startindex, "lengths": lengths}

    @staticmethod
    def has_year_file_in(bucket, start, end):
        """Whether the bucket has a year file between the range's years (a window inside a year
        that has one answers empty; a window of other years fails the query's parse)."""
        lo = time.gmtime(max(start, 0)).tm_year if start > -(1 << 61) else 0
        hi = time.gmtime(min(end, 253402300799)).tm_year if end < (1 << 61) else 9999
        return any(lo <= y <= hi for y in bucket.years)

    @staticmethod
    def variable_rows(bucket, start_t, end_t, limit, from_start):
        """A variable-length bucket's records for a query, as executor/scanner.go reads them: the
        records of the intervals from the start's to the end's (a limit counts INTERVALS here),
        then trimResultsToRange on times (epoch, nanoseconds), then the limit on records."""
        tf = bucket.timeframe
        # Each write re-sorts an interval's records stably by ticks: by time, equal times in
        # write order; Nanoseconds comes back as the last column.
        records = sorted(bucket.appended, key=lambda r: (r[0], r[1]))
        first, last = (start_t[0] // tf) * tf, (end_t[0] // tf) * tf
        records = [r for r in records if first <= r[0] <= last]
        if limit:
            bases = sorted({r[0] for r in records})
            keep = set(bases[:limit] if from_start else bases[-limit:])
            records = [r for r in records if r[0] in keep]
        timed = []
        for base, ticks, values in records:
            epoch, ns = time_from_ticks(base, ticks, tf)
            timed.append(((epoch, ns), (epoch, values + (np.int32(ns),))))
        # From the first record at or after the start (none: nothing) ...
        at = next((i for i, (t, _) in enumerate(timed) if t >= start_t), len(timed))
        timed = timed[at:]
        # ... to the last at or before the end, but only when there are two records or more and
        # one of them is at or before the end (otherwise nothing is cut: the server's quirk).
        if len(timed) > 1:
            cut = next((i for i in range(len(timed) - 1, -1, -1) if timed[i][0] <= end_t), None)
            if cut is not None:
                timed = timed[:cut + 1]
        rows = [row for _, row in timed]
        if limit:
            rows = rows[:limit] if from_start else rows[-limit:]
        return rows

    # --- other methods -------------------------------------------------------------------
    def get_info(self, params):
        out = []
        for req in (params or {}).get("requests") or []:
            key = req.get("key", "")
            bucket = self.buckets.get(key)
            if bucket is None:
                out.append({"LatestYear": 0, "TimeFrame": 0, "DSV": None, "RecordType": 0,
                            "ServerResp": {"error": "unable to get info about key %s: directory path "
                                           "/data/%s/1970.bin not found in catalog" % (key, key), "version": VERSION}})
                continue
            out.append({"LatestYear": max(bucket.years, default=0), "TimeFrame": bucket.timeframe * 10**9,
                        "DSV": [{"Name": "Epoch", "Type": 3}] + [{"Name": n, "Type": TYPE_CODES[t]} for n, t in zip(bucket.names, bucket.types)],
                        "RecordType": 1 if bucket.variable else 0, "ServerResp": {"error": "", "version": VERSION}})
        return {"responses": out}

    def list_symbols(self, params):
        fmt = (params or {}).get("format", "symbol")
        with self.lock:
            keys = sorted(self.buckets)
        return {"Results": keys if fmt == "tbk" else sorted({k.split("/")[0] for k in keys})}

    def create(self, params):
        out = []
        for req in (params or {}).get("requests") or []:
            key = req.get("key", "")
            if key.count(":") != 1 or key.split(":")[0].count("/") != 2:
                out.append({"error": 'key "%s" is not in proper format, should be like: '
                                     'TSLA/1Min/OHLCV:Symbol/TimeFrame/AttributeGroup' % key, "version": VERSION})
                continue
            tbk = key.split(":")[0]
            tf = write_timeframe_seconds(tbk.split("/")[1])
            if tf is None:
                out.append({"error": "error: Unable to get timeframe from key", "version": VERSION})
                continue
            names = list(req.get("column_names") or [])
            types = list(req.get("column_types") or [])
            variable = bool(req.get("is_variable_length")) or req.get("row_type") == "variable"
            with self.lock:
                if tbk in self.buckets:
                    out.append({"error": "bucket %s already exists" % tbk, "version": VERSION})
                    continue
                pairs = [(n, t) for n, t in zip(names, types) if n != "Epoch"]
                self.buckets[tbk] = Bucket([n for n, _ in pairs], [t for _, t in pairs], variable, tf)
            out.append({"error": "", "version": VERSION})  # the real server answers each success so
        return {"responses": out or None}

    def destroy(self, params):
        out = []
        for req in (params or {}).get("requests") or []:
            key = req.get("key", "")
            with self.lock:
                if key in self.buckets:
                    del self.buckets[key]
                    out.append({"error": "", "version": VERSION})  # the real server answers each success so
                else:
                    out.append({"error": "removal of catalog entry failed: Unable to find level item: %s in directory"
                                % key.split("/")[0], "version": VERSION})
        return {"responses": out or None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "marketstore-test-server"

    def log_message(self, *args):
        pass

    def send_body(self, status, body, content_type="application/x-msgpack"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Marketstore-Version", VERSION)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            s = self.server.store
            body = json.dumps({"write_calls": s.write_calls, "write_keys": s.write_keys}).encode()
            return self.send_body(200, body, "application/json")
        self.send_body(405, b"rpc: POST method required, received GET\n", "text/plain")

    def do_HEAD(self):
        self.send_response(405)
        self.send_header("Marketstore-Version", VERSION)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        store = self.server.store
        if self.path == "/_control":
            cmd = json.loads(body or b"{}")
            with store.lock:
                if cmd.get("reset"):
                    store.buckets.clear()
                    store.write_calls = 0
                    store.write_keys = []
                    store.faults = {}
                    store.key_faults = {}
                if "fail_key" in cmd:
                    store.key_faults[cmd["fail_key"]] = dict(cmd, times=int(cmd.get("times", 1 << 30)))
                if "down_for" in cmd:
                    store.down_until = time.time() + float(cmd["down_for"])
                for kind in ("fail_write", "drop_write", "delay_write", "empty_write", "garbage_write"):
                    if kind in cmd:
                        store.faults[(kind, store.write_calls + int(cmd[kind]))] = cmd
            return self.send_body(200, b"{}", "application/json")
        if time.time() < store.down_until:
            self.close_connection = True
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in ("application/x-msgpack", "application/json"):
            return self.send_body(415, ("rpc: unrecognized Content-Type: %s\n" % content_type).encode(), "text/plain")
        as_json = content_type == "application/json"
        try:
            request = json.loads(body) if as_json else msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception:
            return self.send_body(200, b"", content_type)
        if not isinstance(request, dict) or "id" not in request:
            return self.send_body(200, b"", content_type)
        reply = {"jsonrpc": "2.0", "id": request["id"]}
        method = request.get("method")
        params = request.get("params")
        try:
            if request.get("jsonrpc") != "2.0":
                raise RPCError(-32600, "jsonrpc must be 2.0")
            if method == "DataService.Write":
                with store.lock:
                    store.write_calls += 1
                    n = store.write_calls
                    fail = store.faults.pop(("fail_write", n), None)
                    drop = store.faults.pop(("drop_write", n), None)
                    delay = store.faults.pop(("delay_write", n), None)
                    empty = store.faults.pop(("empty_write", n), None)
                    garbage = store.faults.pop(("garbage_write", n), None)
                    fail = fail or self.key_fault(store, params)
                if empty:
                    return self.send_body(200, b"", content_type)
                if garbage:
                    return self.send_body(200, b"\xc1not msgpack", content_type)
                if delay:
                    time.sleep(float(delay.get("delay", 1)))
                if drop:
                    raise Panic("fault injection: drop")
                if fail:
                    store.write_keys.append([])
                    reply["result"] = {"responses": [{"error": fail.get("error", "injected failure"), "version": VERSION}]}
                elif self.server.sink:
                    store.write_keys.append([])
                    reply["result"] = {"responses": None}
                    if self.server.record:  # keep the encoded request for bench/replay.py
                        with open(os.path.join(self.server.record, "%06d.msgpack" % n), "wb") as f:
                            f.write(body)
                else:
                    reply["result"] = store.write(params)
            elif method == "DataService.Query":
                reply["result"] = store.query(params)
            elif method == "DataService.GetInfo":
                reply["result"] = store.get_info(params)
            elif method == "DataService.ListSymbols":
                reply["result"] = store.list_symbols(params)
            elif method == "DataService.Create":
                reply["result"] = store.create(params)
            elif method == "DataService.Destroy":
                reply["result"] = store.destroy(params)
            else:
                raise RPCError(-32000, 'rpc: can\'t find method "%s"' % method)
        except RPCError as e:
            reply.pop("result", None)
            reply["error"] = {"code": e.code, "message": e.message, "data": None}
        except Panic:
            self.close_connection = True
            self.connection.shutdown(2) if hasattr(self.connection, "shutdown") else None
            return
        out = json.dumps(reply).encode() if as_json else msgpack.packb(reply, use_bin_type=True)
        self.send_body(200, out, content_type)

    @staticmethod
    def key_fault(store, params):
        """The fail_key fault that this write's keys trigger, if any (the caller holds the lock)."""
        requests = (params[0] if isinstance(params, list) and params else params or {}).get("requests") or []
        for request in requests:
            for key in ((request or {}).get("dataset") or {}).get("startindex") or {}:
                fault = store.key_faults.get(key)
                if fault and fault["times"] > 0:
                    fault["times"] -= 1
                    return fault
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5993, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--sink", action="store_true", help="acknowledge writes without storing them")
    ap.add_argument("--record", metavar="DIR", help="with --sink: save each Write request body in DIR (for bench/replay.py)")
    a = ap.parse_args()
    # A parent (a test runner) may have blocked or ignored SIGTERM; this server must stop on it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    server = QuietThreadingServer((a.host, a.port), Handler)
    server.store = Store()
    server.sink = a.sink
    server.record = a.record
    if a.record:
        os.makedirs(a.record, exist_ok=True)
    print("listening on http://%s:%d/rpc" % server.server_address, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
