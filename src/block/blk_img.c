// SPDX-License-Identifier: Apache-2.0
/* The offline operations of blk_img.h, per format. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_img.h"
#include "block_int.h"
#include "keel/compiler.h"
#include "qcow2.h"

static bool is_qcow2(struct blk_dev *dev)
{
	return dev->drv == &blk_driver_qcow2;
}

int blk_img_create(const struct blk_create_opts *o, char *err, size_t errlen)
{
	int fd, r = 0;

	if (o->format == BLK_FORMAT_QCOW2)
		return qcow2_create(o, err, errlen);
	if (o->backing) {
		blk_set_err(err, errlen, "raw images cannot have a backing file");
		return -EINVAL;
	}
	fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, o->size) < 0) {
		r = -errno;
		blk_set_err(err, errlen, "%s: cannot create: %s", o->path, strerror(-r));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

int blk_img_resize(struct blk_dev *dev, uint64_t size, char *err, size_t errlen)
{
	if (is_qcow2(dev))
		return qcow2_resize(dev, size, err, errlen);
	if (ftruncate(dev->fd, size) < 0) {
		int r = -errno;

		blk_set_err(err, errlen, "%s: cannot resize: %s", dev->path, strerror(-r));
		return r;
	}
	dev->info.size = size;
	return 0;
}

int blk_img_block_status(struct blk_dev *dev, uint64_t off, uint64_t len, struct blk_status *st)
{
	off_t d, h;

	if (is_qcow2(dev))
		return qcow2_block_status(dev, off, len, st);
	/* raw: holes read as zeroes */
	d = lseek(dev->fd, off, SEEK_DATA);
	if (d < 0 && errno != ENXIO)
		goto all_data;
	if (d < 0 || (uint64_t)d >= off + len) {
		*st = (struct blk_status){ BLK_ST_ZERO, len, 0 };
		return 0;
	}
	if ((uint64_t)d > off) {
		*st = (struct blk_status){ BLK_ST_ZERO, d - off, 0 };
		return 0;
	}
	h = lseek(dev->fd, off, SEEK_HOLE);
	if (h < 0)
		goto all_data;
	*st = (struct blk_status){ BLK_ST_DATA, MIN((uint64_t)h - off, len), off };
	return 0;
all_data:
	*st = (struct blk_status){ BLK_ST_DATA, len, off };
	return 0;
}

int blk_img_set_backing(struct blk_dev *dev, const char *name, const char *fmt)
{
	return is_qcow2(dev) ? qcow2_set_backing(dev, name, fmt) : -ENOTSUP;
}

int blk_img_make_empty(struct blk_dev *dev)
{
	return is_qcow2(dev) ? qcow2_make_empty(dev) : -ENOTSUP;
}

const char *blk_img_backing_name(struct blk_dev *dev)
{
	return is_qcow2(dev) ? qcow2_of(dev)->backing_file : NULL;
}

const char *blk_img_backing_format(struct blk_dev *dev)
{
	return is_qcow2(dev) ? qcow2_of(dev)->backing_format : NULL;
}

struct blk_dev *blk_img_backing(struct blk_dev *dev)
{
	return dev->backing;
}

void blk_img_info(struct blk_dev *dev, struct blk_img_info *in)
{
	struct stat st;

	memset(in, 0, sizeof(*in));
	in->format = dev->drv->name;
	in->virtual_size = dev->info.size;
	if (fstat(dev->fd, &st) == 0) {
		in->actual_size = (uint64_t)st.st_blocks * 512;
		in->file_length = st.st_size;
	}
	if (is_qcow2(dev)) {
		struct qcow2 *s = qcow2_of(dev);

		in->cluster_size = s->cluster_size;
		in->version = s->h.version;
		in->refcount_bits = s->refcount_bits;
		in->corrupt = s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT;
		in->lazy_refcounts = s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
		in->compression = s->h.compression_type ? "zstd" : "zlib";
		in->nb_snapshots = s->nr_snaps;
	}
}

int blk_img_check(struct blk_dev *dev, int fix, struct blk_check_result *res, FILE *out)
{
	if (!is_qcow2(dev))
		return -ENOTSUP;
	return qcow2_check(dev, fix, res, out);
}

int blk_img_snapshot(struct blk_dev *dev, char op, const char *name, char *err, size_t errlen)
{
	if (!is_qcow2(dev)) {
		blk_set_err(err, errlen, "raw images have no internal snapshots");
		return -ENOTSUP;
	}
	return qcow2_snapshot_op(dev, op, name, err, errlen);
}

int blk_img_snapshot_list(struct blk_dev *dev, struct blk_snapshot_info *out, unsigned max)
{
	struct qcow2 *s;
	unsigned n;

	if (!is_qcow2(dev))
		return 0;
	s = qcow2_of(dev);
	for (n = 0; n < s->nr_snaps && n < max; n++) {
		struct qcow2_snapshot *sn = &s->snaps[n];

		snprintf(out[n].id, sizeof(out[n].id), "%s", sn->id);
		snprintf(out[n].name, sizeof(out[n].name), "%s", sn->name);
		out[n].vm_state_size = sn->vm_state_size;
		out[n].date_sec = sn->date_sec;
		out[n].date_nsec = sn->date_nsec;
		out[n].vm_clock_nsec = sn->vm_clock_nsec;
		out[n].icount = sn->icount;
	}
	return s->nr_snaps;
}
