/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log: one event per line on stderr, as text or as JSON (see
 * docs/logging.md for the formats).  Every line names its level, its time and
 * the component that wrote it, which is derived from the calling file's name.
 * Messages and fields pass through a scrubber before they are written, so
 * credentials, Authorization headers and signed-URL signatures never reach
 * the log in either format.
 */
#ifndef STOKER_LOG_H
#define STOKER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stk_log_level { STK_LOG_ERROR, STK_LOG_WARN, STK_LOG_INFO, STK_LOG_DEBUG };

enum stk_log_format { STK_LOG_TEXT, STK_LOG_JSON };

/* Lines above this level are not written.  Set once at start, before threads. */
extern int stk__log_level;

/*
 * Writes one line to stderr with one write(2): time, level, the component of
 * file (a __FILE__), and the message, scrubbed of secrets.  Messages longer
 * than about 2 KiB are cut (JSON: "truncated":true).  Thread-safe; errno is
 * left as it was.
 */
void stk__log(int level, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes one event line like stk__log: the event's name, then the fields that
 * fields_fmt formats to, "key=value key=value" (value: a word without spaces,
 * or a double-quoted string with \" and \\ escapes).  As JSON, each field
 * becomes a member: a value that is a JSON number in full becomes a number,
 * any other a string, a bare key true.  fields_fmt may be NULL (no fields;
 * "" draws -Wformat-zero-length).  Thread-safe; errno is left as it was.
 */
void stk__event(int level, const char *file, const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define stk_err(...)  stk__log(STK_LOG_ERROR, __FILE__, __VA_ARGS__)
#define stk_warn(...) stk__log(STK_LOG_WARN, __FILE__, __VA_ARGS__)
#define stk_info(...) stk__log(STK_LOG_INFO, __FILE__, __VA_ARGS__)
#define stk_dbg(...)                                                                               \
	do {                                                                                       \
		if (stk__log_level >= STK_LOG_DEBUG)                                               \
			stk__log(STK_LOG_DEBUG, __FILE__, __VA_ARGS__);                            \
	} while (0)

/*
 * stk_event(STK_LOG_INFO, "client_summary", "pid=%d bytes=%llu", pid, bytes):
 * the arguments are evaluated only when the level is written; level is
 * evaluated twice.
 */
#define stk_event(level, event, ...)                                                               \
	do {                                                                                       \
		if (stk__log_level >= (level))                                                     \
			stk__event((level), __FILE__, (event), __VA_ARGS__);                       \
	} while (0)

/* Parses "error", "warn", "info" or "debug". Returns the level or -EINVAL. */
int stk__log_parse(const char *s);

/*
 * Selects the format of the lines written from now on: "text" (the default)
 * or "json".  Returns 0, or -EINVAL (format unchanged) for anything else.
 */
int stk__log_set_format(const char *s);

/* Returns the current format, STK_LOG_TEXT or STK_LOG_JSON. */
int stk__log_format(void);

/*
 * The pieces of the log, exposed for tests/common/test_log.c.
 */

/*
 * Returns the component that writes from file (a __FILE__) and its length in
 * *len: a static string, or the basename inside file (not NUL-terminated).
 */
const char *stk__log_component(const char *file, size_t *len);

/*
 * Redacts secrets in the NUL-terminated s, in place: each value becomes
 * "REDACTED".  A longer result is cut to cap - 1 bytes.  Returns the number
 * of values redacted.
 */
unsigned stk__log_scrub(char *s, size_t cap);

/*
 * Appends s[0, len) to out as the inside of a JSON string (no quotes): ", \
 * and control characters escaped, invalid UTF-8 bytes as \ufffd.  Stops
 * before an escape or character that would not fit in cap - 1 bytes and
 * NUL-terminates.  Returns the bytes written to out, or, when s did not fit,
 * the bytes written with the top bit set (STK__LOG_CUT).
 */
#define STK__LOG_CUT ((size_t)1 << (sizeof(size_t) * 8 - 1))
size_t stk__log_json_escape(const char *s, size_t len, char *out, size_t cap);

enum stk__log_ftype { STK__LOG_STR, STK__LOG_NUM, STK__LOG_TRUE };

struct stk__log_field {
	char *key;
	char *val; /* "" for STK__LOG_TRUE */
	int type;  /* enum stk__log_ftype */
};

/*
 * Splits buf, "key=value key=\"quoted value\" flag", in place into fields,
 * NUL-terminating keys and values and removing quotes and escapes (max >= 1).
 * Past max - 1 fields, what is left of buf becomes a last string field
 * "_rest".  Returns the number of fields.
 */
int stk__log_fields(char *buf, struct stk__log_field *f, int max);

/* Returns true when s, in full, is a JSON number. */
bool stk__log_is_number(const char *s);

/* Parses a size such as "4G", "512M", "1048576" (K/M/G/T, powers of 1024). 0 or -EINVAL. */
int stk__parse_size(const char *s, uint64_t *out);

/* Parses a non-negative decimal integer no larger than max. 0 or -EINVAL. */
int stk__parse_u64(const char *s, uint64_t max, uint64_t *out);

uint64_t stk__now_ns(void);

#endif
