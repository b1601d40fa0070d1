/* worker.h - event-loop threads and the connections they own.
 *
 * Each worker thread runs its own libevent loop with its own listener on
 * every configured address (SO_REUSEPORT lets the kernel spread accepted
 * connections), its own DNS resolver and its own idle upstream pool, so
 * workers share nothing mutable but a connection counter. Every connection
 * object (client session, tunnel) is linked into its worker so that a
 * graceful shutdown can find idle ones and a final stop can free all.
 */
#ifndef ANONPROXY_WORKER_H
#define ANONPROXY_WORKER_H

#include <pthread.h>
#include <stddef.h>

#include "core/config.h"
#include "http/http_parser.h"

struct event_base;
struct evdns_base;
struct evconnlistener;
struct event;
struct upstream_pool;

/* Embedded in every connection object a worker tracks. */
typedef struct worker_conn {
    struct worker_conn *prev, *next;
    /* Shutdown started: close now if idle, else finish the exchange in flight. */
    void (*drain)(struct worker_conn *);
    /* The worker is stopping for good: release everything at once. */
    void (*destroy)(struct worker_conn *);
} worker_conn;

struct worker;

/* What an accept callback needs: which worker, which configured listener. */
typedef struct worker_listener {
    struct worker *w;
    const listen_config *cfg;
    struct evconnlistener *evl;
} worker_listener;

typedef struct worker {
    unsigned id;
    const config *cfg;
    struct event_base *base;
    struct evdns_base *dns;
    worker_listener *listeners;   /* one per cfg->listen entry */
    size_t nlisteners;
    int wake_fds[2];              /* main thread -> worker: "shut down" */
    struct event *wake_ev;
    struct event *deadline_ev;    /* end of the shutdown grace period */
    pthread_t thread;
    int draining;                 /* no new requests; close when idle */
    int stopping_for_good;        /* a final stop, not a reload's handover */
    worker_conn conns;            /* list head (sentinel) */
    size_t nconns;
    struct upstream_pool *pool;   /* idle origin connections (upstream_reuse "shared") */
    struct judge *judge;          /* worker 0 serves the configured judge, if any */
    http_limits limits;           /* cfg->limits as the parser wants them */
    struct evbuffer *scratch;     /* a head being built, before it joins an output */
    http_field *scratch_fields;   /* limits.max_headers entries: heads are parsed and
                                   * passed on within one callback, so one array serves
                                   * every connection of the worker */
} worker;

/* Listening sockets, owned by the main thread and kept across reloads: a new
 * generation of workers takes over the old one's sockets, so connections
 * waiting in their accept queues are served, not reset. One socket per
 * address and worker (SO_REUSEPORT spreads connections over them). */
typedef struct listen_socket {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned worker;
    int fd;
    int in_use;                   /* taken by the newest generation */
} listen_socket;

typedef struct listen_set {
    listen_socket *items;         /* (owned) */
    size_t n;
} listen_set;

/* Creates cfg->workers workers on sockets from socks (opening those it
 * lacks; a new address is first checked to be free, so that a second
 * instance fails instead of silently sharing it) and starts their threads.
 * Returns 0, or -1 with a message in err (nothing left running). */
int workers_start(const config *cfg, listen_set *socks, worker **out, char *err, size_t errlen);

/* Once the previous generation has stopped: closes the sockets the newest
 * one does not use. */
void listen_set_prune(listen_set *socks);

/* At a final stop, before waking the workers: every listening socket
 * stops accepting at once (shutdown(SHUT_RD)), so that no new client slips
 * in while the workers get round to closing theirs. */
void listen_set_refuse(listen_set *socks);

/* Frees the set and closes every socket, unless `closed`: a final
 * workers_stop has closed them already. */
void listen_set_free(listen_set *socks, int closed);

/* From the main thread: begin a graceful shutdown of every worker. final:
 * the listening sockets close now (process exit); otherwise they are left
 * open for the next generation (reload). */
void workers_stop(worker *ws, unsigned n, int final);

/* Waits for every worker thread to end, then frees them. */
void workers_join(worker *ws, unsigned n);

/* Links a new connection into w (and counts it). */
void worker_conn_add(worker *w, worker_conn *c);

/* Unlinks c; when draining and nothing is left, the worker's loop ends. */
void worker_conn_remove(worker *w, worker_conn *c);

#endif
