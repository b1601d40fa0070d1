/* verify.h - `anonproxy verify`: checks a proxy's anonymity against a judge.
 *
 *   anonproxy verify --proxy SCHEME://[user:pass@]host:port [--proxy-cacert FILE]
 *                    [--judge URL] [--expect transparent|anonymous|elite]
 *                    [--source IP] [--timeout SECONDS] [--json]
 *
 * SCHEME is http, https (TLS to the proxy, its certificate checked against
 * --proxy-cacert or the system's CAs), socks5h (the proxy resolves the
 * judge's name), socks5 (this host does), or socks4a. It asks the judge
 * (judge.h) directly, to learn the real IP as the judge sees it, then through
 * the proxy, the way a browser would. Through an HTTP(S) proxy twice: a plain
 * HTTP request in absolute-form (path "http"), and the same request inside a
 * CONNECT tunnel ("connect"); through a SOCKS proxy once, inside its tunnel
 * ("socks"). Each time it reports the exit IP, its country, the verdict and
 * every leaking header. Without --judge, a judge is started in-process on an
 * ephemeral port of 127.0.0.1 (so the proxy must be able to reach loopback).
 *
 * Exit status: 0 when every verdict is at least --expect (transparent <
 * anonymous < elite; default elite), 1 when one is not, 2 on errors.
 */
#ifndef ANONPROXY_VERIFY_H
#define ANONPROXY_VERIFY_H

int verify_main(int argc, char **argv);

#endif
