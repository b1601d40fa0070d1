/* test_policy.c - unit tests for policy.c: every rule kind, matching, extend,
 * each load error, the filter callback and the shipped policies.
 * Runs from the repository root (the shipped policies are read from
 * "policies"); test policies go to a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "http/http_parser.h"
#include "http/policy.h"

#define MAX_FIELDS 64

static char dir[64];   /* temporary directory for test policies */

static const policy_vars vars = {
    .client_ip = "10.0.0.9", .client_port = "54321", .proxy_name = "anon.example", .host = "example.com",
};

/* ------------------------------------------------------------ helpers */

static void put(const char *name, const char *json)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.json", dir, name);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(fputs(json, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static policy *load_from(const char *from, const char *name)
{
    char err[512] = "";
    policy *p = policy_load(from, name, err, sizeof(err));

    if (p == NULL)
        fail_msg("unexpected error: %s", err);
    return p;
}

/* Writes a policy file and loads it. */
static policy *load_json(const char *json)
{
    put("t", json);
    return load_from(dir, "t");
}

/* Loading `name` from the test directory must fail with exactly `want`,
 * in which "%s" stands for that directory. */
static void expect_error(const char *name, const char *want)
{
    char err[512] = "", expected[512];

    snprintf(expected, sizeof(expected), want, dir);
    assert_null(policy_load(dir, name, err, sizeof(err)));
    assert_string_equal(err, expected);
}

static void expect_json_error(const char *json, const char *want)
{
    put("t", json);
    expect_error("t", want);
}

/* Field names the filter was offered, as "a|b|c|". */
static char offered[1024];

/* The protocol layer as the proxy has it: Connection and Keep-Alive are
 * hop-by-hop, X-Rewrite is rewritten, the rest passes. */
static field_fate test_filter(const http_field *f, struct evbuffer *out, void *arg)
{
    size_t used = strlen(offered);

    assert_ptr_equal(arg, offered);
    snprintf(offered + used, sizeof(offered) - used, "%.*s|", (int)f->name_len, f->name);
    if (http_name_is(f, "Connection") || http_name_is(f, "Keep-Alive"))
        return FIELD_DROP;
    if (http_name_is(f, "X-Rewrite")) {
        evbuffer_add_printf(out, "X-Rewrite: rewritten\r\n");
        return FIELD_WRITTEN;
    }
    return FIELD_VERBATIM;
}

/* Parses `fields` ("Name: value\r\n" lines) as a message head, applies the
 * policy and returns what it wrote (a static buffer). */
static const char *run_with(const policy *p, policy_side side, const char *fields, field_filter filter,
                            const policy_vars *v)
{
    static char result[4096];
    static const http_limits limits = {
        .max_head = 65536, .max_fields = MAX_FIELDS, .max_uri = 8192, .max_line = 8192,
    };
    http_field parsed[MAX_FIELDS];
    http_request req = { .fields = parsed };
    struct evbuffer *out = evbuffer_new();
    size_t len = strlen("GET / HTTP/1.1\r\n") + strlen(fields) + 2, n;
    char *head = malloc(len + 1);
    int status = 0;

    assert_non_null(out);
    assert_non_null(head);
    snprintf(head, len + 1, "GET / HTTP/1.1\r\n%s\r\n", fields);
    if (http_parse_request(head, len, &limits, &req, &status) != (int)len)
        fail_msg("test head does not parse (%d): %s", status, fields);
    offered[0] = '\0';
    policy_write_fields(p, side, req.fields, req.nfields, filter, offered, v, out);
    n = evbuffer_get_length(out);
    assert_true(n < sizeof(result));
    evbuffer_remove(out, result, n);
    result[n] = '\0';
    evbuffer_free(out);
    free(head);
    return result;
}

static const char *run(const policy *p, policy_side side, const char *fields)
{
    return run_with(p, side, fields, NULL, &vars);
}

/* ------------------------------------------------------------ fixture */

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_policy.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    (void)state;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return rmdir(dir);
}

/* ------------------------------------------------------------ rules */

static void test_empty_policy_is_byte_faithful(void **state)
{
    policy *p = load_json("{}");
    const char *in = "Host: example.com\r\n"
                     "Name:value\r\n"
                     "Name:   value  \r\n"
                     "X-Empty:\r\n"
                     "Accept: */*\r\n";

    (void)state;
    assert_string_equal(policy_name(p), "t");
    assert_string_equal(run(p, POLICY_REQUEST, in), in);
    assert_string_equal(run(p, POLICY_RESPONSE, in), in);
    policy_free(p);
}

static void test_strip_exact_case_insensitive_all_duplicates(void **state)
{
    policy *p = load_json("{\"request\": {\"strip\": [\"X-Real-IP\", \"via\"]}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: a\r\nx-real-ip: 1.2.3.4\r\nAccept:  */*\r\nVIA: 1.0 p\r\n"
                            "X-REAL-IP: 5.6.7.8\r\nVia: 1.1 q\r\nX-Real-IPs: kept\r\n"),
                        "Host: a\r\nAccept:  */*\r\nX-Real-IPs: kept\r\n");
    /* Only the request side has rules. */
    assert_string_equal(run(p, POLICY_RESPONSE, "Via: 1.1 q\r\n"), "Via: 1.1 q\r\n");
    policy_free(p);
}

static void test_strip_wildcards(void **state)
{
    policy *p = load_json("{\"request\": {\"strip\": [\"X-Forwarded-*\", \"Content-*\"]},"
                          " \"response\": {\"strip\": [\"*\"]}}");
    const char *in = "Host: a\r\nX-Forwarded-For: 1\r\nx-forwarded-HOST: h\r\nX-Forwarded: k\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 3\r\nContent-Language: en\r\n";

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, in), "Host: a\r\nX-Forwarded: k\r\nContent-Length: 3\r\n");
    /* "*" strips everything but the fields that frame or address the message. */
    assert_string_equal(run(p, POLICY_RESPONSE,
                            "Server: s\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nhost: x\r\n"),
                        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\nhost: x\r\n");
    policy_free(p);

    /* A name with a rule of its own is still subject to the wildcards. */
    p = load_json("{\"request\": {\"strip\": [\"X-Forwarded-*\"], \"append\": {\"X-Forwarded-For\": \"n\"},"
                  " \"allow_only\": [\"Acc*\", \"X-*\"], \"set\": {\"Accept\": \"a\"}}}");
    assert_string_equal(run(p, POLICY_REQUEST, "X-Forwarded-For: 1\r\naccept: */*\r\nX-Other: o\r\n"),
                        "accept: a\r\nX-Other: o\r\nX-Forwarded-For: n\r\n");
    policy_free(p);
}

static void test_set_in_place_and_at_end(void **state)
{
    policy *p = load_json("{\"request\": {\"set\": {\"User-Agent\": \"UA/1\", \"X-New\": \"n\"}}}");

    (void)state;
    /* Received casing kept, first occurrence replaced in place, later ones gone. */
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: a\r\nuser-AGENT: curl/8\r\nAccept: */*\r\nUser-Agent: again\r\n"),
                        "Host: a\r\nuser-AGENT: UA/1\r\nAccept: */*\r\nX-New: n\r\n");
    /* Absent: added at the end with the policy's casing. */
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\n"), "Host: a\r\nUser-Agent: UA/1\r\nX-New: n\r\n");
    policy_free(p);
}

static void test_append(void **state)
{
    policy *p = load_json("{\"request\": {\"append\": {\"X-Forwarded-For\": \"$client_ip\"}}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\nx-forwarded-for: 1.2.3.4\r\nAccept: */*\r\n"),
                        "Host: a\r\nx-forwarded-for: 1.2.3.4, 10.0.0.9\r\nAccept: */*\r\n");
    /* Several fields form one list: it is appended to as a whole, where the
     * first stood, so the new element comes last. */
    assert_string_equal(run(p, POLICY_REQUEST,
                            "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nAccept: */*\r\nX-FORWARDED-FOR: 3.3.3.3\r\n"),
                        "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\nAccept: */*\r\n");
    /* An empty value is no element. */
    assert_string_equal(run(p, POLICY_REQUEST, "X-Forwarded-For:\r\nX-Forwarded-For: 4.4.4.4\r\n"),
                        "X-Forwarded-For: 4.4.4.4, 10.0.0.9\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "X-Forwarded-For: \r\n"), "X-Forwarded-For: 10.0.0.9\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\n"), "Host: a\r\nX-Forwarded-For: 10.0.0.9\r\n");
    policy_free(p);
}

static void test_add_always_and_end_order(void **state)
{
    policy *p = load_json("{\"request\": {\"append\": {\"Via\": \"1.1 p\"}, \"add\": {\"X-Note\": \"hi\"},"
                          " \"set\": {\"X-Set\": \"s\"}}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, "X-Note: theirs\r\n"),
                        "X-Note: theirs\r\nX-Set: s\r\nX-Note: hi\r\nVia: 1.1 p\r\n");
    policy_free(p);
}

static void test_strip_and_set_same_name(void **state)
{
    /* strip comes first: every received Via goes, the set one is added. */
    policy *p = load_json("{\"request\": {\"strip\": [\"Via\"], \"set\": {\"Via\": \"1.1 me\"}}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, "Via: 1.0 a\r\nAccept: */*\r\nVia: 1.0 b\r\n"),
                        "Accept: */*\r\nVia: 1.1 me\r\n");
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "VIA", 3), 1);
    policy_free(p);
}

static void test_allow_only(void **state)
{
    policy *p = load_json("{\"request\": {\"allow_only\": [\"accept\", \"Sec-Fetch-*\", \"Cookie\"],"
                          " \"strip\": [\"cookie\"]},"
                          " \"response\": {\"allow_only\": []}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: a\r\nUser-Agent: u\r\nACCEPT: */*\r\nSec-Fetch-Mode: navigate\r\n"
                            "Cookie: c=1\r\nContent-Length: 0\r\nX-Forwarded-For: 1\r\n"),
                        "Host: a\r\nACCEPT: */*\r\nSec-Fetch-Mode: navigate\r\nContent-Length: 0\r\n");
    /* An empty list lets only the framing fields through. */
    assert_string_equal(run(p, POLICY_RESPONSE,
                            "Server: s\r\nTransfer-Encoding: chunked\r\nSet-Cookie: x\r\n"),
                        "Transfer-Encoding: chunked\r\n");
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "User-Agent", 10), 1);
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "sec-fetch-site", 14), 0);
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "Cookie", 6), 1);
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "HOST", 4), 0);
    assert_int_equal(policy_strips(p, POLICY_RESPONSE, "Content-Length", 14), 0);
    assert_int_equal(policy_strips(p, POLICY_RESPONSE, "Server", 6), 1);
    policy_free(p);
}

static void test_referer(void **state)
{
    policy *p = load_json("{\"request\": {\"referer\": \"origin-when-cross-site\"}}");
    policy_vars v6 = vars;

    (void)state;
    /* Same host (any case, any port): passes as it is. */
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: https://EXAMPLE.com:8443/a/b?q=1\r\n"),
                        "Referer: https://EXAMPLE.com:8443/a/b?q=1\r\n");
    /* Cross-site: cut to the origin, userinfo left out, port kept. */
    assert_string_equal(run(p, POLICY_REQUEST, "Accept: */*\r\nreferer: https://other.org/secret/path?id=7\r\n"),
                        "Accept: */*\r\nreferer: https://other.org/\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: http://user:pw@www.example.com:81/x#f\r\n"),
                        "Referer: http://www.example.com:81/\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: https://other.org?q\r\n"),
                        "Referer: https://other.org/\r\n");
    /* Not an absolute URL: cannot be judged, dropped. */
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: /relative\r\nAccept: */*\r\n"), "Accept: */*\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: https:///x\r\n"), "");
    /* No Referer: nothing added. */
    assert_string_equal(run(p, POLICY_REQUEST, "Accept: */*\r\n"), "Accept: */*\r\n");
    /* Bracketed IPv6 literals compare with or without brackets. */
    v6.host = "2001:db8::1";
    assert_string_equal(run_with(p, POLICY_REQUEST, "Referer: http://[2001:DB8::1]:8080/p\r\n", NULL, &v6),
                        "Referer: http://[2001:DB8::1]:8080/p\r\n");
    assert_string_equal(run_with(p, POLICY_REQUEST, "Referer: http://[::2]/p\r\n", NULL, &v6),
                        "Referer: http://[::2]/\r\n");
    v6.host = "[2001:db8::1]";
    assert_string_equal(run_with(p, POLICY_REQUEST, "Referer: http://[2001:db8::1]/p\r\n", NULL, &v6),
                        "Referer: http://[2001:db8::1]/p\r\n");
    /* The rule is for requests only. */
    assert_string_equal(run(p, POLICY_RESPONSE, "Referer: https://other.org/x\r\n"),
                        "Referer: https://other.org/x\r\n");
    policy_free(p);

    p = load_json("{\"request\": {\"referer\": \"keep\"}}");
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: https://other.org/x\r\n"),
                        "Referer: https://other.org/x\r\n");
    policy_free(p);
}

static void test_variables(void **state)
{
    policy *p = load_json("{\"request\": {\"add\": {\"X-All\": \"$client_ip:$client_port via $proxy_name for "
                          "$host costs $$5 $$$host$$\", \"X-Plain\": \"no variables\", \"X-Empty\": \"\"}}}");
    policy_vars partial = { .client_ip = "1.2.3.4" };
    policy_vars evil = { .proxy_name = "p\r\nX-Injected: 1" };

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, ""),
                        "X-All: 10.0.0.9:54321 via anon.example for example.com costs $5 $example.com$\r\n"
                        "X-Plain: no variables\r\nX-Empty: \r\n");
    /* NULL members (and NULL vars) expand to nothing. */
    assert_string_equal(run_with(p, POLICY_REQUEST, "", NULL, &partial),
                        "X-All: 1.2.3.4: via  for  costs $5 $$\r\nX-Plain: no variables\r\nX-Empty: \r\n");
    assert_string_equal(run_with(p, POLICY_REQUEST, "", NULL, NULL),
                        "X-All: : via  for  costs $5 $$\r\nX-Plain: no variables\r\nX-Empty: \r\n");
    policy_free(p);

    /* A line break in a variable ends the value there. */
    p = load_json("{\"request\": {\"set\": {\"Via\": \"1.1 $proxy_name\"}}}");
    assert_string_equal(run_with(p, POLICY_REQUEST, "", NULL, &evil), "Via: 1.1 p\r\n");
    policy_free(p);
}

static void test_filter_semantics(void **state)
{
    policy *p = load_json("{\"request\": {\"strip\": [\"X-Gone\"], \"set\": {\"User-Agent\": \"UA\"},"
                          " \"append\": {\"Via\": \"1.1 p\"}, \"add\": {\"X-Added\": \"a\"}}}");

    (void)state;
    assert_string_equal(run_with(p, POLICY_REQUEST,
                                 "Host: a\r\nConnection: keep-alive\r\nX-Rewrite: old\r\nX-Gone: 1\r\n"
                                 "User-Agent: u\r\nVia: 1.0 x\r\nKeep-Alive: 5\r\nAccept:  */*\r\n",
                                 test_filter, &vars),
                        "Host: a\r\nX-Rewrite: rewritten\r\nUser-Agent: UA\r\nVia: 1.0 x, 1.1 p\r\n"
                        "Accept:  */*\r\nX-Added: a\r\n");
    /* Stripped fields and fields the rules write are not offered. */
    assert_string_equal(offered, "Host|Connection|X-Rewrite|Keep-Alive|Accept|");
    policy_free(p);
}

static void test_matching_many_names(void **state)
{
    /* Enough names that the table has collisions to walk. */
    char json[4096] = "{\"request\": {\"strip\": [";
    char name[32];
    policy *p;

    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "%s\"X-H%d\"", i ? ", " : "", i);
        strcat(json, name);
    }
    strcat(json, "]}}");
    p = load_json(json);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "x-h%d", i);
        assert_int_equal(policy_strips(p, POLICY_REQUEST, name, strlen(name)), 1);
        snprintf(name, sizeof(name), "X-H%d0", i + 100);
        assert_int_equal(policy_strips(p, POLICY_REQUEST, name, strlen(name)), 0);
    }
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "X-H", 3), 0);
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "", 0), 0);
    policy_free(p);
}

/* ------------------------------------------------------------ extend */

static void test_extend_merges(void **state)
{
    policy *p;

    (void)state;
    put("base", "{\"request\": {\"strip\": [\"Via\"], \"allow_only\": [\"Accept\", \"Via\", \"X-A\", \"X-B\","
                " \"X-S\", \"User-Agent\"], \"set\": {\"X-S\": \"parent\", \"X-Keep\": \"k\"},"
                " \"append\": {\"X-A\": \"pa\"}, \"add\": {\"X-B\": \"pb\"},"
                " \"referer\": \"origin-when-cross-site\"},"
                " \"response\": {\"add\": {\"X-R\": \"r\"}}}");
    put("child", "{\"extend\": \"base\", \"description\": \"d\","
                 " \"request\": {\"strip\": [\"User-Agent\"], \"allow_only\": [\"Accept\", \"Via\", \"X-A\","
                 " \"X-B\", \"X-S\", \"X-C\", \"User-Agent\", \"Referer\"],"
                 " \"set\": {\"x-s\": \"child\", \"X-A\": \"replaced\"}, \"add\": {\"X-B\": \"cb\"}}}");
    p = load_from(dir, "child");
    assert_string_equal(policy_name(p), "child");
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Via: v\r\nUser-Agent: u\r\nX-C: c\r\nX-A: a\r\nX-S: s\r\nX-D: d\r\n"
                            "Referer: https://else.org/p\r\n"),
                        /* strips merged (Via, User-Agent), the child's allow_only (X-C
                         * in, X-D out), set overridden, the parent's append replaced by
                         * the child's set, adds from both, referer rule inherited. */
                        "X-C: c\r\nX-A: replaced\r\nX-S: child\r\nReferer: https://else.org/\r\n"
                        "X-Keep: k\r\nX-B: pb\r\nX-B: cb\r\n");
    /* Added fields take the casing of the file that won. */
    assert_string_equal(run(p, POLICY_REQUEST, ""),
                        "x-s: child\r\nX-Keep: k\r\nX-A: replaced\r\nX-B: pb\r\nX-B: cb\r\n");
    assert_string_equal(run(p, POLICY_RESPONSE, ""), "X-R: r\r\n");
    policy_free(p);
}

static void test_extend_chain_and_limits(void **state)
{
    char name[8], json[64];
    policy *p;

    (void)state;
    /* c0 <- c1 <- ... <- c7: eight policies is the limit. */
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        if (i == 0)
            snprintf(json, sizeof(json), "{\"request\": {\"add\": {\"X-0\": \"0\"}}}");
        else
            snprintf(json, sizeof(json), "{\"extend\": \"c%d\", \"request\": {\"add\": {\"X-%d\": \"%d\"}}}",
                     i - 1, i, i);
        put(name, json);
    }
    p = load_from(dir, "c7");
    assert_string_equal(run(p, POLICY_REQUEST, ""),
                        "X-0: 0\r\nX-1: 1\r\nX-2: 2\r\nX-3: 3\r\nX-4: 4\r\nX-5: 5\r\nX-6: 6\r\nX-7: 7\r\n");
    policy_free(p);
    expect_error("c8", "%s/c1.json: extend: more than 8 policies in the extend chain");
}

static void test_extend_cycles(void **state)
{
    (void)state;
    put("self", "{\"extend\": \"self\"}");
    expect_error("self", "%s/self.json: extend: cycle: self -> self");
    put("a", "{\"extend\": \"b\"}");
    put("b", "{\"extend\": \"c\"}");
    put("c", "{\"extend\": \"a\"}");
    expect_error("a", "%s/c.json: extend: cycle: a -> b -> c -> a");
    put("d", "{\"extend\": \"b\"}");
    expect_error("d", "%s/a.json: extend: cycle: b -> c -> a -> b");
}

static void test_extend_errors(void **state)
{
    (void)state;
    expect_json_error("{\"extend\": \"nope\"}", "%s/nope.json: cannot read: No such file or directory");
    expect_json_error("{\"extend\": \"../etc/x\"}",
                      "%s/t.json: extend: policy name \"../etc/x\" invalid (letters, digits, '_' and '-' only)");
    expect_json_error("{\"extend\": 1}", "%s/t.json: extend: expected a string");
    put("broken", "{\"request\": {\"strip\": [1]}}");
    expect_json_error("{\"extend\": \"broken\"}", "%s/broken.json: request.strip[0]: expected a string");
}

/* ------------------------------------------------------------ load errors */

static void test_err_files_and_names(void **state)
{
    char err[512] = "";

    (void)state;
    expect_error("missing", "%s/missing.json: cannot read: No such file or directory");
    assert_null(policy_load("no/such/dir", "elite", err, sizeof(err)));
    assert_string_equal(err, "no/such/dir/elite.json: cannot read: No such file or directory");
    expect_error("../x", "policy name \"../x\" invalid (letters, digits, '_' and '-' only)");
    expect_error("", "policy name \"\" invalid (letters, digits, '_' and '-' only)");
    expect_error("a b", "policy name \"a b\" invalid (letters, digits, '_' and '-' only)");
    expect_error("x.json", "policy name \"x.json\" invalid (letters, digits, '_' and '-' only)");
}

static void test_err_json(void **state)
{
    (void)state;
    expect_json_error("{\"request\": {}", "%s/t.json: line 1 column 14: '}' expected near end of file");
    expect_json_error("{\"request\": {}, \"request\": {}}",
                      "%s/t.json: line 1 column 25: duplicate object key near '\"request\"'");
    expect_json_error("[]", "%s/t.json: expected an object");
    expect_json_error("{\"description\": 5}", "%s/t.json: description: expected a string");
}

static void test_err_unknown_keys(void **state)
{
    (void)state;
    expect_json_error("{\"requests\": {}}", "%s/t.json: requests: unknown key");
    expect_json_error("{\"request\": {\"stirp\": []}}", "%s/t.json: request.stirp: unknown key");
    expect_json_error("{\"response\": {\"referer\": \"keep\"}}", "%s/t.json: response.referer: unknown key");
    expect_json_error("{\"response\": {\"Strip\": []}}", "%s/t.json: response.Strip: unknown key");
}

static void test_err_types(void **state)
{
    (void)state;
    expect_json_error("{\"request\": []}", "%s/t.json: request: expected an object");
    expect_json_error("{\"request\": {\"strip\": \"Via\"}}", "%s/t.json: request.strip: expected an array of strings");
    expect_json_error("{\"response\": {\"allow_only\": {}}}",
                      "%s/t.json: response.allow_only: expected an array of strings");
    expect_json_error("{\"request\": {\"strip\": [\"Via\", null]}}", "%s/t.json: request.strip[1]: expected a string");
    expect_json_error("{\"request\": {\"set\": [\"Via\"]}}",
                      "%s/t.json: request.set: expected an object of header names and string values");
    expect_json_error("{\"request\": {\"add\": {\"X-A\": 1}}}", "%s/t.json: request.add.X-A: expected a string");
    expect_json_error("{\"request\": {\"referer\": \"strict\"}}",
                      "%s/t.json: request.referer: expected \"keep\" or \"origin-when-cross-site\"");
    expect_json_error("{\"request\": {\"referer\": true}}",
                      "%s/t.json: request.referer: expected \"keep\" or \"origin-when-cross-site\"");
}

static void test_err_values(void **state)
{
    (void)state;
    expect_json_error("{\"request\": {\"set\": {\"Via\": \"1.1 p\\r\\nX-Evil: 1\"}}}",
                      "%s/t.json: request.set.Via: byte 0x0d at offset 5: a value may hold only visible "
                      "ASCII, spaces and tabs");
    expect_json_error("{\"request\": {\"add\": {\"X-A\": \"a\\nb\"}}}",
                      "%s/t.json: request.add.X-A: byte 0x0a at offset 1: a value may hold only visible "
                      "ASCII, spaces and tabs");
    /* jansson refuses NUL itself. */
    expect_json_error("{\"request\": {\"append\": {\"X-A\": \"a\\u0000b\"}}}",
                      "%s/t.json: line 1 column 41: \\u0000 is not allowed without JSON_ALLOW_NUL near "
                      "'\"a\\u0000b\"'");
    expect_json_error("{\"request\": {\"add\": {\"X-A\": \"caf\\u00e9\"}}}",
                      "%s/t.json: request.add.X-A: byte 0xc3 at offset 3: a value may hold only visible "
                      "ASCII, spaces and tabs");
    expect_json_error("{\"request\": {\"set\": {\"Via\": \"1.1 $proxy\"}}}",
                      "%s/t.json: request.set.Via: unknown variable $proxy (known: $client_ip, $client_port, "
                      "$proxy_name, $host, and $$ for '$')");
    expect_json_error("{\"response\": {\"set\": {\"Via\": \"$hosts\"}}}",
                      "%s/t.json: response.set.Via: unknown variable $hosts (known: $client_ip, $client_port, "
                      "$proxy_name, $host, and $$ for '$')");
    expect_json_error("{\"request\": {\"set\": {\"X-Price\": \"5 $\"}}}",
                      "%s/t.json: request.set.X-Price: lone '$' (write $$ for a dollar sign)");
    expect_json_error("{\"request\": {\"set\": {\"X-Price\": \"$ 5\"}}}",
                      "%s/t.json: request.set.X-Price: lone '$' (write $$ for a dollar sign)");
}

static void test_err_header_names(void **state)
{
    (void)state;
    expect_json_error("{\"request\": {\"strip\": [\"Via\", \"Host\"]}}",
                      "%s/t.json: request.strip[1]: Host addresses or frames the message and cannot be changed");
    expect_json_error("{\"request\": {\"strip\": [\"content-LENGTH\"]}}",
                      "%s/t.json: request.strip[0]: content-LENGTH addresses or frames the message and cannot "
                      "be changed");
    expect_json_error("{\"response\": {\"set\": {\"Transfer-Encoding\": \"chunked\"}}}",
                      "%s/t.json: response.set.Transfer-Encoding: Transfer-Encoding addresses or frames the "
                      "message and cannot be changed");
    expect_json_error("{\"request\": {\"add\": {\"host\": \"evil\"}}}",
                      "%s/t.json: request.add.host: host addresses or frames the message and cannot be changed");
    expect_json_error("{\"request\": {\"append\": {\"Content-Length\": \"1\"}}}",
                      "%s/t.json: request.append.Content-Length: Content-Length addresses or frames the message "
                      "and cannot be changed");
    expect_json_error("{\"request\": {\"strip\": [\"Bad Name\"]}}",
                      "%s/t.json: request.strip[0]: \"Bad Name\" is not a header name or a prefix ending in '*'");
    expect_json_error("{\"request\": {\"allow_only\": [\"\"]}}",
                      "%s/t.json: request.allow_only[0]: \"\" is not a header name or a prefix ending in '*'");
    expect_json_error("{\"request\": {\"strip\": [\"X-**\"]}}",
                      "%s/t.json: request.strip[0]: \"X-**\" is not a header name or a prefix ending in '*'");
    expect_json_error("{\"request\": {\"strip\": [\"*-IP\"]}}",
                      "%s/t.json: request.strip[0]: \"*-IP\" is not a header name or a prefix ending in '*'");
    expect_json_error("{\"request\": {\"set\": {\"X-*\": \"v\"}}}",
                      "%s/t.json: request.set.X-*: \"X-*\" is not a header name");
    expect_json_error("{\"request\": {\"set\": {\"Via:\": \"v\"}}}",
                      "%s/t.json: request.set.Via:: \"Via:\" is not a header name");
    expect_json_error("{\"request\": {\"add\": {\"\": \"v\"}}}", "%s/t.json: request.add.: \"\" is not a header name");
    /* A name can have one set or append rule per file. */
    expect_json_error("{\"request\": {\"set\": {\"Via\": \"a\", \"VIA\": \"b\"}}}",
                      "%s/t.json: request.set.VIA: VIA already has a set rule");
    expect_json_error("{\"request\": {\"set\": {\"Via\": \"a\"}, \"append\": {\"via\": \"b\"}}}",
                      "%s/t.json: request.append.via: via already has a set rule");
}

static void test_err_too_many_rules(void **state)
{
    char json[8192] = "{\"request\": {\"add\": {";
    char entry[32];

    (void)state;
    for (int i = 0; i <= 64; i++) {
        snprintf(entry, sizeof(entry), "%s\"X-%d\": \"v\"", i ? ", " : "", i);
        strcat(json, entry);
    }
    strcat(json, "}}}");
    expect_json_error(json, "%s/t.json: request.add.X-64: more than 64 set, add and append rules");
}

/* Wildcards that match a framing name are fine (they never remove it), and
 * so is allow_only naming one (it admits them anyway). */
static void test_wildcards_that_match_framing_names_load(void **state)
{
    policy *p = load_json("{\"request\": {\"strip\": [\"Host*\", \"Transfer-*\", \"*\"],"
                          " \"allow_only\": [\"Host\", \"Content-Length\"]}}");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\nHostile: 1\r\nTransfer-Encoding: chunked\r\n"),
                        "Host: a\r\nTransfer-Encoding: chunked\r\n");
    policy_free(p);
}

/* ------------------------------------------------------------ shipped policies */

static void test_shipped_policies_load(void **state)
{
    static const char *const names[] = { "transparent", "anonymous", "elite", "paranoid" };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        policy *p = load_from("policies", names[i]);
        assert_string_equal(policy_name(p), names[i]);
        assert_int_equal(policy_strips(p, POLICY_REQUEST, "Host", 4), 0);
        assert_int_equal(policy_strips(p, POLICY_REQUEST, "Accept", 6), 0);
        assert_int_equal(policy_strips(p, POLICY_REQUEST, "Cookie", 6), 0);
        policy_free(p);
    }
}

static void test_shipped_transparent(void **state)
{
    policy *p = load_from("policies", "transparent");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\nX-Forwarded-For: 1.2.3.4\r\nAccept: */*\r\n"),
                        "Host: a\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.9\r\nAccept: */*\r\n"
                        "Via: 1.1 anon.example\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\nVia: 1.0 up\r\n"),
                        "Host: a\r\nVia: 1.0 up, 1.1 anon.example\r\nX-Forwarded-For: 10.0.0.9\r\n");
    assert_string_equal(run(p, POLICY_RESPONSE, "Server: s\r\n"), "Server: s\r\nVia: 1.1 anon.example\r\n");
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "X-Forwarded-For", 15), 0);
    policy_free(p);
}

static void test_shipped_anonymous(void **state)
{
    policy *p = load_from("policies", "anonymous");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: a\r\nX-Real-IP: 192.168.1.5\r\nVia: 1.0 corp-proxy\r\nx-forwarded-for: 1.2.3.4\r\n"
                            "Forwarded: for=1.2.3.4\r\nAccept: */*\r\nCF-Connecting-IP: 1.2.3.4\r\n"
                            "X-Forwarded-Host: intranet\r\nVia: 1.0 another\r\nTrue-Client-IP: 1.2.3.4\r\n"),
                        "Host: a\r\nVia: 1.1 anon.example\r\nAccept: */*\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Host: a\r\n"), "Host: a\r\nVia: 1.1 anon.example\r\n");
    assert_string_equal(run(p, POLICY_RESPONSE, "Via: 1.1 cdn\r\n"), "Via: 1.1 cdn, 1.1 anon.example\r\n");
    policy_free(p);
}

static void test_shipped_elite(void **state)
{
    static const char *const leaks[] = {
        "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Forwarded-For",
        "X-Forwarded", "Client-IP", "Forwarded-For-IP", "X-Cluster-Client-IP",
        "Xroxy-Connection", "X-Real-IP", "X-Proxy-ID", "PC-Remote-Addr", "X-IMForwards",
        "True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X-Originating-IP", "X-Remote-IP",
        "X-Remote-Addr", "X-ProxyUser-Ip", "Proxy-Client-IP", "WL-Proxy-Client-IP", "X-Host",
        "X-BlueCoat-Via", "Proxy-Authorization", "Proxy-Agent", "Fastly-Client-IP", "X-Via",
        "X-Coming-From", "Coming-From", "HTTP-Client-IP", "HTTP-X-Forwarded-For", "X-Anonproxy-Debug",
    };
    policy *p = load_from("policies", "elite");

    (void)state;
    /* Proxy-Connection is left to the protocol layer, which turns it into
     * the Connection field a browser would have sent the origin. */
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "Proxy-Connection", 16), 0);
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++)
        if (!policy_strips(p, POLICY_REQUEST, leaks[i], strlen(leaks[i])))
            fail_msg("elite passes %s", leaks[i]);
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: a\r\nx-FORWARDED-for: 1.2.3.4\r\nUser-Agent: u\r\nVIA: 1.0 a\r\n"
                            "X-Forwarded-For: 5.6.7.8\r\nvia: 1.0 b\r\nAccept-Language: de\r\nContent-Length: 0\r\n"),
                        "Host: a\r\nUser-Agent: u\r\nAccept-Language: de\r\nContent-Length: 0\r\n");
    /* Responses are passed as they are. */
    assert_string_equal(run(p, POLICY_RESPONSE, "Via: 1.1 cdn\r\nServer: s\r\n"), "Via: 1.1 cdn\r\nServer: s\r\n");
    policy_free(p);
}

static void test_shipped_paranoid(void **state)
{
    policy *p = load_from("policies", "paranoid");

    (void)state;
    assert_string_equal(run(p, POLICY_REQUEST,
                            "Host: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0\r\n"
                            "From: me@example.org\r\nX-Forwarded-For: 1.2.3.4\r\nVia: 1.0 a\r\n"
                            "Referer: https://search.example.net/?q=secret\r\nSec-CH-UA-Platform: \"Linux\"\r\n"
                            "Accept: text/html\r\n"),
                        "Host: example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36\r\n"
                        "Referer: https://search.example.net/\r\nAccept: text/html\r\n"
                        "Accept-Language: en-US,en;q=0.9\r\n");
    assert_string_equal(run(p, POLICY_REQUEST, "Referer: http://example.com/page\r\nAccept-Language: fr\r\n"),
                        "Referer: http://example.com/page\r\nAccept-Language: en-US,en;q=0.9\r\n"
                        "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                        "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36\r\n");
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "from", 4), 1);
    assert_int_equal(policy_strips(p, POLICY_REQUEST, "X-Real-IP", 9), 1);
    assert_string_equal(run(p, POLICY_RESPONSE, "Server: s\r\n"), "Server: s\r\n");
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_policy_is_byte_faithful),
        cmocka_unit_test(test_strip_exact_case_insensitive_all_duplicates),
        cmocka_unit_test(test_strip_wildcards),
        cmocka_unit_test(test_set_in_place_and_at_end),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_add_always_and_end_order),
        cmocka_unit_test(test_strip_and_set_same_name),
        cmocka_unit_test(test_allow_only),
        cmocka_unit_test(test_referer),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_filter_semantics),
        cmocka_unit_test(test_matching_many_names),
        cmocka_unit_test(test_extend_merges),
        cmocka_unit_test(test_extend_chain_and_limits),
        cmocka_unit_test(test_extend_cycles),
        cmocka_unit_test(test_extend_errors),
        cmocka_unit_test(test_err_files_and_names),
        cmocka_unit_test(test_err_json),
        cmocka_unit_test(test_err_unknown_keys),
        cmocka_unit_test(test_err_types),
        cmocka_unit_test(test_err_values),
        cmocka_unit_test(test_err_header_names),
        cmocka_unit_test(test_err_too_many_rules),
        cmocka_unit_test(test_wildcards_that_match_framing_names_load),
        cmocka_unit_test(test_shipped_policies_load),
        cmocka_unit_test(test_shipped_transparent),
        cmocka_unit_test(test_shipped_anonymous),
        cmocka_unit_test(test_shipped_elite),
        cmocka_unit_test(test_shipped_paranoid),
    };

    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
