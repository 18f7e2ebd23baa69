#!/usr/bin/env python3
"""nginx (Debian's nginx-light) as MarketStore is deployed behind it: TLS with a certificate of a
private CA made here, and HTTP basic auth, proxying to a MarketStore (test) server.

tls_proxy.py --upstream PORT --dir DIR [--user U --password P] --port 0
Writes DIR/ca.pem (the CA to trust), starts nginx and prints `listening on http://127.0.0.1:PORT/rpc`
once it accepts connections (the URL to use is https://U:P@127.0.0.1:PORT/rpc). Stops nginx on
SIGTERM.

tls_proxy.py --root TREE --dir DIR [--http1-only] --port 0
Serves the files of TREE over TLS with HTTP/2 (as data.binance.vision does; only HTTP/1.1 with
--http1-only), no auth, and logs each request to DIR/access.log as `CONNECTION PROTOCOL STATUS URI`:
which connection carried it.
"""
import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def certificates(d):
    ca_key, ca, key, csr, cert = (os.path.join(d, n) for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
        "-subj", "/CN=binance-import test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = os.path.join(d, "san.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
        "-extfile", ext)
    return key, cert


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    serves = ap.add_mutually_exclusive_group(required=True)
    serves.add_argument("--upstream", type=int)
    serves.add_argument("--root")
    ap.add_argument("--http1-only", action="store_true")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--user", default="ingest")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    key, cert = certificates(a.dir)
    port = a.port or free_port()
    if a.root:
        server = f"""
    log_format connections '$connection $server_protocol $status $uri';
    server {{
        listen 127.0.0.1:{port} ssl{"" if a.http1_only else " http2"};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        http2_max_concurrent_streams 128;
        access_log {a.dir}/access.log connections;
        location / {{ root {os.path.abspath(a.root)}; }}
    }}"""
    else:
        with open(os.path.join(a.dir, "htpasswd"), "w") as f:
            f.write(f"{a.user}:{{PLAIN}}{a.password}\n")
        server = f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        auth_basic "marketstore";
        auth_basic_user_file {a.dir}/htpasswd;
        location / {{ proxy_pass http://127.0.0.1:{a.upstream}; proxy_read_timeout 600s; }}
    }}"""
    conf = os.path.join(a.dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {a.dir}/nginx.pid;
error_log {a.dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {a.dir}/body;
    proxy_temp_path {a.dir}/proxy;
    fastcgi_temp_path {a.dir}/fastcgi;
    uwsgi_temp_path {a.dir}/uwsgi;
    scgi_temp_path {a.dir}/scgi;
    client_max_body_size 0;{server}
}}
""")
    def die_with_parent():  # nginx ends with this script, however it ends (PR_SET_PDEATHSIG)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)

    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", a.dir, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=die_with_parent)

    def stop(*_):
        nginx.terminate()
        try:
            nginx.wait(5)
        except subprocess.TimeoutExpired:
            nginx.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(100):
        if nginx.poll() is not None:
            sys.exit("nginx did not start: " + open(os.path.join(a.dir, "error.log")).read())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print(f"listening on http://127.0.0.1:{port}/rpc", flush=True)
    nginx.wait()


if __name__ == "__main__":
    main()
