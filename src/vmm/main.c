// SPDX-License-Identifier: Apache-2.0
/* keel-vmm: one process per virtual machine. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "keel/log.h"
#include "vmm/config.h"
#include "vmm/ctl.h"
#include "vmm/machine.h"

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct machine m;
	char err[512];
	sigset_t set;
	int rc;

	log_set_program("keel-vmm");
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	switch (config_parse(argc, argv, &cfg, err, sizeof(err))) {
	case CONFIG_EXIT_SUCCESS:
		return 0;
	case CONFIG_ERROR:
		log_error("%s", err);
		return EXIT_SETUP_ERROR;
	case CONFIG_OK:
		break;
	}
	log_set_level(cfg.log_level);

	/*
	 * Block the stop signals before any thread exists, so every thread
	 * inherits the mask and they arrive only through the main loop's
	 * signalfd. A closed console socket must not kill us either.
	 */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (machine_create(&m, &cfg, err, sizeof(err))) {
		log_error("%s", err);
		machine_destroy(&m);
		return EXIT_SETUP_ERROR;
	}
	rc = machine_run(&m);
	machine_destroy(&m);
	return rc;
}
