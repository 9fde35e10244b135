// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "acpi_read.h"

uint8_t tables_buf[TABLES_BUF_LEN];
uint32_t tables_ids[300];
const struct acpi_pci_config *tables_pci;
const struct acpi_numa_config *tables_numa;

uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

uint8_t byte_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table at a guest address, checked to lie inside what was built. */
static const uint8_t *at(const struct acpi_tables_info *info, uint64_t gpa, size_t min_len)
{
	if (gpa < TABLES_GPA || gpa + min_len > TABLES_GPA + info->size)
		return NULL;
	return tables_buf + (gpa - TABLES_GPA);
}

/* Walks and checks what every OS checks first; false if anything is off. */
static bool walk(struct tables *t)
{
	t->rsdp = at(&t->info, t->info.rsdp_gpa, 36);
	REQUIRE(t->rsdp);
	KCHECK(!memcmp(t->rsdp, "RSD PTR ", 8));
	KCHECK_EQ(byte_sum(t->rsdp, 20), 0);
	KCHECK_EQ(byte_sum(t->rsdp, 36), 0);
	KCHECK_EQ(t->rsdp[15], 2);
	KCHECK_EQ(le32(t->rsdp + 20), 36);
	KCHECK_EQ(t->info.rsdp_gpa & 15, 0);
	t->xsdt = at(&t->info, le64(t->rsdp + 24), 36);
	REQUIRE(t->xsdt && !memcmp(t->xsdt, "XSDT", 4));
	KCHECK_EQ(byte_sum(t->xsdt, le32(t->xsdt + 4)), 0);
	KCHECK_EQ(le32(t->xsdt + 4), 36 + (2 + !!tables_pci + (tables_numa ? 1 + !!tables_numa->distance
								       : 0)) * 8);
	if (tables_pci) {
		t->mcfg = at(&t->info, le64(t->xsdt + 52), 60);
		REQUIRE(t->mcfg && !memcmp(t->mcfg, "MCFG", 4));
		KCHECK_EQ(le32(t->mcfg + 4), 60);
		KCHECK_EQ(byte_sum(t->mcfg, 60), 0);
	}
	t->fadt = at(&t->info, le64(t->xsdt + 36), 276);
	t->madt = at(&t->info, le64(t->xsdt + 44), 44);
	REQUIRE(t->fadt && !memcmp(t->fadt, "FACP", 4));
	REQUIRE(t->madt && !memcmp(t->madt, "APIC", 4));
	KCHECK_EQ(le32(t->fadt + 4), 276);
	KCHECK_EQ(byte_sum(t->fadt, 276), 0);
	KCHECK_EQ(byte_sum(t->madt, le32(t->madt + 4)), 0);
	REQUIRE(at(&t->info, le64(t->xsdt + 44), le32(t->madt + 4)));
	/* FACS: 64-byte aligned, only the 32-bit pointer set. */
	t->facs = at(&t->info, le32(t->fadt + 36), 64);
	REQUIRE(t->facs && !memcmp(t->facs, "FACS", 4));
	KCHECK_EQ(le32(t->fadt + 36) & 63, 0);
	KCHECK_EQ(le64(t->fadt + 132), 0);
	KCHECK_EQ(le32(t->facs + 4), 64);
	/* DSDT: both pointers agree. */
	KCHECK_EQ(le64(t->fadt + 140), le32(t->fadt + 40));
	t->dsdt = at(&t->info, le64(t->fadt + 140), 36);
	REQUIRE(t->dsdt && !memcmp(t->dsdt, "DSDT", 4));
	REQUIRE(at(&t->info, le64(t->fadt + 140), le32(t->dsdt + 4)));
	KCHECK_EQ(byte_sum(t->dsdt, le32(t->dsdt + 4)), 0);
	return !ktest_failed;
}

bool tables_build(unsigned n, struct tables *t)
{
	struct acpi_config cfg;
	int r;

	acpi_config_default(&cfg);
	cfg.nr_cpus = n;
	cfg.apic_ids = tables_ids;
	cfg.pci = tables_pci;
	cfg.numa = tables_numa;
	memset(tables_buf, 0xa5, sizeof(tables_buf));
	memset(t, 0, sizeof(*t));
	r = acpi_build_tables(&cfg, tables_buf, sizeof(tables_buf), TABLES_GPA, &t->info);
	KCHECK_EQ(r, 0);
	return r == 0 && walk(t);
}

const uint8_t *tables_find(const struct tables *t, const char *sig)
{
	for (uint32_t off = 36; off + 8 <= le32(t->xsdt + 4); off += 8) {
		const uint8_t *tab = at(&t->info, le64(t->xsdt + off), 36);

		if (tab && !memcmp(tab, sig, 4) && at(&t->info, le64(t->xsdt + off), le32(tab + 4)) &&
		    byte_sum(tab, le32(tab + 4)) == 0)
			return tab;
	}
	return NULL;
}

void tables_fill_ids(unsigned n, uint32_t stride)
{
	for (unsigned i = 0; i < n; i++)
		tables_ids[i] = i * stride;
}
