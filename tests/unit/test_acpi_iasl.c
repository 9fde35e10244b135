// SPDX-License-Identifier: Apache-2.0
/*
 * Debian's iasl (acpica-tools) as an independent judge of our tables: it
 * must disassemble every table without an error, warning or remark, and
 * the DSDT (and a table using every AML construct we have) must compile
 * back with optimisations off (iasl -oa) to exactly the AML we emitted.
 * iasl exits 0 even when it finds a bad checksum, so its output is read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acpi/acpi_internal.h"
#include "acpi/aml.h"
#include "acpi_read.h"
#include "keel/compiler.h"
#include "ktest.h"

static char tmpdir[64];

static bool write_file(const char *name, const void *data, size_t len)
{
	char path[128];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	if (!f)
		return false;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok;
}

/* The whole file as a NUL-terminated string (NULL if missing); caller frees. */
static char *read_file(const char *name, size_t *len)
{
	char path[128], *data;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	fclose(f);
	if (data) {
		data[n] = 0;
		if (len)
			*len = (size_t)n;
	}
	return data;
}

/* Runs iasl in tmpdir with its output to iasl.out; its exit status, -1 if it did not run. */
static int run_iasl(const char *a1, const char *a2, const char *a3)
{
	pid_t pid;
	int status;

	fflush(stdout); /* or the child's freopen() writes our buffer a second time */
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char out[128];
		FILE *f;

		snprintf(out, sizeof(out), "%s/iasl.out", tmpdir);
		f = freopen(out, "w", stdout);
		if (!f || dup2(fileno(stdout), 2) < 0 || chdir(tmpdir) < 0)
			_exit(126);
		execlp("iasl", "iasl", a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* iasl's output as TAP comments, one "# " per line. */
static void show(const char *what, int rc, const char *out)
{
	printf("# %s: exit %d\n", what, rc);
	for (const char *p = out ? out : "(no output)\n"; *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		printf("#   %.*s\n", n, p);
		p += n + (nl ? 1 : 0);
	}
}

/* iasl exits 0 even for bad checksums; what it prints says what it found. */
static bool complains(const char *text)
{
	static const char *words[] = { "error", "warning", "invalid", "incorrect", "****" };

	for (const char *p = text; *p; p++)
		for (unsigned i = 0; i < ARRAY_SIZE(words); i++)
			if (!strncasecmp(p, words[i], strlen(words[i])))
				return true;
	return false;
}

static bool iasl_disassembles(const char *base, const uint8_t *table)
{
	char dat[32], dsl[32], *out, *text;
	bool ok;
	int rc;

	snprintf(dat, sizeof(dat), "%s.dat", base);
	snprintf(dsl, sizeof(dsl), "%s.dsl", base);
	REQUIRE(write_file(dat, table, le32(table + 4)));
	rc = run_iasl("-d", dat, NULL);
	out = read_file("iasl.out", NULL);
	text = read_file(dsl, NULL);
	ok = rc == 0 && out && text && !complains(out) && !complains(text);
	if (!ok)
		show(dat, rc, out);
	if (rc == 127)
		printf("# iasl not found: install acpica-tools (scripts/deps check)\n");
	free(out);
	free(text);
	return ok;
}

/* The DSDT compiled back without optimisations is byte for byte our AML. */
static bool iasl_round_trips(const uint8_t *dsdt)
{
	char *out, *aml;
	size_t len = 0;
	uint32_t our_len = le32(dsdt + 4);
	bool ok;
	int rc;

	rc = run_iasl("-oa", "dsdt.dsl", NULL);
	out = read_file("iasl.out", NULL);
	aml = read_file("dsdt.aml", &len);
	ok = rc == 0 && out && strstr(out, "0 Errors, 0 Warnings, 0 Remarks") && aml &&
	     len == our_len && !memcmp(aml + 36, dsdt + 36, our_len - 36);
	if (!ok) {
		printf("# recompiled AML: %zu bytes, ours %u\n", len, our_len);
		show("iasl -oa dsdt.dsl", rc, out);
	}
	free(out);
	free(aml);
	return ok;
}

static void clean_tmpdir(void)
{
	static const char *names[] = { "xsdt", "facp", "facs", "apic", "dsdt", "aml", "mcfg",
				       "srat", "slit" };
	static const char *exts[] = { ".dat", ".dsl", ".aml" };
	char path[160];

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		for (unsigned j = 0; j < ARRAY_SIZE(exts); j++) {
			snprintf(path, sizeof(path), "%s/%s%s", tmpdir, names[i], exts[j]);
			unlink(path);
		}
	}
	snprintf(path, sizeof(path), "%s/iasl.out", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

static void check_with_iasl(unsigned n)
{
	struct tables t;

	tables_fill_ids(n, 1);
	KASSERT(tables_build(n, &t));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acpi-XXXXXX");
	KASSERT(mkdtemp(tmpdir));
	KCHECK(iasl_disassembles("xsdt", t.xsdt));
	KCHECK(iasl_disassembles("facp", t.fadt));
	KCHECK(iasl_disassembles("facs", t.facs));
	KCHECK(iasl_disassembles("apic", t.madt));
	if (iasl_disassembles("dsdt", t.dsdt))
		KCHECK(iasl_round_trips(t.dsdt));
	else
		KFAIL("DSDT did not disassemble");
	clean_tmpdir();
}

/*
 * The RSDP is not among them: iasl's file loader takes only tables with a
 * standard header ("Loading an RSDP is not supported"); walk() checks its
 * checksums and fields instead.
 */
KTEST(acpi_iasl_1_cpu)
{
	check_with_iasl(1);
}

KTEST(acpi_iasl_4_cpus)
{
	check_with_iasl(4);
}

KTEST(acpi_iasl_256_cpus)
{
	check_with_iasl(256);
}

/* The PCI root bridge (src/acpi/pci.c): MCFG, PCI0 and the ECAM reservation. */
KTEST(acpi_iasl_pci_root_bridge)
{
	struct acpi_pci_config pci = {
		.ecam_base = 0xe0000000, .bus_start = 0, .bus_end = 255,
		.io = { { 0, 0xcf8 }, { 0xd00, 0xf300 } },
		.mmio32 = { 0xc0000000, 0x20000000 },
		.mmio64 = { 0x400000000ULL, 64ULL << 30 },
		.cfg_port = 0xcf8, .cfg_port_len = 8,
		.nr_prt = 2, .prt = { { 0, 16 }, { 1, 17 } },
	};
	static const char *const dsdt_has[] = {
		"PNP0A08", "PNP0A03", "PNP0C02", "WordBusNumber", "0x00FF", "0x0CF8",
		"0x0CF7", "0x0D00", "0xDFFFFFFF", "0x0000000400000000", "0x00000013FFFFFFFF",
		"_PRT", "0x0001FFFF", "0x11", "Memory32Fixed (ReadWrite", "0xE0000000",
		"0x10000000",
	};
	struct tables t;
	char *dsl;

	tables_pci = &pci;
	tables_fill_ids(2, 1);
	KCHECK(tables_build(2, &t));
	tables_pci = NULL;
	KASSERT(t.mcfg && t.dsdt);
	KCHECK_EQ(le64(t.mcfg + 44), 0xe0000000);
	KCHECK_EQ(t.mcfg[55], 255);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acpi-XXXXXX");
	KASSERT(mkdtemp(tmpdir));
	KCHECK(iasl_disassembles("mcfg", t.mcfg));
	dsl = read_file("mcfg.dsl", NULL);
	KCHECK(dsl && strstr(dsl, "Base Address : 00000000E0000000"));
	free(dsl);
	if (iasl_disassembles("dsdt", t.dsdt))
		KCHECK(iasl_round_trips(t.dsdt));
	else
		KFAIL("DSDT did not disassemble");
	dsl = read_file("dsdt.dsl", NULL);
	KASSERT(dsl);
	for (unsigned i = 0; i < ARRAY_SIZE(dsdt_has); i++)
		if (!strstr(dsl, dsdt_has[i]))
			KFAIL("dsdt.dsl lacks %s", dsdt_has[i]);
	free(dsl);
	clean_tmpdir();
}

/* The detector itself: a table with a wrong checksum must be caught. */
KTEST(acpi_iasl_catches_a_bad_checksum)
{
	struct tables t;
	uint8_t bad[4096];

	tables_fill_ids(2, 1);
	KASSERT(tables_build(2, &t));
	KASSERT(le32(t.madt + 4) <= sizeof(bad));
	memcpy(bad, t.madt, le32(t.madt + 4));
	bad[9] ^= 0x01;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acpi-XXXXXX");
	KASSERT(mkdtemp(tmpdir));
	printf("# (the complaint below is expected)\n");
	KCHECK(!iasl_disassembles("apic", bad));
	clean_tmpdir();
}

/*
 * The AML constructs the PCI issue will need (address space descriptors,
 * methods, nested packages, strings, buffers) in a table of their own,
 * through the same disassemble-and-recompile round trip.
 */
KTEST(acpi_iasl_round_trips_every_aml_construct)
{
	static uint8_t table[4096];
	struct aml a;
	uint8_t bytes[3] = { 1, 2, 3 };
	size_t len;

	aml_init(&a);
	aml_scope(&a, "\\_SB");
	aml_device(&a, "PCI0");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0A08");
	aml_name(&a, "_CID");
	aml_eisaid(&a, "PNP0A03");
	aml_name(&a, "DESC");
	aml_string(&a, "Keel PCI root");
	aml_name(&a, "BUF0");
	aml_buffer(&a, bytes, sizeof(bytes));
	aml_name(&a, "_CRS");
	aml_resource_template(&a);
	aml_word_space(&a, AML_SPACE_BUS, 0, 0xff);
	aml_io(&a, 0xcf8, 0xcf8, 1, 8);
	aml_word_space(&a, AML_SPACE_IO, 0x0d00, 0xffff);
	aml_dword_space(&a, AML_SPACE_MEMORY, 0xc0000000, 0xfebfffff, false);
	aml_qword_space(&a, AML_SPACE_MEMORY, 0x8000000000ull, 0xffffffffffull, true);
	aml_memory32_fixed(&a, 0xe0000000, 0x10000000, false);
	aml_interrupt(&a, 16, true, true, true);
	aml_end(&a);
	aml_name(&a, "_PRT");
	aml_package(&a);
	for (int dev = 0; dev < 4; dev++) {
		aml_package(&a);
		aml_int(&a, (uint64_t)dev << 16 | 0xffff);
		aml_int(&a, 0);
		aml_int(&a, 0);
		aml_int(&a, 16 + dev);
		aml_end(&a);
	}
	aml_end(&a);
	aml_method(&a, "_STA", 0, false);
	aml_return(&a);
	aml_int(&a, 0x0f);
	aml_end(&a);
	aml_end(&a);
	aml_end(&a);
	KASSERT(aml_error(&a) == 0);
	len = 36 + a.len;
	KASSERT(len <= sizeof(table));
	acpi_header(table, "SSDT", (uint32_t)len, 2);
	memcpy(table + 36, a.buf, a.len);
	acpi_checksum(table, len, 9);
	aml_free(&a);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acpi-XXXXXX");
	KASSERT(mkdtemp(tmpdir));
	/* iasl names its output after the input, so the file is called dsdt. */
	if (iasl_disassembles("dsdt", table))
		KCHECK(iasl_round_trips(table));
	else
		KFAIL("SSDT did not disassemble");
	clean_tmpdir();
}

/*
 * Guest NUMA (src/acpi/srat.c): two nodes of two vCPUs each, node 0 with
 * the RAM below the PCI hole, node 1 with the rest split around it, and a
 * vCPU whose APIC ID needs an x2APIC entry.
 */
KTEST(acpi_iasl_srat_slit)
{
	static const uint32_t cpu_node[] = { 0, 0, 1, 1 };
	static const struct acpi_numa_mem mem[] = {
		{ 0, 0x80000000, 0 }, { 0x80000000, 0x40000000, 1 }, { 0x100000000ULL, 0x40000000, 1 },
	};
	static const uint8_t distance[] = { 10, 21, 21, 10 };
	struct acpi_numa_config numa = {
		.nr_nodes = 2, .cpu_node = cpu_node, .nr_mem = 3, .mem = mem, .distance = distance,
	};
	const uint8_t *srat, *slit, *e;
	struct tables t;
	char *dsl;

	tables_numa = &numa;
	tables_ids[0] = 0;
	tables_ids[1] = 1;
	tables_ids[2] = 4;
	tables_ids[3] = 300;
	KCHECK(tables_build(4, &t));
	tables_numa = NULL;
	srat = tables_find(&t, "SRAT");
	slit = tables_find(&t, "SLIT");
	KASSERT(srat && slit);
	/* Three local APIC entries, one x2APIC, three memory ranges. */
	KCHECK_EQ(le32(srat + 4), 48 + 3 * 16 + 24 + 3 * 40);
	e = srat + 48;
	KCHECK(e[0] == 0 && e[1] == 16 && e[2] == 0 && e[3] == 0);
	KCHECK(e[32] == 0 && e[34] == 1 && e[35] == 4); /* the third: node 1, APIC ID 4 */
	e += 48;
	KCHECK(e[0] == 2 && le32(e + 4) == 1 && le32(e + 8) == 300);
	e += 24;
	KCHECK(e[0] == 1 && le32(e + 2) == 0 && le64(e + 8) == 0 && le64(e + 16) == 0x80000000);
	e += 80;
	KCHECK(le32(e + 2) == 1 && le64(e + 8) == 0x100000000ULL && (le32(e + 28) & 1));
	KCHECK_EQ(le64(slit + 36), 2);
	KCHECK(!memcmp(slit + 44, distance, 4));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acpi-XXXXXX");
	KASSERT(mkdtemp(tmpdir));
	KCHECK(iasl_disassembles("srat", srat));
	KCHECK(iasl_disassembles("slit", slit));
	dsl = read_file("slit.dsl", NULL);
	KCHECK(dsl && strstr(dsl, "Localities : 0000000000000002") && strstr(dsl, "0A 15"));
	free(dsl);
	clean_tmpdir();
	/* Distances that make no sense are refused. */
	numa.distance = (const uint8_t[]){ 10, 5, 21, 10 };
	KCHECK_EQ(acpi_build_tables(&(struct acpi_config){ .nr_cpus = 4, .apic_ids = tables_ids,
				    .pm1a_evt_port = 1, .pm1a_cnt_port = 2, .sci_irq = 9,
				    .numa = &numa }, tables_buf, sizeof(tables_buf), TABLES_GPA,
				    &t.info), -EINVAL);
}

int main(void)
{
	return ktest_run_all();
}
