// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "keel/parse.h"

void img_error(const char *fmt, ...)
{
	va_list ap;

	fputs("keel-img: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void img_usage(const struct img_cmd *c, FILE *f)
{
	fprintf(f, "usage: keel-img %s\n\n%s", c->usage, c->help);
}

int img_bad_option(const struct img_cmd *c)
{
	img_usage(c, stderr);
	return 1;
}

struct blk_dev *img_open(const char *path, const char *fmt, bool read_only,
			 enum blk_cache cache, enum blk_aio aio, unsigned flags)
{
	struct blk_open_opts o = { .path = path, .read_only = read_only, .cache = cache,
				   .aio = aio, .flags = flags, .format = BLK_FORMAT_PROBE_QCOW2 };
	char err[BLK_ERR_LEN];
	struct blk_dev *dev;

	if (fmt && blk_format_parse(fmt, &o.format)) {
		img_error("unknown format '%s' (raw or qcow2)", fmt);
		return NULL;
	}
	if (blk_open(&o, &dev, err, sizeof(err))) {
		img_error("%s", err);
		return NULL;
	}
	return dev;
}

struct blk_queue *img_queue(struct blk_dev *dev, unsigned depth)
{
	struct blk_queue *q;
	int r = blk_queue_create(dev, depth, &q);

	if (r) {
		img_error("%s: cannot set up I/O: %s", blk_dev_name(dev), strerror(-r));
		return NULL;
	}
	return q;
}

int img_parse_size(const char *s, uint64_t *out)
{
	return parse_size(s, 1, out);
}

int img_parse_cache(const char *s, enum blk_cache *out)
{
	if (!strcmp(s, "directsync")) { /* qemu-img's name for none + FUA */
		*out = BLK_CACHE_WRITETHROUGH;
		return 0;
	}
	if (blk_cache_parse(s, out)) {
		img_error("invalid cache mode '%s' (none, writeback, writethrough, unsafe)", s);
		return -EINVAL;
	}
	return 0;
}

void img_human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	unsigned i = 0;

	/* The unit is the largest one the value reaches when rounded to
	   three significant digits, as qemu prints it. */
	while (i + 1 < ARRAY_SIZE(units) && (double)v >= 1000.0 / 1024.0 * (double)(1ULL << ((i + 1) * 10)))
		i++;
	snprintf(buf, len, "%0.3g %sB", (double)v / (double)(1ULL << (i * 10)), units[i]);
}

void img_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void img_progress(bool on, double pct)
{
	static double last = -1;

	if (!on || pct - last < 0.01)
		return;
	last = pct;
	printf("    (%.2f/100%%)\r", pct);
	fflush(stdout);
}
