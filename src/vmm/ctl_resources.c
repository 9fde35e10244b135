// SPDX-License-Identifier: Apache-2.0
/*
 * keel-vmm ctl's resource-control commands: qos, qos-disk, qos-group,
 * qos-net, balloon, memory, cpus, pin, numa (the API's "Resource control"
 * endpoints, docs/api.md). Limits are written as on the command line
 * (iops=500 iops-burst=1000, tx-average=50M): each limit named is replaced
 * whole, iops=0 removes it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/throttle.h"
#include "keel/compiler.h"
#include "keel/parse.h"
#include "net/shaper.h"
#include "vmm/control.h"
#include "vmm/ctl.h"
#include "vmm/ctl_internal.h"

const char ctl_resources_usage[] =
	"  qos                   disk, disk group and NIC limits, and what they held back\n"
	"  qos-disk N LIMIT...   set disk N's limits: iops=500 iops-burst=2000 bw-wr=50M ...\n"
	"  qos-group NAME LIMIT...  the same for a --disk-group\n"
	"  qos-net N SHAPING...  NIC N: tx-average=50M tx-peak=100M tx-burst=10M rx-... \n"
	"  balloon [SIZE]        the balloon and the guest's statistics; SIZE (MiB, or M/G)\n"
	"                        inflates or deflates it to that size\n"
	"  memory [KEY=on|off...]  guest RAM: backing, residency, KSM; mergeable, mlock, thp\n"
	"  cpus                  vCPU and I/O threads with their host CPUs\n"
	"  pin WHAT=CPUS...      vcpuN=2, vcpus=2-5, io=0-1 (none removes a pin)\n"
	"  numa [NODE [host-nodes=LIST] [policy=P]]  guest nodes and where their memory is;\n"
	"                        with NODE, bind it elsewhere (its pages move)\n";

static int PRINTF_LIKE(1, 2) usage_error(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ctl_usage_error(msg);
}

static void print_limit_set(json_object *limits)
{
	json_object_object_foreach(limits, k, v) {
		if (v)
			printf(" %s=%s/%s/%s", k, ctl_str(v, "average"), ctl_str(v, "burst"),
			       ctl_str(v, "peak"));
	}
}

static void print_one(json_object *o, const char *kind)
{
	json_object *lim = ctl_member(o, "limits"), *st;

	if (!strcmp(kind, "disk"))
		printf("disk %s (%s) group %s:", ctl_str(o, "disk"), ctl_str(o, "path"),
		       ctl_str(o, "group"));
	else if (!strcmp(kind, "group"))
		printf("group %s:", ctl_str(o, "group"));
	else
		printf("net %s (tap %s):", ctl_str(o, "net"), ctl_str(o, "tap"));
	if (lim)
		print_limit_set(lim);
	st = ctl_member(o, "throttle") ? ctl_member(o, "throttle") : ctl_member(o, "shaper");
	if (st) {
		printf(" |");
		json_object_object_foreach(st, k, v)
			printf(" %s=%s", k, json_object_get_string(v));
	}
	printf("\n");
}

static void print_disk(json_object *o)
{
	print_one(o, "disk");
}

static void print_group(json_object *o)
{
	print_one(o, "group");
}

static void print_net(json_object *o)
{
	print_one(o, "net");
}

static void print_qos(json_object *o)
{
	static const char *const lists[] = { "disks", "disk_groups", "nets" };
	static const char *const kinds[] = { "disk", "group", "net" };

	for (unsigned i = 0; i < 3; i++) {
		json_object *l = ctl_member(o, lists[i]);

		for (size_t k = 0; l && k < json_object_array_length(l); k++)
			print_one(json_object_array_get_idx(l, k), kinds[i]);
	}
}

/* The limit family a disk key belongs to ("iops-rd-burst" -> iops-rd). */
static int disk_family(const char *key)
{
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++) {
		size_t n = strlen(blk_limit_name(l));

		if (!strncmp(key, blk_limit_name(l), n) &&
		    (!key[n] || !strcmp(key + n, "-burst") || !strcmp(key + n, "-peak")))
			return (int)l;
	}
	return -1;
}

/* KEY=VALUE words into the disk limits they name, added to body; cmd names them in errors. */
static int disk_body(json_object *body, const char *cmd, int argc, char **argv)
{
	struct blk_limits lim = { 0 };
	bool named[BLK_LIMIT_COUNT] = { false };
	char err[256];

	for (int i = 0; i < argc; i++) {
		char key[32], *eq = strchr(argv[i], '=');
		int l;

		if (!eq || (size_t)(eq - argv[i]) >= sizeof(key))
			return usage_error("'%s' is not KEY=VALUE", argv[i]);
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		l = disk_family(key);
		if (l < 0)
			return usage_error("'%s' is not a disk limit (iops, iops-rd, iops-wr, bw, bw-rd, "
					   "bw-wr, each also -burst or -peak)", key);
		if (blk_limits_parse_key(&lim, cmd, key, eq + 1, err, sizeof(err)) < 0)
			return ctl_usage_error(err);
		named[l] = true;
	}
	if (blk_limits_check(&lim, cmd, err, sizeof(err)))
		return ctl_usage_error(err);
	for (unsigned l = 0; l < BLK_LIMIT_COUNT; l++)
		if (named[l])
			json_object_object_add(body, blk_limit_api_name(l), control_limit_json(&lim.l[l]));
	return CTL_OK;
}

static int net_body(json_object *body, int argc, char **argv)
{
	struct net_limits lim = { 0 };
	bool named[NET_DIRS] = { false };
	char err[256];

	for (int i = 0; i < argc; i++) {
		char key[32], *eq = strchr(argv[i], '=');
		int r;

		if (!eq || (size_t)(eq - argv[i]) >= sizeof(key))
			return usage_error("'%s' is not KEY=VALUE", argv[i]);
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		r = net_limits_parse_key(&lim, "qos-net", key, eq + 1, err, sizeof(err));
		if (r < 0)
			return ctl_usage_error(err);
		if (!r)
			return usage_error("'%s' is not tx- or rx-average, -peak or -burst", key);
		named[key[0] == 't' ? NET_TX : NET_RX] = true;
	}
	if (net_limits_check(&lim, "qos-net", err, sizeof(err)))
		return ctl_usage_error(err);
	for (unsigned d = 0; d < NET_DIRS; d++)
		if (named[d])
			json_object_object_add(body, net_dir_name(d), control_limit_json(&lim.dir[d]));
	return CTL_OK;
}

static int index_arg(const char *s, uint64_t *out)
{
	return parse_u64(s, 255, out);
}

static int qos_command(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	json_object *b = json_object_new_object();
	uint64_t n = 0;
	int rc;

	if (argc < 3) {
		json_object_put(b);
		return usage_error("%s: give the object and at least one limit", cmd);
	}
	if (strcmp(cmd, "qos-group") && index_arg(argv[1], &n)) {
		json_object_put(b);
		return usage_error("%s: '%s' is not a %s number (0, 1, ...)", cmd, argv[1],
				   strcmp(cmd, "qos-net") ? "disk" : "NIC");
	}
	if (!strcmp(cmd, "qos-group"))
		json_object_object_add(b, "group", json_object_new_string(argv[1]));
	else
		json_object_object_add(b, !strcmp(cmd, "qos-net") ? "net" : "disk",
				       json_object_new_uint64(n));
	rc = !strcmp(cmd, "qos-net") ? net_body(b, argc - 2, argv + 2)
					: disk_body(b, cmd, argc - 2, argv + 2);
	if (rc != CTL_OK) {
		json_object_put(b);
		return rc;
	}
	if (!strcmp(cmd, "qos-net"))
		return ctl_call_with(c, "PUT", "/v1/vm/qos/net", b, print_net);
	if (!strcmp(cmd, "qos-group"))
		return ctl_call_with(c, "PUT", "/v1/vm/qos/disk-group", b, print_group);
	return ctl_call_with(c, "PUT", "/v1/vm/qos/disk", b, print_disk);
}

static int balloon_command(struct ctl *c, int argc, char **argv)
{
	json_object *b;
	uint64_t size;

	if (argc == 1)
		return ctl_call(c, "GET", "/v1/vm/balloon", NULL, ctl_print_members);
	if (argc != 2 || argv[1][0] == '-' || parse_size(argv[1], 1ULL << 20, &size) ||
	    size % (1ULL << 20))
		return usage_error("balloon: give a size in MiB (or with M/G), not '%s'",
				   argc == 2 ? argv[1] : "");
	b = json_object_new_object();
	json_object_object_add(b, "size_mib", json_object_new_uint64(size >> 20));
	return ctl_call_with(c, "PUT", "/v1/vm/balloon", b, ctl_print_members);
}

static int memory_command(struct ctl *c, int argc, char **argv)
{
	json_object *b;

	if (argc == 1)
		return ctl_call(c, "GET", "/v1/vm/memory", NULL, ctl_print_members);
	b = json_object_new_object();
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[16];

		if (!eq || (size_t)(eq - argv[i]) >= sizeof(key) ||
		    (strcmp(eq + 1, "on") && strcmp(eq + 1, "off"))) {
			json_object_put(b);
			return usage_error("memory: '%s' is not KEY=on or KEY=off", argv[i]);
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		json_object_object_add(b, key, json_object_new_boolean(!strcmp(eq + 1, "on")));
	}
	return ctl_call_with(c, "PUT", "/v1/vm/memory", b, ctl_print_members);
}

static void print_cpus(json_object *o)
{
	json_object *l = ctl_member(o, "vcpus"), *io = ctl_member(o, "io");

	for (size_t i = 0; l && i < json_object_array_length(l); i++) {
		json_object *v = json_object_array_get_idx(l, i);

		printf("vcpu%s tid %s node %s: host CPUs %s (pin %s)\n", ctl_str(v, "index"),
		       ctl_str(v, "tid"), ctl_str(v, "node"), ctl_str(v, "affinity"), ctl_str(v, "pin"));
	}
	if (io) {
		json_object *t = ctl_member(io, "threads");

		printf("io (pin %s):", ctl_str(io, "pin"));
		for (size_t i = 0; t && i < json_object_array_length(t); i++) {
			json_object *v = json_object_array_get_idx(t, i);

			printf(" %s/%s=%s", ctl_str(v, "name"), ctl_str(v, "tid"), ctl_str(v, "affinity"));
		}
		printf("\n");
	}
}

static int pin_command(struct ctl *c, int argc, char **argv)
{
	json_object *b = json_object_new_object();

	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[32];

		if (!eq || eq == argv[i] || !eq[1] || (size_t)(eq - argv[i]) >= sizeof(key)) {
			json_object_put(b);
			return usage_error("pin: '%s' is not WHAT=CPUS", argv[i]);
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		json_object_object_add(b, key, strcmp(eq + 1, "none") ? json_object_new_string(eq + 1)
								      : NULL);
	}
	if (argc < 2) {
		json_object_put(b);
		return ctl_usage_error("pin: give WHAT=CPUS (vcpuN, vcpus or io)");
	}
	return ctl_call_with(c, "PUT", "/v1/vm/cpus/pinning", b, print_cpus);
}

static void print_numa(json_object *o)
{
	json_object *l = ctl_member(o, "nodes");

	for (size_t i = 0; l && i < json_object_array_length(l); i++) {
		json_object *n = json_object_array_get_idx(l, i), *u = ctl_member(n, "host_usage_mib");

		printf("node %s: vCPUs %s, %s MiB, host nodes %s (%s); on the host:", ctl_str(n, "node"),
		       ctl_str(n, "cpus"), ctl_str(n, "memory_mib"), ctl_str(n, "host_nodes"),
		       ctl_str(n, "policy"));
		if (u) {
			json_object_object_foreach(u, k, v)
				printf(" node %s %s MiB", k, json_object_get_string(v));
		}
		printf("\n");
	}
}

static int numa_command(struct ctl *c, int argc, char **argv)
{
	json_object *b;
	uint64_t node;

	if (argc == 1)
		return ctl_call(c, "GET", "/v1/vm/numa", NULL, print_numa);
	if (index_arg(argv[1], &node))
		return usage_error("numa: '%s' is not a node number", argv[1]);
	b = json_object_new_object();
	json_object_object_add(b, "node", json_object_new_uint64(node));
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "host-nodes=", 11)) {
			json_object_object_add(b, "host_nodes", json_object_new_string(argv[i] + 11));
		} else if (!strncmp(argv[i], "policy=", 7)) {
			json_object_object_add(b, "policy", json_object_new_string(argv[i] + 7));
		} else {
			json_object_put(b);
			return usage_error("numa: '%s' is not host-nodes=LIST or policy=P", argv[i]);
		}
	}
	return ctl_call_with(c, "PUT", "/v1/vm/numa", b, print_numa);
}

int ctl_resources_command(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "qos"))
		return argc == 1 ? ctl_call(c, "GET", "/v1/vm/qos", NULL, print_qos)
				 : ctl_usage_error("'qos' takes no arguments");
	if (!strcmp(cmd, "qos-disk") || !strcmp(cmd, "qos-group") || !strcmp(cmd, "qos-net"))
		return qos_command(c, argc, argv);
	if (!strcmp(cmd, "balloon"))
		return balloon_command(c, argc, argv);
	if (!strcmp(cmd, "memory"))
		return memory_command(c, argc, argv);
	if (!strcmp(cmd, "cpus"))
		return argc == 1 ? ctl_call(c, "GET", "/v1/vm/cpus", NULL, print_cpus)
				 : ctl_usage_error("'cpus' takes no arguments");
	if (!strcmp(cmd, "pin"))
		return pin_command(c, argc, argv);
	if (!strcmp(cmd, "numa"))
		return numa_command(c, argc, argv);
	return usage_error("unknown command '%s'", cmd);
}
