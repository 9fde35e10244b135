// SPDX-License-Identifier: Apache-2.0
/* Unit tests of the saved-state sections (src/util/state.c). */
#include <errno.h>
#include <string.h>

#include "keel/state.h"
#include "ktest.h"

static struct state_reader reader; /* large: not on the stack */

static void write_two(struct state_writer *w)
{
	state_writer_init(w);
	state_begin(w, "alpha", 3);
	state_put_u8(w, 0x12);
	state_put_u16(w, 0x3456);
	state_put_u32(w, 0x789abcde);
	state_put_u64(w, 0x0102030405060708ULL);
	state_put_bool(w, true);
	state_put_bytes(w, "xyz", 3);
	state_end(w);
	state_begin(w, "beta", 1);
	state_end(w);
}

KTEST(round_trip)
{
	struct state_writer w;
	struct state_section s;
	char err[128], tag[64], b[3];

	write_two(&w);
	KCHECK_EQ(state_writer_error(&w), 0);
	KASSERT(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)) == 0);
	KCHECK_EQ(reader.nr, 2);
	KCHECK_EQ(state_find(&reader, "alpha", &s), 0);
	KCHECK_EQ(s.version, 3);
	KCHECK_EQ(state_get_u8(&s), 0x12);
	KCHECK_EQ(state_get_u16(&s), 0x3456);
	KCHECK_EQ(state_get_u32(&s), 0x789abcde);
	KCHECK_EQ(state_get_u64(&s), 0x0102030405060708ULL);
	KCHECK(state_get_bool(&s));
	state_get_bytes(&s, b, 3);
	KCHECK(!memcmp(b, "xyz", 3));
	KCHECK_EQ(state_section_done(&s), 0);
	KCHECK_STR(state_first_unused(&reader, tag, sizeof(tag)), "beta");
	KCHECK_EQ(state_find(&reader, "beta", &s), 0);
	KCHECK_EQ(s.len, 0);
	KCHECK(state_first_unused(&reader, tag, sizeof(tag)) == NULL);
	KCHECK_EQ(state_find(&reader, "gamma", &s), -ENOENT);
	state_writer_free(&w);
}

KTEST(little_endian_layout)
{
	struct state_writer w;
	static const uint8_t want[] = { 1, 0, 'x', 2, 0, 0, 0, 2, 0, 0, 0, 0x34, 0x12 };

	state_writer_init(&w);
	state_begin(&w, "x", 2);
	state_put_u16(&w, 0x1234);
	state_end(&w);
	KCHECK_EQ(w.len, sizeof(want));
	KCHECK(!memcmp(w.buf, want, sizeof(want)));
	state_writer_free(&w);
}

KTEST(overrun_is_sticky_and_reads_zero)
{
	struct state_writer w;
	struct state_section s;
	char err[128];

	write_two(&w);
	KASSERT(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)) == 0);
	KASSERT(state_find(&reader, "beta", &s) == 0);
	KCHECK_EQ(state_get_u32(&s), 0);
	KCHECK(!state_section_ok(&s));
	KCHECK_EQ(state_section_done(&s), -EBADMSG);
	KCHECK_EQ(state_finish(&s, err, sizeof(err)), -EBADMSG);
	KCHECK_STR(err, "beta: state section has the wrong length");
	state_writer_free(&w);
}

KTEST(unread_bytes_are_an_error)
{
	struct state_writer w;
	struct state_section s;
	char err[128];

	write_two(&w);
	KASSERT(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)) == 0);
	KASSERT(state_find(&reader, "alpha", &s) == 0);
	state_get_u8(&s);
	KCHECK(state_section_ok(&s));
	KCHECK_EQ(state_section_done(&s), -EBADMSG);
	state_writer_free(&w);
}

KTEST(versions_checked_with_a_message)
{
	struct state_section s = { .tag = "com1", .version = 4 };
	char err[128];

	KCHECK_EQ(state_check_version(&s, 1, 4, err, sizeof(err)), 0);
	KCHECK_EQ(state_check_version(&s, 1, 3, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "com1: state version 4, this keel-vmm reads versions 1 to 3");
	KCHECK_EQ(state_check_version(&s, 2, 2, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "com1: state version 4, this keel-vmm reads version 2");
}

KTEST(every_truncation_is_refused)
{
	struct state_writer w;
	char err[128];

	write_two(&w);
	for (size_t n = 1; n < w.len; n++) {
		int r = state_reader_init(&reader, w.buf, n, err, sizeof(err));

		/* Only a cut exactly between the two sections is a valid (shorter) stream. */
		if (n == w.len - 10 - 4)
			KCHECK_EQ(r, 0);
		else
			KCHECK_EQ(r, -EBADMSG);
	}
	state_writer_free(&w);
}

KTEST(bad_framing_is_refused)
{
	struct state_writer w;
	char err[128];

	state_writer_init(&w);
	state_begin(&w, "dup", 1);
	state_end(&w);
	state_begin(&w, "dup", 1);
	state_end(&w);
	KCHECK_EQ(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)), -EBADMSG);
	KCHECK_STR(err, "state section 'dup' appears twice");
	w.buf[0] = 0; /* a zero-length tag */
	KCHECK_EQ(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)), -EBADMSG);
	state_writer_free(&w);
}

KTEST(writer_misuse_is_reported)
{
	struct state_writer w;
	char longtag[STATE_TAG_MAX + 2];

	state_writer_init(&w);
	state_begin(&w, "a", 1);
	KCHECK_EQ(state_writer_error(&w), -EINVAL); /* still open */
	state_end(&w);
	KCHECK_EQ(state_writer_error(&w), 0);
	state_end(&w);
	KCHECK_EQ(state_writer_error(&w), -EINVAL);
	state_writer_free(&w);

	memset(longtag, 'x', sizeof(longtag) - 1);
	longtag[sizeof(longtag) - 1] = 0;
	state_writer_init(&w);
	state_begin(&w, longtag, 1);
	KCHECK_EQ(state_writer_error(&w), -EINVAL);
	state_writer_free(&w);
}

int main(void)
{
	return ktest_run_all();
}
