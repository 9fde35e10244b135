/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vCPU: its KVM file descriptor and shared kvm_run page, its CPUID and
 * boot-time registers, and the host thread that runs KVM_RUN and
 * dispatches port-I/O and MMIO exits to the buses.
 *
 * Stopping: vcpu_request_stop() sets `stop`, then immediate_exit, and
 * signals the thread, so a vCPU that is about to enter the guest or is
 * inside it returns promptly; the thread then sees `stop` and ends.
 *
 * Pausing (vcpus_pause): the same kick with `pause` set instead. The thread
 * leaves KVM_RUN, runs KVM_RUN once more with immediate_exit so KVM
 * completes an I/O or MMIO read it had handed to us (the registers are
 * then whole, which snapshots need), and parks on a condition variable
 * without giving up its KVM vCPU. vcpus_resume() lets them all go. A
 * parked thread also runs work handed to it (vcpus_run_parked): saving or
 * loading its own state, so a VM's vCPUs are saved and loaded in parallel
 * (a migration's downtime). Exits it cannot handle (triple
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
#include "keel/stats.h"
#include "keel/vm_events.h"
#include "vmm/boot_linux.h"
#include "vmm/cpuid.h"
#include "vmm/kvm.h"

/* Where parked vCPUs wait; one per VM, in vcpu_env. */
struct vcpu_park {
	pthread_mutex_t lock;
	pthread_cond_t resume; /* parked threads wait here */
	pthread_cond_t parked; /* vcpus_pause() waits here */
	unsigned nr_parked;    /* threads parked, plus threads that ended */
	unsigned work_left;    /* vcpus_run_parked(): parked threads still at their work */
};

/* What all vCPUs of a VM share. */
struct vcpu_env {
	struct kvm *kvm;
	struct bus *pio;
	struct bus *mmio;
	struct vm_events *events;
	const struct cpu_topology *topo;
	struct vcpu_park park;
	/* The vCPUs get saved state (a restore, a migration): no boot set-up at creation. */
	bool state_follows;
};

/* Why KVM_RUN returned to us, counted per vCPU (the API's vCPU statistics). */
enum vcpu_exit_kind {
	VCPU_EXIT_IO,
	VCPU_EXIT_MMIO,
	VCPU_EXIT_INTR,        /* a signal: kicks for pause or stop */
	VCPU_EXIT_HLT,
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_FAIL_ENTRY,
	VCPU_EXIT_INTERNAL_ERROR,
	VCPU_EXIT_OTHER,
	VCPU_EXIT_KINDS,
};

const char *vcpu_exit_kind_name(enum vcpu_exit_kind k);

struct vcpu_stats {
	_Atomic uint64_t exits[VCPU_EXIT_KINDS];
	_Atomic uint64_t unhandled_io;
	_Atomic uint64_t unhandled_mmio;
	_Atomic uint64_t pauses;
	/* Time from KVM_RUN returning an I/O or MMIO exit to the device handler's return. */
	struct stats_histogram io_handling;
	struct stats_histogram mmio_handling;
};

struct vcpu {
	unsigned index;
	uint32_t apic_id;
	int fd;
	struct kvm_run *run;
	struct vcpu_env *env;
	pthread_t thread;
	bool thread_started;
	atomic_int tid; /* the thread's id, once it runs (the API shows it; 0 before) */
	atomic_bool stop;
	atomic_bool pause;
	unsigned cpuid_nent; /* entries given to KVM_SET_CPUID2 (KVM_GET_CPUID2 needs the count) */
	bool parked;  /* under env->park.lock */
	bool ended;   /* under env->park.lock: the thread left its loop */
	/* Work for the parked thread, under env->park.lock (vcpus_run_parked). */
	int (*work)(struct vcpu *v, void *arg);
	void *work_arg;
	int work_result;
	bool work_handed; /* the caller's own: this one went to the thread */
	struct vcpu_stats stats;
};

/* Installs the (empty) signal handler used to kick vCPUs; call once. */
int vcpu_init_signals(void);

/* KVM_CREATE_VCPU, the run page, CPUID and boot-time MSRs/LAPIC. */
int vcpu_create(struct vcpu *v, struct vcpu_env *env, unsigned index, char *err, size_t errlen);
/* The bootstrap processor's registers for the 64-bit Linux entry point. */
int vcpu_setup_linux_entry(struct vcpu *v, const struct boot_linux_result *boot);
int vcpu_start(struct vcpu *v);
void vcpu_request_stop(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
int vcpu_park_init(struct vcpu_park *p);
void vcpu_park_destroy(struct vcpu_park *p);
/*
 * Parks the n vCPUs of vcpus (all share one env). 0 once all are parked
 * (or their threads have ended), -ETIMEDOUT after timeout_ms, in which
 * case they are resumed again.
 */
int vcpus_pause(struct vcpu *vcpus, unsigned n, unsigned timeout_ms);
void vcpus_resume(struct vcpu *vcpus, unsigned n);
/*
 * Starts the n vCPUs' threads parked (they never enter the guest until
 * vcpus_resume()); 0 once all are parked, or -errno.
 */
int vcpus_start_parked(struct vcpu *vcpus, unsigned n, unsigned timeout_ms);
/*
 * fn(v, arg) for each of the n vCPUs, on its own thread where that thread
 * is parked (all at once), else on the caller's; returns when all are
 * done: 0, or the first vCPU's error in vCPU order. The vCPUs must be
 * paused (or not started).
 */
int vcpus_run_parked(struct vcpu *vcpus, unsigned n, int (*fn)(struct vcpu *v, void *arg), void *arg);

/* Registers and segment state to the log (on crashes). */
void vcpu_dump_regs(struct vcpu *v);

#endif
