/* sockio.c - see sockio.h. */
#include "net/sockio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/uio.h>

#include "core/config.h"

/* The first read of a wakeup: room for any ordinary message head without
 * reserving much memory. Each read that comes back full means the socket
 * holds more, and the next one may be READ_GROWTH times larger, up to the
 * limit. Growing, not jumping to the limit: evbuffer chains move whole
 * between buffers, so a chain reserved far larger than what arrived would
 * travel around mostly empty; this way a chain is at most READ_GROWTH times
 * larger than the full read before it. Big reads matter: 256 KiB pieces
 * halved tunnel throughput under gVisor. */
#define FIRST_READ (16 * 1024)
#define READ_GROWTH 4

typedef enum read_outcome { GOT_DATA, GOT_NOTHING, GOT_EOF, GOT_ERROR } read_outcome;

/* Shortens vec to n bytes in all; returns how many vectors hold some. */
static int clip_iovecs(struct evbuffer_iovec *vec, int nvec, size_t n)
{
    int used = 0;
    for (; used < nvec && n > 0; used++) {
        if (vec[used].iov_len > n)
            vec[used].iov_len = n;
        n -= vec[used].iov_len;
    }
    return used;
}

static size_t room_below(size_t have, size_t limit)
{
    return have >= limit ? 0 : limit - have;
}

/* Reads from fd into in, never past `limit` bytes in it. Data read before an
 * EOF or an error is reported first: an EOF shows again on the next read,
 * an error is kept in *err (the kernel reports it only once). */
static read_outcome read_some(struct evbuffer *in, evutil_socket_t fd, size_t limit, int *err)
{
    size_t have = evbuffer_get_length(in);
    size_t want = room_below(have, limit);
    if (want > FIRST_READ)
        want = FIRST_READ;
    read_outcome outcome = GOT_NOTHING;

    /* A bufferevent keeps the end of its input frozen against its user. */
    evbuffer_unfreeze(in, 0);
    while (want > 0) {
        struct evbuffer_iovec vec[2];
        int nvec = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
        if (nvec <= 0) {
            if (outcome != GOT_DATA)
                outcome = GOT_ERROR; /* out of memory */
            break;
        }
        /* The reservation may be larger than asked: read no more. */
        nvec = clip_iovecs(vec, nvec, want);
        ssize_t got = readv(fd, (struct iovec *)vec, nvec);
        if (got <= 0) {
            evbuffer_commit_space(in, vec, 0);
            int failed = got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
            if (outcome == GOT_DATA) {
                if (failed)
                    *err = errno;
                break;
            }
            if (got == 0)
                outcome = GOT_EOF;
            else if (failed)
                outcome = GOT_ERROR;
            break;
        }
        evbuffer_commit_space(in, vec, clip_iovecs(vec, nvec, (size_t)got));
        outcome = GOT_DATA;
        if ((size_t)got < want)
            break; /* the socket is drained */
        have += (size_t)got;
        size_t next = want * READ_GROWTH;
        want = room_below(have, limit);
        if (want > next)
            want = next;
    }
    evbuffer_freeze(in, 0);
    return outcome;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    sock_reader *r = arg;
    struct bufferevent *bev = r->bev;
    bufferevent_data_cb readcb;
    bufferevent_event_cb eventcb;
    void *cbarg;
    bufferevent_getcb(bev, &readcb, NULL, &eventcb, &cbarg);

    short report;
    if (what & EV_TIMEOUT) {
        report = BEV_EVENT_TIMEOUT;
    } else if (r->error) {
        EVUTIL_SET_SOCKET_ERROR(r->error);
        report = BEV_EVENT_ERROR;
    } else {
        struct evbuffer *in = bufferevent_get_input(bev);
        switch (read_some(in, fd, r->limit, &r->error)) {
        case GOT_DATA:
            if (readcb)
                readcb(bev, cbarg);
            return;
        case GOT_NOTHING:
            /* A full input waits for its owner to drain it and resume. */
            if (evbuffer_get_length(in) >= r->limit)
                sock_reader_disable(r);
            return;
        case GOT_EOF:
            report = BEV_EVENT_EOF;
            break;
        default:
            report = BEV_EVENT_ERROR;
            break;
        }
    }
    sock_reader_disable(r);
    if (eventcb)
        eventcb(bev, BEV_EVENT_READING | report, cbarg);
}

int sock_reader_attach(sock_reader *r, struct bufferevent *bev, size_t limit)
{
    r->bev = bev;
    r->ev = NULL;
    r->limit = limit;
    r->timeout_ms = 0;
    r->on = 0;
    r->error = 0;
    bufferevent_disable(bev, EV_READ);
    if (bufferevent_get_underlying(bev))
        return 0;
    r->ev = event_new(bufferevent_get_base(bev), bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                      on_readable, r);
    return r->ev ? 0 : -1;
}

void sock_reader_detach(sock_reader *r)
{
    if (r->ev)
        event_free(r->ev);
    else if (r->bev)
        bufferevent_disable(r->bev, EV_READ);
    r->ev = NULL;
    r->bev = NULL;
    r->on = 0;
}

void sock_reader_enable(sock_reader *r)
{
    if (!r->ev) {
        /* TLS: libevent also stops reading by itself (EOF, timeout), so
         * no state is cached here. */
        bufferevent_enable(r->bev, EV_READ);
        return;
    }
    if (r->on)
        return;
    r->on = 1;
    struct timeval tv = ms_to_timeval(r->timeout_ms);
    event_add(r->ev, r->timeout_ms ? &tv : NULL);
}

void sock_reader_disable(sock_reader *r)
{
    if (!r->ev) {
        bufferevent_disable(r->bev, EV_READ);
        return;
    }
    if (!r->on)
        return;
    r->on = 0;
    event_del(r->ev);
}

void sockio_set_timeouts(sock_reader *r, unsigned read_ms, unsigned write_ms)
{
    struct timeval rtv = ms_to_timeval(read_ms), wtv = ms_to_timeval(write_ms);
    r->timeout_ms = read_ms;
    /* Under TLS libevent reads, so it keeps the read timeout too. */
    bufferevent_set_timeouts(r->bev, !r->ev && read_ms ? &rtv : NULL, write_ms ? &wtv : NULL);
}

void sockio_set_flow(struct bufferevent *bev, size_t limit)
{
    /* libevent starts a bufferevent with EV_WRITE on, which would leave the
     * first write of a relay to the next loop iteration. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
    bufferevent_setwatermark(bev, EV_WRITE, limit / 2, 0);
    bufferevent_set_max_single_write(bev, limit);
    /* On a plain socket the sock_reader bounds the input itself. */
    if (bufferevent_get_underlying(bev)) {
        bufferevent_setwatermark(bev, EV_READ, 0, limit);
        bufferevent_set_max_single_read(bev, limit);
    }
}

void sockio_flush(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    if (bufferevent_get_underlying(bev)) {
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    if (evbuffer_get_length(out) > 0 && !(bufferevent_get_enabled(bev) & EV_WRITE)) {
        /* A bufferevent keeps the start of its output frozen against its
         * user: without this, evbuffer_write would write nothing. */
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, bufferevent_getfd(bev));
        evbuffer_freeze(out, 1);
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(bev, EV_WRITE);
    else
        bufferevent_disable(bev, EV_WRITE);
}
