"""The threaded HTTP server both test servers use: a client killed or hanging up mid-request is
part of the tests (crash trials, timeouts), not an error worth a traceback. Responses go out
without Nagle's delay: http.server writes the headers and the body apart, and a kept-alive
client's delayed ACK then held every answer ~40 ms, as no real server does."""
import socket
import sys
from http.server import ThreadingHTTPServer


class QuietThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)
