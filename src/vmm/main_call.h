/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running a function on the main thread from another thread (the
 * migration thread pauses the VM, saves device state, resumes or stops it:
 * all things the main thread owns), and waiting for its result. While the
 * main loop is not running (between boots, at exit) calls fail with
 * -ECANCELED instead of waiting forever.
 */
#ifndef KEEL_VMM_MAIN_CALL_H
#define KEEL_VMM_MAIN_CALL_H

#include <pthread.h>
#include <stdbool.h>

#include "keel/event_loop.h"

struct machine;

struct main_call {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct event_handler h; /* an eventfd on the main loop */
	struct event_loop *loop;
	int (*fn)(struct machine *m, void *arg);
	void *arg;
	int result;
	bool pending, finished, open;
	struct machine *m;
};

int main_call_init(struct main_call *c, struct machine *m, struct event_loop *loop);
void main_call_destroy(struct main_call *c);
/* The main loop runs (open) or has stopped (closed: pending and new calls fail). */
void main_call_set_open(struct main_call *c, bool open);
/* From any thread but the main one: fn(m, arg) on the main thread, its result. */
int main_call(struct main_call *c, int (*fn)(struct machine *m, void *arg), void *arg);

#endif
