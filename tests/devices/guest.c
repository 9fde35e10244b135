// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"
#include "keel/compiler.h"

#define H_ECAM_BASE 0xe0000000ULL
#define H_MMIO32_BASE 0xc0000000ULL
#define H_MMIO64_BASE 0x100000000ULL

static int chip_set_level(struct irq_chip *c, uint32_t gsi, bool level)
{
	struct fake_chip *fc = container_of(c, struct fake_chip, chip);

	if (gsi >= ARRAY_SIZE(fc->levels))
		return -EINVAL;
	pthread_mutex_lock(&fc->lock);
	fc->levels[gsi] = level;
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

static void record_msi(struct fake_chip *fc, uint64_t addr, uint32_t data)
{
	if (fc->nr_msi < H_MAX_MSI) {
		fc->msi[fc->nr_msi].addr = addr;
		fc->msi[fc->nr_msi].data = data;
		fc->nr_msi++;
	}
}

static int chip_signal_msi(struct irq_chip *c, uint64_t addr, uint32_t data)
{
	struct fake_chip *fc = container_of(c, struct fake_chip, chip);

	pthread_mutex_lock(&fc->lock);
	record_msi(fc, addr, data);
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

static int chip_irqfd_add(struct irq_chip *c, int fd, uint64_t addr, uint32_t data, bool masked)
{
	struct fake_chip *fc = container_of(c, struct fake_chip, chip);
	int r = 0;

	pthread_mutex_lock(&fc->lock);
	if (fc->nr_irqfd == H_MAX_IRQFD) {
		r = -ENOSPC;
	} else {
		fc->irqfd[fc->nr_irqfd].fd = fd;
		fc->irqfd[fc->nr_irqfd].addr = addr;
		fc->irqfd[fc->nr_irqfd].data = data;
		fc->irqfd[fc->nr_irqfd].masked = masked;
		fc->nr_irqfd++;
	}
	pthread_mutex_unlock(&fc->lock);
	return r;
}

static int chip_irqfd_update(struct irq_chip *c, int fd, uint64_t addr, uint32_t data, bool masked)
{
	struct fake_chip *fc = container_of(c, struct fake_chip, chip);
	int r = -ENOENT;

	pthread_mutex_lock(&fc->lock);
	for (unsigned i = 0; i < fc->nr_irqfd; i++) {
		if (fc->irqfd[i].fd == fd) {
			fc->irqfd[i].addr = addr;
			fc->irqfd[i].data = data;
			fc->irqfd[i].masked = masked;
			r = 0;
		}
	}
	pthread_mutex_unlock(&fc->lock);
	return r;
}

static void chip_irqfd_del(struct irq_chip *c, int fd)
{
	struct fake_chip *fc = container_of(c, struct fake_chip, chip);

	pthread_mutex_lock(&fc->lock);
	for (unsigned i = 0; i < fc->nr_irqfd; i++) {
		if (fc->irqfd[i].fd == fd) {
			fc->irqfd[i] = fc->irqfd[--fc->nr_irqfd];
			break;
		}
	}
	pthread_mutex_unlock(&fc->lock);
}

static bool same_ioev(const struct ioeventfd *a, const struct ioeventfd *b)
{
	return a->addr == b->addr && a->len == b->len && a->fd == b->fd && a->pio == b->pio &&
	       a->datamatch == b->datamatch && a->data == b->data;
}

static int ioev_add(struct ioeventfd_provider *p, const struct ioeventfd *ev)
{
	struct fake_ioevents *f = container_of(p, struct fake_ioevents, p);
	int r = 0;

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nr; i++)
		if (f->ev[i].addr == ev->addr && f->ev[i].pio == ev->pio)
			r = -EEXIST; /* KVM refuses duplicates too */
	if (!r && f->nr == H_MAX_IOEV)
		r = -ENOSPC;
	if (!r)
		f->ev[f->nr++] = *ev;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void ioev_del(struct ioeventfd_provider *p, const struct ioeventfd *ev)
{
	struct fake_ioevents *f = container_of(p, struct fake_ioevents, p);

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nr; i++) {
		if (same_ioev(&f->ev[i], ev)) {
			f->ev[i] = f->ev[--f->nr];
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
}

int guest_init(struct guest *h, const struct guest_opts *opts)
{
	struct pci_host_config pc;

	memset(h, 0, sizeof(*h));
	h->ram_size = opts && opts->ram_size ? opts->ram_size : H_RAM_SIZE;
	h->ram = aligned_alloc(4096, h->ram_size);
	if (!h->ram)
		return -ENOMEM;
	memset(h->ram, 0, h->ram_size);
	guest_mem_add_region(&h->mem, 0, h->ram_size, h->ram);
	h->alloc_next = 0x10000; /* leave page 0 alone: a NULL gpa must stay invalid-looking */
	bus_init(&h->mmio, "mmio");
	bus_init(&h->pio, "pio");
	pthread_mutex_init(&h->chip.lock, NULL);
	h->chip.chip.set_level = chip_set_level;
	h->chip.chip.signal_msi = chip_signal_msi;
	if (opts && opts->irqfd) {
		h->chip.chip.irqfd_add = chip_irqfd_add;
		h->chip.chip.irqfd_update = chip_irqfd_update;
		h->chip.chip.irqfd_del = chip_irqfd_del;
	}
	pthread_mutex_init(&h->ioev.lock, NULL);
	h->ioev.p.add = ioev_add;
	h->ioev.p.del = ioev_del;
	h->ioev.kvm_mode = opts && opts->kvm_mode;
	event_loop_init(&h->loop);
	pc = (struct pci_host_config){
		.mmio = &h->mmio, .pio = &h->pio,
		.ecam_base = H_ECAM_BASE, .ecam_size = 256 << 20,
		.mmio32_base = H_MMIO32_BASE, .mmio32_size = 512 << 20,
		.mmio64_base = H_MMIO64_BASE, .mmio64_size = 1ULL << 32,
		.chip = &h->chip.chip,
		.ioevents = opts && opts->ioevent ? &h->ioev.p : NULL,
		.intx_gsi_base = 16, .intx_gsi_count = 8,
	};
	h->pci = pci_host_create(&pc);
	return h->pci ? 0 : -errno;
}

void guest_destroy(struct guest *h)
{
	pci_host_destroy(h->pci);
	event_loop_destroy(&h->loop);
	bus_destroy(&h->mmio);
	bus_destroy(&h->pio);
	pthread_mutex_destroy(&h->chip.lock);
	pthread_mutex_destroy(&h->ioev.lock);
	free(h->ram);
}

uint64_t h_alloc(struct guest *h, uint64_t len, uint64_t align)
{
	uint64_t a = ALIGN_UP(h->alloc_next, align);

	if (a + len > h->ram_size)
		abort();
	h->alloc_next = a + len;
	memset(h->ram + a, 0, len);
	return a;
}

void *h_ptr(struct guest *h, uint64_t gpa)
{
	return guest_mem_ptr(&h->mem, gpa, 0);
}

uint64_t h_read(struct guest *h, uint64_t addr, unsigned size)
{
	uint64_t v = 0;

	bus_read(&h->mmio, addr, &v, size);
	return v;
}

void h_write(struct guest *h, uint64_t addr, unsigned size, uint64_t v)
{
	if (h->ioev.kvm_mode) {
		int fd = -1;

		pthread_mutex_lock(&h->ioev.lock);
		for (unsigned i = 0; i < h->ioev.nr; i++) {
			const struct ioeventfd *e = &h->ioev.ev[i];

			if (!e->pio && e->addr == addr && (!e->len || e->len == size) &&
			    (!e->datamatch || e->data == v))
				fd = e->fd;
		}
		if (fd >= 0)
			h->ioev.hits++;
		pthread_mutex_unlock(&h->ioev.lock);
		if (fd >= 0) {
			uint64_t one = 1;

			if (write(fd, &one, 8) != 8)
				abort();
			return;
		}
	}
	bus_write(&h->mmio, addr, &v, size);
}

uint32_t h_cfg_read(struct guest *h, unsigned slot, unsigned off, unsigned size)
{
	return (uint32_t)h_read(h, H_ECAM_BASE + ((uint64_t)slot << 15) + off, size);
}

void h_cfg_write(struct guest *h, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	h_write(h, H_ECAM_BASE + ((uint64_t)slot << 15) + off, size, v);
}

void h_pump(struct guest *h, int idle_ms)
{
	for (int i = 0; i < 8; i++)
		event_loop_run_once(&h->loop, 0);
	if (idle_ms)
		event_loop_run_once(&h->loop, idle_ms);
}

static void collect_irqfds(struct guest *h)
{
	struct fake_chip *fc = &h->chip;

	pthread_mutex_lock(&fc->lock);
	for (unsigned i = 0; i < fc->nr_irqfd; i++) {
		uint64_t n;

		if (read(fc->irqfd[i].fd, &n, 8) == 8)
			for (uint64_t k = 0; k < n; k++)
				record_msi(fc, fc->irqfd[i].addr, fc->irqfd[i].data);
	}
	pthread_mutex_unlock(&fc->lock);
}

unsigned h_msi_count(struct guest *h, uint32_t data)
{
	unsigned n = 0;

	collect_irqfds(h);
	pthread_mutex_lock(&h->chip.lock);
	for (unsigned i = 0; i < h->chip.nr_msi; i++)
		n += h->chip.msi[i].data == data;
	pthread_mutex_unlock(&h->chip.lock);
	return n;
}

unsigned h_msi_total(struct guest *h)
{
	unsigned n;

	collect_irqfds(h);
	pthread_mutex_lock(&h->chip.lock);
	n = h->chip.nr_msi;
	pthread_mutex_unlock(&h->chip.lock);
	return n;
}
