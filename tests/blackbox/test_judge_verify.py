"""The judge (`anonproxy judge`) and `anonproxy verify`, against the judge
itself, tinyproxy, squid, privoxy, microsocks and anonproxy (its http,
socks5 and TLS listeners).

Requests that must look as if they came from another host are sent from
127.0.0.3: the judge then sees a real IP (127.0.0.3) that differs from a
local proxy's exit IP (127.0.0.1).
"""
import json
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, Acceptor, Conn, ShortRead, clean_env, free_port, port_accepts,
                      read_response)
from exits import MiniSocks
from judgekit import (BROWSER, GEO_DB, ask, connect, need, raw_exchange, request_bytes,
                      sanitizer_report, start_judge, start_privoxy, start_service, start_squid,
                      start_tinyproxy, verify, verify_json, why)
from test_tls_listener import make_cert

REAL = "127.0.0.3"
# What verify sends after Host, in its order: a browser's headers (Accept
# also names application/json, which makes the judge answer in JSON).
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
VERIFY_HEADERS = [
    "User-Agent: " + UA,
    "Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: identity",
    "Connection: keep-alive",
]


@pytest.fixture
def judges(tmp_path):
    """Factory: judges(geoip=None) -> Service. At teardown: SIGTERM, exit
    status 0, no sanitizer report."""
    started = []

    def _start(geoip=None, host="127.0.0.1"):
        j = start_judge(tmp_path, geoip, host)
        started.append(j)
        return j

    yield _start
    problems = []
    for j in started:
        rc = j.stop()
        if rc != 0:
            problems.append("judge on port %d: exit status %r\n%s" % (j.port, rc, j.log()))
        report = sanitizer_report(j.log())
        if report:
            problems.append("judge on port %d: sanitizer report:\n%s" % (j.port, report))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def judge(judges):
    return judges()


@pytest.fixture
def services():
    """Collects third-party proxies to stop at teardown."""
    started = []
    yield started.append
    for s in started:
        s.stop()


# ------------------------------------------------------------------ output


def test_json_shows_request_exactly(judge):
    head = (b"GET /?real_ip=10.1.2.3 HTTP/1.1\r\n"
            b"hOsT: 127.0.0.1:%d\r\n"
            b"X-lower-Case:   padded value\t\r\n"
            b"ACCEPT: text/html, application/json\r\n"
            b"x-dup: 1\r\n"
            b"X-Dup: 2\r\n"
            b"Cookie: a=\"quoted\\\\\"; b=1\r\n\r\n" % judge.port)
    r = raw_exchange(judge.port, head)
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert int(r.header("Content-Length")) == len(r.body)
    a = r.json()
    assert a["remote_ip"] == "127.0.0.1"
    assert a["country"] is None
    assert a["real_ip"] == "10.1.2.3"
    assert a["request_line"] == "GET /?real_ip=10.1.2.3 HTTP/1.1"
    assert a["headers"] == [
        ["hOsT", "127.0.0.1:%d" % judge.port],
        ["X-lower-Case", "padded value"],
        ["ACCEPT", "text/html, application/json"],
        ["x-dup", "1"],
        ["X-Dup", "2"],
        ["Cookie", 'a="quoted\\\\"; b=1'],
    ]
    assert a["verdict"] == "elite"
    assert a["reasons"] == []


def test_text_output(judge):
    r = raw_exchange(judge.port, request_bytes(
        judge.port, "/?real_ip=127.0.0.9", ["User-Agent: test/1", "Via: 1.1 p"], accept_json=False))
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    lines = r.body.decode().splitlines()
    assert lines[:6] == [
        "remote_ip: 127.0.0.1",
        "country: (no GeoIP database)",
        "real_ip: 127.0.0.9",
        "request_line: GET /?real_ip=127.0.0.9 HTTP/1.1",
        "verdict: anonymous",
        "reason: Via: 1.1 p (proxy-revealing header)",
    ]
    assert lines[6:] == ["headers:", "Host: 127.0.0.1:%d" % judge.port, "User-Agent: test/1",
                         "Via: 1.1 p"]


def test_json_escapes_and_non_utf8(judge):
    a = ask(judge.port, "/", ['X-Q: say "hi" \\', "X-Bin: caf\xe9"])
    assert a["headers"][1] == ["X-Q", 'say "hi" \\']
    # Not UTF-8: each byte is read as ISO-8859-1, so nothing is lost.
    assert a["headers"][2] == ["X-Bin", "caf\u00e9"]


def test_absolute_form_target(judge):
    a = ask(judge.port, "http://127.0.0.1:%d/?real_ip=%s" % (judge.port, REAL), ["Via: 1.1 x"])
    assert a["real_ip"] == REAL
    assert a["request_line"].startswith("GET http://127.0.0.1:")
    assert a["verdict"] == "anonymous"
    assert ask(judge.port, "http://127.0.0.1:%d" % judge.port)["verdict"] == "elite"


def test_keep_alive_and_pipelining(judge):
    with connect(judge.port) as c:
        c.send(request_bytes(judge.port, "/?real_ip=10.0.0.1"))
        assert read_response(c).json()["real_ip"] == "10.0.0.1"
        # Two at once: answered in order on the same connection.
        c.send(request_bytes(judge.port, "/?real_ip=10.0.0.2") +
               request_bytes(judge.port, "/?real_ip=10.0.0.3", ["Connection: close"]))
        assert read_response(c).json()["real_ip"] == "10.0.0.2"
        last = read_response(c)
        assert last.json()["real_ip"] == "10.0.0.3"
        assert last.header("Connection") == "close"
        assert c.at_eof()


# ------------------------------------------------------------------ verdicts


def test_direct_request_is_transparent(judge):
    a = ask(judge.port, "/?real_ip=127.0.0.1")
    assert a["verdict"] == "transparent"
    assert a["reasons"] == [{"header": None, "value": "127.0.0.1",
                             "why": "the remote address is the real IP"}]


def test_forwarded_for_from_source_is_transparent(judge):
    a = ask(judge.port, "/?real_ip=%s" % REAL, ["X-Forwarded-For: %s" % REAL], source=REAL)
    assert a["remote_ip"] == REAL
    assert a["verdict"] == "transparent"
    assert why(a) == {None: "the remote address is the real IP",
                      "X-Forwarded-For": "carries the real IP"}


def test_real_ip_in_header_only_is_transparent(judge):
    # The remote address (127.0.0.1) is not the real IP: only the header leaks.
    a = ask(judge.port, "/?real_ip=%s" % REAL, ["X-Forwarded-For: 198.51.100.7, %s" % REAL])
    assert a["verdict"] == "transparent"
    assert a["reasons"] == [{"header": "X-Forwarded-For", "value": "198.51.100.7, %s" % REAL,
                             "why": "carries the real IP"}]


def test_via_is_anonymous(judge):
    a = ask(judge.port, "/?real_ip=%s" % REAL, ["Via: 1.1 p"])
    assert a["verdict"] == "anonymous"
    assert a["reasons"] == [{"header": "Via", "value": "1.1 p", "why": "proxy-revealing header"}]


def test_lower_case_x_real_ip_is_anonymous(judge):
    a = ask(judge.port, "/?real_ip=%s" % REAL, ["x-real-ip: 10.9.9.9"])
    assert a["verdict"] == "anonymous"
    assert a["reasons"] == [{"header": "x-real-ip", "value": "10.9.9.9",
                             "why": "proxy-revealing header"}]


def test_browser_headers_are_elite(judge):
    a = ask(judge.port, "/?real_ip=%s" % REAL, BROWSER)
    assert a["verdict"] == "elite"
    assert a["reasons"] == []
    assert [h[0] for h in a["headers"]] == ["Host"] + [h.split(":")[0] for h in BROWSER]


@pytest.mark.parametrize("header,verdict", [
    ("X-Custom: 1.2.3.45", "elite"),
    ("X-Custom: 11.2.3.4", "elite"),
    ("X-Custom: 1.2.3.4.5", "elite"),
    ("X-Custom: 1.2.3.4", "transparent"),
    ("X-Custom: for=1.2.3.4:8080", "transparent"),
    ("X-Custom: ::ffff:1.2.3.4", "transparent"),
    ("X-Custom: client 1.2.3.4.", "transparent"),
])
def test_real_ip_matches_on_address_boundaries(judge, header, verdict):
    assert ask(judge.port, "/?real_ip=1.2.3.4", [header])["verdict"] == verdict


@pytest.mark.parametrize("header,verdict", [
    ('Forwarded: for="[2001:DB8:0::1]:4711"', "transparent"),
    ("X-Custom: 2001:db8::11", "elite"),
    ("X-Custom: 2001:db8::1", "transparent"),
])
def test_ipv6_real_ip(judge, header, verdict):
    # %3A is ':' percent-encoded; both spellings are accepted.
    assert ask(judge.port, "/?real_ip=2001%3Adb8%3A%3A1", [header])["verdict"] == verdict


@pytest.mark.parametrize("header,verdict,reason", [
    ("Forwarded: for=192.0.2.60", "anonymous", "proxy-revealing header"),
    ("X-Forwarded-Anything: 1", "anonymous", "proxy-revealing header"),
    ("Proxy-Authorization: Basic dTpw", "anonymous", "proxy-revealing header"),
    ("X-Tinyproxy: 10.0.0.1", "anonymous", "header name mentions a proxy"),
    ("Connection: keep-alive, proxy-keep-alive", "anonymous", "value mentions a proxy"),
    ("Cache-Control: no-proxy-cache", "anonymous", "value mentions a proxy"),
    ("User-Agent: ProxyChecker proxy/1.0", "elite", None),
    ("Referer: http://proxy.example/", "elite", None),
    ("Connection: tinyproxying", "elite", None),
])
def test_proxy_revealing_rules(judge, header, verdict, reason):
    a = ask(judge.port, "/?real_ip=%s" % REAL, [header])
    assert a["verdict"] == verdict
    assert [r["why"] for r in a["reasons"]] == ([reason] if reason else [])


def test_host_header_is_not_a_leak(judge):
    # Host names the judge: a client testing itself via 127.0.0.1 is not
    # "leaking" through it (it is transparent by its remote address only).
    a = ask(judge.port, "/?real_ip=127.0.0.1")
    assert [r["header"] for r in a["reasons"]] == [None]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET /?real_ip=not-an-ip HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /?real_ip=1.2.3.4%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_malformed_request_is_400(judge, raw):
    with connect(judge.port) as c:
        c.send(raw)
        r = read_response(c)
        assert r.status == 400, r
        assert r.header("Content-Type").startswith("text/plain")
        if b"real_ip" not in raw and b"ftp:" not in raw:
            assert r.header("Connection") == "close"
            assert c.at_eof()


def test_too_many_headers_is_431(judge):
    headers = ["X-H%d: v" % i for i in range(201)]
    r = raw_exchange(judge.port, request_bytes(judge.port, "/", headers))
    assert r.status == 431


def test_oversized_head_is_431(judge):
    with connect(judge.port) as c:
        c.send(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000)
        r = read_response(c)
        assert r.status == 431
        assert c.at_eof()


def test_incomplete_head_times_out(judge):
    # The judge allows 10 s for a whole head, then closes.
    with connect(judge.port, timeout=20) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert c.at_eof(timeout=15)
        assert 8 < time.monotonic() - start < 14


def test_unknown_path_is_404_and_keeps_the_connection(judge):
    with connect(judge.port) as c:
        c.send(request_bytes(judge.port, "/other"))
        assert read_response(c).status == 404
        c.send(request_bytes(judge.port, "/"))
        assert read_response(c).status == 200


def test_other_method_is_405(judge):
    r = raw_exchange(judge.port, request_bytes(judge.port, "/", ["Content-Length: 3"],
                                               method="POST") + b"abc")
    assert r.status == 405
    assert r.header("Allow") == "GET"
    assert r.header("Connection") == "close"


def test_ipv6_listener(judges):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    j = judges(host="::1")
    r = raw_exchange(j.port, request_bytes(j.port, "/?real_ip=::1"), host="::1")
    a = r.json()
    assert a["remote_ip"] == "::1"
    assert a["verdict"] == "transparent"


# ------------------------------------------------------------------ geoip


def test_geoip_country(judges):
    if not GEO_DB.exists():
        pytest.skip("%s not built (make build/test-geo.mmdb)" % GEO_DB)
    j = judges(GEO_DB)
    assert ask(j.port, "/", source=REAL)["country"] == "DE"
    assert ask(j.port, "/")["country"] == "US"
    assert ask(j.port, "/", source="127.0.1.5")["country"] is None
    r = raw_exchange(j.port, request_bytes(j.port, "/", accept_json=False), source=REAL)
    assert "country: DE" in r.body.decode().splitlines()
    r = raw_exchange(j.port, request_bytes(j.port, "/", accept_json=False), source="127.0.1.5")
    assert "country: unknown" in r.body.decode().splitlines()


# ------------------------------------------------------------------ judge CLI


def run_bin(*args, timeout=20):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env())


def test_judge_cli_errors(tmp_path):
    r = run_bin("judge")
    assert r.returncode == 2 and "--listen is required" in r.stderr
    r = run_bin("judge", "--listen", "nonsense")
    assert r.returncode == 2 and "--listen nonsense" in r.stderr
    r = run_bin("judge", "--listen", "127.0.0.1:1", "--geoip", str(tmp_path / "missing.mmdb"))
    assert r.returncode == 1 and "missing.mmdb" in r.stderr
    assert "judge" in run_bin("--help").stdout


def test_judge_stops_on_sigint(tmp_path):
    j = start_judge(tmp_path)
    with connect(j.port) as idle:  # an idle connection must not hold it up
        idle.send(b"GET / HT")
        assert j.stop(signal.SIGINT, timeout=10) == 0
    assert sanitizer_report(j.log()) is None
    assert not port_accepts(j.port)


# ------------------------------------------------------------------ verify


def paths(report):
    return {p["path"]: p for p in report["paths"]}


def leak_headers(path):
    return [x["header"] for x in path["leaks"]]


def test_verify_tinyproxy_default_is_anonymous(tmp_path, services):
    tp = start_tinyproxy(tmp_path)
    services(tp)
    r = verify("--proxy", tp.url, "--source", REAL)
    assert r.returncode == 1, r
    assert "started in-process on 127.0.0.1" in r.stdout
    assert "real IP: %s" % REAL in r.stdout
    assert "http (absolute-form GET through the proxy): exit IP 127.0.0.1, verdict anonymous" \
        in r.stdout
    assert "  leak: Via: 1.1 " in r.stdout and "tinyproxy/" in r.stdout
    # Inside a tunnel tinyproxy sees only bytes.
    assert "connect (GET inside a CONNECT tunnel): exit IP 127.0.0.1, verdict elite" in r.stdout
    assert "result: FAIL, expected at least elite; http is anonymous" in r.stdout
    rc, report, _ = verify_json("--proxy", tp.url, "--source", REAL, "--expect", "anonymous")
    assert rc == 0
    assert report["ok"] is True and report["real_ip"] == REAL
    assert paths(report)["http"]["verdict"] == "anonymous"
    assert leak_headers(paths(report)["http"]) == ["Via"]


def test_verify_tinyproxy_xtinyproxy_is_transparent(tmp_path, services):
    tp = start_tinyproxy(tmp_path, ["XTinyproxy Yes"])
    services(tp)
    rc, report, r = verify_json("--proxy", tp.url, "--source", REAL, "--expect", "anonymous")
    assert rc == 1, r
    http = paths(report)["http"]
    assert http["verdict"] == "transparent"
    assert {"header": "X-Tinyproxy", "value": REAL, "why": "carries the real IP"} in http["leaks"]
    assert paths(report)["connect"]["verdict"] == "elite"


def test_verify_tinyproxy_without_via_is_elite(tmp_path, services):
    tp = start_tinyproxy(tmp_path, ["DisableViaHeader Yes"])
    services(tp)
    r = verify("--proxy", tp.url, "--source", REAL, "--expect", "elite")
    assert r.returncode == 0, r
    assert r.stdout.count("verdict elite") == 2
    assert "result: OK" in r.stdout


def test_verify_proxy_credentials(tmp_path, services):
    tp = start_tinyproxy(tmp_path, ["DisableViaHeader Yes", "BasicAuth judge s3cr3t"])
    services(tp)
    # Percent-encoded in the URL ("%63" is "c"), decoded before use.
    r = verify("--proxy", tp.url.replace("//", "//judge:s3%63r3t@"), "--source", REAL)
    assert r.returncode == 0, r
    r = verify("--proxy", tp.url, "--source", REAL)
    assert r.returncode == 2, r
    assert "407" in r.stderr and len(r.stderr.splitlines()) == 1


def test_verify_external_judge_with_country(judges, tmp_path, services):
    if not GEO_DB.exists():
        pytest.skip("%s not built (make build/test-geo.mmdb)" % GEO_DB)
    j = judges(GEO_DB)
    tp = start_tinyproxy(tmp_path, ["DisableViaHeader Yes"])
    services(tp)
    r = verify("--proxy", tp.url, "--judge", "http://127.0.0.1:%d/" % j.port, "--source", REAL)
    assert r.returncode == 0, r
    assert "judge: http://127.0.0.1:%d/\n" % j.port in r.stdout
    assert "in-process" not in r.stdout
    assert "real IP: %s" % REAL in r.stdout
    # The exit (127.0.0.1) is in "US" in the test database.
    assert r.stdout.count("exit IP 127.0.0.1 (US), verdict elite") == 2


def test_verify_anonproxy_elite(start_proxy):
    p = start_proxy({"workers": 1, "mode": "elite"})
    r = verify("--proxy", p.url, "--source", REAL, "--expect", "elite")
    assert r.returncode == 0, r.stdout + r.stderr
    rc, report, _ = verify_json("--proxy", p.url, "--source", REAL)
    assert rc == 0
    for path in report["paths"]:
        assert path["verdict"] == "elite" and path["leaks"] == [], path


@pytest.mark.parametrize("mode,verdict,leaks", [
    ("transparent", "transparent", ["X-Forwarded-For", "Via"]),
    ("anonymous", "anonymous", ["Via"]),
    ("paranoid", "elite", []),
])
def test_verify_anonproxy_modes(start_proxy, mode, verdict, leaks):
    p = start_proxy({"workers": 1, "mode": mode})
    rc, report, r = verify_json("--proxy", p.url, "--source", REAL, "--expect", verdict)
    assert rc == 0, r
    http = paths(report)["http"]
    assert http["verdict"] == verdict, http
    assert sorted(leak_headers(http)) == sorted(leaks), http
    # Header rules cannot reach inside a tunnel: CONNECT is always clean.
    assert paths(report)["connect"]["verdict"] == "elite"


def test_verify_squid_default_is_transparent(tmp_path, services):
    sq = start_squid(tmp_path)
    services(sq)
    rc, report, r = verify_json("--proxy", sq.url, "--source", REAL, "--expect", "transparent")
    assert rc == 0, r
    http = paths(report)["http"]
    assert http["verdict"] == "transparent"
    assert {"header": "X-Forwarded-For", "value": REAL, "why": "carries the real IP"} \
        in http["leaks"]
    assert "Via" in leak_headers(http)


def test_verify_squid_anonymized_is_elite(tmp_path, services):
    sq = start_squid(tmp_path, ["forwarded_for delete", "via off"])
    services(sq)
    r = verify("--proxy", sq.url, "--source", REAL, "--expect", "elite")
    assert r.returncode == 0, r


def test_verify_privoxy_default(tmp_path, services):
    pv = start_privoxy(tmp_path)
    services(pv)
    rc, report, r = verify_json("--proxy", pv.url, "--source", REAL, "--expect", "anonymous")
    assert rc == 0, r
    # Observed with privoxy 3.0.34 and Debian's default actions: nothing
    # added, nothing leaked.
    assert {p["verdict"] for p in report["paths"]} == {"elite"}, report


def test_verify_without_source_notes_same_ip(tmp_path, services):
    tp = start_tinyproxy(tmp_path, ["DisableViaHeader Yes"])
    services(tp)
    r = verify("--proxy", tp.url, "--expect", "transparent")
    assert r.returncode == 0, r
    assert "note: the exit IP equals the real IP" in r.stdout


def test_verify_connect_refused(tmp_path, services):
    tp = start_tinyproxy(tmp_path, ["DisableViaHeader Yes", "ConnectPort 443"])
    services(tp)
    r = verify("--proxy", tp.url, "--source", REAL)
    assert r.returncode == 2, r
    assert "verdict elite" in r.stdout  # the plain-HTTP path was checked
    assert len(r.stderr.splitlines()) == 1
    assert "anonproxy verify: the proxy refused CONNECT 127.0.0.1:" in r.stderr
    assert ": 403 " in r.stderr


def test_help():
    for cmd in ("judge", "verify"):
        r = run_bin(cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("usage: anonproxy %s" % cmd)


@pytest.mark.parametrize("args,message", [
    ([], "--proxy is required"),
    (["--proxy", "ftp://127.0.0.1:1080"], "scheme 'ftp' is not supported (http://, https://, "
                                          "socks5h://, socks5:// or socks4a://)"),
    (["--proxy", "socks4://127.0.0.1:1080"], "scheme 'socks4' is not supported"),
    (["--proxy", "127.0.0.1:8080"], "must start with http://"),
    (["--proxy", "http://127.0.0.1"], "needs a port"),
    (["--proxy", "http://127.0.0.1:99999"], "bad port"),
    (["--proxy", "http://127.0.0.1:8080/path"], "must not have a path"),
    (["--proxy", "http://127.0.0.1:8080", "--expect", "paranoid"], "--expect must be"),
    (["--proxy", "http://127.0.0.1:8080", "--source", "nowhere"], "--source nowhere"),
    (["--proxy", "http://127.0.0.1:8080", "--timeout", "0"], "--timeout"),
    (["--proxy", "http://127.0.0.1:8080", "--judge", "https://x/"], "only http://"),
    (["--proxy", "socks5h://127.0.0.1"], "needs a port (socks5h://host:port)"),
    (["--proxy", "socks5://judge@127.0.0.1:1080"], "credentials must be user:password"),
    (["--proxy", "https://127.0.0.1:8443", "--proxy-cacert", "/nonexistent/ca.pem"],
     "--proxy-cacert /nonexistent/ca.pem: No such file or directory"),
    (["--proxy", "socks5h://127.0.0.1:1080", "--proxy-cacert", __file__],
     "--proxy-cacert is for an https:// proxy"),
])
def test_verify_usage_errors(args, message):
    r = verify(*args)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr


def test_verify_unreachable_proxy_and_judge():
    dead = "http://127.0.0.1:%d" % free_dead_port()
    r = verify("--proxy", dead, "--source", REAL, "--timeout", "5")
    assert r.returncode == 2
    assert r.stderr.strip() == ("anonproxy verify: cannot connect to the proxy %s: "
                                "Connection refused" % dead[7:])
    r = verify("--proxy", "http://127.0.0.1:1", "--judge", dead + "/", "--timeout", "5")
    assert r.returncode == 2
    assert "cannot connect to the judge" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("scheme", ["http", "https", "socks5h"])
def test_verify_timeout(tmp_path, scheme):
    # A "proxy" that accepts and never answers: not to a request, a TLS
    # ClientHello or a SOCKS greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = "%s://127.0.0.1:%d" % (scheme, silent.getsockname()[1])
        r = verify("--proxy", url, "--timeout", "0.5", timeout=30)
    assert r.returncode == 2
    assert "reading from the proxy: timed out" in r.stderr


def free_dead_port():
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ what verify sends


class Recorder(Acceptor):
    """A judge and an HTTP proxy in one, for seeing exactly what verify
    sends: records every request head (its lines, CONNECT's too), answers a
    CONNECT with 200 (the tunnel leads back to itself) and every GET with a
    judge's JSON (the remote IP is the peer's)."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.heads = []
        self.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def accepted(self, s):
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        peer = s.getpeername()[0]
        c = Conn(sock=s, timeout=10)
        with c:
            while True:
                try:
                    head = c.read_until(b"\r\n\r\n", limit=65536)
                except (ShortRead, OSError):
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                with self.lock:
                    self.heads.append(lines)
                if lines[0].startswith("CONNECT "):
                    c.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    continue
                body = json.dumps({"remote_ip": peer, "country": None,
                                   "verdict": "elite", "reasons": []}).encode()
                c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop_accepting()


def test_verify_sends_a_browsers_headers(recorder):
    # The recorder is both the judge and the proxy: it sees the direct GET,
    # the absolute-form GET, the CONNECT and the GET inside the tunnel.
    authority = "127.0.0.1:%d" % recorder.port
    proxy = recorder.url.replace("//", "//judge:s3cr3t@")
    r = verify("--proxy", proxy, "--judge", recorder.url + "/", "--source", REAL)
    assert r.returncode == 0, r
    direct, absolute, tunnel, inside = recorder.heads
    browser = ["Host: " + authority] + VERIFY_HEADERS
    assert direct == ["GET / HTTP/1.1"] + browser
    auth = "Proxy-Authorization: Basic anVkZ2U6czNjcjN0"
    assert absolute[0] == "GET http://%s/?real_ip=%s HTTP/1.1" % (authority, REAL)
    # Proxy-Authorization is for the proxy (which drops it); the rest is
    # what reaches the judge, in a browser's order.
    assert [h for h in absolute[1:] if h != auth] == browser
    assert auth in absolute
    assert tunnel[0] == "CONNECT %s HTTP/1.1" % authority
    assert sorted(tunnel[1:]) == sorted(["Host: " + authority, "User-Agent: " + UA, auth])
    assert inside == ["GET /?real_ip=%s HTTP/1.1" % REAL] + browser


def test_verify_sends_a_browsers_headers_through_socks(recorder, start_proxy):
    # anonproxy's SOCKS5 front door only relays: the recorder, as the judge,
    # sees verify's own GET.
    p = start_proxy({"workers": 1, "listen": front_doors()})
    r = verify("--proxy", "socks5h://127.0.0.1:%d" % listen_port(p, 1),
               "--judge", recorder.url + "/", "--source", REAL)
    assert r.returncode == 0, r
    direct, inside = recorder.heads
    browser = ["Host: 127.0.0.1:%d" % recorder.port] + VERIFY_HEADERS
    assert direct == ["GET / HTTP/1.1"] + browser
    assert inside == ["GET /?real_ip=%s HTTP/1.1" % REAL] + browser


# ------------------------------------------------------------------ SOCKS and HTTPS proxies


@pytest.fixture(scope="module")
def proxy_cert(tmp_path_factory):
    """A self-signed certificate (openssl CLI) for localhost and 127.0.0.1."""
    return make_cert(tmp_path_factory.mktemp("verify-certs"), "proxy")


def front_doors(cert=None):
    """anonproxy's listeners: http first (launch_proxy polls it), socks5
    (which also speaks SOCKS4a), and with a certificate an http one with TLS."""
    listen = [{"address": "127.0.0.1:%d" % free_port()},
              {"address": "127.0.0.1:%d" % free_port(), "protocol": "socks5"}]
    if cert:
        listen.append({"address": "127.0.0.1:%d" % free_port(),
                       "tls": {"cert": str(cert[0]), "key": str(cert[1])}})
    return listen


def listen_port(p, i):
    return int(p.config["listen"][i]["address"].rsplit(":", 1)[1])


SOCKS5H = "socks (GET through a SOCKS5 tunnel, the name resolved by the proxy)"
SOCKS5 = "socks (GET through a SOCKS5 tunnel)"
SOCKS4A = "socks (GET through a SOCKS4a tunnel)"
HTTP_PATHS = ["http (absolute-form GET through the proxy)", "connect (GET inside a CONNECT tunnel)"]


@pytest.mark.parametrize("scheme,creds,lines", [
    ("socks5h", None, [SOCKS5H]),
    ("socks5h", "someone:s3cr%65t", [SOCKS5H]),
    ("socks5", None, [SOCKS5]),
    ("socks5", "someone:secret", [SOCKS5]),
    ("socks4a", None, [SOCKS4A]),
    ("socks4a", "someone:secret", [SOCKS4A]),
    ("https", None, HTTP_PATHS),
    ("https", "someone:secret", HTTP_PATHS),
])
def test_verify_anonproxy_front_doors_are_elite(start_proxy, proxy_cert, scheme, creds, lines):
    p = start_proxy({"workers": 1, "mode": "elite", "listen": front_doors(proxy_cert)})
    https = scheme == "https"
    # The certificate names localhost (and 127.0.0.1): the name is checked too.
    url = "%s://%s%s:%d" % (scheme, creds + "@" if creds else "",
                            "localhost" if https else "127.0.0.1", listen_port(p, 2 if https else 1))
    cacert = ["--proxy-cacert", proxy_cert[0]] if https else []
    r = verify("--proxy", url, *cacert, "--source", REAL, "--expect", "elite")
    assert r.returncode == 0, r
    for line in lines:
        assert "%s: exit IP 127.0.0.1, verdict elite\n" % line in r.stdout, r.stdout
    assert "leak:" not in r.stdout
    assert "result: OK, expected at least elite" in r.stdout
    rc, report, r = verify_json("--proxy", url, *cacert, "--source", REAL, "--expect", "elite")
    assert rc == 0, r
    assert report["ok"] is True and report["real_ip"] == REAL
    assert [path["path"] for path in report["paths"]] == [line.split()[0] for line in lines]
    for path in report["paths"]:
        assert path["verdict"] == "elite" and path["leaks"] == [], path
        assert path["exit_ip"] == "127.0.0.1", path


@pytest.mark.parametrize("scheme,wanted", [
    # socks5h and socks4a hand the judge's name to the proxy; socks5 resolves it here.
    ("socks5h", {"version": 5, "atyp": 3, "host": "localhost", "user": "judge"}),
    ("socks5", {"version": 5, "atyp": 1, "host": "127.0.0.1", "user": "judge"}),
    ("socks4a", {"version": 4, "atyp": None, "host": "localhost", "user": "judge"}),
])
def test_verify_socks_resolves_where_the_scheme_says(judge, scheme, wanted):
    ms = MiniSocks("127.0.0.1", names={"localhost": "127.0.0.1"}, user="judge", password="p w")
    try:
        # "%20" is " ", decoded before use.
        rc, report, r = verify_json("--proxy", ms.url(scheme, ("judge", "p%20w")),
                                    "--judge", "http://localhost:%d/" % judge.port,
                                    "--source", REAL)
        assert rc == 0, r
        assert [path["path"] for path in report["paths"]] == ["socks"]
        got = ms.requests_for(wanted["host"])
        assert [{k: req[k] for k in wanted} for req in got] == [wanted], ms.requests
        assert got[0]["port"] == judge.port
    finally:
        ms.close()


def test_verify_socks_proxy_refusals(judge):
    ms = MiniSocks("127.0.0.1", names={}, user="judge", password="s3cr3t")
    try:
        # The proxy cannot resolve the judge's name (reply 0x04).
        r = verify("--proxy", ms.url("socks5h", ("judge", "s3cr3t")),
                   "--judge", "http://localhost:%d/" % judge.port, "--source", REAL)
        assert r.returncode == 2, r
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("anonproxy verify: SOCKS with the proxy 127.0.0.1:%d failed: "
                                   % ms.port), r.stderr
        # A wrong password (RFC 1929 status 1).
        r = verify("--proxy", ms.url("socks5h", ("judge", "wrong")), "--source", REAL)
        assert r.returncode == 2, r
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("anonproxy verify: SOCKS with the proxy 127.0.0.1:%d failed: "
                                   % ms.port), r.stderr
    finally:
        ms.close()


@pytest.mark.parametrize("scheme", ["socks5h", "socks5"])
def test_verify_microsocks_is_elite(tmp_path, services, scheme):
    binary = need("microsocks", "microsocks")
    ms = start_service("microsocks", lambda port: [binary, "-i", "127.0.0.1", "-p", port,
                                                   "-b", "127.0.0.1", "-u", "judge",
                                                   "-P", "s3cr3t"], tmp_path)
    services(ms)
    url = "%s://judge:s3cr3t@127.0.0.1:%d" % (scheme, ms.port)
    rc, report, r = verify_json("--proxy", url, "--source", REAL, "--expect", "elite")
    assert rc == 0, r
    assert report["real_ip"] == REAL
    [path] = report["paths"]
    assert (path["path"], path["exit_ip"], path["verdict"], path["leaks"]) == \
        ("socks", "127.0.0.1", "elite", [])
    r = verify("--proxy", url.replace("s3cr3t", "wrong"), "--source", REAL)
    assert r.returncode == 2, r
    assert "anonproxy verify: SOCKS with the proxy 127.0.0.1:%d failed: " % ms.port in r.stderr


def test_verify_https_proxy_certificate_errors(start_proxy, proxy_cert, tmp_path):
    other, _ = make_cert(tmp_path, "other")
    p = start_proxy({"workers": 1, "listen": front_doors(proxy_cert)})
    port = listen_port(p, 2)
    # Another self-signed certificate, then only the system's CAs.
    for cacert in (["--proxy-cacert", other], []):
        r = verify("--proxy", "https://localhost:%d" % port, *cacert, "--source", REAL)
        assert r.returncode == 2, r
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("anonproxy verify: TLS with the proxy localhost:%d failed: "
                                   % port), r.stderr
        assert "certificate" in r.stderr
    assert "verdict" not in r.stdout


@pytest.mark.parametrize("scheme", ["socks5h", "socks5", "socks4a", "https"])
def test_verify_unreachable_socks_and_https_proxies(scheme):
    dead = "127.0.0.1:%d" % free_dead_port()
    r = verify("--proxy", "%s://%s" % (scheme, dead), "--source", REAL, "--timeout", "5")
    assert r.returncode == 2
    assert r.stderr.strip() == ("anonproxy verify: cannot connect to the proxy %s: "
                                "Connection refused" % dead)
