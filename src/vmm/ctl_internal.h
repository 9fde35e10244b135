/* SPDX-License-Identifier: Apache-2.0 */
/* What ctl.c shares with the files of other ctl commands (ctl_resources.c). */
#ifndef KEEL_VMM_CTL_INTERNAL_H
#define KEEL_VMM_CTL_INTERNAL_H

#include <stdbool.h>

#include <json-c/json.h>

struct ctl {
	const char *socket;
	bool json;
	int timeout_ms;
};

/* One API call, its reply printed by `print` (raw with --json). The exit status. */
int ctl_call(struct ctl *c, const char *method, const char *path, const char *body,
	     void (*print)(json_object *));
/* The same with a json-c body, which it frees. */
int ctl_call_with(struct ctl *c, const char *method, const char *path, json_object *body,
		  void (*print)(json_object *));
/* "keel-vmm ctl: WHAT (see keel-vmm ctl --help)"; CTL_USAGE. */
int ctl_usage_error(const char *what);
/* A member as text ("-" when absent or null). */
const char *ctl_str(json_object *o, const char *key);
json_object *ctl_member(json_object *o, const char *key);
void ctl_print_members(json_object *o);

/* ctl_resources.c: qos, balloon, memory, cpus, pin, numa. */
extern const char ctl_resources_usage[];
int ctl_resources_command(struct ctl *c, int argc, char **argv);

#endif
