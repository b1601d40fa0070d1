/* head_reader.h - finding a whole message head at the front of an evbuffer.
 *
 * Heads arrive in pieces; the scan resumes where the last one stopped
 * (http_head_end), and the head is made contiguous only as far as needed.
 * Shared by every HTTP front end (the proxy's exchange, the judge).
 */
#ifndef ANONPROXY_HEAD_READER_H
#define ANONPROXY_HEAD_READER_H

#include <stddef.h>

struct evbuffer;

/* Looks for a whole head at the front of in, resuming at *scan (0 for a new
 * head). Returns its length with *buf pointing at it (valid until in
 * changes), 0 when more bytes are needed, or -1 when max bytes have arrived
 * without the end of a head. */
long http_head_find(struct evbuffer *in, size_t max, size_t *scan, const char **buf);

#endif
