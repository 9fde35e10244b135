// SPDX-License-Identifier: Apache-2.0
/*
 * Order of the load follows what KVM checks on each call (the same order
 * QEMU's kvm_arch_put_registers uses): CPUID first (it decides which MSRs
 * and XSAVE features exist), then registers, XSAVE and XCRs, special
 * registers (EFER, APIC base), MSRs, MP state, the local APIC, events and
 * debug registers. The TSC-deadline MSR is written once more after the
 * LAPIC: KVM drops it while the LAPIC timer is not in deadline mode, and a
 * Linux guest whose deadline is lost never gets another timer interrupt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "vmm/cpu_state.h"

#define CPU_STATE_VERSION 1
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MAX_CPUID_ENTRIES 512

static int fail(char *err, size_t errlen, struct vcpu *v, const char *what)
{
	int e = errno;

	snprintf(err, errlen, "vCPU %u: %s failed: %s", v->index, what, strerror(e));
	return -e;
}

/* A run of vCPU ioctls, each named for the message when it fails. */
struct kvm_call {
	unsigned long req;
	void *arg;
	const char *name;
};

static int run_calls(struct vcpu *v, const struct kvm_call *c, unsigned n, char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++)
		if (ioctl(v->fd, c[i].req, c[i].arg) < 0)
			return fail(err, errlen, v, c[i].name);
	return 0;
}

/* KVM_GET/SET_MSRS on one MSR. A union rather than a struct with the
 * entry after the header: kvm_msrs ends in a flexible array, and clang
 * rightly refuses a flexible array that is not last. */
static int one_msr(struct vcpu *v, unsigned long req, uint32_t index, uint64_t *value)
{
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.hdr.entries[0].index = index;
	m.hdr.entries[0].data = *value;
	if (ioctl(v->fd, req, &m) != 1)
		return -EINVAL;
	*value = m.hdr.entries[0].data;
	return 0;
}

static int read_msr(struct vcpu *v, uint32_t index, uint64_t *value)
{
	*value = 0;
	return one_msr(v, KVM_GET_MSRS, index, value);
}

static int add_unique(struct cpu_msr_list *l, uint32_t index, unsigned cap)
{
	for (unsigned i = 0; i < l->nr; i++)
		if (l->index[i] == index)
			return 0;
	if (l->nr == cap)
		return -ENOSPC;
	l->index[l->nr++] = index;
	return 0;
}

int cpu_msr_list_build(struct cpu_msr_list *l, struct vcpu *v, char *err, size_t errlen)
{
	struct kvm *kvm = v->env->kvm;
	struct kvm_msr_list probe = { .nmsrs = 0 }, *feat = NULL;
	unsigned cap;
	uint64_t val;

	/* KVM_GET_MSR_FEATURE_INDEX_LIST is absent on old kernels: then none. */
	if (ioctl(kvm->dev_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &probe) < 0 && errno == E2BIG) {
		feat = calloc(1, sizeof(*feat) + probe.nmsrs * sizeof(uint32_t));
		if (feat) {
			feat->nmsrs = probe.nmsrs;
			if (ioctl(kvm->dev_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, feat) < 0)
				feat->nmsrs = 0;
		}
	}
	cap = kvm->nr_msrs + (feat ? feat->nmsrs : 0);
	l->nr = 0;
	l->index = calloc(cap + 1, sizeof(uint32_t));
	if (!l->index) {
		free(feat);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* KVM_GET_MSRS stops at the first MSR it cannot read: keep only readable ones. */
	for (unsigned i = 0; i < kvm->nr_msrs; i++)
		if (!read_msr(v, kvm->msrs[i], &val))
			add_unique(l, kvm->msrs[i], cap);
	for (unsigned i = 0; feat && i < feat->nmsrs; i++)
		if (!read_msr(v, feat->indices[i], &val))
			add_unique(l, feat->indices[i], cap);
	free(feat);
	return 0;
}

void cpu_msr_list_free(struct cpu_msr_list *l)
{
	free(l->index);
	l->index = NULL;
	l->nr = 0;
}

/* The size of KVM's XSAVE area: larger than 4 KiB with AMX (KVM_CAP_XSAVE2). */
static size_t xsave_size(struct vcpu *v)
{
	int n = ioctl(v->env->kvm->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

static int save_msrs(struct vcpu *v, const struct cpu_msr_list *l, struct state_writer *w,
		     char *err, size_t errlen)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + l->nr * sizeof(struct kvm_msr_entry));
	int n;

	if (!m)
		return -ENOMEM;
	m->nmsrs = l->nr;
	for (unsigned i = 0; i < l->nr; i++)
		m->entries[i].index = l->index[i];
	n = ioctl(v->fd, KVM_GET_MSRS, m);
	if (n != (int)l->nr) {
		snprintf(err, errlen, "vCPU %u: KVM_GET_MSRS read %d of %u MSRs", v->index, n, l->nr);
		free(m);
		return -EIO;
	}
	state_put_u32(w, l->nr);
	for (unsigned i = 0; i < l->nr; i++) {
		state_put_u32(w, m->entries[i].index);
		state_put_u64(w, m->entries[i].data);
	}
	free(m);
	return 0;
}

int cpu_state_save(struct vcpu *v, const struct cpu_msr_list *msrs, struct state_writer *w,
		   char *err, size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dbg;
	struct kvm_cpuid2 *cpuid;
	size_t xs = xsave_size(v);
	struct kvm_xsave *xsave;
	char tag[32];
	int tsc_khz, r = 0;

	const struct kvm_call gets[] = {
		{ KVM_GET_REGS, &regs, "KVM_GET_REGS" },
		{ KVM_GET_SREGS, &sregs, "KVM_GET_SREGS" },
		{ KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS" },
		{ KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC" },
		{ KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE" },
		{ KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS" },
		{ KVM_GET_DEBUGREGS, &dbg, "KVM_GET_DEBUGREGS" },
	};

	r = run_calls(v, gets, ARRAY_SIZE(gets), err, errlen);
	if (r)
		return r;
	tsc_khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (tsc_khz < 0)
		return fail(err, errlen, v, "KVM_GET_TSC_KHZ");
	xsave = calloc(1, xs);
	cpuid = calloc(1, sizeof(*cpuid) + MAX_CPUID_ENTRIES * sizeof(cpuid->entries[0]));
	if (!xsave || !cpuid) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/*
	 * Exactly as many entries as we set: 6.1 kernels leave nent untouched
	 * on success (so a larger buffer would save stale zeros), newer ones
	 * only report the count on success.
	 */
	cpuid->nent = v->cpuid_nent;
	if (ioctl(v->fd, xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) {
		r = fail(err, errlen, v, "KVM_GET_XSAVE");
		goto out;
	}
	if (ioctl(v->fd, KVM_GET_CPUID2, cpuid) < 0) {
		r = fail(err, errlen, v, "KVM_GET_CPUID2");
		goto out;
	}
	snprintf(tag, sizeof(tag), "vcpu/%u", v->index);
	state_begin(w, tag, CPU_STATE_VERSION);
	state_put_u32(w, v->apic_id);
	state_put_u32(w, (uint32_t)tsc_khz);
	state_put_u32(w, cpuid->nent);
	state_put_bytes(w, cpuid->entries, cpuid->nent * sizeof(cpuid->entries[0]));
	state_put_bytes(w, &regs, sizeof(regs));
	state_put_bytes(w, &sregs, sizeof(sregs));
	state_put_u32(w, (uint32_t)xs);
	state_put_bytes(w, xsave, xs);
	state_put_bytes(w, &xcrs, sizeof(xcrs));
	r = save_msrs(v, msrs, w, err, errlen);
	state_put_bytes(w, &mp, sizeof(mp));
	state_put_bytes(w, &lapic, sizeof(lapic));
	state_put_bytes(w, &events, sizeof(events));
	state_put_bytes(w, &dbg, sizeof(dbg));
	state_end(w);
	if (!r && state_writer_error(w)) {
		r = state_writer_error(w);
		snprintf(err, errlen, "vCPU %u: cannot save its state: %s", v->index, strerror(-r));
	}
out:
	free(xsave);
	free(cpuid);
	return r;
}

/* Sets n MSRs, skipping (and logging) any KVM refuses, so one odd MSR does not stop a restore. */
static int load_msrs(struct vcpu *v, struct kvm_msrs *m)
{
	unsigned done = 0, total = m->nmsrs;
	struct kvm_msr_entry *all = m->entries;

	while (done < total) {
		int n;

		memmove(m->entries, all + done, (total - done) * sizeof(*all));
		m->nmsrs = total - done;
		n = ioctl(v->fd, KVM_SET_MSRS, m);
		if (n < 0)
			return -errno;
		done += (unsigned)n;
		if (done < total) {
			log_debug("vCPU %u: KVM refused MSR %#x = %#llx; skipped", v->index,
				  all[done].index, (unsigned long long)all[done].data);
			done++;
		}
	}
	return 0;
}

static int set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	return one_msr(v, KVM_SET_MSRS, index, &value);
}

int cpu_state_load(struct vcpu *v, struct state_reader *rd, char *err, size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dbg;
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_xsave *xsave = NULL;
	struct kvm_msrs *msrs = NULL;
	struct state_section s;
	uint32_t apic_id, tsc_khz, nent, xs, nmsrs;
	uint64_t deadline = 0;
	bool have_deadline = false;
	char tag[32];
	int cur_khz, r = -EINVAL;

	snprintf(tag, sizeof(tag), "vcpu/%u", v->index);
	if (state_find(rd, tag, &s)) {
		snprintf(err, errlen, "no state for %s", tag);
		return -EINVAL;
	}
	if (state_check_version(&s, CPU_STATE_VERSION, CPU_STATE_VERSION, err, errlen))
		return -EINVAL;
	apic_id = state_get_u32(&s);
	tsc_khz = state_get_u32(&s);
	nent = state_get_u32(&s);
	if (apic_id != v->apic_id || nent > MAX_CPUID_ENTRIES) {
		snprintf(err, errlen, "%s: APIC ID %u or %u CPUID entries do not fit this VM", tag,
			 apic_id, nent);
		return -EINVAL;
	}
	cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
	if (!cpuid)
		goto nomem;
	cpuid->nent = nent;
	state_get_bytes(&s, cpuid->entries, nent * sizeof(cpuid->entries[0]));
	state_get_bytes(&s, &regs, sizeof(regs));
	state_get_bytes(&s, &sregs, sizeof(sregs));
	xs = state_get_u32(&s);
	if (xs != xsave_size(v)) {
		snprintf(err, errlen, "%s: XSAVE area of %u bytes, this host's KVM uses %zu (another CPU?)",
			 tag, xs, xsave_size(v));
		goto out;
	}
	xsave = calloc(1, xs);
	if (!xsave)
		goto nomem;
	state_get_bytes(&s, xsave, xs);
	state_get_bytes(&s, &xcrs, sizeof(xcrs));
	nmsrs = state_get_u32(&s);
	if (nmsrs > 4096 || !state_section_ok(&s)) {
		snprintf(err, errlen, "%s: state section is cut short or has %u MSRs", tag, nmsrs);
		goto out;
	}
	msrs = calloc(1, sizeof(*msrs) + nmsrs * sizeof(struct kvm_msr_entry));
	if (!msrs)
		goto nomem;
	msrs->nmsrs = nmsrs;
	for (unsigned i = 0; i < nmsrs; i++) {
		msrs->entries[i].index = state_get_u32(&s);
		msrs->entries[i].data = state_get_u64(&s);
		if (msrs->entries[i].index == MSR_IA32_TSC_DEADLINE) {
			have_deadline = true;
			deadline = msrs->entries[i].data;
		}
	}
	state_get_bytes(&s, &mp, sizeof(mp));
	state_get_bytes(&s, &lapic, sizeof(lapic));
	state_get_bytes(&s, &events, sizeof(events));
	state_get_bytes(&s, &dbg, sizeof(dbg));
	if (state_finish(&s, err, errlen))
		goto out;

	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		r = fail(err, errlen, v, "KVM_SET_CPUID2 (the snapshot's CPU features)");
		goto out;
	}
	v->cpuid_nent = nent;
	cur_khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (tsc_khz && cur_khz > 0 && (uint32_t)cur_khz != tsc_khz &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)tsc_khz) < 0)
		log_warn("vCPU %u: the guest's TSC ran at %u kHz, this host's at %d kHz, and KVM cannot scale it: guest time may drift",
			 v->index, tsc_khz, cur_khz);
	{
		const struct kvm_call before_msrs[] = {
			{ KVM_SET_REGS, &regs, "KVM_SET_REGS" },
			{ KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE" },
			{ KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS" },
			{ KVM_SET_SREGS, &sregs, "KVM_SET_SREGS" },
		};
		const struct kvm_call after_msrs[] = {
			{ KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE" },
			{ KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC" },
		};
		const struct kvm_call last[] = {
			{ KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS" },
			{ KVM_SET_DEBUGREGS, &dbg, "KVM_SET_DEBUGREGS" },
		};

		r = run_calls(v, before_msrs, ARRAY_SIZE(before_msrs), err, errlen);
		if (r)
			goto out;
		r = load_msrs(v, msrs);
		if (r) {
			snprintf(err, errlen, "vCPU %u: KVM_SET_MSRS failed: %s", v->index, strerror(-r));
			goto out;
		}
		r = run_calls(v, after_msrs, ARRAY_SIZE(after_msrs), err, errlen);
		if (r)
			goto out;
		if (have_deadline)
			set_msr(v, MSR_IA32_TSC_DEADLINE, deadline);
		/* What GET reported is valid; pending NMIs and the SIPI vector are ours to restore too. */
		events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
		r = run_calls(v, last, ARRAY_SIZE(last), err, errlen);
		goto out;
	}
nomem:
	r = -ENOMEM;
	snprintf(err, errlen, "out of memory");
out:
	free(cpuid);
	free(xsave);
	free(msrs);
	return r;
}
