/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What platform devices tell the machine: the guest asked to power off or to
 * reset. Devices call these from vCPU threads; the machine records the
 * request and stops the vCPUs, it never tears things down from inside the
 * device handler.
 */
#ifndef KEEL_VM_EVENTS_H
#define KEEL_VM_EVENTS_H

enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_POWEROFF,    /* ACPI S5 */
	VM_STOP_RESET,       /* guest reboot: i8042, ACPI reset register, port 0xcf9/0x92 */
	VM_STOP_CRASH,       /* triple fault, internal error, unhandled exit */
	VM_STOP_HOST,        /* signal or error on the host side */
	VM_STOP_QUIT,        /* the operator quit from the console */
};

struct vm_events {
	void (*request_stop)(struct vm_events *ev, enum vm_stop_reason why);
};

static inline void vm_request_stop(struct vm_events *ev, enum vm_stop_reason why)
{
	if (ev && ev->request_stop)
		ev->request_stop(ev, why);
}

#endif
