/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPUID a vCPU sees: what KVM_GET_SUPPORTED_CPUID offers, with the
 * topology rewritten so that every leaf that describes it (1, 4, 0xb, 0x1f,
 * 0x80000001, 0x80000008, 0x8000001e) tells the same story for N vCPUs, the
 * hypervisor bit set, and the KVM paravirtual leaves (0x40000000: signature,
 * 0x40000001: kvmclock and friends) kept. Pure functions on
 * kvm_cpuid_entry2 arrays, so they are unit-tested without /dev/kvm.
 */
#ifndef KEEL_VMM_CPUID_H
#define KEEL_VMM_CPUID_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

struct cpu_topology {
	unsigned sockets;
	unsigned cores;   /* per socket */
	unsigned threads; /* per core */
};

/* A topology of n single-threaded cores in one socket. */
struct cpu_topology cpu_topology_flat(unsigned n);
unsigned cpu_topology_count(const struct cpu_topology *t);
/* Bits of the APIC ID taken by the thread and by the core field. */
unsigned cpu_topology_thread_bits(const struct cpu_topology *t);
unsigned cpu_topology_core_bits(const struct cpu_topology *t);
/* APIC ID of the index-th vCPU (socket-major, then core, then thread). */
uint32_t cpu_topology_apic_id(const struct cpu_topology *t, unsigned index);

enum cpu_vendor { CPU_VENDOR_OTHER, CPU_VENDOR_INTEL, CPU_VENDOR_AMD };

struct cpuid_options {
	bool tsc_deadline; /* KVM emulates the TSC-deadline LAPIC timer */
};

/*
 * Fills `out` (room for `max` entries) with the CPUID of vCPU `index` from
 * the `nr` supported entries. Returns the number of entries or -E2BIG.
 */
int cpuid_build(const struct kvm_cpuid_entry2 *supported, unsigned nr,
		const struct cpu_topology *topo, unsigned index,
		const struct cpuid_options *opts,
		struct kvm_cpuid_entry2 *out, unsigned max);

enum cpu_vendor cpuid_vendor(const struct kvm_cpuid_entry2 *entries, unsigned nr);
/* The entry for leaf/subleaf, or NULL. */
const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *entries, unsigned nr,
					  uint32_t function, uint32_t index);

#endif
