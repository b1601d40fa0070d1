"""Fixtures and helpers for the anonproxy black-box tests.

Everything listens on 127.0.0.1 only. Every socket has a timeout and every
subprocess a bounded wait, so a misbehaving proxy fails a test instead of
hanging the suite.

The binary is build/anonproxy (override with ANONPROXY_BIN); the suite does
not build it: run `make` (or `make SAN=1`) first.
"""
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(os.environ.get("ANONPROXY_BIN", ROOT / "build" / "anonproxy"))
ORIGIN_PY = HERE / "origin.py"
PYTHON = sys.executable or "/usr/bin/python3"
CURL = shutil.which("curl") or "/usr/bin/curl"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

sys.path.insert(0, str(HERE))
import origin as origin_mod  # noqa: E402  (pattern helpers shared with the origin)

pattern_bytes = origin_mod.pattern_bytes
pattern_pieces = origin_mod.pattern_pieces

SANITIZER_MARKERS = ("runtime error", "AddressSanitizer", "LeakSanitizer")

# 500 concurrent clients need ~1000 descriptors in the proxy and in the tests.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_want = 65536 if _hard == resource.RLIM_INFINITY else min(_hard, 65536)
if _soft != resource.RLIM_INFINITY and _soft < _want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


@lru_cache(maxsize=None)
def is_sanitized_build():
    try:
        data = BIN.read_bytes()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


@lru_cache(maxsize=None)
def pattern_sha256(n):
    return origin_mod.pattern_sha256(n)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update(extra)
    return env


# ------------------------------------------------------------------ ports


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners_with(*entries):
    """A plain http listener first (launch_proxy polls the first one), then
    the given entries, each on a fresh port: {"protocol": "socks5"}, ..."""
    out = [{"address": "127.0.0.1:%d" % free_port()}]
    for e in entries:
        out.append(dict({"address": "127.0.0.1:%d" % free_port()}, **e))
    return out


def listener_port(p, i=1):
    """The port of a proxy's listen[i]."""
    return int(p.config["listen"][i]["address"].rsplit(":", 1)[1])


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ------------------------------------------------------------------ proxy


def _merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        elif v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


class Proxy:
    def __init__(self, proc, port, cfg_path, log_path, config):
        self.proc = proc
        self.port = port
        self.cfg_path = cfg_path
        self.log_path = log_path
        self.config = config
        self.expected_rc = 0

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def shutdown_grace(self):
        return float(self.config.get("timeouts", {}).get("shutdown", 10))

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code, or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=None):
        """SIGTERM, bounded wait; SIGKILL if it does not exit. Returns rc."""
        if timeout is None:
            timeout = self.shutdown_grace() + 15
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return "did not exit within %.1fs of SIGTERM (killed)" % timeout
        return rc

    def sanitizer_report(self):
        text = self.log()
        for m in SANITIZER_MARKERS:
            if m in text:
                return text
        return None


def base_config(port):
    cfg = {
        "listen": [{"address": "127.0.0.1:%d" % port}],
        "mode": "elite",
        "workers": 2,
        "log_level": "debug",
        "timeouts": {"shutdown": 3},
    }
    cfg.update(policies_override())
    return cfg


def policies_override():
    """A binary outside the tree (ANONPROXY_BIN) cannot find the policies
    beside itself: such configs point it at the tree's."""
    if BIN.resolve() != (ROOT / "build" / "anonproxy").resolve() and (ROOT / "policies").is_dir():
        return {"policies": str(ROOT / "policies")}
    return {}


def launch_proxy(tmp_path, overrides=None, name="proxy", extra_args=(), env=None):
    """Writes a config, starts the proxy and waits until it accepts.
    Returns a Proxy (not registered for teardown: use the fixture)."""
    if not BIN.exists():
        pytest.fail("%s not found: build it with `make -C %s`" % (BIN, ROOT))
    last_log = ""
    for attempt in range(3):
        port = free_port()
        cfg = _merge(base_config(port), json.loads(json.dumps(overrides or {})))
        if "listen" in (overrides or {}):
            # The caller chose its listeners; the first one is polled.
            port = int(cfg["listen"][0]["address"].rsplit(":", 1)[1])
        cfg_path = tmp_path / ("%s-%d.json" % (name, attempt))
        log_path = tmp_path / ("%s-%d.log" % (name, attempt))
        cfg_path.write_text(json.dumps(cfg, indent=2))
        logf = open(log_path, "wb")
        proc = subprocess.Popen(
            [str(BIN), "-c", str(cfg_path), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=clean_env(env),
            cwd=str(tmp_path),
        )
        logf.close()
        p = Proxy(proc, port, cfg_path, log_path, cfg)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if port_accepts(port, timeout=0.5):
                return p
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail("proxy did not accept on port %d within 15s; log:\n%s" % (port, p.log()))
        last_log = p.log()
        if "listen" in (overrides or {}) or "cannot listen" not in last_log:
            break  # a real start-up failure, not a port race
    pytest.fail("proxy exited at start-up (rc=%s); log:\n%s" % (proc.returncode, last_log))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_proxy(tmp_path, request):
    """Factory: start_proxy(overrides=None) -> Proxy. Overrides are merged
    into the base config (nested dicts merged, None deletes a key). At
    teardown: SIGTERM, bounded wait, exit code 0 required (or
    proxy.expected_rc), and no sanitizer report in the log."""
    proxies = []

    def _start(overrides=None, **kw):
        p = launch_proxy(tmp_path, overrides, name="proxy%d" % len(proxies), **kw)
        proxies.append(p)
        return p

    yield _start

    problems = []
    for p in proxies:
        rc = p.stop()
        if rc != p.expected_rc:
            problems.append("proxy on port %d: exit status %r, expected %r" % (p.port, rc, p.expected_rc))
        rep = p.sanitizer_report()
        if rep:
            problems.append("proxy on port %d: sanitizer report in log:\n%s" % (p.port, rep[-8000:]))
    failed = getattr(request.node, "rep_call", None)
    if problems or (failed is not None and failed.failed):
        for p in proxies:
            print("---- proxy log (port %d), last 6000 chars ----\n%s" % (p.port, p.log()[-6000:]))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def proxy(start_proxy):
    """A proxy with the default test configuration."""
    return start_proxy()


# ------------------------------------------------------------------ origin


class OriginProc:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.base + path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def launch_origin():
    proc = subprocess.Popen(
        [PYTHON, str(ORIGIN_PY), "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    line = [b""]

    def reader():
        line[0] = proc.stdout.readline()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(15)
    if not line[0].startswith(b"READY "):
        proc.kill()
        proc.wait(timeout=5)
        pytest.fail("origin.py did not print READY: %r" % line[0])
    return OriginProc(proc, int(line[0].split()[1]))


@pytest.fixture(scope="session")
def origin():
    """The shared origin.py server (stateless endpoints)."""
    o = launch_origin()
    yield o
    o.stop()


@pytest.fixture
def fresh_origin():
    """Factory for an origin.py process of the test's own."""
    started = []

    def _start():
        o = launch_origin()
        started.append(o)
        return o

    yield _start
    for o in started:
        o.stop()


# ------------------------------------------------------------------ raw HTTP client


class ShortRead(Exception):
    def __init__(self, msg, data=b""):
        super().__init__(msg)
        self.data = data


class Conn:
    """A client (or server-side) socket with a read buffer. Every read has
    the socket's timeout; `received` keeps all bytes when record=True."""

    def __init__(self, port=None, sock=None, timeout=10.0, record=False):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.record = record
        self.received = bytearray()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fill(self, n=262144):
        """Reads more into the buffer; False at EOF."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(n)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        if self.record:
            self.received += data
        self.buf += data
        return True

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, delim, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                return self.take(i + len(delim))
            if len(self.buf) > limit:
                raise ShortRead("no %r within %d bytes" % (delim, limit), bytes(self.buf))
            start = max(0, len(self.buf) - len(delim) + 1)
            if not self.fill():
                raise ShortRead("EOF before %r" % (delim,), self.take(len(self.buf)))

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ShortRead("EOF after %d of %d bytes" % (len(self.buf), n), self.take(len(self.buf)))
        return self.take(n)

    def stream_exact(self, n, sink):
        """Passes exactly n bytes to sink without keeping them."""
        left = n
        while left:
            if not self.buf and not self.fill(1 << 20):
                raise ShortRead("EOF with %d of %d bytes missing" % (left, n), b"")
            k = min(left, len(self.buf))
            sink(bytes(self.buf[:k]) if k < len(self.buf) else bytes(self.buf))
            del self.buf[:k]
            left -= k

    def read_to_eof(self, limit=1 << 30):
        while self.fill():
            if len(self.buf) > limit:
                raise ShortRead("more than %d bytes before EOF" % limit, b"")
        return self.take(len(self.buf))

    def at_eof(self, timeout=5.0):
        """True if the peer closed (nothing more is buffered or arrives)."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return not self.fill()
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)


class Response:
    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []
        self.head = b""
        self.body = b""
        self.raw_body = b""
        self.trailers = b""
        self.complete = True
        self.length = 0
        self.size_lines = []

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self):
        return [k for k, _ in self.headers]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d %r headers=%r body[:200]=%r>" % (
            self.version, self.status, self.reason, self.headers, self.body[:200])


def parse_head(head):
    r = Response()
    lines = head[:-4].split(b"\r\n") if head.endswith(b"\r\n\r\n") else head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ", 2)
    r.version = parts[0]
    r.status = int(parts[1])
    r.reason = parts[2] if len(parts) > 2 else ""
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.decode("latin-1").partition(":")
        r.headers.append((name, value.strip(" \t")))
    r.head = head
    return r


def read_response(conn, method="GET", sink=None, allow_short=False, head_limit=1 << 20):
    """Reads one response (interim ones included: check .status). With sink,
    the (decoded) body goes to sink(bytes) and is not kept. With allow_short,
    a body cut by EOF gives .complete = False instead of an exception."""
    head = conn.read_until(b"\r\n\r\n", limit=head_limit)
    r = parse_head(head)
    keep = sink is None
    parts, raw = [], []

    def out(b):
        r.length += len(b)
        if keep:
            parts.append(b)
        else:
            sink(b)

    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    try:
        if method == "HEAD" or r.status < 200 or r.status in (204, 304):
            pass
        elif "chunked" in te:
            while True:
                line = conn.read_until(b"\r\n", limit=65536)
                raw.append(line)
                r.size_lines.append(line)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        t = conn.read_until(b"\r\n", limit=65536)
                        raw.append(t)
                        if t == b"\r\n":
                            break
                        r.trailers += t
                    break
                if keep:
                    data = conn.read_exact(size)
                    raw.append(data)
                    out(data)
                else:
                    conn.stream_exact(size, out)
                crlf = conn.read_exact(2)
                raw.append(crlf)
                if crlf != b"\r\n":
                    raise ShortRead("chunk data not followed by CRLF: %r" % crlf)
        elif cl is not None:
            if keep:
                out(conn.read_exact(int(cl)))
            else:
                conn.stream_exact(int(cl), out)
        else:
            if keep:
                out(conn.read_to_eof())
            else:
                while conn.fill(1 << 20):
                    out(bytes(conn.buf))
                    conn.buf.clear()
    except ShortRead as e:
        if not allow_short:
            raise
        if e.data:
            out(e.data)
        r.complete = False
    r.body = b"".join(parts)
    r.raw_body = b"".join(raw) if raw else r.body
    return r


def read_final(conn, method="GET", **kw):
    """Reads interim responses and the final one: (final, [interim...])."""
    interim = []
    while True:
        r = read_response(conn, method=method, **kw)
        if r.status >= 200:
            return r, interim
        interim.append(r)


def exchange(port, data, method="GET", timeout=10.0, **kw):
    """Sends raw bytes on a new connection and reads the final response."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        r, _ = read_final(c, method=method, **kw)
        return r


def get(proxy_port, url, headers=(), version="1.1", method="GET", body=None, timeout=10.0):
    """One request in absolute form on a fresh connection."""
    lines = ["%s %s HTTP/%s" % (method, url, version)]
    host = url.split("//", 1)[1].split("/", 1)[0]
    if not any(h.lower().startswith("host:") for h in headers):
        lines.append("Host: " + host)
    lines += list(headers)
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    if version == "1.1" and not any(h.lower().startswith("connection:") for h in headers):
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    return exchange(proxy_port, data, method=method, timeout=timeout)


def assert_error_response(resp, status, conn=None):
    """The proxy's own error: exact status, text/plain, Connection: close,
    a body matching Content-Length, and no trace of the software's name."""
    assert resp.status == status, resp
    assert resp.version == "HTTP/1.1", resp
    assert (resp.header("Connection") or "").lower() == "close", resp
    assert (resp.header("Content-Type") or "").lower().startswith("text/plain"), resp
    assert resp.header("Content-Length") is not None, resp
    assert int(resp.header("Content-Length")) == len(resp.body), resp
    assert len(resp.body) < 4096, resp
    blob = (resp.head + resp.body).lower()
    assert b"anonproxy" not in blob, resp
    assert resp.header("Server") is None or "anonproxy" not in resp.header("Server").lower()
    if conn is not None:
        assert conn.at_eof(timeout=5), "connection not closed after a %d error" % status


# ------------------------------------------------------------------ raw origin


def read_request(conn):
    """Reads one request (head + body by Content-Length or chunked).
    Returns (raw bytes, head bytes, decoded body), or None at a clean EOF."""
    try:
        head = conn.read_until(b"\r\n\r\n")
    except ShortRead as e:
        if not e.data:
            return None
        raise
    low = head.lower()
    raw = [head]
    body = []
    if b"\r\ntransfer-encoding:" in low and b"chunked" in low.split(b"\r\ntransfer-encoding:", 1)[1].split(b"\r\n", 1)[0]:
        while True:
            line = conn.read_until(b"\r\n", limit=65536)
            raw.append(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:
                    t = conn.read_until(b"\r\n", limit=65536)
                    raw.append(t)
                    if t == b"\r\n":
                        break
                break
            d = conn.read_exact(size)
            body.append(d)
            raw.append(d)
            raw.append(conn.read_exact(2))
    elif b"\r\ncontent-length:" in low:
        n = int(low.split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0].strip())
        d = conn.read_exact(n)
        body.append(d)
        raw.append(d)
    return b"".join(raw), head, b"".join(body)


class Acceptor:
    """A listening TCP socket on a loopback address with an accept loop in a
    daemon thread: each accepted socket goes to self.accepted(sock). A
    subclass sets up its own fields, then calls start()."""

    def __init__(self, host="127.0.0.1", backlog=128):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted(s)

    def accepted(self, s):
        raise NotImplementedError

    def stop_accepting(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        if self.thread:
            self.thread.join(5)


class RawOrigin(Acceptor):
    """A TCP server in a thread of the test process. For each connection
    handler(server, conn) runs in its own thread; conn is a recording Conn.
    `requests` collects what read_request handlers saw, in order."""

    def __init__(self, handler, backlog=128):
        super().__init__(backlog=backlog)
        self.handler = handler
        self.cond = threading.Condition()
        self.requests = []
        self.conns = []
        self.errors = []
        self.start()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def accepted(self, s):
        c = Conn(sock=s, timeout=30, record=True)
        with self.cond:
            self.conns.append(c)
            self.cond.notify_all()
        threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(self, c)
        except Exception as e:  # recorded; tests check what they need
            self.errors.append(e)
        finally:
            c.close()
            with self.cond:
                self.cond.notify_all()

    def add_request(self, raw):
        with self.cond:
            self.requests.append(raw)
            self.cond.notify_all()

    def wait_requests(self, n, timeout=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.requests) >= n, timeout)
        assert ok, "raw origin got %d request(s), expected %d" % (len(self.requests), n)
        return self.requests

    def wait_conns(self, n, timeout=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.conns) >= n, timeout)
        assert ok, "raw origin got %d connection(s), expected %d" % (len(self.conns), n)
        return self.conns

    def close(self):
        self.stop_accepting()
        for c in list(self.conns):
            c.close()


def canned(reply, close=False):
    """Handler: answer every request with `reply` (bytes, or a function of
    the raw request returning bytes); close after each if close=True."""

    def handler(srv, conn):
        while True:
            req = read_request(conn)
            if req is None:
                return
            srv.add_request(req[0])
            out = reply(req[0]) if callable(reply) else reply
            conn.send(out)
            if close:
                conn.sock.shutdown(socket.SHUT_RDWR)
                return

    return handler


def close_after_request(srv, conn):
    req = read_request(conn)
    if req:
        srv.add_request(req[0])


def never_answer(srv, conn):
    req = read_request(conn)
    if req:
        srv.add_request(req[0])
    while conn.fill():  # until the proxy gives up and closes
        pass


def echo_stream(srv, conn):
    """Echoes every byte until EOF, then passes the EOF on."""
    while True:
        try:
            data = conn.sock.recv(262144)
        except (socket.timeout, ConnectionResetError):
            return
        if not data:
            break
        conn.sock.sendall(data)
    conn.sock.shutdown(socket.SHUT_WR)


def drain_then_report(srv, conn):
    """Reads to EOF, then replies "<length> <sha256>\\n" and closes: only
    works if a half-close reaches it."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = conn.sock.recv(262144)
        if not data:
            break
        h.update(data)
        n += len(data)
    srv.add_request(b"%d" % n)
    conn.sock.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
    conn.sock.shutdown(socket.SHUT_WR)


@pytest.fixture
def raw_origin():
    """Factory: raw_origin(handler) -> RawOrigin, closed at teardown."""
    servers = []

    def _make(handler, **kw):
        s = RawOrigin(handler, **kw)
        servers.append(s)
        return s

    yield _make
    for s in servers:
        s.close()


# ------------------------------------------------------------------ TLS origin


class TlsOrigin(Acceptor):
    """HTTPS server on 127.0.0.1 with a throwaway self-signed certificate
    for localhost and 127.0.0.1. GET /N answers N pattern bytes."""

    def __init__(self, workdir):
        self.cert = workdir / "cert.pem"
        self.key = workdir / "key.pem"
        subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(self.key), "-out", str(self.cert), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(self.cert), str(self.key))
        super().__init__(backlog=64)
        self.handled = 0
        self.start()

    def accepted(self, s):
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            s.settimeout(30)
            t = self.ctx.wrap_socket(s, server_side=True)
            c = Conn(sock=t, timeout=30)
            head = c.read_until(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            n = int(path.strip("/") or "0")
            t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % n)
            for p in pattern_pieces(n):
                t.sendall(p)
            self.handled += 1
            t.close()
        except Exception:
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.stop_accepting()


@pytest.fixture(scope="session")
def tls_origin(tmp_path_factory):
    o = TlsOrigin(tmp_path_factory.mktemp("tls"))
    yield o
    o.close()


# ------------------------------------------------------------------ HAProxy


@pytest.fixture
def haproxy(tmp_path):
    """Factory: haproxy(servers, options=()) starts real HAProxy in TCP mode
    on a fresh port in front of servers [(port, server options)], round
    robin; returns its port. Stopped at teardown."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        pytest.skip("haproxy not installed (Debian package haproxy)")
    procs = []

    def _start(servers, options=()):
        port = free_port()
        cfg = tmp_path / ("haproxy-%d.cfg" % port)
        lines = ["global", "  maxconn 200",
                 "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 30s",
                 "  timeout server 30s", *("  " + o for o in options),
                 "listen front", "  bind 127.0.0.1:%d" % port, "  balance roundrobin"]
        lines += ["  server s%d 127.0.0.1:%d %s" % (i, sport, opts)
                  for i, (sport, opts) in enumerate(servers)]
        cfg.write_text("\n".join(lines) + "\n")
        procs.append(subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_until(lambda: port_accepts(port), 10, 0.05, "haproxy accepting")
        return port

    yield _start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------ UDP


class UdpServer:
    """A UDP server thread on 127.0.0.1: handle(data, addr) returns the
    datagram to answer with, or None; every datagram is kept in .packets as
    (peer, bytes)."""

    def __init__(self, handle):
        self.handle = handle
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.closed:
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.packets.append((addr, data))
            reply = self.handle(data, addr)
            if reply is not None:
                try:
                    self.sock.sendto(reply, addr)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()
        self.thread.join(5)


# ------------------------------------------------------------------ DNS


class FakeDns(UdpServer):
    """A UDP nameserver on 127.0.0.1: answers every query with NXDOMAIN, or
    never answers (silent=True); every datagram is kept in .packets as
    (peer, bytes). Use with dns.resolv_conf."""

    def __init__(self, silent=False):
        self.silent = silent
        super().__init__(self._answer)

    @property
    def queries(self):
        return len(self.packets)

    def _answer(self, data, addr):
        if self.silent or len(data) < 12:
            return None
        # Same id and question; QR, RD, RA set; RCODE 3 (NXDOMAIN).
        qd = int.from_bytes(data[4:6], "big")
        flags = 0x8180 | (data[2] & 0x01) << 8 | 3
        return data[0:2] + flags.to_bytes(2, "big") + qd.to_bytes(2, "big") + b"\0\0\0\0\0\0" + data[12:]

    def resolv_conf(self, path):
        path.write_text("nameserver 127.0.0.1:%d\noptions timeout:1 attempts:1\n" % self.port)
        return str(path)


@pytest.fixture
def fake_dns():
    servers = []

    def _make(**kw):
        s = FakeDns(**kw)
        servers.append(s)
        return s

    yield _make
    for s in servers:
        s.close()


# ------------------------------------------------------------------ curl


def curl(*args, timeout=120):
    """Runs curl (silent, errors shown) with no proxy variables from the
    environment. Returns CompletedProcess with bytes output."""
    cmd = [CURL, "-sS", *[str(a) for a in args]]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired:
        pytest.fail("curl did not finish within %ss: %s" % (timeout, cmd))


# ------------------------------------------------------------------ slow readers


def slow_readers(port, origin, sizes, rcvbuf=4096):
    """One connection per size, each asking for that many bytes and reading
    nothing yet: whatever does not fit the socket buffers waits in the proxy."""
    conns = []
    for n in sizes:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        c = Conn(sock=s, timeout=30)
        c.send(b"GET " + origin.url("/bytes/%d" % n).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        conns.append(c)
    return conns


def check_slow_readers(conns, sizes):
    short = []
    for c, n in zip(conns, sizes):
        with c:
            r = read_response(c, sink=lambda b: None, allow_short=True)
            if r.status != 200 or r.length != n or not r.complete:
                short.append("%d bytes asked: status %d, got %d" % (n, r.status, r.length))
    return short


# Sizes around what loopback socket buffers hold, 96 KiB apart (less than
# limits.buffer_bytes): for some of them the proxy has read the whole
# response from the origin while part of it still waits in its own buffer.
SWEEP = [512 * 1024 + i * 96 * 1024 for i in range(64)]


def cpu_seconds(pid):
    """User + system CPU time pid has used, or None if it is gone."""
    try:
        f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    """How many descriptors pid holds."""
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_fds_at_most(pid, n, timeout, what):
    """Waits until pid holds at most n descriptors; fails after timeout."""
    wait_until(lambda: open_fds(pid) <= n, timeout, interval=0.05, what=what)


def wait_cpu_quiet(pid, quiet=0.5, timeout=10):
    """Waits until pid has used no CPU for `quiet` seconds (it has done all
    it can for now), at most `timeout` seconds."""
    last, since = cpu_seconds(pid), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.05)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()


# ------------------------------------------------------------------ memory


def read_vm(pid):
    """(VmRSS, VmHWM) of pid in KiB, or None if it is gone."""
    try:
        text = Path("/proc/%d/status" % pid).read_text()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":", 1)
            vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


class RssMonitor:
    """Polls the proxy's VmRSS every `interval` seconds; .max_kib and
    .hwm_kib after stop() (or leaving the with-block)."""

    def __init__(self, pid, interval=0.02):
        self.pid = pid
        self.interval = interval
        self.max_kib = 0
        self.hwm_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = read_vm(self.pid)
            if v:
                self.max_kib = max(self.max_kib, v[0])
                self.hwm_kib = max(self.hwm_kib, v[1])
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._t.join(5)
        v = read_vm(self.pid)
        if v:
            self.max_kib = max(self.max_kib, v[0])
            self.hwm_kib = max(self.hwm_kib, v[1])


def rss_limit_kib():
    """64 MiB, for the sanitizer build too (its quarantine is kept small by
    rss_env; shadow memory and redzones fit). ANONPROXY_RSS_LIMIT_MIB overrides."""
    return int(os.environ.get("ANONPROXY_RSS_LIMIT_MIB", "64")) * 1024


def rss_env():
    """Environment for a proxy whose RSS is measured: under ASan, freed
    blocks sit in a quarantine (256 MiB by default) that would otherwise
    count as the proxy's memory; keep it at 16 MiB."""
    if not is_sanitized_build():
        return None
    opts = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" in opts:
        return None
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=16"}
