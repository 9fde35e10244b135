// SPDX-License-Identifier: Apache-2.0
/*
 * CPUID topology: for N vCPUs every leaf that describes the topology must
 * agree (APIC IDs in leaf 1, 0xb and 0x8000001e; counts in 0xb, 0x80000008;
 * cache sharing in 4 / 0x8000001d), on an Intel-like and an AMD-like
 * supported table.
 */
#include <string.h>

#include "keel/compiler.h"
#include "ktest.h"
#include "vmm/cpuid.h"

static void vendor(struct kvm_cpuid_entry2 *e, const char *name)
{
	memcpy(&e->ebx, name, 4);
	memcpy(&e->edx, name + 4, 4);
	memcpy(&e->ecx, name + 8, 4);
}

static unsigned intel_table(struct kvm_cpuid_entry2 *t)
{
	unsigned n = 0;

	t[n] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x1f };
	vendor(&t[n++], "GenuineIntel");
	t[n++] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0x906ea, .ebx = 0x0b000800,
					    .ecx = 0x7ffafbff, .edx = 0xbfebfbff };
	/* L1d and L3 of the host: 16 threads share the L3, 2 the L1. */
	t[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 0,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					    .eax = 0x1c004121 | (1u << 14) };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 1,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					    .eax = 0x1c03c163 | (15u << 14) };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 2,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					    .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7 };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x1f, .index = 0,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					    .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7 };
	t[n] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001 };
	vendor(&t[n++], "KVMKVMKVM\0\0\0");
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 0x01007afb };
	return n;
}

static unsigned amd_table(struct kvm_cpuid_entry2 *t)
{
	unsigned n = 0;

	t[n] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x10 };
	vendor(&t[n++], "AuthenticAMD");
	t[n++] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0x830f10, .ebx = 0x800,
					    .ecx = 0x7ed8320b, .edx = 0x178bfbff };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000001, .ecx = 0x75c237ff };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .eax = 0x3030, .ecx = 0x703f };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x8000001d, .index = 3,
					    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					    .eax = 0x163 | (15u << 14) };
	t[n++] = (struct kvm_cpuid_entry2){ .function = 0x8000001e, .eax = 9, .ebx = 0x104 };
	return n;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, int n, uint32_t f, uint32_t i)
{
	return cpuid_find(e, (unsigned)n, f, i);
}

KTEST(topology_apic_ids)
{
	struct cpu_topology t = cpu_topology_flat(4);
	struct cpu_topology ht = { .sockets = 2, .cores = 3, .threads = 2 };

	KCHECK_EQ(cpu_topology_count(&t), 4);
	KCHECK_EQ(cpu_topology_core_bits(&t), 2);
	KCHECK_EQ(cpu_topology_thread_bits(&t), 0);
	for (unsigned i = 0; i < 4; i++)
		KCHECK_EQ(cpu_topology_apic_id(&t, i), i);
	/* 3 cores need 2 bits; 2 threads need 1: socket 1 starts at 8. */
	KCHECK_EQ(cpu_topology_apic_id(&ht, 0), 0);
	KCHECK_EQ(cpu_topology_apic_id(&ht, 1), 1);
	KCHECK_EQ(cpu_topology_apic_id(&ht, 2), 2);
	KCHECK_EQ(cpu_topology_apic_id(&ht, 5), 5);
	KCHECK_EQ(cpu_topology_apic_id(&ht, 6), 8);
	KCHECK_EQ(cpu_topology_apic_id(&ht, 11), 13);
	t = cpu_topology_flat(1);
	KCHECK_EQ(cpu_topology_core_bits(&t), 0);
	t = cpu_topology_flat(5);
	KCHECK_EQ(cpu_topology_core_bits(&t), 3);
}

KTEST(intel_leaves_agree_for_four_vcpus)
{
	struct kvm_cpuid_entry2 sup[16], out[32];
	unsigned nsup = intel_table(sup);
	struct cpu_topology t = cpu_topology_flat(4);
	struct cpuid_options opts = { .tsc_deadline = true };

	KCHECK_EQ(cpuid_vendor(sup, nsup), CPU_VENDOR_INTEL);
	for (unsigned cpu = 0; cpu < 4; cpu++) {
		int n = cpuid_build(sup, nsup, &t, cpu, &opts, out, ARRAY_SIZE(out));
		const struct kvm_cpuid_entry2 *e;

		KASSERT(n > 0);
		e = find(out, n, 1, 0);
		KASSERT(e);
		KCHECK_EQ(e->ebx >> 24, cpu);
		KCHECK_EQ((e->ebx >> 16) & 0xff, 4);
		KCHECK_EQ(e->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
		KCHECK(e->ecx & (1u << 31));       /* hypervisor */
		KCHECK(e->ecx & (1u << 24));       /* TSC deadline */
		KCHECK(e->edx & (1u << 28));       /* HTT: more than one logical CPU */
		/* 0xb: 1 thread per core, 4 logical per package, x2APIC ID = cpu. */
		e = find(out, n, 0xb, 0);
		KASSERT(e);
		KCHECK_EQ(e->eax, 0);
		KCHECK_EQ(e->ebx, 1);
		KCHECK_EQ(e->ecx, 0x100);
		KCHECK_EQ(e->edx, cpu);
		e = find(out, n, 0xb, 1);
		KASSERT(e);
		KCHECK_EQ(e->eax, 2);
		KCHECK_EQ(e->ebx, 4);
		KCHECK_EQ(e->ecx, 0x201);
		KCHECK_EQ(e->edx, cpu);
		e = find(out, n, 0xb, 2);
		KASSERT(e);
		KCHECK_EQ(e->ecx & 0xff00, 0);
		e = find(out, n, 0x1f, 1);
		KASSERT(e);
		KCHECK_EQ(e->ebx, 4);
		/* Leaf 4: L1 private to the core, L3 shared by the 4 cores. */
		e = find(out, n, 4, 0);
		KASSERT(e);
		KCHECK_EQ((e->eax >> 14) & 0xfff, 0);
		KCHECK_EQ(e->eax >> 26, 3);
		e = find(out, n, 4, 1);
		KASSERT(e);
		KCHECK_EQ((e->eax >> 14) & 0xfff, 3);
		/* The KVM leaves pass through. */
		e = find(out, n, 0x40000000, 0);
		KASSERT(e);
		KCHECK(!memcmp(&e->ebx, "KVMK", 4));
		KCHECK(find(out, n, 0x40000001, 0) != NULL);
	}
}

KTEST(single_vcpu_has_no_htt)
{
	struct kvm_cpuid_entry2 sup[16], out[32];
	unsigned nsup = intel_table(sup);
	struct cpu_topology t = cpu_topology_flat(1);
	int n = cpuid_build(sup, nsup, &t, 0, NULL, out, ARRAY_SIZE(out));
	const struct kvm_cpuid_entry2 *e = find(out, n, 1, 0);

	KASSERT(e);
	KCHECK(!(e->edx & (1u << 28)));
	KCHECK(!(e->ecx & (1u << 24))); /* no TSC deadline unless KVM has it */
	KCHECK_EQ((e->ebx >> 16) & 0xff, 1);
}

KTEST(amd_leaves_agree_for_three_vcpus)
{
	struct kvm_cpuid_entry2 sup[16], out[32];
	unsigned nsup = amd_table(sup);
	struct cpu_topology t = cpu_topology_flat(3);

	KCHECK_EQ(cpuid_vendor(sup, nsup), CPU_VENDOR_AMD);
	for (unsigned cpu = 0; cpu < 3; cpu++) {
		int n = cpuid_build(sup, nsup, &t, cpu, NULL, out, ARRAY_SIZE(out));
		const struct kvm_cpuid_entry2 *e;

		KASSERT(n > 0);
		e = find(out, n, 1, 0);
		KCHECK_EQ(e->ebx >> 24, cpu);
		KCHECK_EQ((e->ebx >> 16) & 0xff, 4); /* 2 bits of core ID */
		e = find(out, n, 0x80000001, 0);
		KCHECK(e->ecx & 2); /* CmpLegacy */
		e = find(out, n, 0x80000008, 0);
		KCHECK_EQ(e->ecx & 0xff, 2);
		KCHECK_EQ((e->ecx >> 12) & 0xf, 2);
		KCHECK_EQ(e->eax, 0x3030); /* address sizes untouched */
		e = find(out, n, 0x8000001e, 0);
		KCHECK_EQ(e->eax, cpu);
		KCHECK_EQ(e->ebx, cpu); /* core ID, 1 thread per core */
		e = find(out, n, 0x8000001d, 3);
		KCHECK_EQ((e->eax >> 14) & 0xfff, 3); /* L3 shared by 4 possible IDs */
		/* No 0xb on this AMD table, so none is invented. */
		KCHECK(find(out, n, 0xb, 0) == NULL);
	}
}

KTEST(build_reports_too_small_output)
{
	struct kvm_cpuid_entry2 sup[16], out[4];
	unsigned nsup = intel_table(sup);
	struct cpu_topology t = cpu_topology_flat(2);

	KCHECK(cpuid_build(sup, nsup, &t, 0, NULL, out, ARRAY_SIZE(out)) < 0);
}

int main(void)
{
	return ktest_run_all();
}
