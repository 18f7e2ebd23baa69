#!/usr/bin/env python3
"""A TCP proxy that makes loopback look like a real network (this machine has no netem): each
chunk is delayed by --delay-ms one way (so a round trip costs twice that), and --rate caps the
bytes per second of all connections together in each direction (0: no cap).

latency_proxy.py --upstream PORT [--delay-ms 125] [--rate BYTES] --port 0
prints `listening on http://127.0.0.1:PORT/` once bound; the path is whatever the upstream serves.
"""
import argparse
import asyncio
import time


class Link:
    """One direction's shared rate: a byte may leave no earlier than the link allows."""

    def __init__(self, rate):
        self.rate = rate
        self.free_at = 0.0

    def slot(self, size):
        if not self.rate:
            return 0.0
        now = time.monotonic()
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        return self.free_at - now


async def pipe(reader, writer, delay, link):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.create_task(deliver())
    try:
        while True:
            # Small reads, so a rate cap paces a large body instead of passing it in one burst.
            data = await reader.read(16384 if link.rate else 65536)
            if not data:
                break
            pace = link.slot(len(data))
            if pace > 0:
                await asyncio.sleep(pace)
            await queue.put((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    await queue.put(None)
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--rate", type=float, default=0, help="bytes per second per direction, shared")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    delay = a.delay_ms / 1000
    up, down = Link(a.rate), Link(a.rate)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", a.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer, delay, up), pipe(server_reader, client_writer, delay, down))
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", a.port)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
