/* listener.h - listener kinds, and the listening sockets kept across reloads.
 *
 * Every configured address speaks one protocol, its kind: "http" (the
 * forward proxy), "judge" (a whatismyip judge), and tomorrow "socks5",
 * "mixed", "reverse" or "admin". A kind is a row of callbacks that the
 * worker runs without knowing the protocol: set-up and tear-down of the
 * kind's per-worker state, what to do when a worker starts draining, and
 * the accept function that takes over a new connection. The rows live with
 * their front ends (front/); the table of them is front/kinds.h, which the
 * config loader consults for listen[].protocol.
 */
#ifndef ANONPROXY_LISTENER_H
#define ANONPROXY_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct config;
struct listen_config;
struct worker;

typedef struct listener_kind {
    const char *name;          /* the value of listen[].protocol */
    /* listen[] keys this kind takes besides "address" and "protocol", NULL-ended. */
    const char *const *keys;
    /* Builds the kind's state for worker w, shared by every listener of the
     * kind on w; *state may stay NULL. Returns 0, or -1 with err. */
    int (*worker_init)(struct worker *w, void **state, char *err, size_t errlen);
    /* The worker starts draining (reload or stop): release what only new
     * connections would use. May be NULL. */
    void (*worker_drain)(void *state);
    /* Frees the state once the worker's connections are gone. May be NULL. */
    void (*worker_free)(void *state);
    /* Takes ownership of socket fd, accepted on listener l from peer. */
    void (*accept)(struct worker *w, void *state, const struct listen_config *l, int fd,
                   const struct sockaddr *peer, socklen_t peer_len);
    /* limits.max_connections is reached: answer fd in the protocol's terms
     * before the worker closes it (best effort, never blocks). May be NULL. */
    void (*refuse_busy)(int fd);
} listener_kind;

/* Listening sockets, owned by the main thread and kept across reloads: a new
 * generation of workers takes over the old one's sockets, so connections
 * waiting in their accept queues are served, not reset. One socket per
 * address and worker (SO_REUSEPORT spreads connections over them). */
typedef struct listen_socket {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned worker;
    int fd;
    int in_use;                /* taken by the newest generation */
} listen_socket;

typedef struct listen_set {
    listen_socket *items;      /* (owned) */
    size_t n;
} listen_set;

/* Before a generation starts: marks every socket unused, and checks that
 * each address of cfg the set has no socket for yet is free (bound once
 * without SO_REUSEPORT), so that a second instance fails instead of
 * silently sharing it. Returns 0, or -1 with err. */
int listen_set_prepare(listen_set *socks, const struct config *cfg, char *err, size_t errlen);

/* The socket for address l and worker id: the one an earlier generation
 * used, else a new one (listening, non-blocking). Returns it, or -1 with
 * err. The set keeps owning it. */
int listen_set_take(listen_set *socks, const struct listen_config *l, unsigned id, char *err,
                    size_t errlen);

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

#endif
