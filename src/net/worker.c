/* worker.c - see worker.h. */
#include "net/worker.h"

#include <event2/event.h>
#include <stdatomic.h>



/* Client connections across all workers, for limits.max_connections. */
static atomic_size_t open_connections;

void worker_conn_add(worker *w, worker_conn *c)
{
    list_push_front(&w->conns, &c->link);
    w->nconns++;
    atomic_fetch_add(&open_connections, 1);
}

void worker_conn_remove(worker *w, worker_conn *c)
{
    list_unlink(&c->link);
    w->nconns--;
    atomic_fetch_sub(&open_connections, 1);
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

size_t worker_open_connections(void)
{
    return atomic_load(&open_connections);
}
