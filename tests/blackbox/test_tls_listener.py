"""A TLS listener ("tls": {"cert", "key"} on an http or mixed listener): an
HTTPS proxy for curl --proxy https://, plain requests and CONNECT inside
TLS, TLS 1.2+ only, ALPN http/1.1, config errors naming the file, and a
certificate re-read on SIGHUP without dropping a connection.
"""
import hashlib
import json
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, curl, listener_port, listeners_with, pattern_sha256, wait_until


def make_cert(d, name, cn="localhost"):
    cert, key = d / (name + ".pem"), d / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def certs(tmp_path):
    return make_cert(tmp_path, "proxy")


def tls_listeners(cert, key, protocol="http"):
    return listeners_with({"protocol": protocol, "tls": {"cert": str(cert), "key": str(key)}})


def tls_port(p):
    return listener_port(p)


def client_context(cert, **kw):
    ctx = ssl.create_default_context(cafile=str(cert))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_connect(port, ctx, server_hostname="localhost"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=server_hostname)


def test_curl_https_proxy_plain_request(start_proxy, origin, certs):
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key)})
    r = curl("--proxy", "https://localhost:%d" % tls_port(p), "--proxy-cacert", str(cert),
             "-o", "-", origin.url("/bytes/200000"), timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(200000)


def test_curl_https_proxy_connect_inside_tls(start_proxy, tls_origin, certs):
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key)})
    r = curl("--proxy", "https://user-x:pw@localhost:%d" % tls_port(p), "--proxy-cacert", str(cert),
             "--cacert", tls_origin.cert, "-o", "-",
             "https://localhost:%d/3000000" % tls_origin.port, timeout=60)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(3000000)


def test_mixed_tls_port_serves_https_plain_and_socks(start_proxy, origin, certs):
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key, "mixed")})
    port = tls_port(p)
    for args in (["--proxy", "https://localhost:%d" % port, "--proxy-cacert", str(cert)],
                 ["--proxy", "http://127.0.0.1:%d" % port],
                 ["--proxy", "socks5h://127.0.0.1:%d" % port]):
        r = curl(*args, "-o", "-", "http://localhost:%d/bytes/5000" % origin.port, timeout=60)
        assert r.returncode == 0, (args, r.stderr)
        assert hashlib.sha256(r.stdout).hexdigest() == pattern_sha256(5000)


def test_plain_http_on_a_tls_port_is_closed(start_proxy, certs):
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key)})
    s = socket.create_connection(("127.0.0.1", tls_port(p)), timeout=10)
    s.sendall(b"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    assert not data.startswith(b"HTTP/"), data


def test_alpn_and_protocol_versions(start_proxy, certs):
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key)})
    port = tls_port(p)
    ctx = client_context(cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_connect(port, ctx) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert s.version() in ("TLSv1.2", "TLSv1.3")
    ctx = client_context(cert)
    ctx.set_alpn_protocols(["h2"])
    with tls_connect(port, ctx) as s:
        assert s.selected_alpn_protocol() is None
    old = client_context(cert, minimum_version=ssl.TLSVersion.MINIMUM_SUPPORTED,
                         maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        old.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with tls_connect(port, old):
            pass


@pytest.mark.parametrize("tls,message", [
    ({"cert": "CERT"}, "listen[0].tls: needs both \"cert\" and \"key\""),
    ({"cert": "CERT", "key": "MISSING"}, "listen[0].tls.key: cannot read MISSING"),
    ({"cert": "CERT", "key": "OTHERKEY"}, "listen[0].tls: cannot load the private key OTHERKEY"),
    ({"cert": "KEY", "key": "KEY"}, "listen[0].tls: cannot load the certificate KEY"),
])
def test_config_errors(tmp_path, certs, tls, message):
    cert, key = certs
    _, other_key = make_cert(tmp_path, "other")
    names = {"CERT": str(cert), "KEY": str(key), "OTHERKEY": str(other_key),
             "MISSING": str(tmp_path / "missing.key")}
    tls = {k: names[v] for k, v in tls.items()}
    for word in ("MISSING", "OTHERKEY", "KEY"):
        message = message.replace(word, names[word])
    cfg = tmp_path / "a.json"
    cfg.write_text(json.dumps({"listen": [{"address": "127.0.0.1:1443", "tls": tls}]}))
    r = subprocess.run([str(BIN), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1, r
    assert message in r.stderr, r.stderr


def test_tls_is_not_a_socks_key(tmp_path, certs):
    cert, key = certs
    cfg = tmp_path / "a.json"
    cfg.write_text(json.dumps({"listen": [{"address": "127.0.0.1:1080", "protocol": "socks5",
                                           "tls": {"cert": str(cert), "key": str(key)}}]}))
    r = subprocess.run([str(BIN), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "listen[0].tls: not a key of a \"socks5\" listener" in r.stderr


def read_response(s):
    """One whole response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([line.split(b":", 1)[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, data
        body += chunk
    return head


def test_sighup_rereads_the_certificate(start_proxy, origin, tmp_path, certs):
    """A new certificate serves new connections after SIGHUP; a download in
    flight on a connection made before it finishes whole."""
    cert, key = certs
    p = start_proxy({"listen": tls_listeners(cert, key)})
    port = tls_port(p)

    def fingerprint():
        with tls_connect(port, ssl._create_unverified_context()) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()

    before = fingerprint()
    n = 8 * 1024 * 1024
    kept = tls_connect(port, client_context(cert))
    kept.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                  % (origin.url("/bytes/%d" % n), origin.port)).encode())
    data = kept.recv(65536)
    assert data.startswith(b"HTTP/1.1 200"), data

    new_cert, new_key = make_cert(tmp_path, "renewed", cn="renewed")
    cfg = dict(p.config)
    cfg["listen"][1]["tls"] = {"cert": str(new_cert), "key": str(new_key)}
    p.cfg_path.write_text(json.dumps(cfg, indent=2))
    p.signal(signal.SIGHUP)
    # The new generation serves new connections at once; the old one ends
    # when the download below is delivered.
    wait_until(lambda: fingerprint() != before, 10, 0.1, "the new certificate")

    while True:
        chunk = kept.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    kept.close()
    body = data.partition(b"\r\n\r\n")[2]
    assert len(body) == n
    assert hashlib.sha256(body).hexdigest() == pattern_sha256(n)
    wait_until(lambda: "configuration reloaded" in p.log(), 10, 0.05, "the old generation's end")


def test_close_notify_right_after_connect(start_proxy, certs, fake_dns, tmp_path):
    """TLS defers callbacks: an EOF queued behind the CONNECT once reached
    the client after it had handed its connection to the session."""
    cert, key = certs
    dns = fake_dns(silent=True)
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    p = start_proxy({"listen": tls_listeners(cert, key), "timeouts": {"connect": 2},
                     "dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf"),
                             "hosts": str(hosts)}})
    for _ in range(20):
        s = tls_connect(tls_port(p), client_context(cert))
        s.sendall(b"CONNECT slow.invalid:443 HTTP/1.1\r\nHost: slow.invalid:443\r\n\r\n")
        try:
            s.unwrap()
        except OSError:
            pass
        s.close()
    time.sleep(1)
    assert p.alive()
