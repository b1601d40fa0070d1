"""Volume and concurrency: 1 GiB each way with bounded RSS, a slow reader,
500 concurrent clients."""
import hashlib
import threading
import time

from conftest import (Conn, RssMonitor, parse_head, pattern_bytes, pattern_pieces, pattern_sha256,
                      read_response, rss_env, rss_limit_kib)

GIB = 1024 * 1024 * 1024


def assert_rss_bounded(mon):
    limit = rss_limit_kib()
    print("proxy RSS: max VmRSS %d KiB, VmHWM %d KiB, %d samples, limit %d KiB"
          % (mon.max_kib, mon.hwm_kib, mon.samples, limit))
    assert mon.samples > 0
    assert mon.max_kib < limit, "proxy VmRSS peaked at %d KiB (limit %d KiB)" % (mon.max_kib, limit)
    assert mon.hwm_kib < limit, "proxy VmHWM is %d KiB (limit %d KiB)" % (mon.hwm_kib, limit)


def test_download_1gib_bounded_rss(start_proxy, origin):
    proxy = start_proxy(env=rss_env())
    n = GIB
    expected = pattern_sha256(n)
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with RssMonitor(proxy.pid) as mon, Conn(proxy.port, timeout=30) as c:
        c.send(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n")
        head = c.read_until(b"\r\n\r\n")
        r = parse_head(head)
        assert r.status == 200
        assert r.header("Content-Length") == str(n)
        got = len(c.buf)
        h.update(c.buf)
        c.buf.clear()
        deadline = time.monotonic() + 180
        while got < n:
            k = c.sock.recv_into(view)
            if k == 0:
                break
            h.update(view[:k])
            got += k
            assert time.monotonic() < deadline, "download too slow: %d bytes" % got
    assert got == n
    assert h.hexdigest() == expected
    assert_rss_bounded(mon)


def test_upload_1gib_bounded_rss(start_proxy, origin):
    proxy = start_proxy(env=rss_env())
    n = GIB
    expected = pattern_sha256(n)
    piece = 131042  # two pattern periods: pieces follow each other seamlessly
    block = bytes(next(pattern_pieces(piece, piece=piece)))
    assert piece % 65521 == 0
    with RssMonitor(proxy.pid) as mon, Conn(proxy.port, timeout=60) as c:
        c.send(b"POST " + origin.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n" % n)
        sent = 0
        deadline = time.monotonic() + 180
        while sent < n:
            k = min(piece, n - sent)
            c.send(block[:k] if k < piece else block)
            sent += k
            if sent % (64 * piece) == 0:
                assert time.monotonic() < deadline, "upload too slow: %d bytes" % sent
        r = read_response(c)
    assert r.status == 200
    doc = r.json()
    assert doc["body_length"] == n
    assert doc["body_sha256"] == expected
    assert_rss_bounded(mon)


def test_slow_reader_bounded_rss(start_proxy, origin):
    proxy = start_proxy(env=rss_env())
    """A client reading a 256 MiB response slowly: the proxy must apply
    back-pressure to the origin instead of buffering the response."""
    n = 256 * 1024 * 1024
    with RssMonitor(proxy.pid) as mon, Conn(proxy.port, timeout=30) as c:
        c.send(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_until(b"\r\n\r\n")
        assert parse_head(head).status == 200
        got = len(c.buf)
        first = bytes(c.buf)
        c.buf.clear()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            data = c.sock.recv(16384)
            assert data, "proxy closed the connection of a slow reader"
            if len(first) < 100000:
                first += data
            got += len(data)
            time.sleep(0.01)
        assert first[:100000] == pattern_bytes(100000)
        # Far less than the whole response was read.
        assert got < n // 4, got
    assert_rss_bounded(mon)
    # The proxy is still fine afterwards.
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/bytes/10").encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(c).body == pattern_bytes(10)


def test_500_concurrent_clients(start_proxy, fresh_origin):
    o = fresh_origin()
    p = start_proxy()
    nclients = 500
    barrier = threading.Barrier(nclients, timeout=60)
    results = [None] * nclients
    host = b"127.0.0.1:%d" % o.port

    def client(i):
        try:
            with Conn(p.port, timeout=60) as c:
                barrier.wait()
                if i % 2:
                    n = 1000 + i
                    c.send(b"GET " + o.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: " + host +
                           b"\r\nConnection: close\r\n\r\n")
                    r = read_response(c)
                    ok = r.status == 200 and r.body == pattern_bytes(n)
                else:
                    c.send(b"GET " + o.url("/echo?client=%d" % i).encode() + b" HTTP/1.1\r\nHost: " + host +
                           b"\r\nConnection: close\r\n\r\n")
                    r = read_response(c)
                    ok = r.status == 200 and r.json()["path"] == "/echo?client=%d" % i
                results[i] = "ok" if ok else "bad response %r" % (r,)
        except Exception as e:  # reported below
            results[i] = "error %r" % (e,)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1, 120 - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    bad = [(i, r) for i, r in enumerate(results) if r != "ok"]
    assert not bad, "%d of %d clients failed, e.g. %r" % (len(bad), nclients, bad[:5])
    assert elapsed < 120, elapsed


def test_many_keep_alive_requests(start_proxy, origin):
    """Sequential requests on a few keep-alive connections, interleaved."""
    p = start_proxy()
    host = b"127.0.0.1:%d" % origin.port
    conns = [Conn(p.port) for _ in range(10)]
    try:
        for round_ in range(30):
            for i, c in enumerate(conns):
                c.send(b"GET " + origin.url("/echo?r=%d&c=%d" % (round_, i)).encode() +
                       b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            for i, c in enumerate(conns):
                assert read_response(c).json()["path"] == "/echo?r=%d&c=%d" % (round_, i)
    finally:
        for c in conns:
            c.close()


def test_tunnel_back_pressure_bounded_rss(start_proxy, raw_origin):
    """A client pushing into a CONNECT tunnel whose origin reads slowly:
    the proxy must stop reading instead of buffering."""
    def slow_sink(srv, conn):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            if not conn.sock.recv(16384):
                return
            time.sleep(0.01)
        srv.add_request(b"done")
        while conn.sock.recv(1 << 20):
            pass

    srv = raw_origin(slow_sink)
    p = start_proxy(env=rss_env())
    block = b"t" * (1 << 20)
    with RssMonitor(p.pid) as mon, Conn(p.port, timeout=15) as c:
        a = b"127.0.0.1:%d" % srv.port
        c.send(b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        c.sock.setblocking(False)
        sent = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            try:
                sent += c.sock.send(block)
            except BlockingIOError:
                time.sleep(0.01)
        c.sock.setblocking(True)
        # The proxy held back: far less than 3.5 s of full speed got through.
        assert sent < 512 * 1024 * 1024, sent
    assert_rss_bounded(mon)
