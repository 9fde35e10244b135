// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/parse.h"
#include "virtio/options.h"
#include "vmm/layout.h"
#include "vmm/numa.h"

#define NODE_SYSFS "/sys/devices/system/node"
#define MIN_NODE_MEMORY (32 * MiB)
#define NODE_ALIGN (2 * MiB)

static const char *const policy_names[] = { "none", "bind", "preferred", "interleave" };

const char *numa_policy_name(enum numa_policy p)
{
	return policy_names[p];
}

int numa_policy_parse(const char *s, enum numa_policy *out)
{
	for (unsigned i = 0; i < ARRAY_SIZE(policy_names); i++) {
		if (!strcmp(s, policy_names[i])) {
			*out = (enum numa_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct parse_ctx {
	struct numa_node_config *n;
	unsigned index;
	bool have_cpus, have_memory;
};

/* "A" or "A-B" into first and count. */
static int parse_range(const char *s, unsigned *first, unsigned *count)
{
	uint8_t bits[32];
	int lo = -1, hi = -1;

	if (strchr(s, ',') || parse_id_list(s, bits, 256))
		return -EINVAL;
	for (int i = 0; i < 256; i++) {
		if (bits[i / 8] & (1u << (i % 8))) {
			if (lo < 0)
				lo = i;
			hi = i;
		}
	}
	*first = (unsigned)lo;
	*count = (unsigned)(hi - lo + 1);
	return 0;
}

static int node_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct parse_ctx *c = ctx;
	struct numa_node_config *n = c->n;

	if (!strcmp(key, "cpus")) {
		if (parse_range(val, &n->first_cpu, &n->nr_cpus) < 0) {
			snprintf(err, errlen, "--numa node %u: cpus '%s' is not a vCPU or a range of "
				 "vCPUs like 0-3", c->index, val);
			return -EINVAL;
		}
		c->have_cpus = true;
	} else if (!strcmp(key, "memory")) {
		if (val[0] == '-' || parse_size(val, MiB, &n->memory) < 0 || !n->memory) {
			snprintf(err, errlen, "--numa node %u: memory '%s' is not a size (examples: "
				 "512M, 2G)", c->index, val);
			return -EINVAL;
		}
		c->have_memory = true;
	} else if (!strcmp(key, "host-nodes")) {
		uint8_t bits[NUMA_MAX_HOST_NODES / 8];
		int r = parse_id_list(val, bits, NUMA_MAX_HOST_NODES);

		if (r) {
			snprintf(err, errlen, "--numa node %u: host-nodes '%s' is not %s", c->index, val,
				 r == -ERANGE ? "below 64" : "a host node or a list like 0-1");
			return -EINVAL;
		}
		memcpy(&n->host_nodes, bits, sizeof(bits));
	} else if (!strcmp(key, "policy")) {
		if (numa_policy_parse(val, &n->policy) < 0 || n->policy == NUMA_POLICY_NONE) {
			snprintf(err, errlen, "--numa node %u: policy '%s' is not bind, preferred or "
				 "interleave", c->index, val);
			return -EINVAL;
		}
	} else if (!strcmp(key, "distances")) {
		char copy[64], *save = NULL, *tok;
		unsigned k = 0;
		uint64_t d;

		snprintf(copy, sizeof(copy), "%s", val);
		for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
			if (k == NUMA_MAX_NODES || parse_u64(tok, 254, &d) < 0 || d < NUMA_DISTANCE_LOCAL) {
				snprintf(err, errlen, "--numa node %u: distances '%s' is not a list of "
					 "10 to 254 like 10:20", c->index, val);
				return -EINVAL;
			}
			n->distance[k++] = (uint8_t)d;
		}
		n->distances_given = true;
	} else {
		snprintf(err, errlen, "--numa: unknown key '%s' (cpus, memory, host-nodes, policy, "
			 "distances)", key);
		return -EINVAL;
	}
	return 0;
}

int numa_parse_node(const char *arg, struct numa_config *c, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .index = c->nr_nodes };
	struct numa_node_config *n;
	int r;

	if (c->nr_nodes == NUMA_MAX_NODES) {
		snprintf(err, errlen, "--numa: at most %u nodes", NUMA_MAX_NODES);
		return -EINVAL;
	}
	n = &c->node[c->nr_nodes];
	memset(n, 0, sizeof(*n));
	ctx.n = n;
	r = opts_parse("--numa", arg, node_opt, &ctx, err, errlen);
	if (r)
		return r;
	if (!ctx.have_cpus || !ctx.have_memory) {
		snprintf(err, errlen, "--numa node %u: give cpus= and memory=", ctx.index);
		return -EINVAL;
	}
	if (n->host_nodes && n->policy == NUMA_POLICY_NONE)
		n->policy = NUMA_POLICY_BIND;
	if (!n->host_nodes && n->policy != NUMA_POLICY_NONE) {
		snprintf(err, errlen, "--numa node %u: policy=%s needs host-nodes=", ctx.index,
			 policy_names[n->policy]);
		return -EINVAL;
	}
	if (n->policy == NUMA_POLICY_PREFERRED && (n->host_nodes & (n->host_nodes - 1))) {
		snprintf(err, errlen, "--numa node %u: policy=preferred takes one host node", ctx.index);
		return -EINVAL;
	}
	c->nr_nodes++;
	return 0;
}

int numa_check_layout(const struct numa_config *c, unsigned cpus, uint64_t memory,
		      uint64_t page_size, char *err, size_t errlen)
{
	uint64_t align = MAX(page_size, (uint64_t)NODE_ALIGN), sum = 0;
	unsigned next = 0;

	for (unsigned i = 0; i < c->nr_nodes; i++) {
		const struct numa_node_config *n = &c->node[i];

		if (n->first_cpu + n->nr_cpus > cpus) {
			snprintf(err, errlen, "--numa node %u: cpus %u-%u is beyond the VM's %u vCPUs "
				 "(0-%u)", i, n->first_cpu, n->first_cpu + n->nr_cpus - 1, cpus, cpus - 1);
			return -EINVAL;
		}
		if (n->first_cpu < next) {
			unsigned owner = 0;

			while (c->node[owner].first_cpu + c->node[owner].nr_cpus <= n->first_cpu)
				owner++;
			snprintf(err, errlen, "--numa node %u: vCPU %u is already in node %u (a vCPU "
				 "belongs to one node; nodes take the vCPUs in order, each one block)", i,
				 n->first_cpu, owner);
			return -EINVAL;
		}
		if (n->first_cpu > next) {
			char gap[32];

			snprintf(gap, sizeof(gap), n->first_cpu - next > 1 ? "s %u-%u are" : " %u is", next,
				 n->first_cpu - 1);
			snprintf(err, errlen, "--numa node %u: vCPU%s in no node (nodes take the vCPUs in "
				 "order, each one block, node 0 from vCPU 0)", i, gap);
			return -EINVAL;
		}
		if (n->nr_cpus != c->node[0].nr_cpus) {
			snprintf(err, errlen, "--numa: node %u has %u vCPUs and node 0 has %u; every node "
				 "needs as many (each node is one socket)", i, n->nr_cpus,
				 c->node[0].nr_cpus);
			return -EINVAL;
		}
		next += n->nr_cpus;
		if (n->memory < MIN_NODE_MEMORY || n->memory % align) {
			snprintf(err, errlen, "--numa node %u: memory %" PRIu64 " MiB must be at least %llu "
				 "MiB and a multiple of %" PRIu64 " MiB", i, n->memory >> 20,
				 MIN_NODE_MEMORY >> 20, align >> 20);
			return -EINVAL;
		}
		sum += n->memory;
		for (unsigned j = 0; n->distances_given && j < NUMA_MAX_NODES; j++) {
			bool bad = j < c->nr_nodes ? (i == j) != (n->distance[j] == NUMA_DISTANCE_LOCAL)
						    : n->distance[j] != 0;

			if (bad) {
				snprintf(err, errlen, "--numa node %u: distances needs %u value%s: 10 for "
					 "node %u itself, 11 to 254 for the others", i, c->nr_nodes,
					 c->nr_nodes == 1 ? "" : "s", i);
				return -EINVAL;
			}
		}
	}
	if (next != cpus) {
		snprintf(err, errlen, "--numa: the nodes have vCPUs 0-%d; the VM has %u (every vCPU needs "
			 "a node)", (int)next - 1, cpus);
		return -EINVAL;
	}
	if (sum != memory) {
		snprintf(err, errlen, "--numa: the nodes' memory adds up to %" PRIu64 " MiB; --memory is "
			 "%" PRIu64 " MiB", sum >> 20, memory >> 20);
		return -EINVAL;
	}
	return 0;
}

static int host_node_list(const char *file, uint64_t *mask)
{
	char path[128], line[256];
	uint8_t bits[NUMA_MAX_HOST_NODES / 8];
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), NODE_SYSFS "/%s", file);
	f = fopen(path, "re");
	if (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		r = *line ? parse_id_list(line, bits, NUMA_MAX_HOST_NODES) : 0;
		if (!*line)
			memset(bits, 0, sizeof(bits));
		if (!r)
			memcpy(mask, bits, sizeof(bits));
	}
	if (f)
		fclose(f);
	return r;
}

/* "0-1,3" for a mask of host nodes. */
static void format_nodes(uint64_t mask, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < 64 && used < len; i++) {
		unsigned j = i;

		if (!(mask & (1ULL << i)))
			continue;
		while (j + 1 < 64 && (mask & (1ULL << (j + 1))))
			j++;
		used += (size_t)snprintf(out + used, len - used, j > i ? "%s%u-%u" : "%s%u",
					 used ? "," : "", i, j);
		i = j;
	}
}

int numa_check_host(const struct numa_config *c, char *err, size_t errlen)
{
	uint64_t online, with_memory;

	for (unsigned i = 0; i < c->nr_nodes; i++) {
		uint64_t want = c->node[i].host_nodes;

		if (!want)
			continue;
		if (host_node_list("online", &online) || host_node_list("has_memory", &with_memory)) {
			snprintf(err, errlen, "--numa: this host has no NUMA information (%s)", NODE_SYSFS);
			return -ENOENT;
		}
		for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++) {
			if (!(want & (1ULL << h)))
				continue;
			if (!(online & (1ULL << h))) {
				char list[128];

				format_nodes(online, list, sizeof(list));
				snprintf(err, errlen, "--numa node %u: host node %u does not exist (this host "
					 "has nodes %s)", i, h, list);
				return -EINVAL;
			}
			if (!(with_memory & (1ULL << h))) {
				snprintf(err, errlen, "--numa node %u: host node %u has no memory", i, h);
				return -EINVAL;
			}
		}
	}
	return 0;
}

struct cpu_topology numa_topology(const struct numa_config *c, unsigned cpus)
{
	if (!c->nr_nodes)
		return cpu_topology_flat(cpus);
	return (struct cpu_topology){ .sockets = c->nr_nodes, .cores = c->node[0].nr_cpus,
				      .threads = 1 };
}

unsigned numa_node_of_cpu(const struct numa_config *c, unsigned cpu)
{
	for (unsigned i = 0; i < c->nr_nodes; i++)
		if (cpu >= c->node[i].first_cpu && cpu < c->node[i].first_cpu + c->node[i].nr_cpus)
			return i;
	return 0;
}

static uint64_t node_offset(const struct numa_config *c, unsigned i)
{
	uint64_t off = 0;

	for (unsigned j = 0; j < i; j++)
		off += c->node[j].memory;
	return off;
}

static const int policy_mode[] = { MPOL_DEFAULT, MPOL_BIND, MPOL_PREFERRED, MPOL_INTERLEAVE };

int numa_bind(const struct numa_config *c, struct guest_ram *ram, bool move, char *err,
	      size_t errlen)
{
	for (unsigned i = 0; i < c->nr_nodes; i++) {
		const struct numa_node_config *n = &c->node[i];
		unsigned long mask = (unsigned long)n->host_nodes;
		unsigned flags = move ? MPOL_MF_MOVE | MPOL_MF_STRICT : 0;

		if (syscall(SYS_mbind, ram->base + node_offset(c, i), n->memory,
			    policy_mode[n->policy], n->policy ? &mask : NULL,
			    n->policy ? NUMA_MAX_HOST_NODES + 1 : 0, flags) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot bind node %u's memory to host nodes 0x%lx (%s): %s",
				 i, mask, policy_names[n->policy], strerror(e));
			return -e;
		}
	}
	return 0;
}

void numa_acpi_config(const struct numa_config *c, unsigned cpus, const struct guest_ram *ram,
		      struct numa_acpi *s)
{
	unsigned nm = 0;

	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < cpus && i < ARRAY_SIZE(s->cpu_node); i++)
		s->cpu_node[i] = numa_node_of_cpu(c, i);
	for (unsigned i = 0; i < c->nr_nodes; i++) {
		uint64_t off = node_offset(c, i), end = off + c->node[i].memory;

		/* RAM offsets map to guest addresses around the PCI hole (guest_ram.h). */
		if (off < ram->below_4g)
			s->mem[nm++] = (struct acpi_numa_mem){ off, MIN(end, ram->below_4g) - off, i };
		if (end > ram->below_4g) {
			uint64_t from = MAX(off, ram->below_4g);

			s->mem[nm++] = (struct acpi_numa_mem){
				LAYOUT_RAM_ABOVE_4G_START + from - ram->below_4g, end - from, i };
		}
		for (unsigned j = 0; j < c->nr_nodes; j++)
			s->distance[i * c->nr_nodes + j] =
				c->node[i].distances_given ? c->node[i].distance[j]
				: i == j ? NUMA_DISTANCE_LOCAL : NUMA_DISTANCE_REMOTE;
	}
	s->cfg = (struct acpi_numa_config){
		.nr_nodes = c->nr_nodes, .cpu_node = s->cpu_node, .nr_mem = nm, .mem = s->mem,
		.distance = s->distance,
	};
}

int numa_host_usage(const struct guest_ram *ram, uint64_t off, uint64_t len,
		    uint64_t pages_per_node[NUMA_MAX_HOST_NODES])
{
	enum { BATCH = 1024, MAX_SAMPLES = 65536 };
	uint64_t pages = len / GUEST_RAM_PAGE, stride = MAX(pages / MAX_SAMPLES, 1ULL);
	void *addr[BATCH];
	int status[BATCH];

	memset(pages_per_node, 0, NUMA_MAX_HOST_NODES * sizeof(uint64_t));
	for (uint64_t p = 0; p < pages;) {
		unsigned n = 0;

		for (; n < BATCH && p < pages; n++, p += stride)
			addr[n] = ram->base + off + p * GUEST_RAM_PAGE;
		/* With no target nodes, move_pages only reports where each page is. */
		if (syscall(SYS_move_pages, 0, n, addr, NULL, status, 0) < 0)
			return -errno;
		for (unsigned k = 0; k < n; k++)
			if (status[k] >= 0 && status[k] < NUMA_MAX_HOST_NODES)
				pages_per_node[status[k]] += stride;
	}
	return 0;
}
