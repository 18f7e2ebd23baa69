#!/usr/bin/env python3
"""The ceiling of a MarketStore-protocol server: the importer's own Write requests, recorded
(marketstore_server.py --sink --record DIR) and replayed to URL back to back over one kept-alive
connection. Only the sending is timed: the bodies are read and counted before.

usage: replay.py URL DIR ; prints a JSON line with rows, requests and seconds.
"""
import glob
import http.client
import json
import os
import sys
import time
import urllib.parse

import msgpack


def rows_of(body):
    request = msgpack.unpackb(body, raw=False, strict_map_key=False)
    return sum(r["dataset"]["length"] for r in request["params"]["requests"])


def main():
    url, directory = sys.argv[1], sys.argv[2]
    bodies = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(directory, "*.msgpack")))]
    if not bodies:
        raise SystemExit(f"no recorded requests in {directory}")
    rows = sum(rows_of(b) for b in bodies)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
    t0 = time.perf_counter()
    for body in bodies:
        conn.request("POST", u.path or "/rpc", body, {"Content-Type": "application/x-msgpack"})
        response = conn.getresponse()
        reply = msgpack.unpackb(response.read(), raw=False, strict_map_key=False)
        errors = [r.get("error") for r in ((reply.get("result") or {}).get("responses") or []) if r.get("error")]
        if response.status != 200 or reply.get("error") or errors:
            raise SystemExit(f"replay refused: HTTP {response.status} {reply.get('error') or errors[:1]}")
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": rows, "requests": len(bodies), "seconds": seconds}))


if __name__ == "__main__":
    main()
