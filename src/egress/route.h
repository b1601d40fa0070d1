/* route.h - where a request goes: direct, blocked, or out through an exit country.
 *
 * Precedence, first match wins:
 *   1. a "block" route matching the destination (nothing overrides a block);
 *   2. the country the request asks for: the credentials' country option
 *      (credentials.h: user "anything-country-de-session-abc"), else, when
 *      country_header is on, the front end's header hint (HTTP's
 *      X-Anonproxy-Country field);
 *   3. the first route matching the destination ("country" or "direct");
 *   4. the listener's country (listen[].country);
 *   5. any healthy upstream when upstreams are configured, else direct.
 * Whatever asked for a country, the answer is never a silent fallback: no
 * healthy exit in that country is an error for the client (502).
 * Routing sees no protocol: the front end hands it a plain route_input.
 */
#ifndef ANONPROXY_ROUTE_H
#define ANONPROXY_ROUTE_H

#include <stddef.h>

#include "core/cidr.h"

struct config;
struct credentials;
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
    cidr range;                  /* when is_cidr */
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

/* What a route is decided from. Every pointer but host may be NULL. */
typedef struct route_input {
    const char *host;                      /* destination, lowercase (as in target.h) */
    const struct credentials *cred;        /* the client's credentials and options */
    const char *header_country;            /* a country the request names outside the
                                            * credentials (used when country_header is on) */
    size_t header_country_len;
    const struct listen_config *listener;  /* where the request came in */
} route_input;

/* Decides the route of one request. */
void route_decide(const struct config *cfg, const route_input *in, route *out);

/* Does pattern r match host? */
int route_matches(const route_rule *r, const char *host);

#endif
