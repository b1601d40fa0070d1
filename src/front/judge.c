/* judge.c - see judge.h.
 *
 * Ownership: a connection owns its bufferevent and its header timer, and is
 * linked into its worker; the worker's kind state borrows the config's
 * GeoIP database. A final answer is delivered by a closer (net/closer.h). Requests on one
 * connection are answered one at a time: the next head is looked at only once
 * the previous response has been flushed, so a client that pipelines without
 * reading holds at most one response and one head's worth of input.
 */
#include "front/judge.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/geoip.h"
#include "core/log.h"
#include "core/util.h"
#include "front/http_proxy.h"
#include "http/head_reader.h"
#include "http/http_error.h"
#include "http/http_parser.h"
#include "net/closer.h"
#include "net/worker.h"

#define JUDGE_MAX_HEAD 65536
#define JUDGE_MAX_FIELDS 200
#define JUDGE_MAX_URI 8192
#define JUDGE_TIMEOUT_MS 10000  /* a whole head must arrive, a response must flush */

/* Headers whose mere presence says "a proxy is in the way" (case-insensitive),
 * the names proxy checkers' judges look for. Any X-Forwarded-* too. */
static const char *const revealing_headers[] = {
    "Via", "X-Forwarded-For", "Forwarded-For", "X-Forwarded", "Forwarded", "Client-IP",
    "Forwarded-For-IP", "Proxy-Connection", "X-Cluster-Client-IP", "Xroxy-Connection",
    "X-Real-IP", "X-Proxy-ID", "PC-Remote-Addr", "X-IMForwards", "True-Client-IP",
    "CF-Connecting-IP", "X-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
    "X-ProxyUser-Ip", "Proxy-Client-IP", "WL-Proxy-Client-IP", "X-Host", "X-BlueCoat-Via",
    "Proxy-Authorization", "Proxy-Agent", NULL,
};

/* Headers a browser fills from a fixed vocabulary, none of it the word
 * "proxy": finding that word there means a proxy wrote or rewrote the value
 * ("Connection: proxy-keep-alive", "Warning: 199 proxy ..."). Free-text
 * headers (User-Agent, Referer, Cookie, ...) are deliberately not searched:
 * a browser or a site may put anything there. */
static const char *const fixed_vocabulary_headers[] = {
    "Connection", "Keep-Alive", "Cache-Control", "Pragma", "Warning", "Upgrade", "TE", NULL,
};

typedef struct ipaddr {
    int family;             /* AF_INET or AF_INET6; IPv4-mapped IPv6 is AF_INET */
    unsigned char b[16];
    char text[INET6_ADDRSTRLEN];
} ipaddr;

/* The kind's state on one worker. */
typedef struct judge_worker {
    const geoip *geo;       /* the config's database; NULL: none */
    /* Heads are parsed and answered within one callback, so one array serves
     * every connection of the worker. */
    http_field fields[JUDGE_MAX_FIELDS];
} judge_worker;

typedef struct judge_conn {
    worker_conn link;
    worker *w;
    judge_worker *j;        /* the worker's kind state (not owned) */
    struct bufferevent *bev;
    struct event *timer;    /* the next head must be complete before it fires */
    size_t scan;            /* http_head_find resume point */
    int closing;            /* the last response is queued: a closer takes over */
    int eof;                /* the client will send nothing more */
    ipaddr peer;
} judge_conn;

typedef enum level { LEVEL_ANONYMOUS, LEVEL_TRANSPARENT } level;

/* Why a request is not elite. field NULL: about the remote address. */
typedef struct reason {
    const http_field *field;
    level level;
    const char *why;
} reason;

/* ---- small helpers ----------------------------------------------------- */

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'z');
}

/* Case-insensitive search for the NUL-terminated needle in hay[0..n). */
static const char *find_ci(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && lower((unsigned char)hay[i + k]) == lower((unsigned char)needle[k]))
            k++;
        if (k == m)
            return hay + i;
    }
    return NULL;
}

/* Does word occur in s[0..n) with no letter or digit on either side? */
static int has_word_ci(const char *s, size_t n, const char *word)
{
    size_t m = strlen(word);
    for (const char *p = s; (p = find_ci(p, n - (size_t)(p - s), word)) != NULL; p++) {
        int before = p > s && is_alnum((unsigned char)p[-1]);
        int after = p + m < s + n && is_alnum((unsigned char)p[m]);
        if (!before && !after)
            return 1;
    }
    return 0;
}

static int name_in(const http_field *f, const char *const *names)
{
    for (; *names; names++)
        if (http_name_is(f, *names))
            return 1;
    return 0;
}

/* Parses text (not NUL-terminated) as an IPv4 or IPv6 address. */
static int ip_parse(const char *s, size_t n, ipaddr *ip)
{
    char buf[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, ip->b) == 1) {
        ip->family = AF_INET;
    } else if (inet_pton(AF_INET6, buf, ip->b) == 1) {
        ip->family = AF_INET6;
        /* ::ffff:a.b.c.d is how a dual-stack socket shows an IPv4 peer. */
        if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ip->b)) {
            memmove(ip->b, ip->b + 12, 4);
            ip->family = AF_INET;
        }
    } else {
        return -1;
    }
    inet_ntop(ip->family, ip->b, ip->text, sizeof ip->text);
    return 0;
}

static int ip_from_sockaddr(const struct sockaddr *sa, ipaddr *ip)
{
    char buf[INET6_ADDRSTRLEN];
    const void *a;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return -1;
    if (!inet_ntop(sa->sa_family, a, buf, sizeof buf))
        return -1;
    return ip_parse(buf, strlen(buf), ip);
}

static int ip_equal(const ipaddr *a, const ipaddr *b)
{
    return a->family == b->family && memcmp(a->b, b->b, a->family == AF_INET ? 4 : 16) == 0;
}

static int is_addr_char(unsigned char c, int family)
{
    if ((c >= '0' && c <= '9') || c == '.')
        return 1;
    return family == AF_INET6 && (c == ':' || (lower(c) >= 'a' && lower(c) <= 'f'));
}

/* Does the value hold ip as a whole address token: a maximal run of address
 * characters ([0-9.] for IPv4, [0-9a-fA-F:.] for IPv6), trailing dots
 * dropped, that parses as ip? So "1.2.3.45" does not hold 1.2.3.4, while
 * "for=1.2.3.4:80", "::ffff:1.2.3.4" and "[2001:DB8:0::1]" hold theirs. */
static int value_has_ip(const char *v, size_t n, const ipaddr *ip)
{
    size_t i = 0;
    while (i < n) {
        if (!is_addr_char((unsigned char)v[i], ip->family)) {
            i++;
            continue;
        }
        size_t start = i, end;
        while (i < n && is_addr_char((unsigned char)v[i], ip->family))
            i++;
        end = i;
        while (end > start && v[end - 1] == '.')
            end--;
        ipaddr found;
        if (ip_parse(v + start, end - start, &found) == 0 && ip_equal(&found, ip))
            return 1;
    }
    return 0;
}

/* ---- the request ------------------------------------------------------- */

/* Finds the path and query of an origin-form ("/p?q") or absolute-form
 * ("http://authority/p?q") target. An absolute-form target with an empty path
 * means "/". Returns 0, or -1 for any other form. */
static int split_target(const char *t, size_t n, const char **path, size_t *path_len,
                        const char **query, size_t *query_len)
{
    static const char http[] = "http://";
    size_t i = 0;

    if (n >= sizeof http - 1 && http_token_eq(t, sizeof http - 1, http, sizeof http - 1)) {
        i = sizeof http - 1;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
    } else if (n == 0 || t[0] != '/') {
        return -1;
    }
    const char *q = memchr(t + i, '?', n - i);
    size_t end = q ? (size_t)(q - t) : n;
    *path = end > i ? t + i : "/";
    *path_len = end > i ? end - i : 1;
    *query = q ? q + 1 : "";
    *query_len = q ? n - end - 1 : 0;
    return 0;
}

/* Finds real_ip=IP in the query (percent-decoded, so "%3A" may stand for
 * ':'). Returns 1 found, 0 absent, -1 present but not an IP address. */
static int query_real_ip(const char *q, size_t n, ipaddr *ip)
{
    static const char key[] = "real_ip=";
    size_t pos = 0;

    while (pos < n) {
        const char *amp = memchr(q + pos, '&', n - pos);
        size_t end = amp ? (size_t)(amp - q) : n;
        if (end - pos >= sizeof key - 1 && memcmp(q + pos, key, sizeof key - 1) == 0) {
            const char *value = q + pos + sizeof key - 1;
            size_t value_len = end - pos - (sizeof key - 1), len;
            char buf[INET6_ADDRSTRLEN + 1];
            if (percent_check(value, value_len, &len) < 0 || len >= sizeof buf)
                return -1;
            percent_decode(value, value_len, 0, buf);
            return ip_parse(buf, len, ip) == 0 ? 1 : -1;
        }
        pos = end + 1;
    }
    return 0;
}

/* Judges the request. Fills reasons (room for nfields + 1) and returns how
 * many. Each field gives at most one reason, its strongest. */
static size_t judge_request(const http_request *req, const ipaddr *peer, const ipaddr *real,
                            reason *reasons)
{
    size_t n = 0;

    if (real && ip_equal(peer, real))
        reasons[n++] = (reason){NULL, LEVEL_TRANSPARENT, "the remote address is the real IP"};
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field *f = &req->fields[i];
        const char *why = NULL;
        level lv = LEVEL_ANONYMOUS;

        /* Host names the judge, as the client wrote it; it is not a leak
         * even when the client tests itself through 127.0.0.1. */
        if (real && !http_name_is(f, "Host") && value_has_ip(f->value, f->value_len, real)) {
            why = "carries the real IP";
            lv = LEVEL_TRANSPARENT;
        } else if (name_in(f, revealing_headers) ||
                   (f->name_len > 12 && http_token_eq(f->name, 12, "X-Forwarded-", 12))) {
            why = "proxy-revealing header";
        } else if (find_ci(f->name, f->name_len, "proxy")) {
            why = "header name mentions a proxy";
        } else if (name_in(f, fixed_vocabulary_headers) &&
                   has_word_ci(f->value, f->value_len, "proxy")) {
            why = "value mentions a proxy";
        }
        if (why)
            reasons[n++] = (reason){f, lv, why};
    }
    return n;
}

static const char *verdict_name(const reason *reasons, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reasons[i].level == LEVEL_TRANSPARENT)
            return "transparent";
    return n ? "anonymous" : "elite";
}

/* ---- output ------------------------------------------------------------ */

/* A JSON string of received bytes. Bytes that are not valid UTF-8 are read
 * as ISO-8859-1 (each byte one code point), which loses nothing. */
static json_t *json_bytes(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *latin1 = malloc(2 * n + 1);
    if (!latin1)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            latin1[k++] = (char)c;
        } else {
            latin1[k++] = (char)(0xc0 | (c >> 6));
            latin1[k++] = (char)(0x80 | (c & 0x3f));
        }
    }
    j = json_stringn(latin1, k);
    free(latin1);
    return j;
}

/* json_object_set_new that also fails on a NULL value (a failed allocation). */
static int put(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

static int append(json_t *arr, json_t *value)
{
    return value ? json_array_append_new(arr, value) : -1;
}

/* What the judge saw, in one place for both output formats. */
typedef struct observation {
    const http_request *req;
    const ipaddr *peer;
    const char *country;    /* NULL: unknown or no database */
    int have_geoip;
    const ipaddr *real;     /* NULL: no real_ip given */
    const char *line;       /* request line, without CRLF */
    size_t line_len;
    const reason *reasons;
    size_t nreasons;
} observation;

/* Returns the JSON text (free()), or NULL when out of memory. */
static char *render_json(const observation *o)
{
    json_t *root = json_object(), *headers = json_array(), *reasons = json_array();
    int bad = !root || !headers || !reasons;

    for (size_t i = 0; !bad && i < o->req->nfields; i++) {
        const http_field *f = &o->req->fields[i];
        json_t *pair = json_array();
        bad |= !pair || append(pair, json_bytes(f->name, f->name_len)) < 0 ||
               append(pair, json_bytes(f->value, f->value_len)) < 0;
        bad |= append(headers, pair) < 0;
    }
    for (size_t i = 0; !bad && i < o->nreasons; i++) {
        const reason *r = &o->reasons[i];
        json_t *obj = json_object();
        bad |= !obj || put(obj, "header", r->field ? json_bytes(r->field->name, r->field->name_len)
                                                    : json_null()) < 0 ||
               put(obj, "value", r->field ? json_bytes(r->field->value, r->field->value_len)
                                          : json_string(o->peer->text)) < 0 ||
               put(obj, "why", json_string(r->why)) < 0;
        bad |= append(reasons, obj) < 0;
    }
    if (!bad)
        bad = put(root, "remote_ip", json_string(o->peer->text)) < 0 ||
              put(root, "country", o->country ? json_string(o->country) : json_null()) < 0 ||
              put(root, "real_ip", o->real ? json_string(o->real->text) : json_null()) < 0 ||
              put(root, "request_line", json_bytes(o->line, o->line_len)) < 0 ||
              put(root, "headers", json_incref(headers)) < 0 ||
              put(root, "verdict", json_string(verdict_name(o->reasons, o->nreasons))) < 0 ||
              put(root, "reasons", json_incref(reasons)) < 0;
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2));
    json_decref(headers);
    json_decref(reasons);
    json_decref(root);
    return text;
}

static void render_text(const observation *o, struct evbuffer *out)
{
    evbuffer_add_printf(out, "remote_ip: %s\n", o->peer->text);
    const char *no_country = o->have_geoip ? "unknown" : "(no GeoIP database)";
    evbuffer_add_printf(out, "country: %s\n", o->country ? o->country : no_country);
    evbuffer_add_printf(out, "real_ip: %s\n", o->real ? o->real->text : "(not given)");
    evbuffer_add_printf(out, "request_line: %.*s\n", (int)o->line_len, o->line);
    evbuffer_add_printf(out, "verdict: %s\n", verdict_name(o->reasons, o->nreasons));
    for (size_t i = 0; i < o->nreasons; i++) {
        const reason *r = &o->reasons[i];
        if (r->field)
            evbuffer_add_printf(out, "reason: %.*s: %.*s (%s)\n", (int)r->field->name_len,
                                r->field->name, (int)r->field->value_len, r->field->value, r->why);
        else
            evbuffer_add_printf(out, "reason: remote address %s (%s)\n", o->peer->text, r->why);
    }
    evbuffer_add_printf(out, "headers:\n");
    for (size_t i = 0; i < o->req->nfields; i++)
        evbuffer_add_printf(out, "%.*s: %.*s\n", (int)o->req->fields[i].name_len,
                            o->req->fields[i].name, (int)o->req->fields[i].value_len,
                            o->req->fields[i].value);
}

/* ---- connections ------------------------------------------------------- */

static void set_timer(judge_conn *c, unsigned ms)
{
    struct timeval tv = ms_to_timeval(ms);
    evtimer_add(c->timer, &tv);
}

static void conn_free(judge_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    worker_conn_remove(c->w, &c->link);
    free(c);
}

/* The last response is queued: a closer delivers it and lingers. */
static void conn_close_after_flush(judge_conn *c)
{
    struct bufferevent *bev = c->bev;
    c->bev = NULL;
    /* The closer joins the worker first so a draining worker never sees zero. */
    closer_start(c->w, bev, JUDGE_TIMEOUT_MS, CLOSER_LINGER_MS);
    conn_free(c);
}

/* http_reason() knows the proxy's own error statuses; the judge has two more. */
static const char *reason_phrase(int status)
{
    return status == 200 ? "OK" : status == 404 ? "Not Found" : http_reason(status);
}

static void respond(judge_conn *c, int status, const char *type, const char *body, size_t len,
                    int keep)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "Cache-Control: no-store\r\n"
                        "%s%s\r\n",
                        status, reason_phrase(status), type, len,
                        status == 405 ? "Allow: GET\r\n" : "", keep ? "" : "Connection: close\r\n");
    evbuffer_add(out, body, len);
    if (!keep) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}
static void respond_error(judge_conn *c, int status, const char *detail, int keep)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason_phrase(status), detail);
    respond(c, status, "text/plain; charset=utf-8", body,
            n < 0 ? 0 : (size_t)n < sizeof body ? (size_t)n : sizeof body - 1, keep);
}

/* Answers a parsed GET request (keep: the connection stays open after). */
static void answer(judge_conn *c, const http_request *req, int keep)
{
    const judge_worker *j = c->j;
    const char *path, *query;
    size_t path_len, query_len;
    ipaddr real;

    if (split_target(req->target, req->target_len, &path, &path_len, &query, &query_len) < 0) {
        respond_error(c, 400, "request-target must be origin-form or http:// absolute-form", keep);
        return;
    }
    if (path_len != 1 || path[0] != '/') {
        respond_error(c, 404, "only / is served here", keep);
        return;
    }
    int has_real = query_real_ip(query, query_len, &real);
    if (has_real < 0) {
        respond_error(c, 400, "real_ip is not an IP address", keep);
        return;
    }

    char cc[3];
    int found = j->geo ? geoip_country_str(j->geo, c->peer.text, cc) : 0;
    if (found < 0)
        log_warn("judge: GeoIP lookup of %s failed", c->peer.text);
    reason reasons[JUDGE_MAX_FIELDS + 1];
    observation o = {
        .req = req,
        .peer = &c->peer,
        .country = found == 1 ? cc : NULL,
        .have_geoip = j->geo != NULL,
        .real = has_real ? &real : NULL,
        .line = req->method,
        /* method SP target SP "HTTP/1.x": the parser checked every part. */
        .line_len = (size_t)(req->target - req->method) + req->target_len + 9,
        .reasons = reasons,
    };
    o.nreasons = judge_request(req, &c->peer, o.real, reasons);
    log_info("judge: %s %.*s -> %s", c->peer.text, (int)o.line_len, o.line,
             verdict_name(reasons, o.nreasons));

    int json = 0;
    for (size_t i = 0; i < req->nfields; i++)
        if (http_name_is(&req->fields[i], "Accept") &&
            find_ci(req->fields[i].value, req->fields[i].value_len, "application/json"))
            json = 1;
    if (json) {
        char *text = render_json(&o);
        if (!text) {
            respond_error(c, 500, "out of memory", 0);
            return;
        }
        respond(c, 200, "application/json", text, strlen(text), keep);
        free(text);
    } else {
        struct evbuffer *body = evbuffer_new();
        if (!body) {
            respond_error(c, 500, "out of memory", 0);
            return;
        }
        render_text(&o, body);
        size_t len = evbuffer_get_length(body);
        respond(c, 200, "text/plain; charset=utf-8", (const char *)evbuffer_pullup(body, -1), len,
                keep);
        evbuffer_free(body);
    }
}

/* Looks at the next request head, if whole, and answers it. Returns 1 when
 * a request was answered, 0 when more input is needed. */
static int serve_one(judge_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (evbuffer_get_length(in) == 0)
        return 0;
    const char *buf;
    long found = http_head_find(in, JUDGE_MAX_HEAD, &c->scan, &buf);
    if (found < 0) {
        respond_error(c, 431, "request head too large", 0);
        return 1;
    }
    if (found == 0)
        return 0;
    size_t head = (size_t)found;

    static const http_limits limits = {JUDGE_MAX_HEAD, JUDGE_MAX_FIELDS, JUDGE_MAX_URI,
                                       JUDGE_MAX_HEAD};
    http_request req = {.fields = c->j->fields};
    http_framing framing;
    int status = 0;
    if (http_parse_request(buf, head, &limits, &req, &status) < 0) {
        respond_error(c, status, "malformed request", 0);
        return 1;
    }
    if ((status = http_request_framing(&req, &framing)) != 0) {
        respond_error(c, status, "malformed request framing", 0);
        return 1;
    }

    /* A body is never read: the connection closes after the answer. */
    int keep = req.version_minor == 1 && !c->eof &&
               (framing.kind == BODY_NONE || (framing.kind == BODY_LENGTH && framing.length == 0));
    for (size_t i = 0; keep && i < req.nfields; i++)
        if (http_name_is(&req.fields[i], "Connection") &&
            http_list_has(req.fields[i].value, req.fields[i].value_len, "close"))
            keep = 0;

    if (!http_token_eq(req.method, req.method_len, "GET", 3))
        respond_error(c, 405, "only GET is served here", keep);
    else
        answer(c, &req, keep);

    evbuffer_drain(in, head);
    c->scan = 0;
    set_timer(c, JUDGE_TIMEOUT_MS);
    return 1;
}

/* Answers whatever is complete, one request per flushed response, and ends
 * the connection when it has nothing more to do. */
static void conn_run(judge_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (!c->closing && evbuffer_get_length(out) == 0 && serve_one(c))
        ;
    if (c->closing)
        conn_close_after_flush(c);
    else if (evbuffer_get_length(out) > 0)
        return; /* write_cb comes back once it is flushed */
    else if (c->eof)
        conn_free(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_run(arg);
}

/* Called once the output has been flushed. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_run(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    judge_conn *c = arg;
    if (what & BEV_EVENT_EOF) {
        /* Half-closed: answer what has arrived, then close. */
        c->eof = 1;
        conn_run(c);
        return;
    }
    conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

/* A stop or a reload closes judge connections at once: a judge has no
 * exchange worth waiting for, its answers are written as they are made. */
static void conn_drain(worker_conn *link)
{
    judge_conn *c = (judge_conn *)link;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        conn_close_after_flush(c);
    else
        conn_free(c);
}

static void conn_destroy(worker_conn *link)
{
    conn_free((judge_conn *)link);
}

static void judge_accept(worker *w, void *state, const listen_config *l, int fd,
                         const struct sockaddr *sa, socklen_t len)
{
    (void)l;
    (void)len;
    judge_conn *c = calloc(1, sizeof *c);

    if (!c || ip_from_sockaddr(sa, &c->peer) < 0) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    c->j = state;
    c->link.drain = conn_drain;
    c->link.destroy = conn_destroy;
    worker_conn_add(w, &c->link);
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(w->base, timer_cb, c);
    if (!c->bev || !c->timer) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    struct timeval tv = ms_to_timeval(JUDGE_TIMEOUT_MS);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, JUDGE_MAX_HEAD + 1);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    set_timer(c, JUDGE_TIMEOUT_MS);
}

/* ---- the listener kind ------------------------------------------------- */

static int judge_worker_init(worker *w, void **state, char *err, size_t errlen)
{
    judge_worker *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "cannot set up worker %u: out of memory", w->id);
        return -1;
    }
    j->geo = w->cfg->geo;
    *state = j;
    return 0;
}

static void judge_worker_free(void *state)
{
    free(state);
}

static const char *const judge_keys[] = {NULL};

const listener_kind judge_kind = {
    "judge", judge_keys, judge_worker_init, NULL, judge_worker_free, judge_accept, http_refuse_busy,
};
