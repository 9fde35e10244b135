/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel-img: one file per group of subcommands, each a `cmd_*` entry taking
 * argc/argv after the subcommand name and returning the process exit code
 * (qemu-img's codes where a subcommand of the same name exists).
 */
#ifndef KEEL_IMG_H
#define KEEL_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/blk_img.h"
#include "keel/block.h"
#include "keel/compiler.h"

struct img_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;   /* the synopsis line after "keel-img " */
	const char *help;    /* what it does and its options */
};

extern const struct img_cmd img_cmd_create, img_cmd_info, img_cmd_check, img_cmd_convert,
	img_cmd_resize, img_cmd_snapshot, img_cmd_commit, img_cmd_rebase, img_cmd_map,
	img_cmd_bench;

/* "keel-img: <message>" on stderr. */
void img_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Prints the subcommand's usage and help on stdout. */
void img_usage(const struct img_cmd *c, FILE *f);
/* For getopt loops: handles -h/--help (exit 0) and unknown options (exit 1). */
int img_bad_option(const struct img_cmd *c);

/* Opens an image (format NULL: qcow2 by its header, else raw). NULL after
   printing the reason. */
struct blk_dev *img_open(const char *path, const char *fmt, bool read_only,
			 enum blk_cache cache, enum blk_aio aio, unsigned flags);
struct blk_queue *img_queue(struct blk_dev *dev, unsigned depth);
int img_parse_size(const char *s, uint64_t *out);
int img_parse_cache(const char *s, enum blk_cache *out);
/* qemu's human sizes: "16 MiB", "400 KiB", "1.5 GiB". */
void img_human_size(uint64_t v, char *buf, size_t len);
/* A JSON string literal (quotes and escapes) on f. */
void img_json_str(FILE *f, const char *s);
/* The "Snapshot list:" table of qemu-img. */
void img_print_snapshots(struct blk_dev *dev);
/* "    (42.00/100%)\r" when enabled. */
void img_progress(bool on, double pct);

#endif
