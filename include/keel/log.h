/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging. Everything goes to stderr with the program name as prefix, one
 * line per message, so operators and tests can grep it.
 *
 * Error convention (style.md habit 4): inside the VMM functions return 0 or
 * -errno and log once where the failure is understood. Errors a guest can
 * trigger go through log_guest(), which is rate-limited and never fatal.
 */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "keel/compiler.h"

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* The prefix printed before every message ("keel-vmm"). */
void log_set_program(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_vmsg(enum log_level level, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * A rate limit shared by the call sites that use the same struct: at most
 * `burst` messages per `interval_ms`, then a count of what was suppressed.
 */
struct log_ratelimit {
	unsigned interval_ms;
	unsigned burst;
	/* private */
	unsigned long long window_start_ms;
	unsigned printed;
	unsigned suppressed;
};
#define LOG_RATELIMIT_INIT(ms, n) { .interval_ms = (ms), .burst = (n) }

bool log_ratelimit_ok(struct log_ratelimit *rl);

/*
 * For misbehaviour of the guest (bad register writes, malformed requests):
 * a warning, at most 10 per 5 s per call site.
 */
#define log_guest(...)                                                      \
	do {                                                                \
		static struct log_ratelimit rl_ = LOG_RATELIMIT_INIT(5000, 10); \
		if (log_ratelimit_ok(&rl_))                                 \
			log_msg(LOG_LEVEL_WARN, "guest: " __VA_ARGS__);     \
	} while (0)

#endif
