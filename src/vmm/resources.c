// SPDX-License-Identifier: Apache-2.0
/*
 * The machine's resource control (docs/resources.md): guest RAM with its
 * options and NUMA binding, disk groups, the balloon and the pins. What
 * machine.c calls at each step of building and running the VM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/throttle.h"
#include "keel/log.h"
#include "virtio/balloon.h"
#include "virtio/virtio_state.h"
#include "virtio/blk.h"
#include "vmm/machine.h"
#include "vmm/resources.h"

int resources_init(struct machine *m, char *err, size_t errlen)
{
	m->numa = m->cfg->numa;
	m->pin = m->cfg->pin;
	/* Again for --restore and --incoming, whose vCPU count came with the VM. */
	return pin_check("--pin", &m->pin, m->cfg->cpus, err, errlen);
}

int resources_create_ram(struct machine *m, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	int r;

	r = guest_ram_create(&m->ram, cfg->memory, &cfg->ram, err, errlen);
	/* The policy must be in place before the first page is touched (prealloc, the kernel load). */
	if (!r && m->numa.nr_nodes)
		r = numa_bind(&m->numa, &m->ram, false, err, errlen);
	if (!r)
		r = guest_ram_populate(&m->ram, err, errlen);
	return r;
}

static int64_t balloon_discard(void *opaque, void *hva, uint64_t len, bool free_report)
{
	struct guest_ram *ram = opaque;

	return free_report ? guest_ram_discard_free(ram, hva, len) : guest_ram_discard(ram, hva, len);
}

static void balloon_reuse(void *opaque, void *hva, uint64_t len)
{
	guest_ram_reuse(opaque, hva, len);
}

static void balloon_reset(void *opaque)
{
	guest_ram_reuse_all(opaque);
}

int resources_create_devices(struct machine *m, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;

	if (cfg->nr_disk_groups) {
		m->disk_groups = calloc(cfg->nr_disk_groups, sizeof(*m->disk_groups));
		if (!m->disk_groups) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		for (unsigned i = 0; i < cfg->nr_disk_groups; i++)
			blk_throttle_init(&m->disk_groups[i], cfg->disk_groups[i].name,
					  &cfg->disk_groups[i].limits);
		m->nr_disk_groups = cfg->nr_disk_groups;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		struct blk_throttle *g = resources_disk_group(m, cfg->disks[i].group);

		if (g)
			virtio_blk_join_group(m->disks[i], g);
	}
	if (cfg->balloon) {
		struct balloon_memory bm = {
			.discard = balloon_discard, .reuse = balloon_reuse, .reset = balloon_reset,
			.opaque = &m->ram,
		};

		m->balloon = virtio_balloon_create(m->pci, &m->ram.mem, &cfg->balloon_opts, &bm, NULL);
		if (!m->balloon) {
			snprintf(err, errlen, "cannot create the virtio-balloon device: %s",
				 strerror(errno));
			return -errno;
		}
		/* Paused with the VM, and in its snapshots and migrations. */
		if (device_list_add(&m->devices, "virtio-balloon0", &virtio_balloon_device_ops,
				    virtio_balloon_dev(m->balloon))) {
			snprintf(err, errlen, "cannot list the virtio-balloon device");
			return -ENOSPC;
		}
	}
	return 0;
}

struct blk_throttle *resources_disk_group(struct machine *m, const char *name)
{
	for (unsigned i = 0; name && *name && i < m->nr_disk_groups; i++)
		if (!strcmp(m->disk_groups[i].name, name))
			return &m->disk_groups[i];
	return NULL;
}

bool resources_pinned(const struct machine *m)
{
	if (m->pin.io_set || m->pin.vcpus_set)
		return true;
	for (unsigned i = 0; i < PIN_MAX_VCPUS; i++)
		if (m->pin.vcpu_set[i])
			return true;
	return false;
}

int resources_pin(struct machine *m, char *err, size_t errlen)
{
	return resources_pinned(m) ? resources_repin(m, err, errlen) : 0;
}

int resources_repin(struct machine *m, char *err, size_t errlen)
{
	int r;

	/* The I/O set first: vCPU threads were created by the main thread and start with its CPUs. */
	r = pin_io_threads(&m->pin, err, errlen);
	for (unsigned i = 0; !r && i < m->nr_vcpus_created; i++)
		r = pin_vcpu(&m->pin, i, m->vcpus[i].thread, err, errlen);
	return r;
}

void resources_destroy_devices(struct machine *m)
{
	virtio_balloon_destroy(m->balloon);
	m->balloon = NULL;
}

void resources_destroy(struct machine *m)
{
	for (unsigned i = 0; i < m->nr_disk_groups; i++)
		blk_throttle_destroy(&m->disk_groups[i]);
	free(m->disk_groups);
	m->disk_groups = NULL;
	m->nr_disk_groups = 0;
}
