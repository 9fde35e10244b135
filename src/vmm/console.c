// SPDX-License-Identifier: Apache-2.0
/*
 * The console's data paths: guest output to the backend, typed input to
 * the UART with backpressure (see console.h for the contract; opening and
 * closing the backends is in console_backends.c).
 *
 * Locks: `in_lock` guards the UART pointer and is held while calling
 * uart_16550_rx(), which takes the UART's lock. The UART calls
 * console_write() with its own lock held, which takes `out_lock` (or
 * `stdout_lock`). Nothing holding out_lock calls into the UART, so the
 * order in_lock -> UART -> out_lock has no cycle. console_rx_ready() only
 * pokes an eventfd; the input work happens on the main loop.
 *
 * Input state (pending bytes, escape state, EOF) is touched only on the
 * loop's thread. The epoll mask of the shared pty/socket fd combines
 * "reading" and "output queued" and is changed under out_lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hw/uart_16550.h"
#include "keel/compiler.h"
#include "keel/log.h"
#include "vmm/console.h"
#include "vmm/console_internal.h"

#define CTRL_A 0x01

/* ---- spec ---------------------------------------------------------- */

int console_check_spec(const char *spec, char *err, size_t errlen)
{
	const char *path;

	if (!strcmp(spec, "stdio") || !strcmp(spec, "pty") || !strcmp(spec, "none"))
		return 0;
	if (strncmp(spec, "unix:", 5)) {
		snprintf(err, errlen,
			 "--console %s: unknown kind (expected stdio, pty, unix:PATH or none)", spec);
		return -EINVAL;
	}
	path = spec + 5;
	if (!*path) {
		snprintf(err, errlen, "--console unix: needs a socket path (unix:PATH)");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "--console %s: socket path longer than %zu bytes", spec,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -EINVAL;
	}
	return 0;
}

/* ---- epoll mask of the shared fd (out_lock held) ------------------- */

void console_update_io_mask(struct console *con)
{
	uint32_t mask = 0;

	if (con->io_h.fd < 0)
		return;
	if (con->reading && con->in_pollable)
		mask |= EPOLLIN;
	if (con->ring_len && con->out_fd == con->io_h.fd)
		mask |= EPOLLOUT;
	if (mask == con->io_mask && con->io_registered)
		return;
	/*
	 * With nothing wanted the fd leaves the set altogether: a hung-up
	 * pipe would otherwise report EPOLLHUP in a loop while we hold back.
	 */
	if (!mask) {
		if (con->io_registered)
			event_loop_del(con->loop, &con->io_h);
		con->io_registered = false;
	} else if (!con->io_registered) {
		con->io_registered = event_loop_add(con->loop, &con->io_h, mask) == 0;
	} else {
		event_loop_mod(con->loop, &con->io_h, mask);
	}
	con->io_mask = mask;
}

static void set_reading(struct console *con, bool on)
{
	pthread_mutex_lock(&con->out_lock);
	con->reading = on;
	console_update_io_mask(con);
	pthread_mutex_unlock(&con->out_lock);
}

/* ---- output -------------------------------------------------------- */

static ssize_t out_write(struct console *con, const void *buf, size_t len)
{
	/* Sockets: no SIGPIPE even if the caller did not ignore it. */
	if (con->kind == BACKEND_UNIX)
		return send(con->out_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return write(con->out_fd, buf, len);
}

static void ring_append(struct console *con, const uint8_t *buf, size_t len)
{
	size_t room = CONSOLE_RING_SIZE - con->ring_len, take = MIN(len, room);

	/* The newest output is what is dropped: a reader sees the stream's start intact. */
	con->dropped += len - take;
	for (size_t i = 0; i < take; i++)
		con->ring[(con->ring_head + con->ring_len + i) % CONSOLE_RING_SIZE] = buf[i];
	con->ring_len += take;
}

/* Writes as much of the ring as the fd takes now (out_lock held). */
static void flush_ring(struct console *con)
{
	while (con->ring_len && con->out_fd >= 0) {
		size_t chunk = MIN(con->ring_len, CONSOLE_RING_SIZE - con->ring_head);
		ssize_t n = out_write(con, con->ring + con->ring_head, chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && con->kind == BACKEND_UNIX)
				console_drop_client_locked(con);
			break;
		}
		con->ring_head = (con->ring_head + (size_t)n) % CONSOLE_RING_SIZE;
		con->ring_len -= (size_t)n;
	}
	console_update_io_mask(con);
}

/* stdio: everything reaches the operator's terminal or pipe, blocking if need be. */
static void write_stdout(struct console *con, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&con->stdout_lock);
	while (len && !con->stdout_broken) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			/* Someone made the terminal non-blocking: wait for it. */
			struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };

			poll(&p, 1, -1);
		} else if (n < 0 && errno != EINTR) {
			log_warn("console: standard output failed (%s); guest output is dropped from now on",
				 strerror(errno));
			con->stdout_broken = true;
		}
	}
	pthread_mutex_unlock(&con->stdout_lock);
	if (len) {
		pthread_mutex_lock(&con->out_lock);
		con->dropped += len;
		pthread_mutex_unlock(&con->out_lock);
	}
}

/* Hands guest output to the backend: stdout, the pty or client, or the ring. */
static void emit(struct console *con, const uint8_t *buf, size_t len)
{
	if (!len)
		return;
	if (con->kind == BACKEND_STDIO) {
		write_stdout(con, buf, len);
		return;
	}
	pthread_mutex_lock(&con->out_lock);
	if (con->kind == BACKEND_NONE) {
		con->dropped += len;
	} else {
		/* Straight through when nothing is queued, so order is kept. */
		if (!con->ring_len && con->out_fd >= 0) {
			ssize_t n = out_write(con, buf, len);

			if (n > 0) {
				buf += n;
				len -= (size_t)n;
			}
		}
		if (len) {
			ring_append(con, buf, len);
			console_update_io_mask(con);
		}
	}
	pthread_mutex_unlock(&con->out_lock);
}

/* ---- holding output until its line ends ---------------------------- */
/*
 * The guest's 8250 driver writes its console one byte per THR write. Passed
 * on as they come, each byte was a write(2) of its own and woke whoever
 * reads the console (a terminal, a logger, a pipe) once per byte: for a
 * boot log, tens of thousands of wake-ups. Output is held instead until a
 * newline, until CONSOLE_HOLD_SIZE bytes gather, or until the loop's timer
 * fires CONSOLE_HOLD_NS after the first held byte, so a line costs one
 * write and one wake-up, and a prompt without a newline still shows within
 * CONSOLE_HOLD_NS. console_close() writes out what is held; only a SIGKILL
 * of keel-vmm loses it (at most that unfinished line).
 *
 * Lock order: the UART's lock -> hold_lock -> out_lock / stdout_lock.
 */
static void flush_held_locked(struct console *con)
{
	emit(con, con->hold, con->hold_len);
	con->hold_len = 0;
}

void console_write(struct console *con, const uint8_t *buf, size_t len)
{
	if (!con || !len)
		return;
	pthread_mutex_lock(&con->hold_lock);
	if (!con->hold_ok) {
		emit(con, buf, len);
		pthread_mutex_unlock(&con->hold_lock);
		return;
	}
	while (len) {
		size_t take = MIN(len, CONSOLE_HOLD_SIZE - con->hold_len);
		bool eol = memchr(buf, '\n', take) != NULL;

		memcpy(con->hold + con->hold_len, buf, take);
		con->hold_len += take;
		buf += take;
		len -= take;
		if (eol || con->hold_len == CONSOLE_HOLD_SIZE)
			flush_held_locked(con);
	}
	if (con->hold_len && !con->hold_armed)
		con->hold_armed = event_timer_arm(&con->hold_timer, CONSOLE_HOLD_NS, 0) == 0;
	if (con->hold_len && !con->hold_armed)
		flush_held_locked(con); /* no timer to count on: out now */
	pthread_mutex_unlock(&con->hold_lock);
}

void console_on_hold_timer(struct event_timer *t)
{
	struct console *con = container_of(t, struct console, hold_timer);

	pthread_mutex_lock(&con->hold_lock);
	con->hold_armed = false;
	flush_held_locked(con);
	pthread_mutex_unlock(&con->hold_lock);
}

void console_flush_held(struct console *con)
{
	/* From an atexit handler a crashed vCPU may hold the lock: skip then. */
	if (pthread_mutex_trylock(&con->hold_lock))
		return;
	flush_held_locked(con);
	pthread_mutex_unlock(&con->hold_lock);
}

uint64_t console_dropped(struct console *con)
{
	uint64_t n;

	pthread_mutex_lock(&con->out_lock);
	n = con->dropped;
	pthread_mutex_unlock(&con->out_lock);
	return n;
}

/* ---- input --------------------------------------------------------- */

static void quit(struct console *con)
{
	if (con->quit)
		con->quit(con->quit_opaque);
	else
		kill(getpid(), SIGTERM);
}

static void pending_add(struct console *con, uint8_t b)
{
	if (con->pending_off + con->pending_len == CONSOLE_PENDING_SIZE && con->pending_off) {
		memmove(con->pending, con->pending + con->pending_off, con->pending_len);
		con->pending_off = 0;
	}
	if (con->pending_off + con->pending_len < CONSOLE_PENDING_SIZE) {
		con->pending[con->pending_off + con->pending_len++] = b;
		return;
	}
	if (!con->input_dropped++)
		log_warn("console: the guest is not reading its serial port; dropping typed input");
}

/* Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h helps; other pairs pass. */
static void typed(struct console *con, uint8_t b)
{
	if (!con->esc) {
		if (b == CTRL_A)
			con->esc = true;
		else
			pending_add(con, b);
		return;
	}
	con->esc = false;
	switch (b) {
	case 'x':
	case 'X':
		quit(con);
		break;
	case 'h':
	case 'H':
		fprintf(stderr, "\r\nkeel-vmm console: Ctrl-A x quit, Ctrl-A Ctrl-A send Ctrl-A\r\n");
		break;
	case CTRL_A:
		pending_add(con, CTRL_A);
		break;
	default:
		pending_add(con, CTRL_A);
		pending_add(con, b);
		break;
	}
}

/* Hands pending bytes to the UART; true when all were taken. */
static bool push_pending(struct console *con)
{
	pthread_mutex_lock(&con->in_lock);
	if (con->uart && con->pending_len) {
		size_t n = uart_16550_rx(con->uart, con->pending + con->pending_off, con->pending_len);

		con->pending_off += n;
		con->pending_len -= n;
	}
	pthread_mutex_unlock(&con->in_lock);
	if (!con->pending_len)
		con->pending_off = 0;
	return con->pending_len == 0;
}

/* One read from the input fd into pending. */
static void read_input(struct console *con)
{
	uint8_t buf[CONSOLE_PENDING_SIZE];
	size_t room = CONSOLE_PENDING_SIZE - con->pending_len;
	ssize_t n;

	/* A terminal is read even when full, so Ctrl-A x always works. */
	if (con->in_tty)
		room = sizeof(buf);
	if (!room || con->in_fd < 0 || con->in_eof)
		return;
	n = read(con->in_fd, buf, room);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (con->kind == BACKEND_UNIX) {
			console_client_gone(con);
			return;
		}
		/* stdin ended (or failed): the VM runs on without input. */
		con->in_eof = true;
		set_reading(con, false);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (con->in_tty)
			typed(con, buf[i]);
		else
			pending_add(con, buf[i]);
	}
}

/* Moves input along: push what is pending, read more while the UART takes it. */
void console_pump_input(struct console *con)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		if (!push_pending(con)) {
			/* Backpressure: stop reading until rx_ready, except on a terminal. */
			set_reading(con, con->in_tty && !con->in_eof);
			return;
		}
		if (con->in_pollable || con->in_eof || con->in_fd < 0)
			break;
		/* Files and /dev/null cannot be polled: read on demand. */
		read_input(con);
		if (!con->pending_len)
			break;
	}
	set_reading(con, !con->in_eof && con->in_fd >= 0);
}

void console_on_io(struct event_handler *h, uint32_t events)
{
	struct console *con = container_of(h, struct console, io_h);

	if (events & EPOLLOUT) {
		pthread_mutex_lock(&con->out_lock);
		flush_ring(con);
		pthread_mutex_unlock(&con->out_lock);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (con->reading) {
			read_input(con);
			console_pump_input(con);
		} else if (con->kind == BACKEND_UNIX && (events & (EPOLLHUP | EPOLLERR))) {
			console_client_gone(con);
		}
	}
}

void console_on_ready(struct event_handler *h, uint32_t events)
{
	struct console *con = container_of(h, struct console, ready_h);
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	console_pump_input(con);
}

static void poke(struct console *con)
{
	uint64_t one = 1;

	if (write(con->ready_h.fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is already pending, which is all we need. */
	}
}

void console_rx_ready(struct console *con)
{
	if (con)
		poke(con);
}

void console_attach_uart(struct console *con, struct uart_16550 *uart)
{
	if (!con)
		return;
	pthread_mutex_lock(&con->in_lock);
	con->uart = uart;
	pthread_mutex_unlock(&con->in_lock);
	if (uart)
		poke(con); /* typed-ahead input goes to the new UART */
}

void console_set_quit_handler(struct console *con, void (*fn)(void *opaque), void *opaque)
{
	con->quit = fn;
	con->quit_opaque = opaque;
}

const char *console_pty_name(const struct console *con)
{
	return con->kind == BACKEND_PTY ? con->pty_name : NULL;
}
