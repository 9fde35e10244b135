// SPDX-License-Identifier: Apache-2.0
/*
 * The parts of a VM's configuration that --restore and --incoming take
 * from the snapshot or the source rather than the command line (config.c
 * refuses --balloon and --numa there): the balloon's options and the guest
 * NUMA layout. Each is a section of its own, written only when the VM has
 * it, so a state without them reads as a VM without them.
 *
 *   vm/balloon  bool deflate-on-oom, bool free-page-reporting,
 *               u32 statistics interval (s)
 *   vm/numa     u32 nodes, then per node: u32 first vCPU, u32 vCPUs,
 *               u64 memory, u64 host-node mask, u32 policy, bool distances
 *               given, NUMA_MAX_NODES distance bytes
 *
 * The NUMA layout saved is the one in force (host nodes and policy may have
 * changed through the API since the start).
 */
#include <errno.h>
#include <stdio.h>

#include "keel/compiler.h"
#include "vmm/guest_ram.h"
#include "vmm/vm_snapshot.h"

#define BALLOON_VERSION 1
#define NUMA_VERSION 1
#define MAX_STATS_INTERVAL_S 3600 /* as --balloon stats-interval */

void vm_resources_save(struct machine *m, struct state_writer *w)
{
	const struct vm_config *c = m->cfg;

	if (c->balloon) {
		state_begin(w, "vm/balloon", BALLOON_VERSION);
		state_put_bool(w, c->balloon_opts.deflate_on_oom);
		state_put_bool(w, c->balloon_opts.free_page_reporting);
		state_put_u32(w, c->balloon_opts.stats_interval_s);
		state_end(w);
	}
	if (m->numa.nr_nodes) {
		state_begin(w, "vm/numa", NUMA_VERSION);
		state_put_u32(w, m->numa.nr_nodes);
		for (unsigned i = 0; i < m->numa.nr_nodes; i++) {
			const struct numa_node_config *n = &m->numa.node[i];

			state_put_u32(w, n->first_cpu);
			state_put_u32(w, n->nr_cpus);
			state_put_u64(w, n->memory);
			state_put_u64(w, n->host_nodes);
			state_put_u32(w, n->policy);
			state_put_bool(w, n->distances_given);
			state_put_bytes(w, n->distance, sizeof(n->distance));
		}
		state_end(w);
	}
}

static int load_balloon(struct state_section *s, struct vm_config *cfg, char *err, size_t errlen)
{
	struct virtio_balloon_opts o = { 0 };

	o.deflate_on_oom = state_get_bool(s);
	o.free_page_reporting = state_get_bool(s);
	o.stats_interval_s = state_get_u32(s);
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	if (o.stats_interval_s > MAX_STATS_INTERVAL_S) {
		snprintf(err, errlen, "vm/balloon: statistics every %u s (at most %u)",
			 o.stats_interval_s, MAX_STATS_INTERVAL_S);
		return -EINVAL;
	}
	cfg->balloon = true;
	cfg->balloon_opts = o;
	return 0;
}

static int load_numa(struct state_section *s, struct vm_config *cfg, char *err, size_t errlen)
{
	struct numa_config c = { .nr_nodes = state_get_u32(s) };
	char why[256];

	if (c.nr_nodes == 0 || c.nr_nodes > NUMA_MAX_NODES) {
		snprintf(err, errlen, "vm/numa: %u nodes (1 to %u)", c.nr_nodes, NUMA_MAX_NODES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c.nr_nodes; i++) {
		struct numa_node_config *n = &c.node[i];
		uint32_t policy;

		n->first_cpu = state_get_u32(s);
		n->nr_cpus = state_get_u32(s);
		n->memory = state_get_u64(s);
		n->host_nodes = state_get_u64(s);
		policy = state_get_u32(s);
		n->distances_given = state_get_bool(s);
		state_get_bytes(s, n->distance, sizeof(n->distance));
		if (policy > NUMA_POLICY_INTERLEAVE || (policy == NUMA_POLICY_NONE) != !n->host_nodes) {
			snprintf(err, errlen, "vm/numa: node %u has policy %u with host nodes 0x%llx", i,
				 policy, (unsigned long long)n->host_nodes);
			return -EINVAL;
		}
		n->policy = (enum numa_policy)policy;
	}
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	/* The rules --numa follows; this host's nodes are checked with the rest (config_check_host). */
	if (numa_check_layout(&c, cfg->cpus, cfg->memory,
			      cfg->ram.hugepage_size ? cfg->ram.hugepage_size : GUEST_RAM_PAGE,
			      why, sizeof(why))) {
		snprintf(err, errlen, "vm/numa: %s", why);
		return -EINVAL;
	}
	cfg->numa = c;
	return 0;
}

int vm_resources_load(struct state_reader *r, struct vm_config *cfg, char *err, size_t errlen)
{
	struct state_section s;
	int e;

	if (!state_find(r, "vm/balloon", &s)) {
		e = state_check_version(&s, 1, BALLOON_VERSION, err, errlen);
		if (!e)
			e = load_balloon(&s, cfg, err, errlen);
		if (e)
			return e;
	}
	if (!state_find(r, "vm/numa", &s)) {
		e = state_check_version(&s, 1, NUMA_VERSION, err, errlen);
		if (!e)
			e = load_numa(&s, cfg, err, errlen);
		if (e)
			return e;
	}
	return 0;
}
