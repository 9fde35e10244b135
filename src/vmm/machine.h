/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The whole virtual machine: guest RAM, the buses and platform devices, the
 * console, the KVM VM and its vCPUs, and the main event loop.
 *
 * Lifetimes: RAM, buses, devices and the console live as long as the
 * process. The KVM VM and the vCPUs are rebuilt on every guest reboot, so
 * each boot starts from clean in-kernel state (irqchip, PIT, clocks); the
 * devices are reset instead.
 */
#ifndef KEEL_VMM_MACHINE_H
#define KEEL_VMM_MACHINE_H

#include <signal.h>
#include <stdatomic.h>

#include "api/vm_state.h"
#include "keel/bus.h"
#include "keel/device.h"
#include "keel/event_loop.h"
#include "keel/vm_events.h"
#include "vmm/boot_linux.h"
#include "vmm/config.h"
#include "vmm/cpu_state.h"
#include "vmm/cpuid.h"
#include "vmm/guest_ram.h"
#include "vmm/kvm.h"
#include "vmm/main_call.h"
#include "vmm/vcpu.h"

struct console;
struct uart_16550;
struct cmos_rtc;
struct i8042;
struct reset_ctl;
struct acpi_pm;
struct http_server;
struct snapshot;
struct migration;
struct pci_host;
struct virtio_blk;
struct virtio_net;
struct virtio_rng;
struct virtio_balloon;
struct blk_throttle;

/* Exit statuses of keel-vmm (documented in --help). */
enum {
	EXIT_GUEST_OFF = 0,
	EXIT_SETUP_ERROR = 1,
	EXIT_GUEST_CRASH = 2,
	EXIT_SIGNAL_BASE = 128,
};

struct machine {
	const struct vm_config *cfg;
	struct kvm kvm;
	struct guest_ram ram;
	struct bus pio;
	struct bus mmio;
	struct event_loop loop;
	struct console *console;

	struct uart_16550 *com1;
	struct cmos_rtc *rtc;
	struct i8042 *kbc;
	struct reset_ctl *reset_ctl;
	struct acpi_pm *acpi_pm;

	struct pci_host *pci;
	struct virtio_blk *disks[CONFIG_MAX_DISKS];
	struct virtio_net *nets[CONFIG_MAX_NETS];
	struct virtio_rng *rng;
	struct virtio_balloon *balloon;

	/* Resource control (resources.c): what the API may change at run time. */
	struct blk_throttle *disk_groups;
	unsigned nr_disk_groups;
	struct numa_config numa; /* the host binding may change */
	struct pin_config pin;

	struct cpu_topology topo;
	struct vcpu_env vcpu_env;
	bool park_ready; /* vcpu_env.park initialised */
	struct vcpu *vcpus;
	unsigned nr_vcpus_created;

	/* The files, read once: a reboot boots the same kernel. */
	uint8_t *kernel;
	size_t kernel_len;
	uint8_t *initrd;
	size_t initrd_len;

	struct vm_events events;
	atomic_int stop_reason; /* enum vm_stop_reason; the first request wins */
	int stop_signal;        /* for VM_STOP_HOST */
	struct event_handler signal_handler;
	unsigned boots;
	/* The start-up's load of the guest (machine_create()): the first boot
	   runs from it as it is; a reboot loads the files afresh. */
	struct boot_linux_result preload;
	bool preloaded;

	/* Every device by name, for snapshots and the API's statistics. */
	struct device_list devices;
	/* The control API (--api-socket), NULL without one. */
	struct http_server *api;
	/* enum vm_state: moved on the main thread, read from anywhere. */
	atomic_int state;
	/* vCPUs parked, devices paused, guest clock held at paused_clock. */
	bool paused;
	struct kvm_clock_data paused_clock;
	uint64_t paused_realtime_ns; /* the host's wall clock at the pause */
	enum vm_state state_before_pause; /* where resume returns to */

	/* MSRs a vCPU's saved state holds, found on the first save. */
	struct cpu_msr_list msr_list;
	/* --restore: the open snapshot until the first boot has loaded it. */
	struct snapshot *snap;
	struct vm_config restore_cfg; /* cfg with the snapshot's (or source's) configuration */
	char *restore_strs[4];
	/* --incoming: the connection from the source until the first boot took the VM. */
	int incoming_fd;
	/* An outgoing live migration (migration.c), NULL before the first. */
	struct migration *migration;
	/* Work other threads hand to the main thread. */
	struct main_call main_call;
	/* The first boot's KVM VM, made on a thread while the rest is set up. */
	struct vm_prep *prep;
	uint64_t created_ns; /* CLOCK_MONOTONIC when machine_create began */
};

/*
 * Everything that does not depend on a boot: KVM checks, RAM, devices,
 * console, kernel and initrd files. 0, or -errno with one line in err.
 */
int machine_create(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen);
/* Boots, reboots as the guest asks, and returns keel-vmm's exit status. */
int machine_run(struct machine *m);
enum vm_state machine_state(const struct machine *m);
void machine_set_state(struct machine *m, enum vm_state s);
/* Asks the main loop to end the current boot (first request wins). */
void machine_request_stop(struct machine *m, enum vm_stop_reason why);

/*
 * pause.c: parks every vCPU (out of KVM_RUN, not destroyed), tells the
 * guest's kvmclock it was stopped, holds the guest clock and pauses the
 * devices; resume undoes it in reverse. Main thread. 0, or -errno with a
 * reason in err.
 */
int machine_pause(struct machine *m, char *err, size_t errlen);
int machine_resume(struct machine *m, char *err, size_t errlen);
/* Leaves the paused state without running the vCPUs (they are being destroyed). */
void machine_drop_pause(struct machine *m);
/*
 * After a restore or an incoming migration loaded the devices' state, just
 * before the vCPUs start: the devices' resume (virtio devices start
 * serving their queues only now, not while a migration may still fail).
 */
void machine_start_devices(struct machine *m);

/*
 * Live migration hands the disk images over (block.h, "Handing an image
 * over"): `give` writes back and stops touching every disk, so the target
 * may read and then write them; taking them (the target before it loads
 * the state, the source when the migration failed before GO) reads their
 * metadata afresh. Main thread, with the devices paused. 0, or -errno with
 * one line in err; a failed give takes back what it gave.
 */
int machine_hand_over_disks(struct machine *m, bool give, char *err, size_t errlen);

/* control.c: the API server on --api-socket. */
int control_start(struct machine *m, char *err, size_t errlen);
void control_stop(struct machine *m);

/* Frees everything; safe on a partly created machine. */
void machine_destroy(struct machine *m);

#endif
