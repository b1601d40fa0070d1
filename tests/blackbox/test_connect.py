"""CONNECT tunnels: TLS inside, byte-exact relay both ways, half-close,
idle timeout, port policy."""
import hashlib
import os
import socket
import threading
import time

import pytest

from conftest import (Conn, assert_error_response, curl, drain_then_report, echo_stream, exchange,
                      open_fds, pattern_sha256, read_response, wait_fds_at_most)

ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def open_tunnel(proxy_port, target_port, host=b"127.0.0.1", timeout=15):
    c = Conn(proxy_port, timeout=timeout)
    auth = host + b":%d" % target_port
    c.send(b"CONNECT " + auth + b" HTTP/1.1\r\nHost: " + auth + b"\r\n\r\n")
    head = c.read_until(b"\r\n\r\n")
    assert head == ESTABLISHED, head
    return c


def test_curl_https_through_tunnel(proxy, tls_origin):
    n = 3 * 1024 * 1024 + 1
    r = curl("-x", proxy.url, "--cacert", tls_origin.cert, "-o", "-",
             "-w", "\n%{http_code} %{http_connect}",
             "https://localhost:%d/%d" % (tls_origin.port, n), timeout=60)
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail == b"200 200", tail  # 200 from the origin, 200 from CONNECT
    assert hashlib.sha256(body).hexdigest() == pattern_sha256(n)


def test_curl_https_through_tunnel_ip_literal(proxy, tls_origin):
    r = curl("-x", proxy.url, "--cacert", tls_origin.cert, "-o", "-",
             "-w", "\n%{http_code} %{http_connect}",
             "https://127.0.0.1:%d/1000" % tls_origin.port, timeout=60)
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail == b"200 200"
    assert len(body) == 1000


def test_tunnel_is_byte_exact_both_ways(start_proxy, raw_origin):
    srv = raw_origin(echo_stream)
    p = start_proxy()
    payload = os.urandom(8 * 1024 * 1024) + bytes(range(256)) + b"\r\n\r\n\x00"
    with open_tunnel(p.port, srv.port) as c:
        got = bytearray()
        err = []

        def reader():
            try:
                while len(got) < len(payload):
                    data = c.sock.recv(1 << 20)
                    if not data:
                        break
                    got.extend(data)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=reader)
        t.start()
        view = memoryview(payload)
        for i in range(0, len(payload), 100000):
            c.send(view[i:i + 100000])
        t.join(60)
        assert not t.is_alive()
        assert not err
        assert len(got) == len(payload)
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_tunnel_half_close(start_proxy, raw_origin):
    """The client's FIN reaches the origin after all its bytes, and the
    origin's reply, sent after that, still reaches the client."""
    srv = raw_origin(drain_then_report)
    p = start_proxy()
    data = os.urandom(3 * 1024 * 1024 + 7)
    with open_tunnel(p.port, srv.port) as c:
        c.send(data)
        c.shutdown_write()
        reply = c.read_to_eof()
    assert reply == b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())


def test_tunnel_origin_half_close(start_proxy, raw_origin):
    """The origin closes its side first; the client can still send."""
    def handler(srv, conn):
        conn.sock.sendall(b"hello from origin")
        conn.sock.shutdown(socket.SHUT_WR)
        n = 0
        while True:
            d = conn.sock.recv(65536)
            if not d:
                break
            n += len(d)
        srv.add_request(b"%d" % n)

    srv = raw_origin(handler)
    p = start_proxy()
    with open_tunnel(p.port, srv.port) as c:
        assert c.read_until(b"origin") == b"hello from origin"
        assert c.at_eof(timeout=5)
        c.send(b"z" * 100000)
        c.shutdown_write()
        assert srv.wait_requests(1)[0] == b"100000"


def test_early_data_after_connect_head(start_proxy, raw_origin):
    """Bytes sent right behind the CONNECT head (before the 200) are relayed."""
    srv = raw_origin(echo_stream)
    p = start_proxy()
    with Conn(p.port, timeout=15) as c:
        a = b"127.0.0.1:%d" % srv.port
        c.send(b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\nearly bytes")
        assert c.read_until(b"\r\n\r\n") == ESTABLISHED
        assert c.read_exact(11) == b"early bytes"


def test_tunnel_idle_timeout(start_proxy, raw_origin):
    srv = raw_origin(echo_stream)
    p = start_proxy({"timeouts": {"tunnel_idle": 1}})
    with open_tunnel(p.port, srv.port) as c:
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
        t0 = time.monotonic()
        assert c.at_eof(timeout=10), "idle tunnel not closed"
        elapsed = time.monotonic() - t0
    assert 0.8 <= elapsed < 5, elapsed


def test_tunnel_one_way_traffic_is_not_idle(start_proxy, raw_origin):
    """A long one-way transfer keeps the tunnel alive although the other
    direction stays silent longer than tunnel_idle."""
    def handler(srv, conn):
        for _ in range(25):
            conn.sock.sendall(b"x" * 1000)
            time.sleep(0.1)
        conn.sock.shutdown(socket.SHUT_WR)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy({"timeouts": {"tunnel_idle": 1}})
    with open_tunnel(p.port, srv.port) as c:
        data = c.read_to_eof()
    assert len(data) == 25000


def test_tunnel_with_neither_peer_reading_times_out(start_proxy, raw_origin):
    """Both peers send and neither reads: the proxy pauses both directions
    (back-pressure), so nothing is read for a read timeout to notice. The
    tunnel still ends after tunnel_idle without progress."""
    stop = threading.Event()

    def flood(srv, conn):
        conn.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn.sock.send(b"o" * 65536)
            except socket.timeout:
                continue
            except OSError:
                return

    srv = raw_origin(flood)
    p = start_proxy({"timeouts": {"tunnel_idle": 1}, "limits": {"buffer_bytes": 65536}})
    fds = open_fds(p.pid)
    try:
        with open_tunnel(p.port, srv.port) as c:
            c.sock.settimeout(0.2)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # fill every buffer towards the origin
                try:
                    c.sock.send(b"c" * 65536)
                except socket.timeout:
                    pass
                except OSError:
                    break
            # The proxy lets go of both connections within a few seconds.
            wait_fds_at_most(p.pid, fds, 8, "the stuck tunnel to be closed")
    finally:
        stop.set()


def test_connect_ports_allows_listed(start_proxy, raw_origin):
    srv = raw_origin(echo_stream)
    p = start_proxy({"connect_ports": [1, "%d-%d" % (srv.port, srv.port)]})
    with open_tunnel(p.port, srv.port) as c:
        c.send(b"abc")
        assert c.read_exact(3) == b"abc"
    p2 = start_proxy({"connect_ports": [srv.port]})
    with open_tunnel(p2.port, srv.port) as c:
        c.send(b"def")
        assert c.read_exact(3) == b"def"


@pytest.mark.parametrize("ports", [[443], ["1-1000"], []], ids=["443", "range", "empty"])
def test_connect_ports_refuses_others(start_proxy, raw_origin, ports):
    srv = raw_origin(echo_stream)
    p = start_proxy({"connect_ports": ports})
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert_error_response(r, 403, conn=c)
    assert srv.conns == []


@pytest.mark.parametrize("target", [b"127.0.0.1", b"/path", b"http://127.0.0.1:443/", b"127.0.0.1:0",
                                    b"127.0.0.1:99999", b"[::1:443"])
def test_connect_bad_target(proxy, target):
    r = exchange(proxy.port, b"CONNECT " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_error_response(r, 400)


def test_connect_with_body_refused(proxy, raw_origin):
    srv = raw_origin(echo_stream)
    a = b"127.0.0.1:%d" % srv.port
    r = exchange(proxy.port, b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\nContent-Length: 3\r\n\r\nabc")
    assert_error_response(r, 400)


def test_connect_refused_origin(proxy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = exchange(proxy.port, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)
    assert_error_response(r, 502)


def test_connect_http10(start_proxy, raw_origin):
    srv = raw_origin(echo_stream)
    p = start_proxy()
    with Conn(p.port, timeout=15) as c:
        a = b"127.0.0.1:%d" % srv.port
        c.send(b"CONNECT " + a + b" HTTP/1.0\r\n\r\n")
        head = c.read_until(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"200", head
        c.send(b"xyz")
        assert c.read_exact(3) == b"xyz"


def test_many_tunnels_in_parallel(start_proxy, raw_origin):
    srv = raw_origin(echo_stream, backlog=256)
    p = start_proxy()
    tunnels = [open_tunnel(p.port, srv.port) for _ in range(50)]
    try:
        msgs = [os.urandom(5000) for _ in tunnels]
        for c, m in zip(tunnels, msgs):
            c.send(m)
        for c, m in zip(tunnels, msgs):
            assert c.read_exact(len(m)) == m
    finally:
        for c in tunnels:
            c.close()
