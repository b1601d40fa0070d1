"""Upstream chaining: exits chosen by country (username, header, routes,
listener), sticky sessions, strategies, failover, multi-hop chains, proxy
credentials, no DNS leak, `anonproxy upstreams`, and config errors.

The judge (`anonproxy judge --geoip build/test-geo.mmdb`) is the origin: its
remote_ip is the exit's address and its country that address's test country.
Exits (exits.py): DE#1 a second anonproxy on 127.0.0.2 (outgoing_address
127.0.0.2), DE#2 tinyproxy on 127.0.0.3, FR microsocks on 127.0.0.4 (and one
with credentials on 127.0.0.5), GB tinyproxy on 127.0.0.6; the proxy under
test listens on 127.0.0.1. Upstreams may start out down until their first
health check, so each test first polls (bounded) for a working exit, then
asserts on what follows.
"""
import json
import re
import socket
import threading

import pytest

from conftest import Acceptor, Conn, assert_error_response, canned, curl, free_port, get, read_response
from exits import (COUNTRY_OF, GEO_DB, Exits, answer, ask, basic, ensure_geo_db, header_names,
                   judge_url, kill, make_cert, proxy_auth, run_cli, tunnel, wait_ok)

DE = {"127.0.0.2", "127.0.0.3"}
FR = {"127.0.0.4"}
GB = {"127.0.0.6"}

HEALTH = {"interval": 1, "timeout": 2, "rise": 1, "fall": 1}


@pytest.fixture
def exits(tmp_path, request):
    ensure_geo_db()
    e = Exits(tmp_path)
    yield e
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        e.dump_logs()
    reports = e.stop_all()
    if reports:
        pytest.fail("sanitizer report:\n" + "\n".join(reports))


def chaining(upstreams=None, health=None, **extra):
    """Overrides for start_proxy: upstreams, the test GeoIP database, fast
    health checks."""
    cfg = {"geoip": str(GEO_DB), "health": dict(HEALTH, **(health or {})), "failover_tries": 3}
    if upstreams is not None:
        cfg["upstreams"] = upstreams
    cfg.update(extra)
    return cfg


def listeners(*countries, mode=None):
    """listen entries on fresh 127.0.0.1 ports, one per country (None: none)."""
    out = []
    for cc in countries:
        entry = {"address": "127.0.0.1:%d" % free_port()}
        if cc:
            entry["country"] = cc
        if mode:
            entry["mode"] = mode
        out.append(entry)
    return out


def port_of(entry):
    return int(entry["address"].rsplit(":", 1)[1])


class World:
    """The standard exits: judge, DE#1, DE#2, FR, GB."""

    def __init__(self, exits, gb=True, fr=True):
        self.judge = exits.judge()
        self.de1 = exits.anonproxy("127.0.0.2")
        self.de2 = exits.tinyproxy("127.0.0.3")
        self.ups = [
            {"url": "http://127.0.0.2:%d" % self.de1.port, "name": "de-anon"},
            {"url": "http://127.0.0.3:%d" % self.de2.port, "name": "de-tiny"},
        ]
        if fr:
            self.fr = exits.microsocks("127.0.0.4")
            self.ups.append({"url": "socks5://127.0.0.4:%d" % self.fr.port, "name": "fr-socks"})
        if gb:
            self.gb = exits.tinyproxy("127.0.0.6")
            self.ups.append({"url": "http://127.0.0.6:%d" % self.gb.port, "name": "gb-tiny"})


def via(how, port, judge, headers=(), host=None):
    """The judge's answer for a request made plain ("http") or inside a
    CONNECT tunnel ("connect"); the CONNECT carries the headers."""
    if how == "http":
        return answer(ask(port, judge, headers, host=host))
    r, inner = tunnel(port, host or judge.host, judge.port, headers)
    assert r.status == 200, r
    assert inner is not None
    return answer(inner)


def refused(how, port, judge, headers=(), host=None):
    """A request expected to get the proxy's own error: (status, body)."""
    if how == "http":
        r = ask(port, judge, headers, host=host)
        if r.status != 200:
            assert_error_response(r, r.status)
        return r.status, r.body
    r, inner = tunnel(port, host or judge.host, judge.port, headers)
    if r.status != 200:
        assert_error_response(r, r.status)
    return r.status, r.body


def ready(port, judge, cc=None, headers=(), host=None, timeout=20):
    """Polls until a request (asking for country cc) gets the judge's answer."""
    h = list(headers) + ([proxy_auth("probe-country-%s" % cc.lower())] if cc else [])
    return answer(wait_ok(lambda: ask(port, judge, h, host=host), timeout,
                          "an answer through an exit in %s" % (cc or "any country")))


def wait_all_seen(port, judge, want, headers=(), timeout=20):
    """Requests until every exit address in `want` has been used."""
    seen = set()

    def step():
        r = ask(port, judge, headers)
        if r.status == 200:
            seen.add(r.json()["remote_ip"])
        return r

    wait_ok(step, timeout, lambda: "requests through every one of %s (seen %s)"
            % (sorted(want), sorted(seen)), ok=lambda r: seen >= want)
    return seen


def assert_no_trace(ans, *secrets):
    blob = json.dumps(ans).lower()
    for s in secrets:
        assert s.lower() not in blob, "%r reached the judge: %s" % (s, blob)


# ------------------------------------------------------------------ 1. username


@pytest.mark.parametrize("how", ["http", "connect"])
def test_username_asks_for_the_exit_country(exits, start_proxy, how):
    w = World(exits)
    p = start_proxy(chaining(w.ups))
    for cc in ("de", "fr", "gb"):
        ready(p.port, w.judge, cc)
    for cc, ips in (("de", DE), ("fr", FR), ("gb", GB), ("de", DE), ("fr", FR)):
        for user in ("alice-country-%s" % cc, "bob-country-%s-session-x%s" % (cc, how)):
            ans = via(how, p.port, w.judge, [proxy_auth(user, "hunter2")])
            assert ans["remote_ip"] in ips, (user, ans)
            assert ans["country"] == cc.upper(), ans
            assert "proxy-authorization" not in header_names(ans), ans
            assert_no_trace(ans, user, "hunter2", basic(user, "hunter2").split()[1])


@pytest.mark.parametrize("how", ["http", "connect"])
def test_username_country_without_exit_is_502_naming_it(exits, start_proxy, how):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups))
    ready(p.port, w.judge, "de")
    for cc in ("gb", "jp"):
        status, body = refused(how, p.port, w.judge, [proxy_auth("alice-country-%s" % cc)])
        # Never a silent fallback to another country.
        assert status == 502, (cc, status, body)
        assert cc.upper().encode() in body, body


def test_curl_username_forms(exits, start_proxy):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups))
    ready(p.port, w.judge, "fr")
    url = judge_url(w.judge)
    runs = [
        ("-x", "http://user-country-fr:x@127.0.0.1:%d" % p.port),
        ("-x", p.url, "-U", "user-country-de-session-s1:x"),
        ("-p", "-x", p.url, "-U", "user-country-fr:x"),
        ("-p", "-x", "http://user-country-de:x@127.0.0.1:%d" % p.port),
    ]
    for args in runs:
        r = curl(*args, "-H", "Accept: application/json", url, timeout=30)
        assert r.returncode == 0, (args, r.stderr)
        ans = json.loads(r.stdout)
        cc = "fr" if "country-fr" in " ".join(args) else "de"
        assert ans["country"] == cc.upper(), (args, ans)
        assert ans["remote_ip"] in (FR if cc == "fr" else DE), (args, ans)
        assert "proxy-authorization" not in header_names(ans), ans


def test_each_request_on_a_connection_gets_its_own_exit(exits, start_proxy):
    """Keep-alive: the country is decided per request, not per connection."""
    w = World(exits)
    p = start_proxy(chaining(w.ups))
    for cc in ("de", "fr", "gb"):
        ready(p.port, w.judge, cc)
    plan = ["de", "fr", "de", "gb", "fr", "fr"]
    got = []
    c = Conn(p.port, timeout=15)
    try:
        for cc in plan:
            head = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
                    "%s\r\n\r\n" % (judge_url(w.judge), w.judge.port,
                                    proxy_auth("u-country-" + cc)))
            try:
                c.send(head.encode())
                r = read_response(c)
            except (OSError, Exception):
                # The proxy may close between requests; a new connection then.
                c.close()
                c = Conn(p.port, timeout=15)
                c.send(head.encode())
                r = read_response(c)
            got.append((cc, answer(r)["remote_ip"]))
            if (r.header("Connection") or "").lower() == "close":
                c.close()
                c = Conn(p.port, timeout=15)
    finally:
        c.close()
    want = {"de": DE, "fr": FR, "gb": GB}
    assert all(ip in want[cc] for cc, ip in got), got


def test_country_asked_without_upstreams(start_proxy, exits):
    """No upstreams: direct, but a country asked for is still never ignored,
    and neither header nor credentials reach the origin."""
    j = exits.judge()
    p = start_proxy(chaining(None, country_header=True, mode="transparent"))
    ans = via("http", p.port, j, [proxy_auth("alice", "pw")])
    assert ans["remote_ip"] == "127.0.0.1", ans
    assert "proxy-authorization" not in header_names(ans), ans
    for how in ("http", "connect"):
        for h in ([proxy_auth("alice-country-de")], ["X-Anonproxy-Country: DE"]):
            status, body = refused(how, p.port, j, h)
            assert status == 502 and b"DE" in body, (how, h, status, body)
    # country_header off: the header is ignored, and still not forwarded.
    p2 = start_proxy(chaining(None, mode="transparent"))
    ans = via("http", p2.port, j, ["X-Anonproxy-Country: DE"])
    assert ans["remote_ip"] == "127.0.0.1", ans
    assert "x-anonproxy-country" not in header_names(ans), ans


# ------------------------------------------------------------------ 2. header


@pytest.mark.parametrize("mode", ["elite", "transparent"])
@pytest.mark.parametrize("how", ["http", "connect"])
def test_country_header_honoured_and_never_forwarded(exits, start_proxy, mode, how):
    w = World(exits)
    p = start_proxy(chaining(w.ups, country_header=True, mode=mode))
    for cc in ("FR", "DE", "GB"):
        ready(p.port, w.judge, headers=["X-Anonproxy-Country: %s" % cc])
    for cc, ips in (("FR", FR), ("DE", DE), ("GB", GB), ("FR", FR)):
        ans = via(how, p.port, w.judge, ["X-Anonproxy-Country: %s" % cc])
        assert ans["remote_ip"] in ips, (cc, ans)
        assert ans["country"] == cc, ans
        assert "x-anonproxy-country" not in header_names(ans), ans
    status, body = refused(how, p.port, w.judge, ["X-Anonproxy-Country: JP"])
    assert status == 502 and b"JP" in body, (status, body)


@pytest.mark.parametrize("mode", ["elite", "transparent"])
@pytest.mark.parametrize("how", ["http", "connect"])
def test_country_header_ignored_when_off_and_still_removed(exits, start_proxy, mode, how):
    w = World(exits, gb=False)
    listen = listeners("DE", mode=mode)
    p = start_proxy(chaining(w.ups, listen=listen))  # country_header defaults to false
    ready(p.port, w.judge)
    for _ in range(6):
        ans = via(how, p.port, w.judge, ["X-Anonproxy-Country: FR"])
        assert ans["remote_ip"] in DE, ans  # the listener's country, not the header's
        assert "x-anonproxy-country" not in header_names(ans), ans


# ------------------------------------------------------------------ 3. routes


def test_route_precedence(exits, start_proxy):
    """username > route > listener country."""
    w = World(exits)
    judge2 = exits.judge("127.0.0.7")
    listen = listeners("FR")
    p = start_proxy(chaining(w.ups, listen=listen, routes=[
        {"match": "127.0.0.1/32", "country": "GB"},
    ]))
    ready(p.port, w.judge)
    ready(p.port, judge2)
    for how in ("http", "connect"):
        for _ in range(3):
            # The route (127.0.0.1/32 -> GB) wins over the listener (FR).
            ans = via(how, p.port, w.judge)
            assert ans["remote_ip"] in GB, ans
            # No route matches 127.0.0.7: the listener's country.
            ans = via(how, p.port, judge2)
            assert ans["remote_ip"] in FR, ans
            # The username wins over the route.
            ans = via(how, p.port, w.judge, [proxy_auth("u-country-de")])
            assert ans["remote_ip"] in DE, ans


def blocked(p, host, headers=()):
    """Plain and CONNECT requests to host: both must get the proxy's 403."""
    r = get(p.port, "http://%s/" % host, list(headers))
    assert_error_response(r, 403)
    r, inner = tunnel(p.port, host, 443, headers)
    assert_error_response(r, 403)
    assert inner is None


def test_block_route_wins_over_the_username(exits, start_proxy):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups, listen=listeners("FR"), country_header=True, routes=[
        {"match": "blocked.test", "action": "block"},
        {"match": "*.blocked2.test", "action": "block"},
        {"match": "10.0.0.0/8", "action": "block"},
    ]))
    ready(p.port, w.judge)
    for host in ("blocked.test", "www.blocked2.test", "blocked2.test", "10.1.2.3"):
        blocked(p, host)
        blocked(p, host, [proxy_auth("u-country-de")])
        blocked(p, host, ["X-Anonproxy-Country: DE"])
    # Not blocked: only those names.
    assert via("http", p.port, w.judge)["remote_ip"] in FR


def test_block_route_wins_even_after_a_matching_country_route(exits, start_proxy):
    """"A block route always wins": also when an earlier route matches too."""
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups, routes=[
        {"match": "*.test", "country": "DE"},
        {"match": "blocked.test", "action": "block"},
    ]))
    ready(p.port, w.judge)
    blocked(p, "blocked.test")
    blocked(p, "blocked.test", [proxy_auth("u-country-fr")])


# Spellings of 127.0.0.1 that inet_pton(3) refuses but the dialer takes as
# that address (libevent reads each part as a decimal "%u": http/target.h).
LOOPBACK_SPELLINGS = ("0127.0.0.1", "127.0.0.01", "0000127.000.000.001", "127.-0.0.1",
                      "4294967423.0.0.1")


def test_block_route_covers_every_spelling_of_an_address(start_proxy, raw_origin):
    """Routing matches the address the dialer connects to: another spelling
    of a blocked address (leading zeros above all) is blocked too, never
    forwarded."""
    srv = raw_origin(canned(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    # Without routes, each spelling really is dialled as 127.0.0.1.
    p = start_proxy()
    for host in LOOPBACK_SPELLINGS:
        r = get(p.port, "http://%s:%d/x" % (host, srv.port))
        assert r.status == 200, (host, r)
    forwarded = len(srv.requests)
    assert forwarded == len(LOOPBACK_SPELLINGS)
    p = start_proxy({"routes": [
        {"match": "127.0.0.1/32", "action": "block"},
        {"match": "127.0.0.2", "action": "block"},
    ]})
    for host in LOOPBACK_SPELLINGS + ("[::ffff:0127.0.0.1]", "0127.0.0.2", "[::ffff:127.0.0.2]"):
        blocked(p, host)
        r = get(p.port, "http://%s:%d/x" % (host, srv.port))
        assert_error_response(r, 403)
    assert len(srv.requests) == forwarded


def test_block_name_route_covers_the_trailing_dot(start_proxy):
    """"www.tracker.example." is "www.tracker.example" to DNS: a name route
    blocks both spellings, whichever one it is written in."""
    p = start_proxy({"routes": [
        {"match": "*.tracker.example", "action": "block"},
        {"match": "exact.example.", "action": "block"},
    ]})
    for host in ("www.tracker.example.", "tracker.example.", "exact.example", "exact.example."):
        blocked(p, host)


def test_route_direct(exits, start_proxy):
    j = exits.judge()
    judge2 = exits.judge("127.0.0.7")
    de2 = exits.tinyproxy("127.0.0.3")
    p = start_proxy(chaining([{"url": "http://127.0.0.3:%d" % de2.port}],
                             outgoing_address="127.0.0.1",
                             routes=[{"match": "127.0.0.7/32", "action": "direct"},
                                     {"match": "10.0.0.0/8", "action": "direct"}]))
    ready(p.port, j)
    for how in ("http", "connect"):
        ans = via(how, p.port, judge2)
        assert ans["remote_ip"] == "127.0.0.1" and ans["country"] == "US", ans
        # Upstreams exist and no route matches: through one of them.
        ans = via(how, p.port, j)
        assert ans["remote_ip"] == "127.0.0.3", ans
        # A username asking for a country wins over a direct route.
        ans = via(how, p.port, judge2, [proxy_auth("u-country-de")])
        assert ans["remote_ip"] == "127.0.0.3", ans


def test_route_by_name_goes_to_exit_unresolved(exits, start_proxy, tmp_path):
    name = "judge.gb.test"
    j = exits.judge()
    gb = exits.mini_socks("127.0.0.6", names={name: "127.0.0.1"})
    de2 = exits.tinyproxy("127.0.0.3")
    dns = exits.dns_recorder()
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    p = start_proxy(chaining(
        [{"url": gb.url(), "name": "gb"}, {"url": "http://127.0.0.3:%d" % de2.port, "name": "de"}],
        health={"judge_url": judge_url(j)},
        dns={"resolv_conf": str(dns.resolv_conf(tmp_path / "resolv.conf")), "hosts": str(hosts)},
        routes=[{"match": "*.gb.test", "country": "GB"}]))
    ready(p.port, j, host=name)
    for how in ("http", "connect"):
        for _ in range(3):
            ans = via(how, p.port, j, host=name)
            assert ans["remote_ip"] == "127.0.0.6" and ans["country"] == "GB", ans
            assert ["Host", "%s:%d" % (name, j.port)] in ans["headers"], ans
    seen = gb.requests_for(name)
    assert len(seen) >= 6, gb.requests
    assert all(r["atyp"] == 3 and r["port"] == j.port for r in seen), seen
    assert dns.packets == [], "the proxy sent DNS queries: %r" % dns.packets


def test_route_mode(exits, start_proxy):
    """A route's mode replaces the listener's policy for its requests."""
    j = exits.judge()
    judge2 = exits.judge("127.0.0.7")
    fr = exits.microsocks("127.0.0.4")
    p = start_proxy(chaining([{"url": "socks5://127.0.0.4:%d" % fr.port}], mode="elite",
                             routes=[{"match": "127.0.0.1/32", "country": "FR",
                                      "mode": "anonymous"}]))
    ready(p.port, j)
    ans = answer(ask(p.port, j))
    assert ans["remote_ip"] == "127.0.0.4", ans
    assert ans["verdict"] == "anonymous" and "via" in header_names(ans), ans
    ans = answer(ask(p.port, judge2, [proxy_auth("u-country-fr")]))
    assert ans["remote_ip"] == "127.0.0.4", ans
    assert ans["verdict"] == "elite" and "via" not in header_names(ans), ans


# ------------------------------------------------------------------ 4. listeners


def test_listener_country(exits, start_proxy):
    w = World(exits, gb=False)
    listen = listeners("FR", "DE", "JP")
    a, b, c = (port_of(x) for x in listen)
    start_proxy(chaining(w.ups, listen=listen))
    ready(a, w.judge)
    ready(b, w.judge)
    for how in ("http", "connect"):
        for _ in range(3):
            assert via(how, a, w.judge)["remote_ip"] in FR
            assert via(how, b, w.judge)["remote_ip"] in DE
            # The username wins over the listener.
            assert via(how, a, w.judge, [proxy_auth("x-country-de")])["remote_ip"] in DE
        status, body = refused(how, c, w.judge)
        assert status == 502 and b"JP" in body, (status, body)


# ------------------------------------------------------------------ 5. sticky, strategies


def test_round_robin_spreads_without_session(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, strategy="round_robin"))
    ready(p.port, w.judge, "de")
    for how in ("http", "connect"):
        seen = [via(how, p.port, w.judge, [proxy_auth("u-country-de")])["remote_ip"]
                for _ in range(10)]
        assert set(seen) == DE, seen


def check_sessions(p, judge):
    # A session keeps its exit, plain and through CONNECT, whoever the user is.
    firsts = set()
    for how in ("http", "connect"):
        ips = [via(how, p.port, judge, [proxy_auth("u-country-de-session-s1")])["remote_ip"]
               for _ in range(10)]
        ips.append(via(how, p.port, judge, [proxy_auth("other-country-de-session-s1")])["remote_ip"])
        assert len(set(ips)) == 1 and ips[0] in DE, (how, ips)
        firsts.add(ips[0])
    assert len(firsts) == 1, firsts
    # Different sessions do not all share one exit.
    exits_of = {}
    for i in range(20):
        user = "u-country-de-session-abc%d" % i
        a = answer(ask(p.port, judge, [proxy_auth(user)]))["remote_ip"]
        b = answer(ask(p.port, judge, [proxy_auth(user)]))["remote_ip"]
        assert a == b, (user, a, b)
        exits_of[user] = a
    assert set(exits_of.values()) == DE, exits_of


@pytest.mark.parametrize("strategy", ["round_robin", "sticky", "random"])
def test_session_in_username_sticks(exits, start_proxy, strategy):
    """"-session-ID" in the username pins the exit, whatever the strategy."""
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, strategy=strategy))
    ready(p.port, w.judge, "de")
    check_sessions(p, w.judge)


def test_strategy_sticky_by_client_address(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, strategy="sticky"))
    ready(p.port, w.judge, "de")
    ips = [via(how, p.port, w.judge)["remote_ip"] for how in ("http", "connect") * 5]
    assert len(set(ips)) == 1 and ips[0] in DE, ips


@pytest.mark.parametrize("strategy", ["random", "least_latency"])
def test_other_strategies_stay_in_country(exits, start_proxy, strategy):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups, strategy=strategy))
    ready(p.port, w.judge, "de")
    for _ in range(8):
        assert via("http", p.port, w.judge, [proxy_auth("u-country-de")])["remote_ip"] in DE
    if strategy == "random":
        wait_all_seen(p.port, w.judge, DE, [proxy_auth("u-country-de")])


def test_weights(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    w.ups[0]["weight"] = 3   # de-anon, 127.0.0.2
    w.ups[1]["weight"] = 1   # de-tiny, 127.0.0.3
    p = start_proxy(chaining(w.ups, strategy="round_robin"))
    wait_all_seen(p.port, w.judge, DE)
    ips = [answer(ask(p.port, w.judge))["remote_ip"] for _ in range(40)]
    n2, n3 = ips.count("127.0.0.2"), ips.count("127.0.0.3")
    assert n3 >= 1 and n2 >= 2 * n3, (n2, n3)


# ------------------------------------------------------------------ 6. failover


def test_failover_and_no_healthy_exit(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    # Checks every 3 s: right after a kill the proxy has not noticed yet, so
    # the requests below meet the dead exit themselves.
    p = start_proxy(chaining(w.ups, strategy="round_robin", failover_tries=3,
                             health={"interval": 3}))
    wait_all_seen(p.port, w.judge, DE, [proxy_auth("u-country-de")])

    kill(w.de1)
    for i in range(8):
        how = ("http", "connect")[i % 2]
        ans = via(how, p.port, w.judge, [proxy_auth("u-country-de")])
        assert ans["remote_ip"] == "127.0.0.3", ans

    kill(w.de2)
    r = ask(p.port, w.judge, [proxy_auth("u-country-de")])
    c, inner = tunnel(p.port, "127.0.0.1", w.judge.port, [proxy_auth("u-country-de")])
    assert_error_response(r, 502)
    assert c.status == 502 and inner is None, c
    assert b"DE" in r.body and b"DE" in c.body, (r.body, c.body)
    # Now that both are marked down: still 502 naming the country.
    r = ask(p.port, w.judge, [proxy_auth("u-country-de")])
    assert_error_response(r, 502)
    assert b"DE" in r.body, r.body

    r = run_cli("upstreams", "-c", p.cfg_path, "--json")
    assert r.returncode != 0, (r.stdout, r.stderr)  # none is up
    entries = {e["name"]: e for e in json.loads(r.stdout)}
    assert set(entries) == {"de-anon", "de-tiny"}, entries
    assert [entries[n]["health"] for n in ("de-anon", "de-tiny")] == ["down", "down"], entries

    # DE#1 comes back on its port: once a check passes, it is used again.
    exits.anonproxy("127.0.0.2", port=w.de1.port)
    ans = ready(p.port, w.judge, "de", timeout=20)
    assert ans["remote_ip"] == "127.0.0.2", ans


class _Slammer(Acceptor):
    """Accepts and closes at once: the connect works, the handshake fails."""

    def __init__(self, host):
        super().__init__(host, backlog=64)
        self.start()

    def accepted(self, s):
        s.close()

    def close(self):
        self.stop_accepting()


@pytest.mark.parametrize("scheme", ["socks5", "http"])
def test_failover_on_handshake_failure(exits, start_proxy, scheme):
    j = exits.judge()
    de2 = exits.tinyproxy("127.0.0.3")
    slam = _Slammer("127.0.0.2")
    exits.servers.append(slam)
    p = start_proxy(chaining([{"url": "%s://127.0.0.2:%d" % (scheme, slam.port), "name": "broken"},
                              {"url": "http://127.0.0.3:%d" % de2.port, "name": "ok"}],
                             strategy="round_robin", health={"interval": 30}))
    for i in range(8):
        how = ("http", "connect")[i % 2]
        ans = via(how, p.port, j, [proxy_auth("u-country-de")]) if i else \
            ready(p.port, j, "de", timeout=10)
        assert ans["remote_ip"] == "127.0.0.3", ans


def test_sticky_session_moves_when_its_exit_dies(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, strategy="sticky", health={"interval": 30}))
    ready(p.port, w.judge, "de")
    # Find a session on each exit.
    on = {}
    for i in range(40):
        user = "u-country-de-session-k%d" % i
        on.setdefault(via("http", p.port, w.judge, [proxy_auth(user)])["remote_ip"], user)
        if len(on) == 2:
            break
    assert set(on) == DE, on
    kill(w.de1)
    # The session that was on DE#1 fails over to DE#2 with no client-visible
    # error; the other one stays where it was.
    for how in ("http", "connect", "http"):
        assert via(how, p.port, w.judge, [proxy_auth(on["127.0.0.2"])])["remote_ip"] == "127.0.0.3"
        assert via(how, p.port, w.judge, [proxy_auth(on["127.0.0.3"])])["remote_ip"] == "127.0.0.3"


def test_failover_never_leaves_the_country(exits, start_proxy):
    """A dead DE exit with a live FR one: a request for DE gets 502, never FR."""
    j = exits.judge()
    de1 = exits.anonproxy("127.0.0.2")
    fr = exits.microsocks("127.0.0.4")
    p = start_proxy(chaining([{"url": "http://127.0.0.2:%d" % de1.port, "name": "de"},
                              {"url": "socks5://127.0.0.4:%d" % fr.port, "name": "fr"}],
                             listen=listeners("DE"), health={"interval": 30}))
    ready(p.port, j, "de")
    ready(p.port, j, "fr")
    kill(de1)
    for headers in ([proxy_auth("u-country-de")], []):   # username, listener country
        for how in ("http", "connect"):
            status, body = refused(how, p.port, j, headers)
            assert status == 502, (how, headers, status, body)
            assert b"DE" in body, (how, headers, body)
    assert via("http", p.port, j, [proxy_auth("u-country-fr")])["remote_ip"] in FR


def test_failover_tries_one_means_no_retry(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, strategy="round_robin", failover_tries=1,
                             health={"interval": 30}))
    wait_all_seen(p.port, w.judge, DE)
    kill(w.de1)
    # Round robin alternates: one of the next two picks is the dead exit, and
    # with a single try that request fails...
    first = [ask(p.port, w.judge).status for _ in range(2)]
    assert sorted(first) == [200, 502], first
    # ...and marks it down: the rest go to the live one.
    for _ in range(4):
        assert via("http", p.port, w.judge)["remote_ip"] == "127.0.0.3"


def test_unreachable_destination_does_not_mark_the_exit_down(exits, start_proxy):
    j = exits.judge()
    ex = exits.mini_socks("127.0.0.5", names={})
    p = start_proxy(chaining([{"url": ex.url(), "name": "only"}],
                             health={"interval": 30, "judge_url": judge_url(j)}))
    ready(p.port, j)
    for how in ("http", "connect"):
        # The exit answers "host unreachable" for a name it does not know.
        status, body = refused(how, p.port, j, host="nowhere.invalid")
        assert status in (502, 504), (how, status, body)
        assert ex.requests_for("nowhere.invalid"), ex.requests
        # The exit itself is fine: the next request goes through it at once.
        assert via(how, p.port, j)["remote_ip"] == "127.0.0.5"


# ------------------------------------------------------------------ 7. no DNS leak

NAME = "judge.invalid-name.test"


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4a", "http", "chain"])
def test_destination_name_reaches_the_exit_unresolved(exits, start_proxy, tmp_path, scheme):
    j = exits.judge()
    up = {"name": "exit"}
    if scheme in ("http", "chain"):
        srv = exits.mini_http("127.0.0.5", names={NAME: "127.0.0.1"})
        up["url"] = srv.url()
        if scheme == "chain":
            # socks5 -> http: the first hop is only ever asked for the second.
            first = exits.mini_socks("127.0.0.4")
            up = {"name": "exit", "chain": [first.url("socks5"), srv.url()]}
    else:
        srv = exits.mini_socks("127.0.0.5", names={NAME: "127.0.0.1"})
        up["url"] = srv.url(scheme)
    dns = exits.dns_recorder()
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    p = start_proxy(chaining(
        [up], health={"judge_url": judge_url(j)},
        dns={"resolv_conf": str(dns.resolv_conf(tmp_path / "resolv.conf")), "hosts": str(hosts)}),
        extra_args=("-d",))
    ans = ready(p.port, j, host=NAME)
    assert ans["remote_ip"] == "127.0.0.5", ans
    assert ["Host", "%s:%d" % (NAME, j.port)] in ans["headers"], ans
    if scheme not in ("http", "chain"):
        # Inside a SOCKS tunnel the origin gets origin-form, as from a browser.
        assert ans["request_line"] == "GET / HTTP/1.1", ans
    ans = via("connect", p.port, j, host=NAME)
    assert ans["remote_ip"] == "127.0.0.5", ans

    if scheme == "chain":
        assert first.requests, "the first hop was not used"
        assert all((r["host"], r["port"]) == ("127.0.0.5", srv.port) for r in first.requests), \
            first.requests
    if scheme in ("http", "chain"):
        lines = [r["line"] for r in srv.requests_for(NAME)]
        assert "GET http://%s:%d/ HTTP/1.1" % (NAME, j.port) in lines, lines
        assert "CONNECT %s:%d HTTP/1.1" % (NAME, j.port) in lines, lines
    else:
        seen = srv.requests_for(NAME)
        assert len(seen) >= 2, srv.requests
        for r in seen:
            assert r["port"] == j.port, r
            if scheme == "socks4a":
                assert r["version"] == 4 and r["is_4a"], r   # DSTIP 0.0.0.x + the name
            else:
                assert r["version"] == 5 and r["atyp"] == 3, r   # ATYP 3: domain name
    assert dns.packets == [], "the proxy sent DNS queries: %r" % dns.packets
    leaks = [line for line in p.log().splitlines()
             if re.search(r"\bresolv(e|es|ed|ing)\b|getaddrinfo", line, re.I)
             or (NAME in line and re.search(r"dns|lookup", line, re.I))]
    assert leaks == [], leaks


# ------------------------------------------------------------------ 8. chains


@pytest.mark.parametrize("variant", ["socks5-http", "mini-socks5-http", "three-hops", "http-socks5"])
def test_chain_exits_through_the_last_hop(exits, start_proxy, variant):
    j = exits.judge()
    first = None
    if variant == "socks5-http":
        fr = exits.microsocks("127.0.0.4")
        de1 = exits.anonproxy("127.0.0.2")
        chain = ["socks5://127.0.0.4:%d" % fr.port, "http://127.0.0.2:%d" % de1.port]
        exit_ip, next_hop = "127.0.0.2", None
    elif variant == "mini-socks5-http":
        first = exits.mini_socks("127.0.0.5")
        de2 = exits.tinyproxy("127.0.0.3")
        chain = [first.url("socks5"), "http://127.0.0.3:%d" % de2.port]
        exit_ip, next_hop = "127.0.0.3", ("127.0.0.3", de2.port)
    elif variant == "three-hops":
        first = exits.mini_socks("127.0.0.5")
        fr = exits.microsocks("127.0.0.4")
        de1 = exits.anonproxy("127.0.0.2")
        chain = [first.url("socks4a"), "socks5://127.0.0.4:%d" % fr.port,
                 "http://127.0.0.2:%d" % de1.port]
        exit_ip, next_hop = "127.0.0.2", ("127.0.0.4", fr.port)
    else:
        first = exits.mini_http("127.0.0.5")
        fr = exits.microsocks("127.0.0.4")
        chain = [first.url(), "socks5://127.0.0.4:%d" % fr.port]
        exit_ip, next_hop = "127.0.0.4", ("127.0.0.4", fr.port)
    p = start_proxy(chaining([{"chain": chain, "name": "multi-hop"}],
                             health={"judge_url": judge_url(j)}))
    ready(p.port, j)
    for how in ("http", "connect", "http"):
        ans = via(how, p.port, j)
        assert ans["remote_ip"] == exit_ip and ans["country"] == COUNTRY_OF[exit_ip], ans
        assert "proxy-authorization" not in header_names(ans), ans
    if next_hop and variant == "http-socks5":
        lines = [r["line"] for r in first.requests]
        assert "CONNECT %s:%d HTTP/1.1" % next_hop in lines, lines
        # Nothing but tunnels to the next hop: the first hop never sees the destination.
        assert all(line.startswith("CONNECT %s:%d " % next_hop) for line in lines), lines
    elif next_hop:
        assert first.requests, "the first hop was not used"
        assert all((r["host"], r["port"]) == next_hop for r in first.requests), first.requests


@pytest.mark.parametrize("measured", [True, False], ids=["exit-ip", "host"])
def test_chain_country_comes_from_its_exit(exits, start_proxy, measured):
    """A chain FR (first hop) -> DE (exit): with a judge the measured exit
    IP decides (DE); without, the first hop's address (FR)."""
    j = exits.judge()
    fr = exits.microsocks("127.0.0.4")
    de1 = exits.anonproxy("127.0.0.2")
    health = {"judge_url": judge_url(j)} if measured else {}
    p = start_proxy(chaining([{"chain": ["socks5://127.0.0.4:%d" % fr.port,
                                         "http://127.0.0.2:%d" % de1.port]}], health=health))
    good, bad = ("de", "fr") if measured else ("fr", "de")
    ans = ready(p.port, j, good)
    assert ans["remote_ip"] == "127.0.0.2", ans
    status, body = refused("http", p.port, j, [proxy_auth("u-country-%s" % bad)])
    assert status == 502 and bad.upper().encode() in body, (status, body)


# ------------------------------------------------------------------ 9. credentials


@pytest.mark.parametrize("mode", ["elite", "transparent"])
def test_http_upstream_credentials_never_reach_the_origin(exits, start_proxy, mode):
    j = exits.judge()
    de2 = exits.tinyproxy("127.0.0.3", auth=("chainuser", "s3cretpass"))
    p = start_proxy(chaining([{"url": "http://chainuser:s3cretpass@127.0.0.3:%d" % de2.port}],
                             mode=mode))
    client = proxy_auth("client-country-de", "clientpw")
    ready(p.port, j, headers=[client])
    secrets = ("chainuser", "s3cretpass", basic("chainuser", "s3cretpass").split()[1],
               "client-country", "clientpw", client.split()[-1], "proxy-authorization")
    for how in ("http", "connect", "http"):
        ans = via(how, p.port, j, [client])
        assert ans["remote_ip"] == "127.0.0.3", ans
        assert_no_trace(ans, *secrets)
    ans = via("http", p.port, j)
    assert ans["remote_ip"] == "127.0.0.3", ans
    assert_no_trace(ans, *secrets)


def test_http_upstream_gets_its_own_credentials_only(exits, start_proxy):
    j = exits.judge()
    up = exits.mini_http("127.0.0.5", auth=("chainuser", "s3cretpass"))
    p = start_proxy(chaining([{"url": up.url(("chainuser", "s3cretpass")), "name": "fr-http"}],
                             country_header=True, health={"judge_url": judge_url(j)}))
    ready(p.port, j)
    client = proxy_auth("client-country-fr", "clientpw")
    for how in ("http", "connect"):
        ans = via(how, p.port, j, [client, "X-Anonproxy-Country: FR"])
        assert ans["remote_ip"] == "127.0.0.5", ans
        assert_no_trace(ans, "chainuser", "s3cretpass", "clientpw", "x-anonproxy")
    with up.lock:
        reqs = list(up.requests)
    assert reqs
    for r in reqs:
        auths = [v for k, v in r["headers"] if k.lower() == "proxy-authorization"]
        assert auths == [basic("chainuser", "s3cretpass")], r
        assert not [k for k, _ in r["headers"] if k.lower() == "x-anonproxy-country"], r


def test_socks5_credentials(exits, start_proxy):
    j = exits.judge()
    ms = exits.microsocks("127.0.0.5", auth=("chainuser", "s3cretpass"))
    mini = exits.mini_socks("127.0.0.4", user="chainuser", password="s3cretpass")
    p = start_proxy(chaining([
        {"url": "socks5://chainuser:s3cretpass@127.0.0.5:%d" % ms.port, "name": "ms",
         "country": "FR"},
        {"url": mini.url("socks5", ("chainuser", "s3cretpass")), "name": "mini", "country": "JP"},
    ], health={"judge_url": judge_url(j)}))
    for cc, ip in (("fr", "127.0.0.5"), ("jp", "127.0.0.4")):
        ready(p.port, j, cc)
        for how in ("http", "connect"):
            ans = via(how, p.port, j, [proxy_auth("u-country-%s" % cc)])
            assert ans["remote_ip"] == ip, ans
            assert "proxy-authorization" not in header_names(ans), ans
            assert_no_trace(ans, "chainuser", "s3cretpass")
    with mini.lock:
        reqs = [r for r in mini.requests if r["host"] == "127.0.0.1" and r["port"] == j.port]
    assert reqs and all(r["user"] == "chainuser" for r in reqs), mini.requests


def test_socks5_wrong_password_means_no_exit(exits, start_proxy):
    j = exits.judge()
    ms = exits.microsocks("127.0.0.5", auth=("chainuser", "s3cretpass"))
    p = start_proxy(chaining([{"url": "socks5://chainuser:wrong@127.0.0.5:%d" % ms.port}]))

    for _ in range(3):
        r = ask(p.port, j, [proxy_auth("u-country-fr")])
        assert_error_response(r, 502)
    # Once a check has failed, the answer names the country without an exit.
    r = wait_ok(lambda: ask(p.port, j, [proxy_auth("u-country-fr")]), 15, "a 502 naming FR",
                ok=lambda r: r.status != 200 and b"FR" in r.body)
    assert_error_response(r, 502)


def test_https_upstream_with_ca_file(exits, start_proxy, tmp_path):
    j = exits.judge()
    cert, key = make_cert(tmp_path, "127.0.0.5")
    up = exits.mini_http("127.0.0.5", tls=(cert, key))
    p = start_proxy(chaining([{"url": up.url(), "ca_file": str(cert), "name": "tls"}],
                             health={"judge_url": judge_url(j)}))
    ready(p.port, j)
    for how in ("http", "connect"):
        assert via(how, p.port, j)["remote_ip"] == "127.0.0.5"
    lines = [r["line"] for r in up.requests]
    assert "GET %s HTTP/1.1" % judge_url(j) in lines, lines
    assert "CONNECT 127.0.0.1:%d HTTP/1.1" % j.port in lines, lines


def test_https_upstream_untrusted_certificate_is_not_used(exits, start_proxy, tmp_path):
    j = exits.judge()
    cert, key = make_cert(tmp_path, "127.0.0.5")
    up = exits.mini_http("127.0.0.5", tls=(cert, key))
    p = start_proxy(chaining([{"url": up.url(), "name": "tls"}],  # no ca_file
                             health={"judge_url": judge_url(j)}))
    # Trusted, but issued for another address: the name check fails.
    other = exits.mini_http("127.0.0.4", tls=(cert, key))
    p2 = start_proxy(chaining([{"url": other.url(), "ca_file": str(cert), "name": "mismatch"}],
                              health={"judge_url": judge_url(j)}))
    for how in ("http", "connect", "http"):
        for proxy in (p, p2):
            status, body = refused(how, proxy.port, j)
            assert status == 502, (how, status, body)
    assert up.requests == [], "a request went to a proxy whose certificate is not trusted"
    assert other.requests == [], "a request went to a proxy whose certificate names another host"


# ------------------------------------------------------------------ upstreams_file


def test_upstreams_file(exits, start_proxy, tmp_path):
    j = exits.judge()
    fr = exits.microsocks("127.0.0.4")
    de2 = exits.tinyproxy("127.0.0.3")
    f = tmp_path / "proxies.txt"
    gb = exits.tinyproxy("127.0.0.6")
    f.write_text("# exits bought somewhere\n\nsocks5://127.0.0.4:%d\n# the DE one\n"
                 "http://127.0.0.3:%d\n" % (fr.port, de2.port))
    p = start_proxy(chaining([{"url": "http://127.0.0.6:%d" % gb.port, "name": "gb"}],
                             upstreams_file=str(f)))
    for cc, ips in (("fr", FR), ("de", {"127.0.0.3"}), ("gb", GB)):
        ready(p.port, j, cc)
        for how in ("http", "connect"):
            assert via(how, p.port, j, [proxy_auth("u-country-" + cc)])["remote_ip"] in ips


def test_configured_country_overrides_geoip(exits, start_proxy):
    j = exits.judge()
    de2 = exits.tinyproxy("127.0.0.3")
    p = start_proxy(chaining([{"url": "http://127.0.0.3:%d" % de2.port, "country": "JP"}],
                             health={"judge_url": judge_url(j)}))
    assert ready(p.port, j, "jp")["remote_ip"] == "127.0.0.3"
    status, body = refused("http", p.port, j, [proxy_auth("u-country-de")])
    assert status == 502 and b"DE" in body, (status, body)


# ------------------------------------------------------------------ 10. upstreams command


@pytest.mark.parametrize("measured", [True, False], ids=["with-judge", "without-judge"])
def test_upstreams_command(exits, tmp_path, measured):
    j = exits.judge()
    de2 = exits.tinyproxy("127.0.0.3")
    fr = exits.microsocks("127.0.0.4")
    de1 = exits.anonproxy("127.0.0.2")
    sec = exits.microsocks("127.0.0.5", auth=("chainuser", "s3cretpass"))
    dead_gb = free_port()
    dead_unknown = free_port()
    secret_url = "socks5://127.0.0.5:%d" % sec.port
    cfg = {
        "listen": [{"address": "127.0.0.1:%d" % free_port()}],
        "geoip": str(GEO_DB),
        "health": dict(HEALTH, **({"judge_url": judge_url(j)} if measured else {})),
        "upstreams": [
            {"url": "http://127.0.0.3:%d" % de2.port, "name": "pinned-jp", "country": "JP"},
            {"url": "socks5://127.0.0.4:%d" % fr.port, "name": "fr-socks"},
            {"chain": ["socks5://127.0.0.4:%d" % fr.port, "http://127.0.0.2:%d" % de1.port],
             "name": "chain-de"},
            {"url": "http://127.0.0.6:%d" % dead_gb, "name": "dead-gb"},
            {"url": "socks5://127.0.1.5:%d" % dead_unknown, "name": "dead-unknown"},
            {"url": "socks5://chainuser:s3cretpass@127.0.0.5:%d" % sec.port},
        ],
    }
    path = tmp_path / "up.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("upstreams", "-c", path, "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "s3cretpass" not in r.stdout + r.stderr and "chainuser" not in r.stdout + r.stderr
    entries = json.loads(r.stdout)
    assert isinstance(entries, list), entries
    by_name = {e["name"]: e for e in entries}
    # The default name is the URL without credentials.
    assert set(by_name) == {"pinned-jp", "fr-socks", "chain-de", "dead-gb", "dead-unknown",
                            secret_url}, by_name
    keys = {"name", "url", "country", "source", "health", "latency_ms", "exit_ip", "verdict"}

    def check(name, url, country, source, up, exit_ip=None):
        e = by_name[name]
        assert keys <= set(e), e
        assert e["url"] == url, e
        assert e["health"] == ("up" if up else "down"), e
        assert e["country"] == country, e
        assert e["source"] == source, e
        assert e["exit_ip"] == exit_ip, e
        if exit_ip:
            assert e["verdict"] in ("elite", "anonymous", "transparent"), e
        if up:
            assert isinstance(e["latency_ms"], int) and e["latency_ms"] >= 0, e
        else:
            assert e["latency_ms"] is None, e

    check("pinned-jp", "http://127.0.0.3:%d" % de2.port, "JP", "configured", True,
          "127.0.0.3" if measured else None)
    check("fr-socks", "socks5://127.0.0.4:%d" % fr.port, "FR", "exit-ip" if measured else "host",
          True, "127.0.0.4" if measured else None)
    check("chain-de", by_name["chain-de"]["url"], "DE" if measured else "FR",
          "exit-ip" if measured else "host", True, "127.0.0.2" if measured else None)
    assert "127.0.0.4:%d" % fr.port in by_name["chain-de"]["url"], by_name["chain-de"]
    assert "127.0.0.2:%d" % de1.port in by_name["chain-de"]["url"], by_name["chain-de"]
    check("dead-gb", "http://127.0.0.6:%d" % dead_gb, "GB", "host", False)
    check("dead-unknown", "socks5://127.0.1.5:%d" % dead_unknown, None, "unknown", False)
    check(secret_url, secret_url, "FR", "exit-ip" if measured else "host", True,
          "127.0.0.5" if measured else None)

    # The text form: every upstream, no credentials.
    t = run_cli("upstreams", "-c", path)
    assert t.returncode == 0, (t.stdout, t.stderr)
    for name in by_name:
        assert name in t.stdout, t.stdout
    assert "s3cretpass" not in t.stdout + t.stderr and "chainuser" not in t.stdout + t.stderr


def test_upstreams_command_all_down(tmp_path):
    ensure_geo_db()
    cfg = {"geoip": str(GEO_DB), "health": HEALTH,
           "upstreams": [{"url": "http://127.0.0.2:%d" % free_port(), "name": "gone"}]}
    path = tmp_path / "down.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("upstreams", "-c", path, "--json")
    assert r.returncode != 0, (r.stdout, r.stderr)
    (e,) = json.loads(r.stdout)
    assert e["name"] == "gone" and e["health"] == "down", e
    assert e["country"] == "DE" and e["source"] == "host", e


# ------------------------------------------------------------------ 11. config errors


def check_config(tmp_path, doc):
    path = tmp_path / "anonproxy.json"
    path.write_text(json.dumps(doc))
    return path, run_cli("-t", "-c", path, timeout=20)


def test_full_chaining_config_is_valid(tmp_path):
    ensure_geo_db()
    f = tmp_path / "list.txt"
    f.write_text("# list\nsocks5://127.0.0.9:1080\nhttp://u:p@127.0.0.10:3128\n")
    cert, _ = make_cert(tmp_path, "127.0.0.11")
    doc = {
        "listen": [{"address": "127.0.0.1:18080"}, {"address": "127.0.0.1:18081", "country": "FR"}],
        "upstreams": [
            {"url": "http://user:pass@127.0.0.2:3128", "name": "de-anon", "country": "DE",
             "weight": 1},
            {"chain": ["socks5://127.0.0.4:1080", "http://127.0.0.2:3128"], "name": "two-hop"},
            {"url": "https://127.0.0.11:3129", "ca_file": str(cert)},
            {"url": "socks5h://127.0.0.4:1081"},
            {"url": "socks4a://127.0.0.4:1082"},
        ],
        "upstreams_file": str(f),
        "strategy": "least_latency",
        "geoip": str(GEO_DB),
        "outgoing_address": "127.0.0.1",
        "routes": [{"match": "*.bbc.co.uk", "country": "GB"},
                   {"match": "10.0.0.0/8", "action": "direct"},
                   {"match": "blocked.test", "action": "block"},
                   {"match": "x.test", "country": "DE", "mode": "anonymous"}],
        "country_header": True,
        "failover_tries": 3,
        "health": {"interval": 1, "timeout": 2, "rise": 1, "fall": 1,
                   "judge_url": "http://127.0.0.1:8090/"},
    }
    path, r = check_config(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: configuration OK\n" % path


@pytest.mark.parametrize("doc,jpath,mention", [
    ({"upstreams": [{"url": "ftp://127.0.0.2:21"}]}, "upstreams[0].url", "ftp"),
    ({"upstreams": [{"url": "http://127.0.0.2"}]}, "upstreams[0].url", "port"),
    ({"upstreams": [{"url": "http://127.0.0.2:99999"}]}, "upstreams[0].url", "99999"),
    ({"upstreams": [{"url": "socks5://127.0.0.2:1080", "country": "Germany"}]},
     "upstreams[0].country", "Germany"),
    ({"upstreams": [{"chain": ["socks5://127.0.0.4:1080", "gopher://127.0.0.2:70"]}]},
     "upstreams[0].chain[1]", "gopher"),
    ({"upstreams": [{"url": "socks5://127.0.0.2:1080", "weight": 0}]}, "upstreams[0].weight", ""),
    ({"upstreams": [{"url": "socks5://127.0.0.2:1080", "bogus": 1}]}, "upstreams[0].bogus", ""),
    ({"routes": [{"match": "x.test", "action": "teleport"}]}, "routes[0].action", "teleport"),
    ({"routes": [{"match": "x.test", "country": "Germany"}]}, "routes[0].country", "Germany"),
    ({"routes": [{"match": "10.0.0.0/33", "action": "direct"}]}, "routes[0].match", ""),
    ({"listen": [{"address": "127.0.0.1:18080", "country": "Germany"}]},
     "listen[0].country", "Germany"),
    ({"strategy": "fastest"}, "strategy", "fastest"),
    ({"health": {"judge_url": "ftp://127.0.0.1/"}}, "health.judge_url", ""),
    ({"outgoing_address": "not-an-ip"}, "outgoing_address", ""),
], ids=["scheme", "no-port", "port-range", "country", "chain-scheme", "weight", "unknown-key",
        "route-action", "route-country", "route-cidr", "listen-country", "strategy",
        "judge-url", "outgoing-address"])
def test_bad_config_names_file_and_path(tmp_path, doc, jpath, mention):
    path, r = check_config(tmp_path, doc)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("%s: %s: " % (path, jpath)), r.stderr
    assert mention in r.stderr, r.stderr
    assert "configuration OK" not in r.stdout


def test_missing_geoip_file(tmp_path):
    missing = tmp_path / "nowhere" / "countries.mmdb"
    path, r = check_config(tmp_path, {"geoip": str(missing)})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("%s: geoip: " % path), r.stderr
    assert str(missing) in r.stderr, r.stderr


def test_bad_upstreams_file(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("# list\nsocks5://127.0.0.4:1080\nftp://127.0.0.2:21\n")
    path, r = check_config(tmp_path, {"upstreams_file": str(f)})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert str(f) in r.stderr and "ftp" in r.stderr, r.stderr
    missing = tmp_path / "nope.txt"
    path, r = check_config(tmp_path, {"upstreams_file": str(missing)})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert str(missing) in r.stderr, r.stderr
