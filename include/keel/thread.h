/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Threads with a stack sized for what they do. glibc's default is 8 MiB
 * (RLIMIT_STACK): on a host whose transparent huge pages are "always", the
 * first touch of such a stack can take a whole 2 MiB page, and glibc keeps
 * the stacks of ended threads mapped for reuse, so one short-lived thread
 * costs 2 MiB of VMM overhead for good. A stack below 2 MiB holds no
 * aligned huge page.
 */
#ifndef KEEL_THREAD_H
#define KEEL_THREAD_H

#include <pthread.h>
#include <stddef.h>

#define THREAD_STACK_SMALL (256u << 10) /* vCPU loops, set-up helpers */
#define THREAD_STACK_IO (1u << 20)	/* device models, block layer, migration */

/* pthread_create with a stack of `stack` bytes. 0 or a positive errno. */
int thread_create(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg);

#endif
