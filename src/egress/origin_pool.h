/* origin_pool.h - idle direct connections to origins, kept for reuse.
 *
 * With "upstream_reuse": "shared", a direct connection to an origin that
 * finished an exchange cleanly waits here, keyed by host and port, for the
 * next request to the same origin from any client of the worker. Only
 * direct connections: one through an exit belongs to the route (country,
 * session) it was chosen for. An idle connection ends on anything the
 * origin does (data, close) and after timeouts.idle; the pool holds at
 * most ORIGIN_POOL_MAX_IDLE, dropping the oldest. One pool per worker,
 * used from its thread only.
 */
#ifndef ANONPROXY_ORIGIN_POOL_H
#define ANONPROXY_ORIGIN_POOL_H

struct bufferevent;
typedef struct origin_pool origin_pool;

#define ORIGIN_POOL_MAX_IDLE 256

/* NULL when out of memory. */
origin_pool *origin_pool_new(unsigned idle_ms);

/* Closes every idle connection and frees the pool; NULL is fine. */
void origin_pool_free(origin_pool *pool);

/* Keeps bev (owned by the pool from now on) as an idle connection to
 * host:port; frees it when out of memory. */
void origin_pool_put(origin_pool *pool, const char *host, unsigned port, struct bufferevent *bev);

/* An idle connection to host:port (ownership passes to the caller, with no
 * callbacks or timeouts set), or NULL. */
struct bufferevent *origin_pool_take(origin_pool *pool, const char *host, unsigned port);

#endif
