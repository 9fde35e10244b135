/* SPDX-License-Identifier: Apache-2.0 */
/* Pieces of the control API shared by control*.c. */
#ifndef KEEL_VMM_CONTROL_H
#define KEEL_VMM_CONTROL_H

#include <json-c/json.h>

#include "api/http_server.h"
#include "vmm/machine.h"

/* control_stats.c */
json_object *control_vcpu_stats(struct machine *m);
json_object *control_device_stats(struct machine *m);

/*
 * 409 with the state machine's reason when `a` does not fit the VM's
 * state; true when it does.
 */
bool control_allowed(struct machine *m, enum vm_action a, struct http_reply *rep);

#endif
