/* test_http_parser.c - unit tests for src/http_parser.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/http_parser.h"

#define MAX_FIELDS 100

static const http_limits default_limits = {
    .max_head = 65536, .max_fields = MAX_FIELDS, .max_uri = 8192, .max_line = 16384,
};

/* A string literal and its length, embedded NULs included. */
#define LIT(s) s, sizeof(s) - 1

/* A head parsed from an exact-size heap copy, so that AddressSanitizer
 * reports any read past its end. */
typedef struct parsed {
    char *buf;
    size_t len;
    http_field fields[MAX_FIELDS];
    http_request req;
    http_response resp;
    int rc;
    int status;
} parsed;

static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len > 0 ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static parsed *parse_request_with(const http_limits *limits, const char *head, size_t len)
{
    parsed *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->buf = exact_copy(head, len);
    p->len = len;
    p->req.fields = p->fields;
    p->rc = http_parse_request(p->buf, len, limits, &p->req, &p->status);
    return p;
}

static parsed *parse_response_with(const http_limits *limits, const char *head, size_t len)
{
    parsed *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->buf = exact_copy(head, len);
    p->len = len;
    p->resp.fields = p->fields;
    p->rc = http_parse_response(p->buf, len, limits, &p->resp, &p->status);
    return p;
}

static void parsed_free(parsed *p)
{
    free(p->buf);
    free(p);
}

/* 0 when the request parses (and then the whole head was taken), else the
 * status the parser chose. */
static int request_status_with(const http_limits *limits, const char *head, size_t len)
{
    parsed *p = parse_request_with(limits, head, len);
    int status = p->status;

    if (p->rc == HTTP_PARSE_ERROR) {
        assert_true(status >= 400);
    } else {
        assert_int_equal(p->rc, (int)len);
        status = 0;
    }
    parsed_free(p);
    return status;
}

static int response_status_with(const http_limits *limits, const char *head, size_t len)
{
    parsed *p = parse_response_with(limits, head, len);
    int status = p->status;

    if (p->rc != HTTP_PARSE_ERROR) {
        assert_int_equal(p->rc, (int)len);
        status = 0;
    }
    parsed_free(p);
    return status;
}

static void assert_range(const char *p, size_t len, const char *expected)
{
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(p, expected, len);
}

/* ---------------------------------------------------------------------------
 * http_head_end
 * ------------------------------------------------------------------------- */

static void test_head_end_finds_crlf_crlf(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1 - 4);
}

static void test_head_end_incomplete(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\n";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), 0);
    assert_int_equal(scan, sizeof msg - 1);
}

static void test_head_end_byte_at_a_time(void **state)
{
    const char msg[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n";
    const size_t total = sizeof msg - 1;
    size_t scan = 0;

    (void)state;
    for (size_t len = 0; len < total; len++) {
        char *buf = exact_copy(msg, len);
        assert_int_equal(http_head_end(buf, len, &scan), 0);
        /* nothing is scanned twice */
        assert_int_equal(scan, len);
        free(buf);
    }
    assert_int_equal(http_head_end(msg, total, &scan), total);
}

static void test_head_end_terminator_split_everywhere(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\n\r\n";
    const size_t total = sizeof msg - 1;

    (void)state;
    for (size_t split = 0; split < total; split++) {
        size_t scan = 0;
        assert_int_equal(http_head_end(msg, split, &scan), 0);
        assert_int_equal(http_head_end(msg, total, &scan), total);
    }
}

static void test_head_end_repeat_after_found(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\n\r\n";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1);
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1);
}

static void test_head_end_lf_lf(void **state)
{
    const char msg[] = "GET / HTTP/1.1\nHost: a\n\nBODY";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1 - 4);
}

static void test_head_end_lf_cr_lf(void **state)
{
    const char msg[] = "GET / HTTP/1.1\n\r\nBODY";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1 - 4);
}

static void test_head_end_cr_cr_lf_is_not_empty_line(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\n\r\r\n";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), 0);
}

static void test_head_end_skips_leading_empty_lines(void **state)
{
    const char msg[] = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(msg, 4, &scan), 0);
    assert_int_equal(http_head_end(msg, sizeof msg - 1, &scan), sizeof msg - 1);
}

/* ---------------------------------------------------------------------------
 * Requests that parse
 * ------------------------------------------------------------------------- */

static void test_request_get_with_fields(void **state)
{
    const char head[] = "GET /index.html?q=1 HTTP/1.1\r\n"
                        "Host: example.com\r\n"
                        "user-AGENT:\tcurl/8 \r\n"
                        "Accept:  */*  \t\r\n"
                        "\r\n";
    parsed *p = parse_request_with(&default_limits, LIT(head));
    const http_request *r = &p->req;
    size_t scan = 0;

    (void)state;
    assert_int_equal(http_head_end(head, sizeof head - 1, &scan), sizeof head - 1);
    assert_int_equal(p->rc, sizeof head - 1);
    assert_int_equal(r->head_len, sizeof head - 1);
    assert_range(r->method, r->method_len, "GET");
    assert_ptr_equal(r->method, p->buf);
    assert_range(r->target, r->target_len, "/index.html?q=1");
    assert_ptr_equal(r->target, p->buf + 4);
    assert_int_equal(r->version_minor, 1);
    assert_int_equal(r->nfields, 3);

    assert_range(r->fields[0].name, r->fields[0].name_len, "Host");
    assert_range(r->fields[0].value, r->fields[0].value_len, "example.com");
    assert_ptr_equal(r->fields[0].line, p->buf + 30);
    assert_range(r->fields[0].line, r->fields[0].line_len, "Host: example.com\r\n");

    assert_range(r->fields[1].name, r->fields[1].name_len, "user-AGENT");
    assert_range(r->fields[1].value, r->fields[1].value_len, "curl/8");
    assert_ptr_equal(r->fields[1].line, p->buf + 49);
    assert_range(r->fields[1].line, r->fields[1].line_len, "user-AGENT:\tcurl/8 \r\n");

    assert_range(r->fields[2].name, r->fields[2].name_len, "Accept");
    assert_range(r->fields[2].value, r->fields[2].value_len, "*/*");
    assert_ptr_equal(r->fields[2].line, p->buf + 70);
    assert_range(r->fields[2].line, r->fields[2].line_len, "Accept:  */*  \t\r\n");
    parsed_free(p);
}

static void test_request_http10_no_fields(void **state)
{
    parsed *p = parse_request_with(&default_limits, LIT("POST /form HTTP/1.0\r\n\r\n"));

    (void)state;
    assert_int_equal(p->rc, 23);
    assert_range(p->req.method, p->req.method_len, "POST");
    assert_int_equal(p->req.version_minor, 0);
    assert_int_equal(p->req.nfields, 0);
    parsed_free(p);
}

static void test_request_leading_empty_lines_skipped(void **state)
{
    const char head[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    parsed *p = parse_request_with(&default_limits, LIT(head));

    (void)state;
    assert_int_equal(p->rc, sizeof head - 1);
    assert_int_equal(p->req.head_len, sizeof head - 1);
    assert_ptr_equal(p->req.method, p->buf + 4);
    assert_range(p->req.method, p->req.method_len, "GET");
    assert_int_equal(p->req.nfields, 1);
    parsed_free(p);
}

static void test_request_empty_values(void **state)
{
    parsed *p = parse_request_with(&default_limits,
                                   LIT("GET / HTTP/1.1\r\nX-A:\r\nX-B:   \t \r\n\r\n"));

    (void)state;
    assert_int_equal(p->req.nfields, 2);
    assert_int_equal(p->req.fields[0].value_len, 0);
    assert_range(p->req.fields[0].line, p->req.fields[0].line_len, "X-A:\r\n");
    assert_int_equal(p->req.fields[1].value_len, 0);
    parsed_free(p);
}

static void test_request_value_inner_whitespace_and_obs_text(void **state)
{
    parsed *p = parse_request_with(&default_limits,
                                   LIT("GET / HTTP/1.1\r\nX-A: a  b\t c\r\nX-B: caf\xc3\xa9\xff\r\n\r\n"));

    (void)state;
    assert_int_equal(p->req.nfields, 2);
    assert_range(p->req.fields[0].value, p->req.fields[0].value_len, "a  b\t c");
    assert_range(p->req.fields[1].value, p->req.fields[1].value_len, "caf\xc3\xa9\xff");
    parsed_free(p);
}

static void test_request_target_forms(void **state)
{
    parsed *p;

    (void)state;
    p = parse_request_with(&default_limits, LIT("CONNECT example.com:443 HTTP/1.1\r\n\r\n"));
    assert_range(p->req.target, p->req.target_len, "example.com:443");
    parsed_free(p);
    p = parse_request_with(&default_limits, LIT("OPTIONS * HTTP/1.1\r\n\r\n"));
    assert_range(p->req.target, p->req.target_len, "*");
    parsed_free(p);
    p = parse_request_with(&default_limits, LIT("get http://a.example/x?y=%20#f HTTP/1.1\r\n\r\n"));
    assert_range(p->req.method, p->req.method_len, "get");
    assert_range(p->req.target, p->req.target_len, "http://a.example/x?y=%20#f");
    parsed_free(p);
}

/* Limits: target 8, field line 10 (CRLF excluded), 2 fields, head 64 bytes. */
static const http_limits small_limits = {
    .max_head = 64, .max_fields = 2, .max_uri = 8, .max_line = 10,
};

static void test_request_exactly_at_limits(void **state)
{
    const char head[] = "GET /2345678 HTTP/1.1\r\nX: 4567890\r\nY: 4567890\r\n\r\n";

    (void)state;
    assert_int_equal(request_status_with(&small_limits, LIT(head)), 0);
}

static void test_request_head_exactly_max_head(void **state)
{
    const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    http_limits limits = default_limits;

    (void)state;
    limits.max_head = sizeof head - 1;
    assert_int_equal(request_status_with(&limits, LIT(head)), 0);
}

static void test_reject_head_too_long(void **state)
{
    const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    http_limits limits = default_limits;

    (void)state;
    limits.max_head = sizeof head - 2;
    assert_int_equal(request_status_with(&limits, LIT(head)), 431);
}

/* ---------------------------------------------------------------------------
 * Requests that are rejected: one test per rule
 * ------------------------------------------------------------------------- */

#define REJECT_REQUEST(test_name, head, code)                                         \
    static void test_name(void **state)                                                \
    {                                                                                  \
        (void)state;                                                                   \
        assert_int_equal(request_status_with(&default_limits, LIT(head)), code);       \
    }

#define REJECT_REQUEST_SMALL(test_name, head, code)                                   \
    static void test_name(void **state)                                                \
    {                                                                                  \
        (void)state;                                                                   \
        assert_int_equal(request_status_with(&small_limits, LIT(head)), code);         \
    }

/* request line */
REJECT_REQUEST(test_reject_empty_method, " / HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_method_not_token, "G@T / HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_two_spaces_after_method, "GET  / HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_tab_after_method, "GET\t/ HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_two_spaces_before_version, "GET /  HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_missing_version, "GET /\r\n\r\n", 400)
REJECT_REQUEST(test_reject_missing_target, "GET HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_space_after_version, "GET / HTTP/1.1 \r\n\r\n", 400)
REJECT_REQUEST(test_reject_target_ctl, "GET /a\x01z HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_target_del, "GET /a\x7fz HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_target_nul, "GET /a\0z HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_target_obs_text, "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_version_lowercase, "GET / http/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_version_two_digit_minor, "GET / HTTP/1.10\r\n\r\n", 400)
REJECT_REQUEST(test_reject_version_no_minor, "GET / HTTP/1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_version_letters, "GET / HTTP/a.b\r\n\r\n", 400)
REJECT_REQUEST(test_reject_version_not_http, "GET / HTTX/1.1\r\n\r\n", 400)
REJECT_REQUEST(test_reject_http20, "GET / HTTP/2.0\r\n\r\n", 505)
REJECT_REQUEST(test_reject_http12, "GET / HTTP/1.2\r\n\r\n", 505)
REJECT_REQUEST(test_reject_http09, "GET / HTTP/0.9\r\n\r\n", 505)
REJECT_REQUEST(test_reject_http30, "GET / HTTP/3.0\r\n\r\n", 505)
REJECT_REQUEST_SMALL(test_reject_target_too_long, "GET /23456789 HTTP/1.1\r\n\r\n", 414)
REJECT_REQUEST_SMALL(test_reject_target_too_long_with_ctl, "GET /2\x01" "456789 HTTP/1.1\r\n\r\n", 414)
REJECT_REQUEST_SMALL(test_reject_target_too_long_no_version, "GET /23456789\r\n\r\n", 414)

/* line endings */
REJECT_REQUEST(test_reject_request_line_bare_lf, "GET / HTTP/1.1\nHost: a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_request_line_bare_cr, "GET / HTTP/1.1\rX\r\n\r\n", 400)
REJECT_REQUEST(test_reject_bare_lf_message, "GET / HTTP/1.1\nHost: a\n\n", 400)
REJECT_REQUEST(test_reject_field_bare_lf, "GET / HTTP/1.1\r\nHost: a\n\r\n", 400)
REJECT_REQUEST(test_reject_value_bare_lf, "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", 400)
REJECT_REQUEST(test_reject_value_bare_cr, "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400)
REJECT_REQUEST(test_reject_empty_line_bare_lf, "GET / HTTP/1.1\r\nHost: a\r\n\n", 400)
REJECT_REQUEST(test_reject_leading_bare_lf, "\nGET / HTTP/1.1\r\n\r\n", 400)

/* field lines */
REJECT_REQUEST(test_reject_space_before_colon, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_tab_before_colon, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_no_colon, "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_empty_name, "GET / HTTP/1.1\r\n: a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_name_not_token, "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400)
REJECT_REQUEST(test_reject_obs_fold_sp, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400)
REJECT_REQUEST(test_reject_obs_fold_htab, "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400)
REJECT_REQUEST(test_reject_value_nul, "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400)
REJECT_REQUEST(test_reject_value_ctl, "GET / HTTP/1.1\r\nX: a\x1b" "b\r\n\r\n", 400)
REJECT_REQUEST(test_reject_value_del, "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400)

/* head shape */
REJECT_REQUEST(test_reject_missing_empty_line, "GET / HTTP/1.1\r\nHost: a\r\n", 400)
REJECT_REQUEST(test_reject_bytes_after_empty_line, "GET / HTTP/1.1\r\n\r\nX", 400)
REJECT_REQUEST(test_reject_only_empty_lines, "\r\n\r\n", 400)
REJECT_REQUEST(test_reject_empty_head, "", 400)

/* sizes */
REJECT_REQUEST_SMALL(test_reject_too_many_fields, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431)
REJECT_REQUEST_SMALL(test_reject_field_line_too_long, "GET / HTTP/1.1\r\nX: 45678901\r\n\r\n", 431)

/* ---------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------- */

static void test_response_ok(void **state)
{
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\n";
    parsed *p = parse_response_with(&default_limits, LIT(head));
    const http_response *r = &p->resp;

    (void)state;
    assert_int_equal(p->rc, sizeof head - 1);
    assert_int_equal(r->head_len, sizeof head - 1);
    assert_int_equal(r->version_minor, 1);
    assert_int_equal(r->status, 200);
    assert_range(r->reason, r->reason_len, "OK");
    assert_int_equal(r->nfields, 2);
    assert_range(r->fields[1].name, r->fields[1].name_len, "content-length");
    assert_range(r->fields[1].value, r->fields[1].value_len, "5");
    assert_ptr_equal(r->fields[1].line, p->buf + 43);
    assert_int_equal(r->fields[1].line_len, 19);
    parsed_free(p);
}

static void test_response_reason_text(void **state)
{
    parsed *p = parse_response_with(&default_limits, LIT("HTTP/1.0 404 Not\tFound \xe9\r\n\r\n"));

    (void)state;
    assert_int_equal(p->resp.version_minor, 0);
    assert_int_equal(p->resp.status, 404);
    assert_range(p->resp.reason, p->resp.reason_len, "Not\tFound \xe9");
    parsed_free(p);
}

static void test_response_without_reason_or_space(void **state)
{
    parsed *p = parse_response_with(&default_limits, LIT("HTTP/1.1 200\r\nA: b\r\n\r\n"));

    (void)state;
    assert_int_equal(p->rc, 22);
    assert_int_equal(p->resp.status, 200);
    assert_int_equal(p->resp.reason_len, 0);
    assert_int_equal(p->resp.nfields, 1);
    parsed_free(p);
}

static void test_response_empty_reason(void **state)
{
    parsed *p = parse_response_with(&default_limits, LIT("HTTP/1.1 999 \r\n\r\n"));

    (void)state;
    assert_int_equal(p->rc, 17);
    assert_int_equal(p->resp.status, 999);
    assert_int_equal(p->resp.reason_len, 0);
    parsed_free(p);
}

#define REJECT_RESPONSE_WITH(test_name, limits, head)                                 \
    static void test_name(void **state)                                                \
    {                                                                                  \
        (void)state;                                                                   \
        assert_int_equal(response_status_with(limits, LIT(head)), 502);                \
    }
#define REJECT_RESPONSE(test_name, head) REJECT_RESPONSE_WITH(test_name, &default_limits, head)

REJECT_RESPONSE(test_reject_response_http20, "HTTP/2.0 200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_http12, "HTTP/1.2 200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_lowercase, "http/1.1 200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_not_http, "ICY 200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_status_two_digits, "HTTP/1.1 20 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_status_four_digits, "HTTP/1.1 2000 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_status_below_100, "HTTP/1.1 099 Low\r\n\r\n")
REJECT_RESPONSE(test_reject_response_status_letters, "HTTP/1.1 2x0 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_two_spaces, "HTTP/1.1  200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_reason_ctl, "HTTP/1.1 200 O\x01K\r\n\r\n")
REJECT_RESPONSE(test_reject_response_reason_del, "HTTP/1.1 200 O\x7fK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_reason_bare_cr, "HTTP/1.1 200 O\rK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_bare_lf, "HTTP/1.1 200 OK\n\r\n")
REJECT_RESPONSE(test_reject_response_space_before_colon, "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n")
REJECT_RESPONSE(test_reject_response_obs_fold, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n")
REJECT_RESPONSE(test_reject_response_leading_empty_line, "\r\nHTTP/1.1 200 OK\r\n\r\n")
REJECT_RESPONSE(test_reject_response_missing_empty_line, "HTTP/1.1 200 OK\r\n")
REJECT_RESPONSE_WITH(test_reject_response_too_many_fields, &small_limits,
                     "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
REJECT_RESPONSE_WITH(test_reject_response_line_too_long, &small_limits,
                     "HTTP/1.1 200 OK\r\nX: 45678901\r\n\r\n")

static void test_reject_response_head_too_long(void **state)
{
    const char head[] = "HTTP/1.1 200 OK\r\nServer: a\r\n\r\n";
    http_limits limits = default_limits;

    (void)state;
    limits.max_head = sizeof head - 1;
    assert_int_equal(response_status_with(&limits, LIT(head)), 0);
    limits.max_head--;
    assert_int_equal(response_status_with(&limits, LIT(head)), 502);
}

/* ---------------------------------------------------------------------------
 * Request framing
 * ------------------------------------------------------------------------- */

/* Parses a head that must be valid, then returns its framing verdict. */
static int request_framing(const char *head, size_t len, http_framing *out, parsed **keep)
{
    parsed *p = parse_request_with(&default_limits, head, len);
    int rc;

    assert_int_equal(p->rc, (int)len);
    rc = http_request_framing(&p->req, out);
    if (keep != NULL)
        *keep = p;
    else
        parsed_free(p);
    return rc;
}

static void test_request_framing_none(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &f, NULL), 0);
    assert_int_equal(f.kind, BODY_NONE);
    assert_null(f.te);
}

static void test_request_framing_length(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_int_equal(f.length, 5);
    assert_null(f.te);
}

static void test_request_framing_length_zero(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.0\r\ncontent-length: 0\r\n\r\n"), &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_int_equal(f.length, 0);
}

static void test_request_framing_length_max(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"),
                                     &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_true(f.length == UINT64_MAX);
}

static void test_request_framing_length_repeated_same(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 007\r\n\r\n"),
                                     &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_int_equal(f.length, 7);
}

static void test_request_framing_chunked(void **state)
{
    http_framing f;
    parsed *p;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
                                     &f, &p), 0);
    assert_int_equal(f.kind, BODY_CHUNKED);
    assert_ptr_equal(f.te, &p->req.fields[1]);
    parsed_free(p);
}

static void test_request_framing_codings_then_chunked(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(request_framing(LIT("POST / HTTP/1.1\r\ntransfer-encoding: gzip ; level=9,, X-Compress, CHUNKED\r\n\r\n"),
                                     &f, NULL), 0);
    assert_int_equal(f.kind, BODY_CHUNKED);
    assert_non_null(f.te);
}

#define REJECT_REQUEST_FRAMING(test_name, head, code)                                 \
    static void test_name(void **state)                                                \
    {                                                                                  \
        http_framing f;                                                                \
        (void)state;                                                                   \
        assert_int_equal(request_framing(LIT(head), &f, NULL), code);                  \
    }

REJECT_REQUEST_FRAMING(test_reject_cl_overflow,
                       "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_huge, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_negative, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_plus, "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_hex, "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_inner_space, "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_empty, "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_list_same, "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_list_different, "POST / HTTP/1.1\r\nContent-Length: 5,6\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_cl_differing_fields,
                       "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_with_cl,
                       "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_in_http10, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_unknown, "POST / HTTP/1.1\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501)
REJECT_REQUEST_FRAMING(test_reject_te_unknown_after_chunked,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, foo\r\n\r\n", 501)
REJECT_REQUEST_FRAMING(test_reject_te_chunked_not_last,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_chunked_twice,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_without_chunked, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_two_fields,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_empty, "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_only_commas, "POST / HTTP/1.1\r\nTransfer-Encoding: , ,\r\n\r\n", 400)
REJECT_REQUEST_FRAMING(test_reject_te_junk_after_coding,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked x\r\n\r\n", 400)

/* ---------------------------------------------------------------------------
 * Response framing
 * ------------------------------------------------------------------------- */

static int response_framing(const char *head, size_t len, int was_head, http_framing *out,
                            parsed **keep)
{
    parsed *p = parse_response_with(&default_limits, head, len);
    int rc;

    assert_int_equal(p->rc, (int)len);
    rc = http_response_framing(&p->resp, was_head, out);
    if (keep != NULL)
        *keep = p;
    else
        parsed_free(p);
    return rc;
}

static void assert_response_kind(const char *head, size_t len, int was_head, body_kind kind)
{
    http_framing f;

    assert_int_equal(response_framing(head, len, was_head, &f, NULL), 0);
    assert_int_equal(f.kind, kind);
}

static void test_response_framing_length(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(response_framing(LIT("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"), 0, &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_int_equal(f.length, 42);
    assert_null(f.te);
}

static void test_response_framing_length_repeated_same(void **state)
{
    http_framing f;

    (void)state;
    assert_int_equal(response_framing(LIT("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
                                      0, &f, NULL), 0);
    assert_int_equal(f.kind, BODY_LENGTH);
    assert_int_equal(f.length, 3);
}

static void test_response_framing_close_delimited(void **state)
{
    (void)state;
    assert_response_kind(LIT("HTTP/1.1 200 OK\r\n\r\n"), 0, BODY_CLOSE);
    assert_response_kind(LIT("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n"), 0, BODY_CLOSE);
}

static void test_response_framing_chunked(void **state)
{
    http_framing f;
    parsed *p;

    (void)state;
    assert_int_equal(response_framing(LIT("HTTP/1.1 200 OK\r\nA: b\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
                                      0, &f, &p), 0);
    assert_int_equal(f.kind, BODY_CHUNKED);
    assert_ptr_equal(f.te, &p->resp.fields[1]);
    parsed_free(p);
}

static void test_response_framing_te_not_chunked_is_close(void **state)
{
    http_framing f;
    parsed *p;

    (void)state;
    assert_int_equal(response_framing(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
                                      0, &f, &p), 0);
    assert_int_equal(f.kind, BODY_CLOSE);
    assert_ptr_equal(f.te, &p->resp.fields[0]);
    parsed_free(p);
    assert_response_kind(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0, BODY_CLOSE);
}

static void test_response_framing_no_body_statuses(void **state)
{
    (void)state;
    assert_response_kind(LIT("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), 0, BODY_NONE);
    assert_response_kind(LIT("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, BODY_NONE);
    assert_response_kind(LIT("HTTP/1.1 100 Continue\r\n\r\n"), 0, BODY_NONE);
    assert_response_kind(LIT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), 0, BODY_NONE);
    assert_response_kind(LIT("HTTP/1.1 199 Misc\r\n\r\n"), 0, BODY_NONE);
    /* no body means the framing fields are not even looked at */
    assert_response_kind(LIT("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n"), 0, BODY_NONE);
}

static void test_response_framing_head_request(void **state)
{
    http_framing f;
    parsed *p;

    (void)state;
    assert_response_kind(LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), 1, BODY_NONE);
    assert_int_equal(response_framing(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                                      1, &f, &p), 0);
    assert_int_equal(f.kind, BODY_NONE);
    assert_ptr_equal(f.te, &p->resp.fields[0]);
    parsed_free(p);
}

#define REJECT_RESPONSE_FRAMING(test_name, head)                                      \
    static void test_name(void **state)                                                \
    {                                                                                  \
        http_framing f;                                                                \
        (void)state;                                                                   \
        assert_int_equal(response_framing(LIT(head), 0, &f, NULL), 502);               \
    }

REJECT_RESPONSE_FRAMING(test_reject_response_te_with_cl,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_cl_invalid, "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_cl_overflow,
                        "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_cl_list, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_cl_differing,
                        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_te_in_http10, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
REJECT_RESPONSE_FRAMING(test_reject_response_te_two_fields,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")

/* ---------------------------------------------------------------------------
 * Field helpers
 * ------------------------------------------------------------------------- */

static void test_list_next_skips_empty_elements_and_ows(void **state)
{
    const char value[] = " a , ,b,\t c d ,,";
    const char *elem;
    size_t len, pos = 0;

    (void)state;
    assert_true(http_list_next(value, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "a");
    assert_true(http_list_next(value, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "b");
    assert_true(http_list_next(value, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "c d");
    assert_false(http_list_next(value, sizeof value - 1, &pos, &elem, &len));
    assert_false(http_list_next(value, sizeof value - 1, &pos, &elem, &len));
}

static void test_list_next_empty_values(void **state)
{
    const char *elem;
    size_t len, pos = 0;

    (void)state;
    assert_false(http_list_next("", 0, &pos, &elem, &len));
    pos = 0;
    assert_false(http_list_next(" , ,\t", 5, &pos, &elem, &len));
}

static void test_list_next_quoted_commas(void **state)
{
    const char value[] = "a;q=\"x, \\\"y,\", b";
    const char *elem;
    size_t len, pos = 0;
    char *buf = exact_copy(value, sizeof value - 1);

    (void)state;
    assert_true(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "a;q=\"x, \\\"y,\"");
    assert_true(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "b");
    assert_false(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    free(buf);
}

static void test_list_next_unterminated_quote_stays_in_bounds(void **state)
{
    const char value[] = "a, \"b,c\\";
    const char *elem;
    size_t len, pos = 0;
    char *buf = exact_copy(value, sizeof value - 1);

    (void)state;
    assert_true(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "a");
    assert_true(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    assert_range(elem, len, "\"b,c\\");
    assert_false(http_list_next(buf, sizeof value - 1, &pos, &elem, &len));
    free(buf);
}

static void test_list_has(void **state)
{
    (void)state;
    assert_true(http_list_has(LIT("keep-alive, Close"), "close"));
    assert_true(http_list_has(LIT("Upgrade"), "upgrade"));
    assert_false(http_list_has(LIT("closed, xclose"), "close"));
    assert_false(http_list_has("", 0, "close"));
}

static void test_token_eq(void **state)
{
    (void)state;
    assert_true(http_token_eq(LIT("Chunked"), LIT("cHUNKED")));
    assert_true(http_token_eq("", 0, "", 0));
    assert_false(http_token_eq(LIT("chunked"), LIT("chunke")));
    assert_false(http_token_eq(LIT("chunked"), LIT("chunkeD ")));
    /* only letters fold: '@' and '`' (and '[' and '{') differ by 0x20 too */
    assert_false(http_token_eq(LIT("@"), LIT("`")));
    assert_false(http_token_eq(LIT("["), LIT("{")));
}

static void test_name_is(void **state)
{
    http_field f = { .name = "Content-LENGTH", .name_len = 14 };

    (void)state;
    assert_true(http_name_is(&f, "content-length"));
    assert_false(http_name_is(&f, "content-length2"));
    assert_false(http_name_is(&f, "content-lengt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end_finds_crlf_crlf),
        cmocka_unit_test(test_head_end_incomplete),
        cmocka_unit_test(test_head_end_byte_at_a_time),
        cmocka_unit_test(test_head_end_terminator_split_everywhere),
        cmocka_unit_test(test_head_end_repeat_after_found),
        cmocka_unit_test(test_head_end_lf_lf),
        cmocka_unit_test(test_head_end_lf_cr_lf),
        cmocka_unit_test(test_head_end_cr_cr_lf_is_not_empty_line),
        cmocka_unit_test(test_head_end_skips_leading_empty_lines),

        cmocka_unit_test(test_request_get_with_fields),
        cmocka_unit_test(test_request_http10_no_fields),
        cmocka_unit_test(test_request_leading_empty_lines_skipped),
        cmocka_unit_test(test_request_empty_values),
        cmocka_unit_test(test_request_value_inner_whitespace_and_obs_text),
        cmocka_unit_test(test_request_target_forms),
        cmocka_unit_test(test_request_exactly_at_limits),
        cmocka_unit_test(test_request_head_exactly_max_head),

        cmocka_unit_test(test_reject_empty_method),
        cmocka_unit_test(test_reject_method_not_token),
        cmocka_unit_test(test_reject_two_spaces_after_method),
        cmocka_unit_test(test_reject_tab_after_method),
        cmocka_unit_test(test_reject_two_spaces_before_version),
        cmocka_unit_test(test_reject_missing_version),
        cmocka_unit_test(test_reject_missing_target),
        cmocka_unit_test(test_reject_space_after_version),
        cmocka_unit_test(test_reject_target_ctl),
        cmocka_unit_test(test_reject_target_del),
        cmocka_unit_test(test_reject_target_nul),
        cmocka_unit_test(test_reject_target_obs_text),
        cmocka_unit_test(test_reject_version_lowercase),
        cmocka_unit_test(test_reject_version_two_digit_minor),
        cmocka_unit_test(test_reject_version_no_minor),
        cmocka_unit_test(test_reject_version_letters),
        cmocka_unit_test(test_reject_version_not_http),
        cmocka_unit_test(test_reject_http20),
        cmocka_unit_test(test_reject_http12),
        cmocka_unit_test(test_reject_http09),
        cmocka_unit_test(test_reject_http30),
        cmocka_unit_test(test_reject_target_too_long),
        cmocka_unit_test(test_reject_target_too_long_with_ctl),
        cmocka_unit_test(test_reject_target_too_long_no_version),
        cmocka_unit_test(test_reject_request_line_bare_lf),
        cmocka_unit_test(test_reject_request_line_bare_cr),
        cmocka_unit_test(test_reject_bare_lf_message),
        cmocka_unit_test(test_reject_field_bare_lf),
        cmocka_unit_test(test_reject_value_bare_lf),
        cmocka_unit_test(test_reject_value_bare_cr),
        cmocka_unit_test(test_reject_empty_line_bare_lf),
        cmocka_unit_test(test_reject_leading_bare_lf),
        cmocka_unit_test(test_reject_space_before_colon),
        cmocka_unit_test(test_reject_tab_before_colon),
        cmocka_unit_test(test_reject_no_colon),
        cmocka_unit_test(test_reject_empty_name),
        cmocka_unit_test(test_reject_name_not_token),
        cmocka_unit_test(test_reject_obs_fold_sp),
        cmocka_unit_test(test_reject_obs_fold_htab),
        cmocka_unit_test(test_reject_value_nul),
        cmocka_unit_test(test_reject_value_ctl),
        cmocka_unit_test(test_reject_value_del),
        cmocka_unit_test(test_reject_missing_empty_line),
        cmocka_unit_test(test_reject_bytes_after_empty_line),
        cmocka_unit_test(test_reject_only_empty_lines),
        cmocka_unit_test(test_reject_empty_head),
        cmocka_unit_test(test_reject_too_many_fields),
        cmocka_unit_test(test_reject_field_line_too_long),
        cmocka_unit_test(test_reject_head_too_long),

        cmocka_unit_test(test_response_ok),
        cmocka_unit_test(test_response_reason_text),
        cmocka_unit_test(test_response_without_reason_or_space),
        cmocka_unit_test(test_response_empty_reason),
        cmocka_unit_test(test_reject_response_http20),
        cmocka_unit_test(test_reject_response_http12),
        cmocka_unit_test(test_reject_response_lowercase),
        cmocka_unit_test(test_reject_response_not_http),
        cmocka_unit_test(test_reject_response_status_two_digits),
        cmocka_unit_test(test_reject_response_status_four_digits),
        cmocka_unit_test(test_reject_response_status_below_100),
        cmocka_unit_test(test_reject_response_status_letters),
        cmocka_unit_test(test_reject_response_two_spaces),
        cmocka_unit_test(test_reject_response_reason_ctl),
        cmocka_unit_test(test_reject_response_reason_del),
        cmocka_unit_test(test_reject_response_reason_bare_cr),
        cmocka_unit_test(test_reject_response_bare_lf),
        cmocka_unit_test(test_reject_response_space_before_colon),
        cmocka_unit_test(test_reject_response_obs_fold),
        cmocka_unit_test(test_reject_response_leading_empty_line),
        cmocka_unit_test(test_reject_response_missing_empty_line),
        cmocka_unit_test(test_reject_response_too_many_fields),
        cmocka_unit_test(test_reject_response_line_too_long),
        cmocka_unit_test(test_reject_response_head_too_long),

        cmocka_unit_test(test_request_framing_none),
        cmocka_unit_test(test_request_framing_length),
        cmocka_unit_test(test_request_framing_length_zero),
        cmocka_unit_test(test_request_framing_length_max),
        cmocka_unit_test(test_request_framing_length_repeated_same),
        cmocka_unit_test(test_request_framing_chunked),
        cmocka_unit_test(test_request_framing_codings_then_chunked),
        cmocka_unit_test(test_reject_cl_overflow),
        cmocka_unit_test(test_reject_cl_huge),
        cmocka_unit_test(test_reject_cl_negative),
        cmocka_unit_test(test_reject_cl_plus),
        cmocka_unit_test(test_reject_cl_hex),
        cmocka_unit_test(test_reject_cl_inner_space),
        cmocka_unit_test(test_reject_cl_empty),
        cmocka_unit_test(test_reject_cl_list_same),
        cmocka_unit_test(test_reject_cl_list_different),
        cmocka_unit_test(test_reject_cl_differing_fields),
        cmocka_unit_test(test_reject_te_with_cl),
        cmocka_unit_test(test_reject_te_in_http10),
        cmocka_unit_test(test_reject_te_unknown),
        cmocka_unit_test(test_reject_te_unknown_after_chunked),
        cmocka_unit_test(test_reject_te_chunked_not_last),
        cmocka_unit_test(test_reject_te_chunked_twice),
        cmocka_unit_test(test_reject_te_without_chunked),
        cmocka_unit_test(test_reject_te_two_fields),
        cmocka_unit_test(test_reject_te_empty),
        cmocka_unit_test(test_reject_te_only_commas),
        cmocka_unit_test(test_reject_te_junk_after_coding),

        cmocka_unit_test(test_response_framing_length),
        cmocka_unit_test(test_response_framing_length_repeated_same),
        cmocka_unit_test(test_response_framing_close_delimited),
        cmocka_unit_test(test_response_framing_chunked),
        cmocka_unit_test(test_response_framing_te_not_chunked_is_close),
        cmocka_unit_test(test_response_framing_no_body_statuses),
        cmocka_unit_test(test_response_framing_head_request),
        cmocka_unit_test(test_reject_response_te_with_cl),
        cmocka_unit_test(test_reject_response_cl_invalid),
        cmocka_unit_test(test_reject_response_cl_overflow),
        cmocka_unit_test(test_reject_response_cl_list),
        cmocka_unit_test(test_reject_response_cl_differing),
        cmocka_unit_test(test_reject_response_te_in_http10),
        cmocka_unit_test(test_reject_response_te_two_fields),

        cmocka_unit_test(test_list_next_skips_empty_elements_and_ows),
        cmocka_unit_test(test_list_next_empty_values),
        cmocka_unit_test(test_list_next_quoted_commas),
        cmocka_unit_test(test_list_next_unterminated_quote_stays_in_bounds),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_token_eq),
        cmocka_unit_test(test_name_is),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
