// SPDX-License-Identifier: Apache-2.0
/*
 * The Linux boot protocol: setup-header validation on a well-formed
 * synthetic bzImage and on each kind of malformed one, where everything
 * lands in guest memory, the boot_params fields, the e820 map and the
 * identity page tables.
 */
#include <errno.h>
#include <stdlib.h>

#include "keel/compiler.h"
#include "ktest.h"
#include "vmm/boot_linux.h"
#include "vmm/guest_ram.h"
#include "vmm/layout.h"

#define SETUP_SECTS 4
#define KERNEL_BYTES (64 * 1024)
#define IMAGE_BYTES ((SETUP_SECTS + 1) * 512 + KERNEL_BYTES)

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A bzImage with the header fields of a modern x86-64 kernel. */
static uint8_t *make_image(void)
{
	uint8_t *img = calloc(1, IMAGE_BYTES);

	img[BP_SETUP_SECTS] = SETUP_SECTS;
	put16(img + BP_BOOT_FLAG, BOOT_FLAG_MAGIC);
	img[BP_JUMP] = 0xeb;
	img[BP_JUMP + 1] = 0x6a; /* header ends at 0x26c, as in 6.x kernels */
	put32(img + BP_HEADER, BOOT_HDRS_MAGIC);
	put16(img + BP_VERSION, 0x020f);
	img[BP_LOADFLAGS] = BOOT_LOADED_HIGH;
	put32(img + BP_INITRD_ADDR_MAX, 0x7fffffff);
	put32(img + BP_KERNEL_ALIGNMENT, 0x200000);
	img[BP_RELOCATABLE] = 1;
	put16(img + BP_XLOADFLAGS, BOOT_XLF_KERNEL_64 | BOOT_XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(img + BP_CMDLINE_SIZE, 2047);
	put64(img + BP_PREF_ADDRESS, 0x1000000);
	put32(img + BP_INIT_SIZE, 4 << 20);
	/* A recognisable first kernel byte. */
	img[(SETUP_SECTS + 1) * 512] = 0xe8;
	img[IMAGE_BYTES - 1] = 0x5a;
	return img;
}

static int parse(const uint8_t *img, size_t len, char *err)
{
	struct bzimage_info info;

	return bzimage_parse(img, len, &info, err, 256);
}

KTEST(setup_header_accepts_modern_kernel)
{
	uint8_t *img = make_image();
	struct bzimage_info info;
	char err[256] = "";

	KCHECK_EQ(bzimage_parse(img, IMAGE_BYTES, &info, err, sizeof(err)), 0);
	KCHECK_EQ(info.version, 0x020f);
	KCHECK_EQ(info.setup_size, (SETUP_SECTS + 1) * 512);
	KCHECK_EQ(info.kernel_size, KERNEL_BYTES);
	KCHECK_EQ(info.header_end, 0x26c);
	KCHECK_EQ(info.pref_address, 0x1000000);
	KCHECK_EQ(info.cmdline_size, 2047);
	/* setup_sects 0 means 4. */
	img[BP_SETUP_SECTS] = 0;
	KCHECK_EQ(bzimage_parse(img, IMAGE_BYTES, &info, err, sizeof(err)), 0);
	KCHECK_EQ(info.setup_size, 5 * 512);
	free(img);
}

/* Each malformation with the message an operator sees. */
KTEST(setup_header_rejects_malformed)
{
	static const struct {
		unsigned off, width;
		uint64_t value;
		int code;
		const char *msg;
	} cases[] = {
		{ BP_HEADER, 4, 0x12345678, -ENOEXEC, "not a bzImage: no \"HdrS\" boot header signature" },
		{ BP_BOOT_FLAG, 2, 0x1234, -ENOEXEC, "not a bzImage: boot flag is 0x1234, not 0xaa55" },
		{ BP_VERSION, 2, 0x0206, -ENOEXEC,
		  "boot protocol 2.06 is too old: 64-bit boot needs 2.12 (Linux 3.8) or later" },
		{ BP_LOADFLAGS, 1, 0, -ENOEXEC,
		  "kernel is a zImage (LOADED_HIGH clear): only bzImages are supported" },
		{ BP_XLOADFLAGS, 2, 0, -ENOEXEC,
		  "kernel has no 64-bit entry point (XLF_KERNEL_64 clear): a 64-bit kernel is required" },
		{ BP_KERNEL_ALIGNMENT, 4, 0x3000, -EINVAL,
		  "bzImage kernel_alignment 0x3000 is not a power of two of at least 4 KiB" },
		{ BP_PREF_ADDRESS, 8, 0x1000, -EINVAL,
		  "bzImage preferred load address 0x1000 is below 1 MiB or misaligned" },
		{ BP_INIT_SIZE, 4, 0x100, -EINVAL,
		  "bzImage init_size 0x100 is smaller than the kernel it loads (0x10000)" },
		{ BP_INITRD_ADDR_MAX, 4, 0x8000, -EINVAL, "bzImage initrd_addr_max 0x8000 is below 1 MiB" },
		{ BP_JUMP + 1, 1, 0x10, -EINVAL, "bzImage setup header is truncated (ends at 0x212)" },
		{ BP_SETUP_SECTS, 1, 200, -EINVAL,
		  "bzImage setup size 102912 does not fit the 68096-byte file" },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t *img = make_image();
		char err[256] = "";

		if (cases[i].width == 1)
			img[cases[i].off] = (uint8_t)cases[i].value;
		else if (cases[i].width == 2)
			put16(img + cases[i].off, (uint16_t)cases[i].value);
		else if (cases[i].width == 4)
			put32(img + cases[i].off, (uint32_t)cases[i].value);
		else
			put64(img + cases[i].off, cases[i].value);
		KCHECK_EQ(parse(img, IMAGE_BYTES, err), cases[i].code);
		KCHECK_STR(err, cases[i].msg);
		free(img);
	}
}

KTEST(setup_header_rejects_short_files)
{
	uint8_t *img = make_image();
	char err[256] = "";

	KCHECK_EQ(parse(img, 0, err), -ENOEXEC);
	KCHECK_EQ(parse(img, 0x205, err), -ENOEXEC);
	/* The header is complete but the file ends inside the setup code. */
	KCHECK_EQ(parse(img, 0x400, err), -EINVAL);
	KCHECK_STR(err, "bzImage setup size 2560 does not fit the 1024-byte file");
	free(img);
}

struct ram {
	uint8_t *buf;
	struct guest_mem mem;
};

static void ram_init(struct ram *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->buf = calloc(1, size);
	guest_mem_add_region(&r->mem, 0, size, r->buf);
}

KTEST(load_places_everything_and_fills_boot_params)
{
	uint8_t *img = make_image();
	static uint8_t initrd[3 * 4096 + 100];
	struct e820_entry e820[8];
	unsigned n = guest_ram_e820(64 << 20, 0, e820);
	struct boot_linux_params p = {
		.kernel = img, .kernel_len = IMAGE_BYTES,
		.initrd = initrd, .initrd_len = sizeof(initrd),
		.cmdline = "console=ttyS0 panic=1",
		.e820 = e820, .nr_e820 = n, .rsdp_addr = 0xe0000,
	};
	struct boot_linux_result res;
	char err[256] = "";
	struct ram r;
	uint8_t *bp;

	memset(initrd, 0xab, sizeof(initrd));
	ram_init(&r, 64 << 20);
	KASSERT(boot_linux_load(&r.mem, &p, &res, err, sizeof(err)) == 0);
	KCHECK_EQ(res.kernel_addr, 0x1000000);
	KCHECK_EQ(res.entry_rip, 0x1000200);
	KCHECK_EQ(r.buf[0x1000000], 0xe8);
	KCHECK_EQ(r.buf[0x1000000 + KERNEL_BYTES - 1], 0x5a);
	/* The initrd goes as high as RAM allows, page aligned. */
	KCHECK_EQ(res.initrd_addr, ALIGN_DOWN((64ULL << 20) - sizeof(initrd), 4096ULL));
	KCHECK_EQ(r.buf[res.initrd_addr + sizeof(initrd) - 1], 0xab);
	KCHECK_STR((char *)r.buf + LAYOUT_CMDLINE, "console=ttyS0 panic=1");

	bp = r.buf + res.boot_params_addr;
	KCHECK_EQ(get32(bp + BP_HEADER), BOOT_HDRS_MAGIC);
	KCHECK_EQ(bp[BP_TYPE_OF_LOADER], 0xff);
	KCHECK_EQ(get32(bp + BP_CMD_LINE_PTR), LAYOUT_CMDLINE);
	KCHECK_EQ(get32(bp + BP_RAMDISK_IMAGE), res.initrd_addr);
	KCHECK_EQ(get32(bp + BP_RAMDISK_SIZE), sizeof(initrd));
	KCHECK_EQ(get64(bp + BP_ACPI_RSDP_ADDR), 0xe0000);
	KCHECK_EQ(bp[BP_E820_ENTRIES], n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		KCHECK_EQ(get64(e), e820[i].addr);
		KCHECK_EQ(get64(e + 8), e820[i].size);
		KCHECK_EQ(get32(e + 16), e820[i].type);
	}
	/* Nothing outside the header and the fields we own is set. */
	KCHECK_EQ(bp[0], 0);
	KCHECK_EQ(bp[0x1ef], 0);

	/* Page tables: PML4[0] -> PDPT, PDPT[3] -> 4th PD, 2 MiB identity pages up to 4 GiB. */
	KCHECK_EQ(get64(r.buf + LAYOUT_PML4), LAYOUT_PDPT | 3);
	KCHECK_EQ(get64(r.buf + LAYOUT_PDPT + 24), (LAYOUT_PD + 3 * 4096) | 3);
	KCHECK_EQ(get64(r.buf + LAYOUT_PD + 8 * 2047), (2047ULL << 21) | 0x83);
	KCHECK_EQ(get64(r.buf + LAYOUT_BOOT_GDT + BOOT_GDT_CS), boot_gdt[2]);
	free(r.buf);
	free(img);
}

KTEST(load_reports_what_does_not_fit)
{
	uint8_t *img = make_image();
	uint8_t *big = calloc(1, 40 << 20);
	char longcmd[3000];
	struct boot_linux_params p = { .kernel = img, .kernel_len = IMAGE_BYTES, .cmdline = "" };
	struct boot_linux_result res;
	char err[256] = "";
	struct ram r;

	/* 16 MiB of RAM cannot hold a kernel that loads at 16 MiB. */
	ram_init(&r, 16 << 20);
	KCHECK_EQ(boot_linux_load(&r.mem, &p, &res, err, sizeof(err)), -ENOMEM);
	KCHECK_STR(err, "the kernel needs guest RAM up to 20 MiB (loaded at 16 MiB, 4 MiB to unpack): raise --memory");
	free(r.buf);

	ram_init(&r, 48 << 20);
	p.initrd = big;
	p.initrd_len = 40 << 20;
	KCHECK_EQ(boot_linux_load(&r.mem, &p, &res, err, sizeof(err)), -ENOMEM);
	KCHECK_STR(err, "initrd (40 MiB) does not fit in guest memory between the kernel's end at 20 MiB and 48 MiB: raise --memory");

	p.initrd = NULL;
	p.initrd_len = 0;
	memset(longcmd, 'x', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = 0;
	p.cmdline = longcmd;
	KCHECK_EQ(boot_linux_load(&r.mem, &p, &res, err, sizeof(err)), -E2BIG);
	KCHECK_STR(err, "command line is 2999 bytes; this kernel accepts at most 2047");
	free(r.buf);
	free(big);
	free(img);
}

KTEST(initrd_respects_initrd_addr_max)
{
	uint8_t *img = make_image();
	static uint8_t initrd[8192];
	struct boot_linux_params p = {
		.kernel = img, .kernel_len = IMAGE_BYTES, .cmdline = "",
		.initrd = initrd, .initrd_len = sizeof(initrd),
	};
	struct boot_linux_result res;
	char err[256];
	struct ram r;

	put32(img + BP_INITRD_ADDR_MAX, (32 << 20) - 1);
	ram_init(&r, 64 << 20);
	KASSERT(boot_linux_load(&r.mem, &p, &res, err, sizeof(err)) == 0);
	KCHECK_EQ(res.initrd_addr + sizeof(initrd), 32 << 20);
	free(r.buf);
	free(img);
}

KTEST(e820_map_around_the_pci_hole)
{
	struct e820_entry e[8];
	uint64_t below, above;
	unsigned n;

	guest_ram_layout(512ULL << 20, &below, &above);
	KCHECK_EQ(below, 512ULL << 20);
	KCHECK_EQ(above, 0);
	n = guest_ram_e820(below, above, e);
	KCHECK_EQ(n, 5);
	KCHECK(e[0].addr == 0 && e[0].size == 0x9fc00 && e[0].type == E820_RAM);
	KCHECK(e[1].addr == 0x9fc00 && e[1].type == E820_RESERVED);
	KCHECK(e[2].addr == 0xe0000 && e[2].size == 0x20000 && e[2].type == E820_RESERVED);
	KCHECK(e[3].addr == 0x100000 && e[3].size == (512ULL << 20) - 0x100000 && e[3].type == E820_RAM);
	KCHECK(e[4].addr == LAYOUT_PCI_ECAM_START && e[4].type == E820_RESERVED);

	guest_ram_layout(8ULL << 30, &below, &above);
	KCHECK_EQ(below, 3ULL << 30);
	KCHECK_EQ(above, 5ULL << 30);
	n = guest_ram_e820(below, above, e);
	KCHECK_EQ(n, 6);
	KCHECK(e[3].addr + e[3].size == 3ULL << 30);
	KCHECK(e[5].addr == 4ULL << 30 && e[5].size == 5ULL << 30 && e[5].type == E820_RAM);
	/* Sorted and non-overlapping, as Linux prefers it. */
	for (unsigned i = 1; i < n; i++)
		KCHECK(e[i - 1].addr + e[i - 1].size <= e[i].addr);
}

int main(void)
{
	return ktest_run_all();
}
