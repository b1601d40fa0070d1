/* health.h - periodic health checks of the upstreams, in a thread of their own.
 *
 * Every health.interval each upstream is checked: a connection is made to
 * its first hop and the chain walked (chain.h); when health.judge_url is set,
 * a GET to the judge goes through the whole chain and the judge's answer
 * gives the exit IP (hence the exit's GeoIP country, unless the country is
 * configured) and the anonymity verdict the exit gives. health.rise
 * consecutive successes bring an upstream up, health.fall consecutive
 * failures take it down. Latency is the time of the last successful check.
 */
#ifndef ANONPROXY_HEALTH_H
#define ANONPROXY_HEALTH_H

#include "core/config.h"

typedef struct health health;

/* Starts the checker thread when cfg has upstreams (NULL and no error when it
 * has none). The first round starts at once. Returns NULL with err on failure. */
health *health_start(const config *cfg, char *err, size_t errlen);

/* Stops the thread and frees h (NULL is fine). */
void health_stop(health *h);

/* Runs one round of checks over every upstream and returns when all are
 * done (for `anonproxy upstreams`, tools/upstreams_cmd.h). Returns 0, or -1
 * with err. */
int health_check_once(const config *cfg, char *err, size_t errlen);

#endif
