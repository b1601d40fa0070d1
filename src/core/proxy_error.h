/* proxy_error.h - why the proxy could not do what a client asked, as a value.
 *
 * One list of failures, named after the error types of RFC 9209
 * (Proxy-Status), that every layer reports in: a dial that was refused, a
 * chain whose exit could not reach the destination, a route that blocks.
 * Each front end says it in its own protocol: an HTTP status (and later the
 * Proxy-Status field), a SOCKS reply code.
 */
#ifndef ANONPROXY_PROXY_ERROR_H
#define ANONPROXY_PROXY_ERROR_H

typedef enum proxy_error {
    PE_NONE,
    PE_DNS_ERROR,                  /* the destination's name does not resolve */
    PE_DNS_TIMEOUT,                /* resolving it timed out */
    PE_DESTINATION_UNAVAILABLE,    /* no exit can carry the request (none healthy, none left) */
    PE_DESTINATION_IP_PROHIBITED,  /* a route, connect_ports or a guard forbids it */
    PE_DESTINATION_IP_UNROUTABLE,  /* no route to the destination */
    PE_CONNECTION_REFUSED,         /* the destination (or the exit, for it) refused */
    PE_CONNECTION_TIMEOUT,         /* connecting (or an exit's handshake) timed out */
    PE_PROXY_LOOP_DETECTED,        /* the destination is this proxy */
    PE_PROXY_INTERNAL_ERROR,       /* out of memory and the like */
} proxy_error;

/* The RFC 9209 error type: "connection_refused", ... ("" for PE_NONE). */
const char *proxy_error_name(proxy_error e);

/* The HTTP status a proxy answers with for e: 403, 502, 504, 508 or 500. */
int proxy_error_http_status(proxy_error e);

#endif
