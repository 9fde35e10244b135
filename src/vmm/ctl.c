// SPDX-License-Identifier: Apache-2.0
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api/http_client.h"
#include "keel/compiler.h"
#include "vmm/ctl.h"
#include "vmm/ctl_internal.h"

#define DEFAULT_TIMEOUT_MS 120000

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: keel-vmm ctl [--json] [--timeout SECONDS] SOCKET COMMAND [ARGS]\n"
		"Drives a running keel-vmm through its control API (--api-socket SOCKET).\n"
		"\n"
		"Commands:\n"
		"  info                  the VM's state and configuration\n"
		"  pause | resume        park the vCPUs and hold guest time / let them run on\n"
		"  power-button          press the ACPI power button (the guest shuts down)\n"
		"  reset                 reset the VM (a reboot; exit with --no-reboot)\n"
		"  stop                  stop the VM at once; keel-vmm exits 0\n"
		"  stats vcpus           per-vCPU exits by reason and handling times\n"
		"  stats devices         per-device counters\n"
		"  snapshot DIR          save the VM into DIR (restore with keel-vmm --restore DIR)\n"
		"  migrate tcp:HOST:PORT [MAX_DOWNTIME_MS]   live-migrate to a keel-vmm --incoming\n"
		"  migration             the migration's progress or outcome\n"
		"  migrate-cancel        cancel it before the switch-over\n"
		"  request METHOD PATH [JSON]   any API call; prints the JSON reply\n"
		"%s"
		"\n"
		"Options: --json prints the API's JSON reply as it came; --timeout (default\n"
		"%d s) bounds the wait for a reply.\n"
		"Exit status: 0 done, 1 the VM refused (the reason is printed), 2 bad\n"
		"command line, 3 no VM answers at SOCKET.\n",
		ctl_resources_usage, DEFAULT_TIMEOUT_MS / 1000);
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static void print_info(json_object *o)
{
	json_object *cfg = member(o, "config");

	printf("name: %s\nstate: %s\nboots: %s\n", str(o, "name"), str(o, "state"), str(o, "boots"));
	if (cfg) {
		printf("cpus: %s\nmemory: %s MiB\n", str(cfg, "cpus"), str(cfg, "memory_mib"));
		printf("kernel: %s\ninitrd: %s\ncmdline: %s\nconsole: %s\n", str(cfg, "kernel"),
		       str(cfg, "initrd"), str(cfg, "cmdline"), str(cfg, "console"));
	}
}

static void print_vcpus(json_object *o)
{
	json_object *list = member(o, "vcpus");

	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json_object *v = json_object_array_get_idx(list, i), *ex = member(v, "exits");
		json_object *io = member(v, "io_handling");

		printf("vcpu %s (apic %s): %s exits", str(v, "index"), str(v, "apic_id"),
		       str(v, "exits_total"));
		if (ex) {
			json_object_object_foreach(ex, k, n) {
				if (json_object_get_uint64(n))
					printf(" %s=%" PRIu64, k, json_object_get_uint64(n));
			}
		}
		if (io && json_object_get_uint64(member(io, "count")))
			printf("; io handling mean %" PRIu64 " ns",
			       json_object_get_uint64(member(io, "sum_ns")) /
				       json_object_get_uint64(member(io, "count")));
		printf("\n");
	}
}

static void print_devices(json_object *o)
{
	json_object *list = member(o, "devices");

	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json_object *d = json_object_array_get_idx(list, i), *c = member(d, "counters");

		printf("%s (%s):", str(d, "name"), str(d, "type"));
		if (c) {
			json_object_object_foreach(c, k, n)
				printf(" %s=%s", k, json_object_get_string(n));
		}
		printf("\n");
	}
}

/* One call; prints the reply with `print` (or raw with --json). */
static int call(struct ctl *c, const char *method, const char *path, const char *body,
		void (*print)(json_object *))
{
	struct http_client_reply rep;
	json_object *o, *e;
	char err[512];
	int rc;

	if (http_client_request(c->socket, method, path, body, c->timeout_ms, &rep, err, sizeof(err))) {
		fprintf(stderr, "keel-vmm ctl: %s\n", err);
		return CTL_UNREACHABLE;
	}
	o = json_tokener_parse(rep.body);
	if (!o) {
		fprintf(stderr, "keel-vmm ctl: the reply (HTTP %d) is not JSON\n", rep.status);
		http_client_reply_free(&rep);
		return CTL_UNREACHABLE;
	}
	rc = rep.status >= 200 && rep.status < 300 ? CTL_OK : CTL_REFUSED;
	if (c->json || !print) {
		printf("%s\n", rep.body);
	} else if (rc == CTL_OK) {
		print(o);
	}
	if (rc != CTL_OK && (e = member(o, "error")))
		fprintf(stderr, "keel-vmm ctl: %s (HTTP %d, %s)\n", str(e, "message"), rep.status,
			str(e, "code"));
	else if (rc != CTL_OK)
		fprintf(stderr, "keel-vmm ctl: HTTP %d\n", rep.status);
	json_object_put(o);
	http_client_reply_free(&rep);
	return rc;
}

static void print_state(json_object *o)
{
	printf("state: %s\n", str(o, "state"));
}

static void print_members(json_object *o)
{
	json_object_object_foreach(o, k, v)
		printf("%s: %s\n", k, v ? json_object_get_string(v) : "-");
}

static const struct {
	const char *name;
	const char *method;
	const char *path;
	void (*print)(json_object *);
} simple[] = {
	{ "info", "GET", "/v1/vm", print_info },
	{ "pause", "POST", "/v1/vm/pause", print_state },
	{ "resume", "POST", "/v1/vm/resume", print_state },
	{ "power-button", "POST", "/v1/vm/power-button", print_state },
	{ "reset", "POST", "/v1/vm/reset", print_state },
	{ "stop", "POST", "/v1/vm/stop", print_state },
	{ "migration", "GET", "/v1/vm/migration", print_members },
	{ "migrate-cancel", "POST", "/v1/vm/migration/cancel", print_members },
};

/* A JSON body built with json-c, so paths and URIs are escaped right. */
static int call_with(struct ctl *c, const char *method, const char *path, json_object *body,
		     void (*print)(json_object *))
{
	int rc = call(c, method, path, json_object_to_json_string(body), print);

	json_object_put(body);
	return rc;
}

static int PRINTF_LIKE(1, 2) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keel-vmm ctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see keel-vmm ctl --help)\n");
	return CTL_USAGE;
}

static int run_command(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];

	for (unsigned i = 0; i < ARRAY_SIZE(simple); i++) {
		if (strcmp(cmd, simple[i].name))
			continue;
		if (argc != 1)
			return bad_usage("'%s' takes no arguments", cmd);
		return call(c, simple[i].method, simple[i].path, NULL, simple[i].print);
	}
	if (!strcmp(cmd, "stats")) {
		if (argc == 2 && !strcmp(argv[1], "vcpus"))
			return call(c, "GET", "/v1/vm/stats/vcpus", NULL, print_vcpus);
		if (argc == 2 && !strcmp(argv[1], "devices"))
			return call(c, "GET", "/v1/vm/stats/devices", NULL, print_devices);
		return bad_usage("%s: use 'stats vcpus' or 'stats devices'", cmd);
	}
	if (!strcmp(cmd, "snapshot")) {
		json_object *b = json_object_new_object();

		if (argc != 2) {
			json_object_put(b);
			return bad_usage("%s: give the snapshot's directory", cmd);
		}
		json_object_object_add(b, "path", json_object_new_string(argv[1]));
		return call_with(c, "PUT", "/v1/vm/snapshot", b, print_members);
	}
	if (!strcmp(cmd, "migrate")) {
		json_object *b;
		char *end = NULL;
		long ms = 0;

		if (argc < 2 || argc > 3 || (argc == 3 && ((ms = strtol(argv[2], &end, 10)) <= 0 || *end)))
			return bad_usage("%s: give tcp:HOST:PORT and optionally the maximum downtime in ms", cmd);
		b = json_object_new_object();
		json_object_object_add(b, "uri", json_object_new_string(argv[1]));
		if (argc == 3)
			json_object_object_add(b, "max_downtime_ms", json_object_new_int64(ms));
		return call_with(c, "POST", "/v1/vm/migrate", b, print_state);
	}
	if (!strcmp(cmd, "request")) {
		if (argc < 3 || argc > 4)
			return bad_usage("%s: give METHOD PATH [JSON]", cmd);
		return call(c, argv[1], argv[2], argc == 4 ? argv[3] : NULL, NULL);
	}
	return ctl_resources_command(c, argc, argv);
}

/* For the other commands' files (ctl_internal.h). */
int ctl_call(struct ctl *c, const char *method, const char *path, const char *body,
	     void (*print)(json_object *))
{
	return call(c, method, path, body, print);
}

int ctl_call_with(struct ctl *c, const char *method, const char *path, json_object *body,
		  void (*print)(json_object *))
{
	return call_with(c, method, path, body, print);
}

int ctl_usage_error(const char *what)
{
	return bad_usage("%s", what);
}

const char *ctl_str(json_object *o, const char *key)
{
	return str(o, key);
}

json_object *ctl_member(json_object *o, const char *key)
{
	return member(o, key);
}

void ctl_print_members(json_object *o)
{
	print_members(o);
}

int ctl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .timeout_ms = DEFAULT_TIMEOUT_MS };
	int opt;

	opterr = 0;
	optind = 1;
	/* "+": options only before SOCKET, so a command's own arguments pass untouched. */
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (opt) {
		case 'j':
			c.json = true;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 86400)
				return bad_usage("--timeout '%s': give 1 to 86400 seconds", optarg);
			c.timeout_ms = (int)v * 1000;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind < 2)
		return bad_usage("give a SOCKET and a COMMAND");
	c.socket = argv[optind];
	return run_command(&c, argc - optind - 1, argv + optind + 1);
}
