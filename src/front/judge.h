/* judge.h - a "whatismyip" judge: an HTTP server that echoes what it received.
 *
 * Proxy checkers send a request through a proxy to a judge and read back what
 * arrived: the TCP peer address (the proxy's exit IP), the request line and
 * every header in received order and casing. The judge also gives a verdict:
 *
 *   transparent  the caller's real IP (the real_ip query parameter) is the
 *                remote address, or appears in a header value;
 *   anonymous    otherwise, a header reveals that a proxy is in the way:
 *                one of the names proxy checkers look for (Via,
 *                X-Forwarded-*, Forwarded, Proxy-Connection, ...), a name
 *                containing "proxy" (X-Tinyproxy), or the word "proxy" in a
 *                header browsers fill from a fixed vocabulary (Connection,
 *                Cache-Control, ...; never User-Agent, Referer or Cookie);
 *   elite        neither: the request looks like a browser's, sent directly.
 *
 * Endpoints: GET / and GET /?real_ip=IP, the target in origin-form or in
 * absolute-form ("http://host/?real_ip=IP", as some proxies forward it).
 * JSON when the Accept header mentions application/json, plain text otherwise:
 *
 *   {"remote_ip": "192.0.2.7", "country": "DE" | null, "real_ip": IP | null,
 *    "request_line": "GET / HTTP/1.1", "headers": [["Host", "..."], ...],
 *    "verdict": "anonymous",
 *    "reasons": [{"header": "Via", "value": "1.1 x", "why": "..."}]}
 *
 * A reason about the remote address itself has "header": null. The real IP
 * matches whole address tokens only: "1.2.3.45" does not hold 1.2.3.4. Host
 * is not searched: it names the judge.
 * Limits: a head of 64 KiB and 200 fields (else 431), 10 s for a whole head
 * and for flushing a response. Keep-alive for HTTP/1.1; pipelined requests
 * are answered in order. A request body is never read: the connection
 * closes after answering such a request. Its connections count towards
 * limits.max_connections like any other.
 *
 * The judge is the listener kind "judge" (net/listener.h): a listen[] entry
 * with "protocol": "judge", or the top-level "judge" key of the proxy's config;
 * `anonproxy judge` (tools/judge_cmd.h) runs one on its own. It reports
 * countries when the config has a GeoIP database.
 */
#ifndef ANONPROXY_JUDGE_H
#define ANONPROXY_JUDGE_H

#include "net/listener.h"

extern const listener_kind judge_kind;

#endif
