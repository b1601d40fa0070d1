/* listener.c - see listener.h. */
#include "net/listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"

#define LISTEN_BACKLOG 1024

/* Binds once without SO_REUSEPORT: with it, a second anonproxy (or anything
 * of the same user) on the same address would silently share the traffic
 * instead of failing. */
static int probe_address(const struct sockaddr_storage *addr, socklen_t len, const char *name,
                         char *err, size_t errlen)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)addr, len) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int same_address(const struct sockaddr_storage *a, socklen_t alen,
                        const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

int listen_set_take(listen_set *socks, const listen_config *l, unsigned id, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < socks->n; i++) {
        listen_socket *s = &socks->items[i];
        if (s->worker == id && same_address(&s->addr, s->addr_len, &l->addr, l->addr_len)) {
            s->in_use = 1;
            return s->fd;
        }
    }
    listen_socket *grown = realloc(socks->items, (socks->n + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    socks->items = grown;
    int one = 1;
    /* Non-blocking: the old and new generation may both wake for one connection. */
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socks->items[socks->n++] = (listen_socket){l->addr, l->addr_len, id, fd, 1};
    return fd;
}

static int known_address(const listen_set *socks, const listen_config *l)
{
    for (size_t i = 0; i < socks->n; i++)
        if (same_address(&socks->items[i].addr, socks->items[i].addr_len, &l->addr, l->addr_len))
            return 1;
    return 0;
}

void listen_set_prune(listen_set *socks)
{
    size_t kept = 0;
    for (size_t i = 0; i < socks->n; i++) {
        if (socks->items[i].in_use)
            socks->items[kept++] = socks->items[i];
        else
            close(socks->items[i].fd);
    }
    socks->n = kept;
}

void listen_set_refuse(listen_set *socks)
{
    for (size_t i = 0; i < socks->n; i++)
        shutdown(socks->items[i].fd, SHUT_RD);
}

void listen_set_free(listen_set *socks, int closed)
{
    for (size_t i = 0; i < socks->n && !closed; i++)
        close(socks->items[i].fd);
    free(socks->items);
    socks->items = NULL;
    socks->n = 0;
}

int listen_set_prepare(listen_set *socks, const config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < socks->n; i++)
        socks->items[i].in_use = 0;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const listen_config *l = &cfg->listen[i];
        if (!known_address(socks, l) && probe_address(&l->addr, l->addr_len, l->address, err, errlen) < 0)
            return -1;
    }
    return 0;
}
