// SPDX-License-Identifier: Apache-2.0
/*
 * The API's disk and network limits (docs/api.md, "Resource control"):
 * GET /v1/vm/qos, PUT /v1/vm/qos/disk, /v1/vm/qos/disk-group, /v1/vm/qos/net.
 *
 * A limit is {"average", "burst", "peak"} (null or average 0: no limit).
 * A PUT replaces each limit it names and leaves the others; the reply is
 * the object's limits as they are now. New limits apply to requests
 * already waiting, at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "block/throttle.h"
#include "keel/log.h"
#include "net/shaper.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/control.h"
#include "vmm/resources.h"

json_object *control_limit_json(const struct rate_limit_params *p)
{
	json_object *o;

	if (!p->average)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "average", json_object_new_uint64(p->average));
	json_object_object_add(o, "burst", json_object_new_uint64(p->burst));
	json_object_object_add(o, "peak", json_object_new_uint64(p->peak));
	return o;
}

static json_object *disk_limits_json(const struct blk_limits *lim)
{
	json_object *o = json_object_new_object();

	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		json_object_object_add(o, blk_limit_api_name(l), control_limit_json(&lim->l[l]));
	return o;
}

static json_object *net_limits_json(const struct net_limits *lim)
{
	json_object *o = json_object_new_object();

	for (unsigned d = 0; d < NET_DIRS; d++)
		json_object_object_add(o, net_dir_name(d), control_limit_json(&lim->dir[d]));
	return o;
}

/*
 * One limit's member: null, or an object of average/burst/peak (each
 * checked by `check`). false with a 400 reply set.
 */
static bool limit_from_json(json_object *v, const char *name, struct rate_limit_params *p,
			    int (*check)(const char *field, uint64_t v, const void *ctx, char *err,
					 size_t errlen),
			    const void *ctx, struct http_reply *rep)
{
	static const char *const fields[] = { "average", "burst", "peak", NULL };
	uint64_t *dst[] = { &p->average, &p->burst, &p->peak };
	char err[256];

	*p = (struct rate_limit_params){ 0 };
	if (!v || json_object_is_type(v, json_type_null))
		return true;
	if (!json_object_is_type(v, json_type_object)) {
		http_error(rep, 400, "bad_field", "field '%s' must be an object {average, burst, peak} "
			   "or null", name);
		return false;
	}
	if (!http_check_fields(v, fields, rep))
		return false;
	for (unsigned f = 0; f < 3; f++) {
		if (http_get_u64(v, fields[f], 0, UINT64_MAX, dst[f], rep) == -EINVAL)
			return false;
		if (check(fields[f], *dst[f], ctx, err, sizeof(err))) {
			http_error(rep, 400, "bad_field", "%s", err);
			return false;
		}
	}
	return true;
}

struct disk_check {
	enum blk_limit l;
	const char *what;
};

static int check_disk_field(const char *field, uint64_t v, const void *ctx, char *err,
			    size_t errlen)
{
	const struct disk_check *c = ctx;
	enum blk_limit_field f = !strcmp(field, "average") ? BLK_FIELD_AVERAGE
				 : !strcmp(field, "burst") ? BLK_FIELD_BURST : BLK_FIELD_PEAK;

	return blk_limit_check_value(c->l, f, v, c->what, err, errlen);
}

/* Applies the limits the body names onto lim; false with a 400 set. */
static bool disk_limits_from_body(json_object *body, const char *what, struct blk_limits *lim,
				  struct http_reply *rep)
{
	char err[256];

	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++) {
		struct disk_check c = { l, what };
		json_object *v;

		if (!json_object_object_get_ex(body, blk_limit_api_name(l), &v))
			continue;
		if (!limit_from_json(v, blk_limit_api_name(l), &lim->l[l], check_disk_field, &c, rep))
			return false;
	}
	if (blk_limits_check(lim, what, err, sizeof(err))) {
		http_error(rep, 400, "bad_field", "%s", err);
		return false;
	}
	return true;
}

static const char *const disk_fields[] = { "disk", "group", "iops", "iops_rd", "iops_wr", "bw",
					   "bw_rd", "bw_wr", NULL };

static json_object *disk_json(struct machine *m, unsigned i)
{
	struct blk_limits lim;
	struct virtio_blk_throttle_stats s;
	json_object *o = json_object_new_object(), *st = json_object_new_object();
	const char *g = m->cfg->disks[i].group;

	virtio_blk_get_limits(m->disks[i], &lim);
	virtio_blk_throttle_stats(m->disks[i], &s);
	json_object_object_add(o, "disk", json_object_new_int((int)i));
	json_object_object_add(o, "path", json_object_new_string(m->cfg->disks[i].path));
	json_object_object_add(o, "group", *g ? json_object_new_string(g) : NULL);
	json_object_object_add(o, "limits", disk_limits_json(&lim));
	json_object_object_add(st, "delayed", json_object_new_uint64(s.delayed));
	json_object_object_add(st, "delay_ms", json_object_new_uint64(s.delay_ns / 1000000));
	json_object_object_add(st, "waiting", json_object_new_uint64(s.waiting));
	json_object_object_add(o, "throttle", st);
	return o;
}

static json_object *group_json(struct blk_throttle *g)
{
	struct blk_limits lim;
	json_object *o = json_object_new_object();

	blk_throttle_get(g, &lim);
	json_object_object_add(o, "group", json_object_new_string(g->name));
	json_object_object_add(o, "limits", disk_limits_json(&lim));
	return o;
}

static json_object *net_json(struct machine *m, unsigned i)
{
	struct net_limits lim;
	struct virtio_net_stats s;
	json_object *o = json_object_new_object(), *st = json_object_new_object();

	virtio_net_get_limits(m->nets[i], &lim);
	virtio_net_get_stats(m->nets[i], &s);
	json_object_object_add(o, "net", json_object_new_int((int)i));
	json_object_object_add(o, "tap", json_object_new_string(m->cfg->nets[i].tap));
	json_object_object_add(o, "limits", net_limits_json(&lim));
	for (unsigned d = 0; d < NET_DIRS; d++) {
		char key[32];

		snprintf(key, sizeof(key), "%s_delayed", net_dir_name(d));
		json_object_object_add(st, key, json_object_new_uint64(s.shaped[d]));
		snprintf(key, sizeof(key), "%s_delay_ms", net_dir_name(d));
		json_object_object_add(st, key, json_object_new_uint64(s.shaped_ns[d] / 1000000));
	}
	json_object_object_add(o, "shaper", st);
	return o;
}

void control_get_qos(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	json_object *disks = json_object_new_array(), *groups = json_object_new_array();
	json_object *nets = json_object_new_array();

	for (unsigned i = 0; i < m->cfg->nr_disks; i++)
		json_object_array_add(disks, disk_json(m, i));
	for (unsigned i = 0; i < m->nr_disk_groups; i++)
		json_object_array_add(groups, group_json(&m->disk_groups[i]));
	for (unsigned i = 0; i < m->cfg->nr_nets; i++)
		json_object_array_add(nets, net_json(m, i));
	rep->body = json_object_new_object();
	json_object_object_add(rep->body, "disks", disks);
	json_object_object_add(rep->body, "disk_groups", groups);
	json_object_object_add(rep->body, "nets", nets);
}

/* The index member `key` (0 to n-1); false with a reply set. */
static bool get_index(json_object *body, const char *key, unsigned n, const char *what,
		      unsigned *out, struct http_reply *rep)
{
	uint64_t v;
	int r;

	if (!n) {
		http_error(rep, 404, "not_found", "the VM has no %s", what);
		return false;
	}
	r = http_get_u64(body, key, 0, n - 1, &v, rep);
	if (r == -ENOENT)
		http_error(rep, 400, "bad_field", "field '%s' (the %s's index, 0 to %u) is required",
			   key, what, n - 1);
	*out = (unsigned)v;
	return r == 0;
}

void control_put_qos_disk(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	struct blk_limits lim;
	char what[32];
	unsigned i;

	if (!http_check_fields(req->body, disk_fields, rep) ||
	    !get_index(req->body, "disk", m->cfg->nr_disks, "disk", &i, rep))
		return;
	if (json_object_object_get_ex(req->body, "group", NULL)) {
		http_error(rep, 400, "bad_field", "a disk's group is set at start (--disk group=); "
			   "change the group's limits with PUT /v1/vm/qos/disk-group");
		return;
	}
	snprintf(what, sizeof(what), "disk %u", i);
	virtio_blk_get_limits(m->disks[i], &lim);
	if (!disk_limits_from_body(req->body, what, &lim, rep))
		return;
	virtio_blk_set_limits(m->disks[i], &lim);
	log_info("disk %u: new I/O limits through the API", i);
	rep->body = disk_json(m, i);
}

void control_put_qos_group(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	struct blk_throttle *g;
	struct blk_limits lim;
	const char *name = NULL;
	char what[64];
	int r;

	if (!http_check_fields(req->body, disk_fields, rep))
		return;
	r = http_get_string(req->body, "group", &name, rep);
	if (r == -EINVAL)
		return;
	if (r) {
		http_error(rep, 400, "bad_field", "field 'group' (a --disk-group's name) is required");
		return;
	}
	g = resources_disk_group(m, name);
	if (!g) {
		http_error(rep, 404, "not_found", "no --disk-group named '%.32s'", name);
		return;
	}
	snprintf(what, sizeof(what), "group %s", g->name);
	blk_throttle_get(g, &lim);
	if (!disk_limits_from_body(req->body, what, &lim, rep))
		return;
	blk_throttle_set(g, &lim);
	log_info("disk group %s: new I/O limits through the API", g->name);
	rep->body = group_json(g);
}

static int check_net_field(const char *field, uint64_t v, const void *ctx, char *err,
			   size_t errlen)
{
	const enum net_dir *d = ctx;

	return net_limit_check_value(*d, field, v, "net", err, errlen);
}

void control_put_qos_net(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "net", "tx", "rx", NULL };
	struct machine *m = ctx;
	struct net_limits lim;
	char err[256];
	unsigned i;

	if (!http_check_fields(req->body, fields, rep) ||
	    !get_index(req->body, "net", m->cfg->nr_nets, "NIC", &i, rep))
		return;
	virtio_net_get_limits(m->nets[i], &lim);
	for (enum net_dir d = 0; d < NET_DIRS; d++) {
		json_object *v;

		if (json_object_object_get_ex(req->body, net_dir_name(d), &v) &&
		    !limit_from_json(v, net_dir_name(d), &lim.dir[d], check_net_field, &d, rep))
			return;
	}
	if (net_limits_check(&lim, "net", err, sizeof(err))) {
		http_error(rep, 400, "bad_field", "%s", err);
		return;
	}
	virtio_net_set_limits(m->nets[i], &lim);
	log_info("NIC %u: new shaping through the API", i);
	rep->body = net_json(m, i);
}
