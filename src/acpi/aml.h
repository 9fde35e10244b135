/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small AML (ACPI Machine Language) encoder, ACPI 6.x chapter 20, for the
 * DSDT and later SSDTs. Objects are appended to a growing byte buffer in
 * the order the ASL would list them; the constructs that enclose others
 * (Scope, Device, Method, Package, Buffer, ResourceTemplate) are opened by
 * their function and closed by aml_end(), which then writes the PkgLength
 * (1 to 4 bytes) and, for a Package, its element count.
 *
 *   aml_scope(a, "\\_SB_");
 *     aml_device(a, "COM1");
 *       aml_name(a, "_HID"); aml_eisaid(a, "PNP0501");
 *       aml_name(a, "_CRS"); aml_resource_template(a);
 *         aml_io(a, 0x3f8, 0x3f8, 1, 8); aml_irq_noflags(a, 4);
 *       aml_end(a);
 *     aml_end(a);
 *   aml_end(a);
 *
 * Errors (allocation, a malformed name, an end without a begin, too deep)
 * are sticky: every later call does nothing and aml_error() reports the
 * first one, so a builder checks once at the end.
 */
#ifndef KEEL_ACPI_AML_H
#define KEEL_ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml_frame {
	size_t start;      /* where the PkgLength goes */
	unsigned elements; /* Package: data objects added directly inside */
	uint8_t kind;
};

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* 0 or the first -errno */
	struct aml_frame frames[AML_MAX_DEPTH];
	unsigned depth;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* 0, or -ENOMEM / -EINVAL (bad name or nesting), or -EPROTO (still open). */
int aml_error(const struct aml *a);

/* Named objects. aml_name() is followed by exactly one data object. */
void aml_name(struct aml *a, const char *name);
void aml_scope(struct aml *a, const char *name);
void aml_device(struct aml *a, const char *name);
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized);
/* Closes the innermost open construct. */
void aml_end(struct aml *a);

/* Data objects (each counts as one element inside a Package). */
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0501"): three capitals and four hex digits, compressed. */
void aml_eisaid(struct aml *a, const char *id);
/* A NameString used as a reference (in a Package, or as a TermArg). */
void aml_name_ref(struct aml *a, const char *name);
void aml_package(struct aml *a);
void aml_buffer(struct aml *a, const uint8_t *bytes, size_t len);

/* Statements inside a Method. */
void aml_return(struct aml *a); /* followed by one TermArg */

/* A Buffer of resource descriptors; aml_end() adds the end tag. */
void aml_resource_template(struct aml *a);
/* IO(Decode16, min, max, align, len) */
void aml_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags(){irq}: ISA edge, active high, exclusive. irq < 16. */
void aml_irq_noflags(struct aml *a, uint8_t irq);
/* Memory32Fixed(ReadWrite or ReadOnly, base, len) */
void aml_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable);
/* Interrupt(ResourceConsumer, level/edge, high/low, shared?){gsi} */
void aml_interrupt(struct aml *a, uint32_t gsi, bool level, bool active_low, bool shared);

/*
 * Address space descriptors, for a PCI root bridge's _CRS: WordBusNumber,
 * WordIO/DWordIO, DWordMemory, QWordMemory (ResourceProducer, fixed
 * min/max, positive decode; granularity 0, no translation).
 */
enum aml_space {
	AML_SPACE_MEMORY = 0,
	AML_SPACE_IO = 1,
	AML_SPACE_BUS = 2,
};
void aml_word_space(struct aml *a, enum aml_space space, uint16_t min, uint16_t max);
void aml_dword_space(struct aml *a, enum aml_space space, uint32_t min, uint32_t max,
		     bool cacheable);
void aml_qword_space(struct aml *a, enum aml_space space, uint64_t min, uint64_t max,
		     bool cacheable);

/* The bytes of a PkgLength for a package whose contents are `len` bytes. */
size_t aml_pkglength_encode(size_t len, uint8_t out[4]);

#endif
