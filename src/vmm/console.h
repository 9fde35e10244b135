/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM's serial console backend (--console):
 *   stdio       the terminal keel-vmm runs in, switched to raw mode while the
 *               VM runs and restored on every exit path; Ctrl-A x quits
 *               keel-vmm (stdin that is not a terminal is passed through)
 *   pty         a new pseudo-terminal; its path is printed at start
 *   unix:PATH   a listening UNIX socket; one client at a time is the console
 *   none        output dropped, no input
 *
 * Output comes from vCPU threads (the UART's tx) and never blocks them
 * for long: when nobody reads a pty or socket, output beyond a bounded buffer
 * is dropped. Input is read on the main event loop and handed to the UART
 * only as fast as its FIFO takes it, so nothing typed is lost.
 *
 * The console outlives guest reboots: the machine re-attaches it to the new
 * UART each boot.
 *
 * Choices worth knowing:
 *  - Guest output is passed on a line at a time: held until a newline, 1 KiB,
 *    or 10 ms after its first byte (console.c explains why), and written
 *    out by console_close(). A SIGKILL can lose an unfinished line.
 *  - stdio writes guest output to fd 1 with blocking writes: it is the
 *    operator's terminal or pipe and must get everything. Raw mode (with
 *    output post-processing kept, so log lines still start at column 0)
 *    is undone by console_close(), by an atexit handler, and by handlers
 *    for SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT that restore the terminal
 *    and re-raise. SIGINT/SIGTERM/SIGHUP are the caller's: keel-vmm turns
 *    them into a clean stop that ends in console_close(). (Only SIGKILL
 *    leaves the terminal raw; `reset` repairs it.)
 *  - Ctrl-A x calls the quit handler (console_set_quit_handler), or by
 *    default sends SIGTERM to the process. Ctrl-A Ctrl-A types Ctrl-A,
 *    Ctrl-A h prints the keys. If the guest stops reading its serial port,
 *    a terminal's input beyond 4 KiB is dropped (so Ctrl-A x still works);
 *    a pipe, pty or socket is simply not read (nothing lost).
 *  - stdin that is not a terminal passes through untouched; at its end
 *    input stops and the VM keeps running.
 *  - pty prints "keel-vmm: console on /dev/pts/N" on stderr at open. The
 *    console keeps the slave open itself, so output is kept (up to the
 *    kernel's and our 64 KiB buffer) until someone opens it.
 *  - unix:PATH serves one client at a time; a second one gets a one-line
 *    "busy" message and is closed. Output while nobody is connected is
 *    kept up to 64 KiB for the next client. A stale socket at PATH is
 *    replaced; a live one (another keel-vmm) or a non-socket is an error.
 *    The socket is made 0600 and removed at close.
 *  - Output beyond the 64 KiB buffer is dropped (the newest bytes, so a
 *    reader sees the stream's start intact) and counted: console_dropped().
 */
#ifndef KEEL_VMM_CONSOLE_H
#define KEEL_VMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/event_loop.h"

struct console;
struct uart_16550;

/*
 * Validates spec without opening anything (for the command-line parser).
 * 0, or -EINVAL with a message in err.
 */
int console_check_spec(const char *spec, char *err, size_t errlen);

/* Opens the backend. NULL on failure with a one-line reason in err. */
struct console *console_open(const char *spec, struct event_loop *loop, char *err, size_t errlen);
/* Route console input to this UART (NULL detaches). */
void console_attach_uart(struct console *con, struct uart_16550 *uart);
/* Guest output; thread-safe. */
void console_write(struct console *con, const uint8_t *buf, size_t len);
/* The UART's receive FIFO has room again. Any thread; only wakes the loop. */
void console_rx_ready(struct console *con);
/* Ctrl-A x calls fn(opaque) on the loop thread instead of raising SIGTERM. */
void console_set_quit_handler(struct console *con, void (*fn)(void *opaque), void *opaque);
/* Bytes of guest output dropped so far (nobody reading, or none backend). */
uint64_t console_dropped(struct console *con);
/* "/dev/pts/N" for the pty backend, else NULL. */
const char *console_pty_name(const struct console *con);
/*
 * Restores the terminal, removes a socket it created, frees. NULL is fine.
 * Also safe to call from an atexit handler after a fatal error.
 */
void console_close(struct console *con);

#endif
