/* route.c - see route.h. */
#include "egress/route.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/util.h"
#include "egress/credentials.h"
#include "egress/upstream.h"
#include "http/target.h"

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
        /* Read as hosts are (target_host_address), so that a rule and a
         * host spelling the same address compare equal. */
        target_address a;
        if (!target_host_address(addr, &a) || bits < 0 || bits > (a.family == AF_INET ? 32 : 128))
            goto bad;
        memcpy(r->range.net, a.addr, sizeof r->range.net);
        r->is_cidr = 1;
        r->range.prefix = (unsigned)bits + (a.family == AF_INET ? 96 : 0);
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

/* route_matches for a host whose address is *a (target_host_address: the
 * address the dialer will connect to), or a NULL a for a name. */
static int rule_matches(const route_rule *r, const char *host, const target_address *a)
{
    if (r->is_cidr) {
        /* Names are not resolved here: that would leak them. */
        return a && cidr_contains(&r->range, a->addr);
    }
    const char *pattern = r->match;
    target_address pa;
    if (a && strncmp(pattern, "*.", 2) != 0 && target_host_address(pattern, &pa))
        /* An address written without a prefix is that one address, however
         * the host spells it ("010.0.0.1", "::ffff:10.0.0.1"): compared as
         * text, another spelling would pass a block of it. */
        return memcmp(pa.addr, a->addr, sizeof pa.addr) == 0;
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

int route_matches(const route_rule *r, const char *host)
{
    target_address a;
    return rule_matches(r, host, target_host_address(host, &a) ? &a : NULL);
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
    target_address addr; /* read once, not once per rule */
    const target_address *a = target_host_address(host, &addr) ? &addr : NULL;
    memset(out, 0, sizeof *out);

    /* A block anywhere in the list wins; otherwise the first match counts. */
    for (size_t i = 0; i < cfg->nroutes && !blocked; i++) {
        const route_rule *r = &cfg->routes[i];
        if (!rule_matches(r, host, a))
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
