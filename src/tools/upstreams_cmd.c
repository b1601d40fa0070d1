/* upstreams_cmd.c - see upstreams_cmd.h. */
#include "tools/upstreams_cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_load.h"
#include "core/log.h"
#include "core/util.h"
#include "egress/health.h"
#include "egress/upstream.h"

/* "proto://host:port" per hop, joined with " -> "; never the credentials. */
static json_t *upstream_url(const upstream *u)
{
    size_t size = u->nhops * (sizeof u->hops[0].host + 32), n = 0;
    char *text = malloc(size);
    if (!text)
        return NULL;
    for (size_t i = 0; i < u->nhops; i++) {
        const hop *h = &u->hops[i];
        int v6 = strchr(h->host, ':') != NULL;
        n += (size_t)snprintf(text + n, size - n, "%s%s://%s%s%s:%u", i ? " -> " : "",
                              upstream_proto_name(h->proto), v6 ? "[" : "", h->host, v6 ? "]" : "",
                              h->port);
    }
    json_t *url = json_string(text);
    free(text);
    return url;
}

/* A string, or null when empty. */
static json_t *string_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

/* One upstream's report: the same fields for the table and for --json. */
static json_t *upstream_report(upstream *u)
{
    char cc[3], exit_ip[sizeof u->exit_ip], verdict[sizeof u->verdict];
    unsigned ms = atomic_load(&u->latency_ms);

    upstream_country(u, cc);
    pthread_mutex_lock(&u->report_lock);
    memcpy(exit_ip, u->exit_ip, sizeof exit_ip);
    memcpy(verdict, u->verdict, sizeof verdict);
    pthread_mutex_unlock(&u->report_lock);
    return json_pack("{s:s, s:o?, s:o, s:s, s:s, s:o, s:o, s:o}", "name", u->name, "url",
                     upstream_url(u), "country", string_or_null(cc), "source",
                     upstream_country_source_name(atomic_load(&u->country_from)), "health",
                     atomic_load(&u->healthy) ? "up" : "down", "latency_ms",
                     ms ? json_integer(ms) : json_null(), "exit_ip", string_or_null(exit_ip),
                     "verdict", string_or_null(verdict));
}

/* The table's columns: heading and report field. */
static const struct column {
    const char *head, *key;
} columns[] = {
    {"NAME", "name"},     {"URL", "url"},           {"COUNTRY", "country"}, {"SOURCE", "source"},
    {"HEALTH", "health"}, {"LATENCY", "latency_ms"}, {"EXIT IP", "exit_ip"}, {"VERDICT", "verdict"},
};
enum { NCOLUMNS = ARRAY_LEN(columns) };

/* A report field as the table shows it; num holds a formatted number. */
static const char *cell_text(const json_t *row, const char *key, char num[24])
{
    const json_t *f = json_object_get(row, key);
    if (json_is_integer(f)) {
        snprintf(num, 24, "%lld ms", (long long)json_integer_value(f));
        return num;
    }
    return json_is_string(f) ? json_string_value(f) : "-";
}

static void print_cells(const char *const cells[NCOLUMNS], const size_t width[NCOLUMNS])
{
    for (int k = 0; k < NCOLUMNS - 1; k++)
        printf("%-*s  ", (int)width[k], cells[k]);
    printf("%s\n", cells[NCOLUMNS - 1]);
}

static void print_table(const json_t *rows)
{
    const char *cells[NCOLUMNS];
    char nums[NCOLUMNS][24];
    size_t width[NCOLUMNS], i;
    const json_t *row;

    for (int k = 0; k < NCOLUMNS; k++) {
        cells[k] = columns[k].head;
        width[k] = strlen(cells[k]);
    }
    json_array_foreach (rows, i, row)
        for (int k = 0; k < NCOLUMNS; k++) {
            size_t n = strlen(cell_text(row, columns[k].key, nums[k]));
            if (n > width[k])
                width[k] = n;
        }
    print_cells(cells, width);
    json_array_foreach (rows, i, row) {
        for (int k = 0; k < NCOLUMNS; k++)
            cells[k] = cell_text(row, columns[k].key, nums[k]);
        print_cells(cells, width);
    }
}

static void upstreams_usage(FILE *out)
{
    fprintf(out, "usage: anonproxy upstreams [-c FILE] [--json]\n"
                 "  -c, --config FILE  configuration file (default: " DEFAULT_CONFIG ")\n"
                 "  -j, --json         print a JSON array instead of a table\n"
                 "  -h, --help         show this help\n"
                 "Exit status: 0 when at least one upstream is up, 1 otherwise.\n");
}

int upstreams_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    int as_json = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'j': as_json = 1; break;
        case 'h': upstreams_usage(stdout); return 0;
        default: upstreams_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "anonproxy upstreams: unexpected argument '%s'\n", argv[optind]);
        upstreams_usage(stderr);
        return 2;
    }

    config cfg;
    if (config_load_or_report(path, &cfg) < 0)
        return 1;
    if (cfg.upstreams->n == 0) {
        fprintf(stderr, "anonproxy upstreams: no upstreams configured in %s\n", path);
        config_free(&cfg);
        return 1;
    }
    /* The reasons an upstream is down are logged (stderr), the table is on stdout. */
    log_set_level(cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    if (health_check_once(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anonproxy upstreams: %s\n", err);
        config_free(&cfg);
        return 1;
    }

    json_t *rows = json_array();
    int up = 0;
    for (size_t i = 0; i < cfg.upstreams->n; i++) {
        upstream *u = &cfg.upstreams->items[i];
        up |= atomic_load(&u->healthy);
        json_array_append_new(rows, upstream_report(u));
    }
    if (!rows || json_array_size(rows) != cfg.upstreams->n) {
        fprintf(stderr, "anonproxy upstreams: out of memory\n");
        up = 0;
    } else if (as_json) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        print_table(rows);
    }
    json_decref(rows);
    config_free(&cfg);
    return up ? 0 : 1;
}
