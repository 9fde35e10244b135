// SPDX-License-Identifier: Apache-2.0
/*
 * The KVM side of the device fast paths (include/keel/irq.h, ioevent.h):
 * MSI-X vectors as irqfds bound to GSI routes, queue doorbells as
 * ioeventfds. Devices register once; we keep the list and push it into
 * every KVM VM the machine creates (one per guest boot).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "vmm/kvm.h"

/* GSIs 0-23 are the IOAPIC pins (0-15 also the PICs'); MSI routes follow. */
#define IOAPIC_PINS 24
#define MSI_GSI_FIRST IOAPIC_PINS
#define MSI_GSI_LIMIT 1024

/*
 * KVM_SET_GSI_ROUTING replaces the whole table, so it must repeat the
 * default wiring of the legacy lines that KVM_CREATE_IRQCHIP set up.
 */
static unsigned default_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < 16) {
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
		}
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
	}
	return n;
}

/* Pushes the legacy routes plus every MSI route. Lock held. */
static int push_routes(struct kvm *kvm)
{
	unsigned max = 40 + kvm->nr_routes;
	struct kvm_irq_routing *t;
	unsigned n;
	int r = 0;

	if (kvm->vm_fd < 0)
		return 0; /* between boots: the next VM gets them on replay */
	t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	n = default_routes(t->entries);
	for (unsigned i = 0; i < kvm->nr_routes; i++) {
		const struct kvm_msi_route *m = &kvm->routes[i];

		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = m->gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)m->addr,
				   .address_hi = (uint32_t)(m->addr >> 32), .data = m->data },
		};
	}
	t->nr = n;
	if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		r = -errno;
	free(t);
	return r;
}

static int bind_irqfd(struct kvm *kvm, const struct kvm_msi_route *m, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)m->fd, .gsi = m->gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (kvm->vm_fd < 0)
		return 0;
	return ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static struct kvm_msi_route *find_route(struct kvm *kvm, int fd)
{
	for (unsigned i = 0; i < kvm->nr_routes; i++)
		if (kvm->routes[i].fd == fd)
			return &kvm->routes[i];
	return NULL;
}

static uint32_t free_gsi(struct kvm *kvm)
{
	for (uint32_t gsi = MSI_GSI_FIRST; gsi < MSI_GSI_LIMIT; gsi++) {
		bool used = false;

		for (unsigned i = 0; i < kvm->nr_routes && !used; i++)
			used = kvm->routes[i].gsi == gsi;
		if (!used)
			return gsi;
	}
	return 0;
}

static int irqfd_add(struct irq_chip *chip, int fd, uint64_t addr, uint32_t data, bool masked)
{
	struct kvm *kvm = container_of(chip, struct kvm, chip);
	struct kvm_msi_route *m;
	int r;

	pthread_mutex_lock(&kvm->fastpath_lock);
	if (kvm->nr_routes == kvm->cap_routes) {
		unsigned cap = kvm->cap_routes ? kvm->cap_routes * 2 : 32;

		m = realloc(kvm->routes, cap * sizeof(*m));
		if (!m) {
			r = -ENOMEM;
			goto out;
		}
		kvm->routes = m;
		kvm->cap_routes = cap;
	}
	m = &kvm->routes[kvm->nr_routes];
	*m = (struct kvm_msi_route){ .fd = fd, .gsi = free_gsi(kvm), .addr = addr, .data = data };
	if (!m->gsi) {
		r = -ENOSPC;
		goto out;
	}
	kvm->nr_routes++;
	r = push_routes(kvm);
	if (!r)
		r = bind_irqfd(kvm, m, true);
	if (r)
		kvm->nr_routes--; /* the device falls back to KVM_SIGNAL_MSI */
out:
	pthread_mutex_unlock(&kvm->fastpath_lock);
	return r;
}

static int irqfd_update(struct irq_chip *chip, int fd, uint64_t addr, uint32_t data, bool masked)
{
	struct kvm *kvm = container_of(chip, struct kvm, chip);
	struct kvm_msi_route *m;
	int r = -ENOENT;

	pthread_mutex_lock(&kvm->fastpath_lock);
	m = find_route(kvm, fd);
	/* A masked vector is never signalled (irq.h), so its route may stay stale. */
	if (m && !masked && (m->addr != addr || m->data != data)) {
		m->addr = addr;
		m->data = data;
		r = push_routes(kvm);
	} else if (m) {
		r = 0;
	}
	pthread_mutex_unlock(&kvm->fastpath_lock);
	return r;
}

static void irqfd_del(struct irq_chip *chip, int fd)
{
	struct kvm *kvm = container_of(chip, struct kvm, chip);
	struct kvm_msi_route *m;

	pthread_mutex_lock(&kvm->fastpath_lock);
	m = find_route(kvm, fd);
	if (m) {
		bind_irqfd(kvm, m, false);
		*m = kvm->routes[--kvm->nr_routes];
		push_routes(kvm);
	}
	pthread_mutex_unlock(&kvm->fastpath_lock);
}

static int bind_ioeventfd(struct kvm *kvm, const struct ioeventfd *ev, bool assign)
{
	struct kvm_ioeventfd k = {
		.datamatch = ev->data, .addr = ev->addr, .len = ev->len, .fd = ev->fd,
		.flags = (ev->pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (ev->datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (kvm->vm_fd < 0)
		return 0;
	return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &k) < 0 ? -errno : 0;
}

static int ioevent_add(struct ioeventfd_provider *p, const struct ioeventfd *ev)
{
	struct kvm *kvm = container_of(p, struct kvm, ioevents);
	int r;

	pthread_mutex_lock(&kvm->fastpath_lock);
	if (kvm->nr_ioevs == kvm->cap_ioevs) {
		unsigned cap = kvm->cap_ioevs ? kvm->cap_ioevs * 2 : 32;
		struct ioeventfd *n = realloc(kvm->ioevs, cap * sizeof(*n));

		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		kvm->ioevs = n;
		kvm->cap_ioevs = cap;
	}
	r = bind_ioeventfd(kvm, ev, true);
	if (!r)
		kvm->ioevs[kvm->nr_ioevs++] = *ev;
out:
	pthread_mutex_unlock(&kvm->fastpath_lock);
	return r;
}

static void ioevent_del(struct ioeventfd_provider *p, const struct ioeventfd *ev)
{
	struct kvm *kvm = container_of(p, struct kvm, ioevents);

	pthread_mutex_lock(&kvm->fastpath_lock);
	for (unsigned i = 0; i < kvm->nr_ioevs; i++) {
		struct ioeventfd *e = &kvm->ioevs[i];

		if (e->fd == ev->fd && e->addr == ev->addr && e->pio == ev->pio) {
			bind_ioeventfd(kvm, e, false);
			*e = kvm->ioevs[--kvm->nr_ioevs];
			break;
		}
	}
	pthread_mutex_unlock(&kvm->fastpath_lock);
}

void kvm_fastpath_init(struct kvm *kvm)
{
	pthread_mutex_init(&kvm->fastpath_lock, NULL);
	kvm->chip.irqfd_add = irqfd_add;
	kvm->chip.irqfd_update = irqfd_update;
	kvm->chip.irqfd_del = irqfd_del;
	kvm->ioevents.add = ioevent_add;
	kvm->ioevents.del = ioevent_del;
}

int kvm_fastpath_publish(struct kvm *kvm, int vm_fd)
{
	int r;

	/*
	 * One hold of the lock: a device registering between publishing the fd
	 * and the replay would be bound twice (KVM_IOEVENTFD answers EEXIST).
	 */
	pthread_mutex_lock(&kvm->fastpath_lock);
	kvm->vm_fd = vm_fd;
	r = kvm->nr_routes ? push_routes(kvm) : 0;
	for (unsigned i = 0; !r && i < kvm->nr_routes; i++)
		r = bind_irqfd(kvm, &kvm->routes[i], true);
	for (unsigned i = 0; !r && i < kvm->nr_ioevs; i++)
		r = bind_ioeventfd(kvm, &kvm->ioevs[i], true);
	pthread_mutex_unlock(&kvm->fastpath_lock);
	return r;
}

void kvm_fastpath_destroy(struct kvm *kvm)
{
	free(kvm->routes);
	free(kvm->ioevs);
	kvm->routes = NULL;
	kvm->ioevs = NULL;
	kvm->nr_routes = kvm->nr_ioevs = 0;
	pthread_mutex_destroy(&kvm->fastpath_lock);
}
