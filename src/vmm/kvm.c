// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "vmm/kvm.h"
#include "vmm/layout.h"

#define FAIL(code, ...)                                  \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -(code);                          \
	} while (0)

/* Every capability keel-vmm depends on, and why. */
static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY (guest RAM from our memfd)" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (in-kernel IOAPIC, PIC and local APICs)" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2 (in-kernel i8254 timer)" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID (KVM_GET_SUPPORTED_CPUID)" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE (secondary vCPUs waiting for SIPI)" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT (stopping vCPUs without races)" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING (MSI routes)" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI (message-signalled interrupts)" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD (device notifications)" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD (device interrupts)" },
};

/*
 * Test seam: KEEL_TEST_HIDE_KVM_CAPS=NAME[,NAME] makes keel-vmm act as if
 * KVM lacked those capabilities, so the error path is tested on hosts that
 * have them all.
 */
static bool cap_hidden(const char *name)
{
	const char *hide = getenv("KEEL_TEST_HIDE_KVM_CAPS");
	size_t len = strcspn(name, " ");

	for (const char *p = hide; p && *p;) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, name, len))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

static int check_cap(const struct kvm *kvm, int cap)
{
	int r = ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static int load_supported_cpuid(struct kvm *kvm, char *err, size_t errlen)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			FAIL(ENOMEM, "out of memory");
		c->nent = n;
		if (ioctl(kvm->dev_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->nr_cpuid = c->nent;
			kvm->cpuid = malloc(c->nent * sizeof(c->entries[0]));
			if (kvm->cpuid)
				memcpy(kvm->cpuid, c->entries, c->nent * sizeof(c->entries[0]));
			free(c);
			if (!kvm->cpuid)
				FAIL(ENOMEM, "out of memory");
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			FAIL(errno, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
	}
	FAIL(E2BIG, "KVM_GET_SUPPORTED_CPUID returned too many entries");
}

static int load_msr_list(struct kvm *kvm, char *err, size_t errlen)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;

	/* The first call fails with E2BIG and tells the size. */
	if (ioctl(kvm->dev_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		FAIL(errno, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		FAIL(ENOMEM, "out of memory");
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm->dev_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int e = errno;

		free(list);
		FAIL(e, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(e));
	}
	kvm->msrs = malloc(list->nmsrs * sizeof(uint32_t) + 1);
	if (kvm->msrs) {
		memcpy(kvm->msrs, list->indices, list->nmsrs * sizeof(uint32_t));
		kvm->nr_msrs = list->nmsrs;
	}
	free(list);
	if (!kvm->msrs)
		FAIL(ENOMEM, "out of memory");
	return 0;
}

static int kvm_set_level(struct irq_chip *chip, uint32_t gsi, bool level)
{
	struct kvm *kvm = container_of(chip, struct kvm, chip);
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

static int kvm_signal_msi(struct irq_chip *chip, uint64_t addr, uint32_t data)
{
	struct kvm *kvm = container_of(chip, struct kvm, chip);
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	/* 0 means the guest masked or had no destination: not an error. */
	return ioctl(kvm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

int kvm_open(struct kvm *kvm, const char *dev_path, char *err, size_t errlen)
{
	int version, r;

	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	kvm->chip.set_level = kvm_set_level;
	kvm->chip.signal_msi = kvm_signal_msi;
	kvm_fastpath_init(kvm);
	kvm->dev_fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (kvm->dev_fd < 0) {
		int e = errno;

		if (e == ENOENT)
			FAIL(e, "%s does not exist: is the kvm module loaded and does this host have hardware virtualization?",
			     dev_path);
		if (e == EACCES || e == EPERM)
			FAIL(e, "no permission to open %s: run as root or add this user to the group that owns it (usually 'kvm')",
			     dev_path);
		FAIL(e, "cannot open %s: %s", dev_path, strerror(e));
	}
	version = ioctl(kvm->dev_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		FAIL(ENOTSUP, "%s speaks KVM API version %d; keel-vmm needs %d", dev_path, version,
		     KVM_API_VERSION);
	for (unsigned i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (!check_cap(kvm, required_caps[i].cap) || cap_hidden(required_caps[i].name))
			FAIL(ENOTSUP, "KVM on this host lacks %s", required_caps[i].name);
	}
	kvm->vcpu_mmap_size = ioctl(kvm->dev_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->vcpu_mmap_size < (int)sizeof(struct kvm_run))
		FAIL(EINVAL, "KVM_GET_VCPU_MMAP_SIZE returned %d", kvm->vcpu_mmap_size);
	/* MAX_VCPUS is the hard limit; older kernels only know NR_VCPUS. */
	r = check_cap(kvm, KVM_CAP_MAX_VCPUS);
	kvm->max_vcpus = r > 0 ? (unsigned)r : (unsigned)MAX(check_cap(kvm, KVM_CAP_NR_VCPUS), 4);
	kvm->tsc_deadline = check_cap(kvm, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	r = load_supported_cpuid(kvm, err, errlen);
	if (!r)
		r = load_msr_list(kvm, err, errlen);
	return r;
}

void kvm_close(struct kvm *kvm)
{
	kvm_destroy_vm(kvm);
	if (kvm->dev_fd >= 0)
		close(kvm->dev_fd);
	kvm->dev_fd = -1;
	free(kvm->cpuid);
	free(kvm->msrs);
	kvm_fastpath_destroy(kvm);
	kvm->cpuid = NULL;
	kvm->msrs = NULL;
}

int kvm_open_vm(const struct kvm *kvm, int *vm_fd, char *err, size_t errlen)
{
	uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;
	int fd, r;

	fd = ioctl(kvm->dev_fd, KVM_CREATE_VM, 0);
	if (fd < 0)
		FAIL(errno, "KVM_CREATE_VM failed: %s", strerror(errno));
	/* Intel needs these two areas inside guest-physical space; AMD ignores them. */
	if (ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	if (check_cap(kvm, KVM_CAP_SET_IDENTITY_MAP_ADDR) &&
	    ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		snprintf(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	*vm_fd = fd;
	return 0;
fail:
	r = errno;
	close(fd);
	return -r;
}

int kvm_vm_add_irqchip(int vm_fd, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		FAIL(errno, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		FAIL(errno, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
	return 0;
}

int kvm_use_vm(struct kvm *kvm, int vm_fd, char *err, size_t errlen)
{
	int r;

	/* Published only now, complete, for devices registering fast paths meanwhile. */
	r = kvm_fastpath_publish(kvm, vm_fd);
	if (r)
		FAIL(-r, "cannot give the devices' irqfds and ioeventfds to KVM: %s", strerror(-r));
	return 0;
}

int kvm_create_vm(struct kvm *kvm, char *err, size_t errlen)
{
	int fd, r = kvm_open_vm(kvm, &fd, err, errlen);

	if (!r) {
		r = kvm_vm_add_irqchip(fd, err, errlen);
		if (r)
			close(fd);
	}
	return r ? r : kvm_use_vm(kvm, fd, err, errlen);
}

void kvm_destroy_vm(struct kvm *kvm)
{
	int fd;

	pthread_mutex_lock(&kvm->fastpath_lock);
	fd = kvm->vm_fd;
	kvm->vm_fd = -1;
	pthread_mutex_unlock(&kvm->fastpath_lock);
	if (fd >= 0)
		close(fd);
}

int kvm_set_memory_slot(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	return kvm_set_memory_slot_flags(kvm, slot, gpa, size, hva, 0);
}

int kvm_set_memory_slot_flags(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size,
			      void *hva, uint32_t flags)
{
	return kvm_vm_set_memory_slot(kvm->vm_fd, slot, gpa, size, hva, flags);
}

int kvm_vm_set_memory_slot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
			   uint32_t flags)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ? -errno : 0;
}

bool kvm_has_msr(const struct kvm *kvm, uint32_t index)
{
	for (unsigned i = 0; i < kvm->nr_msrs; i++)
		if (kvm->msrs[i] == index)
			return true;
	return false;
}
