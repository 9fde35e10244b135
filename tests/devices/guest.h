/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host-side guest for PCI and virtio devices: a buffer playing guest RAM, the two buses, a PCI host
 * bridge, a fake irq_chip that records MSIs (optionally through irqfds, as
 * KVM would), a fake ioeventfd provider that can play KVM by turning
 * matching MMIO writes into eventfd signals, and an event loop the devices
 * under test run on (pumped from the test thread).
 */
#ifndef KEEL_TEST_GUEST_H
#define KEEL_TEST_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "keel/bus.h"
#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "keel/ioevent.h"
#include "keel/irq.h"
#include "pci/pci.h"

#define H_RAM_SIZE (32u << 20)
#define H_MAX_MSI 4096
#define H_MAX_IOEV 256
#define H_MAX_IRQFD 256

struct fake_chip {
	struct irq_chip chip;
	pthread_mutex_t lock;
	unsigned nr_msi;
	struct { uint64_t addr; uint32_t data; } msi[H_MAX_MSI];
	bool levels[64];
	unsigned nr_irqfd;
	struct { int fd; uint64_t addr; uint32_t data; bool masked; } irqfd[H_MAX_IRQFD];
};

struct fake_ioevents {
	struct ioeventfd_provider p;
	pthread_mutex_t lock;
	bool kvm_mode; /* intercept matching MMIO writes like KVM would */
	unsigned nr;
	struct ioeventfd ev[H_MAX_IOEV];
	unsigned hits; /* writes turned into eventfd signals */
};

struct guest {
	uint8_t *ram;
	uint64_t ram_size;
	struct guest_mem mem;
	uint64_t alloc_next;
	struct bus mmio, pio;
	struct pci_host *pci;
	struct fake_chip chip;
	struct fake_ioevents ioev;
	struct event_loop loop;
};

struct guest_opts {
	bool irqfd;   /* the chip offers the irqfd fast path */
	bool ioevent; /* the provider exists (kvm_mode says whether it intercepts) */
	bool kvm_mode;
	uint64_t ram_size; /* 0: H_RAM_SIZE */
};

int guest_init(struct guest *h, const struct guest_opts *opts);
void guest_destroy(struct guest *h);

/* Bump allocator in guest RAM, zeroed; never fails in tests (asserts). */
uint64_t h_alloc(struct guest *h, uint64_t len, uint64_t align);
void *h_ptr(struct guest *h, uint64_t gpa);

/* MMIO as the guest CPU does it (through the fake KVM when kvm_mode). */
uint64_t h_read(struct guest *h, uint64_t addr, unsigned size);
void h_write(struct guest *h, uint64_t addr, unsigned size, uint64_t v);

/* Config space through ECAM. */
uint32_t h_cfg_read(struct guest *h, unsigned slot, unsigned off, unsigned size);
void h_cfg_write(struct guest *h, unsigned slot, unsigned off, unsigned size, uint32_t v);

/* Runs the devices' event loop until nothing happens for `idle_ms`. */
void h_pump(struct guest *h, int idle_ms);
/* Reads irqfds into the MSI log; returns how many MSIs with this data so far. */
unsigned h_msi_count(struct guest *h, uint32_t data);
unsigned h_msi_total(struct guest *h);

#endif
