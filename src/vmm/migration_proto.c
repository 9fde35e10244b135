// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "vmm/config.h"
#include "vmm/migration.h"

int mig_parse_uri(const char *uri, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	char *end;
	long p;

	if (strncmp(uri, "tcp:", 4))
		return -EINVAL;
	uri += 4;
	colon = strrchr(uri, ':');
	if (!colon || colon == uri || (size_t)(colon - uri) >= hostlen || strlen(colon + 1) >= portlen)
		return -EINVAL;
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return -EINVAL;
	/* [v6::addr]:port */
	if (uri[0] == '[' && colon[-1] == ']')
		snprintf(host, hostlen, "%.*s", (int)(colon - uri - 2), uri + 1);
	else
		snprintf(host, hostlen, "%.*s", (int)(colon - uri), uri);
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

void mig_set_socket_options(int fd, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/*
	 * Every message goes out whole in one sendmsg(); what Nagle would hold
	 * back is a message's last partial segment (the state, READY, GO,
	 * RUNNING) until an ACK comes, and those are the downtime.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void put_header(uint8_t *h, uint32_t type, uint64_t len)
{
	memset(h, 0, 16);
	for (int i = 0; i < 4; i++)
		h[i] = (uint8_t)(type >> (8 * i));
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(len >> (8 * i));
}

static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = sendmsg(fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)n },
				    MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int mig_send2(int fd, uint32_t type, const void *a, uint64_t alen, const void *b, uint64_t blen)
{
	uint8_t h[16];
	struct iovec iov[3] = {
		{ h, sizeof(h) },
		{ (void *)a, alen },
		{ (void *)b, blen },
	};

	put_header(h, type, alen + blen);
	return send_iov(fd, iov, 3);
}

int mig_send(int fd, uint32_t type, const void *payload, uint64_t len)
{
	return mig_send2(fd, type, payload, len, NULL, 0);
}

int mig_recv_all(int fd, void *buf, size_t len)
{
	for (uint8_t *p = buf; len;) {
		ssize_t n = recv(fd, p, len, MSG_WAITALL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_recv_header(int fd, uint32_t *type, uint64_t *len)
{
	uint8_t h[16];
	int r = mig_recv_all(fd, h, sizeof(h));

	if (r)
		return r;
	*type = 0;
	*len = 0;
	for (int i = 0; i < 4; i++)
		*type |= (uint32_t)h[i] << (8 * i);
	for (int i = 0; i < 8; i++)
		*len |= (uint64_t)h[8 + i] << (8 * i);
	return 0;
}

const char *mig_status_name(enum mig_status s)
{
	static const char *const names[] = {
		[MIG_NONE] = "none", [MIG_ACTIVE] = "active", [MIG_COMPLETED] = "completed",
		[MIG_FAILED] = "failed", [MIG_CANCELLED] = "cancelled", [MIG_UNKNOWN] = "unknown",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
