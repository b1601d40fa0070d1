/* geoip.c - country lookups in MaxMind DB files.
 *
 * A thin layer over libmaxminddb: it hides the record layout (see geoip.h)
 * and IPv4-mapped addresses from callers, who only want two letters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/geoip.h"
#include "core/util.h"

struct geoip {
    MMDB_s mmdb;
};

/* Why a file could not be read, MMDB_strerror() saying only that: errno,
 * except where mmap() would blame a directory on ENODEV and an empty file
 * on EINVAL. */
static const char *io_error(const char *path, int errnum)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return strerror(EISDIR);
        if (st.st_size == 0)
            return "empty file";
    }
    return strerror(errnum);
}

geoip *geoip_open(const char *path, char *err, size_t errlen)
{
    geoip *g = malloc(sizeof *g);
    int status = g ? MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb) : MMDB_OUT_OF_MEMORY_ERROR;
    if (status == MMDB_SUCCESS)
        return g;
    const char *why = status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR
                          ? io_error(path, errno)
                          : MMDB_strerror(status);
    snprintf(err, errlen, "%s: cannot open: %s", path, why);
    free(g);
    return NULL;
}

void geoip_close(geoip *g)
{
    if (!g)
        return;
    MMDB_close(&g->mmdb);
    free(g);
}

/* Where each layout keeps the country code, most specific first. */
static const char *const country_paths[][3] = {
    {"country", "iso_code", NULL},
    {"registered_country", "iso_code", NULL},
    {"country_code", NULL, NULL},
};

/* Takes a two-letter ASCII code, upper-cased, into cc. Anything else in the
 * field is treated as no country rather than passed on to callers. */
static int take_code(const MMDB_entry_data_s *d, char cc[3])
{
    return d->type == MMDB_DATA_TYPE_UTF8_STRING && country_code_parse(d->utf8_string, d->data_size, cc);
}

int geoip_country(const geoip *g, const struct sockaddr *addr, char cc[3])
{
    struct sockaddr_in v4;

    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memset(&v4, 0, sizeof v4);
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, &a6->s6_addr[12], 4);
            addr = (const struct sockaddr *)&v4;
        }
    } else if (addr->sa_family != AF_INET) {
        return -1;
    }

    int status;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->mmdb, addr, &status);
    if (status != MMDB_SUCCESS)
        return -1;
    if (!res.found_entry)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(country_paths); i++) {
        MMDB_entry_data_s d;
        status = MMDB_aget_value(&res.entry, &d, country_paths[i]);
        /* A path the record does not have is reported either way. */
        if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
            (status == MMDB_SUCCESS && !d.has_data))
            continue;
        if (status != MMDB_SUCCESS)
            return -1;
        if (take_code(&d, cc))
            return 1;
    }
    return 0;
}

int geoip_parse_ip(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

int geoip_country_str(const geoip *g, const char *ip, char cc[3])
{
    struct sockaddr_storage ss;
    if (geoip_parse_ip(ip, &ss) < 0)
        return -1;
    return geoip_country(g, (const struct sockaddr *)&ss, cc);
}
