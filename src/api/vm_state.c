// SPDX-License-Identifier: Apache-2.0
#include "api/vm_state.h"
#include "keel/compiler.h"

static const char *const state_names[VM_STATE_COUNT] = {
	[VM_STATE_CREATED] = "created",
	[VM_STATE_RUNNING] = "running",
	[VM_STATE_PAUSED] = "paused",
	[VM_STATE_SHUTTING_DOWN] = "shutting-down",
	[VM_STATE_MIGRATING] = "migrating",
	[VM_STATE_STOPPED] = "stopped",
};

static const char *const action_names[VM_ACTION_COUNT] = {
	[VM_ACTION_PAUSE] = "pause",
	[VM_ACTION_RESUME] = "resume",
	[VM_ACTION_POWER_BUTTON] = "power-button",
	[VM_ACTION_RESET] = "reset",
	[VM_ACTION_STOP] = "stop",
	[VM_ACTION_SNAPSHOT] = "snapshot",
	[VM_ACTION_MIGRATE] = "migrate",
	[VM_ACTION_MIGRATE_CANCEL] = "migrate-cancel",
};

const char *vm_state_name(enum vm_state s)
{
	return (unsigned)s < VM_STATE_COUNT ? state_names[s] : "?";
}

const char *vm_action_name(enum vm_action a)
{
	return (unsigned)a < VM_ACTION_COUNT ? action_names[a] : "?";
}

#define OK NULL

/*
 * [state][action]: NULL allows it. Each refusal says what the VM is doing
 * and, where there is one, what to do instead.
 */
static const char *const refusals[VM_STATE_COUNT][VM_ACTION_COUNT] = {
	[VM_STATE_CREATED] = {
		[VM_ACTION_PAUSE] = "the VM has not started yet",
		[VM_ACTION_RESUME] = "the VM has not started yet",
		[VM_ACTION_POWER_BUTTON] = "the VM has not started yet",
		[VM_ACTION_RESET] = "the VM has not started yet",
		[VM_ACTION_STOP] = OK,
		[VM_ACTION_SNAPSHOT] = "the VM has not started yet",
		[VM_ACTION_MIGRATE] = "the VM has not started yet",
		[VM_ACTION_MIGRATE_CANCEL] = "no migration is in progress",
	},
	[VM_STATE_RUNNING] = {
		[VM_ACTION_PAUSE] = OK,
		[VM_ACTION_RESUME] = "the VM is running, not paused",
		[VM_ACTION_POWER_BUTTON] = OK,
		[VM_ACTION_RESET] = OK,
		[VM_ACTION_STOP] = OK,
		[VM_ACTION_SNAPSHOT] = OK,
		[VM_ACTION_MIGRATE] = OK,
		[VM_ACTION_MIGRATE_CANCEL] = "no migration is in progress",
	},
	[VM_STATE_PAUSED] = {
		[VM_ACTION_PAUSE] = "the VM is already paused",
		[VM_ACTION_RESUME] = OK,
		[VM_ACTION_POWER_BUTTON] = "the VM is paused: resume it so the guest can see the button",
		[VM_ACTION_RESET] = OK,
		[VM_ACTION_STOP] = OK,
		[VM_ACTION_SNAPSHOT] = OK,
		[VM_ACTION_MIGRATE] = OK,
		[VM_ACTION_MIGRATE_CANCEL] = "no migration is in progress",
	},
	[VM_STATE_SHUTTING_DOWN] = {
		[VM_ACTION_PAUSE] = OK,
		[VM_ACTION_RESUME] = "the VM is shutting down, not paused",
		[VM_ACTION_POWER_BUTTON] = OK,
		[VM_ACTION_RESET] = OK,
		[VM_ACTION_STOP] = OK,
		[VM_ACTION_SNAPSHOT] = "the VM is shutting down",
		[VM_ACTION_MIGRATE] = "the VM is shutting down",
		[VM_ACTION_MIGRATE_CANCEL] = "no migration is in progress",
	},
	[VM_STATE_MIGRATING] = {
		[VM_ACTION_PAUSE] = "a migration is in progress: cancel it first",
		[VM_ACTION_RESUME] = "a migration is in progress: cancel it first",
		[VM_ACTION_POWER_BUTTON] = "a migration is in progress: cancel it first",
		[VM_ACTION_RESET] = "a migration is in progress: cancel it first",
		[VM_ACTION_STOP] = OK,
		[VM_ACTION_SNAPSHOT] = "a migration is in progress: cancel it first",
		[VM_ACTION_MIGRATE] = "a migration is already in progress",
		[VM_ACTION_MIGRATE_CANCEL] = OK,
	},
	[VM_STATE_STOPPED] = {
		[VM_ACTION_PAUSE] = "the VM is stopped",
		[VM_ACTION_RESUME] = "the VM is stopped",
		[VM_ACTION_POWER_BUTTON] = "the VM is stopped",
		[VM_ACTION_RESET] = "the VM is stopped",
		[VM_ACTION_STOP] = "the VM is already stopped",
		[VM_ACTION_SNAPSHOT] = "the VM is stopped",
		[VM_ACTION_MIGRATE] = "the VM is stopped",
		[VM_ACTION_MIGRATE_CANCEL] = "no migration is in progress",
	},
};

const char *vm_state_refusal(enum vm_state s, enum vm_action a)
{
	if ((unsigned)s >= VM_STATE_COUNT || (unsigned)a >= VM_ACTION_COUNT)
		return "unknown state or request";
	return refusals[s][a];
}
