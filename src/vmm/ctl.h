/* SPDX-License-Identifier: Apache-2.0 */
/* `keel-vmm ctl SOCKET COMMAND ...`: the control API's command-line client. */
#ifndef KEEL_VMM_CTL_H
#define KEEL_VMM_CTL_H

/* Exit statuses of keel-vmm ctl (documented in its --help). */
enum {
	CTL_OK = 0,
	CTL_REFUSED = 1,     /* the VM answered with an error */
	CTL_USAGE = 2,       /* bad command line */
	CTL_UNREACHABLE = 3, /* no VM at the socket, or no proper answer */
};

/* argv[0] is "ctl". Returns the exit status. */
int ctl_main(int argc, char **argv);

#endif
