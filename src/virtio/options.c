// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/options.h"

int opts_parse(const char *what, const char *s, opts_cb cb, void *ctx, char *err, size_t errlen)
{
	char *copy, *save = NULL, *pair;
	int r = 0;

	if (!s || !*s) {
		snprintf(err, errlen, "%s: empty option string", what);
		return -EINVAL;
	}
	copy = strdup(s);
	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	for (pair = strtok_r(copy, ",", &save); pair && !r; pair = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(pair, '=');

		if (!eq || eq == pair || !eq[1]) {
			snprintf(err, errlen, "%s: '%s' is not key=value", what, pair);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		r = cb(ctx, pair, eq + 1, err, errlen);
	}
	free(copy);
	return r;
}

int opts_bool(const char *val, int *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };

	for (unsigned i = 0; i < 4; i++) {
		if (!strcmp(val, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcmp(val, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int opts_mac(const char *val, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (strlen(val) != 17 ||
	    sscanf(val, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (val[3 * i] == '+' || val[3 * i] == '-' || val[3 * i] == ' ')
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	if (mac[0] & 1) /* multicast bit: not a station address */
		return -EINVAL;
	return 0;
}
