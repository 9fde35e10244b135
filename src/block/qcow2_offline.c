// SPDX-License-Identifier: Apache-2.0
/*
 * qcow2 operations keel-img runs with nothing else using the image:
 * creation, resizing (L1 growth), block status, backing-file changes.
 * Each one that moves a table follows the same rule as the flush: the
 * new table is durable before the header points at it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk_img.h"
#include "keel/compiler.h"
#include "qcow2.h"

/* Writes header, refcount table and one refcount block: an empty image
   of size 0, that blk_open can then grow. */
static int write_empty_qcow2(int fd, uint32_t cs, unsigned cluster_bits, unsigned order)
{
	uint8_t *b = calloc(3, cs);
	int r = 0;

	if (!b)
		return -ENOMEM;
	qcow2_put32(b, QCOW2_MAGIC);
	qcow2_put32(b + 4, 3);
	qcow2_put32(b + 20, cluster_bits);
	qcow2_put64(b + 48, cs);          /* refcount table at cluster 1 */
	qcow2_put32(b + 56, 1);
	qcow2_put32(b + 96, order);
	qcow2_put32(b + 100, 112);
	qcow2_put64(b + cs, 2ULL * cs);   /* its first block at cluster 2 */
	/* clusters 0..2 have refcount 1 */
	for (unsigned c = 0; c < 3; c++) {
		uint8_t *rb = b + 2 * cs;
		unsigned bits = 1u << order;

		if (bits >= 8) {
			rb[c * (bits / 8) + bits / 8 - 1] = 1;
		} else {
			unsigned per = 8 / bits;

			rb[c / per] |= 1u << ((c % per) * bits);
		}
	}
	if (pwrite(fd, b, 3ULL * cs, 0) != (ssize_t)(3ULL * cs))
		r = -errno ? -errno : -EIO;
	free(b);
	return r;
}

int qcow2_create(const struct blk_create_opts *o, char *err, size_t errlen)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 64 * KiB;
	uint32_t rbits = o->refcount_bits ? o->refcount_bits : 16;
	unsigned cluster_bits = __builtin_ctz(cs), order = __builtin_ctz(rbits);
	struct blk_open_opts oo = { .path = o->path, .format = BLK_FORMAT_QCOW2,
				    .aio = BLK_AIO_SYNC, .flags = BLK_OPEN_NO_BACKING };
	struct blk_dev *dev;
	struct qcow2 *s;
	int fd, r;

	if (cs & (cs - 1) || cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		blk_set_err(err, errlen, "cluster size %u must be a power of two between 512 and 2M", cs);
		return -EINVAL;
	}
	if (rbits & (rbits - 1) || rbits > 64) {
		blk_set_err(err, errlen, "refcount bits %u must be a power of two up to 64", rbits);
		return -EINVAL;
	}
	if (o->compat_v2) {
		blk_set_err(err, errlen, "creating qcow2 version 2 (compat=0.10) images is not supported");
		return -ENOTSUP;
	}
	fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		blk_set_err(err, errlen, "%s: cannot create: %s", o->path, strerror(-r));
		return r;
	}
	r = write_empty_qcow2(fd, cs, cluster_bits, order);
	close(fd);
	if (r) {
		blk_set_err(err, errlen, "%s: %s", o->path, strerror(-r));
		return r;
	}
	r = blk_open(&oo, &dev, err, errlen);
	if (r)
		return r;
	s = qcow2_of(dev);
	if (o->backing) {
		s->backing_file = strdup(o->backing);
		s->backing_format = o->backing_fmt ? strdup(o->backing_fmt) : NULL;
		r = qcow2_rewrite_header(s);
		if (r)
			blk_set_err(err, errlen, "%s: cannot write the header: %s", o->path, strerror(-r));
	}
	if (!r)
		r = blk_img_resize(dev, o->size, err, errlen);
	blk_dev_mark_written(dev);
	if (blk_close(dev) && !r) {
		blk_set_err(err, errlen, "%s: cannot write the metadata", o->path);
		r = -EIO;
	}
	return r;
}

static int grow_l1(struct qcow2 *s, uint32_t entries)
{
	uint64_t bytes = ALIGN_UP((uint64_t)entries * 8, s->cluster_size);
	uint64_t *t = blk_alloc_aligned(bytes), *be, old_off = s->h.l1_table_offset;
	uint64_t old_clusters = DIV_ROUND_UP_U64((uint64_t)s->l1_size * 8, s->cluster_size);
	uint8_t hdr[12];
	int64_t off;
	int r;

	if (!t)
		return -ENOMEM;
	be = blk_alloc_aligned(bytes);
	if (!be) {
		free(t);
		return -ENOMEM;
	}
	memset(t, 0, bytes);
	memcpy(t, s->l1, (uint64_t)s->l1_size * 8);
	off = qcow2_alloc_clusters(s, bytes / s->cluster_size, NULL);
	r = off < 0 ? (int)off : 0;
	for (uint64_t i = 0; !r && i < bytes / 8; i++)
		be[i] = htobe64(t[i]);
	if (!r)
		r = blk_file_pwrite(s->dev, be, bytes, off);
	/* the table and its refcounts durable, then the header */
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (!r) {
		qcow2_put32(hdr, entries);
		qcow2_put64(hdr + 4, off);
		r = blk_file_pwrite(s->dev, hdr, sizeof(hdr), 36);
	}
	if (!r)
		r = blk_file_sync(s->dev);
	free(be);
	if (r) {
		free(t);
		return r;
	}
	free(s->l1);
	s->l1 = t;
	s->l1_size = entries;
	s->h.l1_size = entries;
	s->h.l1_table_offset = off;
	return s->l1_size && old_off ? qcow2_free_later(s, old_off, old_clusters, false) : 0;
}

int qcow2_resize(struct blk_dev *dev, uint64_t size, char *err, size_t errlen)
{
	struct qcow2 *s = qcow2_of(dev);
	uint64_t per_l2 = s->cluster_size << s->l2_bits;
	uint64_t need = DIV_ROUND_UP_U64(size, per_l2);
	int r = 0;

	if (size > (1ULL << 62) || need * 8 > QCOW2_MAX_L1_BYTES) {
		blk_set_err(err, errlen, "size %llu is too large for cluster size %llu",
			    (unsigned long long)size, (unsigned long long)s->cluster_size);
		return -EFBIG;
	}
	if (size % 512) {
		blk_set_err(err, errlen, "size must be a multiple of 512 bytes");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	blk_dev_mark_written(dev);
	if (need > s->l1_size)
		r = grow_l1(s, need);
	/* Shrinking: drop the mappings beyond the new end. */
	for (uint64_t gc = DIV_ROUND_UP_U64(size, s->cluster_size);
	     !r && size < s->h.size && gc < DIV_ROUND_UP_U64(s->h.size, s->cluster_size); gc++) {
		uint64_t e, off, n;

		r = qcow2_l2_lookup(s, gc, &e);
		if (r || !e)
			continue;
		qcow2_entry_clusters(s, e, &off, &n);
		r = qcow2_l2_set(s, gc, 0);
		if (!r)
			r = qcow2_free_later(s, off, n, true);
	}
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (!r)
		r = qcow2_write_header_field(s, 24, size, 8);
	if (!r)
		r = blk_file_sync(dev);
	if (!r) {
		s->h.size = size;
		dev->info.size = size;
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		blk_set_err(err, errlen, "%s: resize failed: %s", dev->path, strerror(-r));
	return r;
}

int qcow2_block_status(struct blk_dev *dev, uint64_t off, uint64_t len, struct blk_status *st)
{
	struct qcow2 *s = qcow2_of(dev);
	uint64_t cs = s->cluster_size, gc = off >> s->cluster_bits, in = off & (cs - 1), e, e2;
	uint64_t n = MIN(cs - in, len);
	int r;

	pthread_mutex_lock(&s->lock);
	r = qcow2_l2_lookup(s, gc, &e);
	if (r)
		goto out;
	if (e & QCOW2_OFLAG_COMPRESSED)
		st->kind = BLK_ST_COMPRESSED;
	else if (e & QCOW2_OFLAG_ZERO)
		st->kind = BLK_ST_ZERO;
	else if (e & QCOW2_OFFSET_MASK)
		st->kind = BLK_ST_DATA;
	else
		st->kind = BLK_ST_UNALLOCATED;
	st->host = st->kind == BLK_ST_DATA ? (e & QCOW2_OFFSET_MASK) + in : 0;
	while (n < len && st->kind != BLK_ST_COMPRESSED) {
		enum blk_status_kind k;

		if (qcow2_l2_lookup(s, gc + 1, &e2))
			break;
		k = (e2 & QCOW2_OFLAG_COMPRESSED) ? BLK_ST_COMPRESSED :
		    (e2 & QCOW2_OFLAG_ZERO) ? BLK_ST_ZERO :
		    (e2 & QCOW2_OFFSET_MASK) ? BLK_ST_DATA : BLK_ST_UNALLOCATED;
		/* data must also be contiguous on the host */
		if (k != st->kind || (k == BLK_ST_DATA &&
				      (e2 & QCOW2_OFFSET_MASK) != (e & QCOW2_OFFSET_MASK) + n + in))
			break;
		gc++;
		n += MIN(cs, len - n);
	}
	st->len = n;
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int qcow2_set_backing(struct blk_dev *dev, const char *name, const char *fmt)
{
	struct qcow2 *s = qcow2_of(dev);
	char *n = name ? strdup(name) : NULL, *f = fmt ? strdup(fmt) : NULL;
	int r;

	if ((name && !n) || (fmt && !f)) {
		free(n);
		free(f);
		return -ENOMEM;
	}
	free(s->backing_file);
	free(s->backing_format);
	s->backing_file = n;
	s->backing_format = n ? f : (free(f), NULL);
	blk_dev_mark_written(dev);
	r = qcow2_rewrite_header(s);
	return r ? r : blk_file_sync(dev);
}

int qcow2_make_empty(struct blk_dev *dev)
{
	struct qcow2 *s = qcow2_of(dev);
	uint64_t n = DIV_ROUND_UP_U64(s->h.size, s->cluster_size);
	int r = 0;

	pthread_mutex_lock(&s->lock);
	blk_dev_mark_written(dev);
	for (uint64_t gc = 0; gc < n && !r; gc++) {
		uint64_t e, off, cnt;

		r = qcow2_l2_lookup(s, gc, &e);
		if (r || !e)
			continue;
		qcow2_entry_clusters(s, e, &off, &cnt);
		r = qcow2_l2_set(s, gc, 0);
		if (!r)
			r = qcow2_free_later(s, off, cnt, true);
	}
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (!r)
		r = qcow2_flush_metadata(s, true);
	pthread_mutex_unlock(&s->lock);
	return r;
}
