// SPDX-License-Identifier: Apache-2.0
/*
 * Opening a qcow2 image: the header and its extensions, the L1 and refcount
 * tables, the snapshot table, the backing file. Every value read from the
 * file is hostile until checked: each check below names the field and the
 * value in its error so an operator can tell what is wrong with the image.
 */
#include <endian.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_img.h"
#include "keel/compiler.h"
#include "keel/log.h"
#include "qcow2.h"

static uint32_t be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

#define FAIL(...)                                            \
	do {                                                 \
		blk_set_err(err, errlen, __VA_ARGS__);       \
		return -EINVAL;                              \
	} while (0)

/*
 * Parses and checks the fixed header (file-independent checks plus those
 * against the file size). err gets "qcow2 ..." without the path.
 */
int qcow2_parse_header(const uint8_t *b, uint64_t len, uint64_t fsize,
		       struct qcow2_header *h, char *err, size_t errlen)
{
	uint64_t cs, l2_entries, need_l1;
	const uint64_t known_incompat = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
					QCOW2_INCOMPAT_COMPRESSION;

	memset(h, 0, sizeof(*h));
	if (len < 72)
		FAIL("truncated qcow2 header (%llu bytes)", (unsigned long long)len);
	if (be32(b) != QCOW2_MAGIC)
		FAIL("not a qcow2 image (bad magic)");
	h->version = be32(b + 4);
	if (h->version != 2 && h->version != 3)
		FAIL("unsupported qcow2 version %u", h->version);
	h->backing_file_offset = be64(b + 8);
	h->backing_file_size = be32(b + 16);
	h->cluster_bits = be32(b + 20);
	h->size = be64(b + 24);
	h->crypt_method = be32(b + 32);
	h->l1_size = be32(b + 36);
	h->l1_table_offset = be64(b + 40);
	h->refcount_table_offset = be64(b + 48);
	h->refcount_table_clusters = be32(b + 56);
	h->nb_snapshots = be32(b + 60);
	h->snapshots_offset = be64(b + 64);
	h->refcount_order = 4;
	h->header_length = 72;
	if (h->version == 3) {
		if (len < 104)
			FAIL("truncated qcow2 header (%llu bytes)", (unsigned long long)len);
		h->incompatible_features = be64(b + 72);
		h->compatible_features = be64(b + 80);
		h->autoclear_features = be64(b + 88);
		h->refcount_order = be32(b + 96);
		h->header_length = be32(b + 100);
		if (h->header_length < 104 || h->header_length % 8 ||
		    h->header_length > len)
			FAIL("qcow2 header length %u is invalid", h->header_length);
		if (h->header_length >= 105)
			h->compression_type = b[104];
	}
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		FAIL("qcow2 cluster bits %u out of range (%d..%d)", h->cluster_bits,
		     QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
	cs = 1ULL << h->cluster_bits;
	if (h->header_length > cs)
		FAIL("qcow2 header length %u exceeds the cluster size", h->header_length);
	if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2)
		FAIL("qcow2 extended L2 entries (subclusters) are not supported");
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		FAIL("qcow2 external data files are not supported");
	if (h->incompatible_features & ~(known_incompat | QCOW2_INCOMPAT_EXTL2 | QCOW2_INCOMPAT_DATA_FILE))
		FAIL("qcow2 unknown incompatible features 0x%llx",
		     (unsigned long long)(h->incompatible_features & ~known_incompat));
	if (h->compression_type > 1)
		FAIL("qcow2 unknown compression type %u", h->compression_type);
	if (h->compression_type != 0 && !(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		FAIL("qcow2 compression type %u without its incompatible feature bit",
		     h->compression_type);
	if (h->crypt_method)
		FAIL("encrypted qcow2 images are not supported");
	if (h->refcount_order > 6)
		FAIL("qcow2 refcount order %u out of range (0..6)", h->refcount_order);
	if (h->version == 2 && h->refcount_order != 4)
		FAIL("qcow2 version 2 with refcount order %u", h->refcount_order);
	/* Sizes: the L1 table must map the whole disk and stay sane. */
	if (h->size > (1ULL << 62))
		FAIL("qcow2 virtual size %llu is absurd", (unsigned long long)h->size);
	l2_entries = cs / 8;
	need_l1 = (h->size + cs * l2_entries - 1) / (cs * l2_entries);
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		FAIL("qcow2 L1 size %u is absurd (more than %u MiB)", h->l1_size,
		     QCOW2_MAX_L1_BYTES >> 20);
	if (h->l1_size < need_l1)
		FAIL("qcow2 L1 size %u too small for the virtual size %llu", h->l1_size,
		     (unsigned long long)h->size);
	if (h->l1_size && (h->l1_table_offset % cs || h->l1_table_offset == 0))
		FAIL("qcow2 L1 table offset 0x%llx is not cluster aligned or points into the header",
		     (unsigned long long)h->l1_table_offset);
	if (h->l1_size && (h->l1_table_offset > fsize ||
			   (uint64_t)h->l1_size * 8 > fsize - h->l1_table_offset))
		FAIL("qcow2 L1 table at 0x%llx runs past the end of the file",
		     (unsigned long long)h->l1_table_offset);
	if (h->refcount_table_offset % cs || h->refcount_table_offset == 0)
		FAIL("qcow2 refcount table offset 0x%llx is not cluster aligned or points into the header",
		     (unsigned long long)h->refcount_table_offset);
	if (h->refcount_table_clusters == 0 ||
	    (uint64_t)h->refcount_table_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		FAIL("qcow2 refcount table of %u clusters is absurd", h->refcount_table_clusters);
	if (h->refcount_table_offset > fsize ||
	    (uint64_t)h->refcount_table_clusters * cs > fsize - h->refcount_table_offset)
		FAIL("qcow2 refcount table at 0x%llx runs past the end of the file",
		     (unsigned long long)h->refcount_table_offset);
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		FAIL("qcow2 snapshot count %u is absurd", h->nb_snapshots);
	if (h->nb_snapshots && (h->snapshots_offset % cs || h->snapshots_offset == 0 ||
				h->snapshots_offset >= fsize))
		FAIL("qcow2 snapshot table offset 0x%llx is invalid",
		     (unsigned long long)h->snapshots_offset);
	if (h->backing_file_offset) {
		if (h->backing_file_size > QCOW2_MAX_BACKING_NAME || h->backing_file_size == 0)
			FAIL("qcow2 backing file name length %u is invalid", h->backing_file_size);
		if (h->backing_file_size > cs || /* cs - size below must not wrap */
		    h->backing_file_offset > cs - h->backing_file_size ||
		    h->backing_file_offset < h->header_length)
			FAIL("qcow2 backing file name at 0x%llx is outside the header cluster",
			     (unsigned long long)h->backing_file_offset);
		if (h->backing_file_offset + h->backing_file_size > len)
			FAIL("qcow2 backing file name at 0x%llx runs past the end of the file",
			     (unsigned long long)h->backing_file_offset);
	}
	return 0;
}

/* Header extensions (section "Header extensions"): backing format only. */
static int parse_extensions(struct qcow2 *s, const uint8_t *b, uint64_t len,
			    char *err, size_t errlen)
{
	uint64_t off = s->h.header_length;
	uint64_t end = s->h.backing_file_offset ? s->h.backing_file_offset : len;

	if (s->h.version < 3)
		off = 72;
	end = MIN(end, len);
	while (off + 8 <= end) {
		uint32_t type = be32(b + off), elen = be32(b + off + 4);

		off += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (elen > end - off)
			FAIL("qcow2 header extension 0x%08x runs past the header", type);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			free(s->backing_format);
			s->backing_format = strndup((const char *)b + off, MIN(elen, 15u));
			if (!s->backing_format)
				return -ENOMEM;
		} else if (type == QCOW2_EXT_CRYPTO) {
			FAIL("encrypted qcow2 images are not supported");
		} else if (type == QCOW2_EXT_DATA_FILE) {
			FAIL("qcow2 external data files are not supported");
		}
		off += ALIGN_UP((uint64_t)elen, 8);
	}
	return 0;
}

void qcow2_set_corrupt(struct qcow2 *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!s->corrupt)
		log_error("%s: corrupt qcow2 image: %s; further writes refused",
			  s->dev->path, msg);
	s->corrupt = true;
	/* Tell qemu-img and the next open too (QEMU does the same). */
	if (!s->read_only && s->h.version >= 3 &&
	    !(s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
		s->h.incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
		qcow2_write_header_field(s, 72, s->h.incompatible_features, 8);
		blk_file_sync(s->dev);
	}
}

int qcow2_write_header_field(struct qcow2 *s, unsigned off, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	if (bytes == 8) {
		uint64_t x = htobe64(v);
		memcpy(b, &x, 8);
	} else {
		uint32_t x = htobe32((uint32_t)v);
		memcpy(b, &x, 4);
	}
	return blk_file_pwrite(s->dev, b, bytes, off);
}

int qcow2_rewrite_header(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size, off;
	uint8_t *b = blk_alloc_aligned(cs);
	size_t blen = s->backing_file ? strlen(s->backing_file) : 0;
	int r;

	if (!b)
		return -ENOMEM;
	memset(b, 0, cs);
	s->h.header_length = s->h.version >= 3 ? 112 : 72;
	qcow2_put32(b, QCOW2_MAGIC);
	qcow2_put32(b + 4, s->h.version);
	qcow2_put32(b + 20, s->h.cluster_bits);
	qcow2_put64(b + 24, s->h.size);
	qcow2_put32(b + 36, s->l1_size);
	qcow2_put64(b + 40, s->h.l1_table_offset);
	qcow2_put64(b + 48, s->h.refcount_table_offset);
	qcow2_put32(b + 56, s->h.refcount_table_clusters);
	qcow2_put32(b + 60, s->nr_snaps);
	qcow2_put64(b + 64, s->h.snapshots_offset);
	off = s->h.header_length;
	if (s->h.version >= 3) {
		qcow2_put64(b + 72, s->h.incompatible_features);
		qcow2_put64(b + 80, s->h.compatible_features);
		qcow2_put64(b + 88, s->h.autoclear_features);
		qcow2_put32(b + 96, s->h.refcount_order);
		qcow2_put32(b + 100, s->h.header_length);
		b[104] = s->h.compression_type;
	}
	if (s->backing_file && s->backing_format) {
		size_t flen = strlen(s->backing_format);

		qcow2_put32(b + off, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put32(b + off + 4, flen);
		memcpy(b + off + 8, s->backing_format, flen);
		off += 8 + ALIGN_UP(flen, 8);
	}
	off += 8; /* end of extensions */
	if (blen) {
		if (blen > QCOW2_MAX_BACKING_NAME || off + blen > cs) {
			free(b);
			return -ENAMETOOLONG;
		}
		memcpy(b + off, s->backing_file, blen);
		qcow2_put64(b + 8, off);
		qcow2_put32(b + 16, blen);
	}
	s->h.backing_file_offset = blen ? off : 0;
	s->h.backing_file_size = blen;
	r = blk_file_pwrite(s->dev, b, cs, 0);
	free(b);
	return r;
}

static void free_snaps(struct qcow2 *s)
{
	for (unsigned i = 0; i < s->nr_snaps; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
	}
	free(s->snaps);
	s->snaps = NULL;
	s->nr_snaps = 0;
}

int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t off = s->h.snapshots_offset, fsize = qcow2_file_clusters(s) * s->cluster_size;
	uint8_t e[40], *extra = NULL;

	free_snaps(s);
	if (!s->h.nb_snapshots)
		return 0;
	s->snaps = calloc(s->h.nb_snapshots, sizeof(*s->snaps));
	if (!s->snaps)
		return -ENOMEM;
	for (unsigned i = 0; i < s->h.nb_snapshots; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		uint32_t id_len, name_len, extra_len;
		int r;

		if (off + 40 > fsize || off - s->h.snapshots_offset > (64u << 20))
			FAIL("qcow2 snapshot table runs past the end of the file");
		r = blk_file_pread(s->dev, e, 40, off);
		if (r)
			return r;
		sn->l1_table_offset = be64(e);
		sn->l1_size = be32(e + 8);
		id_len = e[12] << 8 | e[13];
		name_len = e[14] << 8 | e[15];
		sn->date_sec = be32(e + 16);
		sn->date_nsec = be32(e + 20);
		sn->vm_clock_nsec = be64(e + 24);
		sn->vm_state_size = be32(e + 32);
		extra_len = be32(e + 36);
		sn->icount = UINT64_MAX;
		sn->disk_size = s->h.size;
		if (extra_len > 1024)
			FAIL("qcow2 snapshot %u has %u bytes of extra data", i, extra_len);
		if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES || sn->l1_table_offset % s->cluster_size ||
		    (sn->l1_size && (sn->l1_table_offset == 0 || sn->l1_table_offset > fsize ||
				     (uint64_t)sn->l1_size * 8 > fsize - sn->l1_table_offset)))
			FAIL("qcow2 snapshot %u has an invalid L1 table (offset 0x%llx, %u entries)",
			     i, (unsigned long long)sn->l1_table_offset, sn->l1_size);
		off += 40;
		extra = calloc(1, extra_len + id_len + name_len + 1);
		if (!extra)
			return -ENOMEM;
		if (off + extra_len + id_len + name_len > fsize) {
			free(extra);
			FAIL("qcow2 snapshot table runs past the end of the file");
		}
		r = blk_file_pread(s->dev, extra, extra_len + id_len + name_len, off);
		if (r) {
			free(extra);
			return r;
		}
		if (extra_len >= 8)
			sn->vm_state_size = be64(extra);
		if (extra_len >= 16)
			sn->disk_size = be64(extra + 8);
		if (extra_len >= 24)
			sn->icount = be64(extra + 16);
		sn->id = strndup((char *)extra + extra_len, id_len);
		sn->name = strndup((char *)extra + extra_len + id_len, name_len);
		free(extra);
		if (!sn->id || !sn->name)
			return -ENOMEM;
		off = ALIGN_UP(off + extra_len + id_len + name_len, 8);
		s->nr_snaps = i + 1;
	}
	s->h.snapshots_size_hint = off - s->h.snapshots_offset;
	return 0;
}

int qcow2_load_table(struct qcow2 *s, uint64_t off, uint32_t n, uint64_t **out)
{
	uint64_t bytes = ALIGN_UP((uint64_t)n * 8, s->cluster_size);
	uint64_t *t = blk_alloc_aligned(bytes ? bytes : s->cluster_size);
	int r = 0;

	if (!t)
		return -ENOMEM;
	memset(t, 0, bytes ? bytes : s->cluster_size);
	if (n)
		r = blk_file_pread(s->dev, t, (uint64_t)n * 8, off);
	for (uint32_t i = 0; i < n; i++)
		t[i] = be64toh(t[i]);
	if (r) {
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

static int open_backing(struct qcow2 *s, const uint8_t *hdr, const struct blk_open_opts *opts,
			char *err, size_t errlen)
{
	struct blk_dev *dev = s->dev;
	enum blk_format fmt = BLK_FORMAT_PROBE_QCOW2;
	char *path, *dir;
	int r;

	s->backing_file = strndup((const char *)hdr + s->h.backing_file_offset,
				  s->h.backing_file_size);
	if (!s->backing_file)
		return -ENOMEM;
	if (s->backing_format && blk_format_parse(s->backing_format, &fmt))
		FAIL("%s: unknown backing format '%s'", dev->path, s->backing_format);
	/* Already open: blk_activate() reads the header again, the chain stays. */
	if ((opts->flags & BLK_OPEN_NO_BACKING) || dev->backing)
		return 0;
	/* A relative name is relative to the overlay's directory. */
	if (s->backing_file[0] == '/') {
		path = strdup(s->backing_file);
	} else {
		char *copy = strdup(dev->path);

		dir = copy ? dirname(copy) : NULL;
		path = NULL;
		if (dir && asprintf(&path, "%s/%s", dir, s->backing_file) < 0)
			path = NULL;
		free(copy);
	}
	if (!path)
		return -ENOMEM;
	r = blk_open_backing(dev, path, fmt, dev->depth + 1, err, errlen);
	free(path);
	return r;
}

/*
 * Reads the header and the tables into s (at open, and again when the
 * image is taken over: blk_activate()). `active`: this process may write
 * the image, so flags that forbid writing are checked, the tables loaded
 * and the header's autoclear bits cleared; an inactive open reads the
 * header and opens the backing chain only (another process still writes
 * the image and may hold it dirty).
 */
static int load_metadata(struct qcow2 *s, const struct blk_open_opts *opts, bool active,
			 char *err, size_t errlen)
{
	struct blk_dev *dev = s->dev;
	int64_t fsize = blk_file_size(dev);
	uint8_t *hdr = NULL;
	uint64_t hlen;
	char msg[BLK_ERR_LEN];
	int r;

	if (fsize < 0)
		return (int)fsize;
	hlen = MIN((uint64_t)fsize, 1ULL << QCOW2_MAX_CLUSTER_BITS);
	hdr = blk_alloc_aligned(hlen ? hlen : 4096);
	if (!hdr)
		return -ENOMEM;
	r = hlen ? blk_file_pread(dev, hdr, hlen, 0) : 0;
	if (!r)
		r = qcow2_parse_header(hdr, hlen, fsize, &s->h, msg, sizeof(msg));
	if (r) {
		if (r == -EINVAL)
			blk_set_err(err, errlen, "%s: %s", dev->path, msg);
		goto out;
	}
	s->cluster_bits = s->h.cluster_bits;
	s->cluster_size = 1ULL << s->cluster_bits;
	s->l2_bits = s->cluster_bits - 3;
	s->refcount_bits = 1u << s->h.refcount_order;
	s->rb_bits = s->cluster_bits + 3 - s->h.refcount_order;
	s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ULL << s->refcount_bits) - 1;
	s->end = DIV_ROUND_UP_U64(fsize, s->cluster_size);
	s->zero_from = s->end;
	s->file_len = s->file_len_at_open = fsize;
	{
		struct stat st;

		s->is_blockdev = fstat(dev->fd, &st) == 0 && S_ISBLK(st.st_mode);
	}
	r = -EINVAL;
	if (!opts->read_only && s->h.version < 3) {
		blk_set_err(err, errlen, "%s: qcow2 version 2 images are read-only here "
			    "(convert it to version 3 to write)", dev->path);
		goto out;
	}
	if (active && !opts->read_only && !(opts->flags & BLK_OPEN_REPAIR) &&
	    (s->h.incompatible_features & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
		blk_set_err(err, errlen, "%s: qcow2 image is marked %s; run 'keel-img check -r all'",
			    dev->path, (s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) ?
			    "corrupt" : "dirty (lazy refcounts)");
		goto out;
	}
	r = parse_extensions(s, hdr, hlen, msg, sizeof(msg));
	if (r) {
		blk_set_err(err, errlen, "%s: %s", dev->path, msg);
		goto out;
	}
	/*
	 * Inactive: the tables are still being written by the other process
	 * (an L1 entry may already point past the size read above), so they
	 * are read only when the image is taken (blk_activate()).
	 */
	if (!active)
		goto tables_done;
	s->l1_size = s->h.l1_size;
	r = qcow2_load_table(s, s->h.l1_table_offset, s->l1_size, &s->l1);
	if (!r)
		r = qcow2_load_table(s, s->h.refcount_table_offset,
			       s->h.refcount_table_clusters * (s->cluster_size / 8), &s->reftable);
	if (r) {
		blk_set_err(err, errlen, "%s: cannot read the qcow2 tables: %s", dev->path, strerror(-r));
		goto out;
	}
	s->reftable_size = s->h.refcount_table_clusters * (s->cluster_size / 8);
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t o = s->l1[i] & QCOW2_OFFSET_MASK;

		if (o && (o % s->cluster_size || o >= (uint64_t)fsize)) {
			blk_set_err(err, errlen, "%s: qcow2 L1 entry %u points to 0x%llx, %s", dev->path,
				    i, (unsigned long long)o, o >= (uint64_t)fsize ?
				    "past the end of the file" : "not cluster aligned");
			r = -EINVAL;
			goto out;
		}
		if (s->l1[i] && !o) {
			blk_set_err(err, errlen, "%s: qcow2 L1 entry %u points into the header", dev->path, i);
			r = -EINVAL;
			goto out;
		}
	}
	for (uint32_t i = 0; i < s->reftable_size; i++) {
		uint64_t o = s->reftable[i];

		if (o && (o % s->cluster_size || o >= (uint64_t)fsize || (o & ~QCOW2_OFFSET_MASK))) {
			blk_set_err(err, errlen, "%s: qcow2 refcount table entry %u points to 0x%llx, %s",
				    dev->path, i, (unsigned long long)o, o >= (uint64_t)fsize ?
				    "past the end of the file" : "not cluster aligned");
			r = -EINVAL;
			goto out;
		}
	}
	r = qcow2_read_snapshots(s, msg, sizeof(msg));
	if (r) {
		if (r == -EINVAL)
			blk_set_err(err, errlen, "%s: %s", dev->path, msg);
		goto out;
	}
	/* Enough L2 tables to map the whole disk, up to 32 MiB of them (QEMU's
	   default limit too): a miss is a synchronous read under the lock, and
	   evicting a dirty table costs a full ordered flush. */
	if (qcow2_cache_init(&s->l2_cache, (unsigned)MAX(16ULL, MIN((uint64_t)s->l1_size,
					(32ULL << 20) >> s->cluster_bits)), s->cluster_size) ||
	    qcow2_cache_init(&s->rb_cache, 8, s->cluster_size)) {
		r = -ENOMEM;
		goto out;
	}
tables_done:
	if (s->h.backing_file_offset) {
		r = open_backing(s, hdr, opts, err, errlen);
		if (r)
			goto out;
	}
	/* Autoclear features we do not maintain (bitmaps) must be cleared
	   by a writer that does not understand them (section "Header"). */
	if (active && !opts->read_only && s->h.autoclear_features) {
		s->h.autoclear_features = 0;
		r = qcow2_write_header_field(s, 88, 0, 8);
		if (r)
			goto out;
	}
	dev->info.size = s->h.size;
	dev->info.logical_block_size = dev->direct ? MAX(dev->dio_align, 512u) : 512;
	dev->info.physical_block_size = MAX(dev->info.logical_block_size,
					    (uint32_t)MIN(s->cluster_size, 4096ULL));
	dev->info.opt_io_size = s->cluster_size;
	dev->info.discard_granularity = s->cluster_size;
	dev->info.can_discard = true;
	dev->info.can_write_zeroes = true;
	r = 0;
out:
	free(hdr);
	return r;
}

/* What load_metadata() read, dropped without writing anything. */
static void forget_metadata(struct qcow2 *s)
{
	qcow2_cache_free(&s->l2_cache);
	qcow2_cache_free(&s->rb_cache);
	free(s->l1);
	free(s->reftable);
	s->l1 = s->reftable = NULL;
	s->l1_dirty = s->reftable_dirty = false;
	s->nr_frees = s->nr_busy = 0;
	s->free_hint = 0;
	s->corrupt = false;
	free(s->backing_file);
	free(s->backing_format);
	s->backing_file = s->backing_format = NULL;
	free_snaps(s);
}

static int qcow2_open(struct blk_dev *dev, const struct blk_open_opts *opts,
		      char *err, size_t errlen)
{
	struct qcow2 *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	dev->priv = s;
	s->dev = dev;
	s->read_only = dev->read_only;
	pthread_mutex_init(&s->lock, NULL);
	return load_metadata(s, opts, !dev->inactive, err, errlen);
}

/*
 * Makes the file complete on its own: every cached table and refcount
 * written in order, the grown-ahead tail cut (never below what the file
 * had). For blk_close() and for handing the image over.
 */
static int write_back(struct qcow2 *s)
{
	struct blk_dev *dev = s->dev;
	uint64_t keep;
	int r;

	if (s->read_only || s->corrupt || !dev->written || dev->inactive)
		return 0;
	pthread_mutex_lock(&s->lock);
	r = qcow2_flush_metadata(s, true);
	/* Frees applied by that flush are written by a second one. */
	if (!r)
		r = qcow2_flush_metadata(s, true);
	keep = MAX(s->end << s->cluster_bits, s->file_len_at_open);
	if (!r && s->file_len > keep) {
		if (ftruncate(dev->fd, (off_t)keep) < 0)
			r = -errno;
		else
			s->file_len = keep;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int qcow2_inactivate(struct blk_dev *dev)
{
	return write_back(qcow2_of(dev));
}

/* Taking the image (back): whatever the other process wrote is read afresh. */
static int qcow2_activate(struct blk_dev *dev, char *err, size_t errlen)
{
	struct qcow2 *s = qcow2_of(dev);
	struct blk_open_opts o = {
		.path = dev->path, .format = BLK_FORMAT_QCOW2, .read_only = dev->read_only,
		.cache = dev->cache, .aio = dev->aio,
	};
	uint64_t size = dev->info.size;
	int r;

	pthread_mutex_lock(&s->lock);
	forget_metadata(s);
	r = load_metadata(s, &o, true, err, errlen);
	if (!r && dev->info.size != size) {
		blk_set_err(err, errlen, "%s: the image changed size while another process had it "
			    "(%llu bytes, was %llu)", dev->path, (unsigned long long)dev->info.size,
			    (unsigned long long)size);
		dev->info.size = size;
		r = -EINVAL;
	}
	/* Until a load succeeds, nothing may be written from half-read tables. */
	if (r)
		s->corrupt = true;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int qcow2_close(struct blk_dev *dev)
{
	struct qcow2 *s = dev->priv;
	int r;

	if (!s)
		return 0;
	r = write_back(s);
	qcow2_cache_free(&s->l2_cache);
	qcow2_cache_free(&s->rb_cache);
	free(s->l1);
	free(s->reftable);
	free(s->frees);
	free(s->busy);
	free(s->backing_file);
	free(s->backing_format);
	free_snaps(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
	dev->priv = NULL;
	return r;
}

const struct blk_driver blk_driver_qcow2 = {
	.name = "qcow2",
	.open = qcow2_open,
	.close = qcow2_close,
	.submit = qcow2_submit,
	.inactivate = qcow2_inactivate,
	.activate = qcow2_activate,
};
