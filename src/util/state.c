// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/state.h"

void state_writer_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void state_writer_free(struct state_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int state_writer_error(const struct state_writer *w)
{
	if (!w->error && w->section_start)
		return -EINVAL; /* a section left open */
	return w->error;
}

static uint8_t *grow(struct state_writer *w, size_t n)
{
	uint8_t *p;

	if (w->error)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;

		while (cap < w->len + n)
			cap *= 2;
		p = realloc(w->buf, cap);
		if (!p) {
			w->error = -ENOMEM;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

static void put_le(struct state_writer *w, uint64_t v, unsigned size)
{
	uint8_t *p = grow(w, size);

	for (unsigned i = 0; p && i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void state_begin(struct state_writer *w, const char *tag, uint32_t version)
{
	size_t n = strlen(tag);

	if (w->section_start || n == 0 || n > STATE_TAG_MAX) {
		if (!w->error)
			w->error = -EINVAL;
		return;
	}
	put_le(w, n, 2);
	state_put_bytes(w, tag, n);
	put_le(w, version, 4);
	w->section_start = w->len;
	put_le(w, 0, 4); /* the payload length, patched by state_end */
}

void state_end(struct state_writer *w)
{
	size_t start = w->section_start, len;

	if (!start) {
		if (!w->error)
			w->error = -EINVAL;
		return;
	}
	w->section_start = 0;
	if (w->error)
		return;
	len = w->len - start - 4;
	if (len > UINT32_MAX) {
		w->error = -E2BIG;
		return;
	}
	for (unsigned i = 0; i < 4; i++)
		w->buf[start + i] = (uint8_t)(len >> (8 * i));
}

void state_put_u8(struct state_writer *w, uint8_t v) { put_le(w, v, 1); }
void state_put_u16(struct state_writer *w, uint16_t v) { put_le(w, v, 2); }
void state_put_u32(struct state_writer *w, uint32_t v) { put_le(w, v, 4); }
void state_put_u64(struct state_writer *w, uint64_t v) { put_le(w, v, 8); }
void state_put_bool(struct state_writer *w, bool v) { put_le(w, v ? 1 : 0, 1); }

void state_put_bytes(struct state_writer *w, const void *src, size_t len)
{
	uint8_t *p = grow(w, len);

	if (p && len)
		memcpy(p, src, len);
}

static uint64_t get_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int state_reader_init(struct state_reader *r, const void *buf, size_t len, char *err, size_t errlen)
{
	size_t pos = 0;

	r->buf = buf;
	r->len = len;
	r->nr = 0;
	while (pos < len) {
		uint16_t tag_len;
		uint32_t version, plen;

		if (r->nr == STATE_MAX_SECTIONS) {
			snprintf(err, errlen, "more than %u state sections", STATE_MAX_SECTIONS);
			return -EBADMSG;
		}
		if (len - pos < 2) {
			snprintf(err, errlen, "state section header cut short at byte %zu", pos);
			return -EBADMSG;
		}
		tag_len = (uint16_t)get_le(r->buf + pos, 2);
		if (tag_len == 0 || tag_len > STATE_TAG_MAX) {
			snprintf(err, errlen, "state section at byte %zu has a tag of %u bytes", pos, tag_len);
			return -EBADMSG;
		}
		if (len - pos - 2 < (size_t)tag_len + 8) {
			snprintf(err, errlen, "state section header cut short at byte %zu", pos);
			return -EBADMSG;
		}
		version = (uint32_t)get_le(r->buf + pos + 2 + tag_len, 4);
		plen = (uint32_t)get_le(r->buf + pos + 6 + tag_len, 4);
		if (len - pos - 10 - tag_len < plen) {
			snprintf(err, errlen, "state section '%.*s' is cut short", (int)tag_len,
				 (const char *)r->buf + pos + 2);
			return -EBADMSG;
		}
		for (unsigned i = 0; i < r->nr; i++) {
			if (r->sec[i].tag_len == tag_len &&
			    !memcmp(r->buf + r->sec[i].tag_off, r->buf + pos + 2, tag_len)) {
				snprintf(err, errlen, "state section '%.*s' appears twice", (int)tag_len,
					 (const char *)r->buf + pos + 2);
				return -EBADMSG;
			}
		}
		r->sec[r->nr].tag_off = pos + 2;
		r->sec[r->nr].tag_len = tag_len;
		r->sec[r->nr].version = version;
		r->sec[r->nr].len = plen;
		r->sec[r->nr].data_off = pos + 10 + tag_len;
		r->sec[r->nr].used = false;
		r->nr++;
		pos += 10 + (size_t)tag_len + plen;
	}
	return 0;
}

int state_find(struct state_reader *r, const char *tag, struct state_section *s)
{
	size_t n = strlen(tag);

	for (unsigned i = 0; i < r->nr; i++) {
		if (r->sec[i].tag_len != n || memcmp(r->buf + r->sec[i].tag_off, tag, n))
			continue;
		r->sec[i].used = true;
		memset(s, 0, sizeof(*s));
		memcpy(s->tag, tag, n);
		s->version = r->sec[i].version;
		s->data = r->buf + r->sec[i].data_off;
		s->len = r->sec[i].len;
		return 0;
	}
	return -ENOENT;
}

const char *state_first_unused(const struct state_reader *r, char *tag, size_t taglen)
{
	for (unsigned i = 0; i < r->nr; i++) {
		if (!r->sec[i].used) {
			snprintf(tag, taglen, "%.*s", (int)r->sec[i].tag_len,
				 (const char *)r->buf + r->sec[i].tag_off);
			return tag;
		}
	}
	return NULL;
}

static const uint8_t *take(struct state_section *s, size_t n)
{
	const uint8_t *p;

	if (s->overrun || s->len - s->pos < n) {
		s->overrun = true;
		return NULL;
	}
	p = s->data + s->pos;
	s->pos += n;
	return p;
}

static uint64_t get_n(struct state_section *s, unsigned size)
{
	const uint8_t *p = take(s, size);

	return p ? get_le(p, size) : 0;
}

uint8_t state_get_u8(struct state_section *s) { return (uint8_t)get_n(s, 1); }
uint16_t state_get_u16(struct state_section *s) { return (uint16_t)get_n(s, 2); }
uint32_t state_get_u32(struct state_section *s) { return (uint32_t)get_n(s, 4); }
uint64_t state_get_u64(struct state_section *s) { return get_n(s, 8); }
bool state_get_bool(struct state_section *s) { return get_n(s, 1) != 0; }

void state_get_bytes(struct state_section *s, void *dst, size_t len)
{
	const uint8_t *p = take(s, len);

	if (p)
		memcpy(dst, p, len);
	else
		memset(dst, 0, len);
}

bool state_section_ok(const struct state_section *s)
{
	return !s->overrun;
}

int state_section_done(const struct state_section *s)
{
	return !s->overrun && s->pos == s->len ? 0 : -EBADMSG;
}

int state_check_version(const struct state_section *s, uint32_t min, uint32_t max,
			char *err, size_t errlen)
{
	if (s->version >= min && s->version <= max)
		return 0;
	if (min == max)
		snprintf(err, errlen, "%s: state version %u, this keel-vmm reads version %u",
			 s->tag, s->version, max);
	else
		snprintf(err, errlen, "%s: state version %u, this keel-vmm reads versions %u to %u",
			 s->tag, s->version, min, max);
	return -EINVAL;
}

int state_finish(const struct state_section *s, char *err, size_t errlen)
{
	if (!state_section_done(s))
		return 0;
	snprintf(err, errlen, "%s: state section has the wrong length", s->tag);
	return -EBADMSG;
}
