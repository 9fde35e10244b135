/* SPDX-License-Identifier: Apache-2.0 */
/* Resource control in the machine's life (resources.c); main thread only. */
#ifndef KEEL_VMM_RESOURCES_H
#define KEEL_VMM_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>

struct machine;
struct blk_throttle;

/* The run-time copies of the NUMA and pin configuration; checks the pins. */
int resources_init(struct machine *m, char *err, size_t errlen);
/* Guest RAM with its options, bound to host NUMA nodes, then preallocated/locked. */
int resources_create_ram(struct machine *m, char *err, size_t errlen);
/* After the PCI devices: disk groups joined by their disks, the balloon. */
int resources_create_devices(struct machine *m, char *err, size_t errlen);
/* After the vCPUs of a boot started: the I/O threads' and vCPUs' pins. */
int resources_pin(struct machine *m, char *err, size_t errlen);
bool resources_pinned(const struct machine *m);
/* Applies m->pin to every thread now, pinned or not (the API's changes). */
int resources_repin(struct machine *m, char *err, size_t errlen);
struct blk_throttle *resources_disk_group(struct machine *m, const char *name);
/* The balloon, with the other devices (before the PCI host goes). */
void resources_destroy_devices(struct machine *m);
/* The groups, after the disks. */
void resources_destroy(struct machine *m);

#endif
