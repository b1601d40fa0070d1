/* test_geoip.c - unit tests for geoip.c: lookups in both record layouts,
 * IPv4-mapped addresses, unknown and bad addresses, open errors, concurrent
 * lookups and `anonproxy geo`.
 *
 * Runs from the repository root, against databases made from
 * geo/test-countries.csv: `make build/test-geo.mmdb build/test-geo-maxmind.mmdb`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/geoip.h"
#include "tools/geo_cmd.h"

/* One test database: its file, and what differs between the layouts. */
typedef struct testdb {
    const char *path;
    const char *registered_only;   /* country of 2001:db8::1, which has only registered_country */
    geoip *g;
} testdb;

static testdb ip_location_db = {"build/test-geo.mmdb", NULL, NULL};
static testdb maxmind = {"build/test-geo-maxmind.mmdb", "SE", NULL};

/* What geo/test-countries.csv says; cc NULL = unknown. */
static const struct {
    const char *ip, *cc;
} cases[] = {
    {"127.0.0.1", "US"},        {"127.0.0.2", "DE"},        {"127.0.0.3", "DE"},
    {"127.0.0.4", "FR"},        {"127.0.0.5", "FR"},        {"127.0.0.6", "GB"},
    {"127.0.0.7", "JP"},        {"127.0.0.8", "NL"},        {"127.0.0.15", "NL"},
    {"::1", "US"},              {"::ffff:127.0.0.2", "DE"}, {"::FFFF:127.0.0.15", "NL"},
    {"127.0.0.0", NULL},        {"127.0.0.16", NULL},       {"127.0.1.0", NULL},
    {"127.0.1.255", NULL},      {"::2", NULL},              {"::ffff:127.0.1.1", NULL},
    {"8.8.8.8", NULL},          {"2001:db9::1", NULL},
};
#define NCASES (sizeof cases / sizeof cases[0])

static int open_testdb(testdb *db)
{
    char err[512];
    db->g = geoip_open(db->path, err, sizeof err);
    if (!db->g)
        print_error("%s (run `make %s` from the repository root)\n", err, db->path);
    return db->g ? 0 : -1;
}

static int open_db(void **state)
{
    return open_testdb(*state);
}

static int close_db(void **state)
{
    geoip_close(((testdb *)*state)->g);
    return 0;
}

static int open_both(void **state)
{
    (void)state;
    return open_testdb(&ip_location_db) < 0 || open_testdb(&maxmind) < 0 ? -1 : 0;
}

static int close_both(void **state)
{
    (void)state;
    geoip_close(ip_location_db.g);
    geoip_close(maxmind.g);
    return 0;
}

/* Asserts one lookup: want is a country code, or NULL for "unknown". */
static void expect_country(const geoip *g, const char *ip, const char *want)
{
    char cc[3] = "";
    int rc = geoip_country_str(g, ip, cc);
    if (rc != (want ? 1 : 0) || (want && strcmp(cc, want) != 0))
        fail_msg("%s: got %d '%s', want %s", ip, rc, cc, want ? want : "unknown");
}

static void test_countries(void **state)
{
    const testdb *db = *state;
    for (size_t i = 0; i < NCASES; i++)
        expect_country(db->g, cases[i].ip, cases[i].cc);
}

/* MaxMind's fallback, absent from the ip-location-db layout. */
static void test_registered_country(void **state)
{
    const testdb *db = *state;
    expect_country(db->g, "2001:db8::1", db->registered_only);
}

/* geoip_country() proper: socket addresses as accept() and connect() see them. */
static void test_sockaddr(void **state)
{
    const testdb *db = *state;
    char cc[3] = "";

    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "127.0.0.6", &a4.sin_addr);
    assert_int_equal(geoip_country(db->g, (struct sockaddr *)&a4, cc), 1);
    assert_string_equal(cc, "GB");

    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "::ffff:127.0.0.7", &a6.sin6_addr);
    assert_int_equal(geoip_country(db->g, (struct sockaddr *)&a6, cc), 1);
    assert_string_equal(cc, "JP");

    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/tmp/x"};
    strcpy(cc, "??");
    assert_int_equal(geoip_country(db->g, (struct sockaddr *)&un, cc), -1);
    assert_string_equal(cc, "??");
}

static void test_not_an_ip(void **state)
{
    const testdb *db = *state;
    static const char *const bad[] = {
        "", "127.0.0", "127.0.0.256", "localhost", "::g", " 127.0.0.1", "127.0.0.1 ",
        "[::1]", "::1%lo", "127.0.0.1/32",
    };
    char cc[3] = "??";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (geoip_country_str(db->g, bad[i], cc) != -1)
            fail_msg("'%s' was taken for an IP address", bad[i]);
    assert_string_equal(cc, "??");
}

static void expect_open_error(const char *path, const char *msg)
{
    char err[512] = "";
    assert_null(geoip_open(path, err, sizeof err));
    assert_string_equal(err, msg);
}

static void test_open_errors(void **state)
{
    (void)state;
    expect_open_error("build/no-such.mmdb", "build/no-such.mmdb: cannot open: No such file or directory");
    expect_open_error("geo/test-countries.csv",
                      "geo/test-countries.csv: cannot open: The MaxMind DB file contains invalid metadata");
    expect_open_error("geo", "geo: cannot open: Is a directory");

    char empty[] = "/tmp/test_geoip.XXXXXX", msg[128];
    int fd = mkstemp(empty);
    assert_true(fd >= 0);
    close(fd);
    snprintf(msg, sizeof msg, "%s: cannot open: empty file", empty);
    expect_open_error(empty, msg);
    unlink(empty);

    char err[16];   /* a short buffer truncates, NUL-terminated */
    assert_null(geoip_open("build/no-such.mmdb", err, sizeof err));
    assert_string_equal(err, "build/no-such.m");
    geoip_close(NULL);
}

/* Every thread runs the whole table many times through the same handles. */
#define THREADS 4
#define ROUNDS 2000

static void *lookup_thread(void *arg)
{
    (void)arg;
    size_t wrong = 0;
    for (int r = 0; r < ROUNDS; r++)
        for (size_t i = 0; i < NCASES; i++) {
            const testdb *db = (r & 1) ? &maxmind : &ip_location_db;
            char cc[3] = "";
            int rc = geoip_country_str(db->g, cases[i].ip, cc);
            wrong += cases[i].cc ? rc != 1 || strcmp(cc, cases[i].cc) != 0 : rc != 0;
        }
    return (void *)(uintptr_t)wrong;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    int started = 0;
    uintptr_t wrong = 0;
    /* All are joined before any assertion, which would return with threads
     * still using the handles that teardown closes. */
    while (started < THREADS && pthread_create(&t[started], NULL, lookup_thread, NULL) == 0)
        started++;
    for (int i = 0; i < started; i++) {
        void *w;
        pthread_join(t[i], &w);
        wrong += (uintptr_t)w;
    }
    assert_int_equal(started, THREADS);
    assert_int_equal(wrong, 0);
}

/* Runs geo_main() on a NULL-terminated argv, stdout and stderr captured into
 * out and err. */
static int run_geo(char *out, char *err, size_t len, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;

    /* No assertion may fail while the output is redirected. */
    FILE *files[2] = {tmpfile(), tmpfile()};
    assert_non_null(files[0]);
    assert_non_null(files[1]);
    char *bufs[2] = {out, err};
    int fds[2] = {STDOUT_FILENO, STDERR_FILENO}, saved[2];
    fflush(NULL);
    for (int i = 0; i < 2; i++) {
        saved[i] = dup(fds[i]);
        dup2(fileno(files[i]), fds[i]);
    }
    optind = 0;   /* glibc: full getopt reset, as each call is a fresh command line */
    int rc = geo_main(argc, argv);
    fflush(NULL);
    for (int i = 0; i < 2; i++) {
        dup2(saved[i], fds[i]);
        close(saved[i]);
        rewind(files[i]);
        size_t n = fread(bufs[i], 1, len - 1, files[i]);
        bufs[i][n] = '\0';
        fclose(files[i]);
    }
    return rc;
}

/* `anonproxy geo ARGS...` into the out and err of the calling test. */
#define GEO(...) run_geo(out, err, sizeof out, (char *[]){"geo", __VA_ARGS__, NULL})

static void test_geo_command(void **state)
{
    (void)state;
    char out[1024], err[1024];

    assert_int_equal(GEO("--db", "build/test-geo.mmdb", "127.0.0.1", "::ffff:127.0.0.4", "127.0.1.1"), 0);
    assert_string_equal(out, "127.0.0.1 US\n::ffff:127.0.0.4 FR\n127.0.1.1 -\n");
    assert_string_equal(err, "");

    /* A bad address fails the command, not the lookups of the others. */
    assert_int_equal(GEO("--db", "build/test-geo-maxmind.mmdb", "nope", "::1"), 1);
    assert_string_equal(out, "::1 US\n");
    assert_string_equal(err, "anonproxy geo: 'nope' is not an IP address\n");

    assert_int_equal(GEO("--db", "build/no-such.mmdb", "::1"), 1);
    assert_string_equal(out, "");
    assert_string_equal(err, "anonproxy geo: build/no-such.mmdb: cannot open: No such file or directory\n");

    assert_int_equal(GEO("--db", "build/test-geo.mmdb"), 1);
    assert_non_null(strstr(err, "no IP address given"));

    assert_int_equal(GEO("-h"), 0);
    assert_non_null(strstr(out, "usage: anonproxy geo [--db FILE] IP..."));
}

/* A test once per layout, named after both. */
#define BOTH(f)                                                               \
    {#f "(ip-location-db)", f, open_db, close_db, &ip_location_db}, {#f "(maxmind)", f, open_db, close_db, &maxmind}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_countries),
        BOTH(test_registered_country),
        BOTH(test_sockaddr),
        BOTH(test_not_an_ip),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_threads, open_both, close_both),
        cmocka_unit_test(test_geo_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
