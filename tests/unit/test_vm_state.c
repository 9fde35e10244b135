// SPDX-License-Identifier: Apache-2.0
/* Unit tests of the VM state machine the control API enforces (src/api/vm_state.c). */
#include <string.h>

#include "api/vm_state.h"
#include "ktest.h"

KTEST(every_state_and_action_has_a_name)
{
	for (int s = 0; s < VM_STATE_COUNT; s++)
		KCHECK(strcmp(vm_state_name((enum vm_state)s), "?") != 0);
	for (int a = 0; a < VM_ACTION_COUNT; a++)
		KCHECK(strcmp(vm_action_name((enum vm_action)a), "?") != 0);
	KCHECK_STR(vm_state_name(VM_STATE_SHUTTING_DOWN), "shutting-down");
	KCHECK_STR(vm_state_name(VM_STATE_COUNT), "?");
}

KTEST(running_vm_allows_pause_not_resume)
{
	KCHECK(vm_state_refusal(VM_STATE_RUNNING, VM_ACTION_PAUSE) == NULL);
	KCHECK_STR(vm_state_refusal(VM_STATE_RUNNING, VM_ACTION_RESUME), "the VM is running, not paused");
	KCHECK(vm_state_refusal(VM_STATE_RUNNING, VM_ACTION_POWER_BUTTON) == NULL);
	KCHECK(vm_state_refusal(VM_STATE_RUNNING, VM_ACTION_SNAPSHOT) == NULL);
	KCHECK(vm_state_refusal(VM_STATE_RUNNING, VM_ACTION_MIGRATE) == NULL);
}

KTEST(paused_vm_allows_resume_not_pause_nor_power_button)
{
	KCHECK(vm_state_refusal(VM_STATE_PAUSED, VM_ACTION_RESUME) == NULL);
	KCHECK_STR(vm_state_refusal(VM_STATE_PAUSED, VM_ACTION_PAUSE), "the VM is already paused");
	KCHECK(strstr(vm_state_refusal(VM_STATE_PAUSED, VM_ACTION_POWER_BUTTON), "resume it") != NULL);
	KCHECK(vm_state_refusal(VM_STATE_PAUSED, VM_ACTION_SNAPSHOT) == NULL);
}

KTEST(migrating_vm_allows_only_cancel_and_stop)
{
	for (int a = 0; a < VM_ACTION_COUNT; a++) {
		const char *why = vm_state_refusal(VM_STATE_MIGRATING, (enum vm_action)a);

		if (a == VM_ACTION_MIGRATE_CANCEL || a == VM_ACTION_STOP)
			KCHECK(why == NULL);
		else
			KCHECK(why != NULL && strstr(why, "migration") != NULL);
	}
}

KTEST(stop_is_allowed_everywhere_but_stopped)
{
	for (int s = 0; s < VM_STATE_COUNT; s++) {
		const char *why = vm_state_refusal((enum vm_state)s, VM_ACTION_STOP);

		KCHECK((why == NULL) == (s != VM_STATE_STOPPED));
	}
}

KTEST(stopped_and_created_refuse_the_rest)
{
	for (int a = 0; a < VM_ACTION_COUNT; a++) {
		KCHECK(vm_state_refusal(VM_STATE_STOPPED, (enum vm_action)a) != NULL);
		if (a != VM_ACTION_STOP)
			KCHECK(vm_state_refusal(VM_STATE_CREATED, (enum vm_action)a) != NULL);
	}
	KCHECK_STR(vm_state_refusal(VM_STATE_COUNT, VM_ACTION_PAUSE), "unknown state or request");
}

KTEST(cancel_only_while_migrating)
{
	for (int s = 0; s < VM_STATE_COUNT; s++) {
		const char *why = vm_state_refusal((enum vm_state)s, VM_ACTION_MIGRATE_CANCEL);

		KCHECK((why == NULL) == (s == VM_STATE_MIGRATING));
	}
}

int main(void)
{
	return ktest_run_all();
}
