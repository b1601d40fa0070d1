/* verify.c - see verify.h.
 *
 * A command-line tool, so plain blocking sockets: every exchange gets one
 * deadline (--timeout), re-applied as SO_RCVTIMEO/SO_SNDTIMEO before each
 * send and recv, so a peer that trickles bytes cannot stretch it. Responses
 * are delimited the way the proxy itself does (Content-Length, chunked or
 * close), since the requests ask for keep-alive like a browser's do.
 */
#include "tools/verify.h"

#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/chunked.h"
#include "http/http_parser.h"
#include "tools/judge_cmd.h"
#include "core/log.h"
#include "core/util.h"

#define VERIFY_MAX_HEAD 65536
#define VERIFY_MAX_FIELDS 200
#define VERIFY_MAX_REPLY (4u << 20)  /* head and body of one response */
#define VERIFY_REQUEST_MAX 8192

/* What a current desktop browser sends, in its order. Accept also names
 * application/json, which is what makes the judge answer in JSON. */
#define BROWSER_UA "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
#define BROWSER_HEADERS                                                          \
    "User-Agent: " BROWSER_UA "\r\n"                                             \
    "Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8\r\n" \
    "Accept-Language: en-US,en;q=0.5\r\n"                                        \
    "Accept-Encoding: identity\r\n"                                              \
    "Connection: keep-alive\r\n"

static const char *const levels[] = {"transparent", "anonymous", "elite", NULL};

typedef struct url {
    char host[256];          /* name or address, IPv6 without brackets */
    unsigned port;
    char authority[300];     /* host[:port] as sent in Host and CONNECT */
    char path[2048];         /* path and query, at least "/" */
    char userinfo[512];      /* "user:pass" percent-decoded; "" when absent */
} url;

typedef struct verifier {
    url judge;
    url proxy;
    char proxy_auth[1024];           /* "Proxy-Authorization: ...\r\n" or "" */
    struct sockaddr_storage source;  /* ss_family AF_UNSPEC: no --source */
    socklen_t source_len;
    unsigned timeout_ms;
    char err[512];                   /* why the last step failed */
} verifier;

/* One connection and the deadline of the exchange on it. */
typedef struct conn {
    int fd;
    const char *what;                /* "the judge", "the proxy": for messages */
    struct timeval deadline;         /* monotonic_now() */
} conn;

/* One response; body points into buf. */
typedef struct reply {
    char *buf;
    size_t len, cap;
    int status;
    char reason[64];
    const char *body;
    size_t body_len;
} reply;

static int fail(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records why a step failed. Always returns -1. */
static int fail(verifier *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err, sizeof v->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- URLs -------------------------------------------------------------- */

/* Parses "http://[user:pass@]host[:port][/path]". A proxy URL must give a
 * port and no path; a judge URL must not give credentials and defaults to
 * port 80 and path "/". Errors say what is wrong, without the password. */
static int url_parse(verifier *v, const char *text, int is_proxy, url *u)
{
    static const char scheme[] = "http://";
    const char *what = is_proxy ? "proxy URL" : "judge URL";

    memset(u, 0, sizeof *u);
    if (strncasecmp(text, scheme, sizeof scheme - 1) != 0) {
        const char *sep = strstr(text, "://");
        if (sep)
            return fail(v, "%s: scheme '%.*s' is not supported (only http://)", what,
                        (int)(sep - text), text);
        return fail(v, "%s '%s' must start with http://", what, text);
    }
    const char *auth = text + sizeof scheme - 1;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;

    /* userinfo: up to the last '@' of the authority. */
    const char *at = NULL;
    for (const char *p = auth; p < rest; p++)
        if (*p == '@')
            at = p;
    if (at) {
        size_t encoded = (size_t)(at - auth), plain;
        if (!is_proxy)
            return fail(v, "%s must not carry credentials", what);
        if (!memchr(auth, ':', encoded) || percent_check(auth, encoded, &plain) < 0 ||
            plain >= sizeof u->userinfo)
            return fail(v, "%s: credentials must be user:password (percent-encoded)", what);
        percent_decode(auth, encoded, 0, u->userinfo);
        auth_len -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }

    const char *host = auth, *host_end, *port = NULL;
    if (*host == '[') {
        host_end = memchr(auth, ']', auth_len);
        if (!host_end)
            return fail(v, "%s: unterminated [IPv6] address", what);
        host++;
        if (host_end + 1 < rest && host_end[1] != ':')
            return fail(v, "%s: unexpected text after ]", what);
        if (host_end + 1 < rest)
            port = host_end + 2;
    } else {
        host_end = memchr(auth, ':', auth_len);
        if (host_end)
            port = host_end + 1;
        else
            host_end = rest;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof u->host)
        return fail(v, "%s: missing or overlong host", what);
    memcpy(u->host, host, host_len);
    struct in6_addr a6;
    if (*auth == '[' && inet_pton(AF_INET6, u->host, &a6) != 1)
        return fail(v, "%s: '%s' is not an IPv6 address", what, u->host);

    u->port = 80;
    if (port) {
        char *end;
        unsigned long p = port < rest && *port >= '0' && *port <= '9' ? strtoul(port, &end, 10) : 0;
        if (p == 0 || p > 65535 || end != rest)
            return fail(v, "%s: bad port '%.*s'", what, (int)(rest - port), port);
        u->port = (unsigned)p;
    } else if (is_proxy) {
        return fail(v, "%s needs a port (http://host:port)", what);
    }
    snprintf(u->authority, sizeof u->authority, "%s%s%s", *auth == '[' ? "[" : "", u->host,
             *auth == '[' ? "]" : "");
    if (port) {
        size_t n = strlen(u->authority);
        snprintf(u->authority + n, sizeof u->authority - n, ":%u", u->port);
    }

    size_t path_len = strcspn(rest, "#");
    if (is_proxy && !(path_len == 0 || (path_len == 1 && *rest == '/')))
        return fail(v, "%s must not have a path", what);
    if (path_len + 2 > sizeof u->path)
        return fail(v, "%s: path too long", what);
    snprintf(u->path, sizeof u->path, "%s%.*s", *rest == '/' ? "" : "/", (int)path_len, rest);
    return 0;
}

/* ---- I/O with a deadline ----------------------------------------------- */

/* What is left of the exchange's deadline, 0 once it has passed. */
static unsigned long remaining_ms(const conn *l)
{
    struct timeval now;
    monotonic_now(&now);
    return elapsed_ms(&now, &l->deadline);
}

/* Applies what is left of the deadline to the socket. Returns 0, or -1 when
 * nothing is left. */
static int arm(verifier *v, const conn *l, const char *doing)
{
    unsigned long ms = remaining_ms(l);
    if (ms == 0)
        return fail(v, "%s %s: timed out", doing, l->what);
    struct timeval tv = ms_to_timeval((unsigned)ms);
    if (setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(l->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return fail(v, "%s %s: %s", doing, l->what, strerror(errno));
    return 0;
}

static const char *io_error(int e)
{
    /* A blocking socket reports its timeout as EAGAIN, or for connect() as
     * EINPROGRESS. */
    return e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS ? "timed out" : strerror(e);
}

/* Connects to host:port (from --source, if given). Starts the conn's
 * deadline. Returns 0, or -1 with a message. */
static int dial(verifier *v, conn *l, const url *to, const char *what)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    char port[8];
    struct timeval timeout = ms_to_timeval(v->timeout_ms);
    int rc, e = 0;

    l->fd = -1;
    l->what = what;
    monotonic_now(&l->deadline);
    timeradd(&l->deadline, &timeout, &l->deadline);

    hints.ai_family = v->source.ss_family;
    snprintf(port, sizeof port, "%u", to->port);
    if ((rc = getaddrinfo(to->host, port, &hints, &res)) != 0)
        return fail(v, "cannot resolve %s %s: %s", what, to->host, gai_strerror(rc));
    for (struct addrinfo *ai = res; ai && l->fd < 0; ai = ai->ai_next) {
        l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd < 0) {
            e = errno;
            continue;
        }
        if (v->source_len && bind(l->fd, (struct sockaddr *)&v->source, v->source_len) < 0) {
            char src[INET6_ADDRSTRLEN];
            getnameinfo((struct sockaddr *)&v->source, v->source_len, src, sizeof src, NULL, 0,
                        NI_NUMERICHOST);
            fail(v, "cannot bind to --source %s: %s", src, strerror(errno));
            close(l->fd);
            l->fd = -1;
            freeaddrinfo(res);
            return -1;
        }
        if (arm(v, l, "connecting to") < 0 || connect(l->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            e = errno;
            close(l->fd);
            l->fd = -1;
        }
    }
    freeaddrinfo(res);
    if (l->fd < 0)
        return fail(v, "cannot connect to %s %s: %s", what, to->authority, io_error(e));
    return 0;
}

static int send_all(verifier *v, const conn *l, const char *buf, size_t len)
{
    while (len > 0) {
        if (arm(v, l, "sending to") < 0)
            return -1;
        ssize_t n = send(l->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(v, "sending to %s: %s", l->what, io_error(errno));
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Receives more bytes into r. Returns how many, 0 at EOF, -1 on error. */
static ssize_t fill(verifier *v, const conn *l, reply *r)
{
    if (r->len == r->cap) {
        if (r->cap >= VERIFY_MAX_REPLY)
            return fail(v, "%s sent a response larger than %u bytes", l->what, VERIFY_MAX_REPLY);
        size_t cap = r->cap ? 2 * r->cap : 16384;
        char *buf = realloc(r->buf, cap);
        if (!buf)
            return fail(v, "out of memory");
        r->buf = buf;
        r->cap = cap;
    }
    for (;;) {
        if (arm(v, l, "reading from") < 0)
            return -1;
        ssize_t n = recv(l->fd, r->buf + r->len, r->cap - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(v, "reading from %s: %s", l->what, io_error(errno));
        r->len += (size_t)n;
        return n;
    }
}

/* Reads until r holds at least `want` bytes. Returns 0 or -1. */
static int fill_to(verifier *v, const conn *l, reply *r, size_t want)
{
    while (r->len < want) {
        ssize_t n = fill(v, l, r);
        if (n < 0)
            return -1;
        if (n == 0)
            return fail(v, "%s closed the connection in the middle of a response", l->what);
    }
    return 0;
}

/* Reads the chunked body that starts at r->buf[start] and decodes it in place. */
static int read_chunked(verifier *v, const conn *l, reply *r, size_t start)
{
    chunked_decoder d;
    size_t rd = start, wr = start;

    chunked_init(&d);
    for (;;) {
        chunked_result cr = chunked_decode_in_place(&d, r->buf, r->len, &rd, &wr);
        if (cr == CHUNKED_ERROR)
            return fail(v, "%s sent a malformed chunked body", l->what);
        if (cr == CHUNKED_DONE)
            break;
        if (fill_to(v, l, r, r->len + 1) < 0)
            return -1;
    }
    r->body_len = wr - start;
    return 0;
}

/* Reads one final response (interim 1xx are skipped). For the answer to a
 * CONNECT, a 2xx head ends the response: the tunnel starts after it. */
static int read_reply(verifier *v, const conn *l, reply *r, int to_connect)
{
    static const http_limits limits = {VERIFY_MAX_HEAD, VERIFY_MAX_FIELDS, VERIFY_MAX_HEAD,
                                       VERIFY_MAX_HEAD};
    http_field fields[VERIFY_MAX_FIELDS];
    http_response resp = {.fields = fields};
    http_framing framing;
    size_t scan = 0, head;
    int status;

    for (;;) {
        while ((head = r->len ? http_head_end(r->buf, r->len, &scan) : 0) == 0) {
            if (r->len >= VERIFY_MAX_HEAD)
                return fail(v, "%s sent an overlong response head", l->what);
            if (fill_to(v, l, r, r->len + 1) < 0)
                return -1;
        }
        if (http_parse_response(r->buf, head, &limits, &resp, &status) < 0)
            return fail(v, "%s sent a malformed response head", l->what);
        if (resp.status >= 200)
            break;
        memmove(r->buf, r->buf + head, r->len - head);
        r->len -= head;
        scan = 0;
    }
    r->status = resp.status;
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)resp.reason_len, resp.reason);
    r->body = r->buf + head;
    r->body_len = 0;
    if (to_connect && resp.status < 300) {
        if (r->len > head)
            return fail(v, "%s sent data before the tunnel was used", l->what);
        return 0;
    }
    if (http_response_framing(&resp, 0, &framing) != 0)
        return fail(v, "%s sent a response with unusable framing", l->what);

    switch (framing.kind) {
    case BODY_NONE:
        break;
    case BODY_LENGTH:
        if (framing.length > VERIFY_MAX_REPLY - head)
            return fail(v, "%s announced a body larger than %u bytes", l->what, VERIFY_MAX_REPLY);
        if (fill_to(v, l, r, head + (size_t)framing.length) < 0)
            return -1;
        r->body_len = (size_t)framing.length;
        break;
    case BODY_CHUNKED:
        if (read_chunked(v, l, r, head) < 0)
            return -1;
        break;
    case BODY_CLOSE:
        for (ssize_t n; (n = fill(v, l, r)) != 0;)
            if (n < 0)
                return -1;
        r->body_len = r->len - head;
        break;
    }
    r->body = r->buf + head; /* buf may have moved */
    return 0;
}

/* ---- the checks -------------------------------------------------------- */

/* A GET for the judge's page with a browser's headers. target_prefix is ""
 * for origin-form or "http://authority" for absolute-form; real_ip may be
 * NULL. Returns the request length, or -1. */
static int build_get(verifier *v, char *buf, size_t size, const char *target_prefix,
                     const char *real_ip, const char *extra)
{
    const char *path = v->judge.path;
    const char *param = !real_ip ? "" : strchr(path, '?') ? "&real_ip=" : "?real_ip=";
    int n = snprintf(buf, size,
                     "GET %s%s%s%s HTTP/1.1\r\n"
                     "Host: %s\r\n" BROWSER_HEADERS "%s\r\n",
                     target_prefix, path, param, real_ip ? real_ip : "", v->judge.authority, extra);
    if (n < 0 || (size_t)n >= size)
        return fail(v, "request too long");
    return n;
}

/* Parses the judge's JSON answer. Returns it (caller decrefs), or NULL. */
static json_t *judgement(verifier *v, const conn *l, const reply *r)
{
    if (r->status != 200)
        return fail(v, "%s answered %d %s instead of the judge's page", l->what, r->status,
                    r->reason), NULL;
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    const char *verdict = json_string_value(json_object_get(j, "verdict"));
    int known = 0;
    for (const char *const *lv = levels; verdict && *lv; lv++)
        known |= strcmp(verdict, *lv) == 0;
    if (!j || !json_is_string(json_object_get(j, "remote_ip")) || !known ||
        !json_is_array(json_object_get(j, "reasons"))) {
        json_decref(j);
        return fail(v, "the answer through %s is not an anonproxy judge's JSON", l->what), NULL;
    }
    return j;
}

/* Sends a request on l and reads the judge's answer. */
static json_t *ask(verifier *v, const conn *l, const char *req, size_t len)
{
    reply r = {0};
    json_t *j = NULL;
    if (send_all(v, l, req, len) == 0 && read_reply(v, l, &r, 0) == 0)
        j = judgement(v, l, &r);
    free(r.buf);
    return j;
}

/* Step 1: the judge, directly. */
static json_t *check_direct(verifier *v)
{
    char req[VERIFY_REQUEST_MAX];
    conn l;
    json_t *j = NULL;
    int n = build_get(v, req, sizeof req, "", NULL, "");
    if (n >= 0 && dial(v, &l, &v->judge, "the judge") == 0) {
        j = ask(v, &l, req, (size_t)n);
        close(l.fd);
    }
    return j;
}

/* Step 2: a plain request through the proxy, target in absolute-form. */
static json_t *check_http(verifier *v, const char *real_ip)
{
    char req[VERIFY_REQUEST_MAX], prefix[320];
    conn l;
    json_t *j = NULL;
    snprintf(prefix, sizeof prefix, "http://%s", v->judge.authority);
    int n = build_get(v, req, sizeof req, prefix, real_ip, v->proxy_auth);
    if (n >= 0 && dial(v, &l, &v->proxy, "the proxy") == 0) {
        j = ask(v, &l, req, (size_t)n);
        close(l.fd);
    }
    return j;
}

/* Step 3: the same request in origin-form, inside a CONNECT tunnel. */
static json_t *check_connect(verifier *v, const char *real_ip)
{
    char connect_req[VERIFY_REQUEST_MAX], req[VERIFY_REQUEST_MAX];
    conn l;
    reply r = {0};
    json_t *j = NULL;
    int cn = snprintf(connect_req, sizeof connect_req,
                      "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " BROWSER_UA "\r\n%s\r\n",
                      v->judge.authority, v->judge.authority, v->proxy_auth);
    int n = build_get(v, req, sizeof req, "", real_ip, "");
    if (cn < 0 || (size_t)cn >= sizeof connect_req)
        return fail(v, "request too long"), NULL;
    if (n < 0 || dial(v, &l, &v->proxy, "the proxy") < 0)
        return NULL;
    if (send_all(v, &l, connect_req, (size_t)cn) == 0 && read_reply(v, &l, &r, 1) == 0) {
        if (r.status / 100 != 2) {
            fail(v, "the proxy refused CONNECT %s: %d %s", v->judge.authority, r.status, r.reason);
        } else {
            l.what = "the proxy's tunnel";
            j = ask(v, &l, req, (size_t)n);
        }
    }
    free(r.buf);
    close(l.fd);
    return j;
}

static int level_of(const json_t *answer)
{
    const char *verdict = json_string_value(json_object_get(answer, "verdict"));
    for (int i = 0; levels[i]; i++)
        if (strcmp(verdict, levels[i]) == 0)
            return i;
    return -1; /* judgement() accepted only known verdicts */
}

static void print_path(const char *name, const char *label, const json_t *answer)
{
    const char *country = json_string_value(json_object_get(answer, "country"));
    size_t i;
    json_t *reason;

    printf("%s (%s): exit IP %s%s%s%s, verdict %s\n", name, label,
           json_string_value(json_object_get(answer, "remote_ip")), country ? " (" : "",
           country ? country : "", country ? ")" : "",
           json_string_value(json_object_get(answer, "verdict")));
    json_array_foreach(json_object_get(answer, "reasons"), i, reason) {
        const char *header = json_string_value(json_object_get(reason, "header"));
        const char *value = json_string_value(json_object_get(reason, "value"));
        const char *why = json_string_value(json_object_get(reason, "why"));
        if (header)
            printf("  leak: %s: %s (%s)\n", header, value ? value : "", why ? why : "");
        else
            printf("  leak: remote address %s (%s)\n", value ? value : "", why ? why : "");
    }
}

/* ---- the in-process judge ---------------------------------------------- */

typedef struct local_judge {
    judge_instance j;
    int running;
} local_judge;

/* Starts a judge on 127.0.0.1, an ephemeral port, in its own thread, and
 * points v->judge at it. */
static int local_judge_start(verifier *v, local_judge *lj)
{
    if (judge_instance_start(&lj->j, "127.0.0.1:0", NULL, v->err, sizeof v->err) < 0)
        return -1;
    lj->running = 1;

    memset(&v->judge, 0, sizeof v->judge);
    v->judge.port = lj->j.port;
    snprintf(v->judge.host, sizeof v->judge.host, "127.0.0.1");
    snprintf(v->judge.authority, sizeof v->judge.authority, "127.0.0.1:%u", v->judge.port);
    snprintf(v->judge.path, sizeof v->judge.path, "/");
    return 0;
}

static void local_judge_stop(local_judge *lj)
{
    if (lj->running)
        judge_instance_stop(&lj->j);
}

/* ---- the command ------------------------------------------------------- */

static void verify_usage(FILE *out)
{
    fprintf(out,
            "usage: anonproxy verify --proxy URL [--judge URL] [--expect LEVEL] [--source IP]\n"
            "                        [--timeout SECONDS] [--json]\n"
            "  -p, --proxy URL      the proxy: http://[user:pass@]host:port\n"
            "  -j, --judge URL      an anonproxy judge, http://host[:port][/path]; default: one\n"
            "                       started in-process on 127.0.0.1 (the proxy must reach it)\n"
            "  -e, --expect LEVEL   transparent, anonymous or elite (default): the verdict\n"
            "                       every path must reach for exit status 0\n"
            "  -s, --source IP      local address to connect from (the real IP the judge sees)\n"
            "  -t, --timeout SECS   per exchange (default 10)\n"
            "      --json           print the results as JSON\n"
            "  -h, --help           show this help\n"
            "Exit status: 0 every verdict meets --expect, 1 one does not, 2 error.\n");
}

/* Parses the options into v. Returns 0, or the exit status for errors. */
static int parse_options(verifier *v, int argc, char **argv, const char **judge_url, int *expect,
                         int *json)
{
    static const struct option longopts[] = {
        {"proxy", required_argument, NULL, 'p'},  {"judge", required_argument, NULL, 'j'},
        {"expect", required_argument, NULL, 'e'}, {"source", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *proxy_url = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "p:j:e:s:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': proxy_url = optarg; break;
        case 'j': *judge_url = optarg; break;
        case 'J': *json = 1; break;
        case 'h': verify_usage(stdout); return -1;
        case 'e':
            *expect = -1;
            for (int i = 0; levels[i]; i++)
                if (strcmp(optarg, levels[i]) == 0)
                    *expect = i;
            if (*expect < 0)
                return fail(v, "--expect must be transparent, anonymous or elite"), 2;
            break;
        case 's': {
            struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                                     .ai_socktype = SOCK_STREAM},
                            *res;
            if (getaddrinfo(optarg, NULL, &hints, &res) != 0)
                return fail(v, "--source %s is not an IP address", optarg), 2;
            memcpy(&v->source, res->ai_addr, res->ai_addrlen);
            v->source_len = res->ai_addrlen;
            freeaddrinfo(res);
            break;
        }
        case 't': {
            char *end;
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s > 0 && s <= 3600))
                return fail(v, "--timeout must be a number of seconds, 0 < s <= 3600"), 2;
            v->timeout_ms = (unsigned)(s * 1000 + 0.5);
            break;
        }
        default: verify_usage(stderr); return fail(v, "bad arguments"), 2;
        }
    }
    if (optind < argc)
        return fail(v, "unexpected argument '%s'", argv[optind]), 2;
    if (!proxy_url)
        return fail(v, "--proxy is required"), 2;
    if (url_parse(v, proxy_url, 1, &v->proxy) < 0 ||
        (*judge_url && url_parse(v, *judge_url, 0, &v->judge) < 0))
        return 2;

    if (v->proxy.userinfo[0]) {
        unsigned char b64[sizeof v->proxy.userinfo * 4 / 3 + 4];
        EVP_EncodeBlock(b64, (const unsigned char *)v->proxy.userinfo,
                        (int)strlen(v->proxy.userinfo));
        snprintf(v->proxy_auth, sizeof v->proxy_auth, "Proxy-Authorization: Basic %s\r\n", b64);
    }
    return 0;
}

static const char *const path_names[2] = {"http", "connect"};

/* The --json report. Returns 0 or -1. */
static int print_json_report(const char *judge_text, int in_process, const char *real_ip,
                             int expect, json_t *const paths[2], int ok)
{
    json_t *root = json_pack("{s:s, s:b, s:s, s:s, s:[], s:b}", "judge", judge_text,
                             "judge_in_process", in_process, "real_ip", real_ip, "expect",
                             levels[expect], "paths", "ok", ok);
    int rc = root ? 0 : -1;
    for (int i = 0; rc == 0 && i < 2; i++) {
        json_t *p = json_pack("{s:s, s:O, s:O?, s:O, s:O}", "path", path_names[i], "exit_ip",
                              json_object_get(paths[i], "remote_ip"), "country",
                              json_object_get(paths[i], "country"), "verdict",
                              json_object_get(paths[i], "verdict"), "leaks",
                              json_object_get(paths[i], "reasons"));
        rc = p ? json_array_append_new(json_object_get(root, "paths"), p) : -1;
    }
    if (rc == 0)
        rc = json_dumpf(root, stdout, JSON_INDENT(2));
    if (rc == 0)
        putchar('\n');
    json_decref(root);
    return rc;
}

/* Runs the three checks and reports. Returns the exit status. */
static int run(verifier *v, const char *judge_url, int expect, int json)
{
    json_t *direct = NULL, *paths[2] = {NULL, NULL};
    static const char *const labels[2] = {"absolute-form GET through the proxy",
                                          "GET inside a CONNECT tunnel"};
    char judge_text[2400];
    int rc = 2;

    snprintf(judge_text, sizeof judge_text, "http://%s%s", v->judge.authority, v->judge.path);
    if (!json)
        printf("judge: %s%s\n", judge_text,
               judge_url ? "" : " (started in-process on 127.0.0.1: the proxy must reach it)");
    if (!(direct = check_direct(v)))
        goto out;
    const char *real_ip = json_string_value(json_object_get(direct, "remote_ip"));
    if (!json)
        printf("real IP: %s (as the judge sees this host directly)\n", real_ip);
    for (int i = 0; i < 2; i++) {
        paths[i] = i == 0 ? check_http(v, real_ip) : check_connect(v, real_ip);
        if (!paths[i])
            goto out;
        if (!json)
            print_path(path_names[i], labels[i], paths[i]);
    }

    int ok = level_of(paths[0]) >= expect && level_of(paths[1]) >= expect;
    int same_exit = 0;
    for (int i = 0; i < 2; i++) {
        const char *exit_ip = json_string_value(json_object_get(paths[i], "remote_ip"));
        same_exit |= strcmp(exit_ip, real_ip) == 0;
    }
    if (json) {
        if (print_json_report(judge_text, judge_url == NULL, real_ip, expect, paths, ok) < 0) {
            fail(v, "cannot write the JSON report");
            goto out;
        }
    } else {
        if (same_exit)
            printf("note: the exit IP equals the real IP, so the judge cannot tell the proxy "
                   "from this host (use --source with another local address)\n");
        printf("result: %s, expected at least %s", ok ? "OK" : "FAIL", levels[expect]);
        for (int i = 0; i < 2; i++)
            if (level_of(paths[i]) < expect)
                printf("; %s is %s", path_names[i], levels[level_of(paths[i])]);
        putchar('\n');
    }
    rc = ok ? 0 : 1;
out:
    json_decref(direct);
    json_decref(paths[0]);
    json_decref(paths[1]);
    return rc;
}

int verify_main(int argc, char **argv)
{
    verifier v = {.timeout_ms = 10000};
    local_judge lj = {0};
    const char *judge_url = NULL;
    int expect = 2, json = 0;

    v.source.ss_family = AF_UNSPEC;
    int rc = parse_options(&v, argc, argv, &judge_url, &expect, &json);
    if (rc < 0)
        return 0; /* --help */
    /* The in-process judge's own log lines would clutter the report. */
    log_set_level(LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (rc == 0 && !judge_url && local_judge_start(&v, &lj) < 0)
        rc = 2;
    if (rc == 0)
        rc = run(&v, judge_url, expect, json);
    if (rc == 2)
        fprintf(stderr, "anonproxy verify: %s\n", v.err);
    fflush(stdout);
    local_judge_stop(&lj);
    return rc;
}
