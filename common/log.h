/* SPDX-License-Identifier: MIT */
#ifndef STOKER_LOG_H
#define STOKER_LOG_H

#include <stdint.h>

enum stk_log_level { STK_LOG_ERROR, STK_LOG_WARN, STK_LOG_INFO, STK_LOG_DEBUG };

extern int stk__log_level;

/* Writes one line to stderr: time, level, message. Thread-safe. */
void stk__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define stk_err(...)  stk__log(STK_LOG_ERROR, __VA_ARGS__)
#define stk_warn(...) stk__log(STK_LOG_WARN, __VA_ARGS__)
#define stk_info(...) stk__log(STK_LOG_INFO, __VA_ARGS__)
#define stk_dbg(...)                                                                               \
	do {                                                                                       \
		if (stk__log_level >= STK_LOG_DEBUG)                                               \
			stk__log(STK_LOG_DEBUG, __VA_ARGS__);                                      \
	} while (0)

/* Parses "error", "warn", "info" or "debug". Returns the level or -EINVAL. */
int stk__log_parse(const char *s);

/* Parses a size such as "4G", "512M", "1048576" (K/M/G/T, powers of 1024). 0 or -EINVAL. */
int stk__parse_size(const char *s, uint64_t *out);

/* Parses a non-negative decimal integer no larger than max. 0 or -EINVAL. */
int stk__parse_u64(const char *s, uint64_t max, uint64_t *out);

uint64_t stk__now_ns(void);

#endif
