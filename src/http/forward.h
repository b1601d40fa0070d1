/* forward.h - the message heads the proxy passes on.
 *
 * Toward the origin: the request line in origin-form, the Host field taken
 * from the request-target (RFC 9112 3.2.2), and the client's fields in their
 * received order, casing and bytes, less the hop-by-hop fields (RFC 9110 7.6.1):
 * Keep-Alive, Proxy-Connection, TE, Trailer, Proxy-Authorization, Upgrade
 * (unless upgrading), and every field the Connection field names. The
 * Connection field itself is kept where it stood with only the tokens that
 * describe this connection (keep-alive, close, and upgrade when upgrading),
 * because a browser's "Connection: keep-alive" is what an origin expects to
 * see; dropping it would itself reveal the proxy.
 *
 * Toward the client: the response with the same hop-by-hop fields removed
 * and the proxy's own Connection field where the client needs one.
 *
 * A "Proxy-Connection" field (what browsers send a proxy instead of
 * "Connection") becomes "Connection" in place when there is no Connection
 * field, for the same reason.
 *
 * The anonymity policy (policy.h) decides first which fields pass, change or
 * are added; the protocol rules above apply to what it lets through.
 */
#ifndef ANONPROXY_FORWARD_H
#define ANONPROXY_FORWARD_H

#include "http/http_parser.h"
#include "http/policy.h"
#include "http/target.h"

struct evbuffer;

/* Does the request ask to switch protocols (Upgrade field and an "upgrade"
 * token in Connection)? */
int forward_wants_upgrade(const http_request *req);

/* Is the client connection persistent after this request (RFC 9112 9.3)? */
int forward_client_keep_alive(const http_request *req);

/* Is the origin connection persistent after this response? */
int forward_origin_keep_alive(const http_response *resp);

/* Appends the request head to send to the origin, with policy p's request
 * rules applied to the fields the protocol lets through. */
void forward_request_head(struct evbuffer *out, const http_request *req, const target *t,
                          int upgrading, const policy *p, const policy_vars *vars);

/* How the response head toward the client is to be written. */
typedef struct response_plan {
    int client_minor;    /* client's HTTP/1.<minor> */
    int keep_alive;      /* client connection stays open afterwards */
    int drop_te;         /* body is decoded for the client: drop Transfer-Encoding */
    int upgrading;       /* 101 to a request that asked for it */
} response_plan;

/* Appends the response head to send to the client, with p's response rules. */
void forward_response_head(struct evbuffer *out, const http_response *resp, const response_plan *plan,
                           const policy *p, const policy_vars *vars);

#endif
