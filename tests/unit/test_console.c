// SPDX-License-Identifier: Apache-2.0
/*
 * The console backends with a real 16550A behind them, driven as the
 * machine does (UART tx -> console_write, rx_ready -> console_rx_ready)
 * and read by a test "guest" through the port bus: pty and unix-socket
 * clients, backpressure into the UART's 16-byte FIFO, output buffering and
 * drop counting with nobody reading, and stdio on a pipe and on a terminal
 * (raw mode, Ctrl-A escapes, restore).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "hw/uart_16550.h"
#include "keel/bus.h"
#include "keel/event_loop.h"
#include "ktest.h"
#include "vmm/console.h"
#include "vmm/console_internal.h"

#define COM1 UART_COM1_PORT

struct rig {
	struct event_loop loop;
	struct bus pio;
	struct uart_16550 *uart;
	struct console *con;
	unsigned quits;
	bool overrun;
};

static void rig_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct rig *r = opaque;

	console_write(r->con, buf, len);
}

static void rig_rx_ready(void *opaque)
{
	struct rig *r = opaque;

	console_rx_ready(r->con);
}

static const struct uart_16550_ops rig_ops = { .tx = rig_tx, .rx_ready = rig_rx_ready };

static void rig_quit(void *opaque)
{
	((struct rig *)opaque)->quits++;
}

static uint8_t guest_in(struct rig *r, unsigned reg)
{
	uint8_t v;

	bus_read(&r->pio, COM1 + reg, &v, 1);
	return v;
}

static void guest_out(struct rig *r, unsigned reg, uint8_t v)
{
	bus_write(&r->pio, COM1 + reg, &v, 1);
}

static bool rig_open(struct rig *r, const char *spec)
{
	char err[256] = "";

	memset(r, 0, sizeof(*r));
	if (event_loop_init(&r->loop) || bus_init(&r->pio, "pio"))
		return false;
	r->uart = uart_16550_create(&r->pio, COM1, (struct irq_line){ 0 }, &rig_ops, r);
	r->con = console_open(spec, &r->loop, err, sizeof(err));
	if (!r->con) {
		printf("# console_open(%s): %s\n", spec, err);
		return false;
	}
	console_set_quit_handler(r->con, rig_quit, r);
	console_attach_uart(r->con, r->uart);
	/* The guest's driver: FIFOs on (16 bytes), as Linux's 8250 sets them. */
	if (r->uart)
		guest_out(r, 2, 0x01);
	return r->uart != NULL;
}

static void rig_close(struct rig *r)
{
	console_attach_uart(r->con, NULL);
	console_close(r->con);
	uart_16550_destroy(r->uart);
	bus_destroy(&r->pio);
	event_loop_destroy(&r->loop);
}

/* The guest reads whatever the UART holds; returns how many bytes. */
static size_t guest_drain(struct rig *r, uint8_t *buf, size_t max)
{
	size_t n = 0;
	uint8_t lsr;

	while (n < max && ((lsr = guest_in(r, 5)) & 0x01)) {
		if (lsr & 0x02)
			r->overrun = true;
		buf[n++] = guest_in(r, 0);
	}
	return n;
}

/* Runs the loop and the guest until `want` bytes arrived or nothing moves for a while. */
static size_t receive(struct rig *r, uint8_t *buf, size_t want, size_t *first_batch)
{
	size_t got = 0;

	for (int idle = 0; got < want && idle < 50;) {
		size_t n;

		event_loop_run_once(&r->loop, 20);
		n = guest_drain(r, buf + got, want - got);
		if (first_batch && !got)
			*first_batch = n;
		got += n;
		idle = n ? 0 : idle + 1;
	}
	return got;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + i / 251);
}

/* Reads what fd has (non-blocking), running the loop so queued output flows. */
static size_t drain_fd(struct rig *r, int fd, uint8_t *buf, size_t max)
{
	size_t got = 0;

	for (int idle = 0; got < max && idle < 20;) {
		ssize_t n;

		event_loop_run_once(&r->loop, 10);
		n = read(fd, buf + got, max - got);
		if (n > 0) {
			got += (size_t)n;
			idle = 0;
		} else {
			idle++;
		}
	}
	return got;
}

KTEST(console_spec_check)
{
	char err[256];
	char longpath[200];

	KCHECK_EQ(console_check_spec("stdio", err, sizeof(err)), 0);
	KCHECK_EQ(console_check_spec("pty", err, sizeof(err)), 0);
	KCHECK_EQ(console_check_spec("none", err, sizeof(err)), 0);
	KCHECK_EQ(console_check_spec("unix:/run/vm.sock", err, sizeof(err)), 0);
	KCHECK_EQ(console_check_spec("tty", err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--console tty: unknown kind (expected stdio, pty, unix:PATH or none)");
	KCHECK_EQ(console_check_spec("", err, sizeof(err)), -EINVAL);
	KCHECK_EQ(console_check_spec("unix:", err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--console unix: needs a socket path (unix:PATH)");
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = 0;
	KCHECK_EQ(console_check_spec(longpath, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "socket path longer than 107 bytes") != NULL);
}

KTEST(console_pty_output_and_input_with_backpressure)
{
	struct rig r;
	uint8_t in[100], got[100], out[16];
	size_t n, first = 0;
	int client;

	KASSERT(rig_open(&r, "pty"));
	KASSERT(console_pty_name(r.con) != NULL);
	KCHECK(!strncmp(console_pty_name(r.con), "/dev/pts/", 9));
	client = open(console_pty_name(r.con), O_RDWR | O_NOCTTY | O_NONBLOCK);
	KASSERT(client >= 0);
	/* Guest output reaches the client. */
	for (const char *p = "hello"; *p; p++)
		guest_out(&r, 0, (uint8_t)*p);
	n = drain_fd(&r, client, out, 5);
	KCHECK_EQ(n, 5);
	KCHECK(!memcmp(out, "hello", 5));
	/* 100 typed bytes reach the guest 16 at a time, in order, never overrunning. */
	fill_pattern(in, sizeof(in), 1);
	KASSERT(write(client, in, sizeof(in)) == (ssize_t)sizeof(in));
	n = receive(&r, got, sizeof(got), &first);
	KCHECK_EQ(first, 16);
	KCHECK_EQ(n, sizeof(in));
	KCHECK(!memcmp(got, in, sizeof(in)));
	KCHECK(!r.overrun);
	KCHECK_EQ(console_dropped(r.con), 0);
	close(client);
	rig_close(&r);
}

/* Nobody has the pty open: output piles up to the buffers, the rest is counted. */
KTEST(console_pty_drops_when_nobody_reads)
{
	enum { TOTAL = 1024 * 1024 };
	static uint8_t pattern[TOTAL], got[TOTAL];
	struct rig r;
	uint64_t dropped;
	size_t n;
	int client;

	KASSERT(rig_open(&r, "pty"));
	fill_pattern(pattern, TOTAL, 3);
	for (size_t off = 0; off < TOTAL; off += 4096)
		console_write(r.con, pattern + off, 4096);
	dropped = console_dropped(r.con);
	KCHECK(dropped > 0);
	KCHECK(dropped < TOTAL);
	/* A late reader gets the stream's start, intact, and nothing more. */
	client = open(console_pty_name(r.con), O_RDWR | O_NOCTTY | O_NONBLOCK);
	KASSERT(client >= 0);
	n = drain_fd(&r, client, got, TOTAL);
	printf("# late reader got %zu bytes, %llu dropped\n", n, (unsigned long long)dropped);
	KCHECK_EQ(n + dropped, TOTAL);
	KCHECK(!memcmp(got, pattern, n));
	close(client);
	rig_close(&r);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	if (fd >= 0)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

KTEST(console_unix_one_client_at_a_time)
{
	char dir[] = "/tmp/keel-console-XXXXXX", path[64], spec[80];
	uint8_t early[100], buf[256], in[40], rx[40];
	static uint8_t big[100 * 1024];
	struct rig r;
	struct stat st;
	int c1, c2;
	size_t n;

	KASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/console.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	KASSERT(rig_open(&r, spec));
	KCHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	/* Said before anyone connected: kept for the first client. */
	fill_pattern(early, sizeof(early), 5);
	console_write(r.con, early, sizeof(early));
	c1 = connect_to(path);
	KASSERT(c1 >= 0);
	n = drain_fd(&r, c1, buf, sizeof(early));
	KCHECK_EQ(n, sizeof(early));
	KCHECK(!memcmp(buf, early, sizeof(early)));
	/* A second client is told and closed. */
	c2 = connect_to(path);
	KASSERT(c2 >= 0);
	n = drain_fd(&r, c2, buf, sizeof(buf) - 1);
	buf[n] = 0;
	KCHECK(strstr((char *)buf, "already has a client") != NULL);
	KCHECK_EQ(read(c2, buf, 1), 0); /* closed */
	close(c2);
	/* The first client's typing reaches the guest. */
	fill_pattern(in, sizeof(in), 9);
	KASSERT(write(c1, in, sizeof(in)) == (ssize_t)sizeof(in));
	KCHECK_EQ(receive(&r, rx, sizeof(rx), NULL), sizeof(rx));
	KCHECK(!memcmp(rx, in, sizeof(in)));
	/* It leaves: 100 KiB of output, 64 KiB kept for the next one, the rest counted. */
	close(c1);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&r.loop, 10);
	console_write(r.con, big, sizeof(big));
	KCHECK_EQ(console_dropped(r.con), sizeof(big) - CONSOLE_RING_SIZE);
	rig_close(&r);
	KCHECK(stat(path, &st) < 0 && errno == ENOENT); /* removed at close */
	rmdir(dir);
}

KTEST(console_unix_socket_path_checks)
{
	char dir[] = "/tmp/keel-console-XXXXXX", path[64], spec[80], err[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct event_loop loop;
	struct console *a, *b;
	int fd;

	KASSERT(mkdtemp(dir));
	KASSERT(event_loop_init(&loop) == 0);
	snprintf(path, sizeof(path), "%s/c.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	/* A stale socket (its owner died without removing it) is replaced. */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	KASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(fd);
	a = console_open(spec, &loop, err, sizeof(err));
	KCHECK(a != NULL);
	/* A live one is not. */
	b = console_open(spec, &loop, err, sizeof(err));
	KCHECK(b == NULL);
	KCHECK(strstr(err, "another process is listening there") != NULL);
	console_close(a);
	/* Nor is something that is not a socket. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	KASSERT(fd >= 0);
	close(fd);
	b = console_open(spec, &loop, err, sizeof(err));
	KCHECK(b == NULL);
	KCHECK(strstr(err, "exists and is not a socket") != NULL);
	unlink(path);
	rmdir(dir);
	event_loop_destroy(&loop);
}

KTEST(console_none_drops_everything)
{
	struct rig r;

	KASSERT(rig_open(&r, "none"));
	guest_out(&r, 0, 'a');
	console_write(r.con, (const uint8_t *)"bcd", 3);
	KCHECK_EQ(console_dropped(r.con), 4);
	KCHECK(console_pty_name(r.con) == NULL);
	rig_close(&r);
}

/* Swaps fds 0 and 1 for the test's own; restore() puts them back. */
struct std_swap {
	int saved_in, saved_out;
};

static bool swap_std(struct std_swap *s, int new_in, int new_out)
{
	fflush(stdout);
	s->saved_in = dup(0);
	s->saved_out = dup(1);
	return s->saved_in >= 0 && s->saved_out >= 0 && dup2(new_in, 0) == 0 && dup2(new_out, 1) == 1;
}

static void restore_std(struct std_swap *s)
{
	fflush(stdout);
	dup2(s->saved_in, 0);
	dup2(s->saved_out, 1);
	close(s->saved_in);
	close(s->saved_out);
}

/* stdin a pipe: bytes pass untouched (Ctrl-A too); at EOF input stops, output goes on. */
KTEST(console_stdio_pipe_passthrough_and_eof)
{
	static const uint8_t typed[] = { 'a', 'b', 0x01, 'x', 0x01, 0x01, 'c' };
	uint8_t rx[16], out[16];
	int in_pipe[2], out_pipe[2];
	struct std_swap s;
	struct rig r;
	size_t n_rx = 0, n_out = 0;
	bool opened, watching_after_eof = true;

	KASSERT(pipe(in_pipe) == 0 && pipe(out_pipe) == 0);
	KASSERT(swap_std(&s, in_pipe[0], out_pipe[1]));
	opened = rig_open(&r, "stdio");
	if (opened) {
		KCHECK_EQ(write(in_pipe[1], typed, sizeof(typed)), (ssize_t)sizeof(typed));
		close(in_pipe[1]);
		n_rx = receive(&r, rx, sizeof(typed), NULL);
		for (int i = 0; i < 5; i++)
			event_loop_run_once(&r.loop, 10);
		watching_after_eof = r.con->io_registered;
		guest_out(&r, 0, 'O');
		guest_out(&r, 0, 'K');
		/* No newline: the hold timer passes "OK" on. */
		for (int i = 0; i < 5; i++)
			event_loop_run_once(&r.loop, 10);
	}
	restore_std(&s);
	KASSERT(opened);
	n_out = (size_t)read(out_pipe[0], out, sizeof(out));
	KCHECK_EQ(n_rx, sizeof(typed));
	KCHECK(!memcmp(rx, typed, sizeof(typed)));
	KCHECK_EQ(r.quits, 0);
	KCHECK(!watching_after_eof);
	KCHECK_EQ(n_out, 2);
	KCHECK(!memcmp(out, "OK", 2));
	rig_close(&r);
	close(in_pipe[0]);
	close(out_pipe[0]);
	close(out_pipe[1]);
}

/* Guest output waits for its line's end, or CONSOLE_HOLD_NS: one write per line. */
KTEST(console_output_held_until_its_line_ends)
{
	uint8_t out[16];
	int out_pipe[2];
	struct std_swap s;
	struct rig r;
	ssize_t early = 0, line = 0, late = 0;
	int null_fd = open("/dev/null", O_RDONLY);
	bool opened;

	KASSERT(null_fd >= 0 && pipe2(out_pipe, O_NONBLOCK) == 0);
	KASSERT(swap_std(&s, null_fd, out_pipe[1]));
	opened = rig_open(&r, "stdio");
	if (opened) {
		guest_out(&r, 0, 'a');
		guest_out(&r, 0, 'b');
		early = read(out_pipe[0], out, sizeof(out)); /* held: nothing yet */
		guest_out(&r, 0, 'c');
		guest_out(&r, 0, '\n');
		line = read(out_pipe[0], out, sizeof(out)); /* the line, in one piece */
		KCHECK(line == 4 && !memcmp(out, "abc\n", 4));
		guest_out(&r, 0, '$');
		for (int i = 0; i < 5 && late <= 0; i++) {
			event_loop_run_once(&r.loop, 10);
			late = read(out_pipe[0], out, sizeof(out));
		}
	}
	restore_std(&s);
	KASSERT(opened);
	KCHECK_EQ(early, -1);
	KCHECK_EQ(line, 4);
	KCHECK(late == 1 && out[0] == '$');
	rig_close(&r);
	close(null_fd);
	close(out_pipe[0]);
	close(out_pipe[1]);
}

/* stdin a file (epoll refuses those): read on demand as the UART takes it; /dev/null ends at once. */
KTEST(console_stdio_file_and_dev_null)
{
	char path[] = "/tmp/keel-console-in-XXXXXX";
	uint8_t in[40], rx[40];
	int fd = mkstemp(path), devnull = open("/dev/null", O_RDWR), out_pipe[2];
	struct std_swap s;
	struct rig r;
	size_t n_rx = 0, first = 0;
	bool opened, opened_null = false, null_watched = true;

	KASSERT(fd >= 0 && devnull >= 0 && pipe(out_pipe) == 0);
	fill_pattern(in, sizeof(in), 11);
	KASSERT(write(fd, in, sizeof(in)) == (ssize_t)sizeof(in));
	lseek(fd, 0, SEEK_SET);
	KASSERT(swap_std(&s, fd, out_pipe[1]));
	opened = rig_open(&r, "stdio");
	if (opened) {
		n_rx = receive(&r, rx, sizeof(rx), &first);
		rig_close(&r);
	}
	if (dup2(devnull, 0) == 0 && rig_open(&r, "stdio")) {
		opened_null = true;
		for (int i = 0; i < 3; i++)
			event_loop_run_once(&r.loop, 10);
		null_watched = r.con->io_registered || !r.con->in_eof;
		rig_close(&r);
	}
	restore_std(&s);
	KASSERT(opened);
	KCHECK_EQ(first, 16);
	KCHECK_EQ(n_rx, sizeof(in));
	KCHECK(!memcmp(rx, in, sizeof(in)));
	KCHECK(opened_null);
	KCHECK(!null_watched);
	close(fd);
	unlink(path);
	close(devnull);
	close(out_pipe[0]);
	close(out_pipe[1]);
}

/* stdin a terminal: raw mode while open, Ctrl-A escapes, settings restored at close. */
KTEST(console_stdio_terminal_raw_mode_and_escapes)
{
	static const uint8_t typed[] = { 'a', 0x01, 0x01, 0x01, 'q', 0x01, 'x', 'z' };
	static const uint8_t want[] = { 'a', 0x01, 0x01, 'q', 'z' };
	struct termios before, during, after;
	int master, slave, out_pipe[2];
	uint8_t rx[16];
	struct std_swap s;
	struct rig r;
	size_t n_rx = 0;
	bool opened;

	KASSERT(openpty(&master, &slave, NULL, NULL, NULL) == 0);
	KASSERT(pipe(out_pipe) == 0);
	KASSERT(tcgetattr(slave, &before) == 0);
	KASSERT(swap_std(&s, slave, out_pipe[1]));
	opened = rig_open(&r, "stdio");
	if (opened) {
		tcgetattr(0, &during);
		KCHECK_EQ(write(master, typed, sizeof(typed)), (ssize_t)sizeof(typed));
		n_rx = receive(&r, rx, sizeof(want), NULL);
		rig_close(&r);
	}
	tcgetattr(0, &after);
	restore_std(&s);
	KASSERT(opened);
	KCHECK_EQ(during.c_lflag & (ICANON | ECHO | ISIG), 0);
	KCHECK(during.c_oflag & OPOST);
	KCHECK_EQ(n_rx, sizeof(want));
	KCHECK(!memcmp(rx, want, sizeof(want)));
	KCHECK_EQ(r.quits, 1);
	KCHECK_EQ(after.c_lflag, before.c_lflag);
	KCHECK_EQ(after.c_iflag, before.c_iflag);
	KCHECK_EQ(after.c_oflag, before.c_oflag);
	close(master);
	close(slave);
	close(out_pipe[0]);
	close(out_pipe[1]);
}

int main(void)
{
	return ktest_run_all();
}
