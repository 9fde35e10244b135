/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qcow2 inside the block layer (docs/interop/qcow2.txt in QEMU describes the
 * format; section names below refer to it).
 *
 * Locking: one mutex per image (s->lock) guards every piece of metadata:
 * L1, the L2 and refcount-block caches, the refcount table, allocation,
 * the in-flight allocation list and pending frees. Metadata I/O is done
 * synchronously under it; guest data I/O runs asynchronously on the
 * requesting queue's engine with the lock dropped.
 *
 * Crash consistency (what a flush writes, in order; see qcow2_meta.c):
 *   1. refcount blocks, and L2 tables nothing on disk points to yet
 *   2. barrier (fdatasync): data, refcounts and fresh tables are durable
 *   3. refcount table entries for new refcount blocks, barrier
 *   4. L2 tables, the L1 table, barrier
 *   5. refcount decrements for clusters unreferenced in 4 (discard, COW)
 *      are applied only now, so no cluster is reused while an old on-disk
 *      reference may still point at it.
 * A crash anywhere leaves at worst leaked clusters.
 */
#ifndef KEEL_QCOW2_H
#define KEEL_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block_int.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)       /* as QEMU: 32 MiB of L1 */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)  /* 8 MiB of refcount table */
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_BACKING_NAME 1023

/* Entry bits (section "Cluster mapping"). */
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO 1ULL
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_L1_RESERVED 0x7f000000000001ffULL
#define QCOW2_L2_RESERVED 0x3f000000000001feULL

/* Incompatible feature bits (section "Header"). */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)

/* Header extension types. */
#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

struct qcow2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type; /* 0 zlib, 1 zstd */
	uint64_t snapshots_size_hint; /* bytes of the snapshot table read */
};

struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint64_t icount;      /* UINT64_MAX: not recorded */
};

struct qcow2_cached {
	uint64_t off;          /* 0: empty slot */
	uint8_t *data;         /* one cluster, on-disk (big-endian) layout */
	bool dirty;
	bool fresh;            /* newly allocated: nothing on disk points here */
	uint64_t used;         /* LRU tick */
};

struct qcow2_cache {
	struct qcow2_cached *e;
	unsigned n;
	uint64_t tick;
};

/* A guest cluster whose first write is in flight (its L2 entry is not
   set yet); later writes to it wait here. */
struct qcow2_inflight {
	uint64_t guest_cluster;
	struct blk_io *waiters;
	struct qcow2_inflight *next;
};

struct qcow2_free {
	uint64_t off, nb_clusters;
	bool punch;            /* also punch the host file (discard) */
};

struct qcow2 {
	struct blk_dev *dev;
	struct qcow2_header h;
	pthread_mutex_t lock;
	uint64_t cluster_size;
	unsigned cluster_bits, l2_bits;     /* l2 entries = 1 << l2_bits */
	unsigned refcount_bits, rb_bits;    /* refcount entries per block = 1 << rb_bits */
	uint64_t refcount_max;
	uint64_t *l1;                        /* host-endian */
	uint32_t l1_size;
	bool l1_dirty;
	uint64_t *reftable;                  /* host-endian */
	uint32_t reftable_size;              /* entries */
	bool reftable_dirty;
	struct qcow2_cache l2_cache, rb_cache;
	uint64_t free_hint;                  /* cluster index to scan from */
	uint64_t end;                        /* first cluster index never used */
	uint64_t zero_from;                  /* clusters >= this read as zeroes */
	uint64_t file_len;                   /* bytes, grown ahead (qcow2_meta.c) */
	uint64_t file_len_at_open;
	bool is_blockdev;
	struct qcow2_inflight *inflight;
	struct qcow2_free *frees;
	unsigned nr_frees, cap_frees;
	/* Host clusters with in-place data writes in flight: a racing discard
	   must not let them be reused before those writes land. */
	uint64_t *busy;
	unsigned nr_busy, cap_busy;
	char *backing_file;
	char *backing_format;
	struct qcow2_snapshot *snaps;
	unsigned nr_snaps;
	bool corrupt;                        /* writes refused from now on */
	bool read_only;
};

/* Big-endian fields of the on-disk structures. */
static inline void qcow2_put32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	__builtin_memcpy(p, &v, 4);
}

static inline void qcow2_put64(uint8_t *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	__builtin_memcpy(p, &v, 8);
}

static inline struct qcow2 *qcow2_of(struct blk_dev *dev)
{
	return dev->priv;
}

/* qcow2_open.c */
int qcow2_parse_header(const uint8_t *buf, uint64_t buflen, uint64_t file_size,
		       struct qcow2_header *h, char *err, size_t errlen);
/* Reads n big-endian entries at off into a host-endian array (free()). */
int qcow2_load_table(struct qcow2 *s, uint64_t off, uint32_t n, uint64_t **out);
int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen);
int qcow2_write_header_field(struct qcow2 *s, unsigned off, uint64_t v, unsigned bytes);
/* Rewrites the header, its extensions and the backing name in cluster 0. */
int qcow2_rewrite_header(struct qcow2 *s);
void qcow2_set_corrupt(struct qcow2 *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* qcow2_meta.c and qcow2_cache.c (all under s->lock) */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size);
void qcow2_cache_free(struct qcow2_cache *c);
/* Returns the cached cluster at off (read from disk unless `fresh`). */
uint8_t *qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t off,
			 bool fresh, int *err);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data);
/* Writes dirty entries (only the fresh ones if only_fresh). */
int qcow2_cache_write(struct qcow2 *s, struct qcow2_cache *c, bool only_fresh, bool *wrote);
/* Drops a cached table without writing it (its cluster was freed). */
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off);
/* The cached refcount block of range ri (NULL: none, or *err). */
uint8_t *qcow2_refblock(struct qcow2 *s, uint64_t ri, int *err);
uint64_t qcow2_rb_entry(struct qcow2 *s, const uint8_t *rb, uint64_t i);
int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *out);
int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, int64_t delta);
/* Allocates n contiguous clusters (refcount 1); returns the byte offset or
   -errno. *was_zero tells whether they are known to read as zeroes. */
int64_t qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, bool *was_zero);
/* Frees at the next flush (after the references are gone on disk). */
int qcow2_free_later(struct qcow2 *s, uint64_t off, uint64_t nb_clusters, bool punch);
/* In-place writes in flight on host cluster c (a multiset). */
int qcow2_busy_add(struct qcow2 *s, uint64_t c);
void qcow2_busy_del(struct qcow2 *s, uint64_t c);
/* The host clusters an L2 entry holds (0 for none), for freeing. */
void qcow2_entry_clusters(struct qcow2 *s, uint64_t entry, uint64_t *off, uint64_t *n);
int qcow2_flush_metadata(struct qcow2 *s, bool sync_data);
/* Loads the L2 table of guest cluster `gc` (NULL if none: *l1e == 0). */
int qcow2_l2_lookup(struct qcow2 *s, uint64_t gc, uint64_t *entry);
/* Sets the L2 entry of gc, allocating or copying the L2 table as needed. */
int qcow2_l2_set(struct qcow2 *s, uint64_t gc, uint64_t entry);
/* Validates a host offset read from metadata; -EIO (and corrupt) if bad. */
int qcow2_check_offset(struct qcow2 *s, uint64_t off, uint64_t len, const char *what);
uint64_t qcow2_file_clusters(struct qcow2 *s);

/* qcow2_io.c */
int qcow2_read_compressed(struct qcow2 *s, uint64_t entry, uint8_t *out);
void qcow2_submit(struct blk_io *io);

/* qcow2_offline.c (offline: keel-img, no queues) */
struct blk_create_opts;
struct blk_status;
int qcow2_create(const struct blk_create_opts *o, char *err, size_t errlen);
int qcow2_resize(struct blk_dev *dev, uint64_t size, char *err, size_t errlen);
int qcow2_block_status(struct blk_dev *dev, uint64_t off, uint64_t len, struct blk_status *st);
int qcow2_set_backing(struct blk_dev *dev, const char *name, const char *fmt);
int qcow2_make_empty(struct blk_dev *dev);

/* qcow2_snap.c (offline: keel-img, no queues) */
/* op: 'c'reate, 'a'pply, 'd'elete (by name or id) */
int qcow2_snapshot_op(struct blk_dev *dev, char op, const char *name, char *err, size_t errlen);
int qcow2_write_snapshot_table(struct qcow2 *s);
/* qcow2_check.c */
struct blk_check_result;
int qcow2_check(struct blk_dev *dev, int fix, struct blk_check_result *res, FILE *out);

/* Recomputes the COPIED flags of the active tables from refcounts. */
int qcow2_fix_copied(struct qcow2 *s);

#endif
