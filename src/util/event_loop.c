// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/event_loop.h"

int event_loop_init(struct event_loop *loop)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	memset(loop, 0, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0 || epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0) {
		int err = -errno;

		if (loop->wake_fd >= 0)
			close(loop->wake_fd);
		close(loop->epfd);
		loop->epfd = loop->wake_fd = -1;
		return err;
	}
	return 0;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	loop->epfd = loop->wake_fd = -1;
}

static int ctl(struct event_loop *loop, int op, struct event_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(loop->epfd, op, h->fd, &ev) < 0 ? -errno : 0;
}

int event_loop_add(struct event_loop *loop, struct event_handler *h, uint32_t events)
{
	return ctl(loop, EPOLL_CTL_ADD, h, events);
}

int event_loop_mod(struct event_loop *loop, struct event_handler *h, uint32_t events)
{
	return ctl(loop, EPOLL_CTL_MOD, h, events);
}

int event_loop_del(struct event_loop *loop, struct event_handler *h)
{
	return ctl(loop, EPOLL_CTL_DEL, h, 0);
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(loop->epfd, evs, ARRAY_SIZE(evs), timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct event_handler *h = evs[i].data.ptr;

		if (!h) {
			uint64_t v;
			/* Drain the wake-up; stop is checked by the caller. */
			if (read(loop->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
			continue;
		}
		h->cb(h, evs[i].events);
	}
	return 0;
}

int event_loop_run(struct event_loop *loop)
{
	while (!loop->stop) {
		int r = event_loop_run_once(loop, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void event_loop_stop(struct event_loop *loop)
{
	uint64_t one = 1;

	loop->stop = 1;
	/* write(2) is async-signal-safe; a full counter still wakes epoll. */
	if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is already pending, which is all we need. */
	}
}

static void timer_fired(struct event_handler *h, uint32_t events)
{
	struct event_timer *t = container_of(h, struct event_timer, h);
	uint64_t expirations;

	if (read(h->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* spurious wake-up: nothing expired */
	t->cb(t);
}

int event_timer_init(struct event_loop *loop, struct event_timer *t,
		     void (*cb)(struct event_timer *t))
{
	int r;

	t->cb = cb;
	t->h.cb = timer_fired;
	t->h.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->h.fd < 0)
		return -errno;
	r = event_loop_add(loop, &t->h, EPOLLIN);
	if (r < 0) {
		close(t->h.fd);
		t->h.fd = -1;
	}
	return r;
}

int event_timer_arm(struct event_timer *t, uint64_t first_ns, uint64_t period_ns)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = first_ns / 1000000000, .tv_nsec = first_ns % 1000000000 },
		.it_interval = { .tv_sec = period_ns / 1000000000, .tv_nsec = period_ns % 1000000000 },
	};

	/* A zero it_value disarms; a due-now timer must still fire. */
	if (!first_ns)
		its.it_value.tv_nsec = 1;
	return timerfd_settime(t->h.fd, 0, &its, NULL) < 0 ? -errno : 0;
}

void event_timer_destroy(struct event_loop *loop, struct event_timer *t)
{
	if (t->h.fd < 0)
		return;
	event_loop_del(loop, &t->h);
	close(t->h.fd);
	t->h.fd = -1;
}
