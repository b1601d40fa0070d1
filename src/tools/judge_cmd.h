/* judge_cmd.h - a judge of its own: `anonproxy judge`, and verify's in-process one.
 *
 * Both run the "judge" listener kind (front/judge.h) on one worker of a
 * configuration made for the purpose, so the judge they serve is the very
 * one a proxy embeds with its "judge" key.
 */
#ifndef ANONPROXY_JUDGE_CMD_H
#define ANONPROXY_JUDGE_CMD_H

#include <stddef.h>

#include "core/config.h"
#include "net/listener.h"
#include "net/workers.h"

typedef struct judge_instance {
    config cfg;
    listen_set socks;
    worker *ws;
    unsigned port;           /* the port it listens on */
} judge_instance;

/* Serves a judge on address ("A.B.C.D:PORT" or "[V6]:PORT"; port 0 takes an
 * ephemeral one) in a worker thread. geoip_path may be NULL: no country
 * lookups. Returns 0, or -1 with err (nothing left running). */
int judge_instance_start(judge_instance *j, const char *address, const char *geoip_path, char *err,
                         size_t errlen);

/* Stops it, closing every connection, and frees what it holds. */
void judge_instance_stop(judge_instance *j);

/* `anonproxy judge --listen ADDR [--geoip FILE]`: serves until SIGINT or
 * SIGTERM, then exits 0. */
int judge_main(int argc, char **argv);

#endif
