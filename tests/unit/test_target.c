/* test_target.c - unit tests for src/http/target.c.
 *
 * target_parse_absolute: the forms (http, https, other schemes, origin-form,
 * asterisk), host lowercasing with the authority kept as written, IPv6
 * literals in brackets, explicit and default ports, bad ports, userinfo
 * dropped, paths and queries (and target_origin_prefix for them),
 * fragments, TARGET_MAX_HOST, bad host characters.
 * target_parse_authority: CONNECT's "host:port" with the port required.
 * target_host_address: which hosts are address literals, and which address.
 *
 * Every target is parsed from an exact-size heap copy without a NUL, so
 * AddressSanitizer reports any read past the given length; the results
 * must point into that copy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "http/target.h"

/* ------------------------------------------------------------ helpers */

static char *held;      /* the copy the last target points into */
static size_t held_len;
static target t;

static void hold(const char *s, size_t len)
{
    free(held);
    held = malloc(len ? len : 1);
    assert_non_null(held);
    memcpy(held, s, len);
    held_len = len;
    memset(&t, 0x5a, sizeof t);   /* proves the parser writes every member */
}

static int absolute(const char *s)
{
    hold(s, strlen(s));
    return target_parse_absolute(held, held_len, &t);
}

static int authority(const char *s)
{
    hold(s, strlen(s));
    return target_parse_authority(held, held_len, &t);
}

static int release(void **state)
{
    (void)state;
    free(held);
    held = NULL;
    return 0;
}

/* A range inside the held copy equal to want. */
static void expect_range(const char *p, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    assert_true(p >= held && p + len <= held + held_len);
    assert_memory_equal(p, want, len);
}

/* An http:// target that parses, with everything it yields. */
static void expect_http(const char *s, const char *auth, const char *host, int ipv6, unsigned port,
                        const char *path, const char *prefix)
{
    if (absolute(s) != 0)
        fail_msg("\"%s\" refused", s);
    assert_int_equal(t.form, TARGET_HTTP);
    expect_range(t.authority, t.authority_len, auth);
    assert_string_equal(t.host, host);
    assert_int_equal(t.host_is_ipv6, ipv6);
    assert_int_equal(t.port, port);
    expect_range(t.path, t.path_len, path);
    assert_string_equal(target_origin_prefix(&t), prefix);
}

/* A target that is not http:// (the parse succeeds, nothing else is filled in). */
static void expect_form(const char *s, target_form form)
{
    target want;

    memset(&want, 0, sizeof want);
    want.form = form;
    if (absolute(s) != 0)
        fail_msg("\"%s\" refused", s);
    assert_int_equal(t.form, form);
    assert_memory_equal(&t, &want, sizeof t);
}

static void expect_bad_absolute(const char *s)
{
    if (absolute(s) != -1)
        fail_msg("\"%s\" accepted", s);
}

static void expect_connect(const char *s, const char *host, int ipv6, unsigned port)
{
    if (authority(s) != 0)
        fail_msg("\"%s\" refused", s);
    assert_int_equal(t.form, TARGET_OTHER);
    assert_ptr_equal(t.authority, held);
    assert_int_equal(t.authority_len, held_len);
    assert_string_equal(t.host, host);
    assert_int_equal(t.host_is_ipv6, ipv6);
    assert_int_equal(t.port, port);
    assert_null(t.path);
    assert_int_equal(t.path_len, 0);
}

static void expect_bad_authority(const char *s)
{
    if (authority(s) != -1)
        fail_msg("\"%s\" accepted", s);
}

/* "http://" + host of n letters + rest. */
static char *long_host_url(const char *prefix, size_t n, const char *rest)
{
    size_t pl = strlen(prefix), rl = strlen(rest);
    char *s = malloc(pl + n + rl + 1);

    assert_non_null(s);
    memcpy(s, prefix, pl);
    memset(s + pl, 'A', n);
    memcpy(s + pl + n, rest, rl + 1);
    return s;
}

/* ------------------------------------------------------------ forms */

static void test_forms_other_than_http(void **state)
{
    (void)state;
    expect_form("https://example.com/", TARGET_HTTPS);
    expect_form("HTTPS://example.com:8443/x", TARGET_HTTPS);
    expect_form("https://", TARGET_HTTPS);
    expect_form("/", TARGET_ORIGIN);
    expect_form("/index.html?q=1", TARGET_ORIGIN);
    expect_form("*", TARGET_OTHER);
    expect_form("ftp://example.com/", TARGET_OTHER);
    expect_form("ws://example.com/", TARGET_OTHER);
    expect_form("example.com:80", TARGET_OTHER);
    expect_form("http:/example.com/", TARGET_OTHER);
    expect_form("http:example.com", TARGET_OTHER);
    expect_form("httpx://example.com/", TARGET_OTHER);
    expect_form("http", TARGET_OTHER);
    expect_form("", TARGET_OTHER);
}

static void test_http_basic(void **state)
{
    (void)state;
    expect_http("http://example.com/", "example.com", "example.com", 0, 80, "/", "");
    expect_http("http://example.com/a/b?c=d&e", "example.com", "example.com", 0, 80, "/a/b?c=d&e", "");
    /* The scheme is case-insensitive. */
    expect_http("HTTP://example.com/x", "example.com", "example.com", 0, 80, "/x", "");
    expect_http("hTtP://example.com/x", "example.com", "example.com", 0, 80, "/x", "");
}

static void test_host_lowercased_authority_as_written(void **state)
{
    (void)state;
    expect_http("http://WWW.Example.COM:8080/Path?Q=A", "WWW.Example.COM:8080", "www.example.com", 0,
                8080, "/Path?Q=A", "");
    expect_http("http://a-b_c.EXAMPLE/", "a-b_c.EXAMPLE", "a-b_c.example", 0, 80, "/", "");
    expect_http("http://192.0.2.1:81/", "192.0.2.1:81", "192.0.2.1", 0, 81, "/", "");
}

static void test_empty_path_and_query_only(void **state)
{
    (void)state;
    /* RFC 9112 3.2.1: sent as "/" and "/?q". */
    expect_http("http://example.com", "example.com", "example.com", 0, 80, "", "/");
    expect_http("http://example.com:8080", "example.com:8080", "example.com", 0, 8080, "", "/");
    expect_http("http://example.com?q=1", "example.com", "example.com", 0, 80, "?q=1", "/");
    expect_http("http://example.com:81?", "example.com:81", "example.com", 0, 81, "?", "/");
    /* An empty path points at the end of the target. */
    assert_int_equal(absolute("http://example.com"), 0);
    assert_ptr_equal(t.path, held + held_len);
}

static void test_ports(void **state)
{
    (void)state;
    expect_http("http://example.com:1/", "example.com:1", "example.com", 0, 1, "/", "");
    expect_http("http://example.com:65535/", "example.com:65535", "example.com", 0, 65535, "/", "");
    expect_http("http://example.com:80/", "example.com:80", "example.com", 0, 80, "/", "");
    expect_http("http://example.com:443/", "example.com:443", "example.com", 0, 443, "/", "");
    /* Up to five digits, leading zeros included. */
    expect_http("http://example.com:00080/", "example.com:00080", "example.com", 0, 80, "/", "");
}

static void test_bad_ports(void **state)
{
    (void)state;
    expect_bad_absolute("http://example.com:0/");
    expect_bad_absolute("http://example.com:00000/");
    expect_bad_absolute("http://example.com:65536/");
    expect_bad_absolute("http://example.com:99999/");
    expect_bad_absolute("http://example.com:123456/");
    expect_bad_absolute("http://example.com:000080/");
    expect_bad_absolute("http://example.com:/");
    expect_bad_absolute("http://example.com:");
    expect_bad_absolute("http://example.com:8o/");
    expect_bad_absolute("http://example.com:+80/");
    expect_bad_absolute("http://example.com:-1/");
    expect_bad_absolute("http://example.com: 80/");
    expect_bad_absolute("http://example.com:80:80/");
    expect_bad_absolute("http://example.com:0x50/");
}

static void test_ipv6_literals(void **state)
{
    (void)state;
    expect_http("http://[::1]/", "[::1]", "::1", 1, 80, "/", "");
    expect_http("http://[::1]:8080/x", "[::1]:8080", "::1", 1, 8080, "/x", "");
    expect_http("http://[2001:DB8::Ab]", "[2001:DB8::Ab]", "2001:db8::ab", 1, 80, "", "/");
    expect_http("http://[::ffff:10.0.0.1]?q", "[::ffff:10.0.0.1]", "::ffff:10.0.0.1", 1, 80, "?q", "/");
}

static void test_bad_ipv6_literals(void **state)
{
    (void)state;
    expect_bad_absolute("http://[]/");
    expect_bad_absolute("http://[::1/");
    expect_bad_absolute("http://[::1");
    expect_bad_absolute("http://[::1]x/");
    expect_bad_absolute("http://[::1]:/");
    expect_bad_absolute("http://[::1]:0/");
    expect_bad_absolute("http://[::g]/");
    expect_bad_absolute("http://[fe80::1%25eth0]/");
    expect_bad_absolute("http://[v1.x]/");
    expect_bad_absolute("http://::1/");
    expect_bad_absolute("http://[::1]]/");
}

/* RFC 9110 4.2.4: userinfo is dropped, the last '@' of the authority ends it. */
static void test_userinfo_dropped(void **state)
{
    (void)state;
    expect_http("http://user:pass@example.com/", "example.com", "example.com", 0, 80, "/", "");
    expect_http("http://user@Example.com:8080/p", "Example.com:8080", "example.com", 0, 8080, "/p", "");
    expect_http("http://a@b@example.com/", "example.com", "example.com", 0, 80, "/", "");
    expect_http("http://good.example:80@evil.example/", "evil.example", "evil.example", 0, 80, "/", "");
    /* Userinfo is not checked, only dropped: what follows the last '@' is
     * both the host routed on and the Host sent. */
    expect_http("http://example.com\\@evil/", "evil", "evil", 0, 80, "/", "");
    expect_http("http://@example.com/", "example.com", "example.com", 0, 80, "/", "");
    expect_http("http://u@[::1]:81/", "[::1]:81", "::1", 1, 81, "/", "");
    /* An '@' after the authority is part of the path. */
    expect_http("http://example.com/a@b.example", "example.com", "example.com", 0, 80, "/a@b.example", "");
    expect_http("http://example.com?x=@y", "example.com", "example.com", 0, 80, "?x=@y", "/");
    expect_bad_absolute("http://user@/");
    expect_bad_absolute("http://user@:80/");
}

static void test_fragment_refused(void **state)
{
    (void)state;
    expect_bad_absolute("http://example.com/#top");
    expect_bad_absolute("http://example.com/a?b#c");
    expect_bad_absolute("http://example.com#");
    expect_bad_absolute("http://exa#mple.com/");
}

static void test_bad_hosts(void **state)
{
    (void)state;
    expect_bad_absolute("http://");
    expect_bad_absolute("http:///path");
    expect_bad_absolute("http://?q");
    expect_bad_absolute("http://:80/");
    expect_bad_absolute("http://exa mple.com/");
    expect_bad_absolute("http://ex%41mple.com/");
    expect_bad_absolute("http://exa!mple.com/");
    expect_bad_absolute("http://caf\xc3\xa9.example/");
    expect_bad_absolute("http://a\tb/");
    expect_bad_absolute("http://a\rb/");
}

static void test_max_host(void **state)
{
    char *s;

    (void)state;
    s = long_host_url("http://", TARGET_MAX_HOST, ":81/x");
    assert_int_equal(absolute(s), 0);
    assert_int_equal(strlen(t.host), TARGET_MAX_HOST);
    assert_int_equal(t.host[0], 'a');
    assert_int_equal(t.port, 81);
    expect_range(t.path, t.path_len, "/x");
    free(s);

    s = long_host_url("http://", TARGET_MAX_HOST + 1, "/");
    expect_bad_absolute(s);
    free(s);
    s = long_host_url("http://", 10000, "/");
    expect_bad_absolute(s);
    free(s);
    /* Userinfo does not count toward the host. */
    s = long_host_url("http://", 300, "@example.com/");
    expect_http(s, "example.com", "example.com", 0, 80, "/", "");
    free(s);
}

static void test_reads_only_len_bytes(void **state)
{
    static const char s[] = "http://example.com:8080/path#fragment";

    (void)state;
    /* Cut before the fragment. */
    hold(s, 28);
    assert_int_equal(target_parse_absolute(held, held_len, &t), 0);
    expect_range(t.authority, t.authority_len, "example.com:8080");
    expect_range(t.path, t.path_len, "/path");
    /* Cut inside the port. */
    hold(s, 21);
    assert_int_equal(target_parse_absolute(held, held_len, &t), 0);
    assert_int_equal(t.port, 80);
    assert_string_equal(t.host, "example.com");
    /* Cut inside the scheme. */
    hold(s, 5);
    assert_int_equal(target_parse_absolute(held, held_len, &t), 0);
    assert_int_equal(t.form, TARGET_OTHER);
}

/* target.h: -1 on control bytes, in the path too (CR, LF, NUL, DEL), not
 * only in the host. http_parse_request refuses such targets already; this
 * keeps the contract for any other caller. */
static void test_control_bytes_in_path(void **state)
{
    (void)state;
    expect_bad_absolute("http://example.com/a\x01" "b");
    expect_bad_absolute("http://example.com/a\r\nX-Injected: 1");
    expect_bad_absolute("http://example.com/a\x7f");
    expect_bad_absolute("http://example.com?q=\t1");
    expect_bad_absolute("http://us\x01" "er@example.com/");
    hold("http://example.com/a\0b", 22);
    assert_int_equal(target_parse_absolute(held, held_len, &t), -1);
}

/* ------------------------------------------------------------ authority-form */

static void test_authority_form(void **state)
{
    (void)state;
    expect_connect("example.com:443", "example.com", 0, 443);
    expect_connect("Example.COM:8443", "example.com", 0, 8443);
    expect_connect("192.0.2.1:22", "192.0.2.1", 0, 22);
    expect_connect("[2001:DB8::1]:443", "2001:db8::1", 1, 443);
    expect_connect("[::1]:65535", "::1", 1, 65535);
    expect_connect("a:1", "a", 0, 1);
}

static void test_authority_form_needs_a_port(void **state)
{
    (void)state;
    expect_bad_authority("example.com");
    expect_bad_authority("example.com:");
    expect_bad_authority("[::1]");
    expect_bad_authority("[::1]:");
    expect_bad_authority("");
}

static void test_authority_form_bad(void **state)
{
    char *s;

    (void)state;
    expect_bad_authority(":443");
    expect_bad_authority("example.com:0");
    expect_bad_authority("example.com:65536");
    expect_bad_authority("example.com:443/");
    expect_bad_authority("example.com:443 ");
    expect_bad_authority("user@example.com:443");
    expect_bad_authority("http://example.com:443");
    expect_bad_authority("[::1]x:443");
    expect_bad_authority("[]:443");
    expect_bad_authority("exa mple.com:443");
    s = long_host_url("", TARGET_MAX_HOST + 1, ":443");
    expect_bad_authority(s);
    free(s);
    s = long_host_url("", TARGET_MAX_HOST, ":443");
    assert_int_equal(authority(s), 0);
    assert_int_equal(strlen(t.host), TARGET_MAX_HOST);
    free(s);
}

/* ------------------------------------------------------------ origin prefix */

static void test_origin_prefix(void **state)
{
    target x;

    (void)state;
    memset(&x, 0, sizeof x);
    assert_string_equal(target_origin_prefix(&x), "/");
    x.path = "?a";
    x.path_len = 2;
    assert_string_equal(target_origin_prefix(&x), "/");
    x.path = "/a";
    assert_string_equal(target_origin_prefix(&x), "");
    /* Only path_len counts: an empty range is empty whatever it points at. */
    x.path = "/a";
    x.path_len = 0;
    assert_string_equal(target_origin_prefix(&x), "/");
}

/* ------------------------------------------------------------ host address */

/* host reads as the address want (inet_ntop's spelling), with zone scope. */
static void expect_address(const char *host, const char *want, unsigned scope)
{
    target_address a;
    char text[INET6_ADDRSTRLEN];

    memset(&a, 0x5a, sizeof a);
    if (target_host_address(host, &a) != 1)
        fail_msg("\"%s\" is not an address", host);
    if (a.family == AF_INET)
        assert_memory_equal(a.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
    else
        assert_int_equal(a.family, AF_INET6);
    assert_non_null(inet_ntop(a.family, a.family == AF_INET ? a.addr + 12 : a.addr, text, sizeof text));
    assert_string_equal(text, want);
    assert_int_equal(a.scope, scope);
}

static void expect_name(const char *host)
{
    static const target_address zero;
    target_address a;

    memset(&a, 0x5a, sizeof a);
    if (target_host_address(host, &a) != 0)
        fail_msg("\"%s\" is an address", host);
    assert_memory_equal(&a, &zero, sizeof a);
}

/* What the dialer (libevent's evdns_getaddrinfo) takes for an address, and
 * which: the forms target.h lists. */
static void test_host_address(void **state)
{
    (void)state;
    expect_address("10.0.0.1", "10.0.0.1", 0);
    expect_address("2001:db8::1", "2001:db8::1", 0);
    expect_address("::ffff:10.0.0.1", "::ffff:10.0.0.1", 0);
    /* Laxer than inet_pton(3): decimal whatever the zeros, signs, modulo 2^32. */
    expect_address("010.0.0.1", "10.0.0.1", 0);
    expect_address("0010.000.0.01", "10.0.0.1", 0);
    expect_address("10.-0.0.1", "10.0.0.1", 0);
    expect_address("4294967306.0.0.1", "10.0.0.1", 0);
    expect_address("::ffff:010.0.0.1", "::ffff:10.0.0.1", 0);
    expect_address("1::2:", "1::2", 0);
    expect_address("fe80::1%7", "fe80::1", 7);
    /* Names, resolved through DNS. */
    expect_name("example.com");
    expect_name("10.1");
    expect_name("10.0.1");
    expect_name("0x0a.0.0.1");
    expect_name("167772161");
    expect_name("10.0.0.1.");
    expect_name("10.0.0.256");
    expect_name("1::2::3");
    expect_name("");
}

#define T(f) cmocka_unit_test_teardown(f, release)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_forms_other_than_http),
        T(test_http_basic),
        T(test_host_lowercased_authority_as_written),
        T(test_empty_path_and_query_only),
        T(test_ports),
        T(test_bad_ports),
        T(test_ipv6_literals),
        T(test_bad_ipv6_literals),
        T(test_userinfo_dropped),
        T(test_fragment_refused),
        T(test_bad_hosts),
        T(test_max_host),
        T(test_reads_only_len_bytes),
        T(test_control_bytes_in_path),
        T(test_authority_form),
        T(test_authority_form_needs_a_port),
        T(test_authority_form_bad),
        T(test_origin_prefix),
        T(test_host_address),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
