/* test_sockio.c - unit tests for src/sockio.c, over a real socketpair and a
 * real libevent loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sockio.h"

typedef struct fixture {
    struct event_base *base;
    struct bufferevent *bev;  /* our end, fd[0] */
    int peer;                 /* the other end, fd[1], blocking */
    sock_reader rd;
    int reads;                /* read callbacks seen */
    short last_event;         /* what the event callback got, 0 if none */
} fixture;

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ((fixture *)arg)->reads++;
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    sockio_flush(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    ((fixture *)arg)->last_event = what;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    int fd[2];
    assert_non_null(f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    assert_int_equal(fcntl(fd[0], F_SETFL, O_NONBLOCK), 0);
    f->base = event_base_new();
    f->bev = bufferevent_socket_new(f->base, fd[0], BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(f->bev);
    f->peer = fd[1];
    bufferevent_setcb(f->bev, on_read, on_write, on_event, f);
    sockio_set_flow(f->bev, 1 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sock_reader_detach(&f->rd);
    bufferevent_free(f->bev);
    if (f->peer >= 0)
        close(f->peer);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void run_once(fixture *f)
{
    event_base_loop(f->base, EVLOOP_ONCE);
}

/* The regression: a bufferevent keeps its output's start frozen, and a
 * plain evbuffer_write on it silently wrote nothing. */
static void test_flush_writes_at_once(void **state)
{
    fixture *f = *state;
    char got[16];

    evbuffer_add(bufferevent_get_output(f->bev), "hello", 5);
    sockio_flush(f->bev);
    assert_int_equal(evbuffer_get_length(bufferevent_get_output(f->bev)), 0);
    assert_int_equal(recv(f->peer, got, sizeof got, MSG_DONTWAIT), 5);
    assert_memory_equal(got, "hello", 5);
    /* Nothing left: libevent is not asked to watch for writability. */
    assert_int_equal(bufferevent_get_enabled(f->bev) & EV_WRITE, 0);
}

static void test_flush_arms_write_only_while_bytes_are_left(void **state)
{
    fixture *f = *state;
    size_t total = 8 << 20, seen = 0;
    char *blob = calloc(1, total), buf[65536];
    assert_non_null(blob);

    evbuffer_add(bufferevent_get_output(f->bev), blob, total);
    sockio_flush(f->bev);
    assert_true(evbuffer_get_length(bufferevent_get_output(f->bev)) > 0);
    assert_int_equal(bufferevent_get_enabled(f->bev) & EV_WRITE, EV_WRITE);
    /* The peer drains; libevent writes the rest, and the write callback's
     * flush turns EV_WRITE off once the output is empty. */
    for (int rounds = 0; seen < total && rounds < 100000; rounds++) {
        ssize_t n = recv(f->peer, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            seen += (size_t)n;
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    }
    assert_int_equal(seen, total);
    assert_int_equal(evbuffer_get_length(bufferevent_get_output(f->bev)), 0);
    assert_int_equal(bufferevent_get_enabled(f->bev) & EV_WRITE, 0);
    free(blob);
}

static void test_reader_delivers_bytes_then_eof(void **state)
{
    fixture *f = *state;

    assert_int_equal(sock_reader_attach(&f->rd, f->bev, 1 << 20), 0);
    sock_reader_enable(&f->rd);
    assert_int_equal(send(f->peer, "abc", 3, 0), 3);
    run_once(f);
    assert_int_equal(f->reads, 1);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->bev)), 3);
    assert_int_equal(f->last_event, 0);

    close(f->peer);
    f->peer = -1;
    run_once(f);
    assert_int_equal(f->reads, 1);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_EOF);
    assert_false(f->rd.on); /* reading stopped by itself */
}

static void test_reader_never_exceeds_its_limit(void **state)
{
    fixture *f = *state;
    char blob[10000];
    struct evbuffer *in = bufferevent_get_input(f->bev);
    memset(blob, 'x', sizeof blob);

    assert_int_equal(sock_reader_attach(&f->rd, f->bev, 4096), 0);
    sock_reader_enable(&f->rd);
    assert_int_equal(send(f->peer, blob, sizeof blob, 0), (ssize_t)sizeof blob);
    run_once(f);
    assert_int_equal(evbuffer_get_length(in), 4096);
    /* Full: the next wakeup pauses the reader instead of spinning. */
    run_once(f);
    assert_int_equal(evbuffer_get_length(in), 4096);
    assert_false(f->rd.on);
    /* The owner drains and resumes: the rest arrives. */
    evbuffer_drain(in, 4096);
    sock_reader_enable(&f->rd);
    run_once(f);
    assert_int_equal(evbuffer_get_length(in), 4096);
    evbuffer_drain(in, 4096);
    run_once(f);
    assert_int_equal(evbuffer_get_length(in), sizeof blob - 8192);
    assert_int_equal(f->last_event, 0);
}

static void test_reader_reads_big_backlogs_in_one_wakeup(void **state)
{
    fixture *f = *state;
    size_t size = 100000;
    char *blob = calloc(1, size);
    assert_non_null(blob);

    assert_int_equal(sock_reader_attach(&f->rd, f->bev, 1 << 20), 0);
    sock_reader_enable(&f->rd);
    /* As much as the socket takes without a reader. */
    ssize_t sent = send(f->peer, blob, size, MSG_DONTWAIT);
    assert_true(sent > 32768);
    run_once(f);
    /* libevent alone would have read 4 KiB. */
    assert_int_equal(f->reads, 1);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->bev)), (size_t)sent);
    free(blob);
}

static void test_reader_timeout(void **state)
{
    fixture *f = *state;

    assert_int_equal(sock_reader_attach(&f->rd, f->bev, 4096), 0);
    sockio_set_timeouts(&f->rd, 30, 0);
    sock_reader_enable(&f->rd);
    run_once(f);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
    assert_false(f->rd.on);
}

static void test_detached_reader_leaves_no_event(void **state)
{
    fixture *f = *state;

    assert_int_equal(sock_reader_attach(&f->rd, f->bev, 4096), 0);
    sock_reader_enable(&f->rd);
    sock_reader_detach(&f->rd);
    sock_reader_detach(&f->rd); /* twice is harmless */
    assert_int_equal(send(f->peer, "abc", 3, 0), 3);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->reads, 0);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(f->bev)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_writes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_arms_write_only_while_bytes_are_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_delivers_bytes_then_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_never_exceeds_its_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_reads_big_backlogs_in_one_wakeup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detached_reader_leaves_no_event, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
