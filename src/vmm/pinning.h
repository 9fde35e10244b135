/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which host CPUs keel-vmm's threads may run on: each vCPU thread (a
 * dedicated core per vCPU, or a set shared by all vCPUs), and the I/O
 * threads, meaning every other thread of the process (the main loop, the
 * devices' I/O threads, block workers, migration). Threads a pinned
 * thread creates inherit its CPUs, so workers started later follow the
 * I/O set. A vCPU without a pin of its own runs where keel-vmm could run
 * when it started, whatever the I/O set is.
 *
 * --pin vcpu0=2 --pin vcpu1=3 --pin io=0-1      (one dedicated core each)
 * --pin vcpus=2-5                                (all vCPUs float over 2-5)
 */
#ifndef KEEL_VMM_PINNING_H
#define KEEL_VMM_PINNING_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>

#define PIN_MAX_VCPUS 256

struct pin_config {
	bool vcpu_set[PIN_MAX_VCPUS];
	cpu_set_t vcpu[PIN_MAX_VCPUS];
	bool vcpus_set;   /* vcpus=: every vCPU without its own */
	cpu_set_t vcpus;
	bool io_set;
	cpu_set_t io;
};

/*
 * One --pin "WHAT=CPUS": WHAT is vcpuN, vcpus or io; CPUS a host CPU list
 * ("2", "0-3,8"). The host CPUs must exist. 0, or -EINVAL with one line
 * starting with what_flag ("--pin").
 */
int pin_parse(const char *what_flag, const char *arg, struct pin_config *p, char *err,
	      size_t errlen);
/* Every vcpuN names a vCPU the VM has. 0 or -EINVAL with one line. */
int pin_check(const char *what_flag, const struct pin_config *p, unsigned cpus, char *err,
	      size_t errlen);

/* Remembers where keel-vmm may run before anything is pinned: call once, first. */
void pin_init(void);
/* The CPUs vCPU `index` gets (its own pin, the vcpus set, or the start-up default). */
const cpu_set_t *pin_vcpu_set(const struct pin_config *p, unsigned index);
/* Pins one vCPU thread. 0 or -errno with one line. */
int pin_vcpu(const struct pin_config *p, unsigned index, pthread_t thread, char *err,
	     size_t errlen);
/*
 * Pins every thread of the process that is not a vCPU (named "vcpuN") to
 * the I/O set, or back to the start-up default without one. 0 or -errno.
 */
int pin_io_threads(const struct pin_config *p, char *err, size_t errlen);

/* A thread of this process, by its name (copied to comm when given). */
enum vmm_thread_kind { VMM_THREAD_IO, VMM_THREAD_VCPU, VMM_THREAD_KVM };
enum vmm_thread_kind vmm_thread_kind(pid_t tid, char *comm, size_t len);

/* "0-3,8" for a set (at least 16 bytes). */
void pin_format(const cpu_set_t *set, char *out, size_t len);

#endif
