/* health.c - see health.h.
 *
 * A checker owns an event_base and an evdns_base of its own, so checks never
 * wait behind client traffic on the workers' loops nor slow it down. The
 * periodic checker (health_start) runs its loop in a thread; `anonproxy
 * upstreams` runs one round on the caller's thread (health_check_once).
 *
 * One check of an upstream is a probe's journey through three stages, each
 * the only one in flight: dial the first hop (dial.h), walk the chain
 * (chain.h), and with a judge, ask it through the whole chain and read its
 * JSON answer. One timer per probe bounds the whole journey by
 * health.timeout; the dial and the walk get what is left of it, so they can
 * report a precise reason when they are the slow part.
 *
 * Without a judge there is no destination to ask the exit for, so the chain
 * is walked with final_tunnel = 0 (the exit's own address stands in for the
 * destination, which is then never asked for): the first hop is connected,
 * every hop before the exit opens its tunnel to the next, TLS is made with
 * every HTTPS hop, the exit included, and the walk stops at the exit. What
 * only a request through the exit proves (its credentials, its way out) is
 * left to a judge. Latency is the time to reach the exit; with a judge, the
 * time to its whole answer.
 *
 * Rise and fall counters are private to the checker. Workers also mark an
 * upstream down on a failed connect (upstream_mark_down); the checker
 * notices at its next result and, from then on, the upstream must earn
 * health.rise successes again like any other down upstream.
 */
#include "egress/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egress/chain.h"
#include "http/chunked.h"
#include "net/dial.h"
#include "core/geoip.h"
#include "http/http_parser.h"
#include "core/log.h"
#include "core/util.h"
#include "http/target.h"

#define HEALTH_MAX_ANSWER 65536  /* the judge's whole answer, head and body */
#define HEALTH_MAX_FIELDS 100

typedef struct checker checker;

typedef struct probe {
    checker *c;
    upstream *u;
    unsigned successes, failures;  /* consecutive results, capped at rise / fall */
    int state;                     /* as last known here: -1 nothing decided yet, 0 down, 1 up */

    /* The check in flight. At most one of dial, walk and bev is set. */
    int busy;
    struct timeval started;        /* monotonic_now() */
    struct event *deadline;        /* (owned; kept from check to check) */
    dial *dial;
    chain_walk *walk;
    struct bufferevent *bev;       /* to the judge, through the chain */

    /* The judge's answer, read into one buffer: the body is decoded in
     * place, right after the head. */
    char *answer;                  /* HEALTH_MAX_ANSWER bytes (owned) */
    size_t len;                    /* bytes received */
    size_t scan;                   /* http_head_end's resume point */
    size_t head;                   /* head length; 0 until the head is parsed */
    http_framing framing;
    chunked_decoder chunks;
    size_t rd, wr;                 /* chunked: next framed byte, end of decoded body */
} probe;

struct checker {
    const config *cfg;
    struct event_base *base;
    struct evdns_base *dns;
    target judge;                  /* health.judge_url; form TARGET_OTHER when unset */
    unsigned rise, fall;
    probe *probes;                 /* parallel to cfg->upstreams->items (owned) */
    size_t running;                /* checks in flight */
    int once;                      /* the loop ends with the round */
};

struct health {
    checker c;
    pthread_t thread;
    int wake[2];                   /* health_stop closes wake[1]: EOF wakes the loop */
    struct event *wake_ev;
    struct event *round_ev;
};

/* ---- time -------------------------------------------------------------- */

/* Milliseconds since the check in flight started. */
static unsigned check_ms(const probe *p)
{
    struct timeval now;
    monotonic_now(&now);
    return (unsigned)elapsed_ms(&p->started, &now);
}

/* What is left of the check's timeout, at least 1 ms: the deadline timer,
 * not a zero timeout, is what ends an overdue check. */
static unsigned remaining_ms(const probe *p)
{
    unsigned timeout = p->c->cfg->health.timeout_ms, spent = check_ms(p);
    return spent < timeout ? timeout - spent : 1;
}

/* ---- results ----------------------------------------------------------- */

/* Applies one result to the rise/fall counters and the live state. why is
 * NULL on success. */
static void record(probe *p, const char *why, unsigned ms)
{
    const checker *c = p->c;
    upstream *u = p->u;

    /* Only the checker stores 0 with state 0: any other 0 is a worker's. */
    if (p->state != 0 && !atomic_load(&u->healthy)) {
        log_info("upstream %s is down: a connection through it failed", u->name);
        p->state = 0;
        p->successes = 0;
    }
    if (why) {
        p->successes = 0;
        if (p->failures < c->fall)
            p->failures++;
        if (p->failures < c->fall) {
            log_debug("upstream %s: check failed (%u of %u): %s", u->name, p->failures, c->fall, why);
            return;
        }
        atomic_store(&u->healthy, 0);
        if (p->state != 0)
            log_info("upstream %s is down: %s", u->name, why);
        p->state = 0;
        return;
    }

    p->failures = 0;
    if (p->successes < c->rise)
        p->successes++;
    if (ms == 0)
        ms = 1; /* 0 means "not measured" */
    atomic_store(&u->latency_ms, ms);
    /* Stored only on the way up, so a concurrent upstream_mark_down is never
     * overwritten by an upstream that is already up. */
    if (p->successes < c->rise || p->state == 1)
        return;
    atomic_store(&u->healthy, 1);
    p->state = 1;

    char exit_ip[sizeof u->exit_ip], cc[3], exit_text[sizeof exit_ip + 8] = "";
    pthread_mutex_lock(&u->report_lock);
    memcpy(exit_ip, u->exit_ip, sizeof exit_ip);
    pthread_mutex_unlock(&u->report_lock);
    if (exit_ip[0])
        snprintf(exit_text, sizeof exit_text, "exit %s, ", exit_ip);
    upstream_country(u, cc);
    log_info("upstream %s is up (%s%s, %u ms)", u->name, exit_text, cc[0] ? cc : "country unknown", ms);
}

/* Frees whatever the check in flight holds. */
static void probe_release(probe *p)
{
    if (p->dial)
        dial_cancel(p->dial);
    if (p->walk)
        chain_cancel(p->walk);
    if (p->bev)
        bufferevent_free(p->bev);
    free(p->answer);
    p->dial = NULL;
    p->walk = NULL;
    p->bev = NULL;
    p->answer = NULL;
    if (p->deadline)
        event_del(p->deadline);
}

static void check_end(probe *p, const char *why)
{
    checker *c = p->c;
    unsigned ms = check_ms(p);

    probe_release(p);
    p->busy = 0;
    record(p, why, ms);
    if (--c->running == 0 && c->once)
        event_base_loopbreak(c->base);
}

static void check_failed(probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check_failed(probe *p, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    check_end(p, why);
}

/* ---- the judge --------------------------------------------------------- */

static int is_ip(const char *s, size_t size)
{
    unsigned char a[sizeof(struct in6_addr)];
    return s && strlen(s) < size && (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1);
}

/* The verdict ends up in logs and on terminals: printable ASCII only. */
static int is_token(const char *s, size_t size)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    return n > 0 && n < size;
}

/* Reads the judge's JSON answer body and ends the check. */
static void judge_verdict(probe *p, size_t body_len)
{
    upstream *u = p->u;
    const config *cfg = p->c->cfg;
    json_error_t jerr;
    json_t *root = json_loadb(p->answer + p->head, body_len, 0, &jerr);
    /* Both are NULL-safe: a missing or mistyped member reads as NULL. */
    const char *ip = json_string_value(json_object_get(root, "remote_ip"));
    const char *verdict = json_string_value(json_object_get(root, "verdict"));
    const char *bad = !root                                             ? "is not JSON"
                      : !is_ip(ip, sizeof u->exit_ip)                   ? "has no valid remote_ip"
                      : verdict && !is_token(verdict, sizeof u->verdict) ? "has a malformed verdict"
                                                                        : NULL;
    if (!bad) {
        pthread_mutex_lock(&u->report_lock);
        snprintf(u->exit_ip, sizeof u->exit_ip, "%s", ip);
        snprintf(u->verdict, sizeof u->verdict, "%s", verdict ? verdict : "");
        pthread_mutex_unlock(&u->report_lock);
        char cc[3];
        if (!u->configured_country[0] && cfg->geo && geoip_country_str(cfg->geo, ip, cc) == 1) {
            atomic_store(&u->country, upstream_pack_country(cc));
            atomic_store(&u->country_from, COUNTRY_EXIT_IP);
        }
    }
    json_decref(root);
    if (bad)
        check_failed(p, "the judge's answer %s", bad);
    else
        check_end(p, NULL);
}

/* Takes in what has arrived of the answer. Returns 1 with *body_len when it
 * is whole, 0 while more is needed, -1 when the check has failed (and ended). */
static int answer_progress(probe *p, size_t *body_len)
{
    if (!p->head) {
        static const http_limits limits = {HEALTH_MAX_ANSWER, HEALTH_MAX_FIELDS, HEALTH_MAX_ANSWER,
                                           HEALTH_MAX_ANSWER};
        http_field fields[HEALTH_MAX_FIELDS];
        http_response resp = {.fields = fields};
        int status;
        size_t head = http_head_end(p->answer, p->len, &p->scan);

        if (!head)
            return 0;
        if (http_parse_response(p->answer, head, &limits, &resp, &status) < 0 ||
            http_response_framing(&resp, 0, &p->framing) != 0) {
            check_failed(p, "the judge's answer has a malformed head");
            return -1;
        }
        if (resp.status != 200) {
            check_failed(p, "the judge answered %d %.*s", resp.status,
                         (int)(resp.reason_len < 64 ? resp.reason_len : 64), resp.reason);
            return -1;
        }
        if (p->framing.kind == BODY_NONE ||
            (p->framing.kind == BODY_LENGTH && p->framing.length > HEALTH_MAX_ANSWER - head)) {
            check_failed(p, "the judge's answer has no body or one over %u bytes", HEALTH_MAX_ANSWER);
            return -1;
        }
        p->head = p->rd = p->wr = head;
        chunked_init(&p->chunks);
    }

    if (p->framing.kind == BODY_LENGTH && p->len - p->head >= p->framing.length) {
        *body_len = (size_t)p->framing.length;
        return 1;
    }
    if (p->framing.kind == BODY_CHUNKED) {
        chunked_result r = chunked_decode_in_place(&p->chunks, p->answer, p->len, &p->rd, &p->wr);
        if (r == CHUNKED_ERROR) {
            check_failed(p, "the judge's answer has a malformed chunked body");
            return -1;
        }
        if (r == CHUNKED_DONE) {
            *body_len = p->wr - p->head;
            return 1;
        }
    }
    return 0; /* BODY_CLOSE is whole only at EOF */
}

static void on_answer_read(struct bufferevent *bev, void *arg)
{
    probe *p = arg;
    int n = evbuffer_remove(bufferevent_get_input(bev), p->answer + p->len, HEALTH_MAX_ANSWER - p->len);
    size_t body_len;

    if (n > 0)
        p->len += (size_t)n;
    int r = answer_progress(p, &body_len);
    if (r > 0)
        judge_verdict(p, body_len);
    else if (r == 0 && p->len == HEALTH_MAX_ANSWER)
        check_failed(p, "the judge's answer is over %u bytes", HEALTH_MAX_ANSWER);
}

static void on_answer_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    probe *p = arg;
    if ((what & BEV_EVENT_EOF) && p->head && p->framing.kind == BODY_CLOSE)
        judge_verdict(p, p->len - p->head);
    else if (what & BEV_EVENT_EOF)
        check_failed(p, "the connection closed before the judge's answer was whole");
    else
        check_failed(p, "the connection failed while waiting for the judge's answer");
}

/* Can the last hop take an absolute-form request? Then the chain stops there. */
static int exit_is_http(const upstream *u)
{
    hop_proto proto = u->hops[u->nhops - 1].proto;
    return proto == HOP_HTTP || proto == HOP_HTTPS;
}

/* Sends the GET to the judge on p->bev. Returns 0, or -1 when out of memory. */
static int judge_ask(probe *p)
{
    const target *j = &p->c->judge;
    int absolute = exit_is_http(p->u);
    const char *auth = absolute ? p->u->hops[p->u->nhops - 1].proxy_auth : NULL;

    p->answer = malloc(HEALTH_MAX_ANSWER);
    p->len = p->scan = p->head = 0;
    if (!p->answer ||
        evbuffer_add_printf(bufferevent_get_output(p->bev),
                            "GET %s%.*s%s%.*s HTTP/1.1\r\n"
                            "Host: %.*s\r\n"
                            "Accept: application/json\r\n"
                            "User-Agent: anonproxy-health\r\n"
                            "Connection: close\r\n"
                            "%s%s%s"
                            "\r\n",
                            absolute ? "http://" : "", absolute ? (int)j->authority_len : 0,
                            j->authority, target_origin_prefix(j), (int)j->path_len, j->path,
                            (int)j->authority_len, j->authority, auth ? "Proxy-Authorization: " : "",
                            auth ? auth : "", auth ? "\r\n" : "") < 0)
        return -1;
    bufferevent_setcb(p->bev, on_answer_read, NULL, on_answer_event, p);
    return bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

/* ---- one check --------------------------------------------------------- */

static void on_walked(struct bufferevent *bev, chain_status status, proxy_error error,
                      const char *detail, void *arg)
{
    (void)error;
    probe *p = arg;
    p->walk = NULL;
    if (status != CHAIN_OK) {
        check_failed(p, "%s", detail);
        return;
    }
    p->bev = bev;
    if (p->c->judge.form != TARGET_HTTP)
        check_end(p, NULL);
    else if (judge_ask(p) < 0)
        check_failed(p, "out of memory");
}

static void on_dialled(struct bufferevent *bev, proxy_error error, const char *detail, void *arg)
{
    (void)error;
    probe *p = arg;
    const upstream *u = p->u;
    const checker *c = p->c;

    p->dial = NULL;
    if (!bev) {
        check_failed(p, "%s:%u: %s", u->hops[0].host, u->hops[0].port, detail);
        return;
    }
    const hop *exit = &u->hops[u->nhops - 1];
    int judged = c->judge.form == TARGET_HTTP;
    p->walk = chain_start(c->base, bev, u, judged ? c->judge.host : exit->host,
                          judged ? c->judge.port : exit->port, judged && !exit_is_http(u),
                          remaining_ms(p), on_walked, p);
    if (!p->walk)
        check_failed(p, "out of memory");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe *p = arg;
    check_failed(p, "no answer within %u ms", p->c->cfg->health.timeout_ms);
}

static void check_start(probe *p)
{
    checker *c = p->c;
    const hop *first = &p->u->hops[0];
    struct timeval timeout = ms_to_timeval(c->cfg->health.timeout_ms);

    p->busy = 1;
    c->running++;
    monotonic_now(&p->started);
    if (evtimer_add(p->deadline, &timeout) < 0 ||
        !(p->dial = dial_start(c->base, c->dns, c->cfg, first->host, first->port,
                               c->cfg->health.timeout_ms, 0, on_dialled, p)))
        check_failed(p, "out of memory");
}

/* Checks every upstream whose previous check is over (with a timeout longer
 * than the interval, a slow one may not be). */
static void checker_round(checker *c)
{
    for (size_t i = 0; i < c->cfg->upstreams->n; i++)
        if (!c->probes[i].busy)
            check_start(&c->probes[i]);
}

/* ---- checker set-up ---------------------------------------------------- */

/* Cancels the checks in flight and frees everything; fine on a checker
 * that checker_init left half-built. */
static void checker_fini(checker *c)
{
    for (size_t i = 0; c->probes && i < c->cfg->upstreams->n; i++) {
        probe_release(&c->probes[i]);
        if (c->probes[i].deadline)
            event_free(c->probes[i].deadline);
    }
    free(c->probes);
    if (c->dns)
        evdns_base_free(c->dns, 0);
    if (c->base)
        event_base_free(c->base);
}

/* A resolver from dns.resolv_conf and dns.hosts, with the workers' rules: a
 * missing system resolv.conf is not fatal (libevent then asks 127.0.0.1),
 * a configured file that cannot be used is. */
static int checker_init(checker *c, const config *cfg, unsigned rise, unsigned fall, char *err,
                        size_t errlen)
{
    const char *url = cfg->health.judge_url;

    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->rise = rise;
    c->fall = fall;
    c->judge.form = TARGET_OTHER;
    if (url && (target_parse_absolute(url, strlen(url), &c->judge) < 0 || c->judge.form != TARGET_HTTP)) {
        snprintf(err, errlen, "health.judge_url: '%s' is not an http://host[:port]/path URL", url);
        return -1;
    }

    struct event_config *ec = event_config_new();
    if (ec) {
        /* The base is used by one thread only. */
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        c->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    if (!c->base) {
        snprintf(err, errlen, "health checks: cannot create an event loop");
        return -1;
    }
    if (!(c->dns = dial_dns_new(c->base, cfg, err, errlen))) {
        checker_fini(c);
        return -1;
    }
    c->probes = calloc(cfg->upstreams->n, sizeof *c->probes);
    for (size_t i = 0; c->probes && i < cfg->upstreams->n; i++) {
        probe *p = &c->probes[i];
        p->c = c;
        p->u = &cfg->upstreams->items[i];
        p->state = -1;
        if (!(p->deadline = evtimer_new(c->base, on_deadline, p)))
            break;
    }
    if (cfg->upstreams->n && (!c->probes || !c->probes[cfg->upstreams->n - 1].deadline)) {
        snprintf(err, errlen, "health checks: out of memory");
        checker_fini(c);
        return -1;
    }
    return 0;
}

/* ---- the periodic checker ---------------------------------------------- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void on_round(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    health *h = arg;
    struct timeval interval = ms_to_timeval(h->c.cfg->health.interval_ms);
    checker_round(&h->c);
    if (evtimer_add(h->round_ev, &interval) < 0)
        log_error("health checks stopped: cannot schedule the next round");
}

static void *health_run(void *arg)
{
    health *h = arg;
    event_base_dispatch(h->c.base);
    return NULL;
}

/* Frees h once its thread is over (or was never started). */
static void health_free(health *h)
{
    if (h->wake_ev)
        event_free(h->wake_ev);
    if (h->round_ev)
        event_free(h->round_ev);
    checker_fini(&h->c);
    for (int i = 0; i < 2; i++)
        if (h->wake[i] >= 0)
            close(h->wake[i]);
    free(h);
}

health *health_start(const config *cfg, char *err, size_t errlen)
{
    if (cfg->upstreams->n == 0) {
        if (errlen)
            err[0] = '\0';
        return NULL;
    }
    health *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "health checks: out of memory");
        return NULL;
    }
    h->wake[0] = h->wake[1] = -1;
    if (checker_init(&h->c, cfg, cfg->health.rise, cfg->health.fall, err, errlen) < 0) {
        free(h);
        return NULL;
    }
    struct timeval now = {0, 0};
    if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(h->wake_ev = event_new(h->c.base, h->wake[0], EV_READ, on_wake, h->c.base)) ||
        !(h->round_ev = evtimer_new(h->c.base, on_round, h)) || event_add(h->wake_ev, NULL) < 0 ||
        evtimer_add(h->round_ev, &now) < 0) {
        snprintf(err, errlen, "health checks: cannot set up: %s", strerror(errno));
        health_free(h);
        return NULL;
    }

    /* Signals are the main thread's business, whoever starts the checker. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&h->thread, NULL, health_run, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "health checks: cannot start a thread: %s", strerror(rc));
        health_free(h);
        return NULL;
    }
    return h;
}

void health_stop(health *h)
{
    if (!h)
        return;
    close(h->wake[1]);
    h->wake[1] = -1;
    pthread_join(h->thread, NULL);
    health_free(h);
}

/* ---- one round --------------------------------------------------------- */

/* One round decides: rise and fall are for the periodic checker, which
 * has a history to smooth. */
int health_check_once(const config *cfg, char *err, size_t errlen)
{
    checker c;
    if (checker_init(&c, cfg, 1, 1, err, errlen) < 0)
        return -1;
    c.once = 1;
    checker_round(&c);
    /* Checks that failed at once have already ended: a loopbreak before the
     * loop runs is forgotten, so only run it for checks still in flight. */
    if (c.running > 0)
        event_base_dispatch(c.base);
    checker_fini(&c);
    return 0;
}
