/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst
 * in the kernel tree): validate a bzImage's setup header, load the kernel,
 * initrd and command line into guest memory, build the "zero page"
 * (struct boot_params) with the e820 map, and describe the CPU state the
 * 64-bit entry point expects (identity-mapped page tables and a GDT, which
 * are written into guest memory here too).
 *
 * Only byte offsets fixed by the protocol appear below; everything else of
 * boot_params stays zero.
 */
#ifndef KEEL_VMM_BOOT_LINUX_H
#define KEEL_VMM_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "keel/guest_mem.h"

/* Setup header offsets, relative to the start of the image / boot_params. */
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe       /* 0xaa55 */
#define BP_JUMP 0x200            /* its second byte gives the header's end */
#define BP_HEADER 0x202          /* "HdrS" */
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_RELOCATABLE 0x234
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
/* Fields of boot_params outside the setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 4096

#define BOOT_HDRS_MAGIC 0x53726448 /* "HdrS" little-endian */
#define BOOT_FLAG_MAGIC 0xaa55
#define BOOT_LOADED_HIGH 0x01
#define BOOT_XLF_KERNEL_64 0x01
#define BOOT_XLF_CAN_BE_LOADED_ABOVE_4G 0x02
/*
 * 2.12 added xloadflags, the only way to know a 64-bit entry point exists;
 * every kernel since 3.8 has it.
 */
#define BOOT_MIN_VERSION 0x020c
#define BOOT_ENTRY64_OFFSET 0x200

enum e820_type {
	E820_RAM = 1,
	E820_RESERVED = 2,
	E820_ACPI = 3,
};

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* What we learnt from the setup header. */
struct bzimage_info {
	uint16_t version;
	uint32_t setup_size;      /* bytes before the protected-mode kernel */
	uint64_t kernel_size;     /* bytes of protected-mode kernel in the file */
	uint64_t pref_address;
	uint32_t kernel_alignment;
	uint32_t init_size;       /* memory the kernel needs from its load address */
	uint32_t initrd_addr_max; /* highest byte an initrd may occupy */
	uint32_t cmdline_size;    /* longest command line, without the NUL */
	uint16_t xloadflags;
	uint8_t relocatable;
	uint32_t header_end;      /* end offset of the setup header */
};

/*
 * Validates the bzImage in buf. 0, or -EINVAL/-ENOEXEC with a reason in err
 * ("not a bzImage: no HdrS signature", "boot protocol 2.06 is too old...").
 */
int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage_info *info,
		  char *err, size_t errlen);

struct boot_linux_params {
	const uint8_t *kernel; /* the whole bzImage file */
	size_t kernel_len;
	const uint8_t *initrd; /* NULL for none */
	size_t initrd_len;
	const char *cmdline;   /* "" for none */
	const struct e820_entry *e820;
	unsigned nr_e820;
	uint64_t rsdp_addr;    /* 0 when there are no ACPI tables */
};

/* Where things went, for the vCPU set-up and for tests. */
struct boot_linux_result {
	uint64_t kernel_addr;
	uint64_t entry_rip;
	uint64_t boot_params_addr;
	uint64_t initrd_addr;
	uint64_t cmdline_addr;
	uint64_t pml4_addr;
	uint64_t gdt_addr;
};

/*
 * Loads everything into `mem` and fills `res`. 0, or -errno with a one-line
 * reason in err (kernel does not fit, initrd larger than memory allows,
 * command line too long...).
 */
int boot_linux_load(const struct guest_mem *mem, const struct boot_linux_params *p,
		    struct boot_linux_result *res, char *err, size_t errlen);

/*
 * The GDT the 64-bit entry runs on: null, null, code (0x10), data (0x18),
 * TSS (0x20), the selectors the boot protocol names __BOOT_CS/__BOOT_DS.
 */
#define BOOT_GDT_CS 0x10
#define BOOT_GDT_DS 0x18
#define BOOT_GDT_TSS 0x20
#define BOOT_GDT_ENTRIES 6
extern const uint64_t boot_gdt[BOOT_GDT_ENTRIES];

#endif
