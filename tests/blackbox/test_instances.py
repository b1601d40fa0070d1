"""Several instances behind HAProxy (TCP mode, send-proxy-v2): a session
keeps its exit whichever instance serves it (rendezvous hashing over the
same upstream list, by name), the client address crosses the balancer,
and killing one instance loses no request HAProxy can retry.
"""
import signal

from conftest import listener_port, listeners_with
from exits import answer, ask, judge_url, proxy_auth, wait_ok
from test_chaining import DE, World, chaining, exits  # noqa: F401 (exits is a fixture)


# A connection HAProxy cannot open is tried again on another instance.
BALANCER_OPTIONS = ("retries 3", "option redispatch")


def balanced(ports):
    return [(port, "send-proxy-v2 check inter 200 fall 1 rise 1") for port in ports]


def balanced_instance(start_proxy, w, upstreams):
    """An instance whose second listener takes PROXY headers; its upstream
    list is `upstreams` (the order may differ between instances)."""
    listen = listeners_with({"proxy_protocol": True})
    p = start_proxy(chaining(upstreams, listen=listen, health={"judge_url": judge_url(w.judge)}))
    return p, listener_port(p)


def test_sessions_stick_across_instances(exits, start_proxy, haproxy):
    w = World(exits, gb=False, fr=False)
    a, a_port = balanced_instance(start_proxy, w, w.ups)
    b, b_port = balanced_instance(start_proxy, w, list(reversed(w.ups)))
    front = haproxy(balanced([a_port, b_port]), BALANCER_OPTIONS)
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
    front = haproxy(balanced([a_port, b_port]), BALANCER_OPTIONS)
    wait_ok(lambda: ask(front, w.judge, [proxy_auth("probe-country-de")]), 20)
    wait_ok(lambda: ask(front, w.judge, [proxy_auth("probe-country-de")]), 20)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)
    a.expected_rc = -signal.SIGKILL
    for i in range(20):
        r = ask(front, w.judge, [proxy_auth("u-country-de-session-k%d" % i)])
        assert r.status == 200, (i, r)
