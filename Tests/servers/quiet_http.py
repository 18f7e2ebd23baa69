"""The threaded HTTP server both test servers use: a client killed or hanging up mid-request is
part of the tests (crash trials, timeouts), not an error worth a traceback."""
import sys
from http.server import ThreadingHTTPServer


class QuietThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)
