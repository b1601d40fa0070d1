/* test_route.c - unit tests for src/egress/route.c.
 *
 * route_parse_match: host names, "*.domain", IPv4 and IPv6 CIDR prefixes,
 * and the exact error text for everything else.
 * route_matches: exact names, "*.example.com" covering example.com and
 * every name below it (and nothing that merely ends the same), case,
 * CIDR bits for both families (IPv4 as v4-mapped), names never matching
 * a CIDR.
 * route_decide: the precedence of route.h (block > the request's country,
 * from the credentials, else the header hint when "country_header" is on >
 * the first matching route > the listener's country > any upstream or
 * direct), the `why` of each, a route's mode giving out->policy, sessions.
 *
 * Configs are built with config_parse, so the tests run from the
 * repository root (the policies are read from ./policies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <event2/util.h>

#include "conf/config_load.h"
#include "egress/credentials.h"
#include "egress/route.h"
#include "http/policy.h"

#define BAD(text) "\"" text "\" is not a host name, \"*.domain\" or an address/prefix"

/* ------------------------------------------------------------ helpers */

/* A rule as config.c builds it: zeroed, parsed, then given its text. */
static route_rule rule(const char *text)
{
    route_rule r;
    char err[256] = "";

    memset(&r, 0, sizeof r);
    if (route_parse_match(text, &r, err, sizeof err) != 0)
        fail_msg("\"%s\" refused: %s", text, err);
    r.match = (char *)text;
    return r;
}

static int matches(const char *pattern, const char *host)
{
    route_rule r = rule(pattern);
    return route_matches(&r, host);
}

static void expect_bad(const char *text, const char *want)
{
    route_rule r;
    char err[256];

    memset(&r, 0, sizeof r);
    memset(err, 'x', sizeof err);
    assert_int_equal(route_parse_match(text, &r, err, sizeof err), -1);
    assert_string_equal(err, want);
}

/* The 16-byte form of an address, IPv4 as v4-mapped. */
static void bytes_of(const char *addr, unsigned char out[16])
{
    struct in_addr a4;

    if (inet_pton(AF_INET, addr, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
    } else {
        assert_int_equal(inet_pton(AF_INET6, addr, out), 1);
    }
}

static void expect_cidr(const char *text, const char *net, unsigned prefix)
{
    route_rule r = rule(text);
    unsigned char want[16];

    bytes_of(net, want);
    assert_int_equal(r.is_cidr, 1);
    assert_int_equal(r.range.prefix, prefix);
    assert_memory_equal(r.range.net, want, 16);
}

static void load(const char *json, config *cfg)
{
    char err[512] = "";

    if (config_parse(json, "anonproxy.json", cfg, err, sizeof err) != 0)
        fail_msg("config refused: %s", err);
}

static credentials cred_of(const char *user)
{
    credentials c;

    credentials_parse(user, strlen(user), "pw", 2, &c);
    return c;
}

/* route_decide with out filled with garbage first, to prove it is all written. */
static route decide(const config *cfg, const route_input *in)
{
    route out;

    memset(&out, 0x5a, sizeof out);
    route_decide(cfg, in, &out);
    return out;
}

static route decide_host(const config *cfg, const char *host)
{
    route_input in = {.host = host};
    return decide(cfg, &in);
}

static void expect_route(const route *r, route_action action, const char *country,
                         const char *session, const char *why)
{
    assert_int_equal(r->action, action);
    assert_string_equal(r->country, country);
    assert_string_equal(r->session, session);
    assert_non_null(r->why);
    assert_string_equal(r->why, why);
}

/* ------------------------------------------------------------ route_parse_match */

static void test_parse_names(void **state)
{
    static const char *const ok[] = {
        "example.com", "*.example.com", "localhost", "a-b_c.example", "EXAMPLE.COM",
        "xn--bcher-kva.example", "10.0.0.1", "2001:db8::1", "*.com",
    };

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        route_rule r = rule(ok[i]);
        assert_int_equal(r.is_cidr, 0);
    }
}

static void test_parse_cidr_ipv4(void **state)
{
    (void)state;
    expect_cidr("10.0.0.0/8", "10.0.0.0", 96 + 8);
    expect_cidr("172.16.0.0/12", "172.16.0.0", 96 + 12);
    expect_cidr("192.168.1.7/32", "192.168.1.7", 128);
    expect_cidr("0.0.0.0/0", "0.0.0.0", 96);
    /* Host bits may be set; only the prefix is compared. */
    expect_cidr("10.1.2.3/8", "10.1.2.3", 104);
}

static void test_parse_cidr_ipv6(void **state)
{
    (void)state;
    expect_cidr("2001:db8::/32", "2001:db8::", 32);
    expect_cidr("fe80::/10", "fe80::", 10);
    expect_cidr("::1/128", "::1", 128);
    expect_cidr("::/0", "::", 0);
    /* A v4-mapped prefix is the same as the IPv4 one. */
    expect_cidr("::ffff:10.0.0.0/104", "10.0.0.0", 104);
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "", "*.", "*", "*.*.example.com", "foo*", "exa mple.com", "example.com/",
        "http://example.com", "a@b", "[::1]", "example.com/8", "10.0.0/8", "10.0.0.0/",
        "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8",
        "10.0.0.0/8/8", "2001:db8::/129", "[::1]/128", "10.0.0.0/99999999999999999999",
        "caf\xc3\xa9.example",
    };
    char want[300];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(want, sizeof want, BAD("%s"), bad[i]);
        expect_bad(bad[i], want);
    }
    expect_bad("*.", BAD("*."));
    expect_bad("10.0.0.0/33", BAD("10.0.0.0/33"));
}

static void test_parse_bad_long_address(void **state)
{
    char text[128], want[300];

    (void)state;
    /* 64 bytes before the slash never fit the address buffer. */
    memset(text, '1', 64);
    strcpy(text + 64, "/8");
    snprintf(want, sizeof want, BAD("%s"), text);
    expect_bad(text, want);
}

static void test_parse_error_is_cut_to_errlen(void **state)
{
    route_rule r;
    char err[16];

    (void)state;
    memset(&r, 0, sizeof r);
    memset(err, 'x', sizeof err);
    assert_int_equal(route_parse_match("bad host", &r, err, sizeof err), -1);
    assert_string_equal(err, "\"bad host\" is n");
}

static void test_parse_error_through_config(void **state)
{
    config cfg;
    char err[512] = "";

    (void)state;
    assert_int_equal(config_parse("{\"routes\": [{\"match\": \"a.example\", \"action\": \"direct\"},"
                                  " {\"match\": \"10.0.0.0/40\", \"action\": \"block\"}]}",
                                  "anonproxy.json", &cfg, err, sizeof err),
                     -1);
    assert_string_equal(err, "anonproxy.json: routes[1].match: " BAD("10.0.0.0/40"));
}

/* ------------------------------------------------------------ route_matches */

static void test_match_exact_name(void **state)
{
    (void)state;
    assert_true(matches("example.com", "example.com"));
    assert_true(matches("example.com", "EXAMPLE.Com"));
    assert_true(matches("Example.COM", "example.com"));
    assert_false(matches("example.com", "www.example.com"));
    assert_false(matches("example.com", "example.co"));
    assert_false(matches("example.com", "xexample.com"));
    assert_false(matches("example.com", "example.com.evil"));
    assert_false(matches("example.com", ""));
}

static void test_match_wildcard_suffix(void **state)
{
    (void)state;
    assert_true(matches("*.example.com", "example.com"));
    assert_true(matches("*.example.com", "www.example.com"));
    assert_true(matches("*.example.com", "a.b.c.example.com"));
    assert_true(matches("*.example.com", "WWW.Example.COM"));
    assert_true(matches("*.Example.COM", "www.example.com"));
    assert_true(matches("*.com", "example.com"));
    /* Only at a label boundary. */
    assert_false(matches("*.example.com", "badexample.com"));
    assert_false(matches("*.example.com", "xample.com"));
    assert_false(matches("*.example.com", "example.com.evil"));
    assert_false(matches("*.example.com", "example.org"));
    assert_false(matches("*.example.com", "com"));
    assert_false(matches("*.example.com", ""));
    assert_false(matches("*.example.com", ".com"));
}

static void test_match_cidr_ipv4(void **state)
{
    (void)state;
    assert_true(matches("10.0.0.0/8", "10.0.0.1"));
    assert_true(matches("10.0.0.0/8", "10.255.255.255"));
    assert_false(matches("10.0.0.0/8", "11.0.0.0"));
    assert_false(matches("10.0.0.0/8", "9.255.255.255"));
    /* A prefix that ends inside a byte. */
    assert_true(matches("172.16.0.0/12", "172.16.0.1"));
    assert_true(matches("172.16.0.0/12", "172.31.255.255"));
    assert_false(matches("172.16.0.0/12", "172.32.0.0"));
    assert_false(matches("172.16.0.0/12", "172.15.255.255"));
    assert_true(matches("192.168.1.128/25", "192.168.1.200"));
    assert_false(matches("192.168.1.128/25", "192.168.1.127"));
    /* Host bits in the rule are ignored past the prefix. */
    assert_true(matches("10.1.2.3/8", "10.9.9.9"));
    assert_true(matches("192.0.2.7/32", "192.0.2.7"));
    assert_false(matches("192.0.2.7/32", "192.0.2.6"));
    assert_true(matches("0.0.0.0/0", "203.0.113.9"));
    /* An IPv4 prefix covers IPv4 only, v4-mapped IPv6 included. */
    assert_false(matches("0.0.0.0/0", "2001:db8::1"));
    assert_true(matches("0.0.0.0/0", "::ffff:1.2.3.4"));
}

static void test_match_cidr_ipv6(void **state)
{
    (void)state;
    assert_true(matches("2001:db8::/32", "2001:db8::1"));
    assert_true(matches("2001:db8::/32", "2001:DB8:ffff::1"));
    assert_false(matches("2001:db8::/32", "2001:db9::1"));
    assert_true(matches("fe80::/10", "fe80::1"));
    assert_true(matches("fe80::/10", "febf::1"));
    assert_false(matches("fe80::/10", "fec0::1"));
    assert_true(matches("::1/128", "::1"));
    assert_true(matches("::1/128", "0:0:0:0:0:0:0:1"));
    assert_false(matches("::1/128", "::2"));
    /* ::/0 covers everything, IPv4 (as v4-mapped) too. */
    assert_true(matches("::/0", "2001:db8::1"));
    assert_true(matches("::/0", "10.0.0.1"));
}

/* A bracketed literal reaches routing as "::ffff:10.0.0.1" (target.h): it
 * must not slip past an IPv4 rule. */
static void test_match_v4_mapped_host(void **state)
{
    (void)state;
    assert_true(matches("10.0.0.0/8", "::ffff:10.0.0.1"));
    assert_true(matches("10.0.0.0/8", "::ffff:a00:1"));
    assert_false(matches("10.0.0.0/8", "::ffff:b00:1"));
    assert_true(matches("::ffff:10.0.0.0/104", "10.0.0.1"));
}

static void test_names_never_match_cidr(void **state)
{
    (void)state;
    assert_false(matches("0.0.0.0/0", "example.com"));
    assert_false(matches("0.0.0.0/0", "localhost"));
    assert_false(matches("10.0.0.0/8", "10.0.0.1.nip.io"));
    assert_false(matches("::/0", "example.com"));
    assert_false(matches("::/0", ""));
}

static void test_address_written_as_name(void **state)
{
    (void)state;
    /* Without a prefix an address is that one address, however either side
     * spells it: as text, "010.0.0.1" would pass a block of "10.0.0.1". */
    assert_true(matches("10.0.0.1", "10.0.0.1"));
    assert_false(matches("10.0.0.1", "10.0.0.10"));
    assert_true(matches("2001:db8::1", "2001:DB8::1"));
    assert_true(matches("2001:db8::1", "2001:db8:0::1"));
    assert_true(matches("10.0.0.1", "010.0.0.1"));
    assert_true(matches("10.0.0.1", "::ffff:10.0.0.1"));
    assert_true(matches("::ffff:10.0.0.1", "10.0.0.1"));
    assert_true(matches("010.0.0.1", "10.0.0.1"));
    assert_false(matches("10.0.0.1", "10.0.0.1.example"));
    assert_false(matches("10.0.0.1", "::10.0.0.1"));
}

/* The dialer (net/dial.c) connects to the address libevent reads in the
 * text (evutil_inet_pton: leading zeros are decimal), routing must match
 * that same address: a CIDR read by glibc's inet_pton, which refuses
 * "010.0.0.1", let {"match": "10.0.0.0/8", "action": "block"} be bypassed
 * by http://010.0.0.1/. */
static void test_leading_zero_ipv4_is_the_same_address(void **state)
{
    struct in_addr dialed, ten;

    (void)state;
    /* What the dialer sees. */
    assert_int_equal(evutil_inet_pton(AF_INET, "010.0.0.1", &dialed), 1);
    assert_int_equal(inet_pton(AF_INET, "10.0.0.1", &ten), 1);
    assert_memory_equal(&dialed, &ten, sizeof ten);
    /* What routing sees. */
    assert_true(matches("10.0.0.0/8", "010.0.0.1"));
    /* The other spellings libevent reads as 10.0.0.1 (http/target.h). */
    assert_true(matches("10.0.0.0/8", "0010.000.0.01"));
    assert_true(matches("10.0.0.0/8", "10.-0.0.1"));
    assert_true(matches("10.0.0.0/8", "4294967306.0.0.1"));
    assert_true(matches("10.0.0.0/8", "::ffff:010.0.0.1"));
    assert_true(matches("1::/16", "1::2:"));
    /* And the ones it leaves to DNS as names: no CIDR rule matches those. */
    assert_false(matches("10.0.0.0/8", "10.1"));
    assert_false(matches("10.0.0.0/8", "0x0a.0.0.1"));
    assert_false(matches("10.0.0.0/8", "167772161"));
    assert_false(matches("10.0.0.0/8", "10.0.0.1."));
    /* A rule spelled that way is the same network. */
    assert_true(matches("010.0.0.0/8", "10.0.0.1"));
}

/* A name with the root's trailing dot resolves to the same host
 * ("tracker.example." is "tracker.example" to DNS) and target.c accepts it:
 * name rules match both spellings, whichever one the rule is written in,
 * or {"match": "*.tracker.example", "action": "block"} would be bypassed by
 * http://www.tracker.example./. One dot only: ".." is no spelling of a name. */
static void test_trailing_dot_is_the_same_name(void **state)
{
    (void)state;
    assert_true(matches("*.tracker.example", "www.tracker.example."));
    assert_true(matches("*.tracker.example", "tracker.example."));
    assert_true(matches("tracker.example", "tracker.example."));
    assert_true(matches("*.tracker.example.", "www.tracker.example"));
    assert_true(matches("tracker.example.", "tracker.example"));
    assert_true(matches("tracker.example.", "TRACKER.example."));
    assert_false(matches("tracker.example", "tracker.example.."));
    assert_false(matches("*.tracker.example", "www.tracker.example.."));
    assert_false(matches("*.tracker.example", "wwwtracker.example."));
    assert_false(matches("tracker.example", "tracker.exampl."));
}

/* ------------------------------------------------------------ route_decide */

static const char everything[] =
    "{\"listen\": [{\"address\": \"127.0.0.1:8001\"},"
    "             {\"address\": \"127.0.0.1:8002\", \"country\": \"nl\"}],"
    " \"country_header\": true,"
    " \"upstreams\": [{\"url\": \"http://203.0.113.7:3128\", \"country\": \"DE\"}],"
    " \"routes\": [{\"match\": \"*.bbc.co.uk\", \"country\": \"gb\"},"
    "              {\"match\": \"www.bbc.co.uk\", \"country\": \"FR\"},"
    "              {\"match\": \"10.0.0.0/8\", \"action\": \"direct\"},"
    "              {\"match\": \"*.any.example\", \"action\": \"upstream\"},"
    "              {\"match\": \"*.ads.example\", \"action\": \"block\"},"
    "              {\"match\": \"*.example.com\", \"action\": \"direct\", \"mode\": \"transparent\"}]}";

static void test_default_is_direct_without_upstreams(void **state)
{
    config cfg;
    route r;

    (void)state;
    load("{}", &cfg);
    r = decide_host(&cfg, "example.org");
    expect_route(&r, ROUTE_DIRECT, "", "", "the default");
    assert_null(r.policy);
    config_free(&cfg);
}

static void test_default_is_any_upstream_with_upstreams(void **state)
{
    config cfg;
    route r;

    (void)state;
    load(everything, &cfg);
    r = decide_host(&cfg, "example.org");
    expect_route(&r, ROUTE_UPSTREAM, "", "", "the default");
    assert_null(r.policy);
    /* With the listener that has no country, still the default. */
    route_input in = {.host = "example.org", .listener = &cfg.listen[0]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "", "", "the default");
    config_free(&cfg);
}

static void test_first_matching_route(void **state)
{
    config cfg;
    route r;

    (void)state;
    load(everything, &cfg);
    r = decide_host(&cfg, "www.bbc.co.uk");   /* the GB rule comes first */
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    r = decide_host(&cfg, "bbc.co.uk");
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    r = decide_host(&cfg, "10.1.2.3");
    expect_route(&r, ROUTE_DIRECT, "", "", "10.0.0.0/8");
    r = decide_host(&cfg, "x.any.example");
    expect_route(&r, ROUTE_UPSTREAM, "", "", "*.any.example");
    r = decide_host(&cfg, "bbc.co.uk.example.org");
    expect_route(&r, ROUTE_UPSTREAM, "", "", "the default");
    config_free(&cfg);
}

static void test_block_wins_over_everything(void **state)
{
    config cfg;
    credentials c = cred_of("alice-country-fr-session-s1");
    route r;

    (void)state;
    load(everything, &cfg);
    route_input in = {.host = "t.ads.example", .cred = &c, .header_country = "IT",
                      .header_country_len = 2, .listener = &cfg.listen[1]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_BLOCK, "", "", "*.ads.example");
    config_free(&cfg);
}

/* "A block anywhere in the list wins": also after a route that matched first. */
static void test_block_later_in_list_still_wins(void **state)
{
    config cfg;
    route r;

    (void)state;
    load("{\"routes\": [{\"match\": \"*.example.com\", \"country\": \"GB\"},"
         "             {\"match\": \"10.0.0.0/8\", \"action\": \"direct\"},"
         "             {\"match\": \"ads.example.com\", \"action\": \"block\"},"
         "             {\"match\": \"10.9.0.0/16\", \"action\": \"block\"}]}",
         &cfg);
    r = decide_host(&cfg, "ads.example.com");
    expect_route(&r, ROUTE_BLOCK, "", "", "ads.example.com");
    r = decide_host(&cfg, "www.example.com");
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.example.com");
    r = decide_host(&cfg, "10.9.8.7");
    expect_route(&r, ROUTE_BLOCK, "", "", "10.9.0.0/16");
    r = decide_host(&cfg, "10.8.8.7");
    expect_route(&r, ROUTE_DIRECT, "", "", "10.0.0.0/8");
    config_free(&cfg);
}

static void test_credentials_country_beats_routes_and_listener(void **state)
{
    config cfg;
    credentials c = cred_of("alice-country-fr-session-abc123");
    route r;

    (void)state;
    load(everything, &cfg);
    route_input in = {.host = "www.bbc.co.uk", .cred = &c, .listener = &cfg.listen[1]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "FR", "abc123", "the request");
    /* Even over a direct route. */
    in.host = "10.0.0.1";
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "FR", "abc123", "the request");
    config_free(&cfg);
}

static void test_header_country_only_when_enabled(void **state)
{
    config on, off;
    route r;

    (void)state;
    load(everything, &on);
    load("{\"routes\": [{\"match\": \"*.bbc.co.uk\", \"country\": \"GB\"}]}", &off);
    route_input in = {.host = "www.bbc.co.uk", .header_country = "de", .header_country_len = 2};

    r = decide(&on, &in);
    expect_route(&r, ROUTE_UPSTREAM, "DE", "", "the request");
    r = decide(&off, &in);
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    in.host = "example.org";
    r = decide(&off, &in);
    expect_route(&r, ROUTE_DIRECT, "", "", "the default");
    config_free(&on);
    config_free(&off);
}

static void test_header_country_checked_and_bounded(void **state)
{
    config cfg;
    route r;

    (void)state;
    load(everything, &cfg);
    /* Not two letters: ignored, the next rule decides. */
    route_input in = {.host = "www.bbc.co.uk", .header_country = "DEU", .header_country_len = 3};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    in.header_country = "d1";
    in.header_country_len = 2;
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    /* Only header_country_len bytes are read. */
    in.header_country = "itX";
    in.header_country_len = 2;
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "IT", "", "the request");
    config_free(&cfg);
}

static void test_credentials_country_beats_header(void **state)
{
    config cfg;
    credentials with = cred_of("alice-country-fr"), without = cred_of("bob-session-s9");
    route r;

    (void)state;
    load(everything, &cfg);
    route_input in = {.host = "example.org", .cred = &with, .header_country = "IT",
                      .header_country_len = 2};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "FR", "", "the request");
    /* Credentials without a country leave the header to decide, keeping their session. */
    in.cred = &without;
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "IT", "s9", "the request");
    config_free(&cfg);
}

static void test_route_beats_listener_country(void **state)
{
    config cfg;
    route r;

    (void)state;
    load(everything, &cfg);
    route_input in = {.host = "10.0.0.1", .listener = &cfg.listen[1]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_DIRECT, "", "", "10.0.0.0/8");
    in.host = "bbc.co.uk";
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "GB", "", "*.bbc.co.uk");
    config_free(&cfg);
}

static void test_listener_country(void **state)
{
    config cfg;
    route r;

    (void)state;
    load(everything, &cfg);
    assert_string_equal(cfg.listen[1].country, "NL");
    route_input in = {.host = "example.org", .listener = &cfg.listen[1]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "NL", "", "the listener");
    assert_null(r.policy);
    config_free(&cfg);

    /* Without upstreams too: the listener asks for a country, never direct. */
    load("{\"listen\": [{\"address\": \"127.0.0.1:8002\", \"country\": \"DE\"}]}", &cfg);
    in.listener = &cfg.listen[0];
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "DE", "", "the listener");
    config_free(&cfg);
}

static void test_route_mode_gives_policy(void **state)
{
    config cfg;
    credentials c = cred_of("alice-country-fr");
    route r;

    (void)state;
    load(everything, &cfg);
    r = decide_host(&cfg, "www.example.com");
    expect_route(&r, ROUTE_DIRECT, "", "", "*.example.com");
    assert_non_null(r.policy);
    assert_string_equal(policy_name(r.policy), "transparent");
    /* The route's mode still applies when the request picks the country. */
    route_input in = {.host = "www.example.com", .cred = &c};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "FR", "", "the request");
    assert_non_null(r.policy);
    assert_string_equal(policy_name(r.policy), "transparent");
    /* Routes without a mode, and no route at all: NULL (the listener's policy). */
    r = decide_host(&cfg, "www.bbc.co.uk");
    assert_null(r.policy);
    r = decide_host(&cfg, "example.org");
    assert_null(r.policy);
    in.host = "example.org";
    r = decide(&cfg, &in);
    assert_null(r.policy);
    config_free(&cfg);
}

/* The policy of the first matching route, not of a later one. */
static void test_first_route_mode_counts(void **state)
{
    config cfg;
    route r;

    (void)state;
    load("{\"routes\": [{\"match\": \"a.example\", \"action\": \"direct\", \"mode\": \"paranoid\"},"
         "             {\"match\": \"*.example\", \"action\": \"direct\", \"mode\": \"transparent\"}]}",
         &cfg);
    r = decide_host(&cfg, "a.example");
    expect_route(&r, ROUTE_DIRECT, "", "", "a.example");
    assert_string_equal(policy_name(r.policy), "paranoid");
    r = decide_host(&cfg, "b.example");
    expect_route(&r, ROUTE_DIRECT, "", "", "*.example");
    assert_string_equal(policy_name(r.policy), "transparent");
    config_free(&cfg);
}

static void test_session_travels_with_any_decision(void **state)
{
    config cfg;
    credentials c = cred_of("alice-session-s1");
    route r;

    (void)state;
    load(everything, &cfg);
    route_input in = {.host = "bbc.co.uk", .cred = &c, .listener = &cfg.listen[1]};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "GB", "s1", "*.bbc.co.uk");
    in.host = "example.org";
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "NL", "s1", "the listener");
    in.listener = NULL;
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "", "s1", "the default");
    /* A longest session fits. */
    char user[100];
    snprintf(user, sizeof user, "a-session-%0*d", CRED_MAX_SESSION, 7);
    c = cred_of(user);
    r = decide(&cfg, &in);
    assert_int_equal(strlen(r.session), CRED_MAX_SESSION);
    assert_string_equal(r.session, c.session);
    config_free(&cfg);
}

/* present == 0 (credentials_from_basic failed) means no credentials at all. */
static void test_absent_credentials_are_ignored(void **state)
{
    config cfg;
    credentials c;
    route r;

    (void)state;
    load(everything, &cfg);
    memset(&c, 0, sizeof c);
    strcpy(c.country, "FR");
    strcpy(c.session, "s1");
    route_input in = {.host = "example.org", .cred = &c};
    r = decide(&cfg, &in);
    expect_route(&r, ROUTE_UPSTREAM, "", "", "the default");
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_parse_cidr_ipv4),
        cmocka_unit_test(test_parse_cidr_ipv6),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_bad_long_address),
        cmocka_unit_test(test_parse_error_is_cut_to_errlen),
        cmocka_unit_test(test_parse_error_through_config),
        cmocka_unit_test(test_match_exact_name),
        cmocka_unit_test(test_match_wildcard_suffix),
        cmocka_unit_test(test_match_cidr_ipv4),
        cmocka_unit_test(test_match_cidr_ipv6),
        cmocka_unit_test(test_match_v4_mapped_host),
        cmocka_unit_test(test_names_never_match_cidr),
        cmocka_unit_test(test_address_written_as_name),
        cmocka_unit_test(test_leading_zero_ipv4_is_the_same_address),
        cmocka_unit_test(test_trailing_dot_is_the_same_name),
        cmocka_unit_test(test_default_is_direct_without_upstreams),
        cmocka_unit_test(test_default_is_any_upstream_with_upstreams),
        cmocka_unit_test(test_first_matching_route),
        cmocka_unit_test(test_block_wins_over_everything),
        cmocka_unit_test(test_block_later_in_list_still_wins),
        cmocka_unit_test(test_credentials_country_beats_routes_and_listener),
        cmocka_unit_test(test_header_country_only_when_enabled),
        cmocka_unit_test(test_header_country_checked_and_bounded),
        cmocka_unit_test(test_credentials_country_beats_header),
        cmocka_unit_test(test_route_beats_listener_country),
        cmocka_unit_test(test_listener_country),
        cmocka_unit_test(test_route_mode_gives_policy),
        cmocka_unit_test(test_first_route_mode_counts),
        cmocka_unit_test(test_session_travels_with_any_decision),
        cmocka_unit_test(test_absent_credentials_are_ignored),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
