/* config.h - what a loaded anonproxy.json holds, as every layer reads it.
 *
 * The types only, and the few helpers on them; the loader that fills them
 * from the file, validates them and frees them is conf/config_load.h, above
 * every layer whose parts it builds. Members that belong to a higher layer
 * (exits, routes, policies, listener kinds) are pointers to types declared
 * there. A loaded config is immutable and shared read-only by all worker
 * threads (upstreams' live state excepted: see egress/upstream.h).
 */
#ifndef ANONPROXY_CONFIG_H
#define ANONPROXY_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/cidr.h"

struct policy;
struct geoip;
struct listener_kind;
struct route_rule;
struct upstream_set;

typedef enum upstream_reuse {
    REUSE_CLIENT,   /* an origin connection serves one client connection only (default) */
    REUSE_SHARED,   /* idle origin connections are pooled per worker and shared */
    REUSE_OFF,      /* one origin connection per request */
} upstream_reuse;

typedef struct listen_config {
    char *address;                  /* as written, e.g. "127.0.0.1:8080" (owned) */
    struct sockaddr_storage addr;   /* parsed address */
    socklen_t addr_len;
    const struct listener_kind *kind; /* "protocol": what it speaks, default "http" (net/listener.h) */
    char *mode;                     /* "mode": policy name; NULL = the global mode (owned) */
    const struct policy *policy;    /* the policy this listener applies (in config.policies) */
    char country[3];                /* "country": exit country for its requests, "" = none */
    char *tls_cert, *tls_key;       /* "tls": {"cert": PEM chain, "key": PEM key} (owned) */
    struct ssl_ctx_st *tls;         /* their server context (net/tls.h), NULL: plain (owned) */
    struct sockaddr_storage udp_addr; /* "udp_address": announced in UDP ASSOCIATE replies */
    socklen_t udp_addr_len;         /* 0: the address the client reached */
    int proxy_protocol;             /* "proxy_protocol": a PROXY header starts every connection */
    cidr *proxy_from;               /* "proxy_protocol_from": who may send it, default loopback (owned) */
    size_t nproxy_from;
} listen_config;

typedef struct port_range {
    unsigned short lo, hi;
} port_range;

typedef struct limits_config {
    size_t max_header_bytes;  /* "max_header_bytes": whole request/response head, default 65536 */
    size_t max_headers;       /* "max_headers": fields per head, default 100 */
    size_t max_uri_bytes;     /* "max_uri_bytes": request-target, default 8192 */
    size_t max_line_bytes;    /* "max_line_bytes": one header line, default 16384 */
    size_t max_connections;   /* "max_connections": client connections, all workers, default 16384 */
    size_t buffer_bytes;      /* "buffer_bytes": per-direction buffering before back-pressure, default 1 MiB */
    size_t max_udp_associations; /* "max_udp_associations": SOCKS5 UDP, all workers, default 1024 */
} limits_config;

/* All in milliseconds internally; the file gives seconds (numbers, may be fractional). */
typedef struct timeouts_config {
    unsigned connect_ms;      /* "connect": TCP connect to the origin (and DNS), default 10 s */
    unsigned header_ms;       /* "header": client must send a whole request head, default 15 s */
    unsigned idle_ms;         /* "idle": keep-alive client connection between requests, default 60 s */
    unsigned io_ms;           /* "io": no progress while a request or response is in flight, default 60 s */
    unsigned tunnel_idle_ms;  /* "tunnel_idle": no bytes either way in a tunnel, default 300 s */
    unsigned shutdown_ms;     /* "shutdown": grace for in-flight exchanges on SIGTERM, default 10 s */
} timeouts_config;

/* "health": checks of the upstreams (health.h). */
typedef struct health_config {
    unsigned interval_ms;     /* "interval": between rounds, default 30 s */
    unsigned timeout_ms;      /* "timeout": one check, default 5 s */
    unsigned rise;            /* "rise": successes to come up, default 2 */
    unsigned fall;            /* "fall": failures to go down, default 2 */
    char *judge_url;          /* "judge_url": http://host:port/ of a judge, or NULL (owned) */
} health_config;

/* Where names are resolved from; NULL means the system files. */
typedef struct dns_config {
    char *resolv_conf;        /* "resolv_conf": nameservers, default /etc/resolv.conf (owned) */
    char *hosts;              /* "hosts": static names, default /etc/hosts (owned) */
} dns_config;

typedef struct config {
    char *path;               /* file it was loaded from (owned) */
    listen_config *listen;    /* owned array */
    size_t nlisten;
    char *mode;               /* "mode": a policy name, default "elite" (owned) */
    char *policies_dir;       /* "policies": where NAME.json files are, default
                               * the "policies" folder beside the config file (owned) */
    char *proxy_name;         /* "proxy_name": what $proxy_name expands to, default "proxy" (owned) */
    struct policy **policies; /* every policy a mode names, loaded and checked (owned) */
    size_t npolicies;
    unsigned workers;         /* "workers", default = online CPUs */
    upstream_reuse reuse;     /* "upstream_reuse" */
    port_range *connect_ports;/* "connect_ports"; NULL = all ports allowed (owned) */
    size_t nconnect_ports;
    limits_config limits;
    timeouts_config timeouts;
    dns_config dns;
    int log_level;            /* "log_level": "error" 0, "warn" 1, "info" 2 (default), "debug" 3 */

    /* Exits (upstream.h, route.h, health.h). */
    struct upstream_set *upstreams; /* "upstreams" + "upstreams_file"; strategy from
                                     * "strategy"; never NULL once loaded (owned) */
    struct route_rule *routes;/* "routes", in order (owned) */
    size_t nroutes;
    char *geoip_path;         /* "geoip": the country database (owned) */
    struct geoip *geo;        /* opened database, or NULL when none is found (owned) */
    struct sockaddr_storage outgoing;  /* "outgoing_address": source of outgoing connections */
    socklen_t outgoing_len;   /* 0 = let the system choose */
    int country_header;       /* "country_header": honour X-Anonproxy-Country, default false */
    unsigned failover_tries;  /* "failover_tries": upstreams tried per request, default 3 */
    health_config health;
    /* "judge": ADDRESS is a listener of kind "judge" (front/judge.h), listed
     * last in `listen`. */
} config;

/* Timeouts are kept in milliseconds; libevent and socket options want this. */
static inline struct timeval ms_to_timeval(unsigned ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* Parses "A.B.C.D:port" or "[v6]:port". Returns 0, or -1 with a reason in err. */
int config_parse_address(const char *text, struct sockaddr_storage *addr, socklen_t *len,
                         char *err, size_t errlen);

/* Is CONNECT to `port` allowed by connect_ports? */
int config_connect_port_allowed(const config *cfg, unsigned port);


#endif
