#!/usr/bin/python3
"""bench.py - anonproxy against squid, tinyproxy, privoxy, haproxy, microsocks, dante and no proxy.

    python3 tests/bench/bench.py            full run (median of 3 runs, 10 s each)
    python3 tests/bench/bench.py --quick    1 run of 2 s, 1,000 idle tunnels
    python3 tests/bench/bench.py --workloads small --peers none --baseline REV
                                            build/anonproxy against REV built aside
    python3 tests/bench/bench.py --workloads socks --peers microsocks,dante
                                            the SOCKS5 listener alone

Everything runs on 127.0.0.1 only: an nginx origin, the peers in the
foreground with loopback-only configs written to a temporary folder, and
the load generators (wrk, curl, wrk under proxychains4 for SOCKS5, and this
script for the idle tunnels).
Prints one markdown table (figures, anonproxy/peer ratios, targets with
PASS/FAIL) and writes build/bench.json with every run and the medians.

Exit status: 0 when the measurement ran, whatever the targets say; 1 when
the harness itself could not run (missing packages, no origin, bad usage).
Stdlib only (Python 3.11).
"""
from __future__ import annotations

import argparse
import atexit
import collections
import datetime
import errno
import json
import os
import platform
import pwd
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LUA = HERE / "proxy.lua"
LOCAL = "127.0.0.1"  # the only address this harness ever talks to

# Debian package -> a binary it ships.
PACKAGES = {
    "nginx-light": "nginx",
    "wrk": "wrk",
    "squid": "squid",
    "tinyproxy-bin": "tinyproxy",
    "privoxy": "privoxy",
    "haproxy": "haproxy",
    "curl": "curl",
    "microsocks": "microsocks",
    "dante-server": "danted",
    "proxychains4": "proxychains4",   # puts wrk's connections through a SOCKS5 server
}
APT_LINE = "apt-get install -y --no-install-recommends " + " ".join(PACKAGES)

# Column order of the table. "kind": forward proxy, reverse proxy, SOCKS server or none.
PEERS = ["anonproxy", "squid", "tinyproxy", "privoxy", "haproxy", "microsocks", "dante", "direct"]
LABELS = {"haproxy": "haproxy (ceiling)", "dante": "dante (danted)", "direct": "direct (no proxy)"}
FORWARD = ["anonproxy", "squid", "tinyproxy", "privoxy"]
SOCKS = ["microsocks", "dante"]            # SOCKS5 servers only: the "socks" workload's peers
HTTP_PEERS = [n for n in PEERS if n not in SOCKS]   # the columns the HTTP workloads measure
SOCKS_ONLY = "n/a: SOCKS5 only"
WORKLOADS = ["small", "scaling", "elite", "tunnel", "plain", "socks", "idle"]

WANT_NOFILE = 65536
SMALL_BODY = b"anonproxy bench: a 64-byte body for small-request workloads....\n"
assert len(SMALL_BODY) == 64


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------- processes

class StartError(Exception):
    pass


class Proc:
    """A foreground child in its own process group, stopped at exit whatever happens."""

    live: set["Proc"] = set()

    def __init__(self, name: str, argv: list[str], logpath: Path, env: dict | None = None,
                 cwd: Path | None = None, user: tuple[str, str] | None = None):
        self.name, self.argv, self.logpath = name, argv, logpath
        self.logfile = open(logpath, "ab")
        # user: (user, group) to run as, for servers that cannot drop root themselves.
        who = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                      stderr=subprocess.STDOUT, env=env or clean_env(),
                                      cwd=cwd, start_new_session=True, close_fds=True, **who)
        Proc.live.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 8.0) -> None:
        if self in Proc.live:
            Proc.live.discard(self)
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.popen.wait(timeout=wait)
                    # The group may still hold children (e.g. helpers).
                    try:
                        os.killpg(self.popen.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:
            self.logfile.close()
        except OSError:
            pass

    @classmethod
    def stop_all(cls) -> None:
        for p in list(cls.live):
            p.stop(grace=3.0)


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["LC_ALL"] = "C"
    return env


def run(argv: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout always, text output, proxy-free env."""
    kw.setdefault("env", clean_env())
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def free_port(used: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOCAL, 0))
            port = s.getsockname()[1]
        if port not in used:
            used.add(port)
            return port


def proc_tree_rss_kb(root: int) -> int:
    """Sum of VmRSS (kB) over root and all its descendants."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(d))
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
        stack.extend(children.get(pid, ()))
    return total


def proc_tree_cpu_s(root: int) -> float:
    """user + system CPU seconds used so far by root and its descendants (threads included),
    and by the descendants they have reaped (cutime, cstime: dante's children come and go)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stats[int(d)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                pass
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, fields in stats.items():
        children[int(fields[1])].append(pid)
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        f = stats[pid]
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])   # utime stime cutime cstime
        stack.extend(children.get(pid, ()))
    return total / tick


# ------------------------------------------------------------ tiny HTTP I/O

def read_response(sock: socket.socket, deadline: float) -> tuple[int, bytes, bytes]:
    """Reads one response (Content-Length or until EOF) from a blocking socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(m.group(1)) if m else None
    while want is None or len(body) < want:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, head, body


def http_get(port: int, target: str, host: str, timeout: float = 3.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    with socket.create_connection((LOCAL, port), timeout=timeout) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, _, body = read_response(s, deadline)
        return status, body


def tunnel_get(port: int, origin: int, timeout: float = 3.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    hp = f"{LOCAL}:{origin}"
    with socket.create_connection((LOCAL, port), timeout=timeout) as s:
        s.sendall(f"CONNECT {hp} HTTP/1.1\r\nHost: {hp}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the CONNECT reply")
            buf += chunk
        status = int(buf.split(b" ", 2)[1])
        if status != 200:
            return status, b""
        s.sendall(f"GET /small.bin HTTP/1.1\r\nHost: {hp}\r\nConnection: close\r\n\r\n".encode())
        return read_response(s, deadline)[::2]


def recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def socks5_get(port: int, origin: int, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET /small.bin through a SOCKS5 server: no authentication, CONNECT to an IPv4 address."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((LOCAL, port), timeout=timeout) as s:
        s.sendall(b"\x05\x01\x00")
        rep = recv_exact(s, 2, deadline)
        if rep != b"\x05\x00":
            raise StartError(f"SOCKS5 method reply {rep.hex()}, not 0500")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(LOCAL) + struct.pack("!H", origin))
        head = recv_exact(s, 4, deadline)
        if head[:2] != b"\x05\x00":
            raise StartError(f"SOCKS5 CONNECT reply {head.hex()}")
        if head[3] == 3:
            recv_exact(s, recv_exact(s, 1, deadline)[0] + 2, deadline)
        else:
            recv_exact(s, {1: 4, 4: 16}.get(head[3], 0) + 2, deadline)
        s.sendall(f"GET /small.bin HTTP/1.1\r\nHost: {LOCAL}:{origin}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        status, _, body = read_response(s, deadline)
        return status, body


# ---------------------------------------------------------------- the peers

class Peer:
    """One server under test: writes its config, starts, waits until it serves."""

    def __init__(self, bench: "Bench", name: str, variant: str = ""):
        self.bench, self.name, self.variant = bench, name, variant
        self.tag = name + (f"-{variant}" if variant else "")
        self.port = 0
        self.proc: Proc | None = None
        self.error: str | None = None
        self.dir = bench.tmp / f"{self.tag}-{len(bench.peers_started)}"
        bench.peers_started.append(self)

    # Subclasses: argv (after writing config files into self.dir), and how to probe.
    def argv(self) -> list[str]:
        raise NotImplementedError

    kind = "forward"          # forward | reverse | socks | origin
    connect = True            # can it CONNECT to the origin's port?
    ready_timeout = 30.0

    @property
    def socks_port(self) -> int | None:
        """Where it serves SOCKS5, if it does."""
        return self.port if self.kind == "socks" else None

    def probe(self) -> None:
        o = self.bench.origin_port
        if self.kind == "socks":
            status, body = socks5_get(self.port, o)
        elif self.kind == "forward":
            status, body = http_get(self.port, f"http://{LOCAL}:{o}/small.bin", f"{LOCAL}:{o}")
        else:
            status, body = http_get(self.port, "/small.bin", f"{LOCAL}:{o}")
        if status != 200 or body != SMALL_BODY:
            raise StartError(f"probe GET got status {status}, {len(body)} body bytes")

    def start(self) -> "Peer":
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port(self.bench.used_ports)
        self.logpath = self.dir / "stdout.log"
        try:
            argv = self.argv()
            self.proc = Proc(self.tag, argv, self.logpath, cwd=self.dir, user=self.run_as)
            self.wait_ready()
        except StartError as e:
            self.error = f"failed to start: {e}"
        except (OSError, subprocess.SubprocessError) as e:
            self.error = f"failed to start: {e}"
        if self.error:
            log(f"{self.tag}: {self.error}")
            self.stop()
        else:
            log(f"{self.tag}: ready on {LOCAL}:{self.port} (pid {self.proc.pid})")
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise StartError(f"exited with status {self.proc.popen.returncode}: "
                                 + self.diagnostics())
            try:
                self.probe()
                return
            except StartError as e:
                last = str(e)
            except (OSError, ValueError, IndexError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.2)
        raise StartError(f"not ready after {self.ready_timeout:.0f} s ({last}): "
                         + self.diagnostics())

    run_as: tuple[str, str] | None = None   # (user, group) to start it as; None: as we are

    def logs(self) -> list[Path]:
        return [self.logpath]

    def diagnostics(self) -> str:
        parts = []
        for p in self.logs():
            t = tail(p, 8)
            if t:
                parts.append(f"[{p.name}] " + " | ".join(t.splitlines()))
        return " ".join(parts)[-900:] or "(no log output)"

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    @property
    def ok(self) -> bool:
        return self.error is None and self.proc is not None and self.proc.alive()


def run_as_user(preferred: str) -> tuple[str, str] | None:
    """(user, group) for daemons that refuse to keep root, or None when not root."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        import grp
        return name, grp.getgrgid(pw.pw_gid).gr_name
    return None


def chown_tree(path: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)


class Nginx(Peer):
    kind = "origin"
    connect = False

    def argv(self) -> list[str]:
        d, b = self.dir, self.bench
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir(exist_ok=True)
        conns = max(1024, b.nofile)
        (d / "nginx.conf").write_text(f"""
{user}
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile {b.nofile};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_header_timeout 600s;
    send_timeout 600s;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {LOCAL}:{self.port} backlog=4096;
        root {b.www};
        location / {{ }}
    }}
}}
""")
        return ["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")]

    def probe(self) -> None:
        status, body = http_get(self.port, "/small.bin", f"{LOCAL}:{self.port}")
        if status != 200 or body != SMALL_BODY:
            raise StartError(f"probe GET got status {status}")

    def logs(self):
        return [self.logpath, self.dir / "error.log"]


class Anonproxy(Peer):
    # Keys the brief's config does not need; dropped if this build rejects them.
    OPTIONAL = ("connect_ports", "log_level")

    def __init__(self, bench, variant="", workers=2, mode="elite", policies: Path | None = None,
                 name: str = "anonproxy", binary: Path | None = None, socks: bool = False):
        super().__init__(bench, name, variant)
        self.workers, self.mode, self.policies = workers, mode, policies
        self.binary = binary or bench.binary
        self.dropped: list[str] = []
        # socks: a second listener, "protocol": "socks5", after the HTTP one (which
        # must stay first); self.port stays the HTTP listener's.
        self.socks = socks
        self._socks_port = 0

    @property
    def socks_port(self) -> int | None:
        if not self.socks:
            return None
        if not self._socks_port:
            self._socks_port = free_port(self.bench.used_ports)
        return self._socks_port

    def probe(self) -> None:
        super().probe()
        if self.socks:
            status, body = socks5_get(self.socks_port, self.bench.origin_port)
            if status != 200 or body != SMALL_BODY:
                raise StartError(f"SOCKS5 probe GET got status {status}, {len(body)} body bytes")

    def config(self) -> dict:
        o = self.bench.origin_port
        listen = [{"address": f"{LOCAL}:{self.port}"}]
        if self.socks:
            listen.append({"address": f"{LOCAL}:{self.socks_port}", "protocol": "socks5"})
        cfg = {
            "listen": listen,
            "mode": self.mode,
            "workers": self.workers,
            "log_level": "warn",
            "connect_ports": [f"{o}-{o}"],
            "limits": {"max_connections": 30000},
            "timeouts": {"idle": 600, "tunnel_idle": 600, "io": 600, "shutdown": 2},
        }
        if self.policies is not None:
            cfg["policies"] = str(self.policies)
        return cfg

    def check_config(self) -> Path:
        """Writes the config; `anonproxy -t` it, dropping optional keys it rejects."""
        cfg = self.config()
        path = self.dir / "anonproxy.json"
        while True:
            path.write_text(json.dumps(cfg, indent=2) + "\n")
            r = run([str(self.binary), "-t", "-c", str(path)], timeout=20)
            if r.returncode == 0:
                return path
            msg = (r.stderr or r.stdout).strip().replace("\n", " | ")
            dropped = [k for k in self.OPTIONAL if k in cfg and re.search(rf"\b{k}\b", msg)]
            if not dropped:
                raise StartError(f"config rejected: {msg}")
            for k in dropped:
                log(f"{self.name}: this build rejects optional key {k!r} ({msg}); dropping it")
                del cfg[k]
                self.dropped.append(k)

    def argv(self) -> list[str]:
        if not self.binary.exists():
            raise StartError(f"{self.binary} not built")
        return [str(self.binary), "-c", str(self.check_config())]


class BaselineAnonproxy(Anonproxy):
    """anonproxy built from --baseline REV in a git worktree (Bench.build_baseline):
    the anonproxy peer's config and workers, with that build's binary and the
    policies folder of that revision (its build/../policies, named explicitly;
    left to the binary when that revision has no policies folder)."""

    def __init__(self, bench, workers=2):
        b = bench.baseline
        pol = b["src"] / "policies"
        super().__init__(bench, workers=workers, policies=pol if pol.is_dir() else None,
                         name=b["label"], binary=b["src"] / "build" / "anonproxy")


class Squid(Peer):
    ready_timeout = 45.0

    def argv(self) -> list[str]:
        d, o = self.dir, self.bench.origin_port
        who = run_as_user("proxy")
        user = f"cache_effective_user {who[0]}\ncache_effective_group {who[1]}" if who else ""
        (d / "squid.conf").write_text(f"""
http_port {LOCAL}:{self.port}
visible_hostname bench.invalid
{user}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache_store_log none
logfile_rotate 0
coredump_dir {d}
netdb_filename none
cache deny all
cache_mem 0 MB
workers 1
max_filedescriptors {self.bench.nofile}
client_db off
pinger_enable off
icp_port 0
htcp_port 0
snmp_port 0
dns_nameservers {LOCAL}
shutdown_lifetime 0 seconds
half_closed_clients off
read_timeout 10 minutes
client_lifetime 1 hour
# Privacy: no client address, no Via, no version string.
forwarded_for delete
via off
httpd_suppress_version_string on
# Loopback clients only; CONNECT only to the bench origin's port.
acl bench_port port {o}
http_access deny CONNECT !bench_port
http_access allow localhost
http_access deny all
""")
        if who:
            chown_tree(d, who[0])
        r = run(["squid", "-k", "parse", "-f", str(d / "squid.conf")], timeout=30)
        if r.returncode != 0:
            raise StartError("squid -k parse: " + " | ".join((r.stderr + r.stdout).splitlines()[-6:]))
        return ["squid", "-N", "-f", str(d / "squid.conf")]

    def logs(self):
        return [self.logpath, self.dir / "cache.log"]


class Tinyproxy(Peer):
    def argv(self) -> list[str]:
        d, o = self.dir, self.bench.origin_port
        who = run_as_user("nobody")
        user = f"User {who[0]}\nGroup {who[1]}" if who else ""
        (d / "tinyproxy.conf").write_text(f"""
{user}
Port {self.port}
Listen {LOCAL}
Timeout 600
LogFile "{d}/tinyproxy.log"
LogLevel Error
PidFile "{d}/tinyproxy.pid"
MaxClients 12000
Allow 127.0.0.1
DisableViaHeader Yes
XTinyproxy No
ConnectPort {o}
""")
        if who:
            chown_tree(d, who[0])
        return ["tinyproxy", "-d", "-c", str(d / "tinyproxy.conf")]

    def logs(self):
        return [self.logpath, self.dir / "tinyproxy.log"]


class Privoxy(Peer):
    def argv(self) -> list[str]:
        d, o = self.dir, self.bench.origin_port
        conf = d / "conf"
        conf.mkdir(exist_ok=True)
        src = Path("/etc/privoxy")
        names = ["match-all.action", "default.action", "user.action",
                 "default.filter", "user.filter"]
        for n in names:
            if not (src / n).exists():
                raise StartError(f"{src / n} missing (Debian's privoxy package ships it)")
            shutil.copy(src / n, conf / n)
        # Default actions as Debian ships them, plus CONNECT to the bench origin.
        (conf / "bench.action").write_text(f"{{+limit-connect{{{o}}}}}\n/\n")
        (d / "config").write_text(f"""
confdir {conf}
templdir {src / 'templates'}
logdir {d}
logfile privoxy.log
actionsfile match-all.action
actionsfile default.action
actionsfile user.action
actionsfile bench.action
filterfile default.filter
filterfile user.filter
listen-address {LOCAL}:{self.port}
toggle 1
enable-remote-toggle 0
enable-remote-http-toggle 0
enable-edit-actions 0
enforce-blocks 0
buffer-limit 4096
enable-proxy-authentication-forwarding 0
forwarded-connect-retries 0
accept-intercepted-requests 0
allow-cgi-request-crunching 0
split-large-forms 0
keep-alive-timeout 600
tolerate-pipelining 1
socket-timeout 600
max-client-connections 12000
""")
        return ["privoxy", "--no-daemon", "--pidfile", str(d / "privoxy.pid"), str(d / "config")]

    def logs(self):
        return [self.logpath, self.dir / "privoxy.log"]


class Haproxy(Peer):
    kind = "reverse"
    connect = False

    def argv(self) -> list[str]:
        d, o = self.dir, self.bench.origin_port
        maxconn = max(256, (self.bench.nofile - 200) // 2)
        (d / "haproxy.cfg").write_text(f"""
global
    nbthread 2
    maxconn {maxconn}
    pidfile {d}/haproxy.pid
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
frontend fe
    bind {LOCAL}:{self.port}
    default_backend be
backend be
    server origin {LOCAL}:{o}
""")
        r = run(["haproxy", "-c", "-f", str(d / "haproxy.cfg")], timeout=30)
        if r.returncode != 0:
            raise StartError("haproxy -c: " + " | ".join((r.stderr + r.stdout).splitlines()[-6:]))
        return ["haproxy", "-db", "-f", str(d / "haproxy.cfg")]


class Microsocks(Peer):
    """microsocks: SOCKS5 only, no authentication, a thread per connection. It has no
    user switch of its own, so as root it is started as nobody."""
    kind = "socks"

    def __init__(self, bench, name, variant=""):
        super().__init__(bench, name, variant)
        self.run_as = run_as_user("nobody")

    def argv(self) -> list[str]:
        return ["microsocks", "-i", LOCAL, "-p", str(self.port)]


class Dante(Peer):
    """Dante's danted in the foreground (no -D), one mother process (-N 1) with its
    negotiate/request/io children; SOCKS5 "socksmethod: none", CONNECT only, from and
    to loopback (to the bench origin's port only). As root it drops to nobody itself."""
    kind = "socks"

    def argv(self) -> list[str]:
        d, o = self.dir, self.bench.origin_port
        who = run_as_user("nobody")
        user = f"user.privileged: root\nuser.unprivileged: {who[0]}" if who else ""
        conf = d / "danted.conf"
        conf.write_text(f"""
logoutput: stderr
errorlog: stderr
internal: {LOCAL} port = {self.port}
external: {LOCAL}
{user}
clientmethod: none
socksmethod: none
timeout.negotiate: 30
timeout.io: 600
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: {LOCAL}/32 port = {o} command: connect }}
socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}
""")
        r = run(["danted", "-V", "-f", str(conf)], timeout=30)
        if r.returncode != 0:
            raise StartError("danted -V: " + " | ".join((r.stderr + r.stdout).splitlines()[-6:]))
        return ["danted", "-f", str(conf), "-N", "1", "-p", str(d / "danted.pid")]


PEER_CLASSES = {"squid": Squid, "tinyproxy": Tinyproxy, "privoxy": Privoxy, "haproxy": Haproxy,
                "microsocks": Microsocks, "dante": Dante}


# --------------------------------------------------------------- workloads

def established_on(port: int) -> int:
    """Established TCP connections whose local port is port (accepted by the server there)."""
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    n += 1
    except (OSError, ValueError, IndexError, StopIteration):
        return -1
    return n


def run_wrk(port: int, target: str, host: str, duration: float, threads: int = 2,
            conns: int = 50, cpu_pid: int | None = None, prefix: list[str] | None = None,
            watch_port: int | None = None) -> dict:
    """wrk to 127.0.0.1:port; prefix wraps it (proxychains4 ...); watch_port: count the
    connections established there halfway through the run (the SOCKS listener's)."""
    argv = (prefix or []) + [
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration:g}s", "--latency",
        "--timeout", "5s", "-s", str(LUA), f"http://{LOCAL}:{port}/", "--", target, host]
    watched: list[int] = []
    timer = None
    if watch_port:
        timer = threading.Timer(duration / 2, lambda: watched.append(established_on(watch_port)))
        timer.start()
    cpu0 = proc_tree_cpu_s(cpu_pid) if cpu_pid else None
    try:
        r = run(argv, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return {"error": "wrk timed out"}
    finally:
        if timer:
            timer.cancel()
    cpu = proc_tree_cpu_s(cpu_pid) - cpu0 if cpu_pid else None
    m = re.search(r"^BENCHJSON (\{.*\})$", r.stdout, re.M)
    if not m:
        return {"error": "wrk: " + " | ".join((r.stderr + r.stdout).strip().splitlines()[-4:])}
    j = json.loads(m.group(1))
    secs = j["duration_us"] / 1e6
    good = j["requests"] - j["errors_status"]
    sock_errors = sum(j[k] for k in ("errors_connect", "errors_read", "errors_write",
                                     "errors_timeout"))
    res = {"rps": good / secs if secs else 0.0, "p50_ms": j["p50_us"] / 1000,
           "p99_ms": j["p99_us"] / 1000, "requests": j["requests"],
           "non_2xx_3xx": j["errors_status"], "socket_errors": sock_errors, "wrk": j,
           "server_cpu_s": cpu,
           # CPU the proxy (or, for direct, nginx) spent per request: steadier than
           # req/s when other jobs share the CPUs.
           "cpu_us_per_req": cpu * 1e6 / good if cpu is not None and good > 0 else None}
    if watch_port:
        res["established_mid_run"] = watched[0] if watched else None
    if good <= 0:
        res["error"] = f"no successful request ({j['errors_status']} bad statuses, " \
                       f"{sock_errors} socket errors)"
    return res


def run_curl(url: str, size: int, proxy_port: int | None, tunnel: bool, timeout: float,
             socks_port: int | None = None, cpu_pid: int | None = None) -> dict:
    argv = ["curl", "-s", "-o", "/dev/null", "--max-time", f"{timeout:g}",
            "-w", "%{http_code} %{size_download} %{speed_download} %{time_total}"]
    if socks_port is not None:
        argv += ["--socks5-hostname", f"{LOCAL}:{socks_port}"]
    elif proxy_port is None:
        argv += ["--noproxy", "*"]
    else:
        argv += ["-x", f"http://{LOCAL}:{proxy_port}"] + (["-p"] if tunnel else [])
    argv.append(url)
    cpu0 = proc_tree_cpu_s(cpu_pid) if cpu_pid else None
    try:
        r = run(argv, timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return {"error": "curl timed out"}
    cpu = proc_tree_cpu_s(cpu_pid) - cpu0 if cpu_pid else None
    try:
        code, got, speed, total = r.stdout.split()
        got, speed, total = int(got), float(speed), float(total)
    except ValueError:
        return {"error": f"curl exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}"}
    res = {"mbps": speed / 1e6, "http_code": code, "bytes": got, "seconds": total,
           "curl_exit": r.returncode}
    if cpu is not None:
        res["server_cpu_s"] = cpu
        res["cpu_s_per_gib"] = cpu * 2**30 / got if got else None
    if r.returncode != 0 or code != "200" or got != size:
        res["error"] = f"curl exit {r.returncode}, HTTP {code}, {got}/{size} bytes"
    return res


def set_linger0_close(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def idle_tunnels(proxy_port: int, origin: int, n: int, pid: int, budget: float, hold: float,
                 batch: int = 256, per_socket_timeout: float = 30.0) -> dict:
    """Opens n CONNECT tunnels, checks each with one request, holds them, measures RSS."""
    t0 = time.monotonic()
    deadline = t0 + budget
    hp = f"{LOCAL}:{origin}"
    connect_req = f"CONNECT {hp} HTTP/1.1\r\nHost: {hp}\r\n\r\n".encode()
    get_req = f"GET /small.bin HTTP/1.1\r\nHost: {hp}\r\n\r\n".encode()
    errors: collections.Counter = collections.Counter()
    sel = selectors.DefaultSelector()
    established: list[socket.socket] = []
    verified: list[socket.socket] = []
    res: dict = {"n": n}

    def drop(st, why):
        errors[why] += 1
        try:
            sel.unregister(st["s"])
        except (KeyError, ValueError):
            pass
        set_linger0_close(st["s"])

    def pump(items, begin, on_data):
        """Runs a phase: begin(st) starts an item, on_data(st) -> True when it is done."""
        pending: dict[int, dict] = {}
        it = iter(items)
        exhausted = False
        last_sweep = time.monotonic()
        while (pending or not exhausted) and time.monotonic() < deadline:
            while not exhausted and len(pending) < batch:
                item = next(it, None)
                if item is None:
                    exhausted = True
                    break
                st = begin(item)
                if st is not None:
                    pending[id(st)] = st
            for key, _ in sel.select(timeout=0.2):
                st = key.data
                try:
                    done = on_data(st)
                except OSError as e:
                    done = f"{type(e).__name__}: {errno.errorcode.get(e.errno, e.errno)}"
                if done:
                    pending.pop(id(st), None)
                    if done is not True:
                        drop(st, done)
            now = time.monotonic()
            if now - last_sweep > 1.0:
                last_sweep = now
                for k, st in list(pending.items()):
                    if now - st["t"] > per_socket_timeout:
                        del pending[k]
                        drop(st, f"no answer in {per_socket_timeout:g} s ({st['stage']})")
        for st in pending.values():
            drop(st, f"harness time budget ({budget:g} s) spent ({st['stage']})")
        if not exhausted:
            left = sum(1 for _ in it)
            errors[f"not attempted: time budget ({budget:g} s) spent"] += left

    # Phase 1: connect and CONNECT.
    def begin_connect(_):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((LOCAL, proxy_port))
        if rc not in (0, errno.EINPROGRESS):
            errors[f"connect: {errno.errorcode.get(rc, rc)}"] += 1
            set_linger0_close(s)
            return None
        st = {"s": s, "buf": b"", "t": time.monotonic(), "stage": "connecting"}
        sel.register(s, selectors.EVENT_WRITE, st)
        return st

    def on_connect_data(st):
        s = st["s"]
        if st["stage"] == "connecting":
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return f"connect: {errno.errorcode.get(err, err)}"
            s.send(connect_req)
            st["stage"] = "awaiting CONNECT reply"
            sel.modify(s, selectors.EVENT_READ, st)
            return False
        try:
            data = s.recv(4096)
        except BlockingIOError:
            return False
        if not data:
            return "closed before the CONNECT reply"
        st["buf"] += data
        if b"\r\n\r\n" not in st["buf"]:
            return False
        head, _, rest = st["buf"].partition(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if line.split(" ")[1:2] != ["200"]:
            return f"CONNECT answered {line[:60]!r}"
        if rest:
            return "data after the CONNECT reply"
        sel.unregister(s)
        established.append(s)
        return True

    rss0 = proc_tree_rss_kb(pid)
    pump(range(n), begin_connect, on_connect_data)
    t1 = time.monotonic()
    res["established"] = len(established)
    res["rss_established_kb"] = proc_tree_rss_kb(pid)

    # Phase 2: one request through each tunnel.
    def begin_get(s):
        st = {"s": s, "buf": b"", "t": time.monotonic(), "stage": "awaiting GET response"}
        try:
            s.send(get_req)
        except OSError as e:
            drop(st, f"send GET: {errno.errorcode.get(e.errno, e.errno)}")
            return None
        sel.register(s, selectors.EVENT_READ, st)
        return st

    def on_get_data(st):
        s = st["s"]
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return False
        if not data:
            return "tunnel closed before the response"
        st["buf"] += data
        if b"\r\n\r\n" not in st["buf"]:
            return False
        head, _, body = st["buf"].partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if not m:
            return "response without Content-Length"
        if len(body) < int(m.group(1)):
            return False
        if head.split(b" ", 2)[1] != b"200" or body != SMALL_BODY:
            return f"bad response through tunnel: {head.splitlines()[0][:60]!r}"
        sel.unregister(s)
        verified.append(s)
        return True

    pump(list(established), begin_get, on_get_data)
    t2 = time.monotonic()
    res["verified"] = len(verified)

    # Hold, measure, then check that every tunnel is still open.
    time.sleep(hold)
    rss_held = proc_tree_rss_kb(pid)
    alive = 0
    check = selectors.DefaultSelector()
    for s in verified:
        check.register(s, selectors.EVENT_READ)
    readable = {k.fileobj for k, _ in check.select(timeout=0.5)}
    for s in verified:
        if s in readable:
            try:
                data = s.recv(1)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data is not None:
                errors["closed (or sent data) while held"] += 1
                continue
        alive += 1
    check.close()
    for s in verified:
        set_linger0_close(s)
    sel.close()
    held = max(len(verified), 1)
    res.update({
        "served": alive, "rss_before_kb": rss0, "rss_held_kb": rss_held,
        "kb_per_tunnel": (rss_held - rss0) / held,
        "kb_per_tunnel_established": (res["rss_established_kb"] - rss0) / max(len(established), 1),
        "seconds_establish": round(t1 - t0, 2), "seconds_verify": round(t2 - t1, 2),
        "errors": dict(errors.most_common(8)),
    })
    return res


# ------------------------------------------------------------------ harness

def rotate(items: list, i: int) -> list:
    k = i % len(items) if items else 0
    return items[k:] + items[:k]


def median_of(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = Path(args.anonproxy).resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix="anonproxy-bench-"))
        os.chmod(self.tmp, 0o755)
        self.www = self.tmp / "www"
        self.used_ports: set[int] = set()
        self.peers_started: list[Peer] = []
        self.origin_port = 0
        self.nofile = 1024
        self.notes: list[str] = []
        self.results: dict = {}
        self.peers: dict[str, Peer | None] = {}
        self.selected = {"anonproxy", "direct"} | set(args.peers)
        # --baseline REV: that revision, built in a worktree under self.tmp.
        self.baseline: dict | None = None
        if args.baseline:
            short = args.baseline_short
            self.baseline = {"rev": args.baseline, "commit": args.baseline_commit,
                             "short": short, "label": f"anonproxy@{short}",
                             "src": self.tmp / "baseline-src"}
            self.selected.add(self.baseline["label"])

    # -------- setup
    def raise_nofile(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = WANT_NOFILE
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            want = hard if hard != resource.RLIM_INFINITY else WANT_NOFILE
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if self.nofile < WANT_NOFILE:
            self.notes.append(f"RLIMIT_NOFILE is {self.nofile} (hard limit {hard}; raising it "
                              f"needs CAP_SYS_RESOURCE), so every process here has at most "
                              f"{self.nofile} descriptors.")
        log(f"RLIMIT_NOFILE = {self.nofile} for this script and every server it starts")

    def make_files(self) -> None:
        self.www.mkdir()
        os.chmod(self.www, 0o755)
        (self.www / "small.bin").write_bytes(SMALL_BODY)
        self.big_size = self.args.big_mib * 1024 * 1024
        block = bytes(1024 * 1024)
        with open(self.www / "big.bin", "wb") as f:
            for _ in range(self.args.big_mib):
                f.write(block)
            # Written back now, not while the first downloads are being timed.
            f.flush()
            os.fsync(f.fileno())
        for p in self.www.iterdir():
            os.chmod(p, 0o644)
        log(f"origin files: small.bin (64 B), big.bin ({self.args.big_mib} MiB) in {self.www}")

    def versions(self) -> dict:
        out = {}
        for name, argv in {"nginx": ["nginx", "-v"], "squid": ["squid", "-v"],
                           "tinyproxy": ["tinyproxy", "-v"], "privoxy": ["privoxy", "--version"],
                           "haproxy": ["haproxy", "-v"], "wrk": ["wrk", "-v"],
                           "curl": ["curl", "--version"],
                           "anonproxy": [str(self.binary), "-V"],
                           **({self.baseline["label"]:
                               [str(self.baseline["src"] / "build" / "anonproxy"), "-V"]}
                              if self.baseline and not self.baseline.get("error") else {})}.items():
            try:
                r = run(argv, timeout=10)
                out[name] = (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else ""
            except (OSError, subprocess.SubprocessError) as e:
                out[name] = f"unavailable: {e}"
        # No version option (microsocks, proxychains4) or one that says little: Debian's.
        for name, pkg in (("microsocks", "microsocks"), ("dante", "dante-server"),
                          ("proxychains4", "proxychains4")):
            try:
                r = run(["dpkg-query", "-W", "-f=${Version}", pkg], timeout=10)
                out[name] = f"{pkg} {r.stdout.strip()}" if r.returncode == 0 else "not installed"
            except (OSError, subprocess.SubprocessError) as e:
                out[name] = f"unavailable: {e}"
        return out

    # -------- peers
    def start_peer(self, name: str, **kw) -> Peer:
        if name == "anonproxy":
            return Anonproxy(self, **kw).start()
        if self.baseline and name == self.baseline["label"]:
            return BaselineAnonproxy(self, **kw).start()
        return PEER_CLASSES[name](self, name).start()

    def small_names(self) -> list[str]:
        """HTTP_PEERS, plus the baseline build right after anonproxy when there is one."""
        if not self.baseline:
            return list(HTTP_PEERS)
        return HTTP_PEERS[:1] + [self.baseline["label"]] + HTTP_PEERS[1:]

    def small_order(self, i: int) -> list[str]:
        """Round i of small requests: HTTP_PEERS rotated, so load spikes hit everyone; the
        baseline build always back to back with anonproxy, first every other round,
        so that the two figures of a round saw the same load."""
        order = rotate(HTTP_PEERS, i)
        if self.baseline:
            k = order.index("anonproxy") + (i % 2 == 0)
            order.insert(k, self.baseline["label"])
        return order

    def status_of(self, name: str, peers: dict | None = None) -> str | None:
        """None when the peer can be measured, else why not. peers: where to look it
        up (the socks workload's own), self.peers by default."""
        if name == "direct":
            return None
        if name not in self.selected:
            return "skipped (--peers)"
        if self.baseline and name == self.baseline["label"] and self.baseline.get("error"):
            return self.baseline["error"]
        p = (self.peers if peers is None else peers).get(name)
        if p is None:
            return "not run"
        if p.error:
            return p.error
        if not p.ok:
            return "died: " + p.diagnostics()
        return None

    def endpoint(self, name: str) -> tuple[int, str, str]:
        """(port to connect to, request target, Host) for small requests."""
        o = self.origin_port
        if name == "direct":
            return o, "/small.bin", f"{LOCAL}:{o}"
        p = self.peers[name]
        if p.kind == "reverse":
            return p.port, "/small.bin", f"{LOCAL}:{o}"
        return p.port, f"http://{LOCAL}:{o}/small.bin", f"{LOCAL}:{o}"

    # -------- workloads
    def wl_small(self) -> None:
        a = self.args
        names = self.small_names()
        out = {n: {"runs": []} for n in names}
        for n in SOCKS:
            out[n] = {"runs": [], "error": SOCKS_ONLY, "median": {}}
        for i in range(a.runs):
            for name in self.small_order(i):   # interleaved, so load spikes hit everyone
                why = self.status_of(name)
                if why:
                    out[name]["error"] = why
                    continue
                port, target, host = self.endpoint(name)
                pid = self.origin.proc.pid if name == "direct" else self.peers[name].proc.pid
                r = run_wrk(port, target, host, a.duration, conns=a.connections, cpu_pid=pid)
                r["round"] = i + 1
                out[name]["runs"].append(r)
                log(f"small requests run {i + 1}/{a.runs} {name}: " +
                    (r.get("error") or f"{r['rps']:,.0f} req/s p50 {r['p50_ms']:.2f} ms "
                                       f"p99 {r['p99_ms']:.2f} ms, "
                                       f"{r['cpu_us_per_req']:.1f} us CPU/req, "
                                       f"{r['non_2xx_3xx']} bad statuses, "
                                       f"{r['socket_errors']} socket errors"))
        for name in names:
            self.summarise(out[name], ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"))
        self.results["small"] = out
        if self.baseline:
            self.compare_baseline(out)

    def compare_baseline(self, small: dict) -> None:
        """anonproxy against the --baseline build: ratios of the medians (the
        target), and per-round ratios, both having run in the same round."""
        b = self.baseline
        res = self.results["baseline"]
        cur, base = small["anonproxy"], small[b["label"]]
        if cur.get("error") and not any("error" not in r for r in cur["runs"]) \
                or base.get("error") and not any("error" not in r for r in base["runs"]):
            return
        res["cpu_ratio"] = ratio(cur["median"]["cpu_us_per_req"], base["median"]["cpu_us_per_req"])
        res["rps_ratio"] = ratio(cur["median"]["rps"], base["median"]["rps"])
        by_round = {r["round"]: r for r in base["runs"] if "error" not in r}
        pairs = [(r, by_round[r["round"]]) for r in cur["runs"]
                 if "error" not in r and r["round"] in by_round]
        res["cpu_ratio_per_round"] = [ratio(c.get("cpu_us_per_req"), p.get("cpu_us_per_req"))
                                      for c, p in pairs]
        res["rps_ratio_per_round"] = [ratio(c["rps"], p["rps"]) for c, p in pairs]
        log(f"baseline {b['label']}: CPU per small request ratio "
            f"{fmt_num(res['cpu_ratio'], 3)} (medians), per round "
            + ", ".join(fmt_num(x, 3) for x in res["cpu_ratio_per_round"]))

    def summarise(self, entry: dict, keys) -> None:
        runs = entry["runs"]
        entry["median"] = {k: median_of(runs, k) for k in keys}
        if runs and all("error" in r for r in runs) and "error" not in entry:
            entry["error"] = runs[-1]["error"]

    def compare_anonproxy(self, key: str, variants: dict[str, dict]) -> dict:
        """Interleaved small-request runs for several anonproxy configurations."""
        a = self.args
        out = {}
        procs = {}
        for label, kw in variants.items():
            p = Anonproxy(self, variant=label, **kw).start()
            procs[label] = p
            out[label] = {"runs": [], "config": kw | {"policies": str(kw.get("policies"))}}
            if p.error:
                out[label]["error"] = p.error
        try:
            for i in range(a.runs):
                # Alternate the order so neither variant always runs first.
                order = list(procs.items())
                for label, p in (order if i % 2 == 0 else order[::-1]):
                    if not p.ok:
                        out[label].setdefault("error", "died: " + p.diagnostics())
                        continue
                    o = self.origin_port
                    r = run_wrk(p.port, f"http://{LOCAL}:{o}/small.bin", f"{LOCAL}:{o}",
                                a.duration, conns=a.connections, cpu_pid=p.proc.pid)
                    out[label]["runs"].append(r)
                    log(f"{key} run {i + 1}/{a.runs} anonproxy {label}: " +
                        (r.get("error") or f"{r['rps']:,.0f} req/s, "
                                           f"{r['cpu_us_per_req']:.1f} us CPU/req"))
        finally:
            for p in procs.values():
                p.stop()
        for label in out:
            self.summarise(out[label], ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"))
        return out

    def wl_scaling(self) -> None:
        self.results["scaling"] = self.compare_anonproxy(
            "scaling", {"workers1": {"workers": 1}, "workers2": {"workers": 2}})

    def wl_elite(self) -> None:
        src = ROOT / "policies" / "elite.json"
        if not src.exists():
            self.results["elite"] = {"error": f"n/a: {src.relative_to(ROOT)} does not exist yet"}
            log("elite scrubbing cost: " + self.results["elite"]["error"])
            return
        pol = self.tmp / "policies"
        pol.mkdir(exist_ok=True)
        for f in (ROOT / "policies").glob("*.json"):   # elite.json may "extend" others
            shutil.copy(f, pol / f.name)
        (pol / "pass.json").write_text(json.dumps(
            {"description": "passes everything", "request": {}, "response": {}}, indent=2) + "\n")
        # Does this build take a "policies" directory and a custom mode at all?
        probe = Anonproxy(self, variant="probe", mode="pass", policies=pol)
        probe.dir.mkdir(parents=True, exist_ok=True)
        probe.port = free_port(self.used_ports)
        try:
            probe.check_config()
        except StartError as e:
            self.results["elite"] = {"error": f"n/a: this build rejects the policies config ({e})"}
            log("elite scrubbing cost: " + self.results["elite"]["error"])
            return
        out = self.compare_anonproxy("elite cost", {
            "elite": {"mode": "elite", "policies": pol, "workers": 2},
            "pass": {"mode": "pass", "policies": pol, "workers": 2}})
        # Run i of both variants ran back to back: compare within each pair,
        # then take the median, so that load from other jobs drifting over
        # the minute the workload takes does not land on one side only.
        pairs = [(e, p) for e, p in zip(out["elite"]["runs"], out["pass"]["runs"])
                 if "error" not in e and "error" not in p and e.get("rps") and p.get("rps")]
        if pairs:
            out["cost_percent"] = statistics.median((p["rps"] - e["rps"]) / p["rps"] * 100
                                                    for e, p in pairs)
            cpu = [(e["cpu_us_per_req"] - p["cpu_us_per_req"]) / p["cpu_us_per_req"] * 100
                   for e, p in pairs if e.get("cpu_us_per_req") and p.get("cpu_us_per_req")]
            if cpu:
                out["cpu_cost_percent"] = statistics.median(cpu)
        else:
            out["error"] = "; ".join(f"{k}: {v['error']}" for k, v in out.items()
                                     if isinstance(v, dict) and v.get("error")) or "no result"
        self.results["elite"] = out

    def wl_bulk(self, key: str, tunnel: bool) -> None:
        a = self.args
        names = [n for n in PEERS if n == "direct" or
                 (n in FORWARD if tunnel else n in FORWARD + ["haproxy"])]
        url = f"http://{LOCAL}:{self.origin_port}/big.bin"
        out = {n: {"runs": []} for n in PEERS}
        for n in PEERS:
            if n in SOCKS:
                out[n]["error"] = SOCKS_ONLY
            elif n not in names:
                out[n]["error"] = "n/a: not a forward proxy" if tunnel else "n/a"
        for i in range(a.runs):
            for name in rotate(names, i):
                why = self.status_of(name)
                if why:
                    out[name]["error"] = why
                    continue
                if name == "direct":
                    r = run_curl(url, self.big_size, None, False, a.curl_timeout)
                elif self.peers[name].kind == "reverse":
                    r = run_curl(f"http://{LOCAL}:{self.peers[name].port}/big.bin",
                                 self.big_size, None, False, a.curl_timeout)
                else:
                    r = run_curl(url, self.big_size, self.peers[name].port, tunnel,
                                 a.curl_timeout)
                out[name]["runs"].append(r)
                log(f"{key} run {i + 1}/{a.runs} {name}: " +
                    (r.get("error") or f"{r['mbps']:,.0f} MB/s in {r['seconds']:.2f} s"))
        for name in PEERS:
            self.summarise(out[name], ("mbps",))
        self.results[key] = out

    def proxychains_conf(self, name: str, port: int) -> Path:
        """A proxychains4 config: strict_chain through the one SOCKS5 server on port."""
        path = self.tmp / f"proxychains-{name}.conf"
        path.write_text(f"""# every connect() of the program goes through {LOCAL}:{port}
strict_chain
quiet_mode
tcp_read_time_out 15000
tcp_connect_time_out 8000
[ProxyList]
socks5 {LOCAL} {port}
""")
        return path

    def wl_socks(self) -> None:
        """SOCKS5: the 1 GiB file with curl --socks5-hostname, and small requests with
        wrk under proxychains4 (each keep-alive connection of wrk is one SOCKS5 CONNECT
        tunnel, requests flow inside it), anonproxy's socks5 listener against microsocks
        and dante; the direct row for reference. Its own processes, started here."""
        a = self.args
        names = ["anonproxy"] + SOCKS + ["direct"]
        o = self.origin_port
        host = f"{LOCAL}:{o}"
        url = f"http://{host}/big.bin"
        tp = {n: {"runs": []} for n in PEERS}
        rt = {n: {"runs": []} for n in PEERS}
        for n in PEERS:
            if n not in names:
                tp[n]["error"] = rt[n]["error"] = "n/a: no SOCKS5 listener"
        res = self.results["socks"] = {"throughput": tp, "rate": rt}
        # The anonproxy peer's config with a socks5 listener after the HTTP one.
        peers: dict[str, Peer] = {"anonproxy": Anonproxy(self, variant="socks", workers=2,
                                                         socks=True).start()}
        for n in SOCKS:
            if n in self.selected:
                peers[n] = self.start_peer(n)
        try:
            # One untimed download each first: a process's first big transfer (buffers
            # growing, pages faulted in) is not what the rounds compare.
            for name in names:
                if not self.status_of(name, peers):
                    w = run_curl(url, self.big_size, None, False, a.curl_timeout,
                                 socks_port=None if name == "direct" else peers[name].socks_port)
                    log(f"socks throughput warm-up {name}: "
                        + (w.get("error") or f"{w['mbps']:,.0f} MB/s (not counted)"))
            for i in range(a.runs):
                for name in rotate(names, i):
                    why = self.status_of(name, peers)
                    if why:
                        tp[name]["error"] = why
                        continue
                    if name == "direct":
                        r = run_curl(url, self.big_size, None, False, a.curl_timeout,
                                     cpu_pid=self.origin.proc.pid)
                    else:
                        p = peers[name]
                        r = run_curl(url, self.big_size, None, False, a.curl_timeout,
                                     socks_port=p.socks_port, cpu_pid=p.proc.pid)
                    r["round"] = i + 1
                    tp[name]["runs"].append(r)
                    log(f"socks throughput run {i + 1}/{a.runs} {name}: " +
                        (r.get("error") or f"{r['mbps']:,.0f} MB/s in {r['seconds']:.2f} s, "
                                           f"{r.get('cpu_s_per_gib') or 0:.2f} CPU s/GiB"))

            # Does proxychains4 really put wrk's connections through the SOCKS server?
            # Through a port where nothing listens, wrk must get no response at all.
            dead = free_port(self.used_ports)
            pre = run_wrk(o, "/small.bin", host, 1.0, conns=2,
                          prefix=["proxychains4", "-q", "-f",
                                  str(self.proxychains_conf("nothing-listens", dead))])
            res["preflight"] = {"socks_port_with_no_listener": dead,
                                "wrk": pre.get("error") or f"{pre['requests']} responses"}
            bypass = "error" not in pre and pre.get("requests", 0) > 0
            if bypass:
                why = (f"proxychains4 does not redirect wrk here: with its SOCKS5 server on a "
                       f"port nothing listens on, wrk still got {pre['requests']} responses")
                log(f"socks requests: {why}")
                for n in ["anonproxy"] + SOCKS:
                    rt[n]["error"] = why
            else:
                log(f"socks requests: proxychains4 check ok (no SOCKS server on {dead}: "
                    f"{res['preflight']['wrk']})")
            confs = {n: self.proxychains_conf(n, p.socks_port) for n, p in peers.items()
                     if p.ok and p.socks_port}
            for i in range(a.runs):
                for name in rotate(names, i):
                    why = (rt[name].get("error") if bypass and name != "direct"
                           else self.status_of(name, peers))
                    if why:
                        rt[name]["error"] = why
                        continue
                    if name == "direct":
                        r = run_wrk(o, "/small.bin", host, a.duration, conns=a.connections,
                                    cpu_pid=self.origin.proc.pid)
                    else:
                        p = peers[name]
                        r = run_wrk(o, "/small.bin", host, a.duration, conns=a.connections,
                                    cpu_pid=p.proc.pid,
                                    prefix=["proxychains4", "-q", "-f", str(confs[name])],
                                    watch_port=p.socks_port)
                        seen = r.get("established_mid_run")
                        if seen == 0 and "error" not in r:
                            r["error"] = (f"no connection established on the SOCKS5 port "
                                          f"{p.socks_port} halfway through: wrk bypassed it")
                        elif seen is not None and 0 < seen < a.connections:
                            self.notes.append(f"SOCKS5 small requests, {name} round {i + 1}: "
                                              f"{seen} of wrk's {a.connections} connections "
                                              f"were established on its SOCKS5 port halfway "
                                              f"through the run.")
                    r["round"] = i + 1
                    rt[name]["runs"].append(r)
                    log(f"socks requests run {i + 1}/{a.runs} {name}: " +
                        (r.get("error") or f"{r['rps']:,.0f} req/s p50 {r['p50_ms']:.2f} ms "
                                           f"p99 {r['p99_ms']:.2f} ms, "
                                           f"{r['cpu_us_per_req']:.1f} us CPU/req, "
                                           f"{r['non_2xx_3xx']} bad statuses, "
                                           f"{r['socket_errors']} socket errors"
                                           + (f", {r['established_mid_run']} tunnels on the "
                                              f"SOCKS5 port mid-run"
                                              if r.get("established_mid_run") is not None else "")))
        finally:
            for p in peers.values():
                p.stop()
        for name in PEERS:
            self.summarise(tp[name], ("mbps", "cpu_s_per_gib"))
            self.summarise(rt[name], ("rps", "p50_ms", "p99_ms", "cpu_us_per_req",
                                      "established_mid_run"))

    def wl_idle(self) -> None:
        a = self.args
        n = a.tunnels
        cap = (self.nofile - 64) // 2   # the proxy needs 2 descriptors a tunnel
        if n > cap:
            if a.tunnels_explicit:
                self.notes.append(f"--tunnels {n} exceeds what RLIMIT_NOFILE={self.nofile} allows "
                                  f"a proxy (~{cap}); running it anyway.")
            else:
                self.notes.append(f"Idle tunnels: N capped from {n:,} to {cap:,} because each "
                                  f"proxy holds 2 descriptors per tunnel and RLIMIT_NOFILE is "
                                  f"{self.nofile}.")
                n = cap
        out = {name: {"runs": [], "n": n} for name in PEERS}
        for name in PEERS:
            if name not in FORWARD:
                out[name]["error"] = SOCKS_ONLY if name in SOCKS else "n/a: not a forward proxy"
        for name in FORWARD:
            if name not in self.selected:
                out[name]["error"] = "skipped (--peers)"
                continue
            for i in range(a.runs):
                # A fresh process for every run: RSS growth from a clean start.
                p = self.start_peer(name)
                try:
                    if p.error:
                        out[name]["error"] = p.error
                        break
                    try:   # warm-up: lazily created per-process state is not per-tunnel cost
                        for _ in range(4):
                            tunnel_get(p.port, self.origin_port)
                    except (OSError, ValueError, IndexError) as e:
                        log(f"idle tunnels {name}: warm-up tunnel failed: {e}")
                    time.sleep(0.5)
                    r = idle_tunnels(p.port, self.origin_port, n, p.proc.pid, a.tunnel_budget,
                                     a.hold)
                    r["proxy_alive_after"] = p.ok
                    if not p.ok:
                        r["proxy_log"] = p.diagnostics()
                    else:
                        r["proxy_log_tail"] = p.diagnostics()[-400:]
                    out[name]["runs"].append(r)
                    log(f"idle tunnels run {i + 1}/{a.runs} {name}: served {r['served']:,}/{n:,}, "
                        f"{r['kb_per_tunnel']:.1f} KB/tunnel (RSS {r['rss_before_kb']:,} -> "
                        f"{r['rss_held_kb']:,} kB), established in {r['seconds_establish']} s, "
                        f"verified in {r['seconds_verify']} s, errors {r['errors']}")
                finally:
                    p.stop()
                time.sleep(1.0)   # let the kernel reap the closed sockets
        for name in PEERS:
            e = out[name]
            runs = e["runs"]
            e["median"] = {"kb_per_tunnel": median_of(runs, "kb_per_tunnel"),
                           "served": median_of(runs, "served")}
            e["min_served"] = min((r["served"] for r in runs), default=None)
        self.results["idle"] = out

    # -------- the --baseline build
    def build_baseline(self) -> None:
        """git worktree add --detach <tmp>/baseline-src REV; make -C there all."""
        b = self.baseline
        src = b["src"]
        res = self.results["baseline"] = {k: str(v) for k, v in b.items()}
        log(f"baseline: git worktree add --detach {src} {b['rev']} ({b['commit'][:12]})")
        try:
            r = run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(src), b["commit"]],
                    timeout=300)
        except subprocess.TimeoutExpired:
            r = None
        if r is None or r.returncode != 0:
            b["error"] = "git worktree add failed: " + (
                "timed out" if r is None else " | ".join((r.stderr + r.stdout).strip().splitlines()[-4:]))
        else:
            # Plain `make all`: no flags inherited from a `make bench` (SAN=1, -j...).
            env = {k: v for k, v in clean_env().items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
            build_log = self.tmp / "baseline-build.log"
            log(f"baseline: make -C {src} all (output in {build_log})")
            t0 = time.monotonic()
            try:
                r = run(["make", "-C", str(src), "all"], timeout=1800, env=env)
                build_log.write_text(r.stdout + r.stderr)
                if r.returncode != 0 or not (src / "build" / "anonproxy").exists():
                    b["error"] = (f"make -C baseline-src all failed (exit {r.returncode}): "
                                  + " | ".join((r.stderr.strip() or r.stdout.strip())
                                               .splitlines()[-4:]))
            except subprocess.TimeoutExpired:
                b["error"] = "make -C baseline-src all timed out after 1800 s"
            res["build_seconds"] = round(time.monotonic() - t0, 1)
        if b.get("error"):
            res["error"] = b["error"]
            log(f"baseline {b['label']}: {b['error']}")
        else:
            log(f"baseline {b['label']}: built in {res['build_seconds']:g} s")

    def remove_baseline(self) -> None:
        """Removes the worktree and git's record of it; only ever this one."""
        if not self.baseline:
            return
        src = self.baseline["src"]
        common = run(["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute",
                      "--git-common-dir"], timeout=30).stdout.strip()
        if src.exists():
            r = run(["git", "-C", str(ROOT), "worktree", "remove", "--force", "--force", str(src)],
                    timeout=120)
            if r.returncode != 0:
                log(f"baseline: git worktree remove: {r.stderr.strip()}; removing it by hand")
            shutil.rmtree(src, ignore_errors=True)
        # An interrupted add or remove can leave git's record of the worktree behind:
        # drop the one whose gitdir points into our folder (not `git worktree prune`,
        # which would touch other people's worktrees too).
        admin = Path(common) / "worktrees" if common else None
        if admin and admin.is_dir():
            for d in admin.iterdir():
                try:
                    points_to = Path((d / "gitdir").read_text().strip())
                except OSError:
                    continue
                if points_to == src / ".git":
                    shutil.rmtree(d, ignore_errors=True)
        self.baseline["removed"] = True

    # -------- orchestration
    def run(self) -> None:
        a = self.args
        self.raise_nofile()
        if self.baseline:
            self.build_baseline()
        self.make_files()
        origin = Nginx(self, "origin").start()
        if origin.error:
            raise SystemExit(f"bench: the nginx origin did not start, nothing to measure: "
                             f"{origin.error}")
        self.origin_port = origin.port
        self.origin = origin
        self.meta = {
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(), "nofile": self.nofile,
            "runs": a.runs, "duration_s": a.duration, "connections": a.connections,
            "big_file_bytes": self.big_size, "versions": self.versions(),
            "origin_port": self.origin_port,
        }
        self.meta["anonproxy_tree"] = self.tree_state()
        wl = set(a.workloads)
        if wl & {"small", "tunnel", "plain"}:
            self.peers["anonproxy"] = self.start_peer("anonproxy", workers=2)
            if self.baseline and not self.baseline.get("error"):
                label = self.baseline["label"]
                p = self.peers[label] = self.start_peer(label, workers=self.peers["anonproxy"].workers)
                if p.error:
                    self.baseline["error"] = p.error
                    self.results["baseline"]["error"] = p.error
                cur = self.peers["anonproxy"]
                if isinstance(cur, Anonproxy) and sorted(p.dropped) != sorted(cur.dropped):
                    self.notes.append(f"The two anonproxy configs differ: this build dropped "
                                      f"{cur.dropped or 'no key'}, {label} dropped "
                                      f"{p.dropped or 'no key'} (optional keys it rejects).")
            for name in PEER_CLASSES:
                if name in self.selected and PEER_CLASSES[name].kind != "socks":
                    self.peers[name] = self.start_peer(name)
        if "small" in wl:
            self.wl_small()
        if "scaling" in wl:
            self.wl_scaling()
        if "elite" in wl:
            self.wl_elite()
        if "tunnel" in wl:
            self.wl_bulk("tunnel", tunnel=True)
        if "plain" in wl:
            self.wl_bulk("plain", tunnel=False)
        for name, p in self.peers.items():
            if p:
                p.stop()
        if "socks" in wl:
            self.wl_socks()
        if "idle" in wl:
            self.wl_idle()
        # Last lines of every server's logs, for errors worth a look.
        self.meta["server_logs"] = {f"{p.tag}#{i}": p.diagnostics()
                                    for i, p in enumerate(self.peers_started) if p.proc}
        if not origin.ok:
            self.notes.append("The nginx origin died during the run: " + origin.diagnostics())
        self.meta["loadavg_end"] = os.getloadavg()
        busy = max(self.meta["loadavg_start"][0], self.meta["loadavg_end"][0])
        if busy > (os.cpu_count() or 1):
            self.notes.append(f"The machine was busy (load average up to {busy:.1f} on "
                              f"{os.cpu_count()} CPUs, other jobs included): figures are noisy.")
        self.meta["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    def tree_state(self) -> dict:
        """What build/anonproxy was built from, as far as git can tell."""
        out = {"binary": str(self.binary)}
        try:
            out["head"] = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              timeout=30).stdout.strip()
            # What the build reads: C sources and headers, and the Makefile.
            paths = ["src/*.c", "src/*.h", "Makefile"]
            st = run(["git", "-C", str(ROOT), "status", "--porcelain", "--"] + paths,
                     timeout=60).stdout.splitlines()
            out["uncommitted_src_files"] = len(st)
            mtime = self.binary.stat().st_mtime
            out["binary_mtime"] = datetime.datetime.fromtimestamp(
                mtime).astimezone().isoformat(timespec="seconds")
            last = run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %ct", "--"] + paths,
                       timeout=30).stdout.split()
            if len(last) == 2 and int(last[1]) > mtime:
                out["older_than_commit"] = last[0]
        except (OSError, subprocess.SubprocessError) as e:
            out["error"] = str(e)
        flavour = ROOT / "build" / ".flavour"
        if self.binary == (ROOT / "build" / "anonproxy").resolve() and flavour.exists():
            out["flavour"] = flavour.read_text().strip()
        if self.baseline:
            if out.get("uncommitted_src_files"):
                self.notes.append(f"{self.binary.name} was built from a tree at "
                                  f"{out.get('head')} with {out['uncommitted_src_files']} "
                                  f"uncommitted source file(s) (src/*.c, src/*.h, Makefile) "
                                  f"at start.")
            if out.get("older_than_commit"):
                self.notes.append(f"{self.binary.name} is older than commit "
                                  f"{out['older_than_commit']}, the last one to change src/*.c, "
                                  f"src/*.h or Makefile: it may not be a build of HEAD "
                                  f"({out.get('head')}).")
            if out.get("flavour", "build/obj") != "build/obj":
                self.notes.append(f"build/anonproxy is a {out['flavour']} build (SAN=1?) while "
                                  f"the baseline is a plain one: the comparison is unfair.")
        return out

    def cleanup(self) -> None:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # let a second Ctrl-C not stop the clean-up
        Proc.stop_all()
        if self.baseline and not self.baseline.get("removed"):
            try:
                self.remove_baseline()
                log(f"baseline: removed the worktree {self.baseline['src']}")
            except (OSError, subprocess.SubprocessError) as e:
                log(f"baseline: could not remove the worktree {self.baseline['src']}: {e}")
        if self.args.keep_tmp:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------ report

def fmt_num(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


class Report:
    def __init__(self, bench: Bench):
        self.b = bench
        self.r = bench.results
        self.verdicts: list[str] = []
        self.baseline_line: str | None = None

    def cell_error(self, entry: dict | None) -> str | None:
        if entry is None:
            return "not run"
        if entry.get("error") and not any("error" not in r for r in entry.get("runs", [])):
            return entry["error"]
        return None

    @staticmethod
    def clean(text: str) -> str:
        text = text.replace("|", "/").replace("\n", " ")
        return text if len(text) <= 160 else text[:157] + "..."

    def target(self, desc: str, value: float | None, limit: float, higher: bool,
               extra_ok: bool = True) -> str:
        if value is None:
            v = "N/A"
        elif (value >= limit if higher else value <= limit) and extra_ok:
            v = "PASS"
        else:
            v = "FAIL"
        self.verdicts.append(v)
        return f"{desc}: {v}"

    def row_metric(self, key: str, metric: str, unit: str, digits: int,
                   entries: dict | None = None) -> tuple[list[str], dict]:
        cells, vals = [], {}
        for name in PEERS:
            e = (self.r.get(key, {}) if entries is None else entries).get(name)
            err = self.cell_error(e)
            if err:
                cells.append(self.clean(err))
                continue
            v = e["median"][metric]
            vals[name] = v
            bad = [r for r in e["runs"] if "error" in r]
            s = f"{fmt_num(v, digits)} {unit}"
            if bad:
                s += f" ({len(bad)}/{len(e['runs'])} runs failed: {self.clean(bad[0]['error'])})"
            if metric == "rps":
                kinds = collections.Counter()
                for r in e["runs"]:
                    for k in ("connect", "read", "write", "timeout", "status"):
                        kinds[k] += r.get("wrk", {}).get(f"errors_{k}", 0)
                errs = ", ".join(f"{v:,} {'bad-status' if k == 'status' else k}"
                                 for k, v in kinds.items() if v)
                if errs:
                    s += f" (wrk errors: {errs})"
            cells.append(s)
        return cells, vals

    def ratios(self, vals: dict, unit: str, digits: int) -> str:
        a = vals.get("anonproxy")
        if a is None:
            return "n/a"
        parts = [f"{ratio(a, vals[n]):.2f}x {LABELS.get(n, n).split(' ')[0]}"
                 + (" (ceiling)" if n == "haproxy" else "")
                 for n in PEERS[1:] if vals.get(n)]
        return f"anonproxy {fmt_num(a, digits)} {unit} = " + (", ".join(parts) or "no peer figure")

    def note_small_bound(self, vals: dict, cvals: dict) -> None:
        """Puts the squid target in the light of this machine: wrk, nginx and
        the proxy share its CPUs, so no proxy can beat the direct row."""
        squid, direct = vals.get("squid"), vals.get("direct")
        if not squid or not direct:
            return
        text = (f"Small requests: 4x squid is {4 * squid:,.0f} req/s here, "
                f"{4 * squid / direct:.2f}x the direct row ({direct:,.0f} req/s, wrk straight to "
                f"nginx with no proxy at all) on {os.cpu_count()} CPUs that wrk, nginx and the proxy share.")
        if cvals.get("anonproxy") and cvals.get("squid"):
            text += (f" By CPU per request, anonproxy uses {cvals['squid'] / cvals['anonproxy']:.2f}x "
                     f"less than squid ({cvals['anonproxy']:.1f} against {cvals['squid']:.1f} us).")
        self.b.notes.append(text)

    def baseline_target(self) -> str:
        """The refactor check: CPU per small request against --baseline REV."""
        bl = self.b.baseline
        res = self.r.get("baseline", {})
        cur = self.r["small"]["anonproxy"]["median"].get("cpu_us_per_req")
        base = self.r["small"][bl["label"]]["median"].get("cpu_us_per_req")
        at = bl["short"] + (f" ({bl['rev']})" if bl["rev"] != bl["short"] else "")
        value = res.get("cpu_ratio")
        desc = (f"CPU per small request: {fmt_num(cur, 1)} µs vs {fmt_num(base, 1)} µs at {at}: "
                f"ratio {fmt_num(value, 3)} (target ≤ 1.05)")
        return self.target(desc, value, 1.05, False)

    def baseline_row(self) -> list[str]:
        bl = self.b.baseline
        label = bl["label"]
        e = self.r["small"][label]
        err = self.cell_error(e)
        if err:
            cell = self.clean(f"{label}: {err}")
        else:
            m = e["median"]
            cell = (f"{label}: {fmt_num(m['rps'])} req/s, p50 / p99 {m['p50_ms']:.2f} / "
                    f"{m['p99_ms']:.2f} ms, CPU {fmt_num(m['cpu_us_per_req'], 1)} us/req")
            bad = [r for r in e["runs"] if "error" in r]
            if bad:
                cell += f" ({len(bad)}/{len(e['runs'])} runs failed: {self.clean(bad[0]['error'])})"
        res = self.r.get("baseline", {})
        rat = ""
        if res.get("cpu_ratio") is not None:
            per = [x for x in res.get("cpu_ratio_per_round", []) if x is not None]
            rat = (f"anonproxy / {label}: req/s {fmt_num(res['rps_ratio'], 3)}x, "
                   f"CPU/request {fmt_num(res['cpu_ratio'], 3)}x")
            if len(per) > 1:
                rat += (f" (per round: {min(per):.3f}-{max(per):.3f}, "
                        f"median {statistics.median(per):.3f})")
        self.baseline_line = self.baseline_target()
        src = "built aside" + (f" from {bl['rev']}" if bl["rev"] != bl["short"] else "")
        return ([f"1d. Refactor check: small requests, anonproxy against {label} "
                 f"({src}), same config and workers"]
                + [cell] + ["-"] * (len(PEERS) - 1) + [rat, self.baseline_line])

    def socks_rows(self, big: str) -> list[list[str]]:
        """7: SOCKS5 CONNECT throughput; 7b-7d: small requests through a SOCKS5 listener."""
        s, rows, a = self.r["socks"], [], self.b.args

        def targets(vals):
            return "; ".join(
                self.target(f">= 1.2x {n}", ratio(vals.get("anonproxy"), vals.get(n)), 1.2, True)
                for n in SOCKS)

        def per_round(entries, metric):
            """Range of anonproxy / peer within each round (both ran in it, minutes apart at
            most): how much of a ratio of medians is load from other jobs."""
            def by_round(n):
                return {r["round"]: r[metric] for r in entries[n]["runs"]
                        if "error" not in r and r.get(metric)}
            mine, parts = by_round("anonproxy"), []
            for n in SOCKS:
                theirs = by_round(n)
                rs = [mine[k] / theirs[k] for k in sorted(mine) if k in theirs]
                if len(rs) > 1:
                    parts.append(f"{n} {min(rs):.2f}-{max(rs):.2f}")
            return f"; per round: {', '.join(parts)}" if parts else ""

        cells, vals = self.row_metric("socks", "mbps", "MB/s", 0, s["throughput"])
        for k, name in enumerate(PEERS):
            e = s["throughput"][name]
            c = None if self.cell_error(e) else e["median"].get("cpu_s_per_gib")
            if c is not None:
                cells[k] += f" (CPU {c:.2f} s/GiB" + (", nginx)" if name == "direct" else ")")
        rows.append([f"7. SOCKS5 CONNECT throughput, {big}, curl --socks5-hostname (MB/s; "
                     f"CPU of the proxy process per GiB)"] + cells
                    + [self.ratios(vals, "MB/s", 0) + per_round(s["throughput"], "mbps"),
                       targets(vals)])
        cells, vals = self.row_metric("socks", "rps", "req/s", 0, s["rate"])
        rows.append([f"7b. Small requests through SOCKS5, 64 B GET, proxychains4 wrk -t2 "
                     f"-c{a.connections} keep-alive: a tunnel per connection (req/s)"] + cells
                    + [self.ratios(vals, "req/s", 0) + per_round(s["rate"], "rps"),
                       targets(vals)])
        lat, cpu, cvals = [], [], {}
        for name in PEERS:
            e = s["rate"][name]
            err = self.cell_error(e)
            lat.append("-" if err else f"{e['median']['p50_ms']:.2f} / {e['median']['p99_ms']:.2f} ms")
            v = None if err else e["median"].get("cpu_us_per_req")
            cpu.append("-" if v is None else f"{v:.1f} us" + (" (nginx)" if name == "direct" else ""))
            if v is not None and name != "direct":
                cvals[name] = v
        rows.append(["7c. Small requests through SOCKS5: latency p50 / p99"] + lat + ["", ""])
        rows.append(["7d. Small requests through SOCKS5: CPU per request of the proxy process"]
                    + cpu + [self.ratios(cvals, "us/req", 1) + " (lower is better)", ""])
        return rows

    def build(self) -> str:
        head = ["Workload"] + [LABELS.get(n, n) for n in PEERS] + ["anonproxy vs peers", "Targets"]
        rows = []
        r = self.r

        if "small" in r:
            cells, vals = self.row_metric("small", "rps", "req/s", 0)
            t = "; ".join([
                self.target(">= 4x squid", ratio(vals.get("anonproxy"), vals.get("squid")), 4, True),
                self.target(">= 6x tinyproxy", ratio(vals.get("anonproxy"), vals.get("tinyproxy")), 6, True),
                self.target(">= 0.9x haproxy", ratio(vals.get("anonproxy"), vals.get("haproxy")), 0.9, True)])
            rows.append([f"1. Small requests, 64 B GET, wrk -t2 -c{self.b.args.connections} "
                         f"keep-alive (req/s)"] + cells + [self.ratios(vals, "req/s", 0), t])
            lat = []
            for name in PEERS:
                e = r["small"][name]
                err = self.cell_error(e)
                lat.append("-" if err else f"{e['median']['p50_ms']:.2f} / {e['median']['p99_ms']:.2f} ms")
            rows.append(["1b. Small requests latency p50 / p99"] + lat + ["", ""])
            cpu, cvals = [], {}
            for name in PEERS:
                e = r["small"][name]
                v = None if self.cell_error(e) else e["median"].get("cpu_us_per_req")
                cpu.append("-" if v is None else f"{v:.1f} us" + (" (nginx)" if name == "direct" else ""))
                if v is not None and name != "direct":
                    cvals[name] = v
            rows.append(["1c. Small requests: CPU per request of the proxy process "
                         "(less load-sensitive than req/s)"] + cpu
                        + [self.ratios(cvals, "us/req", 1) + " (lower is better)", ""])
            self.note_small_bound(vals, cvals)
            if self.b.baseline:
                rows.append(self.baseline_row())

        big = f"{self.b.args.big_mib / 1024:g} GiB" if self.b.args.big_mib >= 1024 else f"{self.b.args.big_mib} MiB"
        if "tunnel" in r:
            cells, vals = self.row_metric("tunnel", "mbps", "MB/s", 0)
            t = "; ".join([
                self.target(">= 1.2x squid", ratio(vals.get("anonproxy"), vals.get("squid")), 1.2, True),
                self.target(">= 0.8x direct", ratio(vals.get("anonproxy"), vals.get("direct")), 0.8, True)])
            rows.append([f"2. Tunnel throughput, {big} through CONNECT, curl -p (MB/s)"] + cells
                        + [self.ratios(vals, "MB/s", 0), t])
        if "plain" in r:
            cells, vals = self.row_metric("plain", "mbps", "MB/s", 0)
            rows.append([f"3. Plain-HTTP throughput, {big} absolute-form GET (MB/s)"] + cells
                        + [self.ratios(vals, "MB/s", 0), "(no target)"])
        if "idle" in r:
            cells, vals = [], {}
            idle = r["idle"]
            for name in PEERS:
                e = idle[name]
                err = self.cell_error(e)
                if err or not e["runs"]:
                    cells.append(self.clean(err or "no run"))
                    continue
                v = e["median"]["kb_per_tunnel"]
                vals[name] = v
                runs = e["runs"]
                lo, hi = min(x["served"] for x in runs), max(x["served"] for x in runs)
                served = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
                each = "in the run" if len(runs) == 1 else f"in each of {len(runs)} runs" \
                    if lo == hi else f"over {len(runs)} runs"
                cells.append(f"{v:.1f} KB/tunnel, served {served}/{e['n']:,} {each}")
            a = idle.get("anonproxy", {})
            all_served = bool(a.get("runs")) and a.get("min_served") == a.get("n")
            t = self.target(f"<= 8 KB/tunnel at {idle['anonproxy']['n']:,}, every tunnel served",
                            vals.get("anonproxy"), 8.0, False, all_served)
            rows.append(["4. Idle CONNECT tunnels: RSS growth per tunnel, tunnels served"]
                        + cells + [self.ratios(vals, "KB/tunnel", 1), t])
        if "scaling" in r:
            s = r["scaling"]
            w1, w2 = s["workers1"], s["workers2"]
            e1, e2 = self.cell_error(w1), self.cell_error(w2)
            if e1 or e2:
                cell = self.clean(f"workers=1: {e1 or 'ok'}; workers=2: {e2 or 'ok'}")
                rat = "n/a"
            else:
                v1, v2 = w1["median"]["rps"], w2["median"]["rps"]
                cell = f"workers=1 {fmt_num(v1)} -> workers=2 {fmt_num(v2)} req/s"
                c1, c2 = w1["median"].get("cpu_us_per_req"), w2["median"].get("cpu_us_per_req")
                if c1 and c2:
                    cell += f" (CPU/request {c1:.1f} vs {c2:.1f} us)"
                rat = f"workers=2 / workers=1 = {ratio(v2, v1):.2f}x"
            rows.append(["5. Scaling: small requests, anonproxy workers 1 vs 2"] + [cell]
                        + ["-"] * (len(PEERS) - 1) + [rat, "(no target)"])
        if "elite" in r:
            el = r["elite"]
            if "cost_percent" in el:
                ve, vp = el["elite"]["median"]["rps"], el["pass"]["median"]["rps"]
                cell = (f"elite {fmt_num(ve)} vs pass {fmt_num(vp)} req/s (medians); "
                        f"cost, median over back-to-back pairs: {el['cost_percent']:.1f}%")
                if "cpu_cost_percent" in el:
                    cell += (f"; CPU/request elite {el['elite']['median']['cpu_us_per_req']:.1f} vs "
                             f"pass {el['pass']['median']['cpu_us_per_req']:.1f} us, paired: "
                             f"{el['cpu_cost_percent']:+.1f}%")
                cost = el["cost_percent"]
            else:
                cell = self.clean(el.get("error", "n/a"))
                cost = None
            rows.append(["6. Elite scrubbing cost: small requests, mode elite vs pass"] + [cell]
                        + ["-"] * (len(PEERS) - 1)
                        + ["" if cost is None else f"elite = {1 - cost / 100:.3f}x pass",
                           self.target("<= 5%", cost, 5.0, False)])

        if "socks" in r:
            rows += self.socks_rows(big)

        def line(cols):
            return "| " + " | ".join(cols) + " |"
        out = [line(head), line(["---"] * len(head))] + [line(row) for row in rows]
        return "\n".join(out)


# -------------------------------------------------------------------- main

def check_deps() -> None:
    def missing() -> list[str]:
        out = []
        for pkg, binary in PACKAGES.items():
            r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                               text=True, timeout=30)
            if "install ok installed" not in r.stdout or not shutil.which(
                    binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                out.append(pkg)
        return out

    need = missing()
    if not need:
        return
    if os.geteuid() != 0:
        print(f"bench: missing Debian packages: {' '.join(need)}\n"
              f"bench: install them as root with:\n  {APT_LINE}", file=sys.stderr)
        sys.exit(1)
    log(f"installing {' '.join(need)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + list(PACKAGES)
    r = subprocess.run(cmd, env=env, timeout=1200, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, timeout=600, capture_output=True)
        r = subprocess.run(cmd, env=env, timeout=1200, capture_output=True, text=True)
    if r.returncode != 0 or missing():
        print(f"bench: {APT_LINE} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}", file=sys.stderr)
        sys.exit(1)


def ensure_binary(path: Path) -> None:
    if path.exists():
        return
    for attempt in range(3):
        log(f"{path} missing: make -C {ROOT} (attempt {attempt + 1})")
        try:
            r = run(["make", "-C", str(ROOT)], timeout=600)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0 and path.exists():
            return
        time.sleep(5)
    log(f"{path} could not be built; anonproxy rows will say so")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="development run: 1 run of 2 s, 1,000 idle tunnels")
    p.add_argument("--runs", type=int, help="runs per figure, the median is reported (default 3)")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    p.add_argument("--tunnels", type=int, help="idle tunnels to hold (default 10,000)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--big-mib", type=int, default=1024, help="size of the big file (default 1024)")
    p.add_argument("--hold", type=float, help="seconds to hold the idle tunnels before measuring")
    p.add_argument("--tunnel-budget", type=float, default=120.0,
                   help="seconds allowed per idle-tunnel run (default 120)")
    p.add_argument("--curl-timeout", type=float, default=180.0,
                   help="seconds allowed per big download (default 180)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)} (default all)")
    p.add_argument("--peers", default=",".join(PEER_CLASSES),
                   help="comma-separated peers to measure besides anonproxy and direct "
                        f"(default {','.join(PEER_CLASSES)}; 'none' or '' for none)")
    p.add_argument("--baseline", metavar="REV",
                   help="also measure anonproxy built from git revision REV (in a temporary "
                        "worktree) in the small-requests workload: the refactor check, CPU per "
                        "small request within 5%% of REV's")
    p.add_argument("--anonproxy", default=str(ROOT / "build" / "anonproxy"),
                   help="the binary to measure (default build/anonproxy)")
    p.add_argument("--json", default=str(ROOT / "build" / "bench.json"),
                   help="where to write raw runs and medians (default build/bench.json)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (configs, logs)")
    a = p.parse_args(argv)
    a.tunnels_explicit = a.tunnels is not None
    a.runs = a.runs or (1 if a.quick else 3)
    a.duration = a.duration or (2.0 if a.quick else 10.0)
    a.tunnels = a.tunnels or (1000 if a.quick else 10000)
    a.hold = a.hold if a.hold is not None else (1.0 if a.quick else 3.0)
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    a.peers = [w.strip() for w in a.peers.split(",") if w.strip()]
    if a.peers == ["none"]:
        a.peers = []
    bad_peers = set(a.peers) - set(PEER_CLASSES)
    if bad_peers:
        p.error(f"unknown peers {sorted(bad_peers)} (choose from {', '.join(PEER_CLASSES)})")
    bad = set(a.workloads) - set(WORKLOADS)
    if bad or a.runs < 1 or a.duration <= 0 or a.tunnels < 1 or a.big_mib < 1:
        p.error(f"bad arguments {sorted(bad) if bad else ''}")
    if a.baseline is not None:
        if "small" not in a.workloads:
            p.error("--baseline compares small requests: --workloads must include small")
        r = run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                 f"{a.baseline}^{{commit}}"], timeout=30)
        if r.returncode != 0 or not r.stdout.strip():
            p.error(f"--baseline {a.baseline}: not a commit of {ROOT}")
        a.baseline_commit = r.stdout.strip()
        a.baseline_short = run(["git", "-C", str(ROOT), "rev-parse", "--short", a.baseline_commit],
                               timeout=30).stdout.strip()
    return a


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(Proc.stop_all)
    check_deps()
    ensure_binary(Path(args.anonproxy))
    bench = Bench(args)
    atexit.register(bench.cleanup)
    try:
        bench.run()
    finally:
        Proc.stop_all()
    report = Report(bench)
    table = report.build()
    a = args
    print(f"\n## anonproxy benchmark ({'quick: ' if a.quick else ''}median of {a.runs} run(s), "
          f"{a.duration:g} s wrk runs, {os.cpu_count()} CPUs, load average at start "
          f"{bench.meta['loadavg_start'][0]:.2f}"
          + (f"; baseline {bench.baseline['label']}" if bench.baseline else "") + ")\n")
    print(table)
    v = collections.Counter(report.verdicts)
    print(f"\nTargets: {v['PASS']} PASS, {v['FAIL']} FAIL, {v['N/A']} N/A. "
          "Ratios are anonproxy / peer (for KB/tunnel and CPU/request, lower is better). "
          "Every process ran on 127.0.0.1 on the same machine as its load generator.")
    if report.baseline_line:
        print(f"Refactor check: {report.baseline_line}")
    small = bench.results.get("small", {})
    for name in bench.small_names():
        runs = [r for r in small.get(name, {}).get("runs", []) if "wrk" in r]
        reads = sum(r["wrk"]["errors_read"] for r in runs)
        if runs and reads > 0.5 * sum(r["wrk"]["requests"] for r in runs):
            bench.notes.append(
                f"{name}: wrk counted {reads:,} read errors in small requests: the proxy closes "
                f"the client connection after each response without announcing it "
                f"(no Connection: close), so wrk reconnects every time; req/s counts the "
                f"responses received.")
    for n in bench.notes:
        print(f"- {n}")
    out = {"meta": bench.meta, "args": {k: v for k, v in vars(args).items()},
           "notes": bench.notes, "results": bench.results,
           "verdicts": dict(v), "table": table}
    path = Path(args.json)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"\nRaw runs and medians: {path}")
    except OSError as e:
        log(f"could not write {path}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
