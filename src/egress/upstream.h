/* upstream.h - upstream proxies (exits), their countries, health and selection.
 *
 * An upstream is one proxy URL or a chain of them ("hops"); the last hop is
 * the exit the origin sees. Upstreams are grouped by the country of their
 * exit, taken in this order: the configured override, the GeoIP country of
 * the exit IP a judge measured through it (health checks), the GeoIP country
 * of the first hop's address.
 *
 * Threads: the set is built once with the config and never resized. Workers
 * read the live state (health, latency, country) and mark upstreams down;
 * the health thread writes it. The small live fields are atomics; the exit
 * IP text is behind a mutex and read only for reports.
 */
#ifndef ANONPROXY_UPSTREAM_H
#define ANONPROXY_UPSTREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "http/target.h"

struct geoip;
typedef struct ssl_ctx_st SSL_CTX;

typedef enum hop_proto {
    HOP_HTTP,      /* absolute-form requests or CONNECT */
    HOP_HTTPS,     /* the same inside TLS to the proxy (certificate and name verified) */
    HOP_SOCKS5,    /* RFC 1928 (+ RFC 1929 user/pass); names always sent unresolved */
    HOP_SOCKS5H,   /* the same: the "h" is accepted for familiarity */
    HOP_SOCKS4A,   /* SOCKS4a: names sent unresolved */
} hop_proto;

typedef struct hop {
    hop_proto proto;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    char *user;               /* NULL when none (owned) */
    char *pass;               /* (owned) */
    char *proxy_auth;         /* HTTP(S): "Basic <base64>" when user is set (owned) */
    SSL_CTX *tls;             /* HTTPS: the verifying context (owned) */
} hop;

typedef enum country_source {
    COUNTRY_UNKNOWN,
    COUNTRY_CONFIGURED,       /* "country" in the config */
    COUNTRY_EXIT_IP,          /* GeoIP of the exit IP a judge saw */
    COUNTRY_HOST,             /* GeoIP of the first hop's address */
} country_source;

typedef enum strategy {
    STRATEGY_ROUND_ROBIN,
    STRATEGY_RANDOM,
    STRATEGY_LEAST_LATENCY,
    STRATEGY_STICKY,          /* by session id, else by client address */
} strategy;

typedef struct upstream {
    char *name;               /* (owned) */
    hop *hops;                /* nhops >= 1 (owned) */
    size_t nhops;
    char configured_country[3];
    unsigned weight;          /* >= 1: share of round-robin/random picks */

    /* Live state. */
    atomic_int healthy;       /* 1 up, 0 down */
    atomic_uint latency_ms;   /* last successful check, 0 = not measured */
    atomic_uint country;      /* two letters packed by upstream_pack_country, 0 = unknown */
    atomic_int country_from;  /* country_source */
    pthread_mutex_t report_lock;
    char exit_ip[46];         /* measured by a judge; "" when not (report_lock) */
    char verdict[16];         /* the judge's anonymity verdict (report_lock) */
} upstream;

typedef struct upstream_set {
    upstream *items;          /* (owned) */
    size_t n;
    strategy strategy;
    atomic_uint next;         /* round-robin cursor */
} upstream_set;

/* Parses one proxy URL ("http://user:pass@host:port", https, socks5, socks5h,
 * socks4a) into h. ca_file (may be NULL) adds trust anchors for https.
 * Returns 0, or -1 with a reason in err. */
int upstream_parse_hop(const char *url, const char *ca_file, hop *h, char *err, size_t errlen);

void upstream_hop_free(hop *h);

/* Creates the live state of u (call once the hops are filled in) and sets its
 * country from the configured override or else from the first hop's address
 * when that is an IP literal (geo may be NULL). */
int upstream_init(upstream *u, const struct geoip *geo);

void upstream_set_free(upstream_set *s);

/* Two uppercase letters <-> packed form. */
unsigned upstream_pack_country(const char *cc);
void upstream_country(const upstream *u, char cc[3]);

/* Picks a healthy upstream whose country is cc (NULL: any country), skipping
 * the `navoid` already tried for this request. A session id (may be NULL)
 * pins the exit whatever the strategy; STRATEGY_STICKY without one pins by
 * the client's address. Returns NULL when none is left. */
upstream *upstream_pick(upstream_set *s, const char *cc, const char *session, const char *client,
                        upstream *const *avoid, size_t navoid);

/* Marks u down after a failed connect or handshake; health checks bring it back. */
void upstream_mark_down(upstream *u);

const char *upstream_proto_name(hop_proto p);
const char *upstream_country_source_name(country_source s);

#endif
