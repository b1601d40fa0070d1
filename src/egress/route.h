/* route.h - where a request goes: direct, blocked, or out through an exit country.
 *
 * Precedence, first match wins:
 *   1. a "block" route matching the destination (nothing overrides a block);
 *   2. the country the request asks for: the proxy username
 *      (Proxy-Authorization: Basic, user "anything-country-de-session-abc")
 *      or, when country_header is on, an X-Anonproxy-Country field;
 *   3. the first route matching the destination ("country" or "direct");
 *   4. the listener's country (listen[].country);
 *   5. any healthy upstream when upstreams are configured, else direct.
 * Whatever asked for a country, the answer is never a silent fallback: no
 * healthy exit in that country is an error for the client (502).
 */
#ifndef ANONPROXY_ROUTE_H
#define ANONPROXY_ROUTE_H

#include <stddef.h>

#include "http/http_parser.h"

struct config;
struct listen_config;
struct policy;

typedef enum route_action {
    ROUTE_DIRECT,
    ROUTE_BLOCK,
    ROUTE_UPSTREAM,      /* through an upstream of `country` (or any when country is "") */
} route_action;

/* One "routes" entry of the config. */
typedef struct route_rule {
    char *match;                 /* as written (owned) */
    int is_cidr;
    unsigned char net[16];       /* CIDR network, IPv4 as v4-mapped */
    unsigned prefix;             /* CIDR prefix length over the 128-bit form */
    route_action action;
    char country[3];
    char *mode;                  /* optional policy name (owned) */
    const struct policy *policy; /* resolved from mode, or NULL */
} route_rule;

typedef struct route {
    route_action action;
    char country[3];             /* "" = any country */
    char session[65];            /* sticky session id from the username, "" when none */
    const struct policy *policy; /* a route's mode, or NULL: the listener's */
    const char *why;             /* what decided, for messages: "route *.bbc.co.uk", ... */
} route;

/* Parses a route pattern: "*.example.com", "example.com" or "10.0.0.0/8".
 * Returns 0, or -1 with a reason in err. */
int route_parse_match(const char *text, route_rule *r, char *err, size_t errlen);

/* Decides the route of a request to host (lowercase, as in target.h) made
 * on listener l. fields are the request's (for the username and header);
 * may be NULL. */
void route_decide(const struct config *cfg, const struct listen_config *l, const char *host,
                  const http_field *fields, size_t nfields, route *out);

/* Does pattern r match host? */
int route_matches(const route_rule *r, const char *host);

#endif
