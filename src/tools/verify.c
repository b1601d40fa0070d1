/* verify.c - see verify.h.
 *
 * The client side is libcurl's easy interface: a command-line tool may
 * block, and libcurl already speaks every kind of proxy (HTTP, HTTPS, SOCKS5
 * with or without the proxy resolving the name, SOCKS4a), their credentials
 * and TLS. Each exchange is one easy handle, so one connection, with one
 * deadline (--timeout) for the whole of it. Only the request's headers are
 * ours: a browser's, in a browser's order, and none of curl's own.
 */
#include "tools/verify.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "tools/judge_cmd.h"

#define VERIFY_MAX_REPLY (4u << 20)  /* the body of one response */
#define VERIFY_MAX_CRED 255          /* a user or a password, as RFC 1929 allows */

/* What a current desktop browser sends after Host, in its order. Accept also
 * names application/json, which is what makes the judge answer in JSON. Each
 * replaces the header curl would send of its own (User-Agent, Accept), and
 * the empty Proxy-Connection keeps out the one curl adds for a proxy, so the
 * request carries these and nothing else. */
#define BROWSER_UA "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
static const char *const browser_headers[] = {
    "User-Agent: " BROWSER_UA,
    "Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: identity",
    "Connection: keep-alive",
    "Proxy-Connection:",
    NULL,
};
/* The CONNECT's, besides Host and the credentials curl adds: a browser
 * names itself there too. */
static const char *const connect_headers[] = {"User-Agent: " BROWSER_UA, "Proxy-Connection:",
                                              NULL};

static const char *const levels[] = {"transparent", "anonymous", "elite", NULL};

/* The proxy kinds, as the URL's scheme names them (libcurl reads the same
 * scheme from the URL). An HTTP(S) proxy is checked twice, with a plain
 * request and inside CONNECT; a SOCKS one only has its tunnel. */
typedef struct proxy_scheme {
    const char *name;
    const char *tunnel;      /* for SOCKS: the label of the one path; NULL for HTTP(S) */
} proxy_scheme;

static const proxy_scheme proxy_schemes[] = {
    {"http", NULL},
    {"https", NULL},
    {"socks5h", "GET through a SOCKS5 tunnel, the name resolved by the proxy"},
    {"socks5", "GET through a SOCKS5 tunnel"},
    {"socks4a", "GET through a SOCKS4a tunnel"},
};
#define PROXY_SCHEMES "http://, https://, socks5h://, socks5:// or socks4a://"

typedef struct url {
    char base[320];          /* scheme://host[:port], no credentials, no path */
    char host[280];          /* as in the URL, IPv6 in brackets */
    char authority[290];     /* host:port, for messages and CONNECT */
    char path[2048];         /* judge: path and query, at least "/" */
    char user[VERIFY_MAX_CRED + 1], password[VERIFY_MAX_CRED + 1]; /* decoded */
    int has_credentials;
    const proxy_scheme *scheme; /* proxy only */
} url;

typedef struct verifier {
    url judge;
    url proxy;
    const char *proxy_cacert;        /* --proxy-cacert, or NULL */
    const char *source;              /* --source, or NULL */
    char interface[128];             /* "host!IP" for CURLOPT_INTERFACE */
    long ip_resolve;                 /* CURL_IPRESOLVE_*, the family of --source */
    long timeout_ms;
    struct curl_slist *get_headers, *connect_headers;
    char err[512];                   /* why the last step failed */
} verifier;

/* One way of asking the judge. */
typedef struct check {
    const char *name, *label;
    int via_proxy;
    int connect;             /* inside CONNECT (CURLOPT_HTTPPROXYTUNNEL) */
    int tunnelled;           /* the judge's answer comes through a tunnel */
} check;

static const check direct_check = {"direct", NULL, 0, 0, 0};
static const check http_checks[] = {
    {"http", "absolute-form GET through the proxy", 1, 0, 0},
    {"connect", "GET inside a CONNECT tunnel", 1, 1, 1},
};
#define MAX_CHECKS 2

/* One response, as libcurl hands it over. */
typedef struct exchange {
    char *body;
    size_t len, cap;
    int too_big;
    char status[128];        /* the last status line, a CONNECT's too */
} exchange;

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

/* Parses "SCHEME://[user:pass@]host[:port][/path]" with libcurl's URL parser.
 * A proxy URL has one of proxy_schemes, a port and no path; a judge URL is
 * http://, without credentials, port 80 and path "/" by default. Errors say
 * what is wrong, without the password. */
static int url_parse(verifier *v, const char *text, int is_proxy, url *u)
{
    const char *what = is_proxy ? "proxy URL" : "judge URL";
    const char *sep = strstr(text, "://");
    char *user = NULL, *password = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = -1;

    memset(u, 0, sizeof *u);
    if (!sep)
        return fail(v, "%s '%s' must start with %s", what, text,
                    is_proxy ? PROXY_SCHEMES : "http://");
    size_t scheme_len = (size_t)(sep - text);
    for (size_t i = 0; is_proxy && i < sizeof proxy_schemes / sizeof *proxy_schemes; i++)
        if (strlen(proxy_schemes[i].name) == scheme_len &&
            strncasecmp(text, proxy_schemes[i].name, scheme_len) == 0)
            u->scheme = &proxy_schemes[i];
    if (is_proxy ? !u->scheme : scheme_len != 4 || strncasecmp(text, "http", 4) != 0)
        return fail(v, "%s: scheme '%.*s' is not supported (%s)", what, (int)scheme_len, text,
                    is_proxy ? PROXY_SCHEMES : "only http://");

    CURLU *h = curl_url();
    CURLUcode uc = h ? curl_url_set(h, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME)
                     : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK) {
        /* Absent parts stay NULL. */
        curl_url_get(h, CURLUPART_USER, &user, CURLU_URLDECODE);
        curl_url_get(h, CURLUPART_PASSWORD, &password, CURLU_URLDECODE);
        curl_url_get(h, CURLUPART_PORT, &port, 0);
        curl_url_get(h, CURLUPART_QUERY, &query, 0);
        if ((uc = curl_url_get(h, CURLUPART_HOST, &host, 0)) == CURLUE_OK)
            uc = curl_url_get(h, CURLUPART_PATH, &path, 0);
    }
    const char *scheme = is_proxy ? u->scheme->name : "http";
    if (uc != CURLUE_OK)
        fail(v, "%s: %s%s", what, uc == CURLUE_BAD_PORT_NUMBER ? "bad port: " : "",
             curl_url_strerror(uc));
    else if (user && !is_proxy)
        fail(v, "%s must not carry credentials", what);
    else if (user && !password)
        fail(v, "%s: credentials must be user:password (percent-encoded)", what);
    else if (user && (strlen(user) > VERIFY_MAX_CRED || strlen(password) > VERIFY_MAX_CRED))
        fail(v, "%s: a user or password longer than %d bytes", what, VERIFY_MAX_CRED);
    else if (is_proxy && !port)
        fail(v, "%s needs a port (%s://host:port)", what, scheme);
    else if (port && strcmp(port, "0") == 0)
        fail(v, "%s: bad port 0", what);
    else if (is_proxy && (strcmp(path, "/") != 0 || query))
        fail(v, "%s must not have a path", what);
    else if ((size_t)snprintf(u->host, sizeof u->host, "%s", host) >= sizeof u->host ||
             (size_t)snprintf(u->authority, sizeof u->authority, "%s:%s", host,
                              port ? port : "80") >= sizeof u->authority ||
             (size_t)snprintf(u->base, sizeof u->base, "%s://%s%s%s", scheme, host,
                              port ? ":" : "", port ? port : "") >= sizeof u->base ||
             (size_t)snprintf(u->path, sizeof u->path, "%s%s%s", path, query ? "?" : "",
                              query ? query : "") >= sizeof u->path)
        fail(v, "%s is too long", what);
    else
        rc = 0;
    if (rc == 0 && user) {
        snprintf(u->user, sizeof u->user, "%s", user);
        snprintf(u->password, sizeof u->password, "%s", password);
        u->has_credentials = 1;
    }
    curl_free(user);
    curl_free(password);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(h);
    return rc;
}

/* ---- one exchange ------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    exchange *x = arg;
    size_t len = size * count;
    if (len > VERIFY_MAX_REPLY - x->len) {
        x->too_big = 1;
        return 0;
    }
    if (len > x->cap - x->len) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap - x->len < len)
            cap *= 2;
        char *body = realloc(x->body, cap);
        if (!body)
            return 0; /* CURLE_WRITE_ERROR, not too_big: out of memory */
        x->body = body;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, len);
    x->len += len;
    return len;
}

/* Keeps the last status line: the final response's, or the refused CONNECT's. */
static size_t on_header(char *data, size_t size, size_t count, void *arg)
{
    exchange *x = arg;
    size_t len = size * count;
    if (len > 5 && memcmp(data, "HTTP/", 5) == 0) {
        while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
            len--;
        snprintf(x->status, sizeof x->status, "%.*s", (int)len, data);
    }
    return size * count;
}

/* The reason phrase of a status line, "" when it has none. */
static const char *reason_of(const char *status_line)
{
    const char *p = strchr(status_line, ' ');
    p = p ? strchr(p + 1, ' ') : NULL;
    return p ? p + 1 : "";
}

/* Says why a transfer failed, naming the peer the way the report does. */
static void explain(verifier *v, CURL *h, CURLcode rc, const check *c, const exchange *x,
                    const char *errbuf)
{
    const url *to = c->via_proxy ? &v->proxy : &v->judge;
    const char *peer = c->via_proxy ? "the proxy" : "the judge";
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long connect_code = 0, os_errno = 0, local_port = 0;

    curl_easy_getinfo(h, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    /* A local port once the TCP connection is up, before any handshake. */
    curl_easy_getinfo(h, CURLINFO_LOCAL_PORT, &local_port);
    if (c->connect && connect_code / 100 == 2)
        peer = "the proxy's tunnel";
    if (c->connect && connect_code != 0 && connect_code / 100 != 2) {
        fail(v, "the proxy refused CONNECT %s: %ld %s", v->judge.authority, connect_code,
             reason_of(x->status));
        return;
    }
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
        fail(v, "cannot resolve the proxy %s", v->proxy.host);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        fail(v, "cannot resolve the judge %s", v->judge.host);
        break;
    case CURLE_COULDNT_CONNECT:
        fail(v, "cannot connect to %s %s: %s", peer, to->authority,
             os_errno ? strerror((int)os_errno) : detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (local_port != 0)
            fail(v, "reading from %s: timed out", peer);
        else
            fail(v, "cannot connect to %s %s: timed out", peer, to->authority);
        break;
    case CURLE_INTERFACE_FAILED:
        fail(v, "cannot bind to --source %s: %s", v->source,
             os_errno ? strerror((int)os_errno) : detail);
        break;
    case CURLE_PROXY:
        fail(v, "SOCKS with the proxy %s failed: %s", v->proxy.authority, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        /* The judge is plain HTTP: TLS is only ever with an https:// proxy. */
        fail(v, "TLS with the proxy %s failed: %s", v->proxy.authority, detail);
        break;
    case CURLE_WRITE_ERROR:
        if (x->too_big)
            fail(v, "%s sent a response larger than %u bytes", peer, VERIFY_MAX_REPLY);
        else
            fail(v, "out of memory");
        break;
    case CURLE_GOT_NOTHING:
        fail(v, "%s closed the connection without a response", peer);
        break;
    case CURLE_RECV_ERROR:
        fail(v, "reading from %s: %s", peer, detail);
        break;
    case CURLE_SEND_ERROR:
        fail(v, "sending to %s: %s", peer, detail);
        break;
    default:
        fail(v, "%s: %s", peer, detail);
        break;
    }
}

/* Parses the judge's JSON answer. Returns it (caller decrefs), or NULL. */
static json_t *judgement(verifier *v, const char *from, long status, const char *reason,
                         const exchange *x)
{
    if (status != 200)
        return fail(v, "%s answered %ld %s instead of the judge's page", from, status, reason),
               NULL;
    json_t *j = json_loadb(x->body ? x->body : "", x->len, 0, NULL);
    const char *verdict = json_string_value(json_object_get(j, "verdict"));
    int known = 0;
    for (const char *const *lv = levels; verdict && *lv; lv++)
        known |= strcmp(verdict, *lv) == 0;
    if (!j || !json_is_string(json_object_get(j, "remote_ip")) || !known ||
        !json_is_array(json_object_get(j, "reasons"))) {
        json_decref(j);
        return fail(v, "the answer through %s is not an anonproxy judge's JSON", from), NULL;
    }
    return j;
}

/* GETs the judge's page the way c says, with real_ip (NULL: none) in the
 * query. Returns the judge's answer, or NULL with a message. */
static json_t *ask(verifier *v, const check *c, const char *real_ip)
{
    char target[sizeof v->judge.base + sizeof v->judge.path + 80];
    char errbuf[CURL_ERROR_SIZE] = "";
    const char *param = !real_ip ? "" : strchr(v->judge.path, '?') ? "&real_ip=" : "?real_ip=";
    exchange x = {0};
    json_t *j = NULL;
    CURLcode rc = CURLE_OK;

    snprintf(target, sizeof target, "%s%s%s%s", v->judge.base, v->judge.path, param,
             real_ip ? real_ip : "");
    CURL *h = curl_easy_init();
    if (!h)
        return fail(v, "cannot start libcurl"), NULL;
#define SET(option, value) \
    do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, option, value); } while (0)
    SET(CURLOPT_URL, target);
    SET(CURLOPT_PROTOCOLS_STR, "http");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_HTTPHEADER, v->get_headers);
    SET(CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, &x);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, v->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, v->timeout_ms);
    SET(CURLOPT_IPRESOLVE, v->ip_resolve);
    if (v->source)
        SET(CURLOPT_INTERFACE, v->interface);
    if (!c->via_proxy) {
        SET(CURLOPT_PROXY, ""); /* none, whatever the environment says */
    } else {
        SET(CURLOPT_PROXY, v->proxy.base);
        SET(CURLOPT_NOPROXY, ""); /* the proxy for every name, whatever NO_PROXY says */
        SET(CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_SOCKS5_AUTH, (long)CURLAUTH_BASIC);
        if (v->proxy.has_credentials) {
            SET(CURLOPT_PROXYUSERNAME, v->proxy.user);
            SET(CURLOPT_PROXYPASSWORD, v->proxy.password);
        }
        if (v->proxy_cacert)
            SET(CURLOPT_PROXY_CAINFO, v->proxy_cacert);
        if (c->connect) {
            SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
            SET(CURLOPT_PROXYHEADER, v->connect_headers);
        }
    }
#undef SET
    if (rc != CURLE_OK) {
        fail(v, "libcurl: %s", curl_easy_strerror(rc));
    } else if ((rc = curl_easy_perform(h)) != CURLE_OK) {
        explain(v, h, rc, c, &x, errbuf);
    } else {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        j = judgement(v, c->tunnelled ? "the proxy's tunnel" : c->via_proxy ? "the proxy"
                                                                              : "the judge",
                      status, reason_of(x.status), &x);
    }
    curl_easy_cleanup(h);
    free(x.body);
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

static void print_path(const check *c, const json_t *answer)
{
    const char *country = json_string_value(json_object_get(answer, "country"));
    size_t i;
    json_t *reason;

    printf("%s (%s): exit IP %s%s%s%s, verdict %s\n", c->name, c->label,
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
    snprintf(v->judge.host, sizeof v->judge.host, "127.0.0.1");
    snprintf(v->judge.authority, sizeof v->judge.authority, "127.0.0.1:%u", lj->j.port);
    snprintf(v->judge.base, sizeof v->judge.base, "http://127.0.0.1:%u", lj->j.port);
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
            "usage: anonproxy verify --proxy URL [--proxy-cacert FILE] [--judge URL]\n"
            "                        [--expect LEVEL] [--source IP] [--timeout SECONDS] [--json]\n"
            "  -p, --proxy URL      the proxy: SCHEME://[user:pass@]host:port, SCHEME one of\n"
            "                       http, https, socks5h, socks5 (the name resolved here),\n"
            "                       socks4a\n"
            "      --proxy-cacert FILE  the CA certificates (PEM) an https:// proxy's\n"
            "                       certificate must chain to; default: the system's\n"
            "  -j, --judge URL      an anonproxy judge, http://host[:port][/path]; default: one\n"
            "                       started in-process on 127.0.0.1 (the proxy must reach it)\n"
            "  -e, --expect LEVEL   transparent, anonymous or elite (default): the verdict\n"
            "                       every path must reach for exit status 0\n"
            "  -s, --source IP      local address to connect from (the real IP the judge sees)\n"
            "  -t, --timeout SECS   per exchange (default 10)\n"
            "      --json           print the results as JSON\n"
            "  -h, --help           show this help\n"
            "Paths: an http(s) proxy is checked with an absolute-form GET (http) and a GET\n"
            "inside CONNECT (connect), a SOCKS proxy with a GET through its tunnel (socks).\n"
            "Exit status: 0 every verdict meets --expect, 1 one does not, 2 error.\n");
}

/* Parses the options into v. Returns 0, -1 for --help, or the exit status for errors. */
static int parse_options(verifier *v, int argc, char **argv, const char **judge_url, int *expect,
                         int *json)
{
    enum { OPT_JSON = 256, OPT_PROXY_CACERT };
    static const struct option longopts[] = {
        {"proxy", required_argument, NULL, 'p'},
        {"proxy-cacert", required_argument, NULL, OPT_PROXY_CACERT},
        {"judge", required_argument, NULL, 'j'},
        {"expect", required_argument, NULL, 'e'},
        {"source", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *proxy_url = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "p:j:e:s:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': proxy_url = optarg; break;
        case 'j': *judge_url = optarg; break;
        case OPT_JSON: *json = 1; break;
        case OPT_PROXY_CACERT:
            if (access(optarg, R_OK) < 0)
                return fail(v, "--proxy-cacert %s: %s", optarg, strerror(errno)), 2;
            v->proxy_cacert = optarg;
            break;
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
            v->ip_resolve = res->ai_family == AF_INET6 ? CURL_IPRESOLVE_V6 : CURL_IPRESOLVE_V4;
            freeaddrinfo(res);
            v->source = optarg;
            /* "host!": an address, never taken for an interface's name. */
            snprintf(v->interface, sizeof v->interface, "host!%s", optarg);
            break;
        }
        case 't': {
            char *end;
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s > 0 && s <= 3600))
                return fail(v, "--timeout must be a number of seconds, 0 < s <= 3600"), 2;
            v->timeout_ms = (long)(s * 1000 + 0.5);
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
    if (v->proxy_cacert && strcmp(v->proxy.scheme->name, "https") != 0)
        return fail(v, "--proxy-cacert is for an https:// proxy"), 2;
    return 0;
}

/* Builds a curl header list from a NULL-terminated array. */
static struct curl_slist *header_list(const char *const *lines)
{
    struct curl_slist *list = NULL;
    for (; *lines; lines++) {
        struct curl_slist *longer = curl_slist_append(list, *lines);
        if (!longer) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = longer;
    }
    return list;
}

/* The --json report. Returns 0 or -1. */
static int print_json_report(const char *judge_text, int in_process, const char *real_ip,
                             int expect, const check *checks, json_t *const *paths, int n,
                             int ok)
{
    json_t *root = json_pack("{s:s, s:b, s:s, s:s, s:[], s:b}", "judge", judge_text,
                             "judge_in_process", in_process, "real_ip", real_ip, "expect",
                             levels[expect], "paths", "ok", ok);
    int rc = root ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        json_t *p = json_pack("{s:s, s:O, s:O?, s:O, s:O}", "path", checks[i].name, "exit_ip",
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

/* Runs the checks and reports. Returns the exit status. */
static int run(verifier *v, const char *judge_url, int expect, int json)
{
    json_t *direct = NULL, *paths[MAX_CHECKS] = {NULL};
    check socks_check = {"socks", v->proxy.scheme->tunnel, 1, 0, 1};
    const check *checks = v->proxy.scheme->tunnel ? &socks_check : http_checks;
    int n = v->proxy.scheme->tunnel ? 1 : 2;
    char judge_text[sizeof v->judge.base + sizeof v->judge.path];
    int rc = 2;

    snprintf(judge_text, sizeof judge_text, "%s%s", v->judge.base, v->judge.path);
    if (!json)
        printf("judge: %s%s\n", judge_text,
               judge_url ? "" : " (started in-process on 127.0.0.1: the proxy must reach it)");
    if (!(direct = ask(v, &direct_check, NULL)))
        goto out;
    const char *real_ip = json_string_value(json_object_get(direct, "remote_ip"));
    if (!json)
        printf("real IP: %s (as the judge sees this host directly)\n", real_ip);
    for (int i = 0; i < n; i++) {
        if (!(paths[i] = ask(v, &checks[i], real_ip)))
            goto out;
        if (!json)
            print_path(&checks[i], paths[i]);
    }

    int ok = 1, same_exit = 0;
    for (int i = 0; i < n; i++) {
        const char *exit_ip = json_string_value(json_object_get(paths[i], "remote_ip"));
        ok &= level_of(paths[i]) >= expect;
        same_exit |= strcmp(exit_ip, real_ip) == 0;
    }
    if (json) {
        if (print_json_report(judge_text, judge_url == NULL, real_ip, expect, checks, paths, n,
                              ok) < 0) {
            fail(v, "cannot write the JSON report");
            goto out;
        }
    } else {
        if (same_exit)
            printf("note: the exit IP equals the real IP, so the judge cannot tell the proxy "
                   "from this host (use --source with another local address)\n");
        printf("result: %s, expected at least %s", ok ? "OK" : "FAIL", levels[expect]);
        for (int i = 0; i < n; i++)
            if (level_of(paths[i]) < expect)
                printf("; %s is %s", checks[i].name, levels[level_of(paths[i])]);
        putchar('\n');
    }
    rc = ok ? 0 : 1;
out:
    json_decref(direct);
    for (int i = 0; i < n; i++)
        json_decref(paths[i]);
    return rc;
}

int verify_main(int argc, char **argv)
{
    verifier v = {.timeout_ms = 10000, .ip_resolve = CURL_IPRESOLVE_WHATEVER};
    local_judge lj = {0};
    const char *judge_url = NULL;
    int expect = 2, json = 0, rc;

    /* Before any thread starts: curl_global_init is not thread-safe. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "anonproxy verify: cannot initialise libcurl\n");
        return 2;
    }
    rc = parse_options(&v, argc, argv, &judge_url, &expect, &json);
    if (rc < 0) {
        curl_global_cleanup();
        return 0; /* --help */
    }
    if (rc == 0 && (!(v.get_headers = header_list(browser_headers)) ||
                    !(v.connect_headers = header_list(connect_headers)))) {
        fail(&v, "out of memory");
        rc = 2;
    }
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
    curl_slist_free_all(v.get_headers);
    curl_slist_free_all(v.connect_headers);
    curl_global_cleanup();
    return rc;
}
