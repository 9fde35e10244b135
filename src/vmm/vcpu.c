// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/thread.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"

/* The signal that knocks a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
/* MTRRs enabled, default type write-back: without it guest RAM would be uncached. */
#define MTRR_DEF_TYPE_ENABLED_WB ((1ULL << 11) | 6)

#define X86_CR0_PE 0x1ULL
#define X86_CR0_ET 0x10ULL
#define X86_CR0_PG 0x80000000ULL
#define X86_CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void kick_handler(int sig)
{
	/* Nothing: the point is that KVM_RUN returns with EINTR. */
}

int vcpu_init_signals(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static int set_cpuid(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm *kvm = v->env->kvm;
	unsigned max = kvm->nr_cpuid + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	struct cpuid_options opts = { .tsc_deadline = kvm->tsc_deadline };
	int n, r = 0;

	if (!c)
		return -ENOMEM;
	n = cpuid_build(kvm->cpuid, kvm->nr_cpuid, v->env->topo, v->index, &opts, c->entries, max);
	if (n < 0) {
		snprintf(err, errlen, "vCPU %u: cannot build CPUID: %s", v->index, strerror(-n));
		r = n;
	} else {
		c->nent = (uint32_t)n;
		v->cpuid_nent = (unsigned)n;
		if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
			r = -errno;
			snprintf(err, errlen, "vCPU %u: KVM_SET_CPUID2 failed: %s", v->index, strerror(errno));
		}
	}
	free(c);
	return r;
}

/* The MSR values a kernel finds after a reset, limited to what KVM keeps. */
static int set_boot_msrs(struct vcpu *v, char *err, size_t errlen)
{
	static const struct { uint32_t index; uint64_t value; } boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
		/* Every vCPU starts at TSC 0; KVM keeps writes this close together in sync. */
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_ENABLED_WB },
	};
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + ARRAY_SIZE(boot_msrs) *
					       sizeof(msrs->entries[0]));
	unsigned n = 0;
	int r;

	if (!msrs)
		return -ENOMEM;
	for (unsigned i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
		if (!kvm_has_msr(v->env->kvm, boot_msrs[i].index))
			continue;
		msrs->entries[n].index = boot_msrs[i].index;
		msrs->entries[n].data = boot_msrs[i].value;
		n++;
	}
	msrs->nmsrs = n;
	r = ioctl(v->fd, KVM_SET_MSRS, msrs);
	free(msrs);
	if (r < 0 || (unsigned)r != n) {
		snprintf(err, errlen, "vCPU %u: KVM_SET_MSRS set %d of %u MSRs", v->index, r, n);
		return -EINVAL;
	}
	return 0;
}

/*
 * Virtual-wire mode, as firmware leaves it: LINT0 passes the PIC's
 * interrupts (ExtINT), LINT1 is NMI. Linux relies on this until it has
 * switched to the IOAPIC.
 */
static int set_lapic_lints(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_lapic_state lapic;
	uint32_t lint0, lint1;

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		goto fail;
	memcpy(&lint0, lapic.regs + APIC_LVT_LINT0, 4);
	memcpy(&lint1, lapic.regs + APIC_LVT_LINT1, 4);
	/* Clear delivery mode (bits 8-10) and the mask (bit 16). */
	lint0 = (lint0 & ~0x10700u) | APIC_MODE_EXTINT << 8;
	lint1 = (lint1 & ~0x10700u) | APIC_MODE_NMI << 8;
	memcpy(lapic.regs + APIC_LVT_LINT0, &lint0, 4);
	memcpy(lapic.regs + APIC_LVT_LINT1, &lint1, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "vCPU %u: cannot program the local APIC: %s", v->index, strerror(errno));
	return -errno;
}

int vcpu_create(struct vcpu *v, struct vcpu_env *env, unsigned index, char *err, size_t errlen)
{
	struct kvm *kvm = env->kvm;
	int r;

	memset(v, 0, sizeof(*v));
	v->index = index;
	v->env = env;
	v->apic_id = cpu_topology_apic_id(env->topo, index);
	/* KVM's vCPU id is the APIC ID: that is what the in-kernel LAPIC reports. */
	v->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->apic_id);
	if (v->fd < 0) {
		snprintf(err, errlen, "vCPU %u: KVM_CREATE_VCPU failed: %s", index, strerror(errno));
		return -errno;
	}
	v->run = mmap(NULL, (size_t)kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		snprintf(err, errlen, "vCPU %u: cannot map kvm_run: %s", index, strerror(errno));
		return -errno;
	}
	/* A restore or a migration sets all of it from the saved state. */
	if (env->state_follows)
		return 0;
	r = set_cpuid(v, err, errlen);
	if (!r)
		r = set_boot_msrs(v, err, errlen);
	if (!r)
		r = set_lapic_lints(v, err, errlen);
	return r;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .s = 1, .g = 1,
		.db = code ? 0 : 1, /* a 64-bit code segment must have D clear */
		.l = code ? 1 : 0,
	};
}

int vcpu_setup_linux_entry(struct vcpu *v, const struct boot_linux_result *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	struct kvm_segment data = flat_segment(BOOT_GDT_DS, 3, false);

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_segment(BOOT_GDT_CS, 11, true);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = BOOT_GDT_TSS, .type = 11, .present = 1,
	};
	sregs.gdt.base = boot->gdt_addr;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	sregs.cr3 = boot->pml4_addr;
	sregs.cr4 = X86_CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2; /* bit 1 is reserved and always set */
	regs.rip = boot->entry_rip;
	regs.rsi = boot->boot_params_addr; /* the 64-bit protocol passes boot_params here */
	regs.rsp = LAYOUT_BOOT_PARAMS + 0x1ff0; /* scratch below the page tables */
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;     /* x87 reset value: all exceptions masked */
	fpu.mxcsr = 0x1f80;  /* SSE reset value */
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

static const char *const exit_kind_names[VCPU_EXIT_KINDS] = {
	[VCPU_EXIT_IO] = "io",
	[VCPU_EXIT_MMIO] = "mmio",
	[VCPU_EXIT_INTR] = "intr",
	[VCPU_EXIT_HLT] = "hlt",
	[VCPU_EXIT_SYSTEM_EVENT] = "system_event",
	[VCPU_EXIT_SHUTDOWN] = "shutdown",
	[VCPU_EXIT_FAIL_ENTRY] = "fail_entry",
	[VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	[VCPU_EXIT_OTHER] = "other",
};

const char *vcpu_exit_kind_name(enum vcpu_exit_kind k)
{
	return (unsigned)k < VCPU_EXIT_KINDS ? exit_kind_names[k] : "?";
}

static void count_exit(struct vcpu *v, enum vcpu_exit_kind k)
{
	atomic_fetch_add_explicit(&v->stats.exits[k], 1, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;
	bool handled = true;

	/* String I/O (rep ins/outs) arrives as `count` items back to back. */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			handled = bus_write(v->env->pio, run->io.port, data, size) && handled;
		else
			handled = bus_read(v->env->pio, run->io.port, data, size) && handled;
	}
	if (!handled) {
		atomic_fetch_add(&v->stats.unhandled_io, 1);
		if (log_get_level() >= LOG_LEVEL_DEBUG)
			log_debug("vCPU %u: %s of port 0x%x (size %u) has no device", v->index,
				  run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
				  run->io.port, size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	bool handled;

	if (run->mmio.len > 8) {
		log_guest("vCPU %u: MMIO access of %u bytes at 0x%llx", v->index, run->mmio.len,
			  (unsigned long long)run->mmio.phys_addr);
		return;
	}
	if (run->mmio.is_write)
		handled = bus_write(v->env->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
	else
		handled = bus_read(v->env->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
	if (!handled)
		atomic_fetch_add(&v->stats.unhandled_mmio, 1);
	if (!handled && log_get_level() >= LOG_LEVEL_DEBUG)
		log_debug("vCPU %u: MMIO %s at 0x%llx has no device", v->index,
			  run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr);
}

static void crash(struct vcpu *v, const char *what)
{
	log_error("vCPU %u: %s", v->index, what);
	vcpu_dump_regs(v);
	vm_request_stop(v->env->events, VM_STOP_CRASH);
}

/* One exit; false when the vCPU must stop running. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[160];
	uint64_t t0;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		count_exit(v, VCPU_EXIT_IO);
		t0 = now_ns();
		handle_io(v);
		stats_histogram_add(&v->stats.io_handling, now_ns() - t0);
		return true;
	case KVM_EXIT_MMIO:
		count_exit(v, VCPU_EXIT_MMIO);
		t0 = now_ns();
		handle_mmio(v);
		stats_histogram_add(&v->stats.mmio_handling, now_ns() - t0);
		return true;
	case KVM_EXIT_INTR:
		count_exit(v, VCPU_EXIT_INTR);
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; keep the vCPU going. */
		count_exit(v, VCPU_EXIT_HLT);
		return true;
	case KVM_EXIT_SHUTDOWN:
		count_exit(v, VCPU_EXIT_SHUTDOWN);
		crash(v, "triple fault (KVM_EXIT_SHUTDOWN): the guest reset itself by faulting");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		count_exit(v, VCPU_EXIT_FAIL_ENTRY);
		snprintf(what, sizeof(what), "KVM could not enter the guest (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash(v, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		count_exit(v, VCPU_EXIT_INTERNAL_ERROR);
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)", run->internal.suberror);
		crash(v, what);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		count_exit(v, VCPU_EXIT_SYSTEM_EVENT);
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_stop(v->env->events, VM_STOP_POWEROFF);
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_stop(v->env->events, VM_STOP_RESET);
			return false;
		default:
			snprintf(what, sizeof(what), "guest reported system event %u", run->system_event.type);
			crash(v, what);
			return false;
		}
	default:
		count_exit(v, VCPU_EXIT_OTHER);
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
		crash(v, what);
		return false;
	}
}

/*
 * Called on the vCPU thread when `pause` is set. KVM_RUN with
 * immediate_exit completes an I/O or MMIO read we just answered (KVM
 * copies our data into the registers) and returns EINTR without entering
 * the guest; only then is the vCPU state whole.
 */
static void park(struct vcpu *v, bool entered)
{
	struct vcpu_park *p = &v->env->park;

	/*
	 * Nothing to complete for a thread that never entered the guest, or
	 * whose KVM_RUN a signal ended (KVM_EXIT_INTR comes after KVM finished
	 * any earlier exit): one KVM call less on a pause, a migration's
	 * downtime. After an immediate exit exit_reason is stale, so at worst
	 * the call is made for nothing.
	 */
	v->run->immediate_exit = 1;
	if (entered && v->run->exit_reason != KVM_EXIT_INTR && ioctl(v->fd, KVM_RUN, 0) == 0)
		log_warn("vCPU %u: KVM_RUN entered the guest despite immediate_exit", v->index);
	pthread_mutex_lock(&p->lock);
	v->parked = true;
	p->nr_parked++;
	atomic_fetch_add(&v->stats.pauses, 1);
	pthread_cond_broadcast(&p->parked);
	/* Work handed over is always done, even when a stop comes meanwhile. */
	while ((atomic_load(&v->pause) && !atomic_load(&v->stop)) || v->work) {
		if (v->work) {
			int (*fn)(struct vcpu *, void *) = v->work;
			int r;

			pthread_mutex_unlock(&p->lock);
			r = fn(v, v->work_arg);
			pthread_mutex_lock(&p->lock);
			v->work_result = r;
			v->work = NULL;
			p->work_left--;
			pthread_cond_broadcast(&p->parked);
			continue;
		}
		pthread_cond_wait(&p->resume, &p->lock);
	}
	v->parked = false;
	p->nr_parked--;
	pthread_mutex_unlock(&p->lock);
	/* Cleared before `pause` is looked at again, so a new kick is never lost. */
	v->run->immediate_exit = 0;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	bool entered = false;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	atomic_store(&v->tid, (int)gettid());
	/* Only the kick signal may interrupt this thread; the main thread owns the rest. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!atomic_load(&v->stop)) {
		if (atomic_load(&v->pause)) {
			park(v, entered);
			continue;
		}
		entered = true;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vCPU %u: KVM_RUN failed: %s", v->index, strerror(errno));
			vcpu_dump_regs(v);
			vm_request_stop(v->env->events, VM_STOP_CRASH);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	pthread_mutex_lock(&v->env->park.lock);
	v->ended = true;
	v->env->park.nr_parked++;
	pthread_cond_broadcast(&v->env->park.parked);
	pthread_mutex_unlock(&v->env->park.lock);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int r = thread_create(&v->thread, THREAD_STACK_SMALL, vcpu_thread, v);

	if (r)
		return -r;
	v->thread_started = true;
	return 0;
}

/* Out of KVM_RUN now: the flag that says why must be set before. */
static void kick(struct vcpu *v)
{
	if (v->run)
		v->run->immediate_exit = 1;
	if (v->thread_started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_request_stop(struct vcpu *v)
{
	atomic_store(&v->stop, true);
	kick(v);
	/* A parked thread waits on the condition variable, not in KVM_RUN. */
	pthread_mutex_lock(&v->env->park.lock);
	pthread_cond_broadcast(&v->env->park.resume);
	pthread_mutex_unlock(&v->env->park.lock);
}

int vcpu_park_init(struct vcpu_park *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	r = pthread_mutex_init(&p->lock, NULL);
	if (!r)
		r = pthread_cond_init(&p->resume, NULL);
	if (!r)
		r = pthread_cond_init(&p->parked, NULL);
	return -r;
}

void vcpu_park_destroy(struct vcpu_park *p)
{
	pthread_cond_destroy(&p->parked);
	pthread_cond_destroy(&p->resume);
	pthread_mutex_destroy(&p->lock);
}

int vcpus_pause(struct vcpu *vcpus, unsigned n, unsigned timeout_ms)
{
	struct vcpu_park *p;
	struct timespec deadline;
	int r = 0;

	if (!n)
		return 0;
	p = &vcpus[0].env->park;
	for (unsigned i = 0; i < n; i++) {
		atomic_store(&vcpus[i].pause, true);
		kick(&vcpus[i]);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (p->nr_parked < n && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&p->parked, &p->lock, &deadline);
	r = p->nr_parked < n ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&p->lock);
	if (r)
		vcpus_resume(vcpus, n);
	return r;
}

void vcpus_resume(struct vcpu *vcpus, unsigned n)
{
	if (!n)
		return;
	pthread_mutex_lock(&vcpus[0].env->park.lock);
	for (unsigned i = 0; i < n; i++)
		atomic_store(&vcpus[i].pause, false);
	pthread_cond_broadcast(&vcpus[0].env->park.resume);
	pthread_mutex_unlock(&vcpus[0].env->park.lock);
}

int vcpus_start_parked(struct vcpu *vcpus, unsigned n, unsigned timeout_ms)
{
	for (unsigned i = 0; i < n; i++) {
		int r;

		atomic_store(&vcpus[i].pause, true);
		r = vcpu_start(&vcpus[i]);
		if (r)
			return r;
	}
	return vcpus_pause(vcpus, n, timeout_ms);
}

int vcpus_run_parked(struct vcpu *vcpus, unsigned n, int (*fn)(struct vcpu *v, void *arg), void *arg)
{
	struct vcpu_park *p;
	int r = 0;

	if (!n)
		return 0;
	p = &vcpus[0].env->park;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = &vcpus[i];

		v->work_handed = v->thread_started && v->parked && !v->ended;
		if (v->work_handed) {
			v->work = fn;
			v->work_arg = arg;
			p->work_left++;
		}
	}
	pthread_cond_broadcast(&p->resume);
	pthread_mutex_unlock(&p->lock);
	/* Those without a parked thread meanwhile, here. */
	for (unsigned i = 0; i < n; i++)
		if (!vcpus[i].work_handed)
			vcpus[i].work_result = fn(&vcpus[i], arg);
	pthread_mutex_lock(&p->lock);
	while (p->work_left)
		pthread_cond_wait(&p->parked, &p->lock);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n && !r; i++)
		r = vcpus[i].work_result;
	return r;
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started)
		pthread_join(v->thread, NULL);
	v->thread_started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	vcpu_join(v);
	if (v->run)
		munmap(v->run, (size_t)v->env->kvm->vcpu_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void dump_segment(const char *name, const struct kvm_segment *s)
{
	log_error("  %-3s sel=%04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u s=%u l=%u g=%u",
		  name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->present,
		  s->dpl, s->db, s->s, s->l, s->g);
}

void vcpu_dump_regs(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: registers unavailable: %s", v->index, strerror(errno));
		return;
	}
	log_error("vCPU %u registers:", v->index);
	log_error("  rip=%016llx rsp=%016llx rflags=%016llx",
		  r.rip, r.rsp, r.rflags);
	log_error("  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx", r.rax, r.rbx, r.rcx, r.rdx);
	log_error("  rsi=%016llx rdi=%016llx rbp=%016llx r8 =%016llx", r.rsi, r.rdi, r.rbp, r.r8);
	log_error("  r9 =%016llx r10=%016llx r11=%016llx r12=%016llx", r.r9, r.r10, r.r11, r.r12);
	log_error("  r13=%016llx r14=%016llx r15=%016llx", r.r13, r.r14, r.r15);
	log_error("  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx",
		  s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	dump_segment("cs", &s.cs);
	dump_segment("ss", &s.ss);
	dump_segment("ds", &s.ds);
	dump_segment("tr", &s.tr);
	log_error("  gdt=%016llx/%04x idt=%016llx/%04x apic_base=%016llx",
		  s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit, s.apic_base);
}
