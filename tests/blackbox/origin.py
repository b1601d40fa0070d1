#!/usr/bin/env python3
"""Origin server for the anonproxy black-box tests.

Run as `origin.py [PORT]` (PORT 0 or absent: any free port). Listens on
127.0.0.1 only, speaks HTTP/1.1 with keep-alive, and prints "READY <port>"
on stdout once it accepts connections.

Endpoints:
  /bytes/N         N bytes of the deterministic pattern, Content-Length,
                   written in 64 KiB pieces
  /chunked/N       the same N bytes, Transfer-Encoding: chunked, chunk sizes
                   varying; ?ext=1 adds chunk extensions, ?trailer=1 a trailer
  /close/N         HTTP/1.0-style: no length, body ends when the connection closes
  /echo            JSON: method, path, request line, version, headers as an
                   ordered list of [name, value], client port, body sha256 and
                   length (Content-Length and chunked bodies are read)
  /status/CODE     that status; 204 and 304 carry no body (304 announces a
                   Content-Length the way a real origin may)
  /die/N           announces Content-Length 2N, sends N bytes, then closes
  /slow/S          sleeps S seconds, then answers; ?head=1 sends the head
                   first and the body after the sleep
  /ws              minimal WebSocket: handshake, then echoes one text frame
Expect: 100-continue is answered with "100 Continue" (BaseHTTPRequestHandler).

The pattern helpers are imported by the tests to check what they receive.
"""
import base64
import hashlib
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# ---------------------------------------------------------------- pattern

PATTERN_PERIOD = 65521  # prime, so that a lost or repeated 64 KiB piece shows


def _make_pattern():
    out = bytearray(PATTERN_PERIOD)
    x = 0x2545F491
    for i in range(PATTERN_PERIOD):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


PATTERN = _make_pattern()
_PATTERN3 = memoryview(PATTERN * 3)
PIECE = 65536


def pattern_pieces(n, piece=PIECE, offset=0):
    """Yields bytes offset..offset+n of the endless pattern, in pieces."""
    assert piece <= 2 * PATTERN_PERIOD
    pos, end = offset, offset + n
    while pos < end:
        k = min(piece, end - pos)
        s = pos % PATTERN_PERIOD
        yield _PATTERN3[s:s + k]
        pos += k


def pattern_bytes(n, offset=0):
    return b"".join(bytes(p) for p in pattern_pieces(n, offset=offset))


def pattern_sha256(n):
    h = hashlib.sha256()
    for p in pattern_pieces(n, piece=2 * PATTERN_PERIOD):
        h.update(p)
    return h.hexdigest()


CHUNK_SIZES = (1, 100, 4096, 65536, 7, 30000)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# ---------------------------------------------------------------- server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "origin"
    sys_version = ""
    timeout = 120  # a stuck test never keeps a thread forever
    # The head and the body go out in separate writes: with Nagle's
    # algorithm the body would wait for the peer's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    # -- helpers

    def read_body(self):
        """Reads the request body; returns (sha256 hex, length)."""
        h = hashlib.sha256()
        total = 0
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailer section
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 1 << 20))
                    if not b:
                        raise ConnectionError("EOF in chunk data")
                    h.update(b)
                    total += len(b)
                    left -= len(b)
                self.rfile.readline(3)
        else:
            left = int(self.headers.get("Content-Length", "0") or 0)
            while left:
                b = self.rfile.read(min(left, 1 << 20))
                if not b:
                    raise ConnectionError("EOF in body")
                h.update(b)
                total += len(b)
                left -= len(b)
        return h.hexdigest(), total

    def send_simple(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- dispatch

    def handle_any(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = parse_qs(url.query)
        name = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        try:
            if name == "echo":
                return self.do_echo(url)
            # Every other endpoint ignores a body but must consume it.
            self.read_body()
            if name == "bytes":
                return self.do_bytes(int(arg))
            if name == "chunked":
                return self.do_chunked(int(arg), "ext" in query, "trailer" in query)
            if name == "close":
                return self.do_close(int(arg))
            if name == "status":
                return self.do_status(int(arg))
            if name == "die":
                return self.do_die(int(arg))
            if name == "slow":
                return self.do_slow(float(arg), "head" in query)
            if name == "ws":
                return self.do_ws()
            return self.send_simple(404, b"no such endpoint\n")
        except (ConnectionError, BrokenPipeError, socket.timeout, OSError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = handle_any

    def do_echo(self, url):
        sha, length = self.read_body()
        doc = {
            "method": self.command,
            "path": self.path,
            "request_line": self.requestline,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "client_port": self.client_address[1],
            "body_sha256": sha,
            "body_length": length,
        }
        self.send_simple(200, json.dumps(doc).encode() + b"\n", "application/json")

    def do_bytes(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        for piece in pattern_pieces(n):
            self.wfile.write(piece)

    def do_chunked(self, n, ext, trailer):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        if trailer:
            self.send_header("Trailer", "X-Trailer")
        self.end_headers()
        if self.command == "HEAD":
            return
        pos, i = 0, 0
        while pos < n:
            k = min(CHUNK_SIZES[i % len(CHUNK_SIZES)], n - pos)
            i += 1
            size = b"%x" % k + (b';ext="v%d"' % i if ext else b"")
            self.wfile.write(size + b"\r\n" + pattern_bytes(k, pos) + b"\r\n")
            pos += k
        self.wfile.write(b"0\r\n" + (b"X-Trailer: yes\r\n" if trailer else b"") + b"\r\n")

    def do_close(self, n):
        self.close_connection = True
        self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        if self.command != "HEAD":
            for piece in pattern_pieces(n):
                self.wfile.write(piece)

    def do_status(self, code):
        if code in (204, 304):
            self.send_response(code)
            if code == 304:
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "1234")
            self.end_headers()
            return
        self.send_simple(code, b"status %d\n" % code)

    def do_die(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(2 * n))
        self.end_headers()
        for piece in pattern_pieces(n):
            self.wfile.write(piece)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def do_slow(self, seconds, head_first):
        body = b"slept %g\n" % seconds
        if head_first:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            time.sleep(seconds)
            self.wfile.write(body)
            return
        time.sleep(seconds)
        self.send_simple(200, body)

    def do_ws(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            return self.send_simple(400, b"not a websocket handshake\n")
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True
        hdr = self.rfile.read(2)
        if len(hdr) < 2:
            return
        opcode, ln = hdr[0] & 0x0F, hdr[1] & 0x7F
        masked = hdr[1] & 0x80
        if ln == 126:
            ln = int.from_bytes(self.rfile.read(2), "big")
        elif ln == 127:
            ln = int.from_bytes(self.rfile.read(8), "big")
        mask = self.rfile.read(4) if masked else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(ln)))
        out = bytes([0x80 | opcode])
        if len(data) < 126:
            out += bytes([len(data)])
        elif len(data) < 65536:
            out += bytes([126]) + len(data).to_bytes(2, "big")
        else:
            out += bytes([127]) + len(data).to_bytes(8, "big")
        self.wfile.write(out + data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = Server(("127.0.0.1", port), Handler)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
