/* worker.h - one event-loop thread and the connections it owns.
 *
 * Each worker thread runs its own libevent loop with its own listening
 * socket on every configured address and its own DNS resolver, so workers
 * share nothing mutable but a connection counter (net/workers.h starts and
 * stops them). Every connection object (HTTP exchange, tunnel, SOCKS
 * handshake, judge connection, lingering close, pending connection) is
 * linked into its worker so that a graceful shutdown can find idle ones and
 * a final stop can free all.
 */
#ifndef ANONPROXY_WORKER_H
#define ANONPROXY_WORKER_H

#include <pthread.h>
#include <stddef.h>

#include "core/config.h"
#include "core/util.h"
#include "net/listener.h"

struct event_base;
struct evdns_base;
struct evconnlistener;
struct event;

/* Embedded in every connection object a worker tracks. */
typedef struct worker_conn {
    list_link link;
    /* Shutdown started: close now if idle, else finish the exchange in flight. */
    void (*drain)(struct worker_conn *);
    /* The worker is stopping for good: release everything at once. */
    void (*destroy)(struct worker_conn *);
} worker_conn;

struct worker;

/* One configured listener on one worker. */
typedef struct worker_listener {
    struct worker *w;
    const listen_config *cfg;
    struct evconnlistener *evl;
    void *kind_state;             /* the kind's per-worker state */
    int owns_state;               /* the first listener of its kind frees it */
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
    list_link conns;              /* worker_conn.link, sentinel */
    size_t nconns;
} worker;

/* Links a new connection into w (and counts it). */
void worker_conn_add(worker *w, worker_conn *c);

/* Unlinks c; when draining and nothing is left, the worker's loop ends. */
void worker_conn_remove(worker *w, worker_conn *c);

/* Client connections open across all workers, for limits.max_connections. */
size_t worker_open_connections(void);

#endif
