/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A snapshot on disk: a directory with two files (docs/snapshot.md).
 *
 *   state    a 64-byte header (magic "KEELSNAP", format version, lengths,
 *            CRC-32 of the header and of the payload, memory size, a random
 *            snapshot id), then the state sections (vm_snapshot.h)
 *   memory   a 4 KiB header (magic "KEELMEM", version, memory size, the same
 *            id, its own CRC-32), then guest RAM as the guest sees it from
 *            address 0 (RAM above 4 GiB follows RAM below), pages of zeros
 *            left as holes
 *
 * The memory file is written first and the state file last, each under a
 * temporary name renamed into place after fsync: a directory with a `state`
 * file holds a complete snapshot. A restore maps the memory file's data
 * privately (copy-on-write) instead of reading it, so it does not wait for
 * guest RAM; the file must stay in place while the restored VM runs.
 */
#ifndef KEEL_VMM_SNAPSHOT_FILE_H
#define KEEL_VMM_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/state.h"

struct machine;

#define SNAPSHOT_FORMAT_VERSION 1
#define SNAPSHOT_MEMORY_OFFSET 4096
/* A state file beyond this is not ours (a 255-vCPU VM needs ~5 MiB). */
#define SNAPSHOT_MAX_STATE (64u << 20)

struct snapshot {
	uint8_t *state;     /* the payload: state sections */
	size_t state_len;
	uint64_t memory_size;
	int memory_fd;      /* the memory file, data from SNAPSHOT_MEMORY_OFFSET */
	struct state_reader reader;
};

/* Writes a snapshot of the paused machine into dir (created if missing, and empty). */
int snapshot_write(struct machine *m, const char *dir, char *err, size_t errlen);

/*
 * Opens and checks the snapshot in dir: every header field, both
 * checksums, the memory file's size and id, the sections' framing. 0, or
 * -errno with one line in err saying what is wrong.
 */
int snapshot_open(const char *dir, struct snapshot *s, char *err, size_t errlen);
void snapshot_close(struct snapshot *s);

#endif
