// SPDX-License-Identifier: Apache-2.0
/* keel-img info and map: what an image is and where its data lives. */
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"

#define MAX_SNAPS 1024

static void snap_times(const struct blk_snapshot_info *sn, char *date, size_t dl, char *clk, size_t cl)
{
	time_t t = sn->date_sec;
	struct tm tm;
	uint64_t ms = sn->vm_clock_nsec / 1000000;

	localtime_r(&t, &tm);
	strftime(date, dl, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clk, cl, "%02llu:%02llu:%02llu.%03llu", (unsigned long long)(ms / 3600000),
		 (unsigned long long)(ms / 60000 % 60), (unsigned long long)(ms / 1000 % 60),
		 (unsigned long long)(ms % 1000));
}

void img_print_snapshots(struct blk_dev *dev)
{
	static struct blk_snapshot_info sn[MAX_SNAPS];
	int n = blk_img_snapshot_list(dev, sn, MAX_SNAPS);

	printf("Snapshot list:\n%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
	       "VM CLOCK", "ICOUNT");
	for (int i = 0; i < n && i < MAX_SNAPS; i++) {
		char size[32], date[32], clk[32], ic[24] = "";

		img_human_size(sn[i].vm_state_size, size, sizeof(size));
		snap_times(&sn[i], date, sizeof(date), clk, sizeof(clk));
		if (sn[i].icount != UINT64_MAX)
			snprintf(ic, sizeof(ic), "%llu", (unsigned long long)sn[i].icount);
		printf("%-9s %-16s %8s%20s%13s%11s\n", sn[i].id, sn[i].name, size, date, clk, ic);
	}
}

static char *full_backing(struct blk_dev *dev, const char *name)
{
	char *copy, *out = NULL;

	if (name[0] == '/')
		return strdup(name);
	copy = strdup(blk_dev_name(dev));
	if (copy && asprintf(&out, "%s/%s", dirname(copy), name) < 0)
		out = NULL;
	free(copy);
	/* qemu-img prints a name in the current directory without "./" */
	if (out && !strncmp(out, "./", 2))
		memmove(out, out + 2, strlen(out) - 1);
	return out;
}

static void info_human(struct blk_dev *dev)
{
	struct blk_img_info in;
	const char *b = blk_img_backing_name(dev), *bf = blk_img_backing_format(dev);
	char vs[32], ds[32];

	blk_img_info(dev, &in);
	img_human_size(in.virtual_size, vs, sizeof(vs));
	img_human_size(in.actual_size, ds, sizeof(ds));
	printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
	       blk_dev_name(dev), in.format, vs, (unsigned long long)in.virtual_size, ds);
	if (!strcmp(in.format, "qcow2")) {
		printf("cluster_size: %u\n", in.cluster_size);
		if (b) {
			char *full = full_backing(dev, b);

			printf("backing file: %s", b);
			if (full && strcmp(full, b))
				printf(" (actual path: %s)", full);
			printf("\n");
			free(full);
			if (bf)
				printf("backing file format: %s\n", bf);
		}
		if (in.nb_snapshots)
			img_print_snapshots(dev);
		printf("Format specific information:\n    compat: %s\n    compression type: %s\n"
		       "    lazy refcounts: %s\n    refcount bits: %u\n    corrupt: %s\n"
		       "    extended l2: false\n", in.version == 2 ? "0.10" : "1.1", in.compression,
		       in.lazy_refcounts ? "true" : "false", in.refcount_bits,
		       in.corrupt ? "true" : "false");
	}
}

static void info_json(struct blk_dev *dev, const char *ind)
{
	static struct blk_snapshot_info sn[MAX_SNAPS];
	struct blk_img_info in;
	const char *b = blk_img_backing_name(dev), *bf = blk_img_backing_format(dev);
	bool q = false;
	int n;

	blk_img_info(dev, &in);
	q = !strcmp(in.format, "qcow2");
	printf("%s{\n", ind);
	if (q && b && bf) {
		printf("%s    \"backing-filename-format\": ", ind);
		img_json_str(stdout, bf);
		printf(",\n");
	}
	n = q ? blk_img_snapshot_list(dev, sn, MAX_SNAPS) : 0;
	if (n > 0) {
		printf("%s    \"snapshots\": [\n", ind);
		for (int i = 0; i < n && i < MAX_SNAPS; i++) {
			printf("%s        {\n", ind);
			if (sn[i].icount != UINT64_MAX)
				printf("%s            \"icount\": %llu,\n", ind, (unsigned long long)sn[i].icount);
			printf("%s            \"vm-clock-nsec\": %llu,\n%s            \"name\": ", ind,
			       (unsigned long long)(sn[i].vm_clock_nsec % 1000000000), ind);
			img_json_str(stdout, sn[i].name);
			printf(",\n%s            \"date-sec\": %u,\n%s            \"date-nsec\": %u,\n"
			       "%s            \"vm-clock-sec\": %llu,\n%s            \"id\": ", ind,
			       sn[i].date_sec, ind, sn[i].date_nsec, ind,
			       (unsigned long long)(sn[i].vm_clock_nsec / 1000000000), ind);
			img_json_str(stdout, sn[i].id);
			printf(",\n%s            \"vm-state-size\": %llu\n%s        }%s\n", ind,
			       (unsigned long long)sn[i].vm_state_size, ind, i + 1 < n ? "," : "");
		}
		printf("%s    ],\n", ind);
	}
	printf("%s    \"virtual-size\": %llu,\n%s    \"filename\": ", ind,
	       (unsigned long long)in.virtual_size, ind);
	img_json_str(stdout, blk_dev_name(dev));
	printf(",\n");
	if (q)
		printf("%s    \"cluster-size\": %u,\n", ind, in.cluster_size);
	printf("%s    \"format\": \"%s\",\n%s    \"actual-size\": %llu,\n", ind, in.format, ind,
	       (unsigned long long)in.actual_size);
	if (q) {
		printf("%s    \"format-specific\": {\n%s        \"type\": \"qcow2\",\n"
		       "%s        \"data\": {\n%s            \"compat\": \"%s\",\n"
		       "%s            \"compression-type\": \"%s\",\n"
		       "%s            \"lazy-refcounts\": %s,\n%s            \"refcount-bits\": %u,\n"
		       "%s            \"corrupt\": %s,\n%s            \"extended-l2\": false\n"
		       "%s        }\n%s    },\n", ind, ind, ind, ind, in.version == 2 ? "0.10" : "1.1",
		       ind, in.compression, ind, in.lazy_refcounts ? "true" : "false", ind,
		       in.refcount_bits, ind, in.corrupt ? "true" : "false", ind, ind, ind);
		if (b) {
			char *full = full_backing(dev, b);

			printf("%s    \"full-backing-filename\": ", ind);
			img_json_str(stdout, full ? full : b);
			printf(",\n%s    \"backing-filename\": ", ind);
			img_json_str(stdout, b);
			printf(",\n");
			free(full);
		}
	}
	printf("%s    \"dirty-flag\": false\n%s}", ind, ind);
}

static int info_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "output", required_argument, 0, 'O' },
		{ "backing-chain", no_argument, 0, 'B' }, { 0 } };
	const char *fmt = NULL;
	bool json = false, chain = false;
	struct blk_dev *dev, *d;
	int c;

	while ((c = getopt_long(argc, argv, "hf:U", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_info, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'U': break; /* no locking to skip */
		case 'B': chain = true; break;
		case 'O':
			if (!strcmp(optarg, "json"))
				json = true;
			else if (strcmp(optarg, "human")) {
				img_error("--output must be human or json");
				return 1;
			}
			break;
		default: return img_bad_option(&img_cmd_info);
		}
	}
	if (optind != argc - 1) {
		img_error("info: expected one file name");
		return 1;
	}
	dev = img_open(argv[optind], fmt, true, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC,
		       chain ? 0 : BLK_OPEN_NO_BACKING);
	if (!dev)
		return 1;
	if (json && chain)
		printf("[\n");
	for (d = dev; d; d = chain ? blk_img_backing(d) : NULL) {
		if (json) {
			info_json(d, chain ? "    " : "");
			printf("%s\n", chain && blk_img_backing(d) ? "," : "");
		} else {
			if (d != dev)
				printf("\n");
			info_human(d);
		}
	}
	if (json && chain)
		printf("]\n");
	blk_close(dev);
	return 0;
}

const struct img_cmd img_cmd_info = {
	.name = "info",
	.run = info_run,
	.usage = "info [-f fmt] [--output=human|json] [--backing-chain] filename",
	.help =
	"Shows the format, sizes, backing file, snapshots and qcow2 details of an\n"
	"image; JSON is shaped like qemu-img's. --backing-chain shows each image of\n"
	"the chain. Exit status: 0, or 1 when the image cannot be opened.\n",
};

/* ---- map ---- */

struct extent {
	uint64_t start, len, offset;
	unsigned depth;
	bool present, zero, data, has_offset;
	const char *file;
};

/* The status of off in the chain below dev. */
static int chain_status(struct blk_dev *dev, uint64_t off, uint64_t len, struct extent *e)
{
	struct blk_info in;

	for (unsigned depth = 0; dev; depth++) {
		struct blk_status st;
		struct blk_dev *b;

		blk_get_info(dev, &in);
		if (off >= in.size) {
			*e = (struct extent){ .len = len, .depth = depth, .zero = true };
			return 0;
		}
		len = MIN(len, in.size - off);
		if (blk_img_block_status(dev, off, len, &st))
			return -1;
		e->len = st.len;
		e->depth = depth;
		e->file = blk_dev_name(dev);
		e->has_offset = false;
		switch (st.kind) {
		case BLK_ST_DATA:
			e->present = e->data = true;
			e->zero = false;
			e->has_offset = true;
			e->offset = st.host;
			return 0;
		case BLK_ST_COMPRESSED:
			e->present = e->data = true;
			e->zero = false;
			return 0;
		case BLK_ST_ZERO:
			e->present = e->zero = true;
			e->data = false;
			if (!strcmp(in.format, "raw")) { /* a hole of a raw file */
				e->has_offset = true;
				e->offset = off;
			}
			return 0;
		case BLK_ST_UNALLOCATED:
			b = blk_img_backing(dev);
			len = st.len;
			if (!b) {
				*e = (struct extent){ .len = st.len, .depth = depth, .zero = true };
				return 0;
			}
			dev = b;
			break;
		}
	}
	return -1;
}

static bool mergeable(const struct extent *a, const struct extent *b)
{
	return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
	       a->data == b->data && a->has_offset == b->has_offset && a->file == b->file &&
	       (!a->has_offset || a->offset + a->len == b->offset);
}

static void print_extent(const struct extent *e, bool json, bool first)
{
	if (!json) {
		char a[32], b[32], c[32];

		if (!e->data || !e->has_offset)
			return;
		snprintf(a, sizeof(a), "0x%llx", (unsigned long long)e->start);
		snprintf(b, sizeof(b), "0x%llx", (unsigned long long)e->len);
		snprintf(c, sizeof(c), "0x%llx", (unsigned long long)e->offset);
		printf("%-16s%-16s%-16s%s\n", a, b, c, e->file);
		return;
	}
	printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %u, \"present\": %s, "
	       "\"zero\": %s, \"data\": %s", first ? "[" : ",\n", (unsigned long long)e->start,
	       (unsigned long long)e->len, e->depth, e->present ? "true" : "false",
	       e->zero ? "true" : "false", e->data ? "true" : "false");
	if (e->has_offset)
		printf(", \"offset\": %llu", (unsigned long long)e->offset);
	printf("}");
}

static int map_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "output", required_argument, 0, 'O' },
		{ "start-offset", required_argument, 0, 's' },
		{ "max-length", required_argument, 0, 'l' }, { 0 } };
	uint64_t start = 0, maxlen = UINT64_MAX, end;
	const char *fmt = NULL;
	struct extent cur = { 0 }, e;
	bool json = false, have = false, first = true;
	struct blk_dev *dev;
	struct blk_info in;
	int c;

	while ((c = getopt_long(argc, argv, "hf:U", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_map, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'U': break;
		case 'O': json = !strcmp(optarg, "json"); break;
		case 's': if (img_parse_size(optarg, &start)) return img_bad_option(&img_cmd_map); break;
		case 'l': if (img_parse_size(optarg, &maxlen)) return img_bad_option(&img_cmd_map); break;
		default: return img_bad_option(&img_cmd_map);
		}
	}
	if (optind != argc - 1) {
		img_error("map: expected one file name");
		return 1;
	}
	dev = img_open(argv[optind], fmt, true, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, 0);
	if (!dev)
		return 1;
	blk_get_info(dev, &in);
	end = maxlen > in.size - MIN(start, in.size) ? in.size : start + maxlen;
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (uint64_t off = start; off < end; off += e.len) {
		if (chain_status(dev, off, end - off, &e) || !e.len) {
			img_error("%s: cannot read the mapping at %llu", argv[optind],
				  (unsigned long long)off);
			blk_close(dev);
			return 1;
		}
		e.start = off;
		if (have && mergeable(&cur, &e)) {
			cur.len += e.len;
			continue;
		}
		if (have) {
			print_extent(&cur, json, first);
			first = false;
		}
		cur = e;
		have = true;
	}
	if (have)
		print_extent(&cur, json, first);
	if (json)
		printf("%s\n", have ? "]" : "[]");
	blk_close(dev);
	return 0;
}

const struct img_cmd img_cmd_map = {
	.name = "map",
	.run = map_run,
	.usage = "map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] filename",
	.help =
	"Shows where each range of the virtual disk is stored: in which image of\n"
	"the backing chain (depth), whether it holds data or reads as zeroes, and at\n"
	"which file offset. The human output lists only data mapped to a file.\n",
};
