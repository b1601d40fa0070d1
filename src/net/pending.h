/* pending.h - an accepted connection no protocol has claimed yet.
 *
 * Some listeners must see a connection's first bytes before its kind can
 * take it: a PROXY protocol header, the first byte a mixed port chooses
 * the protocol by. A pending connection owns the socket and a read event
 * until then; it is a connection of its worker, gives up after
 * timeouts.header without the bytes it waits for, closes at a final stop,
 * and goes on across a reload (the next generation would reset a client
 * that did nothing wrong).
 */
#ifndef ANONPROXY_PENDING_H
#define ANONPROXY_PENDING_H

#include <stddef.h>
#include <sys/socket.h>

#include "net/worker.h"

typedef struct pending pending;

/* Called when the socket is readable: the callback looks (recv with
 * MSG_PEEK, or exact reads) and either waits for more, or ends the pending
 * connection with pending_close or pending_release. */
typedef void (*pending_cb)(pending *p, void *state);

struct pending {
    worker_conn link;
    worker *w;
    int fd;
    struct event *ev;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    const char *what;          /* for log lines: "PROXY header", "first byte" */
    pending_cb cb;
    void *state;               /* the caller's, state_size bytes after this struct */
};

/* Takes ownership of fd (closed on failure). state_size bytes of zeroed
 * state come with it (p->state). Returns NULL when out of memory. */
pending *pending_start(worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
                       const char *what, pending_cb cb, size_t state_size);

/* Ends p and closes its socket; why is logged at debug level. */
void pending_close(pending *p, const char *why);

/* Ends p and hands its socket to the caller (returned). */
int pending_release(pending *p);

#endif
