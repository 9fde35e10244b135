// SPDX-License-Identifier: Apache-2.0
/*
 * The target side of a live migration (--incoming tcp:HOST:PORT): wait for
 * one source, build the VM from its configuration, take memory pages and
 * then the state, load it, say READY, and run the vCPUs only once GO has
 * come. Anything wrong before GO (a broken connection, a bad message, a
 * state this keel-vmm cannot load) ends this process with status 1 and
 * leaves the VM to the source.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keel/log.h"
#include "vmm/machine.h"
#include "vmm/migration.h"
#include "vmm/vm_snapshot.h"

int migration_listen(const char *uri, int *listen_fd, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res;
	char host[256], port[16];
	int fd, one = 1, r;

	if (mig_parse_uri(uri, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "--incoming '%s': give tcp:HOST:PORT", uri);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "--incoming %s: %s", uri, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		r = -errno;
		snprintf(err, errlen, "--incoming %s: cannot listen: %s", uri, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	*listen_fd = fd;
	log_info("waiting for a migration on %s", uri);
	return 0;
}

/* A stop signal while we wait (they are blocked: main loop not running yet). */
static int pending_stop_signal(void)
{
	sigset_t set;

	sigpending(&set);
	if (sigismember(&set, SIGTERM))
		return SIGTERM;
	if (sigismember(&set, SIGINT))
		return SIGINT;
	return sigismember(&set, SIGHUP) ? SIGHUP : 0;
}

int migration_accept(int listen_fd, int *fd, struct vm_config *cfg, char **strs,
		     char *err, size_t errlen)
{
	struct state_reader *rd = NULL;
	uint8_t *hello = NULL;
	uint32_t type;
	uint64_t len;
	char why[256];
	int r, sig;

	for (;;) {
		struct pollfd p = { .fd = listen_fd, .events = POLLIN };

		if ((sig = pending_stop_signal())) {
			snprintf(err, errlen, "stopped by signal %d while waiting for a migration", sig);
			return -EINTR;
		}
		if (poll(&p, 1, 200) > 0)
			break;
	}
	*fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (*fd < 0) {
		snprintf(err, errlen, "accept failed: %s", strerror(errno));
		return -errno;
	}
	mig_set_socket_options(*fd, MIG_IO_TIMEOUT_S);
	r = mig_recv_header(*fd, &type, &len);
	if (!r && (type != MIG_HELLO || len < 12 || len > 1 << 20))
		r = -EPROTO;
	hello = r ? NULL : malloc(len);
	if (!r && !hello)
		r = -ENOMEM;
	if (!r)
		r = mig_recv_all(*fd, hello, len);
	if (!r && (memcmp(hello, MIG_MAGIC, 8) || hello[8] != MIG_VERSION || hello[9] || hello[10] ||
		   hello[11]))
		r = -EPROTONOSUPPORT;
	if (r) {
		snprintf(err, errlen, "the source's greeting is not a keel-vmm migration (version %d): %s",
			 MIG_VERSION, strerror(-r));
		goto out;
	}
	rd = calloc(1, sizeof(*rd));
	r = rd ? state_reader_init(rd, hello + 12, len - 12, why, sizeof(why)) : -ENOMEM;
	if (!r)
		r = vm_config_load(rd, cfg, strs, why, sizeof(why));
	if (r)
		snprintf(err, errlen, "the source's configuration: %s", why);
out:
	free(rd);
	free(hello);
	return r;
}

static void send_abort(int fd, const char *why)
{
	mig_send(fd, MIG_ABORT, why, strlen(why));
}

int migration_receive(struct machine *m, int fd, char *err, size_t errlen)
{
	struct state_reader *rd = calloc(1, sizeof(*rd));
	uint8_t *state = NULL;
	uint64_t pages = 0;
	char why[400];
	int r = rd ? 0 : -ENOMEM;

	while (!r) {
		uint32_t type;
		uint64_t len, off = 0;
		uint8_t le[8];

		r = mig_recv_header(fd, &type, &len);
		if (r)
			break;
		if (type == MIG_STATE) {
			if (len > MIG_MAX_PAYLOAD) {
				r = -EPROTO;
				break;
			}
			state = malloc(len ? len : 1);
			r = state ? mig_recv_all(fd, state, len) : -ENOMEM;
			if (r)
				break;
			r = state_reader_init(rd, state, len, why, sizeof(why));
			/* The source handed the disks over before it sent the state. */
			if (!r)
				r = machine_hand_over_disks(m, false, why, sizeof(why));
			if (!r)
				r = vm_state_load(m, rd, why, sizeof(why));
			if (r) {
				snprintf(err, errlen, "cannot load the source's state: %s", why);
				send_abort(fd, err);
				goto out;
			}
			break;
		}
		if (type != MIG_PAGES || len < 8 + MIG_PAGE || (len - 8) % MIG_PAGE) {
			r = -EPROTO;
			break;
		}
		r = mig_recv_all(fd, le, 8);
		for (int i = 0; i < 8; i++)
			off |= (uint64_t)le[i] << (8 * i);
		/* Pages land straight in guest RAM, checked against its size first. */
		if (!r && (off % MIG_PAGE || off > m->ram.size || len - 8 > m->ram.size - off))
			r = -ERANGE;
		if (!r)
			r = mig_recv_all(fd, m->ram.base + off, len - 8);
		pages += (len - 8) / MIG_PAGE;
	}
	if (r) {
		snprintf(err, errlen, "receiving from the source failed: %s",
			 r == -EPIPE ? "the connection was closed" : strerror(-r));
		goto out;
	}
	log_debug("migration: %llu pages received, state loaded", (unsigned long long)pages);
	r = mig_send(fd, MIG_READY, NULL, 0);
	if (!r) {
		uint32_t type;
		uint64_t len;

		r = mig_recv_header(fd, &type, &len);
		if (!r && (type != MIG_GO || len))
			r = -EPROTO;
	}
	if (r)
		snprintf(err, errlen, "no go-ahead from the source: %s",
			 r == -EPIPE ? "the connection was closed" : strerror(-r));
out:
	free(state);
	free(rd);
	return r;
}
