/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Saved state in tagged, versioned sections: what snapshots and live
 * migration carry for the VM, its vCPUs and every device.
 *
 * A writer appends sections to a growing buffer:
 *
 *     state_begin(w, "uart0", 1);
 *     state_put_u8(w, u->ier); ... state_put_bytes(w, fifo, 16);
 *     state_end(w);
 *
 * A reader finds a section by tag and reads the fields back in the same
 * order. Field reads never fail on their own: running past the end of the
 * section sets a sticky error and returns zeros, so a device's load
 * function reads everything, then asks state_section_ok() once (or
 * state_section_done(), which also insists every byte was consumed).
 * A device validates what it reads as it would a guest's register write:
 * a snapshot is input from outside.
 *
 * Encoding: integers little-endian, fixed width; a section is
 *   u16 tag length, tag bytes, u32 version, u32 payload length, payload.
 * Integrity (checksums, the file header) is the container's business
 * (src/vmm/snapshot_file.c, the migration stream), not this layer's.
 */
#ifndef KEEL_STATE_H
#define KEEL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_TAG_MAX 48

struct state_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t section_start; /* offset of the open section's length field, 0 if none */
	int error;            /* sticky -ENOMEM / -EINVAL */
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);
/* 0 or the first error any call met. */
int state_writer_error(const struct state_writer *w);

void state_begin(struct state_writer *w, const char *tag, uint32_t version);
void state_end(struct state_writer *w);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bool(struct state_writer *w, bool v);
void state_put_bytes(struct state_writer *w, const void *p, size_t len);

/* One section being read. */
struct state_section {
	char tag[STATE_TAG_MAX + 1];
	uint32_t version;
	const uint8_t *data;
	size_t len, pos;
	bool overrun;
};

#define STATE_MAX_SECTIONS 1024

struct state_reader {
	const uint8_t *buf;
	size_t len;
	unsigned nr;
	struct {
		size_t tag_off, data_off;
		uint16_t tag_len;
		uint32_t version, len;
		bool used;
	} sec[STATE_MAX_SECTIONS];
};

/*
 * Indexes the sections of buf (which must outlive the reader). -EBADMSG
 * with a reason in err when the framing is broken (a length past the end,
 * an empty or overlong tag, a tag given twice, too many sections).
 */
int state_reader_init(struct state_reader *r, const void *buf, size_t len, char *err, size_t errlen);
/* The section with this tag, marked used; -ENOENT if there is none. */
int state_find(struct state_reader *r, const char *tag, struct state_section *s);
/* The first section not yet found, or NULL: state nobody claimed. */
const char *state_first_unused(const struct state_reader *r, char *tag, size_t taglen);

uint8_t state_get_u8(struct state_section *s);
uint16_t state_get_u16(struct state_section *s);
uint32_t state_get_u32(struct state_section *s);
uint64_t state_get_u64(struct state_section *s);
bool state_get_bool(struct state_section *s);
void state_get_bytes(struct state_section *s, void *p, size_t len);
/* No read ran past the end. */
bool state_section_ok(const struct state_section *s);
/* No overrun and every byte read: 0, or -EBADMSG. */
int state_section_done(const struct state_section *s);

/*
 * For load functions: 0 when the section's version is one this code reads
 * (min..max), else -EINVAL with "TAG: state version N, ..." in err.
 */
int state_check_version(const struct state_section *s, uint32_t min, uint32_t max,
			char *err, size_t errlen);
/* state_section_done(), with "TAG: state section has the wrong length" in err. */
int state_finish(const struct state_section *s, char *err, size_t errlen);

#endif
