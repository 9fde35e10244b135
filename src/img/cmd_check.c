// SPDX-License-Identifier: Apache-2.0
/* keel-img check: consistency of a qcow2 image, with qemu-img's exit codes. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "img.h"

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_CORRUPT = 2, EXIT_LEAKS = 3, EXIT_UNSUPPORTED = 63 };

static void human(const struct blk_check_result *r)
{
	if (r->corruptions_fixed || r->leaks_fixed)
		printf("The following inconsistencies were found and repaired:\n\n"
		       "    %llu leaked clusters\n    %llu corruptions\n\n"
		       "Double checking the fixed image now...\n",
		       (unsigned long long)r->leaks_fixed, (unsigned long long)r->corruptions_fixed);
	if (!r->corruptions && !r->leaks && !r->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\nData may be corrupted, or "
			       "further writes to the image may corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the image.\nThis means waste of "
			       "disk space, but no harm to data.\n", (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n1 internal errors have occurred during the check.\n");
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters, (unsigned long long)r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

static void json(const struct blk_check_result *r, const char *file)
{
	printf("{\n    \"image-end-offset\": %llu,\n", (unsigned long long)r->image_end_offset);
	if (r->corruptions)
		printf("    \"corruptions\": %llu,\n", (unsigned long long)r->corruptions);
	if (r->leaks)
		printf("    \"leaks\": %llu,\n", (unsigned long long)r->leaks);
	if (r->corruptions_fixed)
		printf("    \"corruptions-fixed\": %llu,\n", (unsigned long long)r->corruptions_fixed);
	if (r->leaks_fixed)
		printf("    \"leaks-fixed\": %llu,\n", (unsigned long long)r->leaks_fixed);
	/* as qemu-img: the cluster counts only when non-zero */
	if (r->compressed_clusters)
		printf("    \"compressed-clusters\": %llu,\n", (unsigned long long)r->compressed_clusters);
	printf("    \"total-clusters\": %llu,\n    \"check-errors\": %d,\n",
	       (unsigned long long)r->total_clusters, r->check_errors ? 1 : 0);
	if (r->allocated_clusters)
		printf("    \"allocated-clusters\": %llu,\n", (unsigned long long)r->allocated_clusters);
	printf("    \"filename\": ");
	img_json_str(stdout, file);
	printf(",\n    \"format\": \"qcow2\"%s\n", r->fragmented_clusters ? "," : "");
	if (r->fragmented_clusters)
		printf("    \"fragmented-clusters\": %llu\n", (unsigned long long)r->fragmented_clusters);
	printf("}\n");
}

static int run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "output", required_argument, 0, 'O' }, { 0 } };
	const char *fmt = NULL;
	bool as_json = false, quiet = false;
	struct blk_check_result res;
	struct blk_dev *dev;
	int c, fix = 0, r;

	while ((c = getopt_long(argc, argv, "hf:r:qUT:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_check, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 'U': case 'T': break;
		case 'O': as_json = !strcmp(optarg, "json"); break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = BLK_CHECK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS;
			else {
				img_error("-r must be 'leaks' or 'all'");
				return EXIT_ERROR;
			}
			break;
		default: return img_bad_option(&img_cmd_check);
		}
	}
	if (optind != argc - 1) {
		img_error("check: expected one file name");
		return EXIT_ERROR;
	}
	dev = img_open(argv[optind], fmt, !fix, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC,
		       BLK_OPEN_NO_BACKING | (fix ? BLK_OPEN_REPAIR : 0));
	if (!dev)
		return EXIT_ERROR;
	r = blk_img_check(dev, fix, &res, quiet ? NULL : stderr);
	if (r == -ENOTSUP) {
		img_error("This image format does not support checks");
		blk_close(dev);
		return EXIT_UNSUPPORTED;
	}
	if (blk_close(dev))
		res.check_errors = true;
	if (!quiet) {
		if (as_json)
			json(&res, argv[optind]);
		else
			human(&res);
	}
	if (res.check_errors)
		return EXIT_ERROR;
	if (res.corruptions)
		return EXIT_CORRUPT;
	return res.leaks ? EXIT_LEAKS : EXIT_OK;
}

const struct img_cmd img_cmd_check = {
	.name = "check",
	.run = run,
	.usage = "check [-q] [-f fmt] [--output=human|json] [-r leaks|all] filename",
	.help =
	"Checks a qcow2 image's metadata: every cluster's refcount against the\n"
	"references to it, and the COPIED flags. -r leaks frees leaked clusters;\n"
	"-r all also repairs refcounts that are too low and the flags.\n"
	"Exit status: 0 consistent, 1 the check could not complete, 2 corruptions\n"
	"found, 3 only leaked clusters found, 63 the format has no checks (raw).\n",
};
