/* main.c - command line, start-up and signal handling.
 *
 *   anonproxy [-c FILE] [-t] [-d] [-h] [-V]
 *   anonproxy COMMAND [ARGS...]      (see `subcommands` below)
 *
 * The main thread loads the configuration, starts the workers and then only
 * waits for signals: SIGTERM or SIGINT start a graceful shutdown (stop
 * accepting, let exchanges in flight finish for up to timeouts.shutdown);
 * SIGHUP reloads the configuration and its policies (a broken file is
 * reported and the running configuration kept).
 */
#include <errno.h>
#include <getopt.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_load.h"
#include "core/geoip.h"
#include "core/log.h"
#include "core/util.h"
#include "egress/health.h"
#include "egress/upstream.h"
#include "http/policy.h"
#include "net/listener.h"
#include "net/workers.h"
#include "tools/geo_cmd.h"
#include "tools/judge_cmd.h"
#include "tools/upstreams_cmd.h"
#include "tools/verify.h"

#define ANONPROXY_VERSION "0.1.0"

/* Tools that live in the same binary: `anonproxy NAME ARGS...`. Each takes
 * its own options, argv[0] being its name. */
typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"geo", geo_main, "look up the country of IP addresses"},
    {"judge", judge_main, "serve a whatismyip judge"},
    {"upstreams", upstreams_main, "check every upstream once and list it"},
    {"verify", verify_main, "check a proxy's anonymity against a judge"},
    {NULL, NULL, NULL},
};

static void usage_commands(FILE *out)
{
    for (const subcommand *s = subcommands; s->name; s++)
        fprintf(out, "  anonproxy %-10s %s\n", s->name, s->summary);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anonproxy [-c FILE] [-t] [-d] [-h] [-V]\n"
            "  -c, --config FILE  configuration file (default: " DEFAULT_CONFIG ")\n"
            "  -t, --test         check the configuration and exit (0 if valid, 1 if not)\n"
            "  -d, --debug        log at debug level, whatever the configuration says\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n");
    usage_commands(out);
}

/* One configuration and what runs with it. Reloading starts a new
 * generation beside the old one, which then drains like at shutdown. */
typedef struct generation {
    config cfg;
    worker *ws;
    health *checker;
} generation;

/* Loads path and starts its workers (on sockets from socks) and checker.
 * Returns NULL after logging why. */
static generation *generation_start(const char *path, listen_set *socks)
{
    char err[1024];
    generation *g = calloc(1, sizeof *g);
    if (!g) {
        log_error("out of memory");
        return NULL;
    }
    if (config_load(path, &g->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        free(g);
        return NULL;
    }
    const config *cfg = &g->cfg;
    if (workers_start(cfg, socks, &g->ws, err, sizeof err) < 0) {
        log_error("%s", err);
        config_free(&g->cfg);
        free(g);
        return NULL;
    }
    g->checker = health_start(cfg, err, sizeof err);
    if (!g->checker && cfg->upstreams->n) {
        log_error("%s", err);
        workers_stop(g->ws, cfg->workers, 0);
        workers_join(g->ws, cfg->workers);
        config_free(&g->cfg);
        free(g);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const listen_config *l = &cfg->listen[i];
        if (l->policy)
            log_info("listening on %s (%s mode), %u worker(s)", l->address, policy_name(l->policy),
                     cfg->workers);
        else
            log_info("listening on %s (%s), %u worker(s)", l->address, l->kind->name, cfg->workers);
    }
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        lim.rlim_cur < 2 * cfg->limits.max_connections + 64)
        log_warn("the open-file limit (%llu) is below what limits.max_connections (%zu) needs "
                 "(two descriptors per tunnel): connections beyond it will fail",
                 (unsigned long long)lim.rlim_cur, cfg->limits.max_connections);
    if (cfg->upstreams->n && !cfg->geo)
        log_warn("no GeoIP database (%s): exits have only their configured countries; "
                 "`make geo` fetches one", cfg->geoip_path);
    return g;
}

/* Stops accepting, lets exchanges finish (timeouts.shutdown), frees g.
 * final: the listening sockets close too (otherwise the next generation
 * has taken them over). */
static void generation_stop(generation *g, int final)
{
    health_stop(g->checker);
    workers_stop(g->ws, g->cfg.workers, final);
    workers_join(g->ws, g->cfg.workers);
    config_free(&g->cfg);
    free(g);
}

/* Every connection costs a descriptor, a tunnel two: take the hard limit
 * rather than the common soft default of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            log_warn("cannot raise the open-file limit: %s", strerror(errno));
    }
}

static int serve(const char *path, int debug)
{
    /* Workers inherit this mask: only the main thread takes these signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    raise_fd_limit();
    listen_set socks = {NULL, 0};
    generation *g = generation_start(path, &socks);
    if (!g) {
        listen_set_free(&socks, 0);
        return 1;
    }
    for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig != SIGHUP) {
            log_info("%s received: finishing exchanges in flight (at most %u ms)", strsignal(sig),
                     g->cfg.timeouts.shutdown_ms);
            listen_set_refuse(&socks);
            generation_stop(g, 1);
            listen_set_free(&socks, 1);
            log_info("stopped");
            return 0;
        }
        log_info("SIGHUP received: reloading %s", path);
        generation *next = generation_start(path, &socks);
        if (!next) {
            log_error("reload failed: still running the previous configuration");
            continue;
        }
        log_set_level(debug ? LOG_DEBUG : next->cfg.log_level);
        generation_stop(g, 0);
        listen_set_prune(&socks);
        g = next;
        log_info("configuration reloaded");
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"debug", no_argument, NULL, 'd'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    int test_only = 0, debug = 0, opt;

    if (argc > 1)
        for (const subcommand *s = subcommands; s->name; s++)
            if (strcmp(argv[1], s->name) == 0)
                return s->run(argc - 1, argv + 1);

    while ((opt = getopt_long(argc, argv, "c:tdhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': test_only = 1; break;
        case 'd': debug = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("anonproxy " ANONPROXY_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "anonproxy: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    config cfg;
    if (config_load_or_report(path, &cfg) < 0)
        return 1;
    log_set_level(debug ? LOG_DEBUG : cfg.log_level);
    config_free(&cfg);
    if (test_only) {
        printf("%s: configuration OK\n", path);
        return 0;
    }
    return serve(path, debug);
}
