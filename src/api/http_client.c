// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/http_client.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);

			if (r)
				return r;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int parse_reply(char *buf, size_t len, struct http_client_reply *rep, char *err, size_t errlen)
{
	char *end = strstr(buf, "\r\n\r\n");
	int status;

	if (len < 12 || strncmp(buf, "HTTP/1.", 7) || sscanf(buf + 9, "%3d", &status) != 1 || !end) {
		snprintf(err, errlen, "the server's reply is not HTTP");
		return -EPROTO;
	}
	rep->status = status;
	end += 4;
	rep->len = len - (size_t)(end - buf);
	rep->body = malloc(rep->len + 1);
	if (!rep->body)
		return -ENOMEM;
	memcpy(rep->body, end, rep->len);
	rep->body[rep->len] = 0;
	return 0;
}

int http_client_request(const char *socket_path, const char *method, const char *path,
			const char *body, int timeout_ms, struct http_client_reply *rep,
			char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + timeout_ms;
	size_t blen = body ? strlen(body) : 0, len = 0, cap = 4096;
	char head[512], *buf = NULL;
	int fd, r;

	memset(rep, 0, sizeof(*rep));
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", socket_path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", socket_path, strerror(errno));
		goto out;
	}
	snprintf(head, sizeof(head),
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 method, path, blen);
	r = send_all(fd, head, strlen(head), deadline);
	if (!r && blen)
		r = send_all(fd, body, blen, deadline);
	if (r) {
		snprintf(err, errlen, "cannot send the request to %s: %s", socket_path, strerror(-r));
		goto out;
	}
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *nb = cap * 2 <= HTTP_CLIENT_MAX_REPLY ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				r = -E2BIG;
				snprintf(err, errlen, "the reply from %s is too large", socket_path);
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		r = wait_fd(fd, POLLIN, deadline);
		if (r) {
			snprintf(err, errlen, "no reply from %s within %d ms", socket_path, timeout_ms);
			goto out;
		}
		n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "reading the reply from %s: %s", socket_path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	r = parse_reply(buf, len, rep, err, errlen);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

void http_client_reply_free(struct http_client_reply *rep)
{
	free(rep->body);
	rep->body = NULL;
}
