/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM's life cycle as the control API shows it, and which request is
 * allowed in which state. Pure functions, unit-tested on their own; the
 * machine owns the current state and moves it.
 *
 *   created --boot/restore--> running <--pause/resume--> paused
 *   running --power-button--> shutting-down --guest powers off--> stopped
 *   running|paused --migrate--> migrating --done--> stopped
 *                                         --cancel/failure--> running|paused
 *   any --stop--> stopped
 */
#ifndef KEEL_API_VM_STATE_H
#define KEEL_API_VM_STATE_H

enum vm_state {
	VM_STATE_CREATED,
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_SHUTTING_DOWN,
	VM_STATE_MIGRATING,
	VM_STATE_STOPPED,
	VM_STATE_COUNT,
};

enum vm_action {
	VM_ACTION_PAUSE,
	VM_ACTION_RESUME,
	VM_ACTION_POWER_BUTTON,
	VM_ACTION_RESET,
	VM_ACTION_STOP,
	VM_ACTION_SNAPSHOT,
	VM_ACTION_MIGRATE,
	VM_ACTION_MIGRATE_CANCEL,
	VM_ACTION_COUNT,
};

const char *vm_state_name(enum vm_state s);
const char *vm_action_name(enum vm_action a);

/* NULL when `a` is allowed in `s`, else a sentence saying why not. */
const char *vm_state_refusal(enum vm_state s, enum vm_action a);

#endif
