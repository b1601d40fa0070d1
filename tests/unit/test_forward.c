/* test_forward.c - unit tests for src/http/forward.c.
 *
 * forward_request_head: the request line in origin-form (empty path and
 * query-only targets get their "/"), HTTP version, Host inserted first when
 * missing, kept when it names the target, rewritten in place otherwise;
 * hop-by-hop fields removed (Keep-Alive, Proxy-Connection, TE, Trailer,
 * Proxy-Authorization, X-Anonproxy-Country, Upgrade unless upgrading),
 * Connection kept with only keep-alive/close (and upgrade when upgrading),
 * fields it names removed except Host/Content-Length/Transfer-Encoding,
 * Proxy-Connection turned into Connection when there is none, every other
 * field byte for byte in order, and the policy applied first.
 * forward_response_head: the status line, hop-by-hop fields, the
 * response_plan (Connection: close / keep-alive for the client's version,
 * drop_te, upgrading) and the policy's response rules.
 * forward_client_keep_alive / forward_origin_keep_alive for HTTP/1.0 and
 * 1.1 with Connection (and Proxy-Connection) tokens; forward_wants_upgrade.
 *
 * Heads are real parses (http_parse_request / http_parse_response) of
 * exact-size heap copies. Runs from the repository root: the shipped
 * policies are read from ./policies; an empty policy ("plain", no rules) is
 * written to a temporary directory so that only forward.c acts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "http/forward.h"
#include "http/http_parser.h"
#include "http/policy.h"
#include "http/target.h"

#define MAX_FIELDS 64

static const http_limits limits = {
    .max_head = 65536, .max_fields = MAX_FIELDS, .max_uri = 8192, .max_line = 8192,
};

static const policy_vars vars = {
    .client_ip = "10.0.0.9", .client_port = "54321", .proxy_name = "anon.example", .host = "example.com",
};

static char dir[64];           /* holds plain.json */
static policy *plain, *elite, *transparent;

/* ------------------------------------------------------------ fixture */

static policy *load(const char *from, const char *name)
{
    char err[512] = "";
    policy *p = policy_load(from, name, err, sizeof err);

    if (p == NULL)
        fprintf(stderr, "policy %s: %s\n", name, err);
    return p;
}

static int setup(void **state)
{
    char path[128];
    FILE *f;

    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_forward.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/plain.json", dir);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs("{}", f);
    fclose(f);
    plain = load(dir, "plain");
    unlink(path);
    rmdir(dir);
    elite = load("policies", "elite");
    transparent = load("policies", "transparent");
    return plain && elite && transparent ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    policy_free(plain);
    policy_free(elite);
    policy_free(transparent);
    return 0;
}

/* ------------------------------------------------------------ helpers */

typedef struct head {
    char *buf;
    http_field fields[MAX_FIELDS];
    http_request req;
    http_response resp;
} head;

static head *parse_request(const char *text)
{
    size_t len = strlen(text);
    head *h = calloc(1, sizeof *h);
    int status = 0;

    assert_non_null(h);
    assert_non_null(h->buf = malloc(len));
    memcpy(h->buf, text, len);
    h->req.fields = h->fields;
    if (http_parse_request(h->buf, len, &limits, &h->req, &status) != (int)len)
        fail_msg("test request does not parse (%d): %s", status, text);
    return h;
}

static head *parse_response(const char *text)
{
    size_t len = strlen(text);
    head *h = calloc(1, sizeof *h);
    int status = 0;

    assert_non_null(h);
    assert_non_null(h->buf = malloc(len));
    memcpy(h->buf, text, len);
    h->resp.fields = h->fields;
    if (http_parse_response(h->buf, len, &limits, &h->resp, &status) != (int)len)
        fail_msg("test response does not parse (%d): %s", status, text);
    return h;
}

static void head_free(head *h)
{
    free(h->buf);
    free(h);
}

/* The buffer's bytes as a string (static storage), and the buffer freed. */
static const char *take(struct evbuffer *out)
{
    static char result[8192];
    size_t n = evbuffer_get_length(out);
    unsigned char *bytes = evbuffer_pullup(out, -1);

    assert_true(n < sizeof result);
    memcpy(result, bytes, n);
    result[n] = '\0';
    assert_int_equal(strlen(result), n);   /* no NUL was written */
    evbuffer_free(out);
    return result;
}

/* forward_request_head for a whole request head, as the proxy calls it. */
static const char *request_with(const policy *p, const char *text, int upgrading)
{
    head *h = parse_request(text);
    struct evbuffer *out = evbuffer_new();
    target t;
    const char *result;

    assert_non_null(out);
    assert_int_equal(target_parse_absolute(h->req.target, h->req.target_len, &t), 0);
    assert_int_equal(t.form, TARGET_HTTP);
    forward_request_head(out, &h->req, &t, upgrading, p, &vars);
    result = take(out);
    head_free(h);
    return result;
}

static const char *request(const char *text)
{
    return request_with(plain, text, 0);
}

static const char *response_with(const policy *p, const char *text, int client_minor, int keep_alive,
                                 int drop_te, int upgrading)
{
    head *h = parse_response(text);
    struct evbuffer *out = evbuffer_new();
    response_plan plan = {client_minor, keep_alive, drop_te, upgrading};
    const char *result;

    assert_non_null(out);
    forward_response_head(out, &h->resp, &plan, p, &vars);
    result = take(out);
    head_free(h);
    return result;
}

/* A 1.1 client kept alive, nothing decoded, no upgrade: forward.c adds nothing. */
static const char *response(const char *text)
{
    return response_with(plain, text, 1, 1, 0, 0);
}

static int client_keep_alive(const char *text)
{
    head *h = parse_request(text);
    int r = forward_client_keep_alive(&h->req);
    head_free(h);
    return r;
}

static int origin_keep_alive(const char *text)
{
    head *h = parse_response(text);
    int r = forward_origin_keep_alive(&h->resp);
    head_free(h);
    return r;
}

static int wants_upgrade(const char *text)
{
    head *h = parse_request(text);
    int r = forward_wants_upgrade(&h->req);
    head_free(h);
    return r;
}

#define GET11 "GET http://example.com/ HTTP/1.1\r\n"
#define OUT11 "GET / HTTP/1.1\r\n"

/* ------------------------------------------------------------ request line and Host */

static void test_request_line_origin_form(void **state)
{
    (void)state;
    assert_string_equal(request("GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n");
    /* RFC 9112 3.2.1: an empty path is sent as "/", a query-only one as "/?q". */
    assert_string_equal(request("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_string_equal(request("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                        "GET /?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    /* The method and the path are passed as received. */
    assert_string_equal(request("PROPFIND http://example.com/%7Ea/B HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                        "PROPFIND /%7Ea/B HTTP/1.1\r\nHost: example.com\r\n\r\n");
}

static void test_request_version_kept(void **state)
{
    (void)state;
    assert_string_equal(request("GET http://example.com/ HTTP/1.0\r\nHost: example.com\r\n\r\n"),
                        "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
    assert_string_equal(request("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
}

static void test_host_added_first_when_missing(void **state)
{
    (void)state;
    assert_string_equal(request("GET http://example.com:8080/x HTTP/1.0\r\nAccept: */*\r\nX-A: 1\r\n\r\n"),
                        "GET /x HTTP/1.0\r\nHost: example.com:8080\r\nAccept: */*\r\nX-A: 1\r\n\r\n");
    /* The authority as written, without userinfo; brackets kept. */
    assert_string_equal(request("GET http://u:p@Example.COM/ HTTP/1.1\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n");
    assert_string_equal(request("GET http://[::1]:8080/ HTTP/1.1\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
}

static void test_host_kept_when_it_names_the_target(void **state)
{
    (void)state;
    /* In place and byte for byte, whatever its case. */
    assert_string_equal(request(GET11 "Accept: */*\r\nhost:   EXAMPLE.com  \r\nX-A: 1\r\n\r\n"),
                        OUT11 "Accept: */*\r\nhost:   EXAMPLE.com  \r\nX-A: 1\r\n\r\n");
    assert_string_equal(request("GET http://example.com:81/ HTTP/1.1\r\nHost: example.com:81\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: example.com:81\r\n\r\n");
}

/* RFC 9112 3.2.2: the target's authority replaces a received Host. */
static void test_host_rewritten_from_the_target(void **state)
{
    (void)state;
    assert_string_equal(request(GET11 "Accept: */*\r\nhOsT: other.example\r\nX-A: 1\r\n\r\n"),
                        OUT11 "Accept: */*\r\nhOsT: example.com\r\nX-A: 1\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com:80\r\n\r\n"), OUT11 "Host: example.com\r\n\r\n");
    assert_string_equal(request("GET http://user@example.com:8080/ HTTP/1.1\r\nHost: user@example.com:8080\r\n\r\n"),
                        "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
}

/* RFC 9112 3.2.4: "When a proxy receives an OPTIONS request with an
 * absolute-form of request-target in which the URI has an empty path and no
 * query component, then the last proxy on the request chain MUST send a
 * request-target of "*"". Only then: a query, a path, or another method
 * (methods are case-sensitive) keep the usual "/". */
static void test_options_with_empty_path_is_asterisk(void **state)
{
    (void)state;
    assert_string_equal(request("OPTIONS http://example.com:8001 HTTP/1.1\r\n\r\n"),
                        "OPTIONS * HTTP/1.1\r\nHost: example.com:8001\r\n\r\n");
    assert_string_equal(request("OPTIONS http://example.com:8001?a HTTP/1.1\r\n\r\n"),
                        "OPTIONS /?a HTTP/1.1\r\nHost: example.com:8001\r\n\r\n");
    assert_string_equal(request("OPTIONS http://example.com:8001/ HTTP/1.1\r\n\r\n"),
                        "OPTIONS / HTTP/1.1\r\nHost: example.com:8001\r\n\r\n");
    assert_string_equal(request("options http://example.com:8001 HTTP/1.1\r\n\r\n"),
                        "options / HTTP/1.1\r\nHost: example.com:8001\r\n\r\n");
    assert_string_equal(request("OPTIONSX http://example.com:8001 HTTP/1.1\r\n\r\n"),
                        "OPTIONSX / HTTP/1.1\r\nHost: example.com:8001\r\n\r\n");
}

/* ------------------------------------------------------------ hop-by-hop toward the origin */

static void test_hop_by_hop_removed(void **state)
{
    (void)state;
    assert_string_equal(request(GET11 "Host: example.com\r\n"
                                      "Keep-Alive: timeout=5\r\n"
                                      "X-Custom:  spaced value  \r\n"
                                      "TE: trailers\r\n"
                                      "Trailer: X-Sum\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Proxy-Authorization: Basic YTpi\r\n"
                                      "Proxy-Authenticate: Basic\r\n"
                                      "X-Anonproxy-Country: DE\r\n"
                                      "accept: */*\r\n"
                                      "\r\n"),
                        OUT11 "Host: example.com\r\nX-Custom:  spaced value  \r\naccept: */*\r\n\r\n");
}

static void test_hop_by_hop_names_any_case(void **state)
{
    (void)state;
    assert_string_equal(request(GET11 "Host: example.com\r\nkeep-alive: 1\r\nPROXY-AUTHORIZATION: x\r\n"
                                      "x-anonproxy-country: de\r\nupgrade: h2c\r\nte: gzip\r\nX-B: 2\r\n\r\n"),
                        OUT11 "Host: example.com\r\nX-B: 2\r\n\r\n");
}

static void test_connection_keeps_only_its_options(void **state)
{
    (void)state;
    /* Nothing to remove: the line as received. */
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection:  Keep-Alive \r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection:  Keep-Alive \r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection: keep-alive, close\r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection: keep-alive, close\r\n\r\n");
    /* Other tokens go, in place, and so do the fields they name. */
    assert_string_equal(request(GET11 "Connection: X-Foo, Keep-Alive,,TE\r\nHost: example.com\r\n"
                                      "X-Foo: 1\r\nX-Bar: 2\r\n\r\n"),
                        OUT11 "Connection: Keep-Alive\r\nHost: example.com\r\nX-Bar: 2\r\n\r\n");
    /* No option left: no Connection field at all. */
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection: X-Foo\r\nX-Foo: 1\r\n\r\n"),
                        OUT11 "Host: example.com\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
                        OUT11 "Host: example.com\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection:\r\nX-A: 1\r\n\r\n"),
                        OUT11 "Host: example.com\r\nX-A: 1\r\n\r\n");
}

static void test_connection_named_fields_removed(void **state)
{
    (void)state;
    /* Any case, every occurrence, named from any Connection field. */
    assert_string_equal(request(GET11 "Host: example.com\r\nconnection: x-foo\r\nX-FOO: 1\r\nX-Keep: k\r\n"
                                      "x-foo: 2\r\nConnection: close, X-Bar\r\nX-Bar: 3\r\n\r\n"),
                        OUT11 "Host: example.com\r\nX-Keep: k\r\nConnection: close\r\n\r\n");
    /* Names are whole tokens. */
    assert_string_equal(request(GET11 "Host: example.com\r\nConnection: X-Foo\r\nX-Foobar: 1\r\nX-Fo: 2\r\n\r\n"),
                        OUT11 "Host: example.com\r\nX-Foobar: 1\r\nX-Fo: 2\r\n\r\n");
}

/* A Connection token may not remove what frames or addresses the message. */
static void test_connection_cannot_name_framing_fields(void **state)
{
    (void)state;
    assert_string_equal(request("POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
                                "Connection: Host, Content-Length, X-A\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n"),
                        "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\n");
    assert_string_equal(request("POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
                                "Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n"),
                        "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* Nor can it bring back a missing Host: the target's is added. */
    assert_string_equal(request(GET11 "Connection: host\r\n\r\n"), OUT11 "Host: example.com\r\n\r\n");
}

static void test_proxy_connection_becomes_connection(void **state)
{
    (void)state;
    /* What a browser says to a proxy becomes what it says to an origin, in place. */
    assert_string_equal(request(GET11 "Host: example.com\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nproxy-connection:  Close\r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection: Close\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nProxy-Connection: X-Foo, keep-alive\r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection: keep-alive\r\n\r\n");
    assert_string_equal(request(GET11 "Host: example.com\r\nProxy-Connection: X-Foo\r\n\r\n"),
                        OUT11 "Host: example.com\r\n\r\n");
    /* With a Connection field of its own, Proxy-Connection is just hop-by-hop. */
    assert_string_equal(request(GET11 "Host: example.com\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n"),
                        OUT11 "Host: example.com\r\nConnection: close\r\n\r\n");
}

static void test_upgrade_passes_when_upgrading(void **state)
{
    static const char in[] = GET11 "Host: example.com\r\nConnection: keep-alive, Upgrade, X-Foo\r\n"
                                   "Upgrade: websocket\r\nX-Foo: 1\r\nSec-WebSocket-Version: 13\r\n\r\n";

    (void)state;
    assert_string_equal(request_with(plain, in, 1),
                        OUT11 "Host: example.com\r\nConnection: keep-alive, Upgrade\r\n"
                              "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_string_equal(request_with(plain, in, 0),
                        OUT11 "Host: example.com\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\n\r\n");
    /* Only the upgrade token comes back: nothing else. */
    assert_string_equal(request_with(plain, GET11 "Host: example.com\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 1),
                        OUT11 "Host: example.com\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    /* Upgrading does not keep other hop-by-hop fields. */
    assert_string_equal(request_with(plain, GET11 "Host: example.com\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
                                                  "Keep-Alive: 5\r\nProxy-Authorization: x\r\n\r\n", 1),
                        OUT11 "Host: example.com\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
}

static void test_policy_applies_first(void **state)
{
    (void)state;
    /* Elite strips what reveals the client or the proxy; the protocol rules still apply. */
    assert_string_equal(request_with(elite, GET11 "Host: example.com\r\nVia: 1.1 other\r\n"
                                                  "X-Forwarded-For: 192.0.2.1\r\nConnection: keep-alive, X-A\r\n"
                                                  "X-A: 1\r\nAccept: */*\r\n\r\n", 0),
                        OUT11 "Host: example.com\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n");
    /* Transparent appends in place, or at the end; Host still from the target. */
    assert_string_equal(request_with(transparent, GET11 "Host: elsewhere\r\nX-Forwarded-For: 192.0.2.1\r\n"
                                                        "Proxy-Authorization: x\r\n\r\n", 0),
                        OUT11 "Host: example.com\r\nX-Forwarded-For: 192.0.2.1, 10.0.0.9\r\n"
                              "Via: 1.1 anon.example\r\n\r\n");
    assert_string_equal(request_with(transparent, "GET http://example.com/ HTTP/1.0\r\n\r\n", 0),
                        "GET / HTTP/1.0\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.9\r\n"
                        "Via: 1.1 anon.example\r\n\r\n");
}

/* ------------------------------------------------------------ responses */

static void test_response_status_line(void **state)
{
    (void)state;
    /* Always this proxy's version; code and reason as received. */
    assert_string_equal(response("HTTP/1.0 404 Not  Found\r\nX-A: 1\r\n\r\n"),
                        "HTTP/1.1 404 Not  Found\r\nX-A: 1\r\n\r\n");
    assert_string_equal(response("HTTP/1.1 200 OK\r\n\r\n"), "HTTP/1.1 200 OK\r\n\r\n");
    assert_string_equal(response("HTTP/1.1 204 \r\n\r\n"), "HTTP/1.1 204 \r\n\r\n");
    assert_string_equal(response("HTTP/1.1 200\r\n\r\n"), "HTTP/1.1 200 \r\n\r\n");
    assert_string_equal(response("HTTP/1.1 599 Odd\r\n\r\n"), "HTTP/1.1 599 Odd\r\n\r\n");
    assert_string_equal(response("HTTP/1.1 999 x\r\n\r\n"), "HTTP/1.1 999 x\r\n\r\n");
    assert_string_equal(response("HTTP/1.1 100 Continue\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
}

static void test_response_hop_by_hop_removed(void **state)
{
    (void)state;
    assert_string_equal(response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Foo\r\n"
                                 "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                                 "Trailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\n"
                                 "Proxy-Authorization: x\r\nX-Anonproxy-Country: DE\r\nX-Foo: 1\r\n"
                                 "Content-Length: 3\r\nset-cookie:  a=b \r\n\r\n"),
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                        "set-cookie:  a=b \r\n\r\n");
    /* Content-Length and Transfer-Encoding cannot be named away. */
    assert_string_equal(response("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\n"),
                        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
    assert_string_equal(response("HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
}

static void test_response_connection_from_the_plan(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";

    (void)state;
    /* 1.1 client: persistent by default, "close" when not. */
    assert_string_equal(response_with(plain, in, 1, 1, 0, 0), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_string_equal(response_with(plain, in, 1, 0, 0, 0),
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    /* 1.0 client: closing by default, "keep-alive" when kept. */
    assert_string_equal(response_with(plain, in, 0, 1, 0, 0),
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    assert_string_equal(response_with(plain, in, 0, 0, 0, 0), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    /* The origin's "close" concerns the origin connection only. */
    assert_string_equal(response_with(plain, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 1, 1, 0, 0),
                        "HTTP/1.1 200 OK\r\n\r\n");
}

static void test_response_drop_te(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-A: 1\r\n\r\n";

    (void)state;
    assert_string_equal(response_with(plain, in, 1, 1, 1, 0), "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n");
    assert_string_equal(response_with(plain, in, 1, 1, 0, 0),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-A: 1\r\n\r\n");
    assert_string_equal(response_with(plain, in, 0, 0, 1, 0), "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n");
}

static void test_response_upgrading(void **state)
{
    static const char in[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade, X-Foo\r\n"
                             "Upgrade: websocket\r\nX-Foo: 1\r\nSec-WebSocket-Accept: abc\r\n\r\n";

    (void)state;
    /* The switch needs Connection: upgrade and Upgrade; no Connection of the proxy's own. */
    assert_string_equal(response_with(plain, in, 1, 0, 0, 1),
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\r\n");
    assert_string_equal(response_with(plain, in, 1, 1, 0, 1),
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\r\n");
    /* Not a switch the client asked for: both are hop-by-hop again. */
    assert_string_equal(response_with(plain, in, 1, 0, 0, 0),
                        "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n"
                        "Connection: close\r\n\r\n");
}

static void test_response_policy(void **state)
{
    (void)state;
    assert_string_equal(response_with(transparent, "HTTP/1.1 200 OK\r\nVia: 1.0 cache\r\nX-A: 1\r\n\r\n", 1, 0, 0, 0),
                        "HTTP/1.1 200 OK\r\nVia: 1.0 cache, 1.1 anon.example\r\nX-A: 1\r\nConnection: close\r\n\r\n");
    assert_string_equal(response_with(transparent, "HTTP/1.1 200 OK\r\nKeep-Alive: 5\r\n\r\n", 0, 1, 0, 0),
                        "HTTP/1.1 200 OK\r\nVia: 1.1 anon.example\r\nConnection: keep-alive\r\n\r\n");
    /* Elite passes responses as the origin sent them, less hop-by-hop. */
    assert_string_equal(response_with(elite, "HTTP/1.1 200 OK\r\nVia: 1.0 cache\r\nKeep-Alive: 5\r\n\r\n", 1, 1, 0, 0),
                        "HTTP/1.1 200 OK\r\nVia: 1.0 cache\r\n\r\n");
}

/* ------------------------------------------------------------ keep-alive and upgrade decisions */

static void test_client_keep_alive_http11(void **state)
{
    (void)state;
    assert_true(client_keep_alive(GET11 "Host: a\r\n\r\n"));
    assert_true(client_keep_alive(GET11 "Connection: keep-alive\r\n\r\n"));
    assert_false(client_keep_alive(GET11 "Connection: close\r\n\r\n"));
    assert_false(client_keep_alive(GET11 "Connection: Keep-Alive, CLOSE\r\n\r\n"));
    assert_false(client_keep_alive(GET11 "Connection: keep-alive\r\nConnection: close\r\n\r\n"));
    assert_true(client_keep_alive(GET11 "Connection: closed\r\n\r\n"));
    /* RFC 9112 9.3 looks at Connection only. */
    assert_true(client_keep_alive(GET11 "Proxy-Connection: close\r\n\r\n"));
}

static void test_client_keep_alive_http10(void **state)
{
    (void)state;
    assert_false(client_keep_alive("GET http://a/ HTTP/1.0\r\n\r\n"));
    assert_true(client_keep_alive("GET http://a/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(client_keep_alive("GET http://a/ HTTP/1.0\r\nConnection: X-A, Keep-Alive\r\n\r\n"));
    assert_false(client_keep_alive("GET http://a/ HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n"));
    /* What HTTP/1.0 clients say to proxies. */
    assert_true(client_keep_alive("GET http://a/ HTTP/1.0\r\nProxy-Connection: Keep-Alive\r\n\r\n"));
    assert_false(client_keep_alive("GET http://a/ HTTP/1.0\r\nProxy-Connection: close\r\n\r\n"));
    /* close wins. */
    assert_false(client_keep_alive("GET http://a/ HTTP/1.0\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n"));
    assert_false(client_keep_alive("GET http://a/ HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

static void test_origin_keep_alive(void **state)
{
    (void)state;
    assert_true(origin_keep_alive("HTTP/1.1 200 OK\r\n\r\n"));
    assert_false(origin_keep_alive("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
    assert_false(origin_keep_alive("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nconnection: Close\r\n\r\n"));
    assert_true(origin_keep_alive("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
    assert_false(origin_keep_alive("HTTP/1.0 200 OK\r\n\r\n"));
    assert_true(origin_keep_alive("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"));
    assert_false(origin_keep_alive("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n\r\n"));
    /* An origin has no business with Proxy-Connection. */
    assert_false(origin_keep_alive("HTTP/1.0 200 OK\r\nProxy-Connection: keep-alive\r\n\r\n"));
    assert_false(origin_keep_alive("HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\n\r\n"));
}

static void test_wants_upgrade(void **state)
{
    (void)state;
    assert_true(wants_upgrade(GET11 "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    assert_true(wants_upgrade(GET11 "Upgrade: h2c\r\nconnection: keep-alive, UPGRADE\r\n\r\n"));
    assert_true(wants_upgrade(GET11 "Connection: keep-alive\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Upgrade: websocket\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Connection: upgrade\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Connection: upgrade\r\nUpgrade:\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Connection: upgraded\r\nUpgrade: websocket\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Proxy-Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
    assert_false(wants_upgrade(GET11 "Host: a\r\n\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_line_origin_form),
        cmocka_unit_test(test_request_version_kept),
        cmocka_unit_test(test_host_added_first_when_missing),
        cmocka_unit_test(test_host_kept_when_it_names_the_target),
        cmocka_unit_test(test_host_rewritten_from_the_target),
        cmocka_unit_test(test_options_with_empty_path_is_asterisk),
        cmocka_unit_test(test_hop_by_hop_removed),
        cmocka_unit_test(test_hop_by_hop_names_any_case),
        cmocka_unit_test(test_connection_keeps_only_its_options),
        cmocka_unit_test(test_connection_named_fields_removed),
        cmocka_unit_test(test_connection_cannot_name_framing_fields),
        cmocka_unit_test(test_proxy_connection_becomes_connection),
        cmocka_unit_test(test_upgrade_passes_when_upgrading),
        cmocka_unit_test(test_policy_applies_first),
        cmocka_unit_test(test_response_status_line),
        cmocka_unit_test(test_response_hop_by_hop_removed),
        cmocka_unit_test(test_response_connection_from_the_plan),
        cmocka_unit_test(test_response_drop_te),
        cmocka_unit_test(test_response_upgrading),
        cmocka_unit_test(test_response_policy),
        cmocka_unit_test(test_client_keep_alive_http11),
        cmocka_unit_test(test_client_keep_alive_http10),
        cmocka_unit_test(test_origin_keep_alive),
        cmocka_unit_test(test_wants_upgrade),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
