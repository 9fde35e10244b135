/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk's numbers from the virtio 1.x specification (section 5.2):
 * feature bits, request types and status, the write-zeroes flag. The
 * device model and the test rigs that play its driver share them.
 */
#ifndef KEEL_VIRTIO_BLK_DEFS_H
#define KEEL_VIRTIO_BLK_DEFS_H

/* Feature bits (5.2.3). */
#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_TOPOLOGY 10
#define BLK_F_MQ 12
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6). */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define WZ_UNMAP 1 /* discard/write-zeroes segment flag */

#endif
