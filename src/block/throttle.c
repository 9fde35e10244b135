// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "block/throttle.h"
#include "keel/compiler.h"
#include "keel/parse.h"

static const char *const names[BLK_LIMIT_COUNT] = {
	"iops", "iops-rd", "iops-wr", "bw", "bw-rd", "bw-wr",
};
static const char *const api_names[BLK_LIMIT_COUNT] = {
	"iops", "iops_rd", "iops_wr", "bw", "bw_rd", "bw_wr",
};
static const char *const field_suffix[] = { "", "-burst", "-peak" };

const char *blk_limit_name(enum blk_limit l)
{
	return names[l];
}

const char *blk_limit_api_name(enum blk_limit l)
{
	return api_names[l];
}

bool blk_limit_is_bytes(enum blk_limit l)
{
	return l >= BLK_LIMIT_BW;
}

static uint64_t *field_of(struct rate_limit_params *p, enum blk_limit_field f)
{
	return f == BLK_FIELD_AVERAGE ? &p->average : f == BLK_FIELD_BURST ? &p->burst : &p->peak;
}

static uint64_t limit_max(enum blk_limit l, enum blk_limit_field f)
{
	return blk_limit_is_bytes(l) ? BLK_LIMIT_MAX_BYTES
	       : f == BLK_FIELD_BURST ? BLK_LIMIT_MAX_OPS_BURST : BLK_LIMIT_MAX_IOPS;
}

/* "iops 99999999 is absurd: ...", the value as the user wrote it (shown). */
static int absurd(enum blk_limit l, enum blk_limit_field f, const char *shown, const char *what,
		  char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s%s %s is absurd: at most %" PRIu64 "%s", what, names[l],
		 field_suffix[f], shown, limit_max(l, f),
		 f == BLK_FIELD_BURST ? (blk_limit_is_bytes(l) ? " bytes" : " operations")
				      : (blk_limit_is_bytes(l) ? " bytes per second" : " per second"));
	return -EINVAL;
}

int blk_limit_check_value(enum blk_limit l, enum blk_limit_field f, uint64_t v, const char *what,
			  char *err, size_t errlen)
{
	char shown[24];

	if (v <= limit_max(l, f))
		return 0;
	snprintf(shown, sizeof(shown), "%" PRIu64, v);
	return absurd(l, f, shown, what, err, errlen);
}

int blk_limits_parse_key(struct blk_limits *lim, const char *what, const char *key,
			 const char *val, char *err, size_t errlen)
{
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++) {
		size_t n = strlen(names[l]);
		enum blk_limit_field f;
		uint64_t v;
		int r;

		if (strncmp(key, names[l], n))
			continue;
		for (f = BLK_FIELD_AVERAGE; f <= BLK_FIELD_PEAK; f++)
			if (!strcmp(key + n, field_suffix[f]))
				break;
		if (f > BLK_FIELD_PEAK)
			continue; /* "iops-rd" is not "iops" with a bad suffix */
		if (val[0] == '-') {
			snprintf(err, errlen, "%s: %s %s: a limit cannot be negative", what, key, val);
			return -EINVAL;
		}
		r = blk_limit_is_bytes(l) ? parse_size(val, 1, &v) : parse_u64(val, UINT64_MAX, &v);
		if (r == -EINVAL) {
			snprintf(err, errlen, "%s: %s '%s' is not %s", what, key, val,
				 blk_limit_is_bytes(l) ? "a number of bytes (examples: 500K, 10M)"
						       : "a whole number of operations");
			return -EINVAL;
		}
		if (r == -ERANGE) /* beyond 64 bits: name it as written */
			return absurd(l, f, val, what, err, errlen);
		r = blk_limit_check_value(l, f, v, what, err, errlen);
		if (r)
			return r;
		*field_of(&lim->l[l], f) = v;
		return 1;
	}
	return 0;
}

int blk_limits_check(const struct blk_limits *lim, const char *what, char *err, size_t errlen)
{
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++) {
		const struct rate_limit_params *p = &lim->l[l];

		if (!p->average && (p->burst || p->peak)) {
			snprintf(err, errlen, "%s: %s%s needs %s (the average) as well", what, names[l],
				 p->burst ? "-burst" : "-peak", names[l]);
			return -EINVAL;
		}
		if (p->peak && p->peak < p->average) {
			snprintf(err, errlen, "%s: %s-peak %" PRIu64 " is below %s %" PRIu64
				 " (the peak is the fastest rate, the average the long-run one)",
				 what, names[l], p->peak, names[l], p->average);
			return -EINVAL;
		}
	}
	return 0;
}

bool blk_limits_any(const struct blk_limits *lim)
{
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		if (lim->l[l].average)
			return true;
	return false;
}

void blk_throttle_init(struct blk_throttle *t, const char *name, const struct blk_limits *lim)
{
	uint64_t now = tb_clock_ns();

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->members_lock, NULL);
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		rate_limit_init(&t->rl[l], lim ? &lim->l[l] : &(struct rate_limit_params){ 0 }, now);
}

void blk_throttle_destroy(struct blk_throttle *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->members_lock);
}

void blk_throttle_set(struct blk_throttle *t, const struct blk_limits *lim)
{
	uint64_t now = tb_clock_ns();

	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		rate_limit_set(&t->rl[l], &lim->l[l], now);
	pthread_mutex_unlock(&t->lock);
	/* Members take t->lock under their own lock: wake them without holding it. */
	pthread_mutex_lock(&t->members_lock);
	for (struct blk_throttle_member *m = t->members; m; m = m->next)
		m->wake(m);
	pthread_mutex_unlock(&t->members_lock);
}

void blk_throttle_get(struct blk_throttle *t, struct blk_limits *lim)
{
	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		lim->l[l] = t->rl[l].p;
	pthread_mutex_unlock(&t->lock);
}

void blk_throttle_join(struct blk_throttle *t, struct blk_throttle_member *m)
{
	pthread_mutex_lock(&t->members_lock);
	m->next = t->members;
	t->members = m;
	pthread_mutex_unlock(&t->members_lock);
}

void blk_throttle_leave(struct blk_throttle *t, struct blk_throttle_member *m)
{
	pthread_mutex_lock(&t->members_lock);
	for (struct blk_throttle_member **p = &t->members; *p; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&t->members_lock);
}

static bool applies(enum blk_limit l, bool write)
{
	switch (l) {
	case BLK_LIMIT_IOPS_RD:
	case BLK_LIMIT_BW_RD:
		return !write;
	case BLK_LIMIT_IOPS_WR:
	case BLK_LIMIT_BW_WR:
		return write;
	default:
		return true;
	}
}

void blk_throttle_reserve(struct blk_throttle *t, bool write, uint64_t bytes, uint64_t now_ns,
			  struct blk_throttle_ticket *tk)
{
	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++) {
		if (applies(l, write))
			rate_limit_reserve(&t->rl[l], blk_limit_is_bytes(l) ? bytes : 1, now_ns,
					   &tk->t[l]);
		else
			tk->t[l] = (struct rate_ticket){ 0 };
	}
	pthread_mutex_unlock(&t->lock);
}

uint64_t blk_throttle_wait_ns(struct blk_throttle *t, const struct blk_throttle_ticket *tk,
			      uint64_t now_ns)
{
	uint64_t wait = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		wait = MAX(wait, rate_limit_wait_ns(&t->rl[l], &tk->t[l], now_ns));
	pthread_mutex_unlock(&t->lock);
	return wait;
}

bool blk_throttle_active(struct blk_throttle *t)
{
	bool any = false;

	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		any |= rate_limit_active(&t->rl[l]);
	pthread_mutex_unlock(&t->lock);
	return any;
}
