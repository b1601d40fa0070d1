"""Request and response bodies: Content-Length and chunked, large and
streamed, and bodies cut short by the origin."""
import hashlib
import json
import os
import re
import socket
import time

import pytest

from conftest import (Conn, canned, curl, exchange, pattern_bytes, pattern_pieces, pattern_sha256,
                      read_request, read_response)


def test_post_100mb_with_curl(proxy, origin, tmp_path):
    n = 100 * 1024 * 1024
    f = tmp_path / "upload.bin"
    with open(f, "wb") as out:
        for piece in pattern_pieces(n, piece=1 << 16):
            out.write(piece)
    r = curl("-x", proxy.url, "--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream",
             origin.url("/echo"), "-w", "\n%{http_code}", timeout=180)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition(b"\n")
    assert code == b"200"
    doc = json.loads(body)
    assert doc["body_length"] == n
    assert doc["body_sha256"] == pattern_sha256(n)


def test_post_chunked_with_curl(proxy, origin, tmp_path):
    n = 5 * 1024 * 1024 + 17
    f = tmp_path / "upload.bin"
    f.write_bytes(pattern_bytes(n))
    r = curl("-x", proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "@%s" % f,
             origin.url("/echo"), "-w", "\n%{http_code}", timeout=120)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition(b"\n")
    assert code == b"200"
    doc = json.loads(body)
    assert ["Transfer-Encoding", "chunked"] in doc["headers"]
    assert doc["body_length"] == n
    assert doc["body_sha256"] == pattern_sha256(n)


def test_post_chunked_raw_with_extensions_and_trailer(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    r = exchange(p.port, b"POST http://" + a + b"/up HTTP/1.1\r\nHost: " + a + b"\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5;x=y\r\nhello\r\n1\r\n \r\nA ; q=\"1;2\"\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n")
    assert r.status == 200 and r.body == b"ok"
    got = srv.wait_requests(1)[0]
    head, _, body = got.partition(b"\r\n\r\n")
    assert head == b"POST /up HTTP/1.1\r\nHost: " + a + b"\r\nTransfer-Encoding: chunked"
    # Re-chunked: same payload, no extensions, no trailer.
    data, pos = b"", 0
    while True:
        m = re.match(rb"([0-9a-fA-F]+)\r\n", body[pos:])
        assert m, "bad chunk size line in %r" % body[pos:pos + 40]
        size = int(m.group(1), 16)
        pos += m.end()
        if size == 0:
            assert body[pos:] == b"\r\n"
            break
        data += body[pos:pos + size]
        assert body[pos + size:pos + size + 2] == b"\r\n"
        pos += size + 2
    assert data == b"hello 0123456789"


def test_post_chunked_streamed_slowly(proxy, origin):
    """Chunks trickle in: the proxy passes each on as it comes."""
    parts = [os.urandom(n) for n in (1, 1000, 70000, 3, 300000)]
    with Conn(proxy.port, timeout=20) as c:
        c.send(b"POST " + origin.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for part in parts:
            c.send(b"%x\r\n" % len(part))
            c.send(part[:len(part) // 2])
            c.send(part[len(part) // 2:] + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = read_response(c)
    doc = r.json()
    body = b"".join(parts)
    assert doc["body_length"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_post_empty_and_zero_length(proxy, origin):
    a = b"127.0.0.1:%d" % origin.port
    r = exchange(proxy.port, b"POST http://" + a + b"/echo HTTP/1.1\r\nHost: " + a +
                 b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert r.json()["body_length"] == 0
    r = exchange(proxy.port, b"POST http://" + a + b"/echo HTTP/1.1\r\nHost: " + a +
                 b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")
    assert r.json()["body_length"] == 0


def test_put_and_post_http10(proxy, origin):
    a = b"127.0.0.1:%d" % origin.port
    body = os.urandom(100000)
    r = exchange(proxy.port, b"PUT http://" + a + b"/echo HTTP/1.0\r\nHost: " + a +
                 b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    doc = r.json()
    assert doc["method"] == "PUT"
    assert doc["request_line"] == "PUT /echo HTTP/1.0"
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_keep_alive_after_bodies(proxy, origin):
    a = b"127.0.0.1:%d" % origin.port
    with Conn(proxy.port) as c:
        for i in range(5):
            body = os.urandom(1000 * (i + 1))
            c.send(b"POST http://" + a + b"/echo?%d HTTP/1.1\r\nHost: " % i + a +
                   b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            doc = read_response(c).json()
            assert doc["path"] == "/echo?%d" % i
            assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_large_chunked_response_with_curl(proxy, origin):
    n = 20 * 1024 * 1024 + 5
    r = curl("-x", proxy.url, origin.url("/chunked/%d?ext=1&trailer=1" % n), "-o", "-", timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == n
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(n)


def test_large_response_with_curl(proxy, origin):
    n = 50 * 1024 * 1024
    r = curl("-x", proxy.url, origin.url("/bytes/%d" % n), "-o", "-", timeout=120)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(n)


def test_close_delimited_large_response(proxy, origin):
    n = 10 * 1024 * 1024
    r = curl("-x", proxy.url, origin.url("/close/%d" % n), "-o", "-", timeout=120)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(n)


# ------------------------------------------------------------------ truncation


def test_origin_dies_mid_response_curl(proxy, origin):
    n = 300000
    r = curl("-x", proxy.url, origin.url("/die/%d" % n), "-o", "-", timeout=60)
    assert r.returncode == 18, (r.returncode, r.stderr)  # CURLE_PARTIAL_FILE
    assert len(r.stdout) == n
    assert r.stdout == pattern_bytes(n)


def test_origin_dies_mid_response_raw(proxy, origin):
    n = 100000
    with Conn(proxy.port, timeout=15) as c:
        c.send(b"GET " + origin.url("/die/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(c, allow_short=True)
        assert r.status == 200
        assert r.header("Content-Length") == str(2 * n)
        assert not r.complete
        assert r.body == pattern_bytes(n)
        assert c.eof


def test_origin_dies_mid_chunked_response(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc",
                            close=True))
    p = start_proxy()
    with Conn(p.port, timeout=15) as c:
        c.send(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        r = read_response(c, allow_short=True)
        assert r.status == 200
        assert not r.complete, "a cut chunked body must not be terminated with 0-chunk"
        assert r.body.startswith(b"hello")
        assert b"0\r\n\r\n" not in r.raw_body


def test_origin_dies_mid_chunked_response_http10_client(start_proxy, raw_origin):
    """A 1.0 client reads the decoded body to EOF: closing is all the proxy
    can do, and it must pass on nothing but payload bytes."""
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc",
                            close=True))
    p = start_proxy()
    with Conn(p.port, timeout=15) as c:
        c.send(b"GET http://127.0.0.1:%d/ HTTP/1.0\r\nHost: x\r\n\r\n" % srv.port)
        r = read_response(c, allow_short=True)
        assert r.status == 200
        assert r.body in (b"hello", b"helloabc")


def test_client_disconnects_mid_upload(start_proxy, origin):
    """A client vanishing mid-body must not disturb the proxy."""
    p = start_proxy()
    a = b"127.0.0.1:%d" % origin.port
    c = Conn(p.port)
    c.send(b"POST http://" + a + b"/echo HTTP/1.1\r\nHost: " + a + b"\r\nContent-Length: 10000000\r\n\r\n")
    c.send(b"x" * 100000)
    c.close()
    r = exchange(p.port, b"GET http://" + a + b"/bytes/10 HTTP/1.1\r\nHost: " + a +
                 b"\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == pattern_bytes(10)


def test_client_disconnects_mid_download(start_proxy, origin):
    p = start_proxy()
    a = b"127.0.0.1:%d" % origin.port
    for _ in range(3):
        c = Conn(p.port)
        c.send(b"GET http://" + a + b"/bytes/50000000 HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        c.read_exact(100000)
        c.close()
    r = exchange(p.port, b"GET http://" + a + b"/bytes/10 HTTP/1.1\r\nHost: " + a +
                 b"\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == pattern_bytes(10)


def test_upload_and_early_response(start_proxy, raw_origin):
    """The origin answers before the whole body is sent (e.g. 413): the
    client gets that answer and the connection is closed after it."""
    def handler(srv, conn):
        head = conn.read_until(b"\r\n\r\n")
        srv.add_request(head)
        conn.send(b"HTTP/1.1 413 Too Big\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
        conn.sock.shutdown(socket.SHUT_WR)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port, timeout=15) as c:
        c.send(b"POST http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\nContent-Length: 1000000\r\n\r\n")
        c.send(b"y" * 1000)
        r = read_response(c)
        assert r.status == 413 and r.body == b"nope"
        assert r.header("Connection") == "close"


# ------------------------------------------------------------------ client half-close


@pytest.mark.parametrize("n", [1000, 100000, 50 * 1024 * 1024])
def test_client_half_close_after_request_gets_whole_response(proxy, origin, n):
    """A client may shut down its sending side once the request is out
    (shutdown(SHUT_WR), as `nc -N` does): the response must still arrive
    complete, then the connection closes."""
    with Conn(proxy.port, timeout=30) as c:
        c.send(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        c.shutdown_write()
        r = read_response(c, sink=None if n < 1000000 else hashlib.sha256().update, allow_short=True)
        assert r.status == 200
        assert r.length == n, "got %d of %d body bytes" % (r.length, n)
        assert r.complete
        assert c.at_eof()


def test_client_half_close_after_request_raw_origin(start_proxy, raw_origin):
    """Head and body arrive from the origin in one piece."""
    body = b"b" * 5000
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    p = start_proxy()
    with Conn(p.port, timeout=15) as c:
        c.send(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        c.shutdown_write()
        data = c.read_to_eof()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:100]
    assert data.endswith(b"\r\n\r\n" + body), "got %d bytes: %r" % (len(data), data[:200])


def test_client_half_close_after_pipelined_requests(proxy, origin):
    sizes = (100, 3000000, 300)
    with Conn(proxy.port, timeout=30) as c:
        c.send(b"".join(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                        for n in sizes))
        c.shutdown_write()
        for i, n in enumerate(sizes):
            r = read_response(c, allow_short=True)
            assert r.status == 200, (i, r)
            assert r.complete and r.body == pattern_bytes(n), \
                "response %d: got %d of %d body bytes" % (i, len(r.body), n)
        assert c.at_eof()


# ------------------------------------------------------------------ timeouts.io is about progress


def test_slow_but_steady_upload_longer_than_io_timeout(start_proxy, origin):
    p = start_proxy({"timeouts": {"io": 1}})
    piece = 100000
    count = 30  # ~3 s at 0.1 s per piece: three times timeouts.io
    h = hashlib.sha256()
    with Conn(p.port, timeout=20) as c:
        c.send(b"POST " + origin.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (piece * count))
        for i in range(count):
            data = bytes([i]) * piece
            h.update(data)
            c.send(data)
            time.sleep(0.1)
        r = read_response(c)
    assert r.status == 200, r
    assert r.json()["body_sha256"] == h.hexdigest()


def test_slow_but_steady_download_longer_than_io_timeout(start_proxy, raw_origin):
    def handler(srv, conn):
        read_request(conn)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n")
        for i in range(30):
            conn.send(bytes([65 + i % 26]) * 1000)
            time.sleep(0.1)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy({"timeouts": {"io": 1}})
    with Conn(p.port, timeout=20) as c:
        c.send(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        r = read_response(c)
    assert r.status == 200
    assert r.body == b"".join(bytes([65 + i % 26]) * 1000 for i in range(30))


def test_origin_stalls_mid_body_connection_cut(start_proxy, raw_origin):
    """No progress for timeouts.io in the middle of a body: the client sees
    the body cut short (the status line is long gone)."""
    def handler(srv, conn):
        read_request(conn)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy({"timeouts": {"io": 1}})
    with Conn(p.port, timeout=20) as c:
        t0 = time.monotonic()
        c.send(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        r = read_response(c, allow_short=True)
        assert r.status == 200 and not r.complete and r.body == b"a" * 10
        assert time.monotonic() - t0 < 5
