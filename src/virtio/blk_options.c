// SPDX-License-Identifier: Apache-2.0
/* --disk's option string (virtio/blk.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keel/parse.h"
#include "virtio/blk.h"
#include "virtio/options.h"

struct parse_ctx {
	struct virtio_blk_opts *o;
	bool have_path;
};

static int blk_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct parse_ctx *c = ctx;
	struct virtio_blk_opts *o = c->o;
	uint64_t n;
	int b;

	b = blk_limits_parse_key(&o->limits, "--disk", key, val, err, errlen);
	if (b)
		return b < 0 ? b : 0;
	if (!strcmp(key, "path")) {
		if (strlen(val) >= sizeof(o->path))
			goto bad;
		snprintf(o->path, sizeof(o->path), "%s", val);
		c->have_path = true;
	} else if (!strcmp(key, "readonly")) {
		if (opts_bool(val, &b) < 0)
			goto bad;
		o->read_only = b;
	} else if (!strcmp(key, "cache")) {
		if (blk_cache_parse(val, &o->cache) < 0 || o->cache == BLK_CACHE_UNSAFE)
			goto bad;
	} else if (!strcmp(key, "aio")) {
		if (blk_aio_parse(val, &o->aio) < 0)
			goto bad;
	} else if (!strcmp(key, "format")) {
		if (blk_format_parse(val, &o->format) < 0)
			goto bad;
	} else if (!strcmp(key, "serial")) {
		if (strlen(val) > VIRTIO_BLK_ID_BYTES)
			goto bad;
		snprintf(o->serial, sizeof(o->serial), "%s", val);
	} else if (!strcmp(key, "queues")) {
		if (parse_u64(val, VIRTIO_BLK_MAX_QUEUES, &n) < 0 || !n)
			goto bad;
		o->queues = (unsigned)n;
	} else if (!strcmp(key, "group")) {
		if (strlen(val) >= sizeof(o->group))
			goto bad;
		snprintf(o->group, sizeof(o->group), "%s", val);
	} else {
		snprintf(err, errlen,
			 "--disk: unknown key '%s' (path, readonly, cache, aio, serial, format, queues, "
			 "group, iops, iops-rd, iops-wr, bw, bw-rd, bw-wr and their -burst and -peak)",
			 key);
		return -EINVAL;
	}
	return 0;
bad:
	if (!strcmp(key, "cache"))
		snprintf(err, errlen, "--disk: cache '%s' is not none, writethrough or writeback", val);
	else if (!strcmp(key, "aio"))
		snprintf(err, errlen, "--disk: aio '%s' is not io_uring, threads or sync", val);
	else if (!strcmp(key, "format"))
		snprintf(err, errlen, "--disk: format '%s' is not raw or qcow2", val);
	else if (!strcmp(key, "serial"))
		snprintf(err, errlen, "--disk: serial '%s' is longer than %d characters", val,
			 VIRTIO_BLK_ID_BYTES);
	else if (!strcmp(key, "queues"))
		snprintf(err, errlen, "--disk: queues '%s' is not a number from 1 to %d", val,
			 VIRTIO_BLK_MAX_QUEUES);
	else if (!strcmp(key, "readonly"))
		snprintf(err, errlen, "--disk: readonly '%s' is not on or off", val);
	else
		snprintf(err, errlen, "--disk: %s '%s' is too long", key, val);
	return -EINVAL;
}

int virtio_blk_parse(const char *s, struct virtio_blk_opts *opts, char *err, size_t errlen)
{
	struct parse_ctx c = { .o = opts };
	int r;

	memset(opts, 0, sizeof(*opts));
	opts->cache = BLK_CACHE_WRITEBACK;
	opts->aio = BLK_AIO_IO_URING;
	opts->format = BLK_FORMAT_RAW;
	r = opts_parse("--disk", s, blk_opt, &c, err, errlen);
	if (!r && !c.have_path) {
		snprintf(err, errlen, "--disk: path=FILE is required");
		r = -EINVAL;
	}
	if (!r)
		r = blk_limits_check(&opts->limits, "--disk", err, errlen);
	return r;
}
