/* worker.h - event-loop threads, the connections they own, the accept pipeline.
 *
 * Each worker thread runs its own libevent loop with its own listening
 * socket on every configured address (SO_REUSEPORT lets the kernel spread
 * accepted connections) and its own DNS resolver, so workers share nothing
 * mutable but a connection counter. Every accepted connection goes through
 * the same pipeline, whatever the protocol: the connection limit
 * (limits.max_connections, all workers together), then the accept function
 * of its listener's kind (net/listener.h). Every connection object (HTTP
 * exchange, tunnel, judge connection, lingering close) is linked into its
 * worker so that a graceful shutdown can find idle ones and a final stop
 * can free all.
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

/* Creates cfg->workers workers on sockets from socks (listen_set_prepare
 * first, then one socket per address and worker) and starts their threads.
 * Returns 0, or -1 with a message in err (nothing left running). */
int workers_start(const config *cfg, listen_set *socks, worker **out, char *err, size_t errlen);

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
