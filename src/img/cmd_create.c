// SPDX-License-Identifier: Apache-2.0
/* keel-img create: a new raw or qcow2 image, optionally over a backing file. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

/* -o key=value[,key=value] for qcow2. */
static int parse_o(char *s, struct blk_create_opts *o)
{
	for (char *kv = strtok(s, ","); kv; kv = strtok(NULL, ",")) {
		char *v = strchr(kv, '=');
		uint64_t n;

		if (!v) {
			img_error("invalid option '%s' (key=value expected)", kv);
			return -EINVAL;
		}
		*v++ = 0;
		if (!strcmp(kv, "cluster_size") && !img_parse_size(v, &n) && n <= UINT32_MAX) {
			o->cluster_size = n;
		} else if (!strcmp(kv, "refcount_bits") && !img_parse_size(v, &n) && n <= 64) {
			o->refcount_bits = n;
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->compat_v2 = true;
			else if (strcmp(v, "1.1") && strcmp(v, "v3")) {
				img_error("invalid compat '%s' (1.1 or 0.10)", v);
				return -EINVAL;
			}
		} else if (!strcmp(kv, "backing_file")) {
			o->backing = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			o->backing_fmt = v;
		} else if (!strcmp(kv, "size") && !img_parse_size(v, &n)) {
			o->size = n;
		} else if (!strcmp(kv, "compression_type") && !strcmp(v, "zlib")) {
			/* the default; keel-img does not write compressed clusters */
		} else if (!strcmp(kv, "lazy_refcounts") && !strcmp(v, "off")) {
		} else if (!strcmp(kv, "extended_l2") && !strcmp(v, "off")) {
		} else {
			img_error("unsupported or invalid option '%s=%s'", kv, v);
			return -EINVAL;
		}
	}
	return 0;
}

/* The backing file's size, its name taken relative to the new image. */
static int backing_size(const char *image, const char *backing, const char *fmt, uint64_t *size)
{
	char *copy = strdup(image), *path = NULL;
	struct blk_dev *b;
	struct blk_info in;

	if (!copy)
		return -ENOMEM;
	if (backing[0] == '/' || asprintf(&path, "%s/%s", dirname(copy), backing) < 0)
		path = strdup(backing);
	free(copy);
	b = path ? img_open(path, fmt, true, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, 0) : NULL;
	free(path);
	if (!b)
		return -ENOENT;
	blk_get_info(b, &in);
	*size = in.size;
	blk_close(b);
	return 0;
}

static int run(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0 } };
	struct blk_create_opts o = { .format = BLK_FORMAT_RAW };
	const char *fmt = "raw";
	bool quiet = false, unsafe = false, size_given = false;
	char err[BLK_ERR_LEN];
	int c;

	while ((c = getopt_long(argc, argv, "hf:b:F:o:uq", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_create, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'b': o.backing = optarg; break;
		case 'F': o.backing_fmt = optarg; break;
		case 'o': if (parse_o(optarg, &o)) return 1; break;
		case 'u': unsafe = true; break;
		case 'q': quiet = true; break;
		default: return img_bad_option(&img_cmd_create);
		}
	}
	if (optind >= argc || argc - optind > 2) {
		img_error("create: expected a file name and a size");
		return 1;
	}
	o.path = argv[optind];
	if (blk_format_parse(fmt, &o.format)) {
		img_error("unknown format '%s' (raw or qcow2)", fmt);
		return 1;
	}
	if (optind + 1 < argc) {
		if (img_parse_size(argv[optind + 1], &o.size)) {
			img_error("invalid size '%s'", argv[optind + 1]);
			return 1;
		}
		size_given = true;
	}
	if (o.backing && !o.backing_fmt) {
		img_error("%s: Backing file specified without backing format (-F raw|qcow2)", o.path);
		return 1;
	}
	if (o.backing_fmt && strcmp(o.backing_fmt, "raw") && strcmp(o.backing_fmt, "qcow2")) {
		img_error("unknown backing format '%s' (raw or qcow2)", o.backing_fmt);
		return 1;
	}
	if (o.backing && !size_given && !o.size) {
		if (unsafe) {
			img_error("create -u needs an explicit size");
			return 1;
		}
		if (backing_size(o.path, o.backing, o.backing_fmt, &o.size))
			return 1;
	} else if (o.backing && !unsafe && backing_size(o.path, o.backing, o.backing_fmt, &(uint64_t){ 0 })) {
		return 1;
	} else if (!size_given && !o.size) {
		img_error("create: a size is required");
		return 1;
	}
	if (!quiet) {
		if (o.format == BLK_FORMAT_RAW)
			printf("Formatting '%s', fmt=raw size=%llu\n", o.path, (unsigned long long)o.size);
		else {
			printf("Formatting '%s', fmt=qcow2 cluster_size=%u extended_l2=off "
			       "compression_type=zlib size=%llu", o.path,
			       o.cluster_size ? o.cluster_size : 65536, (unsigned long long)o.size);
			if (o.backing)
				printf(" backing_file=%s backing_fmt=%s", o.backing, o.backing_fmt);
			printf(" lazy_refcounts=off refcount_bits=%u\n",
			       o.refcount_bits ? o.refcount_bits : 16);
		}
	}
	if (blk_img_create(&o, err, sizeof(err))) {
		img_error("%s", err);
		return 1;
	}
	return 0;
}

const struct img_cmd img_cmd_create = {
	.name = "create",
	.run = run,
	.usage = "create [-q] [-f fmt] [-b backing_file -F backing_fmt] [-u] [-o options] filename [size]",
	.help =
	"Creates an image of the given size (raw by default). A qcow2 image may\n"
	"have a backing file (relative names are relative to the new image); its\n"
	"size defaults to the backing file's.\n\n"
	"  -f fmt        raw or qcow2\n"
	"  -b file       backing file (qcow2 only); -F gives its format (required)\n"
	"  -u            do not open the backing file (size required)\n"
	"  -o options    qcow2: cluster_size=N, refcount_bits=N, compat=1.1\n"
	"  -q            quiet\n"
	"Exit status: 0 created, 1 error.\n",
};
