// SPDX-License-Identifier: Apache-2.0
/*
 * The source side of a live migration, on a thread of its own so the
 * guest and the main loop run on during pre-copy. It owns the socket and
 * the dirty bitmaps; whatever touches the machine's state (pause, device
 * state, resume, stop) runs on the main thread through main_call().
 *
 * Rounds: the first sends every page that may hold data; each later one
 * takes KVM's dirty log (KVM_GET_DIRTY_LOG, which also re-arms it) and
 * sends those pages. When the dirty pages would go in the maximum downtime
 * at the last round's bandwidth (or after MIG_MAX_ROUNDS), the VM is
 * paused, the last dirty pages and the state are sent, and the target
 * takes over.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "keel/block.h"
#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/thread.h"
#include "vmm/layout.h"
#include "vmm/machine.h"
#include "vmm/migration.h"
#include "vmm/vm_snapshot.h"

#define RUN_PAGES 256 /* pages per PAGES message: 1 MiB */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

/* When each step of the stop-and-copy ended, in µs: where the downtime goes. */
enum { T_PAUSE, T_PAUSED, T_PAGES, T_SAVED, T_STATE_SENT, T_READY, T_RUNNING, T_STEPS };

static void log_downtime_steps(const uint64_t *t, uint64_t pages, size_t state_len)
{
	log_info("migration downtime in steps (ms): pause %.1f, last %llu pages %.1f, state save %.1f "
		 "(%zu KiB), state send %.1f, target load to READY %.1f, GO to RUNNING %.1f",
		 (t[T_PAUSED] - t[T_PAUSE]) / 1e3, (unsigned long long)pages,
		 (t[T_PAGES] - t[T_PAUSED]) / 1e3, (t[T_SAVED] - t[T_PAGES]) / 1e3, state_len >> 10,
		 (t[T_STATE_SENT] - t[T_SAVED]) / 1e3, (t[T_READY] - t[T_STATE_SENT]) / 1e3,
		 (t[T_RUNNING] - t[T_READY]) / 1e3);
}

static void set_error(struct migration *mg, enum mig_status st, const char *what, const char *after)
{
	pthread_mutex_lock(&mg->lock);
	mg->p.status = st;
	snprintf(mg->p.error, sizeof(mg->p.error), "%s%s", what, after);
	pthread_mutex_unlock(&mg->lock);
}

static void set_phase(struct migration *mg, const char *phase)
{
	pthread_mutex_lock(&mg->lock);
	mg->p.phase = phase;
	pthread_mutex_unlock(&mg->lock);
}

static int connect_to(const char *uri, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *a;
	char host[256], port[16];
	int fd = -1, r;

	if (mig_parse_uri(uri, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "'%s' is not tcp:HOST:PORT", uri);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "%s: %s", uri, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	for (a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		mig_set_socket_options(fd, MIG_IO_TIMEOUT_S);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		r = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", uri, strerror(r ? r : ECONNREFUSED));
		return -ECONNREFUSED;
	}
	return fd;
}

/*
 * Dirty logging on or off for both RAM slots, and for what the device
 * models write into guest RAM themselves (KVM sees only the vCPUs' writes).
 */
static int dirty_logging(struct machine *m, bool on)
{
	uint32_t flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	int r = kvm_set_memory_slot_flags(&m->kvm, 0, 0, m->ram.below_4g, m->ram.base, flags);

	if (!r && m->ram.above_4g)
		r = kvm_set_memory_slot_flags(&m->kvm, 1, LAYOUT_RAM_ABOVE_4G_START, m->ram.above_4g,
					      m->ram.base + m->ram.below_4g, flags);
	if (!r && on)
		r = guest_mem_dirty_start(&m->ram.mem);
	if (!on || r)
		guest_mem_dirty_stop(&m->ram.mem);
	return r;
}

/* Fetches (and clears) the dirty log of both slots into one bitmap over RAM offsets. */
static int get_dirty(struct machine *m, uint64_t *bitmap, uint64_t *count)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
	uint64_t words = m->ram.size / MIG_PAGE / 64 + 1;

	memset(bitmap, 0, words * 8);
	if (ioctl(m->kvm.vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	if (m->ram.above_4g) {
		/* below_4g is a whole number of MiB, so slot 1 starts on a bitmap word. */
		log.slot = 1;
		log.dirty_bitmap = bitmap + m->ram.below_4g / MIG_PAGE / 64;
		if (ioctl(m->kvm.vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return -errno;
	}
	/* The devices' writes: guest RAM's regions are its slots, in the same order. */
	guest_mem_dirty_collect(&m->ram.mem, 0, bitmap);
	if (m->ram.above_4g)
		guest_mem_dirty_collect(&m->ram.mem, 1, bitmap + m->ram.below_4g / MIG_PAGE / 64);
	*count = 0;
	for (uint64_t i = 0; i < words; i++)
		*count += (uint64_t)__builtin_popcountll(bitmap[i]);
	return 0;
}

static int send_run(struct migration *mg, struct machine *m, uint64_t off, uint64_t len)
{
	uint8_t le[8];
	int r;

	if (atomic_load(&mg->cancel))
		return -ECANCELED;
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(off >> (8 * i));
	r = mig_send2(mg->fd, MIG_PAGES, le, 8, m->ram.base + off, len);
	if (r)
		return r;
	pthread_mutex_lock(&mg->lock);
	mg->p.bytes_sent += len + 24;
	mg->p.pages_sent += len / MIG_PAGE;
	pthread_mutex_unlock(&mg->lock);
	return 0;
}

/* Round one: everything that may hold data, in runs of at most RUN_PAGES. */
static int send_all(struct migration *mg, struct machine *m)
{
	uint64_t start, end;

	for (uint64_t pos = 0; guest_ram_next_data(&m->ram, pos, &start, &end); pos = end) {
		for (uint64_t o = start; o < end; o += RUN_PAGES * MIG_PAGE) {
			int r = send_run(mg, m, o, MIN(end - o, (uint64_t)RUN_PAGES * MIG_PAGE));

			if (r)
				return r;
		}
	}
	return 0;
}

static int send_dirty(struct migration *mg, struct machine *m, const uint64_t *bitmap)
{
	uint64_t pages = m->ram.size / MIG_PAGE;

	for (uint64_t p = 0; p < pages;) {
		uint64_t n = 0;
		int r;

		if (!(bitmap[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		while (p + n < pages && n < RUN_PAGES && (bitmap[(p + n) / 64] >> ((p + n) % 64) & 1))
			n++;
		r = send_run(mg, m, p * MIG_PAGE, n * MIG_PAGE);
		if (r)
			return r;
		p += n;
	}
	return 0;
}

/* --- what runs on the main thread ---------------------------------------- */

static int main_pause(struct machine *m, void *arg)
{
	char err[256];
	int r = machine_pause(m, err, sizeof(err));

	if (r)
		log_error("migration: %s", err);
	return r;
}

/*
 * The state, then the disks handed over: from here the target may read
 * (and after GO write) their metadata, so nothing of it may stay in this
 * process's caches.
 */
static int main_save(struct machine *m, void *arg)
{
	char err[BLK_ERR_LEN];
	int r = vm_state_save(m, arg, err, sizeof(err));

	if (!r)
		r = machine_hand_over_disks(m, true, err, sizeof(err));
	if (r)
		log_error("migration: %s", err);
	return r;
}

/* The source keeps the VM: back to running (or paused, as it was). */
static int main_keep(struct machine *m, void *arg)
{
	bool was_paused = *(bool *)arg;
	char err[BLK_ERR_LEN];

	/* The target never ran the VM, so the images are as we left them. */
	if (machine_hand_over_disks(m, false, err, sizeof(err))) {
		log_error("migration: cannot take the disks back (%s); the VM stays paused", err);
		machine_set_state(m, VM_STATE_PAUSED);
		if (!was_paused)
			m->state_before_pause = VM_STATE_RUNNING;
		return 0;
	}
	if (!was_paused && machine_resume(m, err, sizeof(err)))
		log_error("migration: cannot resume: %s", err);
	machine_set_state(m, was_paused ? VM_STATE_PAUSED : VM_STATE_RUNNING);
	return 0;
}

/* Broke after GO: the target may run it; we must not. */
static int main_unknown(struct machine *m, void *arg)
{
	machine_set_state(m, VM_STATE_PAUSED);
	m->state_before_pause = VM_STATE_RUNNING;
	return 0;
}

static int main_done(struct machine *m, void *arg)
{
	machine_set_state(m, VM_STATE_STOPPED);
	machine_request_stop(m, VM_STOP_QUIT);
	return 0;
}

/* --- the thread ------------------------------------------------------------ */

static int expect(struct migration *mg, uint32_t want, char *err, size_t errlen)
{
	uint32_t type;
	uint64_t len;
	char msg[200] = "";
	int r = mig_recv_header(mg->fd, &type, &len);

	if (r) {
		snprintf(err, errlen, "the connection broke: %s", r == -EPIPE ? "closed by the target" : strerror(-r));
		return r;
	}
	if (type == MIG_ABORT) {
		mig_recv_all(mg->fd, msg, MIN(len, sizeof(msg) - 1));
		snprintf(err, errlen, "the target gave up: %s", msg);
		return -ECONNABORTED;
	}
	if (type != want || len) {
		snprintf(err, errlen, "the target sent message %u, expected %u", type, want);
		return -EPROTO;
	}
	return 0;
}

static uint64_t bytes_sent(struct migration *mg)
{
	uint64_t n;

	pthread_mutex_lock(&mg->lock);
	n = mg->p.bytes_sent;
	pthread_mutex_unlock(&mg->lock);
	return n;
}

/* Rounds until what is dirty would go within the maximum downtime. */
static int precopy(struct migration *mg, struct machine *m, uint64_t *bitmap, char *err, size_t errlen)
{
	uint64_t dirty, t0, sent0;
	int r;

	set_phase(mg, "precopy");
	r = get_dirty(m, bitmap, &dirty); /* clears what was logged before round one */
	t0 = now_ms();
	sent0 = bytes_sent(mg);
	if (!r)
		r = send_all(mg, m);
	for (;;) {
		uint64_t elapsed = now_ms() - t0 + 1, bw, expected;
		bool last;

		if (r) {
			snprintf(err, errlen, "%s", r == -ECANCELED ? "cancelled" : strerror(-r));
			return r;
		}
		bw = (bytes_sent(mg) - sent0) * 1000 / elapsed;
		r = get_dirty(m, bitmap, &dirty);
		if (r) {
			snprintf(err, errlen, "KVM_GET_DIRTY_LOG failed: %s", strerror(-r));
			return r;
		}
		expected = bw ? dirty * MIG_PAGE * 1000 / bw : UINT64_MAX;
		pthread_mutex_lock(&mg->lock);
		mg->p.rounds++;
		mg->p.bandwidth_bps = bw;
		mg->p.dirty_pages = dirty;
		mg->p.dirty_rate_pps = dirty * 1000 / elapsed;
		mg->p.expected_downtime_ms = expected;
		last = expected <= mg->max_downtime_ms || mg->p.rounds >= MIG_MAX_ROUNDS;
		pthread_mutex_unlock(&mg->lock);
		t0 = now_ms();
		sent0 = bytes_sent(mg);
		r = send_dirty(mg, m, bitmap);
		/*
		 * The pages that fit the downtime still go while the guest runs:
		 * what is left for the pause is only what it dirties meanwhile,
		 * a short round's worth (next to nothing for an idle guest).
		 */
		if (last && !r) {
			memset(bitmap, 0, (m->ram.size / MIG_PAGE / 64 + 1) * 8);
			return 0;
		}
	}
}

static void *migration_thread(void *arg)
{
	struct machine *m = arg;
	struct migration *mg = m->migration;
	uint64_t *bitmap = calloc(m->ram.size / MIG_PAGE / 64 + 1, 8), dirty = 0, t_start = now_ms();
	uint64_t t[T_STEPS] = { 0 }, last_pages = 0;
	bool was_paused = mg->was_paused, sent_go = false;
	struct state_writer w;
	char err[600] = "";
	int r;

	state_writer_init(&w);
	if (!bitmap) {
		snprintf(err, sizeof(err), "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	set_phase(mg, "connecting");
	r = connect_to(mg->uri, err, sizeof(err));
	if (r < 0)
		goto fail;
	mg->fd = r;
	/* HELLO: the target builds its VM from our configuration. */
	{
		struct state_writer hw;

		state_writer_init(&hw);
		state_put_bytes(&hw, MIG_MAGIC, 8);
		state_put_u32(&hw, MIG_VERSION);
		vm_config_save(m, &hw);
		r = state_writer_error(&hw) ? -ENOMEM : mig_send(mg->fd, MIG_HELLO, hw.buf, hw.len);
		state_writer_free(&hw);
	}
	if (!r)
		r = dirty_logging(m, true);
	if (r) {
		snprintf(err, sizeof(err), "cannot start: %s", strerror(-r));
		goto fail;
	}
	r = precopy(mg, m, bitmap, err, sizeof(err));
	if (r)
		goto fail;

	set_phase(mg, "stop-and-copy");
	t[T_PAUSE] = now_us();
	if (!was_paused) {
		r = main_call(&m->main_call, main_pause, NULL);
		if (r) {
			snprintf(err, sizeof(err), "cannot pause the VM: %s", strerror(-r));
			goto fail;
		}
	}
	t[T_PAUSED] = now_us();
	/*
	 * What the guest dirtied since the last pre-copy round took the log
	 * (that round sent, while it ran, what it had found).
	 */
	{
		uint64_t words = m->ram.size / MIG_PAGE / 64 + 1, *more = calloc(words, 8);

		r = more ? get_dirty(m, more, &dirty) : -ENOMEM;
		for (uint64_t i = 0; !r && i < words; i++) {
			bitmap[i] |= more[i];
			last_pages += (uint64_t)__builtin_popcountll(bitmap[i]);
		}
		free(more);
	}
	if (!r)
		r = send_dirty(mg, m, bitmap);
	t[T_PAGES] = now_us();
	if (!r)
		r = main_call(&m->main_call, main_save, &w);
	t[T_SAVED] = now_us();
	if (!r)
		r = mig_send(mg->fd, MIG_STATE, w.buf, w.len);
	t[T_STATE_SENT] = now_us();
	if (r) {
		snprintf(err, sizeof(err), "%s", r == -ECANCELED ? "cancelled" : strerror(-r));
		goto fail;
	}
	set_phase(mg, "switch-over");
	r = expect(mg, MIG_READY, err, sizeof(err));
	if (r)
		goto fail;
	t[T_READY] = now_us();
	/* From here on the VM is the target's: a cancel is too late. */
	atomic_store(&mg->committed, true);
	r = mig_send(mg->fd, MIG_GO, NULL, 0);
	sent_go = true;
	if (!r)
		r = expect(mg, MIG_RUNNING, err, sizeof(err));
	if (r)
		goto fail;
	t[T_RUNNING] = now_us();
	pthread_mutex_lock(&mg->lock);
	mg->p.status = MIG_COMPLETED;
	mg->p.downtime_ms = (t[T_RUNNING] - t[T_PAUSE]) / 1000;
	mg->p.total_ms = now_ms() - t_start;
	log_info("migrated to %s: %u rounds, %llu MiB sent, downtime %llu ms, total %llu ms", mg->uri,
		 mg->p.rounds, (unsigned long long)(mg->p.bytes_sent >> 20),
		 (unsigned long long)mg->p.downtime_ms, (unsigned long long)mg->p.total_ms);
	pthread_mutex_unlock(&mg->lock);
	log_downtime_steps(t, last_pages, w.len);
	main_call(&m->main_call, main_done, NULL);
	goto out;
fail:
	if (sent_go) {
		set_error(mg, MIG_UNKNOWN, err, " after the switch-over was sent: the target may be running "
			  "the VM; this one stays paused (check the target before resuming it)");
		log_error("migration: %s", mg->p.error);
		pthread_mutex_lock(&mg->lock);
		mg->p.status = MIG_ACTIVE; /* published once the state is paused */
		pthread_mutex_unlock(&mg->lock);
		main_call(&m->main_call, main_unknown, NULL);
		pthread_mutex_lock(&mg->lock);
		mg->p.status = MIG_UNKNOWN;
		pthread_mutex_unlock(&mg->lock);
		goto out;
	}
	log_warn("migration to %s %s: %s; the VM stays here", mg->uri,
		 atomic_load(&mg->cancel) ? "cancelled" : "failed", err);
	if (m->kvm.vm_fd >= 0)
		dirty_logging(m, false);
	/* The VM's state first, then the status: a client that sees "failed" sees it running. */
	main_call(&m->main_call, main_keep, &was_paused);
	set_error(mg, atomic_load(&mg->cancel) ? MIG_CANCELLED : MIG_FAILED, err, "");
out:
	pthread_mutex_lock(&mg->lock);
	if (!mg->p.total_ms)
		mg->p.total_ms = now_ms() - t_start;
	pthread_mutex_unlock(&mg->lock);
	if (mg->fd >= 0)
		close(mg->fd);
	mg->fd = -1;
	state_writer_free(&w);
	free(bitmap);
	return NULL;
}

int migration_start(struct machine *m, const char *uri, uint64_t max_downtime_ms,
		    char *err, size_t errlen)
{
	struct migration *mg;
	char host[256], port[16];
	int r;

	if (mig_parse_uri(uri, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "'%s' is not tcp:HOST:PORT", uri);
		return -EINVAL;
	}
	migration_reap(m);
	mg = m->migration;
	if (!mg) {
		mg = calloc(1, sizeof(*mg));
		if (!mg) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		pthread_mutex_init(&mg->lock, NULL);
		m->migration = mg;
	}
	memset(&mg->p, 0, sizeof(mg->p));
	mg->p.status = MIG_ACTIVE;
	mg->p.phase = "connecting";
	atomic_store(&mg->cancel, false);
	atomic_store(&mg->committed, false);
	snprintf(mg->uri, sizeof(mg->uri), "%s", uri);
	mg->max_downtime_ms = max_downtime_ms;
	mg->was_paused = m->paused;
	mg->fd = -1;
	r = thread_create(&mg->thread, THREAD_STACK_IO, migration_thread, m);
	if (r) {
		mg->p.status = MIG_FAILED;
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(r));
		return -r;
	}
	mg->thread_running = true;
	return 0;
}

int migration_cancel(struct machine *m)
{
	struct migration *mg = m->migration;

	if (!mg || !mg->thread_running)
		return -ENOENT;
	if (atomic_load(&mg->committed))
		return -EBUSY;
	atomic_store(&mg->cancel, true);
	/* Unblocks a send or receive in progress; the thread sees `cancel`. */
	if (mg->fd >= 0)
		shutdown(mg->fd, SHUT_RDWR);
	return 0;
}

void migration_reap(struct machine *m)
{
	struct migration *mg = m->migration;

	if (!mg || !mg->thread_running)
		return;
	pthread_join(mg->thread, NULL);
	mg->thread_running = false;
}

void migration_destroy(struct machine *m)
{
	struct migration *mg = m->migration;

	if (!mg)
		return;
	if (mg->thread_running) {
		atomic_store(&mg->cancel, true);
		if (mg->fd >= 0)
			shutdown(mg->fd, SHUT_RDWR);
		migration_reap(m);
	}
	pthread_mutex_destroy(&mg->lock);
	free(mg);
	m->migration = NULL;
}

json_object *migration_progress_json(struct machine *m)
{
	struct migration *mg = m->migration;
	json_object *o = json_object_new_object();
	struct mig_progress p = { .status = MIG_NONE };

	if (mg) {
		pthread_mutex_lock(&mg->lock);
		p = mg->p;
		pthread_mutex_unlock(&mg->lock);
	}
	json_object_object_add(o, "status", json_object_new_string(mig_status_name(p.status)));
	if (p.status == MIG_NONE)
		return o;
	json_object_object_add(o, "uri", json_object_new_string(mg->uri));
	json_object_object_add(o, "phase", json_object_new_string(p.phase ? p.phase : "-"));
	json_object_object_add(o, "max_downtime_ms", json_object_new_uint64(mg->max_downtime_ms));
	json_object_object_add(o, "rounds", json_object_new_int((int)p.rounds));
	json_object_object_add(o, "bytes_sent", json_object_new_uint64(p.bytes_sent));
	json_object_object_add(o, "pages_sent", json_object_new_uint64(p.pages_sent));
	json_object_object_add(o, "dirty_pages", json_object_new_uint64(p.dirty_pages));
	json_object_object_add(o, "dirty_rate_pages_per_s", json_object_new_uint64(p.dirty_rate_pps));
	json_object_object_add(o, "bandwidth_bytes_per_s", json_object_new_uint64(p.bandwidth_bps));
	json_object_object_add(o, "expected_downtime_ms",
			       p.expected_downtime_ms == UINT64_MAX ? NULL
								    : json_object_new_uint64(p.expected_downtime_ms));
	json_object_object_add(o, "downtime_ms", json_object_new_uint64(p.downtime_ms));
	json_object_object_add(o, "total_ms", json_object_new_uint64(p.total_ms));
	json_object_object_add(o, "error", p.error[0] ? json_object_new_string(p.error) : NULL);
	return o;
}
