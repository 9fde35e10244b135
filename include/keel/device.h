/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every device model offers the machine besides its bus handlers:
 * saving and loading its state (snapshots, live migration) and its
 * statistics (the control API). A device fills one `device_ops` table and
 * the machine registers each instance under a unique name ("com1",
 * "virtio-blk0"), which is also its state section's tag.
 *
 * Contract for save/load (docs/snapshot.md has the long form):
 *  - pause/resume bracket every VM pause (and so every save): a device
 *    stops what the guest would see move (timers counting guest time) and
 *    drains or parks in-flight work from its own threads, so that save
 *    sees a still device; resume undoes it. Both optional.
 *  - save runs with the VM paused (no vCPU in a handler) on the main
 *    thread, after pause.
 *  - save writes one section: state_begin(w, name, ops->state_version),
 *    the fields, state_end(w).
 *  - load gets the section the matching save wrote, possibly by an older
 *    keel-vmm (version <= state_version): it must accept every older
 *    version it claims to, validate every value as hostile input, and
 *    return -EINVAL/-EBADMSG with a one-line reason in err on anything it
 *    cannot take. It runs on a device that was created with the same
 *    configuration and not yet run; it restores interrupt line levels
 *    itself (irq_line_set) since the irqchip's state is loaded before it.
 */
#ifndef KEEL_DEVICE_H
#define KEEL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/state.h"
#include "keel/stats.h"

struct device_ops {
	const char *type; /* "uart-16550", for the API and messages */
	uint32_t state_version;
	/* Optional: the VM pauses: freeze guest-visible time, drain in-flight work. */
	void (*pause)(void *dev);
	/* Optional: the VM runs again after a pause (not called after a load). */
	void (*resume)(void *dev);
	int (*save)(void *dev, const char *name, struct state_writer *w);
	int (*load)(void *dev, struct state_section *s, char *err, size_t errlen);
	void (*stats)(void *dev, struct stats_sink *sink);
};

struct device_entry {
	char name[32];
	const struct device_ops *ops;
	void *dev;
};

#define DEVICE_LIST_MAX 64

struct device_list {
	struct device_entry items[DEVICE_LIST_MAX];
	unsigned nr;
};

/* 0, -EEXIST for a name taken, -ENOSPC when full, -EINVAL for a bad name. */
int device_list_add(struct device_list *l, const char *name, const struct device_ops *ops, void *dev);

#endif
