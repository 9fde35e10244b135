// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/state.h"
#include "pci/msix.h"

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_VECTOR_MASKED 0x1

static bool vector_masked(const struct msix *m, unsigned v)
{
	return !m->enabled || m->function_masked || (m->table[v].ctrl & MSIX_VECTOR_MASKED);
}

static uint64_t vector_addr(const struct msix *m, unsigned v)
{
	return (uint64_t)m->table[v].addr_hi << 32 | m->table[v].addr_lo;
}

static void deliver(struct msix *m, unsigned v)
{
	if (m->irqfd[v] >= 0) {
		uint64_t one = 1;

		/* EAGAIN means the counter is saturated: an interrupt is due anyway. */
		if (write(m->irqfd[v], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("msix: %s vector %u: irqfd write: %s", m->dev->name, v,
				 strerror(errno));
	} else if (m->chip && m->chip->signal_msi) {
		m->chip->signal_msi(m->chip, vector_addr(m, v), m->table[v].data);
	}
	m->delivered++;
}

static void update_route(struct msix *m, unsigned v)
{
	if (m->irqfd[v] >= 0 && m->chip->irqfd_update)
		m->chip->irqfd_update(m->chip, m->irqfd[v], vector_addr(m, v), m->table[v].data,
				      vector_masked(m, v));
}

/* After anything that may unmask: send what was held back. Lock held. */
static void flush_pending(struct msix *m, unsigned first, unsigned count)
{
	if (!pci_bus_master_enabled(m->dev))
		return;
	for (unsigned v = first; v < first + count; v++) {
		uint64_t bit = 1ULL << (v % 64);

		if ((m->pba[v / 64] & bit) && !vector_masked(m, v)) {
			m->pba[v / 64] &= ~bit;
			deliver(m, v);
		}
	}
}

int msix_init(struct msix *m, struct pci_device *dev, unsigned nr, unsigned bar,
	      uint64_t table_off, uint64_t pba_off)
{
	struct irq_chip *chip = pci_host_irq_chip(dev->host);
	unsigned cap;

	memset(m, 0, sizeof(*m));
	if (!nr || nr > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || !IS_ALIGNED(table_off, 8) ||
	    !IS_ALIGNED(pba_off, 8) || table_off > UINT32_MAX || pba_off > UINT32_MAX)
		return -EINVAL;
	cap = pci_add_capability(dev, PCI_CAP_ID_MSIX, 12);
	if (!cap)
		return -ENOSPC;
	m->dev = dev;
	m->chip = chip;
	m->nr = nr;
	m->cap = cap;
	m->table_off = table_off;
	m->pba_off = pba_off;
	m->table = calloc(nr, sizeof(*m->table));
	m->pba = calloc(msix_pba_size(nr) / 8, sizeof(uint64_t));
	m->irqfd = malloc(nr * sizeof(int));
	if (!m->table || !m->pba || !m->irqfd) {
		msix_destroy(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned v = 0; v < nr; v++) {
		m->table[v].ctrl = MSIX_VECTOR_MASKED;
		m->irqfd[v] = -1;
		if (!chip || !chip->irqfd_add)
			continue;
		m->irqfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->irqfd[v] >= 0 && chip->irqfd_add(chip, m->irqfd[v], 0, 0, true) < 0) {
			close(m->irqfd[v]);
			m->irqfd[v] = -1;
		}
	}
	pci_cfg_write16(dev, cap + 2, (uint16_t)(nr - 1));
	dev->wmask[cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	pci_cfg_write32(dev, cap + 4, (uint32_t)table_off | bar);
	pci_cfg_write32(dev, cap + 8, (uint32_t)pba_off | bar);
	return 0;
}

void msix_destroy(struct msix *m)
{
	if (m->irqfd) {
		for (unsigned v = 0; v < m->nr; v++) {
			if (m->irqfd[v] < 0)
				continue;
			if (m->chip->irqfd_del)
				m->chip->irqfd_del(m->chip, m->irqfd[v]);
			close(m->irqfd[v]);
		}
		pthread_mutex_destroy(&m->lock);
	}
	free(m->table);
	free(m->pba);
	free(m->irqfd);
	memset(m, 0, sizeof(*m));
}

void msix_reset(struct msix *m)
{
	if (!m->dev)
		return;
	pthread_mutex_lock(&m->lock);
	m->enabled = m->function_masked = false;
	m->dev->cfg[m->cap + 3] &= (uint8_t)~((MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8);
	memset(m->pba, 0, msix_pba_size(m->nr));
	for (unsigned v = 0; v < m->nr; v++) {
		m->table[v] = (struct msix_entry){ .ctrl = MSIX_VECTOR_MASKED };
		update_route(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_config_written(struct msix *m, unsigned off, unsigned size)
{
	uint16_t ctrl;

	if (!m->dev || off > m->cap + 3 || off + size <= m->cap + 2)
		return;
	ctrl = pci_cfg_read16(m->dev, m->cap + 2);
	pthread_mutex_lock(&m->lock);
	if (m->enabled != !!(ctrl & MSIX_CTRL_ENABLE) ||
	    m->function_masked != !!(ctrl & MSIX_CTRL_FMASK)) {
		m->enabled = ctrl & MSIX_CTRL_ENABLE;
		m->function_masked = ctrl & MSIX_CTRL_FMASK;
		for (unsigned v = 0; v < m->nr; v++)
			update_route(m, v);
		flush_pending(m, 0, m->nr);
	}
	pthread_mutex_unlock(&m->lock);
}

static void table_rw32(struct msix *m, unsigned v, unsigned word, uint32_t *val, bool write)
{
	uint32_t *f = &(&m->table[v].addr_lo)[word];
	bool was_masked;

	if (!write) {
		*val = *f;
		return;
	}
	was_masked = vector_masked(m, v);
	if (word == 3)
		*f = (*f & ~MSIX_VECTOR_MASKED) | (*val & MSIX_VECTOR_MASKED);
	else
		*f = *val;
	if (word < 3 || was_masked != vector_masked(m, v))
		update_route(m, v);
	if (was_masked && !vector_masked(m, v))
		flush_pending(m, v, 1);
}

void msix_table_access(struct msix *m, uint64_t off, void *data, unsigned size, bool write)
{
	uint32_t w[2] = { 0, 0 };

	if ((size != 4 && size != 8) || !IS_ALIGNED(off, size) ||
	    off + size > msix_table_size(m->nr)) {
		log_guest("msix: %s: %u-byte table %s at 0x%llx ignored", m->dev->name, size,
			  write ? "write" : "read", (unsigned long long)off);
		if (!write)
			memset(data, 0xff, size);
		return;
	}
	if (write)
		memcpy(w, data, size);
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < size / 4; i++) {
		uint64_t o = off + 4 * i;

		table_rw32(m, (unsigned)(o / MSIX_ENTRY_SIZE), (unsigned)(o % MSIX_ENTRY_SIZE) / 4,
			   &w[i], write);
	}
	pthread_mutex_unlock(&m->lock);
	if (!write)
		memcpy(data, w, size);
}

void msix_pba_read(struct msix *m, uint64_t off, void *data, unsigned size)
{
	uint64_t v;

	memset(data, 0, size);
	if ((size != 4 && size != 8) || !IS_ALIGNED(off, size) || off + size > msix_pba_size(m->nr))
		return;
	pthread_mutex_lock(&m->lock);
	v = m->pba[off / 8];
	pthread_mutex_unlock(&m->lock);
	if (off % 8)
		v >>= 32;
	memcpy(data, &v, size);
}

bool msix_enabled(struct msix *m)
{
	bool e;

	pthread_mutex_lock(&m->lock);
	e = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return e;
}

bool msix_notify(struct msix *m, unsigned vector)
{
	bool sent = false;

	if (vector >= m->nr)
		return false;
	pthread_mutex_lock(&m->lock);
	if (vector_masked(m, vector) || !pci_bus_master_enabled(m->dev)) {
		m->pba[vector / 64] |= 1ULL << (vector % 64);
	} else {
		deliver(m, vector);
		sent = true;
	}
	pthread_mutex_unlock(&m->lock);
	return sent;
}

void msix_save(struct msix *m, struct state_writer *w)
{
	pthread_mutex_lock(&m->lock);
	state_put_u32(w, m->nr);
	state_put_bool(w, m->enabled);
	state_put_bool(w, m->function_masked);
	for (unsigned v = 0; v < m->nr; v++) {
		state_put_u32(w, m->table[v].addr_lo);
		state_put_u32(w, m->table[v].addr_hi);
		state_put_u32(w, m->table[v].data);
		state_put_u32(w, m->table[v].ctrl);
	}
	for (unsigned i = 0; i < msix_pba_size(m->nr) / 8; i++)
		state_put_u64(w, m->pba[i]);
	pthread_mutex_unlock(&m->lock);
}

int msix_read_saved(const struct msix *m, struct state_section *s, struct msix_saved *out,
		    char *err, size_t errlen)
{
	unsigned words = (unsigned)(msix_pba_size(m->nr) / 8);

	memset(out, 0, sizeof(*out));
	out->nr = state_get_u32(s);
	out->enabled = state_get_bool(s);
	out->function_masked = state_get_bool(s);
	if (out->nr != m->nr) {
		snprintf(err, errlen, "MSI-X with %u vectors, this device has %u", out->nr, m->nr);
		return -EINVAL;
	}
	out->table = calloc(m->nr, sizeof(*out->table));
	out->pba = calloc(words, sizeof(uint64_t));
	if (!out->table || !out->pba) {
		msix_saved_free(out);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned v = 0; v < m->nr; v++) {
		out->table[v].addr_lo = state_get_u32(s);
		out->table[v].addr_hi = state_get_u32(s);
		out->table[v].data = state_get_u32(s);
		out->table[v].ctrl = state_get_u32(s);
		/* Only the mask bit of vector control is writable. */
		if (out->table[v].ctrl & ~MSIX_VECTOR_MASKED) {
			snprintf(err, errlen, "MSI-X vector %u has control bits 0x%x", v, out->table[v].ctrl);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < words; i++)
		out->pba[i] = state_get_u64(s);
	if (m->nr % 64 && (out->pba[words - 1] >> (m->nr % 64))) {
		snprintf(err, errlen, "MSI-X pending bits beyond vector %u", m->nr - 1);
		return -EINVAL;
	}
	return 0;
}

void msix_apply_saved(struct msix *m, const struct msix_saved *in)
{
	pthread_mutex_lock(&m->lock);
	m->enabled = in->enabled;
	m->function_masked = in->function_masked;
	memcpy(m->table, in->table, m->nr * sizeof(*m->table));
	memcpy(m->pba, in->pba, msix_pba_size(m->nr));
	for (unsigned v = 0; v < m->nr; v++)
		update_route(m, v);
	pthread_mutex_unlock(&m->lock);
}

void msix_saved_free(struct msix_saved *s)
{
	free(s->table);
	free(s->pba);
	s->table = NULL;
	s->pba = NULL;
}
