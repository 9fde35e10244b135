// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keel/compiler.h"
#include "vmm/boot_linux.h"
#include "vmm/layout.h"

/* Flat 64-bit code and data, and a TSS so VMX sees a usable TR. */
const uint64_t boot_gdt[BOOT_GDT_ENTRIES] = {
	0,
	0,
	0x00af9b000000ffffULL, /* 0x10: code, L=1, P, DPL0, execute/read */
	0x00cf93000000ffffULL, /* 0x18: data, 4 GiB, read/write */
	0x00008b0000000067ULL, /* 0x20: 64-bit TSS (busy), 104 bytes at 0 */
	0,                     /* long-mode system descriptors take 16 bytes */
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

#define FAIL(code, ...)                                  \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -(code);                          \
	} while (0)

int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage_info *info,
		  char *err, size_t errlen)
{
	unsigned setup_sects;

	memset(info, 0, sizeof(*info));
	if (len < BP_HEADER + 4 || rd32(buf + BP_HEADER) != BOOT_HDRS_MAGIC)
		FAIL(ENOEXEC, "not a bzImage: no \"HdrS\" boot header signature");
	if (rd16(buf + BP_BOOT_FLAG) != BOOT_FLAG_MAGIC)
		FAIL(ENOEXEC, "not a bzImage: boot flag is 0x%04x, not 0xaa55",
		     rd16(buf + BP_BOOT_FLAG));
	info->version = rd16(buf + BP_VERSION);
	if (info->version < BOOT_MIN_VERSION)
		FAIL(ENOEXEC, "boot protocol %u.%02u is too old: 64-bit boot needs 2.12 (Linux 3.8) or later",
		     info->version >> 8, info->version & 0xff);
	info->header_end = BP_JUMP + 2 + buf[BP_JUMP + 1];
	if (info->header_end < BP_INIT_SIZE + 4 || info->header_end > len)
		FAIL(EINVAL, "bzImage setup header is truncated (ends at 0x%x)", info->header_end);

	/* A setup_sects of 0 means 4, for historical reasons. */
	setup_sects = buf[BP_SETUP_SECTS] ? buf[BP_SETUP_SECTS] : 4;
	info->setup_size = (setup_sects + 1) * 512;
	if (info->setup_size < info->header_end || info->setup_size >= len)
		FAIL(EINVAL, "bzImage setup size %u does not fit the %zu-byte file",
		     info->setup_size, len);
	info->kernel_size = len - info->setup_size;

	if (!(buf[BP_LOADFLAGS] & BOOT_LOADED_HIGH))
		FAIL(ENOEXEC, "kernel is a zImage (LOADED_HIGH clear): only bzImages are supported");
	info->xloadflags = rd16(buf + BP_XLOADFLAGS);
	if (!(info->xloadflags & BOOT_XLF_KERNEL_64))
		FAIL(ENOEXEC, "kernel has no 64-bit entry point (XLF_KERNEL_64 clear): a 64-bit kernel is required");

	info->relocatable = buf[BP_RELOCATABLE];
	info->kernel_alignment = rd32(buf + BP_KERNEL_ALIGNMENT);
	if (info->kernel_alignment < 4096 || (info->kernel_alignment & (info->kernel_alignment - 1)))
		FAIL(EINVAL, "bzImage kernel_alignment 0x%x is not a power of two of at least 4 KiB",
		     info->kernel_alignment);
	info->pref_address = rd64(buf + BP_PREF_ADDRESS);
	if (info->pref_address < LAYOUT_HIGH_MEMORY ||
	    !IS_ALIGNED(info->pref_address, (uint64_t)info->kernel_alignment))
		FAIL(EINVAL, "bzImage preferred load address 0x%llx is below 1 MiB or misaligned",
		     (unsigned long long)info->pref_address);
	info->init_size = rd32(buf + BP_INIT_SIZE);
	if (info->init_size < info->kernel_size)
		FAIL(EINVAL, "bzImage init_size 0x%x is smaller than the kernel it loads (0x%llx)",
		     info->init_size, (unsigned long long)info->kernel_size);
	info->initrd_addr_max = rd32(buf + BP_INITRD_ADDR_MAX);
	if (info->initrd_addr_max < LAYOUT_HIGH_MEMORY)
		FAIL(EINVAL, "bzImage initrd_addr_max 0x%x is below 1 MiB", info->initrd_addr_max);
	info->cmdline_size = rd32(buf + BP_CMDLINE_SIZE);
	return 0;
}

/* Identity map of the first 4 GiB with 2 MiB pages: PML4 -> PDPT -> 4 PDs. */
static int write_page_tables(const struct guest_mem *mem)
{
	uint8_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	uint8_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint8_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	/* Present | writable; 0x80 = page size (2 MiB) in the PDs. */
	wr64(pml4, LAYOUT_PDPT | 0x3);
	for (unsigned i = 0; i < 4; i++)
		wr64(pdpt + 8 * i, (LAYOUT_PD + 4096 * i) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		wr64(pd + 8 * i, (i << 21) | 0x83);
	return 0;
}

static int write_gdt(const struct guest_mem *mem)
{
	uint8_t *gdt = guest_mem_ptr(mem, LAYOUT_BOOT_GDT, sizeof(boot_gdt));

	if (!gdt)
		return -EFAULT;
	for (unsigned i = 0; i < BOOT_GDT_ENTRIES; i++)
		wr64(gdt + 8 * i, boot_gdt[i]);
	return 0;
}

/* Highest address below 4 GiB such that [0, top) is contiguous RAM. */
static uint64_t low_ram_top(const struct guest_mem *mem)
{
	uint64_t top = 0;

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];

		if (r->gpa == 0)
			top = MIN(r->size, LAYOUT_RAM_BELOW_4G_MAX);
	}
	return top;
}

static int place_initrd(const struct guest_mem *mem, const struct boot_linux_params *p,
			const struct bzimage_info *info, uint64_t kernel_end,
			uint64_t *addr, char *err, size_t errlen)
{
	uint64_t limit = MIN(low_ram_top(mem), (uint64_t)info->initrd_addr_max + 1);
	uint64_t start;

	if (p->initrd_len > limit || limit - p->initrd_len < kernel_end)
		FAIL(ENOMEM, "initrd (%zu MiB) does not fit in guest memory between the kernel's end at %llu MiB and %llu MiB: raise --memory",
		     p->initrd_len >> 20, (unsigned long long)(kernel_end >> 20),
		     (unsigned long long)(limit >> 20));
	start = ALIGN_DOWN(limit - p->initrd_len, 4096ULL);
	if (start < kernel_end)
		FAIL(ENOMEM, "initrd (%zu MiB) does not fit in guest memory: raise --memory",
		     p->initrd_len >> 20);
	if (guest_mem_write(mem, start, p->initrd, p->initrd_len))
		FAIL(EFAULT, "initrd does not fit in guest RAM at 0x%llx", (unsigned long long)start);
	*addr = start;
	return 0;
}

int boot_linux_load(const struct guest_mem *mem, const struct boot_linux_params *p,
		    struct boot_linux_result *res, char *err, size_t errlen)
{
	struct bzimage_info info;
	uint64_t load, kernel_end;
	size_t cmdline_len = strlen(p->cmdline);
	uint8_t *bp;
	int r;

	memset(res, 0, sizeof(*res));
	r = bzimage_parse(p->kernel, p->kernel_len, &info, err, errlen);
	if (r)
		return r;

	/*
	 * The decompressor moves a relocatable kernel to at least its
	 * preferred address anyway, so load it there: init_size bytes from
	 * that address must be RAM.
	 */
	load = info.pref_address;
	kernel_end = load + info.init_size;
	if (kernel_end > low_ram_top(mem) || !guest_mem_ptr(mem, load, info.init_size))
		FAIL(ENOMEM, "the kernel needs guest RAM up to %llu MiB (loaded at %llu MiB, %u MiB to unpack): raise --memory",
		     (unsigned long long)(kernel_end >> 20), (unsigned long long)(load >> 20),
		     info.init_size >> 20);
	if (guest_mem_write(mem, load, p->kernel + info.setup_size, info.kernel_size))
		FAIL(EFAULT, "kernel does not fit in guest RAM");
	res->kernel_addr = load;
	res->entry_rip = load + BOOT_ENTRY64_OFFSET;

	if (cmdline_len > info.cmdline_size || cmdline_len >= LAYOUT_CMDLINE_MAX)
		FAIL(E2BIG, "command line is %zu bytes; this kernel accepts at most %u",
		     cmdline_len, info.cmdline_size);
	if (guest_mem_write(mem, LAYOUT_CMDLINE, p->cmdline, cmdline_len + 1))
		FAIL(EFAULT, "no guest RAM for the command line");
	res->cmdline_addr = LAYOUT_CMDLINE;

	if (p->initrd && p->initrd_len) {
		r = place_initrd(mem, p, &info, kernel_end, &res->initrd_addr, err, errlen);
		if (r)
			return r;
	}

	if (p->nr_e820 > BP_E820_MAX)
		FAIL(E2BIG, "too many e820 entries (%u)", p->nr_e820);
	bp = guest_mem_ptr(mem, LAYOUT_BOOT_PARAMS, BP_SIZE);
	if (!bp)
		FAIL(EFAULT, "no guest RAM for boot_params");
	memset(bp, 0, BP_SIZE);
	/* The protocol: copy the setup header as the image has it, then fill in. */
	memcpy(bp + BP_SETUP_SECTS, p->kernel + BP_SETUP_SECTS, info.header_end - BP_SETUP_SECTS);
	bp[BP_TYPE_OF_LOADER] = 0xff; /* "undefined" loader: we have no assigned ID */
	bp[BP_LOADFLAGS] = BOOT_LOADED_HIGH;
	wr32(bp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	wr32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	wr32(bp + BP_RAMDISK_IMAGE, (uint32_t)res->initrd_addr);
	wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(res->initrd_addr >> 32));
	wr32(bp + BP_RAMDISK_SIZE, (uint32_t)(res->initrd_addr ? p->initrd_len : 0));
	wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(res->initrd_addr ? (uint64_t)p->initrd_len >> 32 : 0));
	/* acpi_rsdp_addr is read from protocol 2.14 on; older kernels scan 0xe0000. */
	if (info.version >= 0x020e)
		wr64(bp + BP_ACPI_RSDP_ADDR, p->rsdp_addr);
	bp[BP_E820_ENTRIES] = (uint8_t)p->nr_e820;
	for (unsigned i = 0; i < p->nr_e820; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		wr64(e, p->e820[i].addr);
		wr64(e + 8, p->e820[i].size);
		wr32(e + 16, p->e820[i].type);
	}
	res->boot_params_addr = LAYOUT_BOOT_PARAMS;

	if (write_page_tables(mem) || write_gdt(mem))
		FAIL(EFAULT, "no guest RAM for the boot page tables");
	res->pml4_addr = LAYOUT_PML4;
	res->gdt_addr = LAYOUT_BOOT_GDT;
	return 0;
}
