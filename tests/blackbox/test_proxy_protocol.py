"""PROXY protocol on a listener ("proxy_protocol": true, "proxy_protocol_from"):
real HAProxy in front (send-proxy and send-proxy-v2), hand-made v1 and v2
headers, a peer outside the list, malformed and slow headers. The address
the header carries is the client's: transparent mode's X-Forwarded-For
shows it.
"""
import json
import socket
import subprocess
import time

import pytest

from conftest import listener_port, listeners_with

CLIENT_IP = "127.0.0.9"   # the "real" client, as HAProxy sees it


def listeners(**extra):
    return listeners_with(dict({"proxy_protocol": True}, **extra))


def pp_port(p):
    return listener_port(p)


def echo_through(port, header=b"", source=None, target=None):
    """Sends header then a GET of origin's /echo; returns the echo's JSON or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(header + ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return json.loads(data.partition(b"\r\n\r\n")[2])


def forwarded_for(echo):
    return [v for k, v in echo["headers"] if k.lower() == "x-forwarded-for"]


@pytest.fixture
def transparent(start_proxy):
    def _start(**extra):
        return start_proxy({"mode": "transparent", "listen": listeners(**extra)})
    return _start


@pytest.mark.parametrize("send", ["send-proxy", "send-proxy-v2"])
def test_haproxy_in_front_passes_the_client_address(transparent, haproxy, origin, send):
    p = transparent()
    front = haproxy([(pp_port(p), send)])
    echo = echo_through(front, source=CLIENT_IP, target=origin.url("/echo"))
    assert echo is not None
    assert forwarded_for(echo) == [CLIENT_IP], echo["headers"]


def test_hand_made_v1_and_v2_headers(transparent, origin):
    p = transparent()
    v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n"
    echo = echo_through(pp_port(p), v1, target=origin.url("/echo"))
    assert forwarded_for(echo) == ["192.0.2.7"]
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    v2 = sig + b"\x21\x11\x00\x0c" + bytes([198, 51, 100, 4, 127, 0, 0, 1, 0x15, 0xb3, 0, 80])
    echo = echo_through(pp_port(p), v2, target=origin.url("/echo"))
    assert forwarded_for(echo) == ["198.51.100.4"]
    # LOCAL (a balancer's health check) and UNKNOWN keep the socket's own peer.
    local = sig + b"\x20\x00\x00\x00"
    echo = echo_through(pp_port(p), local, target=origin.url("/echo"))
    assert forwarded_for(echo) == ["127.0.0.1"]
    echo = echo_through(pp_port(p), b"PROXY UNKNOWN\r\n", target=origin.url("/echo"))
    assert forwarded_for(echo) == ["127.0.0.1"]


def test_header_sent_byte_by_byte(transparent, origin):
    p = transparent()
    s = socket.create_connection(("127.0.0.1", pp_port(p)), timeout=10)
    for b in b"PROXY TCP4 192.0.2.8 127.0.0.1 5555 80\r\n":
        s.send(bytes([b]))
        time.sleep(0.005)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               % origin.url("/echo")).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    echo = json.loads(data.partition(b"\r\n\r\n")[2])
    assert forwarded_for(echo) == ["192.0.2.8"]


@pytest.mark.parametrize("header", [
    b"GET / HTTP/1.1\r\n\r\n",                      # no header at all
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",      # a bad port
    b"PROXY " + b"x" * 200,                         # no end within 107 bytes
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + b"\x00" * 12,   # v2 over UDP
])
def test_malformed_headers_are_closed(transparent, origin, header):
    p = transparent()
    assert echo_through(pp_port(p), header, target=origin.url("/echo")) is None
    assert p.alive()


def test_peer_outside_the_list_is_closed(transparent, origin):
    p = transparent(proxy_protocol_from=["127.0.0.5/32"])
    v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n"
    assert echo_through(pp_port(p), v1, target=origin.url("/echo")) is None
    echo = echo_through(pp_port(p), v1, source="127.0.0.5", target=origin.url("/echo"))
    assert forwarded_for(echo) == ["192.0.2.7"]
    assert "a peer outside proxy_protocol_from" in p.log()


def test_silent_peer_times_out(start_proxy):
    p = start_proxy({"listen": listeners(), "timeouts": {"header": 0.5}})
    s = socket.create_connection(("127.0.0.1", pp_port(p)), timeout=5)
    t0 = time.monotonic()
    assert s.recv(10) == b""
    assert time.monotonic() - t0 < 4


def test_config_errors(tmp_path):
    from conftest import BIN
    for entry, msg in (
            ({"proxy_protocol_from": ["127.0.0.1"]},
             "listen[0].proxy_protocol_from: needs \"proxy_protocol\": true"),
            ({"proxy_protocol": True, "proxy_protocol_from": ["nowhere"]},
             "listen[0].proxy_protocol_from[0]: \"nowhere\" is not an address or CIDR range"),
            ({"proxy_protocol": True, "proxy_protocol_from": []},
             "listen[0].proxy_protocol_from: expected a non-empty array")):
        cfg = tmp_path / "a.json"
        cfg.write_text(json.dumps({"listen": [dict({"address": "127.0.0.1:1080"}, **entry)]}))
        r = subprocess.run([str(BIN), "-t", "-c", str(cfg)], capture_output=True, text=True)
        assert r.returncode == 1 and msg in r.stderr, (entry, r.stderr)
