// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "hw/acpi_pm.h"
#include "hw/cmos_rtc.h"
#include "hw/i8042.h"
#include "hw/reset_ctl.h"
#include "hw/uart_16550.h"
#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/thread.h"
#include "pci/pci.h"
#include "pci/pci_acpi.h"
#include "pci/pci_state.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtio_state.h"
#include "vmm/console.h"
#include "vmm/layout.h"
#include "vmm/machine.h"
#include "vmm/migration.h"
#include "vmm/resources.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm_snapshot.h"

#define FAIL(code, ...)                                  \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -(code);                          \
	} while (0)

/* PS/2 keyboard and mouse lines: wired even with no keyboard, as on a PC. */
#define KBD_IRQ 1
#define AUX_IRQ 12
/* The POST-code port: Linux writes it as an I/O delay; a sink saves log noise. */
#define POST_PORT 0x80

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

enum vm_state machine_state(const struct machine *m)
{
	return (enum vm_state)atomic_load(&m->state);
}

void machine_set_state(struct machine *m, enum vm_state s)
{
	enum vm_state old = (enum vm_state)atomic_exchange(&m->state, (int)s);

	if (old != s)
		log_debug("VM state: %s -> %s", vm_state_name(old), vm_state_name(s));
}

static void on_stop_request(struct vm_events *ev, enum vm_stop_reason why)
{
	struct machine *m = container_of(ev, struct machine, events);
	int expected = VM_STOP_NONE;

	if (atomic_compare_exchange_strong(&m->stop_reason, &expected, (int)why))
		event_loop_stop(&m->loop);
}

void machine_request_stop(struct machine *m, enum vm_stop_reason why)
{
	on_stop_request(&m->events, why);
}

/* Ctrl-A x on a stdio console: the operator ends the VM on purpose. */
static void on_console_quit(void *opaque)
{
	struct machine *m = opaque;

	log_info("quit from the console");
	on_stop_request(&m->events, VM_STOP_QUIT);
}

static void on_host_signal(struct event_handler *h, uint32_t events)
{
	struct machine *m = container_of(h, struct machine, signal_handler);
	struct signalfd_siginfo si;

	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (atomic_load(&m->stop_reason) == VM_STOP_NONE)
		m->stop_signal = (int)si.ssi_signo;
	log_info("stopping the VM on signal %d (%s)", si.ssi_signo, strsignal((int)si.ssi_signo));
	on_stop_request(&m->events, VM_STOP_HOST);
}

/* Reads a whole file into memory; for the kernel and initrd. */
static int read_file(const char *flag, const char *path, uint8_t **out, size_t *len,
		     char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		FAIL(errno, "%s %s: %s", flag, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		FAIL(EINVAL, "%s %s: not a regular file", flag, path);
	}
	/* Mapped, not copied: the pages leave our memory once the guest has them. */
	buf = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (buf == MAP_FAILED)
		FAIL(errno, "%s %s: cannot map it: %s", flag, path, strerror(errno));
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static void unmap_file(uint8_t **buf, size_t *len)
{
	if (*buf)
		munmap(*buf, *len);
	*buf = NULL;
	*len = 0;
}

/* The kernel and initrd exist and the kernel is a bzImage we can boot. */
static int check_files(struct machine *m, char *err, size_t errlen)
{
	struct bzimage_info info;
	char why[256];
	int r;

	r = read_file("--kernel", m->cfg->kernel, &m->kernel, &m->kernel_len, err, errlen);
	if (r)
		return r;
	r = bzimage_parse(m->kernel, m->kernel_len, &info, why, sizeof(why));
	if (r)
		snprintf(err, errlen, "--kernel %s: %s", m->cfg->kernel, why);
	unmap_file(&m->kernel, &m->kernel_len);
	if (!r && m->cfg->initrd) {
		r = read_file("--initrd", m->cfg->initrd, &m->initrd, &m->initrd_len, err, errlen);
		unmap_file(&m->initrd, &m->initrd_len);
	}
	return r;
}

static int build_acpi(struct machine *m, uint64_t *rsdp, char *err, size_t errlen)
{
	uint32_t apic_ids[CONFIG_MAX_CPUS];
	uint8_t *buf = guest_mem_ptr(&m->ram.mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	struct acpi_tables_info info;
	struct acpi_pci_config apci;
	struct acpi_config acfg;
	struct numa_acpi numa;
	int r;

	if (!buf)
		FAIL(EFAULT, "no guest RAM for the ACPI tables");
	acpi_config_default(&acfg);
	for (unsigned i = 0; i < m->cfg->cpus; i++)
		apic_ids[i] = cpu_topology_apic_id(&m->topo, i);
	acfg.nr_cpus = m->cfg->cpus;
	acfg.apic_ids = apic_ids;
	pci_host_acpi_config(m->pci, &apci);
	acfg.pci = &apci;
	if (m->numa.nr_nodes) {
		numa_acpi_config(&m->numa, m->cfg->cpus, &m->ram, &numa);
		acfg.numa = &numa.cfg;
	}
	r = acpi_build_tables(&acfg, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &info);
	if (r < 0)
		FAIL(-r, "cannot build the ACPI tables: %s", strerror(-r));
	*rsdp = info.rsdp_gpa;
	return 0;
}

/* Writes kernel, initrd, command line, e820, ACPI and page tables into RAM. */
static int load_guest(struct machine *m, struct boot_linux_result *boot, char *err, size_t errlen)
{
	struct e820_entry e820[8];
	struct boot_linux_params p = {
		.cmdline = m->cfg->cmdline,
		.e820 = e820,
		.nr_e820 = guest_ram_e820(m->ram.below_4g, m->ram.above_4g, e820),
	};
	int r;

	r = build_acpi(m, &p.rsdp_addr, err, errlen);
	if (r)
		return r;
	r = read_file("--kernel", m->cfg->kernel, &m->kernel, &m->kernel_len, err, errlen);
	if (!r && m->cfg->initrd)
		r = read_file("--initrd", m->cfg->initrd, &m->initrd, &m->initrd_len, err, errlen);
	if (!r) {
		char why[256];

		p.kernel = m->kernel;
		p.kernel_len = m->kernel_len;
		p.initrd = m->initrd;
		p.initrd_len = m->initrd_len;
		r = boot_linux_load(&m->ram.mem, &p, boot, why, sizeof(why));
		if (r)
			snprintf(err, errlen, "--kernel %s: %s", m->cfg->kernel, why);
	}
	unmap_file(&m->kernel, &m->kernel_len);
	unmap_file(&m->initrd, &m->initrd_len);
	return r;
}

static void uart_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct machine *m = opaque;

	console_write(m->console, buf, len);
}

static void uart_rx_ready(void *opaque)
{
	struct machine *m = opaque;

	console_rx_ready(m->console);
}

static const struct uart_16550_ops com1_ops = {
	.tx = uart_tx,
	.rx_ready = uart_rx_ready,
};

static void post_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	memset(data, 0, size);
}

static void post_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
}

static const struct bus_ops post_ops = { .read = post_read, .write = post_write };

static struct irq_line isa_irq(struct machine *m, uint32_t irq)
{
	return (struct irq_line){ .chip = &m->kvm.chip, .gsi = irq };
}

static int create_devices(struct machine *m, char *err, size_t errlen)
{
	m->com1 = uart_16550_create(&m->pio, UART_COM1_PORT, isa_irq(m, UART_COM1_IRQ), &com1_ops, m);
	if (!m->com1)
		FAIL(errno, "cannot create the COM1 UART: %s", strerror(errno));
	m->rtc = cmos_rtc_create(&m->pio, isa_irq(m, CMOS_RTC_IRQ), &m->loop);
	if (!m->rtc)
		FAIL(errno, "cannot create the CMOS RTC: %s", strerror(errno));
	m->kbc = i8042_create(&m->pio, isa_irq(m, KBD_IRQ), isa_irq(m, AUX_IRQ), &m->events);
	if (!m->kbc)
		FAIL(errno, "cannot create the i8042 controller: %s", strerror(errno));
	m->reset_ctl = reset_ctl_create(&m->pio, &m->events);
	if (!m->reset_ctl)
		FAIL(errno, "cannot create the reset control ports: %s", strerror(errno));
	m->acpi_pm = acpi_pm_create(&m->pio, isa_irq(m, ACPI_SCI_IRQ), &m->events);
	if (!m->acpi_pm)
		FAIL(errno, "cannot create the ACPI PM registers: %s", strerror(errno));
	if (bus_register(&m->pio, POST_PORT, 1, &post_ops, NULL, "post"))
		FAIL(EEXIST, "cannot register the POST port");
	/* The names are the snapshot's section tags: keep them stable. */
	if (device_list_add(&m->devices, "com1", &uart_16550_device_ops, m->com1) ||
	    device_list_add(&m->devices, "rtc", &cmos_rtc_device_ops, m->rtc) ||
	    device_list_add(&m->devices, "i8042", &i8042_device_ops, m->kbc) ||
	    device_list_add(&m->devices, "reset-control", &reset_ctl_device_ops, m->reset_ctl) ||
	    device_list_add(&m->devices, "acpi-pm", &acpi_pm_device_ops, m->acpi_pm))
		FAIL(EEXIST, "cannot list the platform devices");
	console_attach_uart(m->console, m->com1);
	console_set_quit_handler(m->console, on_console_quit, m);
	return 0;
}

/* The 64-bit PCI window starts above RAM, on a 1 GiB boundary. */
static uint64_t mmio64_base(const struct machine *m)
{
	return ALIGN_UP(LAYOUT_RAM_ABOVE_4G_START + m->ram.above_4g, LAYOUT_MMIO64_ALIGN);
}

/* "virtio-blk0", ...: the device-list name is the device's state tag. */
static int list_virtio(struct machine *m, const char *kind, unsigned i, const struct device_ops *ops,
		       struct virtio_dev *vdev, char *err, size_t errlen)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%u", kind, i);
	if (device_list_add(&m->devices, name, ops, vdev))
		FAIL(ENOSPC, "cannot list device %s", name);
	return 0;
}

/*
 * The PCI host bridge and the virtio devices. reset_ctl must exist first:
 * the host takes its 0xcf9 byte into the 0xcf8-0xcff config ports.
 */
static int create_pci_devices(struct machine *m, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	int r;
	struct pci_host_config pc = {
		.mmio = &m->mmio,
		.pio = &m->pio,
		.ecam_base = LAYOUT_PCI_ECAM_START,
		.ecam_size = LAYOUT_PCI_ECAM_SIZE,
		.mmio32_base = LAYOUT_MMIO32_START,
		.mmio32_size = LAYOUT_MMIO32_SIZE,
		.mmio64_base = mmio64_base(m),
		.mmio64_size = LAYOUT_MMIO64_SIZE,
		.chip = &m->kvm.chip,
		.ioevents = &m->kvm.ioevents,
		/* IOAPIC pins 16-23 are free of ISA devices: INTx for drivers without MSI-X. */
		.intx_gsi_base = 16,
		.intx_gsi_count = 8,
	};

	m->pci = pci_host_create(&pc);
	if (!m->pci)
		FAIL(errno, "cannot create the PCI host bridge: %s", strerror(errno));
	/* The bridge's state is loaded first: it checks every slot holds what was saved. */
	if (device_list_add(&m->devices, "pci-host", &pci_host_device_ops, m->pci))
		FAIL(EEXIST, "cannot list the PCI host bridge");
	/*
	 * Each device runs its queues on an I/O thread of its own (loop NULL).
	 * Slots and state tags follow the command line's order: a restore or
	 * a migration target must be given the same --disk/--net/--rng.
	 */
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		m->disks[i] = virtio_blk_create(m->pci, &m->ram.mem, &cfg->disks[i], cfg->cpus,
						m->incoming_fd >= 0 ? BLK_OPEN_INACTIVE : 0, NULL,
						err, errlen);
		if (!m->disks[i])
			return -EINVAL;
		r = list_virtio(m, "virtio-blk", i, &virtio_blk_device_ops, virtio_blk_dev(m->disks[i]),
				err, errlen);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		m->nets[i] = virtio_net_create(m->pci, &m->ram.mem, &cfg->nets[i], NULL, err, errlen);
		if (!m->nets[i])
			return -EINVAL;
		r = list_virtio(m, "virtio-net", i, &virtio_net_device_ops, virtio_net_dev(m->nets[i]),
				err, errlen);
		if (r)
			return r;
	}
	if (cfg->rng) {
		m->rng = virtio_rng_create(m->pci, &m->ram.mem, NULL);
		if (!m->rng)
			FAIL(errno, "cannot create the virtio-rng device: %s", strerror(errno));
		return list_virtio(m, "virtio-rng", 0, &virtio_rng_device_ops, virtio_rng_dev(m->rng),
				   err, errlen);
	}
	return 0;
}

static int setup_signals(struct machine *m, char *err, size_t errlen)
{
	sigset_t set;

	/* main() blocked these in every thread; here they become loop events. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	m->signal_handler.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	m->signal_handler.cb = on_host_signal;
	if (m->signal_handler.fd < 0 || event_loop_add(&m->loop, &m->signal_handler, EPOLLIN))
		FAIL(errno, "cannot watch for signals: %s", strerror(errno));
	return 0;
}

/*
 * The first boot's KVM VM is made on a thread of its own while the devices,
 * console and API are set up: creating a VM's irqchip and PIT and its first
 * memory slot mostly waits in the kernel (a PIT worker thread, a grace
 * period of the VM's memslot SRCU: 5-15 ms on the build machines,
 * whatever the slot's size), and a restore's start-up is on the clock.
 */
struct vm_prep {
	struct machine *m;
	pthread_t thread;
	int fd, r;
	char err[256];
};

static int set_ram_slots(int vm_fd, const struct guest_ram *ram)
{
	int r = kvm_vm_set_memory_slot(vm_fd, 0, 0, ram->below_4g, ram->base, 0);

	if (!r && ram->above_4g)
		r = kvm_vm_set_memory_slot(vm_fd, 1, LAYOUT_RAM_ABOVE_4G_START, ram->above_4g,
					   ram->base + ram->below_4g, 0);
	return r;
}

static void *prepare_vm(void *arg)
{
	struct vm_prep *p = arg;

	p->r = kvm_open_vm(&p->m->kvm, &p->fd, p->err, sizeof(p->err));
	if (p->r)
		return NULL;
	p->r = set_ram_slots(p->fd, &p->m->ram);
	if (p->r)
		snprintf(p->err, sizeof(p->err), "cannot give guest RAM to KVM: %s", strerror(-p->r));
	else
		p->r = kvm_vm_add_irqchip(p->fd, p->err, sizeof(p->err));
	if (p->r)
		close(p->fd);
	return NULL;
}

static void start_vm_prep(struct machine *m)
{
	struct vm_prep *p = calloc(1, sizeof(*p));

	if (!p)
		return; /* made when needed instead */
	p->m = m;
	p->fd = -1;
	if (thread_create(&p->thread, THREAD_STACK_SMALL, prepare_vm, p)) {
		free(p);
		return;
	}
	m->prep = p;
}

/* Start-up steps at debug level, in ms since machine_create began. */
static void startup_mark(const struct machine *m, const char *what)
{
	log_debug("start-up: %s at %.2f ms", what, (double)(mono_ns() - m->created_ns) / 1e6);
}

/* The prepared VM, waited for; 0, or -errno with its reason. */
static int take_prepared_vm(struct machine *m, char *err, size_t errlen)
{
	struct vm_prep *p = m->prep;
	int r;

	startup_mark(m, "waiting for the KVM VM");
	pthread_join(p->thread, NULL);
	startup_mark(m, "KVM VM ready");
	m->prep = NULL;
	r = p->r;
	if (r)
		snprintf(err, errlen, "%s", p->err);
	else
		r = kvm_use_vm(&m->kvm, p->fd, err, errlen);
	free(p);
	return r;
}

static void drop_prepared_vm(struct machine *m)
{
	if (!m->prep)
		return;
	pthread_join(m->prep->thread, NULL);
	if (!m->prep->r)
		close(m->prep->fd);
	free(m->prep);
	m->prep = NULL;
}

/* --restore: the configuration comes from the snapshot, RAM from its memory file. */
static int open_snapshot(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen)
{
	char why[400];
	int r;

	m->snap = calloc(1, sizeof(*m->snap));
	if (!m->snap)
		FAIL(ENOMEM, "out of memory");
	m->snap->memory_fd = -1;
	r = snapshot_open(cfg->restore_dir, m->snap, why, sizeof(why));
	if (!r) {
		m->restore_cfg = *cfg;
		r = vm_config_load(&m->snap->reader, &m->restore_cfg, m->restore_strs, why, sizeof(why));
	}
	if (!r && m->restore_cfg.memory != m->snap->memory_size) {
		snprintf(why, sizeof(why), "the state describes %llu MiB of memory, the memory file %llu MiB",
			 (unsigned long long)(m->restore_cfg.memory >> 20),
			 (unsigned long long)(m->snap->memory_size >> 20));
		r = -EINVAL;
	}
	if (r)
		FAIL(-r, "--restore %s: %s", cfg->restore_dir, why);
	m->cfg = &m->restore_cfg;
	m->topo = cpu_topology_flat(m->cfg->cpus);
	return 0;
}

/* --incoming: wait for the source; its HELLO has the configuration. */
static int open_incoming(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen)
{
	char why[400];
	int lfd, r;

	r = migration_listen(cfg->incoming, &lfd, err, errlen);
	if (r)
		return r;
	m->restore_cfg = *cfg;
	r = migration_accept(lfd, &m->incoming_fd, &m->restore_cfg, m->restore_strs, why, sizeof(why));
	close(lfd);
	if (r)
		FAIL(-r, "--incoming %s: %s", cfg->incoming, why);
	m->cfg = &m->restore_cfg;
	m->topo = cpu_topology_flat(m->cfg->cpus);
	return 0;
}

int machine_create(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->created_ns = mono_ns();
	m->cfg = cfg;
	m->kvm.dev_fd = m->kvm.vm_fd = -1;
	m->ram.memfd = -1;
	m->signal_handler.fd = -1;
	m->loop.epfd = m->loop.wake_fd = -1;
	m->events.request_stop = on_stop_request;
	atomic_init(&m->state, VM_STATE_CREATED);
	m->incoming_fd = -1;
	/* With guest NUMA nodes each node is a socket (numa.h). */
	m->topo = numa_topology(&cfg->numa, cfg->cpus);
	atomic_init(&m->stop_reason, VM_STOP_NONE);

	if (cfg->restore_dir || cfg->incoming) {
		r = cfg->restore_dir ? open_snapshot(m, cfg, err, errlen) : open_incoming(m, cfg, err, errlen);
		if (r)
			return r;
		cfg = m->cfg;
	}
	r = config_check_host(cfg, err, errlen);
	if (!r && !m->snap && m->incoming_fd < 0)
		r = check_files(m, err, errlen);
	if (r)
		return r;
	r = kvm_open(&m->kvm, cfg->kvm_device, err, errlen);
	if (r)
		return r;
	if (cfg->cpus > m->kvm.max_vcpus)
		FAIL(EINVAL, "--cpus %u: KVM on this host allows at most %u vCPUs", cfg->cpus,
		     m->kvm.max_vcpus);
	r = resources_init(m, err, errlen);
	if (r)
		return r;
	if (m->snap) {
		r = guest_ram_create_from_file(&m->ram, cfg->memory, m->snap->memory_fd,
					       SNAPSHOT_MEMORY_OFFSET, err, errlen);
		/* The guest's copies of its pages then land on the node's host nodes. */
		if (!r && m->numa.nr_nodes)
			r = numa_bind(&m->numa, &m->ram, false, err, errlen);
		if (r)
			return r;
	} else {
		r = resources_create_ram(m, err, errlen);
		if (r)
			return r;
	}
	start_vm_prep(m);

	startup_mark(m, "guest RAM mapped");
	r = event_loop_init(&m->loop);
	if (r)
		FAIL(-r, "cannot create the event loop: %s", strerror(-r));
	r = setup_signals(m, err, errlen);
	if (r)
		return r;
	r = main_call_init(&m->main_call, m, &m->loop);
	if (r)
		FAIL(-r, "cannot create the main-thread call channel: %s", strerror(-r));
	if (bus_init(&m->pio, "pio") || bus_init(&m->mmio, "mmio"))
		FAIL(ENOMEM, "cannot create the I/O buses");
	m->console = console_open(cfg->console, &m->loop, err, errlen);
	if (!m->console)
		return -EINVAL;
	r = create_devices(m, err, errlen);
	if (!r)
		r = create_pci_devices(m, err, errlen);
	if (!r)
		r = resources_create_devices(m, err, errlen);
	if (r)
		return r;
	startup_mark(m, "devices created");
	/*
	 * The first boot's load now, so a bad kernel or an initrd too big is
	 * reported before anything runs; not over a snapshot's or a source's
	 * memory. Nothing writes guest RAM between here and that boot.
	 */
	if (!m->snap && m->incoming_fd < 0) {
		r = load_guest(m, &m->preload, err, errlen);
		if (r)
			return r;
		m->preloaded = true;
	}
	r = vcpu_init_signals();
	if (r)
		FAIL(-r, "cannot install the vCPU signal handler: %s", strerror(-r));
	r = vcpu_park_init(&m->vcpu_env.park);
	if (r)
		FAIL(-r, "cannot create the vCPU park: %s", strerror(-r));
	m->park_ready = true;
	m->vcpus = calloc(cfg->cpus, sizeof(*m->vcpus));
	if (!m->vcpus)
		FAIL(ENOMEM, "out of memory");
	m->vcpu_env.kvm = &m->kvm;
	m->vcpu_env.pio = &m->pio;
	m->vcpu_env.mmio = &m->mmio;
	m->vcpu_env.events = &m->events;
	m->vcpu_env.topo = &m->topo;
	m->vcpu_env.state_follows = m->snap || m->incoming_fd >= 0;
	if (cfg->api_socket)
		return control_start(m, err, errlen);
	return 0;
}

static void stop_vcpus(struct machine *m)
{
	for (unsigned i = 0; i < m->nr_vcpus_created; i++)
		vcpu_request_stop(&m->vcpus[i]);
	for (unsigned i = 0; i < m->nr_vcpus_created; i++)
		vcpu_destroy(&m->vcpus[i]);
	m->nr_vcpus_created = 0;
	/* Every thread counted itself on the way out; the next boot starts from none. */
	m->vcpu_env.park.nr_parked = 0;
	machine_drop_pause(m);
}

/* A fresh KVM VM with guest RAM and the vCPUs created, none running. */
static int create_kvm_vm(struct machine *m, char *err, size_t errlen)
{
	int r;

	if (m->prep) {
		r = take_prepared_vm(m, err, errlen);
		if (r)
			return r;
	} else {
		r = kvm_create_vm(&m->kvm, err, errlen);
		if (r)
			return r;
		r = set_ram_slots(m->kvm.vm_fd, &m->ram);
		if (r)
			FAIL(-r, "cannot give guest RAM to KVM: %s", strerror(-r));
	}
	for (unsigned i = 0; i < m->cfg->cpus; i++) {
		r = vcpu_create(&m->vcpus[i], &m->vcpu_env, i, err, errlen);
		m->nr_vcpus_created = i + 1;
		if (r)
			return r;
	}
	/* Only the first boot's vCPUs get saved state: a reboot sets them up afresh. */
	m->vcpu_env.state_follows = false;
	/*
	 * Which MSRs a saved vCPU holds, probed once at the first boot while no
	 * vCPU runs: done at the first save it would lengthen a migration's
	 * downtime. Not for a restore or an incoming VM, whose start-up time
	 * counts (their CPUID comes with the state; the first save probes).
	 */
	if (!m->msr_list.index && !m->snap && m->incoming_fd < 0)
		return cpu_msr_list_build(&m->msr_list, &m->vcpus[0], err, errlen);
	return 0;
}

static int start_vcpus(struct machine *m, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->cfg->cpus; i++) {
		int r = vcpu_start(&m->vcpus[i]);

		if (r)
			FAIL(-r, "cannot start vCPU %u: %s", i, strerror(-r));
	}
	m->boots++;
	return resources_pin(m, err, errlen);
}

/* The first boot of a --restore: the snapshot's state instead of a kernel. */
static int restore_once(struct machine *m, char *err, size_t errlen)
{
	char why[400];
	int r;

	r = create_kvm_vm(m, err, errlen);
	if (r)
		return r;
	startup_mark(m, "vCPUs created");
	r = vm_state_load(m, &m->snap->reader, why, sizeof(why));
	if (r)
		FAIL(-r, "--restore %s: %s", m->cfg->restore_dir, why);
	startup_mark(m, "state loaded");
	snapshot_close(m->snap);
	free(m->snap);
	m->snap = NULL;
	machine_start_devices(m);
	r = start_vcpus(m, err, errlen);
	if (!r) {
		struct timespec cpu;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
		log_info("restored from %s: the VM runs %.1f ms after set-up began; %.1f ms of CPU since exec",
			 m->cfg->restore_dir, (double)(mono_ns() - m->created_ns) / 1e6,
			 (double)cpu.tv_sec * 1e3 + (double)cpu.tv_nsec / 1e6);
	}
	return r;
}

/* The first boot of an --incoming: memory and state from the source, then GO. */
static int incoming_once(struct machine *m, char *err, size_t errlen)
{
	char why[400];
	int r;

	machine_set_state(m, VM_STATE_MIGRATING);
	r = create_kvm_vm(m, err, errlen);
	if (r)
		return r;
	/*
	 * The vCPU threads wait parked from the start: each loads its own
	 * state when it comes (in parallel), and GO only has to let them go.
	 */
	r = vcpus_start_parked(m->vcpus, m->nr_vcpus_created, 5000);
	if (r)
		FAIL(-r, "cannot start the vCPU threads: %s", strerror(-r));
	m->boots++;
	r = resources_pin(m, err, errlen);
	if (r)
		return r;
	r = migration_receive(m, m->incoming_fd, why, sizeof(why));
	if (!r) {
		/* GO came: the source will not run again, so the devices may. */
		machine_start_devices(m);
		vcpus_resume(m->vcpus, m->nr_vcpus_created);
	}
	if (!r)
		r = mig_send(m->incoming_fd, MIG_RUNNING, NULL, 0);
	close(m->incoming_fd);
	m->incoming_fd = -1;
	if (r)
		FAIL(-r, "--incoming %s: %s", m->cfg->incoming, why);
	log_info("migration received; the VM runs here");
	return 0;
}

/* One boot: a fresh KVM VM with the guest loaded and the vCPUs running. */
static int boot_once(struct machine *m, char *err, size_t errlen)
{
	struct boot_linux_result boot;
	int r;

	if (m->snap)
		return restore_once(m, err, errlen);
	if (m->incoming_fd >= 0)
		return incoming_once(m, err, errlen);
	r = create_kvm_vm(m, err, errlen);
	if (r)
		return r;
	/*
	 * A reboot starts from the files, as on real hardware; the first boot
	 * from what start-up loaded (kernel and initrd copied once, not twice).
	 */
	if (m->preloaded) {
		boot = m->preload;
		m->preloaded = false;
	} else {
		r = load_guest(m, &boot, err, errlen);
		if (r)
			return r;
	}
	r = vcpu_setup_linux_entry(&m->vcpus[0], &boot);
	if (r)
		FAIL(-r, "cannot set the boot vCPU's registers: %s", strerror(-r));
	return start_vcpus(m, err, errlen);
}

static void reset_devices(struct machine *m)
{
	pci_host_reset(m->pci);
	uart_16550_reset(m->com1);
	cmos_rtc_reset(m->rtc);
	i8042_reset(m->kbc);
	reset_ctl_reset(m->reset_ctl);
	acpi_pm_reset(m->acpi_pm);
}

int machine_run(struct machine *m)
{
	char err[512];

	for (;;) {
		enum vm_stop_reason why;
		int r;

		atomic_store(&m->stop_reason, VM_STOP_NONE);
		m->loop.stop = 0;
		r = boot_once(m, err, sizeof(err));
		if (r) {
			log_error("%s", err);
			stop_vcpus(m);
			kvm_destroy_vm(&m->kvm);
			return EXIT_SETUP_ERROR;
		}
		machine_set_state(m, VM_STATE_RUNNING);
		main_call_set_open(&m->main_call, true);
		r = event_loop_run(&m->loop);
		main_call_set_open(&m->main_call, false);
		/* A migration still going on gives up: the VM stops or reboots here. */
		migration_destroy(m);
		if (r)
			on_stop_request(&m->events, VM_STOP_HOST);
		why = (enum vm_stop_reason)atomic_load(&m->stop_reason);
		stop_vcpus(m);
		kvm_destroy_vm(&m->kvm);
		if (why != VM_STOP_RESET || m->cfg->no_reboot)
			machine_set_state(m, VM_STATE_STOPPED);

		switch (why) {
		case VM_STOP_RESET:
			if (m->cfg->no_reboot) {
				log_info("guest rebooted; exiting (--no-reboot)");
				return EXIT_GUEST_OFF;
			}
			log_info("guest rebooted; restarting it");
			reset_devices(m);
			continue;
		case VM_STOP_POWEROFF:
		case VM_STOP_QUIT:
			return EXIT_GUEST_OFF;
		case VM_STOP_CRASH:
			log_error("the guest crashed; exiting");
			return EXIT_GUEST_CRASH;
		case VM_STOP_HOST:
		case VM_STOP_NONE:
			return m->stop_signal ? EXIT_SIGNAL_BASE + m->stop_signal : EXIT_SETUP_ERROR;
		}
	}
}

void machine_destroy(struct machine *m)
{
	drop_prepared_vm(m);
	control_stop(m);
	if (m->main_call.m)
		main_call_set_open(&m->main_call, false);
	migration_destroy(m);
	stop_vcpus(m);
	if (m->park_ready)
		vcpu_park_destroy(&m->vcpu_env.park);
	free(m->vcpus);
	m->vcpus = NULL;
	if (m->console)
		console_attach_uart(m->console, NULL);
	/* Devices before the PCI host, and all of them before KVM: they unregister fast paths. */
	virtio_rng_destroy(m->rng);
	resources_destroy_devices(m);
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++)
		virtio_net_destroy(m->nets[i]);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		virtio_blk_destroy(m->disks[i]);
	resources_destroy(m);
	pci_host_destroy(m->pci);
	acpi_pm_destroy(m->acpi_pm);
	reset_ctl_destroy(m->reset_ctl);
	i8042_destroy(m->kbc);
	cmos_rtc_destroy(m->rtc);
	uart_16550_destroy(m->com1);
	console_close(m->console);
	m->console = NULL;
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	if (m->signal_handler.fd >= 0)
		close(m->signal_handler.fd);
	main_call_destroy(&m->main_call);
	if (m->incoming_fd >= 0)
		close(m->incoming_fd);
	if (m->loop.epfd >= 0)
		event_loop_destroy(&m->loop);
	guest_ram_destroy(&m->ram);
	kvm_close(&m->kvm);
	cpu_msr_list_free(&m->msr_list);
	if (m->snap) {
		snapshot_close(m->snap);
		free(m->snap);
		m->snap = NULL;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(m->restore_strs); i++)
		free(m->restore_strs[i]);
}

int machine_hand_over_disks(struct machine *m, bool give, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->cfg->nr_disks; i++) {
		struct blk_dev *d = virtio_blk_image(m->disks[i]);
		int r = give ? blk_inactivate(d, err, errlen) : blk_activate(d, err, errlen);

		if (!r)
			continue;
		while (give && i--) {
			char why[BLK_ERR_LEN];

			if (blk_activate(virtio_blk_image(m->disks[i]), why, sizeof(why)))
				log_error("migration: %s", why);
		}
		return r;
	}
	return 0;
}
