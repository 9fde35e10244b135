// SPDX-License-Identifier: Apache-2.0
/*
 * The generated ACPI tables read back the way an OS walks them (RSDP ->
 * XSDT -> FADT -> FACS/DSDT, MADT): checksums, lengths, pointers, the FADT
 * fields, MADT contents for 1, 4, 255 and 256+ vCPUs, and errors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_read.h"
#include "ktest.h"

KTEST(acpi_fadt_describes_the_platform)
{
	struct tables t;
	const uint8_t *f;

	tables_fill_ids(1, 1);
	KASSERT(tables_build(1, &t));
	f = t.fadt;
	KCHECK_EQ(f[8], 6);              /* revision */
	KCHECK_EQ(f[131], 3);            /* minor: 6.3 */
	KCHECK_EQ(le16(f + 46), 9);      /* SCI */
	KCHECK_EQ(le32(f + 48), 0);      /* no SMI_CMD: always in ACPI mode */
	KCHECK_EQ(le32(f + 56), 0x600);  /* PM1a_EVT_BLK */
	KCHECK_EQ(le32(f + 64), 0x604);  /* PM1a_CNT_BLK */
	KCHECK_EQ(le32(f + 76), 0x60c);  /* PM_TMR_BLK */
	KCHECK_EQ(f[88], 4);
	KCHECK_EQ(f[89], 2);
	KCHECK_EQ(f[91], 4);
	KCHECK_EQ(f[108], 0x32);         /* century */
	KCHECK_EQ(le16(f + 109), 0x0007); /* legacy devices, 8042, no VGA; MSI ok, RTC present */
	/* WBINVD, C1, no fixed sleep button, fixed power button, 32-bit timer, reset reg */
	KCHECK_EQ(le32(f + 112), 0x00000565);
	KCHECK_EQ(f[116], 1);            /* reset register: system I/O */
	KCHECK_EQ(f[117], 8);
	KCHECK_EQ(le64(f + 120), 0x608);
	KCHECK_EQ(f[128], 1);
	KCHECK_EQ(f[148], 1);            /* X_PM1a_EVT_BLK */
	KCHECK_EQ(f[149], 32);
	KCHECK_EQ(le64(f + 152), 0x600);
	KCHECK_EQ(f[173], 16);           /* X_PM1a_CNT_BLK width */
	KCHECK_EQ(le64(f + 176), 0x604);
	KCHECK_EQ(le64(f + 212), 0x60c); /* X_PM_TMR_BLK */
	KCHECK_EQ(le64(f + 160 + 4), 0); /* no PM1b */
	KCHECK(!memcmp(f + 268, "KEEL-VMM", 8));
	/* Tables sit where the RSDP says, all inside the built size. */
	KCHECK_EQ(t.info.rsdp_gpa, TABLES_GPA);
	KCHECK(t.info.size < 4096);
}

struct madt_counts {
	unsigned lapic, x2apic, ioapic, iso, nmi, x2nmi, other;
	uint32_t ids[300];
	uint32_t uids[300];
	unsigned cpus;
	bool ok;
};

/* Parses the MADT's entries; every entry must have a known length. */
static struct madt_counts parse_madt(const uint8_t *m)
{
	struct madt_counts c;
	const uint8_t *e = m + 44, *end = m + le32(m + 4);

	memset(&c, 0, sizeof(c));
	c.ok = le32(m + 36) == 0xfee00000u && le32(m + 40) == 1;
	while (e + 2 <= end && e[1] >= 2 && e + e[1] <= end) {
		switch (e[0]) {
		case 0:
			c.ok &= e[1] == 8 && le32(e + 4) == 1;
			c.uids[c.cpus] = e[2];
			c.ids[c.cpus++] = e[3];
			c.lapic++;
			break;
		case 9:
			c.ok &= e[1] == 16 && le32(e + 8) == 1;
			c.ids[c.cpus] = le32(e + 4);
			c.uids[c.cpus++] = le32(e + 12);
			c.x2apic++;
			break;
		case 1:
			c.ok &= e[1] == 12 && e[2] == 0 && le32(e + 4) == 0xfec00000u &&
				le32(e + 8) == 0;
			c.ioapic++;
			break;
		case 2:
			c.ok &= e[1] == 10 && e[2] == 0;
			if (e[3] == 0)
				c.ok &= le32(e + 4) == 2 && le16(e + 8) == 0x0005;
			else
				c.ok &= e[3] == 9 && le32(e + 4) == 9 && le16(e + 8) == 0x000d;
			c.iso++;
			break;
		case 4:
			c.ok &= e[1] == 6 && e[2] == 0xff && e[5] == 1;
			c.nmi++;
			break;
		case 10:
			c.ok &= e[1] == 12 && le32(e + 4) == 0xffffffffu && e[8] == 1;
			c.x2nmi++;
			break;
		default:
			c.other++;
			break;
		}
		e += e[1];
	}
	c.ok &= e == end;
	return c;
}

static void check_madt(unsigned n, uint32_t stride, unsigned want_lapic, unsigned want_x2apic)
{
	struct tables t;
	struct madt_counts c;
	bool ids_ok = true;

	tables_fill_ids(n, stride);
	KASSERT(tables_build(n, &t));
	c = parse_madt(t.madt);
	KCHECK(c.ok);
	KCHECK_EQ(c.cpus, n);
	KCHECK_EQ(c.lapic, want_lapic);
	KCHECK_EQ(c.x2apic, want_x2apic);
	KCHECK_EQ(c.ioapic, 1);
	KCHECK_EQ(c.iso, 2);
	KCHECK_EQ(c.nmi, 1);
	KCHECK_EQ(c.x2nmi, want_x2apic ? 1 : 0);
	KCHECK_EQ(c.other, 0);
	for (unsigned i = 0; i < c.cpus; i++)
		ids_ok &= c.ids[i] == tables_ids[i] && c.uids[i] == i;
	KCHECK(ids_ok);
}

KTEST(acpi_madt_1_cpu)
{
	check_madt(1, 1, 1, 0);
}

KTEST(acpi_madt_4_cpus)
{
	check_madt(4, 1, 4, 0);
}

/* Sparse IDs (a topology with gaps) are kept as given. */
KTEST(acpi_madt_sparse_apic_ids)
{
	check_madt(4, 2, 4, 0);
}

/* 255 vCPUs: IDs and UIDs 0..254 all fit xAPIC entries. */
KTEST(acpi_madt_255_cpus)
{
	check_madt(255, 1, 255, 0);
}

/* From ID (or UID) 255 on, x2APIC entries and an x2APIC NMI entry. */
KTEST(acpi_madt_256_and_300_cpus)
{
	check_madt(256, 1, 255, 1);
	check_madt(300, 1, 255, 45);
	/* IDs above 254 with few vCPUs: 0, 100, 200 as xAPIC, 300 as x2APIC. */
	check_madt(4, 100, 3, 1);
}

KTEST(acpi_bad_configs)
{
	struct acpi_config cfg;
	struct acpi_tables_info info;
	uint32_t dup[2] = { 3, 3 }, ok[2] = { 0, 1 };

	acpi_config_default(&cfg);
	cfg.apic_ids = ok;
	cfg.nr_cpus = 0;
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info), -EINVAL);
	cfg.nr_cpus = 2;
	cfg.apic_ids = dup;
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info), -EINVAL);
	cfg.apic_ids = ok;
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA + 8, &info), -EINVAL);
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), 1ull << 32, &info), -EINVAL);
	cfg.pci = (const struct acpi_pci_config *)&cfg;
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info), -EINVAL);
	cfg.pci = NULL;
	cfg.com1_irq = 16; /* not an ISA IRQ */
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info), -EINVAL);
	cfg.com1_irq = 4;
	KCHECK_EQ(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info), 0);
}

/*
 * Every buffer size short of what is needed fails with -ENOSPC and writes
 * nothing past its end (each try gets a heap block of exactly that size,
 * so ASan would see a stray byte).
 */
KTEST(acpi_buffer_too_small)
{
	struct acpi_config cfg;
	struct acpi_tables_info info;
	bool all_enospc = true;

	tables_fill_ids(8, 1);
	acpi_config_default(&cfg);
	cfg.nr_cpus = 8;
	cfg.apic_ids = tables_ids;
	KASSERT(acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &info) == 0);
	for (size_t len = 0; len < info.size; len++) {
		uint8_t *small = malloc(len ? len : 1);

		KASSERT(small);
		all_enospc &= acpi_build_tables(&cfg, small, len, TABLES_GPA, &info) == -ENOSPC;
		free(small);
	}
	KCHECK(all_enospc);
}

int main(void)
{
	return ktest_run_all();
}
