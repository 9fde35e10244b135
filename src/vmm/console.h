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
/* The UART's receive FIFO has room again. */
void console_rx_ready(struct console *con);
/*
 * Restores the terminal, removes a socket it created, frees. NULL is fine.
 * Also safe to call from an atexit handler after a fatal error.
 */
void console_close(struct console *con);

#endif
