/* geo_cmd.c - see geo_cmd.h. */
#include "tools/geo_cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/geoip.h"

static void geo_usage(FILE *out)
{
    fprintf(out,
            "usage: anonproxy geo [--db FILE] IP...\n"
            "  prints \"IP COUNTRY\" for each address, \"IP -\" when the country is unknown\n"
            "  --db FILE    MaxMind DB file (default: " GEOIP_DEFAULT_DB ", fetched by `make geo`)\n"
            "  -h, --help   show this help\n");
}

int geo_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = GEOIP_DEFAULT_DB;
    int opt;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': path = optarg; break;
        case 'h': geo_usage(stdout); return 0;
        default: geo_usage(stderr); return 1;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "anonproxy geo: no IP address given\n");
        geo_usage(stderr);
        return 1;
    }

    char err[512];
    geoip *g = geoip_open(path, err, sizeof err);
    if (!g) {
        fprintf(stderr, "anonproxy geo: %s%s\n", err,
                strcmp(path, GEOIP_DEFAULT_DB) == 0 ? " (`make geo` fetches it)" : "");
        return 1;
    }

    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct sockaddr_storage ss;
        char cc[3];
        if (geoip_parse_ip(argv[i], &ss) < 0) {
            fprintf(stderr, "anonproxy geo: '%s' is not an IP address\n", argv[i]);
            rc = 1;
            continue;
        }
        switch (geoip_country(g, (const struct sockaddr *)&ss, cc)) {
        case 1: printf("%s %s\n", argv[i], cc); break;
        case 0: printf("%s -\n", argv[i]); break;
        default:
            fprintf(stderr, "anonproxy geo: %s: lookup of %s failed\n", path, argv[i]);
            rc = 1;
        }
    }
    geoip_close(g);
    return rc;
}
