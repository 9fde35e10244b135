/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM's main loop: epoll over file descriptors, plus timers (timerfd)
 * and a wake-up from other threads (eventfd). Callers embed an
 * `event_handler` in their own struct and get it back in the callback
 * (container_of), so the loop keeps no table of its own.
 *
 * event_loop_add/del/mod are safe from any thread; callbacks run on the
 * thread that calls event_loop_run().
 */
#ifndef KEEL_EVENT_LOOP_H
#define KEEL_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_handler;
typedef void (*event_cb)(struct event_handler *h, uint32_t events);

struct event_handler {
	int fd;
	event_cb cb;
};

struct event_loop {
	int epfd;
	int wake_fd;
	volatile int stop; /* set by event_loop_stop() */
};

int event_loop_init(struct event_loop *loop);
void event_loop_destroy(struct event_loop *loop);

/* events are EPOLLIN/EPOLLOUT/...; h must stay valid until removed. */
int event_loop_add(struct event_loop *loop, struct event_handler *h, uint32_t events);
int event_loop_mod(struct event_loop *loop, struct event_handler *h, uint32_t events);
int event_loop_del(struct event_loop *loop, struct event_handler *h);

/* Runs until event_loop_stop(). Returns 0, or -errno if epoll fails. */
int event_loop_run(struct event_loop *loop);
/* Runs one round, waiting at most timeout_ms (-1: forever). */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);
/* From any thread, including signal handlers: makes run() return. */
void event_loop_stop(struct event_loop *loop);

/*
 * A timer: a timerfd registered on the loop. Fires cb after `first_ns` and
 * then every `period_ns` (0: once).
 */
struct event_timer {
	struct event_handler h;
	void (*cb)(struct event_timer *t);
};
int event_timer_init(struct event_loop *loop, struct event_timer *t,
		     void (*cb)(struct event_timer *t));
int event_timer_arm(struct event_timer *t, uint64_t first_ns, uint64_t period_ns);
void event_timer_destroy(struct event_loop *loop, struct event_timer *t);

#endif
