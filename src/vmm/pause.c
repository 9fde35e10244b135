// SPDX-License-Identifier: Apache-2.0
/*
 * Pause and resume. Guest time stops while the VM is paused, as QEMU's
 * `stop` does: the kvmclock value read at pause (KVM_GET_CLOCK) is written
 * back at resume (KVM_SET_CLOCK), so the guest's monotonic and wall clocks
 * continue from where they stood and never jump backwards; the guest's
 * wall clock is behind by the pause's length afterwards (NTP, or the
 * guest's own RTC read, corrects it). The ACPI PM timer stops with it.
 * KVM_KVMCLOCK_CTRL tells each vCPU's kvmclock page that the host stopped
 * it, so the guest's soft-lockup and RCU-stall watchdogs do not take the
 * pause for a hang. The CMOS RTC keeps the host's wall-clock time (it is
 * the guest's reference for the date) and its timer events queue up as
 * flags, delivered once the vCPUs run; console input waits in the UART's
 * FIFO or the console's buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "keel/log.h"
#include "vmm/machine.h"

/* A vCPU inside a device handler finishes it first; none should take this long. */
#define PAUSE_TIMEOUT_MS 5000

static void pause_devices(struct machine *m)
{
	for (unsigned i = 0; i < m->devices.nr; i++) {
		const struct device_entry *d = &m->devices.items[i];

		if (d->ops->pause)
			d->ops->pause(d->dev);
	}
}

static void resume_devices(struct machine *m)
{
	for (unsigned i = m->devices.nr; i-- > 0;) {
		const struct device_entry *d = &m->devices.items[i];

		if (d->ops->resume)
			d->ops->resume(d->dev);
	}
}

static int kvmclock_stopped(struct vcpu *v, void *arg)
{
	/* EINVAL: this vCPU's guest has not enabled kvmclock; nothing to tell. */
	if (ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_warn("vCPU %u: KVM_KVMCLOCK_CTRL failed: %s", v->index, strerror(errno));
	return 0;
}

int machine_pause(struct machine *m, char *err, size_t errlen)
{
	struct timespec now;
	int r;

	if (m->paused)
		return 0;
	r = vcpus_pause(m->vcpus, m->nr_vcpus_created, PAUSE_TIMEOUT_MS);
	if (r) {
		snprintf(err, errlen, "the vCPUs did not stop within %u ms", PAUSE_TIMEOUT_MS);
		return r;
	}
	/* On the parked threads, all at once: a pause is on a migration's downtime. */
	vcpus_run_parked(m->vcpus, m->nr_vcpus_created, kvmclock_stopped, NULL);
	memset(&m->paused_clock, 0, sizeof(m->paused_clock));
	if (ioctl(m->kvm.vm_fd, KVM_GET_CLOCK, &m->paused_clock) < 0) {
		r = -errno;
		vcpus_resume(m->vcpus, m->nr_vcpus_created);
		snprintf(err, errlen, "KVM_GET_CLOCK failed: %s", strerror(-r));
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	m->paused_realtime_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	pause_devices(m);
	m->paused = true;
	return 0;
}

int machine_resume(struct machine *m, char *err, size_t errlen)
{
	struct kvm_clock_data clock = { .clock = m->paused_clock.clock };

	if (!m->paused)
		return 0;
	if (ioctl(m->kvm.vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		snprintf(err, errlen, "KVM_SET_CLOCK failed: %s", strerror(errno));
		return -errno;
	}
	resume_devices(m);
	m->paused = false;
	vcpus_resume(m->vcpus, m->nr_vcpus_created);
	return 0;
}

void machine_drop_pause(struct machine *m)
{
	if (!m->paused)
		return;
	resume_devices(m);
	m->paused = false;
}

void machine_start_devices(struct machine *m)
{
	resume_devices(m);
}
