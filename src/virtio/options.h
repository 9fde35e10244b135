/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device option strings of the command line: "key=value,key=value".
 * Values cannot contain commas. Errors are one line naming the bad key.
 */
#ifndef KEEL_VIRTIO_OPTIONS_H
#define KEEL_VIRTIO_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

/* Called per pair; returns 0, or -EINVAL after writing a line into err. */
typedef int (*opts_cb)(void *ctx, const char *key, const char *val, char *err, size_t errlen);

/* 0, or -EINVAL with a line in err ("--net: 'foo' is not key=value"). */
int opts_parse(const char *what, const char *s, opts_cb cb, void *ctx, char *err, size_t errlen);

/* "on"/"off" (also yes/no, true/false, 1/0). 0 or -EINVAL. */
int opts_bool(const char *val, int *out);
/* "52:54:00:12:34:56", unicast. 0 or -EINVAL. */
int opts_mac(const char *val, uint8_t mac[6]);

#endif
