/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by console.c (data paths) and console_backends.c (open/close). */
#ifndef KEEL_VMM_CONSOLE_INTERNAL_H
#define KEEL_VMM_CONSOLE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "keel/event_loop.h"

struct uart_16550;

#define CONSOLE_RING_SIZE (64 * 1024) /* queued output per console */
#define CONSOLE_PENDING_SIZE 4096 /* read but not yet taken by the UART */
#define CONSOLE_HOLD_SIZE 1024 /* guest output held until its line ends */
#define CONSOLE_HOLD_NS (10 * 1000 * 1000ull) /* longest a held byte waits */

enum backend { BACKEND_NONE, BACKEND_STDIO, BACKEND_PTY, BACKEND_UNIX };

struct console {
	enum backend kind;
	struct event_loop *loop;

	/* Input: loop thread only, except `uart` (in_lock). */
	pthread_mutex_t in_lock;
	struct uart_16550 *uart;
	int in_fd;       /* stdin, pty master or client socket; -1: none */
	bool in_pollable; /* false: a regular file or /dev/null, read on demand */
	bool in_eof;
	bool in_tty;     /* stdio on a terminal: raw mode and Ctrl-A escapes */
	bool esc;
	uint8_t pending[CONSOLE_PENDING_SIZE];
	size_t pending_off, pending_len;
	uint64_t input_dropped;
	struct event_handler ready_h; /* eventfd: the UART has room, or a UART was attached */
	void (*quit)(void *opaque);
	void *quit_opaque;

	/* Output, and the epoll registration of io_h (out_lock). */
	pthread_mutex_t out_lock;
	int out_fd;             /* pty master or client socket; -1: nobody */
	uint8_t *ring;
	size_t ring_head, ring_len;
	uint64_t dropped;
	struct event_handler io_h; /* in_fd (shared with out_fd for pty/unix) */
	bool reading;           /* EPOLLIN wanted */
	bool io_registered;
	uint32_t io_mask;

	/* Output held until a line ends (hold_lock; console.c, "holding"). */
	pthread_mutex_t hold_lock;
	uint8_t hold[CONSOLE_HOLD_SIZE];
	size_t hold_len;
	bool hold_armed;           /* hold_timer runs */
	bool hold_ok;              /* hold_timer exists; else output goes straight out */
	struct event_timer hold_timer;

	/* stdio: guest output goes straight to fd 1. */
	pthread_mutex_t stdout_lock;
	bool stdout_broken;

	/* pty */
	int pty_slave;
	char pty_name[64];

	/* unix */
	struct event_handler listen_h;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev;
	ino_t sock_ino;
};

/* console.c */
void console_update_io_mask(struct console *con); /* out_lock held */
void console_pump_input(struct console *con);    /* loop thread */
void console_on_io(struct event_handler *h, uint32_t events);
void console_on_ready(struct event_handler *h, uint32_t events);
void console_on_hold_timer(struct event_timer *t);
void console_flush_held(struct console *con); /* at close */

/* console_backends.c */
void console_drop_client_locked(struct console *con); /* out_lock held */
void console_client_gone(struct console *con);        /* loop thread */

#endif
