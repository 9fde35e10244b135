// SPDX-License-Identifier: Apache-2.0
/*
 * The control API's endpoints (docs/api.md, docs/api/openapi.yaml). They
 * run on the main thread, between event-loop callbacks, so they act on the
 * machine directly; what they may do in which state is api/vm_state.c's
 * table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hw/acpi_pm.h"
#include "keel/log.h"
#include "vmm/control.h"
#include "vmm/migration.h"
#include "vmm/snapshot_file.h"

bool control_allowed(struct machine *m, enum vm_action a, struct http_reply *rep)
{
	const char *why = vm_state_refusal(machine_state(m), a);

	if (!why)
		return true;
	http_error(rep, 409, "invalid_state", "cannot %s: %s", vm_action_name(a), why);
	return false;
}

static json_object *state_body(struct machine *m)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "state", json_object_new_string(vm_state_name(machine_state(m))));
	return o;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static void get_vm(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	const struct vm_config *c = m->cfg;
	json_object *o = state_body(m), *cfg = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "boots", json_object_new_int((int)m->boots));
	json_object_object_add(cfg, "cpus", json_object_new_int((int)c->cpus));
	json_object_object_add(cfg, "memory_mib", json_object_new_uint64(c->memory >> 20));
	json_object_object_add(cfg, "kernel", str_or_null(c->kernel));
	json_object_object_add(cfg, "initrd", str_or_null(c->initrd));
	json_object_object_add(cfg, "cmdline", str_or_null(c->cmdline));
	json_object_object_add(cfg, "console", str_or_null(c->console));
	json_object_object_add(cfg, "no_reboot", json_object_new_boolean(c->no_reboot));
	json_object_object_add(o, "config", cfg);
	rep->body = o;
}

static void post_pause(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	enum vm_state before = machine_state(m);
	char err[256];

	if (!control_allowed(m, VM_ACTION_PAUSE, rep))
		return;
	if (machine_pause(m, err, sizeof(err))) {
		http_error(rep, 500, "internal", "cannot pause: %s", err);
		return;
	}
	m->state_before_pause = before;
	machine_set_state(m, VM_STATE_PAUSED);
	log_info("VM paused through the API");
	rep->body = state_body(m);
}

static void post_resume(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	char err[256];

	if (!control_allowed(m, VM_ACTION_RESUME, rep))
		return;
	if (machine_resume(m, err, sizeof(err))) {
		http_error(rep, 500, "internal", "cannot resume: %s", err);
		return;
	}
	machine_set_state(m, m->state_before_pause == VM_STATE_SHUTTING_DOWN ? VM_STATE_SHUTTING_DOWN
									    : VM_STATE_RUNNING);
	log_info("VM resumed through the API");
	rep->body = state_body(m);
}

static void post_power_button(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;

	if (!control_allowed(m, VM_ACTION_POWER_BUTTON, rep))
		return;
	acpi_pm_power_button(m->acpi_pm);
	machine_set_state(m, VM_STATE_SHUTTING_DOWN);
	log_info("ACPI power button pressed through the API");
	rep->status = 202;
	rep->body = state_body(m);
}

static void post_reset(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;

	if (!control_allowed(m, VM_ACTION_RESET, rep))
		return;
	log_info("VM reset through the API");
	machine_request_stop(m, VM_STOP_RESET);
	rep->status = 202;
	rep->body = state_body(m);
}

/* After the reply has left: a stop ends the process, which would cut it off. */
static void stop_after_reply(void *arg)
{
	machine_request_stop(arg, VM_STOP_QUIT);
}

static void post_stop(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;

	if (!control_allowed(m, VM_ACTION_STOP, rep))
		return;
	log_info("VM stopped through the API");
	machine_set_state(m, VM_STATE_STOPPED);
	rep->status = 202;
	rep->body = state_body(m);
	rep->after = stop_after_reply;
	rep->after_arg = m;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A running VM is paused for the snapshot and runs on after it; a paused
 * one stays paused. The reply comes when both files are on disk.
 */
static void put_snapshot(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "path", NULL };
	struct machine *m = ctx;
	bool was_running = machine_state(m) != VM_STATE_PAUSED;
	const char *path = NULL;
	uint64_t t0 = mono_ms(), paused_ms;
	char err[512];
	int r;

	if (!http_check_fields(req->body, fields, rep))
		return;
	r = http_get_string(req->body, "path", &path, rep);
	if (r == -EINVAL)
		return;
	if (r || !*path) {
		http_error(rep, 400, "bad_field", "field 'path' (the snapshot's directory) is required");
		return;
	}
	if (!control_allowed(m, VM_ACTION_SNAPSHOT, rep))
		return;
	if (was_running && machine_pause(m, err, sizeof(err))) {
		http_error(rep, 500, "internal", "cannot pause for the snapshot: %s", err);
		return;
	}
	r = snapshot_write(m, path, err, sizeof(err));
	paused_ms = mono_ms() - t0;
	if (was_running) {
		char err2[256];

		if (machine_resume(m, err2, sizeof(err2)))
			log_error("cannot resume after the snapshot: %s", err2);
	}
	if (r) {
		http_error(rep, r == -EEXIST || r == -ENOTDIR ? 409 : 500,
			   r == -EEXIST || r == -ENOTDIR ? "exists" : "internal", "snapshot failed: %s", err);
		return;
	}
	log_info("snapshot written to %s in %llu ms", path, (unsigned long long)paused_ms);
	rep->body = state_body(m);
	json_object_object_add(rep->body, "path", json_object_new_string(path));
	json_object_object_add(rep->body, "duration_ms", json_object_new_uint64(paused_ms));
}

static void post_migrate(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "uri", "max_downtime_ms", NULL };
	struct machine *m = ctx;
	uint64_t downtime = MIG_DEFAULT_MAX_DOWNTIME_MS;
	const char *uri = NULL;
	char err[512];
	int r;

	if (!http_check_fields(req->body, fields, rep))
		return;
	r = http_get_string(req->body, "uri", &uri, rep);
	if (r == -EINVAL || http_get_u64(req->body, "max_downtime_ms", 1, 60000, &downtime, rep) == -EINVAL)
		return;
	if (r) {
		http_error(rep, 400, "bad_field", "field 'uri' (tcp:HOST:PORT of the target) is required");
		return;
	}
	if (!control_allowed(m, VM_ACTION_MIGRATE, rep))
		return;
	r = migration_start(m, uri, downtime, err, sizeof(err));
	if (r) {
		http_error(rep, r == -EINVAL ? 400 : 500, r == -EINVAL ? "bad_field" : "internal",
			   "cannot migrate: %s", err);
		return;
	}
	machine_set_state(m, VM_STATE_MIGRATING);
	log_info("migrating to %s (maximum downtime %llu ms)", uri, (unsigned long long)downtime);
	rep->status = 202;
	rep->body = state_body(m);
}

static void get_migration(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = migration_progress_json(ctx);
}

static void post_migration_cancel(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	int r;

	if (!control_allowed(m, VM_ACTION_MIGRATE_CANCEL, rep))
		return;
	r = migration_cancel(m);
	if (r == -EBUSY) {
		http_error(rep, 409, "invalid_state",
			   "cannot migrate-cancel: the switch-over to the target has begun");
		return;
	}
	/*
	 * The thread stops at its next step and hands the VM back through the
	 * main loop (so it must not be joined here): GET /v1/vm/migration says
	 * "cancelled" and the state returns to running (or paused) then.
	 */
	rep->status = 202;
	rep->body = migration_progress_json(m);
	json_object_object_add(rep->body, "state",
			       json_object_new_string(vm_state_name(machine_state(m))));
}

static void get_vcpu_stats(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = json_object_new_object();
	json_object_object_add(rep->body, "vcpus", control_vcpu_stats(ctx));
}

static void get_device_stats(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = json_object_new_object();
	json_object_object_add(rep->body, "devices", control_device_stats(ctx));
}

static const struct http_route routes[] = {
	{ "GET", "/v1/vm", get_vm, false },
	{ "POST", "/v1/vm/pause", post_pause, false },
	{ "POST", "/v1/vm/resume", post_resume, false },
	{ "POST", "/v1/vm/power-button", post_power_button, false },
	{ "POST", "/v1/vm/reset", post_reset, false },
	{ "POST", "/v1/vm/stop", post_stop, false },
	{ "GET", "/v1/vm/stats/vcpus", get_vcpu_stats, false },
	{ "GET", "/v1/vm/stats/devices", get_device_stats, false },
	{ "PUT", "/v1/vm/snapshot", put_snapshot, true },
	{ "POST", "/v1/vm/migrate", post_migrate, true },
	{ "GET", "/v1/vm/migration", get_migration, false },
	{ "POST", "/v1/vm/migration/cancel", post_migration_cancel, false },
	{ "GET", "/v1/vm/qos", control_get_qos, false },
	{ "PUT", "/v1/vm/qos/disk", control_put_qos_disk, true },
	{ "PUT", "/v1/vm/qos/disk-group", control_put_qos_group, true },
	{ "PUT", "/v1/vm/qos/net", control_put_qos_net, true },
	{ "GET", "/v1/vm/memory", control_get_memory, false },
	{ "PUT", "/v1/vm/memory", control_put_memory, true },
	{ "GET", "/v1/vm/balloon", control_get_balloon, false },
	{ "PUT", "/v1/vm/balloon", control_put_balloon, true },
	{ "GET", "/v1/vm/cpus", control_get_cpus, false },
	{ "PUT", "/v1/vm/cpus/pinning", control_put_pinning, true },
	{ "GET", "/v1/vm/numa", control_get_numa, false },
	{ "PUT", "/v1/vm/numa", control_put_numa, true },
};

int control_start(struct machine *m, char *err, size_t errlen)
{
	m->api = http_server_start(&m->loop, m->cfg->api_socket, routes, ARRAY_SIZE(routes), m,
				   err, errlen);
	return m->api ? 0 : -EINVAL;
}

void control_stop(struct machine *m)
{
	http_server_stop(m->api);
	m->api = NULL;
}
