/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM's complete state as state sections: what a snapshot's state file
 * and a migration's final message carry (docs/snapshot.md lists them).
 *
 *   vm/config   vCPUs, memory size, kernel, initrd, command line, name
 *   vm/balloon, vm/numa  when the VM has them (vm_config_resources.c)
 *   vm/clock    the guest's kvmclock and the host's wall-clock time it
 *               stood still at (the pause)
 *   vm/irqchip  PIC master, PIC slave, IOAPIC
 *   vm/pit      the i8254 (KVM_GET_PIT2)
 *   vcpu/N      each vCPU (cpu_state.c)
 *   <name>      each device, under its device-list name ("com1", ...)
 */
#ifndef KEEL_VMM_VM_SNAPSHOT_H
#define KEEL_VMM_VM_SNAPSHOT_H

#include "keel/state.h"
#include "vmm/machine.h"

/* The configuration sections alone (a migration's HELLO). */
int vm_config_save(struct machine *m, struct state_writer *w);

/* The paused VM's state (vCPUs, VM, devices), then vm/config. */
int vm_state_save(struct machine *m, struct state_writer *w, char *err, size_t errlen);

/*
 * The configuration a snapshot or migration stream describes, into cfg
 * (whose strings then point into strs, which the caller frees).
 */
int vm_config_load(struct state_reader *r, struct vm_config *cfg, char **strs,
		   char *err, size_t errlen);

/* vm_config_resources.c: vm/balloon and vm/numa, for vm_config_save/load. */
void vm_resources_save(struct machine *m, struct state_writer *w);
int vm_resources_load(struct state_reader *r, struct vm_config *cfg, char *err, size_t errlen);

/*
 * Loads everything but vm/config into a VM whose KVM VM and vCPUs are
 * created and not yet run; refuses state for devices this VM lacks and
 * devices without state. The guest clock is advanced by the wall-clock time
 * since it was saved, so the guest's date is right after a restore or a
 * migration.
 */
int vm_state_load(struct machine *m, struct state_reader *r, char *err, size_t errlen);

#endif
