// SPDX-License-Identifier: Apache-2.0
/*
 * keel-img check for qcow2: every reference the image makes (header, L1,
 * L2 tables, data clusters, refcount structures, snapshot tables and their
 * trees) is counted, then compared with the stored refcounts. Stored lower
 * than referenced is corruption (a cluster could be handed out twice);
 * stored higher is a leak (wasted space). The COPIED flags of the active
 * tables must say exactly "refcount is 1". Messages and counts follow
 * qemu-img check so operators read them the same way.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk_img.h"
#include "keel/compiler.h"
#include "qcow2.h"

struct ck {
	struct qcow2 *s;
	uint32_t *ref;
	uint64_t nb;
	uint64_t highest;
	struct blk_check_result *res;
	FILE *out;
	uint8_t *table;
};

#define SAY(ck, ...)                                          \
	do {                                                  \
		if ((ck)->out)                                \
			fprintf((ck)->out, __VA_ARGS__);      \
	} while (0)

static void count_range(struct ck *ck, uint64_t off, uint64_t len)
{
	struct qcow2 *s = ck->s;

	if (!len)
		return;
	for (uint64_t c = off >> s->cluster_bits; c <= (off + len - 1) >> s->cluster_bits; c++) {
		if (c >= ck->nb) {
			SAY(ck, "ERROR: reference to cluster %llu beyond the end of the file\n",
			    (unsigned long long)c);
			ck->res->corruptions++;
			return;
		}
		if (ck->ref[c] < UINT32_MAX)
			ck->ref[c]++;
		ck->highest = MAX(ck->highest, c);
	}
}

static void walk_l2(struct ck *ck, uint64_t l2off, bool active, uint64_t *next_contig)
{
	struct qcow2 *s = ck->s;

	if (blk_file_pread(s->dev, ck->table, s->cluster_size, l2off)) {
		SAY(ck, "ERROR: cannot read L2 table at 0x%llx\n", (unsigned long long)l2off);
		ck->res->check_errors = true;
		return;
	}
	for (uint64_t j = 0; j < (1ULL << s->l2_bits); j++) {
		uint64_t e, off, n;

		memcpy(&e, ck->table + j * 8, 8);
		e = be64toh(e);
		if (e & QCOW2_OFLAG_COMPRESSED) {
			qcow2_entry_clusters(s, e, &off, &n);
			count_range(ck, off, n << s->cluster_bits);
			if (active) {
				ck->res->allocated_clusters++;
				ck->res->compressed_clusters++;
			}
			continue;
		}
		if (e & QCOW2_L2_RESERVED) {
			SAY(ck, "ERROR: L2 entry 0x%llx has reserved bits set\n", (unsigned long long)e);
			ck->res->corruptions++;
			continue;
		}
		off = e & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		if (off % s->cluster_size) {
			SAY(ck, "ERROR offset=%llx: Cluster is not properly aligned; L2 entry corrupted.\n",
			    (unsigned long long)off);
			ck->res->corruptions++;
			continue;
		}
		count_range(ck, off, s->cluster_size);
		if (active && !(e & QCOW2_OFLAG_ZERO)) {
			ck->res->allocated_clusters++;
			if (*next_contig && off != *next_contig)
				ck->res->fragmented_clusters++;
			*next_contig = off + s->cluster_size;
		}
	}
}

static void walk_l1(struct ck *ck, const uint64_t *l1, uint32_t n, bool active)
{
	struct qcow2 *s = ck->s;
	uint64_t next_contig = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;

		if (l1[i] & QCOW2_L1_RESERVED) {
			SAY(ck, "ERROR: L1 entry %u has reserved bits set\n", i);
			ck->res->corruptions++;
		}
		if (!l2)
			continue;
		if (l2 % s->cluster_size) {
			SAY(ck, "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted\n",
			    (unsigned long long)l2);
			ck->res->corruptions++;
			continue;
		}
		count_range(ck, l2, s->cluster_size);
		if ((l2 >> s->cluster_bits) < ck->nb)
			walk_l2(ck, l2, active, &next_contig);
	}
}

static void count_everything(struct ck *ck)
{
	struct qcow2 *s = ck->s;

	count_range(ck, 0, s->cluster_size);
	count_range(ck, s->h.l1_table_offset, (uint64_t)s->l1_size * 8);
	walk_l1(ck, s->l1, s->l1_size, true);
	count_range(ck, s->h.refcount_table_offset, (uint64_t)s->h.refcount_table_clusters * s->cluster_size);
	for (uint32_t i = 0; i < s->reftable_size; i++) {
		uint64_t rb = s->reftable[i];

		if (!rb)
			continue;
		if (rb % s->cluster_size) {
			SAY(ck, "ERROR refcount block %u is not cluster aligned; refcount table entry corrupted\n", i);
			ck->res->corruptions++;
			continue;
		}
		count_range(ck, rb, s->cluster_size);
	}
	if (s->nr_snaps)
		count_range(ck, s->h.snapshots_offset, s->h.snapshots_size_hint);
	for (unsigned i = 0; i < s->nr_snaps; i++) {
		uint64_t *l1 = NULL;

		count_range(ck, s->snaps[i].l1_table_offset, (uint64_t)s->snaps[i].l1_size * 8);
		if (qcow2_load_table(s, s->snaps[i].l1_table_offset, s->snaps[i].l1_size, &l1)) {
			ck->res->check_errors = true;
			continue;
		}
		walk_l1(ck, l1, s->snaps[i].l1_size, false);
		free(l1);
	}
}

static int compare(struct ck *ck, int fix)
{
	struct qcow2 *s = ck->s;
	uint64_t per = 1ULL << s->rb_bits;

	for (uint64_t ri = 0; ri < s->reftable_size || ri * per < ck->nb; ri++) {
		int err = 0;
		uint8_t *rb = ri < s->reftable_size && s->reftable[ri] ?
			      qcow2_refblock(s, ri, &err) : NULL;

		if (err) {
			ck->res->check_errors = true;
			continue;
		}
		for (uint64_t c = ri * per; c < (ri + 1) * per; c++) {
			uint64_t want = c < ck->nb ? ck->ref[c] : 0;
			uint64_t stored = rb ? qcow2_rb_entry(s, rb, c - ri * per) : 0;
			int r;

			if (!rb && c >= ck->nb)
				break;
			if (stored == want)
				continue;
			if (stored < want) {
				SAY(ck, "%s cluster %llu refcount=%llu reference=%llu\n",
				    (fix & BLK_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR",
				    (unsigned long long)c, (unsigned long long)stored,
				    (unsigned long long)want);
				if (!(fix & BLK_CHECK_FIX_ERRORS)) {
					ck->res->corruptions++;
					continue;
				}
				r = qcow2_refcount_add(s, c, (int64_t)(want - stored));
				ck->res->corruptions_fixed += !r;
			} else {
				SAY(ck, "%s cluster %llu refcount=%llu reference=%llu\n",
				    fix ? "Repairing" : "Leaked", (unsigned long long)c,
				    (unsigned long long)stored, (unsigned long long)want);
				if (!fix) {
					ck->res->leaks++;
					continue;
				}
				r = qcow2_refcount_add(s, c, -(int64_t)(stored - want));
				ck->res->leaks_fixed += !r;
			}
			if (r)
				return r;
			/* the repair may have moved blocks around in the cache */
			rb = ri < s->reftable_size && s->reftable[ri] ? qcow2_refblock(s, ri, &err) : NULL;
			if (err)
				return err;
		}
	}
	return 0;
}

static void check_copied(struct ck *ck, int fix)
{
	struct qcow2 *s = ck->s;

	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK, rc;

		if (!l2 || l2 % s->cluster_size || (l2 >> s->cluster_bits) >= ck->nb ||
		    qcow2_refcount_get(s, l2 >> s->cluster_bits, &rc))
			continue;
		if ((rc == 1) != !!(s->l1[i] & QCOW2_OFLAG_COPIED)) {
			SAY(ck, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu\n",
			    (fix & BLK_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR", i,
			    (unsigned long long)s->l1[i], (unsigned long long)rc);
			if (fix & BLK_CHECK_FIX_ERRORS)
				ck->res->corruptions_fixed++;
			else
				ck->res->corruptions++;
		}
		if (blk_file_pread(s->dev, ck->table, s->cluster_size, l2))
			continue;
		for (uint64_t j = 0; j < (1ULL << s->l2_bits); j++) {
			uint64_t e, off;

			memcpy(&e, ck->table + j * 8, 8);
			e = be64toh(e);
			off = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !off || off % s->cluster_size ||
			    (off >> s->cluster_bits) >= ck->nb ||
			    qcow2_refcount_get(s, off >> s->cluster_bits, &rc))
				continue;
			if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
				SAY(ck, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu\n",
				    (fix & BLK_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR",
				    (unsigned long long)e, (unsigned long long)rc);
				if (fix & BLK_CHECK_FIX_ERRORS)
					ck->res->corruptions_fixed++;
				else
					ck->res->corruptions++;
			}
		}
	}
}

static int check_pass(struct qcow2 *s, int fix, struct blk_check_result *res, FILE *out)
{
	struct ck ck = { .s = s, .res = res, .out = out };
	int r;

	ck.nb = s->end;
	ck.ref = calloc(ck.nb ? ck.nb : 1, sizeof(*ck.ref));
	ck.table = blk_alloc_aligned(s->cluster_size);
	if (!ck.ref || !ck.table) {
		free(ck.ref);
		free(ck.table);
		return -ENOMEM;
	}
	res->total_clusters = DIV_ROUND_UP_U64(s->h.size, s->cluster_size);
	count_everything(&ck);
	/* A repair must not allocate a cluster that is referenced but
	   counted free: new refcount blocks go past the end. */
	s->free_hint = ck.nb;
	r = compare(&ck, fix);
	if (!r)
		check_copied(&ck, fix);
	if (!r && (fix & BLK_CHECK_FIX_ERRORS))
		r = qcow2_fix_copied(s);
	res->image_end_offset = (ck.highest + 1) * s->cluster_size;
	free(ck.ref);
	free(ck.table);
	return r;
}

int qcow2_check(struct blk_dev *dev, int fix, struct blk_check_result *res, FILE *out)
{
	struct qcow2 *s = qcow2_of(dev);
	int r;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&s->lock);
	r = qcow2_flush_metadata(s, false);
	if (!r)
		r = check_pass(s, fix, res, out);
	if (!r && fix && !dev->read_only) {
		struct blk_check_result again;

		blk_dev_mark_written(dev);
		r = qcow2_flush_metadata(s, true);
		if (!r)
			r = qcow2_flush_metadata(s, true);
		/* Double-check what the repair left. */
		memset(&again, 0, sizeof(again));
		if (!r)
			r = check_pass(s, 0, &again, NULL);
		again.corruptions_fixed = res->corruptions_fixed;
		again.leaks_fixed = res->leaks_fixed;
		*res = again;
		if (!r && !res->corruptions && (fix & BLK_CHECK_FIX_ERRORS) &&
		    (s->h.incompatible_features & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
			s->h.incompatible_features &= ~(QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY);
			r = qcow2_write_header_field(s, 72, s->h.incompatible_features, 8);
			if (!r)
				r = blk_file_sync(dev);
			s->corrupt = false;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		res->check_errors = true;
	return r;
}
