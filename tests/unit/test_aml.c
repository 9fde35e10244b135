// SPDX-License-Identifier: Apache-2.0
/*
 * The AML encoder against byte sequences worked out by hand from the ACPI
 * 6.3 grammar (chapter 20) and resource descriptor layouts (6.4).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/aml.h"
#include "keel/compiler.h"
#include "ktest.h"

static bool same_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
	if (a->len != n) {
		printf("# length %zu, want %zu\n", a->len, n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (a->buf[i] != want[i]) {
			printf("# byte %zu: 0x%02x, want 0x%02x\n", i, a->buf[i], want[i]);
			return false;
		}
	}
	return true;
}

#define KCHECK_AML(a, ...)                                              \
	do {                                                            \
		static const uint8_t want_[] = { __VA_ARGS__ };         \
		KCHECK_EQ(aml_error(a), 0);                             \
		KCHECK(same_bytes(a, want_, sizeof(want_)));            \
	} while (0)

static size_t pkglen(size_t len, uint8_t out[4])
{
	memset(out, 0xee, 4);
	return aml_pkglength_encode(len, out);
}

/* 20.2.4: one byte up to 63 in all, then 4 low bits + 8, 16 or 24 more. */
KTEST(aml_pkglength_encodings)
{
	uint8_t b[4];

	KCHECK_EQ(pkglen(0, b), 1);
	KCHECK_EQ(b[0], 0x01);
	KCHECK_EQ(pkglen(62, b), 1);
	KCHECK_EQ(b[0], 0x3f);
	/* 63 bytes of content + 2 = 65 = 0x041 */
	KCHECK_EQ(pkglen(63, b), 2);
	KCHECK_EQ(b[0], 0x41);
	KCHECK_EQ(b[1], 0x04);
	/* largest two-byte: 0xfff in all */
	KCHECK_EQ(pkglen(0xffd, b), 2);
	KCHECK_EQ(b[0], 0x4f);
	KCHECK_EQ(b[1], 0xff);
	/* 0xffe + 3 = 0x1001 */
	KCHECK_EQ(pkglen(0xffe, b), 3);
	KCHECK_EQ(b[0], 0x81);
	KCHECK_EQ(b[1], 0x00);
	KCHECK_EQ(b[2], 0x01);
	KCHECK_EQ(pkglen(0xffffc, b), 3);
	KCHECK(b[0] == 0x8f && b[1] == 0xff && b[2] == 0xff);
	/* 0xffffd + 4 = 0x100001 */
	KCHECK_EQ(pkglen(0xffffd, b), 4);
	KCHECK(b[0] == 0xc1 && b[1] == 0x00 && b[2] == 0x00 && b[3] == 0x01);
	KCHECK_EQ(pkglen(0xffffffb, b), 4);
	KCHECK(b[0] == 0xcf && b[1] == 0xff && b[2] == 0xff && b[3] == 0xff);
	KCHECK_EQ(pkglen(0xffffffc, b), 0); /* 28 bits is the limit */
}

KTEST(aml_integers_take_the_shortest_form)
{
	struct aml a;

	aml_init(&a);
	aml_int(&a, 0);
	aml_int(&a, 1);
	aml_int(&a, 2);
	aml_int(&a, 0xff);
	aml_int(&a, 0x100);
	aml_int(&a, 0x10000);
	aml_int(&a, 0x100000000ull);
	KCHECK_AML(&a, 0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0c, 0x00, 0x00, 0x01,
		   0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
	aml_free(&a);
}

KTEST(aml_names)
{
	struct aml a;

	aml_init(&a);
	aml_name_ref(&a, "_S5");
	aml_name_ref(&a, "\\_SB.COM1");
	aml_name_ref(&a, "\\A.B.C");
	aml_name_ref(&a, "^FOO");
	aml_name_ref(&a, "\\");
	KCHECK_AML(&a, '_', 'S', '5', '_',
		   0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1',
		   0x5c, 0x2f, 0x03, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_',
		   0x5e, 'F', 'O', 'O', '_',
		   0x5c, 0x00);
	aml_free(&a);
}

KTEST(aml_bad_names_are_sticky_errors)
{
	static const char *bad[] = { "com1", "TOOLONG", "A..B", "1ABC", "AB.", ".AB", "A-B" };

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct aml a;

		aml_init(&a);
		aml_name(&a, bad[i]);
		aml_int(&a, 1);
		KCHECK_EQ(aml_error(&a), -EINVAL);
		aml_free(&a);
	}
}

KTEST(aml_strings_and_eisaid)
{
	struct aml a;

	aml_init(&a);
	aml_string(&a, "AB");
	aml_eisaid(&a, "PNP0501");
	aml_eisaid(&a, "PNP0B00");
	KCHECK_AML(&a, 0x0d, 'A', 'B', 0x00, 0x0c, 0x41, 0xd0, 0x05, 0x01, 0x0c, 0x41, 0xd0, 0x0b,
		   0x00);
	aml_free(&a);
	aml_init(&a);
	aml_eisaid(&a, "pnp0501");
	KCHECK_EQ(aml_error(&a), -EINVAL);
	aml_free(&a);
}

/* Name (\_S5, Package () { 5, 5, Zero, Zero }) */
KTEST(aml_s5_package)
{
	struct aml a;

	aml_init(&a);
	aml_name(&a, "\\_S5");
	aml_package(&a);
	aml_int(&a, 5);
	aml_int(&a, 5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_end(&a);
	KCHECK_AML(&a, 0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05,
		   0x00, 0x00);
	aml_free(&a);
}

/* Packages count their own elements, nested ones as one. */
KTEST(aml_nested_package_counts_and_two_byte_length)
{
	struct aml a;

	aml_init(&a);
	aml_package(&a);
	for (int i = 0; i < 40; i++)
		aml_int(&a, 0x10 + i);
	aml_package(&a);
	aml_string(&a, "x");
	aml_end(&a);
	aml_end(&a);
	KCHECK_EQ(aml_error(&a), 0);
	/* body: count + 80 + inner (0x12 len count 0x0d 'x' 0) = 1 + 80 + 6 = 87; +2 = 89 = 0x59 */
	KASSERT(a.len == 1 + 2 + 87);
	KCHECK_EQ(a.buf[0], 0x12);
	KCHECK_EQ(a.buf[1], 0x49);
	KCHECK_EQ(a.buf[2], 0x05);
	KCHECK_EQ(a.buf[3], 41);
	KCHECK_EQ(a.buf[84], 0x12);
	KCHECK_EQ(a.buf[85], 0x05);
	KCHECK_EQ(a.buf[86], 0x01);
	aml_free(&a);
}

/* Method (_STA, 0, NotSerialized) { Return (0x0F) } */
KTEST(aml_method_return)
{
	struct aml a;

	aml_init(&a);
	aml_method(&a, "_STA", 0, false);
	aml_return(&a);
	aml_int(&a, 0x0f);
	aml_end(&a);
	aml_method(&a, "_PRW", 2, true);
	aml_end(&a);
	KCHECK_AML(&a, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f,
		   0x14, 0x06, '_', 'P', 'R', 'W', 0x0a);
	aml_free(&a);
}

/* Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_CRS, ResourceTemplate () {...}) } */
KTEST(aml_device_with_resource_template)
{
	struct aml a;

	aml_init(&a);
	aml_device(&a, "COM1");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501");
	aml_name(&a, "_CRS");
	aml_resource_template(&a);
	aml_io(&a, 0x3f8, 0x3f8, 1, 8);
	aml_irq_noflags(&a, 4);
	aml_end(&a);
	aml_end(&a);
	KCHECK_AML(&a, 0x5b, 0x82, 0x25, 'C', 'O', 'M', '1',
		   0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,
		   0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d,
		   0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
		   0x22, 0x10, 0x00,
		   0x79, 0x00);
	aml_free(&a);
}

KTEST(aml_large_resource_descriptors)
{
	struct aml a;

	aml_init(&a);
	aml_memory32_fixed(&a, 0xfec00000, 0x1000, true);
	aml_interrupt(&a, 9, true, false, true);
	aml_word_space(&a, AML_SPACE_BUS, 0, 0xff);
	aml_dword_space(&a, AML_SPACE_MEMORY, 0xc0000000, 0xfebfffff, false);
	KCHECK_AML(&a,
		   0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00,
		   0x89, 0x06, 0x00, 0x09, 0x01, 0x09, 0x00, 0x00, 0x00,
		   0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00,
		   0x00, 0x00, 0x01,
		   0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		   0xc0, 0xff, 0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3e);
	aml_free(&a);
	aml_init(&a);
	aml_qword_space(&a, AML_SPACE_MEMORY, 0x100000000ull, 0x1ffffffffull, true);
	KCHECK_EQ(aml_error(&a), 0);
	KCHECK_EQ(a.len, 46);
	KCHECK_EQ(a.buf[0], 0x8a);
	KCHECK_EQ(a.buf[1], 0x2b);
	KCHECK_EQ(a.buf[5], 0x03);
	KCHECK_EQ(a.buf[14 + 4], 0x01); /* min = 1 << 32 */
	KCHECK_EQ(a.buf[38 + 4], 0x01); /* length = 1 << 32 */
	aml_free(&a);
}

/* A body over 4 KiB makes the enclosing scope use a three-byte PkgLength. */
KTEST(aml_three_byte_length_around_a_big_buffer)
{
	static uint8_t big[5000];
	struct aml a;
	size_t body;

	aml_init(&a);
	aml_scope(&a, "\\_SB");
	aml_name(&a, "BIG");
	aml_buffer(&a, big, sizeof(big));
	aml_end(&a);
	KCHECK_EQ(aml_error(&a), 0);
	KASSERT(a.len > 5000);
	KCHECK_EQ(a.buf[0], 0x10);
	KCHECK_EQ(a.buf[1] >> 6, 2);
	body = (size_t)(a.buf[1] & 0x0f) | (size_t)a.buf[2] << 4 | (size_t)a.buf[3] << 12;
	KCHECK_EQ(body, a.len - 1);
	/* Buffer: 0x11, a three-byte PkgLength of its own, WordConst 5000, the bytes. */
	KCHECK_EQ(a.buf[4 + 5 + 5], 0x11);
	KCHECK_EQ(a.buf[4 + 5 + 5 + 1] >> 6, 2);
	KCHECK_EQ(a.buf[4 + 5 + 5 + 4], 0x0b);
	KCHECK_EQ(a.buf[4 + 5 + 5 + 5] | a.buf[4 + 5 + 5 + 6] << 8, 5000);
	aml_free(&a);
}

KTEST(aml_nesting_errors)
{
	struct aml a;

	aml_init(&a);
	aml_end(&a);
	KCHECK_EQ(aml_error(&a), -EINVAL);
	aml_free(&a);

	aml_init(&a);
	aml_scope(&a, "\\_SB");
	KCHECK_EQ(aml_error(&a), -EPROTO); /* still open */
	aml_free(&a);

	aml_init(&a);
	for (int i = 0; i < AML_MAX_DEPTH + 1; i++)
		aml_package(&a);
	KCHECK_EQ(aml_error(&a), -EINVAL);
	aml_free(&a);

	aml_init(&a);
	aml_irq_noflags(&a, 16);
	KCHECK_EQ(aml_error(&a), -EINVAL);
	aml_free(&a);
}

int main(void)
{
	return ktest_run_all();
}
