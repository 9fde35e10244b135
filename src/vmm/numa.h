/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest NUMA: the VM's vCPUs and RAM split into nodes the guest sees in
 * its SRAT and SLIT, each node's RAM bound to host nodes with a memory
 * policy (mbind: bind, preferred or interleave).
 *
 * The layout the guest sees is kept consistent with its CPUID: every node
 * is one socket, so the vCPUs of a node are one contiguous block and every
 * node has as many (node 0 the first vCPUs, node 1 the next, ...). Node 0
 * has the first RAM (the low memory the guest boots from), node 1 the
 * next, each range split around the PCI hole when it crosses it.
 */
#ifndef KEEL_VMM_NUMA_H
#define KEEL_VMM_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi/acpi.h"
#include "vmm/cpuid.h"
#include "vmm/guest_ram.h"

#define NUMA_MAX_NODES 8
#define NUMA_MAX_HOST_NODES 64
#define NUMA_DISTANCE_LOCAL 10
#define NUMA_DISTANCE_REMOTE 20 /* the default between two nodes */

enum numa_policy { NUMA_POLICY_NONE, NUMA_POLICY_BIND, NUMA_POLICY_PREFERRED, NUMA_POLICY_INTERLEAVE };

const char *numa_policy_name(enum numa_policy p);
/* "bind", "preferred", "interleave" (and "none" for the API). 0 or -EINVAL. */
int numa_policy_parse(const char *s, enum numa_policy *out);

struct numa_node_config {
	unsigned first_cpu, nr_cpus;
	uint64_t memory;
	uint64_t host_nodes; /* bit n: host node n; 0: not bound */
	enum numa_policy policy;
	bool distances_given;
	uint8_t distance[NUMA_MAX_NODES];
};

struct numa_config {
	unsigned nr_nodes;
	struct numa_node_config node[NUMA_MAX_NODES];
};

/*
 * One --numa: "cpus=A[-B],memory=SIZE[,host-nodes=LIST][,policy=P]
 * [,distances=D0:D1:...]", appended as the next node. 0, or -EINVAL with
 * one line in err.
 */
int numa_parse_node(const char *arg, struct numa_config *c, char *err, size_t errlen);
/*
 * What the VM can be: the nodes cover vCPUs 0..cpus-1 in order, equally,
 * and their memory adds up to `memory` in multiples of `page_size`
 * (at least 2 MiB); distances are sane. 0, or -EINVAL with one line.
 */
int numa_check_layout(const struct numa_config *c, unsigned cpus, uint64_t memory,
		      uint64_t page_size, char *err, size_t errlen);
/* What this host can do: the host nodes named exist and have memory. 0 or -errno. */
int numa_check_host(const struct numa_config *c, char *err, size_t errlen);

/* Each node one socket of nr_cpus cores; without nodes, cpu_topology_flat(). */
struct cpu_topology numa_topology(const struct numa_config *c, unsigned cpus);
/* The node vCPU `cpu` is in (0 without nodes). */
unsigned numa_node_of_cpu(const struct numa_config *c, unsigned cpu);

/*
 * Binds each node's RAM to its host nodes (before anything touches it;
 * with move, pages already there migrate, for changes at run time).
 * 0, or -errno with one line in err.
 */
int numa_bind(const struct numa_config *c, struct guest_ram *ram, bool move, char *err,
	      size_t errlen);

/* The SRAT/SLIT description; the arrays live in `store`. */
struct numa_acpi {
	struct acpi_numa_config cfg;
	uint32_t cpu_node[256];
	struct acpi_numa_mem mem[2 * NUMA_MAX_NODES];
	uint8_t distance[NUMA_MAX_NODES * NUMA_MAX_NODES];
};
void numa_acpi_config(const struct numa_config *c, unsigned cpus, const struct guest_ram *ram,
		      struct numa_acpi *store);

/* Host nodes whose memory backs [off, +len) of guest RAM now (get_mempolicy per page sample). */
int numa_host_usage(const struct guest_ram *ram, uint64_t off, uint64_t len,
		    uint64_t pages_per_node[NUMA_MAX_HOST_NODES]);

#endif
