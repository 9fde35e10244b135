// SPDX-License-Identifier: Apache-2.0
/*
 * The API's memory endpoints (docs/api.md, "Resource control"):
 * GET/PUT /v1/vm/memory (backing, huge pages, KSM, mlock, what is resident
 * and shared) and GET/PUT /v1/vm/balloon (its size and the guest's
 * statistics).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keel/log.h"
#include "virtio/balloon.h"
#include "vmm/control.h"

/* A number from a file of one ("/sys/kernel/mm/ksm/run"), or -1. */
static int64_t read_number(const char *path)
{
	FILE *f = fopen(path, "re");
	int64_t v = -1;

	if (f && fscanf(f, "%" SCNd64, &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static json_object *number_or_null(int64_t v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

/* "Key:   123 kB" lines of /proc/self/status, in KiB; -1 if absent. */
static int64_t status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t n = strlen(key);
	int64_t v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':' &&
		    sscanf(line + n + 1, "%" SCNd64, &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/*
 * KSM, system-wide (/sys/kernel/mm/ksm: pages_shared are the kept copies,
 * pages_sharing the pages merged into them) and for this process
 * (ksm_merging_pages since Linux 5.19, ksm_stat since 6.1).
 */
static json_object *ksm_json(void)
{
	static const char *const sys[] = { "run", "pages_shared", "pages_sharing",
					   "pages_unshared", "full_scans" };
	json_object *o = json_object_new_object(), *self = json_object_new_object();
	char path[96], line[128];
	FILE *f;

	for (unsigned i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", sys[i]);
		json_object_object_add(o, sys[i], number_or_null(read_number(path)));
	}
	json_object_object_add(self, "merging_pages",
			       number_or_null(read_number("/proc/self/ksm_merging_pages")));
	f = fopen("/proc/self/ksm_stat", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char key[64];
		int64_t v;

		if (sscanf(line, "%63s %" SCNd64, key, &v) == 2)
			json_object_object_add(self, key, json_object_new_int64(v));
	}
	if (f)
		fclose(f);
	json_object_object_add(o, "process", self);
	return o;
}

static json_object *memory_json(struct machine *m)
{
	const struct guest_ram *ram = &m->ram;
	const struct guest_ram_opts *opt = &ram->opts;
	json_object *o = json_object_new_object();
	int64_t rss = status_kb("VmRSS"), swap = status_kb("VmSwap"), lck = status_kb("VmLck");

	json_object_object_add(o, "size_mib", json_object_new_uint64(ram->size >> 20));
	json_object_object_add(o, "backing", json_object_new_string(
				       ram->memfd >= 0 ? "memfd" : ram->anon || opt->hugepage_size
				       ? "anon" : "file"));
	json_object_object_add(o, "hugepages", opt->hugepage_size ? json_object_new_string(
				       opt->hugepage_size == GiB ? "1G" : "2M") : NULL);
	json_object_object_add(o, "thp", json_object_new_boolean(!opt->hugepage_size && !opt->no_thp));
	json_object_object_add(o, "prealloc", json_object_new_boolean(opt->prealloc));
	json_object_object_add(o, "mergeable", json_object_new_boolean(opt->mergeable));
	json_object_object_add(o, "mlock", json_object_new_boolean(opt->mlock));
	json_object_object_add(o, "guest_resident_mib",
			       json_object_new_uint64(guest_ram_resident(ram) >> 20));
	json_object_object_add(o, "process_rss_kib", number_or_null(rss));
	json_object_object_add(o, "process_swap_kib", number_or_null(swap));
	json_object_object_add(o, "process_locked_kib", number_or_null(lck));
	json_object_object_add(o, "ksm", ksm_json());
	return o;
}

void control_get_memory(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = memory_json(ctx);
}

void control_put_memory(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "mergeable", "mlock", "thp", NULL };
	int (*const set[])(struct guest_ram *, bool, char *, size_t) = {
		guest_ram_set_mergeable, guest_ram_set_mlock, guest_ram_set_thp,
	};
	struct machine *m = ctx;
	bool want[3];
	int got[3];
	char err[256];

	if (!http_check_fields(req->body, fields, rep))
		return;
	for (unsigned i = 0; i < 3; i++) {
		got[i] = http_get_bool(req->body, fields[i], &want[i], rep);
		if (got[i] == -EINVAL)
			return;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (got[i])
			continue;
		if (set[i](&m->ram, want[i], err, sizeof(err))) {
			http_error(rep, 409, "unsupported", "%s: %s", fields[i], err);
			return;
		}
		log_info("guest RAM: %s %s through the API", fields[i], want[i] ? "on" : "off");
	}
	rep->body = memory_json(m);
}

static json_object *balloon_json(struct machine *m)
{
	struct virtio_balloon_info in;
	json_object *o = json_object_new_object(), *g = json_object_new_object();

	virtio_balloon_get_info(m->balloon, &in);
	json_object_object_add(o, "driver_ok", json_object_new_boolean(in.driver_ok));
	json_object_object_add(o, "size_mib", json_object_new_uint64(in.target_pages * BALLOON_PAGE >> 20));
	json_object_object_add(o, "actual_mib",
			       json_object_new_uint64(in.actual_pages * BALLOON_PAGE >> 20));
	json_object_object_add(o, "deflate_on_oom", json_object_new_boolean(in.deflate_on_oom));
	json_object_object_add(o, "free_page_reporting",
			       json_object_new_boolean(in.free_page_reporting));
	json_object_object_add(o, "inflated_pages", json_object_new_uint64(in.inflated_pages));
	json_object_object_add(o, "deflated_pages", json_object_new_uint64(in.deflated_pages));
	json_object_object_add(o, "returned_mib", json_object_new_uint64(in.discarded_bytes >> 20));
	json_object_object_add(o, "reported_mib", json_object_new_uint64(in.reported_bytes >> 20));
	json_object_object_add(o, "discard_errors", json_object_new_uint64(in.discard_errors));
	for (unsigned s = 0; s < BALLOON_S_COUNT; s++)
		json_object_object_add(g, balloon_stat_name(s), in.stats_valid[s]
				       ? json_object_new_uint64(in.stats[s]) : NULL);
	json_object_object_add(o, "guest_stats", g);
	json_object_object_add(o, "guest_stats_age_ms", in.stats_updates
			       ? json_object_new_uint64(in.stats_age_ns / 1000000) : NULL);
	return o;
}

static bool have_balloon(struct machine *m, struct http_reply *rep)
{
	if (m->balloon)
		return true;
	http_error(rep, 409, "unsupported", "the VM has no balloon device (start keel-vmm with "
		   "--balloon)");
	return false;
}

void control_get_balloon(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;

	if (!have_balloon(m, rep))
		return;
	rep->body = balloon_json(m);
	/* What this reply shows is the last report; ask for the next now. */
	virtio_balloon_request_stats(m->balloon);
}

void control_put_balloon(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "size_mib", NULL };
	struct machine *m = ctx;
	uint64_t max = (m->ram.size - CONFIG_MIN_MEMORY) >> 20, size;
	int r;

	if (!http_check_fields(req->body, fields, rep) || !have_balloon(m, rep))
		return;
	r = http_get_u64(req->body, "size_mib", 0, UINT64_MAX, &size, rep);
	if (r == -EINVAL)
		return;
	if (r) {
		http_error(rep, 400, "bad_field", "field 'size_mib' (the balloon's size) is required");
		return;
	}
	if (size > max) {
		http_error(rep, 400, "bad_field", "size_mib %" PRIu64 " would leave the guest less than "
			   "%llu of its %" PRIu64 " MiB (at most %" PRIu64 ")", size,
			   CONFIG_MIN_MEMORY >> 20, m->ram.size >> 20, max);
		return;
	}
	virtio_balloon_set_target(m->balloon, size * (MiB / BALLOON_PAGE));
	log_info("balloon: size %" PRIu64 " MiB through the API", size);
	rep->body = balloon_json(m);
}
