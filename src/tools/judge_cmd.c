/* judge_cmd.c - see judge_cmd.h. */
#include "tools/judge_cmd.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/config_load.h"
#include "core/geoip.h"
#include "core/log.h"
#include "core/sockaddr.h"

/* A standalone judge holds at most this many connections, each up to a
 * head and a response. */
#define JUDGE_MAX_CONNECTIONS 1024

/* The configuration of a judge alone. Port 0 is not a valid address in a
 * file; an ephemeral port is asked for by parsing port 1 and clearing it. */
static int judge_config(config *cfg, const char *address, const char *geoip_path, char *err,
                        size_t errlen)
{
    char addr[128];
    size_t len = strlen(address);
    int ephemeral = len > 2 && strcmp(address + len - 2, ":0") == 0;
    snprintf(addr, sizeof addr, "%.*s%s", (int)(ephemeral ? len - 1 : len), address,
             ephemeral ? "1" : "");

    json_t *doc = json_pack("{s:[{s:s, s:s}], s:i, s:{s:i}}", "listen", "address", addr, "protocol",
                            "judge", "workers", 1, "limits", "max_connections",
                            JUDGE_MAX_CONNECTIONS);
    if (doc && geoip_path)
        json_object_set_new(doc, "geoip", json_string(geoip_path));
    char *text = doc ? json_dumps(doc, 0) : NULL;
    json_decref(doc);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = config_parse(text, "judge", cfg, err, errlen);
    free(text);
    if (rc < 0)
        return -1;
    /* Countries only when asked for: a database found by default stays closed. */
    if (!geoip_path) {
        geoip_close(cfg->geo);
        cfg->geo = NULL;
    }
    if (ephemeral)
        sockaddr_set_port((struct sockaddr *)&cfg->listen[0].addr, 0);
    return 0;
}

int judge_instance_start(judge_instance *j, const char *address, const char *geoip_path, char *err,
                         size_t errlen)
{
    memset(j, 0, sizeof *j);
    if (judge_config(&j->cfg, address, geoip_path, err, errlen) < 0)
        return -1;
    if (workers_start(&j->cfg, &j->socks, &j->ws, err, errlen) < 0) {
        listen_set_free(&j->socks, 0);
        config_free(&j->cfg);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    if (getsockname(j->socks.items[0].fd, (struct sockaddr *)&bound, &len) == 0)
        j->port = sockaddr_port((const struct sockaddr *)&bound);
    return 0;
}

void judge_instance_stop(judge_instance *j)
{
    listen_set_refuse(&j->socks);
    workers_stop(j->ws, j->cfg.workers, 1);
    workers_join(j->ws, j->cfg.workers);
    listen_set_free(&j->socks, 1);
    config_free(&j->cfg);
}

static void judge_usage(FILE *out)
{
    fprintf(out, "usage: anonproxy judge --listen ADDR [--geoip FILE]\n"
                 "  -l, --listen ADDR  address to serve on, e.g. 127.0.0.1:8090 or [::1]:8090\n"
                 "  -g, --geoip FILE   MaxMind DB file: report the remote address's country\n"
                 "  -h, --help         show this help\n");
}

int judge_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"geoip", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *geoip_path = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "l:g:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'g': geoip_path = optarg; break;
        case 'h': judge_usage(stdout); return 0;
        default: judge_usage(stderr); return 2;
        }
    }
    if (optind < argc || !listen) {
        fprintf(stderr, "anonproxy judge: %s\n",
                optind < argc ? "unexpected argument" : "--listen is required");
        judge_usage(stderr);
        return 2;
    }

    struct sockaddr_storage ss;
    socklen_t len;
    char err[1024];
    if (config_parse_address(listen, &ss, &len, err, sizeof err) < 0) {
        fprintf(stderr, "anonproxy judge: --listen %s: %s\n", listen, err);
        return 2;
    }

    /* Workers inherit this mask: only this thread takes the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    judge_instance j;
    if (judge_instance_start(&j, listen, geoip_path, err, sizeof err) < 0) {
        fprintf(stderr, "anonproxy judge: %s: %s\n", listen, err);
        return 1;
    }
    log_info("judge: listening on %s%s%s", listen, geoip_path ? ", GeoIP from " : "",
             geoip_path ? geoip_path : "");
    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("judge: %s received, stopping", strsignal(sig));
    judge_instance_stop(&j);
    return 0;
}
