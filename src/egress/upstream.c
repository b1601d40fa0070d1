/* upstream.c - see upstream.h. */
#include "egress/upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/geoip.h"
#include "net/tls.h"
#include "core/util.h"

static const struct {
    const char *scheme;
    hop_proto proto;
} schemes[] = {
    {"http", HOP_HTTP}, {"https", HOP_HTTPS}, {"socks5", HOP_SOCKS5}, {"socks5h", HOP_SOCKS5H},
    {"socks4a", HOP_SOCKS4A},
};

const char *upstream_proto_name(hop_proto p)
{
    for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
        if (schemes[i].proto == p)
            return schemes[i].scheme;
    return "?";
}

const char *upstream_country_source_name(country_source s)
{
    static const char *const names[] = {"unknown", "configured", "exit-ip", "host"};
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "unknown";
}

/* Decodes the %XX escapes of a URL's userinfo into a new string (owned by
 * the caller), or NULL when out of memory. */
static char *userinfo_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out)
        percent_decode(s, len, 0, out);
    return out;
}

/* Does "host[:port]" (host possibly a bracketed IPv6) give a port? */
static int has_port(const char *auth, size_t len)
{
    if (len > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', len);
        return close && close + 1 < auth + len && close[1] == ':';
    }
    return memchr(auth, ':', len) != NULL;
}

static char *basic_auth(const char *user, const char *pass)
{
    size_t ulen = strlen(user), plen = strlen(pass);
    size_t raw_len = ulen + 1 + plen;
    unsigned char *raw = malloc(raw_len + 1);
    char *out = malloc(6 + 4 * ((raw_len + 2) / 3) + 1);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    snprintf((char *)raw, raw_len + 1, "%s:%s", user, pass);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, (int)raw_len);
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    return out;
}

int upstream_parse_hop(const char *url, const char *ca_file, hop *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    const char *sep = strstr(url, "://");
    size_t i;
    for (i = 0; sep && i < ARRAY_LEN(schemes); i++)
        if (strlen(schemes[i].scheme) == (size_t)(sep - url) &&
            strncasecmp(url, schemes[i].scheme, (size_t)(sep - url)) == 0)
            break;
    if (!sep || i == ARRAY_LEN(schemes)) {
        snprintf(err, errlen, "\"%s\": unsupported proxy URL (expected http://, https://, socks5://, "
                              "socks5h:// or socks4a://)", url);
        return -1;
    }
    h->proto = schemes[i].proto;

    const char *auth = sep + 3;
    const char *end = auth + strcspn(auth, "/?#");
    if (*end && strcmp(end, "/") != 0) {
        snprintf(err, errlen, "\"%s\": a proxy URL has no path", url);
        return -1;
    }
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        const char *user_end = colon ? colon : at;
        h->user = userinfo_decode(auth, (size_t)(user_end - auth));
        h->pass = colon ? userinfo_decode(colon + 1, (size_t)(at - colon - 1)) : strdup("");
        if (!h->user || !h->pass)
            goto oom;
        if (h->proto == HOP_SOCKS5 || h->proto == HOP_SOCKS5H) {
            /* RFC 1929 fields are one length byte each. */
            if (strlen(h->user) > 255 || strlen(h->pass) > 255) {
                snprintf(err, errlen, "\"%s\": SOCKS5 user and password are at most 255 bytes", url);
                upstream_hop_free(h);
                return -1;
            }
        }
        auth = at + 1;
    }

    /* No default port: proxies listen anywhere, and a guess would fail late. */
    size_t auth_len = (size_t)(end - auth);
    target t;
    if (!has_port(auth, auth_len) || target_parse_authority(auth, auth_len, &t) < 0) {
        snprintf(err, errlen, "\"%s\": %s", url, has_port(auth, auth_len) ? "bad host or port"
                                                                          : "the port is missing");
        upstream_hop_free(h);
        return -1;
    }
    memcpy(h->host, t.host, sizeof h->host);
    h->port = t.port;

    if ((h->proto == HOP_HTTP || h->proto == HOP_HTTPS) && h->user &&
        !(h->proxy_auth = basic_auth(h->user, h->pass)))
        goto oom;
    if (h->proto == HOP_HTTPS && !(h->tls = tls_client_ctx_new(ca_file, err, errlen))) {
        upstream_hop_free(h);
        return -1;
    }
    return 0;
oom:
    upstream_hop_free(h);
    snprintf(err, errlen, "out of memory");
    return -1;
}

void upstream_hop_free(hop *h)
{
    if (h->pass)
        OPENSSL_cleanse(h->pass, strlen(h->pass));
    free(h->user);
    free(h->pass);
    free(h->proxy_auth);
    if (h->tls)
        tls_ctx_free(h->tls);
    memset(h, 0, sizeof *h);
}

unsigned upstream_pack_country(const char *cc)
{
    if (!cc || !cc[0] || !cc[1])
        return 0;
    return ((unsigned)(unsigned char)cc[0] << 8) | (unsigned char)cc[1];
}

void upstream_country(const upstream *u, char cc[3])
{
    unsigned packed = atomic_load(&((upstream *)u)->country);
    cc[0] = packed ? (char)(packed >> 8) : '\0';
    cc[1] = packed ? (char)(packed & 0xff) : '\0';
    cc[2] = '\0';
}

int upstream_init(upstream *u, const struct geoip *geo)
{
    char cc[3];
    atomic_init(&u->healthy, 1);
    atomic_init(&u->latency_ms, 0);
    atomic_init(&u->country, 0);
    atomic_init(&u->country_from, COUNTRY_UNKNOWN);
    if (pthread_mutex_init(&u->report_lock, NULL) != 0)
        return -1;
    if (u->weight == 0)
        u->weight = 1;
    if (u->configured_country[0]) {
        atomic_store(&u->country, upstream_pack_country(u->configured_country));
        atomic_store(&u->country_from, COUNTRY_CONFIGURED);
    } else if (geo && geoip_country_str(geo, u->hops[0].host, cc) == 1) {
        atomic_store(&u->country, upstream_pack_country(cc));
        atomic_store(&u->country_from, COUNTRY_HOST);
    }
    return 0;
}

void upstream_set_free(upstream_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        upstream *u = &s->items[i];
        for (size_t j = 0; j < u->nhops; j++)
            upstream_hop_free(&u->hops[j]);
        free(u->hops);
        free(u->name);
        pthread_mutex_destroy(&u->report_lock);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

void upstream_mark_down(upstream *u)
{
    atomic_store(&u->healthy, 0);
}

/* FNV-1a, for sticky keys and for mixing in an upstream's name. */
static uint64_t hash_mix(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int eligible(upstream *u, unsigned want, upstream *const *avoid, size_t navoid)
{
    if (!atomic_load(&u->healthy))
        return 0;
    if (want && atomic_load(&u->country) != want)
        return 0;
    for (size_t i = 0; i < navoid; i++)
        if (avoid[i] == u)
            return 0;
    return 1;
}

/* The eligible upstream at position `slot` of the weighted sequence. */
static upstream *nth_weighted(upstream_set *s, unsigned want, upstream *const *avoid, size_t navoid,
                              uint64_t slot)
{
    for (size_t i = 0; i < s->n; i++) {
        upstream *u = &s->items[i];
        if (!eligible(u, want, avoid, navoid))
            continue;
        if (slot < u->weight)
            return u;
        slot -= u->weight;
    }
    return NULL;
}

/* Higher is better. A session id always pins the exit, whatever the strategy. */
static uint64_t score(const upstream_set *s, size_t i, const char *session, const char *client)
{
    if (session || s->strategy == STRATEGY_STICKY)
        /* Rendezvous hashing: a session keeps its exit while that exit is
         * healthy, and only that exit's sessions move when it goes down.
         * Mixed with the exit's name, not its position, so that every
         * instance behind a balancer picks the same exit for a session
         * whatever order its list is in. */
        return hash_mix(session ? session : client ? client : "", hash_mix(s->items[i].name, 0));
    unsigned ms = atomic_load(&s->items[i].latency_ms);
    return UINT64_MAX - (ms ? ms : UINT32_MAX);
}

upstream *upstream_pick(upstream_set *s, const char *cc, const char *session, const char *client,
                        upstream *const *avoid, size_t navoid)
{
    unsigned want = upstream_pack_country(cc);
    uint64_t total_weight = 0, best_score = 0;
    upstream *best = NULL;

    for (size_t i = 0; i < s->n; i++) {
        upstream *u = &s->items[i];
        if (!eligible(u, want, avoid, navoid))
            continue;
        total_weight += u->weight;
        uint64_t sc = score(s, i, session, client);
        if (!best || sc > best_score) {
            best = u;
            best_score = sc;
        }
    }
    switch (session ? STRATEGY_STICKY : s->strategy) {
    case STRATEGY_ROUND_ROBIN:
        return total_weight ? nth_weighted(s, want, avoid, navoid,
                                           atomic_fetch_add(&s->next, 1) % total_weight) : NULL;
    case STRATEGY_RANDOM:
        return total_weight ? nth_weighted(s, want, avoid, navoid,
                                           (((uint64_t)random() << 31) ^ (uint64_t)random()) % total_weight)
                            : NULL;
    default:
        return best;
    }
}
