// SPDX-License-Identifier: Apache-2.0
/* keel-img resize, snapshot, commit and rebase: changes to an image. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "img.h"

#define CHUNK (1 * MiB)

static int resize_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "shrink", no_argument, 0, 's' },
		{ "preallocation", required_argument, 0, 'P' }, { 0 } };
	const char *fmt = NULL, *arg;
	bool shrink = false, quiet = false;
	char err[BLK_ERR_LEN];
	struct blk_dev *dev;
	struct blk_info in;
	uint64_t size, delta;
	int c, r;

	while ((c = getopt_long(argc, argv, "hf:q", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_resize, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 's': shrink = true; break;
		case 'P':
			if (strcmp(optarg, "off")) {
				img_error("only --preallocation=off is supported");
				return 1;
			}
			break;
		default: return img_bad_option(&img_cmd_resize);
		}
	}
	/* "-1G" looks like an option to getopt; qemu-img accepts it after "--" too */
	if (optind != argc - 2) {
		img_error("resize: expected a file name and a size");
		return 1;
	}
	arg = argv[optind + 1];
	if (img_parse_size(arg + (arg[0] == '+' || arg[0] == '-'), &delta)) {
		img_error("invalid size '%s'", arg);
		return 1;
	}
	dev = img_open(argv[optind], fmt, false, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, BLK_OPEN_NO_BACKING);
	if (!dev)
		return 1;
	blk_get_info(dev, &in);
	if (arg[0] == '+')
		size = in.size + delta;
	else if (arg[0] == '-')
		size = delta > in.size ? 0 : in.size - delta;
	else
		size = delta;
	if (size < in.size && !shrink) {
		img_error("Use the --shrink option to perform a shrink operation.");
		blk_close(dev);
		return 1;
	}
	r = blk_img_resize(dev, size, err, sizeof(err));
	if (r)
		img_error("%s", err);
	if (blk_close(dev) && !r) {
		img_error("%s: cannot write the metadata", argv[optind]);
		r = -EIO;
	}
	if (!r && !quiet)
		printf("Image resized.\n");
	return r ? 1 : 0;
}

const struct img_cmd img_cmd_resize = {
	.name = "resize",
	.run = resize_run,
	.usage = "resize [-q] [-f fmt] [--shrink] filename [+|-]size",
	.help =
	"Changes the virtual size (absolute, or relative with + or -). Shrinking\n"
	"discards everything past the new end and needs --shrink.\n",
};

static int snapshot_run(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0 } };
	const char *fmt = NULL, *name = NULL;
	static const char *const verbs[] = { ['c'] = "create", ['a'] = "apply", ['d'] = "delete" };
	char op = 'l', err[BLK_ERR_LEN] = "";
	struct blk_dev *dev;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "hf:la:c:d:qU", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_snapshot, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'q': case 'U': break;
		case 'l': op = 'l'; break;
		case 'a': case 'c': case 'd': op = c; name = optarg; break;
		default: return img_bad_option(&img_cmd_snapshot);
		}
	}
	if (optind != argc - 1) {
		img_error("snapshot: expected one file name");
		return 1;
	}
	dev = img_open(argv[optind], fmt, op == 'l', BLK_CACHE_WRITEBACK, BLK_AIO_SYNC,
		       BLK_OPEN_NO_BACKING);
	if (!dev)
		return 1;
	if (op == 'l') {
		struct blk_img_info in;

		blk_img_info(dev, &in);
		if (strcmp(in.format, "qcow2")) {
			img_error("%s: raw images have no internal snapshots", argv[optind]);
			r = -ENOTSUP;
		} else {
			img_print_snapshots(dev);
		}
	} else {
		r = blk_img_snapshot(dev, op, name, err, sizeof(err));
		if (r)
			img_error("Could not %s snapshot '%s': %s", verbs[(int)op], name,
				  err[0] ? err : strerror(-r));
	}
	if (blk_close(dev) && !r) {
		img_error("%s: cannot write the metadata", argv[optind]);
		r = -EIO;
	}
	return r ? 1 : 0;
}

const struct img_cmd img_cmd_snapshot = {
	.name = "snapshot",
	.run = snapshot_run,
	.usage = "snapshot [-q] [-f fmt] [-l | -a snapshot | -c snapshot | -d snapshot] filename",
	.help =
	"Internal snapshots of a qcow2 image: -l lists (the default), -c creates,\n"
	"-a reverts the disk to a snapshot, -d deletes one (by name or ID).\n",
};

/* The backing file name of dev resolved against dev's directory. */
static char *resolve(const char *image, const char *name)
{
	char *copy, *out = NULL;

	if (name[0] == '/')
		return strdup(name);
	copy = strdup(image);
	if (copy && asprintf(&out, "%s/%s", dirname(copy), name) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* Copies the data of [off, off+len) from src to dst (skipping zeroes
   when dst reads zero there already is not known: always written). */
static int copy_range(struct blk_queue *qs, struct blk_queue *qd, uint8_t *buf,
		      uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t n = MIN(len, CHUNK);
		int r = blk_pread(qs, buf, n, off);

		if (!r)
			r = blk_pwrite(qd, buf, n, off);
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int commit_run(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0 } };
	const char *fmt = NULL, *cache_s = "writeback", *base_arg = NULL;
	bool keep = false, quiet = false, progress = false;
	struct blk_dev *top, *base = NULL;
	struct blk_queue *qt = NULL, *qb = NULL;
	enum blk_cache cache;
	struct blk_info in;
	uint8_t *buf = NULL;
	char *bpath = NULL;
	int c, r = -EINVAL;

	while ((c = getopt_long(argc, argv, "hf:t:b:dpqr:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_commit, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 't': cache_s = optarg; break;
		case 'd': keep = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'b': base_arg = optarg; break;
		case 'r': break; /* no rate limit: accepted and ignored */
		default: return img_bad_option(&img_cmd_commit);
		}
	}
	if (optind != argc - 1) {
		img_error("commit: expected one file name");
		return 1;
	}
	if (img_parse_cache(cache_s, &cache))
		return 1;
	top = img_open(argv[optind], fmt, true, BLK_CACHE_WRITEBACK, BLK_AIO_IO_URING, 0);
	if (!top)
		return 1;
	if (!blk_img_backing(top)) {
		img_error("%s: Image does not have a backing file", argv[optind]);
		goto out;
	}
	bpath = resolve(argv[optind], blk_img_backing_name(top));
	if (bpath && base_arg && !same_file(bpath, base_arg)) {
		img_error("%s: committing into '%s', which is not the image's backing file "
			  "'%s', is not supported", argv[optind], base_arg, blk_img_backing_name(top));
		goto out;
	}
	base = bpath ? img_open(bpath, blk_img_backing_format(top), false, cache,
				BLK_AIO_IO_URING, BLK_OPEN_NO_BACKING) : NULL;
	buf = blk_alloc_aligned(CHUNK);
	if (!base || !buf || !(qt = img_queue(top, 4)) || !(qb = img_queue(base, 4)))
		goto out;
	blk_get_info(top, &in);
	r = 0;
	/* Everything the top image decides itself goes down one level. */
	for (uint64_t off = 0; off < in.size && !r;) {
		struct blk_status st;

		r = blk_img_block_status(top, off, in.size - off, &st);
		if (!r && st.kind != BLK_ST_UNALLOCATED)
			r = copy_range(qt, qb, buf, off, st.len);
		off += st.len;
		img_progress(progress && !quiet, off * 100.0 / in.size);
	}
	if (!r)
		r = blk_flush(qb);
	if (r)
		img_error("commit failed: %s", strerror(-r));
out:
	blk_queue_destroy(qt);
	blk_queue_destroy(qb);
	if (blk_close(base) && !r)
		r = -EIO;
	blk_close(top);
	free(buf);
	free(bpath);
	if (!r && !keep) {
		/* Empty the overlay: it now reads through to the base. */
		top = img_open(argv[optind], fmt, false, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC,
			       BLK_OPEN_NO_BACKING);
		r = top ? blk_img_make_empty(top) : -EIO;
		if (blk_close(top) && !r)
			r = -EIO;
		if (r)
			img_error("%s: could not empty the image after commit", argv[optind]);
	}
	if (!r && !quiet)
		printf("Image committed.\n");
	return r ? 1 : 0;
}

const struct img_cmd img_cmd_commit = {
	.name = "commit",
	.run = commit_run,
	.usage = "commit [-q] [-f fmt] [-t cache] [-b base] [-d] [-p] filename",
	.help =
	"Writes the data the image holds into its backing file, then empties the\n"
	"image (unless -d) so it reads through to the updated backing file. -b may\n"
	"only name that backing file (deeper bases are not supported).\n",
};

static int rebase_run(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0 } };
	const char *fmt = NULL, *nb = NULL, *nbf = NULL;
	bool unsafe = false, progress = false, quiet = false;
	struct blk_dev *top, *newb = NULL;
	struct blk_queue *qt = NULL, *qn = NULL;
	uint8_t *a = NULL, *b = NULL;
	struct blk_info in, nin = { 0 };
	char *npath = NULL;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "hf:t:T:b:F:upqU", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_rebase, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'b': nb = optarg; break;
		case 'F': nbf = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 't': case 'T': case 'U': break;
		default: return img_bad_option(&img_cmd_rebase);
		}
	}
	if (optind != argc - 1 || !nb) {
		img_error("rebase: expected -b backing_file and one file name");
		return 1;
	}
	if (nb[0] && !nbf) {
		img_error("%s: -b given without its format (-F raw|qcow2)", argv[optind]);
		return 1;
	}
	top = img_open(argv[optind], fmt, false, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC,
		       unsafe ? BLK_OPEN_NO_BACKING : 0);
	if (!top)
		return 1;
	if (!unsafe) {
		blk_get_info(top, &in);
		if (nb[0]) {
			npath = resolve(argv[optind], nb);
			newb = npath ? img_open(npath, nbf, true, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, 0) : NULL;
			if (!newb) {
				r = -ENOENT;
				goto out;
			}
			blk_get_info(newb, &nin);
		}
		a = blk_alloc_aligned(CHUNK);
		b = blk_alloc_aligned(CHUNK);
		qt = img_queue(top, 4);
		qn = newb ? img_queue(newb, 4) : NULL;
		if (!a || !b || !qt || (newb && !qn)) {
			r = -ENOMEM;
			goto out;
		}
		/* Where the image falls through, keep what the old backing
		   showed wherever the new one differs. */
		for (uint64_t off = 0; off < in.size && !r;) {
			struct blk_status st;

			r = blk_img_block_status(top, off, MIN(in.size - off, CHUNK), &st);
			if (r || st.kind != BLK_ST_UNALLOCATED) {
				off += r ? 0 : st.len;
				continue;
			}
			r = blk_pread(qt, a, st.len, off);
			memset(b, 0, st.len);
			if (!r && newb && off < nin.size)
				r = blk_pread(qn, b, MIN(st.len, ALIGN_UP(nin.size, 512) - off), off);
			for (uint64_t p = 0; !r && p < st.len; p += 64 * KiB) {
				uint64_t n = MIN(64 * KiB, st.len - p);

				if (memcmp(a + p, b + p, n))
					r = blk_pwrite(qt, a + p, n, off + p);
			}
			off += st.len;
			img_progress(progress && !quiet, off * 100.0 / in.size);
		}
		if (!r)
			r = blk_flush(qt);
	}
	if (!r)
		r = blk_img_set_backing(top, nb[0] ? nb : NULL, nb[0] ? nbf : NULL);
	if (r)
		img_error("%s: rebase failed: %s", argv[optind], strerror(-r));
out:
	blk_queue_destroy(qt);
	blk_queue_destroy(qn);
	blk_close(newb);
	if (blk_close(top) && !r)
		r = -EIO;
	free(a);
	free(b);
	free(npath);
	return r ? 1 : 0;
}

const struct img_cmd img_cmd_rebase = {
	.name = "rebase",
	.run = rebase_run,
	.usage = "rebase [-q] [-f fmt] [-p] [-u] -b backing_file [-F backing_fmt] filename",
	.help =
	"Changes the backing file of a qcow2 image. Safe mode (default) first copies\n"
	"into the image every range where the old and new backing files differ, so\n"
	"the guest sees the same disk; -u only rewrites the name. -b \"\" removes the\n"
	"backing file (copying everything it provided).\n",
};
