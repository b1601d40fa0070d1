"""Requests the proxy must refuse, and failures it must report, each with its
exact status and a short anonymous text/plain error."""
import os
import select
import socket
import struct
import time

import pytest

from conftest import (Conn, assert_error_response, canned, close_after_request, cpu_seconds,
                      exchange, never_answer, open_fds, pattern_bytes, read_response,
                      wait_fds_at_most)

LIMITS = {"max_uri_bytes": 1024, "max_header_bytes": 4096, "max_headers": 20,
          "max_line_bytes": 2048}


@pytest.fixture(scope="module")
def limited_proxy(tmp_path_factory):
    """One proxy with small limits for the whole parametrized table."""
    from conftest import launch_proxy
    tmp = tmp_path_factory.mktemp("limited")
    p = launch_proxy(tmp, {"limits": LIMITS})
    yield p
    rc = p.stop()
    assert rc == 0, "exit status %r" % (rc,)
    assert p.sanitizer_report() is None, p.sanitizer_report()


def pad_fields(n, size):
    return b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * size) for i in range(n))


# {O} is the origin's host:port: a request the proxy wrongly forwards gets
# the origin's 200 instead of the expected error.
BAD_REQUESTS = [
    ("origin-form", b"GET / HTTP/1.1\r\nHost: {O}\r\n\r\n", 400),
    ("origin-form-path", b"GET /echo HTTP/1.1\r\nHost: {O}\r\n\r\n", 400),
    ("https-absolute", b"GET https://{O}/echo HTTP/1.1\r\nHost: {O}\r\n\r\n", 400),
    ("cl-and-te", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-and-cl", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("two-differing-cl", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nContent-Length: 5\r\n"
                         b"Content-Length: 6\r\n\r\nhello!", 400),
    ("cl-list", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    ("cl-negative", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nContent-Length: -5\r\n\r\n", 400),
    ("cl-plus", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nContent-Length: +5\r\n\r\nhello", 400),
    ("cl-overflow", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                    b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("te-gzip-last", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: gzip\r\n\r\nxx", 400),
    ("te-chunked-then-gzip", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                             b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-twice", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                         b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-two-fields", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-unknown", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                   b"Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501),
    ("obs-fold", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: 1\r\n continued\r\n\r\n", 400),
    ("obs-fold-tab", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400),
    ("space-before-colon", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A : 1\r\n\r\n", 400),
    ("space-before-colon-te", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                              b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("bare-cr-in-value", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: 1\rX-B: 2\r\n\r\n", 400),
    ("bare-lf-line-ends", b"GET http://{O}/echo HTTP/1.1\nHost: {O}\nX-A: 1\n\n", 400),
    ("bare-lf-one-field", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\nX-A: 1\r\n\r\n", 400),
    ("nul-in-value", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: a\x00b\r\n\r\n", 400),
    ("ctl-in-value", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: a\x01b\r\n\r\n", 400),
    ("del-in-value", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("nul-in-name", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-\x00A: 1\r\n\r\n", 400),
    ("empty-name", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n: 1\r\n\r\n", 400),
    ("no-colon", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-A 1\r\n\r\n", 400),
    ("bad-chunk-size", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-sign", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-overflow", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-no-crlf", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhelloXX0\r\n\r\n", 400),
    ("chunk-size-bare-lf", b"POST http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\nhello\r\n0\r\n\r\n", 400),
    ("two-hosts", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nHost: {O}\r\n\r\n", 400),
    ("two-hosts-differing", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nhost: other.example\r\n\r\n", 400),
    ("http2-version", b"GET http://{O}/echo HTTP/2.0\r\nHost: {O}\r\n\r\n", 505),
    ("http12-version", b"GET http://{O}/echo HTTP/1.2\r\nHost: {O}\r\n\r\n", 505),
    ("http09-style", b"GET http://{O}/echo\r\n\r\n", 400),
    ("lowercase-version", b"GET http://{O}/echo http/1.1\r\nHost: {O}\r\n\r\n", 400),
    ("trace", b"TRACE http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n\r\n", 405),
    ("space-in-target", b"GET http://{O}/a b HTTP/1.1\r\nHost: {O}\r\n\r\n", 400),
    ("uri-too-long", b"GET http://{O}/" + b"a" * 1100 + b" HTTP/1.1\r\nHost: {O}\r\n\r\n", 414),
    ("head-too-large", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n" + pad_fields(5, 1000) + b"\r\n", 431),
    ("too-many-fields", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n" + pad_fields(25, 3) + b"\r\n", 431),
    ("field-line-too-long", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\nX-Long: " + b"b" * 2100 +
                            b"\r\n\r\n", 431),
    ("head-never-ends-too-large", b"GET http://{O}/echo HTTP/1.1\r\nHost: {O}\r\n" + pad_fields(6, 1000), 431),
]


@pytest.mark.parametrize("data,status", [(d, s) for _, d, s in BAD_REQUESTS],
                         ids=[n for n, _, _ in BAD_REQUESTS])
def test_bad_request(limited_proxy, origin, data, status):
    data = data.replace(b"{O}", b"127.0.0.1:%d" % origin.port)
    with Conn(limited_proxy.port) as c:
        c.send(data)
        r = read_response(c)
        assert_error_response(r, status, conn=c)
    if status == 405:
        assert r.header("Allow") is not None


def test_https_absolute_form_mentions_connect(limited_proxy, origin):
    r = exchange(limited_proxy.port, b"GET https://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % origin.port)
    assert_error_response(r, 400)
    assert b"CONNECT" in r.body


def test_limits_exactly_at_bounds_are_accepted(limited_proxy, origin):
    a = b"127.0.0.1:%d" % origin.port
    # request-target of exactly max_uri_bytes
    prefix = b"http://" + a + b"/echo?"
    target = prefix + b"q" * (LIMITS["max_uri_bytes"] - len(prefix))
    r = exchange(limited_proxy.port, b"GET " + target + b" HTTP/1.1\r\nHost: " + a +
                 b"\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    # exactly max_headers fields
    fields = [b"Host: " + a, b"Connection: close"] + [b"X-F%d: v" % i for i in range(LIMITS["max_headers"] - 2)]
    r = exchange(limited_proxy.port, b"GET http://" + a + b"/echo HTTP/1.1\r\n" + b"\r\n".join(fields) + b"\r\n\r\n")
    assert r.status == 200
    assert len(r.json()["headers"]) == LIMITS["max_headers"]
    # a field line of exactly max_line_bytes (CRLF excluded)
    line = b"X-Long: "
    line += b"c" * (LIMITS["max_line_bytes"] - len(line))
    r = exchange(limited_proxy.port, b"GET http://" + a + b"/echo HTTP/1.1\r\nHost: " + a +
                 b"\r\n" + line + b"\r\nConnection: close\r\n\r\n")
    assert r.status == 200


def test_default_limits(proxy, origin):
    a = b"127.0.0.1:%d" % origin.port
    r = exchange(proxy.port, b"GET http://" + a + b"/" + b"u" * 8300 + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
    assert_error_response(r, 414)
    r = exchange(proxy.port, b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n" +
                 pad_fields(101, 1) + b"\r\n")
    assert_error_response(r, 431)
    r = exchange(proxy.port, b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n" +
                 pad_fields(1, 16400) + b"\r\n")
    assert_error_response(r, 431)
    r = exchange(proxy.port, b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n" +
                 pad_fields(5, 14000) + b"\r\n")
    assert_error_response(r, 431)


def test_bad_chunked_body_after_head_forwarded(start_proxy, raw_origin):
    """The head goes to the origin before the body turns out malformed: the
    client still gets a 400, and the origin connection is dropped."""
    seen = []

    def handler(srv, conn):
        head = conn.read_until(b"\r\n\r\n")
        srv.add_request(head)
        seen.append(conn)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"POST http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n")
        srv.wait_requests(1)
        c.send(b"1ffffffffffffffff\r\n")  # 17 hex digits
        r = read_response(c)
        assert_error_response(r, 400, conn=c)
    # The origin connection is closed as well (it holds half a body).
    conn = seen[0]
    deadline = time.monotonic() + 5
    while not conn.eof and time.monotonic() < deadline:
        conn.fill()
    assert conn.eof


# ------------------------------------------------------------------ origin failures


def test_502_connection_refused(proxy):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = exchange(proxy.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % port)
    assert_error_response(r, 502)


def test_502_malformed_response(start_proxy, raw_origin):
    srv = raw_origin(canned(b"this is not HTTP\r\n\r\n", close=True))
    p = start_proxy()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
    assert_error_response(r, 502)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
], ids=["two-lengths", "space-before-colon", "bad-status", "obs-fold", "te-and-cl", "cl-list", "nul",
        "bare-lf"])
def test_502_ambiguous_response(start_proxy, raw_origin, reply):
    srv = raw_origin(canned(reply, close=True))
    p = start_proxy()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
    assert_error_response(r, 502)


def test_502_origin_closes_before_response(start_proxy, raw_origin):
    srv = raw_origin(close_after_request)
    p = start_proxy()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
    assert_error_response(r, 502)
    srv.wait_requests(1)


def test_502_origin_closes_after_partial_head(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nContent-Le", close=True))
    p = start_proxy()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
    assert_error_response(r, 502)


def test_502_oversized_response_head(start_proxy, raw_origin):
    big = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(80)) + \
        b"Content-Length: 2\r\n\r\nok"
    srv = raw_origin(canned(big, close=True))
    p = start_proxy()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port)
    assert_error_response(r, 502)


def test_504_origin_silent(start_proxy, raw_origin):
    srv = raw_origin(never_answer)
    p = start_proxy({"timeouts": {"io": 1}})
    t0 = time.monotonic()
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % srv.port, timeout=15)
    elapsed = time.monotonic() - t0
    assert_error_response(r, 504)
    assert 0.8 <= elapsed < 5, elapsed


def test_504_slow_origin_endpoint(start_proxy, origin):
    p = start_proxy({"timeouts": {"io": 0.5}})
    r = exchange(p.port, b"GET http://127.0.0.1:%d/slow/4 HTTP/1.1\r\nHost: x\r\n\r\n" % origin.port,
                 timeout=15)
    assert_error_response(r, 504)


def test_504_connect_timeout(start_proxy):
    # A listener with backlog 0 that never accepts: once one connection
    # fills its queue, further SYNs go unanswered and connect() hangs.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.settimeout(0.5)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except (socket.timeout, OSError):
                break  # the queue is full: connects now hang
        else:
            pytest.skip("a backlog-0 listener kept accepting SYNs on this kernel")
        p = start_proxy({"timeouts": {"connect": 1}})
        t0 = time.monotonic()
        r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % port, timeout=15)
        elapsed = time.monotonic() - t0
        assert_error_response(r, 504)
        assert 0.8 <= elapsed < 5, elapsed
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_508_request_to_proxy_itself(proxy):
    r = exchange(proxy.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % proxy.port)
    assert_error_response(r, 508)


def test_508_connect_to_proxy_itself(proxy):
    r = exchange(proxy.port, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % proxy.port)
    assert_error_response(r, 508)


def test_508_second_listener(start_proxy):
    from conftest import free_port
    a, b = free_port(), free_port()
    p = start_proxy({"listen": [{"address": "127.0.0.1:%d" % a}, {"address": "127.0.0.1:%d" % b}]})
    r = exchange(p.port, b"GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: x\r\n\r\n" % b)
    assert_error_response(r, 508)
    r = exchange(b, b"GET http://localhost:%d/x HTTP/1.1\r\nHost: x\r\n\r\n" % a)
    assert_error_response(r, 508)


def test_408_head_timeout(start_proxy, origin):
    p = start_proxy({"timeouts": {"header": 1}})
    with Conn(p.port, timeout=15) as c:
        t0 = time.monotonic()
        c.send(b"GET http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\n" % origin.port)
        r = read_response(c)
        elapsed = time.monotonic() - t0
        assert_error_response(r, 408, conn=c)
    assert 0.8 <= elapsed < 5, elapsed


def test_408_head_trickled_slowly(start_proxy, origin):
    """The deadline covers the whole head, not the gap between bytes."""
    p = start_proxy({"timeouts": {"header": 1}})
    head = b"GET http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaa\r\n\r\n" % origin.port
    with Conn(p.port, timeout=15) as c:
        t0 = time.monotonic()
        for b in head[:-2]:
            # Stop as soon as the proxy answers: bytes sent after it closes
            # could make it reset the connection before the answer is read.
            if select.select([c.sock], [], [], 0.05)[0] or time.monotonic() - t0 > 4:
                break
            c.send(bytes([b]))
        r = read_response(c)
        assert_error_response(r, 408)
    assert time.monotonic() - t0 < 6


def test_403_connect_port_not_allowed(start_proxy, raw_origin):
    from conftest import echo_stream
    srv = raw_origin(echo_stream)
    p = start_proxy({"connect_ports": [443, "8000-8001"]})
    r = exchange(p.port, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (srv.port, srv.port))
    assert_error_response(r, 403)
    assert srv.conns == []


def test_405_trace_default_limits(proxy, origin):
    r = exchange(proxy.port, b"TRACE http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n"
                 % origin.port)
    assert_error_response(r, 405)


def test_503_max_connections(start_proxy, origin):
    p = start_proxy({"limits": {"max_connections": 2}})
    req = b"GET http://127.0.0.1:%d/bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n" % origin.port

    def open_ok():
        # The readiness probe's connection may not be released yet: retry.
        deadline = time.monotonic() + 5
        while True:
            c = Conn(p.port)
            c.send(req)
            r = read_response(c)
            if r.status == 200:
                return c
            c.close()
            assert r.status == 503 and time.monotonic() < deadline, r
            time.sleep(0.05)

    c1 = open_ok()
    c2 = open_ok()
    try:
        with Conn(p.port) as c3:
            # Nothing is sent: the refusal comes unasked, and bytes sent to a
            # socket the proxy already closed could reset the connection.
            r = read_response(c3)
            assert_error_response(r, 503, conn=c3)
    finally:
        c1.close()
    # A slot frees up once a client leaves.
    c4 = open_ok()
    c4.close()
    c2.close()


# ------------------------------------------------------------------ DNS


def _resolver_answers_quickly():
    """Does the first nameserver of /etc/resolv.conf answer a query for a
    .invalid name within 2 s? (Decides whether the DNS test can run.)"""
    try:
        ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")]
    except OSError:
        return False, "no /etc/resolv.conf"
    if not ns:
        return False, "no nameserver in /etc/resolv.conf"
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in b"anonproxy-test.invalid".split(b"."):
        q += bytes([len(label)]) + label
    q += b"\0" + struct.pack(">HH", 1, 1)
    fam = socket.AF_INET6 if ":" in ns[0] else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        try:
            s.sendto(q, (ns[0], 53))
            s.recvfrom(512)
            return True, ""
        except OSError as e:
            return False, "nameserver %s did not answer within 2s (%s)" % (ns[0], e)


def test_502_dns_failure_system_resolver(start_proxy):
    ok, why = _resolver_answers_quickly()
    if not ok:
        pytest.skip("DNS failure test needs a resolver that answers quickly: " + why)
    p = start_proxy({"timeouts": {"connect": 3}})
    name = b"no-such-host-%s.invalid" % os.urandom(4).hex().encode()
    r = exchange(p.port, b"GET http://" + name + b"/ HTTP/1.1\r\nHost: " + name + b"\r\n\r\n", timeout=15)
    assert_error_response(r, 502)


def test_502_dns_nxdomain(start_proxy, fake_dns, tmp_path):
    dns = fake_dns()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    p = start_proxy({"timeouts": {"connect": 5},
                     "dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"), "hosts": str(hosts)}})
    t0 = time.monotonic()
    r = exchange(p.port, b"GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n", timeout=15)
    assert_error_response(r, 502)
    assert time.monotonic() - t0 < 4
    assert dns.queries >= 1


def test_504_dns_silent(start_proxy, fake_dns, tmp_path):
    dns = fake_dns(silent=True)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    p = start_proxy({"timeouts": {"connect": 1},
                     "dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"), "hosts": str(hosts)}})
    t0 = time.monotonic()
    r = exchange(p.port, b"GET http://silent.invalid/ HTTP/1.1\r\nHost: silent.invalid\r\n\r\n", timeout=15)
    elapsed = time.monotonic() - t0
    # timeouts.connect covers the name lookup too.
    assert_error_response(r, 504)
    assert 0.8 <= elapsed < 5, elapsed


def test_hosts_file_names(start_proxy, fake_dns, origin, tmp_path):
    dns = fake_dns()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 origin.test Other.Test\n")
    p = start_proxy({"dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"), "hosts": str(hosts)}})
    r = exchange(p.port, b"GET http://origin.test:%d/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 % origin.port)
    assert r.status == 200
    assert ["Host", "origin.test:%d" % origin.port] in r.json()["headers"]
    r = exchange(p.port, b"GET http://other.test:%d/echo HTTP/1.1\r\nConnection: close\r\n\r\n" % origin.port)
    assert r.status == 200
    assert r.json()["headers"][0] == ["Host", "other.test:%d" % origin.port]
    assert dns.queries == 0


def test_bad_chunked_body_after_response_started_closes(start_proxy, raw_origin):
    """Once part of the response went to the client, a malformed request body
    can only end the connection: no 400 after a 200 head."""
    def handler(srv, conn):
        head = conn.read_until(b"\r\n\r\n")
        srv.add_request(head)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"r" * 10)
        while conn.fill():
            pass

    srv = raw_origin(handler)
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port, timeout=15) as c:
        c.send(b"POST http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n")
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert c.read_exact(10) == b"r" * 10
        c.send(b"zz\r\n")
        rest = c.read_to_eof()
        assert b"HTTP/1.1 400" not in rest
        assert len(rest) < 90, "the cut body cannot be complete"


def test_lingering_after_an_error_is_idle_and_ends(proxy):
    """After an error response the proxy keeps reading (and discarding) for a
    while so that closing does not reset the client. A client that keeps its
    side open must not make the worker spin (a bug once re-armed the write
    event on every loop), and the socket is released when lingering ends."""
    fds_before = open_fds(proxy.pid)
    with Conn(proxy.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_error_response(read_response(c), 400, conn=c)
        before = cpu_seconds(proxy.pid)
        time.sleep(1.0)
        spent = cpu_seconds(proxy.pid) - before
        assert spent < 0.3, "the proxy used %.2f s of CPU while lingering" % spent
        # Lingering lasts about 2 s; then the proxy lets the socket go.
        wait_fds_at_most(proxy.pid, fds_before, 6, "the lingering socket to be released")


@pytest.mark.parametrize("method", ["GET", "CONNECT"])
def test_block_route_never_reaches_the_origin(start_proxy, raw_origin, method):
    """A blocked request is answered 403 and goes nowhere: once the proxy
    went on to connect (and send the request) after answering."""
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy({"routes": [{"match": "127.0.0.1/32", "action": "block"}]})
    a = b"127.0.0.1:%d" % srv.port
    target = b"http://" + a + b"/" if method == "GET" else a
    with Conn(p.port) as c:
        c.send(method.encode() + b" " + target + b" HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert_error_response(r, 403, conn=c)
        assert b"blocked" in r.body
    time.sleep(0.5)
    assert srv.conns == [], "the origin got a connection for a blocked request"


def test_error_for_a_pipelined_request_after_a_response(limited_proxy, origin):
    """A request that follows a completed response gets its own error (here
    431): it once inherited the previous response's "already answered"
    state, and the connection was cut without an answer."""
    first = b"GET " + origin.url("/bytes/10").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET " + origin.url("/bytes/20").encode() + b" HTTP/1.1\r\nX-Big: " + b"a" * 6000
    with Conn(limited_proxy.port) as c:
        c.send(first + second)
        r = read_response(c)
        assert r.status == 200 and r.body == pattern_bytes(10), r
        assert_error_response(read_response(c), 431, conn=c)
