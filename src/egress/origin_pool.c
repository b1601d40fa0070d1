/* origin_pool.c - see origin_pool.h. */
#include "egress/origin_pool.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/util.h"
#include "http/target.h"

typedef struct pooled {
    list_link link;
    origin_pool *pool;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    struct bufferevent *bev;
} pooled;

struct origin_pool {
    list_link idle;   /* pooled.link, most recently released first */
    size_t count;
    unsigned idle_ms;
};

origin_pool *origin_pool_new(unsigned idle_ms)
{
    origin_pool *p = calloc(1, sizeof *p);
    if (p) {
        list_init(&p->idle);
        p->idle_ms = idle_ms;
    }
    return p;
}

/* Unlinks e and frees it; returns its connection (the caller's now). */
static struct bufferevent *pooled_unlink(pooled *e)
{
    struct bufferevent *bev = e->bev;
    list_unlink(&e->link);
    e->pool->count--;
    free(e);
    return bev;
}

static void pooled_free(pooled *e)
{
    bufferevent_free(pooled_unlink(e));
}

void origin_pool_free(origin_pool *pool)
{
    if (!pool)
        return;
    while (!list_empty(&pool->idle))
        pooled_free(list_entry(pool->idle.next, pooled, link));
    free(pool);
}

/* Anything from an idle origin connection (data, close, timeout) ends it:
 * an origin may not speak before it is asked. */
static void on_pooled_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pooled_free(arg);
}

static void on_pooled_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    pooled_free(arg);
}

struct bufferevent *origin_pool_take(origin_pool *pool, const char *host, unsigned port)
{
    for (list_link *l = pool->idle.next; l != &pool->idle; l = l->next) {
        pooled *e = list_entry(l, pooled, link);
        if (e->port == port && strcmp(e->host, host) == 0) {
            struct bufferevent *bev = pooled_unlink(e);
            bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
            bufferevent_set_timeouts(bev, NULL, NULL);
            return bev;
        }
    }
    return NULL;
}

void origin_pool_put(origin_pool *pool, const char *host, unsigned port, struct bufferevent *bev)
{
    pooled *e = calloc(1, sizeof *e);
    if (!e) {
        bufferevent_free(bev);
        return;
    }
    if (pool->count >= ORIGIN_POOL_MAX_IDLE)
        pooled_free(list_entry(pool->idle.prev, pooled, link)); /* the oldest */
    snprintf(e->host, sizeof e->host, "%s", host);
    e->port = port;
    e->bev = bev;
    e->pool = pool;
    list_push_front(&pool->idle, &e->link);
    pool->count++;
    struct timeval idle = ms_to_timeval(pool->idle_ms);
    bufferevent_setcb(bev, on_pooled_read, NULL, on_pooled_event, e);
    bufferevent_set_timeouts(bev, &idle, NULL);
    bufferevent_enable(bev, EV_READ);
}
