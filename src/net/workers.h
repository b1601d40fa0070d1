/* workers.h - a generation of worker threads, and their accept pipeline.
 *
 * cfg->workers threads (net/worker.h), each listening on every configured
 * address (SO_REUSEPORT lets the kernel spread accepted connections). Every
 * accepted connection goes through the same pipeline, whatever the
 * protocol: the connection limit (limits.max_connections, all workers
 * together), the PROXY protocol header when the listener expects one
 * (net/proxy_protocol.h), then the accept function of its listener's kind
 * (net/listener.h). A generation ends gracefully: no new connections, the
 * exchanges in flight finish (timeouts.shutdown), and at a reload the next
 * generation takes over the listening sockets.
 */
#ifndef ANONPROXY_WORKERS_H
#define ANONPROXY_WORKERS_H

#include "core/config.h"
#include "net/listener.h"
#include "net/worker.h"

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

#endif
