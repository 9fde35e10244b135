/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MSI-X for a PCI function (PCI Local Bus 3.0, 6.8.2): the capability in
 * config space, the vector table and pending-bit array inside one of the
 * device's memory BARs, per-vector and function masks, and delivery through
 * the irq_chip: an irqfd per vector when the chip has that fast path,
 * signal_msi() otherwise.
 *
 * The device owns the BAR; its bus handler forwards accesses that fall in
 * the table or PBA ranges to msix_table_access()/msix_pba_read(), and its
 * pci `config_written` hook calls msix_config_written().
 *
 * Thread-safe: msix_notify() comes from device I/O threads, table and
 * config accesses from vCPU threads; one mutex inside orders them.
 */
#ifndef KEEL_PCI_MSIX_H
#define KEEL_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/irq.h"
#include "pci/pci.h"

#define MSIX_MAX_VECTORS 2048
#define MSIX_ENTRY_SIZE 16
#define MSIX_NO_VECTOR 0xffff

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl; /* ctrl bit 0: masked */
};

struct msix {
	struct pci_device *dev;
	struct irq_chip *chip;
	unsigned nr;
	unsigned cap;           /* config-space offset of the capability */
	uint64_t table_off, pba_off; /* inside the BAR */
	pthread_mutex_t lock;
	bool enabled, function_masked;
	struct msix_entry *table;
	uint64_t *pba;
	int *irqfd;   /* per vector; -1 when the chip has no fast path */
	uint64_t delivered; /* count, for tests and statistics */
};

/* The table needs nr*16 bytes, the PBA ceil(nr/64)*8; both 8-byte aligned. */
static inline uint64_t msix_table_size(unsigned nr)
{
	return (uint64_t)nr * MSIX_ENTRY_SIZE;
}
static inline uint64_t msix_pba_size(unsigned nr)
{
	return ((uint64_t)nr + 63) / 64 * 8;
}

/*
 * Adds the capability to `dev`, table and PBA at the given offsets of BAR
 * `bar`. All vectors start masked, MSI-X disabled. 0 or -errno.
 */
int msix_init(struct msix *m, struct pci_device *dev, unsigned nr, unsigned bar,
	      uint64_t table_off, uint64_t pba_off);
/* Unbinds irqfds and frees. Safe on a zeroed struct. */
void msix_destroy(struct msix *m);

/* Power-on state: disabled, every vector masked and cleared, nothing pending. */
void msix_reset(struct msix *m);
/* From the device's config_written hook. */
void msix_config_written(struct msix *m, unsigned off, unsigned size);
/* Table and PBA accesses; `off` is relative to the table / PBA start. */
void msix_table_access(struct msix *m, uint64_t off, void *data, unsigned size, bool write);
void msix_pba_read(struct msix *m, uint64_t off, void *data, unsigned size);

bool msix_enabled(struct msix *m);
/*
 * Signal a vector: delivered now if enabled, unmasked and bus mastering is
 * on, else its pending bit is set and it goes out on unmask. Vectors out of
 * range (or MSIX_NO_VECTOR) are ignored. Returns true if delivered.
 */
bool msix_notify(struct msix *m, unsigned vector);

/*
 * Snapshots: the table, the pending bits, enable and function mask.
 * msix_read_saved() reads what msix_save() wrote and checks it against
 * this MSI-X (vector count, reserved bits) as it would a guest's writes;
 * msix_apply_saved() takes it and points the irqfd routes at the loaded
 * vectors. Pending bits stay pending: they go out on the next unmask, as
 * on the source.
 */
struct msix_saved {
	unsigned nr;
	bool enabled, function_masked;
	struct msix_entry *table; /* nr entries */
	uint64_t *pba;
};
struct state_writer;
struct state_section;
void msix_save(struct msix *m, struct state_writer *w);
int msix_read_saved(const struct msix *m, struct state_section *s, struct msix_saved *out,
		    char *err, size_t errlen);
void msix_apply_saved(struct msix *m, const struct msix_saved *in);
void msix_saved_free(struct msix_saved *s);

#endif
