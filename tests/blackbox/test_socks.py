"""SOCKS front doors: "socks5" (SOCKS5, and SOCKS4/4a detected) and "socks4"
listeners. Real curl clients, a raw client for every malformed message, the
same routing as HTTP (user-name options, routes, the listener's country,
connect_ports), exits by country, and no DNS query for a name an exit
carries.
"""
import hashlib
import re
import socket
import struct
import time

import pytest

from conftest import UdpServer, curl, free_port, listener_port, listeners_with, pattern_sha256
from exits import judge_url
from test_chaining import NAME, World, chaining, exits  # noqa: F401 (exits is a fixture)


def socks_listeners(protocol="socks5", **extra):
    return listeners_with(dict({"protocol": protocol}, **extra))


@pytest.fixture
def socks(start_proxy):
    """A proxy with a socks5 listener (listen[1]) and a socks4 one (listen[2])."""
    return start_proxy({"listen": listeners_with({"protocol": "socks5"}, {"protocol": "socks4"})})


# ------------------------------------------------------------------ a raw client


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def closed(s, timeout=5.0):
    """True when the proxy closes s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def s5_request(cmd, host, port):
    """VER CMD RSV ATYP DST.ADDR DST.PORT, with the address type host calls for."""
    try:
        addr = b"\x01" + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        try:
            addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            name = host.encode()
            addr = b"\x03" + bytes([len(name)]) + name
    return bytes([5, cmd, 0]) + addr + struct.pack("!H", port)


def s5_connect(port, host, dport, user=None, password=b"x"):
    """Greeting, optional RFC 1929 login, CONNECT. Returns (socket, REP)."""
    s = connect(port)
    s.sendall(b"\x05\x01\x02" if user is not None else b"\x05\x01\x00")
    method = recv_exact(s, 2)
    assert method == (b"\x05\x02" if user is not None else b"\x05\x00"), method
    if user is not None:
        u = user.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(password)]) + password)
        assert recv_exact(s, 2) == b"\x01\x00"
    s.sendall(s5_request(1, host, dport))
    reply = recv_exact(s, 10)
    assert len(reply) == 10 and reply[0] == 5 and reply[2:4] == b"\x00\x01", reply
    return s, reply[1]


def http_get_on(s, host, path="/"):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n" % (path, host)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


# ------------------------------------------------------------------ real clients


@pytest.mark.parametrize("how", ["--socks5", "--socks5-hostname", "--socks4", "--socks4a"])
def test_curl_through_socks5_listener(socks, origin, how):
    n = 1024 * 1024 + 7
    host = "127.0.0.1" if how in ("--socks5", "--socks4") else "localhost"
    r = curl(how, "127.0.0.1:%d" % listener_port(socks), "-o", "-",
             "http://%s:%d/bytes/%d" % (host, origin.port, n), timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(n)


@pytest.mark.parametrize("how", ["--socks4", "--socks4a"])
def test_curl_through_socks4_listener(socks, origin, how):
    host = "127.0.0.1" if how == "--socks4" else "localhost"
    r = curl(how, "127.0.0.1:%d" % listener_port(socks, 2), "-o", "-",
             "http://%s:%d/bytes/1000" % (host, origin.port), timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(1000)


def test_socks4_listener_refuses_socks5(socks):
    s = connect(listener_port(socks, 2))
    s.sendall(b"\x05\x01\x00")
    assert closed(s)


def test_curl_https_through_socks5_with_credentials(socks, tls_origin):
    r = curl("-x", "socks5h://someone:secret@127.0.0.1:%d" % listener_port(socks),
             "--cacert", tls_origin.cert, "-o", "-",
             "https://localhost:%d/5000" % tls_origin.port, timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(5000)


def test_ipv6_destination(socks, start_proxy):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        srv.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    srv.listen(1)
    s, rep = s5_connect(listener_port(socks), "::1", srv.getsockname()[1])
    assert rep == 0
    conn, _ = srv.accept()
    s.sendall(b"ping")
    assert recv_exact(conn, 4) == b"ping"
    conn.sendall(b"pong")
    assert recv_exact(s, 4) == b"pong"
    conn.close()
    s.close()
    srv.close()


def test_bytes_sent_with_the_request_are_relayed(socks, origin):
    """A client may send its first bytes right behind the request."""
    s = connect(listener_port(socks))
    s.sendall(b"\x05\x01\x00" + s5_request(1, "127.0.0.1", origin.port) +
              b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert recv_exact(s, 2) == b"\x05\x00"
    assert recv_exact(s, 10)[1] == 0
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:100]


# ------------------------------------------------------------------ malformed input


def test_not_socks_is_closed(socks):
    s = connect(listener_port(socks))
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert closed(s)


@pytest.mark.parametrize("methods,answer", [
    (b"", b"\x05\xff"),                       # no method at all
    (bytes(range(0x80, 0xff)), b"\x05\xff"),  # 127 methods, none usable
    (bytes(range(1, 256)), b"\x05\x02"),      # 255 methods: username/password among them
    (bytes([0x80] * 254 + [0]), b"\x05\x00"), # 255 methods, "no auth" last
])
def test_greeting_methods(socks, methods, answer):
    s = connect(listener_port(socks))
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    assert recv_exact(s, 2) == answer
    if answer == b"\x05\xff":
        assert closed(s)
    s.close()


def test_bad_auth_version_is_answered_and_closed(socks):
    s = connect(listener_port(socks))
    s.sendall(b"\x05\x01\x02")
    assert recv_exact(s, 2) == b"\x05\x02"
    s.sendall(b"\x05\x01a\x01b")
    assert recv_exact(s, 2) == b"\x01\x01"
    assert closed(s)


@pytest.mark.parametrize("request_bytes,code", [
    (s5_request(2, "127.0.0.1", 80), 0x07),                    # BIND
    (s5_request(9, "127.0.0.1", 80), 0x07),                    # unknown command
    (b"\x05\x01\x00\x09" + b"\x00" * 6, 0x08),                 # unknown address type
    (b"\x05\x01\x00\x03\x00\x00\x50", 0x01),                   # zero-length name
    (b"\x05\x01\x00\x03\x05a\x00b.c\x00\x50", 0x01),           # NUL inside the name
    (b"\x05\x01\x00\x03\x05a b:c\x00\x50", 0x01),              # not a host name
    (b"\x04\x01\x00\x01\x00\x00\x00\x00\x00\x00", 0x01),       # wrong request version
])
def test_bad_requests_get_a_reply_code(socks, request_bytes, code):
    s = connect(listener_port(socks))
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(request_bytes)
    reply = recv_exact(s, 10)
    assert reply[:2] == bytes([5, code]), reply
    assert closed(s)


def test_oversized_name_is_refused(socks):
    s = connect(listener_port(socks))
    name = b"a" * 255
    s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(name)]) + name + b"\x00\x50")
    assert recv_exact(s, 2) == b"\x05\x00"
    assert recv_exact(s, 10)[:2] == b"\x05\x01"


def test_socks4_bind_and_long_user_id_are_rejected(socks):
    s = connect(listener_port(socks))
    s.sendall(b"\x04\x02\x00\x50\x7f\x00\x00\x01user\x00")
    assert recv_exact(s, 8)[:2] == b"\x00\x5b"
    assert closed(s)
    s = connect(listener_port(socks))
    s.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 300)
    assert recv_exact(s, 8)[:2] == b"\x00\x5b"
    assert closed(s)


def test_byte_by_byte_client_is_served(socks, origin):
    s = connect(listener_port(socks))
    for b in b"\x05\x01\x00":
        s.send(bytes([b]))
        time.sleep(0.01)
    assert recv_exact(s, 2) == b"\x05\x00"
    for b in s5_request(1, "127.0.0.1", origin.port):
        s.send(bytes([b]))
        time.sleep(0.01)
    assert recv_exact(s, 10)[1] == 0
    assert http_get_on(s, "127.0.0.1", "/bytes/10").startswith(b"HTTP/1.1 200")


def test_truncated_handshake_then_eof_is_closed(socks):
    s = connect(listener_port(socks))
    s.sendall(b"\x05\x01\x00\x05\x01")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.shutdown(socket.SHUT_WR)
    assert closed(s)


def test_stalled_handshake_times_out(start_proxy):
    p = start_proxy({"listen": socks_listeners(), "timeouts": {"header": 0.5}})
    s = connect(listener_port(p))
    s.sendall(b"\x05\x01")
    t0 = time.monotonic()
    assert closed(s, timeout=5)
    assert time.monotonic() - t0 < 4


# ------------------------------------------------------------------ the same rules as HTTP


def test_connect_ports_apply(start_proxy, origin):
    p = start_proxy({"listen": socks_listeners(), "connect_ports": [443]})
    s, rep = s5_connect(listener_port(p), "127.0.0.1", origin.port)
    assert rep == 0x02
    assert closed(s)


def test_block_route_applies(start_proxy):
    p = start_proxy({"listen": socks_listeners(),
                     "routes": [{"match": "*.blocked.example", "action": "block"}]})
    s, rep = s5_connect(listener_port(p), "www.blocked.example", 80)
    assert rep == 0x02
    assert closed(s)
    assert "blocked by route *.blocked.example" in p.log()


def test_refused_destination_is_0x05(socks):
    s, rep = s5_connect(listener_port(socks), "127.0.0.1", free_port())
    assert rep == 0x05
    assert closed(s)


@pytest.mark.parametrize("silent,code", [(False, 0x04), (True, 0x06)])
def test_unresolvable_name(start_proxy, fake_dns, tmp_path, silent, code):
    """NXDOMAIN is "host unreachable"; no answer in timeouts.connect is "TTL expired"."""
    dns = fake_dns(silent=silent)
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    p = start_proxy({"listen": socks_listeners(), "timeouts": {"connect": 1},
                     "dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"),
                             "hosts": str(hosts)}})
    s, rep = s5_connect(listener_port(p), "no-such-name.test", 80)
    assert rep == code
    assert closed(s)
    assert dns.queries > 0


def test_listener_key_not_taken_by_socks(start_proxy, tmp_path):
    from conftest import BIN
    import json
    import subprocess
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"listen": [{"address": "127.0.0.1:1080", "protocol": "socks5",
                                           "mode": "elite"}]}))
    r = subprocess.run([str(BIN), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "listen[0].mode: not a key of a \"socks5\" listener" in r.stderr


# ------------------------------------------------------------------ exits by country


def test_user_name_picks_the_exit_country(exits, start_proxy):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups, listen=socks_listeners(), health={"judge_url": judge_url(w.judge)}))
    port = listener_port(p)
    deadline = time.monotonic() + 20
    for cc, ips in (("de", {"127.0.0.2", "127.0.0.3"}), ("fr", {"127.0.0.4"})):
        while True:
            s, rep = s5_connect(port, w.judge.host, w.judge.port, user="alice-country-%s" % cc)
            if rep == 0:
                break
            s.close()
            assert time.monotonic() < deadline, "no %s exit came up" % cc
            time.sleep(0.2)
        body = http_get_on(s, "%s:%d" % (w.judge.host, w.judge.port))
        ans = __import__("json").loads(body.split(b"\r\n\r\n", 1)[1])
        assert ans["remote_ip"] in ips, ans
        # SOCKS carries bytes only: the judge sees the client's own request, elite.
        assert ans["verdict"] == "elite", ans


def test_no_exit_in_the_country_is_a_general_failure_reply(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, listen=socks_listeners()))
    s, rep = s5_connect(listener_port(p), w.judge.host, w.judge.port, user="bob-country-jp")
    assert rep != 0
    assert closed(s)


def test_listener_country(exits, start_proxy):
    w = World(exits, gb=False)
    p = start_proxy(chaining(w.ups, listen=socks_listeners(country="FR"),
                             health={"judge_url": judge_url(w.judge)}))
    deadline = time.monotonic() + 20
    while True:
        s, rep = s5_connect(listener_port(p), w.judge.host, w.judge.port)
        if rep == 0:
            break
        s.close()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    body = http_get_on(s, "%s:%d" % (w.judge.host, w.judge.port))
    ans = __import__("json").loads(body.split(b"\r\n\r\n", 1)[1])
    assert ans["remote_ip"] == "127.0.0.4", ans


@pytest.mark.parametrize("scheme", ["socks5", "http"])
def test_socks_domain_name_reaches_the_exit_unresolved(exits, start_proxy, tmp_path, scheme):
    j = exits.judge()
    if scheme == "http":
        srv = exits.mini_http("127.0.0.5", names={NAME: "127.0.0.1"})
        up = {"name": "exit", "url": srv.url()}
    else:
        srv = exits.mini_socks("127.0.0.5", names={NAME: "127.0.0.1"})
        up = {"name": "exit", "url": srv.url("socks5")}
    dns = exits.dns_recorder()
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    p = start_proxy(chaining(
        [up], listen=socks_listeners(), health={"judge_url": judge_url(j)},
        dns={"resolv_conf": str(dns.resolv_conf(tmp_path / "resolv.conf")), "hosts": str(hosts)}))
    deadline = time.monotonic() + 20
    while True:
        s, rep = s5_connect(listener_port(p), NAME, j.port)
        if rep == 0:
            break
        s.close()
        assert time.monotonic() < deadline, "the exit never came up"
        time.sleep(0.2)
    body = http_get_on(s, "%s:%d" % (NAME, j.port))
    assert body.startswith(b"HTTP/1.1 200"), body[:200]
    assert dns.packets == [], "the proxy sent DNS queries: %r" % dns.packets
    leaks = [line for line in p.log().splitlines()
             if re.search(r"\bresolv(e|es|ed|ing)\b|getaddrinfo", line, re.I)]
    assert leaks == [], leaks


# ------------------------------------------------------------------ mixed port


@pytest.mark.parametrize("how", ["http", "socks5h", "socks5", "socks4a", "socks4"])
def test_mixed_port_serves_every_protocol(start_proxy, origin, how):
    p = start_proxy({"listen": socks_listeners("mixed", mode="elite")})
    host = "127.0.0.1" if how in ("socks5", "socks4") else "localhost"
    r = curl("-x", "%s://127.0.0.1:%d" % (how, listener_port(p)), "-o", "-",
             "http://%s:%d/bytes/70000" % (host, origin.port), timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(70000)


def test_mixed_port_https_through_connect(start_proxy, tls_origin):
    p = start_proxy({"listen": socks_listeners("mixed")})
    r = curl("-x", "http://127.0.0.1:%d" % listener_port(p), "--cacert", tls_origin.cert, "-o", "-",
             "https://localhost:%d/3000" % tls_origin.port, timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(3000)


def test_mixed_port_http_errors_stay_http(start_proxy):
    p = start_proxy({"listen": socks_listeners("mixed")})
    s = connect(listener_port(p))
    s.sendall(b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 400 "), data


def test_mixed_port_silent_client_is_closed(start_proxy):
    p = start_proxy({"listen": socks_listeners("mixed"), "timeouts": {"header": 0.5}})
    s = connect(listener_port(p))
    t0 = time.monotonic()
    assert closed(s, timeout=5)
    assert time.monotonic() - t0 < 4


# ------------------------------------------------------------------ UDP ASSOCIATE


@pytest.fixture
def udp_echo():
    """A UDP echo server: every datagram comes back, prefixed."""
    e = UdpServer(lambda data, addr: b"echo:" + data)
    yield e
    e.close()


def udp_associate(port, hint=("0.0.0.0", 0)):
    """Control connection and the relay address of a new association."""
    s = connect(port)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(s5_request(3, hint[0], hint[1]))
    reply = recv_exact(s, 10)
    return s, reply


def udp_header(host, port, frag=0):
    return b"\x00\x00" + bytes([frag]) + s5_request(0, host, port)[3:]


def udp_roundtrip(relay, data, source="127.0.0.1", timeout=3.0, sock=None):
    u = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if sock is None:
        u.bind((source, 0))
    u.settimeout(timeout)
    u.sendto(data, relay)
    try:
        return u.recvfrom(65536)[0]
    except socket.timeout:
        return None
    finally:
        if sock is None:
            u.close()


def test_udp_associate_direct(socks, udp_echo):
    ctl, reply = udp_associate(listener_port(socks))
    assert reply[:4] == b"\x05\x00\x00\x01", reply
    relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
    assert relay[0] == "127.0.0.1" and relay[1] != 0
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    for payload in (b"hello", b"x" * 60000):
        got = udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + payload, sock=u)
        assert got is not None, "no echo"
        # The answer's header names the destination that sent it.
        assert got[:10] == udp_header("127.0.0.1", udp_echo.port), got[:10]
        assert got[10:] == b"echo:" + payload
    # A name is resolved by the proxy (direct): localhost from the hosts file.
    got = udp_roundtrip(relay, udp_header("localhost", udp_echo.port) + b"by-name", sock=u)
    if got is None:  # the first datagram may wait for the resolver: once more
        got = udp_roundtrip(relay, udp_header("localhost", udp_echo.port) + b"by-name", sock=u)
    assert got is not None and got.endswith(b"echo:by-name"), got
    u.close()
    ctl.close()


def test_udp_fragments_strangers_and_the_end_of_control(socks, udp_echo):
    ctl, reply = udp_associate(listener_port(socks))
    relay = ("127.0.0.1", struct.unpack("!H", reply[8:10])[0])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port, frag=1) + b"frag", sock=u,
                         timeout=0.5) is None
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + b"ok", sock=u) is not None
    # Another address, or another port of the client's once one is known: dropped.
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + b"stranger",
                         source="127.0.0.3", timeout=0.5) is None
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + b"other-port",
                         timeout=0.5) is None
    assert [d for _, d in udp_echo.packets] == [b"ok"]
    # The association ends with its control connection.
    ctl.close()
    time.sleep(0.3)
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + b"late", sock=u,
                         timeout=0.5) is None
    u.close()


def test_udp_blocked_destination_is_dropped(start_proxy, udp_echo):
    p = start_proxy({"listen": socks_listeners(),
                     "routes": [{"match": "127.0.0.1/32", "action": "block"}]})
    ctl, reply = udp_associate(listener_port(p))
    assert reply[1] == 0
    relay = ("127.0.0.1", struct.unpack("!H", reply[8:10])[0])
    assert udp_roundtrip(relay, udp_header("127.0.0.1", udp_echo.port) + b"x", timeout=0.5) is None
    assert udp_echo.packets == []
    ctl.close()


def test_udp_udp_address_and_limits(start_proxy):
    p = start_proxy({"listen": socks_listeners(udp_address="192.0.2.1")})
    ctl, reply = udp_associate(listener_port(p))
    assert reply[:4] == b"\x05\x00\x00\x01" and socket.inet_ntoa(reply[4:8]) == "192.0.2.1"
    ctl.close()
    p2 = start_proxy({"listen": socks_listeners(), "limits": {"max_udp_associations": 0}})
    ctl, reply = udp_associate(listener_port(p2))
    assert reply[1] == 0x01
    assert "limits.max_udp_associations (0) reached" in p2.log()


def test_udp_through_an_exit_is_refused(exits, start_proxy):
    w = World(exits, gb=False, fr=False)
    p = start_proxy(chaining(w.ups, listen=socks_listeners()))
    ctl, reply = udp_associate(listener_port(p))
    assert reply[1] == 0x07
    assert closed(ctl)
    assert "UDP ASSOCIATE refused: its route" in p.log()


# ------------------------------------------------------------------ hand-over regressions


def silent_dns_config(fake_dns, tmp_path):
    dns = fake_dns(silent=True)
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    return {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"), "hosts": str(hosts)}


def test_socks_client_reset_while_connecting(start_proxy, fake_dns, tmp_path):
    """The handshake's callbacks must not outlive it: a client that resets
    right after its request, while the session connects, once crashed the
    proxy (the queued reply failed and the freed handshake got the event)."""
    p = start_proxy({"listen": socks_listeners(), "timeouts": {"connect": 2},
                     "dns": silent_dns_config(fake_dns, tmp_path)})
    name = b"slow.invalid"
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", listener_port(p)))
        s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(name)]) + name + b"\x01\xbb")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(2.5)
    assert p.alive()


def test_http_connect_behind_an_undelivered_response(start_proxy, origin, fake_dns, tmp_path):
    """A CONNECT pipelined behind a large response the client has not read
    yet: the response is still delivered while the session connects."""
    p = start_proxy({"timeouts": {"connect": 3}, "limits": {"buffer_bytes": 8 << 20},
                     "dns": silent_dns_config(fake_dns, tmp_path)})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", p.port))
    n = 3000000
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url("/bytes/%d" % n)).encode() +
              b"CONNECT slow.invalid:443 HTTP/1.1\r\nHost: slow.invalid:443\r\n\r\n")
    time.sleep(1.0)
    s.settimeout(10)
    got = b""
    while len(got) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    assert got.startswith(b"HTTP/1.1 200") and len(got) > n, len(got)
    s.close()
    time.sleep(0.5)
    assert p.alive()
