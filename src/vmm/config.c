// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/un.h>

#include "keel/parse.h"
#include "vmm/config.h"
#include "vmm/console.h"

enum {
	OPT_KERNEL = 0x100,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_MEMORY_BACKING,
	OPT_CONSOLE,
	OPT_NAME,
	OPT_NO_REBOOT,
	OPT_KVM_DEVICE,
	OPT_LOG_LEVEL,
	OPT_API_SOCKET,
	OPT_RESTORE,
	OPT_INCOMING,
	OPT_DISK,
	OPT_NET,
	OPT_RNG,
	OPT_DISK_GROUP,
	OPT_BALLOON,
	OPT_NUMA,
	OPT_PIN,
	OPT_HELP,
	OPT_VERSION,
	OPT_COUNT,
};

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "memory-backing", required_argument, NULL, OPT_MEMORY_BACKING },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "kvm-device", required_argument, NULL, OPT_KVM_DEVICE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "disk-group", required_argument, NULL, OPT_DISK_GROUP },
	{ "balloon", required_argument, NULL, OPT_BALLOON },
	{ "numa", required_argument, NULL, OPT_NUMA },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void config_print_help(const char *prog)
{
	printf("Usage: %s --kernel PATH [options]\n"
	       "Runs one virtual machine on KVM: boots a Linux bzImage with the given vCPUs,\n"
	       "memory and serial console, until the guest powers off.\n"
	       "\n"
	       "Options:\n"
	       "  --kernel PATH        Linux kernel, bzImage format (64-bit, boot protocol 2.12+)\n"
	       "  --initrd PATH        initial ramdisk loaded for the kernel\n"
	       "  --cmdline STR        kernel command line (default \"%s\")\n"
	       "  --cpus N             number of vCPUs, 1 to %u and no more than KVM allows (default %u)\n"
	       "  --memory SIZE[,OPTIONS]\n"
	       "                       guest RAM: a number of MiB, or with a K/M/G suffix (default %llu MiB,\n"
	       "                       at least %llu MiB, a whole number of MiB, at most the host's RAM);\n"
	       "                       options below (Resource control)\n"
	       "  --memory-backing KIND\n"
	       "                       anon (default: private memory, backed by transparent huge pages\n"
	       "                       and mergeable by KSM) or memfd (shareable with other processes)\n"
	       "  --console KIND       serial console (COM1): stdio (default; Ctrl-A x quits),\n"
	       "                       pty (prints the pseudo-terminal's path), unix:PATH (a listening\n"
	       "                       socket), or none\n"
	       "  --name NAME          the VM's name in logs (letters, digits, '.', '_', '-'; 64 at most)\n"
	       "  --no-reboot          exit with status 0 when the guest reboots, instead of restarting it\n"
	       "  --disk OPTIONS       a virtio-blk disk (repeatable, at most %u):\n"
	       "                       path=FILE[,format=raw|qcow2][,readonly=on]\n"
	       "                       [,cache=none|writethrough|writeback][,aio=io_uring|threads|sync]\n"
	       "                       [,serial=STR][,queues=N][,group=NAME][,LIMITS]; defaults: raw,\n"
	       "                       writeback, io_uring, one queue per vCPU. cache=none is O_DIRECT,\n"
	       "                       writethrough makes every write durable before it completes\n"
	       "  --net OPTIONS        a virtio-net NIC on a tap device (repeatable, at most %u):\n"
	       "                       tap=NAME[,mac=MAC][,SHAPING]; a tap that does not exist is\n"
	       "                       created and removed at exit\n"
	       "  --rng                a virtio-rng device fed by getrandom()\n"
	       "  --kvm-device PATH    the KVM device (default /dev/kvm)\n"
	       "  --log-level LEVEL    error, warn, info (default) or debug\n"
	       "  --api-socket PATH    serve the control API (HTTP/1.1 + JSON, docs/api.md) on a\n"
	       "                       UNIX socket at PATH (mode 0600; a stale socket is replaced)\n"
	       "  --restore DIR        resume the VM saved in snapshot directory DIR (see docs/snapshot.md);\n"
	       "                       the snapshot has the vCPUs, memory, kernel and command line; give\n"
	       "                       the saved VM's --disk, --disk-group, --net and --rng (same order,\n"
	       "                       same disk images, any tap) and, if wanted, --console, --api-socket,\n"
	       "                       --name, --log-level, --kvm-device, --pin; DIR/memory must stay\n"
	       "                       while the VM runs\n"
	       "  --incoming tcp:HOST:PORT  wait there for a live migration from another keel-vmm\n"
	       "                       (docs/migration.md) and run the VM it sends; the same flags as\n"
	       "                       with --restore; exit 1 if the migration fails before the switch-over\n"
	       "  --help               this text\n"
	       "  --version            the version\n"
	       "\n",
	       prog, CONFIG_DEFAULT_CMDLINE, CONFIG_MAX_CPUS, CONFIG_DEFAULT_CPUS,
	       (unsigned long long)(CONFIG_DEFAULT_MEMORY >> 20),
	       (unsigned long long)(CONFIG_MIN_MEMORY >> 20), CONFIG_MAX_DISKS, CONFIG_MAX_NETS);
	config_print_resources_help();
	printf("\n"
	       "       %s ctl SOCKET COMMAND [ARGS]   drive a running VM (see '%s ctl --help')\n"
	       "\n"
	       "Exit status: 0 when the guest powered off (or rebooted with --no-reboot,\n"
	       "or the console was quit with Ctrl-A x),\n"
	       "1 for a configuration or start-up error, 2 when the guest crashed (triple\n"
	       "fault, KVM internal error, unhandled exit; the vCPU registers are logged),\n"
	       "128+N when keel-vmm was stopped by signal N.\n",
	       prog, prog);
}

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return CONFIG_ERROR;                     \
	} while (0)

static const char *option_name(int opt)
{
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static bool takes_value(int opt)
{
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == opt)
			return o->has_arg == required_argument;
	return false;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

static int parse_log_level(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (unsigned i = 0; i < 4; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static enum config_result parse_option(int opt, const char *arg, struct vm_config *cfg,
				       char *err, size_t errlen)
{
	uint64_t v;
	int r;

	switch (opt) {
	case OPT_KERNEL:
		cfg->kernel = arg;
		break;
	case OPT_INITRD:
		cfg->initrd = arg;
		break;
	case OPT_CMDLINE:
		cfg->cmdline = arg;
		break;
	case OPT_CPUS:
		r = parse_u64(arg, UINT32_MAX, &v);
		if (r)
			FAIL("--cpus '%s': not a number of vCPUs", arg);
		if (v == 0)
			FAIL("--cpus 0: a VM needs at least 1 vCPU");
		if (v > CONFIG_MAX_CPUS)
			FAIL("--cpus %s: at most %u vCPUs are supported", arg, CONFIG_MAX_CPUS);
		cfg->cpus = (unsigned)v;
		break;
	case OPT_MEMORY:
		if (memory_opts_parse(arg, &cfg->memory, &cfg->ram, err, errlen))
			return CONFIG_ERROR;
		break;
	case OPT_MEMORY_BACKING:
		if (!strcmp(arg, "anon"))
			cfg->ram.backing = GUEST_RAM_ANON;
		else if (!strcmp(arg, "memfd"))
			cfg->ram.backing = GUEST_RAM_MEMFD;
		else
			FAIL("--memory-backing '%s': use anon or memfd", arg);
		break;
	case OPT_CONSOLE:
		if (console_check_spec(arg, err, errlen))
			return CONFIG_ERROR;
		cfg->console = arg;
		break;
	case OPT_NAME:
		if (!valid_name(arg))
			FAIL("--name '%s': use 1 to 64 letters, digits, '.', '_' or '-'", arg);
		cfg->name = arg;
		cfg->name_given = true;
		break;
	case OPT_NO_REBOOT:
		cfg->no_reboot = true;
		break;
	case OPT_KVM_DEVICE:
		cfg->kvm_device = arg;
		break;
	case OPT_LOG_LEVEL:
		if (parse_log_level(arg, &cfg->log_level))
			FAIL("--log-level '%s': use error, warn, info or debug", arg);
		break;
	case OPT_API_SOCKET:
		if (!*arg || strlen(arg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			FAIL("--api-socket '%s': give a socket path of 1 to %zu bytes", arg,
			     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		cfg->api_socket = arg;
		break;
	case OPT_RESTORE:
		if (!*arg)
			FAIL("--restore: give the snapshot's directory");
		cfg->restore_dir = arg;
		break;
	case OPT_INCOMING:
		if (strncmp(arg, "tcp:", 4) || !strchr(arg + 4, ':'))
			FAIL("--incoming '%s': give tcp:HOST:PORT", arg);
		cfg->incoming = arg;
		break;
	case OPT_DISK:
		if (cfg->nr_disks == CONFIG_MAX_DISKS)
			FAIL("--disk: at most %u disks are supported", CONFIG_MAX_DISKS);
		if (virtio_blk_parse(arg, &cfg->disks[cfg->nr_disks], err, errlen))
			return CONFIG_ERROR;
		cfg->nr_disks++;
		break;
	case OPT_NET:
		if (cfg->nr_nets == CONFIG_MAX_NETS)
			FAIL("--net: at most %u NICs are supported", CONFIG_MAX_NETS);
		if (virtio_net_parse(arg, &cfg->nets[cfg->nr_nets], err, errlen))
			return CONFIG_ERROR;
		cfg->nr_nets++;
		break;
	case OPT_RNG:
		cfg->rng = true;
		break;
	case OPT_DISK_GROUP:
		if (disk_group_parse(arg, cfg, err, errlen))
			return CONFIG_ERROR;
		break;
	case OPT_BALLOON:
		if (virtio_balloon_parse(arg, &cfg->balloon_opts, err, errlen))
			return CONFIG_ERROR;
		cfg->balloon = true;
		break;
	case OPT_NUMA:
		if (numa_parse_node(arg, &cfg->numa, err, errlen))
			return CONFIG_ERROR;
		break;
	case OPT_PIN:
		if (pin_parse("--pin", arg, &cfg->pin, err, errlen))
			return CONFIG_ERROR;
		break;
	}
	return CONFIG_OK;
}

enum config_result config_parse(int argc, char **argv, struct vm_config *cfg,
				char *err, size_t errlen)
{
	bool seen[OPT_COUNT] = { false };
	int opt;

	*cfg = (struct vm_config){
		.cmdline = CONFIG_DEFAULT_CMDLINE,
		.cpus = CONFIG_DEFAULT_CPUS,
		.memory = CONFIG_DEFAULT_MEMORY,
		.console = "stdio",
		.name = "vm",
		.kvm_device = "/dev/kvm",
		.log_level = LOG_LEVEL_INFO,
	};
	opterr = 0; /* we print our own one-line errors */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		enum config_result r;

		if (opt == '?' || opt == ':') {
			const char *bad = argv[optind - 1];

			if (optopt && takes_value(optopt))
				FAIL("option '--%s' needs a value (see --help)", option_name(optopt));
			if (optopt)
				FAIL("option '--%s' takes no value (see --help)", option_name(optopt));
			FAIL("unknown option '%s' (see --help)", bad);
		}
		if (opt == OPT_HELP) {
			config_print_help(argv[0]);
			return CONFIG_EXIT_SUCCESS;
		}
		if (opt == OPT_VERSION) {
			printf("keel-vmm %s\n", KEEL_VERSION);
			return CONFIG_EXIT_SUCCESS;
		}
		if (seen[opt] && opt != OPT_DISK && opt != OPT_NET && opt != OPT_DISK_GROUP &&
		    opt != OPT_NUMA && opt != OPT_PIN)
			FAIL("option '--%s' given twice", option_name(opt));
		seen[opt] = true;
		r = parse_option(opt, optarg, cfg, err, errlen);
		if (r != CONFIG_OK)
			return r;
	}
	if (optind < argc)
		FAIL("unexpected argument '%s' (see --help)", argv[optind]);
	if (cfg->restore_dir && cfg->incoming)
		FAIL("--restore and --incoming exclude each other");
	if (cfg->restore_dir || cfg->incoming) {
		/*
		 * The devices' backends (image, tap) are this host's business, so
		 * --disk/--net/--rng are given here, as on the source; the rest is saved.
		 */
		static const int from_snapshot[] = { OPT_KERNEL, OPT_INITRD, OPT_CMDLINE, OPT_CPUS,
						     OPT_MEMORY, OPT_NO_REBOOT, OPT_BALLOON, OPT_NUMA };

		for (unsigned i = 0; i < sizeof(from_snapshot) / sizeof(from_snapshot[0]); i++)
			if (seen[from_snapshot[i]])
				FAIL("--%s cannot be given with --%s: the %s has the VM's configuration",
				     option_name(from_snapshot[i]), cfg->incoming ? "incoming" : "restore",
				     cfg->incoming ? "source" : "snapshot");
		return CONFIG_OK;
	}
	if (!cfg->kernel)
		FAIL("--kernel is required: the Linux bzImage to boot (see --help)");
	if (config_check_resources(cfg, err, errlen))
		return CONFIG_ERROR;
	return CONFIG_OK;
}

int config_check_host(const struct vm_config *cfg, char *err, size_t errlen)
{
	struct sysinfo si;
	uint64_t host;

	if (sysinfo(&si) < 0) {
		snprintf(err, errlen, "cannot read the host's memory size: %s", strerror(errno));
		return -errno;
	}
	host = (uint64_t)si.totalram * si.mem_unit;
	if (cfg->memory > host) {
		snprintf(err, errlen, "--memory %llu MiB is more than this host's %llu MiB of RAM",
			 (unsigned long long)(cfg->memory >> 20), (unsigned long long)(host >> 20));
		return -ENOMEM;
	}
	return config_check_host_resources(cfg, err, errlen);
}
