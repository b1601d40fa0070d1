/* dial.h - one outgoing TCP connection: DNS, source address, connect, deadline.
 *
 * Resolution goes through evdns (never blocks the loop); every resolved
 * address is tried in turn until one accepts. With loop_guard set, an
 * address that is one of the proxy's own listeners fails the dial (508)
 * before any connect. The source address is cfg->outgoing_address when set.
 * Used by the connector (workers) and by the health checker (its own loop).
 */
#ifndef ANONPROXY_DIAL_H
#define ANONPROXY_DIAL_H

#include "core/config.h"
#include "core/proxy_error.h"

struct bufferevent;
struct event_base;
struct evdns_base;
typedef struct dial dial;

/* On success error is PE_NONE and bev a connected bufferevent owned by the
 * callee from now on. Otherwise bev is NULL, error says why (PE_DNS_ERROR,
 * PE_DNS_TIMEOUT, PE_CONNECTION_REFUSED, PE_CONNECTION_TIMEOUT,
 * PE_DESTINATION_IP_UNROUTABLE, PE_PROXY_LOOP_DETECTED) and detail is a
 * short reason fit for a client. The dial is freed before the call. */
typedef void (*dial_cb)(struct bufferevent *bev, proxy_error error, const char *detail, void *arg);

/* Starts dialling host:port. Returns NULL only when out of memory. The
 * callback always runs from the event loop, never inside dial_start. */
dial *dial_start(struct event_base *base, struct evdns_base *dns, const config *cfg,
                 const char *host, unsigned port, unsigned timeout_ms, int loop_guard,
                 dial_cb cb, void *arg);

/* A resolver for base from dns.resolv_conf and dns.hosts (the system files
 * by default). A missing system resolv.conf is not fatal (libevent then asks
 * 127.0.0.1); a configured file that cannot be used is. NULL with err. */
struct evdns_base *dial_dns_new(struct event_base *base, const config *cfg, char *err, size_t errlen);

/* Abandons a dial whose callback has not run yet; the callback never runs. */
void dial_cancel(dial *d);

#endif
