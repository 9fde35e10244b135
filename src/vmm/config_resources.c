// SPDX-License-Identifier: Apache-2.0
/*
 * The resource-control flags of vmm/config.h: --memory's options,
 * --disk-group, and how they, --balloon, --numa and --pin fit together
 * (docs/resources.md). --disk and --net limits are parsed with the devices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>

#include "keel/compiler.h"
#include "keel/parse.h"
#include "virtio/options.h"
#include "vmm/config.h"

static int memory_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct guest_ram_opts *o = ctx;
	int b;

	if (!strcmp(key, "hugepages")) {
		if (!strcmp(val, "2M"))
			o->hugepage_size = 2 * MiB;
		else if (!strcmp(val, "1G"))
			o->hugepage_size = 1 * GiB;
		else if (!strcmp(val, "off"))
			o->hugepage_size = 0;
		else {
			snprintf(err, errlen, "--memory: hugepages '%s' is not 2M, 1G or off", val);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "thp") || !strcmp(key, "prealloc") || !strcmp(key, "mergeable") ||
	    !strcmp(key, "mlock")) {
		if (opts_bool(val, &b) < 0) {
			snprintf(err, errlen, "--memory: %s '%s' is not on or off", key, val);
			return -EINVAL;
		}
		if (!strcmp(key, "thp"))
			o->no_thp = !b;
		else if (!strcmp(key, "prealloc"))
			o->prealloc = b;
		else if (!strcmp(key, "mergeable"))
			o->mergeable = b;
		else
			o->mlock = b;
		return 0;
	}
	snprintf(err, errlen, "--memory: unknown key '%s' (hugepages, thp, prealloc, mergeable, mlock)",
		 key);
	return -EINVAL;
}

int memory_opts_parse(const char *arg, uint64_t *size, struct guest_ram_opts *o, char *err,
		      size_t errlen)
{
	const char *comma = strchr(arg, ',');
	char sz[64];
	uint64_t v;
	bool thp_given;
	int r;

	if ((size_t)(comma ? comma - arg : (ptrdiff_t)strlen(arg)) >= sizeof(sz)) {
		snprintf(err, errlen, "--memory '%s': not a size (examples: 512, 512M, 2G)", arg);
		return -EINVAL;
	}
	snprintf(sz, sizeof(sz), "%.*s", comma ? (int)(comma - arg) : (int)strlen(arg), arg);
	if (parse_size(sz, 1ULL << 20, &v)) {
		snprintf(err, errlen, "--memory '%s': not a size (examples: 512, 512M, 2G)", sz);
		return -EINVAL;
	}
	if (v < CONFIG_MIN_MEMORY) {
		snprintf(err, errlen, "--memory %s: at least %llu MiB is needed", sz,
			 (unsigned long long)(CONFIG_MIN_MEMORY >> 20));
		return -EINVAL;
	}
	if (v & ((1ULL << 20) - 1)) {
		snprintf(err, errlen, "--memory %s: must be a whole number of MiB", sz);
		return -EINVAL;
	}
	*size = v;
	if (!comma)
		return 0;
	thp_given = strstr(comma, ",thp=") != NULL;
	r = opts_parse("--memory", comma + 1, memory_opt, o, err, errlen);
	if (r)
		return r;
	if (o->hugepage_size && o->mergeable) {
		snprintf(err, errlen, "--memory: mergeable=on cannot go with hugepages (KSM merges only "
			 "small pages)");
		return -EINVAL;
	}
	if (o->hugepage_size && thp_given) {
		snprintf(err, errlen, "--memory: thp is about small pages; it cannot go with hugepages");
		return -EINVAL;
	}
	if (o->hugepage_size && v % o->hugepage_size) {
		snprintf(err, errlen, "--memory %s: with hugepages=%s the size must be a multiple of %llu "
			 "MiB", sz, o->hugepage_size == GiB ? "1G" : "2M",
			 (unsigned long long)(o->hugepage_size >> 20));
		return -EINVAL;
	}
	return 0;
}

static bool valid_group_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= sizeof(((struct disk_group_config *)0)->name))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

struct group_ctx {
	struct disk_group_config *g;
	bool named;
};

static int group_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct group_ctx *c = ctx;
	int r;

	if (!strcmp(key, "name")) {
		if (!valid_group_name(val)) {
			snprintf(err, errlen, "--disk-group: name '%s': use 1 to 31 letters, digits, '.', "
				 "'_' or '-'", val);
			return -EINVAL;
		}
		snprintf(c->g->name, sizeof(c->g->name), "%s", val);
		c->named = true;
		return 0;
	}
	r = blk_limits_parse_key(&c->g->limits, "--disk-group", key, val, err, errlen);
	if (r)
		return r < 0 ? r : 0;
	snprintf(err, errlen, "--disk-group: unknown key '%s' (name, iops, iops-rd, iops-wr, bw, "
		 "bw-rd, bw-wr and their -burst and -peak)", key);
	return -EINVAL;
}

int disk_group_parse(const char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
	struct group_ctx c;
	int r;

	if (cfg->nr_disk_groups == CONFIG_MAX_DISKS) {
		snprintf(err, errlen, "--disk-group: at most %u groups", CONFIG_MAX_DISKS);
		return -EINVAL;
	}
	c = (struct group_ctx){ .g = &cfg->disk_groups[cfg->nr_disk_groups] };
	memset(c.g, 0, sizeof(*c.g));
	r = opts_parse("--disk-group", arg, group_opt, &c, err, errlen);
	if (!r && !c.named) {
		snprintf(err, errlen, "--disk-group: name=NAME is required");
		r = -EINVAL;
	}
	if (!r)
		r = blk_limits_check(&c.g->limits, "--disk-group", err, errlen);
	for (unsigned i = 0; !r && i < cfg->nr_disk_groups; i++) {
		if (!strcmp(cfg->disk_groups[i].name, c.g->name)) {
			snprintf(err, errlen, "--disk-group: name '%s' given twice", c.g->name);
			r = -EINVAL;
		}
	}
	if (!r)
		cfg->nr_disk_groups++;
	return r;
}

int config_check_resources(const struct vm_config *cfg, char *err, size_t errlen)
{
	const struct guest_ram_opts *ram = &cfg->ram;

	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const char *g = cfg->disks[i].group;
		bool found = !*g;

		for (unsigned j = 0; !found && j < cfg->nr_disk_groups; j++)
			found = !strcmp(cfg->disk_groups[j].name, g);
		if (!found) {
			snprintf(err, errlen, "--disk %s: group '%s' is not a --disk-group", cfg->disks[i].path,
				 g);
			return -EINVAL;
		}
	}
	if (ram->mergeable && ram->backing == GUEST_RAM_MEMFD) {
		snprintf(err, errlen, "--memory mergeable=on: KSM merges only private anonymous memory, "
			 "not --memory-backing memfd");
		return -EINVAL;
	}
	if (cfg->numa.nr_nodes &&
	    numa_check_layout(&cfg->numa, cfg->cpus, cfg->memory,
			      ram->hugepage_size ? ram->hugepage_size : GUEST_RAM_PAGE, err, errlen))
		return -EINVAL;
	return pin_check("--pin", &cfg->pin, cfg->cpus, err, errlen);
}

int config_check_host_resources(const struct vm_config *cfg, char *err, size_t errlen)
{
	if (cfg->ram.hugepage_size &&
	    guest_ram_check_hugepages(cfg->memory, cfg->ram.hugepage_size, err, errlen))
		return -ENOMEM;
	return numa_check_host(&cfg->numa, err, errlen);
}

void config_print_resources_help(void)
{
	printf("Resource control (docs/resources.md; all of it can be changed at run time through\n"
	       "the control API, except huge pages, preallocation and the guest's NUMA layout):\n"
	       "  --memory SIZE,KEY=VALUE,...\n"
	       "                       hugepages=2M|1G: guest RAM on hugetlbfs pages, reserved at start\n"
	       "                       (the host must have enough free); thp=off: no transparent huge\n"
	       "                       pages; prealloc=on: allocate all of it at start; mergeable=on:\n"
	       "                       KSM may share identical pages (anon backing only); mlock=on: keep\n"
	       "                       it in RAM (without it the host may swap guest RAM)\n"
	       "  --disk ...,LIMITS    iops, iops-rd, iops-wr (operations/s) and bw, bw-rd, bw-wr (bytes/s,\n"
	       "                       K/M/G suffixes), each also with -burst (how much above the average\n"
	       "                       may go at once) and -peak (how fast a burst goes): e.g.\n"
	       "                       iops=500,iops-burst=2000,iops-peak=1000,bw-wr=50M\n"
	       "  --disk-group name=NAME,LIMITS\n"
	       "                       limits shared by every --disk with group=NAME (repeatable)\n"
	       "  --net ...,SHAPING    tx-average, tx-peak (bit/s, k/M/G = powers of 1000), tx-burst\n"
	       "                       (bytes, K/M/G = powers of 1024), and the same for rx; tx is what\n"
	       "                       the guest sends: e.g. tx-average=50M,tx-peak=100M,tx-burst=10M\n"
	       "  --balloon on|[deflate-on-oom=on][,free-page-reporting=on][,stats-interval=SECONDS]\n"
	       "                       a virtio-balloon device; its size is set through the API\n"
	       "  --numa cpus=A-B,memory=SIZE[,host-nodes=LIST][,policy=bind|preferred|interleave]\n"
	       "                       [,distances=D0:D1:...]\n"
	       "                       a guest NUMA node (repeatable, in order: node 0 first); the nodes\n"
	       "                       take the vCPUs in equal contiguous blocks and their memory adds\n"
	       "                       up to --memory; host-nodes binds the node's memory (mbind)\n"
	       "  --pin vcpuN=CPUS | vcpus=CPUS | io=CPUS\n"
	       "                       host CPUs for one vCPU thread, for all of them, or for every\n"
	       "                       other thread (repeatable); CPUS like 2 or 0-3,8\n");
}
