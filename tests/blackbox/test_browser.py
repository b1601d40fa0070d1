"""A real browser: Chromium headless fetches the judge through each front
door (the http listener, a socks5 listener, an https listener) and through
CONNECT to an https:// page, and the judge's verdict is elite; the same http
listener in transparent mode is judged transparent.

Chromium runs as this machine's known-good probe does (--headless
--no-sandbox ... --dump-dom URL), with --proxy-bypass-list="<-loopback>"
because it bypasses proxies for loopback by default, in a fresh profile and
HOME of its own, each run bounded by a timeout. It connects from 127.0.0.1,
its real address (real_ip); the proxy connects out from 127.0.0.2
(outgoing_address), which nothing else here uses, so a judge that saw
127.0.0.2 got the request from the proxy. Every run also carries a unique
token in its query, so the judge's log names the run that reached it.

Trusting the proxy's (and the https page's) self-signed certificate:
--ignore-certificate-errors-spki-list=<base64 SHA-256 of the SPKI>, which
Chromium applies to https proxies too (without it: ERR_PROXY_CERTIFICATE_INVALID,
checked below). It trusts that key only, unlike --ignore-certificate-errors.

Chromium contacts Google in the background even with
--disable-background-networking (time, component updates, accounts): those
requests reach the proxy, whose DNS here is a fake server answering NXDOMAIN,
so nothing leaves the machine.

Debian package: chromium (every test skips when /usr/bin/chromium is missing).
"""
import base64
import hashlib
import html
import itertools
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import OPENSSL, clean_env, free_port, wait_until
from judgekit import start_judge

CHROMIUM = Path("/usr/bin/chromium")
REAL = "127.0.0.1"      # Chromium's address toward the proxy: the real IP
EXIT = "127.0.0.2"      # the proxy's outgoing_address
RELAY = "127.0.0.4"     # the https page's relay connects to the judge from here
RUN_TIMEOUT = 30

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium missing (Debian package chromium)")

_runs = itertools.count(1)


# ------------------------------------------------------------------ certificates


def make_cert(d, name):
    """A self-signed certificate for 127.0.0.1 and localhost; returns
    (cert, key, spki) where spki is the base64 SHA-256 of its public key."""
    cert, key = d / (name + ".pem"), d / (name + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    pub = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-pubkey", "-noout"],
                         check=True, capture_output=True, timeout=30).stdout
    der = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, capture_output=True, timeout=30).stdout
    return cert, key, base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser-certs")
    return {"proxy": make_cert(d, "proxy"), "page": make_cert(d, "page")}


# ------------------------------------------------------------------ Chromium


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.token = None       # the judge run's token (browse_judge)

    def __repr__(self):
        return "<Chromium rc=%s stdout=%r stderr(tail)=%r>" % (self.rc, self.out[-3000:],
                                                             self.err[-3000:])


def chromium(tmp_path, url, proxy=None, extra=()):
    """One Chromium headless run in a fresh profile and HOME; --dump-dom url.
    proxy None: --no-proxy-server (a direct request)."""
    n = next(_runs)
    home = tmp_path / ("chromium-%d" % n)
    profile = home / "profile"
    profile.mkdir(parents=True)
    how = ["--proxy-server=%s" % proxy, "--proxy-bypass-list=<-loopback>"] if proxy \
        else ["--no-proxy-server"]
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=%s" % profile, *how, *extra, "--dump-dom", url]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=str(home), start_new_session=True,
                            env=clean_env({"HOME": str(home)}))
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        pytest.fail("chromium did not finish within %ss: %s\nstderr:\n%s"
                    % (RUN_TIMEOUT, cmd, err.decode(errors="replace")[-4000:]))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # helpers left behind, if any
        except ProcessLookupError:
            pass
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def parse_judge_text(dom):
    """The judge's text answer as Chromium shows it (in a <pre>): a dict of
    its fields, plus "reasons" (list) and "headers" (list of (name, value))."""
    m = re.search(r"<pre[^>]*>(.*)</pre>", dom, re.S)
    if not m:
        return None
    answer = {"reasons": [], "headers": []}
    in_headers = False
    for line in html.unescape(m.group(1)).splitlines():
        if in_headers:
            name, _, value = line.partition(": ")
            answer["headers"].append((name, value))
        elif line == "headers:":
            in_headers = True
        else:
            key, _, value = line.partition(": ")
            if key == "reason":
                answer["reasons"].append(value)
            else:
                answer[key] = value
    return answer


def browse_judge(tmp_path, judge, proxy=None, extra=(), scheme="http", port=None):
    """Chromium fetches the judge (or whatever serves it on port) with
    real_ip=REAL and a unique run token. Returns (answer, run)."""
    token = "r%d" % next(_runs)
    url = "%s://127.0.0.1:%d/?real_ip=%s&run=%s" % (scheme, port or judge.port, REAL, token)
    run = chromium(tmp_path, url, proxy, extra)
    run.token = token
    answer = parse_judge_text(run.out)
    assert answer is not None, run
    assert answer["real_ip"] == REAL, answer
    assert answer["request_line"] == "GET /?real_ip=%s&run=%s HTTP/1.1" % (REAL, token), answer
    return answer, run


def judge_saw(judge, token):
    """The judge's log lines for the run with this token."""
    return [l for l in judge.log().splitlines() if "&run=%s " % token in l]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    j = start_judge(tmp_path_factory.mktemp("browser-judge"))
    yield j
    j.stop()


@pytest.fixture(scope="module")
def direct(judge, tmp_path_factory):
    """What Chromium sends the judge with no proxy: its remote address is the
    real IP, so transparent; its headers are the reference for the others."""
    answer, _ = browse_judge(tmp_path_factory.mktemp("browser-direct"), judge)
    assert answer["remote_ip"] == REAL, answer
    assert answer["verdict"] == "transparent", answer
    names = [n.lower() for n, _ in answer["headers"]]
    assert "user-agent" in names and "sec-fetch-mode" in names, answer
    return answer


@pytest.fixture
def browser_proxy(start_proxy, tmp_path, fake_dns):
    """start_proxy with outgoing_address EXIT and a DNS that answers NXDOMAIN;
    listeners after a plain http one (launch_proxy polls the first)."""
    dns = fake_dns()

    def _start(extra_listeners=(), **over):
        listen = [{"address": "127.0.0.1:%d" % free_port()}, *extra_listeners]
        cfg = {"listen": listen, "outgoing_address": EXIT,
               "dns": {"resolv_conf": dns.resolv_conf(tmp_path / "resolv.conf")}}
        cfg.update(over)
        return start_proxy(cfg)

    return _start


def port_of(p, i):
    return int(p.config["listen"][i]["address"].rsplit(":", 1)[1])


def assert_elite_through_proxy(answer, run, judge, direct):
    assert answer["verdict"] == "elite", (answer, run)
    assert answer["reasons"] == [], answer
    assert answer["remote_ip"] == EXIT, answer       # the proxy made the request
    # Chromium's own header fields, unchanged and in its order, as it sends
    # them without a proxy (its Proxy-Connection became Connection in place).
    assert answer["headers"] == direct["headers"], (answer["headers"], direct["headers"])
    assert [l.endswith("judge: %s GET /?real_ip=%s&run=%s HTTP/1.1 -> elite" % (EXIT, REAL, run.token))
            for l in judge_saw(judge, run.token)] == [True], judge.log()[-3000:]


# ------------------------------------------------------------------ tests


def test_http_listener_elite(browser_proxy, judge, direct, tmp_path):
    p = browser_proxy(mode="elite")
    answer, run = browse_judge(tmp_path, judge, "http://127.0.0.1:%d" % p.port)
    assert_elite_through_proxy(answer, run, judge, direct)
    wait_until(lambda: "http client %s: read-head -> connecting" % REAL in p.log(), 5,
               what="the proxy's log of Chromium's request")


def test_socks5_listener_elite(browser_proxy, judge, direct, tmp_path):
    p = browser_proxy([{"address": "127.0.0.1:%d" % free_port(), "protocol": "socks5"}])
    answer, run = browse_judge(tmp_path, judge, "socks5://127.0.0.1:%d" % port_of(p, 1))
    assert_elite_through_proxy(answer, run, judge, direct)
    wait_until(lambda: "socks client %s: request -> done" % REAL in p.log(), 5,
               what="the proxy's log of Chromium's SOCKS5 request")
    assert "http client %s: read-head" % REAL not in p.log()    # not the http listener


def test_https_listener_elite(browser_proxy, judge, direct, tmp_path, certs):
    cert, key, spki = certs["proxy"]
    p = browser_proxy([{"address": "127.0.0.1:%d" % free_port(),
                        "tls": {"cert": str(cert), "key": str(key)}}])
    url = "https://127.0.0.1:%d" % port_of(p, 1)
    answer, run = browse_judge(tmp_path, judge, url,
                               ["--ignore-certificate-errors-spki-list=%s" % spki])
    assert_elite_through_proxy(answer, run, judge, direct)

    # Without the pin Chromium refuses the listener's certificate: it did
    # speak TLS to it, and nothing reached the judge.
    token = "r%d" % next(_runs)
    bare = chromium(tmp_path, "http://127.0.0.1:%d/?real_ip=%s&run=%s" % (judge.port, REAL, token),
                    url)
    assert "ERR_PROXY_CERTIFICATE_INVALID" in bare.err, bare
    assert "verdict:" not in bare.out, bare
    assert judge_saw(judge, token) == [], judge.log()[-3000:]


def test_http_listener_transparent(browser_proxy, judge, direct, tmp_path):
    p = browser_proxy(mode="transparent")
    answer, run = browse_judge(tmp_path, judge, "http://127.0.0.1:%d" % p.port)
    assert answer["verdict"] == "transparent", (answer, run)
    assert answer["remote_ip"] == EXIT, answer       # through the proxy, which told
    assert ("X-Forwarded-For", REAL) in answer["headers"], answer
    assert "X-Forwarded-For: %s (carries the real IP)" % REAL in answer["reasons"], answer
    # Chromium's own fields are all there, in its order.
    added = [h for h in answer["headers"] if h not in direct["headers"]]
    assert [h for h in answer["headers"] if h not in added] == direct["headers"], answer
    assert [l.endswith("-> transparent") for l in judge_saw(judge, run.token)] == [True]


# ------------------------------------------------------------------ an https page


class TlsRelay:
    """An https server on 127.0.0.1 that relays each decrypted connection to
    the judge from RELAY, so the judge answers an https:// page. Keeps the
    address of every peer it accepted."""

    def __init__(self, cert, key, judge_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.judge_port = judge_port
        self.peers = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                s, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.peers.append(peer[0])
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        up = None
        try:
            s.settimeout(RUN_TIMEOUT)
            t = self.ctx.wrap_socket(s, server_side=True)
            up = socket.socket()
            up.settimeout(RUN_TIMEOUT)
            up.bind((RELAY, 0))
            up.connect(("127.0.0.1", self.judge_port))
            back = threading.Thread(target=self._pump, args=(up, t), daemon=True)
            back.start()
            self._pump(t, up)
            back.join(RUN_TIMEOUT)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for x in (up, s):
                if x is not None:
                    x.close()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.closed = True
        self.thread.join(5)
        self.sock.close()


def test_https_page_through_connect(browser_proxy, judge, direct, tmp_path, certs):
    cert, key, spki = certs["page"]
    relay = TlsRelay(cert, key, judge.port)
    try:
        p = browser_proxy(mode="elite")
        answer, run = browse_judge(tmp_path, judge, "http://127.0.0.1:%d" % p.port,
                                   ["--ignore-certificate-errors-spki-list=%s" % spki],
                                   scheme="https", port=relay.port)
    finally:
        relay.close()
    assert answer["verdict"] == "elite", (answer, run)
    assert answer["remote_ip"] == RELAY, answer
    assert relay.peers and set(relay.peers) == {EXIT}, relay.peers    # the tunnel came from the proxy
    assert "http client %s: read-head -> tunnel" % REAL in p.log()
    names = [n for n, _ in answer["headers"]]
    assert names[0] == "Host" and "Sec-Fetch-Mode" in names, answer
    assert not [n for n in names if "proxy" in n.lower()], answer
