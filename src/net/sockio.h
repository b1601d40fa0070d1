/* sockio.h - how relays read and write their sockets.
 *
 * Connections are libevent bufferevents, but on a plain socket the hot path
 * does its own I/O, because system calls are what a small exchange costs
 * (about 3 us each under gVisor, 80% of the CPU a request takes there):
 *   - reading: libevent's read event asks the kernel how much is readable
 *     (FIONREAD) before every read, one system call more per read, and then
 *     reads at most 4 KiB. A sock_reader takes over the bufferevent's read
 *     side: one readv per wakeup while the socket has little, bigger ones up
 *     to the relay's limit while it has more;
 *   - writing: sockio_flush writes in the wakeup that produced the bytes and
 *     only then, if some are left, asks libevent to watch for writability.
 * A TLS bufferevent (an HTTPS upstream) keeps libevent's own I/O: its filter
 * reads and writes the socket underneath.
 */
#ifndef ANONPROXY_SOCKIO_H
#define ANONPROXY_SOCKIO_H

#include <stddef.h>

struct bufferevent;
struct event;

/* The read side of one bufferevent. It calls the bufferevent's own
 * callbacks (bufferevent_setcb) as libevent would: the read callback when
 * bytes arrived, the event callback with BEV_EVENT_READING and EOF, ERROR or
 * TIMEOUT. Reading stops by itself on EOF, error or timeout. */
typedef struct sock_reader {
    struct bufferevent *bev;   /* not owned */
    struct event *ev;          /* owned; NULL under TLS */
    size_t limit;              /* a read never brings the input above this */
    unsigned timeout_ms;       /* 0: none */
    int on;
    int error;                 /* errno met after data: reported next */
} sock_reader;

/* Takes over bev's reading (stopped until sock_reader_enable). Returns 0,
 * or -1 when out of memory. */
int sock_reader_attach(sock_reader *r, struct bufferevent *bev, size_t limit);

/* Gives reading back to libevent (disabled) and frees the reader's event.
 * Must come before bev is freed or handed on; safe on a detached reader. */
void sock_reader_detach(sock_reader *r);

void sock_reader_enable(sock_reader *r);
void sock_reader_disable(sock_reader *r);

/* Timeouts for r's bufferevent, 0 for none: BEV_EVENT_READING|TIMEOUT when
 * nothing was read for read_ms while reading (from the next
 * sock_reader_enable on), BEV_EVENT_WRITING|TIMEOUT when output bytes could
 * not be written for write_ms. Either stops that direction, as libevent
 * does. */
void sockio_set_timeouts(sock_reader *r, unsigned read_ms, unsigned write_ms);

/* Flow settings for a relay's bufferevent: EV_WRITE off while the output is
 * empty (see sockio_flush), libevent's write callback fires
 * when its output drains below limit / 2, one write moves up to `limit`
 * bytes (libevent's default of 16 KiB costs throughput), and under TLS
 * reading stops at `limit` bytes of input. */
void sockio_set_flow(struct bufferevent *bev, size_t limit);

/* Sends what bev's output holds. A relay keeps EV_WRITE disabled while its
 * output is empty: the bytes are written now, and libevent watches for
 * writability only while some are left, so a small exchange costs no
 * epoll_ctl. With EV_WRITE already on, the socket was full at the last try
 * and libevent writes when it drains. Errors are left for libevent to
 * report. Call it after adding to the output and from the write callback. */
void sockio_flush(struct bufferevent *bev);

#endif
