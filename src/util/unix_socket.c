// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "keel/unix_socket.h"

static int clear_stale_socket(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, live;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "exists and is not a socket");
		return -EEXIST;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	if (live) {
		snprintf(why, whylen, "another process is listening there");
		return -EADDRINUSE;
	}
	return unlink(path) < 0 ? -errno : 0;
}

int unix_socket_listen(struct unix_listener *l, const char *path, int backlog,
		       char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	l->fd = -1;
	*why = 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "path longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	r = clear_stale_socket(path, why, whylen);
	if (r) {
		if (!*why)
			snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    lstat(path, &st) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot listen: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

void unix_socket_unlink(const struct unix_listener *l, const char *path)
{
	struct stat st;

	if (!lstat(path, &st) && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(path);
}
