// SPDX-License-Identifier: Apache-2.0
/*
 * Opening and closing the console backends: the terminal's raw mode and
 * its restoration on every exit path, the pseudo-terminal, and the UNIX
 * socket with its one client.
 */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/unix_socket.h"
#include "vmm/console.h"
#include "vmm/console_internal.h"

#define BUSY_MESSAGE "keel-vmm: this console already has a client\r\n"

/* ---- the terminal: raw mode, restored however the process ends ----- */

/*
 * One process has one terminal: this state is global so the signal and
 * atexit paths can reach it. tcsetattr() is async-signal-safe.
 */
static struct termios saved_tio;
static volatile sig_atomic_t tio_raw;
static bool atexit_done;
static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
static struct sigaction saved_actions[ARRAY_SIZE(fatal_signals)];

static void restore_tty(void)
{
	if (tio_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_raw = 0;
	}
}

static void on_fatal_signal(int sig)
{
	restore_tty();
	/* SA_RESETHAND put the default action back: die of the same signal. */
	raise(sig);
}

static int enter_raw_mode(char *err, size_t errlen)
{
	struct sigaction sa;
	struct termios raw;

	if (tio_raw) {
		snprintf(err, errlen, "--console stdio: the terminal is already a console");
		return -EBUSY;
	}
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0) {
		snprintf(err, errlen, "--console stdio: cannot read the terminal's settings: %s",
			 strerror(errno));
		return -errno;
	}
	raw = saved_tio;
	cfmakeraw(&raw);
	/* Keep output processing: our own log lines end in a bare \n. */
	raw.c_oflag |= OPOST | ONLCR;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
		snprintf(err, errlen, "--console stdio: cannot switch the terminal to raw mode: %s",
			 strerror(errno));
		return -errno;
	}
	tio_raw = 1;
	if (!atexit_done)
		atexit_done = atexit(restore_tty) == 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < ARRAY_SIZE(fatal_signals); i++)
		sigaction(fatal_signals[i], &sa, &saved_actions[i]);
	return 0;
}

static void leave_raw_mode(void)
{
	if (!tio_raw)
		return;
	restore_tty();
	for (unsigned i = 0; i < ARRAY_SIZE(fatal_signals); i++)
		sigaction(fatal_signals[i], &saved_actions[i], NULL);
}

/* ---- backends ------------------------------------------------------ */

static int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static int open_stdio(struct console *con, char *err, size_t errlen)
{
	int r;

	con->in_fd = STDIN_FILENO;
	con->io_h.fd = STDIN_FILENO;
	con->in_tty = isatty(STDIN_FILENO);
	if (con->in_tty) {
		r = enter_raw_mode(err, errlen);
		if (r)
			return r;
	}
	/*
	 * stdin is never made non-blocking (that flag would leak to the shell
	 * sharing the terminal): it is read once per readiness event, which
	 * does not block. Files and /dev/null, which epoll refuses, are read
	 * on demand instead.
	 */
	con->in_pollable = true;
	con->reading = true;
	pthread_mutex_lock(&con->out_lock);
	console_update_io_mask(con);
	pthread_mutex_unlock(&con->out_lock);
	if (!con->io_registered) {
		con->in_pollable = false;
		con->io_mask = 0;
	}
	return 0;
}

static int open_pty(struct console *con, char *err, size_t errlen)
{
	struct termios raw;
	int master, slave;

	memset(&raw, 0, sizeof(raw));
	cfmakeraw(&raw);
	if (openpty(&master, &slave, NULL, &raw, NULL) < 0) {
		snprintf(err, errlen, "--console pty: cannot open a pseudo-terminal: %s",
			 strerror(errno));
		return -errno;
	}
	con->in_fd = con->out_fd = con->io_h.fd = master;
	/* Held open by us so the master never sees a hang-up (EIO/EPOLLHUP). */
	con->pty_slave = slave;
	if (set_nonblock_cloexec(master) || fcntl(slave, F_SETFD, FD_CLOEXEC) < 0 ||
	    ptsname_r(master, con->pty_name, sizeof(con->pty_name))) {
		snprintf(err, errlen, "--console pty: cannot set up the pseudo-terminal: %s",
			 strerror(errno));
		return -EIO;
	}
	con->in_pollable = true;
	con->reading = true;
	pthread_mutex_lock(&con->out_lock);
	console_update_io_mask(con);
	pthread_mutex_unlock(&con->out_lock);
	fprintf(stderr, "%s: console on %s\n", program_invocation_short_name, con->pty_name);
	return con->io_registered ? 0 : -EIO;
}

static void on_accept(struct event_handler *h, uint32_t events)
{
	struct console *con = container_of(h, struct console, listen_h);
	int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	pthread_mutex_lock(&con->out_lock);
	if (con->out_fd >= 0) {
		pthread_mutex_unlock(&con->out_lock);
		if (send(fd, BUSY_MESSAGE, strlen(BUSY_MESSAGE), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* it left already; nothing to tell it */
		}
		close(fd);
		return;
	}
	con->in_fd = con->out_fd = con->io_h.fd = fd;
	con->in_pollable = true;
	con->in_eof = false;
	con->reading = true;
	/* What was said while nobody listened goes out first. */
	console_update_io_mask(con);
	pthread_mutex_unlock(&con->out_lock);
	console_pump_input(con);
}

void console_drop_client_locked(struct console *con)
{
	if (con->out_fd < 0)
		return;
	if (con->io_registered)
		event_loop_del(con->loop, &con->io_h);
	close(con->out_fd);
	con->io_registered = false;
	con->io_mask = 0;
	con->in_fd = con->out_fd = con->io_h.fd = -1;
	con->reading = false;
}

void console_client_gone(struct console *con)
{
	pthread_mutex_lock(&con->out_lock);
	console_drop_client_locked(con);
	pthread_mutex_unlock(&con->out_lock);
}

static int open_unix(struct console *con, const char *path, char *err, size_t errlen)
{
	struct unix_listener l;
	char why[128];
	int r;

	strcpy(con->path, path);
	r = unix_socket_listen(&l, path, 4, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "--console unix:%s: %s", path, why);
		return r;
	}
	con->sock_dev = l.dev;
	con->sock_ino = l.ino;
	con->listen_h.fd = l.fd;
	con->listen_h.cb = on_accept;
	r = event_loop_add(con->loop, &con->listen_h, EPOLLIN);
	if (r) {
		snprintf(err, errlen, "--console unix:%s: %s", path, strerror(-r));
		return r;
	}
	fprintf(stderr, "%s: console on unix:%s\n", program_invocation_short_name, path);
	return 0;
}

static struct console *console_new(enum backend kind, struct event_loop *loop)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	con->kind = kind;
	con->loop = loop;
	con->in_fd = con->out_fd = con->io_h.fd = -1;
	con->pty_slave = con->listen_h.fd = -1;
	con->io_h.cb = console_on_io;
	con->ready_h.cb = console_on_ready;
	pthread_mutex_init(&con->in_lock, NULL);
	pthread_mutex_init(&con->out_lock, NULL);
	pthread_mutex_init(&con->stdout_lock, NULL);
	pthread_mutex_init(&con->hold_lock, NULL);
	con->hold_timer.h.fd = -1;
	/* Without the timer, output is passed on unheld (console.c); none drops it at once. */
	con->hold_ok = kind != BACKEND_NONE &&
		       event_timer_init(loop, &con->hold_timer, console_on_hold_timer) == 0;
	con->ready_h.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	con->ring = kind == BACKEND_PTY || kind == BACKEND_UNIX ? malloc(CONSOLE_RING_SIZE) : NULL;
	if (con->ready_h.fd < 0 || ((kind == BACKEND_PTY || kind == BACKEND_UNIX) && !con->ring) ||
	    event_loop_add(loop, &con->ready_h, EPOLLIN)) {
		console_close(con);
		return NULL;
	}
	return con;
}

struct console *console_open(const char *spec, struct event_loop *loop, char *err, size_t errlen)
{
	enum backend kind = BACKEND_NONE;
	struct console *con;
	int r = 0;

	if (console_check_spec(spec, err, errlen))
		return NULL;
	if (!strcmp(spec, "stdio"))
		kind = BACKEND_STDIO;
	else if (!strcmp(spec, "pty"))
		kind = BACKEND_PTY;
	else if (!strncmp(spec, "unix:", 5))
		kind = BACKEND_UNIX;
	con = console_new(kind, loop);
	if (!con) {
		snprintf(err, errlen, "--console %s: out of memory or file descriptors", spec);
		return NULL;
	}
	err[0] = 0;
	if (kind == BACKEND_STDIO)
		r = open_stdio(con, err, errlen);
	else if (kind == BACKEND_PTY)
		r = open_pty(con, err, errlen);
	else if (kind == BACKEND_UNIX)
		r = open_unix(con, spec + 5, err, errlen);
	if (r) {
		if (!err[0])
			snprintf(err, errlen, "--console %s: %s", spec, strerror(-r));
		console_close(con);
		return NULL;
	}
	return con;
}

void console_close(struct console *con)
{
	if (!con)
		return;
	console_flush_held(con);
	if (con->hold_ok)
		event_timer_destroy(con->loop, &con->hold_timer);
	con->hold_ok = false;
	if (con->kind == BACKEND_STDIO)
		leave_raw_mode();
	pthread_mutex_lock(&con->out_lock);
	if (con->io_registered)
		event_loop_del(con->loop, &con->io_h);
	con->io_registered = false;
	/* stdin is not ours to close; the pty master and a client are. */
	if (con->kind == BACKEND_PTY || con->kind == BACKEND_UNIX) {
		if (con->io_h.fd >= 0)
			close(con->io_h.fd);
	}
	con->in_fd = con->out_fd = con->io_h.fd = -1;
	pthread_mutex_unlock(&con->out_lock);
	if (con->pty_slave >= 0)
		close(con->pty_slave);
	if (con->listen_h.fd >= 0) {
		event_loop_del(con->loop, &con->listen_h);
		close(con->listen_h.fd);
		/* Only our own socket: someone may have replaced it meanwhile. */
		unix_socket_unlink(&(struct unix_listener){ .dev = con->sock_dev, .ino = con->sock_ino },
				   con->path);
	}
	if (con->ready_h.fd >= 0) {
		event_loop_del(con->loop, &con->ready_h);
		close(con->ready_h.fd);
	}
	pthread_mutex_destroy(&con->in_lock);
	pthread_mutex_destroy(&con->out_lock);
	pthread_mutex_destroy(&con->stdout_lock);
	pthread_mutex_destroy(&con->hold_lock);
	free(con->ring);
	free(con);
}
