/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vCPU: its KVM file descriptor and shared kvm_run page, its CPUID and
 * boot-time registers, and the host thread that runs KVM_RUN and
 * dispatches port-I/O and MMIO exits to the buses.
 *
 * Stopping: vcpu_kick() sets immediate_exit and signals the thread, so a
 * vCPU that is about to enter the guest or is inside it returns promptly;
 * the thread then sees `stop` and ends. Exits it cannot handle (triple
 * fault, internal error, failed entry, unknown exit) log the registers and
 * report VM_STOP_CRASH.
 */
#ifndef KEEL_VMM_VCPU_H
#define KEEL_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "keel/bus.h"
#include "keel/vm_events.h"
#include "vmm/boot_linux.h"
#include "vmm/cpuid.h"
#include "vmm/kvm.h"

/* What all vCPUs of a VM share. */
struct vcpu_env {
	struct kvm *kvm;
	struct bus *pio;
	struct bus *mmio;
	struct vm_events *events;
	const struct cpu_topology *topo;
};

struct vcpu_stats {
	_Atomic uint64_t exits_io;
	_Atomic uint64_t exits_mmio;
	_Atomic uint64_t exits_intr;
	_Atomic uint64_t exits_other;
	_Atomic uint64_t unhandled_io;
};

struct vcpu {
	unsigned index;
	uint32_t apic_id;
	int fd;
	struct kvm_run *run;
	struct vcpu_env *env;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	struct vcpu_stats stats;
};

/* Installs the (empty) signal handler used to kick vCPUs; call once. */
int vcpu_init_signals(void);

/* KVM_CREATE_VCPU, the run page, CPUID and boot-time MSRs/LAPIC. */
int vcpu_create(struct vcpu *v, struct vcpu_env *env, unsigned index, char *err, size_t errlen);
/* The bootstrap processor's registers for the 64-bit Linux entry point. */
int vcpu_setup_linux_entry(struct vcpu *v, const struct boot_linux_result *boot);
int vcpu_start(struct vcpu *v);
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Registers and segment state to the log (on crashes). */
void vcpu_dump_regs(struct vcpu *v);

#endif
