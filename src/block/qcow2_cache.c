// SPDX-License-Identifier: Apache-2.0
/*
 * The qcow2 metadata caches (L2 tables, refcount blocks): one cluster per
 * entry, least recently used out. Evicting a dirty entry first runs a
 * whole ordered flush (qcow2.h), so no table ever reaches the disk out of
 * order. Everything here runs under s->lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size)
{
	/* Slots get their cluster buffer on first use: a big disk may allow
	   many tables that a short-lived open never touches. */
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	c->n = n;
	(void)cluster_size;
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	for (unsigned i = 0; c->e && i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static struct qcow2_cached *cache_victim(struct qcow2_cache *c)
{
	struct qcow2_cached *v = NULL;

	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cached *e = &c->e[i];

		if (!e->off)
			return e;
		if (!v || (v->dirty && !e->dirty) ||
		    (v->dirty == e->dirty && e->used < v->used))
			v = e;
	}
	return v;
}

uint8_t *qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t off,
			 bool fresh, int *err)
{
	struct qcow2_cached *e;
	int r;

	for (unsigned i = 0; i < c->n; i++) {
		if (c->e[i].off == off) {
			c->e[i].used = ++c->tick;
			if (fresh) {
				memset(c->e[i].data, 0, s->cluster_size);
				c->e[i].dirty = c->e[i].fresh = true;
			}
			return c->e[i].data;
		}
	}
	e = cache_victim(c);
	/* Evicting a dirty table must keep the write order: flush it all. */
	for (int tries = 0; e->dirty && tries < 3; tries++) {
		r = qcow2_flush_metadata(s, true);
		if (r) {
			*err = r;
			return NULL;
		}
		e = cache_victim(c);
	}
	if (e->dirty) {
		*err = -EIO;
		return NULL;
	}
	e->off = 0;
	if (!e->data && !(e->data = blk_alloc_aligned(s->cluster_size))) {
		*err = -ENOMEM;
		return NULL;
	}
	if (fresh) {
		memset(e->data, 0, s->cluster_size);
	} else {
		r = qcow2_check_offset(s, off, s->cluster_size, "a metadata table");
		if (!r)
			r = blk_file_pread(s->dev, e->data, s->cluster_size, off);
		if (r) {
			*err = r;
			return NULL;
		}
	}
	e->off = off;
	e->dirty = fresh;
	e->fresh = fresh;
	e->used = ++c->tick;
	return e->data;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].data == data)
			c->e[i].dirty = true;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].off == off)
			c->e[i].off = 0, c->e[i].dirty = c->e[i].fresh = false;
}

/* Writes dirty entries (only the fresh ones if only_fresh). */
int qcow2_cache_write(struct qcow2 *s, struct qcow2_cache *c, bool only_fresh, bool *wrote)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cached *e = &c->e[i];
		int r;

		if (!e->off || !e->dirty || (only_fresh && !e->fresh))
			continue;
		r = blk_file_pwrite(s->dev, e->data, s->cluster_size, e->off);
		if (r)
			return r;
		e->dirty = e->fresh = false;
		*wrote = true;
	}
	return 0;
}

