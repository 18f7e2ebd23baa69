#!/usr/bin/env python3
"""A fixture archive server for tests: serves a directory in Binance's remote layout over HTTP,
the S3 ListBucket listing of it (paginated), and faults on demand.

GET /<remote path>                 the file (404 when absent)
GET /listing?delimiter=/&prefix=P[&marker=M]
                                   S3 ListBucketResult XML, --page-size entries a page
POST /_control {"path": P, "fault": F, "times": N, "retry_after": S}
    F: a status (404, 403, 500, 503, 429, 418; Retry-After sent when given), "delay" (the file,
    after "seconds"), "reset" (connection
    reset, no response), "stall" (headers and part of the body, then silence), "truncate" (a
    Content-Length larger than the body, then close), "wrong_checksum" (a CHECKSUM with another
    hash), "missing_checksum" (404 for the CHECKSUM). The fault applies to the next N requests of P.
    A P of "listing:PREFIX" faults the listings of that prefix (a status).
POST /_control {"reset": true}     clears faults and counters
GET /_stats                        {"requests": {path: count}, "times": {path: [unix times]},
                                    "listings": [prefix of each listing request, in order]}
Listing entries carry Size, an ETag (the MD5 of the file, as S3 gives for a plain upload) and
LastModified (the file's modification time), so a replaced file lists differently.
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import escape

from quiet_http import QuietThreadingServer


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.faults = {}  # path -> list of fault dicts
        self.requests = {}
        self.times = {}
        self.listings = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/octet-stream", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cmd = json.loads(body or b"{}")
        st = self.server.state
        with st.lock:
            if cmd.get("reset"):
                st.faults.clear()
                st.requests.clear()
                st.times.clear()
                st.listings.clear()
            if "path" in cmd:
                st.faults.setdefault(cmd["path"].lstrip("/"), []).extend([cmd] * int(cmd.get("times", 1)))
        self.send(200, b"{}", "application/json")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        st = self.server.state
        if url.path == "/_stats":
            with st.lock:
                return self.send(200, json.dumps({"requests": st.requests, "times": st.times, "listings": st.listings}).encode(), "application/json")
        if url.path == "/listing":
            return self.listing(urllib.parse.parse_qs(url.query))
        path = urllib.parse.unquote(url.path).lstrip("/")
        with st.lock:
            st.requests[path] = st.requests.get(path, 0) + 1
            st.times.setdefault(path, []).append(time.time())
            queue = st.faults.get(path) or []
            fault = queue.pop(0) if queue and queue[0]["fault"] not in ("wrong_checksum", "missing_checksum") else None
            if fault is None and path.endswith(".CHECKSUM"):  # checksum faults are set on the zip's path
                q = st.faults.get(path[: -len(".CHECKSUM")]) or []
                if q and q[0]["fault"] in ("wrong_checksum", "missing_checksum"):
                    fault = q.pop(0)
        file = os.path.normpath(os.path.join(self.server.root, path))
        if not file.startswith(self.server.root) or not os.path.isfile(file):
            if fault is None or fault["fault"] != "reset":
                return self.send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        kind = fault["fault"] if fault else None
        if isinstance(kind, int) or (isinstance(kind, str) and kind.isdigit()):
            extra = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            return self.send(int(kind), b"fault", "text/plain", extra)
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if kind == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            kind = None
        if kind == "missing_checksum":
            return self.send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        data = open(file, "rb").read()
        if kind == "wrong_checksum":
            name = os.path.basename(file)[: -len(".CHECKSUM")]
            return self.send(200, ("0" * 64 + "  " + name + "\n").encode(), "text/plain")
        if kind in ("stall", "truncate"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: 100] if kind == "stall" else data[: len(data) // 2])
            self.wfile.flush()
            if kind == "stall":
                time.sleep(float(fault.get("seconds", 30)))
            self.close_connection = True
            return
        self.send(200, data)

    def listing(self, q):
        prefix = (q.get("prefix") or [""])[0]
        marker = (q.get("marker") or [""])[0]
        with self.server.state.lock:
            self.server.state.listings.append(prefix)
            queue = self.server.state.faults.get("listing:" + prefix) or []
            fault = queue.pop(0) if queue else None
        if fault:
            return self.send(int(fault["fault"]), b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
        base = os.path.join(self.server.root, prefix)
        entries = []
        folder = base if prefix.endswith("/") or not prefix else os.path.dirname(base)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                key = os.path.relpath(os.path.join(folder, name), self.server.root)
                if not key.startswith(prefix):
                    continue
                entries.append((key + "/", True) if os.path.isdir(os.path.join(folder, name)) else (key, False))
        entries = [e for e in entries if e[0] > marker]
        page, rest = entries[: self.server.page_size], entries[self.server.page_size:]
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                 "<Name>data.binance.vision</Name><Prefix>%s</Prefix><Marker>%s</Marker>" % (escape(prefix), escape(marker)),
                 "<MaxKeys>%d</MaxKeys><Delimiter>/</Delimiter><IsTruncated>%s</IsTruncated>"
                 % (self.server.page_size, "true" if rest else "false")]
        if rest and self.server.next_marker:
            parts.append("<NextMarker>%s</NextMarker>" % escape(page[-1][0]))
        for key, is_dir in page:
            if is_dir:
                parts.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(key))
            else:
                path = os.path.join(self.server.root, key)
                info = os.stat(path)
                with open(path, "rb") as f:
                    etag = hashlib.md5(f.read()).hexdigest()
                modified = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(info.st_mtime)) + ".%03dZ" % (info.st_mtime_ns // 1_000_000 % 1000)
                parts.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag><Size>%d</Size>"
                             "<StorageClass>STANDARD</StorageClass></Contents>" % (escape(key), modified, etag, info.st_size))
        parts.append("</ListBucketResult>")
        self.send(200, "".join(parts).encode(), "application/xml")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=3)
    ap.add_argument("--no-next-marker", action="store_true")
    a = ap.parse_args()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = QuietThreadingServer(("127.0.0.1", a.port), Handler)
    server.root = os.path.realpath(a.root)
    server.page_size = a.page_size
    server.next_marker = not a.no_next_marker
    server.state = State()
    print("listening on http://127.0.0.1:%d/" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
