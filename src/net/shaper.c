// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "keel/parse.h"
#include "net/shaper.h"

static const char *const dir_names[NET_DIRS] = { "tx", "rx" };

const char *net_dir_name(enum net_dir d)
{
	return dir_names[d];
}

/* "50M" = 50,000,000 bit/s: link speeds are decimal. */
static int parse_bits(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t unit = 1, v;
	char num[32];

	if (!n || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': unit = 1000; break;
	case 'm': case 'M': unit = 1000000; break;
	case 'g': case 'G': unit = 1000000000; break;
	default:
		if (!isdigit((unsigned char)num[n - 1]))
			return -EINVAL;
	}
	if (unit != 1)
		num[n - 1] = '\0';
	if (parse_u64(num, UINT64_MAX / unit, &v))
		return parse_u64(num, UINT64_MAX, &v) == -EINVAL ? -EINVAL : -ERANGE;
	*out = v * unit;
	return 0;
}

static uint64_t limit_max(const char *field)
{
	return !strcmp(field, "burst") ? NET_LIMIT_MAX_BURST : NET_LIMIT_MAX_BITS;
}

/* "tx-average 2000000000000 is absurd: ...", the value as shown. */
static int absurd(enum net_dir d, const char *field, const char *shown, const char *what,
		  char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s-%s %s is absurd: at most %" PRIu64 "%s", what, dir_names[d],
		 field, shown, limit_max(field), !strcmp(field, "burst") ? " bytes" : " bit/s");
	return -EINVAL;
}

int net_limit_check_value(enum net_dir d, const char *field, uint64_t v, const char *what,
			  char *err, size_t errlen)
{
	char shown[24];

	if (v <= limit_max(field))
		return 0;
	snprintf(shown, sizeof(shown), "%" PRIu64, v);
	return absurd(d, field, shown, what, err, errlen);
}

int net_limits_parse_key(struct net_limits *lim, const char *what, const char *key,
			 const char *val, char *err, size_t errlen)
{
	static const char *const fields[] = { "average", "peak", "burst" };

	for (unsigned d = 0; d < NET_DIRS; d++) {
		size_t n = strlen(dir_names[d]);
		struct rate_limit_params *p = &lim->dir[d];

		if (strncmp(key, dir_names[d], n) || key[n] != '-')
			continue;
		for (unsigned f = 0; f < 3; f++) {
			bool burst = f == 2;
			uint64_t v;
			int r;

			if (strcmp(key + n + 1, fields[f]))
				continue;
			if (val[0] == '-') {
				snprintf(err, errlen, "%s: %s %s: a limit cannot be negative", what, key,
					 val);
				return -EINVAL;
			}
			r = burst ? parse_size(val, 1, &v) : parse_bits(val, &v);
			if (r == -EINVAL) {
				snprintf(err, errlen, "%s: %s '%s' is not %s", what, key, val,
					 burst ? "a number of bytes (examples: 512K, 10M)"
					       : "a rate in bit/s (examples: 500k, 50M, 1G)");
				return -EINVAL;
			}
			if (r == -ERANGE) /* beyond 64 bits: name it as written */
				return absurd(d, fields[f], val, what, err, errlen);
			r = net_limit_check_value(d, fields[f], v, what, err, errlen);
			if (r)
				return r;
			*(f == 0 ? &p->average : f == 1 ? &p->peak : &p->burst) = v;
			return 1;
		}
	}
	return 0;
}

int net_limits_check(const struct net_limits *lim, const char *what, char *err, size_t errlen)
{
	for (unsigned d = 0; d < NET_DIRS; d++) {
		const struct rate_limit_params *p = &lim->dir[d];

		if (!p->average && (p->burst || p->peak)) {
			snprintf(err, errlen, "%s: %s-%s needs %s-average as well", what, dir_names[d],
				 p->burst ? "burst" : "peak", dir_names[d]);
			return -EINVAL;
		}
		if (p->peak && p->peak < p->average) {
			snprintf(err, errlen, "%s: %s-peak %" PRIu64 " is below %s-average %" PRIu64
				 " (bit/s)", what, dir_names[d], p->peak, dir_names[d], p->average);
			return -EINVAL;
		}
	}
	return 0;
}

/* The buckets count bits: a burst in bytes becomes bits. */
static struct rate_limit_params in_bits(const struct rate_limit_params *p)
{
	return (struct rate_limit_params){ .average = p->average, .peak = p->peak,
					   .burst = p->burst * 8 };
}

void net_shaper_init(struct net_shaper *s, const struct net_limits *lim, uint64_t now_ns)
{
	s->lim = lim ? *lim : (struct net_limits){ 0 };
	for (unsigned d = 0; d < NET_DIRS; d++) {
		struct rate_limit_params p = in_bits(&s->lim.dir[d]);

		rate_limit_init(&s->rl[d], &p, now_ns);
	}
}

void net_shaper_set(struct net_shaper *s, const struct net_limits *lim, uint64_t now_ns)
{
	s->lim = *lim;
	for (unsigned d = 0; d < NET_DIRS; d++) {
		struct rate_limit_params p = in_bits(&s->lim.dir[d]);

		rate_limit_set(&s->rl[d], &p, now_ns);
	}
}

void net_shaper_reserve(struct net_shaper *s, enum net_dir d, uint64_t frame_bytes,
			uint64_t now_ns, struct rate_ticket *t)
{
	rate_limit_reserve(&s->rl[d], frame_bytes * 8, now_ns, t);
}

uint64_t net_shaper_wait_ns(struct net_shaper *s, enum net_dir d, const struct rate_ticket *t,
			    uint64_t now_ns)
{
	return rate_limit_wait_ns(&s->rl[d], t, now_ns);
}
