/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm's command line: parsing, validation and --help. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/log.h"
#include "vmm/guest_ram.h"
#include "vmm/numa.h"
#include "vmm/pinning.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"

#define CONFIG_DEFAULT_CMDLINE "console=ttyS0"
#define CONFIG_DEFAULT_CPUS 1
#define CONFIG_DEFAULT_MEMORY (512ULL << 20)
#define CONFIG_MIN_MEMORY (32ULL << 20)
/* xAPIC IDs are 8 bits and 0xff is broadcast; more needs interrupt remapping. */
#define CONFIG_MAX_CPUS 255
/* PCI bus 0 has 31 slots for devices; these leave room for what comes later. */
#define CONFIG_MAX_DISKS 16
#define CONFIG_MAX_NETS 8

/* --disk-group: limits shared by the disks that name it (group=NAME). */
struct disk_group_config {
	char name[32];
	struct blk_limits limits;
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	struct guest_ram_opts ram; /* --memory-backing and --memory's options */
	const char *console;
	const char *name;
	bool no_reboot;
	const char *kvm_device;
	enum log_level log_level;
	const char *api_socket; /* NULL: no control API */
	const char *restore_dir; /* --restore: the rest comes from the snapshot */
	const char *incoming;   /* --incoming tcp:HOST:PORT: the rest comes from the source */
	bool name_given;        /* --name was on the command line */

	struct virtio_blk_opts disks[CONFIG_MAX_DISKS];
	unsigned nr_disks;
	struct virtio_net_opts nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	bool rng;

	/* Resource control (docs/resources.md). */
	struct disk_group_config disk_groups[CONFIG_MAX_DISKS];
	unsigned nr_disk_groups;
	bool balloon;
	struct virtio_balloon_opts balloon_opts;
	struct numa_config numa;
	struct pin_config pin;
};

enum config_result {
	CONFIG_OK,
	CONFIG_EXIT_SUCCESS, /* --help or --version was printed */
	CONFIG_ERROR,        /* err holds the one-line reason */
};

/*
 * Parses argv into cfg (strings point into argv). Checks what needs no
 * system access; config_check_host() does the rest.
 */
enum config_result config_parse(int argc, char **argv, struct vm_config *cfg,
				char *err, size_t errlen);

/* Checks against the host: memory size against the host's RAM. 0 or -errno. */
int config_check_host(const struct vm_config *cfg, char *err, size_t errlen);

/* config_resources.c: the resource-control flags. */
int memory_opts_parse(const char *arg, uint64_t *size, struct guest_ram_opts *o, char *err,
		      size_t errlen);
int disk_group_parse(const char *arg, struct vm_config *cfg, char *err, size_t errlen);
/* How the resource flags fit together and with --cpus/--memory. 0 or -EINVAL. */
int config_check_resources(const struct vm_config *cfg, char *err, size_t errlen);
/* What they need of the host: huge pages, NUMA nodes. 0 or -errno. */
int config_check_host_resources(const struct vm_config *cfg, char *err, size_t errlen);
void config_print_resources_help(void);

void config_print_help(const char *prog);

#endif
