/* test_health.c - unit tests for health.c against a scripted judge.
 *
 * The "judge" is a blocking server in a thread of its own on 127.0.0.2. The
 * upstream under test is an HTTP proxy URL pointing at that same server, so a
 * check sends it an absolute-form GET (the exit is an HTTP proxy), and what
 * the server answers is the judge's answer as it reaches the checker. Runs
 * from the repository root (build/test-geo.mmdb for the country tests).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/config_load.h"
#include "egress/health.h"
#include "egress/upstream.h"
#include "core/log.h"
#include "core/util.h"

#define TEST_GEO "build/test-geo.mmdb"

typedef struct fake_judge {
    int fd;
    unsigned port;
    pthread_t thread;
    const char *answer;        /* sent whole to every request; NULL: never answer */
    atomic_int served;         /* answers sent */
    pthread_mutex_t lock;
    char request[4096];        /* the last request head (lock) */
} fake_judge;

static fake_judge judge;

/* Reads a request head into buf; returns its length, 0 when cut short. */
static size_t read_head(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return len;
    }
    return 0;
}

static void *judge_run(void *arg)
{
    fake_judge *j = arg;
    int c;
    /* accept fails once the test shuts the listener down. */
    while ((c = accept(j->fd, NULL, NULL)) >= 0) {
        char buf[sizeof j->request];
        if (read_head(c, buf, sizeof buf)) {
            pthread_mutex_lock(&j->lock);
            memcpy(j->request, buf, sizeof buf);
            pthread_mutex_unlock(&j->lock);
            if (j->answer) {
                ssize_t n = send(c, j->answer, strlen(j->answer), MSG_NOSIGNAL);
                (void)n;
                atomic_fetch_add(&j->served, 1);
            } else {
                while (recv(c, buf, sizeof buf, 0) > 0) /* until the checker gives up */
                    ;
            }
        }
        close(c);
    }
    return NULL;
}

static void judge_start(const char *answer)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;

    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    judge.answer = answer;
    atomic_store(&judge.served, 0);
    judge.request[0] = '\0';
    pthread_mutex_init(&judge.lock, NULL);
    judge.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(judge.fd >= 0);
    assert_int_equal(bind(judge.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(judge.fd, 16), 0);
    assert_int_equal(getsockname(judge.fd, (struct sockaddr *)&a, &len), 0);
    judge.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&judge.thread, NULL, judge_run, &judge), 0);
}

static void judge_stop(void)
{
    shutdown(judge.fd, SHUT_RDWR);
    pthread_join(judge.thread, NULL);
    close(judge.fd);
    pthread_mutex_destroy(&judge.lock);
}

/* A config with one upstream, the fake judge's own address unless
 * upstream_port says otherwise; extra goes into "health". */
static void load(config *cfg, unsigned upstream_port, const char *extra)
{
    char json[1024], err[512] = "";
    snprintf(json, sizeof json,
             "{\"upstreams\": [{\"url\": \"http://u:p@127.0.0.2:%u\", \"name\": \"t1\"}],"
             " \"geoip\": \"" TEST_GEO "\","
             " \"health\": {\"judge_url\": \"http://127.0.0.2:%u/j?x=1\"%s}}",
             upstream_port ? upstream_port : judge.port, judge.port, extra);
    if (config_parse(json, "anonproxy.json", cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
}

static upstream *check_once(config *cfg)
{
    char err[256] = "";
    if (health_check_once(cfg, err, sizeof err) != 0)
        fail_msg("health_check_once: %s", err);
    return &cfg->upstreams->items[0];
}

static int setup_geo(void **state)
{
    (void)state;
    if (access(TEST_GEO, R_OK) != 0) {
        fprintf(stderr, "%s is missing: make -f mk/geo.mk %s\n", TEST_GEO, TEST_GEO);
        return -1;
    }
    log_set_level(LOG_ERROR);
    return 0;
}

#define JSON_OK "{\"remote_ip\": \"127.0.0.4\", \"verdict\": \"elite\", \"headers\": []}"

/* ---------------------------------------------------------------- tests */

static void test_content_length_answer(void **state)
{
    (void)state;
    config cfg;
    judge_start("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 61\r\n\r\n" JSON_OK);
    load(&cfg, 0, "");
    upstream *u = &cfg.upstreams->items[0];
    char cc[3];
    upstream_country(u, cc);
    assert_string_equal(cc, "DE"); /* the first hop's address, before any check */

    check_once(&cfg);
    assert_int_equal(atomic_load(&u->healthy), 1);
    assert_true(atomic_load(&u->latency_ms) > 0);
    assert_string_equal(u->exit_ip, "127.0.0.4");
    assert_string_equal(u->verdict, "elite");
    upstream_country(u, cc);
    assert_string_equal(cc, "FR"); /* now the exit's */
    assert_int_equal(atomic_load(&u->country_from), COUNTRY_EXIT_IP);

    /* The exit is an HTTP proxy: absolute-form, with its credentials. */
    char want[256];
    snprintf(want, sizeof want,
             "GET http://127.0.0.2:%u/j?x=1 HTTP/1.1\r\nHost: 127.0.0.2:%u\r\n"
             "Accept: application/json\r\nUser-Agent: anonproxy-health\r\nConnection: close\r\n"
             "Proxy-Authorization: Basic dTpw\r\n\r\n",
             judge.port, judge.port);
    assert_string_equal(judge.request, want);
    config_free(&cfg);
    judge_stop();
}

static void test_configured_country_stays(void **state)
{
    (void)state;
    config cfg;
    char json[512], err[512] = "", cc[3];
    judge_start("HTTP/1.1 200 OK\r\nContent-Length: 61\r\n\r\n" JSON_OK);
    snprintf(json, sizeof json,
             "{\"upstreams\": [{\"url\": \"http://127.0.0.2:%u\", \"name\": \"t1\", \"country\": \"JP\"}],"
             " \"geoip\": \"" TEST_GEO "\", \"health\": {\"judge_url\": \"http://127.0.0.2:%u/\"}}",
             judge.port, judge.port);
    if (config_parse(json, "anonproxy.json", &cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    upstream *u = check_once(&cfg);
    assert_int_equal(atomic_load(&u->healthy), 1);
    upstream_country(u, cc);
    assert_string_equal(cc, "JP");
    assert_int_equal(atomic_load(&u->country_from), COUNTRY_CONFIGURED);
    assert_string_equal(u->exit_ip, "127.0.0.4");
    config_free(&cfg);
    judge_stop();
}

static void test_chunked_answer(void **state)
{
    (void)state;
    config cfg;
    judge_start("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "e\r\n{\"remote_ip\": \r\n1;ext=1\r\n\"\r\n"
                "1d\r\n::1\", \"verdict\": \"anonymous\"}\r\n0\r\nX-Trailer: 1\r\n\r\n");
    load(&cfg, 0, "");
    upstream *u = check_once(&cfg);
    assert_int_equal(atomic_load(&u->healthy), 1);
    assert_string_equal(u->exit_ip, "::1");
    assert_string_equal(u->verdict, "anonymous");
    config_free(&cfg);
    judge_stop();
}

static void test_close_delimited_answer(void **state)
{
    (void)state;
    config cfg;
    judge_start("HTTP/1.0 200 OK\r\n\r\n{\"remote_ip\": \"127.0.1.9\"}");
    load(&cfg, 0, "");
    upstream *u = check_once(&cfg);
    assert_int_equal(atomic_load(&u->healthy), 1);
    assert_string_equal(u->exit_ip, "127.0.1.9");
    assert_string_equal(u->verdict, "");
    /* An exit the database does not know keeps the country it had. */
    assert_int_equal(atomic_load(&u->country_from), COUNTRY_HOST);
    config_free(&cfg);
    judge_stop();
}

/* Each answer must take the upstream down. */
static void test_bad_answers(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 61\r\n\r\n" JSON_OK,
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n{\"remote_ip\": \"127.0.0.x\"}",
        "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"verdict\": \"elite\"}\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 46\r\n\r\n{\"remote_ip\": \"::1\", \"verdict\": \"el\\u001bite\"}",
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 61\r\n\r\n{\"remote_ip\"",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
        "garbage\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        config cfg;
        judge_start(bad[i]);
        load(&cfg, 0, "");
        upstream *u = check_once(&cfg);
        if (atomic_load(&u->healthy) != 0)
            fail_msg("answer %zu left the upstream up", i);
        assert_int_equal(atomic_load(&u->latency_ms), 0);
        config_free(&cfg);
        judge_stop();
    }
}

static void test_oversized_answer(void **state)
{
    (void)state;
    size_t size = 70000;
    char *answer = malloc(size + 1);
    assert_non_null(answer);
    int n = snprintf(answer, size, "HTTP/1.0 200 OK\r\n\r\n{\"remote_ip\": \"::1\", \"pad\": \"");
    memset(answer + n, 'x', size - (size_t)n - 2);
    memcpy(answer + size - 2, "\"}", 3);
    config cfg;
    judge_start(answer);
    load(&cfg, 0, "");
    upstream *u = check_once(&cfg);
    assert_int_equal(atomic_load(&u->healthy), 0);
    config_free(&cfg);
    judge_stop();
    free(answer);
}

static void test_refused_and_timeout(void **state)
{
    (void)state;
    config cfg;
    judge_start(NULL); /* reads the request, never answers */

    /* A closed port: the listener's own, once closed, is as good as any. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    load(&cfg, ntohs(a.sin_port), "");
    assert_int_equal(atomic_load(&check_once(&cfg)->healthy), 0);
    config_free(&cfg);

    struct timeval t0, t1;
    load(&cfg, 0, ", \"timeout\": 0.3");
    monotonic_now(&t0);
    assert_int_equal(atomic_load(&check_once(&cfg)->healthy), 0);
    monotonic_now(&t1);
    unsigned long ms = elapsed_ms(&t0, &t1);
    assert_true(ms >= 290 && ms < 1000);
    config_free(&cfg);
    judge_stop();
}

static int wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 300 && atomic_load(v) != want; i++)
        usleep(10000);
    return atomic_load(v) == want;
}

/* A down upstream needs `rise` successes to come back, also when a worker
 * took it down while the checker thought it up. */
static void test_periodic_rise_after_mark_down(void **state)
{
    (void)state;
    config cfg;
    char err[256] = "";
    judge_start("HTTP/1.1 200 OK\r\nContent-Length: 61\r\n\r\n" JSON_OK);
    load(&cfg, 0, ", \"interval\": 0.02, \"rise\": 3, \"fall\": 1");
    upstream *u = &cfg.upstreams->items[0];
    health *h = health_start(&cfg, err, sizeof err);
    assert_non_null(h);
    /* Up from the start (upstream_init): wait for the checker to agree. */
    for (int i = 0; i < 300 && atomic_load(&judge.served) < 4; i++)
        usleep(10000);
    assert_true(atomic_load(&judge.served) >= 4);

    upstream_mark_down(u);
    int before = atomic_load(&judge.served);
    assert_true(wait_for(&u->healthy, 1));
    /* At most one of the three successes was answered before the mark. */
    assert_true(atomic_load(&judge.served) - before >= 2);
    health_stop(h);
    config_free(&cfg);
    judge_stop();
}

static void test_periodic_fall_and_stop_in_flight(void **state)
{
    (void)state;
    config cfg;
    char err[256] = "";
    judge_start(NULL);
    load(&cfg, 0, ", \"interval\": 0.05, \"timeout\": 0.1, \"fall\": 2");
    health *h = health_start(&cfg, err, sizeof err);
    assert_non_null(h);
    assert_true(wait_for(&cfg.upstreams->items[0].healthy, 0));
    /* Whatever is in flight now is cancelled, not waited for. */
    health_stop(h);
    config_free(&cfg);
    judge_stop();
}

static void test_no_upstreams_no_thread(void **state)
{
    (void)state;
    config cfg;
    char err[64] = "";
    assert_int_equal(config_parse("{}", "anonproxy.json", &cfg, err, sizeof err), 0);
    assert_null(health_start(&cfg, err, sizeof err));
    assert_string_equal(err, "");
    health_stop(NULL);
    assert_int_equal(health_check_once(&cfg, err, sizeof err), 0);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_answer),
        cmocka_unit_test(test_configured_country_stays),
        cmocka_unit_test(test_chunked_answer),
        cmocka_unit_test(test_close_delimited_answer),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_oversized_answer),
        cmocka_unit_test(test_refused_and_timeout),
        cmocka_unit_test(test_periodic_rise_after_mark_down),
        cmocka_unit_test(test_periodic_fall_and_stop_in_flight),
        cmocka_unit_test(test_no_upstreams_no_thread),
    };
    return cmocka_run_group_tests(tests, setup_geo, NULL);
}
