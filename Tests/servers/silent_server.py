#!/usr/bin/env python3
"""A server that accepts connections, reads what comes, and never answers: a hung MarketStore
(or a proxy whose upstream hangs). silent_server.py --port 0 prints `listening on http://127.0.0.1:PORT/rpc`."""
import argparse
import socket
import threading


def hold(conn):
    with conn:
        while conn.recv(65536):
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(64)
    print(f"listening on http://127.0.0.1:{s.getsockname()[1]}/rpc", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=hold, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
