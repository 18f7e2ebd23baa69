#!/usr/bin/env python3
"""`make bench-http2`: what HTTP/2 is worth for a first nightly's many small archives (issue 35,
item 2). nginx (Debian's nginx-light: TLS, HTTP/2 by
ALPN) serves the archive tree of `make bench-wan` behind Tests/servers/latency_proxy.py; through
the same proxy, side by side, run by run:

- `curl --parallel --parallel-max 16 --http1.1` and `--http2` (one connection, multiplexed)
  fetching every file (archives and CHECKSUMs): the limit each protocol sets;
- the importer's first nightly of the same keys (files from nginx over TLS, the S3 listing from
  the fixture archive server behind its own proxy), with `source.http: 1.1` (a kept-alive
  connection per download) and `source.http: 2` (its default: downloads as streams of one
  connection), alternating.

usage: bench/http2.py --bin .build/release/binance-import [--keys 200] [--rtt 250] [--runs 3] [--curl 16,64]
(--curl: the curl concurrencies to run, of 16 and 64; a 2,000-key run skips 16, about ten minutes a protocol)
Prints a Markdown table (medians, min-max).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from wan import Server, job, tree, TODAY  # noqa: E402


def certificate(work):
    key, cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], check=True, capture_output=True)
    return key, cert


def nginx(work, root, key, cert, port):
    conf = os.path.join(work, "nginx.conf")
    open(conf, "w").write(f"""daemon off;
worker_processes 1;
user root;  # the tree is in a private temporary folder
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    http2_max_concurrent_streams 128;
    root {root};
  }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def curl(work, port, root, cert, version, parallel):
    config, out = os.path.join(work, "curl.cfg"), os.path.join(work, "curl-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    files = [os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(os.path.join(root, "data")) for n in names]
    with open(config, "w") as f:
        for i, rel in enumerate(files):
            f.write(f'url = "https://127.0.0.1:{port}/{rel}"\noutput = "{out}/{i}"\n')
    t0 = time.perf_counter()
    subprocess.run(["curl", "--silent", "--fail", "--cacert", cert, version, "--parallel", "--parallel-max", str(parallel), "--config", config],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--rtt", type=int, default=250)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--curl", default="16,64")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-http2-")
    try:
        symbols = [f"S{i:04d}USDT" for i in range(a.keys)]
        root = os.path.join(work, "tree")
        tree(root, symbols)
        key, cert = certificate(work)
        archives = Server("archive_server.py", root, "--page-size", "1000")
        listing_proxy = Server("latency_proxy.py", "--upstream", str(archives.port), "--delay-ms", str(a.rtt / 2))
        web = nginx(work, root, key, cert, 18443)
        tls_proxy = Server("latency_proxy.py", "--upstream", "18443", "--delay-ms", str(a.rtt / 2))
        figures = {"h1": [], "h2": [], "h1 64": [], "h2 64": [], "importer h1": [], "importer h2": []}
        try:
            for r in range(a.runs):
                for version in (("1.1", "2") if r % 2 == 0 else ("2", "1.1")):
                    name = f"h{r}v{version.replace('.', '')}"
                    path = job(work, listing_proxy.port, symbols, name)
                    text = open(path).read().replace(f"base_url: http://127.0.0.1:{listing_proxy.port}/",
                                                     f"base_url: https://127.0.0.1:{tls_proxy.port}/\n  http: \"{version}\"")
                    open(path, "w").write(text)
                    t0 = time.perf_counter()
                    p = subprocess.run([a.bin, "nightly", path], capture_output=True, text=True,
                                       env=dict(os.environ, BINANCE_IMPORT_TODAY=TODAY, CURL_CA_BUNDLE=cert))
                    if p.returncode != 0:
                        raise SystemExit(f"nightly exited {p.returncode}: {p.stdout[-800:]} {p.stderr[-800:]}")
                    figures["importer h1" if version == "1.1" else "importer h2"].append(time.perf_counter() - t0)
                for parallel, suffix in ((16, ""), (64, " 64")):
                    if str(parallel) not in a.curl.split(","):
                        continue
                    figures["h1" + suffix].append(curl(work, tls_proxy.port, root, cert, "--http1.1", parallel))
                    figures["h2" + suffix].append(curl(work, tls_proxy.port, root, cert, "--http2", parallel))
                print(r, {k: round(v[-1], 2) for k, v in figures.items() if v}, flush=True)
        finally:
            tls_proxy.stop()
            web.terminate()
            web.wait(5)
            listing_proxy.stop()
            archives.stop()

        def fmt(v):
            return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" if v else "-"

        def med(k):
            return statistics.median(figures[k]) if figures[k] else float("nan")
        h1, h2, h1w, h2w = med("h1"), med("h2"), med("h1 64"), med("h2 64")
        i1, i2 = med("importer h1"), med("importer h2")
        count = sum(len(names) for _, _, names in os.walk(os.path.join(root, "data")))
        print(f"\n| keys | round trip | files | curl, 16 at once, HTTP/1.1 | curl, 16 at once, HTTP/2 | curl, 64 at once, HTTP/1.1 | "
              f"curl, 64 at once, HTTP/2 | importer first nightly, HTTP/1.1 (16 downloads; listings, decode, write included) | "
              f"importer first nightly, HTTP/2 | curl HTTP/2 / HTTP/1.1 at 16, at 64 | importer HTTP/2 / HTTP/1.1 | importer HTTP/2 / curl HTTP/2 at 16, at 64 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {a.keys} | {a.rtt} ms | {count} | {fmt(figures['h1'])} | {fmt(figures['h2'])} | {fmt(figures['h1 64'])} | "
              f"{fmt(figures['h2 64'])} | {fmt(figures['importer h1'])} | {fmt(figures['importer h2'])} | {h2 / h1:.2f}, {h2w / h1w:.2f} | "
              f"{i2 / i1:.2f} | {i2 / h2:.2f}, {i2 / h2w:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
