// SPDX-License-Identifier: Apache-2.0
/*
 * keel-img: create, inspect, check, convert and modify raw and qcow2
 * images, with qemu-img's subcommand names, meanings and exit codes.
 */
#include <stdio.h>
#include <string.h>

#include "img.h"
#include "keel/log.h"

static const struct img_cmd *const cmds[] = {
	&img_cmd_create, &img_cmd_info, &img_cmd_check, &img_cmd_convert, &img_cmd_resize,
	&img_cmd_snapshot, &img_cmd_commit, &img_cmd_rebase, &img_cmd_map, &img_cmd_bench,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: keel-img COMMAND [options]\n"
		"Disk images: raw and qcow2 (version 3; version 2 read-only).\n\n"
		"Commands:\n");
	for (unsigned i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %s\n", cmds[i]->usage);
	fprintf(f, "\n'keel-img COMMAND --help' describes a command. Sizes take the suffixes\n"
		"k, M, G, T (powers of 1024). Exit codes follow qemu-img.\n");
}

int main(int argc, char **argv)
{
	log_set_program("keel-img");
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("keel-img 0.1.0\n");
		return 0;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(argv[1], cmds[i]->name))
			return cmds[i]->run(argc - 1, argv + 1);
	img_error("unknown command '%s' (see keel-img --help)", argv[1]);
	return 1;
}
