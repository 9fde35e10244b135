/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one place that talks to /dev/kvm for the VM as a whole: API version
 * and capability checks, the VM file descriptor with its in-kernel irqchip
 * and PIT, memory slots, and the irq_chip that devices raise interrupts
 * through (KVM_IRQ_LINE, KVM_SIGNAL_MSI). vCPUs are in vcpu.c.
 */
#ifndef KEEL_VMM_KVM_H
#define KEEL_VMM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include <pthread.h>

#include "keel/ioevent.h"
#include "keel/irq.h"

/* An MSI route behind an irqfd: a GSI of ours that KVM maps to addr/data. */
struct kvm_msi_route {
	int fd;
	uint32_t gsi;
	uint64_t addr;
	uint32_t data;
};

struct kvm {
	int dev_fd;
	int vm_fd;
	int vcpu_mmap_size;
	unsigned max_vcpus;
	bool tsc_deadline;               /* KVM_CAP_TSC_DEADLINE_TIMER */
	struct kvm_cpuid_entry2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID */
	unsigned nr_cpuid;
	uint32_t *msrs;                  /* KVM_GET_MSR_INDEX_LIST */
	unsigned nr_msrs;
	struct irq_chip chip;

	/*
	 * The fast paths devices registered (kvm_irq.c). Kept here, not only
	 * in KVM, because a guest reboot builds a new KVM VM: they are
	 * replayed into it by kvm_create_vm().
	 */
	struct ioeventfd_provider ioevents;
	pthread_mutex_t fastpath_lock;
	struct kvm_msi_route *routes;
	unsigned nr_routes, cap_routes;
	struct ioeventfd *ioevs;
	unsigned nr_ioevs, cap_ioevs;
};

/*
 * Opens the KVM device and checks everything keel-vmm relies on. 0, or
 * -errno with one line in err naming the device or the missing capability.
 */
int kvm_open(struct kvm *kvm, const char *dev_path, char *err, size_t errlen);
void kvm_close(struct kvm *kvm);

/* A fresh VM: TSS and identity map (Intel), IOAPIC+PIC+LAPICs, PIT. */
int kvm_create_vm(struct kvm *kvm, char *err, size_t errlen);
/*
 * The same in steps, so the first two can run on another thread while the
 * machine is set up: kvm_open_vm() makes the VM with its TSS and identity
 * map (touching nothing of kvm but its device fd), kvm_vm_add_irqchip()
 * adds the IOAPIC, PICs, LAPICs and PIT, kvm_use_vm() makes it kvm's and
 * gives it the devices' fast paths. Memory slots may come before the
 * irqchip; on the build machines' KVM they are much cheaper that way.
 */
int kvm_open_vm(const struct kvm *kvm, int *vm_fd, char *err, size_t errlen);
int kvm_vm_add_irqchip(int vm_fd, char *err, size_t errlen);
int kvm_use_vm(struct kvm *kvm, int vm_fd, char *err, size_t errlen);
void kvm_destroy_vm(struct kvm *kvm);

int kvm_set_memory_slot(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva);
/* The same with KVM_MEM_* flags (KVM_MEM_LOG_DIRTY_PAGES for live migration). */
int kvm_set_memory_slot_flags(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size,
			      void *hva, uint32_t flags);
/* The same on a VM fd of kvm_open_vm(). */
int kvm_vm_set_memory_slot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
			   uint32_t flags);

/* Whether KVM saves/restores this MSR (KVM_GET_MSR_INDEX_LIST). */
bool kvm_has_msr(const struct kvm *kvm, uint32_t index);

/* kvm_irq.c: the irqfd/ioeventfd providers, and their replay into a new VM. */
void kvm_fastpath_init(struct kvm *kvm);
/* Makes vm_fd the VM of kvm and binds every route and ioeventfd registered so far to it. */
int kvm_fastpath_publish(struct kvm *kvm, int vm_fd);
void kvm_fastpath_destroy(struct kvm *kvm);

#endif
