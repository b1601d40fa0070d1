/* util.h - the small helpers every layer shares, each defined once.
 *
 * Nothing here allocates, blocks or keeps state: text decoding (hex digits,
 * percent-encoding, two-letter country codes), elapsed time in
 * milliseconds, an intrusive doubly-linked list, and where the running
 * binary lives (for files installed beside it).
 */
#ifndef ANONPROXY_UTIL_H
#define ANONPROXY_UTIL_H

#include <stddef.h>
#include <sys/time.h>

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

/* Room for a file path or a JSON path in messages; longer ones are cut. */
#define PATH_LEN 512

/* The configuration file used when none is named. */
#define DEFAULT_CONFIG "anonproxy.json"

/* The value of one hexadecimal digit, or -1. */
int hex_digit_value(unsigned char c);

/* Decodes %XX escapes of s[0..len) into out (the decoded length + 1 bytes,
 * so len + 1 is always enough; always NUL-terminated); a '%' not followed by
 * two hex digits is kept as it is. plus_is_space: '+' decodes to ' ' (query
 * strings). Returns the decoded length; out may hold NUL bytes that came
 * from %00. */
size_t percent_decode(const char *s, size_t len, int plus_is_space, char *out);

/* For parsers that reject a stray '%' rather than keep it: checks that every
 * '%' of s[0..len) starts a %XX escape. Returns 0 with the length
 * percent_decode will give in *decoded_len, or -1. */
int percent_check(const char *s, size_t len, size_t *decoded_len);

/* Is s[0..len) two ASCII letters? If so and cc is not NULL, writes them
 * uppercased and NUL-terminated to cc (3 bytes). */
int country_code_parse(const char *s, size_t len, char cc[3]);

/* Milliseconds from `from` to `to`, 0 when `to` is earlier. */
unsigned long elapsed_ms(const struct timeval *from, const struct timeval *to);

/* The time on the monotonic clock, for elapsed_ms: durations and deadlines
 * must not jump when the wall clock is set. */
void monotonic_now(struct timeval *now);

/* An intrusive doubly-linked list: a `list_link` embedded in each element
 * and one as the sentinel head. The list never owns its elements. */
typedef struct list_link {
    struct list_link *prev, *next;
} list_link;

static inline void list_init(list_link *head)
{
    head->prev = head->next = head;
}

static inline int list_empty(const list_link *head)
{
    return head->next == head;
}

/* Links e at the front of the list. */
static inline void list_push_front(list_link *head, list_link *e)
{
    e->next = head->next;
    e->prev = head;
    head->next->prev = e;
    head->next = e;
}

/* Unlinks e and makes it its own empty list, so a second unlink is harmless. */
static inline void list_unlink(list_link *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

/* The element that embeds link `l` as its member `member`. */
#define list_entry(l, type, member) ((type *)(void *)((char *)(l) - offsetof(type, member)))

/* The directory of the running binary (from /proc/self/exe) into dir
 * (len bytes). Returns 0, or -1 when it cannot be found or does not fit. */
int exe_dir(char *dir, size_t len);

#endif
