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

/* Resource control: control_qos.c, control_memory.c, control_cpus.c. */
/* {"average", "burst", "peak"}, or NULL (JSON null) for no limit; ctl builds bodies with it too. */
struct rate_limit_params;
json_object *control_limit_json(const struct rate_limit_params *p);
void control_get_qos(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_qos_disk(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_qos_group(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_qos_net(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_get_memory(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_memory(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_get_balloon(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_balloon(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_get_cpus(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_pinning(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_get_numa(void *ctx, const struct http_request *req, struct http_reply *rep);
void control_put_numa(void *ctx, const struct http_request *req, struct http_reply *rep);

/*
 * 409 with the state machine's reason when `a` does not fit the VM's
 * state; true when it does.
 */
bool control_allowed(struct machine *m, enum vm_action a, struct http_reply *rep);

#endif
