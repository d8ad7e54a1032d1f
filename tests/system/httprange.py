"""A loopback HTTP server with byte ranges (RFC 9110 §14), for the http(s) disk tests:
Python's http.server has no Range support, which QEMU's curl driver requires.
Run as a program: httprange.py DIR PORTFILE [--no-ranges] [--delay S] [--log FILE]
[--tls CERT KEY]; it writes its port to PORTFILE.  --log appends one line per request:
"METHOD RANGE COOKIE"."""
import argparse
import os
import re
import ssl
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class RangeHandler(SimpleHTTPRequestHandler):
    ranges = True
    delay = 0.0
    log = None

    def log_message(self, *args):
        pass

    def send_head(self):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{self.command} {self.headers.get('Range', '-')} "
                        f"{self.headers.get('Cookie', '-')}\n")
        if self.headers.get("Range"):
            time.sleep(self.delay)
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        size = os.path.getsize(path)
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")) \
            if self.ranges else None
        f = open(path, "rb")
        if not m:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            if self.ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return f
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        if start >= size or end < start:
            f.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        f.seek(start)
        self._left = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        left = getattr(self, "_left", None)
        while left is None or left > 0:
            chunk = source.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            outputfile.write(chunk)
            if left is not None:
                left -= len(chunk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("portfile")
    ap.add_argument("--no-ranges", action="store_true")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--log")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    RangeHandler.ranges = not args.no_ranges
    RangeHandler.delay = args.delay
    RangeHandler.log = args.log
    handler = lambda *a, **kw: RangeHandler(*a, directory=args.dir, **kw)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*args.tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    portfile = args.portfile
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
