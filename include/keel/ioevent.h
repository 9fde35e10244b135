/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The doorbell fast path: "signal this eventfd when the guest writes here".
 *
 * With KVM the provider is KVM_IOEVENTFD: the write never leaves the kernel,
 * so the vCPU thread does not exit to user space for a queue notification.
 * Without a provider (tests, or a host without the capability) the same
 * write arrives as an ordinary bus write, and the device's handler writes
 * the same eventfd itself. Devices therefore always consume notifications
 * from the eventfd, and registration is purely an optimization: a device
 * must work identically whether add() succeeded, failed or was never called.
 *
 * Contract
 * - Ownership: the device creates and closes the eventfd. The provider only
 *   references it between add() and del(); the device calls del() before
 *   closing the fd. del() gets the same struct contents as add().
 * - When: devices call add() when the register becomes decoded at an
 *   address (PCI BAR mapped with memory decode on) and del() when it stops
 *   being decoded there (BAR moved, decode turned off, device destroyed).
 *   Calls come from vCPU threads (inside a config-space write) or from the
 *   thread creating/destroying the device; a provider must be thread-safe.
 *   add() and del() must not call back into the device or the bus.
 * - Matching: `len` 1, 2, 4 or 8 matches writes of exactly that size at
 *   `addr`; len 0 matches a write of any size (KVM_CAP_IOEVENTFD_ANY_LENGTH).
 *   With `datamatch`, only writes of value `data` signal.
 * - add() returns 0, or -errno (the device then relies on the bus path and
 *   logs nothing: the only cost is a slower notification).
 */
#ifndef KEEL_IOEVENT_H
#define KEEL_IOEVENT_H

#include <stdbool.h>
#include <stdint.h>

struct ioeventfd {
	uint64_t addr;
	unsigned len;
	bool pio; /* port I/O rather than MMIO */
	bool datamatch;
	uint64_t data;
	int fd;
};

struct ioeventfd_provider {
	int (*add)(struct ioeventfd_provider *p, const struct ioeventfd *ev);
	void (*del)(struct ioeventfd_provider *p, const struct ioeventfd *ev);
};

#endif
