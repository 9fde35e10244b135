// SPDX-License-Identifier: Apache-2.0
/*
 * AML encoding (ACPI 6.x, 20.2 "AML Grammar Definition"; resource
 * descriptors from 6.4 "Resource Data Types for ACPI").
 *
 * An enclosing construct is written as opcode + name/flags, then its body;
 * only at aml_end() is its size known, so the PkgLength (and a Package's
 * NumElements, or a Buffer's BufferSize) is inserted in front of the body
 * then. Bodies are small (a DSDT is a few KiB), so moving them is cheap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/aml.h"

enum {
	OP_ZERO = 0x00,
	OP_ONE = 0x01,
	OP_NAME = 0x08,
	OP_BYTE = 0x0a,
	OP_WORD = 0x0b,
	OP_DWORD = 0x0c,
	OP_STRING = 0x0d,
	OP_QWORD = 0x0e,
	OP_SCOPE = 0x10,
	OP_BUFFER = 0x11,
	OP_PACKAGE = 0x12,
	OP_METHOD = 0x14,
	OP_DUAL_NAME = 0x2e,
	OP_MULTI_NAME = 0x2f,
	OP_EXT = 0x5b,
	OP_EXT_DEVICE = 0x82,
	OP_ROOT = 0x5c,
	OP_PARENT = 0x5e,
	OP_RETURN = 0xa4,
};

enum frame_kind {
	FRAME_TERMS,    /* Scope, Device, Method: a TermList */
	FRAME_PACKAGE,  /* NumElements, then elements */
	FRAME_RESOURCE, /* BufferSize, descriptors, end tag */
};

#define RES_IRQ_NOFLAGS 0x22
#define RES_IO 0x47
#define RES_END 0x79
#define RES_MEM32_FIXED 0x86
#define RES_DWORD_SPACE 0x87
#define RES_WORD_SPACE 0x88
#define RES_EXT_IRQ 0x89
#define RES_QWORD_SPACE 0x8a

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int aml_error(const struct aml *a)
{
	if (a->err)
		return a->err;
	return a->depth ? -EPROTO : 0;
}

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static bool reserve(struct aml *a, size_t more)
{
	size_t cap;
	uint8_t *n;

	if (a->err)
		return false;
	if (a->len + more <= a->cap)
		return true;
	cap = a->cap ? a->cap : 256;
	while (cap < a->len + more)
		cap *= 2;
	n = realloc(a->buf, cap);
	if (!n) {
		fail(a, -ENOMEM);
		return false;
	}
	a->buf = n;
	a->cap = cap;
	return true;
}

static void put(struct aml *a, const void *p, size_t n)
{
	if (reserve(a, n)) {
		memcpy(a->buf + a->len, p, n);
		a->len += n;
	}
}

static void put8(struct aml *a, uint8_t v)
{
	put(a, &v, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(a, b, bytes);
}

size_t aml_pkglength_encode(size_t len, uint8_t out[4])
{
	size_t total;

	/* The length counts its own bytes: one byte holds 6 bits, more hold 4 + 8k. */
	if (len + 1 <= 0x3f) {
		out[0] = (uint8_t)(len + 1);
		return 1;
	}
	for (size_t n = 2; n <= 4; n++) {
		total = len + n;
		if (total < (1u << (4 + 8 * (n - 1)))) {
			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
			for (size_t i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
			return n;
		}
	}
	return 0;
}

/* One data object added: counted when directly inside a Package. */
static void note_element(struct aml *a)
{
	if (a->depth && a->frames[a->depth - 1].kind == FRAME_PACKAGE)
		a->frames[a->depth - 1].elements++;
}

static void open_frame(struct aml *a, enum frame_kind kind)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, -EINVAL);
		return;
	}
	a->frames[a->depth++] = (struct aml_frame){ .start = a->len, .kind = (uint8_t)kind };
}

static bool seg_char_ok(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* NameString: prefixes, then NullName, a NameSeg, DualNamePath or MultiNamePath. */
static void put_namestring(struct aml *a, const char *name)
{
	const char *p = name, *seg;
	uint8_t segs[255][4];
	unsigned n = 0;

	if (*p == '\\')
		put8(a, OP_ROOT), p++;
	else
		while (*p == '^')
			put8(a, OP_PARENT), p++;
	while (*p) {
		size_t len;

		seg = p;
		while (*p && *p != '.')
			p++;
		len = (size_t)(p - seg);
		if (!len || len > 4 || n == 255 || (*p == '.' && !p[1])) {
			fail(a, -EINVAL);
			return;
		}
		for (size_t i = 0; i < 4; i++) {
			char c = i < len ? seg[i] : '_';

			if (!seg_char_ok(c, i == 0)) {
				fail(a, -EINVAL);
				return;
			}
			segs[n][i] = (uint8_t)c;
		}
		n++;
		if (*p == '.')
			p++;
	}
	if (n == 0) {
		put8(a, 0x00); /* NullName */
		return;
	}
	if (n == 2) {
		put8(a, OP_DUAL_NAME);
	} else if (n > 2) {
		put8(a, OP_MULTI_NAME);
		put8(a, (uint8_t)n);
	}
	put(a, segs, 4 * n);
}

void aml_name(struct aml *a, const char *name)
{
	put8(a, OP_NAME);
	put_namestring(a, name);
}

void aml_scope(struct aml *a, const char *name)
{
	put8(a, OP_SCOPE);
	open_frame(a, FRAME_TERMS);
	put_namestring(a, name);
}

void aml_device(struct aml *a, const char *name)
{
	put8(a, OP_EXT);
	put8(a, OP_EXT_DEVICE);
	open_frame(a, FRAME_TERMS);
	put_namestring(a, name);
}

void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, OP_METHOD);
	open_frame(a, FRAME_TERMS);
	put_namestring(a, name);
	put8(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

/* The shortest integer encoding: ZeroOp, OneOp or a prefixed constant. */
static size_t encode_int(uint64_t v, uint8_t out[9])
{
	unsigned bytes;

	if (v <= 1) {
		out[0] = v ? OP_ONE : OP_ZERO;
		return 1;
	}
	if (v <= 0xff)
		out[0] = OP_BYTE, bytes = 1;
	else if (v <= 0xffff)
		out[0] = OP_WORD, bytes = 2;
	else if (v <= 0xffffffff)
		out[0] = OP_DWORD, bytes = 4;
	else
		out[0] = OP_QWORD, bytes = 8;
	for (unsigned i = 0; i < bytes; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + bytes;
}

static void put_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	put(a, b, encode_int(v, b));
}

void aml_end(struct aml *a)
{
	struct aml_frame f;
	uint8_t head[4 + 9];
	size_t n, pl, body, prefix = 0;
	uint8_t pre[9];

	if (a->err)
		return;
	if (!a->depth) {
		fail(a, -EINVAL);
		return;
	}
	f = a->frames[--a->depth];
	if (f.kind == FRAME_RESOURCE) {
		put8(a, RES_END);
		put8(a, 0x00); /* checksum 0: "treat as correct" */
	}
	body = a->len - f.start;
	/* The prefix that only now is known: NumElements or BufferSize. */
	if (f.kind == FRAME_PACKAGE) {
		if (f.elements > 255) {
			fail(a, -EINVAL);
			return;
		}
		pre[prefix++] = (uint8_t)f.elements;
	} else if (f.kind == FRAME_RESOURCE) {
		prefix = encode_int(body, pre);
	}
	pl = aml_pkglength_encode(body + prefix, head);
	if (!pl) {
		fail(a, -E2BIG);
		return;
	}
	memcpy(head + pl, pre, prefix);
	n = pl + prefix;
	if (!reserve(a, n))
		return;
	memmove(a->buf + f.start + n, a->buf + f.start, body);
	memcpy(a->buf + f.start, head, n);
	a->len += n;
}

void aml_int(struct aml *a, uint64_t v)
{
	note_element(a);
	put_int(a, v);
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			fail(a, -EINVAL); /* AML strings are ASCII */
			return;
		}
	}
	note_element(a);
	put8(a, OP_STRING);
	put(a, s, strlen(s) + 1);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7) {
		fail(a, -EINVAL);
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			fail(a, -EINVAL);
			return;
		}
		v = v << 5 | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		unsigned d = (c >= '0' && c <= '9') ? (unsigned)(c - '0') :
			     (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10) : 16;

		if (d > 15) {
			fail(a, -EINVAL);
			return;
		}
		v = v << 4 | d;
	}
	/* 31 bits, stored big-endian in a DWordConst (the spec's EISAID macro). */
	note_element(a);
	put8(a, OP_DWORD);
	put8(a, (uint8_t)(v >> 24));
	put8(a, (uint8_t)(v >> 16));
	put8(a, (uint8_t)(v >> 8));
	put8(a, (uint8_t)v);
}

void aml_name_ref(struct aml *a, const char *name)
{
	note_element(a);
	put_namestring(a, name);
}

void aml_package(struct aml *a)
{
	note_element(a);
	put8(a, OP_PACKAGE);
	open_frame(a, FRAME_PACKAGE);
}

void aml_buffer(struct aml *a, const uint8_t *bytes, size_t len)
{
	uint8_t pl[4], size[9];
	size_t n, sn = encode_int(len, size);

	note_element(a);
	n = aml_pkglength_encode(sn + len, pl);
	if (!n) {
		fail(a, -E2BIG);
		return;
	}
	put8(a, OP_BUFFER);
	put(a, pl, n);
	put(a, size, sn);
	put(a, bytes, len);
}

void aml_return(struct aml *a)
{
	put8(a, OP_RETURN);
}

void aml_resource_template(struct aml *a)
{
	note_element(a);
	put8(a, OP_BUFFER);
	open_frame(a, FRAME_RESOURCE);
}

void aml_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	put8(a, RES_IO);
	put8(a, 0x01); /* decodes 16 address bits */
	put_le(a, min, 2);
	put_le(a, max, 2);
	put8(a, align);
	put8(a, len);
}

void aml_irq_noflags(struct aml *a, uint8_t irq)
{
	if (irq > 15) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, RES_IRQ_NOFLAGS);
	put_le(a, 1u << irq, 2);
}

void aml_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable)
{
	put8(a, RES_MEM32_FIXED);
	put_le(a, 9, 2);
	put8(a, writable ? 0x01 : 0x00);
	put_le(a, base, 4);
	put_le(a, len, 4);
}

void aml_interrupt(struct aml *a, uint32_t gsi, bool level, bool active_low, bool shared)
{
	uint8_t flags = 0x01; /* ResourceConsumer */

	if (!level)
		flags |= 0x02;
	if (active_low)
		flags |= 0x04;
	if (shared)
		flags |= 0x08;
	put8(a, RES_EXT_IRQ);
	put_le(a, 6, 2);
	put8(a, flags);
	put8(a, 1); /* one interrupt number follows */
	put_le(a, gsi, 4);
}

/*
 * Address space descriptors: producer, MinFixed, MaxFixed, positive decode;
 * type-specific flags per space (I/O: entire range; memory: read-write,
 * cacheable or not); granularity and translation 0. `width` is 2, 4 or 8.
 */
static void address_space(struct aml *a, uint8_t tag, unsigned width, enum aml_space space,
			  uint64_t min, uint64_t max, bool cacheable)
{
	uint8_t tflags = 0;

	if (max < min) {
		fail(a, -EINVAL);
		return;
	}
	if (space == AML_SPACE_IO)
		tflags = 0x03;
	else if (space == AML_SPACE_MEMORY)
		tflags = 0x01 | (cacheable ? 0x02 : 0x00);
	put8(a, tag);
	put_le(a, 3 + 5 * width, 2);
	put8(a, (uint8_t)space);
	put8(a, 0x0c);
	put8(a, tflags);
	put_le(a, 0, width); /* granularity */
	put_le(a, min, width);
	put_le(a, max, width);
	put_le(a, 0, width); /* translation offset */
	put_le(a, max - min + 1, width);
}

void aml_word_space(struct aml *a, enum aml_space space, uint16_t min, uint16_t max)
{
	address_space(a, RES_WORD_SPACE, 2, space, min, max, false);
}

void aml_dword_space(struct aml *a, enum aml_space space, uint32_t min, uint32_t max,
		     bool cacheable)
{
	address_space(a, RES_DWORD_SPACE, 4, space, min, max, cacheable);
}

void aml_qword_space(struct aml *a, enum aml_space space, uint64_t min, uint64_t max,
		     bool cacheable)
{
	address_space(a, RES_QWORD_SPACE, 8, space, min, max, cacheable);
}
