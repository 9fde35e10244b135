// SPDX-License-Identifier: Apache-2.0
/*
 * DSDT: the sleep state the PM1 control block knows (\_S5) and the ISA
 * devices, so Linux's PNP layer binds 8250_pnp, rtc_cmos and i8042 to the
 * resources they really use. The power button is the fixed-feature one
 * (FADT PWR_BUTTON clear), which Linux exposes as LNXPWRBN by itself.
 *
 * No PNP0F13 (PS/2 mouse) is listed: Linux's i8042 then skips the AUX
 * port probe altogether ("PS/2 appears to have AUX port disabled").
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi_internal.h"
#include "acpi/aml.h"

#define DSDT_REVISION 2 /* 64-bit integers */

static void isa_device(struct aml *a, const char *name, const char *hid, unsigned uid)
{
	aml_device(a, name);
	aml_name(a, "_HID");
	aml_eisaid(a, hid);
	if (uid) {
		aml_name(a, "_UID");
		aml_int(a, uid);
	}
	aml_name(a, "_CRS");
	aml_resource_template(a);
}

static void build_body(const struct acpi_config *cfg, struct aml *a)
{
	/* \_S5: PM1a and PM1b SLP_TYP values, then two reserved entries. */
	aml_name(a, "\\_S5");
	aml_package(a);
	aml_int(a, cfg->s5_slp_typ);
	aml_int(a, cfg->s5_slp_typ);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_end(a);

	aml_scope(a, "\\_SB");
	if (cfg->com1_port) {
		isa_device(a, "COM1", "PNP0501", 1);
		aml_io(a, cfg->com1_port, cfg->com1_port, 1, 8);
		aml_irq_noflags(a, cfg->com1_irq);
		aml_end(a); /* _CRS */
		aml_end(a); /* COM1 */
	}
	if (cfg->rtc_port) {
		isa_device(a, "RTC", "PNP0B00", 0);
		aml_io(a, cfg->rtc_port, cfg->rtc_port, 1, 2);
		aml_irq_noflags(a, cfg->rtc_irq);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->kbd_data_port) {
		isa_device(a, "KBD", "PNP0303", 0);
		aml_io(a, cfg->kbd_data_port, cfg->kbd_data_port, 1, 1);
		aml_io(a, cfg->kbd_cmd_port, cfg->kbd_cmd_port, 1, 1);
		aml_irq_noflags(a, cfg->kbd_irq);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->pci)
		acpi_dsdt_pci(cfg->pci, a);
	aml_end(a); /* \_SB */
}

int acpi_build_dsdt(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa)
{
	struct aml a;
	uint8_t *t;
	size_t len;
	int r;

	aml_init(&a);
	build_body(cfg, &a);
	r = aml_error(&a);
	if (r) {
		aml_free(&a);
		return r == -ENOMEM ? r : -EINVAL;
	}
	len = ACPI_HEADER_LEN + a.len;
	r = acpi_buf_take(b, len, 8, &t, gpa);
	if (!r) {
		acpi_header(t, "DSDT", (uint32_t)len, DSDT_REVISION);
		memcpy(t + ACPI_HEADER_LEN, a.buf, a.len);
		acpi_checksum(t, len, 9);
	}
	aml_free(&a);
	return r;
}
