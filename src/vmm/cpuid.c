// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "vmm/cpuid.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_TOPO_LEVEL_SMT 1
#define CPUID_TOPO_LEVEL_CORE 2

struct cpu_topology cpu_topology_flat(unsigned n)
{
	return (struct cpu_topology){ .sockets = 1, .cores = n, .threads = 1 };
}

unsigned cpu_topology_count(const struct cpu_topology *t)
{
	return t->sockets * t->cores * t->threads;
}

/* Bits needed to number n things: 0 for 1, 1 for 2, 2 for 3 and 4... */
static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

unsigned cpu_topology_thread_bits(const struct cpu_topology *t)
{
	return bits_for(t->threads);
}

unsigned cpu_topology_core_bits(const struct cpu_topology *t)
{
	return bits_for(t->cores);
}

uint32_t cpu_topology_apic_id(const struct cpu_topology *t, unsigned index)
{
	unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);
	unsigned thread = index % t->threads;
	unsigned core = (index / t->threads) % t->cores;
	unsigned socket = index / (t->threads * t->cores);

	return socket << (tb + cb) | core << tb | thread;
}

const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *entries, unsigned nr,
					  uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < nr; i++) {
		const struct kvm_cpuid_entry2 *e = &entries[i];

		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

enum cpu_vendor cpuid_vendor(const struct kvm_cpuid_entry2 *entries, unsigned nr)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(entries, nr, 0, 0);
	char v[13];

	if (!e)
		return CPU_VENDOR_OTHER;
	memcpy(v, &e->ebx, 4);
	memcpy(v + 4, &e->edx, 4);
	memcpy(v + 8, &e->ecx, 4);
	v[12] = 0;
	if (!strcmp(v, "GenuineIntel"))
		return CPU_VENDOR_INTEL;
	/* Hygon is AMD's design and follows AMD's topology leaves. */
	if (!strcmp(v, "AuthenticAMD") || !strcmp(v, "HygonGenuine"))
		return CPU_VENDOR_AMD;
	return CPU_VENDOR_OTHER;
}

/*
 * Leaf 4 (Intel) and 0x8000001d (AMD) describe caches; the "sharing"
 * field must match our topology: level 1 and 2 belong to one core, the
 * last level to the whole socket.
 */
static void fix_cache_leaf(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t, bool intel)
{
	unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);
	unsigned level = (e->eax >> 5) & 7;
	unsigned share_bits = level >= 3 ? tb + cb : tb;

	if ((e->eax & 0x1f) == 0)
		return; /* no cache at this subleaf: the list ends here */
	e->eax &= ~(0xfffu << 14);
	e->eax |= ((1u << share_bits) - 1) << 14;
	if (intel) {
		e->eax &= ~(0x3fu << 26);
		e->eax |= ((1u << cb) - 1) << 26;
	}
}

static void add_topology_leaf(struct kvm_cpuid_entry2 *out, unsigned *n, uint32_t function,
			      const struct cpu_topology *t, uint32_t apic_id)
{
	unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);

	/* Subleaf 0: threads of a core; 1: cores of a socket; 2: end of list. */
	out[(*n)++] = (struct kvm_cpuid_entry2){
		.function = function, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = tb, .ebx = t->threads, .ecx = 0 | CPUID_TOPO_LEVEL_SMT << 8, .edx = apic_id,
	};
	out[(*n)++] = (struct kvm_cpuid_entry2){
		.function = function, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = tb + cb, .ebx = t->threads * t->cores, .ecx = 1 | CPUID_TOPO_LEVEL_CORE << 8,
		.edx = apic_id,
	};
	out[(*n)++] = (struct kvm_cpuid_entry2){
		.function = function, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.ecx = 2, .edx = apic_id,
	};
}

int cpuid_build(const struct kvm_cpuid_entry2 *supported, unsigned nr,
		const struct cpu_topology *topo, unsigned index,
		const struct cpuid_options *opts,
		struct kvm_cpuid_entry2 *out, unsigned max)
{
	enum cpu_vendor vendor = cpuid_vendor(supported, nr);
	uint32_t apic_id = cpu_topology_apic_id(topo, index);
	unsigned tb = cpu_topology_thread_bits(topo), cb = cpu_topology_core_bits(topo);
	unsigned per_socket = topo->cores * topo->threads;
	bool has_0b = false, has_1f = false;
	unsigned n = 0;

	for (unsigned i = 0; i < nr; i++) {
		struct kvm_cpuid_entry2 e = supported[i];

		if (e.function == 0xb) {
			has_0b = true;
			continue;
		}
		if (e.function == 0x1f) {
			has_1f = true;
			continue;
		}
		if (n >= max)
			return -E2BIG;
		switch (e.function) {
		case 1:
			e.ebx &= 0x0000ffff;
			e.ebx |= apic_id << 24 | (1u << (tb + cb)) << 16;
			e.ecx |= CPUID_1_ECX_HYPERVISOR;
			/* Only KVM_CAP_TSC_DEADLINE_TIMER says the LAPIC can do it. */
			if (opts && opts->tsc_deadline)
				e.ecx |= CPUID_1_ECX_TSC_DEADLINE;
			else
				e.ecx &= ~CPUID_1_ECX_TSC_DEADLINE;
			if (per_socket > 1)
				e.edx |= CPUID_1_EDX_HTT;
			else
				e.edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			if (vendor == CPU_VENDOR_INTEL)
				fix_cache_leaf(&e, topo, true);
			break;
		case 0x80000001:
			if (vendor == CPU_VENDOR_AMD && per_socket > 1)
				e.ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				e.ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			if (vendor == CPU_VENDOR_AMD) {
				e.ecx &= ~0xf0ffu;
				e.ecx |= (tb + cb) << 12 | (per_socket - 1);
			}
			break;
		case 0x8000001d:
			fix_cache_leaf(&e, topo, false);
			break;
		case 0x8000001e:
			/* Extended APIC ID; core ID and threads per core; node 0. */
			e.eax = apic_id;
			e.ebx = (topo->threads - 1) << 8 | ((apic_id >> tb) & 0xff);
			e.ecx = 0;
			break;
		}
		out[n++] = e;
	}
	/* Leaf 0xb is what Linux reads on Intel; emit it even if KVM had none. */
	if (vendor == CPU_VENDOR_INTEL)
		has_0b = true;
	if (has_0b) {
		if (n + 3 > max)
			return -E2BIG;
		add_topology_leaf(out, &n, 0xb, topo, apic_id);
	}
	if (has_1f) {
		if (n + 3 > max)
			return -E2BIG;
		add_topology_leaf(out, &n, 0x1f, topo, apic_id);
	}
	return (int)n;
}
