"""Helpers for test_judge_verify.py: the judge as a process, raw requests
from a chosen loopback source address, third-party proxies run in the
foreground (tinyproxy, squid, privoxy) and `anonproxy verify` runs.

Every process listens on a free 127.0.0.1 port, is polled for readiness by
connecting (no fixed sleeps), and is stopped with a bounded wait.
Debian packages the peer tests use: tinyproxy-bin, squid, privoxy (each test
skips, naming the package, when its binary is missing).
"""
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, ROOT, SANITIZER_MARKERS, Conn, clean_env, free_port, read_response

GEO_DB = ROOT / "build" / "test-geo.mmdb"
# A browser's headers, in a browser's order (Host goes first, added per request).
BROWSER = [
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: gzip, deflate, br",
    "Connection: keep-alive",
    "Upgrade-Insecure-Requests: 1",
]


def sanitizer_report(text):
    return text if any(m in text for m in SANITIZER_MARKERS) else None


# ------------------------------------------------------------------ processes


def accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Service:
    """A foreground server process whose output goes to a log file."""

    def __init__(self, name, cmd, port, tmp_path, ready_timeout=20, cwd=None, host="127.0.0.1"):
        self.name = name
        self.port = port
        self.host = host
        self.log_path = tmp_path / ("%s-%d.log" % (name, port))
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env=clean_env(), cwd=str(cwd or tmp_path))
        deadline = time.monotonic() + ready_timeout
        while not accepts(host, port):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start-up (rc=%s):\n%s"
                                   % (name, self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not accept on port %d within %ss:\n%s"
                                   % (name, port, ready_timeout, self.log()))
            time.sleep(0.02)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals, waits; kills after `timeout`. Returns the exit status, or
        a string saying it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return "%s did not exit within %ss (killed)" % (self.name, timeout)


def start_service(name, make_cmd, tmp_path, attempts=3, **kw):
    """Starts make_cmd(port) on a free port, retrying when the port was taken
    in the meantime. Fails the test with the log otherwise."""
    last = ""
    for _ in range(attempts):
        port = free_port()
        try:
            return Service(name, make_cmd(port), port, tmp_path, **kw)
        except RuntimeError as e:
            last = str(e)
            if "in use" not in last:
                break
    pytest.fail(last)


def need(binary, package):
    path = shutil.which(binary) or (Path("/usr/sbin") / binary)
    if not Path(path).exists():
        pytest.skip("%s not installed (Debian package %s)" % (binary, package))
    return str(path)


def start_judge(tmp_path, geoip=None, host="127.0.0.1"):
    args = ["--geoip", str(geoip)] if geoip else []
    addr = "[%s]" % host if ":" in host else host
    return start_service("judge", lambda port: [BIN, "judge", "--listen", "%s:%d" % (addr, port),
                                                *args], tmp_path, host=host)


def start_tinyproxy(tmp_path, extra=()):
    """tinyproxy in the foreground (-d), allowing every loopback client."""
    binary = need("tinyproxy", "tinyproxy-bin")

    def cmd(port):
        conf = tmp_path / ("tinyproxy-%d.conf" % port)
        conf.write_text("\n".join(["Port %d" % port, "Listen 127.0.0.1", "Timeout 30",
                                   "Allow 127.0.0.0/8", "LogLevel Info", "MaxClients 20",
                                   *extra]) + "\n")
        return [binary, "-d", "-c", conf]

    return start_service("tinyproxy", cmd, tmp_path)


def start_squid(tmp_path, extra=()):
    """squid in the foreground (-N), no disk cache, its own service name so
    that it shares nothing with another squid on the machine."""
    binary = need("squid", "squid")

    def cmd(port):
        conf = tmp_path / ("squid-%d.conf" % port)
        conf.write_text("\n".join([
            "http_port 127.0.0.1:%d" % port,
            "acl loopback src 127.0.0.0/8",
            "http_access allow loopback",
            "http_access deny all",
            "cache deny all",
            "visible_hostname judge-test",
            "pid_filename none",
            "cache_log /dev/null",
            "access_log none",
            "coredump_dir none",
            "shutdown_lifetime 0 seconds",
            *extra]) + "\n")
        return [binary, "-N", "-d1", "-n", "judgetest%d" % port, "-f", conf]

    return start_service("squid", cmd, tmp_path)


def start_privoxy(tmp_path):
    """privoxy in the foreground with Debian's default actions and filters,
    plus one rule that allows CONNECT to any port (by default only 443)."""
    binary = need("privoxy", "privoxy")
    if not Path("/etc/privoxy/default.action").exists():
        pytest.skip("/etc/privoxy/default.action missing (Debian package privoxy)")
    connect_action = tmp_path / "connect.action"
    connect_action.write_text("{+limit-connect{1-}}\n/\n")

    def cmd(port):
        conf = tmp_path / ("privoxy-%d.conf" % port)
        conf.write_text("\n".join([
            "confdir /etc/privoxy",
            "actionsfile match-all.action",
            "actionsfile default.action",
            "actionsfile %s" % connect_action,
            "filterfile default.filter",
            "listen-address 127.0.0.1:%d" % port,
            "toggle 1",
            "enable-remote-toggle 0",
            "enable-edit-actions 0",
            "accept-intercepted-requests 0"]) + "\n")
        return [binary, "--no-daemon", conf]

    return start_service("privoxy", cmd, tmp_path)


# ------------------------------------------------------------------ requests


def connect(port, source=None, timeout=10.0, host="127.0.0.1"):
    """A Conn to host:port, from `source` (a local address) if given."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((host, port))
    except OSError:
        s.close()
        raise
    return Conn(sock=s, timeout=timeout)


def raw_exchange(port, data, source=None, host="127.0.0.1"):
    """Sends raw bytes, reads one response."""
    with connect(port, source, host=host) as c:
        c.send(data)
        return read_response(c)


def request_bytes(port, target="/", headers=(), accept_json=True, method="GET"):
    """A request head: Host, then the given header lines, then (unless the
    caller gave one) an Accept asking for JSON."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:%d" % port, *headers]
    if accept_json and not any(h.lower().startswith("accept:") for h in headers):
        lines.append("Accept: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ask(port, target="/", headers=(), source=None):
    """GET target with the headers; returns the judge's JSON answer."""
    r = raw_exchange(port, request_bytes(port, target, headers), source)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r
    return r.json()


def why(answer):
    """{header name or None: reason} of a judge answer."""
    return {x["header"]: x["why"] for x in answer["reasons"]}


# ------------------------------------------------------------------ verify


def verify(*args, timeout=90):
    """Runs `anonproxy verify ARGS`; fails on a sanitizer report."""
    try:
        r = subprocess.run([str(BIN), "verify", *[str(a) for a in args]], capture_output=True,
                           text=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired:
        pytest.fail("anonproxy verify did not finish within %ss" % timeout)
    report = sanitizer_report(r.stderr)
    assert report is None, report
    return r


def verify_json(*args):
    """verify --json; returns (exit status, report), report None on errors."""
    r = verify(*args, "--json")
    return r.returncode, (json.loads(r.stdout) if r.returncode in (0, 1) else None), r
