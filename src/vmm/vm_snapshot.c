// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "keel/log.h"
#include "vmm/cpu_state.h"
#include "vmm/vm_snapshot.h"

#define VM_CONFIG_VERSION 1
#define VM_CLOCK_VERSION 1
#define VM_IRQCHIP_VERSION 1
#define VM_PIT_VERSION 1
#define MAX_CONFIG_STRING 4096

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The section `tag` in a version this code reads, or -EINVAL with a reason. */
static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int find_section(struct state_reader *r, const char *tag, uint32_t version,
			struct state_section *s, char *err, size_t errlen)
{
	if (state_find(r, tag, s)) {
		snprintf(err, errlen, "the state lacks %s", tag);
		return -EINVAL;
	}
	return state_check_version(s, 1, version, err, errlen);
}

static void put_string(struct state_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	state_put_bool(w, s != NULL);
	state_put_u32(w, (uint32_t)n);
	state_put_bytes(w, s, n);
}

int vm_config_save(struct machine *m, struct state_writer *w)
{
	const struct vm_config *c = m->cfg;

	state_begin(w, "vm/config", VM_CONFIG_VERSION);
	state_put_u32(w, c->cpus);
	state_put_u64(w, c->memory);
	put_string(w, c->kernel);
	put_string(w, c->initrd);
	put_string(w, c->cmdline);
	put_string(w, c->name);
	state_put_bool(w, c->no_reboot);
	state_end(w);
	vm_resources_save(m, w);
	return 0;
}

static int save_vm(struct machine *m, struct state_writer *w, char *err, size_t errlen)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;

	for (unsigned i = 0; i < 3; i++) {
		memset(&chips[i], 0, sizeof(chips[i]));
		chips[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
		if (ioctl(m->kvm.vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0) {
			snprintf(err, errlen, "KVM_GET_IRQCHIP %u failed: %s", i, strerror(errno));
			return -errno;
		}
	}
	if (ioctl(m->kvm.vm_fd, KVM_GET_PIT2, &pit) < 0) {
		snprintf(err, errlen, "KVM_GET_PIT2 failed: %s", strerror(errno));
		return -errno;
	}
	/* The guest clock as it stood at the pause, and when that was. */
	state_begin(w, "vm/clock", VM_CLOCK_VERSION);
	state_put_u64(w, m->paused_clock.clock);
	state_put_u64(w, m->paused_realtime_ns);
	state_end(w);
	state_begin(w, "vm/irqchip", VM_IRQCHIP_VERSION);
	state_put_bytes(w, chips, sizeof(chips));
	state_end(w);
	state_begin(w, "vm/pit", VM_PIT_VERSION);
	state_put_bytes(w, &pit, sizeof(pit));
	state_end(w);
	return 0;
}

/*
 * Every vCPU's state saved or loaded at once, each on its own parked
 * thread where it has one (vcpus_run_parked): a vCPU's KVM calls are most
 * of a save and a load, and they are on a live migration's downtime.
 */
struct vcpus_job {
	struct machine *m;
	struct state_writer *out; /* save: one writer per vCPU */
	struct state_reader *in;  /* load */
	char (*err)[256];         /* one message per vCPU */
};

static int save_one(struct vcpu *v, void *arg)
{
	struct vcpus_job *j = arg;

	return cpu_state_save(v, &j->m->msr_list, &j->out[v->index], j->err[v->index], sizeof(j->err[0]));
}

static int load_one(struct vcpu *v, void *arg)
{
	struct vcpus_job *j = arg;

	return cpu_state_load(v, j->in, j->err[v->index], sizeof(j->err[0]));
}

/* Runs fn for every vCPU; the first failing vCPU's message in err. */
static int run_vcpus_job(struct machine *m, struct vcpus_job *j, int (*fn)(struct vcpu *, void *),
			 char *err, size_t errlen)
{
	unsigned n = m->nr_vcpus_created;
	int r;

	j->m = m;
	j->err = calloc(n ? n : 1, sizeof(j->err[0]));
	if (!j->err) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = vcpus_run_parked(m->vcpus, n, fn, j);
	for (unsigned i = 0; r && i < n; i++) {
		if (m->vcpus[i].work_result) {
			snprintf(err, errlen, "%s", j->err[i]);
			break;
		}
	}
	free(j->err);
	return r;
}

static int save_vcpus(struct machine *m, struct state_writer *w, char *err, size_t errlen)
{
	unsigned n = m->nr_vcpus_created;
	struct vcpus_job j = { .out = calloc(n ? n : 1, sizeof(*j.out)) };
	int r;

	if (!j.out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		state_writer_init(&j.out[i]);
	r = run_vcpus_job(m, &j, save_one, err, errlen);
	/* The sections in vCPU order, as one writer would have put them. */
	for (unsigned i = 0; i < n; i++) {
		if (!r)
			state_put_bytes(w, j.out[i].buf, j.out[i].len);
		state_writer_free(&j.out[i]);
	}
	free(j.out);
	return r;
}

int vm_state_save(struct machine *m, struct state_writer *w, char *err, size_t errlen)
{
	int r;

	if (!m->paused) {
		snprintf(err, errlen, "the VM must be paused");
		return -EBUSY;
	}
	if (!m->msr_list.index && m->nr_vcpus_created) {
		r = cpu_msr_list_build(&m->msr_list, &m->vcpus[0], err, errlen);
		if (r)
			return r;
	}
	r = vm_config_save(m, w);
	if (!r)
		r = save_vm(m, w, err, errlen);
	if (!r)
		r = save_vcpus(m, w, err, errlen);
	for (unsigned i = 0; !r && i < m->devices.nr; i++) {
		const struct device_entry *d = &m->devices.items[i];

		r = d->ops->save(d->dev, d->name, w);
		if (r)
			snprintf(err, errlen, "%s: cannot save its state: %s", d->name, strerror(-r));
	}
	if (!r && state_writer_error(w)) {
		r = state_writer_error(w);
		snprintf(err, errlen, "cannot build the state: %s", strerror(-r));
	}
	return r;
}

static int get_string(struct state_section *s, char **out)
{
	bool present = state_get_bool(s);
	uint32_t n = state_get_u32(s);

	*out = NULL;
	if (!present)
		return 0;
	if (n > MAX_CONFIG_STRING || !state_section_ok(s))
		return -EBADMSG;
	*out = calloc(1, n + 1);
	if (!*out)
		return -ENOMEM;
	state_get_bytes(s, *out, n);
	/* A NUL inside would silently shorten a path: refuse it. */
	return strlen(*out) == n ? 0 : -EBADMSG;
}

int vm_config_load(struct state_reader *r, struct vm_config *cfg, char **strs,
		   char *err, size_t errlen)
{
	struct state_section s;
	int e = 0;

	if (find_section(r, "vm/config", VM_CONFIG_VERSION, &s, err, errlen))
		return -EINVAL;
	cfg->cpus = state_get_u32(&s);
	cfg->memory = state_get_u64(&s);
	e = get_string(&s, &strs[0]);
	if (!e)
		e = get_string(&s, &strs[1]);
	if (!e)
		e = get_string(&s, &strs[2]);
	if (!e)
		e = get_string(&s, &strs[3]);
	cfg->no_reboot = state_get_bool(&s);
	if (e || state_finish(&s, err, errlen)) {
		snprintf(err, errlen, "vm/config: malformed");
		return -EBADMSG;
	}
	if (cfg->cpus == 0 || cfg->cpus > CONFIG_MAX_CPUS || cfg->memory < CONFIG_MIN_MEMORY ||
	    cfg->memory % (1ULL << 20) || cfg->memory > (1ULL << 46)) {
		snprintf(err, errlen, "vm/config: %u vCPUs and %llu bytes of memory are out of range",
			 cfg->cpus, (unsigned long long)cfg->memory);
		return -EINVAL;
	}
	cfg->kernel = strs[0];
	cfg->initrd = strs[1];
	cfg->cmdline = strs[2] ? strs[2] : "";
	if (strs[3] && !cfg->name_given)
		cfg->name = strs[3];
	return vm_resources_load(r, cfg, err, errlen);
}

static int load_vm(struct machine *m, struct state_reader *r, char *err, size_t errlen)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	struct state_section s;

	if (find_section(r, "vm/irqchip", VM_IRQCHIP_VERSION, &s, err, errlen))
		return -EINVAL;
	state_get_bytes(&s, chips, sizeof(chips));
	if (state_finish(&s, err, errlen))
		return -EBADMSG;
	for (unsigned i = 0; i < 3; i++) {
		if (chips[i].chip_id != i) {
			snprintf(err, errlen, "vm/irqchip: chip %u has id %u", i, chips[i].chip_id);
			return -EINVAL;
		}
		if (ioctl(m->kvm.vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0) {
			snprintf(err, errlen, "KVM_SET_IRQCHIP %u failed: %s", i, strerror(errno));
			return -errno;
		}
	}
	if (find_section(r, "vm/pit", VM_PIT_VERSION, &s, err, errlen))
		return -EINVAL;
	state_get_bytes(&s, &pit, sizeof(pit));
	if (state_finish(&s, err, errlen))
		return -EBADMSG;
	if (ioctl(m->kvm.vm_fd, KVM_SET_PIT2, &pit) < 0) {
		snprintf(err, errlen, "KVM_SET_PIT2 failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int load_devices(struct machine *m, struct state_reader *r, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->devices.nr; i++) {
		const struct device_entry *d = &m->devices.items[i];
		struct state_section s;
		int e;

		if (state_find(r, d->name, &s)) {
			snprintf(err, errlen, "no state for device '%s'", d->name);
			return -EINVAL;
		}
		e = d->ops->load(d->dev, &s, err, errlen);
		if (e)
			return e;
	}
	return 0;
}

/* Guest time continues from the pause plus the wall-clock time since then. */
static int load_clock(struct machine *m, struct state_reader *r, char *err, size_t errlen)
{
	struct kvm_clock_data clock = { 0 };
	struct state_section s;
	uint64_t saved, at, now = realtime_ns();

	if (find_section(r, "vm/clock", VM_CLOCK_VERSION, &s, err, errlen))
		return -EINVAL;
	saved = state_get_u64(&s);
	at = state_get_u64(&s);
	if (state_finish(&s, err, errlen))
		return -EBADMSG;
	clock.clock = saved + (now > at ? now - at : 0);
	if (ioctl(m->kvm.vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		snprintf(err, errlen, "KVM_SET_CLOCK failed: %s", strerror(errno));
		return -errno;
	}
	log_debug("guest clock: %.3f s at the save, advanced by %.3f s of wall-clock time",
		  saved / 1e9, now > at ? (now - at) / 1e9 : 0.0);
	return 0;
}

int vm_state_load(struct machine *m, struct state_reader *r, char *err, size_t errlen)
{
	char tag[STATE_TAG_MAX + 1];
	struct state_section s;
	int e;

	uint64_t t[5];

	*err = 0;
	/* Claimed here: the machine was built from them already. */
	state_find(r, "vm/config", &s);
	state_find(r, "vm/balloon", &s);
	state_find(r, "vm/numa", &s);
	t[0] = mono_us();
	e = load_vm(m, r, err, errlen);
	t[1] = mono_us();
	if (!e) {
		struct vcpus_job j = { .in = r };

		e = run_vcpus_job(m, &j, load_one, err, errlen);
	}
	t[2] = mono_us();
	if (!e)
		e = load_devices(m, r, err, errlen);
	t[3] = mono_us();
	if (!e)
		e = load_clock(m, r, err, errlen);
	t[4] = mono_us();
	if (!e && state_first_unused(r, tag, sizeof(tag))) {
		snprintf(err, errlen, "the state has a section '%s' that this VM has no use for", tag);
		e = -EINVAL;
	}
	for (unsigned i = 0; !e && i < m->nr_vcpus_created; i++) {
		/* The guest was stopped for a while: keep its watchdogs quiet. */
		if (ioctl(m->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			log_debug("vCPU %u: KVM_KVMCLOCK_CTRL failed: %s", i, strerror(errno));
	}
	if (!e)
		log_info("state loaded (ms): irqchip and PIT %.1f, vCPUs %.1f, devices %.1f, clock %.1f",
			 (t[1] - t[0]) / 1e3, (t[2] - t[1]) / 1e3, (t[3] - t[2]) / 1e3,
			 (t[4] - t[3]) / 1e3);
	return e;
}
