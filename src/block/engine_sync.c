// SPDX-License-Identifier: Apache-2.0
/*
 * The synchronous engine: each host_io runs inside blk_queue_kick() on the
 * caller's thread. Completions still go through reap (and the eventfd), so
 * callers see the same ordering rules as with the asynchronous engines.
 */
#include <errno.h>
#include <stdlib.h>

#include "block_int.h"

struct sync_state {
	struct host_io *staged, **staged_tail;
	struct host_io *done, **done_tail;
};

static int sync_init(struct blk_queue *q, unsigned depth)
{
	struct sync_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->staged_tail = &s->staged;
	s->done_tail = &s->done;
	q->engine_state = s;
	return 0;
}

static void sync_fini(struct blk_queue *q)
{
	free(q->engine_state);
}

static void sync_submit(struct blk_queue *q, struct host_io *hio)
{
	struct sync_state *s = q->engine_state;

	*s->staged_tail = hio;
	s->staged_tail = &hio->next;
}

static void sync_kick(struct blk_queue *q)
{
	struct sync_state *s = q->engine_state;
	struct host_io *hio, *next;

	if (!s->staged)
		return;
	hio = s->staged;
	s->staged = NULL;
	s->staged_tail = &s->staged;
	for (; hio; hio = next) {
		int r = host_io_prepare(hio);

		next = hio->next;
		hio->ret = r ? r : host_io_exec(hio);
		host_io_finish(hio);
		hio->next = NULL;
		*s->done_tail = hio;
		s->done_tail = &hio->next;
	}
	blk_queue_signal(q);
}

static unsigned sync_reap(struct blk_queue *q)
{
	struct sync_state *s = q->engine_state;
	struct host_io *hio = s->done;

	s->done = NULL;
	s->done_tail = &s->done;
	return host_io_complete_list(hio);
}

const struct blk_engine_ops blk_engine_sync = {
	.name = "sync",
	.init = sync_init,
	.fini = sync_fini,
	.submit = sync_submit,
	.kick = sync_kick,
	.reap = sync_reap,
};
