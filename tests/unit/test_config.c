/* test_config.c - unit tests for config.c: defaults, every key, each error
 * message, address parsing, connect_ports and the shipped anonproxy.json.
 * Runs from the repository root (the shipped-file test opens anonproxy.json).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config_load.h"
#include "http/policy.h"
#include "net/listener.h"

static unsigned cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

/* Parses text that must be valid; fails the test with the message otherwise. */
static void parse_ok(const char *json, config *cfg) {
    char err[512] = "";
    int rc = config_parse(json, "anonproxy.json", cfg, err, sizeof(err));
    if (rc != 0) fail_msg("unexpected error: %s", err);
}

static void assert_zeroed(const config *cfg) {
    static const config zero;
    assert_memory_equal(cfg, &zero, sizeof(zero));
}

/* Text must be rejected with exactly `msg`, leaving the config zeroed. */
static void expect_error(const char *json, const char *msg) {
    char err[512] = "";
    config cfg;

    memset(&cfg, 0x5a, sizeof(cfg));   /* proves the loader zeroes it */
    assert_int_equal(config_parse(json, "anonproxy.json", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, msg);
    assert_zeroed(&cfg);
}

static void assert_default_limits_and_timeouts(const config *cfg) {
    assert_int_equal(cfg->limits.max_header_bytes, 65536);
    assert_int_equal(cfg->limits.max_headers, 100);
    assert_int_equal(cfg->limits.max_uri_bytes, 8192);
    assert_int_equal(cfg->limits.max_line_bytes, 16384);
    assert_int_equal(cfg->limits.max_connections, 16384);
    assert_int_equal(cfg->limits.buffer_bytes, 1048576);
    assert_int_equal(cfg->timeouts.connect_ms, 10000);
    assert_int_equal(cfg->timeouts.header_ms, 15000);
    assert_int_equal(cfg->timeouts.idle_ms, 60000);
    assert_int_equal(cfg->timeouts.io_ms, 60000);
    assert_int_equal(cfg->timeouts.tunnel_idle_ms, 300000);
    assert_int_equal(cfg->timeouts.shutdown_ms, 10000);
}

static void assert_ipv4(const listen_config *l, const char *address, const char *ip,
                        unsigned port) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
    struct in_addr want;

    assert_string_equal(l->address, address);
    assert_int_equal(l->addr_len, sizeof(struct sockaddr_in));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
    assert_memory_equal(&sin->sin_addr, &want, sizeof(want));
}

/* ------------------------------------------------------------ success */

static void test_defaults(void **state) {
    config cfg;

    (void)state;
    parse_ok("{}", &cfg);
    assert_string_equal(cfg.path, "anonproxy.json");
    assert_int_equal(cfg.nlisten, 1);
    assert_ipv4(&cfg.listen[0], "127.0.0.1:8080", "127.0.0.1", 8080);
    assert_null(cfg.listen[0].mode);
    assert_string_equal(cfg.mode, "elite");
    assert_string_equal(policy_name(cfg.listen[0].policy), "elite");
    assert_string_equal(cfg.policies_dir, "./policies");
    assert_string_equal(cfg.proxy_name, "proxy");
    assert_int_equal(cfg.workers, cpu_count());
    assert_int_equal(cfg.reuse, REUSE_CLIENT);
    assert_null(cfg.connect_ports);
    assert_int_equal(cfg.nconnect_ports, 0);
    assert_int_equal(cfg.log_level, 2);
    assert_default_limits_and_timeouts(&cfg);
    config_free(&cfg);
    assert_zeroed(&cfg);
}

static void test_every_key(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"listen\": [{\"address\": \"10.1.2.3:3128\", \"mode\": \"transparent\"},"
             "             {\"address\": \"0.0.0.0:8081\"}],"
             " \"mode\": \"anonymous\", \"workers\": 7, \"upstream_reuse\": \"shared\","
             " \"connect_ports\": [443], \"log_level\": \"debug\","
             " \"limits\": {\"max_header_bytes\": 1024, \"max_headers\": 8, \"max_uri_bytes\": 64,"
             "   \"max_line_bytes\": 1024, \"max_connections\": 1000000, \"buffer_bytes\": 67108864},"
             " \"timeouts\": {\"connect\": 1, \"header\": 2, \"idle\": 3, \"io\": 4,"
             "   \"tunnel_idle\": 5, \"shutdown\": 86400}}",
             &cfg);
    assert_int_equal(cfg.nlisten, 2);
    assert_ipv4(&cfg.listen[0], "10.1.2.3:3128", "10.1.2.3", 3128);
    assert_string_equal(cfg.listen[0].mode, "transparent");
    assert_string_equal(policy_name(cfg.listen[0].policy), "transparent");
    assert_ipv4(&cfg.listen[1], "0.0.0.0:8081", "0.0.0.0", 8081);
    assert_null(cfg.listen[1].mode);
    assert_string_equal(policy_name(cfg.listen[1].policy), "anonymous");
    assert_string_equal(cfg.mode, "anonymous");
    assert_int_equal(cfg.npolicies, 2);
    assert_int_equal(cfg.workers, 7);
    assert_int_equal(cfg.reuse, REUSE_SHARED);
    assert_int_equal(cfg.nconnect_ports, 1);
    assert_int_equal(cfg.connect_ports[0].lo, 443);
    assert_int_equal(cfg.connect_ports[0].hi, 443);
    assert_int_equal(cfg.log_level, 3);
    assert_int_equal(cfg.limits.max_header_bytes, 1024);
    assert_int_equal(cfg.limits.max_headers, 8);
    assert_int_equal(cfg.limits.max_uri_bytes, 64);
    assert_int_equal(cfg.limits.max_line_bytes, 1024);
    assert_int_equal(cfg.limits.max_connections, 1000000);
    assert_int_equal(cfg.limits.buffer_bytes, 67108864);
    assert_int_equal(cfg.timeouts.connect_ms, 1000);
    assert_int_equal(cfg.timeouts.header_ms, 2000);
    assert_int_equal(cfg.timeouts.idle_ms, 3000);
    assert_int_equal(cfg.timeouts.io_ms, 4000);
    assert_int_equal(cfg.timeouts.tunnel_idle_ms, 5000);
    assert_int_equal(cfg.timeouts.shutdown_ms, 86400000);
    config_free(&cfg);
}

static void test_other_enum_values(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"upstream_reuse\": \"off\", \"log_level\": \"error\", \"mode\": \"transparent\"}",
             &cfg);
    assert_int_equal(cfg.reuse, REUSE_OFF);
    assert_int_equal(cfg.log_level, 0);
    assert_string_equal(cfg.mode, "transparent");
    config_free(&cfg);
    parse_ok("{\"upstream_reuse\": \"client\", \"log_level\": \"warn\", \"workers\": 0}", &cfg);
    assert_int_equal(cfg.reuse, REUSE_CLIENT);
    assert_int_equal(cfg.log_level, 1);
    assert_int_equal(cfg.workers, cpu_count());
    config_free(&cfg);
}

static void test_ipv6_listen(void **state) {
    config cfg;
    const struct sockaddr_in6 *sin6;
    struct in6_addr want;

    (void)state;
    parse_ok("{\"listen\": [{\"address\": \"[::1]:8443\", \"mode\": \"anonymous\"},"
             "             {\"address\": \"127.0.0.1:8443\"}]}", &cfg);
    assert_int_equal(cfg.nlisten, 2);
    sin6 = (const struct sockaddr_in6 *)&cfg.listen[0].addr;
    assert_string_equal(cfg.listen[0].address, "[::1]:8443");
    assert_int_equal(cfg.listen[0].addr_len, sizeof(struct sockaddr_in6));
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 8443);
    assert_int_equal(inet_pton(AF_INET6, "::1", &want), 1);
    assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
    assert_string_equal(policy_name(cfg.listen[0].policy), "anonymous");
    assert_ipv4(&cfg.listen[1], "127.0.0.1:8443", "127.0.0.1", 8443);
    /* Both listeners' policies are loaded once each. */
    assert_string_equal(policy_name(cfg.listen[1].policy), "elite");
    assert_int_equal(cfg.npolicies, 2);
    config_free(&cfg);
}

static void test_fractional_timeouts(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"timeouts\": {\"connect\": 0.25, \"header\": 1.5, \"idle\": 0.0001,"
             " \"io\": 2.0005, \"tunnel_idle\": 86400.0}}", &cfg);
    assert_int_equal(cfg.timeouts.connect_ms, 250);
    assert_int_equal(cfg.timeouts.header_ms, 1500);
    assert_int_equal(cfg.timeouts.idle_ms, 1);   /* > 0 never becomes 0 */
    assert_int_equal(cfg.timeouts.io_ms, 2001);
    assert_int_equal(cfg.timeouts.tunnel_idle_ms, 86400000);
    assert_int_equal(cfg.timeouts.shutdown_ms, 10000);
    config_free(&cfg);
}

static void test_connect_ports(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"connect_ports\": [443, 8443, \"8000-9000\", \"1-1\", \"65535-65535\"]}", &cfg);
    assert_int_equal(cfg.nconnect_ports, 5);
    assert_int_equal(cfg.connect_ports[1].lo, 8443);
    assert_int_equal(cfg.connect_ports[1].hi, 8443);
    assert_int_equal(cfg.connect_ports[2].lo, 8000);
    assert_int_equal(cfg.connect_ports[2].hi, 9000);
    assert_true(config_connect_port_allowed(&cfg, 443));
    assert_true(config_connect_port_allowed(&cfg, 8000));
    assert_true(config_connect_port_allowed(&cfg, 8500));
    assert_true(config_connect_port_allowed(&cfg, 9000));
    assert_true(config_connect_port_allowed(&cfg, 1));
    assert_true(config_connect_port_allowed(&cfg, 65535));
    assert_false(config_connect_port_allowed(&cfg, 80));
    assert_false(config_connect_port_allowed(&cfg, 442));
    assert_false(config_connect_port_allowed(&cfg, 444));
    assert_false(config_connect_port_allowed(&cfg, 7999));
    assert_false(config_connect_port_allowed(&cfg, 9001));
    assert_false(config_connect_port_allowed(&cfg, 65536));
    config_free(&cfg);
}

static void test_connect_ports_absent_allows_all(void **state) {
    config cfg;

    (void)state;
    parse_ok("{}", &cfg);
    assert_true(config_connect_port_allowed(&cfg, 1));
    assert_true(config_connect_port_allowed(&cfg, 25));
    assert_true(config_connect_port_allowed(&cfg, 65535));
    config_free(&cfg);
}

static void test_connect_ports_empty_allows_none(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"connect_ports\": []}", &cfg);
    assert_non_null(cfg.connect_ports);
    assert_int_equal(cfg.nconnect_ports, 0);
    assert_false(config_connect_port_allowed(&cfg, 443));
    assert_false(config_connect_port_allowed(&cfg, 1));
    config_free(&cfg);
}

static void test_shipped_file_loads(void **state) {
    char err[512] = "";
    config cfg;

    (void)state;
    if (config_load("anonproxy.json", &cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.path, "anonproxy.json");
    assert_int_equal(cfg.nlisten, 1);
    assert_ipv4(&cfg.listen[0], "127.0.0.1:8080", "127.0.0.1", 8080);
    assert_string_equal(cfg.mode, "elite");
    assert_null(cfg.connect_ports);
    assert_default_limits_and_timeouts(&cfg);
    config_free(&cfg);
}

static void test_load_missing_file(void **state) {
    char err[512] = "";
    config cfg;

    (void)state;
    memset(&cfg, 0x5a, sizeof(cfg));
    assert_int_equal(config_load("no-such-dir/anonproxy.json", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "no-such-dir/anonproxy.json: cannot read: No such file or directory");
    assert_zeroed(&cfg);
}

static void test_load_syntax_error_names_file(void **state) {
    char path[] = "/tmp/test_config_XXXXXX";
    char err[512] = "", want[600];
    config cfg;
    int fd = mkstemp(path);
    FILE *fp;

    (void)state;
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs("{\n  \"mode\": \"elite\",\n    }\n", fp);
    fclose(fp);
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
    unlink(path);
    snprintf(want, sizeof(want), "%s: line 3, column 5: string or '}' expected near '}'", path);
    assert_string_equal(err, want);
    assert_zeroed(&cfg);
}

/* -------------------------------------------------------- error messages */

static void test_err_port_out_of_range(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:99999\"}]}",
                 "anonproxy.json: listen[0].address: port 99999 out of range");
}

static void test_err_port_zero(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:0\"}]}",
                 "anonproxy.json: listen[0].address: port 0 out of range");
}

static void test_err_not_an_ip(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"localhost:80\"}]}",
                 "anonproxy.json: listen[0].address: \"localhost:80\" is not an IP address"
                 " (use 127.0.0.1:PORT or [::1]:PORT)");
}

static void test_err_unknown_mode(void **state) {
    (void)state;
    expect_error("{\"mode\": \"stealth\"}",
                 "anonproxy.json: mode: ./policies/stealth.json: cannot read:"
                 " No such file or directory");
}

static void test_err_unknown_listen_mode(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:1\", \"mode\": \"Elite\"}]}",
                 "anonproxy.json: listen[0].mode: ./policies/Elite.json: cannot read:"
                 " No such file or directory");
}

static void test_err_unknown_reuse_and_log_level(void **state) {
    (void)state;
    expect_error("{\"upstream_reuse\": \"pool\"}",
                 "anonproxy.json: upstream_reuse: unknown upstream_reuse \"pool\""
                 " (expected client, shared or off)");
    expect_error("{\"log_level\": \"trace\"}",
                 "anonproxy.json: log_level: unknown log_level \"trace\""
                 " (expected error, warn, info or debug)");
    expect_error("{\"log_level\": 3}", "anonproxy.json: log_level: expected a string");
}

static void test_err_expected_integer(void **state) {
    (void)state;
    expect_error("{\"limits\": {\"max_headers\": 100.0}}",
                 "anonproxy.json: limits.max_headers: expected an integer");
    expect_error("{\"limits\": {\"max_headers\": \"100\"}}",
                 "anonproxy.json: limits.max_headers: expected an integer");
    expect_error("{\"workers\": 2.5}", "anonproxy.json: workers: expected an integer");
}

static void test_err_integer_ranges(void **state) {
    (void)state;
    expect_error("{\"limits\": {\"max_headers\": 7}}",
                 "anonproxy.json: limits.max_headers: must be between 8 and 10000");
    expect_error("{\"limits\": {\"max_headers\": 10001}}",
                 "anonproxy.json: limits.max_headers: must be between 8 and 10000");
    expect_error("{\"limits\": {\"buffer_bytes\": 4095}}",
                 "anonproxy.json: limits.buffer_bytes: must be between 4096 and 67108864");
    expect_error("{\"workers\": 257}", "anonproxy.json: workers: must be between 0 and 256");
    expect_error("{\"workers\": -1}", "anonproxy.json: workers: must be between 0 and 256");
}

static void test_err_line_longer_than_head(void **state) {
    (void)state;
    expect_error("{\"limits\": {\"max_line_bytes\": 65537}}",
                 "anonproxy.json: limits.max_line_bytes: must not exceed max_header_bytes (65536)");
    expect_error("{\"limits\": {\"max_line_bytes\": 2048, \"max_header_bytes\": 2047}}",
                 "anonproxy.json: limits.max_line_bytes: must not exceed max_header_bytes (2047)");
}

static void test_err_timeout_range(void **state) {
    (void)state;
    expect_error("{\"timeouts\": {\"connect\": 0}}",
                 "anonproxy.json: timeouts.connect: must be > 0 and <= 86400 seconds");
    expect_error("{\"timeouts\": {\"connect\": -1.5}}",
                 "anonproxy.json: timeouts.connect: must be > 0 and <= 86400 seconds");
    expect_error("{\"timeouts\": {\"shutdown\": 86400.5}}",
                 "anonproxy.json: timeouts.shutdown: must be > 0 and <= 86400 seconds");
    expect_error("{\"timeouts\": {\"io\": \"10\"}}",
                 "anonproxy.json: timeouts.io: expected a number of seconds");
}

static void test_err_bad_port_range(void **state) {
    (void)state;
    expect_error("{\"connect_ports\": [443, \"9000-8000\"]}",
                 "anonproxy.json: connect_ports[1]: bad port range \"9000-8000\"");
    expect_error("{\"connect_ports\": [\"0-10\"]}",
                 "anonproxy.json: connect_ports[0]: bad port range \"0-10\"");
    expect_error("{\"connect_ports\": [\"80-65536\"]}",
                 "anonproxy.json: connect_ports[0]: bad port range \"80-65536\"");
    expect_error("{\"connect_ports\": [\"443\"]}",
                 "anonproxy.json: connect_ports[0]: bad port range \"443\"");
    expect_error("{\"connect_ports\": [\" 1-2\"]}",
                 "anonproxy.json: connect_ports[0]: bad port range \" 1-2\"");
    expect_error("{\"connect_ports\": [\"1-+2\"]}",
                 "anonproxy.json: connect_ports[0]: bad port range \"1-+2\"");
    expect_error("{\"connect_ports\": [1, 65536]}",
                 "anonproxy.json: connect_ports[1]: must be between 1 and 65535");
    expect_error("{\"connect_ports\": 443}", "anonproxy.json: connect_ports: expected an array");
}

static void test_err_listen_not_non_empty_array(void **state) {
    (void)state;
    expect_error("{\"listen\": []}", "anonproxy.json: listen: expected a non-empty array");
    expect_error("{\"listen\": \"127.0.0.1:8080\"}",
                 "anonproxy.json: listen: expected a non-empty array");
    expect_error("{\"listen\": [\"127.0.0.1:8080\"]}",
                 "anonproxy.json: listen[0]: expected an object");
    expect_error("{\"listen\": [{\"mode\": \"elite\"}]}",
                 "anonproxy.json: listen[0]: missing \"address\"");
    expect_error("{\"listen\": [{\"address\": 8080}]}",
                 "anonproxy.json: listen[0].address: expected a string");
}

static void test_err_duplicate_listener(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:8080\"},"
                 " {\"address\": \"127.0.0.1:8080\", \"mode\": \"anonymous\"}]}",
                 "anonproxy.json: listen[1].address: duplicate of listen[0]");
    /* Same socket written differently is still a duplicate. */
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:80\"}, {\"address\": \"[::1]:80\"},"
                 " {\"address\": \"[0:0::1]:080\"}]}",
                 "anonproxy.json: listen[2].address: duplicate of listen[1]");
}

static void test_err_syntax(void **state) {
    (void)state;
    expect_error("{\n  \"mode\": \"elite\",\n    }\n",
                 "anonproxy.json: line 3, column 5: string or '}' expected near '}'");
    expect_error("{\"mode\": \"elite\", \"mode\": \"elite\"}",
                 "anonproxy.json: line 1, column 24: duplicate object key near '\"mode\"'");
}

static void test_err_top_level_not_object(void **state) {
    (void)state;
    expect_error("[]", "anonproxy.json: top level: expected an object");
    expect_error("\"elite\"", "anonproxy.json: top level: expected an object");
    expect_error("null", "anonproxy.json: top level: expected an object");
}

static void test_err_unknown_keys(void **state) {
    (void)state;
    expect_error("{\"mode\": \"elite\", \"modes\": 1}", "anonproxy.json: modes: unknown key");
    expect_error("{\"limits\": {\"max_header\": 1}}",
                 "anonproxy.json: limits.max_header: unknown key");
    expect_error("{\"timeouts\": {\"connect_ms\": 1}}",
                 "anonproxy.json: timeouts.connect_ms: unknown key");
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:1\"}, {\"addr\": \"127.0.0.1:2\"}]}",
                 "anonproxy.json: listen[1].addr: unknown key");
    expect_error("{\"limits\": []}", "anonproxy.json: limits: expected an object");
}

/* ---------------------------------------------------------- direct API */

static void test_parse_address_errors(void **state) {
    static const struct {
        const char *text, *reason;
    } cases[] = {
        { "127.0.0.1", "\"127.0.0.1\" has no port (expected A.B.C.D:PORT or [V6]:PORT)" },
        { "127.0.0.1:", "\"127.0.0.1:\" has no port (expected A.B.C.D:PORT or [V6]:PORT)" },
        { "[::1]", "\"[::1]\" has no port (expected A.B.C.D:PORT or [V6]:PORT)" },
        { "[::1]8080", "\"[::1]8080\" has no port (expected A.B.C.D:PORT or [V6]:PORT)" },
        { "127.0.0.1:+80", "bad port \"+80\"" },
        { "127.0.0.1:80 ", "bad port \"80 \"" },
        { "127.0.0.1:99999999999999999999999", "port 99999999999999999999999 out of range" },
        { "::1:80", "\"::1:80\" is not an IP address (use 127.0.0.1:PORT or [::1]:PORT)" },
        { "[127.0.0.1]:80",
          "\"[127.0.0.1]:80\" is not an IP address (use 127.0.0.1:PORT or [::1]:PORT)" },
        { ":80", "\":80\" is not an IP address (use 127.0.0.1:PORT or [::1]:PORT)" },
        { "[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa]:80",
          "\"[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa]:80\" is not an IP address"
          " (use 127.0.0.1:PORT or [::1]:PORT)" },
    };
    struct sockaddr_storage addr;
    socklen_t len;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(config_parse_address(cases[i].text, &addr, &len, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].reason);
    }
}

static void test_parse_address_ok(void **state) {
    struct sockaddr_storage addr;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr;
    socklen_t len = 0;
    char err[256] = "";

    (void)state;
    assert_int_equal(config_parse_address("192.168.0.1:65535", &addr, &len, err, sizeof(err)), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 65535);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc0a80001);
    assert_int_equal(config_parse_address("[::]:1", &addr, &len, err, sizeof(err)), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(((const struct sockaddr_in6 *)&addr)->sin6_family, AF_INET6);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&addr)->sin6_port), 1);
    assert_string_equal(err, "");
}

/* Listener protocols: the default, an explicit one, and the "judge" key. */
static void test_listen_protocols(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"listen\": [{\"address\": \"127.0.0.1:8080\"},"
             " {\"address\": \"127.0.0.1:8091\", \"protocol\": \"judge\"}],"
             " \"judge\": \"127.0.0.1:8090\"}", &cfg);
    assert_int_equal(cfg.nlisten, 3);
    assert_string_equal(cfg.listen[0].kind->name, "http");
    assert_string_equal(policy_name(cfg.listen[0].policy), "elite");
    assert_string_equal(cfg.listen[1].kind->name, "judge");
    assert_null(cfg.listen[1].policy);
    /* The "judge" key is the last listener. */
    assert_string_equal(cfg.listen[2].kind->name, "judge");
    assert_string_equal(cfg.listen[2].address, "127.0.0.1:8090");
    config_free(&cfg);

    /* Only judges: no mode is needed, none is loaded. */
    parse_ok("{\"listen\": [{\"address\": \"127.0.0.1:8091\", \"protocol\": \"judge\"}],"
             " \"mode\": \"no-such-mode\"}", &cfg);
    assert_int_equal(cfg.npolicies, 0);
    config_free(&cfg);
}

static void test_err_listen_protocols(void **state) {
    (void)state;
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:8080\", \"protocol\": \"gopher\"}]}",
                 "anonproxy.json: listen[0].protocol: unknown protocol \"gopher\" "
                 "(expected http, judge, socks5, socks4 or mixed)");
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1:8080\", \"protocol\": \"judge\","
                 " \"mode\": \"elite\"}]}",
                 "anonproxy.json: listen[0].mode: not a key of a \"judge\" listener");
    expect_error("{\"judge\": \"127.0.0.1:8080\"}",
                 "anonproxy.json: judge: duplicate of listen[0]");
    expect_error("{\"judge\": \"nowhere\"}",
                 "anonproxy.json: judge: \"nowhere\" has no port (expected A.B.C.D:PORT or [V6]:PORT)");
}

static void test_policies_dir_and_proxy_name(void **state) {
    config cfg;

    (void)state;
    parse_ok("{\"policies\": \"policies\", \"mode\": \"paranoid\", \"proxy_name\": \"gw1\"}", &cfg);
    assert_string_equal(cfg.policies_dir, "policies");
    assert_string_equal(policy_name(cfg.listen[0].policy), "paranoid");
    assert_string_equal(cfg.proxy_name, "gw1");
    config_free(&cfg);
    expect_error("{\"policies\": \"/nonexistent\"}",
                 "anonproxy.json: mode: /nonexistent/elite.json: cannot read:"
                 " No such file or directory");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_other_enum_values),
        cmocka_unit_test(test_ipv6_listen),
        cmocka_unit_test(test_fractional_timeouts),
        cmocka_unit_test(test_connect_ports),
        cmocka_unit_test(test_connect_ports_absent_allows_all),
        cmocka_unit_test(test_connect_ports_empty_allows_none),
        cmocka_unit_test(test_shipped_file_loads),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_syntax_error_names_file),
        cmocka_unit_test(test_err_port_out_of_range),
        cmocka_unit_test(test_err_port_zero),
        cmocka_unit_test(test_err_not_an_ip),
        cmocka_unit_test(test_err_unknown_mode),
        cmocka_unit_test(test_err_unknown_listen_mode),
        cmocka_unit_test(test_err_unknown_reuse_and_log_level),
        cmocka_unit_test(test_err_expected_integer),
        cmocka_unit_test(test_err_integer_ranges),
        cmocka_unit_test(test_err_line_longer_than_head),
        cmocka_unit_test(test_err_timeout_range),
        cmocka_unit_test(test_err_bad_port_range),
        cmocka_unit_test(test_err_listen_not_non_empty_array),
        cmocka_unit_test(test_err_duplicate_listener),
        cmocka_unit_test(test_err_syntax),
        cmocka_unit_test(test_err_top_level_not_object),
        cmocka_unit_test(test_err_unknown_keys),
        cmocka_unit_test(test_parse_address_errors),
        cmocka_unit_test(test_parse_address_ok),
        cmocka_unit_test(test_policies_dir_and_proxy_name),
        cmocka_unit_test(test_listen_protocols),
        cmocka_unit_test(test_err_listen_protocols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
