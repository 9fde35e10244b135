/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vCPU's whole state as KVM holds it, saved to and loaded from a state
 * section "vcpu/N": general and special registers, FPU/SSE/AVX (XSAVE),
 * XCRs, MSRs (TSC and kvmclock among them), local APIC, MP state, pending
 * events, debug registers, CPUID and TSC frequency. The vCPU must be
 * parked (or not yet started).
 */
#ifndef KEEL_VMM_CPU_STATE_H
#define KEEL_VMM_CPU_STATE_H

#include <stddef.h>

#include "keel/state.h"
#include "vmm/vcpu.h"

/*
 * The MSRs a vCPU's state includes: KVM's saved-MSR list and its
 * feature-MSR list (KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST),
 * kept to those this vCPU can read (its CPUID decides). Built once per VM.
 */
struct cpu_msr_list {
	uint32_t *index;
	unsigned nr;
};

int cpu_msr_list_build(struct cpu_msr_list *l, struct vcpu *v, char *err, size_t errlen);
void cpu_msr_list_free(struct cpu_msr_list *l);

int cpu_state_save(struct vcpu *v, const struct cpu_msr_list *msrs, struct state_writer *w,
		   char *err, size_t errlen);
/* Loads section "vcpu/N" into a created, not yet run vCPU. */
int cpu_state_load(struct vcpu *v, struct state_reader *r, char *err, size_t errlen);

#endif
