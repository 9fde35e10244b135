// SPDX-License-Identifier: Apache-2.0
/*
 * SRAT and SLIT (ACPI 6.3, 5.2.16 and 5.2.17): which NUMA node (proximity
 * domain) each vCPU and each range of guest RAM belongs to, and how far
 * apart the nodes are. Linux reads its whole NUMA topology from these.
 */
#include <errno.h>
#include <stdbool.h>

#include "acpi/acpi_internal.h"

#define SRAT_REVISION 3
#define SLIT_REVISION 1
#define SRAT_HEADER_LEN (ACPI_HEADER_LEN + 12) /* reserved u32 (1) and u64 */
#define SLIT_HEADER_LEN (ACPI_HEADER_LEN + 8)

enum { SRAT_LAPIC = 0, SRAT_MEMORY = 1, SRAT_X2APIC = 2 };
#define SRAT_LAPIC_LEN 16
#define SRAT_MEMORY_LEN 40
#define SRAT_X2APIC_LEN 24
#define SRAT_ENABLED 1

#define DISTANCE_LOCAL 10

/* x2APIC affinity entries for IDs an 8-bit field cannot hold. */
static bool needs_x2apic(uint32_t apic_id)
{
	return apic_id > ACPI_XAPIC_MAX_ID;
}

int acpi_check_numa(const struct acpi_config *cfg)
{
	const struct acpi_numa_config *n = cfg->numa;

	if (!n->nr_nodes || n->nr_nodes > ACPI_NUMA_MAX_NODES || !n->cpu_node || !n->nr_mem ||
	    !n->mem)
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_cpus; i++)
		if (n->cpu_node[i] >= n->nr_nodes)
			return -EINVAL;
	for (unsigned i = 0; i < n->nr_mem; i++)
		if (n->mem[i].node >= n->nr_nodes || !n->mem[i].size ||
		    n->mem[i].base + n->mem[i].size < n->mem[i].base)
			return -EINVAL;
	for (unsigned i = 0; n->distance && i < n->nr_nodes; i++)
		for (unsigned j = 0; j < n->nr_nodes; j++) {
			uint8_t d = n->distance[i * n->nr_nodes + j];

			/* 5.2.17: 10 is a node to itself, other nodes are farther. */
			if (i == j ? d != DISTANCE_LOCAL : d <= DISTANCE_LOCAL)
				return -EINVAL;
		}
	return 0;
}

int acpi_build_srat(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa)
{
	const struct acpi_numa_config *n = cfg->numa;
	uint32_t len = SRAT_HEADER_LEN + n->nr_mem * SRAT_MEMORY_LEN;
	uint8_t *t, *e;
	int r;

	for (unsigned i = 0; i < cfg->nr_cpus; i++)
		len += needs_x2apic(cfg->apic_ids[i]) ? SRAT_X2APIC_LEN : SRAT_LAPIC_LEN;
	r = acpi_buf_take(b, len, 8, &t, gpa);
	if (r)
		return r;
	acpi_header(t, "SRAT", len, SRAT_REVISION);
	acpi_put32(t + ACPI_HEADER_LEN, 1); /* reserved, 1 for compatibility */
	e = t + SRAT_HEADER_LEN;
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		uint32_t node = n->cpu_node[i];

		if (needs_x2apic(cfg->apic_ids[i])) {
			e[0] = SRAT_X2APIC;
			e[1] = SRAT_X2APIC_LEN;
			acpi_put32(e + 4, node);
			acpi_put32(e + 8, cfg->apic_ids[i]);
			acpi_put32(e + 12, SRAT_ENABLED);
			e += SRAT_X2APIC_LEN;
		} else {
			e[0] = SRAT_LAPIC;
			e[1] = SRAT_LAPIC_LEN;
			e[2] = (uint8_t)node;         /* proximity domain bits 7:0 */
			e[3] = (uint8_t)cfg->apic_ids[i];
			acpi_put32(e + 4, SRAT_ENABLED);
			e[9] = (uint8_t)(node >> 8);  /* bits 31:8 */
			e[10] = (uint8_t)(node >> 16);
			e[11] = (uint8_t)(node >> 24);
			e += SRAT_LAPIC_LEN;
		}
	}
	for (unsigned i = 0; i < n->nr_mem; i++) {
		e[0] = SRAT_MEMORY;
		e[1] = SRAT_MEMORY_LEN;
		acpi_put32(e + 2, n->mem[i].node);
		acpi_put64(e + 8, n->mem[i].base);
		acpi_put64(e + 16, n->mem[i].size);
		acpi_put32(e + 28, SRAT_ENABLED);
		e += SRAT_MEMORY_LEN;
	}
	acpi_checksum(t, len, 9);
	return (size_t)(e - t) == len ? 0 : -EINVAL;
}

int acpi_build_slit(const struct acpi_numa_config *n, struct acpi_buf *b, uint64_t *gpa)
{
	uint32_t len = SLIT_HEADER_LEN + n->nr_nodes * n->nr_nodes;
	uint8_t *t;
	int r = acpi_buf_take(b, len, 8, &t, gpa);

	if (r)
		return r;
	acpi_header(t, "SLIT", len, SLIT_REVISION);
	acpi_put64(t + ACPI_HEADER_LEN, n->nr_nodes);
	for (unsigned i = 0; i < n->nr_nodes * n->nr_nodes; i++)
		t[SLIT_HEADER_LEN + i] = n->distance[i];
	acpi_checksum(t, len, 9);
	return 0;
}
