// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "vmm/main_call.h"

static void on_call(struct event_handler *h, uint32_t events)
{
	struct main_call *c = container_of(h, struct main_call, h);
	uint64_t n;
	int r;

	if (read(h->fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another wake-up took it; the pending flag is what counts. */
	}
	pthread_mutex_lock(&c->lock);
	if (!c->pending || c->finished) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	r = c->fn(c->m, c->arg);
	pthread_mutex_lock(&c->lock);
	c->result = r;
	c->finished = true;
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
}

int main_call_init(struct main_call *c, struct machine *m, struct event_loop *loop)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->loop = loop;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	c->h.cb = on_call;
	c->h.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->h.fd < 0)
		return -errno;
	return event_loop_add(loop, &c->h, EPOLLIN);
}

void main_call_destroy(struct main_call *c)
{
	if (!c->m)
		return;
	if (c->h.fd >= 0) {
		event_loop_del(c->loop, &c->h);
		close(c->h.fd);
	}
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	c->m = NULL;
}

void main_call_set_open(struct main_call *c, bool open)
{
	pthread_mutex_lock(&c->lock);
	c->open = open;
	if (!open && c->pending && !c->finished) {
		c->result = -ECANCELED;
		c->finished = true;
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
}

int main_call(struct main_call *c, int (*fn)(struct machine *m, void *arg), void *arg)
{
	uint64_t one = 1;
	int r;

	pthread_mutex_lock(&c->lock);
	if (!c->open || c->pending) {
		pthread_mutex_unlock(&c->lock);
		return -ECANCELED;
	}
	c->fn = fn;
	c->arg = arg;
	c->pending = true;
	c->finished = false;
	pthread_mutex_unlock(&c->lock);
	if (write(c->h.fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, a wake-up is pending anyway. */
	}
	pthread_mutex_lock(&c->lock);
	while (!c->finished)
		pthread_cond_wait(&c->done, &c->lock);
	r = c->result;
	c->pending = false;
	pthread_mutex_unlock(&c->lock);
	return r;
}
