"""Helpers for test_chaining.py: exits (upstream proxies) in other "countries",
the judge as the origin, and small recording servers of the test's own.

Countries come from build/test-geo.mmdb (geo/test-countries.csv): 127.0.0.1
US, 127.0.0.2-3 DE, 127.0.0.4-5 FR, 127.0.0.6 GB, 127.0.0.7 JP, 127.0.1.0/24
unknown. Every exit listens on, and connects out from, its own loopback
address, so the judge's remote_ip says which exit a request left through.

Exits: a second anonproxy (outgoing_address), tinyproxy (Listen + Bind),
microsocks (-i + -b), and in-process ones of our own:
  MiniSocks      SOCKS5 (+ RFC 1929 user/pass) and SOCKS4a, records each
                 CONNECT (address type, host, port), maps test names to IPs
                 itself (nothing in /etc/hosts is needed or touched);
  MiniHttpProxy  an HTTP proxy (absolute-form and CONNECT, optionally inside
                 TLS, optionally requiring Basic credentials) that records
                 each request line and its header fields;
All readiness is by polling a TCP connect; every socket has a timeout and
every process a bounded stop.
"""
import base64
import ipaddress
import json
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BIN, OPENSSL, ROOT, SANITIZER_MARKERS, Acceptor, Conn, FakeDns, clean_env, get, parse_head,
                      read_response)
from judgekit import Service

GEO_DB = ROOT / "build" / "test-geo.mmdb"

# Country of each exit address (as test-countries.csv has it).
COUNTRY_OF = {"127.0.0.1": "US", "127.0.0.2": "DE", "127.0.0.3": "DE", "127.0.0.4": "FR",
              "127.0.0.5": "FR", "127.0.0.6": "GB", "127.0.0.7": "JP"}


def ensure_geo_db():
    if not GEO_DB.exists():
        r = subprocess.run(["make", "-C", str(ROOT), "-f", "mk/geo.mk", "build/test-geo.mmdb"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not GEO_DB.exists():
            pytest.fail("cannot build %s:\n%s%s" % (GEO_DB, r.stdout, r.stderr))
    return GEO_DB


def free_port_on(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def need(binary, package):
    path = shutil.which(binary) or ("/usr/sbin/" + binary)
    if not Path(path).exists():
        pytest.fail("%s not installed (Debian package %s: apt-get install %s)"
                    % (binary, package, package))
    return path


def basic(user, password="x"):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def proxy_auth(user, password="x"):
    """A Proxy-Authorization header line asking for what the username says."""
    return "Proxy-Authorization: " + basic(user, password)


# ------------------------------------------------------------------ processes


class Exits:
    """Starts exits and judges for one test; stop_all() at teardown."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.services = []
        self.servers = []

    def _start(self, name, host, make_cmd, port=None, attempts=3):
        last = ""
        for _ in range(attempts):
            p = port or free_port_on(host)
            try:
                s = Service(name, make_cmd(p), p, self.tmp, host=host)
            except RuntimeError as e:
                last = str(e)
                if port:
                    break
                continue
            s.name_host = host
            self.services.append(s)
            return s
        pytest.fail("cannot start %s on %s: %s" % (name, host, last))

    def judge(self, host="127.0.0.1"):
        geo = ensure_geo_db()
        return self._start("judge", host, lambda p: [BIN, "judge", "--listen", "%s:%d" % (host, p),
                                                      "--geoip", geo])

    def anonproxy(self, host, port=None):
        """A second anonproxy as an exit: listens on host, connects out from host."""

        def cmd(p):
            cfg = self.tmp / ("exit-anonproxy-%s-%d.json" % (host, p))
            cfg.write_text(json.dumps({
                "listen": [{"address": "%s:%d" % (host, p)}],
                "outgoing_address": host,
                "mode": "elite",
                "workers": 1,
                "log_level": "debug",
                "timeouts": {"shutdown": 1},
            }, indent=2))
            return [BIN, "-c", cfg]

        return self._start("anonproxy-exit", host, cmd, port=port)

    def tinyproxy(self, host, auth=None, port=None):
        """tinyproxy on host, outgoing from host; auth=(user, pass) adds BasicAuth."""
        binary = need("tinyproxy", "tinyproxy-bin")

        def cmd(p):
            conf = self.tmp / ("tinyproxy-%s-%d.conf" % (host, p))
            lines = ["Port %d" % p, "Listen %s" % host, "Bind %s" % host, "Timeout 30",
                     "Allow 127.0.0.0/8", "DisableViaHeader Yes", "LogLevel Info",
                     "MaxClients 100"]
            if auth:
                lines.append("BasicAuth %s %s" % auth)
            conf.write_text("\n".join(lines) + "\n")
            return [binary, "-d", "-c", conf]

        return self._start("tinyproxy", host, cmd, port=port)

    def microsocks(self, host, auth=None, port=None):
        """microsocks (SOCKS5) on host, outgoing from host; auth=(user, pass)."""
        binary = need("microsocks", "microsocks")

        def cmd(p):
            c = [binary, "-i", host, "-p", str(p), "-b", host]
            if auth:
                c += ["-u", auth[0], "-P", auth[1]]
            return c

        return self._start("microsocks", host, cmd, port=port)

    def mini_socks(self, host, **kw):
        s = MiniSocks(host, **kw)
        self.servers.append(s)
        return s

    def mini_http(self, host, **kw):
        s = MiniHttpProxy(host, **kw)
        self.servers.append(s)
        return s

    def dns_recorder(self):
        """A nameserver that never answers and records every datagram: a
        proxy that resolves a name shows up there."""
        s = FakeDns(silent=True)
        self.servers.append(s)
        return s

    def dump_logs(self):
        for s in self.services:
            print("---- %s on %s:%d, last 3000 chars ----\n%s"
                  % (s.name, s.name_host, s.port, s.log()[-3000:]))

    def stop_all(self):
        """Stops everything; returns sanitizer reports of our own binaries."""
        reports = []
        for s in self.services:
            s.stop(sig=signal.SIGTERM, timeout=10)
            if s.name in ("judge", "anonproxy-exit"):
                text = s.log()
                if any(m in text for m in SANITIZER_MARKERS):
                    reports.append("%s on %s:%d:\n%s" % (s.name, s.name_host, s.port, text[-6000:]))
        for s in self.servers:
            s.close()
        return reports


def kill(service):
    """SIGKILL, as when an exit dies, and reap it."""
    if service.proc.poll() is None:
        service.proc.kill()
    service.proc.wait(timeout=10)


# ------------------------------------------------------------------ relaying


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise EOFError("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return out


def _recv_until_nul(s, limit=1024):
    out = b""
    while True:
        c = _recv_exact(s, 1)
        if c == b"\x00":
            return out
        out += c
        if len(out) > limit:
            raise ValueError("no NUL within %d bytes" % limit)


def relay(client, server, early=b"", timeout=30):
    """Copies bytes both ways in one thread (safe for TLS sockets) until the
    server side closes (or nothing moves for `timeout`). A client EOF is passed
    on as a half-close."""
    if early:
        server.sendall(early)
    open_r = {client: True, server: True}
    while open_r[server]:
        rl = [s for s in (client, server) if open_r[s]]
        ready = [s for s in rl if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(rl, [], [], timeout)
            if not ready:
                return
        for s in ready:
            other = server if s is client else client
            try:
                data = s.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                data = b""
            if data:
                try:
                    other.sendall(data)
                except OSError:
                    return
            else:
                open_r[s] = False
                if s is client and not isinstance(server, ssl.SSLSocket):
                    try:
                        server.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass


class _Server(Acceptor):
    """Accept loop in a thread; handle(sock) per connection in its own."""

    def __init__(self, host):
        super().__init__(host)
        self.host = host
        self.lock = threading.Lock()
        self.errors = []
        self.conns = []
        self.start()

    def accepted(self, s):
        with self.lock:
            self.conns.append(s)
        threading.Thread(target=self._run, args=(s,), daemon=True).start()

    def _run(self, s):
        try:
            s.settimeout(30)
            self.handle(s)
        except Exception as e:  # recorded for the test's messages
            with self.lock:
                self.errors.append(repr(e))
        finally:
            try:
                s.close()
            except OSError:
                pass

    def handle(self, s):
        raise NotImplementedError

    def close(self):
        self.stop_accepting()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class _Resolving:
    """Name -> IP mapping of the exit's own (no system resolver)."""

    def lookup(self, host):
        h = host.lower()
        if h in self.names:
            return self.names[h]
        if _is_ip(h):
            return h
        return None

    def dial(self, ip, port):
        return socket.create_connection((ip, port), timeout=10,
                                        source_address=(self.bind, 0) if self.bind else None)


# ------------------------------------------------------------------ SOCKS


class MiniSocks(_Server, _Resolving):
    """SOCKS5 (RFC 1928, RFC 1929 when user is set) and SOCKS4a server.
    requests: dicts {"version", "atyp", "host", "port", "user", "dstip"}
    (atyp 1 IPv4, 3 domain, 4 IPv6; SOCKS4 requests have atyp None).
    names: {name: ip} it resolves itself; IP literals pass. bind: source
    address of its outgoing connections (default: host)."""

    def __init__(self, host, names=None, user=None, password=None, bind=None):
        self.names = {k.lower(): v for k, v in (names or {}).items()}
        self.user = user
        self.password = password
        self.bind = bind or host
        self.requests = []
        self.greetings = []
        super().__init__(host)

    def url(self, scheme="socks5", creds=None):
        auth = "%s:%s@" % creds if creds else ""
        return "%s://%s%s:%d" % (scheme, auth, self.host, self.port)

    def requests_for(self, host):
        with self.lock:
            return [r for r in self.requests if r["host"].lower() == host.lower()]

    def handle(self, s):
        ver = _recv_exact(s, 1)[0]
        if ver == 5:
            self._socks5(s)
        elif ver == 4:
            self._socks4(s)
        else:
            raise ValueError("not SOCKS: first byte %d" % ver)

    def _socks5(self, s):
        n = _recv_exact(s, 1)[0]
        methods = _recv_exact(s, n)
        with self.lock:
            self.greetings.append(methods)
        user = None
        if self.user is not None:
            if 2 not in methods:
                s.sendall(b"\x05\xff")
                return
            s.sendall(b"\x05\x02")
            if _recv_exact(s, 1) != b"\x01":
                raise ValueError("bad RFC 1929 version")
            ulen = _recv_exact(s, 1)[0]
            user = _recv_exact(s, ulen).decode("latin-1")
            plen = _recv_exact(s, 1)[0]
            pw = _recv_exact(s, plen).decode("latin-1")
            if (user, pw) != (self.user, self.password):
                s.sendall(b"\x01\x01")
                return
            s.sendall(b"\x01\x00")
        else:
            if 0 not in methods:
                s.sendall(b"\x05\xff")
                return
            s.sendall(b"\x05\x00")
        ver, cmd, _rsv, atyp = _recv_exact(s, 4)
        if atyp == 1:
            host = socket.inet_ntoa(_recv_exact(s, 4))
        elif atyp == 3:
            host = _recv_exact(s, _recv_exact(s, 1)[0]).decode("latin-1")
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(s, 16))
        else:
            raise ValueError("bad ATYP %d" % atyp)
        port = struct.unpack("!H", _recv_exact(s, 2))[0]
        with self.lock:
            self.requests.append({"version": 5, "cmd": cmd, "atyp": atyp, "host": host,
                                  "port": port, "user": user, "dstip": None})
        fail = b"\x05%c\x00\x01\x00\x00\x00\x00\x00\x00"
        if ver != 5 or cmd != 1:
            s.sendall(fail % 7)
            return
        ip = self.lookup(host)
        if ip is None:
            s.sendall(fail % 4)
            return
        try:
            out = self.dial(ip, port)
        except OSError:
            s.sendall(fail % 5)
            return
        with out:
            a, p = out.getsockname()[:2]
            s.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(a) + struct.pack("!H", p))
            relay(s, out)

    def _socks4(self, s):
        cmd = _recv_exact(s, 1)[0]
        port = struct.unpack("!H", _recv_exact(s, 2))[0]
        dstip = socket.inet_ntoa(_recv_exact(s, 4))
        user = _recv_until_nul(s).decode("latin-1")
        host = dstip
        is_4a = dstip.startswith("0.0.0.") and dstip != "0.0.0.0"
        if is_4a:
            host = _recv_until_nul(s).decode("latin-1")
        with self.lock:
            self.requests.append({"version": 4, "cmd": cmd, "atyp": None, "host": host,
                                  "port": port, "user": user, "dstip": dstip, "is_4a": is_4a})
        fail = b"\x00\x5b\x00\x00\x00\x00\x00\x00"
        ip = self.lookup(host) if cmd == 1 else None
        if ip is None:
            s.sendall(fail)
            return
        try:
            out = self.dial(ip, port)
        except OSError:
            s.sendall(fail)
            return
        with out:
            s.sendall(b"\x00\x5a" + struct.pack("!H", port) + socket.inet_aton(ip))
            relay(s, out)


# ------------------------------------------------------------------ HTTP proxy


def make_cert(workdir, ip):
    """Self-signed certificate for IP (SAN) -> (cert path, key path)."""
    cert = workdir / ("proxy-%s.pem" % ip)
    key = workdir / ("proxy-%s.key" % ip)
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=%s" % ip,
                    "-addext", "subjectAltName=IP:%s" % ip],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class MiniHttpProxy(_Server, _Resolving):
    """An HTTP proxy: absolute-form requests (one per connection, sent on in
    origin-form with Connection: close) and CONNECT. requests: dicts
    {"line", "headers": [(name, value)]}. auth=(user, pass) requires that
    Proxy-Authorization (407 otherwise). tls=(cert, key) serves inside TLS."""

    def __init__(self, host, names=None, auth=None, tls=None, bind=None):
        self.names = {k.lower(): v for k, v in (names or {}).items()}
        self.auth = auth
        self.bind = bind or host
        self.requests = []
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        super().__init__(host)

    def url(self, creds=None):
        auth = "%s:%s@" % creds if creds else ""
        return "%s://%s%s:%d" % ("https" if self.ctx else "http", auth, self.host, self.port)

    def requests_for(self, needle):
        with self.lock:
            return [r for r in self.requests if needle in r["line"]]

    def handle(self, s):
        if self.ctx:
            s = self.ctx.wrap_socket(s, server_side=True)
        c = Conn(sock=s, timeout=30)
        head = c.read_until(b"\r\n\r\n", limit=65536).decode("latin-1")
        lines = head[:-4].split("\r\n")
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k, v.strip()))
        with self.lock:
            self.requests.append({"line": lines[0], "headers": headers})
        if self.auth:
            got = [v for k, v in headers if k.lower() == "proxy-authorization"]
            if got != [basic(*self.auth)]:
                s.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
                return
        method, target, _ver = lines[0].split(" ", 2)
        bad = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            ip = self.lookup(host.strip("[]"))
            if ip is None:
                s.sendall(bad)
                return
            try:
                out = self.dial(ip, int(port))
            except OSError:
                s.sendall(bad)
                return
            with out:
                s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                relay(s, out, early=bytes(c.buf))
            return
        if not target.startswith("http://"):
            s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        rest = target[len("http://"):]
        authority, slash, path = rest.partition("/")
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
        ip = self.lookup(host.strip("[]"))
        if ip is None:
            s.sendall(bad)
            return
        try:
            out = self.dial(ip, int(port))
        except OSError:
            s.sendall(bad)
            return
        drop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        fwd = ["%s /%s HTTP/1.1" % (method, path)]
        fwd += ["%s: %s" % (k, v) for k, v in headers if k.lower() not in drop]
        fwd.append("Connection: close")
        with out:
            out.sendall(("\r\n".join(fwd) + "\r\n\r\n").encode("latin-1"))
            relay(s, out, early=bytes(c.buf))




# ------------------------------------------------------------------ requests


def judge_url(judge, host=None, path="/"):
    return "http://%s:%d%s" % (host or judge.host, judge.port, path)


def ask(proxy_port, judge, headers=(), host=None, timeout=15):
    """GET the judge through the proxy (absolute form, fresh connection)."""
    return get(proxy_port, judge_url(judge, host), headers=["Accept: application/json", *headers],
               timeout=timeout)


def answer(resp):
    """The judge's JSON answer of a response, failing the test otherwise."""
    assert resp.status == 200, resp
    assert (resp.header("Content-Type") or "").startswith("application/json"), resp
    return resp.json()


def header_names(ans):
    return [h[0].lower() for h in ans["headers"]]


def tunnel(proxy_port, host, port, headers=(), timeout=15):
    """CONNECT host:port through the proxy, then GET / inside the tunnel.
    Returns (CONNECT response, inner response or None)."""
    with Conn(proxy_port, timeout=timeout) as c:
        auth = "%s:%d" % (host, port)
        lines = ["CONNECT %s HTTP/1.1" % auth, "Host: %s" % auth, *headers]
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = c.read_until(b"\r\n\r\n")
        r = parse_head(head)
        if r.status != 200:
            n = r.header("Content-Length")
            r.body = c.read_exact(int(n)) if n is not None else b""
            return r, None
        c.send(("GET / HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                "Connection: close\r\n\r\n" % auth).encode("latin-1"))
        return r, read_response(c)


def wait_ok(fn, timeout=20, what="a 200 answer", ok=None):
    """Calls fn() -> Response until ok(response) (default: a 200); returns
    it. Fails with the last answer after `timeout` seconds (upstreams may
    start out down until their first health check). `what` may be a
    callable giving the text at failure time."""
    ok = ok or (lambda r: r.status == 200)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if ok(last):
                return last
        except Exception as e:  # a broken exchange: keep polling until the deadline
            last = e
        if time.monotonic() > deadline:
            pytest.fail("no %s within %ss; last: %r" % (what() if callable(what) else what,
                                                        timeout, last))
        time.sleep(0.1)


# ------------------------------------------------------------------ CLI


def run_cli(*args, timeout=60, cwd=None):
    try:
        r = subprocess.run([str(BIN), *[str(a) for a in args]], capture_output=True, text=True,
                           timeout=timeout, env=clean_env(), cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail("anonproxy %s did not finish within %ss" % (" ".join(map(str, args)), timeout))
    if any(m in r.stderr for m in SANITIZER_MARKERS):
        pytest.fail("sanitizer report from anonproxy %s:\n%s" % (" ".join(map(str, args)), r.stderr))
    return r
