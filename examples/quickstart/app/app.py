#!/usr/bin/env python3
"""The quickstart app: a tiny web app with a health endpoint, needing nothing
but the Python 3 that ships with the machine. It listens on $PORT and says
which release and color it runs (bluegreen sets $BLUEGREEN_RELEASE and
$BLUEGREEN_COLOR), so a deploy's version swap is visible."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = os.environ.get("BLUEGREEN_RELEASE", "dev")
COLOR = os.environ.get("BLUEGREEN_COLOR", "none")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer each response into one write; unbuffered, headers and body go
    # out separately and stall on Nagle plus delayed ACKs under keep-alive.
    wbufsize = 65536
    def do_GET(self):
        if self.path == "/health":
            body = b"ok\n"
        elif self.path == "/":
            body = f"Hello from the quickstart app, release {RELEASE} ({COLOR})\n".encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
