/* config_load.h - reading anonproxy.json into a config (core/config.h).
 *
 * The file is read with jansson and checked completely before anything
 * starts: unknown keys, wrong types and out-of-range values are errors. Every
 * error message names the file, the JSON path and the reason, e.g.
 *   anonproxy.json: listen[0].address: port 99999 out of range
 * Loading builds the parts of every layer the file describes: listener
 * kinds (front/kinds.h), policies (http/policy.h; a broken policy file is
 * reported by `anonproxy -t` like any other config error), exits and
 * routes (egress/), the GeoIP database.
 */
#ifndef ANONPROXY_CONFIG_LOAD_H
#define ANONPROXY_CONFIG_LOAD_H

#include <stddef.h>

#include "core/config.h"

/* Loads and validates `path`. On success returns 0 and fills *cfg (free with
 * config_free). On failure returns -1 and writes "FILE: PATH: reason" to err. */
int config_load(const char *path, config *cfg, char *err, size_t errlen);

/* config_load for a command: on failure the message goes to stderr.
 * Returns 0 or -1. */
int config_load_or_report(const char *path, config *cfg);

/* Same as config_load, from a string; `name` stands for the file name in messages. */
int config_parse(const char *json_text, const char *name, config *cfg, char *err, size_t errlen);

/* Frees what config_load/config_parse allocated inside *cfg. */
void config_free(config *cfg);

#endif
