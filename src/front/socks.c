/* socks.c - see socks.h.
 *
 * Ownership: a handshake owns its bufferevent and its deadline timer until
 * it ends in one of three ways: freed (the client left or stalled), its
 * connection handed to a closer (an error reply) or to an egress session
 * (CONNECT). Reading during the handshake is libevent's own: the messages
 * are a few hundred bytes, and the relay's fast reads start in the tunnel.
 */
#include "front/socks.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "egress/credentials.h"
#include "egress/route.h"
#include "egress/session.h"
#include "front/socks_addr.h"
#include "front/socks_udp.h"
#include "http/target.h"
#include "net/closer.h"
#include "net/worker.h"

/* The longest message of a handshake: a SOCKS4a request with a 255-byte
 * user id and a 255-byte name. Reading stops at this much input. */
#define SOCKS_MAX_MESSAGE (8 + 256 + 256)

/* SOCKS5 (RFC 1928 section 6) reply codes. */
enum {
    S5_OK = 0x00,
    S5_GENERAL_FAILURE = 0x01,
    S5_NOT_ALLOWED = 0x02,
    S5_NETWORK_UNREACHABLE = 0x03,
    S5_HOST_UNREACHABLE = 0x04,
    S5_CONNECTION_REFUSED = 0x05,
    S5_TTL_EXPIRED = 0x06,
    S5_COMMAND_NOT_SUPPORTED = 0x07,
    S5_ADDRESS_TYPE_NOT_SUPPORTED = 0x08,
};

/* SOCKS4 reply codes. */
enum { S4_GRANTED = 0x5a, S4_REJECTED = 0x5b };

enum { S5_NO_AUTH = 0x00, S5_USER_PASS = 0x02, S5_NO_METHOD = 0xff };

typedef enum socks_state {
    SS_GREETING,   /* waiting for the first message: a SOCKS5 greeting or a SOCKS4 request */
    SS_AUTH,       /* SOCKS5: waiting for the username/password sub-negotiation */
    SS_REQUEST,    /* SOCKS5: waiting for the request */
    SS_DONE,       /* final: the connection went to a session or a closer */
} socks_state;

static const char *const socks_state_names[] = {
    [SS_GREETING] = "greeting",
    [SS_AUTH] = "auth",
    [SS_REQUEST] = "request",
    [SS_DONE] = "done",
};

typedef struct socks_conn {
    worker_conn link;
    worker *w;
    const listen_config *listener;
    int accepts_v5;                 /* a "socks5" listener (SOCKS4 is detected on it too) */
    struct bufferevent *bev;
    struct event *timer;            /* the whole handshake's deadline */
    socks_state state;
    credentials cred;               /* present once the client gave a user name */
    char peer_ip[INET6_ADDRSTRLEN];
} socks_conn;

/* How a message reads so far: whole (its length), or not yet. */
enum { NEED_MORE = 0, MALFORMED = -1 };

static void set_state(socks_conn *c, socks_state next)
{
    log_debug("socks client %s: %s -> %s", c->peer_ip, socks_state_names[c->state],
              socks_state_names[next]);
    c->state = next;
}

static void conn_free(socks_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    worker_conn_remove(c->w, &c->link);
    free(c);
}

/* Takes the connection away for a session or a closer. */
static struct bufferevent *hand_over(socks_conn *c)
{
    struct bufferevent *bev = c->bev;
    set_state(c, SS_DONE);
    bufferevent_disable(bev, EV_READ);
    /* The handshake's read bound must not follow the connection into a
     * relay, and no callback of the handshake's may run once it is freed. */
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    c->bev = NULL;
    return bev;
}

/* Sends what the output holds (a final reply), then closes. */
static void close_after_reply(socks_conn *c)
{
    worker *w = c->w;
    struct bufferevent *bev = hand_over(c);
    /* The closer joins the worker first so a draining worker never sees zero. */
    closer_start(w, bev, w->cfg->timeouts.io_ms, CLOSER_LINGER_MS);
    conn_free(c);
}

static void reply5(struct evbuffer *out, unsigned char code)
{
    /* VER REP RSV ATYP=IPv4 BND.ADDR=0.0.0.0 BND.PORT=0 */
    const unsigned char r[10] = {5, code, 0, 1};
    evbuffer_add(out, r, sizeof r);
}

static void reply4(struct evbuffer *out, unsigned char code)
{
    const unsigned char r[8] = {0, code};
    evbuffer_add(out, r, sizeof r);
}

/* What an egress failure is called in SOCKS5 terms. */
static unsigned char socks5_code(proxy_error error)
{
    switch (error) {
    case PE_DESTINATION_IP_PROHIBITED:
    case PE_PROXY_LOOP_DETECTED: return S5_NOT_ALLOWED;
    case PE_DESTINATION_IP_UNROUTABLE: return S5_NETWORK_UNREACHABLE;
    case PE_DNS_ERROR: return S5_HOST_UNREACHABLE;
    case PE_CONNECTION_REFUSED: return S5_CONNECTION_REFUSED;
    case PE_DNS_TIMEOUT:
    case PE_CONNECTION_TIMEOUT: return S5_TTL_EXPIRED;
    default: return S5_GENERAL_FAILURE;
    }
}

static void socks5_established(struct evbuffer *out, const connect_result *res)
{
    (void)res;
    reply5(out, S5_OK);
}

static void socks5_failed(struct evbuffer *out, proxy_error error, const char *detail)
{
    (void)detail;
    reply5(out, socks5_code(error));
}

static void socks4_established(struct evbuffer *out, const connect_result *res)
{
    (void)res;
    reply4(out, S4_GRANTED);
}

static void socks4_failed(struct evbuffer *out, proxy_error error, const char *detail)
{
    (void)error;
    (void)detail;
    reply4(out, S4_REJECTED);
}

static const egress_replies socks5_replies = {socks5_established, socks5_failed};
static const egress_replies socks4_replies = {socks4_established, socks4_failed};

/* Answers with an error reply and closes. */
static void refuse(socks_conn *c, int v5, unsigned char code, const char *why)
{
    log_debug("socks client %s refused: %s", c->peer_ip, why);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (v5)
        reply5(out, code);
    else
        reply4(out, S4_REJECTED);
    close_after_reply(c);
}

/* The destination is known: the same checks as HTTP CONNECT, then an
 * egress session. host:port is text as target.h parses it, so a SOCKS
 * destination is held to the same rules (and lowercased) as a CONNECT one. */
static void start_connect(socks_conn *c, int v5, const char *authority)
{
    target t;
    route rt;

    if (target_parse_authority(authority, strlen(authority), &t) < 0) {
        refuse(c, v5, S5_GENERAL_FAILURE, "malformed destination");
        return;
    }
    if (!config_connect_port_allowed(c->w->cfg, t.port)) {
        refuse(c, v5, S5_NOT_ALLOWED, "CONNECT to this port is not allowed");
        return;
    }
    route_input in = {t.host, &c->cred, NULL, 0, c->listener};
    route_decide(c->w->cfg, &in, &rt);
    if (rt.action == ROUTE_BLOCK) {
        char why[300];
        snprintf(why, sizeof why, "blocked by route %s", rt.why);
        refuse(c, v5, S5_NOT_ALLOWED, why);
        return;
    }
    event_del(c->timer);
    egress_dest dest = {t.host, t.port, &rt, c->peer_ip};
    worker *w = c->w;
    /* The session joins the worker first so a draining worker never sees zero. */
    egress_tunnel(w, hand_over(c), &dest, v5 ? &socks5_replies : &socks4_replies);
    conn_free(c);
}

/* UDP ASSOCIATE: the association (socks_udp.h) takes the connection over,
 * or says which reply code refuses it. */
static void start_udp(socks_conn *c, const struct sockaddr *hint, socklen_t hint_len)
{
    struct bufferevent *bev = c->bev;
    event_del(c->timer);
    bufferevent_disable(bev, EV_READ);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    /* On success the association's callbacks replace the handshake's. */
    int code = socks_udp_start(c->w, bev, c->listener, &c->cred, hint, hint_len);
    if (code) {
        refuse(c, 1, (unsigned char)code, "UDP ASSOCIATE refused");
        return;
    }
    /* The association joined the worker first, so a draining worker never sees zero. */
    set_state(c, SS_DONE);
    c->bev = NULL;
    conn_free(c);
}

/* ---- SOCKS4 and SOCKS4a ------------------------------------------------ */

/* Length of the NUL-terminated string at m[from..len) including its NUL,
 * NEED_MORE, or MALFORMED when longer than 255 bytes. */
static long nul_string(const unsigned char *m, size_t len, size_t from)
{
    const unsigned char *nul = from < len ? memchr(m + from, 0, len - from) : NULL;
    if (nul)
        return (nul - (m + from)) <= 255 ? (long)(nul - (m + from)) + 1 : MALFORMED;
    return len - from > 255 ? MALFORMED : NEED_MORE;
}

/* VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL when DSTIP is 0.0.0.x,
 * x != 0]. Returns NEED_MORE, or MALFORMED once the connection has been
 * handed on (to a session or a closer). */
static long handle_socks4(socks_conn *c, const unsigned char *m, size_t len)
{
    if (len < 9)
        return NEED_MORE;
    long user = nul_string(m, len, 8);
    if (user == MALFORMED) {
        refuse(c, 0, 0, "SOCKS4 user id too long");
        return MALFORMED;
    }
    if (user == NEED_MORE)
        return NEED_MORE;
    int is_4a = m[4] == 0 && m[5] == 0 && m[6] == 0 && m[7] != 0;
    size_t host_at = 8 + (size_t)user;
    long host = is_4a ? nul_string(m, len, host_at) : 0;
    if (host == MALFORMED) {
        refuse(c, 0, 0, "SOCKS4a host name too long");
        return MALFORMED;
    }
    if (is_4a && host == NEED_MORE)
        return NEED_MORE;
    int command = m[1];
    if (user > 1)
        credentials_parse((const char *)m + 8, (size_t)user - 1, "", 0, &c->cred);
    unsigned port = (unsigned)m[2] << 8 | m[3];
    char authority[TARGET_MAX_HOST + 16] = "";
    if (!is_4a)
        snprintf(authority, sizeof authority, "%u.%u.%u.%u:%u", m[4], m[5], m[6], m[7], port);
    else if (host > 1)
        snprintf(authority, sizeof authority, "%.*s:%u", (int)host - 1, (const char *)m + host_at,
                 port);
    /* m points into the input, which the drain may free. */
    evbuffer_drain(bufferevent_get_input(c->bev), host_at + (size_t)host);

    if (command != 1) {
        refuse(c, 0, 0, "SOCKS4 command other than CONNECT");
        return MALFORMED;
    }
    if (!authority[0]) {
        refuse(c, 0, 0, "empty SOCKS4a host name");
        return MALFORMED;
    }
    start_connect(c, 0, authority);
    return MALFORMED;
}

/* ---- SOCKS5 ------------------------------------------------------------ */

/* VER=5 NMETHODS METHODS... : username/password when offered (the user
 * name carries the gateway options), else no authentication. */
static long handle_greeting(socks_conn *c, const unsigned char *m, size_t len)
{
    if (len < 2 || len < 2 + (size_t)m[1])
        return NEED_MORE;
    size_t n = 2 + (size_t)m[1];
    int no_auth = 0, user_pass = 0;
    for (size_t i = 2; i < n; i++) {
        no_auth |= m[i] == S5_NO_AUTH;
        user_pass |= m[i] == S5_USER_PASS;
    }
    unsigned char method = user_pass ? S5_USER_PASS : no_auth ? S5_NO_AUTH : S5_NO_METHOD;
    const unsigned char answer[2] = {5, method};
    evbuffer_add(bufferevent_get_output(c->bev), answer, sizeof answer);
    if (method == S5_NO_METHOD) {
        log_debug("socks client %s offered no usable method", c->peer_ip);
        close_after_reply(c);
        return MALFORMED;
    }
    set_state(c, method == S5_USER_PASS ? SS_AUTH : SS_REQUEST);
    return (long)n;
}

/* RFC 1929: VER=1 ULEN UNAME PLEN PASSWD. */
static long handle_auth(socks_conn *c, const unsigned char *m, size_t len)
{
    static const unsigned char ok[2] = {1, 0}, bad[2] = {1, 1};
    if (len >= 1 && m[0] != 1) {
        evbuffer_add(bufferevent_get_output(c->bev), bad, sizeof bad);
        log_debug("socks client %s: bad username/password version %u", c->peer_ip, m[0]);
        close_after_reply(c);
        return MALFORMED;
    }
    if (len < 2 || len < 3 + (size_t)m[1] || len < 3 + (size_t)m[1] + m[2 + m[1]])
        return NEED_MORE;
    size_t ulen = m[1], plen = m[2 + ulen];
    credentials_parse((const char *)m + 2, ulen, (const char *)m + 3 + ulen, plen, &c->cred);
    evbuffer_add(bufferevent_get_output(c->bev), ok, sizeof ok);
    set_state(c, SS_REQUEST);
    return (long)(3 + ulen + plen);
}

/* VER=5 CMD RSV ATYP DST.ADDR DST.PORT. Returns MALFORMED once the
 * connection has been handed on (to a session or a closer). */
static long handle_request(socks_conn *c, const unsigned char *m, size_t len)
{
    if (len < 5)
        return NEED_MORE;
    if (m[0] != 5) {
        refuse(c, 1, S5_GENERAL_FAILURE, "bad request version");
        return MALFORMED;
    }
    char authority[SOCKS_AUTHORITY_MAX];
    /* For UDP ASSOCIATE: the address the client says it will send from. */
    struct sockaddr_storage hint;
    socklen_t hint_len;
    long addr_len = socks_addr_read(m + 3, len - 3, authority, &hint, &hint_len);
    if (addr_len == SOCKS_ADDR_MORE)
        return NEED_MORE;
    if (addr_len == SOCKS_ADDR_BAD_TYPE) {
        refuse(c, 1, S5_ADDRESS_TYPE_NOT_SUPPORTED, "unknown address type");
        return MALFORMED;
    }
    if (addr_len == SOCKS_ADDR_BAD_NAME) {
        refuse(c, 1, S5_GENERAL_FAILURE, "malformed host name");
        return MALFORMED;
    }
    int command = m[1];
    /* m points into the input, which the drain may free. */
    evbuffer_drain(bufferevent_get_input(c->bev), 3 + (size_t)addr_len);
    if (command == 3) {
        start_udp(c, (const struct sockaddr *)&hint, hint_len);
        return MALFORMED;
    }
    if (command != 1) {
        refuse(c, 1, S5_COMMAND_NOT_SUPPORTED,
               command == 2 ? "BIND is not supported" : "unknown command");
        return MALFORMED;
    }
    start_connect(c, 1, authority);
    return MALFORMED;
}

/* Runs the handshake over what has arrived, one message after another. */
static void read_cb(struct bufferevent *bev, void *arg)
{
    socks_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        const unsigned char *m = evbuffer_pullup(in, (ev_ssize_t)len);
        long used;
        switch (c->state) {
        case SS_GREETING:
            if (m[0] == 4) {
                used = handle_socks4(c, m, len);
                break;
            }
            if (m[0] != 5 || !c->accepts_v5) {
                log_debug("socks client %s: not a SOCKS%s greeting", c->peer_ip,
                          c->accepts_v5 ? "4 or 5" : "4");
                conn_free(c);
                return;
            }
            used = handle_greeting(c, m, len);
            break;
        case SS_AUTH: used = handle_auth(c, m, len); break;
        case SS_REQUEST: used = handle_request(c, m, len); break;
        default: return;
        }
        if (used == MALFORMED)
            return;
        if (used == NEED_MORE) {
            /* Every message fits in SOCKS_MAX_MESSAGE, where reading stops. */
            if (len >= SOCKS_MAX_MESSAGE)
                conn_free(c);
            return;
        }
        evbuffer_drain(in, (size_t)used);
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg;
}

/* EOF, an error, or the handshake's deadline (on the timer): the client
 * will not finish; nothing is owed to it. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    socks_conn *c = arg;
    log_debug("socks client %s left during the %s", c->peer_ip, socks_state_names[c->state]);
    (void)what;
    conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    socks_conn *c = arg;
    log_debug("socks client %s: no whole handshake in time", c->peer_ip);
    conn_free(c);
}

/* A final stop ends handshakes at once; a reload lets them finish within
 * their deadline, since the next generation would reset a client that did
 * nothing wrong. */
static void conn_drain(worker_conn *link)
{
    socks_conn *c = (socks_conn *)link;
    if (c->w->stopping_for_good)
        conn_free(c);
}

static void conn_destroy(worker_conn *link)
{
    conn_free((socks_conn *)link);
}

static void socks_accept(worker *w, const listen_config *l, int fd, const struct sockaddr *peer,
                         int accepts_v5)
{
    socks_conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    c->listener = l;
    c->accepts_v5 = accepts_v5;
    sockaddr_ip_text(peer, c->peer_ip);
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
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval deadline = ms_to_timeval(w->cfg->timeouts.header_ms);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, SOCKS_MAX_MESSAGE);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    evtimer_add(c->timer, &deadline);
}

static void socks5_accept(worker *w, void *state, const listen_config *l, int fd,
                          const struct sockaddr *peer, socklen_t peer_len)
{
    (void)state;
    (void)peer_len;
    socks_accept(w, l, fd, peer, 1);
}

static void socks4_accept(worker *w, void *state, const listen_config *l, int fd,
                          const struct sockaddr *peer, socklen_t peer_len)
{
    (void)state;
    (void)peer_len;
    socks_accept(w, l, fd, peer, 0);
}

static const char *const socks_keys[] = {"country", "udp_address", NULL};

/* At limits.max_connections a SOCKS client is just closed: no reply fits
 * before its greeting. */
const listener_kind socks5_kind = {"socks5", socks_keys, NULL, NULL, NULL, socks5_accept, NULL};
const listener_kind socks4_kind = {"socks4", socks_keys, NULL, NULL, NULL, socks4_accept, NULL};
