/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listening UNIX sockets for the console and the control API: a socket
 * file left behind by a keel-vmm that died is replaced, a live one or
 * something that is not a socket is not; the file is made 0600 (only the
 * owner may drive the VM). unix_socket_unlink() removes the file on exit,
 * unless another process has replaced it since.
 */
#ifndef KEEL_UNIX_SOCKET_H
#define KEEL_UNIX_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

struct unix_listener {
	int fd;
	dev_t dev;
	ino_t ino;
};

/*
 * A non-blocking, close-on-exec listening socket at path. 0, or -errno
 * with the reason in why (without the path: callers name the flag).
 */
int unix_socket_listen(struct unix_listener *l, const char *path, int backlog,
		       char *why, size_t whylen);
/* Removes path if it is still the socket this listener created. */
void unix_socket_unlink(const struct unix_listener *l, const char *path);

#endif
