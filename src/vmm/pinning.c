// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keel/parse.h"
#include "vmm/pinning.h"

#define CPU_ONLINE "/sys/devices/system/cpu/online"

static cpu_set_t start_set;
static bool start_set_known;

void pin_init(void)
{
	start_set_known = sched_getaffinity(0, sizeof(start_set), &start_set) == 0;
}

void pin_format(const cpu_set_t *set, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < CPU_SETSIZE && used < len; i++) {
		int j = i;

		if (!CPU_ISSET(i, set))
			continue;
		while (j + 1 < CPU_SETSIZE && CPU_ISSET(j + 1, set))
			j++;
		used += (size_t)snprintf(out + used, len - used, used ? ",%d" : "%d", i);
		if (j > i && used < len)
			used += (size_t)snprintf(out + used, len - used, "-%d", j);
		i = j;
	}
}

/* The host CPUs that exist (online), as a set. */
static int online_cpus(cpu_set_t *set)
{
	uint8_t bits[CPU_SETSIZE / 8];
	char line[1024];
	FILE *f = fopen(CPU_ONLINE, "re");
	int r = -ENOENT;

	if (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		r = parse_id_list(line, bits, CPU_SETSIZE);
	}
	if (f)
		fclose(f);
	CPU_ZERO(set);
	for (int i = 0; !r && i < CPU_SETSIZE; i++)
		if (bits[i / 8] & (1u << (i % 8)))
			CPU_SET(i, set);
	return r;
}

int pin_parse(const char *what_flag, const char *arg, struct pin_config *p, char *err,
	      size_t errlen)
{
	const char *eq = strchr(arg, '=');
	uint8_t bits[CPU_SETSIZE / 8];
	cpu_set_t set, online;
	char what[32], list[64];
	unsigned long index = 0;
	int r;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(what)) {
		snprintf(err, errlen, "%s '%s': give WHAT=CPUS, WHAT being vcpuN, vcpus or io", what_flag,
			 arg);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "%.*s", (int)(eq - arg), arg);
	if (strcmp(what, "io") && strcmp(what, "vcpus")) {
		if (strncmp(what, "vcpu", 4) || !what[4] ||
		    strspn(what + 4, "0123456789") != strlen(what + 4) ||
		    (index = strtoul(what + 4, NULL, 10)) >= PIN_MAX_VCPUS) {
			snprintf(err, errlen, "%s '%s': '%s' is not vcpuN, vcpus or io", what_flag, arg,
				 what);
			return -EINVAL;
		}
	}
	r = parse_id_list(eq + 1, bits, CPU_SETSIZE);
	if (r == -EINVAL) {
		snprintf(err, errlen, "%s %s: '%s' is not a list of host CPUs like 2 or 0-3,8", what_flag,
			 what, eq + 1);
		return -EINVAL;
	}
	if (online_cpus(&online)) {
		snprintf(err, errlen, "%s: cannot read this host's CPUs (%s)", what_flag, CPU_ONLINE);
		return -ENOENT;
	}
	pin_format(&online, list, sizeof(list));
	CPU_ZERO(&set);
	for (int i = 0; !r && i < CPU_SETSIZE; i++) {
		if (!(bits[i / 8] & (1u << (i % 8))))
			continue;
		if (!CPU_ISSET(i, &online)) {
			snprintf(err, errlen, "%s %s: host CPU %d does not exist (this host has CPUs %s)",
				 what_flag, what, i, list);
			return -EINVAL;
		}
		CPU_SET(i, &set);
	}
	if (r == -ERANGE) {
		snprintf(err, errlen, "%s %s: host CPU list '%s' goes beyond any host (this host has "
			 "CPUs %s)", what_flag, what, eq + 1, list);
		return -EINVAL;
	}
	if (!strcmp(what, "io")) {
		p->io = set;
		p->io_set = true;
	} else if (!strcmp(what, "vcpus")) {
		p->vcpus = set;
		p->vcpus_set = true;
	} else {
		p->vcpu[index] = set;
		p->vcpu_set[index] = true;
	}
	return 0;
}

int pin_check(const char *what_flag, const struct pin_config *p, unsigned cpus, char *err,
	      size_t errlen)
{
	for (unsigned i = cpus; i < PIN_MAX_VCPUS; i++) {
		if (p->vcpu_set[i]) {
			snprintf(err, errlen, "%s vcpu%u: the VM has %u vCPU%s (vcpu0 to vcpu%u)",
				 what_flag, i, cpus, cpus == 1 ? "" : "s", cpus - 1);
			return -EINVAL;
		}
	}
	return 0;
}

static const cpu_set_t *default_set(void)
{
	static cpu_set_t all;

	if (start_set_known)
		return &start_set;
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &all);
	return &all;
}

const cpu_set_t *pin_vcpu_set(const struct pin_config *p, unsigned index)
{
	if (index < PIN_MAX_VCPUS && p->vcpu_set[index])
		return &p->vcpu[index];
	return p->vcpus_set ? &p->vcpus : default_set();
}

int pin_vcpu(const struct pin_config *p, unsigned index, pthread_t thread, char *err,
	     size_t errlen)
{
	const cpu_set_t *set = pin_vcpu_set(p, index);
	int r = pthread_setaffinity_np(thread, sizeof(*set), set);

	if (r) {
		char list[256];

		pin_format(set, list, sizeof(list));
		snprintf(err, errlen, "cannot pin vCPU %u to host CPUs %s: %s", index, list,
			 strerror(r));
	}
	return -r;
}

enum vmm_thread_kind vmm_thread_kind(pid_t tid, char *comm, size_t len)
{
	char path[64], name[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	f = fopen(path, "re");
	if (f && fgets(name, sizeof(name), f))
		name[strcspn(name, "\n")] = '\0';
	if (f)
		fclose(f);
	if (comm)
		snprintf(comm, len, "%s", name);
	/* "vcpu" and digits only: vcpu.c names its threads so. */
	if (!strncmp(name, "vcpu", 4) && name[4] && strspn(name + 4, "0123456789") == strlen(name + 4))
		return VMM_THREAD_VCPU;
	/*
	 * KVM starts workers of its own inside the process (kvm-nx-lpage-recovery,
	 * at the first KVM_RUN on recent kernels). Not ours to pin, nor I/O.
	 */
	if (!strncmp(name, "kvm-", 4))
		return VMM_THREAD_KVM;
	return VMM_THREAD_IO;
}

int pin_io_threads(const struct pin_config *p, char *err, size_t errlen)
{
	const cpu_set_t *set = p->io_set ? &p->io : default_set();
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int r = 0;

	if (!d) {
		snprintf(err, errlen, "cannot list keel-vmm's threads: %s", strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid <= 0 || vmm_thread_kind(tid, NULL, 0) != VMM_THREAD_IO)
			continue;
		/* A thread that ended meanwhile is fine (ESRCH). */
		if (sched_setaffinity(tid, sizeof(*set), set) < 0 && errno != ESRCH) {
			char list[256];

			r = -errno;
			pin_format(set, list, sizeof(list));
			snprintf(err, errlen, "cannot pin I/O thread %d to host CPUs %s: %s", (int)tid, list,
				 strerror(errno));
			break;
		}
	}
	closedir(d);
	return r;
}
