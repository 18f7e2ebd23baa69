#!/usr/bin/env python3
"""A fixture of Binance's REST kline endpoints for tests, following the documented behaviour
(docs/binance-rest.md has the facts and their sources).

GET /api/v3/time, /fapi/v1/time, /dapi/v1/time       {"serverTime": ms} (weight 1)
GET /api/v3/klines                                    spot klines (symbol)
GET /fapi/v1/{klines,markPriceKlines,premiumIndexKlines}   USD-M (symbol)
GET /fapi/v1/indexPriceKlines                         USD-M index price (pair)
GET /fapi/v1/fundingRate, /dapi/v1/fundingRate        the funding history (symbol, startTime,
    endTime, limit: default 100, at most 1000): the oldest fundings from startTime, never past
    endTime or the clock; [{"symbol", "fundingTime" (a few ms after the hour, as Binance's),
    "fundingRate" (a string), "markPrice"}]. Fundings every 8 h from 00:00 UTC unless
    funding_intervals says otherwise; weight 1
GET /dapi/v1/...                                      COIN-M, the same four
    interval, startTime, endTime, limit: default 500; at most 1000 (spot) or 1500 (futures),
    more is HTTP 400 (-1130). Spot and USD-M answer the oldest klines from startTime up to limit
    and never past endTime; COIN-M answers the most recent `limit` klines back from endTime
    within [startTime, endTime]. Nothing after the server's clock; the kline that is still open
    (its close time at or after the clock) is answered with values that move, as Binance does.
    Spot answers µs times when the request carries X-MBX-TIME-UNIT: MICROSECOND.
    Values: those of bench/gen_archives.py's daily archive of the same day (every dataset), so a
    daily archive published later holds exactly what REST gave.
Weights (klines: 2 on spot; on futures by limit [1,100) 1, [100,500) 2, [500,1000] 5, above 10)
count per minute of the server clock against --weight-limit (default 6000 spot, 2400 futures);
every answer carries X-MBX-USED-WEIGHT-1M. Over the limit: 429 with Retry-After (seconds to the
next minute); a client that goes on sending after 429s (3 in a minute) is banned: 418 with
Retry-After.

POST /_control {"now": "2024-02-05T10:30:00Z", "speed": 60}
                                                 the server clock (it runs on from there, `speed`
                                                 times real time; 1 by default)
POST /_control {"weight_limit": N}               the limit per minute (both families)
POST /_control {"ban": true}                     every request answers 418
POST /_control {"symbols": [..]}                 known symbols/pairs (others: 400, -1121)
POST /_control {"empty": [[first_ms, last_ms]]}  no klines with open times in these ranges (an
                                                 exchange gap: maintenance, a suspension)
POST /_control {"funding_intervals": [[from_ms, hours], ...]}
                                                 the funding schedule: from each time on, every
                                                 `hours` (the first entry from 0; default 8 h)
POST /_control {"trades": {"first_id": N, "last_id": M, "start_ms": T, "step_ms": S}}
                                                 the trades (and aggregates) served by ID: IDs
                                                 first..last, ID n at T + (n - first) * S ms
GET /api/v3/aggTrades, /fapi/v1/aggTrades, /dapi/v1/aggTrades   aggregates by fromId (limit:
    default 500, at most 1000): [{"a", "p", "q", "f", "l", "T", "m"} + "M" on spot]; weight 4
    on spot, 20 on futures
GET /api/v3/historicalTrades                     raw spot trades by fromId: [{"id", "price", "qty",
    "quoteQty", "time", "isBuyerMaker", "isBestMatch"}]; weight 25
POST /_control {"exchange_info": [{"symbol", "status", "onboardDate", "deliveryDate"}, ...]}
GET /api/v3/exchangeInfo, /fapi/v1/exchangeInfo, /dapi/v1/exchangeInfo   {"symbols": those} (weight
    20 on spot, 1 on futures; COIN-M says contractStatus instead of status)
POST /_control {"reset": true}                   counters cleared (clock, symbols and limit kept)
GET /_stats  {"requests": N, "by_path": {path: N}, "weight_by_minute": {minute: used},
              "max_used_weight": N, "rate_limited": N, "banned": N, "klines_requests": [query],
              "ws_port": P, "ws_connections": N, "ws_closed_sent": N}

With --ws, the same process serves Binance's combined kline streams on another port (ws_port):
ws://127.0.0.1:P/stream?streams=btcusdt@kline_1m/... On the clock above, each stream sends, from
the minute it connects, an update of the open kline (`k.x` false, moving values) and, once it
closes, the closed kline (`k.x` true, the values REST gives), every third one twice.
POST /_control {"drop_minutes": N}   closes every stream and refuses new ones for N minutes of the
                                     clock (the klines of those minutes are never sent)
POST /_control {"stall": true|false} streams stay open but send nothing (while true)
POST /_control {"malformed": N}      every open stream sends N malformed frames (bad JSON, a kline
                                     without its close time), once; counted in ws_malformed_sent
"""
import asyncio
import argparse
import calendar
import datetime
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import gen_archives  # noqa: E402
from quiet_http import QuietThreadingServer  # noqa: E402

DATASETS = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
FAMILIES = {"/api/v3/": "spot", "/fapi/v1/": "um", "/dapi/v1/": "cm"}


def trades_page(cfg, name, family, q, limit, limit_max):
    """The trades (or aggregates) from fromId (default: the most recent `limit`) among those
    `cfg` makes available."""
    first, last = cfg["first_id"], cfg["last_id"]
    start = int(q["fromId"]) if "fromId" in q else max(first, last - limit + 1)
    out = []
    for n in range(max(start, first), min(last, start + limit - 1) + 1):
        t = cfg["start_ms"] + (n - first) * cfg["step_ms"]
        price, qty = f"{60000 + n % 977}.{(n * 7919) % 100000000:08d}", f"0.{n % 9973:05d}"
        if name == "aggTrades":
            row = {"a": n, "p": price, "q": qty, "f": 3 * n, "l": 3 * n + 2, "T": t, "m": n % 2 == 0}
            if family == "spot":
                row["M"] = True
        else:
            row = {"id": n, "price": price, "qty": qty, "quoteQty": f"{n % 1000}.5", "time": t, "isBuyerMaker": n % 2 == 0, "isBestMatch": True}
        out.append(row)
    return out


class State:
    def __init__(self, weight_limit):
        self.lock = threading.Lock()
        self.base_ms = int(time.time() * 1000)
        self.set_at = time.time()
        self.weight_limit = weight_limit  # None: Binance's per family
        self.speed = 1.0
        self.ban = False
        self.ws_port = None
        self.ws_connections = 0
        self.ws_closed_sent = 0
        self.drop_until = 0
        self.stall = False
        self.malformed = 0
        self.malformed_round = 0
        self.ws_malformed_sent = 0
        self.symbols = None
        self.empty = []  # [first, last] open times (ms) with no klines: an exchange gap
        self.funding_intervals = [(0, 8)]
        self.trades = None
        self.exchange_info = []
        self.reset()
        self.day_cache = {}

    def reset(self):
        self.requests = 0
        self.by_path = {}
        self.weight = {}  # (family, minute) -> used
        self.max_used = 0
        self.rate_limited = 0
        self.banned = 0
        self.after_429 = {}  # (family, minute) -> requests after a 429
        self.klines_requests = []

    def now_ms(self):
        return self.base_ms + int((time.time() - self.set_at) * 1000 * self.speed)

    def limit(self, family):
        return self.weight_limit or (6000 if family == "spot" else 2400)

    def fundings(self, start, end):
        """Funding times (ms, on the hour) in [start, end] by the schedule, ascending."""
        out = []
        segments = sorted(self.funding_intervals)
        for i, (first, hours) in enumerate(segments):
            stop = segments[i + 1][0] if i + 1 < len(segments) else end + 1
            step = hours * 3600000
            t = first + max(0, -(-(start - first) // step)) * step
            while t < stop and t <= end:
                out.append(t)
                t += step
        return out

    def day_rows(self, symbol, interval, day_start):
        """The daily archive's rows of that day: [open ms, close ms, fields...]."""
        key = (symbol, interval, day_start)
        if key not in self.day_cache:
            y, m, d = time.gmtime(day_start)[:3]
            text = gen_archives.rows(symbol, interval, y, m, day=d)
            self.day_cache[key] = [line.split(",") for line in text.splitlines()]
        return self.day_cache[key]


def klines_weight(family, limit):
    if family == "spot":
        return 2
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        cmd = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        st = self.server.state
        with st.lock:
            if cmd.get("reset"):
                st.reset()
            if "now" in cmd:
                t = datetime.datetime.strptime(cmd["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
                st.base_ms, st.set_at = int(t.timestamp() * 1000), time.time()
                st.speed = float(cmd.get("speed", 1))
            if "drop_minutes" in cmd:
                st.drop_until = st.now_ms() + int(cmd["drop_minutes"]) * 60000
            if "stall" in cmd:
                st.stall = bool(cmd["stall"])
            if "malformed" in cmd:
                st.malformed = int(cmd["malformed"])
                st.malformed_round += 1
            if "weight_limit" in cmd:
                st.weight_limit = int(cmd["weight_limit"])
            if "ban" in cmd:
                st.ban = bool(cmd["ban"])
            if "symbols" in cmd:
                st.symbols = set(cmd["symbols"])
            if "empty" in cmd:
                st.empty = [tuple(r) for r in cmd["empty"]]
            if "trades" in cmd:
                st.trades = cmd["trades"]
            if "exchange_info" in cmd:
                st.exchange_info = cmd["exchange_info"]
            if "funding_intervals" in cmd:
                st.funding_intervals = [tuple(r) for r in cmd["funding_intervals"]]
        self.send(200, {})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        st = self.server.state
        if url.path == "/_stats":
            with st.lock:
                self.send(200, {"requests": st.requests, "by_path": st.by_path,
                                "weight_by_minute": {f"{f}:{m}": w for (f, m), w in st.weight.items()},
                                "max_used_weight": st.max_used, "rate_limited": st.rate_limited, "banned": st.banned,
                                "klines_requests": st.klines_requests, "ws_port": st.ws_port,
                                "ws_connections": st.ws_connections, "ws_closed_sent": st.ws_closed_sent,
                                "ws_malformed_sent": st.ws_malformed_sent})
            return
        family = next((f for p, f in FAMILIES.items() if url.path.startswith(p)), None)
        name = url.path.rsplit("/", 1)[-1]
        by_id = name == "aggTrades" or (name == "historicalTrades" and family == "spot")
        if family is not None and name == "exchangeInfo":
            with st.lock:
                st.requests += 1
                st.by_path[url.path] = st.by_path.get(url.path, 0) + 1
                symbols = [dict(s) for s in st.exchange_info]
            if family == "cm":
                for s in symbols:
                    s["contractStatus"] = s.pop("status", None)
            self.send(200, {"timezone": "UTC", "symbols": symbols})
            return
        if family is None or (name not in ("time", "fundingRate") and name not in DATASETS and not by_id) or \
                (family == "spot" and name not in ("time", "klines") and not by_id):
            self.send(404, {"code": -1, "msg": "no such endpoint"})
            return
        q = dict(urllib.parse.parse_qsl(url.query))
        limit_max = 1000 if family == "spot" or name == "fundingRate" or by_id else 1500
        try:
            limit = int(q.get("limit", 100 if name == "fundingRate" else 500))
        except ValueError:
            self.send(400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'"})
            return
        weight = 1 if name in ("time", "fundingRate") else (25 if name == "historicalTrades" else 4 if family == "spot" else 20) if by_id \
            else klines_weight(family, limit)
        with st.lock:
            now = st.now_ms()
            minute = now // 60000
            st.requests += 1
            st.by_path[url.path] = st.by_path.get(url.path, 0) + 1
            if st.ban or st.after_429.get((family, minute), 0) >= 3:
                st.banned += 1
                self.send(418, {"code": -1003, "msg": "Way too many requests; IP banned."}, {"Retry-After": 120})
                return
            used = st.weight.get((family, minute), 0)
            if used + weight > st.limit(family):
                st.rate_limited += 1
                st.after_429[(family, minute)] = st.after_429.get((family, minute), 0) + 1
                self.send(429, {"code": -1003, "msg": "Too many requests."},
                          {"Retry-After": max(1, 60 - (now // 1000) % 60), "X-MBX-USED-WEIGHT-1M": used})
                return
            used += weight
            st.weight[(family, minute)] = used
            st.max_used = max(st.max_used, used)
            headers = {"X-MBX-USED-WEIGHT-1M": used}
            if name != "time":
                st.klines_requests.append(dict(q, path=url.path))
        if name == "time":
            self.send(200, {"serverTime": now}, headers)
            return
        if by_id:
            self.send(200, trades_page(st.trades, name, family, q, limit, limit_max), headers) if 1 <= limit <= limit_max and st.trades \
                else self.send(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, headers)
            return
        if name == "fundingRate":
            symbol = q.get("symbol")
            if not symbol or (st.symbols is not None and symbol not in st.symbols):
                self.send(400, {"code": -1121, "msg": "Invalid symbol."}, headers)
                return
            if not 1 <= limit <= limit_max:
                self.send(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, headers)
                return
            start = int(q.get("startTime", 0))
            end = min(int(q.get("endTime", now)), now)
            out = []
            for hour_ms in st.fundings(start - 10, end):
                t = hour_ms + (hour_ms // 3600000) % 7  # computed a few ms after the hour
                if start <= t <= end and t <= now:
                    k = hour_ms // 3600000
                    out.append({"symbol": symbol, "fundingTime": t, "fundingRate": f"{((k * 37) % 200 - 100) / 1e6:.8f}",
                                "markPrice": f"{60000 + k % 1000}.12345678"})
            self.send(200, out[:limit], headers)
            return
        param = "pair" if name == "indexPriceKlines" else "symbol"
        symbol, interval = q.get(param), q.get("interval")
        if not symbol:
            self.send(400, {"code": -1102, "msg": f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."}, headers)
            return
        if st.symbols is not None and symbol not in st.symbols:
            self.send(400, {"code": -1121, "msg": "Invalid symbol."}, headers)
            return
        if interval not in gen_archives.INTERVALS:
            self.send(400, {"code": -1120, "msg": "Invalid interval."}, headers)
            return
        if not 1 <= limit <= limit_max:
            self.send(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, headers)
            return
        step = gen_archives.INTERVALS[interval] * 1000
        start = int(q["startTime"]) if "startTime" in q else None
        end = int(q["endTime"]) if "endTime" in q else None
        micro = family == "spot" and self.headers.get("X-MBX-TIME-UNIT", "").lower() == "microsecond"
        if micro:  # µs parameters too
            start = start // 1000 if start is not None else None
            end = end // 1000 if end is not None else None
        last_open = (now // step) * step  # the open kline
        hi = (min(end, last_open) if end is not None else last_open) // step * step  # the last open time asked for
        if family == "cm" or start is None:
            # The most recent `limit` klines back from endTime (within startTime).
            lo = max(start if start is not None else 0, hi - (limit - 1) * step)
        else:
            lo = start
        first = -(-lo // step) * step
        opens = list(range(first, hi + 1, step))
        if family != "cm" and start is not None:
            opens = opens[:limit]
        out = []
        for t in opens:
            if any(a <= t <= b for a, b in st.empty):
                continue  # the exchange had no trading then (maintenance)
            day = (t // 1000) // 86400 * 86400
            fields = st.day_rows(symbol, interval, day)[(t // 1000 - day) // (step // 1000)]
            row = [int(fields[0]), *fields[1:6], int(fields[6]), fields[7], int(fields[8]), *fields[9:12]]
            if t + step > now:  # still open: its values move until it closes
                row[4] = f"{float(row[4]) * 1.01:.8f}"
            if micro:
                row[0], row[6] = row[0] * 1000, row[6] * 1000 + 999
            out.append(row)
        self.send(200, out, headers)


async def serve_streams(st, ready):
    from websockets.asyncio.server import serve

    async def handler(ws):
        query = urllib.parse.urlsplit(ws.request.path).query
        names = dict(urllib.parse.parse_qsl(query)).get("streams", "").split("/")
        with st.lock:
            if st.now_ms() < st.drop_until:
                refuse = True
            else:
                refuse = False
                st.ws_connections += 1
        if refuse:
            await ws.close(1013, "try again later")
            return
        streams = []
        for name in names:
            symbol, _, kind = name.partition("@kline_")
            if kind not in gen_archives.INTERVALS:
                continue
            step = gen_archives.INTERVALS[kind] * 1000
            streams.append({"name": name, "symbol": symbol.upper(), "interval": kind, "step": step,
                            "open": st.now_ms() // step * step, "n": 0})
        with st.lock:
            malformed_seen = st.malformed_round
        try:
            while True:
                await asyncio.sleep(0.005)
                with st.lock:
                    now, dropped, stalled = st.now_ms(), st.now_ms() < st.drop_until, st.stall
                    bad = st.malformed if st.malformed_round != malformed_seen else 0
                    malformed_seen = st.malformed_round
                for i in range(bad):
                    name = streams[0]["name"] if streams else "x@kline_1m"
                    if i % 2 == 0:
                        await ws.send('{"stream": "%s", "data": {"e": "kline", "k": {' % name)
                    else:
                        await ws.send(json.dumps({"stream": name, "data": {"e": "kline", "E": 0, "s": "X",
                                                                           "k": {"t": 0, "i": "1m", "x": True}}}))
                    with st.lock:
                        st.ws_malformed_sent += 1
                if dropped:
                    await ws.close(1001, "going away")
                    return
                if stalled:
                    for s_ in streams:  # the minutes of a stall are never sent
                        s_["open"] = now // s_["step"] * s_["step"]
                    continue
                for s_ in streams:
                    step = s_["step"]
                    while s_["open"] + step <= now:  # closed
                        msg = event(st, s_, s_["open"], True)
                        await ws.send(msg)
                        s_["n"] += 1
                        if s_["n"] % 3 == 0:
                            await ws.send(msg)  # a duplicate
                        with st.lock:
                            st.ws_closed_sent += 1
                        s_["open"] += step
                        await ws.send(event(st, s_, s_["open"], False))
        except Exception:
            return

    async with serve(handler, "127.0.0.1", 0) as server:
        st.ws_port = server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Future()


def event(st, s_, open_ms, closed):
    day = (open_ms // 1000) // 86400 * 86400
    with st.lock:
        f = st.day_rows(s_["symbol"], s_["interval"], day)[(open_ms // 1000 - day) // (s_["step"] // 1000)]
    close = f[4] if closed else f"{float(f[4]) * 1.01:.8f}"  # an open kline's values still move
    k = {"t": int(f[0]), "T": int(f[6]), "s": s_["symbol"], "i": s_["interval"], "f": 1, "L": 2,
         "o": f[1], "c": close, "h": f[2], "l": f[3], "v": f[5], "n": int(f[8]), "x": closed,
         "q": f[7], "V": f[9], "Q": f[10], "B": f[11]}
    return json.dumps({"stream": s_["name"], "data": {"e": "kline", "E": open_ms, "s": s_["symbol"], "k": k}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--weight-limit", type=int, default=None)
    ap.add_argument("--ws", action="store_true", help="also serve the kline streams")
    a = ap.parse_args()
    server = QuietThreadingServer(("127.0.0.1", a.port), Handler)
    server.state = State(a.weight_limit)
    if a.ws:
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(serve_streams(server.state, ready)), daemon=True).start()
        ready.wait(10)
    print(f"rest fixture on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
