/* closer.h - closing a connection without losing its last response.
 *
 * Closing a TCP socket that still has unread input makes the kernel send a
 * reset, which can destroy the response the peer has not read yet. A
 * closer takes over a connection whose final bytes are queued: it writes
 * them out (at most write_ms without progress), half-closes, then reads
 * and discards what the peer still sends for linger_ms or until its EOF,
 * and only then closes. Every front end ends its error answers this way.
 * While it runs, the closer is a connection of its worker (it counts
 * towards limits.max_connections and a final stop frees it).
 */
#ifndef ANONPROXY_CLOSER_H
#define ANONPROXY_CLOSER_H

#include "net/worker.h"

struct bufferevent;

/* After an error answer, how long to keep reading what the peer sends. */
#define CLOSER_LINGER_MS 2000

/* Takes ownership of bev (its callbacks and timeouts are replaced; its
 * read side must have been given back to libevent, see
 * sock_reader_detach). Never fails: when out of memory, bev is freed at
 * once. */
void closer_start(worker *w, struct bufferevent *bev, unsigned write_ms, unsigned linger_ms);

#endif
