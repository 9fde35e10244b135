// SPDX-License-Identifier: Apache-2.0
/*
 * qcow2 metadata: the L2/refcount-block caches, refcounts, cluster
 * allocation, deferred frees and the ordered flush (qcow2.h states the
 * order and why). Everything here runs under s->lock.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "qcow2.h"

uint64_t qcow2_file_clusters(struct qcow2 *s)
{
	return s->end;
}

int qcow2_check_offset(struct qcow2 *s, uint64_t off, uint64_t len, const char *what)
{
	if (off < s->cluster_size) {
		qcow2_set_corrupt(s, "%s at 0x%llx points into the header", what,
				  (unsigned long long)off);
		return -EIO;
	}
	if (off + len < off || off + len > s->end * s->cluster_size) {
		qcow2_set_corrupt(s, "%s at 0x%llx points past the end of the file", what,
				  (unsigned long long)off);
		return -EIO;
	}
	return 0;
}

/* ---- refcounts ---- */

uint64_t qcow2_rb_entry(struct qcow2 *s, const uint8_t *rb, uint64_t i)
{
	switch (s->h.refcount_order) {
	case 6: { uint64_t v; memcpy(&v, rb + i * 8, 8); return be64toh(v); }
	case 5: { uint32_t v; memcpy(&v, rb + i * 4, 4); return be32toh(v); }
	case 4: return (uint64_t)rb[i * 2] << 8 | rb[i * 2 + 1];
	case 3: return rb[i];
	default: {
		unsigned per = 8 / s->refcount_bits;

		return (rb[i / per] >> ((i % per) * s->refcount_bits)) & s->refcount_max;
	}
	}
}

static void rb_set(struct qcow2 *s, uint8_t *rb, uint64_t i, uint64_t v)
{
	switch (s->h.refcount_order) {
	case 6: v = htobe64(v); memcpy(rb + i * 8, &v, 8); return;
	case 5: { uint32_t x = htobe32((uint32_t)v); memcpy(rb + i * 4, &x, 4); return; }
	case 4: rb[i * 2] = v >> 8; rb[i * 2 + 1] = (uint8_t)v; return;
	case 3: rb[i] = (uint8_t)v; return;
	default: {
		unsigned per = 8 / s->refcount_bits, sh = (i % per) * s->refcount_bits;

		rb[i / per] = (rb[i / per] & ~(s->refcount_max << sh)) | (v << sh);
	}
	}
}

uint8_t *qcow2_refblock(struct qcow2 *s, uint64_t ri, int *err)
{
	uint64_t off = ri < s->reftable_size ? s->reftable[ri] : 0;

	if (!off)
		return NULL;
	return qcow2_cache_get(s, &s->rb_cache, off, false, err);
}

int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *out)
{
	int err = 0;
	uint8_t *rb = qcow2_refblock(s, cluster >> s->rb_bits, &err);

	*out = rb ? qcow2_rb_entry(s, rb, cluster & ((1ULL << s->rb_bits) - 1)) : 0;
	return err;
}

static int grow_reftable(struct qcow2 *s, uint64_t min_entries);

/* A run of n free clusters: refcount 0 and not in a pending free. */
static uint64_t find_free(struct qcow2 *s, uint64_t n)
{
	uint64_t c = MAX(s->free_hint, 1), run = 0;

	for (; c < s->end && run < n; c++) {
		uint64_t rc;

		if (qcow2_refcount_get(s, c, &rc) || rc)
			run = 0;
		else
			run++;
	}
	return c - run; /* past end everything is free */
}

/*
 * The file is grown ahead of the allocations, in steps, so guest data
 * writes into new clusters land inside the file: a write past the end
 * must update the file size, which file systems do synchronously (ext4
 * serialises extending O_DIRECT writes), killing parallelism. The unused
 * tail is a hole (no space) and is cut off again on close.
 */
#define QCOW2_GROW_STEP (32ULL << 20)

static void grow_file(struct qcow2 *s)
{
	uint64_t need = s->end << s->cluster_bits, to;

	if (need <= s->file_len || s->dev->read_only || s->is_blockdev)
		return;
	to = ALIGN_UP(need + QCOW2_GROW_STEP, QCOW2_GROW_STEP);
	if (ftruncate(s->dev->fd, to) == 0)
		s->file_len = to;
}

static void note_used(struct qcow2 *s, uint64_t c, uint64_t n, bool *was_zero)
{
	if (was_zero)
		*was_zero = c >= s->zero_from;
	s->end = MAX(s->end, c + n);
	s->zero_from = MAX(s->zero_from, c + n);
	grow_file(s);
}

/* Creates the refcount block for range ri (qcow2.h: new blocks are written
   before the table entry that points at them). */
static int create_refblock(struct qcow2 *s, uint64_t ri, int depth)
{
	int err = 0;

	if (depth > 8)
		return -EIO;
	if (ri >= s->reftable_size) {
		int r = grow_reftable(s, ri + 1);

		if (r)
			return r;
		if (s->reftable[ri])
			return 0;
	}
	for (;;) {
		uint64_t c = find_free(s, 1), cri = c >> s->rb_bits;
		uint8_t *rb;

		if (cri != ri && (cri >= s->reftable_size || !s->reftable[cri])) {
			int r = create_refblock(s, cri, depth + 1);

			if (r)
				return r;
			continue;
		}
		if (cri != ri) {
			int r = qcow2_refcount_add(s, c, 1);

			if (r)
				return r;
		}
		rb = qcow2_cache_get(s, &s->rb_cache, c << s->cluster_bits, true, &err);
		if (!rb)
			return err;
		s->reftable[ri] = c << s->cluster_bits;
		s->reftable_dirty = true;
		if (cri == ri)
			rb_set(s, rb, c & ((1ULL << s->rb_bits) - 1), 1);
		note_used(s, c, 1, NULL);
		return 0;
	}
}

int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, int64_t delta)
{
	uint64_t ri = cluster >> s->rb_bits, i = cluster & ((1ULL << s->rb_bits) - 1), v;
	int err = 0;
	uint8_t *rb;

	if (ri >= s->reftable_size || !s->reftable[ri]) {
		if (delta < 0)
			goto underflow;
		err = create_refblock(s, ri, 0);
		if (err)
			return err;
	}
	rb = qcow2_refblock(s, ri, &err);
	if (!rb)
		return err ? err : -EIO;
	v = qcow2_rb_entry(s, rb, i);
	if (delta < 0 && v < (uint64_t)-delta)
		goto underflow;
	if (delta > 0 && s->refcount_max - v < (uint64_t)delta)
		return -ERANGE; /* a limit of the image, not corruption */
	rb_set(s, rb, i, v + delta);
	qcow2_cache_mark_dirty(&s->rb_cache, rb);
	return 0;
underflow:
	qcow2_set_corrupt(s, "refcount of cluster 0x%llx would drop below zero",
			  (unsigned long long)(cluster << s->cluster_bits));
	return -EIO;
}

int64_t qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, bool *was_zero)
{
	for (;;) {
		uint64_t c = find_free(s, n), ri;
		bool missing = false;
		int r;

		/* Create missing refcount blocks first, then look again: a new
		   block may have taken one of the clusters we found. */
		for (ri = c >> s->rb_bits; ri <= (c + n - 1) >> s->rb_bits; ri++) {
			if (ri >= s->reftable_size || !s->reftable[ri]) {
				r = create_refblock(s, ri, 0);
				if (r)
					return r;
				missing = true;
				break;
			}
		}
		if (missing)
			continue;
		for (uint64_t i = 0; i < n; i++) {
			r = qcow2_refcount_add(s, c + i, 1);
			if (r)
				return r;
		}
		note_used(s, c, n, was_zero);
		s->free_hint = c + n;
		return (int64_t)(c << s->cluster_bits);
	}
}

/*
 * A bigger refcount table at the end of the file, with the refcount blocks
 * that cover it and themselves right after it; written and made durable
 * before the header points at it.
 */
static int grow_reftable(struct qcow2 *s, uint64_t min_entries)
{
	uint64_t per = s->cluster_size / 8, entries, clusters, start = s->end, k = 0, total;
	uint64_t *t, old_off = s->h.refcount_table_offset, old_clusters = s->h.refcount_table_clusters;
	uint8_t hdr[12];
	bool wrote = false;
	int r, err = 0;

	entries = ALIGN_UP(MAX(min_entries, (uint64_t)s->reftable_size * 3 / 2), per);
	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES)
		return -EFBIG;
	clusters = entries / per;
	for (;;) { /* how many new blocks cover the table and themselves */
		uint64_t need = 0;

		total = clusters + k;
		for (uint64_t ri = start >> s->rb_bits; ri <= (start + total - 1) >> s->rb_bits; ri++)
			if (ri >= s->reftable_size || !s->reftable[ri])
				need++;
		if (need <= k)
			break;
		k = need;
	}
	t = blk_alloc_aligned(entries * 8);
	if (!t)
		return -ENOMEM;
	memset(t, 0, entries * 8);
	memcpy(t, s->reftable, (uint64_t)s->reftable_size * 8);
	free(s->reftable);
	s->reftable = t;
	s->reftable_size = entries;
	for (uint64_t ri = start >> s->rb_bits, next = start + clusters;
	     ri <= (start + total - 1) >> s->rb_bits; ri++) {
		if (t[ri])
			continue;
		if (!qcow2_cache_get(s, &s->rb_cache, next << s->cluster_bits, true, &err))
			return err;
		t[ri] = next++ << s->cluster_bits;
	}
	note_used(s, start, total, NULL);
	for (uint64_t c = start; c < start + total; c++) {
		r = qcow2_refcount_add(s, c, 1);
		if (r)
			return r;
	}
	/* New blocks and table first, then the header, each made durable. */
	r = qcow2_cache_write(s, &s->rb_cache, false, &wrote);
	for (uint64_t i = 0; !r && i < entries; i++)
		t[i] = htobe64(t[i]);
	if (!r)
		r = blk_file_pwrite(s->dev, t, entries * 8, start << s->cluster_bits);
	for (uint64_t i = 0; i < entries; i++)
		t[i] = be64toh(t[i]);
	if (!r)
		r = blk_file_sync(s->dev);
	if (r)
		return r;
	s->h.refcount_table_offset = start << s->cluster_bits;
	s->h.refcount_table_clusters = clusters;
	{
		uint64_t o = htobe64(s->h.refcount_table_offset);
		uint32_t n = htobe32(clusters);

		memcpy(hdr, &o, 8);
		memcpy(hdr + 8, &n, 4);
	}
	r = blk_file_pwrite(s->dev, hdr, sizeof(hdr), 48);
	if (!r)
		r = blk_file_sync(s->dev);
	s->reftable_dirty = false;
	if (!r)
		r = qcow2_free_later(s, old_off, old_clusters, false);
	return r;
}

void qcow2_entry_clusters(struct qcow2 *s, uint64_t entry, uint64_t *off, uint64_t *n)
{
	*off = 0;
	*n = 0;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		unsigned x = 62 - (s->cluster_bits - 8);
		uint64_t coff = entry & ((1ULL << x) - 1);
		uint64_t nsec = ((entry >> x) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;
		uint64_t start = coff & ~511ULL, end = start + nsec * 512;

		*off = ALIGN_DOWN(start, s->cluster_size);
		*n = (ALIGN_UP(end, s->cluster_size) - *off) >> s->cluster_bits;
	} else if (entry & QCOW2_OFFSET_MASK) {
		*off = entry & QCOW2_OFFSET_MASK;
		*n = 1;
	}
}

int qcow2_free_later(struct qcow2 *s, uint64_t off, uint64_t n, bool punch)
{
	if (!n)
		return 0;
	if (s->nr_frees == s->cap_frees) {
		unsigned cap = s->cap_frees ? s->cap_frees * 2 : 64;
		struct qcow2_free *f = realloc(s->frees, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		s->frees = f;
		s->cap_frees = cap;
	}
	s->frees[s->nr_frees++] = (struct qcow2_free){ off, n, punch };
	return 0;
}

int qcow2_busy_add(struct qcow2 *s, uint64_t c)
{
	if (s->nr_busy == s->cap_busy) {
		unsigned cap = s->cap_busy ? s->cap_busy * 2 : 64;
		uint64_t *b = realloc(s->busy, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		s->busy = b;
		s->cap_busy = cap;
	}
	s->busy[s->nr_busy++] = c;
	return 0;
}

void qcow2_busy_del(struct qcow2 *s, uint64_t c)
{
	for (unsigned i = 0; i < s->nr_busy; i++)
		if (s->busy[i] == c) {
			s->busy[i] = s->busy[--s->nr_busy];
			return;
		}
}

static bool busy_range(struct qcow2 *s, const struct qcow2_free *f)
{
	for (unsigned i = 0; i < s->nr_busy; i++)
		if (s->busy[i] >= f->off >> s->cluster_bits &&
		    s->busy[i] < (f->off >> s->cluster_bits) + f->nb_clusters)
			return true;
	return false;
}

static int apply_frees(struct qcow2 *s)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < s->nr_frees; i++) {
		struct qcow2_free *f = &s->frees[i];

		if (busy_range(s, f)) { /* a write still lands there: next flush */
			s->frees[kept++] = *f;
			continue;
		}

		for (uint64_t c = f->off >> s->cluster_bits, e = c + f->nb_clusters; c < e; c++) {
			uint64_t rc;
			int r = qcow2_refcount_add(s, c, -1);

			if (r)
				return r;
			if (qcow2_refcount_get(s, c, &rc) == 0 && rc == 0) {
				qcow2_cache_forget(&s->l2_cache, c << s->cluster_bits);
				s->free_hint = MIN(s->free_hint, c);
				/* Thin provisioning: give the space back. Lost on a
				   crash at worst; the cluster is unreferenced. */
				if (f->punch && s->dev->cache != BLK_CACHE_UNSAFE)
					fallocate(s->dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						  c << s->cluster_bits, s->cluster_size);
			}
		}
	}
	s->nr_frees = kept;
	return 0;
}

static bool any_dirty(struct qcow2_cache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].off && c->e[i].dirty)
			return true;
	return false;
}

static int write_l1(struct qcow2 *s)
{
	uint64_t bytes = ALIGN_UP((uint64_t)s->l1_size * 8, 512);
	uint64_t *t = blk_alloc_aligned(bytes);
	int r;

	if (!t)
		return -ENOMEM;
	memset(t, 0, bytes);
	for (uint32_t i = 0; i < s->l1_size; i++)
		t[i] = htobe64(s->l1[i]);
	r = blk_file_pwrite(s->dev, t, (uint64_t)s->l1_size * 8, s->h.l1_table_offset);
	free(t);
	return r;
}

static int write_reftable(struct qcow2 *s)
{
	uint64_t bytes = (uint64_t)s->reftable_size * 8;
	uint64_t *t = blk_alloc_aligned(bytes);
	int r;

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->reftable_size; i++)
		t[i] = htobe64(s->reftable[i]);
	r = blk_file_pwrite(s->dev, t, bytes, s->h.refcount_table_offset);
	free(t);
	return r;
}

int qcow2_flush_metadata(struct qcow2 *s, bool sync_data)
{
	bool wrote = false;
	int r;

	if (s->read_only)
		return 0;
	if (!any_dirty(&s->l2_cache) && !any_dirty(&s->rb_cache) && !s->l1_dirty &&
	    !s->reftable_dirty && !s->nr_frees)
		return sync_data ? blk_file_sync(s->dev) : 0;
	/* 1: refcounts and not-yet-referenced tables; 2: barrier */
	r = qcow2_cache_write(s, &s->rb_cache, false, &wrote);
	if (!r)
		r = qcow2_cache_write(s, &s->l2_cache, true, &wrote);
	if (!r)
		r = blk_file_sync(s->dev);
	/* 3: table entries for new refcount blocks */
	if (!r && s->reftable_dirty) {
		r = write_reftable(s);
		if (!r)
			r = blk_file_sync(s->dev);
		s->reftable_dirty = r != 0;
	}
	/* 4: the references themselves */
	wrote = false;
	if (!r)
		r = qcow2_cache_write(s, &s->l2_cache, false, &wrote);
	if (!r && s->l1_dirty) {
		r = write_l1(s);
		s->l1_dirty = r != 0;
		wrote = true;
	}
	if (!r && wrote)
		r = blk_file_sync(s->dev);
	/* 5: only now may unreferenced clusters be reused */
	if (!r && s->nr_frees)
		r = apply_frees(s);
	return r;
}

/* ---- L2 ---- */

static int check_entry(struct qcow2 *s, uint64_t gc, uint64_t e)
{
	uint64_t off, n;

	if (e & QCOW2_OFLAG_COMPRESSED) {
		if (e & QCOW2_OFLAG_COPIED)
			goto bad;
		qcow2_entry_clusters(s, e, &off, &n);
		return qcow2_check_offset(s, off, n << s->cluster_bits, "a compressed cluster");
	}
	if (e & QCOW2_L2_RESERVED)
		goto bad;
	off = e & QCOW2_OFFSET_MASK;
	if (off && off % s->cluster_size) {
		qcow2_set_corrupt(s, "L2 entry of guest offset 0x%llx is not cluster aligned",
				  (unsigned long long)(gc << s->cluster_bits));
		return -EIO;
	}
	return off ? qcow2_check_offset(s, off, s->cluster_size, "a data cluster") : 0;
bad:
	qcow2_set_corrupt(s, "L2 entry 0x%llx of guest offset 0x%llx has reserved bits set",
			  (unsigned long long)e, (unsigned long long)(gc << s->cluster_bits));
	return -EIO;
}

int qcow2_l2_lookup(struct qcow2 *s, uint64_t gc, uint64_t *entry)
{
	uint64_t l1i = gc >> s->l2_bits, l2off, v;
	uint8_t *t;
	int err = 0;

	*entry = 0;
	if (l1i >= s->l1_size)
		return 0;
	l2off = s->l1[l1i] & QCOW2_OFFSET_MASK;
	if (!l2off)
		return 0;
	t = qcow2_cache_get(s, &s->l2_cache, l2off, false, &err);
	if (!t)
		return err;
	memcpy(&v, t + (gc & ((1ULL << s->l2_bits) - 1)) * 8, 8);
	v = be64toh(v);
	err = check_entry(s, gc, v);
	if (!err)
		*entry = v;
	return err;
}

int qcow2_l2_set(struct qcow2 *s, uint64_t gc, uint64_t entry)
{
	uint64_t l1i = gc >> s->l2_bits, l1e, old, v;
	uint8_t *t;
	int err = 0;
	int64_t n;

	if (l1i >= s->l1_size)
		return -EINVAL;
	l1e = s->l1[l1i];
	old = l1e & QCOW2_OFFSET_MASK;
	if (!old || !(l1e & QCOW2_OFLAG_COPIED)) {
		/* No table yet, or one shared with a snapshot: a new table
		   (a copy of the shared one), written before L1 points at it. */
		uint8_t *copy = NULL;

		if (old) {
			t = qcow2_cache_get(s, &s->l2_cache, old, false, &err);
			if (!t)
				return err;
			copy = malloc(s->cluster_size);
			if (!copy)
				return -ENOMEM;
			memcpy(copy, t, s->cluster_size);
		}
		n = qcow2_alloc_clusters(s, 1, NULL);
		if (n < 0) {
			free(copy);
			return (int)n;
		}
		t = qcow2_cache_get(s, &s->l2_cache, n, true, &err);
		if (!t) {
			free(copy);
			return err;
		}
		if (copy)
			memcpy(t, copy, s->cluster_size);
		free(copy);
		s->l1[l1i] = (uint64_t)n | QCOW2_OFLAG_COPIED;
		s->l1_dirty = true;
		if (old) {
			err = qcow2_free_later(s, old, 1, false);
			if (err)
				return err;
		}
	} else {
		t = qcow2_cache_get(s, &s->l2_cache, old, false, &err);
		if (!t)
			return err;
	}
	v = htobe64(entry);
	memcpy(t + (gc & ((1ULL << s->l2_bits) - 1)) * 8, &v, 8);
	qcow2_cache_mark_dirty(&s->l2_cache, t);
	return 0;
}
