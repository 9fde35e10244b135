/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live migration, pre-copy over TCP (docs/migration.md).
 *
 * Stream: messages of a 16-byte header (u32 type, u32 0, u64 length) and a
 * payload, little-endian.
 *   source -> target  HELLO   magic "KEELMIG1", version, then the vm/config section
 *                     PAGES   u64 RAM offset, then whole 4 KiB pages
 *                     STATE   every state section (vm_snapshot.h)
 *                     GO      the target may run the VM; the source never will
 *   target -> source  READY   state loaded, waiting for GO
 *                     RUNNING the vCPUs run on the target
 *                     ABORT   text: why the target gives up
 *
 * Who runs the VM when the connection breaks: the source, until it has
 * sent GO. After GO the source never resumes on its own: if RUNNING does
 * not arrive it stays paused and says the outcome is unknown, since the
 * target may be running (two copies of a VM writing one disk is worse
 * than none running until an operator looks).
 */
#ifndef KEEL_VMM_MIGRATION_H
#define KEEL_VMM_MIGRATION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "vmm/config.h"

struct machine;

enum mig_msg {
	MIG_HELLO = 1,
	MIG_PAGES,
	MIG_STATE,
	MIG_GO,
	MIG_READY,
	MIG_RUNNING,
	MIG_ABORT,
};

#define MIG_MAGIC "KEELMIG1"
#define MIG_VERSION 1
#define MIG_PAGE 4096
#define MIG_MAX_PAYLOAD (64u << 20)
#define MIG_DEFAULT_MAX_DOWNTIME_MS 50
#define MIG_MAX_ROUNDS 30
#define MIG_IO_TIMEOUT_S 30

enum mig_status {
	MIG_NONE,
	MIG_ACTIVE,
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLED,
	MIG_UNKNOWN, /* broke after GO: the target may be running */
};

/* What GET /v1/vm/migration shows; under `lock`. */
struct mig_progress {
	enum mig_status status;
	const char *phase; /* "connecting", "precopy", "stop-and-copy", "switch-over" */
	unsigned rounds;
	uint64_t bytes_sent, pages_sent;
	uint64_t dirty_pages;          /* found dirty at the start of the last round */
	uint64_t dirty_rate_pps;       /* pages dirtied per second, last round */
	uint64_t bandwidth_bps;        /* bytes per second, last round */
	uint64_t expected_downtime_ms;
	uint64_t downtime_ms, total_ms;
	char error[800];
};

struct migration {
	pthread_mutex_t lock;
	struct mig_progress p;
	pthread_t thread;
	bool thread_running;
	atomic_bool cancel;
	atomic_bool committed; /* GO is being sent: too late to cancel */
	char uri[256];
	uint64_t max_downtime_ms;
	bool was_paused; /* the VM was paused when the migration began */
	int fd;
};

/* "tcp:HOST:PORT" into host and port; 0 or -EINVAL. */
int mig_parse_uri(const char *uri, char *host, size_t hostlen, char *port, size_t portlen);

/* Framing on a blocking socket with send/receive timeouts: 0 or -errno (-EPIPE at EOF). */
int mig_send(int fd, uint32_t type, const void *payload, uint64_t len);
int mig_send2(int fd, uint32_t type, const void *a, uint64_t alen, const void *b, uint64_t blen);
int mig_recv_header(int fd, uint32_t *type, uint64_t *len);
int mig_recv_all(int fd, void *buf, size_t len);
/* I/O timeouts of `seconds`, and no Nagle delay (each message is one sendmsg). */
void mig_set_socket_options(int fd, unsigned seconds);

const char *mig_status_name(enum mig_status s);

/* Source side (migration.c): starts the thread; 0 or -errno with err. */
int migration_start(struct machine *m, const char *uri, uint64_t max_downtime_ms,
		    char *err, size_t errlen);
/* 0, -ENOENT when none runs, -EBUSY when it is past the point of no return. */
int migration_cancel(struct machine *m);
/* Joins a finished (or cancelled) migration thread; main thread. */
void migration_reap(struct machine *m);
json_object *migration_progress_json(struct machine *m);
/* Cancels and joins a running migration, frees it (machine_destroy). */
void migration_destroy(struct machine *m);

/* Target side (migration_incoming.c): waits for a source on --incoming. */
int migration_listen(const char *uri, int *listen_fd, char *err, size_t errlen);
/* Accepts the source and reads HELLO: the configuration into cfg (strings in strs). */
int migration_accept(int listen_fd, int *fd, struct vm_config *cfg, char **strs,
		     char *err, size_t errlen);
/* Receives memory and state into the created VM, then READY/GO; vCPUs not yet started. */
int migration_receive(struct machine *m, int fd, char *err, size_t errlen);

#endif
