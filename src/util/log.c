// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keel/log.h"

static const char *program = "keel";
static enum log_level current_level = LOG_LEVEL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_program(const char *name)
{
	program = name;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

static const char *level_word(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return "error: ";
	case LOG_LEVEL_WARN: return "warning: ";
	case LOG_LEVEL_INFO: return "";
	case LOG_LEVEL_DEBUG: return "debug: ";
	}
	return "";
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;

	if (level > current_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One write per line so lines from vCPU threads never interleave. */
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s%s\n", program, level_word(level), buf);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	unsigned long long now = now_ms();
	bool ok;

	pthread_mutex_lock(&log_lock);
	if (now - rl->window_start_ms >= rl->interval_ms) {
		if (rl->suppressed)
			fprintf(stderr, "%s: warning: %u similar messages suppressed\n",
				program, rl->suppressed);
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	ok = rl->printed < rl->burst;
	if (ok)
		rl->printed++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);
	return ok;
}
