"""Forwarding of plain http:// requests: request rewriting, header
faithfulness, hop-by-hop fields, keep-alive, pipelining, interim responses."""
import base64
import hashlib
import json
import os
import re
import time

import pytest

from conftest import (SWEEP, Conn, canned, check_slow_readers, curl, exchange, get, pattern_bytes,
                      read_final, read_response, slow_readers)

OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def origin_sees(start_proxy, raw_origin, request, reply=OK2, overrides=None):
    """Sends `request` (bytes, with {A} standing for the raw origin's
    host:port) through a proxy; returns (what the origin received, response)."""
    srv = raw_origin(canned(reply))
    p = start_proxy(overrides)
    data = request.replace(b"{A}", b"127.0.0.1:%d" % srv.port)
    resp = exchange(p.port, data)
    reqs = srv.wait_requests(1)
    return reqs[0], resp, srv


# ------------------------------------------------------------------ basics


def test_get(proxy, origin):
    r = get(proxy.port, origin.url("/bytes/1000"))
    assert r.status == 200
    assert r.body == pattern_bytes(1000)
    assert r.header("Content-Length") == "1000"


def test_get_with_curl(proxy, origin):
    r = curl("-x", proxy.url, origin.url("/bytes/300000"), "-o", "-",
             "-w", "\n%{http_code} %{size_download}")
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail == b"200 300000"
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(pattern_bytes(300000)).hexdigest()


def test_echo_request_line_and_path(proxy, origin):
    r = get(proxy.port, origin.url("/echo?a=1&b=%20x"))
    doc = r.json()
    assert doc["method"] == "GET"
    assert doc["path"] == "/echo?a=1&b=%20x"
    assert doc["request_line"] == "GET /echo?a=1&b=%20x HTTP/1.1"


def test_head_has_no_body(proxy, origin):
    with Conn(proxy.port) as c:
        url = origin.url("/bytes/5000").encode()
        host = url.split(b"/")[2]
        c.send(b"HEAD " + url + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
               b"GET " + origin.url("/bytes/10").encode() + b" HTTP/1.1\r\nHost: " + host +
               b"\r\nConnection: close\r\n\r\n")
        r1 = read_response(c, method="HEAD")
        assert r1.status == 200
        assert r1.header("Content-Length") == "5000"
        r2 = read_response(c)
        assert r2.status == 200, "bytes after a HEAD response: %r" % (r2.head[:60],)
        assert r2.body == pattern_bytes(10)


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses_keep_connection_usable(proxy, origin, code):
    host = b"127.0.0.1:%d" % origin.port
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/status/%d" % code).encode() + b" HTTP/1.1\r\nHost: " + host +
               b"\r\n\r\n")
        r1 = read_response(c)
        assert r1.status == code
        assert r1.body == b""
        if code == 304:
            assert r1.header("ETag") == '"v1"'
        c.send(b"GET " + origin.url("/bytes/7").encode() + b" HTTP/1.1\r\nHost: " + host +
               b"\r\nConnection: close\r\n\r\n")
        r2 = read_response(c)
        assert r2.status == 200
        assert r2.body == pattern_bytes(7)


def test_other_status_passed_through(proxy, origin):
    r = get(proxy.port, origin.url("/status/404"))
    assert r.status == 404
    assert r.body == b"status 404\n"


def test_path_empty_and_query_only(start_proxy, raw_origin):
    srv = raw_origin(canned(OK2))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    exchange(p.port, b"GET http://" + a + b" HTTP/1.1\r\nHost: " + a + b"\r\nConnection: close\r\n\r\n")
    exchange(p.port, b"GET http://" + a + b"?x=1 HTTP/1.1\r\nHost: " + a + b"\r\nConnection: close\r\n\r\n")
    reqs = srv.wait_requests(2)
    assert reqs[0].startswith(b"GET / HTTP/1.1\r\n")
    assert reqs[1].startswith(b"GET /?x=1 HTTP/1.1\r\n")


def test_options_with_empty_path_is_asterisk(start_proxy, raw_origin):
    """RFC 9112 3.2.4: OPTIONS for a URI with no path and no query is about
    the server itself, "*" in origin-form; a path or a query keep theirs."""
    srv = raw_origin(canned(OK2))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    for target in (b"", b"?x=1", b"/"):
        exchange(p.port, b"OPTIONS http://" + a + target + b" HTTP/1.1\r\nHost: " + a
                 + b"\r\nConnection: close\r\n\r\n")
    reqs = srv.wait_requests(3)
    assert reqs[0].startswith(b"OPTIONS * HTTP/1.1\r\nHost: " + a + b"\r\n")
    assert reqs[1].startswith(b"OPTIONS /?x=1 HTTP/1.1\r\n")
    assert reqs[2].startswith(b"OPTIONS / HTTP/1.1\r\n")


def test_options_with_empty_path_through_an_http_exit(start_proxy, raw_origin):
    """Toward an HTTP proxy exit the target stays in absolute-form with its
    empty path: the exit, the last proxy on the chain, writes the "*"."""
    exit_ = raw_origin(canned(OK2))
    p = start_proxy({"upstreams": [{"url": "http://127.0.0.1:%d" % exit_.port}]})
    exchange(p.port, b"OPTIONS http://127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
             b"Connection: close\r\n\r\n")
    reqs = [r for r in exit_.wait_requests(1) if r.startswith(b"OPTIONS")]
    assert reqs and reqs[0].startswith(b"OPTIONS http://127.0.0.1:9 HTTP/1.1\r\n"), exit_.requests


# ------------------------------------------------------------------ byte faithfulness


def test_request_head_bytes_and_hop_by_hop(start_proxy, raw_origin):
    sent = (b"GET http://{A}/some/path?q=1&r=%7E HTTP/1.1\r\n"
            b"Host: {A}\r\n"
            b"X-MiXeD-CaSe:   value  with   spaces\r\n"
            b"user-agent: test/1.0\r\n"
            b"Accept: */*\r\n"
            b"X-Dup: 1\r\n"
            b"Connection: keep-alive, X-Secret\r\n"
            b"X-Secret: s3cret\r\n"
            b"Keep-Alive: timeout=5\r\n"
            b"Proxy-Connection: keep-alive\r\n"
            b"TE: trailers\r\n"
            b"Trailer: X-T\r\n"
            b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
            b"Upgrade: h2c\r\n"
            b"X-Dup: 2\r\n"
            b"X-Empty:\r\n"
            b"X-Utf8: caf\xc3\xa9\r\n"
            b"X-Last: z\r\n"
            b"\r\n")
    got, resp, srv = origin_sees(start_proxy, raw_origin, sent)
    a = b"127.0.0.1:%d" % srv.port
    expected = (b"GET /some/path?q=1&r=%7E HTTP/1.1\r\n"
                b"Host: " + a + b"\r\n"
                b"X-MiXeD-CaSe:   value  with   spaces\r\n"
                b"user-agent: test/1.0\r\n"
                b"Accept: */*\r\n"
                b"X-Dup: 1\r\n"
                b"Connection: keep-alive\r\n"
                b"X-Dup: 2\r\n"
                b"X-Empty:\r\n"
                b"X-Utf8: caf\xc3\xa9\r\n"
                b"X-Last: z\r\n"
                b"\r\n")
    assert got == expected
    assert resp.status == 200 and resp.body == b"ok"


def test_connection_with_only_nominated_tokens_is_dropped(start_proxy, raw_origin):
    got, _, srv = origin_sees(start_proxy, raw_origin,
                              b"GET http://{A}/ HTTP/1.1\r\nHost: {A}\r\nConnection: X-Secret\r\n"
                              b"X-Secret: 1\r\nX-Keep: 2\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET / HTTP/1.1\r\nHost: " + a + b"\r\nX-Keep: 2\r\n\r\n"


def test_connection_close_token_kept(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://{A}/ HTTP/1.1\r\nHost: {A}\r\n"
                                 b"Connection: X-A, close, X-B\r\nX-A: 1\r\nX-B: 2\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET / HTTP/1.1\r\nHost: " + a + b"\r\nConnection: close\r\n\r\n"
    assert resp.header("Connection") == "close"


@pytest.mark.parametrize("conn_value", [b"Connection", b"Proxy-Connection",
                                        b"Connection, Proxy-Connection, keep-alive",
                                        b"close, Connection"])
def test_connection_naming_itself(start_proxy, raw_origin, conn_value):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://{A}/ HTTP/1.1\r\nHost: {A}\r\nConnection: " +
                                 conn_value + b"\r\nProxy-Connection: keep-alive\r\nX-A: 1\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    kept = [t for t in (b"keep-alive", b"close") if t in conn_value.split(b", ")]
    conn_line = b"Connection: " + b", ".join(kept) + b"\r\n" if kept else b""
    assert got == b"GET / HTTP/1.1\r\nHost: " + a + b"\r\n" + conn_line + b"X-A: 1\r\n\r\n"
    assert resp.status == 200


def test_framing_fields_cannot_be_nominated(start_proxy, raw_origin):
    got, resp, srv = origin_sees(
        start_proxy, raw_origin,
        b"POST http://{A}/ HTTP/1.1\r\nHost: {A}\r\nConnection: Content-Length, Host, X-A\r\n"
        b"Content-Length: 5\r\nX-A: 1\r\n\r\nhello")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"POST / HTTP/1.1\r\nHost: " + a + b"\r\nContent-Length: 5\r\n\r\nhello"
    assert resp.status == 200


def test_host_replaced_in_place(start_proxy, raw_origin):
    got, _, srv = origin_sees(start_proxy, raw_origin,
                              b"GET http://{A}/x HTTP/1.1\r\nX-First: 1\r\nHost: evil.example\r\n"
                              b"X-Second: 2\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET /x HTTP/1.1\r\nX-First: 1\r\nHost: " + a + b"\r\nX-Second: 2\r\n\r\n"


def test_host_added_first_when_missing(start_proxy, raw_origin):
    got, _, srv = origin_sees(start_proxy, raw_origin,
                              b"GET http://{A}/x HTTP/1.1\r\nX-First: 1\r\nX-Second: 2\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET /x HTTP/1.1\r\nHost: " + a + b"\r\nX-First: 1\r\nX-Second: 2\r\n\r\n"


def test_http10_request_line_version_kept(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://{A}/v HTTP/1.0\r\nHost: {A}\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET /v HTTP/1.0\r\nHost: " + a + b"\r\n\r\n"
    assert resp.status == 200 and resp.body == b"ok"


def test_response_head_bytes_and_hop_by_hop(start_proxy, raw_origin):
    reply = (b"HTTP/1.1 200 Fine Thanks\r\n"
             b"Content-Length: 2\r\n"
             b"x-lower: a\r\n"
             b"Connection: X-Hop\r\n"
             b"X-Hop: secret\r\n"
             b"Keep-Alive: timeout=5\r\n"
             b"Proxy-Authenticate: Basic\r\n"
             b"Proxy-Connection: keep-alive\r\n"
             b"Trailer: X-T\r\n"
             b"Upgrade: foo\r\n"
             b"Set-Cookie: a=1\r\n"
             b"Set-Cookie: b=2\r\n"
             b"\r\nok")
    srv = raw_origin(canned(reply))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port, record=True) as c:
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert bytes(c.received) == (b"HTTP/1.1 200 Fine Thanks\r\n"
                                     b"Content-Length: 2\r\n"
                                     b"x-lower: a\r\n"
                                     b"Set-Cookie: a=1\r\n"
                                     b"Set-Cookie: b=2\r\n"
                                     b"\r\nok")
        assert r.status == 200


def test_close_added_for_http11_client_when_closing(start_proxy, raw_origin):
    srv = raw_origin(canned(OK2))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port, record=True) as c:
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\nConnection: close\r\n\r\n")
        read_response(c)
        assert c.at_eof()
        assert bytes(c.received) == (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                     b"Connection: close\r\n\r\nok")


def test_close_delimited_response_to_http11_client(proxy, origin):
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/close/100000").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(c)
        assert r.status == 200
        assert r.header("Connection") == "close"
        assert r.body == pattern_bytes(100000)
        assert c.at_eof()


# ------------------------------------------------------------------ chunked responses


def test_chunked_response_rechunked_for_http11(proxy, origin):
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/chunked/200000?ext=1&trailer=1").encode() +
               b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = read_response(c)
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.header("Content-Length") is None
    assert r.body == pattern_bytes(200000)
    assert len(r.size_lines) > 2
    for line in r.size_lines:
        assert re.fullmatch(rb"[0-9a-fA-F]+\r\n", line), "chunk extension passed on: %r" % line
    assert r.trailers == b"", "trailer passed on"
    assert r.header("Trailer") is None


def test_chunked_extensions_and_trailers_dropped_exact(start_proxy, raw_origin):
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5;name=value\r\nhello\r\n6 ; a=\"b;c\"\r\n world\r\n0;last\r\nX-Trailer: t\r\n\r\n")
    srv = raw_origin(canned(reply))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
    assert r.body == b"hello world"
    for line in r.size_lines:
        assert re.fullmatch(rb"[0-9a-fA-F]+\r\n", line), "chunk extension passed on: %r" % line
    assert r.trailers == b""
    assert r.raw_body.endswith(b"0\r\n\r\n")


def test_chunked_response_decoded_for_http10(proxy, origin):
    with Conn(proxy.port, record=True) as c:
        c.send(b"GET " + origin.url("/chunked/150000?ext=1&trailer=1").encode() +
               b" HTTP/1.0\r\nHost: x\r\n\r\n")
        r = read_response(c)
        assert c.at_eof()
    assert r.status == 200
    assert r.header("Transfer-Encoding") is None
    assert r.header("Content-Length") is None
    assert r.body == pattern_bytes(150000)
    assert b"X-Trailer" not in bytes(c.received)


def test_http10_keep_alive_client(proxy, origin):
    host = b"127.0.0.1:%d" % origin.port
    with Conn(proxy.port) as c:
        for n in (10, 20):
            c.send(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.0\r\nHost: " + host +
                   b"\r\nConnection: keep-alive\r\n\r\n")
            r = read_response(c)
            assert r.status == 200
            assert (r.header("Connection") or "").lower() == "keep-alive"
            assert r.body == pattern_bytes(n)
        # Without keep-alive the proxy closes after the response.
        c.send(b"GET " + origin.url("/bytes/5").encode() + b" HTTP/1.0\r\nHost: " + host + b"\r\n\r\n")
        r = read_response(c)
        assert r.body == pattern_bytes(5)
        assert (r.header("Connection") or "").lower() != "keep-alive"
        assert c.at_eof()


def test_http10_client_chunked_keep_alive_still_closes(proxy, origin):
    # A decoded chunked body can only be delimited by closing.
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/chunked/5000").encode() + b" HTTP/1.0\r\nHost: x\r\n"
               b"Connection: keep-alive\r\n\r\n")
        r = read_response(c)
        assert r.body == pattern_bytes(5000)
        assert (r.header("Connection") or "").lower() != "keep-alive"
        assert c.at_eof()


# ------------------------------------------------------------------ keep-alive and reuse


def _curl_two_echoes(p, origin, tmp_path):
    f1, f2 = tmp_path / "r1.json", tmp_path / "r2.json"
    r = curl("-x", p.url, origin.url("/echo?1"), "-o", f1, origin.url("/echo?2"), "-o", f2,
             "-w", "%{num_connects} %{http_code}\n")
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().split("\n")[:2], json.loads(f1.read_text()), json.loads(f2.read_text())


def test_keep_alive_reuses_client_and_origin_connection(start_proxy, fresh_origin, tmp_path):
    o = fresh_origin()
    p = start_proxy()
    stats, e1, e2 = _curl_two_echoes(p, o, tmp_path)
    assert stats == ["1 200", "0 200"], "curl did not reuse its proxy connection"
    assert e1["path"] == "/echo?1" and e2["path"] == "/echo?2"
    assert e1["client_port"] == e2["client_port"], "origin connection not reused"


def test_upstream_reuse_off_uses_new_origin_connections(start_proxy, fresh_origin, tmp_path):
    o = fresh_origin()
    p = start_proxy({"upstream_reuse": "off"})
    stats, e1, e2 = _curl_two_echoes(p, o, tmp_path)
    assert stats == ["1 200", "0 200"]
    assert e1["client_port"] != e2["client_port"]


def test_upstream_reuse_client_not_shared_between_clients(start_proxy, fresh_origin):
    o = fresh_origin()
    p = start_proxy({"upstream_reuse": "client", "workers": 1})
    host = b"127.0.0.1:%d" % o.port
    req = b"GET " + o.url("/echo").encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    with Conn(p.port) as c1, Conn(p.port) as c2:
        c1.send(req)
        port1 = read_response(c1).json()["client_port"]
        c2.send(req)  # c1 still open and idle: its origin connection is its own
        port2 = read_response(c2).json()["client_port"]
    assert port1 != port2


def test_upstream_reuse_shared_pools_between_clients(start_proxy, fresh_origin):
    o = fresh_origin()
    p = start_proxy({"upstream_reuse": "shared", "workers": 1})
    host = b"127.0.0.1:%d" % o.port
    req = b"GET " + o.url("/echo").encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    ports = []
    for _ in range(3):
        # A new client connection each time; no "Connection: close", which
        # would be passed on and end the origin connection too.
        with Conn(p.port) as c:
            c.send(req)
            r = read_response(c)
        assert r.status == 200
        ports.append(r.json()["client_port"])
    assert ports[0] == ports[1] == ports[2], ports


def test_origin_closing_idle_connection_is_retried(start_proxy, raw_origin):
    # The origin closes after every response, without saying so: the kept
    # connection is dead when the client's next request comes.
    srv = raw_origin(canned(OK2, close=True))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    req = b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n"
    with Conn(p.port) as c:
        for i in range(3):
            c.send(req)
            r = read_response(c)
            assert r.status == 200 and r.body == b"ok", (i, r)
            srv.wait_requests(i + 1)


# ------------------------------------------------------------------ pipelining


def test_pipelined_requests_answered_in_order(proxy, origin):
    host = b"127.0.0.1:%d" % origin.port
    u = origin.url
    reqs = (b"GET " + u("/echo?first").encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
            b"GET " + u("/bytes/70000").encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
            b"POST " + u("/echo?third").encode() + b" HTTP/1.1\r\nHost: " + host +
            b"\r\nContent-Length: 11\r\n\r\nhello world"
            b"GET " + u("/chunked/3000").encode() + b" HTTP/1.1\r\nHost: " + host +
            b"\r\nConnection: close\r\n\r\n")
    with Conn(proxy.port) as c:
        c.send(reqs)  # one send
        r1 = read_response(c)
        r2 = read_response(c)
        r3 = read_response(c)
        r4 = read_response(c)
        assert c.at_eof()
    assert r1.json()["path"] == "/echo?first"
    assert r2.body == pattern_bytes(70000)
    d3 = r3.json()
    assert d3["path"] == "/echo?third" and d3["method"] == "POST"
    assert d3["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert r4.body == pattern_bytes(3000)
    assert r4.header("Connection") == "close"


def test_pipelined_requests_beyond_the_read_buffer(start_proxy, origin):
    """The proxy stops reading a client whose pipelined requests fill
    limits.buffer_bytes, and resumes as it answers them: none is lost."""
    p = start_proxy({"limits": {"buffer_bytes": 4096}})
    n = 300
    reqs = b"".join(b"GET " + origin.url("/bytes/%d" % (i + 1)).encode() + b" HTTP/1.1\r\nHost: x\r\n"
                    b"X-Pad: " + b"p" * 40 + b"\r\n\r\n" for i in range(n))
    assert len(reqs) > 5 * 4096
    with Conn(p.port, timeout=30) as c:
        c.send(reqs)
        for i in range(n):
            r = read_response(c)
            assert r.status == 200 and r.body == pattern_bytes(i + 1), (i, r)


def test_pipelined_requests_to_two_origins(proxy, origin, raw_origin):
    srv = raw_origin(canned(OK2))
    a = b"127.0.0.1:%d" % srv.port
    host = b"127.0.0.1:%d" % origin.port
    reqs = (b"GET " + origin.url("/bytes/33").encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
            b"GET http://" + a + b"/raw HTTP/1.1\r\nHost: " + a + b"\r\n\r\n"
            b"GET " + origin.url("/bytes/44").encode() + b" HTTP/1.1\r\nHost: " + host +
            b"\r\nConnection: close\r\n\r\n")
    with Conn(proxy.port) as c:
        c.send(reqs)
        assert read_response(c).body == pattern_bytes(33)
        assert read_response(c).body == b"ok"
        assert read_response(c).body == pattern_bytes(44)


# ------------------------------------------------------------------ 100-continue


def test_expect_100_continue_relayed(proxy, origin):
    body = os.urandom(50000)
    with Conn(proxy.port) as c:
        c.send(b"POST " + origin.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" % len(body))
        interim = read_response(c)
        assert interim.status == 100, interim
        assert interim.head == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(body)
        r, more = read_final(c)
    assert more == []
    assert r.status == 200
    doc = r.json()
    assert doc["body_length"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert ["Expect", "100-continue"] in doc["headers"]


def test_expect_100_continue_with_curl(proxy, origin, tmp_path):
    f = tmp_path / "body"
    data = os.urandom(3 * 1024 * 1024)
    f.write_bytes(data)
    r = curl("-x", proxy.url, "-H", "Expect: 100-continue", "--data-binary", "@%s" % f,
             "--expect100-timeout", "20", origin.url("/echo"), "-w", "\n%{http_code}")
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition(b"\n")
    assert code == b"200"
    doc = json.loads(body)
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_interim_response_not_sent_to_http10_client(proxy, origin):
    with Conn(proxy.port) as c:
        c.send(b"POST " + origin.url("/echo").encode() + b" HTTP/1.0\r\nHost: x\r\n"
               b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
        r = read_response(c)
    assert r.status == 200
    assert r.json()["body_length"] == 3


def test_interim_responses_from_raw_origin(start_proxy, raw_origin):
    reply = (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
             b"HTTP/1.1 102 Processing\r\n\r\n"
             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    srv = raw_origin(canned(reply))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\nConnection: close\r\n\r\n")
        r, interim = read_final(c)
    assert [i.status for i in interim] == [103, 102]
    assert interim[0].header("Link") == "</a.css>; rel=preload"
    assert r.status == 200 and r.body == b"ok"


# ------------------------------------------------------------------ websocket


def test_websocket_upgrade_and_echo(proxy, origin):
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    with Conn(proxy.port) as c:
        c.send(b"GET " + origin.url("/ws").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
               b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r = read_response(c)
        assert r.status == 101, r
        assert (r.header("Upgrade") or "").lower() == "websocket"
        assert "upgrade" in (r.header("Connection") or "").lower()
        assert r.header("Sec-WebSocket-Accept") == accept.decode()
        payload = b"hello through the tunnel " * 10
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + \
            bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        c.send(frame)
        hdr = c.read_exact(4)
        assert hdr[0] == 0x81 and hdr[1] == 126
        assert int.from_bytes(hdr[2:4], "big") == len(payload)
        assert c.read_exact(len(payload)) == payload


def test_websocket_upgrade_headers_reach_origin(start_proxy, raw_origin):
    got, resp, srv = origin_sees(
        start_proxy, raw_origin,
        b"GET http://{A}/ws HTTP/1.1\r\nHost: {A}\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade, X-Drop\r\nX-Drop: 1\r\nSec-WebSocket-Key: abc\r\n\r\n",
        reply=b"HTTP/1.1 400 No\r\nContent-Length: 0\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == (b"GET /ws HTTP/1.1\r\nHost: " + a + b"\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: abc\r\n\r\n")
    assert resp.status == 400


def test_unasked_101_is_bad_gateway(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    r = exchange(p.port, b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
    assert r.status == 502


# ------------------------------------------------------------------ idle keep-alive


def test_idle_keep_alive_connection_closed(start_proxy, origin):
    p = start_proxy({"timeouts": {"idle": 1}})
    with Conn(p.port, timeout=10) as c:
        c.send(b"GET " + origin.url("/bytes/5").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(c).body == pattern_bytes(5)
        t0 = time.monotonic()
        assert c.at_eof(timeout=8), "idle keep-alive connection not closed"
        assert 0.8 <= time.monotonic() - t0 < 5


def test_idle_timeout_does_not_cut_a_response_being_delivered(start_proxy, origin):
    """timeouts.idle is for a connection with no request; a response whose
    last bytes are still being written is not idle."""
    p = start_proxy({"timeouts": {"idle": 1, "io": 30}})
    conns = slow_readers(p.port, origin, SWEEP)
    time.sleep(2.5)  # deliberately longer than timeouts.idle before reading
    short = check_slow_readers(conns, SWEEP)
    assert not short, "responses cut short: %s" % short


# ------------------------------------------------------------------ more request shapes


def test_leading_empty_lines_ignored(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"\r\n\r\nGET http://{A}/x HTTP/1.1\r\nHost: {A}\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET /x HTTP/1.1\r\nHost: " + a + b"\r\n\r\n"
    assert resp.status == 200


def test_userinfo_never_reaches_origin(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://user:secret@{A}/x HTTP/1.1\r\nX-A: 1\r\n\r\n")
    a = b"127.0.0.1:%d" % srv.port
    assert got == b"GET /x HTTP/1.1\r\nHost: " + a + b"\r\nX-A: 1\r\n\r\n"
    assert b"secret" not in got


def test_uppercase_scheme_and_host(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET HTTP://{A}/Path HTTP/1.1\r\nHost: {A}\r\n\r\n")
    assert got.startswith(b"GET /Path HTTP/1.1\r\n")
    assert resp.status == 200


def test_proxy_connection_never_reaches_origin(start_proxy, raw_origin):
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://{A}/ HTTP/1.0\r\nHost: {A}\r\nProxy-Connection: keep-alive\r\n"
                                 b"X-A: 1\r\n\r\n")
    assert b"proxy-connection" not in got.lower()
    assert got.endswith(b"X-A: 1\r\n\r\n")
    # An HTTP/1.0 client asking a proxy for keep-alive gets it.
    assert (resp.header("Connection") or "").lower() == "keep-alive"


def test_long_header_value_passes_unchanged(start_proxy, raw_origin):
    cookie = b"c=" + b"x" * 12000
    got, resp, srv = origin_sees(start_proxy, raw_origin,
                                 b"GET http://{A}/ HTTP/1.1\r\nHost: {A}\r\nCookie: " + cookie + b"\r\n\r\n")
    assert b"\r\nCookie: " + cookie + b"\r\n" in got


def test_head_with_chunked_response_has_no_body(start_proxy, raw_origin):
    srv = raw_origin(canned(lambda req: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            if req.startswith(b"HEAD") else OK2))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"HEAD http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c, method="HEAD")
        assert r.status == 200
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert r.status == 200 and r.body == b"ok"


def test_response_without_framing_to_http11_client(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end", close=True))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert r.body == b"until the end"
        assert r.header("Connection") == "close"
        assert c.at_eof()


def test_websocket_refused_then_connection_reusable(start_proxy, raw_origin):
    srv = raw_origin(canned(lambda req: b"HTTP/1.1 426 Nope\r\nContent-Length: 4\r\n\r\nnope"
                            if b"Upgrade" in req else OK2))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/ws HTTP/1.1\r\nHost: " + a + b"\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: abc\r\n\r\n")
        r = read_response(c)
        assert r.status == 426 and r.body == b"nope"
        c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert r.status == 200 and r.body == b"ok"


def test_websocket_bytes_right_after_101(start_proxy, raw_origin):
    """Bytes the origin sends in the same packet as its 101 belong to the
    new protocol and must reach the client."""
    srv = raw_origin(canned(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\n\r\n\x81\x05hello"))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/ws HTTP/1.1\r\nHost: " + a + b"\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: abc\r\n\r\n")
        r = read_response(c)
        assert r.status == 101
        assert c.read_exact(7) == b"\x81\x05hello"


# ------------------------------------------------------------------ shared pool under load


def test_shared_reuse_many_clients_get_their_own_responses(start_proxy, fresh_origin):
    o = fresh_origin()
    p = start_proxy({"upstream_reuse": "shared"})
    host = b"127.0.0.1:%d" % o.port
    errors = []

    def client(i):
        try:
            with Conn(p.port, timeout=30) as c:
                for j in range(5):
                    path = "/echo?c=%d&r=%d" % (i, j)
                    c.send(b"GET " + o.url(path).encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
                    got = read_response(c).json()["path"]
                    if got != path:
                        errors.append((path, got))
        except Exception as e:
            errors.append((i, repr(e)))

    import threading
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]


def test_shared_reuse_origin_closing_pooled_connections(start_proxy, raw_origin):
    srv = raw_origin(canned(OK2, close=True))
    p = start_proxy({"upstream_reuse": "shared", "workers": 1})
    a = b"127.0.0.1:%d" % srv.port
    for i in range(4):
        with Conn(p.port) as c:
            c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
            r = read_response(c)
            assert r.status == 200 and r.body == b"ok", (i, r)


def test_http10_origin_with_length_keeps_client_connection(start_proxy, raw_origin):
    srv = raw_origin(canned(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", close=True))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        for i in range(3):
            c.send(b"GET http://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
            r = read_response(c)
            assert r.status == 200 and r.body == b"ok", (i, r)
            assert r.header("Connection") is None, r
    assert len(srv.conns) == 3


def test_bytes_after_response_body_never_reach_client(start_proxy, raw_origin):
    """Whatever an origin sends past the end of a response must not be taken
    for the next response (response splitting/desync)."""
    srv = raw_origin(canned(lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
                            if b"/first" in req else b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"))
    p = start_proxy()
    a = b"127.0.0.1:%d" % srv.port
    with Conn(p.port) as c:
        c.send(b"GET http://" + a + b"/first HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert r.body == b"ok"
        c.send(b"GET http://" + a + b"/second HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
        r = read_response(c)
        assert r.body == b"real", r
