"""Command line: -t, -h, -V, start-up failures."""
import json
import socket
import subprocess

import pytest

from conftest import BIN, clean_env, policies_override


def run(*args, cwd=None, timeout=20):
    return subprocess.run([str(BIN), *args], capture_output=True, timeout=timeout,
                          env=clean_env(), cwd=cwd, text=True)


def write(tmp_path, doc, name="anonproxy.json"):
    p = tmp_path / name
    if isinstance(doc, dict):
        doc = dict(doc, **policies_override())
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


GOOD = {
    "listen": [{"address": "127.0.0.1:18080"}],
    "mode": "elite",
    "workers": 2,
    "upstream_reuse": "shared",
    "connect_ports": [443, "8000-9000"],
    "log_level": "debug",
    "limits": {"max_header_bytes": 65536, "max_headers": 100, "max_uri_bytes": 8192,
               "max_line_bytes": 16384, "max_connections": 16384, "buffer_bytes": 262144},
    "timeouts": {"connect": 10, "header": 15, "idle": 60, "io": 60, "tunnel_idle": 300,
                 "shutdown": 0.5},
}


@pytest.mark.parametrize("doc", [
    GOOD,
    {},
    {"listen": [{"address": "127.0.0.1:1"}, {"address": "[::1]:8080"}]},
    {"upstream_reuse": "off", "timeouts": {"io": 0.25}},
    {"upstream_reuse": "client", "connect_ports": []},
], ids=["full", "empty", "two-listeners", "fractional-timeout", "client-reuse"])
def test_config_ok(tmp_path, doc):
    cfg = write(tmp_path, doc)
    r = run("-t", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: configuration OK\n" % cfg


def test_config_ok_long_option(tmp_path):
    cfg = write(tmp_path, GOOD)
    r = run("--test", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: configuration OK\n" % cfg


@pytest.mark.parametrize("doc,message", [
    ({"listen": [{"address": "127.0.0.1:99999"}]}, "listen[0].address: port 99999 out of range"),
    ({"bogus": 1}, "bogus: unknown key"),
    ({"limits": {"max_headers": 100, "bogus": 1}}, "limits.bogus: unknown key"),
    ({"timeouts": {"header": 0}}, "timeouts.header: must be > 0 and <= 86400 seconds"),
    ({"listen": [{"address": "127.0.0.1:80"}, {"address": "127.0.0.1:80"}]},
     "listen[1].address: duplicate of listen[0]"),
], ids=["port-range", "unknown-key", "unknown-nested-key", "zero-timeout", "duplicate-listener"])
def test_config_bad_exact_message(tmp_path, doc, message):
    cfg = write(tmp_path, doc)
    r = run("-t", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr == "%s: %s\n" % (cfg, message)
    assert "configuration OK" not in r.stdout


@pytest.mark.parametrize("doc,path", [
    ({"listen": [{"address": "localhost:80"}]}, "listen[0].address"),
    ({"listen": [{"address": "127.0.0.1"}]}, "listen[0].address"),
    ({"listen": []}, "listen"),
    ({"listen": [{"mode": "elite"}]}, "listen[0]"),
    ({"workers": -1}, "workers"),
    ({"workers": "2"}, "workers"),
    ({"upstream_reuse": "maybe"}, "upstream_reuse"),
    ({"mode": "stealth"}, "mode"),
    ({"connect_ports": ["9-1"]}, "connect_ports[0]"),
    ({"connect_ports": [0]}, "connect_ports[0]"),
    ({"connect_ports": 443}, "connect_ports"),
    ({"log_level": "loud"}, "log_level"),
    ({"limits": {"max_headers": 0}}, "limits.max_headers"),
    ({"limits": {"max_line_bytes": 5000, "max_header_bytes": 4096}}, "limits.max_line_bytes"),
    ({"limits": {"buffer_bytes": 1.5}}, "limits.buffer_bytes"),
    ({"timeouts": {"io": -1}}, "timeouts.io"),
    ({"timeouts": {"io": "5"}}, "timeouts.io"),
    ({"timeouts": {"idle": 5, "never": 1}}, "timeouts.never"),
    ([1, 2], "top level"),
])
def test_config_bad_names_file_and_path(tmp_path, doc, path):
    cfg = write(tmp_path, doc)
    r = run("-t", "-c", str(cfg))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("%s: %s: " % (cfg, path)), r.stderr
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
    assert "configuration OK" not in r.stdout


def test_config_syntax_error(tmp_path):
    cfg = write(tmp_path, '{"listen": [')
    r = run("-t", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.startswith("%s: line " % cfg), r.stderr


def test_config_duplicate_key(tmp_path):
    cfg = write(tmp_path, '{"workers": 1, "workers": 2}')
    r = run("-t", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.startswith("%s: " % cfg), r.stderr


def test_config_missing_file(tmp_path):
    missing = tmp_path / "nope.json"
    r = run("-t", "-c", str(missing))
    assert r.returncode == 1
    assert r.stderr == "%s: cannot read: No such file or directory\n" % missing
    assert r.stdout == ""


def test_default_config_name(tmp_path):
    write(tmp_path, GOOD)
    r = run("-t", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "anonproxy.json: configuration OK\n"


def test_help_and_version():
    r = run("-h")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: anonproxy")
    for opt in ("-c", "-t", "-d", "-h", "-V"):
        assert opt in r.stdout
    r = run("-V")
    assert r.returncode == 0
    assert r.stdout.startswith("anonproxy ") and r.stdout.endswith("\n")


def test_bad_option():
    r = run("--no-such-option")
    assert r.returncode != 0
    assert "usage" in r.stderr


def test_start_fails_when_address_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cfg = write(tmp_path, {"listen": [{"address": "127.0.0.1:%d" % port}], "workers": 1})
        r = run("-c", str(cfg), timeout=20)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "127.0.0.1:%d" % port in r.stderr


def test_debug_flag_logs_to_stderr(start_proxy, origin):
    from conftest import exchange
    p = start_proxy({"log_level": "error"}, extra_args=("-d",))
    with socket.socket() as s:  # nothing listens there: a 502, logged at debug level
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = exchange(p.port, b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % port)
    assert r.status == 502
    assert "debug" in p.log().lower()


def test_log_level_error_is_quiet(start_proxy):
    from conftest import exchange
    p = start_proxy({"log_level": "error"})
    r = exchange(p.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400
    assert "debug" not in p.log().lower()
