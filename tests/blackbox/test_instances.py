"""Several instances behind HAProxy (TCP mode, send-proxy-v2): a session
keeps its exit whichever instance serves it (rendezvous hashing over the
same upstream list, by name), the client address crosses the balancer,
and killing one instance loses no request HAProxy can retry.
"""
import shutil
import signal
import subprocess

import pytest

from conftest import free_port, port_accepts, wait_until
from exits import answer, ask, judge_url, proxy_auth, wait_ok
from test_chaining import DE, World, chaining, exits  # noqa: F401 (exits is a fixture)


@pytest.fixture
def haproxy(tmp_path):
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not shutil.which(binary):
        pytest.skip("haproxy not installed (Debian package haproxy)")
    procs = []

    def _start(backends):
        port = free_port()
        cfg = tmp_path / "haproxy.cfg"
        lines = ["global", "  maxconn 200",
                 "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 30s",
                 "  timeout server 30s", "  retries 3", "  option redispatch",
                 "listen front", "  bind 127.0.0.1:%d" % port, "  balance roundrobin"]
        for i, b in enumerate(backends):
            lines.append("  server i%d 127.0.0.1:%d send-proxy-v2 check inter 200 fall 1 rise 1"
                         % (i, b))
        cfg.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_until(lambda: port_accepts(port), 10, 0.05, "haproxy accepting")
        return port

    yield _start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def balanced_instance(start_proxy, w, upstreams):
    """An instance whose second listener takes PROXY headers; its upstream
    list is `upstreams` (the order may differ between instances)."""
    listen = [{"address": "127.0.0.1:%d" % free_port()},
              {"address": "127.0.0.1:%d" % free_port(), "proxy_protocol": True}]
    p = start_proxy(chaining(upstreams, listen=listen, health={"judge_url": judge_url(w.judge)}))
    return p, int(listen[1]["address"].rsplit(":", 1)[1])


def test_sessions_stick_across_instances(exits, start_proxy, haproxy):
    w = World(exits, gb=False, fr=False)
    a, a_port = balanced_instance(start_proxy, w, w.ups)
    b, b_port = balanced_instance(start_proxy, w, list(reversed(w.ups)))
    front = haproxy([a_port, b_port])
    for p in (a, b):  # both exits up on both instances
        for ip in DE:
            wait_ok(lambda: ask(p.port, w.judge, [proxy_auth("probe-country-de")]), 20,
                    ok=lambda r: r.status == 200 and answer(r)["remote_ip"] == ip)
    for n in range(8):
        seen = set()
        for _ in range(4):  # round robin: two on each instance
            r = ask(front, w.judge, [proxy_auth("u-country-de-session-s%d" % n)])
            seen.add(answer(r)["remote_ip"])
        assert len(seen) == 1 and seen <= DE, (n, seen)
    for p in (a, b):
        assert p.log().count("read-head -> connecting") >= 8, "an instance served nothing"


def test_killing_one_instance_loses_no_retryable_request(exits, start_proxy, haproxy):
    w = World(exits, gb=False, fr=False)
    a, a_port = balanced_instance(start_proxy, w, w.ups)
    b, b_port = balanced_instance(start_proxy, w, w.ups)
    front = haproxy([a_port, b_port])
    wait_ok(lambda: ask(front, w.judge, [proxy_auth("probe-country-de")]), 20)
    wait_ok(lambda: ask(front, w.judge, [proxy_auth("probe-country-de")]), 20)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)
    a.expected_rc = -signal.SIGKILL
    for i in range(20):
        r = ask(front, w.judge, [proxy_auth("u-country-de-session-k%d" % i)])
        assert r.status == 200, (i, r)
