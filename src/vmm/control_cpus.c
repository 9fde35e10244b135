// SPDX-License-Identifier: Apache-2.0
/*
 * The API's CPU and NUMA endpoints (docs/api.md, "Resource control"):
 * GET /v1/vm/cpus (each vCPU's and I/O thread's host CPUs), PUT
 * /v1/vm/cpus/pinning, GET/PUT /v1/vm/numa (the guest nodes, where their
 * memory is on the host, and the host binding, which may change: pages
 * already there migrate).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/log.h"
#include "keel/parse.h"
#include "vmm/control.h"
#include "vmm/resources.h"

static json_object *affinity_json(pid_t tid)
{
	cpu_set_t set;
	char list[256];

	if (tid <= 0 || sched_getaffinity(tid, sizeof(set), &set) < 0)
		return NULL;
	pin_format(&set, list, sizeof(list));
	return json_object_new_string(list);
}

static json_object *set_json(bool given, const cpu_set_t *set)
{
	char list[256];

	if (!given)
		return NULL;
	pin_format(set, list, sizeof(list));
	return json_object_new_string(list);
}

static json_object *io_threads_json(void)
{
	json_object *list = json_object_new_array();
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		char name[32];
		json_object *o;

		if (tid <= 0 || vmm_thread_kind(tid, name, sizeof(name)) != VMM_THREAD_IO)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "tid", json_object_new_int(tid));
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "affinity", affinity_json(tid));
		json_object_array_add(list, o);
	}
	if (d)
		closedir(d);
	return list;
}

static json_object *cpus_json(struct machine *m)
{
	json_object *o = json_object_new_object(), *vcpus = json_object_new_array();
	json_object *io = json_object_new_object();

	for (unsigned i = 0; i < m->nr_vcpus_created; i++) {
		json_object *v = json_object_new_object();
		int tid = atomic_load(&m->vcpus[i].tid);

		json_object_object_add(v, "index", json_object_new_int((int)i));
		json_object_object_add(v, "apic_id", json_object_new_int((int)m->vcpus[i].apic_id));
		json_object_object_add(v, "node", json_object_new_int((int)numa_node_of_cpu(&m->numa, i)));
		json_object_object_add(v, "tid", tid ? json_object_new_int(tid) : NULL);
		json_object_object_add(v, "pin", set_json(i < PIN_MAX_VCPUS && m->pin.vcpu_set[i],
							  &m->pin.vcpu[i]));
		json_object_object_add(v, "affinity", affinity_json(tid));
		json_object_array_add(vcpus, v);
	}
	json_object_object_add(o, "vcpus", vcpus);
	json_object_object_add(o, "vcpus_pin", set_json(m->pin.vcpus_set, &m->pin.vcpus));
	json_object_object_add(io, "pin", set_json(m->pin.io_set, &m->pin.io));
	json_object_object_add(io, "threads", io_threads_json());
	json_object_object_add(o, "io", io);
	return o;
}

void control_get_cpus(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = cpus_json(ctx);
}

/*
 * {"vcpu0": "2", "vcpus": "2-5", "io": "0-1"}: each pin given replaces
 * that pin; null removes it (back to where keel-vmm could run at start).
 */
void control_put_pinning(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct machine *m = ctx;
	struct pin_config p = m->pin;
	char err[256];

	if (!req->body || !json_object_object_length(req->body)) {
		http_error(rep, 400, "bad_field", "give pins: {\"vcpu0\": \"2\", \"vcpus\": \"2-5\", "
			   "\"io\": \"0-1\"} (null removes one)");
		return;
	}
	json_object_object_foreach(req->body, key, val) {
		char spec[320];

		if (json_object_is_type(val, json_type_null)) {
			/* Checked by pin_parse with any CPU: the key's form is the same. */
			snprintf(spec, sizeof(spec), "%.64s=0", key);
		} else if (json_object_is_type(val, json_type_string)) {
			snprintf(spec, sizeof(spec), "%.64s=%.200s", key, json_object_get_string(val));
		} else {
			http_error(rep, 400, "bad_field", "field '%.64s' must be a host CPU list like "
				   "\"0-3,8\" or null", key);
			return;
		}
		if (pin_parse("pin", spec, &p, err, sizeof(err))) {
			http_error(rep, 400, "bad_field", "%s", err);
			return;
		}
		if (json_object_is_type(val, json_type_null)) {
			if (!strcmp(key, "io"))
				p.io_set = false;
			else if (!strcmp(key, "vcpus"))
				p.vcpus_set = false;
			else
				p.vcpu_set[strtoul(key + 4, NULL, 10)] = false;
		}
	}
	if (pin_check("pin", &p, m->cfg->cpus, err, sizeof(err))) {
		http_error(rep, 400, "bad_field", "%s", err);
		return;
	}
	m->pin = p;
	if (resources_repin(m, err, sizeof(err))) {
		http_error(rep, 500, "internal", "%s", err);
		return;
	}
	log_info("CPU pins changed through the API");
	rep->body = cpus_json(m);
}

static json_object *numa_json(struct machine *m)
{
	json_object *o = json_object_new_object(), *nodes = json_object_new_array();
	uint64_t off = 0;

	for (unsigned i = 0; i < m->numa.nr_nodes; i++) {
		const struct numa_node_config *n = &m->numa.node[i];
		json_object *j = json_object_new_object(), *usage = json_object_new_object();
		uint64_t pages[NUMA_MAX_HOST_NODES];
		char cpus[32], hosts[256] = "";

		if (n->nr_cpus == 1)
			snprintf(cpus, sizeof(cpus), "%u", n->first_cpu);
		else
			snprintf(cpus, sizeof(cpus), "%u-%u", n->first_cpu, n->first_cpu + n->nr_cpus - 1);
		for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++)
			if (n->host_nodes & (1ULL << h))
				snprintf(hosts + strlen(hosts), sizeof(hosts) - strlen(hosts), "%s%u",
					 *hosts ? "," : "", h);
		json_object_object_add(j, "node", json_object_new_int((int)i));
		json_object_object_add(j, "cpus", json_object_new_string(cpus));
		json_object_object_add(j, "memory_mib", json_object_new_uint64(n->memory >> 20));
		json_object_object_add(j, "host_nodes", *hosts ? json_object_new_string(hosts) : NULL);
		json_object_object_add(j, "policy", json_object_new_string(numa_policy_name(n->policy)));
		/* Where the node's resident pages are now (sampled for big nodes). */
		if (!numa_host_usage(&m->ram, off, n->memory, pages)) {
			for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++) {
				char key[8];

				if (!pages[h])
					continue;
				snprintf(key, sizeof(key), "%u", h);
				json_object_object_add(usage, key,
						       json_object_new_uint64(pages[h] * GUEST_RAM_PAGE >> 20));
			}
		}
		json_object_object_add(j, "host_usage_mib", usage);
		json_object_array_add(nodes, j);
		off += n->memory;
	}
	json_object_object_add(o, "nodes", nodes);
	return o;
}

void control_get_numa(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	rep->body = numa_json(ctx);
}

void control_put_numa(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "node", "host_nodes", "policy", NULL };
	struct machine *m = ctx;
	struct numa_config c = m->numa;
	struct numa_node_config *n;
	const char *hosts = NULL, *policy = NULL;
	char err[256];
	uint64_t i;
	int r;

	if (!http_check_fields(req->body, fields, rep))
		return;
	if (!m->numa.nr_nodes) {
		http_error(rep, 409, "unsupported", "the VM has no guest NUMA nodes (--numa)");
		return;
	}
	r = http_get_u64(req->body, "node", 0, c.nr_nodes - 1, &i, rep);
	if (r == -ENOENT)
		http_error(rep, 400, "bad_field", "field 'node' (0 to %u) is required", c.nr_nodes - 1);
	if (r || http_get_string(req->body, "host_nodes", &hosts, rep) == -EINVAL ||
	    http_get_string(req->body, "policy", &policy, rep) == -EINVAL)
		return;
	n = &c.node[i];
	if (hosts) {
		uint8_t bits[NUMA_MAX_HOST_NODES / 8] = { 0 };

		if (*hosts && parse_id_list(hosts, bits, NUMA_MAX_HOST_NODES)) {
			http_error(rep, 400, "bad_field", "host_nodes '%.64s' is not a host node list like "
				   "0-1 (or \"\" for none)", hosts);
			return;
		}
		memcpy(&n->host_nodes, bits, sizeof(bits));
		if (!policy)
			n->policy = n->host_nodes ? (n->policy ? n->policy : NUMA_POLICY_BIND)
						  : NUMA_POLICY_NONE;
	}
	if (policy && numa_policy_parse(policy, &n->policy)) {
		http_error(rep, 400, "bad_field", "policy '%.32s' is not none, bind, preferred or "
			   "interleave", policy);
		return;
	}
	if (!n->host_nodes != (n->policy == NUMA_POLICY_NONE) ||
	    (n->policy == NUMA_POLICY_PREFERRED && (n->host_nodes & (n->host_nodes - 1)))) {
		http_error(rep, 400, "bad_field", "policy %s with host_nodes '%s': bind and interleave "
			   "take host nodes, preferred one, none no host nodes",
			   numa_policy_name(n->policy), hosts ? hosts : "(unchanged)");
		return;
	}
	if (numa_check_host(&c, err, sizeof(err))) {
		http_error(rep, 400, "bad_field", "%s", err);
		return;
	}
	/* Pages already placed move to the new nodes: this takes as long as copying them. */
	if (numa_bind(&c, &m->ram, true, err, sizeof(err))) {
		http_error(rep, 500, "internal", "%s", err);
		return;
	}
	m->numa = c;
	log_info("NUMA node %" PRIu64 ": host binding changed through the API", i);
	rep->body = numa_json(m);
}
