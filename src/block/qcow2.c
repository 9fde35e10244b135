// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include "block_int.h"
static int q_open(struct blk_dev *dev, const struct blk_open_opts *opts, char *err, size_t errlen)
{
	blk_set_err(err, errlen, "%s: qcow2 not yet supported", dev->path);
	return -ENOTSUP;
}
static int q_close(struct blk_dev *dev) { return 0; }
static void q_submit(struct blk_io *io) { blk_io_complete(io, -EIO); }
const struct blk_driver blk_driver_qcow2 = { .name = "qcow2", .open = q_open, .close = q_close, .submit = q_submit };
