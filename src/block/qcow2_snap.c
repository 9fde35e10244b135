// SPDX-License-Identifier: Apache-2.0
/*
 * qcow2 internal snapshots (section "Snapshots"): a snapshot is a copy of
 * the L1 table plus one more reference on every L2 table and data cluster
 * it reaches; writes then copy shared clusters (COPIED flag clear).
 * Offline only (keel-img snapshot). Ordering: references are added and
 * made durable before anything on disk points at them, and dropped only
 * after nothing on disk does, so a crash leaves leaks, never corruption.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/compiler.h"
#include "qcow2.h"

/* +delta on every L2 table and data cluster reachable from l1. */
static int tree_refcounts(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, int delta)
{
	uint8_t *t = blk_alloc_aligned(s->cluster_size);
	int r = 0;

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < l1_size && !r; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;

		if (!l2)
			continue;
		r = qcow2_check_offset(s, l2, s->cluster_size, "an L2 table");
		if (!r)
			r = blk_file_pread(s->dev, t, s->cluster_size, l2);
		/* the cache may hold a newer copy of this table */
		for (unsigned k = 0; !r && k < s->l2_cache.n; k++)
			if (s->l2_cache.e[k].off == l2)
				memcpy(t, s->l2_cache.e[k].data, s->cluster_size);
		for (uint64_t j = 0; !r && j < (1ULL << s->l2_bits); j++) {
			uint64_t e, off, n;

			memcpy(&e, t + j * 8, 8);
			qcow2_entry_clusters(s, be64toh(e), &off, &n);
			for (uint64_t c = 0; c < n && !r; c++)
				r = qcow2_refcount_add(s, (off >> s->cluster_bits) + c, delta);
		}
		if (!r)
			r = qcow2_refcount_add(s, l2 >> s->cluster_bits, delta);
		if (!r && delta < 0) {
			uint64_t rc;

			if (!qcow2_refcount_get(s, l2 >> s->cluster_bits, &rc) && !rc)
				qcow2_cache_forget(&s->l2_cache, l2);
		}
	}
	free(t);
	return r;
}

static uint64_t set_copied(uint64_t e, bool on)
{
	return on ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
}

int qcow2_fix_copied(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK, rc;
		uint8_t *t;
		int r;

		if (!l2)
			continue;
		r = qcow2_refcount_get(s, l2 >> s->cluster_bits, &rc);
		if (r)
			return r;
		if (set_copied(s->l1[i], rc == 1) != s->l1[i]) {
			s->l1[i] = set_copied(s->l1[i], rc == 1);
			s->l1_dirty = true;
		}
		t = qcow2_cache_get(s, &s->l2_cache, l2, false, &r);
		if (!t)
			return r;
		for (uint64_t j = 0; j < (1ULL << s->l2_bits); j++) {
			uint64_t e, ne, off;

			memcpy(&e, t + j * 8, 8);
			e = be64toh(e);
			off = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !off)
				continue;
			r = qcow2_refcount_get(s, off >> s->cluster_bits, &rc);
			if (r)
				return r;
			ne = set_copied(e, rc == 1);
			if (ne != e) {
				ne = htobe64(ne);
				memcpy(t + j * 8, &ne, 8);
				qcow2_cache_mark_dirty(&s->l2_cache, t);
			}
		}
	}
	return 0;
}

static size_t snap_entry_size(const struct qcow2_snapshot *sn)
{
	return ALIGN_UP(40 + 24 + strlen(sn->id) + strlen(sn->name), 8);
}

/* Writes the snapshot table to new clusters and points the header at it. */
int qcow2_write_snapshot_table(struct qcow2 *s)
{
	uint64_t size = 0, old = s->h.snapshots_offset, old_size = 0, pos = 0;
	uint8_t *b, hdr[12];
	int64_t off = 0;
	int r;

	for (unsigned i = 0; i < s->nr_snaps; i++)
		size += snap_entry_size(&s->snaps[i]);
	old_size = s->h.nb_snapshots ? s->h.snapshots_size_hint : 0;
	b = calloc(1, size ? size : 1);
	if (!b)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nr_snaps; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		uint8_t *e = b + pos;
		size_t il = strlen(sn->id), nl = strlen(sn->name);

		qcow2_put64(e, sn->l1_table_offset);
		qcow2_put32(e + 8, sn->l1_size);
		e[12] = il >> 8, e[13] = il & 0xff;
		e[14] = nl >> 8, e[15] = nl & 0xff;
		qcow2_put32(e + 16, sn->date_sec);
		qcow2_put32(e + 20, sn->date_nsec);
		qcow2_put64(e + 24, sn->vm_clock_nsec);
		qcow2_put32(e + 32, sn->vm_state_size > UINT32_MAX ? 0 : sn->vm_state_size);
		qcow2_put32(e + 36, 24);
		qcow2_put64(e + 40, sn->vm_state_size);
		qcow2_put64(e + 48, sn->disk_size);
		qcow2_put64(e + 56, sn->icount);
		memcpy(e + 64, sn->id, il);
		memcpy(e + 64 + il, sn->name, nl);
		pos += snap_entry_size(sn);
	}
	if (size) {
		off = qcow2_alloc_clusters(s, DIV_ROUND_UP_U64(size, s->cluster_size), NULL);
		r = off < 0 ? (int)off : blk_file_pwrite(s->dev, b, size, off);
	} else {
		r = 0;
	}
	free(b);
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (r)
		return r;
	qcow2_put32(hdr, s->nr_snaps);
	qcow2_put64(hdr + 4, off);
	r = blk_file_pwrite(s->dev, hdr, sizeof(hdr), 60);
	if (!r)
		r = blk_file_sync(s->dev);
	if (r)
		return r;
	s->h.nb_snapshots = s->nr_snaps;
	s->h.snapshots_offset = off;
	s->h.snapshots_size_hint = size;
	return old && old_size ? qcow2_free_later(s, old, DIV_ROUND_UP_U64(old_size, s->cluster_size),
						  false) : 0;
}

static int find_snap(struct qcow2 *s, const char *name)
{
	for (unsigned i = 0; i < s->nr_snaps; i++)
		if (!strcmp(s->snaps[i].name, name) || !strcmp(s->snaps[i].id, name))
			return i;
	return -1;
}

static int snap_create(struct qcow2 *s, const char *name, char *err, size_t errlen)
{
	uint64_t bytes = ALIGN_UP((uint64_t)s->l1_size * 8, s->cluster_size), next_id = 1;
	struct qcow2_snapshot sn = { 0 }, *arr;
	struct timespec ts;
	uint64_t *be;
	int64_t off;
	int r;

	if (find_snap(s, name) >= 0) {
		blk_set_err(err, errlen, "snapshot '%s' already exists", name);
		return -EEXIST;
	}
	for (unsigned i = 0; i < s->nr_snaps; i++)
		next_id = MAX(next_id, strtoull(s->snaps[i].id, NULL, 10) + 1);
	r = qcow2_flush_metadata(s, true);
	if (r)
		return r;
	/* one more reference on the whole tree, then the L1 copy */
	r = tree_refcounts(s, s->l1, s->l1_size, 1);
	if (r)
		return r;
	off = qcow2_alloc_clusters(s, bytes / s->cluster_size, NULL);
	if (off < 0)
		return (int)off;
	be = blk_alloc_aligned(bytes);
	if (!be)
		return -ENOMEM;
	memset(be, 0, bytes);
	for (uint32_t i = 0; i < s->l1_size; i++)
		be[i] = htobe64(s->l1[i]);
	r = blk_file_pwrite(s->dev, be, bytes, off);
	free(be);
	if (!r)
		r = qcow2_fix_copied(s);
	if (r)
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	sn.l1_table_offset = off;
	sn.l1_size = s->l1_size;
	sn.date_sec = ts.tv_sec;
	sn.date_nsec = ts.tv_nsec / 1000 * 1000;
	sn.disk_size = s->h.size;
	sn.icount = 0; /* as qemu-img snapshot -c records it */
	sn.name = strdup(name);
	if (asprintf(&sn.id, "%llu", (unsigned long long)next_id) < 0)
		sn.id = NULL;
	arr = realloc(s->snaps, (s->nr_snaps + 1) * sizeof(*arr));
	if (!sn.name || !sn.id || !arr) {
		free(sn.name);
		free(sn.id);
		if (arr)
			s->snaps = arr;
		return -ENOMEM;
	}
	s->snaps = arr;
	s->snaps[s->nr_snaps++] = sn;
	return qcow2_write_snapshot_table(s);
}

static int snap_apply(struct qcow2 *s, int idx, char *err, size_t errlen)
{
	struct qcow2_snapshot *sn = &s->snaps[idx];
	uint64_t *snl1 = NULL, *old = NULL;
	int r;

	if (sn->l1_size > s->l1_size) {
		blk_set_err(err, errlen, "snapshot '%s' is larger than the image", sn->name);
		return -ENOTSUP;
	}
	r = qcow2_flush_metadata(s, true);
	if (!r)
		r = qcow2_load_table(s, sn->l1_table_offset, sn->l1_size, &snl1);
	if (r)
		return r;
	old = malloc((uint64_t)s->l1_size * 8);
	if (!old) {
		free(snl1);
		return -ENOMEM;
	}
	memcpy(old, s->l1, (uint64_t)s->l1_size * 8);
	/* references for the snapshot's tree first ... */
	r = tree_refcounts(s, snl1, sn->l1_size, 1);
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (!r) {
		/* ... then the active L1 becomes the snapshot's ... */
		memset(s->l1, 0, (uint64_t)s->l1_size * 8);
		memcpy(s->l1, snl1, (uint64_t)sn->l1_size * 8);
		for (uint32_t i = 0; i < s->l1_size; i++)
			s->l1[i] &= ~QCOW2_OFLAG_COPIED;
		s->l1_dirty = true;
		r = qcow2_flush_metadata(s, true);
	}
	/* ... and only then the old tree loses its reference. */
	if (!r)
		r = tree_refcounts(s, old, s->l1_size, -1);
	if (!r)
		r = qcow2_fix_copied(s);
	if (!r && sn->disk_size != s->h.size) {
		r = qcow2_write_header_field(s, 24, sn->disk_size, 8);
		s->h.size = sn->disk_size;
		s->dev->info.size = sn->disk_size;
	}
	if (!r)
		r = qcow2_flush_metadata(s, true);
	free(snl1);
	free(old);
	return r;
}

static int snap_delete(struct qcow2 *s, int idx)
{
	struct qcow2_snapshot sn = s->snaps[idx];
	uint64_t *l1 = NULL;
	int r = qcow2_flush_metadata(s, true);

	if (!r)
		r = qcow2_load_table(s, sn.l1_table_offset, sn.l1_size, &l1);
	if (r)
		return r;
	/* Off the table (durably) before its references go. */
	memmove(&s->snaps[idx], &s->snaps[idx + 1], (s->nr_snaps - idx - 1) * sizeof(sn));
	s->nr_snaps--;
	r = qcow2_write_snapshot_table(s);
	if (!r)
		r = tree_refcounts(s, l1, sn.l1_size, -1);
	if (!r && sn.l1_size)
		r = qcow2_free_later(s, sn.l1_table_offset,
				     DIV_ROUND_UP_U64((uint64_t)sn.l1_size * 8, s->cluster_size), true);
	if (!r)
		r = qcow2_flush_metadata(s, true);
	if (!r)
		r = qcow2_fix_copied(s);
	if (!r)
		r = qcow2_flush_metadata(s, true);
	free(sn.id);
	free(sn.name);
	free(l1);
	return r;
}

int qcow2_snapshot_op(struct blk_dev *dev, char op, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = qcow2_of(dev);
	int idx, r;

	if (dev->read_only)
		return -EROFS;
	pthread_mutex_lock(&s->lock);
	blk_dev_mark_written(dev);
	idx = find_snap(s, name);
	if (op != 'c' && idx < 0) {
		blk_set_err(err, errlen, "snapshot '%s' not found", name);
		r = -ENOENT;
	} else if (op == 'c') {
		r = snap_create(s, name, err, errlen);
	} else if (op == 'a') {
		r = snap_apply(s, idx, err, errlen);
	} else {
		r = snap_delete(s, idx);
	}
	pthread_mutex_unlock(&s->lock);
	if (r == -ERANGE)
		blk_set_err(err, errlen, "refcount overflow: a cluster is shared more often than "
			    "%u-bit refcounts can count", s->refcount_bits);
	else if (r && err && !err[0])
		blk_set_err(err, errlen, "%s", strerror(-r));
	return r;
}
