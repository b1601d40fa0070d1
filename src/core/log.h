/* log.h - leveled logging to stderr, safe from any thread.
 *
 * One line per message, prefixed with the time and the level. Messages never
 * reach clients; client-visible errors are in http_error.h.
 */
#ifndef ANONPROXY_LOG_H
#define ANONPROXY_LOG_H

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped. Set once at start-up. */
void log_set_level(int level);
int log_enabled(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
