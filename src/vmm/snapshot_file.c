// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm_snapshot.h"

#define STATE_MAGIC "KEELSNAP"
#define MEMORY_MAGIC "KEELMEM"
#define HEADER_SIZE 64
#define MEMORY_HEADER_VERSION 1
#define PAGE GUEST_RAM_PAGE

/*
 * state header, little-endian:
 *   0 magic[8]  8 u32 version  12 u32 header size  16 u64 payload length
 *  24 u32 payload CRC-32  28 u32 0  32 u64 memory size  40 id[16]
 *  56 u32 0  60 u32 CRC-32 of bytes 0..59
 * memory header: 0 magic[8]  8 u32 version  12 u32 data offset
 *  16 u64 memory size  24 id[16]  40 u32 CRC-32 of bytes 0..39, zeros to 4 KiB
 */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(const void *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths: feed large buffers in pieces. */
	for (const uint8_t *b = p; n;) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;

		c = crc32(c, b, k);
		b += k;
		n -= k;
	}
	return (uint32_t)c;
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
	for (const uint8_t *b = p; n;) {
		ssize_t w = pwrite(fd, b, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Guest RAM into the memory file at SNAPSHOT_MEMORY_OFFSET; what is all zeros stays a hole. */
static int write_ram(struct machine *m, int fd)
{
	uint64_t start, end;
	int r;

	for (uint64_t pos = 0; guest_ram_next_data(&m->ram, pos, &start, &end); pos = end) {
		r = write_all(fd, m->ram.base + start, end - start, (off_t)(start + SNAPSHOT_MEMORY_OFFSET));
		if (r)
			return r;
	}
	return ftruncate(fd, (off_t)(m->ram.size + SNAPSHOT_MEMORY_OFFSET)) < 0 ? -errno : 0;
}

static int write_file(const char *dir, const char *name, int (*fill)(int fd, void *arg), void *arg,
		      char *err, size_t errlen)
{
	char tmp[4096], final[4096];
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	r = fill(fd, arg);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, final) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write %s: %s", final, strerror(-r));
	}
	return r;
}

struct fill_ctx {
	struct machine *m;
	uint8_t id[16];
	const struct state_writer *w;
};

static int fill_memory(int fd, void *arg)
{
	struct fill_ctx *c = arg;
	uint8_t h[PAGE] = { 0 };
	int r;

	memcpy(h, MEMORY_MAGIC, 8);
	put32(h + 8, MEMORY_HEADER_VERSION);
	put32(h + 12, SNAPSHOT_MEMORY_OFFSET);
	put64(h + 16, c->m->ram.size);
	memcpy(h + 24, c->id, 16);
	put32(h + 40, crc(h, 40));
	r = write_all(fd, h, sizeof(h), 0);
	return r ? r : write_ram(c->m, fd);
}

static int fill_state(int fd, void *arg)
{
	struct fill_ctx *c = arg;
	uint8_t h[HEADER_SIZE] = { 0 };
	int r;

	memcpy(h, STATE_MAGIC, 8);
	put32(h + 8, SNAPSHOT_FORMAT_VERSION);
	put32(h + 12, HEADER_SIZE);
	put64(h + 16, c->w->len);
	put32(h + 24, crc(c->w->buf, c->w->len));
	put64(h + 32, c->m->ram.size);
	memcpy(h + 40, c->id, 16);
	put32(h + 60, crc(h, 60));
	r = write_all(fd, h, sizeof(h), 0);
	return r ? r : write_all(fd, c->w->buf, c->w->len, HEADER_SIZE);
}

static int prepare_dir(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	snprintf(path, sizeof(path), "%s/state", dir);
	if (access(path, F_OK) == 0) {
		snprintf(err, errlen, "%s already holds a snapshot", dir);
		return -EEXIST;
	}
	return 0;
}

int snapshot_write(struct machine *m, const char *dir, char *err, size_t errlen)
{
	struct state_writer w;
	struct fill_ctx c = { .m = m, .w = &w };
	int r, dfd;

	r = prepare_dir(dir, err, errlen);
	if (r)
		return r;
	if (getrandom(c.id, sizeof(c.id), 0) != (ssize_t)sizeof(c.id)) {
		snprintf(err, errlen, "getrandom failed: %s", strerror(errno));
		return -errno;
	}
	state_writer_init(&w);
	r = vm_state_save(m, &w, err, errlen);
	if (!r)
		r = write_file(dir, "memory", fill_memory, &c, err, errlen);
	if (!r)
		r = write_file(dir, "state", fill_state, &c, err, errlen);
	state_writer_free(&w);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* the renames */
		close(dfd);
	}
	return r;
}

static int read_state_file(const char *dir, struct snapshot *s, uint8_t *h, uint8_t *id,
			   char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	uint64_t len;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/state", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < HEADER_SIZE ||
	    pread(fd, h, HEADER_SIZE, 0) != HEADER_SIZE) {
		close(fd);
		snprintf(err, errlen, "%s: too short for a snapshot header", path);
		return -EBADMSG;
	}
	if (memcmp(h, STATE_MAGIC, 8)) {
		close(fd);
		snprintf(err, errlen, "%s: not a keel-vmm snapshot", path);
		return -EBADMSG;
	}
	if (get32(h + 60) != crc(h, 60)) {
		close(fd);
		snprintf(err, errlen, "%s: the header is corrupted (checksum mismatch)", path);
		return -EBADMSG;
	}
	if (get32(h + 8) != SNAPSHOT_FORMAT_VERSION || get32(h + 12) != HEADER_SIZE) {
		close(fd);
		snprintf(err, errlen, "%s: snapshot format version %u, this keel-vmm reads version %u",
			 path, get32(h + 8), SNAPSHOT_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	len = get64(h + 16);
	if (len > SNAPSHOT_MAX_STATE || (uint64_t)st.st_size != HEADER_SIZE + len) {
		close(fd);
		snprintf(err, errlen, "%s: %s: %llu bytes of state, the header says %llu", path,
			 (uint64_t)st.st_size < HEADER_SIZE + len ? "truncated" : "has trailing data",
			 (unsigned long long)(st.st_size - HEADER_SIZE), (unsigned long long)len);
		return -EBADMSG;
	}
	s->state = malloc(len ? len : 1);
	n = s->state ? pread(fd, s->state, len, HEADER_SIZE) : -1;
	close(fd);
	if (n != (ssize_t)len) {
		snprintf(err, errlen, "%s: cannot read it", path);
		return -EIO;
	}
	s->state_len = len;
	if (get32(h + 24) != crc(s->state, len)) {
		snprintf(err, errlen, "%s: the state is corrupted (checksum mismatch)", path);
		return -EBADMSG;
	}
	s->memory_size = get64(h + 32);
	memcpy(id, h + 40, 16);
	return 0;
}

static int open_memory_file(const char *dir, struct snapshot *s, const uint8_t *id,
			    char *err, size_t errlen)
{
	uint8_t h[64];
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/memory", dir);
	s->memory_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->memory_fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(s->memory_fd, &st) < 0 || pread(s->memory_fd, h, sizeof(h), 0) != sizeof(h) ||
	    memcmp(h, MEMORY_MAGIC, 8) || get32(h + 40) != crc(h, 40)) {
		snprintf(err, errlen, "%s: not a keel-vmm memory file, or its header is corrupted", path);
		return -EBADMSG;
	}
	if (get32(h + 8) != MEMORY_HEADER_VERSION || get32(h + 12) != SNAPSHOT_MEMORY_OFFSET) {
		snprintf(err, errlen, "%s: memory file version %u, this keel-vmm reads version %u", path,
			 get32(h + 8), MEMORY_HEADER_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (memcmp(h + 24, id, 16) || get64(h + 16) != s->memory_size) {
		snprintf(err, errlen, "%s: belongs to another snapshot", path);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size < SNAPSHOT_MEMORY_OFFSET + s->memory_size) {
		snprintf(err, errlen, "%s: truncated: %llu bytes of guest memory, %llu expected", path,
			 (unsigned long long)(st.st_size > SNAPSHOT_MEMORY_OFFSET ? st.st_size - SNAPSHOT_MEMORY_OFFSET : 0),
			 (unsigned long long)s->memory_size);
		return -EBADMSG;
	}
	return 0;
}

int snapshot_open(const char *dir, struct snapshot *s, char *err, size_t errlen)
{
	uint8_t h[HEADER_SIZE], id[16];
	char why[256];
	int r;

	memset(s, 0, sizeof(*s));
	s->memory_fd = -1;
	r = read_state_file(dir, s, h, id, err, errlen);
	if (!r)
		r = open_memory_file(dir, s, id, err, errlen);
	if (!r && state_reader_init(&s->reader, s->state, s->state_len, why, sizeof(why))) {
		snprintf(err, errlen, "%s/state: %s", dir, why);
		r = -EBADMSG;
	}
	if (r)
		snapshot_close(s);
	return r;
}

void snapshot_close(struct snapshot *s)
{
	free(s->state);
	s->state = NULL;
	if (s->memory_fd >= 0)
		close(s->memory_fd);
	s->memory_fd = -1;
}
