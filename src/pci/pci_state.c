// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keel/compiler.h"
#include "pci/pci_state.h"

#define PCI_HOST_STATE_VERSION 1
#define NAME_MAX_LEN 31

void pci_function_save(const struct pci_device *dev, struct state_writer *w)
{
	uint8_t cfg[PCI_STATE_CFG_BYTES];

	for (unsigned o = 0; o < sizeof(cfg); o++)
		cfg[o] = __atomic_load_n(&dev->cfg[o], __ATOMIC_ACQUIRE);
	state_put_u8(w, (uint8_t)dev->slot);
	state_put_bool(w, __atomic_load_n(&dev->intx_level, __ATOMIC_ACQUIRE));
	state_put_bytes(w, cfg, sizeof(cfg));
}

void pci_function_read(struct state_section *s, struct pci_saved_function *f)
{
	f->slot = state_get_u8(s);
	f->intx_level = state_get_bool(s);
	state_get_bytes(s, f->cfg, sizeof(f->cfg));
}

/* Bits of config byte o that only the device itself sets, never the guest. */
static uint8_t read_only_mask(const struct pci_device *dev, unsigned o)
{
	uint8_t m = (uint8_t)~(dev->wmask[o] | dev->w1cmask[o]);

	/* The interrupt status bit follows the device's INTx level. */
	if (o == PCI_STATUS)
		m &= (uint8_t)~PCI_STATUS_INTERRUPT;
	return m;
}

int pci_function_check(const struct pci_device *dev, const struct pci_saved_function *f,
		       char *err, size_t errlen)
{
	if (f->slot != dev->slot) {
		snprintf(err, errlen, "saved in PCI slot %u, this device is in slot %u", f->slot,
			 dev->slot);
		return -EINVAL;
	}
	for (unsigned o = 0; o < PCI_STATE_CFG_BYTES; o++) {
		uint8_t mine = __atomic_load_n(&dev->cfg[o], __ATOMIC_ACQUIRE);

		if (!((f->cfg[o] ^ mine) & read_only_mask(dev, o)))
			continue;
		if (o < 4)
			snprintf(err, errlen, "the saved PCI function is %04x:%04x, this one %04x:%04x",
				 f->cfg[0] | f->cfg[1] << 8, f->cfg[2] | f->cfg[3] << 8,
				 pci_cfg_read16(dev, PCI_VENDOR_ID), pci_cfg_read16(dev, PCI_DEVICE_ID));
		else
			snprintf(err, errlen, "PCI config byte 0x%02x is 0x%02x where this device has "
				 "0x%02x: it is not configured like the saved one", o, f->cfg[o], mine);
		return -EINVAL;
	}
	return 0;
}

void pci_function_apply(struct pci_device *dev, const struct pci_saved_function *f)
{
	pci_device_load_config(dev, f->cfg, PCI_STATE_CFG_BYTES);
	pci_set_intx(dev, f->intx_level);
}

/* --- the host bridge's section --------------------------------------------- */

static int host_save(void *opaque, const char *name, struct state_writer *w)
{
	struct pci_host *host = opaque;

	state_begin(w, name, PCI_HOST_STATE_VERSION);
	state_put_u32(w, pci_host_get_cf8(host));
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		const struct pci_device *d = pci_host_device(host, slot);
		size_t n = d ? strnlen(d->name, NAME_MAX_LEN) : 0;

		state_put_bool(w, d != NULL);
		if (!d)
			continue;
		state_put_u16(w, pci_cfg_read16(d, PCI_VENDOR_ID));
		state_put_u16(w, pci_cfg_read16(d, PCI_DEVICE_ID));
		state_put_u8(w, (uint8_t)n);
		state_put_bytes(w, d->name, n);
	}
	pci_function_save(pci_host_device(host, 0), w);
	state_end(w);
	return state_writer_error(w);
}

struct saved_slot {
	bool present;
	uint16_t vendor, device;
	char name[NAME_MAX_LEN + 1];
};

static void describe(char *buf, size_t len, bool present, const char *name, uint16_t vendor,
		     uint16_t device)
{
	if (present)
		snprintf(buf, len, "%s (%04x:%04x)", name, vendor, device);
	else
		snprintf(buf, len, "nothing");
}

/* Every slot holds the same function as in the saved VM. */
static int check_slots(struct pci_host *host, const struct saved_slot *saved, char *err, size_t errlen)
{
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		const struct saved_slot *s = &saved[slot];
		const struct pci_device *d = pci_host_device(host, slot);
		char a[64], b[64];

		if (!s->present && !d)
			continue;
		if (s->present && d && s->vendor == pci_cfg_read16(d, PCI_VENDOR_ID) &&
		    s->device == pci_cfg_read16(d, PCI_DEVICE_ID))
			continue;
		describe(a, sizeof(a), s->present, s->name, s->vendor, s->device);
		describe(b, sizeof(b), d != NULL, d ? d->name : "", d ? pci_cfg_read16(d, PCI_VENDOR_ID) : 0,
			 d ? pci_cfg_read16(d, PCI_DEVICE_ID) : 0);
		snprintf(err, errlen, "PCI slot %u: the saved VM has %s there, this VM has %s: give it "
			 "the saved VM's --disk, --net and --rng options, in the same order", slot, a, b);
		return -EINVAL;
	}
	return 0;
}

static int host_load(void *opaque, struct state_section *s, char *err, size_t errlen)
{
	struct pci_host *host = opaque;
	struct saved_slot slots[PCI_MAX_SLOTS];
	struct pci_saved_function bridge;
	char why[300];
	uint32_t cf8;
	int r;

	r = state_check_version(s, 1, PCI_HOST_STATE_VERSION, err, errlen);
	if (r)
		return r;
	memset(slots, 0, sizeof(slots));
	cf8 = state_get_u32(s);
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		struct saved_slot *sl = &slots[slot];
		uint8_t n;

		sl->present = state_get_bool(s);
		if (!sl->present)
			continue;
		sl->vendor = state_get_u16(s);
		sl->device = state_get_u16(s);
		n = state_get_u8(s);
		if (n > NAME_MAX_LEN) {
			snprintf(err, errlen, "%s: a device name of %u bytes", s->tag, n);
			return -EBADMSG;
		}
		state_get_bytes(s, sl->name, n);
		/* Printed in messages: nothing but printable ASCII. */
		for (unsigned i = 0; i < n; i++)
			if (sl->name[i] < 0x20 || sl->name[i] > 0x7e)
				sl->name[i] = '?';
	}
	pci_function_read(s, &bridge);
	r = state_finish(s, err, errlen);
	if (r)
		return r;
	r = check_slots(host, slots, why, sizeof(why));
	if (!r)
		r = pci_function_check(pci_host_device(host, 0), &bridge, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "%s: %s", s->tag, why);
		return r;
	}
	pci_host_set_cf8(host, cf8);
	pci_function_apply(pci_host_device(host, 0), &bridge);
	return 0;
}

const struct device_ops pci_host_device_ops = {
	.type = "pci-host",
	.state_version = PCI_HOST_STATE_VERSION,
	.save = host_save,
	.load = host_load,
};
