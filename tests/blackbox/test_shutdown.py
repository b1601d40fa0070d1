"""Graceful shutdown on SIGTERM/SIGINT: stop accepting, finish exchanges in
flight within timeouts.shutdown, exit 0."""
import signal
import socket
import time

import pytest

from conftest import (SWEEP, Conn, check_slow_readers, port_accepts, read_response, slow_readers,
                      wait_cpu_quiet, wait_until)

ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def slow_reply_handler(delay, body=b"finished after the signal\n"):
    def handler(srv, conn):
        req = conn.read_until(b"\r\n\r\n")
        srv.add_request(req)
        time.sleep(delay)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        while conn.fill():
            pass
    return handler


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_completes(start_proxy, raw_origin, sig):
    srv = raw_origin(slow_reply_handler(1.5))
    p = start_proxy({"timeouts": {"shutdown": 10}})
    with Conn(p.port, timeout=20) as c:
        c.send(b"GET http://127.0.0.1:%d/slow HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        srv.wait_requests(1)
        t0 = time.monotonic()
        p.signal(sig)
        # New connections are refused while the exchange finishes.
        wait_until(lambda: not port_accepts(p.port, timeout=0.5), 5, what="listener to close")
        assert p.alive(), "proxy exited with an exchange in flight"
        r = read_response(c)
        assert r.status == 200
        assert r.body == b"finished after the signal\n"
        assert r.header("Connection") == "close", "a draining proxy must announce the close"
        assert c.at_eof()
    rc = p.wait(10)
    assert rc == 0, rc
    assert time.monotonic() - t0 < 10


def test_in_flight_response_body_completes(start_proxy, origin):
    p = start_proxy({"timeouts": {"shutdown": 10}})
    with Conn(p.port, timeout=20) as c:
        c.send(b"GET http://127.0.0.1:%d/slow/1.5?head=1 HTTP/1.1\r\nHost: x\r\n\r\n" % origin.port)
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        p.signal(signal.SIGTERM)
        wait_until(lambda: not port_accepts(p.port, timeout=0.5), 5, what="listener to close")
        assert c.read_exact(len(b"slept 1.5\n")) == b"slept 1.5\n"
        assert c.at_eof()
    assert p.wait(10) == 0


def test_idle_connections_closed_and_exit_prompt(start_proxy, origin):
    p = start_proxy({"timeouts": {"shutdown": 10}})
    host = b"127.0.0.1:%d" % origin.port
    idle = []
    for _ in range(5):
        c = Conn(p.port, timeout=10)
        c.send(b"GET http://" + host + b"/bytes/3 HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert read_response(c).status == 200  # now idle, kept alive
        idle.append(c)
    never_spoke = Conn(p.port, timeout=10)
    try:
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait(8)
        assert rc == 0, rc
        assert time.monotonic() - t0 < 5, "idle connections held up the shutdown"
        for c in idle + [never_spoke]:
            assert c.at_eof(timeout=2)
    finally:
        for c in idle + [never_spoke]:
            c.close()


def test_deadline_cuts_tunnel(start_proxy, raw_origin):
    from conftest import echo_stream
    srv = raw_origin(echo_stream)
    p = start_proxy({"timeouts": {"shutdown": 1}})
    with Conn(p.port, timeout=20) as c:
        a = b"127.0.0.1:%d" % srv.port
        c.send(b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        assert c.read_until(b"\r\n\r\n") == ESTABLISHED
        c.send(b"before")
        assert c.read_exact(6) == b"before"
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        # Still relaying during the grace period.
        c.send(b"during")
        assert c.read_exact(6) == b"during"
        assert c.at_eof(timeout=10), "tunnel not closed by the shutdown deadline"
        rc = p.wait(10)
        elapsed = time.monotonic() - t0
    assert rc == 0, rc
    assert 0.8 <= elapsed < 5, elapsed


def test_deadline_cuts_slow_exchange(start_proxy, raw_origin):
    srv = raw_origin(slow_reply_handler(8))
    p = start_proxy({"timeouts": {"shutdown": 1}})
    with Conn(p.port, timeout=20) as c:
        c.send(b"GET http://127.0.0.1:%d/slow HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
        srv.wait_requests(1)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait(10)
        elapsed = time.monotonic() - t0
        assert rc == 0, rc
        assert 0.8 <= elapsed < 5, elapsed
        try:
            data = c.read_to_eof()
        except OSError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200"), data


def test_refuses_after_sigterm_even_with_tunnel_open(start_proxy, raw_origin):
    from conftest import echo_stream
    srv = raw_origin(echo_stream)
    p = start_proxy({"timeouts": {"shutdown": 2}})
    with Conn(p.port, timeout=20) as c:
        a = b"127.0.0.1:%d" % srv.port
        c.send(b"CONNECT " + a + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        assert c.read_until(b"\r\n\r\n") == ESTABLISHED
        p.signal(signal.SIGTERM)
        wait_until(lambda: not port_accepts(p.port, timeout=0.5), 5, what="listener to close")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", p.port), timeout=2).close()
        assert p.wait(10) == 0


def test_responses_still_being_delivered_complete_after_sigterm(start_proxy, origin):
    """A response the proxy has fully read from the origin but not yet
    fully written to a slow client is still in flight: SIGTERM must not cut
    it (the grace period is long enough here)."""
    p = start_proxy({"timeouts": {"shutdown": 20}})
    conns = slow_readers(p.port, origin, SWEEP)
    wait_cpu_quiet(p.pid)  # the proxy has filled every buffer it can
    p.signal(signal.SIGTERM)
    short = check_slow_readers(conns, SWEEP)
    assert p.wait(20) == 0
    assert not short, "responses cut short by the shutdown: %s" % short
