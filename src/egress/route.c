/* route.c - see route.h. */
#include "egress/route.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/util.h"
#include "egress/credentials.h"
#include "egress/upstream.h"

/* An address as 16 bytes, IPv4 in its v4-mapped form, so one CIDR
 * comparison serves both families. Returns 0 when text is not an address. */
static int address_bytes(const char *text, unsigned char out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, mapped, 12);
        memcpy(out + 12, &a4, 4);
        return 4;
    }
    return inet_pton(AF_INET6, text, out) == 1 ? 6 : 0;
}

int route_parse_match(const char *text, route_rule *r, char *err, size_t errlen)
{
    const char *slash = strchr(text, '/');
    if (slash) {
        char addr[64];
        char *end;
        size_t alen = (size_t)(slash - text);
        long bits = strtol(slash + 1, &end, 10);
        if (alen >= sizeof addr || *end || slash[1] < '0' || slash[1] > '9')
            goto bad;
        memcpy(addr, text, alen);
        addr[alen] = '\0';
        int family = address_bytes(addr, r->net);
        if (!family || bits < 0 || bits > (family == 4 ? 32 : 128))
            goto bad;
        r->is_cidr = 1;
        r->prefix = (unsigned)bits + (family == 4 ? 96 : 0);
        return 0;
    }
    const char *name = strncmp(text, "*.", 2) == 0 ? text + 2 : text;
    if (!*name)
        goto bad;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && *p != ':')
            goto bad;
    return 0;
bad:
    snprintf(err, errlen, "\"%s\" is not a host name, \"*.domain\" or an address/prefix", text);
    return -1;
}

/* The length of a name without its one trailing dot: "tracker.example." is
 * the fully qualified spelling of "tracker.example", the same host to DNS,
 * so a rule for either must match both. */
static size_t name_len(const char *name)
{
    size_t len = strlen(name);
    return len && name[len - 1] == '.' ? len - 1 : len;
}

int route_matches(const route_rule *r, const char *host)
{
    if (r->is_cidr) {
        unsigned char a[16];
        if (!address_bytes(host, a))
            return 0; /* names are not resolved here: that would leak them */
        unsigned full = r->prefix / 8, rest = r->prefix % 8;
        if (memcmp(a, r->net, full) != 0)
            return 0;
        return rest == 0 || ((a[full] ^ r->net[full]) & (0xff00 >> rest) & 0xff) == 0;
    }
    const char *pattern = r->match;
    size_t hl = name_len(host);
    if (strncmp(pattern, "*.", 2) == 0) {
        /* "*.example.com" covers example.com and every name below it. */
        const char *domain = pattern + 2;
        size_t dl = name_len(domain);
        if (hl == dl)
            return strncasecmp(host, domain, dl) == 0;
        return hl > dl && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, domain, dl) == 0;
    }
    return hl == name_len(pattern) && strncasecmp(host, pattern, hl) == 0;
}

/* The country the request itself asks for: the credentials' option, else
 * the opt-in header hint. Returns 1 when it asks. */
static int requested_country(const config *cfg, const route_input *in, route *out)
{
    if (in->cred && in->cred->present) {
        memcpy(out->country, in->cred->country, sizeof out->country);
        snprintf(out->session, sizeof out->session, "%s", in->cred->session);
    }
    if (!out->country[0] && cfg->country_header && in->header_country)
        country_code_parse(in->header_country, in->header_country_len, out->country);
    return out->country[0] != '\0';
}

void route_decide(const config *cfg, const route_input *in, route *out)
{
    const listen_config *l = in->listener;
    const char *host = in->host;
    const route_rule *matched = NULL, *blocked = NULL;
    memset(out, 0, sizeof *out);

    /* A block anywhere in the list wins; otherwise the first match counts. */
    for (size_t i = 0; i < cfg->nroutes && !blocked; i++) {
        const route_rule *r = &cfg->routes[i];
        if (!route_matches(r, host))
            continue;
        if (r->action == ROUTE_BLOCK)
            blocked = r;
        else if (!matched)
            matched = r;
    }
    if (matched)
        out->policy = matched->policy;

    if (blocked) {
        out->action = ROUTE_BLOCK;
        out->why = blocked->match;
    } else if (requested_country(cfg, in, out)) {
        out->action = ROUTE_UPSTREAM;
        out->why = "the request";
    } else if (matched) {
        out->action = matched->action;
        memcpy(out->country, matched->country, sizeof out->country);
        out->why = matched->match;
    } else if (l && l->country[0]) {
        out->action = ROUTE_UPSTREAM;
        memcpy(out->country, l->country, sizeof out->country);
        out->why = "the listener";
    } else {
        out->action = cfg->upstreams->n ? ROUTE_UPSTREAM : ROUTE_DIRECT;
        out->why = "the default";
    }
}
