// SPDX-License-Identifier: Apache-2.0
/*
 * The root of the tables: RSDP, XSDT, FADT and FACS (ACPI 6.3, sections
 * 5.2.5-5.2.10), plus the layout of everything in the caller's buffer.
 *
 * Layout: the RSDP comes first so it sits on the 16-byte boundary a guest
 * scanning the BIOS area checks; then the FACS (64-byte aligned), DSDT,
 * MADT, FADT and XSDT, each 8-byte aligned.
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi_internal.h"
#include "pci/pci_acpi.h"
#include "hw/acpi_pm.h"
#include "hw/cmos_rtc.h"
#include "hw/i8042.h"
#include "hw/uart_16550.h"

#define RSDP_LEN 36
#define RSDP_V1_LEN 20
#define FACS_LEN 64
#define FADT_LEN 276
#define XSDT_ENTRIES_MAX 8

/* FADT fixed feature flags (table 5.10). */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define FADT_FIX_RTC (1u << 6)    /* no RTC wake status in PM1 */
#define FADT_TMR_VAL_EXT (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)

/* IA-PC boot architecture flags (table 5.11). */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042 (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

int acpi_buf_take(struct acpi_buf *b, size_t size, size_t align, uint8_t **p, uint64_t *gpa)
{
	uint64_t at = (b->gpa + b->used + align - 1) & ~((uint64_t)align - 1);
	size_t off = (size_t)(at - b->gpa);

	if (off > b->len || size > b->len - off)
		return -ENOSPC;
	memset(b->base + b->used, 0, off + size - b->used);
	*p = b->base + off;
	*gpa = at;
	b->used = off + size;
	return 0;
}

void acpi_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void acpi_put32(uint8_t *p, uint32_t v)
{
	acpi_put16(p, (uint16_t)v);
	acpi_put16(p + 2, (uint16_t)(v >> 16));
}

void acpi_put64(uint8_t *p, uint64_t v)
{
	acpi_put32(p, (uint32_t)v);
	acpi_put32(p + 4, (uint32_t)(v >> 32));
}

void acpi_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t revision)
{
	memcpy(t, sig, 4);
	acpi_put32(t + 4, len);
	t[8] = revision;
	t[9] = 0;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	acpi_put32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	acpi_put32(t + 32, ACPI_CREATOR_REVISION);
}

void acpi_checksum(uint8_t *t, size_t len, size_t at)
{
	uint8_t sum = 0;

	t[at] = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	t[at] = (uint8_t)-sum;
}

/* Generic Address Structure (5.2.3.2) for a port range. */
static void put_gas_io(uint8_t *p, uint16_t port, uint8_t bits, uint8_t access)
{
	p[0] = port ? GAS_SYSTEM_IO : 0;
	p[1] = port ? bits : 0;
	p[2] = 0;
	p[3] = port ? access : 0;
	acpi_put64(p + 4, port);
}

static int build_facs(struct acpi_buf *b, uint64_t *gpa)
{
	uint8_t *t;
	int r = acpi_buf_take(b, FACS_LEN, 64, &t, gpa);

	if (r)
		return r;
	memcpy(t, "FACS", 4);
	acpi_put32(t + 4, FACS_LEN);
	/* Hardware signature 0, no waking vector, no global lock owner, no S4BIOS. */
	t[32] = 2; /* version (ACPI 2.0 and later layout) */
	return 0;
}

static int build_fadt(const struct acpi_config *cfg, uint64_t facs, uint64_t dsdt,
		      struct acpi_buf *b, uint64_t *gpa)
{
	uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC;
	uint16_t boot = BOOT_VGA_NOT_PRESENT;
	uint8_t *t;
	int r = acpi_buf_take(b, FADT_LEN, 8, &t, gpa);

	if (r)
		return r;
	if (cfg->pm_tmr_port)
		flags |= FADT_TMR_VAL_EXT;
	if (cfg->reset_port)
		flags |= FADT_RESET_REG_SUP;
	if (cfg->com1_port || cfg->rtc_port || cfg->kbd_data_port)
		boot |= BOOT_LEGACY_DEVICES;
	if (cfg->kbd_data_port)
		boot |= BOOT_8042;

	acpi_header(t, "FACP", FADT_LEN, 6);
	/*
	 * FIRMWARE_CTRL, not X_FIRMWARE_CTRL: the spec wants only one of the
	 * two set, and the 32-bit one reaches our FACS below 4 GiB.
	 */
	acpi_put32(t + 36, (uint32_t)facs);
	acpi_put32(t + 40, (uint32_t)dsdt);
	t[45] = 0; /* preferred PM profile: unspecified */
	acpi_put16(t + 46, cfg->sci_irq);
	/* SMI_CMD 0: no SMM, the OS finds SCI_EN already set. */
	acpi_put32(t + 56, cfg->pm1a_evt_port);
	acpi_put32(t + 64, cfg->pm1a_cnt_port);
	acpi_put32(t + 76, cfg->pm_tmr_port);
	t[88] = 4; /* PM1_EVT_LEN: status + enable, 16 bits each */
	t[89] = 2; /* PM1_CNT_LEN */
	t[91] = cfg->pm_tmr_port ? 4 : 0;
	acpi_put16(t + 96, 101);  /* P_LVL2_LAT > 100: no C2 */
	acpi_put16(t + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	t[108] = cfg->rtc_port ? cfg->rtc_century : 0;
	acpi_put16(t + 109, boot);
	acpi_put32(t + 112, flags);
	put_gas_io(t + 116, cfg->reset_port, 8, GAS_ACCESS_BYTE);
	t[128] = cfg->reset_value;
	t[131] = 3; /* minor version: 6.3 */
	acpi_put64(t + 140, dsdt); /* X_DSDT */
	put_gas_io(t + 148, cfg->pm1a_evt_port, 32, GAS_ACCESS_WORD);
	put_gas_io(t + 172, cfg->pm1a_cnt_port, 16, GAS_ACCESS_WORD);
	put_gas_io(t + 208, cfg->pm_tmr_port, 32, GAS_ACCESS_DWORD);
	memcpy(t + 268, "KEEL-VMM", 8); /* hypervisor vendor identity */
	acpi_checksum(t, FADT_LEN, 9);
	return 0;
}

static int build_xsdt(const uint64_t *tables, unsigned n, struct acpi_buf *b, uint64_t *gpa)
{
	uint32_t len = ACPI_HEADER_LEN + 8 * n;
	uint8_t *t;
	int r = acpi_buf_take(b, len, 8, &t, gpa);

	if (r)
		return r;
	acpi_header(t, "XSDT", len, 1);
	for (unsigned i = 0; i < n; i++)
		acpi_put64(t + ACPI_HEADER_LEN + 8 * i, tables[i]);
	acpi_checksum(t, len, 9);
	return 0;
}

static void fill_rsdp(uint8_t *t, uint64_t xsdt)
{
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, ACPI_OEM_ID, 6);
	t[15] = 2; /* revision: ACPI 2.0+, XSDT valid */
	/* RsdtAddress 0: no RSDT, every ACPI 2.0+ OS takes the XSDT. */
	acpi_put32(t + 20, RSDP_LEN);
	acpi_put64(t + 24, xsdt);
	acpi_checksum(t, RSDP_V1_LEN, 8);
	acpi_checksum(t, RSDP_LEN, 32);
}

static int check_config(const struct acpi_config *cfg, uint64_t gpa)
{
	if (!cfg->nr_cpus || !cfg->apic_ids)
		return -EINVAL;
	/* The ECAM reservation is a Memory32Fixed; I/O windows are 16-bit. */
	if (cfg->pci && (cfg->pci->bus_start > cfg->pci->bus_end ||
			 cfg->pci->ecam_base + ((cfg->pci->bus_end + 1ull) << 20) > (1ull << 32) ||
			 cfg->pci->io[0].base + cfg->pci->io[0].size > 0x10000 ||
			 cfg->pci->io[1].base + cfg->pci->io[1].size > 0x10000 ||
			 cfg->pci->nr_prt > PCI_MAX_SLOTS))
		return -EINVAL;
	if (!cfg->pm1a_evt_port || !cfg->pm1a_cnt_port || !cfg->sci_irq || cfg->sci_irq > 15)
		return -EINVAL;
	if (gpa & 15 || gpa >= (1ull << 32))
		return -EINVAL;
	if (cfg->numa && acpi_check_numa(cfg))
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		if (cfg->apic_ids[i] == UINT32_MAX)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (cfg->apic_ids[j] == cfg->apic_ids[i])
				return -EINVAL;
	}
	return 0;
}

int acpi_build_tables(const struct acpi_config *cfg, void *buf, size_t len, uint64_t gpa,
		      struct acpi_tables_info *info)
{
	struct acpi_buf b = { .base = buf, .len = len, .gpa = gpa };
	uint64_t rsdp, facs, dsdt, madt, fadt, xsdt, mcfg, entries[XSDT_ENTRIES_MAX];
	uint8_t *rsdp_p;
	unsigned n = 0;
	int r = check_config(cfg, gpa);

	if (r)
		return r;
	if ((r = acpi_buf_take(&b, RSDP_LEN, 16, &rsdp_p, &rsdp)) ||
	    (r = build_facs(&b, &facs)) || (r = acpi_build_dsdt(cfg, &b, &dsdt)) ||
	    (r = acpi_build_madt(cfg, &b, &madt)) || (r = build_fadt(cfg, facs, dsdt, &b, &fadt)))
		return r;
	entries[n++] = fadt;
	entries[n++] = madt;
	if (cfg->pci) {
		r = acpi_build_mcfg(cfg->pci, &b, &mcfg);
		if (r)
			return r;
		entries[n++] = mcfg;
	}
	if (cfg->numa) {
		uint64_t srat, slit;

		r = acpi_build_srat(cfg, &b, &srat);
		if (r)
			return r;
		entries[n++] = srat;
		if (cfg->numa->distance) {
			r = acpi_build_slit(cfg->numa, &b, &slit);
			if (r)
				return r;
			entries[n++] = slit;
		}
	}
	r = build_xsdt(entries, n, &b, &xsdt);
	if (r)
		return r;
	if (b.gpa + b.used > (1ull << 32))
		return -EINVAL; /* the FADT's 32-bit FACS pointer would not reach */
	fill_rsdp(rsdp_p, xsdt);
	info->rsdp_gpa = rsdp;
	info->size = b.used;
	return 0;
}

void acpi_config_default(struct acpi_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->lapic_addr = ACPI_LAPIC_ADDR;
	cfg->ioapic_addr = ACPI_IOAPIC_ADDR;
	cfg->ioapic_id = ACPI_IOAPIC_ID;
	cfg->pm1a_evt_port = ACPI_PM1_EVT_PORT;
	cfg->pm1a_cnt_port = ACPI_PM1_CNT_PORT;
	cfg->pm_tmr_port = ACPI_PM_TMR_PORT;
	cfg->reset_port = ACPI_RESET_PORT;
	cfg->reset_value = ACPI_RESET_VALUE;
	cfg->sci_irq = ACPI_SCI_IRQ;
	cfg->s5_slp_typ = ACPI_S5_SLP_TYP;
	cfg->com1_port = UART_COM1_PORT;
	cfg->com1_irq = UART_COM1_IRQ;
	cfg->rtc_port = CMOS_RTC_PORT;
	cfg->rtc_irq = CMOS_RTC_IRQ;
	cfg->rtc_century = CMOS_CENTURY_REG;
	cfg->kbd_data_port = I8042_DATA_PORT;
	cfg->kbd_cmd_port = I8042_CMD_PORT;
	cfg->kbd_irq = I8042_KBD_IRQ;
}
